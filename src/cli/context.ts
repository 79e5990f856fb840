/**
 * What every command gets: the ApiClient for `--url`/`--token`/`--token-file` (or COMPACTD_URL,
 * COMPACTD_TOKEN, COMPACTD_TOKEN_FILE), and the Output for `--json`. `run` turns a command's result or error into the process's exit code.
 */
import { readFileSync } from 'node:fs'
import { InvalidArgumentError, type Command } from 'commander'
import { ApiClient, ApiError, isApiError } from '../client/api-client.js'
import { EXIT, UsageError, type ExitCode } from './exit-codes.js'
import { httpStreamSender } from './http-upload.js'
import { Output, processIo, type Io } from './output.js'

export const DEFAULT_URL = 'http://127.0.0.1:6880'

export interface GlobalOptions {
  readonly url: string
  readonly token?: string
  readonly tokenFile?: string
  readonly json?: boolean
}

export interface Ctx {
  readonly client: ApiClient
  readonly out: Output
}

/** The client for the global options; a usage error for a URL that is not http(s). */
export function clientOf(g: GlobalOptions): ApiClient {
  let base: URL
  try {
    base = new URL(g.url)
  } catch {
    throw new UsageError(`--url must be an http(s) URL like ${DEFAULT_URL}, got "${g.url}"`)
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new UsageError(`--url must be http:// or https://, got "${g.url}"`)
  const token = g.token !== undefined && g.token !== '' ? g.token : g.tokenFile !== undefined && g.tokenFile !== '' ? tokenFromFile(g.tokenFile) : null
  return new ApiClient({ baseUrl: base.href, token, sendStream: httpStreamSender })
}

/**
 * The token a token file gives: its last token, in the format of the server's token file (one a
 * line, blank lines and `#` comments skipped). The last, because a rotation appends the new token:
 * a client reading the server's own file moves to it as soon as it is there.
 */
function tokenFromFile(path: string): string {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new UsageError(`--token-file: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)})`)
  }
  const tokens = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
  const last = tokens[tokens.length - 1]
  if (last === undefined) throw new UsageError(`--token-file: ${path} holds no token`)
  return last
}

/** Runs a command body and sets the exit code from its result (or from its error, written in one line). */
export async function run(cmd: Command, body: (ctx: Ctx) => Promise<ExitCode | void>, io: Io = processIo): Promise<void> {
  const g = cmd.optsWithGlobals<GlobalOptions>()
  const out = new Output(g.json === true, io)
  try {
    process.exitCode = (await body({ client: clientOf(g), out })) ?? EXIT.OK
  } catch (err) {
    process.exitCode = out.error(withTokenHint(err, g))
  }
}

/**
 * A refused token (401) says which token compactctl sent, or how to give it one: the server's
 * message names neither, and with a token file the likely cause is a rotation the server has not
 * read yet.
 */
function withTokenHint(err: unknown, g: GlobalOptions): unknown {
  if (!isApiError(err) || err.status !== 401) return err
  const hint =
    g.token !== undefined && g.token !== ''
      ? 'compactctl sent the token of --token/COMPACTD_TOKEN'
      : g.tokenFile !== undefined && g.tokenFile !== ''
        ? `compactctl sent the last token of ${g.tokenFile} (--token-file/COMPACTD_TOKEN_FILE); a server takes a token added to its own file once it reads the file again (SIGHUP, or within 30 s)`
        : 'give compactctl the token: COMPACTD_TOKEN, or --token-file/COMPACTD_TOKEN_FILE'
  return new ApiError(err.status, err.code, `${err.message} (${hint})`, err.body)
}

/** A positive integer flag value; commander reports anything else as a usage error naming the flag. */
export function positiveInt(): (value: string) => number {
  return (value) => {
    if (!/^[1-9][0-9]*$/.test(value)) throw new InvalidArgumentError('must be a positive integer')
    return Number(value)
  }
}
