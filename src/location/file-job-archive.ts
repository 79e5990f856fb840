/**
 * JobArchive: the finished jobs `FileJobStore` has moved out of its document, one file each, and
 * the index that keeps their idempotency keys unique. Files only: the document is the store's.
 *
 * Layout under `root`:
 *   done/<bucket>/<id>.json   a finished job (`{ "v": 1, "job": … }`), immutable once written;
 *                             `<bucket>` is the id's first 8 characters, so buckets sort like the
 *                             ids they hold (time-ordered ids fill one bucket per 17.5 minutes)
 *                             and a page of the newest jobs reads only the newest buckets
 *   idem/<h>/<id>             an empty file: job `id` has the idempotency key hashed to `h`
 *                             (SHA-256 of the shard id and the key)
 *
 * NB (no resurrection): a purged job's file is replaced by a tombstone (a dangling symlink, in one
 * rename: the name is never free), because a flusher that read the document before the job was
 * moved out may still be about to write it, and its exclusive `link` must then fail. Tombstones
 * are deleted after TOMBSTONE_MS; only a flusher stalled that long between reading the document and
 * its link could bring a purged job back.
 * NB (keys): an `idem` entry is written (and fsynced) before its job leaves the document, and is
 * removed only after its job's tombstone is durable, so every job with a key outside the document
 * has its entry. Entries naming jobs that are gone (a purge or a flush cut short) are ignored.
 */
