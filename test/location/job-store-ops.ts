/**
 * JobStore calls as plain data, so a child process can print what it is about to do and the
 * parent can replay exactly that against an oracle (MemJobStore).
 */
import type { FinalJobStatus, InstanceRecord, JobRecord, JobStore } from '../../src/location/job-store.js'

export type JobOp =
  | { readonly op: 'insert'; readonly job: JobRecord; readonly capacity: number }
  | { readonly op: 'claim'; readonly owner: string; readonly now: number; readonly leaseMs: number }
  | { readonly op: 'renew'; readonly id: string; readonly token: number; readonly now: number; readonly leaseMs: number; readonly data: unknown }
  | { readonly op: 'finish'; readonly id: string; readonly token: number | null; readonly status: FinalJobStatus; readonly data: unknown; readonly now: number }
  | { readonly op: 'requestCancel'; readonly id: string; readonly now: number }
  | { readonly op: 'release'; readonly id: string; readonly token: number; readonly now: number }
  | { readonly op: 'rescue'; readonly now: number }
  | { readonly op: 'purge'; readonly before: number }
  | { readonly op: 'heartbeat'; readonly instance: InstanceRecord }
  | { readonly op: 'leave'; readonly id: string }

/** Runs `op` on `store`; the result as JSON would carry it (rescued jobs sorted by id). */
export async function applyOp(store: JobStore, op: JobOp): Promise<unknown> {
  switch (op.op) {
    case 'insert':
      return store.insert(op.job, op.capacity)
    case 'claim':
      return store.claim(op.owner, op.now, op.leaseMs)
    case 'renew':
      return store.renew(op.id, op.token, op.now, op.leaseMs, op.data)
    case 'finish':
      return store.finish(op.id, op.token, op.status, op.data, op.now)
    case 'requestCancel':
      return store.requestCancel(op.id, op.now)
    case 'release':
      return store.release(op.id, op.token, op.now)
    case 'rescue':
      return [...(await store.rescue(op.now))].sort((a, b) => (a.id < b.id ? -1 : 1))
    case 'purge':
      return store.purge(op.before)
    case 'heartbeat':
      return store.heartbeat(op.instance).then(() => null)
    case 'leave':
      return store.leave(op.id).then(() => null)
  }
}
