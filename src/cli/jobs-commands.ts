/** `compactctl jobs ls|show|watch|cancel`: compactions, as the cluster reports them. */
import type { Command } from 'commander'
import { fractionOf, percentLabel, statusLabel, timelineOf } from '../client/compaction-view.js'
import { elapsedMs, formatDuration, formatInstant, formatRange } from '../client/format.js'
import type { CompactionJson } from '../client/wire.js'
import { summary } from './compact-command.js'
import { positiveInt, run } from './context.js'
import { EXIT } from './exit-codes.js'
import { facts, table } from './output.js'
import { resolveShard } from './shards-commands.js'
import { exitCodeForOutcome, follow } from './watch.js'

export function jobsCommands(program: Command): void {
  const jobs = program.command('jobs').description('list, inspect, follow and cancel compactions')

  jobs
    .command('ls')
    .description('one page of compactions, newest first')
    .option('--shard <shard>', 'only this shard (id or name)')
    .option('--status <status>', 'only this status (queued, running, succeeded, failed, cancelled, skipped, ...)')
    .option('--source <source>', 'only this source (request, maintenance)')
    .option('--limit <n>', 'page size', positiveInt(), 50)
    .option('--cursor <cursor>', 'the page after this cursor (printed by the previous page)')
    .action((opts: { shard?: string; status?: string; source?: string; limit: number; cursor?: string }, cmd: Command) =>
      run(cmd, async ({ client, out }) => {
        const shardId = opts.shard === undefined ? undefined : await resolveShard(client, opts.shard)
        const page = await client.listCompactions({ shardId, status: opts.status, source: opts.source, limit: opts.limit, cursor: opts.cursor })
        out.result(page, () => {
          if (page.compactions.length === 0) return 'no compactions'
          const next = page.nextCursor === undefined ? '' : `\nnext page: --cursor ${page.nextCursor}`
          return `${listTable(page.compactions)}${next}`
        })
      }),
    )

  jobs
    .command('show')
    .description('one compaction: record and timeline')
    .argument('<id>', 'compaction id c<uuid>')
    .action((id: string, _opts, cmd: Command) =>
      run(cmd, async ({ client, out }) => {
        const c = await client.compaction(id)
        out.result(c, () => showText(c))
      }),
    )

  jobs
    .command('watch')
    .description('follow a compaction to its end with a progress bar (exit code says how it ended)')
    .argument('<id>', 'compaction id c<uuid>')
    .action((id: string, _opts, cmd: Command) =>
      run(cmd, async ({ client, out }) => {
        const final = await follow(client, await client.compaction(id), out)
        out.result(final, () => summary(final))
        return exitCodeForOutcome(final)
      }),
    )

  jobs
    .command('cancel')
    .description('cancel a queued or running compaction')
    .argument('<id>', 'compaction id c<uuid>')
    .action((id: string, _opts, cmd: Command) =>
      run(cmd, async ({ client, out }) => {
        const c = await client.cancel(id)
        out.result(c, () => `${c.id} ${c.status}`)
        return EXIT.OK
      }),
    )
}

function listTable(cs: readonly CompactionJson[]): string {
  return table(
    ['compaction', 'shard', 'source', 'status', 'range', 'created', 'took', 'done'],
    cs.map((c) => [c.id, c.shardId, c.source, statusLabel(c), formatRange(c.desc), formatInstant(c.createdAt), formatDuration(elapsedMs(c.startedAt, c.finishedAt)), percentLabel(c)]),
  )
}

function showText(c: CompactionJson): string {
  return [
    facts([
      ['compaction', c.id],
      ['shard', c.shardId],
      ['source', `${c.source}${c.kind !== undefined ? ` (${c.kind})` : ''}`],
      ['status', statusLabel(c)],
      ['range', `${formatRange(c.desc)} since ${JSON.stringify(c.desc.since)}`],
      ['inputs', `${c.inputs.batches} batches, ${c.inputs.runs} runs, ${c.inputs.parts} parts, ${c.inputs.updates} updates`],
      ['done', `${Math.round(fractionOf(c) * 100)}%`],
    ]),
    '',
    'timeline:',
    ...timelineOf(c).map((e) => `  ${(e.at === undefined ? '' : formatInstant(e.at)).padEnd(20)}  ${e.label.padEnd(10)}  ${e.detail}`),
  ].join('\n')
}
