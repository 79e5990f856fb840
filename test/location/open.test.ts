import assert from 'node:assert/strict'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { describe, it } from 'node:test'
import { FileBlob } from '../../src/location/file-blob.js'
import { FileConsensus } from '../../src/location/file-consensus.js'
import { FileJobStore } from '../../src/location/file-job-store.js'
import { MemBlob } from '../../src/location/mem-blob.js'
import { MemConsensus } from '../../src/location/mem-consensus.js'
import { MemJobStore } from '../../src/location/mem-job-store.js'
import { describeUrl, openBlob, openConsensus, openJobStore } from '../../src/location/open.js'
import { queuedJob } from './job-store-records.js'
import { S3Blob } from '../../src/location/s3-blob.js'

/** A port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok))
  const address = server.address()
  await new Promise<void>((ok) => server.close(() => ok()))
  assert.ok(address !== null && typeof address === 'object')
  return address.port
}

/** Asserts `promise` rejects with a one-line Error naming `url` (as redacted) and matching `rule`. */
async function rejectsNaming(promise: Promise<unknown>, url: string, rule: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof Error)
    assert.ok(err.message.includes(describeUrl(url)), `"${err.message}" names ${describeUrl(url)}`)
    assert.match(err.message, rule)
    assert.ok(!err.message.includes('\n'), 'one line')
    return true
  })
}

describe('openBlob', () => {
  it('opens mem://, file:///abs, file://./relative and s3:// stores', async () => {
    for (const url of ['mem://', 'mem:///']) assert.ok((await openBlob(url)) instanceof MemBlob)
    const abs = await openBlob('file:///var/tmp/compactd%20x/blob')
    assert.ok(abs instanceof FileBlob)
    assert.equal(abs.root, '/var/tmp/compactd x/blob')
    const rel = await openBlob('file://./data/blob', { baseDir: '/srv/app' })
    assert.ok(rel instanceof FileBlob)
    assert.equal(rel.root, '/srv/app/data/blob')
    assert.equal(((await openBlob('file://../up', { baseDir: '/srv/app' })) as FileBlob).root, '/srv/up')
    assert.equal(((await openBlob('file://./data')) as FileBlob).root, resolve(process.cwd(), 'data'))
    assert.equal(((await openBlob('file://localhost/srv/blob')) as FileBlob).root, '/srv/blob')
    const s3 = await openBlob('s3://my-bucket/some/prefix?endpoint=http://127.0.0.1:9000&region=eu-west-1&forcePathStyle=true')
    assert.ok(s3 instanceof S3Blob)
    await s3.close()
    const plain = await openBlob('s3://my-bucket')
    assert.ok(plain instanceof S3Blob)
    await plain.close()
  })

  it('refuses unknown schemes and malformed URLs, naming the URL and the rule', async () => {
    const cases: Array<[string, RegExp]> = [
      ['', /unknown scheme/],
      ['not a url', /unknown scheme/],
      ['ftp://host/x', /unknown scheme "ftp"/],
      ['postgres://h/db', /unknown scheme "postgres"/],
      ['mem://named', /mem:\/\/ URL takes no/],
      ['file://', /file:\/\/\/abs\/path/],
      ['file://host/path', /host is not allowed/],
      ['file:///x?y=1', /no query/],
      ['file:///bad%zz', /%-escape/],
      ['s3://', /bucket "" is not a valid/],
      ['s3://a', /not a valid S3 bucket/],
      ['s3://bucket?foo=1', /unknown parameter "foo"/],
      ['s3://bucket?forcePathStyle=maybe', /forcePathStyle must be true or false/],
      ['s3://bucket?endpoint=nope', /endpoint "nope" is not a URL/],
      ['s3://bucket?endpoint=ftp://x', /must be http/],
      ['s3://key:secret@bucket/x', /no credentials/],
    ]
    for (const [url, rule] of cases) await rejectsNaming(openBlob(url), url, rule)
    await assert.rejects(openBlob('s3://key:secret@bucket/x'), (err: Error) => !err.message.includes('secret'))
  })
})

