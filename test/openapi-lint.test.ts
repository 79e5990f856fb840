/**
 * `redocly lint` with the recommended rules (redocly.yaml) on openapi/openapi.json: no error and
 * no warning. Exceptions live in .redocly.lint-ignore.yaml, each with its reason.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { runTool } from './support/run-tool.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

describe('redocly lint openapi/openapi.json', () => {
  it('finds no error and no warning', { timeout: 120_000 }, async () => {
    const r = await runTool(process.execPath, ['node_modules/@redocly/cli/bin/cli.js', 'lint', 'openapi/openapi.json', '--format=json'], {
      cwd: ROOT,
      timeoutMs: 110_000,
      env: { REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_NOTIFICATIONS: 'true', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
    })
    const start = r.stdout.indexOf('{')
    assert.ok(start >= 0, `redocly printed no report (exit ${r.code}): ${r.stderr}`)
    const report = JSON.parse(r.stdout.slice(start)) as { totals: { errors: number; warnings: number }; problems: Array<{ ruleId: string; message: string; location: Array<{ pointer: string }> }> }
    const problems = report.problems.map((p) => `${p.ruleId} at ${p.location[0]?.pointer ?? '?'}: ${p.message}`)
    assert.deepEqual(problems, [])
    assert.deepEqual(report.totals, { ...report.totals, errors: 0, warnings: 0 })
    assert.equal(r.code, 0)
  })
})
