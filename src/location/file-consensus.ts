/**
 * FileConsensus: Consensus in a directory, linearizable across processes on one machine and
 * crash-safe (every acknowledged write is fsynced).
 *
 * Layout: `<root>/<hex(key)>/` holds one file per version, named by its zero-padded seqno, plus
 * `floor/`, whose largest entry name is the lowest live seqno (0 when empty).
 *
 * - compareAndSet: check the head is `expected`, write a temp file and fsync it, then
 *   `link(tmp, <seqno>)`, which creates the name iff absent (EEXIST ⇒ mismatch), and fsync the
 *   directory.
 * - NB (stale writer): a writer whose head check predates a truncation must not re-create a
 *   truncated seqno. So truncate first creates `floor/<seqno>` (fsynced), then replaces the
 *   versions below it with empty tombstones (an atomic rename over the name, which therefore never
 *   becomes free), and deletes only tombstones more than TOMBSTONES below the floor. A link onto a
 *   tombstone fails with EEXIST (a mismatch). Only a writer stalled across more than TOMBSTONES
 *   versions can re-create a deleted name: after its link it re-reads the floor and, if its seqno
 *   is that far below, removes its file and reports a mismatch. (A seqno merely below the floor
 *   was committed and then truncated: others may have built on it.) Readers ignore versions below
 *   the floor, and list versions *before* reading the floor, so any stale file they see is covered.
 * - NB (a crash inside truncate): the floor is raised first and versions are emptied after, in
 *   ascending order, so a truncate cut short leaves whole versions just below the floor. Readers
 *   ignore them; the next truncate empties them too, found by walking down from the old floor to
 *   the first tombstone (otherwise they stayed whole until TOMBSTONES versions later).
 * - NB (readers racing a truncate): the floor can rise between a reader's listing and its reads.
 *   A listing with no version at or above the floor is older than the floor (the head is never
 *   truncated), so it is taken again. A version read is checked against the floor read *after* it:
 *   truncate raises the floor before it empties a version, so a floor still at or below the
 *   version proves the read saw the version and not its tombstone; otherwise it reads again.
 * - NB: floor markers only ever grow (create-if-absent names); truncate removes superseded ones, so
 *   `floor/` holds one or two entries and is read in a single `getdents`, a consistent snapshot.
 * - Temp files are `.tmp-<hex>~` and never read; truncate removes ones older than ten minutes.
 * - Finding the head without a listing: a key's directory holds up to TOMBSTONES + the live
 *   versions, and listing it costs milliseconds of the caller's thread at thousands of names. So
 *   the adapter remembers the last head it saw of each key (a hint) and looks for the names after
 *   it, one at a time (at most PROBES), instead. This is sound because names are contiguous from
 *   the deleted tombstones up to the head (a seqno is `expected + 1`, created only after the head
 *   check saw `expected`; a version only ever becomes a tombstone, never absent, until it is more
 *   than TOMBSTONES below the floor). So if `h` was a version and `h + 1` is absent, `h` is the
 *   head, unless `h` was deleted meanwhile, which a floor at or below `h`, read after, rules out
 *   (deleted names are below the floor). Any doubt, or a hint more than PROBES behind, lists.
 */
import { randomBytes } from 'node:crypto'
import { access, link, mkdir, open, readFile, rename, rm, stat, unlink } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { setNewest } from '../core/newest-map.js'
import type { CasResult, Consensus, ListOptions, SeqNo, VersionedData } from './consensus.js'
import { checkCas, checkKey, checkList, checkScan, checkTruncate, checkTruncateAgainstHead, inListRange } from './consensus-args.js'
import { closedError, determinate, errorMessage, indeterminate, InvalidUsageError, LocationError, noSpace, permanent, type Abortable } from './errors.js'
import { fsyncCreated, fsyncDir, hasCode, isNoSpace, readdirOrEmpty } from './fs-util.js'

