/**
 * FileJobStore: the JobStore in a directory, correct across processes on one machine and
 * crash-safe (every acknowledged write is fsynced). The embedded default (`file://` URLs).
 *
 * Layout under `root`:
 *   active/      a FileConsensus; its key `jobs` holds the document: every queued and running job
 *                and the final jobs not yet moved out (`{ "v": 1, "jobs": [...] }`, sorted by id)
 *   done/ idem/  the archive of finished jobs and their idempotency keys (file-job-archive.ts)
 *   instances/   `<sha256 of the instance id>.json`, each replaced atomically
 *
 * Every change of jobs is a pure step (job-transitions.ts) applied to the document by
 * compare-and-set, retried on a mismatch; FileConsensus makes that atomic across processes and
 * crash-safe, so each method's effect is all or nothing. The changes one process makes wait in a
 * queue and are committed in groups, one write per group (`#apply`): the document is rewritten
 * whole, so a burst of N calls would otherwise cost N rewrites, and N callers racing for each one.
 *
 * A flush moves final jobs out: it archives them (key entry, then job file, each fsynced), then
 * removes them from the document by compare-and-set. A mutating call flushes first once the document
 * holds `flushAfter` final jobs; `purge` flushes them all. NB: at every moment a job is in the
 * document or archived (or both, between a flush's two steps: then both copies are equal, as final
 * jobs never change), so readers read the document first, then the archive.
 *
 * NB (keys): `insert` reads the document, then looks the key up in the archive, then writes the
 * document expecting the version it read. A job leaves the document only after its key entry is
 * durable, so if the write lands, every job with that key that had left the document was in the
 * archive's index when the insert looked.
 *
 * Times are the caller's; only garbage collection (temp files, tombstones) reads the clock.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { SeqNo } from './consensus.js'
import { closedError, determinate, errorMessage, InvalidUsageError, LocationError, noSpace, type Abortable } from './errors.js'
import { checkJobId, JobArchive } from './file-job-archive.js'
import { FileConsensus } from './file-consensus.js'
import { fsyncCreated, fsyncDir, hasCode, isNoSpace, readdirOrEmpty } from './fs-util.js'
import { isFinalJobStatus, type FinalJobStatus, type InsertResult, type InstanceRecord, type JobFilter, type JobPage, type JobRecord, type JobStore } from './job-store.js'
import {
  checkInsertable,
  claimOldest,
  countStatus,
  deadlinePassedJobs,
  findJob,
  finishJob,
  insertJob,
  jobByKey,
  jsonCopy,
  releaseJob,
  renewJob,
  requestCancelJob,
  rescueExpired,
  storedJob,
  withoutFinal,
  type JobTable,
  type Step,
} from './job-transitions.js'

const DOC_KEY = 'jobs'
const DEFAULT_FLUSH_AFTER = 32
/** Document versions between truncations of the older ones. */
const TRUNCATE_EVERY = 64
/** Compare-and-set attempts of one group; each lost attempt means another process's write landed. */
const MAX_ATTEMPTS = 1000
/** Calls one write commits at most (the document is rewritten whole, so a group costs one rewrite). */
const MAX_GROUP = 256

export interface FileJobStoreOptions {
  /** Final jobs the document may hold before a mutating call moves them out; default 32 (≥ 1). */
  readonly flushAfter?: number
  /** Test hook: called with every file and directory the store reads (to bound a call's reads). */
  readonly onRead?: (path: string) => void
  /** Test hook: called before each step that changes files (to crash a process between any two). */
  readonly beforeWrite?: (step: string) => void
}

interface Doc {
  readonly seqno: SeqNo | null
  readonly jobs: JobTable
}

/** A call waiting for the group commit: its step, and how to answer it. */
interface Waiting {
  readonly op: string
  readonly opts: Abortable | undefined
  readonly step: (jobs: JobTable) => Step<unknown> | Promise<Step<unknown>>
  readonly resolve: (result: unknown) => void
  readonly reject: (err: unknown) => void
}

/** A record of the shared document as a caller may have it: its data a copy of its own. */
function own(job: JobRecord | null): JobRecord | null {
  return job === null ? null : Object.freeze({ ...job, data: jsonCopy(job.data) })
}

