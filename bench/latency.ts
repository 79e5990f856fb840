/** Latency figures of a series of requests (median, 99th percentile, maximum), in milliseconds. */
export interface LatencyStats {
  readonly count: number
  readonly failures: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly maxMs: number
}

export function latencyStats(samples: readonly number[], failures = 0): LatencyStats {
  const sorted = [...samples].sort((a, b) => a - b)
  const at = (q: number): number => (sorted.length === 0 ? NaN : (sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number))
  return { count: sorted.length, failures, p50Ms: at(0.5), p99Ms: at(0.99), maxMs: sorted.length === 0 ? NaN : (sorted[sorted.length - 1] as number) }
}
