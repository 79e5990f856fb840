/**
 * One shard: its frontiers and stats, its spine drawn, merges in progress, leases, recent compactions,
 * delete. Polls the spine route (spine batches counted), not the whole shard, whose hollow batches
 * make megabytes for a trace compaction fell behind on.
 */
import { useState } from 'preact/hooks'
import { isApiError } from '../../src/client/api-client.js'
import { formatBytes, formatCount, formatFrontier, formatInstant, formatRange, shortId } from '../../src/client/format.js'
import { useApi, useLoad } from './hooks.js'
import { href, navigate } from './router.js'
import { SpineDrawing, SpineTable } from './spine-drawing.js'
import { ConfirmButton, ErrorNote, ListProgress, Section, StatusBadge } from './widgets.js'

export function ShardView({ id }: { id: string }) {
  const client = useApi()
  const shard = useLoad((c) => c.shardSpine(id), [id], 5000)
  const jobs = useLoad((c) => c.listCompactions({ shardId: id, limit: 10 }), [id], 5000)
  const [deleteError, setDeleteError] = useState<string | null>(null)

  if (shard.data === undefined) {
    return (
      <>
        <h1>Shard {id}</h1>
        {shard.error === undefined ? <p class="muted">Loading…</p> : <ErrorNote error={shard.error} what="the shard" />}
      </>
    )
  }
  const s = shard.data
  return (
    <>
      <div class="section-head">
        <h1>Shard {s.name === '' ? shortId(s.shardId) : s.name}</h1>
        <span class="actions">
          <a class="button" href={href(['compactions', 'new'], { shardId: s.shardId })}>Compact…</a>
          <ConfirmButton
            label="Delete shard"
            danger
            confirm={`Delete ${s.name === '' ? s.shardId : s.name} and all its data?`}
            onConfirm={async () => {
              try {
                await client.deleteShard(s.shardId)
                navigate(href(['shards']))
              } catch (err) {
                setDeleteError(isApiError(err) && err.code === 'NOT_FOUND' ? 'This server cannot delete shards (its API lacks the endpoint).' : `Delete failed: ${isApiError(err) ? `${err.code}: ${err.message}` : String(err)}`)
              }
            }}
          />
        </span>
      </div>
      {deleteError === null ? null : <p class="error" role="alert">{deleteError}</p>}
      {shard.error !== undefined ? <ErrorNote error={shard.error} what="the latest state" /> : null}
      <dl class="facts">
        <dt>Shard id</dt><dd><code>{s.shardId}</code></dd>
        <dt>Timestamp</dt><dd>{s.timestamp}</dd>
        <dt>Since</dt><dd data-testid="since">{formatFrontier(s.since)}</dd>
        <dt>Upper</dt><dd data-testid="upper">{formatFrontier(s.upper)}</dd>
        <dt>State version</dt><dd>{s.seqno}</dd>
        <dt>Size</dt><dd>{formatBytes(s.stats?.encodedBytes)} in {formatCount(s.stats?.parts)} parts, {formatCount(s.stats?.updates)} updates</dd>
        <dt>Backlog</dt><dd>{s.stats?.backlogBatches ?? '—'} spine batches · {formatBytes(s.stats?.backlogBytes)}</dd>
      </dl>

      <Section title="Spine">
        <SpineDrawing shard={s} />
        <SpineTable shard={s} />
      </Section>

      <Section title="Merges in progress">
        {(s.trace.merges ?? []).length === 0 ? (
          <p class="muted">{s.trace.merges === undefined ? 'Not reported by this server.' : 'None: no level is full.'}</p>
        ) : (
          <table>
            <thead><tr><th scope="col">Level</th><th scope="col">Spine id</th><th scope="col">Since</th><th scope="col" class="num">Remaining work</th></tr></thead>
            <tbody>
              {(s.trace.merges ?? []).map((m) => (
                <tr key={`${m.level}-${m.id}`}><td>{m.level}</td><td><code>{m.id}</code></td><td>{formatFrontier(m.since)}</td><td class="num">{formatCount(m.remainingWork)}</td></tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>

      <Section title="Leases">
        {s.leases === undefined ? (
          <p class="muted">Leases are not reported by this server.</p>
        ) : s.leases.length === 0 ? (
          <p class="muted">No leases held.</p>
        ) : (
          <table>
            <thead><tr><th scope="col">Lease</th><th scope="col">Instance</th><th scope="col">State version</th><th scope="col">Expires</th></tr></thead>
            <tbody>
              {s.leases.map((l) => (
                <tr key={l.id}><td><code>{l.id}</code></td><td>{l.instance ?? '—'}</td><td>{l.seqno ?? '—'}</td><td>{formatInstant(l.expiresAt)}</td></tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>

      <Section title="Recent compactions" actions={<a href={href(['compactions'], { shardId: s.shardId })}>all of this shard’s compactions</a>}>
        <ErrorNote error={jobs.error} what="compactions" />
        {jobs.data !== undefined && jobs.data.compactions.length === 0 ? <p class="muted">None.</p> : null}
        {jobs.data !== undefined && jobs.data.compactions.length > 0 ? (
          <table>
            <thead><tr><th scope="col">Compaction</th><th scope="col">Status</th><th scope="col">Range</th><th scope="col">Created</th><th scope="col">Progress</th></tr></thead>
            <tbody>
              {jobs.data.compactions.map((c) => (
                <tr key={c.id}>
                  <td><a href={href(['compactions', c.id])}>{shortId(c.id)}</a></td>
                  <td><StatusBadge compaction={c} /></td>
                  <td>{formatRange(c.desc)}</td>
                  <td>{formatInstant(c.createdAt)}</td>
                  <td><ListProgress compaction={c} label={`Progress of ${c.id}`} /></td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : null}
      </Section>
    </>
  )
}
