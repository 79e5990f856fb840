/** The messages between the end-to-end orchestrator (e2e.ts) and its /healthz prober (e2e-probe.ts). */
import type { LatencyStats } from './latency.js'

/** Orchestrator → prober: file what follows under a phase, or stop and report. */
export type ProbeCommand = { readonly phase: string } | { readonly stop: true }

/** Prober → orchestrator, at the end: the figures of each phase. */
export type ProbeReport = Readonly<Record<string, LatencyStats>>

/** Prober → orchestrator, once, when the first probe has been answered: the prober is running. */
export const PROBE_READY = 'ready'
