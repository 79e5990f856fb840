/**
 * FileJobStore beyond the contract: its document and archive, processes sharing it, and a process
 * killed with SIGKILL at random points.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomInt } from 'node:crypto'
import { once } from 'node:events'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { isDeepStrictEqual } from 'node:util'
import { mulberry32 } from '../../src/core/prng.js'
import { InvalidUsageError } from '../../src/location/errors.js'
import { bucketOf, JobArchive } from '../../src/location/file-job-archive.js'
import { FileConsensus } from '../../src/location/file-consensus.js'
import { FileJobStore } from '../../src/location/file-job-store.js'
import type { InstanceRecord, JobRecord, JobStore } from '../../src/location/job-store.js'
import { MemJobStore } from '../../src/location/mem-job-store.js'
import { applyOp, type JobOp } from './job-store-ops.js'
import { claimsAcrossProcesses } from './job-store-processes.js'
import { allJobs, finalJob, put, queuedJob } from './job-store-records.js'

const CRASHER = fileURLToPath(new URL('./file-job-store-crasher.ts', import.meta.url))
const CRASH_ROUNDS = 16

let root: string
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'compactd-filejobs-'))
})
after(async () => {
  await rm(root, { recursive: true, force: true })
})

/** The document's jobs, read straight from the store's FileConsensus. */
async function documentJobs(dir: string): Promise<JobRecord[]> {
  const consensus = new FileConsensus(join(dir, 'active'))
  const head = await consensus.head('jobs')
  await consensus.close()
  return head === null ? [] : (JSON.parse(new TextDecoder().decode(head.data)) as { jobs: JobRecord[] }).jobs
}

interface Snapshot {
  readonly jobs: JobRecord[]
  readonly instances: readonly InstanceRecord[]
}

const snapshot = async (s: JobStore): Promise<Snapshot> => ({ jobs: await allJobs(s, 16), instances: await s.instances(0) })

