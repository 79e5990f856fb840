/**
 * ApiClient: compactd's public HTTP API (docs/api.md) for the operator clients, over `fetch`, in a
 * browser or in Node. It uses nothing but the public routes, so it works against any instance.
 *
 * Every non-2xx answer becomes an `ApiError` carrying the status and the body's `code`/`message`;
 * a network failure becomes an `ApiError` with status 0 and code `UNREACHABLE`. Lists always ask
 * for a bounded page (`limit`), and pass the cursor along, so no call loads everything.
 */
import { readSse, type SseMessage } from './sse.js'
import type {
  AntichainJson,
  CompactionEventJson,
  CompactionJson,
  CompactionPage,
  CompactionQuery,
  ConfigChangeJson,
  ConfigJson,
  CreateShardBody,
  DryRunPlanJson,
  ErrorJson,
  GcResultJson,
  InstanceJson,
  ReadinessJson,
  ShardJson,
  ShardPage,
  ShardSpineJson,
  ShardSummaryJson,
  SubmitBody,
  TimestampJson,
  WriteBatchBody,
  WriteBatchResultJson,
} from './wire.js'

export class ApiError extends Error {
  readonly status: number
  readonly code: string
  readonly body: ErrorJson | null

  constructor(status: number, code: string, message: string, body: ErrorJson | null = null) {
    super(message)
    this.name = 'ApiError'
    this.status = status
    this.code = code
    this.body = body
  }

  /** The route or resource does not exist on this server (404/410), e.g. an endpoint it lacks. */
  get notFound(): boolean {
    return this.status === 404 || this.status === 410
  }
}

export const isApiError = (err: unknown): err is ApiError => err instanceof ApiError

export interface ApiClientOptions {
  /** Where compactd listens: `http://127.0.0.1:6880`; '' in a browser means this page's origin. */
  readonly baseUrl: string
  /** Sent as `Authorization: Bearer <token>` on /v1 calls; null sends none. */
  readonly token: string | null
  readonly fetch?: typeof fetch
  /** Sends requests with a streamed body (`writeBatch` with a StreamedBatch); default `fetch` with `duplex: 'half'`. */
  readonly sendStream?: StreamSender
}

/**
 * Sends a request whose body is produced as it is sent, taking each chunk once the connection took
 * the last, and resolves with the response (which may come before the whole body was sent).
 */
export type StreamSender = (
  url: string,
  init: { readonly method: string; readonly headers: Record<string, string>; readonly body: AsyncIterable<Uint8Array>; readonly signal?: AbortSignal },
) => Promise<Response>

/** What a submission answered: a queued or finished compaction, or a dry-run plan. */
export type SubmitAnswer = { readonly kind: 'compaction'; readonly status: number; readonly compaction: CompactionJson } | { readonly kind: 'plan'; readonly plan: DryRunPlanJson }

/** The media type of Arrow IPC streams, for batch bodies and snapshots. */
export const ARROW_STREAM = 'application/vnd.apache.arrow.stream'

/**
 * A batch body sent as it is produced, never held whole: an Arrow IPC stream (columns k, v, t, d)
 * with its frontiers, or the bytes of a JSON batch body (frontiers inside).
 */
export type StreamedBatch =
  | {
      readonly kind: 'arrow'
      readonly bytes: AsyncIterable<Uint8Array>
      readonly lower: AntichainJson
      readonly upper: AntichainJson
      readonly append?: boolean
      readonly expectedUpper?: AntichainJson
    }
  | { readonly kind: 'json'; readonly bytes: AsyncIterable<Uint8Array> }

/** The default page size of every list call. */
export const PAGE_SIZE = 50

/** `src` as a ReadableStream, pulled a chunk at a time: the body type every fetch takes (Node's also takes the iterable itself). */
function readableOf(src: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> {
  const it = src[Symbol.asyncIterator]()
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await it.next()
      if (next.done === true) controller.close()
      else controller.enqueue(next.value)
    },
    async cancel(reason) {
      await it.return?.(reason)
    },
  })
}

export class ApiClient {
  readonly #base: string
  readonly #token: string | null
  readonly #fetch: typeof fetch
  readonly #sendStream: StreamSender

  constructor(opts: ApiClientOptions) {
    this.#base = opts.baseUrl.replace(/\/+$/, '')
    this.#token = opts.token
    this.#fetch = opts.fetch ?? ((input, init) => fetch(input, init))
    this.#sendStream =
      opts.sendStream ??
      ((url, init) => {
        // NB: the Fetch standard asks `duplex: 'half'` of a streamed body; the DOM typings lack it.
        const streamed: RequestInit & { duplex: 'half' } = { method: init.method, headers: init.headers, body: readableOf(init.body), duplex: 'half', signal: init.signal ?? null }
        return this.#fetch(url, streamed)
      })
  }

