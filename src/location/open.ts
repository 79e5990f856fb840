/**
 * Stores chosen by URL at start-up (docs/operations.md#storage). Every failure is an Error whose one-line message
 * names the URL (passwords redacted) and the rule it broke, fit for a start-up failure.
 *
 *   blob:      mem://   file:///abs/path   file://./relative   s3://bucket/prefix?endpoint=…&region=…&forcePathStyle=true
 *   consensus: mem://   file:///abs/path   file://./relative   postgres://…  postgresql://…
 *   jobs:      beside the consensus store, from its URL (openJobStore)
 */
import { isAbsolute, join, resolve } from 'node:path'
import type { Blob } from './blob.js'
import type { Consensus } from './consensus.js'
import { errorMessage } from './errors.js'
import { FileBlob } from './file-blob.js'
import { FileConsensus } from './file-consensus.js'
import { FileJobStore } from './file-job-store.js'
import type { JobStore } from './job-store.js'
import { MemBlob } from './mem-blob.js'
import { MemConsensus } from './mem-consensus.js'
import { MemJobStore } from './mem-job-store.js'
import { PostgresConsensus } from './postgres-consensus.js'
import { PostgresJobStore } from './postgres-job-store.js'
import { S3Blob } from './s3-blob.js'

export interface OpenOptions {
  /** What `file://./relative` is relative to; default the working directory. */
  readonly baseDir?: string
}

const S3_PARAMS = new Set(['endpoint', 'region', 'forcePathStyle'])

export async function openBlob(url: string, opts: OpenOptions = {}): Promise<Blob> {
  const scheme = schemeOf(url)
  switch (scheme) {
    case 'mem':
      checkMem(url, 'blob')
      return new MemBlob()
    case 'file':
      return new FileBlob(filePath(url, 'blob', opts))
    case 's3':
      return new S3Blob(s3Options(url))
    default:
      throw urlError(url, 'blob', `unknown scheme "${scheme}"; use mem://, file:///abs/path, file://./relative or s3://bucket/prefix`)
  }
}

export async function openConsensus(url: string, opts: OpenOptions = {}): Promise<Consensus> {
  const scheme = schemeOf(url)
  switch (scheme) {
    case 'mem':
      checkMem(url, 'consensus')
      return new MemConsensus()
    case 'file':
      return new FileConsensus(filePath(url, 'consensus', opts))
    case 'postgres':
    case 'postgresql':
      postgresUrl(url, 'consensus')
      try {
        return await PostgresConsensus.open({ connectionString: url })
      } catch (err) {
        throw urlError(url, 'consensus', `cannot be opened: ${errorMessage(err)}`, err)
      }
    default:
      throw urlError(url, 'consensus', `unknown scheme "${scheme}"; use mem://, file:///abs/path, file://./relative or postgres://…`)
  }
}

/** The directory of the file job store inside a file consensus store's root. */
export const JOBS_DIR = 'jobs'

/**
 * The job store that goes with the consensus store `consensusUrl` names, so a cluster's instances
 * share it whenever they share consensus:
 * - `mem://`: a new MemJobStore (this process only);
 * - `file://<root>`: a FileJobStore in `<root>/jobs`. NB: FileConsensus takes only hex-named
 *   directories of its root for keys, so `jobs` is never one; and the jobs live (and are backed up)
 *   with the consensus store whatever its root is called, never in a directory another store's URL
 *   could also name;
 * - `postgres://`: a PostgresJobStore on the same database (its own tables).
 */
export async function openJobStore(consensusUrl: string, opts: OpenOptions = {}): Promise<JobStore> {
  const scheme = schemeOf(consensusUrl)
  switch (scheme) {
    case 'mem':
      checkMem(consensusUrl, 'job')
      return new MemJobStore()
    case 'file':
      return new FileJobStore(join(filePath(consensusUrl, 'job', opts), JOBS_DIR))
    case 'postgres':
    case 'postgresql':
      postgresUrl(consensusUrl, 'job')
      try {
        return await PostgresJobStore.open({ connectionString: consensusUrl })
      } catch (err) {
        throw urlError(consensusUrl, 'job', `cannot be opened: ${errorMessage(err)}`, err)
      }
    default:
      throw urlError(consensusUrl, 'job', `unknown scheme "${scheme}"; use the consensus store's URL: mem://, file:///abs/path, file://./relative or postgres://…`)
  }
}

/**
 * What is wrong with the form of a store URL (null when nothing), without opening the store: the
 * scheme, a mem:// URL's emptiness, a file URL's path, an s3 URL's bucket, parameters and endpoint,
 * a postgres URL's syntax. Start-up settings check it, so a malformed URL is a bad setting.
 */
