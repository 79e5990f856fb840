/**
 * A child process for the cross-process FileConsensus test (not a test file itself).
 *
 *   node --import tsx file-consensus-racer.ts <root> <id>
 *
 * Prints `ready`, then answers one line per command line on stdin, against key `race`:
 *   `cas <expected|null> <seqno>` → `committed` | `mismatch <current seqno|null>`  (data `<id>:<seqno>`)
 *   `truncate <seqno>`            → `truncated <count>`
 * and exits when stdin ends. The parent sends the same `cas` to every racer at once, so they
 * contend for each seqno from separate processes.
 */
import { createInterface } from 'node:readline'
import { FileConsensus } from '../../src/location/file-consensus.js'

const [root, id] = process.argv.slice(2)
if (root === undefined || id === undefined) throw new Error('usage: <root> <id>')

const consensus = new FileConsensus(root)
const enc = new TextEncoder()

async function answer(line: string): Promise<string> {
  const [cmd, a, b] = line.trim().split(' ')
  if (cmd === 'cas' && a !== undefined && b !== undefined) {
    const seqno = Number(b)
    const res = await consensus.compareAndSet('race', a === 'null' ? null : Number(a), { seqno, data: enc.encode(`${id}:${seqno}`) })
    return res.kind === 'committed' ? 'committed' : `mismatch ${res.current?.seqno ?? 'null'}`
  }
  if (cmd === 'truncate' && a !== undefined) return `truncated ${await consensus.truncate('race', Number(a))}`
  throw new Error(`unknown command: ${line}`)
}

process.stdout.write('ready\n')
for await (const line of createInterface({ input: process.stdin })) {
  process.stdout.write(`${await answer(line)}\n`)
}
await consensus.close()
