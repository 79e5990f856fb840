/**
 * S3Blob: a Blob in an S3 bucket (AWS S3, MinIO, any S3-compatible store) under a key prefix, via
 * `@aws-sdk/client-s3`. Credentials come from the SDK's default chain (env, profile, IMDS, …).
 *
 * - The SDK's own retries are off (`maxAttempts: 1`): retrying is `with-retry.ts`'s job, so one
 *   policy (bounded, with jitter, CAS-aware) governs every store.
 * - Errors: any answer from the server (4xx/5xx) is determinate; no answer (reset, timeout) on a
 *   write is indeterminate; a connection that was never made is determinate. No credentials, a
 *   refused signature or key, access denied and a missing bucket are permanent (never retried):
 *   the message names the cause and what to fix.
 * - Trade-off: request checksums are sent only when an operation requires them, since many
 *   S3-compatible stores reject the SDK's newer default trailing checksums.
 */
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3'
import { checkBlobKey, checkBlobPrefix, checkBlobRange, checkBlobValue, isBlobKey, rangeBounds } from './blob-args.js'
import { allocated, type Blob, type BlobMeta, type BlobRange, type GetOptions } from './blob.js'
import { closedError, determinate, errorMessage, indeterminate, permanent, type Abortable } from './errors.js'

export interface S3BlobOptions {
  readonly bucket: string
  /** Prepended verbatim to every key (give it a trailing `/`); default ''. */
  readonly prefix?: string
  /** A custom endpoint (MinIO, a local server), e.g. `http://127.0.0.1:9000`. */
  readonly endpoint?: string
  /** Default: the SDK's chain (AWS_REGION, profile), or `us-east-1` when `endpoint` is set. */
  readonly region?: string
  /** Path-style addressing (`endpoint/bucket/key`), which most non-AWS stores need. */
  readonly forcePathStyle?: boolean
  /** Keys per ListObjectsV2 page; default the server's (1000 on S3). */
  readonly listPageSize?: number
  /** Extra client settings (credentials for tests, say); they win over the ones above. */
  readonly client?: S3ClientConfig
}

/** Errors whose request never reached a server: nothing can have happened. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH'])

/** Server answers no retry mends: the credentials, the bucket or its policy must change. */
const REFUSED = new Set([
  'AccessDenied',
  'AccountProblem',
  'AllAccessDisabled',
  'AuthorizationHeaderMalformed',
  'InvalidAccessKeyId',
  'InvalidBucketName',
  'PermanentRedirect',
  'SignatureDoesNotMatch',
])

export class S3Blob implements Blob {
  readonly #client: S3Client
  readonly #bucket: string
  readonly #prefix: string
  readonly #pageSize: number | undefined
  #closed = false

