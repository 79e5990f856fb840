/**
 * A background task on an interval that never overlaps itself: a run still going when the next is
 * due skips that tick. Failures go to `onError`, never thrown. The timer does not keep the process
 * alive. Returns the stop function, which resolves once a run that was going has ended: a caller
 * closing what the task uses (the stores, at shutdown) waits for it first, so the run neither
 * fails on a closed store nor acts after its owner stopped.
 */
export function every(ms: number, fn: () => Promise<void> | void, onError: (err: unknown) => void): () => Promise<void> {
  let running: Promise<void> | null = null
  const timer = setInterval(() => {
    if (running !== null) return
    running = Promise.resolve()
      .then(fn)
      .catch(onError)
      .finally(() => {
        running = null
      })
  }, ms)
  timer.unref()
  return () => {
    clearInterval(timer)
    return running ?? Promise.resolve()
  }
}