export function storeUrlProblem(url: string, kind: 'blob' | 'consensus'): string | null {
  const scheme = schemeOf(url)
  try {
    if (scheme === 'mem') checkMem(url, kind)
    else if (scheme === 'file') filePath(url, kind, {})
    else if (scheme === 's3' && kind === 'blob') s3Options(url)
    else if ((scheme === 'postgres' || scheme === 'postgresql') && kind === 'consensus') postgresUrl(url, kind)
    else return kind === 'blob' ? 'use mem://, file:///abs/path, file://./relative or s3://bucket/prefix' : 'use mem://, file:///abs/path, file://./relative or postgres://…'
    return null
  } catch (err) {
    return (err as UrlError).rule ?? errorMessage(err)
  }
}

/** `url` for logs: the password (and any `password` query parameter) replaced by `***`. */
export function describeUrl(url: string): string {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    // Unparseable: redact whatever sits between "://" and "@" after a ':'.
    return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/@:]*):[^/@]*@/i, '$1:***@')
  }
  let redacted = false
  if (parsed.password !== '') {
    parsed.password = 'REDACTED'
    redacted = true
  }
  for (const name of [...parsed.searchParams.keys()]) {
    if (/pass|secret|token/i.test(name)) {
      parsed.searchParams.set(name, 'REDACTED')
      redacted = true
    }
  }
  // Unchanged URLs are returned as given (URL.toString would normalize them).
  return redacted ? parsed.toString().replaceAll('REDACTED', '***') : url
}

function schemeOf(url: string): string {
  const match = /^([a-z][a-z0-9+.-]*):/i.exec(url)
  return match?.[1]?.toLowerCase() ?? ''
}

function checkMem(url: string, what: string): void {
  if (!/^mem:\/\/\/?$/i.test(url)) throw urlError(url, what, 'a mem:// URL takes no host, path or query')
}

/** `file:///abs/path` (or `file://localhost/abs/path`), or `file://./rel` / `file://../rel` (relative to baseDir or cwd). */
function filePath(url: string, what: string, opts: OpenOptions): string {
  const rest = url.slice('file://'.length).replace(/^localhost(?=\/)/i, '')
  if (!/^file:\/\//i.test(url) || rest === '') throw urlError(url, what, 'a file URL is file:///abs/path or file://./relative')
  if (/[?#]/.test(rest)) throw urlError(url, what, 'a file URL takes no query or fragment')
  let path: string
  try {
    path = decodeURIComponent(rest)
  } catch {
    throw urlError(url, what, 'malformed %-escape')
  }
  if (path.includes('\0')) throw urlError(url, what, 'the path contains NUL')
  if (isAbsolute(path)) return path
  if (path === '.' || path === '..' || path.startsWith('./') || path.startsWith('../')) {
    return resolve(opts.baseDir ?? process.cwd(), path)
  }
  throw urlError(url, what, 'a file URL is file:///abs/path or file://./relative (a host is not allowed)')
}

function s3Options(url: string): ConstructorParameters<typeof S3Blob>[0] {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw urlError(url, 'blob', 'not a valid s3://bucket/prefix URL')
  }
  const bucket = parsed.hostname
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw urlError(url, 'blob', `bucket "${bucket}" is not a valid S3 bucket name`)
  if (parsed.username !== '' || parsed.password !== '' || parsed.port !== '') {
    throw urlError(url, 'blob', 'an s3 URL takes no credentials or port (credentials come from the SDK chain; use ?endpoint=)')
  }
  for (const name of parsed.searchParams.keys()) {
    if (!S3_PARAMS.has(name)) throw urlError(url, 'blob', `unknown parameter "${name}"; allowed: ${[...S3_PARAMS].join(', ')}`)
  }
  let prefix = decodeURIComponent(parsed.pathname.replace(/^\/+/, ''))
  if (prefix !== '' && !prefix.endsWith('/')) prefix += '/'
  const endpoint = parsed.searchParams.get('endpoint') ?? undefined
  if (endpoint !== undefined) {
    let e: URL
    try {
      e = new URL(endpoint)
    } catch {
      throw urlError(url, 'blob', `endpoint "${endpoint}" is not a URL`)
    }
    if (e.protocol !== 'http:' && e.protocol !== 'https:') throw urlError(url, 'blob', `endpoint "${endpoint}" must be http(s)://`)
  }
  const region = parsed.searchParams.get('region') ?? undefined
  const pathStyle = parsed.searchParams.get('forcePathStyle')
  if (pathStyle !== null && pathStyle !== 'true' && pathStyle !== 'false') {
    throw urlError(url, 'blob', `forcePathStyle must be true or false, not "${pathStyle}"`)
  }
  return {
    bucket,
    prefix,
    ...(endpoint !== undefined ? { endpoint } : {}),
    ...(region !== undefined && region !== '' ? { region } : {}),
    forcePathStyle: pathStyle === 'true',
  }
}

interface UrlError extends Error {
  /** The rule broken, without the URL. */
  readonly rule?: string
}

function urlError(url: string, what: string, rule: string, cause?: unknown): UrlError {
  return Object.assign(new Error(`${what} store URL ${describeUrl(url)}: ${rule}`, cause === undefined ? undefined : { cause }), { rule })
}

function postgresUrl(url: string, what: string): void {
  try {
    new URL(url)
  } catch {
    throw urlError(url, what, 'not a valid postgres:// URL')
  }
}
