/**
 * Samples this process's memory every `intervalMs` while a timed section runs: the peak RSS seen
 * (whole process, worker threads included) and the peak of this thread's ArrayBuffer memory (NB:
 * worker threads' buffers count in RSS only). A coarse view of where a peak comes from.
 */
export interface MemoryPeaks {
  readonly rssMiB: number
  readonly mainArrayBuffersMiB: number
  /** When the RSS peak was seen, as a fraction of the sampled time (0 = start, 1 = end). */
  readonly rssPeakAt: number
}

export function sampleMemory(intervalMs = 25): { stop(): MemoryPeaks } {
  const started = performance.now()
  let rss = 0
  let rssAt = 0
  let buffers = 0
  const sample = (): void => {
    const m = process.memoryUsage()
    if (m.rss > rss) {
      rss = m.rss
      rssAt = performance.now() - started
    }
    buffers = Math.max(buffers, m.arrayBuffers)
  }
  sample()
  const timer = setInterval(sample, intervalMs)
  return {
    stop() {
      clearInterval(timer)
      sample()
      const total = Math.max(1, performance.now() - started)
      const mib = (b: number): number => Math.round(b / 2 ** 20)
      return { rssMiB: mib(rss), mainArrayBuffersMiB: mib(buffers), rssPeakAt: Math.round((100 * rssAt) / total) / 100 }
    },
  }
}
