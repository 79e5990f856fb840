/**
 * One compaction: its record kept live by its event stream, its timeline (queued, started, chunks,
 * the end with its apply result and reason), its plan (a dry run of the same range, as the trace is
 * now), cancel.
 */
import { useState } from 'preact/hooks'
import { isApiError } from '../../src/client/api-client.js'
import { isFinal, progressLine, timelineOf, whyLine } from '../../src/client/compaction-view.js'
import { batchBytes } from '../../src/client/spine.js'
import { formatBytes, formatCount, formatInstant, formatRange, formatFrontier } from '../../src/client/format.js'
import type { CompactionJson, DryRunPlanJson } from '../../src/client/wire.js'
import { CancelButton } from './compactions-view.js'
import { useApi, useCompactionEvents, useLoad } from './hooks.js'
import { PlanTable } from './plan-table.js'
import { href } from './router.js'
import { ErrorNote, ProgressBar, Section, StatusBadge } from './widgets.js'

export function CompactionView({ id }: { id: string }) {
  const first = useLoad((c) => c.compaction(id), [id])
  if (first.data === undefined) {
    return (
      <>
        <h1>Compaction {id}</h1>
        {first.error === undefined ? <p class="muted">Loading…</p> : <ErrorNote error={first.error} what="the compaction" />}
      </>
    )
  }
  return <Live initial={first.data} reload={first.reload} />
}

function Live({ initial, reload }: { initial: CompactionJson; reload: () => void }) {
  const c = useCompactionEvents(initial)
  const why = whyLine(c)
  return (
    <>
      <div class="section-head">
        <h1>Compaction {c.id}</h1>
        <span class="actions">{isFinal(c) ? null : <CancelButton id={c.id} onDone={reload} />}</span>
      </div>
      <div class="live" data-testid="compaction-live" data-status={c.status}>
        <StatusBadge compaction={c} /> <ProgressBar compaction={c} label="Compaction progress" />
        <div class="muted">{progressLine(c)}</div>
        {why === '' ? null : <p class={c.error === undefined ? 'reason' : 'error'} data-testid="why">{why}</p>}
      </div>
      <dl class="facts">
        <dt>Shard</dt><dd><a href={href(['shards', c.shardId])}><code>{c.shardId}</code></a></dd>
        <dt>Source</dt><dd>{c.source}{c.kind !== undefined ? ` (${c.kind})` : ''}</dd>
        <dt>Range</dt><dd>{formatRange(c.desc)} since {formatFrontier(c.desc.since)}</dd>
        <dt>Inputs</dt><dd>{c.inputs.batches} batches, {c.inputs.runs} runs, {formatCount(c.inputs.parts)} parts, {formatCount(c.inputs.updates)} updates, {formatBytes(c.inputs.encodedBytes)}</dd>
        <dt>Output</dt><dd>{c.output === undefined ? '—' : `${c.output.parts.length} parts, ${formatCount(c.output.len)} updates, ${formatBytes(batchBytes(c.output))}`}</dd>
        <dt>Instance</dt><dd>{c.instance ?? '—'}{typeof c.attempt === 'number' ? ` · attempt ${c.attempt}` : ''}</dd>
      </dl>
      <Section title="Timeline">
        <ol class="timeline">
          {timelineOf(c).map((e, i) => (
            <li key={i} data-step={e.label}>
              <span class="timeline-at">{e.at === undefined ? '' : formatInstant(e.at)}</span> <strong>{e.label}</strong> <span>{e.detail}</span>
            </li>
          ))}
        </ol>
      </Section>
      <Section title="Plan">
        <PlanOnDemand c={c} />
      </Section>
    </>
  )
}

function PlanOnDemand({ c }: { c: CompactionJson }) {
  const client = useApi()
  const [plan, setPlan] = useState<DryRunPlanJson | null>(null)
  const [error, setError] = useState<string | null>(null)
  const load = async (): Promise<void> => {
    try {
      const answer = await client.submit(c.shardId, { desc: { lower: c.desc.lower, upper: c.desc.upper, since: c.desc.since }, dryRun: true, ...(c.kind === 'major' ? { major: true } : {}) })
      if (answer.kind === 'plan') setPlan(answer.plan)
      setError(null)
    } catch (err) {
      setError(isApiError(err) ? `${err.code}: ${err.message}` : String(err))
    }
  }
  return (
    <>
      <p class="muted">A dry run of the same range against the trace as it is now (nothing is queued). Once a compaction has applied, its inputs are gone from the trace and the plan is no longer available.</p>
      <button type="button" onClick={() => void load()}>Show plan</button>
      {error === null ? null : <p class="error" role="alert">{error}</p>}
      {plan === null ? null : <PlanTable plan={plan} />}
    </>
  )
}
