/**
 * Retry decorators: bounded attempts with exponential backoff and full jitter (a delay drawn
 * uniformly from [0, min(maxDelayMs, baseDelayMs · 2^(retry−1))) ), honouring the caller's
 * AbortSignal during the wait.
 *
 * - Only LocationErrors are retried, and never permanent ones (no credentials, a missing bucket:
 *   nothing changes until an operator acts) nor those of a store with no space left (space comes
 *   back when an operator or GC frees it, not within a retry's wait). InvalidUsageError (the caller's bug), aborts and
 *   unknown errors go straight up.
 * - Idempotent operations (everything but compareAndSet) retry both kinds: a blob `set` rewrites the
 *   same bytes, a `delete` of an absent key is a no-op (so a retried delete may report null).
 * - NB: compareAndSet retries only *determinate* errors (nothing was written). An indeterminate one
 *   goes up unchanged: the write may have landed, and only the caller, by re-reading state, can
 *   tell (docs/concepts.md#shard-state-and-compare-and-set).
 * - A blob `list` that fails part-way is restarted and skips keys it already yielded.
 * - NB: no retry starts once `retryWithinMs` have passed since the call began. Retries are for
 *   blips; a store that takes that long to fail (it accepts connections and never answers: a
 *   frozen server, a dropped route) would fail each attempt just as slowly, and five attempts of
 *   S3's 60 s socket timeout kept a request waiting five minutes.
 */
import type { Blob, BlobMeta, GetOptions } from './blob.js'
import type { CasResult, Consensus, ListOptions, SeqNo, VersionedData } from './consensus.js'
import { InvalidUsageError, LocationError, type Abortable } from './errors.js'
import type { BlobOp, ConsensusOp } from './with-metrics.js'

export interface RetryEvent {
  readonly op: BlobOp | ConsensusOp
  /** The attempt that failed, from 1. */
  readonly attempt: number
  /** The wait before the next attempt. */
  readonly delayMs: number
  readonly error: LocationError
}

export interface RetryOptions {
  /** Attempts in all, the first included; default 5. */
  readonly maxAttempts?: number
  /** The first retry's delay cap; default 25 ms. */
  readonly baseDelayMs?: number
  /** The cap on any delay; default 2000 ms. */
  readonly maxDelayMs?: number
  /** Uniform in [0, 1); default Math.random. Tests pass a seeded one. */
  readonly random?: () => number
  /** Called before each wait (for metrics and logs). */
  readonly onRetry?: (event: RetryEvent) => void
  /** No retry starts later than this after the call began; default 10 s. */
  readonly retryWithinMs?: number
  /** The clock of `retryWithinMs` (ms); default Date.now. Tests pass a fake one. */
  readonly now?: () => number
}

export const DEFAULT_MAX_ATTEMPTS = 5
export const DEFAULT_RETRY_WITHIN_MS = 10_000

interface Policy {
  readonly maxAttempts: number
  readonly baseDelayMs: number
  readonly maxDelayMs: number
  readonly random: () => number
  readonly onRetry: ((event: RetryEvent) => void) | undefined
  readonly retryWithinMs: number
  readonly now: () => number
}

function policyOf(opts: RetryOptions): Policy {
  const maxAttempts = opts.maxAttempts ?? DEFAULT_MAX_ATTEMPTS
  if (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1) throw new InvalidUsageError(`maxAttempts ${maxAttempts} must be an integer ≥ 1`)
  const baseDelayMs = opts.baseDelayMs ?? 25
  const maxDelayMs = opts.maxDelayMs ?? 2000
  const retryWithinMs = opts.retryWithinMs ?? DEFAULT_RETRY_WITHIN_MS
  if (!(baseDelayMs >= 0) || !(maxDelayMs >= 0) || !(retryWithinMs >= 0)) throw new InvalidUsageError('retry delays must be ≥ 0')
  return { maxAttempts, baseDelayMs, maxDelayMs, random: opts.random ?? Math.random, onRetry: opts.onRetry, retryWithinMs, now: opts.now ?? Date.now }
}