  /** `/readyz`: 200 or 503, both carry the checks (scheduler running or paused). */
  async readiness(): Promise<ReadinessJson> {
    const res = await this.#send('GET', '/readyz', undefined, { accept: [200, 503] })
    return (await res.json()) as ReadinessJson
  }

  async instances(): Promise<InstanceJson[]> {
    return ((await this.#json('GET', '/v1/instances')) as { instances?: InstanceJson[] }).instances ?? []
  }

  /**
   * One page of shards, oldest first: all of them, the one named exactly `name`, or those whose name
   * starts with `namePrefix` (a search; in name order). The server reads only the page.
   */
  async listShards(q: { name?: string; namePrefix?: string; limit?: number; cursor?: string } = {}): Promise<ShardPage> {
    const limit = q.limit ?? PAGE_SIZE
    const page = (await this.#json('GET', `/v1/shards${query({ name: q.name, namePrefix: q.namePrefix, limit, cursor: q.cursor })}`)) as ShardPage
    return typeof page.nextCursor !== 'string' ? { shards: page.shards ?? [] } : { shards: page.shards ?? [], nextCursor: page.nextCursor }
  }

  async shard(id: string): Promise<ShardJson> {
    return (await this.#json('GET', `/v1/shards/${encodeURIComponent(id)}`)) as ShardJson
  }

  /**
   * The shard with its spine batches counted, not listed: kilobytes where the whole shard (`shard`)
   * is megabytes for a trace compaction fell behind on. A server without the route (404 NOT_FOUND)
   * is asked for the whole shard instead, whose spine batches carry their batches to count.
   */
  async shardSpine(id: string): Promise<ShardSpineJson | ShardJson> {
    try {
      return (await this.#json('GET', `/v1/shards/${encodeURIComponent(id)}/spine`)) as ShardSpineJson
    } catch (err) {
      if (isApiError(err) && err.code === 'NOT_FOUND') return this.shard(id)
      throw err
    }
  }

  /** 201 the new shard; 409 SHARD_NAME_TAKEN; 400 for a bad schema or timestamp kind. */
  async createShard(body: CreateShardBody): Promise<ShardJson> {
    return (await this.#json('POST', '/v1/shards', body)) as ShardJson
  }

  /**
   * Moves the since forward: the shard's summary (a server without `view` answers the whole shard,
   * which holds the summary's fields); 409 SINCE_REGRESSION when `since` is behind it.
   */
  async downgradeSince(id: string, since: AntichainJson): Promise<ShardSummaryJson> {
    return (await this.#json('POST', `/v1/shards/${encodeURIComponent(id)}/since?view=summary`, { since })) as ShardSummaryJson
  }

  /** One GC pass over the shard now. */
  async gc(id: string): Promise<GcResultJson> {
    return (await this.#json('POST', `/v1/shards/${encodeURIComponent(id)}/gc`)) as GcResultJson
  }

  /**
   * Writes a batch (and compare-and-appends it unless `append` is false): a JSON batch given as an
   * object, or a `StreamedBatch` whose bytes go out as they are produced, through `sendStream`
   * (NB: by default `fetch`, which in Node reads the source ahead of the socket: see
   * src/cli/http-upload.ts; browsers stream request bodies only over HTTP/2). An answer the server gives before it read the whole body (413, 400 at a bad row) is
   * the error, even though the rest of the body could not be sent.
   */
  async writeBatch(id: string, batch: WriteBatchBody | StreamedBatch): Promise<WriteBatchResultJson> {
    const path = `/v1/shards/${encodeURIComponent(id)}/batches`
    if (!('kind' in batch)) return (await this.#json('POST', path, batch)) as WriteBatchResultJson
    const q =
      batch.kind === 'arrow'
        ? query({
            lower: JSON.stringify(batch.lower),
            upper: JSON.stringify(batch.upper),
            append: batch.append === undefined ? undefined : String(batch.append),
            expectedUpper: batch.expectedUpper === undefined ? undefined : JSON.stringify(batch.expectedUpper),
          })
        : ''
    const res = await this.#send('POST', `${path}${q}`, undefined, { stream: { contentType: batch.kind === 'arrow' ? ARROW_STREAM : 'application/json', bytes: batch.bytes } })
    return (await res.json()) as WriteBatchResultJson
  }

  /**
   * The snapshot at `asOf` as the server streams it: the API's JSON document, or an Arrow IPC
   * stream (columns k, v, t, d). The caller reads (or cancels) the body; `signal` aborts it.
   */
  async snapshot(id: string, asOf: TimestampJson, format: 'json' | 'arrow', signal?: AbortSignal): Promise<ReadableStream<Uint8Array>> {
    const at = Array.isArray(asOf) ? JSON.stringify(asOf) : String(asOf)
    const res = await this.#send('GET', `/v1/shards/${encodeURIComponent(id)}/snapshot${query({ asOf: at })}`, undefined, {
      signal,
      headers: { accept: format === 'arrow' ? ARROW_STREAM : 'application/json' },
    })
    if (res.body === null) throw new ApiError(res.status, 'EMPTY_BODY', `the server answered ${res.status} without a body`)
    // NB: piped at once, which locks it. Node's fetch cancels the body of a Response that is garbage
    // collected while its body is neither locked nor read, and a cancelled body reads as an empty,
    // normal end: a caller that awaited anything (opening its output file) before it began reading
    // sometimes got a complete 0-byte snapshot.
    return res.body.pipeThrough(new TransformStream<Uint8Array, Uint8Array>())
  }

  async deleteShard(id: string): Promise<void> {
    await this.#send('DELETE', `/v1/shards/${encodeURIComponent(id)}`)
  }

  async submit(shardId: string, body: SubmitBody): Promise<SubmitAnswer> {
    // NB: with wait, 500/503/504/507 still carry the final Compaction; those are answers, not errors.
    const res = await this.#send('POST', `/v1/shards/${encodeURIComponent(shardId)}/compactions`, body, { accept: body.wait === true ? [500, 503, 504, 507] : [] })
    const json = (await res.json()) as { plan?: DryRunPlanJson } & Partial<CompactionJson> & Partial<ErrorJson>
    if (json.plan !== undefined) return { kind: 'plan', plan: json.plan }
    if (typeof json.id !== 'string') throw new ApiError(res.status, json.code ?? 'INTERNAL', json.message ?? `HTTP ${res.status}`, json as ErrorJson)
    return { kind: 'compaction', status: res.status, compaction: json as CompactionJson }
  }

  /**
   * One page of compactions, newest first; `limit` defaults to PAGE_SIZE. NB: a server that does
   * not know a filter (`source`, say) ignores it; the filters are applied again here, so a page
   * never shows what was filtered out.
   */
  async listCompactions(q: CompactionQuery = {}): Promise<CompactionPage> {
    const limit = q.limit ?? PAGE_SIZE
    const page = (await this.#json('GET', `/v1/compactions${query({ ...q, limit })}`)) as CompactionPage
    const compactions = (page.compactions ?? []).filter(
      (c) => (q.shardId === undefined || c.shardId === q.shardId) && (q.status === undefined || c.status === q.status) && (q.source === undefined || c.source === q.source),
    )
    // NB: the last page's nextCursor is null (absent from older servers): either way, no next page.
    return typeof page.nextCursor !== 'string' ? { compactions: compactions.slice(0, limit) } : { compactions, nextCursor: page.nextCursor }
  }

  async compaction(id: string): Promise<CompactionJson> {
    return (await this.#json('GET', `/v1/compactions/${encodeURIComponent(id)}`)) as CompactionJson
  }

  async cancel(id: string): Promise<CompactionJson> {
    return (await this.#json('DELETE', `/v1/compactions/${encodeURIComponent(id)}`)) as CompactionJson
  }

  /**
   * The compaction's events: `progress` (the current record first), then one `done`. Ends after
   * `done`, when the server closes the stream, or when `signal` aborts.
   */
  async *events(id: string, signal?: AbortSignal): AsyncGenerator<CompactionEventJson, void, undefined> {
    const res = await this.#send('GET', `/v1/compactions/${encodeURIComponent(id)}/events`, undefined, { signal, headers: { accept: 'text/event-stream' } })
    if (res.body === null) return
    for await (const m of readSse(res.body)) {
      const e = toEvent(m)
      if (e === null) continue
      yield e
      if (e.event === 'done') return
    }
  }

  async configs(): Promise<ConfigJson[]> {
    return ((await this.#json('GET', '/v1/configs')) as { configs: ConfigJson[] }).configs
  }

  async config(name: string): Promise<ConfigJson> {
    return (await this.#json('GET', `/v1/configs/${encodeURIComponent(name)}`)) as ConfigJson
  }

  /** All-or-nothing: a 400 INVALID_CONFIG applies nothing and names the bad entry. */
  async patchConfigs(values: Record<string, unknown>): Promise<ConfigJson[]> {
    return ((await this.#json('PATCH', '/v1/configs', values)) as { configs: ConfigJson[] }).configs
  }

  /** Newest first, at most `limit` (the route has no paging: it answers the audit log). */
  async configHistory(limit = PAGE_SIZE): Promise<ConfigChangeJson[]> {
    const { changes } = (await this.#json('GET', '/v1/configs/history')) as { changes: ConfigChangeJson[] }
    return changes.slice(0, limit)
  }

  async #json(method: string, path: string, body?: unknown): Promise<unknown> {
    const res = await this.#send(method, path, body)
    if (res.status === 204) return null
    return res.json()
  }

  async #send(
    method: string,
    path: string,
    body?: unknown,
    opts: {
      accept?: readonly number[]
      signal?: AbortSignal | undefined
      headers?: Record<string, string>
      stream?: { readonly contentType: string; readonly bytes: AsyncIterable<Uint8Array> }
    } = {},
  ): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/json', ...opts.headers }
    if (this.#token !== null && path.startsWith('/v1')) headers.authorization = `Bearer ${this.#token}`
    if (body !== undefined) headers['content-type'] = 'application/json'
    if (opts.stream !== undefined) headers['content-type'] = opts.stream.contentType
    // NB: a body source that fails (a file that cannot be read) fails the fetch: that is its error,
    // not the server's being unreachable.
    let sourceFailed: { readonly err: unknown } | null = null
    const source = opts.stream?.bytes
    const guarded = async function* (): AsyncGenerator<Uint8Array> {
      try {
        if (source !== undefined) yield* source
      } catch (err) {
        sourceFailed = { err }
        throw err
      }
    }
    const url = `${this.#base}${path}`
    let res: Response
    try {
      res =
        opts.stream === undefined
          ? await this.#fetch(url, { method, headers, body: body === undefined ? null : JSON.stringify(body), signal: opts.signal ?? null })
          : await this.#sendStream(url, { method, headers, body: guarded(), ...(opts.signal === undefined ? {} : { signal: opts.signal }) })
    } catch (err) {
      if (sourceFailed !== null) throw (sourceFailed as { readonly err: unknown }).err
      if (opts.signal?.aborted === true) throw err
      const what = opts.stream === undefined ? 'cannot reach compactd' : 'lost compactd while sending the body (or could not reach it)'
      throw new ApiError(0, 'UNREACHABLE', `${what} at ${this.#base || 'this origin'}: ${causeOf(err)}`)
    }
    if (res.ok || (opts.accept ?? []).includes(res.status)) return res
    throw await errorOf(res)
  }
}

async function errorOf(res: Response): Promise<ApiError> {
  const text = await res.text().catch(() => '')
  try {
    const body = JSON.parse(text) as ErrorJson
    if (typeof body.code === 'string' && typeof body.message === 'string') return new ApiError(res.status, body.code, body.message, body)
  } catch {
    // Not JSON (a proxy's page, say): fall through to a generic error.
  }
  return new ApiError(res.status, `HTTP_${res.status}`, `HTTP ${res.status} ${res.statusText}`.trim())
}

/** TLS verification failures, by their OpenSSL codes: a certificate the client does not trust. */
const UNTRUSTED_CERT = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
])

function causeOf(err: unknown): string {
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err
  if (!(cause instanceof Error)) return String(cause)
  const code = (cause as { code?: unknown }).code
  // NB: in Node, a private CA is trusted through NODE_EXTRA_CA_CERTS; browsers have their own store.
  if (typeof code === 'string' && UNTRUSTED_CERT.has(code)) return `${cause.message} (to trust its CA, point NODE_EXTRA_CA_CERTS at its PEM file)`
  return cause.message
}

function toEvent(m: SseMessage): CompactionEventJson | null {
  try {
    return { event: m.event, data: JSON.parse(m.data) as CompactionJson }
  } catch {
    return null
  }
}

/** `?a=1&b=x` from the defined entries, or ''. */
export function query(params: Record<string, string | number | undefined>): string {
  const entries = Object.entries(params).filter((e): e is [string, string | number] => e[1] !== undefined && e[1] !== '')
  if (entries.length === 0) return ''
  return `?${new URLSearchParams(entries.map(([k, v]): [string, string] => [k, String(v)])).toString()}`
}