const SEQNO_NAME = /^[0-9]{20}$/
const HEX_KEY = /^(?:[0-9a-f]{2})+$/
const FLOOR = 'floor'
const STALE_TEMP_MS = 10 * 60 * 1000
/** Truncated versions kept as empty tombstones below the floor, so their names stay taken. */
const TOMBSTONES = 10_000
/** Keys whose versions `list` reads at once. */
const LIST_CONCURRENCY = 16
/** Re-reads when a version vanished between listing and reading it (a concurrent truncate). */
const MAX_READ_ATTEMPTS = 8
/** Names looked for past a key's hint before the head is found by listing instead. */
const PROBES = 4
/** Keys whose last seen head is remembered. */
const MAX_HINTS = 4096

const seqnoName = (seqno: SeqNo): string => String(seqno).padStart(20, '0')

export interface FileConsensusOptions {
  /** Test hook, awaited between a compareAndSet's head check and its link (to stage races). */
  readonly beforeLink?: (key: string, seqno: SeqNo) => Promise<void>
  /** Test hook, awaited before a reader reads the floor after its listing or probes, and before it reads a version's data. */
  readonly beforeRead?: (key: string, step: 'floor' | 'version') => Promise<void>
  /** Test hook: tombstones kept below the floor (default TOMBSTONES), so tests can reach the deleted ones. */
  readonly tombstones?: number
}

export class FileConsensus implements Consensus {
  readonly #root: string
  readonly #beforeLink: FileConsensusOptions['beforeLink']
  readonly #beforeRead: FileConsensusOptions['beforeRead']
  readonly #tombstones: number
  /** The last head seen of each key (see "Finding the head without a listing"). */
  readonly #hints = new Map<string, SeqNo>()
  /**
   * Keys seen with a version: they have one for good (the head is never truncated), so `list`
   * reads no directory of theirs again. As many as the store has keys.
   */
  readonly #keys = new Set<string>()
  #closed = false

  /** `root` is created on the first write; a missing root reads as empty. */
  constructor(root: string, options: FileConsensusOptions = {}) {
    this.#root = resolve(root)
    this.#beforeLink = options.beforeLink
    this.#beforeRead = options.beforeRead
    this.#tombstones = options.tombstones ?? TOMBSTONES
  }

  get root(): string {
    return this.#root
  }

  async head(key: string, opts?: Abortable): Promise<VersionedData | null> {
    this.#check(opts)
    checkKey(key)
    return this.#guard('head', key, opts, () => this.#head(key))
  }

