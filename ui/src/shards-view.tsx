/** Shards: one page at a time, searchable by name, with size and backlog (merge work the spine holds). */
import { useState } from 'preact/hooks'
import { formatBytes, formatCount, formatFrontier } from '../../src/client/format.js'
import { useLoad } from './hooks.js'
import { href, navigate, type Route } from './router.js'
import { ErrorNote, Pager } from './widgets.js'

const PAGE = 50

export function ShardsView({ route }: { route: Route }) {
  const name = route.params.get('name') ?? ''
  const stack = (route.params.get('pages') ?? '').split(',').filter((c) => c !== '')
  const cursor = stack.at(-1)
  const page = useLoad((c) => c.listShards({ ...(name === '' ? {} : { namePrefix: name }), limit: PAGE, cursor }), [name, cursor])
  const [draft, setDraft] = useState(name)

  return (
    <>
      <h1>Shards</h1>
      <form
        class="toolbar"
        role="search"
        onSubmit={(e) => {
          e.preventDefault()
          navigate(href(['shards'], { name: draft.trim() }))
        }}
      >
        <label for="shard-search">Name</label>
        <input id="shard-search" type="search" value={draft} onInput={(e) => setDraft(e.currentTarget.value)} placeholder="search by name" />
        <button type="submit">Search</button>
      </form>
      <ErrorNote error={page.error} what="shards" />
      {page.data !== undefined && page.data.shards.length === 0 ? <p class="muted">No shards{name === '' ? '' : ` named like “${name}”`}.</p> : null}
      {page.data !== undefined && page.data.shards.length > 0 ? (
        <table class="shards">
          <thead>
            <tr>
              <th scope="col">Name</th><th scope="col">Shard</th><th scope="col">Since</th><th scope="col">Upper</th>
              <th scope="col" class="num">Spine batches</th><th scope="col" class="num">Updates</th><th scope="col" class="num">Size</th><th scope="col" class="num">Backlog</th>
            </tr>
          </thead>
          <tbody>
            {page.data.shards.map((s) => (
              <tr key={s.shardId}>
                <td><a href={href(['shards', s.shardId])}>{s.name === '' ? '(unnamed)' : s.name}</a></td>
                <td><code>{s.shardId}</code></td>
                <td>{formatFrontier(s.since)}</td>
                <td>{formatFrontier(s.upper)}</td>
                <td class="num">{formatCount(s.stats?.spineBatches)}</td>
                <td class="num">{formatCount(s.stats?.updates)}</td>
                <td class="num">{formatBytes(s.stats?.encodedBytes)}</td>
                <td class="num">{s.stats?.backlogBatches === undefined ? '—' : `${s.stats.backlogBatches} batches · ${formatBytes(s.stats.backlogBytes)}`}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <Pager stack={stack} next={page.data?.nextCursor} shown={page.data?.shards.length ?? 0} onPage={(s) => navigate(href(['shards'], { name, pages: s.join(',') }))} />
    </>
  )
}
