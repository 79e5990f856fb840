/** Compaction history: filters (status, source, shard), one page at a time, live progress, cancel. */
import { useState } from 'preact/hooks'
import { isApiError } from '../../src/client/api-client.js'
import { isFinal } from '../../src/client/compaction-view.js'
import { elapsedMs, formatDuration, formatInstant, formatRange, shortId } from '../../src/client/format.js'
import { STATUSES, type CompactionJson } from '../../src/client/wire.js'
import { useApi, useLoad } from './hooks.js'
import { href, navigate, type Route } from './router.js'
import { ConfirmButton, ErrorNote, ListProgress, Pager, StatusBadge } from './widgets.js'

const PAGE = 50

export function CompactionsView({ route }: { route: Route }) {
  const filters = { status: route.params.get('status') ?? '', source: route.params.get('source') ?? '', shardId: route.params.get('shardId') ?? '' }
  const stack = (route.params.get('pages') ?? '').split(',').filter((c) => c !== '')
  const cursor = stack.at(-1)
  const page = useLoad(
    (c) => c.listCompactions({ status: filters.status || undefined, source: filters.source || undefined, shardId: filters.shardId || undefined, limit: PAGE, cursor }),
    [filters.status, filters.source, filters.shardId, cursor],
    3000,
  )
  const [shardDraft, setShardDraft] = useState(filters.shardId)
  const go = (next: Partial<typeof filters>): void => navigate(href(['compactions'], { ...filters, ...next }))

  return (
    <>
      <div class="section-head">
        <h1>Compactions</h1>
        <a class="button" href={href(['compactions', 'new'], { shardId: filters.shardId })}>Submit a compaction…</a>
      </div>
      <form
        class="toolbar"
        aria-label="Filters"
        onSubmit={(e) => {
          e.preventDefault()
          go({ shardId: shardDraft.trim() })
        }}
      >
        <label for="f-status">Status</label>
        <select id="f-status" value={filters.status} onChange={(e) => go({ status: e.currentTarget.value })}>
          <option value="">any</option>
          {STATUSES.map((s) => (
            <option key={s} value={s}>{s}</option>
          ))}
        </select>
        <label for="f-source">Source</label>
        <select id="f-source" value={filters.source} onChange={(e) => go({ source: e.currentTarget.value })}>
          <option value="">any</option>
          <option value="request">request</option>
          <option value="maintenance">maintenance</option>
        </select>
        <label for="f-shard">Shard id</label>
        <input id="f-shard" value={shardDraft} onInput={(e) => setShardDraft(e.currentTarget.value)} placeholder="s…" />
        <button type="submit">Filter</button>
      </form>
      <ErrorNote error={page.error} what="compactions" />
      {page.data !== undefined && page.data.compactions.length === 0 ? <p class="muted">No compactions match.</p> : null}
      {page.data !== undefined && page.data.compactions.length > 0 ? (
        <table class="compactions">
          <thead>
            <tr>
              <th scope="col">Compaction</th><th scope="col">Shard</th><th scope="col">Source</th><th scope="col">Status</th><th scope="col">Range</th>
              <th scope="col">Created</th><th scope="col">Took</th><th scope="col">Progress</th><th scope="col"><span class="visually-hidden">Actions</span></th>
            </tr>
          </thead>
          <tbody>
            {page.data.compactions.map((c) => (
              <Row key={c.id} c={c} onChange={page.reload} />
            ))}
          </tbody>
        </table>
      ) : null}
      <Pager stack={stack} next={page.data?.nextCursor} shown={page.data?.compactions.length ?? 0} onPage={(s) => navigate(href(['compactions'], { ...filters, pages: s.join(',') }))} />
    </>
  )
}

function Row({ c, onChange }: { c: CompactionJson; onChange: () => void }) {
  return (
    <tr data-compaction={c.id} data-status={c.status}>
      <td><a href={href(['compactions', c.id])}>{shortId(c.id)}</a></td>
      <td><a href={href(['shards', c.shardId])}>{shortId(c.shardId)}</a></td>
      <td>{c.source}</td>
      <td><StatusBadge compaction={c} /></td>
      <td>{formatRange(c.desc)}</td>
      <td>{formatInstant(c.createdAt)}</td>
      <td>{formatDuration(elapsedMs(c.startedAt, c.finishedAt))}</td>
      <td><ListProgress compaction={c} label={`Progress of ${c.id}`} /></td>
      <td>{isFinal(c) ? null : <CancelButton id={c.id} onDone={onChange} />}</td>
    </tr>
  )
}

/** Cancel with a confirmation; a compaction that finished meanwhile (409) just refreshes. */
export function CancelButton({ id, onDone }: { id: string; onDone: () => void }) {
  const client = useApi()
  const [error, setError] = useState<string | null>(null)
  return (
    <span>
      <ConfirmButton
        label="Cancel"
        confirm={`Cancel ${shortId(id)}?`}
        danger
        onConfirm={async () => {
          try {
            await client.cancel(id)
            setError(null)
          } catch (err) {
            setError(isApiError(err) ? `${err.code}: ${err.message}` : String(err))
          }
          onDone()
        }}
      />
      {error === null ? null : <span class="error" role="alert">{error}</span>}
    </span>
  )
}