describe('FileJobStore', () => {
  claimsAcrossProcesses(async () => `file://${await mkdtemp(join(root, 'processes-'))}/consensus`)

  it('moves final jobs out of the document once it holds flushAfter of them; readers see every job throughout', async () => {
    const dir = join(root, 'flush')
    const s = new FileJobStore(dir, { flushAfter: 3 })
    const jobs = [await put(s, finalJob({ idempotencyKey: 'a' })), await put(s, finalJob()), await put(s, queuedJob())]
    assert.deepEqual((await documentJobs(dir)).length, 3, 'two final jobs stay in the document')
    jobs.push(await put(s, finalJob()))
    assert.deepEqual((await documentJobs(dir)).length, 4)
    jobs.push(await put(s, queuedJob()), await put(s, finalJob({ idempotencyKey: 'b' })))
    const doc = await documentJobs(dir)
    assert.deepEqual(
      doc.map((j) => j.id),
      [jobs[2]?.id, jobs[4]?.id, jobs[5]?.id],
      'the write after the third final job moved them out first',
    )
    const bucket = join(dir, 'done', bucketOf(jobs[0]?.id ?? ''))
    assert.deepEqual((await readdir(bucket)).sort(), [0, 1, 3].map((i) => `${jobs[i]?.id}.json`).sort())
    for (const job of jobs) assert.deepEqual(await s.get(job.id), job)
    assert.deepEqual(await allJobs(s), [...jobs].reverse())
    assert.deepEqual(await s.byIdempotencyKey('s-one', 'a'), jobs[0])
    assert.deepEqual(await s.byIdempotencyKey('s-one', 'b'), jobs[5])
    assert.equal((await s.insert(queuedJob({ idempotencyKey: 'a' }), 10)).kind, 'exists')
    await s.close()
  })

  it('parses an unchanged document once for lookups, hands out copies, and sees another instance’s change', async () => {
    const dir = join(root, 'parsed-once')
    const s = new FileJobStore(dir)
    const other = new FileJobStore(dir)
    const job = await put(s, queuedJob({ data: { list: [1] } }))
    const first = (await s.get(job.id)) as JobRecord
    assert.deepEqual(first, job)
    // The version read is not parsed again: damaged in place (which never happens), it still answers.
    const versions = join(dir, 'active', Buffer.from('jobs').toString('hex'))
    const head = (await readdir(versions)).filter((n) => /^[0-9]{20}$/.test(n)).sort().at(-1) as string
    const bytes = await readFile(join(versions, head))
    await writeFile(join(versions, head), 'not json')
    const again = (await s.get(job.id)) as JobRecord
    assert.deepEqual(again, job)
    assert.deepEqual((await s.list({ limit: 10 })).jobs.map((j) => j.id), [job.id])
    await writeFile(join(versions, head), bytes)
    // Each caller has its own copy of the data.
    ;(again.data as { list: number[] }).list.push(2)
    assert.deepEqual(((await s.get(job.id)) as JobRecord).data, { list: [1] })
    const claimed = await other.claim('elsewhere', 2_000, 60_000)
    assert.equal(claimed?.id, job.id)
    const after = await s.get(job.id)
    assert.deepEqual({ status: after?.status, owner: after?.owner }, { status: 'running', owner: 'elsewhere' })
    await s.close()
    await other.close()
  })

  it('a purged job stays purged when a stale flusher archives it again, and its id is never taken again', async () => {
    const dir = join(root, 'tombstones')
    const s = new FileJobStore(dir, { flushAfter: 1 })
    const job = await put(s, finalJob({ idempotencyKey: 'k', finishedAt: 100 }))
    await put(s, finalJob({ finishedAt: 5_000 }))
    assert.equal(await s.purge(1_000), 1)
    // A flusher that read the document before the job moved out, writing it now.
    await new JobArchive(dir).put([job])
    assert.equal(await s.get(job.id), null)
    assert.equal(await s.byIdempotencyKey('s-one', 'k'), null)
    assert.equal((await allJobs(s)).length, 1)
    assert.equal(await s.purge(1_000), 0)
    await assert.rejects(s.insert({ ...job }, 10), InvalidUsageError)
    const again = await put(s, queuedJob({ idempotencyKey: 'k' }))
    assert.deepEqual(await s.byIdempotencyKey('s-one', 'k'), again)
    await s.close()
  })

  it('commits a burst of calls from one process in a few writes, each call answered as if alone', async () => {
    const dir = join(root, 'group')
    let writes = 0
    const s = new FileJobStore(dir, { flushAfter: 1_000, beforeWrite: (step) => void (step === 'document' && writes++) })
    const first = queuedJob({ idempotencyKey: 'k' })
    const twin = queuedJob({ idempotencyKey: 'k' })
    const others = Array.from({ length: 60 }, (_, i) => (i % 2 === 0 ? queuedJob() : finalJob()))
    const aborted = new AbortController()
    aborted.abort(new Error('the caller gave up'))
    const calls = [
      s.insert(first, 1_000),
      s.insert(twin, 1_000),
      ...others.map((j) => s.insert(j, 1_000)),
      s.insert(others[0]!, 1_000),
      s.insert(queuedJob(), 1_000, { signal: aborted.signal }),
    ]
    const settled = await Promise.allSettled(calls)
    // One write for the first call, which found the queue empty, and one for all that queued meanwhile.
    assert.ok(writes <= 2, `${writes} document writes for ${calls.length} calls`)
    assert.deepEqual(settled[0], { status: 'fulfilled', value: { kind: 'inserted', job: first } })
    assert.deepEqual(settled[1], { status: 'fulfilled', value: { kind: 'exists', job: first } }, 'the same key in the same group finds the first job')
    for (let i = 0; i < others.length; i++) assert.deepEqual(settled[2 + i], { status: 'fulfilled', value: { kind: 'inserted', job: others[i] } })
    const dup = settled[2 + others.length]!
    assert.ok(dup.status === 'rejected' && dup.reason instanceof InvalidUsageError, 'a step that throws fails its own call only')
    const gaveUp = settled[3 + others.length]!
    assert.ok(gaveUp.status === 'rejected' && (gaveUp.reason as Error).message === 'the caller gave up')
    assert.deepEqual(new Set((await documentJobs(dir)).map((j) => j.id)), new Set([first.id, ...others.map((j) => j.id)]))
    await s.close()
  })

  it('a call waiting behind a group commit leaves the queue as soon as its signal aborts, without waiting for the group', async () => {
    // A stopping compactor's claim behind a backlog of maintenance requests: before, the aborted
    // claim was only answered once the groups before it were written (28 s under load).
    const dir = join(root, 'abort-waiting')
    const s = new FileJobStore(dir, { flushAfter: 1_000 })
    const order: string[] = []
    const job = queuedJob()
    const inserting = s.insert(job, 10).finally(() => order.push('insert'))
    const stop = new AbortController()
    const claiming = s.claim('a', Date.now(), 60_000, { signal: stop.signal }).finally(() => order.push('claim'))
    await Promise.resolve()
    stop.abort(new Error('stopping'))
    await assert.rejects(claiming, /stopping/)
    assert.deepEqual(order, ['claim'], 'answered while the insert before it was still being written')
    assert.deepEqual(await inserting, { kind: 'inserted', job })
    assert.equal((await s.get(job.id))?.status, 'queued', 'the aborted claim took nothing')
    assert.equal((await s.claim('b', Date.now(), 60_000))?.owner, 'b', 'the queue goes on')
    await s.close()
  })

  it('refuses ids that are not plain file names; ignores temp files and names it did not write', async () => {
    const dir = join(root, 'names')
    const s = new FileJobStore(dir, { flushAfter: 1 })
    for (const id of ['', 'a/b', '../x', '.hidden', 'x'.repeat(201), 'ünï']) await assert.rejects(s.insert(queuedJob({ id }), 10), InvalidUsageError, JSON.stringify(id))
    const job = await put(s, finalJob({ idempotencyKey: 'k' }))
    await put(s, queuedJob())
    const bucket = join(dir, 'done', bucketOf(job.id))
    await writeFile(join(bucket, '.tmp-0123456789abcdef~'), 'half a write')
    await writeFile(join(bucket, 'notes.txt'), 'foreign')
    await mkdir(join(dir, 'done', 'not a bucket'), { recursive: true })
    await writeFile(join(dir, 'instances', 'foreign.json'), '{}').catch(async () => {
      await mkdir(join(dir, 'instances'))
      await writeFile(join(dir, 'instances', 'foreign.json'), '{}')
    })
    assert.equal((await allJobs(s)).length, 2)
    assert.deepEqual(await s.get(job.id), job)
    assert.deepEqual(await s.instances(0), [])
    assert.equal(await s.get('a/../b'), null)
    await s.close()
  })

  it('a document this version did not write is a determinate error, not a guess', async () => {
    const dir = join(root, 'future')
    const consensus = new FileConsensus(join(dir, 'active'))
    await consensus.compareAndSet('jobs', null, { seqno: 0, data: new TextEncoder().encode('{"v":2,"jobs":{}}') })
    await consensus.close()
    const s = new FileJobStore(dir)
    await assert.rejects(s.get('c1'), { name: 'LocationError', kind: 'determinate' })
    await assert.rejects(s.claim('i', 0, 1), { name: 'LocationError', kind: 'determinate' })
    await s.close()
  })

  it('survives SIGKILL at random points of a seeded workload: every acknowledged call is durable, the call in flight all or nothing', async (t) => {
    const seed = Number(process.env['JOB_STORE_CRASH_SEED'] ?? randomInt(2 ** 31))
    t.diagnostic(`seed ${seed} (JOB_STORE_CRASH_SEED=${seed} repeats the workloads and the even rounds' crash points; odd rounds' kills also depend on timing)`)
    const random = mulberry32(seed)
    const dir = join(root, 'crash')
    /** Every call that took effect, in order; `oracle` is a MemJobStore that made them all. */
    const log: JobOp[] = []
    let oracle = new MemJobStore()
    let nextId = 1
    let now = 10_000
    let killed = 0
    for (let round = 0; round < CRASH_ROUNDS; round++) {
      // Even rounds: the child kills itself before a write step the seed picks. Odd rounds: the
      // parent kills it a random while after a line the seed picks (anywhere inside a call).
      const killStep = round % 2 === 0 ? 1 + Math.floor(random() * 200) : 0
      const killAt = round % 2 === 0 ? 0 : 4 + Math.floor(random() * 150)
      const killDelayMs = random() * 20
      const child = spawn(process.execPath, ['--import', 'tsx', CRASHER, dir, String(seed + round), String(nextId), String(now), '120', String(killStep)], { stdio: ['ignore', 'pipe', 'inherit'] })
      const exit = once(child, 'exit')
      const done: Array<{ op: JobOp; result: unknown }> = []
      let inFlight: JobOp | null = null
      let lines = 0
      // NB: read to the end even after the kill: a call the child reported done before it died counts.
      for await (const line of createInterface({ input: child.stdout })) {
        if (++lines === killAt) setTimeout(() => child.kill('SIGKILL'), killDelayMs)
        if (line.startsWith('start ')) inFlight = JSON.parse(line.slice(6)) as JobOp
        else if (line.startsWith('done ') && inFlight !== null) {
          done.push({ op: inFlight, result: JSON.parse(line.slice(5)) as unknown })
          inFlight = null
        } else assert.fail(`round ${round}: unexpected line ${line}`)
      }
      const [code, signal] = await exit
      if (signal === 'SIGKILL') killed++
      else assert.equal(code, 0, `round ${round}: the child failed`)

      for (const [i, { op, result }] of done.entries()) {
        const want = JSON.parse(JSON.stringify(await applyOp(oracle, op)) ?? 'null') as unknown
        assert.deepEqual(result, want, `round ${round}, call ${i} (${op.op}): the file store and the oracle disagree`)
        log.push(op)
      }
      const s = new FileJobStore(dir, { flushAfter: 2 })
      let actual = await snapshot(s)
      if (inFlight !== null) {
        const without = await snapshot(oracle)
        const withIt = new MemJobStore()
        for (const op of [...log, inFlight]) await applyOp(withIt, op)
        const landed = await snapshot(withIt)
        if (!isDeepStrictEqual(actual, without)) {
          if (inFlight.op === 'purge' && !isDeepStrictEqual(actual, landed)) {
            // A purge cut short removed some of the jobs it would purge: finish it, then it landed.
            const cut = inFlight.before
            const missing = without.jobs.filter((j) => !actual.jobs.some((a) => a.id === j.id))
            assert.ok(missing.every((j) => j.finishedAt !== null && j.finishedAt < cut), `round ${round}: a purge cut short lost a job it should keep`)
            await s.purge(cut)
            actual = await snapshot(s)
          }
          assert.deepEqual(actual, landed, `round ${round}: after a kill during ${JSON.stringify(inFlight)} the store is neither before nor after it`)
          oracle = withIt
          log.push(inFlight)
        }
      }
      assert.deepEqual(actual, await snapshot(oracle), `round ${round}: the store after the kill is not what the acknowledged calls made`)
      await checkInvariants(s, oracle, log)
      await s.close()
      const inserted = log.concat(inFlight === null ? [] : [inFlight]).flatMap((op) => (op.op === 'insert' ? [Number(op.job.id.slice(1))] : []))
      nextId = Math.max(nextId, ...inserted) + 1
      now += 10 * lines + 10_000
    }
    assert.ok(killed >= CRASH_ROUNDS / 2, `only ${killed} of ${CRASH_ROUNDS} rounds were killed`)
    t.diagnostic(`${log.length} calls in ${CRASH_ROUNDS} rounds, ${killed} killed`)
  })
})

