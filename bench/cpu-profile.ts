/**
 * Summaries of V8 `.cpuprofile` files (written by `node --cpu-prof`, one per thread): self and
 * inclusive time per function, for the "Where the time goes" notes of RESULTS.md.
 */
import { readdir, readFile } from 'node:fs/promises'
import { join, relative } from 'node:path'

interface ProfileNode {
  readonly id: number
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
  readonly children?: readonly number[]
}

interface Profile {
  readonly nodes: readonly ProfileNode[]
  readonly samples: readonly number[]
  readonly timeDeltas: readonly number[]
  readonly startTime: number
  readonly endTime: number
}

export interface FunctionTime {
  readonly name: string
  readonly selfMs: number
  readonly totalMs: number
}

export interface ProfileSummary {
  readonly file: string
  readonly totalMs: number
  /** Sampled time outside `(idle)`. */
  readonly busyMs: number
  readonly functions: readonly FunctionTime[]
}

function label(n: ProfileNode, root: string): string {
  const { functionName, url, lineNumber } = n.callFrame
  if (url === '') return functionName === '' ? '(anonymous)' : functionName
  const name = functionName === '' ? '(anonymous)' : functionName
  // NB: code run through tsx is transpiled without source maps in the profile: its line numbers mean nothing.
  if (url.startsWith('file://')) return `${name} ${relative(root, new URL(url).pathname).replace(/^node_modules\//, '')}`
  return `${name} ${url}:${lineNumber + 1}`
}

export async function summarizeProfile(file: string, root: string): Promise<ProfileSummary> {
  const p = JSON.parse(await readFile(file, 'utf8')) as Profile
  const byId = new Map(p.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const self = new Map<string, number>()
  const total = new Map<string, number>()
  let busy = 0
  let all = 0
  for (let i = 0; i < p.samples.length; i++) {
    const dt = (p.timeDeltas[i] ?? 0) / 1000
    all += dt
    const leaf = byId.get(p.samples[i] as number)
    if (leaf === undefined) continue
    const leafName = label(leaf, root)
    if (leafName === '(idle)') continue
    busy += dt
    self.set(leafName, (self.get(leafName) ?? 0) + dt)
    const seen = new Set<string>()
    for (let id: number | undefined = leaf.id, guard = 0; id !== undefined && guard < 10_000; id = parent.get(id), guard++) {
      const n = byId.get(id)
      if (n === undefined) break
      const name = label(n, root)
      if (seen.has(name)) continue
      seen.add(name)
      total.set(name, (total.get(name) ?? 0) + dt)
    }
  }
  const functions = [...total.entries()].map(([name, totalMs]) => ({ name, totalMs, selfMs: self.get(name) ?? 0 }))
  return { file, totalMs: all, busyMs: busy, functions }
}

/** Summaries of every profile in `dir` (one per thread, loader threads included), busiest first. */
export async function summarizeProfiles(dir: string, root: string): Promise<ProfileSummary[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(dir, f))
  const all = await Promise.all(files.map((f) => summarizeProfile(f, root)))
  return all.sort((a, b) => b.busyMs - a.busyMs)
}

/** Top functions by self time and by inclusive time, as text. */
export function formatProfile(s: ProfileSummary, top = 20): string {
  const pct = (ms: number): string => `${((100 * ms) / Math.max(1, s.busyMs)).toFixed(1)}%`
  const lines = [`${s.file}: ${(s.totalMs / 1000).toFixed(2)} s sampled, ${(s.busyMs / 1000).toFixed(2)} s busy`]
  lines.push('  self time:')
  for (const f of [...s.functions].sort((a, b) => b.selfMs - a.selfMs).slice(0, top)) lines.push(`    ${pct(f.selfMs).padStart(6)}  ${f.name}`)
  lines.push('  inclusive time:')
  for (const f of [...s.functions].filter((f) => !f.name.startsWith('(')).sort((a, b) => b.totalMs - a.totalMs).slice(0, top)) {
    lines.push(`    ${pct(f.totalMs).padStart(6)}  ${f.name}`)
  }
  return lines.join('\n')
}
