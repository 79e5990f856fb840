/** A dry-run plan: the heuristic verdict, the runs in merge order, and the chunks within the memory bound. */
import { formatBytes, formatCount, formatDuration } from '../../src/client/format.js'
import type { DryRunPlanJson } from '../../src/client/wire.js'

export function PlanTable({ plan }: { plan: DryRunPlanJson }) {
  const h = plan.heuristic
  return (
    <div class="plan" data-testid="plan">
      <dl class="facts">
        <dt>Inputs</dt><dd>{h.inputs} batches, {formatCount(h.parts)} parts, {formatCount(h.updates)} updates</dd>
        <dt>Heuristics</dt><dd>{h.wouldCompact ? 'would compact' : 'below every threshold (an automatic request would be skipped)'}</dd>
        <dt>Timeout</dt><dd>{formatDuration(plan.timeoutMs)}</dd>
        <dt>Schema</dt><dd>{plan.schemaSelection}{plan.schemaId === undefined ? '' : ` (id ${plan.schemaId})`}</dd>
        <dt>Chunks</dt><dd>{plan.chunks.length}{plan.memoryViolations > 0 ? `, ${plan.memoryViolations} over the memory bound` : ''}</dd>
      </dl>
      <table>
        <caption>Runs, in merge order</caption>
        <thead><tr><th scope="col">#</th><th scope="col">Input</th><th scope="col">Order</th><th scope="col" class="num">Parts</th><th scope="col" class="num">Size</th><th scope="col" class="num">Largest part</th><th scope="col">Exploded</th></tr></thead>
        <tbody>
          {plan.runs.map((r, i) => (
            <tr key={i}><td>{i}</td><td>{r.input}</td><td>{r.order ?? '—'}</td><td class="num">{r.parts}</td><td class="num">{formatBytes(r.encodedBytes)}</td><td class="num">{formatBytes(r.maxPartBytes)}</td><td>{r.exploded ? 'yes' : 'no'}</td></tr>
          ))}
        </tbody>
      </table>
      <table>
        <caption>Chunks</caption>
        <thead><tr><th scope="col">#</th><th scope="col">Runs</th><th scope="col" class="num">Memory</th></tr></thead>
        <tbody>
          {plan.chunks.map((c, i) => (
            <tr key={i}><td>{i}</td><td>{c.runs.join(', ')}</td><td class="num">{formatBytes(c.memoryBytes)}</td></tr>
          ))}
        </tbody>
      </table>
    </div>
  )
}