/** The full-jitter delay after failed attempt `attempt` (1-based). */
export function backoffDelayMs(attempt: number, baseDelayMs: number, maxDelayMs: number, random: () => number): number {
  const cap = Math.min(maxDelayMs, baseDelayMs * 2 ** Math.min(attempt - 1, 30))
  return random() * cap
}

export function withBlobRetry(blob: Blob, opts: RetryOptions = {}): Blob {
  const policy = policyOf(opts)
  const retry = retrier(policy)
  return {
    get: (key: string, o?: GetOptions) => retry('get', o, () => blob.get(key, o)),
    set: (key: string, value: Uint8Array, o?: Abortable) => retry('set', o, () => blob.set(key, value, o)),
    delete: (key: string, o?: Abortable) => retry('delete', o, () => blob.delete(key, o)),
    list: (prefix: string, o?: Abortable) => retriedList(policy, o, () => blob.list(prefix, o)),
    removeInterrupted: (prefix: string, olderThanMs: number, o?: Abortable) => retry('remove_interrupted', o, () => blob.removeInterrupted(prefix, olderThanMs, o)),
    close: () => blob.close(),
  }
}

export function withConsensusRetry(consensus: Consensus, opts: RetryOptions = {}): Consensus {
  const retry = retrier(policyOf(opts))
  return {
    head: (key: string, o?: Abortable) => retry('head', o, () => consensus.head(key, o)),
    compareAndSet: (key: string, expected: SeqNo | null, data: VersionedData, o?: Abortable): Promise<CasResult> =>
      retry('compare_and_set', o, () => consensus.compareAndSet(key, expected, data, o), true),
    scan: (key: string, from: SeqNo, limit: number, o?: Abortable) => retry('scan', o, () => consensus.scan(key, from, limit, o)),
    truncate: (key: string, seqno: SeqNo, o?: Abortable) => retry('truncate', o, () => consensus.truncate(key, seqno, o)),
    list: (o?: ListOptions) => retry('list', o, () => consensus.list(o)),
    close: () => consensus.close(),
  }
}

function retrier(policy: Policy) {
  return async <T>(op: BlobOp | ConsensusOp, opts: Abortable | undefined, fn: () => Promise<T>, determinateOnly = false): Promise<T> => {
    const began = policy.now()
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn()
      } catch (err) {
        if (!retryable(err, determinateOnly, opts) || !mayRetry(policy, attempt, began)) throw err
        await pause(policy, op, attempt, err, opts)
      }
    }
  }
}

/** Whether failed attempt `attempt` of a call that began at `began` is followed by another. */
function mayRetry(policy: Policy, attempt: number, began: number): boolean {
  return attempt < policy.maxAttempts && policy.now() - began < policy.retryWithinMs
}

async function* retriedList(policy: Policy, opts: Abortable | undefined, list: () => AsyncIterable<BlobMeta>): AsyncIterable<BlobMeta> {
  const seen = new Set<string>()
  // A long listing that moves on is not a slow failure: the window runs from the last new key.
  let began = policy.now()
  for (let attempt = 1; ; attempt++) {
    try {
      for await (const meta of list()) {
        if (seen.has(meta.key)) continue
        seen.add(meta.key)
        yield meta
        began = policy.now()
      }
      return
    } catch (err) {
      if (!retryable(err, false, opts) || !mayRetry(policy, attempt, began)) throw err
      await pause(policy, 'list', attempt, err, opts)
    }
  }
}

function retryable(err: unknown, determinateOnly: boolean, opts: Abortable | undefined): err is LocationError {
  if (opts?.signal?.aborted) return false
  // NB: a full store (noSpace) gets no space back within a retry's wait: answering at once beats
  // rewriting the same bytes onto a full disk five times.
  return err instanceof LocationError && err.mayPass && (!determinateOnly || err.kind === 'determinate')
}

async function pause(policy: Policy, op: BlobOp | ConsensusOp, attempt: number, error: LocationError, opts: Abortable | undefined): Promise<void> {
  const delayMs = backoffDelayMs(attempt, policy.baseDelayMs, policy.maxDelayMs, policy.random)
  policy.onRetry?.({ op, attempt, delayMs, error })
  await sleep(delayMs, opts?.signal)
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  signal?.throwIfAborted()
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(signal?.reason)
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