describe('openConsensus', () => {
  it('opens mem:// and file:// stores', async () => {
    assert.ok((await openConsensus('mem://')) instanceof MemConsensus)
    const file = await openConsensus('file://./data/consensus', { baseDir: '/srv/app' })
    assert.ok(file instanceof FileConsensus)
    assert.equal(file.root, '/srv/app/data/consensus')
  })

  it('refuses unknown schemes, and says an unreachable database cannot be opened without showing its password', async () => {
    await rejectsNaming(openConsensus('s3://bucket'), 's3://bucket', /unknown scheme "s3"/)
    await rejectsNaming(openConsensus('postgres://u:p@h:99999/db'), 'postgres://u:p@h:99999/db', /not a valid postgres/)
    const url = `postgresql://compactd:hunter2@127.0.0.1:${await closedPort()}/db`
    await rejectsNaming(openConsensus(url), url, /cannot be opened: .*ECONNREFUSED|cannot be opened: .*connect/)
    await assert.rejects(openConsensus(url), (err: Error) => !err.message.includes('hunter2') && err.message.includes('compactd:***@'))
  })
})

describe('openJobStore', () => {
  it('opens the job store beside the consensus store: mem://, and file:// in <consensus root>/jobs', async () => {
    const mem = await openJobStore('mem://')
    assert.ok(mem instanceof MemJobStore)
    assert.notEqual(await openJobStore('mem://'), mem, 'each mem:// store is its own')
    const abs = await openJobStore('file:///var/tmp/compactd%20x/consensus')
    assert.ok(abs instanceof FileJobStore)
    assert.equal(abs.root, '/var/tmp/compactd x/consensus/jobs')
    const rel = await openJobStore('file://./data/consensus', { baseDir: '/srv/app' })
    assert.equal((rel as FileJobStore).root, '/srv/app/data/consensus/jobs')
  })

  it('a file job store shares the consensus root without ever looking like a consensus key', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'compactd-open-'))
    try {
      const url = `file://${dir}/consensus`
      const consensus = await openConsensus(url)
      const jobs = await openJobStore(url)
      await jobs.insert(queuedJob(), 10)
      await jobs.heartbeat({ id: 'i-1', startedAt: 0, heartbeatAt: 0, version: 'v', running: 0 })
      assert.deepEqual(await consensus.list(), [])
      await consensus.compareAndSet('k', null, { seqno: 0, data: new Uint8Array([1]) })
      assert.deepEqual(await consensus.list(), ['k'])
      assert.deepEqual((await readdir(join(dir, 'consensus'))).sort(), ['6b', 'jobs'])
      assert.equal((await jobs.active()).queued, 1)
      await jobs.close()
      await consensus.close()
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('refuses what openConsensus refuses, naming the URL; an unreachable database cannot be opened', async () => {
    await rejectsNaming(openJobStore('s3://bucket'), 's3://bucket', /unknown scheme "s3"/)
    await rejectsNaming(openJobStore('mem://x'), 'mem://x', /mem:\/\/ URL takes no/)
    await rejectsNaming(openJobStore('file://host/x'), 'file://host/x', /host is not allowed/)
    await rejectsNaming(openJobStore('postgres://u:p@h:99999/db'), 'postgres://u:p@h:99999/db', /not a valid postgres/)
    const url = `postgres://compactd:hunter2@127.0.0.1:${await closedPort()}/db`
    await rejectsNaming(openJobStore(url), url, /^job store URL .*cannot be opened/)
    await assert.rejects(openJobStore(url), (err: Error) => !err.message.includes('hunter2'))
  })
})

describe('describeUrl', () => {
  it('redacts passwords in the authority and in the query, and nothing else', () => {
    assert.equal(describeUrl('postgres://user:secret@db.example:5432/compactd'), 'postgres://user:***@db.example:5432/compactd')
    assert.equal(describeUrl('postgres://db.example/compactd?password=secret&sslmode=require'), 'postgres://db.example/compactd?password=***&sslmode=require')
    assert.equal(describeUrl('postgres://user@db.example/compactd'), 'postgres://user@db.example/compactd')
    assert.equal(describeUrl('s3://bucket/prefix?region=eu-west-1'), 's3://bucket/prefix?region=eu-west-1')
    assert.equal(describeUrl('mem://'), 'mem://')
    assert.ok(!describeUrl('postgres://u:p@h:99999/db').includes(':p@'))
    assert.ok(!describeUrl('postgres://u:sec ret@h/db').includes('sec'))
  })
})
