/** `compactctl shards ls|show|delete` (create, write, read, since, gc: shards-data-commands.ts). A shard is named by its id (`s<uuid>`) or by its name. */
import type { Command } from 'commander'
import type { ApiClient } from '../client/api-client.js'
import { ApiError } from '../client/api-client.js'
import { formatBytes, formatCount, formatFrontier, formatInstant } from '../client/format.js'
import type { ShardJson, ShardSpineJson } from '../client/wire.js'
import { positiveInt, run } from './context.js'
import { EXIT, UsageError } from './exit-codes.js'
import { facts, table } from './output.js'
import { spineText } from './spine-text.js'

const SHARD_ID = /^s[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** The shard id of `ref`: itself when it is an id, else the shard of that exact name (404 if none). */
export async function resolveShard(client: ApiClient, ref: string): Promise<string> {
  if (SHARD_ID.test(ref)) return ref
  const page = await client.listShards({ name: ref, limit: 50 })
  const match = page.shards.find((s) => s.name === ref)
  if (match === undefined) throw new ApiError(404, 'SHARD_NOT_FOUND', `no shard named "${ref}" (give a shard id s<uuid> or an exact name)`)
  return match.shardId
}

export function shardsCommands(program: Command): Command {
  const shards = program.command('shards').description('create, list, inspect and delete shards; write, read, advance the since, collect garbage')

  shards
    .command('ls')
    .description('one page of shards with size and backlog')
    .option('--name <prefix>', 'only shards whose name starts with it')
    .option('--limit <n>', 'page size', positiveInt(), 50)
    .option('--cursor <cursor>', 'the page after this cursor (printed by the previous page)')
    .action((opts: { name?: string; limit: number; cursor?: string }, cmd: Command) =>
      run(cmd, async ({ client, out }) => {
        const page = await client.listShards({ ...(opts.name === undefined ? {} : { namePrefix: opts.name }), limit: opts.limit, ...(opts.cursor === undefined ? {} : { cursor: opts.cursor }) })
        out.result(page, () => {
          if (page.shards.length === 0) return 'no shards'
          const rows = page.shards.map((s) => [
            s.name === '' ? '(unnamed)' : s.name,
            s.shardId,
            formatFrontier(s.since),
            formatFrontier(s.upper),
            formatCount(s.stats?.spineBatches),
            formatBytes(s.stats?.encodedBytes),
            s.stats?.backlogBatches === undefined ? '—' : `${s.stats.backlogBatches} / ${formatBytes(s.stats.backlogBytes)}`,
          ])
          const next = page.nextCursor === undefined ? '' : `\nnext page: --cursor ${page.nextCursor}`
          return `${table(['name', 'shard', 'since', 'upper', 'spine', 'size', 'backlog'], rows)}${next}`
        })
      }),
    )

  shards
    .command('show')
    .description('a shard: frontiers, stats, its spine drawn, merges in progress, leases')
    .argument('<shard>', 'shard id or name')
    .action((ref: string, _opts, cmd: Command) =>
      run(cmd, async ({ client, out }) => {
        // NB: --json prints the whole shard (the API's Shard, every batch); people get the spine counted.
        const id = await resolveShard(client, ref)
        if (out.json) out.result(await client.shard(id), () => '')
        else {
          const shard = await client.shardSpine(id)
          out.result(shard, () => showShard(shard))
        }
      }),
    )

  shards
    .command('delete')
    .description('delete a shard and its data (asks for --yes)')
    .argument('<shard>', 'shard id or name')
    .option('--yes', 'really delete')
    .action((ref: string, opts: { yes?: boolean }, cmd: Command) =>
      run(cmd, async ({ client, out }) => {
        if (opts.yes !== true) throw new UsageError(`deleting ${ref} removes all its data: add --yes to confirm`)
        const id = await resolveShard(client, ref)
        await client.deleteShard(id)
        out.result({ deleted: id }, () => `deleted ${id}`)
        return EXIT.OK
      }),
    )
  return shards
}

function showShard(s: ShardSpineJson | ShardJson): string {
  const leases =
    s.leases === undefined
      ? 'leases: not reported by this server'
      : s.leases.length === 0
        ? 'leases: none'
        : table(['lease', 'instance', 'seqno', 'expires'], s.leases.map((l) => [l.id, l.instance ?? '—', l.seqno ?? '—', formatInstant(l.expiresAt)]))
  return [
    facts([
      ['shard', s.shardId],
      ['name', s.name === '' ? '(unnamed)' : s.name],
      ['timestamp', s.timestamp],
      ['since', formatFrontier(s.since)],
      ['upper', formatFrontier(s.upper)],
      ['seqno', String(s.seqno)],
      ['size', `${formatBytes(s.stats?.encodedBytes)} in ${formatCount(s.stats?.parts)} parts, ${formatCount(s.stats?.updates)} updates`],
      ['backlog', `${s.stats?.backlogBatches ?? '—'} spine batches, ${formatBytes(s.stats?.backlogBytes)}`],
    ]),
    '',
    spineText(s),
    '',
    leases,
  ].join('\n')
}
