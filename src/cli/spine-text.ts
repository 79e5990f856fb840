/**
 * A shard's spine drawn in the terminal: one line per spine batch, oldest first, indented by level
 * into a staircase (the highest level, where the oldest and largest batches live, at the left),
 * with a bar for its bytes, its range, size and runs, and what state it is in (compact, backlog,
 * or under a merge in progress). The levels' merges follow.
 */
import { formatBytes, formatCount, formatFrontier } from '../client/format.js'
import { spineLayout, type SpineSource } from '../client/spine.js'

const BAR = 16

export function spineText(shard: SpineSource): string {
  const layout = spineLayout(shard)
  if (layout.columns === 0) return 'spine: empty (nothing written yet)'
  const boxes = layout.levels.flatMap((l) => l.boxes).sort((a, b) => a.column - b.column)
  const top = Math.max(...layout.levels.map((l) => l.level))
  const maxBytes = Math.max(1, ...boxes.map((b) => b.bytes))
  const bottom = Math.min(...layout.levels.map((l) => l.level))
  const idWidth = Math.max(...boxes.map((b) => b.id.length)) + 2 * (top - bottom)
  const lines = [`spine: ${layout.columns} batches on ${layout.levels.length} levels, ${formatBytes(layout.totalBytes)}, backlog ${formatBytes(layout.backlogBytes)} (oldest first)`]
  for (const b of boxes) {
    const indent = '  '.repeat(top - b.level)
    const filled = b.bytes === 0 ? 0 : Math.max(1, Math.round((b.bytes / maxBytes) * BAR))
    const bar = `${'█'.repeat(filled)}${'·'.repeat(BAR - filled)}`
    const state = b.merge !== null ? `merging ${b.merge.id}` : b.compact ? 'compact' : 'backlog'
    lines.push(
      `  L${String(b.level).padEnd(2)} ${`${indent}${b.id}`.padEnd(idWidth)}  ${bar}  ${formatFrontier(b.desc.lower)}..${formatFrontier(b.desc.upper)}  ${formatCount(b.len)} upd  ${formatBytes(b.bytes)}  ${b.hollow} batch${b.hollow === 1 ? '' : 'es'}/${b.runs} run${b.runs === 1 ? '' : 's'}  ${state}`,
    )
  }
  for (const l of layout.levels) {
    if (l.merge !== null) lines.push(`  merge in progress at L${l.level}: ${l.merge.id}, since ${formatFrontier(l.merge.since)}, ${formatCount(l.merge.remainingWork)} work left`)
  }
  return lines.join('\n')
}
