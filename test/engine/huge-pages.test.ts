/**
 * Huge pages for malloc'd memory (engine/huge-pages.ts): the environment that asks for them, that
 * every way of starting compactd sets it (npm start, the image), and that it works: a process
 * started with it gets its large buffers in huge pages, one started without does not (where the
 * kernel gives them only on request; elsewhere that half says why it cannot run).
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { promisify } from 'node:util'
import { HUGE_PAGES_TUNABLE, hugePagesRequested, withHugePages } from '../../src/engine/huge-pages.js'

const ROOT = join(import.meta.dirname, '..', '..')

/** The kernel's transparent huge page mode (`always`, `madvise`, `never`), or null where there is none. */
function thpMode(): string | null {
  try {
    return /\[(\w+)\]/.exec(readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8'))?.[1] ?? null
  } catch {
    return null
  }
}

/** KiB of huge pages a fresh Node process maps for a 64 MiB buffer it touches, started with `env`. */
async function hugeKiB(env: Record<string, string | undefined>): Promise<number> {
  const script = `
    const b = new Uint8Array(64 << 20)
    for (let i = 0; i < b.length; i += 4096) b[i] = 1
    const m = /AnonHugePages:\\s+(\\d+) kB/.exec(require('node:fs').readFileSync('/proc/self/smaps_rollup', 'utf8'))
    process.stdout.write(m === null ? '-1' : m[1])`
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], { env, timeout: 30_000 })
  return Number(stdout)
}

describe('huge pages for malloc', () => {
  it('adds the tunable to GLIBC_TUNABLES, after what is there, once', () => {
    assert.equal(withHugePages({}).GLIBC_TUNABLES, HUGE_PAGES_TUNABLE)
    assert.equal(withHugePages({ GLIBC_TUNABLES: '' }).GLIBC_TUNABLES, HUGE_PAGES_TUNABLE)
    assert.equal(withHugePages({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' }).GLIBC_TUNABLES, `glibc.malloc.arena_max=2:${HUGE_PAGES_TUNABLE}`)
    const once = withHugePages({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2', HOME: '/h' })
    assert.deepEqual(withHugePages(once), once)
    assert.equal(once.HOME, '/h')
    assert.equal(hugePagesRequested(once), true)
    assert.equal(hugePagesRequested({ GLIBC_TUNABLES: 'glibc.malloc.hugetlb=0' }), false)
    assert.equal(hugePagesRequested({}), false)
  })

  it('is set by npm start and by the image', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }
    assert.match(pkg.scripts.start, /^GLIBC_TUNABLES=\$\{GLIBC_TUNABLES:\+\$GLIBC_TUNABLES:\}(\S+) exec node /)
    assert.equal(/^GLIBC_TUNABLES=\S+?\}(\S+) /.exec(pkg.scripts.start)?.[1], HUGE_PAGES_TUNABLE)
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')
    assert.match(dockerfile, new RegExp(`^\\s+GLIBC_TUNABLES=${HUGE_PAGES_TUNABLE.replaceAll('.', '\\.')} \\\\$`, 'm'))
  })

  it('gives a process started with it huge pages for its large buffers', async (t) => {
    const mode = thpMode()
    if (mode === null || mode === 'never' || process.platform !== 'linux') return t.skip(`transparent huge pages are ${mode ?? 'not available'} here`)
    assert.ok((await hugeKiB(withHugePages(process.env))) >= 32 * 1024, 'at least half of the buffer in huge pages')
    if (mode === 'madvise') assert.equal(await hugeKiB({ ...process.env, GLIBC_TUNABLES: '' }), 0, 'none without it')
  })
})
