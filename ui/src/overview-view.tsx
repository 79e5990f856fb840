/**
 * Overview: instances, scheduler (running or paused, and the kill switch), queue depth, running
 * compactions with their progress, recent failures. Polls every few seconds; each list asks for one
 * bounded page. NB: no event stream per running compaction: a browser opens at most 6 connections
 * to a server over HTTP/1.1 and a stream holds one while its compaction runs, so six running
 * compactions left no connection for anything else of the tab (its polls stalled). The running list
 * is polled; a compaction's own page follows its one stream.
 */
import { isApiError } from '../../src/client/api-client.js'
import { progressLine, whyLine } from '../../src/client/compaction-view.js'
import { formatInstant, formatRange, shortId } from '../../src/client/format.js'
import type { CompactionJson } from '../../src/client/wire.js'
import { useLoad } from './hooks.js'
import { href } from './router.js'
import { ErrorNote, ProgressBar, Section, StatusBadge } from './widgets.js'

const POLL_MS = 3000
/** Queue depth is counted from one page; beyond it the overview says "at least". */
const QUEUE_PAGE = 200

export function OverviewView() {
  const ready = useLoad((c) => c.readiness(), [], POLL_MS)
  const instances = useLoad((c) => c.instances(), [], POLL_MS * 5)
  const killSwitch = useLoad(async (c) => (await c.config('compaction_process_requests')).value, [], POLL_MS)
  const queued = useLoad((c) => c.listCompactions({ status: 'queued', limit: QUEUE_PAGE }), [], POLL_MS)
  const running = useLoad((c) => c.listCompactions({ status: 'running', limit: 50 }), [], POLL_MS)
  const failed = useLoad((c) => c.listCompactions({ status: 'failed', limit: 10 }), [], POLL_MS * 2)

  const scheduler = ready.data?.checks.scheduler ?? '—'
  const depth = queued.data === undefined ? '—' : `${queued.data.compactions.length}${queued.data.nextCursor !== undefined || queued.data.compactions.length >= QUEUE_PAGE ? '+' : ''}`

  return (
    <>
      <h1>Overview</h1>
      <div class="cards">
        <div class="card">
          <div class="card-label">Scheduler</div>
          <div class={`card-value scheduler-${scheduler}`} data-testid="scheduler">{scheduler}</div>
          <div class="muted">
            kill switch: {killSwitch.data === undefined ? '—' : killSwitch.data === false ? 'compaction paused' : 'compaction on'} · <a href={href(['configs'])}>configs</a>
          </div>
        </div>
        <div class="card">
          <div class="card-label">Queue depth</div>
          <div class="card-value" data-testid="queue-depth">{depth}</div>
          <div class="muted">
            <a href={href(['compactions'], { status: 'queued' })}>queued compactions</a>
          </div>
        </div>
        <div class="card">
          <div class="card-label">Running</div>
          <div class="card-value">{running.data?.compactions.length ?? '—'}</div>
          <div class="muted">readiness: {ready.data?.status ?? '—'}</div>
        </div>
      </div>

      <Section title="Instances">
        {instances.error !== undefined ? (
          isApiError(instances.error) && instances.error.code === 'NOT_FOUND' ? (
            <p class="muted">This server does not list cluster instances; it answers alone (blob {ready.data?.checks.blob ?? '—'}, consensus {ready.data?.checks.consensus ?? '—'}).</p>
          ) : (
            <ErrorNote error={instances.error} what="instances" />
          )
        ) : (
          <table>
            <thead>
              <tr><th scope="col">Instance</th><th scope="col">Version</th><th scope="col">Started</th><th scope="col">Heartbeat</th><th scope="col">Running</th></tr>
            </thead>
            <tbody>
              {(instances.data ?? []).map((i) => (
                <tr key={i.id}>
                  <td>{i.id}{i.self === true ? ' (this one)' : ''}</td>
                  <td>{i.version ?? '—'}</td>
                  <td>{formatInstant(i.startedAt)}</td>
                  <td>{formatInstant(i.heartbeatAt)}</td>
                  <td>{i.running ?? '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>

      <Section title="Running compactions">
        <ErrorNote error={running.error} what="running compactions" />
        {running.data !== undefined && running.data.compactions.length === 0 ? <p class="muted">Nothing running.</p> : null}
        <ul class="running" aria-label="Running compactions">
          {(running.data?.compactions ?? []).map((c) => (
            <RunningRow key={c.id} c={c} />
          ))}
        </ul>
      </Section>

      <Section title="Recent failures">
        <ErrorNote error={failed.error} what="failed compactions" />
        {failed.data !== undefined && failed.data.compactions.length === 0 ? <p class="muted">No recent failures.</p> : null}
        {failed.data !== undefined && failed.data.compactions.length > 0 ? (
          <table>
            <thead>
              <tr><th scope="col">Compaction</th><th scope="col">Shard</th><th scope="col">Finished</th><th scope="col">Code</th><th scope="col">Reason</th></tr>
            </thead>
            <tbody>
              {failed.data.compactions.map((c) => (
                <tr key={c.id}>
                  <td><a href={href(['compactions', c.id])}>{shortId(c.id)}</a></td>
                  <td><a href={href(['shards', c.shardId])}>{shortId(c.shardId)}</a></td>
                  <td>{formatInstant(c.finishedAt)}</td>
                  <td><code>{c.error?.code ?? c.reason?.code ?? '—'}</code></td>
                  <td>{c.error?.message ?? c.reason?.message ?? ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : null}
      </Section>
    </>
  )
}

/** One running compaction, as the last poll of the running list saw it. */
function RunningRow({ c }: { c: CompactionJson }) {
  return (
    <li class="running-row" data-compaction={c.id} data-status={c.status}>
      <div>
        <a href={href(['compactions', c.id])}>{shortId(c.id)}</a> on <a href={href(['shards', c.shardId])}>{shortId(c.shardId)}</a> · {formatRange(c.desc)} · <StatusBadge compaction={c} />
      </div>
      <ProgressBar compaction={c} label={`Progress of ${c.id}`} />
      <div class="muted">{progressLine(c)}{whyLine(c) === '' ? '' : ` · ${whyLine(c)}`}</div>
    </li>
  )
}
