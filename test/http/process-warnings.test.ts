/**
 * Process warnings (what background work reports when it fails) are warn lines of the JSON log,
 * with their code, and Node's own printer (untimed text on stderr) is gone while they are.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { logProcessWarnings } from '../../src/http/process-warnings.js'

const MODULE = fileURLToPath(new URL('../../src/http/process-warnings.ts', import.meta.url))

describe('process warnings', () => {
  it('become warn lines of the log with their code, instead of text on stderr', async () => {
    // A child process: Node's printer is installed at its start and writes to its stderr.
    const script = `
      import { logProcessWarnings } from ${JSON.stringify(MODULE)}
      logProcessWarnings({ warn: (obj, msg) => process.stdout.write(JSON.stringify({ level: 40, ...obj, msg }) + '\\n') })
      process.emitWarning('a background task of the compactor failed; it runs again: postgres job store rescue: no connection', { code: 'COMPACTD_COMPACTOR' })
      process.emitWarning(Object.assign(new Error('consensus read of "compactd/configs" failed'), { code: 'STORAGE_ERROR' }))
    `
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    const [code] = (await once(child, 'exit')) as [number | null]
    assert.equal(code, 0, stderr)
    assert.equal(stderr, '')
    assert.deepEqual(
      stdout.trim().split('\n').map((l) => JSON.parse(l) as unknown),
      [
        { level: 40, warning: 'Warning', code: 'COMPACTD_COMPACTOR', msg: 'a background task of the compactor failed; it runs again: postgres job store rescue: no connection' },
        { level: 40, warning: 'Error', code: 'STORAGE_ERROR', msg: 'consensus read of "compactd/configs" failed' },
      ],
    )
  })

  it('gives Node its printer back when undone', async () => {
    const before = process.listeners('warning')
    const seen: string[] = []
    const undo = logProcessWarnings({ warn: (_obj: unknown, msg?: string) => void seen.push(String(msg)) } as never)
    try {
      assert.equal(process.listeners('warning').length, 1)
      const emitted = once(process, 'warning')
      process.emitWarning('probe', { code: 'COMPACTD_TEST' })
      await emitted
      assert.deepEqual(seen, ['probe'])
    } finally {
      undo()
    }
    assert.deepEqual(process.listeners('warning'), before)
  })
})
