/**
 * How compactctl writes: human tables (cli-table3) or, with `--json`, exactly one JSON document on
 * stdout; errors as one line on stderr (`compactctl: CODE: message`), or with `--json` as
 * `{"error": {...}}` on stdout. Progress goes to stderr so stdout stays parseable.
 */
import Table from 'cli-table3'
import { isApiError } from '../client/api-client.js'
import { EXIT, exitCodeOf, type ExitCode } from './exit-codes.js'

export interface Io {
  readonly out: NodeJS.WritableStream & { isTTY?: boolean }
  readonly err: NodeJS.WritableStream & { isTTY?: boolean; columns?: number }
}

export const processIo: Io = { out: process.stdout, err: process.stderr }

/**
 * A reader that goes away (`| head`, a pager quit early) ends the command without an error: it has
 * what it wanted. Without a listener, the EPIPE of the next write was an uncaught 'error' event: a
 * stack trace on stderr and exit 1. Another failure to write the output is one line and exit 1.
 */
export function exitOnClosedOutput(streams: readonly NodeJS.WritableStream[] = [process.stdout, process.stderr]): void {
  for (const s of streams) {
    s.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(EXIT.OK)
      // NB: stderr may be the stream that failed; the exit code still says so.
      process.stderr.write(`compactctl: ERROR: cannot write the output: ${err.message}\n`, () => process.exit(EXIT.FAILURE))
    })
  }
}

export class Output {
  readonly json: boolean
  readonly io: Io

  constructor(json: boolean, io: Io = processIo) {
    this.json = json
    this.io = io
  }

  /** The command's result: `value` as JSON with --json, else what `human` prints. */
  result(value: unknown, human: () => string): void {
    this.io.out.write(this.json ? `${JSON.stringify(value, null, 2)}\n` : ensureNewline(human()))
  }

  /** A note for people (stderr; left out with --json). */
  note(text: string): void {
    if (!this.json) this.io.err.write(ensureNewline(text))
  }

  /** Writes the error in one line and returns the exit code to end with. */
  error(err: unknown): ExitCode {
    const code = exitCodeOf(err)
    const apiCode = isApiError(err) ? err.code : err instanceof Error && err.name === 'UsageError' ? 'USAGE' : 'ERROR'
    const message = oneLine(err instanceof Error ? err.message : String(err))
    if (this.json) {
      const status = isApiError(err) ? err.status : undefined
      this.io.out.write(`${JSON.stringify({ error: { code: apiCode, message, ...(status === undefined ? {} : { status }), exitCode: code } })}\n`)
    } else {
      this.io.err.write(`compactctl: ${apiCode}: ${message}\n`)
    }
    return code
  }
}

const ensureNewline = (s: string): string => (s.endsWith('\n') ? s : `${s}\n`)
const oneLine = (s: string): string => s.replace(/\s*\n\s*/g, ' ').trim()

/** A borderless table: `head` and rows of cells. */
export function table(head: readonly string[], rows: readonly (readonly (string | number)[])[], opts: { readonly align?: readonly ('left' | 'right')[] } = {}): string {
  const t = new Table({
    head: [...head],
    style: { head: [], border: [], compact: true, 'padding-left': 0, 'padding-right': 2 },
    chars: { top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '', left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: '' },
    ...(opts.align === undefined ? {} : { colAligns: [...opts.align] }),
  })
  for (const r of rows) t.push(r.map(String))
  return t.toString().replace(/[ \t]+$/gm, '')
}

/** `key: value` lines, keys padded. */
export function facts(pairs: readonly (readonly [string, string])[]): string {
  const width = Math.max(...pairs.map(([k]) => k.length))
  return pairs.map(([k, v]) => `${`${k}:`.padEnd(width + 2)}${v}`).join('\n')
}
