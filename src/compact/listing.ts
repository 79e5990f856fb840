/**
 * The cluster's compaction listing: queued jobs, then running ones, then finished ones, each
 * group newest first (docs/api.md#list-inspect-and-cancel), a page at a time over the job store's newest-first pages.
 *
 * The cursor names the group and the last id seen in it (`q~<id>`, `r~<id>`, `f~<id>`, or the
 * group alone to start it). A job that changes group between two pages may be shown twice or not
 * at all; a listing is a view of a moving queue, never a snapshot.
 */
import { AppError } from '../errors.js'
import { isFinalJobStatus, type JobRecord, type JobStatus, type JobStore } from '../location/job-store.js'
import type { CompactionStatus } from './compaction.js'

/** One group of the listing: the store's status filter (null: every final status). */
interface Group {
  readonly tag: 'q' | 'r' | 'f' | 's'
  readonly status: JobStatus | null
}

const ALL: readonly Group[] = [
  { tag: 'q', status: 'queued' },
  { tag: 'r', status: 'running' },
  { tag: 'f', status: null },
]

/** Store pages read per listing page at most (finished groups filter out active jobs). */
const MAX_READS = 16

export interface ListQuery {
  readonly shardId?: string
  readonly status?: CompactionStatus
  readonly source?: string
  readonly limit: number
  readonly cursor?: string
}

/** A page of job records in listing order, with the cursor of the next page (null: the last). */
export async function listJobs(store: JobStore, q: ListQuery): Promise<{ readonly jobs: JobRecord[]; readonly nextCursor: string | null }> {
  const groups: readonly Group[] = q.status === undefined ? ALL : [{ tag: 's', status: q.status }]
  const start = parseCursor(q.cursor, groups)
  const jobs: JobRecord[] = []
  let after = start.after
  let reads = 0
  for (let g = start.group; g < groups.length; g++, after = undefined) {
    const group = groups[g] as Group
    for (;;) {
      if (jobs.length >= q.limit || reads >= MAX_READS) return { jobs, nextCursor: cursorOf(group, after) }
      reads++
      const page = await store.list({
        limit: q.limit - jobs.length,
        ...(group.status === null ? {} : { status: group.status }),
        ...(q.shardId === undefined ? {} : { shardId: q.shardId }),
        ...(q.source === undefined ? {} : { source: q.source }),
        ...(after === undefined ? {} : { cursor: after }),
      })
      jobs.push(...(group.status === null ? page.jobs.filter((j) => isFinalJobStatus(j.status)) : page.jobs))
      if (page.nextCursor === null) break
      after = page.nextCursor
    }
  }
  return { jobs, nextCursor: null }
}

function cursorOf(group: Group, after: string | undefined): string {
  return after === undefined ? group.tag : `${group.tag}~${after}`
}

function parseCursor(cursor: string | undefined, groups: readonly Group[]): { readonly group: number; readonly after: string | undefined } {
  if (cursor === undefined) return { group: 0, after: undefined }
  const m = /^([qrfs])(?:~([A-Za-z0-9._:-]{1,200}))?$/.exec(cursor)
  const group = m === null ? -1 : groups.findIndex((g) => g.tag === m[1])
  if (m === null || group < 0) {
    throw new AppError('BAD_REQUEST', 'query.cursor: must be the nextCursor of an earlier page of the same listing (same status filter)', { field: 'query.cursor' })
  }
  return { group, after: m[2] }
}
