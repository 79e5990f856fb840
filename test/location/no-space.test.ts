/**
 * The file adapters on a real full file system (a small tmpfs, filled to its last page): a write
 * that does not fit fails as a determinate LocationError saying `noSpace`, leaves no temp file and
 * takes no space, and what was written before reads as before; once space is freed, writes work
 * again with nothing to reset. Needs root to mount the tmpfs; skips, saying why, elsewhere.
 */
import assert from 'node:assert/strict'
import { readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { LocationError } from '../../src/location/errors.js'
import { FileBlob } from '../../src/location/file-blob.js'
import { FileConsensus } from '../../src/location/file-consensus.js'
import { FileJobStore } from '../../src/location/file-job-store.js'
import { filesUnder, fill, freeBytes, mountTmpfs } from '../support/tmpfs.js'
import { queuedJob } from './job-store-records.js'

const bytes = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff)

/** A fresh 4 MiB tmpfs for `t` (unmounted after it), or null when the test was skipped. */
async function disk(t: TestContext): Promise<string | null> {
  const tmpfs = await mountTmpfs(4)
  if (typeof tmpfs === 'string') {
    t.skip(`cannot mount a size-limited tmpfs: ${tmpfs}`)
    return null
  }
  t.after(() => tmpfs.close())
  return tmpfs.dir
}

/** Asserts `work` fails as a determinate, no-space LocationError. */
async function refusedForSpace(work: Promise<unknown>): Promise<void> {
  await assert.rejects(work, (err: unknown) => {
    assert.ok(err instanceof LocationError, String(err))
    assert.equal(err.kind, 'determinate')
    assert.equal(err.noSpace, true, err.message)
    assert.equal(err.permanent, false)
    assert.match(err.message, /no space left/)
    return true
  })
}

const temps = async (dir: string): Promise<string[]> => (await filesUnder(dir)).filter((f) => f.includes('.tmp-'))

describe('file stores on a full file system', () => {
  for (const directWrites of [true, false]) {
    it(`FileBlob (${directWrites ? 'O_DIRECT' : 'buffered'}): a set that does not fit is refused, leaves nothing, and works once space is back`, async (t) => {
      const dir = await disk(t)
      if (dir === null) return
      const blob = new FileBlob(join(dir, 'blob'), { directWrites })
      const kept = bytes(100_000, 1)
      await blob.set('s/w/p1', kept)
      const filler = join(dir, 'filler')
      await fill(filler, 64 << 10) // room for part of the next value only: it fails part-way
      const free = await freeBytes(dir)
      await refusedForSpace(blob.set('s/w/p2', bytes(1 << 20, 2)))
      assert.deepEqual(await temps(join(dir, 'blob')), [], 'the temp file of the refused set is gone')
      assert.equal(await freeBytes(dir), free, 'the refused set gave back what it took')
      assert.equal(await blob.get('s/w/p2'), null)
      assert.deepEqual(await blob.get('s/w/p1'), kept)
      await rm(filler)
      await blob.set('s/w/p2', bytes(1 << 20, 2))
      assert.deepEqual(await blob.get('s/w/p2'), bytes(1 << 20, 2))
    })
  }

  it('FileConsensus: a compareAndSet that does not fit is refused and the head stays whole', async (t) => {
    const dir = await disk(t)
    if (dir === null) return
    const consensus = new FileConsensus(join(dir, 'consensus'))
    const v0 = bytes(10_000, 3)
    assert.deepEqual(await consensus.compareAndSet('k', null, { seqno: 0, data: v0 }), { kind: 'committed' })
    const filler = join(dir, 'filler')
    await fill(filler, 8 << 10)
    const free = await freeBytes(dir)
    await refusedForSpace(consensus.compareAndSet('k', 0, { seqno: 1, data: bytes(200_000, 4) }))
    assert.deepEqual(await consensus.head('k'), { seqno: 0, data: v0 })
    assert.deepEqual(await temps(join(dir, 'consensus')), [])
    assert.equal(await freeBytes(dir), free)
    // Truncation only ever frees space: it works on a full disk.
    await fill(filler)
    await consensus.truncate('k', 0)
    await rm(filler)
    assert.deepEqual(await consensus.compareAndSet('k', 0, { seqno: 1, data: bytes(200_000, 4) }), { kind: 'committed' })
    assert.deepEqual(await consensus.head('k'), { seqno: 1, data: bytes(200_000, 4) })
  })

  it('FileJobStore: inserts and heartbeats are refused, every job stays readable, and it works once space is back', async (t) => {
    const dir = await disk(t)
    if (dir === null) return
    const store = new FileJobStore(join(dir, 'jobs'))
    const first = queuedJob()
    assert.equal((await store.insert(first, 100)).kind, 'inserted')
    const filler = join(dir, 'filler')
    await fill(filler)
    await refusedForSpace(store.insert(queuedJob(), 100))
    await refusedForSpace(store.heartbeat({ id: 'i1', startedAt: 1, heartbeatAt: 2, version: 'v', running: 0 }))
    await refusedForSpace(store.claim('i1', 2_000, 10_000))
    assert.deepEqual((await store.list({ limit: 10 })).jobs.map((j) => j.id), [first.id])
    assert.equal((await store.get(first.id))?.status, 'queued')
    assert.deepEqual((await readdir(join(dir, 'jobs', 'instances')).catch(() => [])).filter((n) => !n.startsWith('.tmp-')), [])
    assert.deepEqual(await temps(join(dir, 'jobs')), [])
    await rm(filler)
    assert.equal((await store.claim('i1', 2_000, 10_000))?.id, first.id)
    assert.equal((await store.insert(queuedJob(), 100)).kind, 'inserted')
    await store.close()
  })
})
