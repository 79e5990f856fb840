/**
 * Following a compaction to its end through its event stream, with a progress bar on stderr: a
 * live cli-progress bar on a terminal, one line per progress event otherwise (logs, pipes, tests),
 * nothing with --json. Returns the final record, and the exit code its outcome maps to.
 */
import cliProgress from 'cli-progress'
import type { ApiClient } from '../client/api-client.js'
import { fractionOf, isFinal, outcomeOf, progressLine } from '../client/compaction-view.js'
import type { CompactionJson } from '../client/wire.js'
import { EXIT, type ExitCode } from './exit-codes.js'
import type { Output } from './output.js'

export function exitCodeForOutcome(c: CompactionJson): ExitCode {
  const o = outcomeOf(c)
  if (o === 'failed') return EXIT.COMPACTION_FAILED
  if (o === 'nothing') return EXIT.COMPACTION_NO_EFFECT
  return EXIT.OK
}

export async function follow(client: ApiClient, start: CompactionJson, out: Output): Promise<CompactionJson> {
  if (isFinal(start)) return start
  const bar = out.json ? null : out.io.err.isTTY === true ? new TtyBar(out) : new LineBar(out)
  let last = start
  bar?.update(start)
  try {
    for await (const e of client.events(start.id)) {
      last = e.data
      bar?.update(last)
    }
  } finally {
    bar?.stop()
  }
  // A stream that ended without `done` (a proxy cut it): ask for the record itself.
  return isFinal(last) ? last : client.compaction(start.id)
}

interface Bar {
  update(c: CompactionJson): void
  stop(): void
}

class TtyBar implements Bar {
  readonly #bar: cliProgress.SingleBar

  constructor(out: Output) {
    this.#bar = new cliProgress.SingleBar(
      { stream: out.io.err, format: '{id} [{bar}] {percentage}% | {status} | {line}', hideCursor: true, clearOnComplete: false, barsize: 30 },
      cliProgress.Presets.shades_classic,
    )
    this.#bar.start(100, 0, { id: '', status: '', line: '' })
  }

  update(c: CompactionJson): void {
    this.#bar.update(Math.round(fractionOf(c) * 100), { id: c.id, status: c.status, line: progressLine(c) })
  }

  stop(): void {
    this.#bar.stop()
  }
}

/** Without a terminal: a plain line per change, e.g. `c… running  42% 3/8 chunks · …`. */
class LineBar implements Bar {
  readonly #out: Output
  #last = ''

  constructor(out: Output) {
    this.#out = out
  }

  update(c: CompactionJson): void {
    const pct = `${Math.round(fractionOf(c) * 100)}%`.padStart(4)
    const width = 20
    const filled = Math.round(fractionOf(c) * width)
    const line = `${c.id} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${pct} ${c.status} · ${progressLine(c)}`
    if (line === this.#last) return
    this.#last = line
    this.#out.io.err.write(`${line}\n`)
  }

  stop(): void {}
}