  constructor(options: S3BlobOptions) {
    this.#bucket = options.bucket
    this.#prefix = options.prefix ?? ''
    this.#pageSize = options.listPageSize
    const region = options.region ?? (options.endpoint !== undefined ? 'us-east-1' : undefined)
    this.#client = new S3Client({
      ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}),
      ...(region !== undefined ? { region } : {}),
      forcePathStyle: options.forcePathStyle ?? false,
      maxAttempts: 1,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: { connectionTimeout: 10_000, socketTimeout: 60_000 },
      ...options.client,
    })
  }

  async get(key: string, opts?: GetOptions): Promise<Uint8Array | null> {
    this.#check(opts)
    checkBlobKey(key)
    checkBlobRange(opts?.range)
    if (opts?.range !== undefined) return this.#getRange(key, opts.range, opts)
    try {
      const res = await this.#client.send(new GetObjectCommand({ Bucket: this.#bucket, Key: this.#prefix + key }), {
        abortSignal: opts?.signal,
      })
      if (res.Body === undefined) return opts?.alloc ? allocated(opts.alloc, 0) : new Uint8Array(0)
      if (opts?.alloc) return await readInto(res.Body as AsyncIterable<Uint8Array>, res.ContentLength, opts.alloc)
      return await res.Body.transformToByteArray()
    } catch (err) {
      if (nameOf(err) === 'NoSuchKey') return null
      throw classify('get', key, false, err, opts)
    }
  }

  /**
   * A ranged GetObject. NB: S3 answers 416 InvalidRange for a range that starts at or past the end:
   * that is zero bytes (a missing key is NoSuchKey, still null). A zero-length range has no Range
   * header form, so it is a HeadObject, which tells a missing key from a present one.
   */
  async #getRange(key: string, range: BlobRange, opts: GetOptions): Promise<Uint8Array | null> {
    const empty = (): Uint8Array => (opts.alloc !== undefined ? allocated(opts.alloc, 0) : new Uint8Array(0))
    const Key = this.#prefix + key
    if (range.length === 0) {
      try {
        await this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key }), { abortSignal: opts.signal })
      } catch (err) {
        if (statusOf(err) === 404) return null
        throw classify('get', key, false, err, opts)
      }
      return empty()
    }
    try {
      const Range = `bytes=${range.offset}-${range.offset + range.length - 1}`
      const res = await this.#client.send(new GetObjectCommand({ Bucket: this.#bucket, Key, Range }), { abortSignal: opts.signal })
      if (res.Body === undefined) return empty()
      const placement = placementOf(res.ContentRange, res.ContentLength)
      if (placement !== undefined) return await readRangeInto(res.Body as AsyncIterable<Uint8Array>, placement, range, opts.alloc)
      // A whole-value answer of unknown length: read it all to learn the size.
      const whole = await res.Body.transformToByteArray()
      return await readRangeInto(toIterable(whole), { start: 0, size: whole.byteLength }, range, opts.alloc)
    } catch (err) {
      if (nameOf(err) === 'NoSuchKey') return null
      if (statusOf(err) === 416) return empty()
      throw classify('get', key, false, err, opts)
    }
  }

  async set(key: string, value: Uint8Array, opts?: Abortable): Promise<void> {
    this.#check(opts)
    checkBlobKey(key)
    checkBlobValue(value)
    try {
      await this.#client.send(
        new PutObjectCommand({ Bucket: this.#bucket, Key: this.#prefix + key, Body: value, ContentLength: value.byteLength }),
        { abortSignal: opts?.signal },
      )
    } catch (err) {
      throw classify('set', key, true, err, opts)
    }
  }

  async delete(key: string, opts?: Abortable): Promise<number | null> {
    this.#check(opts)
    checkBlobKey(key)
    let size: number
    try {
      const head = await this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: this.#prefix + key }), {
        abortSignal: opts?.signal,
      })
      size = head.ContentLength ?? 0
    } catch (err) {
      if (statusOf(err) === 404) return null
      throw classify('delete', key, false, err, opts)
    }
    try {
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: this.#prefix + key }), { abortSignal: opts?.signal })
    } catch (err) {
      throw classify('delete', key, true, err, opts)
    }
    return size
  }

  async *list(prefix: string, opts?: Abortable): AsyncIterable<BlobMeta> {
    this.#check(opts)
    checkBlobPrefix(prefix)
    let token: string | undefined
    for (;;) {
      let page
      try {
        page = await this.#client.send(
          new ListObjectsV2Command({ Bucket: this.#bucket, Prefix: this.#prefix + prefix, ContinuationToken: token, MaxKeys: this.#pageSize }),
          { abortSignal: opts?.signal },
        )
      } catch (err) {
        throw classify('list', prefix, false, err, opts)
      }
      for (const object of page.Contents ?? []) {
        if (object.Key === undefined || !object.Key.startsWith(this.#prefix)) continue
        const key = object.Key.slice(this.#prefix.length)
        if (!isBlobKey(key)) continue // a foreign object under the prefix: not ours to list
        yield { key, sizeBytes: object.Size ?? 0, lastModified: object.LastModified ?? new Date(0) }
      }
      if (page.IsTruncated !== true || page.NextContinuationToken === undefined) return
      token = page.NextContinuationToken
    }
  }

  /** A value is one PUT, which either stores the object or not: nothing is left to remove. */
  async removeInterrupted(prefix: string, _olderThanMs: number, opts?: Abortable): Promise<number> {
    this.#check(opts)
    checkBlobPrefix(prefix)
    return 0
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#client.destroy()
  }

  #check(opts: Abortable | undefined): void {
    if (this.#closed) throw closedError('s3 blob')
    opts?.signal?.throwIfAborted()
  }
}

function classify(op: string, key: string, write: boolean, err: unknown, opts: Abortable | undefined): unknown {
  if (opts?.signal?.aborted) return opts.signal.reason
  const name = nameOf(err) ?? 'error'
  const what = `s3 blob ${op} "${key}"`
  const status = statusOf(err)
  // NB: the SDK's credential chain fails before any request is sent, whatever the operation.
  if (name === 'CredentialsProviderError') {
    return permanent(`${what}: no credentials (${errorMessage(err)}); set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or give the machine a role`, err)
  }
  if (name === 'NoSuchBucket') return permanent(`${what}: the bucket does not exist (NoSuchBucket); create it or fix the blob URL`, err)
  if (REFUSED.has(name) || status === 401 || status === 403) {
    return permanent(`${what}: the store refused the request (${name}: ${errorMessage(err)}); check the credentials, the bucket's policy and region`, err)
  }
  const code = codeOf(err)
  if (code !== undefined && NOT_SENT.has(code)) return determinate(`${what}: cannot reach the store (${code}: ${errorMessage(err)})`, err)
  if (status !== undefined || !write) return determinate(`${what}: ${name}: ${errorMessage(err)}`, err)
  return indeterminate(`${what}: ${name}: ${errorMessage(err)}`, err)
}

function statusOf(err: unknown): number | undefined {
  const meta = (err as { $metadata?: { httpStatusCode?: unknown } } | null)?.$metadata
  return typeof meta?.httpStatusCode === 'number' && meta.httpStatusCode > 0 ? meta.httpStatusCode : undefined
}

function nameOf(err: unknown): string | undefined {
  return err instanceof Error ? err.name : undefined
}

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

/** Copies a response body, chunk by chunk as it arrives, into the buffer `alloc` gives for its length. */
async function readInto(body: AsyncIterable<Uint8Array>, length: number | undefined, alloc: (size: number) => Uint8Array): Promise<Uint8Array> {
  if (length === undefined) {
    const chunks: Uint8Array[] = []
    for await (const chunk of body) chunks.push(chunk)
    const out = allocated(alloc, chunks.reduce((s, c) => s + c.byteLength, 0))
    let at = 0
    for (const c of chunks) {
      out.set(c, at)
      at += c.byteLength
    }
    return out
  }
  const out = allocated(alloc, length)
  let at = 0
  for await (const chunk of body) {
    if (at + chunk.byteLength > length) throw new Error(`the object is longer than its Content-Length ${length}`)
    out.set(chunk, at)
    at += chunk.byteLength
  }
  if (at !== length) throw new Error(`the object ended after ${at} of its ${length} bytes`)
  return out
}

/** Where a ranged response's body sits in the value: its first byte's offset and the value's size. */
interface Placement {
  readonly start: number
  readonly size: number
}

const CONTENT_RANGE = /^bytes (\d+)-(\d+)\/(\d+|\*)$/

/**
 * From a 206's Content-Range (`bytes a-b/size`), or, without one, a 200 carrying the whole value
 * (a server may ignore Range); undefined for a whole value of unknown length.
 */
function placementOf(contentRange: string | undefined, contentLength: number | undefined): Placement | undefined {
  if (contentRange === undefined) return contentLength === undefined ? undefined : { start: 0, size: contentLength }
  const m = CONTENT_RANGE.exec(contentRange)
  if (m === null) throw new Error(`unexpected Content-Range "${contentRange}"`)
  const start = Number(m[1])
  return { start, size: m[3] === '*' ? Number(m[2]) + 1 : Number(m[3]) }
}

/**
 * Copies the bytes `range` selects (cut at the value's end) out of a response body into a fresh
 * buffer, or the one `alloc` gives for their count, chunk by chunk as they arrive. NB: a server
 * may send more than was asked (the whole value on a 200; s3rver sends it all for `bytes=0-0`),
 * so the bytes are cut here rather than trusted, and the rest of the body is dropped.
 */
async function readRangeInto(
  body: AsyncIterable<Uint8Array>,
  placement: Placement,
  range: BlobRange,
  alloc: ((size: number) => Uint8Array) | undefined,
): Promise<Uint8Array> {
  const { start, end } = rangeBounds(range, placement.size)
  if (placement.start > start) throw new Error(`the server sent bytes from ${placement.start}, not from ${start}`)
  const count = end - start
  const out = alloc !== undefined ? allocated(alloc, count) : new Uint8Array(count)
  if (count === 0) {
    // Nothing to read: drop the body unread (s3rver even sends a short one for an empty value).
    await body[Symbol.asyncIterator]().return?.()
    return out
  }
  let seen = placement.start // the value offset of the next chunk's first byte
  let at = 0
  for await (const chunk of body) {
    const from = Math.max(0, start + at - seen)
    const piece = chunk.subarray(from, from + (count - at))
    out.set(piece, at)
    at += piece.byteLength
    seen += chunk.byteLength
    if (at === count) break
  }
  if (at !== count) throw new Error(`the response ended after ${at} of the ${count} bytes asked for`)
  return out
}

async function* toIterable(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes
}
