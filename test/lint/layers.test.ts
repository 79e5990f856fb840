/**
 * The layer rule (eslint-layers.js) really fails an upward import, through the project's own
 * ESLint configuration: each case lints a line of source as if it were in a real file of a layer.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ESLint } from 'eslint'

const eslint = new ESLint({ cwd: process.cwd() })

async function layerErrors(filePath: string, source: string): Promise<string[]> {
  const [result] = await eslint.lintText(source, { filePath })
  return (result?.messages ?? []).filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message)
}

describe('import layers', () => {
  it('refuses an import of a layer above', async () => {
    const errors = await layerErrors('src/shard/state.ts', "export type { Compactor } from '../compact/compactor.js'\n")
    assert.equal(errors.length, 1)
    assert.match(errors[0] as string, /shard must not import compact \(a layer above it\)/)
  })

  it('refuses the engine importing shards, and a peer importing a peer', async () => {
    assert.equal((await layerErrors('src/engine/runs.ts', "export type { Shards } from '../shard/shards.js'\n")).length, 1)
    assert.match((await layerErrors('src/trace/trace.ts', "export type { Updates } from '../columnar/updates.js'\n"))[0] ?? '', /a peer layer/)
    assert.equal((await layerErrors('src/engine/merge/merge-kernel.ts', "export { AppError } from '../../http/auth.js'\n")).length, 1)
  })

  it('allows imports down the layers and within a layer', async () => {
    assert.deepEqual(await layerErrors('src/compact/plan.ts', "export type { Shards } from '../shard/shards.js'\nexport type { Chunk } from '../engine/runs.js'\nexport type { HeuristicVerdict } from './plan.js'\n"), [])
    assert.deepEqual(await layerErrors('routes/data.ts', "export type { Shards } from '../src/shard/shards.js'\n"), [])
  })
})