  async compareAndSet(key: string, expected: SeqNo | null, data: VersionedData, opts?: Abortable): Promise<CasResult> {
    this.#check(opts)
    checkCas(key, expected, data)
    const dir = this.#dir(key)
    const final = join(dir, seqnoName(data.seqno))
    const tmp = join(dir, `.tmp-${randomBytes(8).toString('hex')}~`)
    // Up to the link nothing is visible: failures are determinate.
    const linked = await this.#guard('compareAndSet', key, opts, async () => {
      const head = await this.#headSeqno(key)
      if (head !== expected) return false
      const created = await mkdir(dir, { recursive: true })
      await fsyncCreated(dir, created)
      try {
        const handle = await open(tmp, 'wx')
        try {
          await handle.writeFile(data.data)
          await handle.sync()
        } finally {
          await handle.close()
        }
        opts?.signal?.throwIfAborted()
        await this.#beforeLink?.(key, data.seqno)
        await link(tmp, final)
        return true
      } catch (err) {
        if (hasCode(err, 'EEXIST')) return false
        throw err
      } finally {
        await rm(tmp, { force: true }).catch(() => undefined) // NB: a leftover temp file is never read
      }
    })
    if (!linked) return { kind: 'mismatch', current: await this.head(key) }
    // The name exists: from here an error leaves the outcome unknown to the caller.
    try {
      await fsyncDir(dir)
      if (data.seqno < (await this.#floor(dir)) - this.#tombstones) {
        // NB: a concurrent truncate may already have removed it (it is below the floor).
        await unlinkIfPresent(final)
        await fsyncDir(dir)
        return { kind: 'mismatch', current: await this.head(key) }
      }
    } catch (err) {
      throw indeterminate(`file consensus compareAndSet "${key}": ${errorMessage(err)}`, err)
    }
    this.#hint(key, data.seqno)
    return { kind: 'committed' }
  }

  async scan(key: string, from: SeqNo, limit: number, opts?: Abortable): Promise<VersionedData[]> {
    this.#check(opts)
    checkScan(key, from, limit)
    const dir = this.#dir(key)
    return this.#guard('scan', key, opts, async () => {
      for (let attempt = 1; ; attempt++) {
        const live = await this.#live(key)
        const wanted = live.filter((s) => s >= from).slice(0, limit)
        const out: VersionedData[] = []
        for (const seqno of wanted) {
          await this.#beforeRead?.(key, 'version')
          const data = await readOrNull(join(dir, seqnoName(seqno)))
          if (data === null) break
          out.push({ seqno, data })
        }
        // A concurrent truncate removed or emptied versions we listed; list again.
        if (out.length === wanted.length && (wanted[0] === undefined || wanted[0] >= (await this.#floor(dir)))) return out
        if (attempt >= MAX_READ_ATTEMPTS) throw determinate(`file consensus scan "${key}": versions kept vanishing while read`)
      }
    })
  }

  async truncate(key: string, seqno: SeqNo, opts?: Abortable): Promise<number> {
    this.#check(opts)
    checkTruncate(key, seqno)
    const dir = this.#dir(key)
    const head = await this.#guard('truncate', key, opts, () => this.#headSeqno(key))
    checkTruncateAgainstHead(key, seqno, head)
    return this.#guard('truncate', key, opts, async () => {
      const versions = await this.#versions(dir)
      const before = await this.#floor(dir)
      const floorDir = join(dir, FLOOR)
      if (seqno > before) {
        const created = await mkdir(floorDir, { recursive: true })
        await fsyncCreated(floorDir, created)
        await createEmpty(join(floorDir, seqnoName(seqno)))
        await fsyncDir(floorDir)
      }
      // NB: only after the floor is durable may versions below it go; recent ones become
      // tombstones (their names stay taken), old tombstones are deleted.
      const floor = await this.#floor(dir)
      const from = await this.#tombstonedBelow(dir, versions, before)
      let deleted = 0
      for (const v of versions) {
        if (v >= floor) continue
        const path = join(dir, seqnoName(v))
        if (v < floor - this.#tombstones) {
          await unlinkIfPresent(path)
        } else if (v >= from) {
          await tombstone(dir, path)
          if (v >= before && v < seqno) deleted++
        }
      }
      await fsyncDir(dir)
      for (const name of await readdirOrEmpty(floorDir)) {
        if (SEQNO_NAME.test(name) && Number(name) < floor) await unlinkIfPresent(join(floorDir, name))
      }
      await this.#removeStaleTemps(dir)
      return deleted
    })
  }

  async list(opts?: ListOptions): Promise<string[]> {
    this.#check(opts)
    checkList(opts)
    return this.#guard('list', '', opts, async () => {
      const named: string[] = []
      for (const name of await readdirOrEmpty(this.#root)) {
        if (!HEX_KEY.test(name)) continue
        const key = Buffer.from(name, 'hex').toString('utf8')
        if (this.#dir(key) === join(this.#root, name)) named.push(key) // else not an encoding this adapter writes
      }
      // NB: one directory read in all; telling the keys without versions apart takes two per key.
      if (opts?.exact === false) return inListRange(named, opts)
      const candidates = inListRange(named, opts?.after === undefined ? undefined : { after: opts.after })
      const limit = opts?.limit ?? candidates.length
      const out: string[] = []
      // Two directory reads per key not yet seen with a version: a few at a time, or a first listing
      // of 10,000 keys takes seconds; with a limit, a chunk at a time until it is reached.
      for (let from = 0; from < candidates.length && out.length < limit; from += Math.max(limit, LIST_CONCURRENCY)) {
        const chunk = candidates.slice(from, from + Math.max(limit, LIST_CONCURRENCY))
        const live = chunk.map((key) => this.#keys.has(key))
        let next = 0
        const worker = async (): Promise<void> => {
          while (next < chunk.length) {
            const i = next++
            if (!live[i]) live[i] = (await this.#headSeqno(chunk[i] as string)) !== null
          }
        }
        await Promise.all(Array.from({ length: Math.min(LIST_CONCURRENCY, chunk.length) }, worker))
        out.push(...chunk.filter((_, i) => live[i]))
      }
      return out.slice(0, limit)
    })
  }

  async close(): Promise<void> {
    this.#closed = true
  }

  async #head(key: string): Promise<VersionedData | null> {
    const dir = this.#dir(key)
    for (let attempt = 1; attempt <= MAX_READ_ATTEMPTS; attempt++) {
      const seqno = await this.#headSeqno(key)
      if (seqno === null) return null
      await this.#beforeRead?.(key, 'version')
      const data = await readOrNull(join(dir, seqnoName(seqno)))
      // NB: a floor above the version, read after it, means it may have been a tombstone by then.
      if (data !== null && (await this.#floor(dir)) <= seqno) return { seqno, data }
      this.#hints.delete(key)
    }
    throw determinate(`file consensus head "${key}": the head kept vanishing while read`)
  }

  /** The head's seqno: found from the key's hint when it can be, else by listing. */
  async #headSeqno(key: string): Promise<SeqNo | null> {
    const hint = this.#hints.get(key)
    const probed = hint === undefined ? null : await this.#probe(key, hint)
    if (probed !== null) return probed
    const head = (await this.#live(key)).at(-1) ?? null
    if (head === null) this.#hints.delete(key)
    else this.#hint(key, head)
    return head
  }

  /**
   * The head, if it is at most PROBES past `hint` (a head seen before): the last name present
   * after it, checked against the floor read after the probes. Null when that cannot be known so.
   */
  async #probe(key: string, hint: SeqNo): Promise<SeqNo | null> {
    const dir = this.#dir(key)
    let head = hint
    while (await nameExists(join(dir, seqnoName(head + 1)))) {
      if (++head - hint > PROBES) return null
    }
    await this.#beforeRead?.(key, 'floor')
    if ((await this.#floor(dir)) > head) return null
    if (head !== hint) this.#hint(key, head)
    return head
  }

  #hint(key: string, seqno: SeqNo): void {
    setNewest(this.#hints, key, seqno, MAX_HINTS)
    this.#keys.add(key)
  }

  /**
   * Live seqnos, ascending: versions listed first, then filtered by the floor read after. The head
   * is never truncated, so a listing with versions but none live predates the floor: list again.
   */
  async #live(key: string): Promise<SeqNo[]> {
    const dir = this.#dir(key)
    let seen: { floor: SeqNo; head: SeqNo } | null = null
    for (let attempt = 1; attempt <= MAX_READ_ATTEMPTS; attempt++) {
      const versions = await this.#versions(dir)
      await this.#beforeRead?.(key, 'floor')
      const floor = await this.#floor(dir)
      const live = versions.filter((s) => s >= floor)
      if (live.length > 0 || versions.length === 0) return live
      const head = versions[versions.length - 1] as SeqNo
      // NB: a floor that stays above every version while no version comes is no truncation in
      // progress: this process never leaves a key so (the head is never truncated), a copy of the
      // directory made file by file while a server wrote to it does.
      if (seen !== null && seen.floor === floor && seen.head === head) {
        throw permanent(
          `file consensus "${key}": its floor ${floor} is above every version it holds (the last is ${head}), which compactd never leaves: the directory ${dir} was changed outside compactd, or copied file by file while a server wrote to it; restore the data directory from a backup taken as the operations guide says (stopped, or a file system snapshot)`,
        )
      }
      seen = { floor, head }
    }
    throw determinate(`file consensus "${key}": the floor kept rising past the listed versions`)
  }

  async #versions(dir: string): Promise<SeqNo[]> {
    const names = await readdirOrEmpty(dir)
    return names
      .filter((n) => SEQNO_NAME.test(n))
      .map(Number)
      .sort((a, b) => a - b)
  }

  /**
   * Where the versions below `before` (the floor before this truncation) that are still whole
   * start: `before`, unless a truncation raised the floor and then stopped (a crash) before it
   * had emptied every version below it. Those are emptied in ascending order, so the walk down
   * from `before` stops at the first tombstone (or deleted name): one stat when nothing was left.
   */
  async #tombstonedBelow(dir: string, versions: readonly SeqNo[], before: SeqNo): Promise<SeqNo> {
    const listed = new Set(versions)
    let from = before
    while (from > 0 && listed.has(from - 1)) {
      const st = await stat(join(dir, seqnoName(from - 1))).catch((err: unknown) => {
        if (hasCode(err, 'ENOENT')) return null
        throw err
      })
      if (st === null || st.size === 0) break
      from--
    }
    return from
  }

  async #floor(dir: string): Promise<SeqNo> {
    let floor = 0
    for (const name of await readdirOrEmpty(join(dir, FLOOR))) {
      if (SEQNO_NAME.test(name)) floor = Math.max(floor, Number(name))
    }
    return floor
  }

  async #removeStaleTemps(dir: string): Promise<void> {
    const cutoff = Date.now() - STALE_TEMP_MS
    for (const name of await readdirOrEmpty(dir)) {
      if (!name.startsWith('.tmp-')) continue
      const st = await stat(join(dir, name)).catch((err: unknown) => {
        if (hasCode(err, 'ENOENT')) return null
        throw err
      })
      if (st !== null && st.mtimeMs < cutoff) await unlinkIfPresent(join(dir, name))
    }
  }

  #dir(key: string): string {
    return join(this.#root, Buffer.from(key, 'utf8').toString('hex'))
  }

  #check(opts: Abortable | undefined): void {
    if (this.#closed) throw closedError('file consensus')
    opts?.signal?.throwIfAborted()
  }

  /** Runs a step whose failures are determinate (it changed nothing visible); a full file system says so (`noSpace`). */
  async #guard<T>(op: string, key: string, opts: Abortable | undefined, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      if (opts?.signal?.aborted) throw opts.signal.reason
      if (err instanceof LocationError || err instanceof InvalidUsageError) throw err
      if (isNoSpace(err)) throw noSpace(`file consensus ${op} "${key}": no space left under ${this.#root}`, err)
      throw determinate(`file consensus ${op} "${key}": ${errorMessage(err)}`, err)
    }
  }
}

