/** `compactctl status`: readiness and scheduler, instances, queue depth, running compactions, recent failures. */
import type { Command } from 'commander'
import { isApiError } from '../client/api-client.js'
import { fractionOf, progressLine } from '../client/compaction-view.js'
import { formatInstant, formatRange } from '../client/format.js'
import type { InstanceJson } from '../client/wire.js'
import { run } from './context.js'
import { EXIT } from './exit-codes.js'
import { facts, table } from './output.js'

const QUEUE_PAGE = 200

export function statusCommand(program: Command): void {
  program
    .command('status')
    .description('readiness, scheduler, instances, queue depth, running compactions and recent failures')
    .action((_opts, cmd: Command) =>
      run(cmd, async ({ client, out }) => {
        const [readiness, instances, queued, running, failed] = await Promise.all([
          client.readiness(),
          client.instances().catch((err: unknown) => {
            if (isApiError(err) && err.code === 'NOT_FOUND') return null // a server without the cluster listing
            throw err
          }),
          client.listCompactions({ status: 'queued', limit: QUEUE_PAGE }),
          client.listCompactions({ status: 'running', limit: 50 }),
          client.listCompactions({ status: 'failed', limit: 5 }),
        ])
        const queueDepth = queued.compactions.length
        const queueDepthAtLeast = queued.nextCursor !== undefined || queueDepth >= QUEUE_PAGE
        const value = { readiness, instances, queueDepth, queueDepthAtLeast, running: running.compactions, recentFailures: failed.compactions }
        out.result(value, () =>
          [
            facts([
              ['status', readiness.status],
              ['scheduler', readiness.checks.scheduler ?? '—'],
              ['checks', Object.entries(readiness.checks).map(([k, v]) => `${k} ${v}`).join(', ')],
              ['queue depth', `${queueDepth}${queueDepthAtLeast ? '+' : ''}`],
              ['running', String(running.compactions.length)],
            ]),
            '',
            instances === null ? 'instances: not listed by this server' : instancesTable(instances),
            '',
            running.compactions.length === 0
              ? 'running: none'
              : table(['running', 'shard', 'range', 'done', 'progress'], running.compactions.map((c) => [c.id, c.shardId, formatRange(c.desc), `${Math.round(fractionOf(c) * 100)}%`, progressLine(c)])),
            '',
            failed.compactions.length === 0
              ? 'recent failures: none'
              : table(['failed', 'shard', 'finished', 'code', 'reason'], failed.compactions.map((c) => [c.id, c.shardId, formatInstant(c.finishedAt), c.error?.code ?? '—', c.error?.message ?? ''])),
          ].join('\n'),
        )
        return readiness.status === 'ready' ? EXIT.OK : EXIT.FAILURE
      }),
    )
}

function instancesTable(instances: readonly InstanceJson[]): string {
  return table(
    ['instance', 'version', 'started', 'heartbeat', 'running'],
    instances.map((i) => [`${i.id}${i.self === true ? ' (this one)' : ''}`, i.version ?? '—', formatInstant(i.startedAt), formatInstant(i.heartbeatAt), i.running ?? '—']),
  )
}
