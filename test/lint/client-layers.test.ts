/**
 * The operator clients' import rule (eslint-layers.js CLIENTS): the API client imports nothing of
 * the server, compactctl and the console import only the client, and no server layer imports them.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ESLint } from 'eslint'

const eslint = new ESLint({ cwd: process.cwd() })

async function layerErrors(filePath: string, source: string): Promise<string[]> {
  const [result] = await eslint.lintText(source, { filePath })
  return (result?.messages ?? []).filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message)
}

describe('operator client imports', () => {
  it('refuses a client importing the server', async () => {
    assert.match((await layerErrors('src/client/format.ts', "export type { Shards } from '../shard/shards.js'\n"))[0] ?? '', /client must not import shard \(the server: clients speak HTTP only\)/)
    assert.equal((await layerErrors('src/cli/output.ts', "export { AppError } from '../errors.js'\n")).length, 1)
    assert.equal((await layerErrors('ui/src/widgets.tsx', "export type { Compactor } from '../../src/compact/compactor.js'\n")).length, 1)
  })

  it('refuses the server importing a client, and the CLI importing the console', async () => {
    assert.match((await layerErrors('routes/ui.ts', "export { ApiClient } from '../src/client/api-client.js'\n"))[0] ?? '', /an operator client/)
    assert.equal((await layerErrors('src/cli/output.ts', "export { href } from '../../ui/src/router.js'\n")).length, 1)
  })

  it('allows the CLI and the console to import the client', async () => {
    assert.deepEqual(await layerErrors('src/cli/output.ts', "export { ApiClient } from '../client/api-client.js'\n"), [])
    assert.deepEqual(await layerErrors('ui/src/widgets.tsx', "export { ApiClient } from '../../src/client/api-client.js'\n"), [])
  })
})
