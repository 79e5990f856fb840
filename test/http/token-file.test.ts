import assert from 'node:assert/strict'
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { BearerTokens } from '../../src/http/auth.js'
import { TokenFileWatcher, type TokenFileLog } from '../../src/http/token-file.js'

const A = 'token-a-0123456789'
const B = 'token-b-0123456789'

interface Entry {
  readonly level: 'info' | 'error'
  readonly obj: object
  readonly msg: string
}

async function setUp(t: TestContext, text: string) {
  const dir = await mkdtemp(join(tmpdir(), 'compactd-token-file-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const path = join(dir, 'tokens')
  await writeFile(path, text)
  const logged: Entry[] = []
  const waiters: Array<() => void> = []
  const push = (e: Entry): void => {
    logged.push(e)
    for (const w of waiters.splice(0)) w()
  }
  const log: TokenFileLog = { info: (obj, msg) => push({ level: 'info', obj, msg }), error: (obj, msg) => push({ level: 'error', obj, msg }) }
  const tokens = new BearerTokens([A])
  const watcher = new TokenFileWatcher({ path, tokens, initial: [A], log, intervalMs: 10 })
  t.after(() => watcher.stop())
  const nextLog = (): Promise<void> => new Promise((resolve) => waiters.push(resolve))
  return { path, tokens, watcher, logged, nextLog }
}

describe('BearerTokens', () => {
  it('accepts any of its tokens, nothing else, and swaps them whole', () => {
    const tokens = new BearerTokens([A, B])
    assert.deepEqual([tokens.accepts(A), tokens.accepts(B), tokens.accepts('token-c-0123456789'), tokens.accepts('')], [true, true, false, false])
    tokens.replace([B])
    assert.deepEqual([tokens.accepts(A), tokens.accepts(B), tokens.size], [false, true, 1])
    assert.throws(() => tokens.replace([]), RangeError)
  })
})

describe('TokenFileWatcher', () => {
  it('applies a changed file, and says nothing of an unchanged one unless a signal asked', async (t) => {
    const { path, tokens, watcher, logged } = await setUp(t, `${A}\n`)
    assert.deepEqual(await watcher.reload('interval'), { kind: 'unchanged' })
    assert.equal(logged.length, 0, 'the tokens read at start-up are already in force')
    await writeFile(path, `${B}\n${A}\n`)
    assert.deepEqual(await watcher.reload('interval'), { kind: 'replaced', tokens: 2 })
    assert.ok(tokens.accepts(B) && tokens.accepts(A))
    await writeFile(path, `# reordered\n${A}\n${B}\n`)
    assert.deepEqual(await watcher.reload('interval'), { kind: 'unchanged' })
    assert.deepEqual(await watcher.reload('signal'), { kind: 'unchanged' })
    assert.deepEqual(
      logged.map((e) => [e.level, e.msg]),
      [
        ['info', 'auth tokens replaced from the token file'],
        ['info', 'auth token file read again: unchanged'],
      ],
    )
  })

  it('keeps the tokens in force when the file is bad or gone, logging each problem once', async (t) => {
    const { path, tokens, watcher, logged } = await setUp(t, `${A}\n`)
    await writeFile(path, 'short\n')
    assert.equal((await watcher.reload('interval')).kind, 'refused')
    for (let i = 0; i < 2; i++) assert.equal((await watcher.reload('interval')).kind, 'unchanged', 'the same bad file is not parsed again')
    await unlink(path)
    for (let i = 0; i < 3; i++) assert.equal((await watcher.reload('interval')).kind, 'refused')
    assert.ok(tokens.accepts(A))
    assert.deepEqual(
      logged.map((e) => [e.level, e.msg]),
      [
        ['error', `auth token file not applied, the tokens in force stay: ${path}: line 1: a token must be at least 16 characters`],
        ['error', `auth token file not applied, the tokens in force stay: cannot read ${path} (ENOENT)`],
      ],
    )
    await writeFile(path, `${B}\n`)
    assert.deepEqual(await watcher.reload('interval'), { kind: 'replaced', tokens: 1 })
    assert.ok(!tokens.accepts(A) && tokens.accepts(B))
    assert.ok(!JSON.stringify(logged).includes(A) && !JSON.stringify(logged).includes(B), 'no token is logged')
  })

  it('reads the file again on its own once started', async (t) => {
    const { path, tokens, watcher, nextLog } = await setUp(t, `${A}\n`)
    const logged = nextLog()
    watcher.start()
    await writeFile(path, `${B}\n`)
    await logged
    assert.ok(tokens.accepts(B) && !tokens.accepts(A))
  })
})
