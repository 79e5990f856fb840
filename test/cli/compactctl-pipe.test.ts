/**
 * compactctl writing into a pipe whose reader went away (`compactctl jobs ls | head -1`, a pager
 * quit early): the command ends quietly with exit 0, as `shards read` does, instead of dying on
 * the EPIPE with a stack trace. The reader is gone before compactctl writes (its end of the pipe
 * is closed as the child starts), so every write fails: deterministic, no timing.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { startCtl } from '../support/compactctl.js'
import { startOperatorServer } from '../support/operator-server.js'

describe('compactctl into a closed pipe', { timeout: 120_000 }, () => {
  for (const args of [['configs', 'get'], ['configs', 'get', '--json'], ['status']]) {
    it(`${args.join(' ')} ends with exit 0 and nothing on stderr`, async (t) => {
      const s = await startOperatorServer(t)
      const child = startCtl(s, args)
      child.proc.stdout?.destroy()
      const run = await child.done
      assert.equal(run.stderr, '', 'no stack trace')
      assert.equal(run.code, 0)
    })
  }
})
