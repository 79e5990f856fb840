/**
 * The spine drawn: one row per level (highest, oldest data on top), each spine batch a box in its
 * column (oldest on the left), sized by its bytes, marked compact, backlog, or under a merge in
 * progress. A table below lists the same batches for readers that cannot see the drawing.
 */
import { formatBytes, formatCount, formatFrontier, formatRange } from '../../src/client/format.js'
import { spineLayout, type SpineBox, type SpineSource } from '../../src/client/spine.js'

export function SpineDrawing({ shard }: { shard: SpineSource }) {
  const layout = spineLayout(shard)
  if (layout.columns === 0) return <p class="muted">The spine is empty: nothing written yet.</p>
  const maxBytes = Math.max(1, ...layout.levels.flatMap((l) => l.boxes.map((b) => b.bytes)))
  return (
    <figure class="spine" aria-label="Spine drawing">
      <div class="spine-grid" data-testid="spine" ref={(el) => el?.style.setProperty('--columns', String(layout.columns))}>
        {layout.levels.map((level) => (
          <div class="spine-level" key={level.level} data-level={level.level}>
            <div class="spine-level-label">
              L{level.level}
              {level.merge !== null ? <span class="merge-tag" title={`merge ${level.merge.id} in progress`}>merging · {formatCount(level.merge.remainingWork)} work left</span> : null}
            </div>
            {level.boxes.map((b) => (
              <Box key={b.id} box={b} scale={b.bytes / maxBytes} />
            ))}
          </div>
        ))}
      </div>
      <figcaption class="muted">
        {layout.columns} spine batches on {layout.levels.length} levels · {formatBytes(layout.totalBytes)} · backlog {formatBytes(layout.backlogBytes)}. Oldest on the left; boxes grow with size.
      </figcaption>
    </figure>
  )
}

function Box({ box, scale }: { box: SpineBox; scale: number }) {
  const kind = box.merge !== null ? 'merging' : box.compact ? 'compact' : 'backlog'
  return (
    <div
      class={`spine-box spine-${kind}`}
      data-spine-id={box.id}
      ref={(el) => {
        el?.style.setProperty('grid-column', String(box.column + 2))
        el?.style.setProperty('--fill', (0.25 + 0.75 * Math.sqrt(scale)).toFixed(3))
      }}
    >
      <div class="spine-box-id">{box.id}</div>
      <div>{formatRange(box.desc)}</div>
      <div>{formatCount(box.len)} upd · {formatBytes(box.bytes)}</div>
      <div>{box.hollow} batch{box.hollow === 1 ? '' : 'es'} · {box.runs} run{box.runs === 1 ? '' : 's'}</div>
      <div class="spine-box-kind">{kind}</div>
    </div>
  )
}

export function SpineTable({ shard }: { shard: SpineSource }) {
  const layout = spineLayout(shard)
  const boxes = layout.levels.flatMap((l) => l.boxes).sort((a, b) => a.column - b.column)
  return (
    <table class="spine-table">
      <caption>Spine batches, oldest first</caption>
      <thead>
        <tr>
          <th scope="col">Spine id</th><th scope="col">Level</th><th scope="col">Lower</th><th scope="col">Upper</th><th scope="col">Since</th>
          <th scope="col" class="num">Updates</th><th scope="col" class="num">Size</th><th scope="col" class="num">Batches</th><th scope="col" class="num">Parts</th><th scope="col" class="num">Runs</th><th scope="col">State</th>
        </tr>
      </thead>
      <tbody>
        {boxes.map((b) => (
          <tr key={b.id}>
            <td><code>{b.id}</code></td>
            <td>{b.level}</td>
            <td>{formatFrontier(b.desc.lower)}</td>
            <td>{formatFrontier(b.desc.upper)}</td>
            <td>{formatFrontier(b.desc.since)}</td>
            <td class="num">{formatCount(b.len)}</td>
            <td class="num">{formatBytes(b.bytes)}</td>
            <td class="num">{b.hollow}</td>
            <td class="num">{b.parts}</td>
            <td class="num">{b.runs}</td>
            <td>{b.merge !== null ? `merging (${b.merge.id})` : b.compact ? 'compact' : 'backlog'}</td>
          </tr>
        ))}
      </tbody>
    </table>
  )
}