import { createHash, randomBytes } from 'node:crypto'
import { link, lstat, open, readdir, readFile, rename, rmdir, symlink, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { InvalidUsageError } from './errors.js'
import { fsyncDir, hasCode, inDir, readdirOrEmpty } from './fs-util.js'
import type { JobFilter, JobPage, JobRecord } from './job-store.js'
import type { JobTable } from './job-transitions.js'

/** How long a purged job's tombstone keeps its name taken. */
const TOMBSTONE_MS = 24 * 60 * 60 * 1000
const STALE_TEMP_MS = 10 * 60 * 1000
const BUCKET_CHARS = 8
/** Ids the file store takes: they are file names, and sort as file names do. */
const JOB_ID = /^[A-Za-z0-9_-]{1,200}$/
const DONE_NAME = /^([A-Za-z0-9_-]{1,200})\.json$/
/** A tombstone's target: a name the archive never creates, so reading through it is ENOENT. */
const TOMBSTONE_TARGET = 'purged'
/** Summaries of finished jobs kept in memory (they never change), so purges and filtered lists skip re-reading. */
const SUMMARY_CACHE = 100_000

export function checkJobId(id: string): void {
  if (typeof id !== 'string' || !JOB_ID.test(id)) throw new InvalidUsageError(`job id ${JSON.stringify(id)}: the file job store takes 1..200 of [A-Za-z0-9_-]`)
}

interface Summary {
  readonly shardId: string
  readonly status: JobRecord['status']
  readonly source: string
  readonly idempotencyKey: string | null
  readonly finishedAt: number | null
}

/** What one listing may read (files and directories) beyond its page. */
export const LIST_SCAN_BUDGET = 256

/** Test hooks (see FileJobStoreOptions). */
export interface ArchiveHooks {
  readonly onRead?: (path: string) => void
  readonly beforeWrite?: (step: string) => void
}

export class JobArchive {
  readonly #done: string
  readonly #idem: string
  readonly #onRead: (path: string) => void
  readonly #beforeWrite: (step: string) => void
  readonly #summaries = new Map<string, Summary>()

  constructor(root: string, hooks: ArchiveHooks = {}) {
    this.#done = join(root, 'done')
    this.#idem = join(root, 'idem')
    this.#onRead = hooks.onRead ?? (() => undefined)
    this.#beforeWrite = hooks.beforeWrite ?? (() => undefined)
  }

  /** The finished job `id`, or null (never written, or purged). */
  async get(id: string): Promise<JobRecord | null> {
    if (!JOB_ID.test(id)) return null
    return this.#read(id)
  }

  /** Whether `id` was ever archived (also when purged since): such an id is never taken again. */
  async used(id: string): Promise<boolean> {
    this.#onRead(this.#path(id))
    try {
      await lstat(this.#path(id))
      return true
    } catch (err) {
      if (hasCode(err, 'ENOENT', 'ENOTDIR')) return false
      throw err
    }
  }

  /** The archived job of `shardId` with `key`, or null. */
  async byKey(shardId: string, key: string): Promise<JobRecord | null> {
    const dir = join(this.#idem, keyHash(shardId, key))
    this.#onRead(dir)
    for (const id of (await readdirOrEmpty(dir)).filter((n) => JOB_ID.test(n)).sort()) {
      const job = await this.#read(id)
      if (job !== null && job.shardId === shardId && job.idempotencyKey === key) return job
    }
    return null
  }

  /**
   * Makes `jobs` (final, from the document) durable here, each with its key's index entry first.
   * Idempotent: a job already archived (or purged since) is left as it is.
   */
  async put(jobs: JobTable): Promise<void> {
    for (const job of jobs) {
      if (job.idempotencyKey !== null) await this.#createEntry(join(this.#idem, keyHash(job.shardId, job.idempotencyKey)), job.id)
    }
    const touched = new Set<string>()
    for (const job of jobs) {
      const bucket = join(this.#done, bucketOf(job.id))
      if (await this.#writeOnce(bucket, `${job.id}.json`, JSON.stringify({ v: 1, job }))) touched.add(bucket)
    }
    this.#beforeWrite('fsync archived jobs')
    for (const dir of touched) await fsyncDir(dir)
  }

  /**
   * A page of `filter`, newest first, merging the document's jobs (`active`, which win over an
   * archived copy of the same id) with the archive. Reads at most `limit + LIST_SCAN_BUDGET` files
   * and directories; where it stops early, the cursor says where to go on.
   */
  async list(active: JobTable, filter: JobFilter): Promise<JobPage> {
    const limit = Math.max(1, Math.floor(filter.limit))
    const cursor = filter.cursor
    const below = (id: string): boolean => cursor === undefined || id < cursor
    const matches = (j: Summary): boolean =>
      (filter.shardId === undefined || j.shardId === filter.shardId) && (filter.status === undefined || j.status === filter.status) && (filter.source === undefined || j.source === filter.source)
    const actives = active.filter((j) => below(j.id)).reverse()
    const activeIds = new Set(actives.map((j) => j.id))
    let budget = limit + LIST_SCAN_BUDGET
    const spend = (): boolean => budget-- > 0
    const jobs: JobRecord[] = []
    /** Every id at or above it (and below the cursor) has been examined. */
    let examined: string | null = null
    let a = 0
    /** Takes the active jobs above `bound` (or at it, when `inclusive`; all when null); true when the page is full. */
    const takeActive = (bound: string | null, inclusive = false): boolean => {
      const above = (id: string): boolean => bound === null || id > bound || (inclusive && id === bound)
      for (; a < actives.length && above((actives[a] as JobRecord).id); a++) {
        const j = actives[a] as JobRecord
        examined = j.id
        if (matches(j)) jobs.push(j)
        if (jobs.length === limit) {
          a++
          return true
        }
      }
      return false
    }
    const page = (more: boolean): JobPage => ({ jobs, nextCursor: more && examined !== null ? examined : null })

    this.#onRead(this.#done)
    const buckets = (await readdirOrEmpty(this.#done))
      .filter((b) => JOB_ID.test(b) && (cursor === undefined || b < cursor))
      .sort()
      .reverse()
    for (const [bi, bucket] of buckets.entries()) {
      if (!spend()) return page(true)
      const dir = join(this.#done, bucket)
      this.#onRead(dir)
      const ids = (await readdirTyped(dir))
        .flatMap((e) => {
          const id = e.isFile() ? DONE_NAME.exec(e.name)?.[1] : undefined
          return id !== undefined && below(id) && !activeIds.has(id) ? [id] : []
        })
        .sort()
        .reverse()
      for (const [i, id] of ids.entries()) {
        if (takeActive(id)) return page(true)
        const known = this.#summaries.get(id)
        if (known !== undefined && !matches(known)) {
          examined = id
          continue
        }
        if (!spend()) return page(true)
        const job = await this.#read(id)
        examined = id
        if (job !== null && matches(job)) jobs.push(job)
        if (jobs.length === limit) return page(i < ids.length - 1 || bi < buckets.length - 1 || a < actives.length)
      }
      // Every archived id left is below this bucket's name: take the actives at or above it.
      if (takeActive(bucket, true)) return page(true)
      if (examined === null || bucket < examined) examined = bucket
    }
    return takeActive(null) ? page(a < actives.length) : page(false)
  }

  /**
   * Tombstones archived jobs that finished before `before` (and drops their key entries); deletes
   * tombstones older than TOMBSTONE_MS (by the clock), stale temp files and empty buckets. How many
   * jobs it purged: NB a job purged by two concurrent calls is counted by both.
   */
  async purge(before: number): Promise<number> {
    let purged = 0
    const now = Date.now()
    for (const bucket of await readdirOrEmpty(this.#done)) {
      if (!JOB_ID.test(bucket)) continue
      const dir = join(this.#done, bucket)
      const gone: Array<{ readonly id: string; readonly hash: string }> = []
      let tombstoned = 0
      let left = 0
      for (const e of await readdirTyped(dir)) {
        const path = join(dir, e.name)
        const id = DONE_NAME.exec(e.name)?.[1]
        if (id !== undefined && e.isFile()) {
          const s = this.#summaries.get(id) ?? (await this.#read(id))
          if (s !== null && s.finishedAt !== null && s.finishedAt < before) {
            this.#beforeWrite('tombstone')
            await replaceWithTombstone(dir, path)
            this.#summaries.delete(id)
            if (s.idempotencyKey !== null) gone.push({ id, hash: keyHash(s.shardId, s.idempotencyKey) })
            tombstoned++
          }
          left++
        } else if (id !== undefined && e.isSymbolicLink()) {
          if (await olderThan(path, now - TOMBSTONE_MS)) {
            this.#beforeWrite('delete tombstone')
            await unlinkIfPresent(path)
          } else left++
        } else if (e.name.startsWith('.tmp-')) {
          if (await olderThan(path, now - STALE_TEMP_MS)) await unlinkIfPresent(path)
          else left++
        } else {
          left++
        }
      }
      // NB: key entries go only once the tombstones that replace their jobs are durable.
      this.#beforeWrite('fsync tombstones')
      if (tombstoned > 0) await fsyncDir(dir)
      purged += tombstoned
      for (const { id, hash } of gone) await this.#dropEntry(hash, id)
      if (left === 0) await rmdir(dir).catch((err: unknown) => ignoreCodes(err, 'ENOENT', 'ENOTEMPTY', 'EEXIST'))
    }
    return purged
  }

  /** Reads archived job `id`: null when absent or a tombstone. */
  async #read(id: string): Promise<JobRecord | null> {
    const path = this.#path(id)
    this.#onRead(path)
    let text: string
    try {
      text = await readFile(path, 'utf8')
    } catch (err) {
      if (hasCode(err, 'ENOENT', 'ENOTDIR')) return null
      throw err
    }
    const parsed = JSON.parse(text) as { v?: unknown; job?: JobRecord }
    if (parsed.v !== 1 || parsed.job?.id !== id) throw new Error(`${path}: not a job this version of compactd wrote`)
    const job = Object.freeze(parsed.job)
    this.#remember(job)
    return job
  }

  #remember(job: JobRecord): void {
    if (this.#summaries.size >= SUMMARY_CACHE) this.#summaries.delete(this.#summaries.keys().next().value as string)
    this.#summaries.set(job.id, { shardId: job.shardId, status: job.status, source: job.source, idempotencyKey: job.idempotencyKey, finishedAt: job.finishedAt })
  }

  #path(id: string): string {
    return join(this.#done, bucketOf(id), `${id}.json`)
  }

  /** Creates `dir/name` (empty) durably unless it exists. */
  async #createEntry(dir: string, name: string): Promise<void> {
    await inDir(dir, async () => {
      try {
        this.#beforeWrite('key entry')
        const handle = await open(join(dir, name), 'wx')
        await handle.close()
      } catch (err) {
        if (hasCode(err, 'EEXIST')) return
        throw err
      }
      await fsyncDir(dir)
    })
  }

  async #dropEntry(hash: string, id: string): Promise<void> {
    this.#beforeWrite('drop key entry')
    const dir = join(this.#idem, hash)
    await unlinkIfPresent(join(dir, id))
    await rmdir(dir).catch((err: unknown) => ignoreCodes(err, 'ENOENT', 'ENOTEMPTY', 'EEXIST'))
  }

  /**
   * Writes `dir/name` iff the name is free (temp file, fsync, exclusive link); true when it wrote.
   * The caller fsyncs `dir`.
   */
  async #writeOnce(dir: string, name: string, text: string): Promise<boolean> {
    const final = join(dir, name)
    try {
      await lstat(final)
      return false
    } catch (err) {
      if (!hasCode(err, 'ENOENT', 'ENOTDIR')) throw err
    }
    return inDir(dir, async () => {
      const tmp = join(dir, `.tmp-${randomBytes(8).toString('hex')}~`)
      try {
        const handle = await open(tmp, 'wx')
        try {
          await handle.writeFile(text)
          await handle.sync()
        } finally {
          await handle.close()
        }
        this.#beforeWrite('archive a job')
        await link(tmp, final)
        return true
      } catch (err) {
        if (hasCode(err, 'EEXIST')) return false
        throw err
      } finally {
        await unlinkIfPresent(tmp)
      }
    })
  }
}

/** A job's bucket: its id's first characters (ids shorter than that are their own bucket). */
export const bucketOf = (id: string): string => id.slice(0, BUCKET_CHARS)

function keyHash(shardId: string, key: string): string {
  return createHash('sha256').update(`${shardId.length}:${shardId}`).update(key).digest('hex')
}

/** Atomically replaces `path` with a tombstone: the name stays taken throughout. */
async function replaceWithTombstone(dir: string, path: string): Promise<void> {
  const tmp = join(dir, `.tmp-${randomBytes(8).toString('hex')}~`)
  await symlink(TOMBSTONE_TARGET, tmp)
  try {
    await rename(tmp, path)
  } catch (err) {
    await unlinkIfPresent(tmp)
    throw err
  }
}

async function olderThan(path: string, cutoff: number): Promise<boolean> {
  try {
    return (await lstat(path)).mtimeMs < cutoff
  } catch (err) {
    if (hasCode(err, 'ENOENT')) return false
    throw err
  }
}

async function readdirTyped(dir: string): Promise<import('node:fs').Dirent[]> {
  try {
    return await readdir(dir, { withFileTypes: true })
  } catch (err) {
    if (hasCode(err, 'ENOENT', 'ENOTDIR')) return []
    throw err
  }
}

async function unlinkIfPresent(path: string): Promise<void> {
  await unlink(path).catch((err: unknown) => ignoreCodes(err, 'ENOENT'))
}

/** Swallows a filesystem error with one of `codes` (an expected race); rethrows any other. */
function ignoreCodes(err: unknown, ...codes: string[]): void {
  if (!hasCode(err, ...codes)) throw err
}
