/**
 * One part of one run as the merge kernel reads it: columns already decoded, times already advanced
 * by the compaction since, rows sorted by (key bytes, val bytes). Struct of arrays, no row objects.
 */
export interface MergeSource {
  /** Number of rows. */
  readonly length: number
  /** Row i's key sort encoding is `keyBytes[keyOffsets[i] .. keyOffsets[i+1])`; length `length + 1`. */
  readonly keyOffsets: Int32Array
  /** Key sort encodings, compared bytewise (unsigned); a proper prefix sorts first. */
  readonly keyBytes: Uint8Array
  /** Row i's value sort encoding is `valBytes[valOffsets[i] .. valOffsets[i+1])`; length `length + 1`. */
  readonly valOffsets: Int32Array
  readonly valBytes: Uint8Array
  /**
   * A time is the word pair (time0[i], time1[i]), ordered lexicographically: (hi, lo) for u64,
   * (a, b) for product timestamps.
   */
  readonly time0: Uint32Array
  readonly time1: Uint32Array
  /**
   * Row i's i64 diff as the words (diffs[2i] low, diffs[2i+1] high, read signed): the layout of
   * an Arrow int64 column, so it can view the part's own buffer. Sums wrap like i64.
   */
  readonly diffs: Uint32Array
  /** Row filter: 0 = row dropped (e.g. outside the batch description); null keeps every row. */
  readonly keep: Uint8Array | null
}

/**
 * Checks the column lengths of a source (not its order, which the kernel checks as it reads).
 * Throws RangeError: a malformed source is a programming error of the caller.
 */
export function checkMergeSource(s: MergeSource): void {
  const n = s.length
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`merge source length ${n} is not a non-negative integer`)
  const short = (what: string, have: number, want: number): never => {
    throw new RangeError(`merge source ${what} has ${have} entries, needs ${want}`)
  }
  if (s.keyOffsets.length < n + 1) short('keyOffsets', s.keyOffsets.length, n + 1)
  if (s.valOffsets.length < n + 1) short('valOffsets', s.valOffsets.length, n + 1)
  if (s.time0.length < n) short('time0', s.time0.length, n)
  if (s.time1.length < n) short('time1', s.time1.length, n)
  if (s.diffs.length < 2 * n) short('diffs', s.diffs.length, 2 * n)
  if (s.keep !== null && s.keep.length < n) short('keep', s.keep.length, n)
  if (n > 0) {
    if (s.keyOffsets[0]! < 0 || s.keyOffsets[n]! > s.keyBytes.length || s.keyOffsets[0]! > s.keyOffsets[n]!) {
      throw new RangeError('merge source keyOffsets point outside keyBytes')
    }
    if (s.valOffsets[0]! < 0 || s.valOffsets[n]! > s.valBytes.length || s.valOffsets[0]! > s.valOffsets[n]!) {
      throw new RangeError('merge source valOffsets point outside valBytes')
    }
  }
}
