/** The Blob contract against every adapter, plus each adapter's own rules. */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { constants } from 'node:fs'
import { open } from 'node:fs/promises'
import { DIRECT_ALIGN, DIRECT_STAGE_BYTES, markPageAligned, StagingBuffers } from '../../src/location/direct-io.js'
import { InvalidUsageError } from '../../src/location/errors.js'
import { FileBlob } from '../../src/location/file-blob.js'
import { MemBlob } from '../../src/location/mem-blob.js'
import { openBlob } from '../../src/location/open.js'
import { S3Blob } from '../../src/location/s3-blob.js'
import { startS3, S3_TEST_BUCKET, type S3Server } from '../support/s3.js'
import { BAD_KEYS, blobContract, collect, sameBytes } from './blob-contract.js'

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)

blobContract('mem', async () => {
  const blob = new MemBlob()
  return { open: async () => blob, destroy: async () => undefined }
})

blobContract('file', async () => {
  const root = await mkdtemp(join(tmpdir(), 'compactd-blob-'))
  return {
    open: async () => openBlob(`file://${root}/store`),
    destroy: () => rm(root, { recursive: true, force: true }),
  }
})

let s3: S3Server
before(async () => {
  s3 = await startS3()
})
after(async () => {
  await s3.stop()
})

blobContract('s3', async () => {
  const prefix = `t${randomBytes(6).toString('hex')}/store`
  return {
    open: async () => openBlob(s3.urlFor(prefix)),
    destroy: async () => {
      const blob = await openBlob(s3.urlFor(prefix))
      for await (const meta of blob.list('')) await blob.delete(meta.key)
      await blob.close()
    },
  }
})

describe('MemBlob', () => {
  it('refuses to overwrite a key with different bytes (a caller bug)', async () => {
    const blob = new MemBlob()
    await blob.set('k/1', bytes('one'))
    await assert.rejects(blob.set('k/1', bytes('two')), InvalidUsageError)
    await assert.rejects(blob.set('k/1', bytes('on')), InvalidUsageError)
    assert.deepEqual(await blob.get('k/1'), bytes('one'))
  })
})

