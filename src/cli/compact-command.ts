/**
 * `compactctl compact SHARD`: submit a compaction (`--major`, `--desc`, `--deadline`), show its plan
 * (`--dry-run`), or follow it to its end with a progress bar fed by its event stream (`--wait`).
 */
import { InvalidArgumentError, type Command } from 'commander'
import { formatBytes, formatCount, formatDuration } from '../client/format.js'
import { statusLabel, whyLine } from '../client/compaction-view.js'
import type { AntichainJson, CompactionJson, DryRunPlanJson, SubmitBody } from '../client/wire.js'
import { run } from './context.js'
import { EXIT } from './exit-codes.js'
import { facts, table } from './output.js'
import { resolveShard } from './shards-commands.js'
import { exitCodeForOutcome, follow } from './watch.js'

type Desc = NonNullable<SubmitBody['desc']>

/** `--desc '[0]..[10]'` or `--desc '{"lower":[0],"upper":[10],"since":[0]}'`. */
export function parseDesc(text: string): Desc {
  const frontier = (s: string): AntichainJson => {
    const v = JSON.parse(s) as unknown
    if (!Array.isArray(v)) throw new Error('not an array')
    return v as AntichainJson
  }
  try {
    if (text.trim().startsWith('{')) {
      const v = JSON.parse(text) as { lower?: unknown; upper?: unknown; since?: unknown }
      const desc: Desc = { lower: frontier(JSON.stringify(v.lower)), upper: frontier(JSON.stringify(v.upper)) }
      return v.since === undefined ? desc : { ...desc, since: frontier(JSON.stringify(v.since)) }
    }
    const [lower, upper, ...rest] = text.split('..')
    if (lower === undefined || upper === undefined || rest.length > 0) throw new Error('no ..')
    return { lower: frontier(lower), upper: frontier(upper) }
  } catch {
    throw new InvalidArgumentError('must be LOWER..UPPER with JSON frontiers, like [0]..[10], or {"lower":[0],"upper":[10],"since":[0]}')
  }
}

const duration = (value: string): string => {
  if (!/^[0-9]+(h|m|s|ms)$/.test(value)) throw new InvalidArgumentError('must be a duration like 30s, 1500ms or 2m')
  return value
}

export function compactCommand(program: Command): void {
  program
    .command('compact')
    .description('submit a compaction of a shard; --wait follows it with a progress bar')
    .argument('<shard>', 'shard id or name')
    .option('--major', 'merge the whole trace (or --desc of whole spine batches) into one batch at the since')
    .option('--desc <range>', 'the range to compact: [0]..[10] or {"lower":[0],"upper":[10],"since":[0]}; default the whole trace', parseDesc)
    .option('--deadline <duration>', 'give up if not done within this long (30s, 2m)', duration)
    .option('--dry-run', 'show the plan; submit nothing')
    .option('--wait', 'follow the compaction to its end (exit code says how it ended)')
    .action((ref: string, opts: { major?: boolean; desc?: Desc; deadline?: string; dryRun?: boolean; wait?: boolean }, cmd: Command) =>
      run(cmd, async ({ client, out }) => {
        const shardId = await resolveShard(client, ref)
        const body: SubmitBody = {}
        if (opts.desc !== undefined) body.desc = opts.desc
        if (opts.major === true) body.major = true
        if (opts.deadline !== undefined) body.deadline = opts.deadline
        if (opts.dryRun === true) body.dryRun = true
        const answer = await client.submit(shardId, body)
        if (answer.kind === 'plan') {
          out.result({ plan: answer.plan }, () => planText(answer.plan))
          return EXIT.OK
        }
        if (opts.wait !== true) {
          out.result(answer.compaction, () => `${answer.compaction.id} ${answer.compaction.status} (compactctl jobs watch ${answer.compaction.id} follows it)`)
          return EXIT.OK
        }
        const final = await follow(client, answer.compaction, out)
        out.result(final, () => summary(final))
        return exitCodeForOutcome(final)
      }),
    )
}

export function summary(c: CompactionJson): string {
  const why = whyLine(c)
  const output = c.output === undefined ? '' : `, output ${c.output.parts.length} parts, ${formatCount(c.output.len)} updates`
  return `${c.id} ${statusLabel(c)} in ${formatDuration(c.startedAt === undefined || c.finishedAt === undefined ? undefined : Date.parse(c.finishedAt) - Date.parse(c.startedAt))}${output}${why === '' ? '' : `\n  ${why}`}`
}

function planText(p: DryRunPlanJson): string {
  const h = p.heuristic
  return [
    facts([
      ['inputs', `${h.inputs} batches, ${formatCount(h.parts)} parts, ${formatCount(h.updates)} updates`],
      ['heuristics', h.wouldCompact ? 'would compact' : 'below every threshold'],
      ['timeout', formatDuration(p.timeoutMs)],
      ['schema', p.schemaSelection],
      ['chunks', `${p.chunks.length}${p.memoryViolations > 0 ? `, ${p.memoryViolations} over the memory bound` : ''}`],
    ]),
    '',
    table(['run', 'input', 'order', 'parts', 'size', 'largest part'], p.runs.map((r, i) => [i, r.input, r.order ?? '—', r.parts, formatBytes(r.encodedBytes), formatBytes(r.maxPartBytes)])),
    '',
    table(['chunk', 'runs', 'memory'], p.chunks.map((c, i) => [i, c.runs.join(','), formatBytes(c.memoryBytes)])),
  ].join('\n')
}