/** Rejects a waiting call whose caller gave up (its signal aborted); true if it did. */
function settleIfAborted(w: Waiting): boolean {
  if (w.opts?.signal?.aborted !== true) return false
  w.reject(w.opts.signal.reason)
  return true
}

export class FileJobStore implements JobStore {
  readonly #root: string
  readonly #consensus: FileConsensus
  readonly #archive: JobArchive
  readonly #instances: string
  readonly #flushAfter: number
  readonly #onRead: (path: string) => void
  readonly #beforeWrite: (step: string) => void
  readonly #listeners = new Set<() => void>()
  /**
   * The document as the last lookup read it. A version is never rewritten, so a lookup that finds
   * the same seqno takes it instead of parsing the version again: a parse costs ~3.5 ms of the event
   * loop with 1,000 jobs queued, and every lookup, listing and count reads the document. Its records
   * leave the store as copies (`own`): a caller may change what it is given.
   */
  #doc: Doc | null = null
  /** Calls that change the document, waiting for the group commit (`#apply`). */
  #waiting: Waiting[] = []
  #committing = false
  #closed = false

  /** `root` is created on the first write; a missing root reads as empty. */
  constructor(root: string, options: FileJobStoreOptions = {}) {
    this.#root = resolve(root)
    this.#onRead = options.onRead ?? (() => undefined)
    this.#beforeWrite = options.beforeWrite ?? (() => undefined)
    this.#consensus = new FileConsensus(join(this.#root, 'active'), { beforeLink: async () => this.#beforeWrite('document') })
    this.#archive = new JobArchive(this.#root, { onRead: this.#onRead, beforeWrite: this.#beforeWrite })
    this.#instances = join(this.#root, 'instances')
    this.#flushAfter = Math.max(1, options.flushAfter ?? DEFAULT_FLUSH_AFTER)
  }

  get root(): string {
    return this.#root
  }

  async insert(job: JobRecord, capacity: number, opts?: Abortable): Promise<InsertResult> {
    this.#check(opts)
    checkJobId(job.id)
    checkInsertable(job)
    const stored = storedJob(job)
    return this.#apply('insert', opts, async (jobs): Promise<Step<InsertResult>> => {
      if (findJob(jobs, job.id) !== null || (await this.#archive.used(job.id))) throw new InvalidUsageError(`job ${job.id} exists already`)
      if (job.idempotencyKey !== null && jobByKey(jobs, job.shardId, job.idempotencyKey) === null) {
        const earlier = await this.#archive.byKey(job.shardId, job.idempotencyKey)
        if (earlier !== null) return { jobs: null, result: { kind: 'exists', job: earlier } }
      }
      return insertJob(jobs, stored, capacity)
    })
  }

  async get(id: string, opts?: Abortable): Promise<JobRecord | null> {
    this.#check(opts)
    return this.#guard('get', opts, async () => own(findJob((await this.#read(true)).jobs, id)) ?? (await this.#archive.get(id)))
  }

  async byIdempotencyKey(shardId: string, idempotencyKey: string, opts?: Abortable): Promise<JobRecord | null> {
    this.#check(opts)
    return this.#guard('byIdempotencyKey', opts, async () => own(jobByKey((await this.#read(true)).jobs, shardId, idempotencyKey)) ?? (await this.#archive.byKey(shardId, idempotencyKey)))
  }