/** What every state must satisfy, checked through every read path of `s` against the oracle. */
async function checkInvariants(s: JobStore, oracle: JobStore, log: readonly JobOp[]): Promise<void> {
  const jobs = await allJobs(s, 5)
  const seen = new Set<string>()
  for (const j of jobs) {
    assert.deepEqual(await s.get(j.id), j)
    if (j.idempotencyKey !== null) {
      const key = `${j.shardId}/${j.idempotencyKey}`
      assert.ok(!seen.has(key), `two jobs hold ${key}`)
      seen.add(key)
    }
  }
  for (const op of log) {
    if (op.op !== 'insert' || op.job.idempotencyKey === null) continue
    assert.deepEqual(await s.byIdempotencyKey(op.job.shardId, op.job.idempotencyKey), await oracle.byIdempotencyKey(op.job.shardId, op.job.idempotencyKey))
  }
  assert.deepEqual(await s.active(), await oracle.active())
  for (const status of ['queued', 'running', 'succeeded'] as const) {
    assert.deepEqual((await s.list({ status, limit: 1_000 })).jobs, (await oracle.list({ status, limit: 1_000 })).jobs)
  }
  assert.deepEqual(await s.deadlinePassed(Number.MAX_SAFE_INTEGER, 1_000), await oracle.deadlinePassed(Number.MAX_SAFE_INTEGER, 1_000))
}
