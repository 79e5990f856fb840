/**
 * The docs' examples run as written: every `sh example` block of README.md and docs/*.md, in
 * order, by bash, against a real server started as the docs say (`src/main.ts`, file stores under a
 * data dir), one server per file. Each block must end as it says (its last request's status, its
 * exit code), no request may get a 5xx, and each answer shown after a block must have the shape of
 * what the server answered (test/support/doc-examples.ts says how blocks are marked and compared).
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { examples, mismatches, parseShown, script, split, type Example } from './support/doc-examples.js'
import { ROOT, startMain } from './support/server-process.js'

const FILES = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)]

/** Runs `bash` on `text` in `cwd`, killed after `ms`. */
function bash(text: string, cwd: string, ms: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', text], { cwd, env: { ...process.env, COMPACTD_URL: '', COMPACTD_TOKEN: '' }, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c))
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c))
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), ms)
    child.once('error', reject)
    child.once('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

function read(dir: string, name: string): string {
  const path = join(dir, name)
  return existsSync(path) ? readFileSync(path, 'utf8') : ''
}

/** What is wrong with one example's run, as sentences. */
function problems(e: Example, ran: ReturnType<typeof split>[number], dir: string): string[] {
  if (ran === null) return ['it did not run to its end']
  const out: string[] = []
  const statuses: number[] = []
  const bodies: string[] = []
  for (let i = ran.first; i <= ran.last; i++) {
    statuses.push(Number(read(dir, `status.${i}`)))
    bodies.push(read(dir, `body.${i}`))
  }
  for (const [i, s] of statuses.entries()) if (!(s >= 100 && s < 500)) out.push(`request ${i + 1} of the block got ${s}: ${bodies[i]?.slice(0, 300)}`)
  const lastStatus = statuses.at(-1)
  if (e.status !== null && lastStatus !== e.status) out.push(`its last request got ${lastStatus}, not ${e.status}: ${bodies.at(-1)?.slice(0, 300)}`)
  if (e.status === null && lastStatus !== undefined && !(lastStatus >= 200 && lastStatus < 300)) out.push(`its last request got ${lastStatus}: ${bodies.at(-1)?.slice(0, 300)}`)
  if (ran.exit !== e.exit) out.push(`it exited ${ran.exit}, not ${e.exit}; output: ${ran.stdout.slice(0, 300)}`)
  const candidates: unknown[] = []
  for (const text of [...bodies, ran.stdout, ...ran.stdout.split('\n')]) {
    try {
      candidates.push(JSON.parse(text))
    } catch {
      // not JSON
    }
  }
  for (const shown of e.answers) {
    let want: unknown
    try {
      want = parseShown(shown)
    } catch (err) {
      out.push(`the answer shown is not JSON once its cuts are read (${(err as Error).message}): ${shown.slice(0, 120)}`)
      continue
    }
    const diffs = candidates.map((c) => mismatches(want, c))
    if (diffs.every((d) => d.length > 0)) {
      const best = diffs.length === 0 ? ['nothing it printed or was answered is JSON'] : diffs.reduce((a, b) => (b.length < a.length ? b : a))
      out.push(`no answer has the shape shown (${shown.slice(0, 80).replace(/\s+/g, ' ')}…):\n    ${best.join('\n    ')}`)
    }
  }
  return out
}

describe('the docs examples, run against a real server', { timeout: 120_000 }, () => {
  for (const file of FILES) {
    const list = examples(file, readFileSync(join(ROOT, file), 'utf8'))
    if (list.length === 0) continue
    it(`${file}: ${list.length} examples`, async (t) => {
      const home = mkdtempSync(join(tmpdir(), 'compactd-docs-'))
      const cwd = join(home, 'cwd')
      const dir = join(home, 'requests')
      for (const d of [cwd, dir]) mkdirSync(d)
      const server = startMain(['--port', '0', '--data-dir', join(home, 'data'), '--workers', '1'], { env: { HOME: home } })
      t.after(() => {
        server.kill()
        rmSync(home, { recursive: true, force: true })
      })
      const listening = await server.logLine('compactd listening')
      const port = Number(new URL(String(listening.address)).port)
      const run = await bash(script(list, { dir, port, bin: join(ROOT, 'bin', 'compactctl.js') }), cwd, 90_000)
      const ran = split(run.stdout, list.length)
      const report = list.flatMap((e, i) => problems(e, ran[i] ?? null, dir).map((p) => `${e.file}:${e.line}: ${p}`))
      assert.ok(report.length === 0, `${report.join('\n')}\nbash stderr: ${run.stderr.slice(0, 2000)}`)
    })
  }
})

describe('the docs examples test itself', () => {
  it('finds the marked blocks and the answers shown after them', () => {
    const md = '```sh example status=201\nA\n```\ntext\n```json\n{"a":1}\n```\n```sh\nB\n```\n```json\n{}\n```\n```sh example exit=5\nC\n```\n'
    assert.deepEqual(
      examples('f.md', md).map((e) => [e.line, e.code, e.status, e.exit, e.answers]),
      [
        [1, 'A', 201, 0, ['{"a":1}']],
        [14, 'C', null, 5, []],
      ],
    )
  })

  it('compares shapes: cut strings, ids, timestamps, left-out fields and elements', () => {
    const shown = parseShown('{"id":"c31f5ac5a-…","key":"w7de27647-…/p3f3a44f9-…","at":"2026-12-06T14:14:47.148Z","b64":"QVJS…","n":[1,…],"o":{…},"x":1,…}')
    const actual = { id: 'c01a25255-d8a6-7260-90e2-094f91fbd888', key: 'w01a25255-3541-70f6-80f5-978ca3368488/pde17e100-c453-43e0-9263-5eb220de8024', at: '2027-01-01T00:00:00.000Z', b64: 'QVJST1cx', n: [1, 2, 3], o: { z: 1 }, x: 1, extra: true }
    assert.deepEqual(mismatches(shown, actual), [])
    assert.deepEqual(mismatches(shown, { ...actual, x: 2, n: [2], id: 's01a25255-d8a6-7260-90e2-094f91fbd888' }), ['$.id: "s01a25255-d8a6-7260-90e2-094f91fbd888" is not "c31f5ac5a-…"', '$.n[0]: 2, not 1', '$.x: 2, not 1'])
    assert.deepEqual(mismatches(parseShown('[1]'), [1, 2]), ['$: 2 elements, not 1'])
    assert.deepEqual(mismatches({ a: 1 }, {}), ['$: no field a'])
  })

  it('splits the output by example', () => {
    const out = 'x\n\x1ebegin 0 0\nhello\n\x1eend 0 0 2\n\n\x1ebegin 1 2\n\n\x1eend 1 3 3\n'
    assert.deepEqual(split(out, 3), [{ stdout: 'hello', first: 1, last: 2, exit: 0 }, { stdout: '', first: 3, last: 3, exit: 3 }, null])
  })
})
