/**
 * Metrics decorators: time every call and observe it in a histogram labelled by `op` and `outcome`.
 *
 * ops: blob `get`, `set`, `delete`, `list`, `remove_interrupted`; consensus `head`, `compare_and_set`, `scan`,
 * `truncate`, `list`. outcomes: `ok`; `mismatch` (a compare-and-set that lost); `no_space` (a
 * determinate LocationError of a store with no space left); `determinate` / `indeterminate` (any
 * other LocationError of that kind); `invalid` (InvalidUsageError). Any other error
 * (an abort, a bug) counts as `indeterminate`: nothing is known about what it did.
 * A `list` of blobs is timed from the call to the end of the iteration. `close` is not timed.
 */
import type { Histogram } from 'prom-client'
import type { Blob, BlobMeta, GetOptions } from './blob.js'
import type { CasResult, Consensus, ListOptions, SeqNo, VersionedData } from './consensus.js'
import { InvalidUsageError, LocationError, type Abortable } from './errors.js'

export type Outcome = 'ok' | 'mismatch' | 'no_space' | 'determinate' | 'indeterminate' | 'invalid'
export type BlobOp = 'get' | 'set' | 'delete' | 'list' | 'remove_interrupted'
export type ConsensusOp = 'head' | 'compare_and_set' | 'scan' | 'truncate' | 'list'
export type OperationHistogram = Histogram<'op' | 'outcome'>

export function outcomeOf(err: unknown): Outcome {
  if (err instanceof LocationError) return err.noSpace ? 'no_space' : err.kind
  if (err instanceof InvalidUsageError) return 'invalid'
  return 'indeterminate'
}

export function withBlobMetrics(blob: Blob, histogram: OperationHistogram): Blob {
  const timed = timer(histogram)
  return {
    get: (key: string, opts?: GetOptions) => timed('get', () => blob.get(key, opts)),
    set: (key: string, value: Uint8Array, opts?: Abortable) => timed('set', () => blob.set(key, value, opts)),
    delete: (key: string, opts?: Abortable) => timed('delete', () => blob.delete(key, opts)),
    list: (prefix: string, opts?: Abortable) => timedList(histogram, () => blob.list(prefix, opts)),
    removeInterrupted: (prefix: string, olderThanMs: number, opts?: Abortable) => timed('remove_interrupted', () => blob.removeInterrupted(prefix, olderThanMs, opts)),
    close: () => blob.close(),
  }
}

export function withConsensusMetrics(consensus: Consensus, histogram: OperationHistogram): Consensus {
  const timed = timer(histogram)
  return {
    head: (key: string, opts?: Abortable) => timed('head', () => consensus.head(key, opts)),
    compareAndSet: (key: string, expected: SeqNo | null, data: VersionedData, opts?: Abortable) =>
      timed(
        'compare_and_set',
        () => consensus.compareAndSet(key, expected, data, opts),
        (r: CasResult) => (r.kind === 'committed' ? 'ok' : 'mismatch'),
      ),
    scan: (key: string, from: SeqNo, limit: number, opts?: Abortable) => timed('scan', () => consensus.scan(key, from, limit, opts)),
    truncate: (key: string, seqno: SeqNo, opts?: Abortable) => timed('truncate', () => consensus.truncate(key, seqno, opts)),
    list: (opts?: ListOptions) => timed('list', () => consensus.list(opts)),
    close: () => consensus.close(),
  }
}

function timer(histogram: OperationHistogram) {
  return async <T>(op: BlobOp | ConsensusOp, fn: () => Promise<T>, outcome: (result: T) => Outcome = () => 'ok'): Promise<T> => {
    const end = histogram.startTimer({ op })
    try {
      const result = await fn()
      end({ outcome: outcome(result) })
      return result
    } catch (err) {
      end({ outcome: outcomeOf(err) })
      throw err
    }
  }
}

async function* timedList(histogram: OperationHistogram, list: () => AsyncIterable<BlobMeta>): AsyncIterable<BlobMeta> {
  const end = histogram.startTimer({ op: 'list' })
  let outcome: Outcome = 'ok'
  try {
    yield* list()
  } catch (err) {
    outcome = outcomeOf(err)
    throw err
  } finally {
    // NB: a consumer that stops early (break) still ends the timer, as `ok`.
    end({ outcome })
  }
}
