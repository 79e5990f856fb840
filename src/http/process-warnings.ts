/**
 * Process warnings (`process.emitWarning`) as warn lines of the app's log. Background work that
 * nobody awaits reports its failures that way: the compactor's sweeps and heartbeats, GC, the
 * config poll, writer maintenance, the idle sweep; so do Node and libraries (deprecations). Node's
 * own printer writes them to stderr as text lines without a time (`(node:1234) Warning: …`),
 * outside the JSON log an operator collects and searches; here each is one JSON line on the log's
 * stream, `{"level":40,…,"code":…,"warning":…,"msg":…}`, and Node's printer is removed.
 */
import type { FastifyBaseLogger } from 'fastify'

/** Routes `proc`'s warnings to `log`; returns the undo (Node's printer back). */
export function logProcessWarnings(log: Pick<FastifyBaseLogger, 'warn'>, proc: NodeJS.Process = process): () => void {
  const printers = proc.listeners('warning')
  proc.removeAllListeners('warning')
  const listener = (warning: Error): void => {
    const code = (warning as { code?: unknown }).code
    log.warn({ warning: warning.name, ...(typeof code === 'string' ? { code } : {}) }, warning.message)
  }
  proc.on('warning', listener)
  return () => {
    proc.off('warning', listener)
    for (const p of printers) proc.on('warning', p as (w: Error) => void)
  }
}
