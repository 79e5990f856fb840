/**
 * What every command gets: the ApiClient for `--url`/`--token` (or COMPACTD_URL/COMPACTD_TOKEN),
 * and the Output for `--json`. `run` turns a command's result or error into the process's exit code.
 */
import { InvalidArgumentError, type Command } from 'commander'
import { ApiClient } from '../client/api-client.js'
import { EXIT, UsageError, type ExitCode } from './exit-codes.js'
import { httpStreamSender } from './http-upload.js'
import { Output, processIo, type Io } from './output.js'

export const DEFAULT_URL = 'http://127.0.0.1:6880'

export interface GlobalOptions {
  readonly url: string
  readonly token?: string
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
  const token = g.token === undefined || g.token === '' ? null : g.token
  return new ApiClient({ baseUrl: base.href, token, sendStream: httpStreamSender })
}

/** Runs a command body and sets the exit code from its result (or from its error, written in one line). */
export async function run(cmd: Command, body: (ctx: Ctx) => Promise<ExitCode | void>, io: Io = processIo): Promise<void> {
  const g = cmd.optsWithGlobals<GlobalOptions>()
  const out = new Output(g.json === true, io)
  try {
    process.exitCode = (await body({ client: clientOf(g), out })) ?? EXIT.OK
  } catch (err) {
    process.exitCode = out.error(err)
  }
}

/** A positive integer flag value; commander reports anything else as a usage error naming the flag. */
export function positiveInt(): (value: string) => number {
  return (value) => {
    if (!/^[1-9][0-9]*$/.test(value)) throw new InvalidArgumentError('must be a positive integer')
    return Number(value)
  }
}
