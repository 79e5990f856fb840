/**
 * A background task on an interval that never overlaps itself: a run still going when the next is
 * due skips that tick. Failures go to `onError`, never thrown. The timer does not keep the process
 * alive. Returns the stop function.
 */
export function every(ms: number, fn: () => Promise<void> | void, onError: (err: unknown) => void): () => void {
  let busy = false
  const timer = setInterval(() => {
    if (busy) return
    busy = true
    Promise.resolve()
      .then(fn)
      .catch(onError)
      .finally(() => (busy = false))
  }, ms)
  timer.unref()
  return () => clearInterval(timer)
}
