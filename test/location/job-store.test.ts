/** The JobStore contract against every adapter. */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before } from 'node:test'
import { FileJobStore } from '../../src/location/file-job-store.js'
import { LIST_SCAN_BUDGET } from '../../src/location/file-job-archive.js'
import { MemJobStore } from '../../src/location/mem-job-store.js'
import { PostgresJobStore } from '../../src/location/postgres-job-store.js'
import { startPostgres, type PostgresServer } from '../support/postgres.js'
import { jobStoreContract } from './job-store-contract.js'
import { jobStoreLoadContract } from './job-store-contract-load.js'
import type { MakeJobStore } from './job-store-contract.js'

const both = (name: string, make: MakeJobStore): void => {
  jobStoreContract(name, make)
  jobStoreLoadContract(name, make)
}

both('mem', async () => {
  const s = new MemJobStore()
  return { open: async () => s, destroy: async () => undefined }
})

/** A file store per fixture, counting its reads; `flushAfter` as given (default: the adapter's). */
const fileStore =
  (flushAfter?: number): MakeJobStore =>
  async () => {
    const root = await mkdtemp(join(tmpdir(), 'compactd-jobs-'))
    let reads = 0
    return {
      open: async () => new FileJobStore(join(root, 'jobs'), { ...(flushAfter === undefined ? {} : { flushAfter }), onRead: () => reads++ }),
      destroy: () => rm(root, { recursive: true, force: true }),
      reads: { count: () => reads, bound: (limit, filtered) => limit + (filtered ? LIST_SCAN_BUDGET : 0) + 8 },
    }
  }
// flushAfter 1: final jobs move out of the document at the next write, so the suite exercises the
// archive at every step; under load, the default batches the moves.
jobStoreContract('file', fileStore(1))
jobStoreLoadContract('file', fileStore())

let pg: PostgresServer
before(async () => {
  pg = await startPostgres()
})
after(async () => {
  await pg.stop()
})

/** Each fixture a fresh schema; every client counts the rows its statements return. */
const postgresStore: MakeJobStore = async () => {
  const url = await pg.schemaUrl()
  let rows = 0
  return {
    open: () => PostgresJobStore.open({ connectionString: url, onRows: (n) => (rows += n) }),
    destroy: async () => undefined,
    reads: { count: () => rows, bound: (limit) => limit + 1 },
  }
}
jobStoreContract('postgres', postgresStore)
jobStoreLoadContract('postgres', postgresStore)
