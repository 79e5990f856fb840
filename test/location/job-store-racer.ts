/**
 * A child process for the cross-process JobStore tests (not a test file itself).
 *
 *   node --import tsx job-store-racer.ts <consensus url> <name>
 *
 * Opens the job store beside `<consensus url>` (openJobStore), prints `ready`, then answers each
 * command line on stdin with one line of JSON, and exits when stdin ends:
 *   `drain <now> <leaseMs>`              claims until none is queued, finishing each (succeeded,
 *                                        data `{ by: <name> }`) → `[{ id, token }, …]` claimed
 *   `claim <now> <leaseMs>`              → the record or null
 *   `renew <id> <token> <now> <leaseMs>` → the record or null
 *   `finish <id> <token> <status> <now>` → the record or null
 *   `release <id> <token> <now>`         → the record or null
 */
import { createInterface } from 'node:readline'
import type { FinalJobStatus, JobRecord } from '../../src/location/job-store.js'
import { openJobStore } from '../../src/location/open.js'

const [url, name] = process.argv.slice(2)
if (url === undefined || name === undefined) throw new Error('usage: <consensus url> <name>')

const store = await openJobStore(url)

async function answer(line: string): Promise<unknown> {
  const [cmd, ...args] = line.trim().split(' ')
  const n = (i: number): number => Number(args[i])
  switch (cmd) {
    case 'drain': {
      const claimed: Array<{ id: string; token: number }> = []
      for (let i = 0; i < 100_000; i++) {
        const job: JobRecord | null = await store.claim(name as string, n(0), n(1))
        if (job === null) return claimed
        claimed.push({ id: job.id, token: job.token })
        const done = await store.finish(job.id, job.token, 'succeeded', { by: name }, n(0))
        if (done === null) throw new Error(`${name} lost ${job.id} it had just claimed`)
      }
      throw new Error('drain did not end')
    }
    case 'claim':
      return store.claim(name as string, n(0), n(1))
    case 'renew':
      return store.renew(args[0] as string, n(1), n(2), n(3), { renewedBy: name })
    case 'finish':
      return store.finish(args[0] as string, n(1), args[2] as FinalJobStatus, { by: name }, n(3))
    case 'release':
      return store.release(args[0] as string, n(1), n(2))
    default:
      throw new Error(`unknown command: ${line}`)
  }
}

process.stdout.write('ready\n')
for await (const line of createInterface({ input: process.stdin })) {
  process.stdout.write(`${JSON.stringify(await answer(line))}\n`)
}
await store.close()
