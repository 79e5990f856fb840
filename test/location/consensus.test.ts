/** The Consensus contract against every adapter, plus each adapter's own rules. */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { FileConsensus } from '../../src/location/file-consensus.js'
import { LocationError } from '../../src/location/errors.js'
import { MemConsensus } from '../../src/location/mem-consensus.js'
import { openConsensus } from '../../src/location/open.js'
import { PostgresConsensus } from '../../src/location/postgres-consensus.js'
import { LineReader } from '../support/line-reader.js'
import { startPostgres, type PostgresServer } from '../support/postgres.js'
import { consensusContract, fill, text, v } from './consensus-contract.js'

consensusContract('mem', async () => {
  const c = new MemConsensus()
  return { open: async () => c, destroy: async () => undefined }
})

consensusContract('file', async () => {
  const root = await mkdtemp(join(tmpdir(), 'compactd-consensus-'))
  return {
    open: async () => openConsensus(`file://${root}/store`),
    destroy: () => rm(root, { recursive: true, force: true }),
  }
})

let pg: PostgresServer
before(async () => {
  pg = await startPostgres()
})
after(async () => {
  await pg.stop()
})

consensusContract('postgres', async () => {
  const url = await pg.schemaUrl()
  return { open: () => openConsensus(url), destroy: async () => undefined }
})

