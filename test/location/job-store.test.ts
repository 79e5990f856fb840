/** The JobStore contract against every adapter. */
import { MemJobStore } from '../../src/location/mem-job-store.js'
import { jobStoreContract } from './job-store-contract.js'
import { jobStoreLoadContract } from './job-store-contract-load.js'
import type { MakeJobStore } from './job-store-contract.js'

const mem: MakeJobStore = async () => {
  const s = new MemJobStore()
  return { open: async () => s, destroy: async () => undefined }
}
jobStoreContract('mem', mem)
jobStoreLoadContract('mem', mem)
