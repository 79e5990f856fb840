/**
 * The /healthz prober of the end-to-end scenario, a child process of its own (so that neither the
 * server's nor the load generator's event loop delays it): GET /healthz on a keep-alive
 * connection, the next request `intervalMs` after each response, every latency filed under the
 * phase the orchestrator last named. `stop` answers with p50/p99/max per phase.
 *
 *   fork('bench/e2e-probe.ts', [url, intervalMs]); send {phase: 'writes'}; …; send {stop: true}
 */
import { Agent, get } from 'node:http'
import { latencyStats, type LatencyStats } from './latency.js'

import { PROBE_READY, type ProbeCommand, type ProbeReport } from './e2e-messages.js'

if (process.send === undefined) throw new Error('bench/e2e-probe.ts must be forked with an IPC channel')
const [url = '', interval = '10'] = process.argv.slice(2)
const intervalMs = Number(interval)
const agent = new Agent({ keepAlive: true, maxSockets: 1 })
const samples = new Map<string, number[]>()
const failures = new Map<string, number>()
let phase = 'idle'
let stopping = false

function once(): Promise<boolean> {
  return new Promise((resolve) => {
    const req = get(`${url}/healthz`, { agent, timeout: 30_000 }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode === 200))
      res.on('error', () => resolve(false))
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', () => resolve(false))
  })
}

let ready = false
const loop = (async () => {
  while (!stopping) {
    const at = phase
    const t0 = performance.now()
    const ok = await once()
    if (ok && !ready) {
      ready = true
      process.send?.(PROBE_READY)
    }
    const ms = performance.now() - t0
    if (!samples.has(at)) samples.set(at, [])
    samples.get(at)!.push(ms)
    if (!ok) failures.set(at, (failures.get(at) ?? 0) + 1)
    await new Promise((r) => setTimeout(r, intervalMs))
  }
})()

process.on('message', (cmd: ProbeCommand) => {
  if ('phase' in cmd) {
    phase = cmd.phase
    return
  }
  stopping = true
  void loop.then(() => {
    const report: Record<string, LatencyStats> = {}
    for (const [name, s] of samples) report[name] = latencyStats(s, failures.get(name) ?? 0)
    agent.destroy()
    process.send?.(report satisfies ProbeReport, () => process.disconnect())
  })
})
