/**
 * One log line for each compaction this instance ends `failed`, whoever submitted it (a request,
 * writer maintenance, the idle sweep) and whether or not anyone waits for it: without it a failed
 * compaction left nothing in the log, so the failure alert's runbook had nothing to point to.
 *
 * The line is `compaction failed` with the compaction's id, shard, source, kind, attempt and its
 * error's code and message; at error level for a fault of the server or its stores (INTERNAL,
 * DATA_LOSS, STORAGE_ERROR, INSUFFICIENT_STORAGE), at warn for the rest (TIMED_OUT,
 * SCHEMA_INCOMPATIBLE, COMPACTION_DISABLED, DEADLINE_EXCEEDED). Other endings (succeeded, skipped,
 * not applied, cancelled) are counted by the metrics and not logged.
 */
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Compaction } from '../compact/compaction.js'
import { FAULT_CODES, type ErrorCode } from '../errors.js'

async function compactionLogging(app: FastifyInstance): Promise<void> {
  const { compactor } = app.services
  const listener = (c: Compaction): void => {
    if (c.status !== 'failed') return
    const code = c.error?.code ?? 'INTERNAL'
    const fields = { compactionId: c.id, shardId: c.shardId, source: c.source, kind: c.kind, attempt: c.attempt, code, message: c.error?.message ?? '' }
    if (FAULT_CODES.has(code as ErrorCode)) app.log.error(fields, 'compaction failed')
    else app.log.warn(fields, 'compaction failed')
  }
  compactor.on('change', listener)
  app.addHook('onClose', async () => void compactor.off('change', listener))
}

export const compactionLoggingPlugin = fp(compactionLogging, { name: 'compactd-compaction-logging', fastify: '5.x', dependencies: ['compactd-services'] })
