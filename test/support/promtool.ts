/**
 * Runs Prometheus' `promtool` (Debian package `prometheus`; scripts/ensure-test-deps.sh installs
 * it) and returns what it said.
 */
import { runTool, type ToolOptions, type ToolRun } from './run-tool.js'

export function promtool(args: readonly string[], opts: ToolOptions = {}): Promise<ToolRun> {
  return runTool('promtool', args, {
    missing: 'promtool not found: install the Debian package prometheus (npm test does, through scripts/ensure-test-deps.sh)',
    ...opts,
  })
}