describe('FileBlob', () => {
  let root: string
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'compactd-fileblob-'))
  })
  after(async () => {
    await rm(root, { recursive: true, force: true })
  })

  it('maps a key to a path under the root and leaves no temp file behind', async () => {
    const dir = join(root, 'layout')
    const blob = new FileBlob(dir)
    await blob.set('s1/w1/p1', bytes('x'))
    assert.deepEqual(await readdir(join(dir, 's1', 'w1')), ['p1'])
    await blob.close()
  })

  it('never touches anything outside its root for a malformed key', async () => {
    const outer = join(root, 'outer')
    const dir = join(outer, 'inner')
    await mkdir(dir, { recursive: true })
    await writeFile(join(outer, 'victim'), 'keep')
    const blob = new FileBlob(dir)
    for (const key of [...BAD_KEYS, '../victim', '../outer-new']) {
      await assert.rejects(blob.set(key, bytes('x')), InvalidUsageError)
      await assert.rejects(blob.delete(key), InvalidUsageError)
    }
    assert.deepEqual((await readdir(outer)).sort(), ['inner', 'victim'])
    assert.deepEqual(await readdir(dir), [])
    await blob.close()
  })

  it('ignores temp files and foreign names in listings and reads', async () => {
    const dir = join(root, 'temps')
    const blob = new FileBlob(dir)
    await blob.set('s1/w1/p1', bytes('x'))
    await writeFile(join(dir, 's1', 'w1', '.tmp-0123456789abcdef~'), 'half a write')
    await writeFile(join(dir, 's1', 'w1', 'has space'), 'not a key')
    assert.deepEqual(
      (await collect(blob.list(''))).map((m) => m.key),
      ['s1/w1/p1'],
    )
    await blob.close()
  })

  it('removes temp files a crash left once untouched for the given age, under the prefix only, and never a key', async () => {
    const dir = join(root, 'interrupted')
    const blob = new FileBlob(dir)
    await blob.set('s1/w1/p1', bytes('x'))
    await blob.set('s2/w1/p1', bytes('y'))
    const old = new Date(Date.now() - 3_600_000)
    const stale = join(dir, 's1', 'w1', '.tmp-0123456789abcdef~')
    const fresh = join(dir, 's1', 'w1', '.tmp-fedcba9876543210~')
    const elsewhere = join(dir, 's2', 'w1', '.tmp-00000000000000aa~')
    for (const path of [stale, fresh, elsewhere]) await writeFile(path, 'half a write')
    await utimes(stale, old, old)
    await utimes(elsewhere, old, old)
    // A name that only looks like a temp file is left alone.
    await writeFile(join(dir, 's1', 'w1', '.tmp-x~'), 'not ours')
    assert.equal(await blob.removeInterrupted('s1/', 60_000), 'half a write'.length)
    assert.deepEqual((await readdir(join(dir, 's1', 'w1'))).sort(), ['.tmp-fedcba9876543210~', '.tmp-x~', 'p1'])
    assert.deepEqual((await readdir(join(dir, 's2', 'w1'))).sort(), ['.tmp-00000000000000aa~', 'p1'])
    assert.equal(await blob.removeInterrupted('s1/', 60_000), 0)
    assert.deepEqual(await blob.get('s1/w1/p1'), bytes('x'))
    await blob.close()
  })

  it('removes the directories deletes leave empty, up to the root and no further', async () => {
    // Every compaction writes under a writer key of its own, and deleted shards' keys all go: kept,
    // their empty directories would grow without bound (and every GC listing walks them).
    const dir = join(root, 'prune')
    const blob = new FileBlob(dir)
    for (let w = 0; w < 40; w++) await blob.set(`s${w % 2}/w${w}/p1`, bytes('x'))
    await blob.set('s0/w0/p2', bytes('kept'))
    for (let w = 0; w < 40; w++) assert.equal(await blob.delete(`s${w % 2}/w${w}/p1`), 1)
    const dirs = (await readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isDirectory())
    assert.deepEqual(dirs.map((e) => join(e.parentPath, e.name).slice(dir.length + 1)).sort(), ['s0', join('s0', 'w0')])
    assert.equal(await blob.delete('s0/w0/p2'), 4)
    assert.deepEqual(await readdir(dir), [])
    // A temp file a crash left is the last entry of its directory: removing it removes them too.
    await mkdir(join(dir, 's2', 'w1'), { recursive: true })
    const stale = join(dir, 's2', 'w1', '.tmp-0123456789abcdef~')
    await writeFile(stale, 'half a write')
    const old = new Date(Date.now() - 3_600_000)
    await utimes(stale, old, old)
    assert.equal(await blob.removeInterrupted('', 60_000), 'half a write'.length)
    assert.deepEqual(await readdir(dir), [])
    await blob.close()
  })

  it('lands a set whose directory a concurrent delete removes', async () => {
    const blob = new FileBlob(join(root, 'prune-race'))
    for (let i = 0; i < 1000; i++) {
      await blob.set(`s1/w${i % 3}/a${i}`, bytes('a'))
      // The delete empties w<i%3> and removes it (and s1) while the set creates its temp file there.
      const [deleted] = await Promise.all([blob.delete(`s1/w${i % 3}/a${i}`), blob.set(`s1/w${i % 3}/b${i}`, bytes('b'))])
      assert.equal(deleted, 1)
      assert.deepEqual(await blob.get(`s1/w${i % 3}/b${i}`), bytes('b'), `set ${i}`)
      assert.equal(await blob.delete(`s1/w${i % 3}/b${i}`), 1)
    }
    await blob.close()
  })

  it('reports a key used both as a file and as a directory as InvalidUsageError', async () => {
    const blob = new FileBlob(join(root, 'conflict'))
    await blob.set('a/b', bytes('file'))
    await assert.rejects(blob.set('a/b/c', bytes('under a file')), InvalidUsageError)
    await blob.set('x/y/z', bytes('deep'))
    await assert.rejects(blob.set('x/y', bytes('over a dir')), InvalidUsageError)
    assert.equal(await blob.get('x/y'), null)
    assert.equal(await blob.delete('x/y'), null)
    assert.deepEqual(await blob.get('a/b'), bytes('file'))
    await blob.close()
  })

  it('writes with O_DIRECT where the file system allows it, and keeps doing so', async () => {
    const dir = join(root, 'direct')
    await mkdir(dir)
    // Whether this file system takes O_DIRECT at all, asked without the blob.
    let supported = constants.O_DIRECT !== undefined
    if (supported) {
      try {
        await (await open(join(dir, 'probe'), constants.O_WRONLY | constants.O_CREAT | constants.O_DIRECT)).close()
      } catch {
        supported = false
      }
      await rm(join(dir, 'probe'), { force: true })
    }
    const blob = new FileBlob(dir)
    const value = randomBytes(DIRECT_STAGE_BYTES + 4097)
    await blob.set('s1/w1/p1', value)
    await blob.set('s1/w1/p2', value.subarray(0, 100))
    assert.equal(blob.directWrites, supported)
    sameBytes(await blob.get('s1/w1/p1'), value)
    sameBytes(await blob.get('s1/w1/p2'), value.subarray(0, 100))
    assert.deepEqual(await readdir(join(dir, 's1', 'w1')), ['p1', 'p2'])
    await blob.close()
  })

  it('writes a value in page-aligned memory from where it lies, staging only its last partial block', async () => {
    const dir = join(root, 'in-place')
    await mkdir(dir)
    let staged = 0
    class CountingStaging extends StagingBuffers {
      override acquire(): Uint8Array {
        staged++
        return super.acquire()
      }
    }
    const blob = new FileBlob(dir, { staging: new CountingStaging() })
    const wasm = (globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number; maximum: number; shared: true }) => { buffer: SharedArrayBuffer } } }).WebAssembly
    const memory = (bytes: number): Uint8Array => {
      const pages = Math.ceil((bytes + DIRECT_ALIGN) / 65536)
      const buffer = new wasm.Memory({ initial: pages, maximum: pages, shared: true }).buffer
      markPageAligned(buffer)
      return new Uint8Array(buffer, DIRECT_ALIGN, bytes)
    }
    const whole = memory(DIRECT_STAGE_BYTES + 3 * DIRECT_ALIGN)
    whole.set(randomBytes(whole.byteLength))
    await blob.set('s1/w1/whole', whole)
    const direct = blob.directWrites
    assert.equal(staged, 0, 'whole blocks only: nothing staged')
    const tail = memory(2 * DIRECT_ALIGN + 77)
    tail.set(randomBytes(tail.byteLength))
    await blob.set('s1/w1/tail', tail)
    assert.equal(staged, direct ? 1 : 0, `only the last partial block staged (direct writes: ${direct})`)
    // A view off a page boundary of the same memory is staged whole.
    await blob.set('s1/w1/offset', tail.subarray(1))
    assert.equal(staged, direct ? 2 : 0)
    sameBytes(await blob.get('s1/w1/whole'), whole)
    sameBytes(await blob.get('s1/w1/tail'), tail)
    sameBytes(await blob.get('s1/w1/offset'), tail.subarray(1))
    await blob.close()
  })

  it('stages a value wrongly marked page-aligned, and keeps writing directly', async () => {
    const dir = join(root, 'wrong-mark')
    const blob = new FileBlob(dir)
    // Ordinary memory marked as if it started on a page boundary: at an odd offset from it, the
    // device refuses the first block whatever the allocator gave.
    const value = randomBytes(3 * DIRECT_ALIGN)
    const odd = new Uint8Array(new ArrayBuffer(value.byteLength + DIRECT_ALIGN), DIRECT_ALIGN, value.byteLength)
    markPageAligned(odd.buffer)
    odd.set(value)
    await blob.set('s1/w1/p1', odd)
    sameBytes(await blob.get('s1/w1/p1'), value)
    await blob.set('s1/w1/p2', value)
    sameBytes(await blob.get('s1/w1/p2'), value)
    const direct = blob.directWrites
    await blob.close()
    // Whether this file system takes direct writes at all decides it, not the wrong mark.
    const fresh = new FileBlob(join(root, 'wrong-mark-control'))
    await fresh.set('s1/w1/p1', value)
    assert.equal(direct, fresh.directWrites)
    await fresh.close()
  })

  it('falls back to buffered writes for good when direct I/O is refused, losing nothing', async () => {
    const dir = join(root, 'refused')
    let made = 0
    // A staging buffer at an odd address: every device refuses O_DIRECT from it (EINVAL).
    const staging = new StagingBuffers({ make: () => (made++, new Uint8Array(new ArrayBuffer(DIRECT_STAGE_BYTES + 8), 1, DIRECT_STAGE_BYTES)) })
    const blob = new FileBlob(dir, { staging })
    const value = randomBytes(3 * 4096 + 5)
    await blob.set('s1/w1/p1', value)
    assert.equal(blob.directWrites, false)
    await blob.set('s1/w1/p2', value)
    assert.ok(made <= 1, 'no second direct attempt')
    sameBytes(await blob.get('s1/w1/p1'), value)
    sameBytes(await blob.get('s1/w1/p2'), value)
    assert.deepEqual(await readdir(join(dir, 's1', 'w1')), ['p1', 'p2'], 'no temp file left behind')
    await blob.close()
  })

  it('writes through the page cache when asked to', async () => {
    const blob = new FileBlob(join(root, 'buffered'), { directWrites: false, staging: new StagingBuffers({ make: () => assert.fail('staged a buffered write') }) })
    await blob.set('s1/w1/p1', bytes('buffered'))
    assert.deepEqual(await blob.get('s1/w1/p1'), bytes('buffered'))
    assert.equal(blob.directWrites, false)
    await blob.close()
  })

  it('reads a missing root as empty', async () => {
    const blob = new FileBlob(join(root, 'never-created'))
    assert.equal(await blob.get('a/b'), null)
    assert.deepEqual(await collect(blob.list('')), [])
    await blob.close()
  })
})

