/**
 * A child process for the FileJobStore crash test (not a test file itself): a seeded random
 * workload, one call at a time, for the parent to kill with SIGKILL at any point.
 *
 *   node --import tsx file-job-store-crasher.ts <root> <seed> <first id number> <first now> <ops> <kill step>
 *
 * Before each call it prints `start <JobOp as JSON>`, after it `done <result as JSON>`; the parent
 * replays what was done against an oracle. Job ids are `c` and a 12-digit number counting up from
 * `<first id number>`; times count up by 10 from `<first now>`. The store flushes every 2 final
 * jobs, so crashes often land inside a flush. With `<kill step>` n > 0 the process kills itself
 * (SIGKILL) just before the store's n-th write step (`beforeWrite`): a crash point the seed fixes.
 */
import { mulberry32 } from '../../src/core/prng.js'
import { FileJobStore } from '../../src/location/file-job-store.js'
import type { FinalJobStatus, JobRecord } from '../../src/location/job-store.js'
import { applyOp, type JobOp } from './job-store-ops.js'
import { allJobs, FINAL_STATUSES, queuedJob } from './job-store-records.js'

const CRASH_KEYS = ['k1', 'k2', 'k3', 'k4', 'k5', 'k6']
const CRASH_SHARDS = ['s-a', 's-b']

const [root, seedArg, firstIdArg, firstNowArg, opsArg, killStepArg] = process.argv.slice(2)
if (root === undefined || seedArg === undefined || firstIdArg === undefined || firstNowArg === undefined || opsArg === undefined || killStepArg === undefined) {
  throw new Error('usage: <root> <seed> <first id number> <first now> <ops> <kill step>')
}
const random = mulberry32(Number(seedArg))
const pick = <T>(xs: readonly T[]): T | undefined => xs[Math.floor(random() * xs.length)]
let steps = 0
const beforeWrite = (): void => {
  if (++steps === Number(killStepArg)) process.kill(process.pid, 'SIGKILL')
}
const store = new FileJobStore(root, { flushAfter: 2, beforeWrite })
const known = new Map((await allJobs(store)).map((j) => [j.id, j]))
let nextId = Number(firstIdArg)

function nextOp(now: number): JobOp {
  const jobs = [...known.values()]
  const running = jobs.filter((j) => j.status === 'running')
  const queued = jobs.filter((j) => j.status === 'queued')
  const stale = (j: JobRecord): number => (random() < 0.2 ? j.token - 1 : j.token)
  const r = random()
  if (r < 0.36) {
    const id = `c${String(nextId++).padStart(12, '0')}`
    const base = { id, shardId: pick(CRASH_SHARDS) as string, source: pick(['request', 'maintenance']) as string, idempotencyKey: random() < 0.5 ? (pick(CRASH_KEYS) as string) : null, createdAt: now, updatedAt: now, data: { made: now } }
    return { op: 'insert', job: queuedJob(r < 0.28 ? base : { ...base, status: 'skipped', finishedAt: now }), capacity: 12 }
  }
  const target = r < 0.52 ? undefined : r < 0.62 ? pick(running) : r < 0.76 ? pick(random() < 0.6 ? running : queued) : r < 0.84 ? pick(running) : undefined
  if (target !== undefined && r < 0.62) return { op: 'renew', id: target.id, token: stale(target), now, leaseMs: 1_000, data: { renewed: now } }
  if (target !== undefined && r < 0.76) {
    return { op: 'finish', id: target.id, token: target.status === 'queued' ? null : stale(target), status: pick(FINAL_STATUSES) as FinalJobStatus, data: { finished: now }, now }
  }
  if (target !== undefined && r < 0.8) return { op: 'release', id: target.id, token: stale(target), now }
  if (target !== undefined) return { op: 'requestCancel', id: target.id, now }
  if (r < 0.84) return { op: 'claim', owner: pick(['w-1', 'w-2']) as string, now, leaseMs: pick([50, 2_000]) as number }
  if (r < 0.88) return { op: 'rescue', now }
  if (r < 0.93) return { op: 'purge', before: now - 300 }
  const id = pick(['i-1', 'i-2']) as string
  return r < 0.97 ? { op: 'heartbeat', instance: { id, startedAt: 0, heartbeatAt: now, version: '0.1.0', running: running.length } } : { op: 'leave', id }
}

for (let i = 0; i < Number(opsArg); i++) {
  const op = nextOp(Number(firstNowArg) + 10 * i)
  process.stdout.write(`start ${JSON.stringify(op)}\n`)
  const result = await applyOp(store, op)
  process.stdout.write(`done ${JSON.stringify(result)}\n`)
  const records = op.op === 'rescue' ? (result as JobRecord[]) : op.op === 'insert' ? [(result as { job?: JobRecord }).job] : [result]
  for (const j of records) if (j !== null && typeof j === 'object' && 'id' in (j as object)) known.set((j as JobRecord).id, j as JobRecord)
  if (op.op === 'purge') for (const j of [...known.values()]) if (j.finishedAt !== null && j.finishedAt < op.before) known.delete(j.id)
}
await store.close()