  async list(filter: JobFilter, opts?: Abortable): Promise<JobPage> {
    this.#check(opts)
    return this.#guard('list', opts, async () => {
      const doc = await this.#read(true)
      const page = await this.#archive.list(doc.jobs, filter)
      const shared = new Set(doc.jobs)
      return { ...page, jobs: page.jobs.map((j) => (shared.has(j) ? (own(j) as JobRecord) : j)) }
    })
  }

  async active(opts?: Abortable): Promise<{ readonly queued: number; readonly running: number }> {
    this.#check(opts)
    const { jobs } = await this.#guard('active', opts, () => this.#read(true))
    return { queued: countStatus(jobs, 'queued'), running: countStatus(jobs, 'running') }
  }

  async claim(owner: string, now: number, leaseMs: number, opts?: Abortable): Promise<JobRecord | null> {
    this.#check(opts)
    return this.#apply('claim', opts, (jobs) => claimOldest(jobs, owner, now, leaseMs))
  }

  async renew(id: string, token: number, now: number, leaseMs: number, data: unknown, opts?: Abortable): Promise<JobRecord | null> {
    this.#check(opts)
    const stored = jsonCopy(data)
    return this.#apply('renew', opts, (jobs) => renewJob(jobs, id, token, now, leaseMs, stored))
  }

  async finish(id: string, token: number | null, status: FinalJobStatus, data: unknown, now: number, opts?: Abortable): Promise<JobRecord | null> {
    this.#check(opts)
    const stored = jsonCopy(data)
    return this.#apply('finish', opts, (jobs) => finishJob(jobs, id, token, status, stored, now))
  }

  async requestCancel(id: string, now: number, opts?: Abortable): Promise<JobRecord | null> {
    this.#check(opts)
    return this.#apply('requestCancel', opts, (jobs) => requestCancelJob(jobs, id, now))
  }

  async release(id: string, token: number, now: number, opts?: Abortable): Promise<JobRecord | null> {
    this.#check(opts)
    return this.#apply('release', opts, (jobs) => releaseJob(jobs, id, token, now))
  }

  async rescue(now: number, opts?: Abortable): Promise<readonly JobRecord[]> {
    this.#check(opts)
    return this.#apply('rescue', opts, (jobs) => rescueExpired(jobs, now))
  }

  async deadlinePassed(now: number, limit: number, opts?: Abortable): Promise<readonly JobRecord[]> {
    this.#check(opts)
    return deadlinePassedJobs((await this.#guard('deadlinePassed', opts, () => this.#read(true))).jobs, now, limit).map((j) => own(j) as JobRecord)
  }

  /** Moves every final job out of the document, then purges the archive (see JobArchive.purge). */
  async purge(before: number, opts?: Abortable): Promise<number> {
    this.#check(opts)
    for (let attempt = 1; ; attempt++) {
      const doc = await this.#guard('purge', opts, () => this.#read())
      if (!doc.jobs.some((j) => isFinalJobStatus(j.status))) break
      if ((await this.#flush('purge', doc, opts)) !== null) break
      await this.#pause('purge', attempt, opts)
    }
    const purged = await this.#guard('purge', opts, () => this.#archive.purge(before))
    if (purged > 0) this.#notify()
    return purged
  }

  async heartbeat(instance: InstanceRecord, opts?: Abortable): Promise<void> {
    this.#check(opts)
    const record: InstanceRecord = {
      id: instance.id,
      startedAt: instance.startedAt,
      heartbeatAt: instance.heartbeatAt,
      version: instance.version,
      running: instance.running,
      ...(instance.stateFormats === undefined ? {} : { stateFormats: instance.stateFormats }),
    }
    await this.#guard('heartbeat', opts, async () => {
      const created = await mkdir(this.#instances, { recursive: true })
      await fsyncCreated(this.#instances, created)
      const tmp = join(this.#instances, `.tmp-${randomBytes(8).toString('hex')}~`)
      try {
        const handle = await open(tmp, 'wx')
        try {
          await handle.writeFile(JSON.stringify({ v: 1, instance: record }))
          await handle.sync()
        } finally {
          await handle.close()
        }
        this.#beforeWrite('heartbeat')
        await rename(tmp, this.#instancePath(instance.id))
      } catch (err) {
        await unlink(tmp).catch(() => undefined) // NB: a leftover temp file is never read
        throw err
      }
      await fsyncDir(this.#instances)
    })
  }

  async instances(since: number, opts?: Abortable): Promise<readonly InstanceRecord[]> {
    this.#check(opts)
    return this.#guard('instances', opts, async () => {
      this.#onRead(this.#instances)
      const out: InstanceRecord[] = []
      for (const name of await readdirOrEmpty(this.#instances)) {
        if (!/^[0-9a-f]{64}\.json$/.test(name)) continue
        const path = join(this.#instances, name)
        this.#onRead(path)
        const text = await readFile(path, 'utf8').catch((err: unknown) => {
          if (hasCode(err, 'ENOENT')) return null // it left meanwhile
          throw err
        })
        if (text === null) continue
        const instance = (JSON.parse(text) as { instance: InstanceRecord }).instance
        if (instance.heartbeatAt >= since) out.push(Object.freeze(instance))
      }
      return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    })
  }

  async leave(id: string, opts?: Abortable): Promise<void> {
    this.#check(opts)
    await this.#guard('leave', opts, async () => {
      try {
        this.#beforeWrite('leave')
        await unlink(this.#instancePath(id))
      } catch (err) {
        if (hasCode(err, 'ENOENT')) return
        throw err
      }
      await fsyncDir(this.#instances)
    })
  }

  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  async close(): Promise<void> {
    this.#closed = true
    this.#listeners.clear()
    await this.#consensus.close()
  }

  /**
   * Runs `step` on the document in a group commit: the calls of this process wait in one queue, and
   * each group of them is applied to the document in turn and written by one compare-and-set. So a
   * burst of calls (an append per shard queueing maintenance, say) costs one write per group, and
   * the calls of one process never race each other for the document; only other processes can.
   */
  #apply<T>(op: string, opts: Abortable | undefined, step: (jobs: JobTable) => Step<T> | Promise<Step<T>>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      // NB: a call still waiting behind other groups leaves the queue as soon as its caller gives
      // up (a stopping compactor's claim behind a backlog of maintenance requests); one in the group
      // being committed shares that commit's fate (`#commitGroup`).
      const signal = opts?.signal
      const leave = (): void => {
        const i = this.#waiting.indexOf(w)
        if (i >= 0 && settleIfAborted(w)) this.#waiting.splice(i, 1)
      }
      const settled = (): void => signal?.removeEventListener('abort', leave)
      const w: Waiting = {
        op,
        opts,
        step,
        resolve: (v) => (settled(), resolve(v as T)),
        reject: (e) => (settled(), reject(e)),
      }
      this.#waiting.push(w)
      signal?.addEventListener('abort', leave, { once: true })
      if (!this.#committing) void this.#commitWaiting()
    })
  }

  /**
   * Commits the waiting calls, a group at a time, until none waits. NB: the flag drops in the same
   * step as the loop's last look at the queue, so a call queued after it starts a new loop.
   */
  async #commitWaiting(): Promise<void> {
    this.#committing = true
    try {
      while (this.#waiting.length > 0) {
        const group = this.#waiting.splice(0, MAX_GROUP)
        // NB: #commitGroup settles each call itself; this only keeps a bug there from losing them.
        await this.#commitGroup(group).catch((err: unknown) => group.forEach((w) => w.reject(err)))
      }
    } finally {
      this.#committing = false
    }
  }

  /**
   * The compare-and-set loop of one group: reads the document (flushing it first when due), applies
   * each call's step in queue order to the table the previous one left, writes the result expecting
   * the version read, and on a mismatch starts again. Settles every call of the group.
   * NB: a step's result is only given once what it saw is durable: steps that ran before the first
   * change saw the stored document and are answered whatever the write does; the rest share the
   * write's fate (its error, or the next attempt, where their steps run again on the new document).
   */
  async #commitGroup(group: Waiting[]): Promise<void> {
    for (let attempt = 1; group.length > 0; attempt++) {
      group = group.filter((w) => !settleIfAborted(w))
      if (group.length === 0) return
      const op = group.length === 1 ? group[0]!.op : `${group[0]!.op} (one write for ${group.length} calls)`
      let doc: Doc | null
      try {
        doc = await this.#guard(op, undefined, () => this.#read())
        if (doc.jobs.filter((j) => isFinalJobStatus(j.status)).length >= this.#flushAfter) doc = await this.#flush(op, doc, undefined)
      } catch (err) {
        for (const w of group) w.reject(err)
        return
      }
      if (doc !== null) {
        const current = doc
        let jobs: JobTable = current.jobs
        const answered: Array<{ readonly w: Waiting; readonly result: unknown }> = []
        const pending: Array<{ readonly w: Waiting; readonly result: unknown }> = []
        for (const w of group) {
          try {
            const { jobs: after, result } = await this.#guard(w.op, w.opts, async () => w.step(jobs))
            if (after !== null) jobs = after
            ;(jobs === current.jobs ? answered : pending).push({ w, result })
          } catch (err) {
            // NB: a step that throws changed nothing; the ones after it run on the table before it.
            w.reject(err)
          }
        }
        for (const { w, result } of answered) w.resolve(result)
        if (pending.length === 0) return
        let committed: boolean
        try {
          committed = await this.#write(current, jobs, undefined)
        } catch (err) {
          for (const { w } of pending) w.reject(err)
          return
        }
        if (committed) {
          this.#notify()
          for (const { w, result } of pending) w.resolve(result)
          return
        }
        group = pending.map(({ w }) => w)
      }
      try {
        await this.#pause(op, attempt, undefined)
      } catch (err) {
        for (const w of group) w.reject(err)
        return
      }
    }
  }

  /** Archives the document's final jobs, then removes them from it; the document after, or null on a mismatch. */
  async #flush(op: string, doc: Doc, opts: Abortable | undefined): Promise<Doc | null> {
    const { kept, final } = withoutFinal(doc.jobs)
    await this.#guard(op, opts, () => this.#archive.put(final))
    try {
      return (await this.#write(doc, kept, opts)) ? { seqno: (doc.seqno ?? -1) + 1, jobs: kept } : null
    } catch (err) {
      // Either way every job is in the document or archived: the call itself changed nothing yet.
      if (err instanceof LocationError && err.kind === 'indeterminate') throw determinate(err.message, err)
      throw err
    }
  }

  /**
   * The document. `lookup`: the one lookups share (`#doc`), whose records must not leave the store
   * as they are; else a version of the caller's own (changes build their results from it).
   */
  async #read(lookup = false): Promise<Doc> {
    this.#onRead(join(this.#consensus.root, DOC_KEY))
    const head = await this.#consensus.head(DOC_KEY)
    if (head === null) return { seqno: null, jobs: [] }
    if (lookup && this.#doc !== null && this.#doc.seqno === head.seqno) return this.#doc
    const parsed = JSON.parse(new TextDecoder().decode(head.data)) as { v?: unknown; jobs?: JobRecord[] }
    if (parsed.v !== 1 || !Array.isArray(parsed.jobs)) throw determinate(`file job store ${this.#root}: the jobs document is not one this version of compactd wrote`)
    const doc = { seqno: head.seqno, jobs: parsed.jobs.map((j) => Object.freeze(j)) }
    if (lookup) this.#doc = doc
    return doc
  }

  /** Writes `jobs` as the version after `doc`'s; false on a mismatch. Errors are the consensus store's. */
  async #write(doc: Doc, jobs: JobTable, opts: Abortable | undefined): Promise<boolean> {
    const seqno = doc.seqno === null ? 0 : doc.seqno + 1
    const data = new TextEncoder().encode(JSON.stringify({ v: 1, jobs }))
    const res = await this.#consensus.compareAndSet(DOC_KEY, doc.seqno, { seqno, data }, opts)
    if (res.kind !== 'committed') return false
    if (seqno > 0 && seqno % TRUNCATE_EVERY === 0) {
      this.#beforeWrite('truncate')
      // Housekeeping after a committed write: a failure leaves old versions for the next truncation.
      await this.#consensus.truncate(DOC_KEY, seqno).catch(() => undefined)
    }
    return true
  }

  async #pause(op: string, attempt: number, opts: Abortable | undefined): Promise<void> {
    if (attempt >= MAX_ATTEMPTS) throw determinate(`file job store ${op}: the jobs document kept changing (${attempt} attempts)`)
    opts?.signal?.throwIfAborted()
    await new Promise((ok) => setTimeout(ok, Math.random() * Math.min(50, 2 ** attempt)))
  }

  #notify(): void {
    for (const l of this.#listeners) queueMicrotask(l)
  }

  #instancePath(id: string): string {
    return join(this.#instances, `${createHash('sha256').update(id).digest('hex')}.json`)
  }

  #check(opts: Abortable | undefined): void {
    if (this.#closed) throw closedError('file job store')
    opts?.signal?.throwIfAborted()
  }

  /** Runs a step that made no change visible yet: its filesystem failures are determinate (`noSpace` when the file system is full). */
  async #guard<T>(op: string, opts: Abortable | undefined, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      if (opts?.signal?.aborted) throw opts.signal.reason
      if (err instanceof LocationError || err instanceof InvalidUsageError) throw err
      if (isNoSpace(err)) throw noSpace(`file job store ${op}: no space left under ${this.#root}`, err)
      throw determinate(`file job store ${op}: ${errorMessage(err)}`, err)
    }
  }
}