describe('S3Blob', () => {
  it('pages through listings', async () => {
    const prefix = `pages${randomBytes(4).toString('hex')}/`
    const blob = new S3Blob({ bucket: S3_TEST_BUCKET, prefix, endpoint: s3.endpoint, forcePathStyle: true, listPageSize: 2 })
    const keys = ['k/1', 'k/2', 'k/3', 'k/4', 'k/5']
    for (const key of keys) await blob.set(key, bytes(key))
    assert.deepEqual(
      (await collect(blob.list('k/'))).map((m) => m.key),
      keys,
    )
    await blob.close()
  })

  it('a missing bucket is a determinate error, not an absent key', async () => {
    const blob = new S3Blob({ bucket: 'no-such-bucket', endpoint: s3.endpoint, forcePathStyle: true })
    await assert.rejects(blob.get('k/1'), { name: 'LocationError', kind: 'determinate' })
    await assert.rejects(blob.set('k/1', bytes('x')), { name: 'LocationError', kind: 'determinate' })
    await blob.close()
  })

  it('a server that does not answer is determinate for reads and, for a write that was never sent, too', async () => {
    const closed = await startS3()
    const endpoint = closed.endpoint
    await closed.stop()
    const blob = new S3Blob({ bucket: S3_TEST_BUCKET, endpoint, forcePathStyle: true })
    await assert.rejects(blob.get('k/1'), { name: 'LocationError', kind: 'determinate' })
    await assert.rejects(blob.set('k/1', bytes('x')), { name: 'LocationError', kind: 'determinate' })
    await blob.close()
  })
})
