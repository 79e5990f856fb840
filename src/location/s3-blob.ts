/**
 * S3Blob: a Blob in an S3 bucket (AWS S3, MinIO, any S3-compatible store) under a key prefix, via
 * `@aws-sdk/client-s3`. Credentials come from the SDK's default chain (env, profile, IMDS, …).
 *
 * - The SDK's own retries are off (`maxAttempts: 1`): retrying is `with-retry.ts`'s job, so one
 *   policy (bounded, with jitter, CAS-aware) governs every store.
 * - Errors: any answer from the server (4xx/5xx) is determinate; no answer (reset, timeout) on a
 *   write is indeterminate; a connection that was never made is determinate.
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
import { checkBlobKey, checkBlobPrefix, checkBlobValue, isBlobKey } from './blob-args.js'
import { allocated, type Blob, type BlobMeta, type GetOptions } from './blob.js'
import { closedError, determinate, errorMessage, indeterminate, type Abortable } from './errors.js'

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
  const what = `s3 blob ${op} "${key}": ${nameOf(err) ?? 'error'}: ${errorMessage(err)}`
  if (statusOf(err) !== undefined) return determinate(what, err)
  if (!write || NOT_SENT.has(codeOf(err) ?? '')) return determinate(what, err)
  return indeterminate(what, err)
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