describe('FileConsensus', () => {
  let root: string
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'compactd-fileconsensus-'))
  })
  after(async () => {
    await rm(root, { recursive: true, force: true })
  })

  it('a writer whose head check predates a truncation cannot re-create the truncated seqno', async () => {
    const dir = join(root, 'stale')
    const fresh = new FileConsensus(dir)
    let stalled: Promise<void> | undefined
    // The stale writer checks the head (1), then, before its link, the world moves on: others write
    // 2..5 and truncate below 4, which leaves seqno 2 a tombstone whose name the link cannot take.
    const stale = new FileConsensus(dir, {
      beforeLink: async () => {
        stalled ??= (async () => {
          for (let s = 2; s <= 5; s++) await fresh.compareAndSet('k', s - 1, v(s))
          assert.equal(await fresh.truncate('k', 4), 4)
        })()
        await stalled
      },
    })
    await fill(fresh, 'k', 2)
    const res = await stale.compareAndSet('k', 1, v(2, 'stale'))
    assert.equal(res.kind === 'mismatch' ? text(res.current) : res.kind, '5:v5')
    assert.deepEqual((await fresh.scan('k', 0, 10)).map(text), ['4:v4', '5:v5'])
    const hex = Buffer.from('k').toString('hex')
    const names = (await readdir(join(dir, hex))).sort()
    assert.deepEqual(names, ['00000000000000000000', '00000000000000000001', '00000000000000000002', '00000000000000000003', '00000000000000000004', '00000000000000000005', 'floor'], 'no temp file is left')
    for (const tomb of names.slice(0, 4)) assert.equal((await readFile(join(dir, hex, tomb))).byteLength, 0, `${tomb} is an empty tombstone`)
    await fresh.close()
    await stale.close()
  })

  /**
   * A reader that pauses at `step` once, while others write seqnos 2..`upTo` and truncate below
   * `upTo`; the reader's key holds 0 and 1 before.
   */
  async function readerRacingTruncate(dir: string, step: 'floor' | 'version', upTo: number): Promise<{ reader: FileConsensus; writer: FileConsensus }> {
    const writer = new FileConsensus(dir)
    let raced: Promise<void> | undefined
    const reader = new FileConsensus(dir, {
      beforeRead: async (_key, at) => {
        if (at !== step) return
        raced ??= (async () => {
          for (let s = 2; s <= upTo; s++) await writer.compareAndSet('k', s - 1, v(s))
          await writer.truncate('k', upTo)
        })()
        await raced
      },
    })
    await fill(writer, 'k', 2)
    return { reader, writer }
  }

  it('a reader whose listing predates a truncation lists again: the head is never missing', async () => {
    const { reader, writer } = await readerRacingTruncate(join(root, 'listing'), 'floor', 3)
    assert.equal(text(await reader.head('k')), '3:v3')
    await reader.close()
    await writer.close()
  })

  it('a reader whose version is truncated before it reads it never returns the tombstone', async () => {
    const head = await readerRacingTruncate(join(root, 'head-tomb'), 'version', 2)
    assert.equal(text(await head.reader.head('k')), '2:v2')
    const scan = await readerRacingTruncate(join(root, 'scan-tomb'), 'version', 2)
    assert.deepEqual((await scan.reader.scan('k', 0, 10)).map(text), ['2:v2'])
    for (const c of [head.reader, head.writer, scan.reader, scan.writer]) await c.close()
  })

  it('a truncate cut short after raising its floor leaves whole versions that the next truncate empties', async () => {
    const dir = join(root, 'cut-short')
    const c = new FileConsensus(dir)
    await fill(c, 'k', 12)
    const keyDir = join(dir, Buffer.from('k').toString('hex'))
    const sizes = async (): Promise<number[]> => Promise.all(Array.from({ length: 12 }, async (_, s) => (await readFile(join(keyDir, String(s).padStart(20, '0')))).byteLength))
    await c.truncate('k', 2)
    // A crash after the floor rose to 8 and versions 2..4 were emptied, before 5..7 were.
    await writeFile(join(keyDir, 'floor', '00000000000000000008'), '')
    for (const s of [2, 3, 4]) await writeFile(join(keyDir, String(s).padStart(20, '0')), '')
    assert.deepEqual((await c.scan('k', 0, 20)).map(text), ['8:v8', '9:v9', '10:v10', '11:v11'], 'readers see the floor')
    assert.deepEqual((await sizes()).map((n) => n > 0), [false, false, false, false, false, true, true, true, true, true, true, true])
    assert.equal(await c.truncate('k', 10), 2)
    assert.deepEqual((await sizes()).map((n) => n > 0), [false, false, false, false, false, false, false, false, false, false, true, true], 'the versions the cut-short truncate left are emptied')
    assert.deepEqual((await c.scan('k', 0, 20)).map(text), ['10:v10', '11:v11'])
    await c.close()
  })

  it('a key whose floor is above every version (a copy made while written) is a permanent error naming the key, not one to retry', async () => {
    const dir = join(root, 'torn-copy')
    const c = new FileConsensus(dir)
    await fill(c, 'k', 4)
    await c.close()
    // What cp -a of a running store can leave: the versions it listed, and a floor raised after.
    await mkdir(join(dir, Buffer.from('k').toString('hex'), 'floor'), { recursive: true })
    await writeFile(join(dir, Buffer.from('k').toString('hex'), 'floor', '00000000000000000070'), '')
    const restored = new FileConsensus(dir)
    for (const read of [() => restored.head('k'), () => restored.scan('k', 0, 10), () => restored.compareAndSet('k', 3, v(4))]) {
      await assert.rejects(read(), (err: unknown) => err instanceof LocationError && err.permanent && /"k": its floor 70 is above every version it holds \(the last is 3\)/.test(err.message))
    }
    await restored.close()
  })

  it('ignores temp files and foreign names; keeps one floor marker', async () => {
    const dir = join(root, 'temps')
    const c = new FileConsensus(dir)
    await fill(c, 'k', 6)
    const keyDir = join(dir, Buffer.from('k').toString('hex'))
    await writeFile(join(keyDir, '.tmp-0123456789abcdef~'), 'half a write')
    await writeFile(join(keyDir, '99999999999999999999.bak'), 'not a version')
    await writeFile(join(dir, 'not-hex'), 'foreign')
    assert.equal(text(await c.head('k')), '5:v5')
    assert.deepEqual(await c.list(), ['k'])
    await c.truncate('k', 2)
    await c.truncate('k', 4)
    assert.deepEqual(await readdir(join(keyDir, 'floor')), ['00000000000000000004'])
    assert.deepEqual(
      (await c.scan('k', 0, 10)).map((x) => x.seqno),
      [4, 5],
    )
    await c.close()
  })

  it('child processes racing on one directory: exactly one winner per seqno', async () => {
    const dir = join(root, 'processes')
    const rounds = 40
    const script = fileURLToPath(new URL('./file-consensus-racer.ts', import.meta.url))
    const racers = Array.from({ length: 3 }, (_, i) => {
      const child = spawn(process.execPath, ['--import', 'tsx', script, dir, `p${i}`], { stdio: ['pipe', 'pipe', 'inherit'] })
      return { child, lines: new LineReader(child.stdout), exit: once(child, 'exit') }
    })
    try {
      assert.deepEqual(await Promise.all(racers.map((r) => r.lines.next())), ['ready', 'ready', 'ready'])
      const ask = async (i: number, command: string): Promise<string> => {
        const racer = racers[i]
        assert.ok(racer !== undefined)
        racer.child.stdin.write(`${command}\n`)
        return racer.lines.next()
      }
      const winners: string[] = []
      for (let round = 0; round < rounds; round++) {
        // All three race for the same seqno at once.
        const answers = await Promise.all(racers.map((_, i) => ask(i, `cas ${round === 0 ? 'null' : round - 1} ${round}`)))
        const won = answers.flatMap((a, i) => (a === 'committed' ? [i] : []))
        assert.equal(won.length, 1, `round ${round}: ${answers.join(', ')}`)
        for (const a of answers) if (a !== 'committed') assert.equal(a, `mismatch ${round}`)
        winners.push(`${round}:p${won[0] ?? -1}:${round}`)
        if (round % 10 === 9) {
          assert.equal(await ask(round % 3, `truncate ${round - 3}`), `truncated ${round - 3 - Math.max(0, round - 13)}`)
          // A stale writer in another process cannot re-create a truncated seqno.
          assert.equal(await ask((round + 1) % 3, `cas ${round - 6} ${round - 5}`), `mismatch ${round}`)
        }
      }
      const c = new FileConsensus(dir)
      const kept = await c.scan('race', 0, 1000)
      await c.close()
      assert.deepEqual(kept.map(text), winners.slice(rounds - kept.length))
      assert.equal(kept[0]?.seqno, rounds - 4, 'kept from the last truncation on')
    } finally {
      for (const racer of racers) racer.child.stdin.end()
      await Promise.all(racers.map((r) => r.exit))
    }
    // NB: outside `finally`, so a failure above is reported as itself.
    assert.deepEqual(
      racers.map((r) => r.child.exitCode),
      [0, 0, 0],
    )
  })
})

describe('PostgresConsensus', () => {
  it('an unreachable server is a determinate error at open', async () => {
    const closed = await startPostgres()
    const url = closed.url
    await closed.stop()
    await assert.rejects(PostgresConsensus.open({ connectionString: url, connectTimeoutMs: 2000 }), { name: 'LocationError', kind: 'determinate' })
  })

  it('creating the table from many clients at once is safe', async () => {
    const url = await pg.schemaUrl()
    const clients = await Promise.all(Array.from({ length: 6 }, () => PostgresConsensus.open({ connectionString: url })))
    assert.deepEqual(await clients[0]?.compareAndSet('k', null, v(0)), { kind: 'committed' })
    assert.equal(text(await clients[5]?.head('k')), '0:v0')
    await Promise.all(clients.map((c) => c.close()))
  })
})