/** Atomically replaces the file at `path` with an empty one: the name is never free meanwhile. */
async function tombstone(dir: string, path: string): Promise<void> {
  const tmp = join(dir, `.tmp-${randomBytes(8).toString('hex')}~`)
  await createEmpty(tmp)
  try {
    await rename(tmp, path)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
}

/** `op`'s result, or `absent` when it failed because `path` does not exist. */
async function unlessAbsent<T>(op: () => Promise<T>, absent: T): Promise<T> {
  try {
    return await op()
  } catch (err) {
    if (hasCode(err, 'ENOENT')) return absent
    throw err
  }
}

function readOrNull(path: string): Promise<Uint8Array | null> {
  return unlessAbsent(async () => {
    const buf = await readFile(path)
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)
  }, null)
}

/** Whether a file (or anything) has the name `path`. */
function nameExists(path: string): Promise<boolean> {
  return unlessAbsent(async () => (await access(path), true), false)
}

function unlinkIfPresent(path: string): Promise<boolean> {
  return unlessAbsent(async () => (await unlink(path), true), false)
}

async function createEmpty(path: string): Promise<void> {
  try {
    const handle = await open(path, 'wx')
    await handle.close()
  } catch (err) {
    if (!hasCode(err, 'EEXIST')) throw err
  }
}
