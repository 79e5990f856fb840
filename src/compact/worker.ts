/**
 * Worker-thread entry: runs merge tasks (`mergeRuns`) for the pool. Parts arrive as messages on
 * request; outputs leave as messages and wait for an `ack` (the main thread's upload
 * backpressure). Compaction outputs are encoded part files; snapshot outputs are JSON text or
 * Arrow stream segments.
 */
import { parentPort } from 'node:worker_threads'
import type { Description } from '../core/description.js'
import { encodePart, UpdatesStreamWriter } from '../columnar/part-format.js'
import { updatesByteLength, updatesToJson, type Updates } from '../columnar/updates.js'
import { isAppError } from '../errors.js'
import { mergeRuns, type MergedPart, type MergeRunsTask } from './merge-runs.js'

/** What a merge task produces: part files for compaction, or a snapshot's stream. */
export type MergeOutputMode =
  | { readonly kind: 'parts'; readonly desc: Description; readonly schemaId: number }
  | { readonly kind: 'json' }
  | { readonly kind: 'arrow' }

export interface MergeTaskPayload {
  readonly task: MergeRunsTask
  readonly output: MergeOutputMode
}

interface Inbound {
  readonly taskId: number
  readonly type: 'start' | 'part' | 'ack' | 'abort'
  readonly payload?: MergeTaskPayload
  readonly run?: number
  readonly part?: number
  readonly bytes?: Uint8Array
  readonly error?: string
}

const port = parentPort
if (port === null) throw new Error('worker.ts must run in a worker thread')

let current: {
  taskId: number
  abort: AbortController
  parts: Map<string, (bytes: Uint8Array | Error) => void>
  acks: (() => void)[]
} | null = null

port.on('message', (msg: Inbound) => {
  if (msg.type === 'start') {
    void start(msg.taskId, msg.payload as MergeTaskPayload)
    return
  }
  if (current === null || msg.taskId !== current.taskId) return
  if (msg.type === 'part') {
    const key = `${msg.run}:${msg.part}`
    const resolve = current.parts.get(key)
    current.parts.delete(key)
    resolve?.(msg.bytes ?? new Error(msg.error ?? 'part fetch failed'))
  } else if (msg.type === 'ack') {
    current.acks.shift()?.()
  } else if (msg.type === 'abort') {
    current.abort.abort(new Error('aborted'))
    for (const resolve of current.parts.values()) resolve(new Error('aborted'))
    current.parts.clear()
    for (const ack of current.acks.splice(0)) ack()
  }
})

async function start(taskId: number, payload: MergeTaskPayload): Promise<void> {
  const state = { taskId, abort: new AbortController(), parts: new Map<string, (b: Uint8Array | Error) => void>(), acks: [] as (() => void)[] }
  current = state
  const post = (type: string, fields: Record<string, unknown> = {}, transfer: ArrayBuffer[] = []): void =>
    port!.postMessage({ taskId, type, ...fields }, transfer)
  const stream = payload.output.kind === 'arrow' ? new UpdatesStreamWriter({ keyType: payload.task.keyType, valType: payload.task.valType, timeKind: payload.task.timeKind }) : null
  let firstJson = true
  const send = async (bytes: Uint8Array, fields: Record<string, unknown>): Promise<void> => {
    const acked = new Promise<void>((resolve) => state.acks.push(resolve))
    const copy = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice()
    post('output', { bytes: copy, ...fields }, [copy.buffer as ArrayBuffer])
    await acked
  }
  const encode = (u: Updates): Uint8Array => {
    if (payload.output.kind === 'arrow') return (stream as UpdatesStreamWriter).write(u)
    const rows = updatesToJson(u).map((r) => JSON.stringify(r))
    const text = (firstJson ? '' : ',') + rows.join(',')
    firstJson = false
    return Buffer.from(text)
  }
  try {
    const stats = await mergeRuns(payload.task, {
      signal: state.abort.signal,
      fetch: (run, part) =>
        new Promise<Uint8Array>((resolve, reject) => {
          state.parts.set(`${run}:${part}`, (b) => (b instanceof Error ? reject(b) : resolve(b)))
          post('need', { run, part })
        }),
      emit: async (p: MergedPart) => {
        if (payload.output.kind === 'parts') {
          const bytes = encodePart(p.updates, { desc: payload.output.desc, order: payload.task.order, schemaId: payload.output.schemaId }, p.diffsSum)
          await send(bytes, { rows: p.updates.length, diffsSum: p.diffsSum, keyLower: p.keyLower, goodBytes: updatesByteLength(p.updates), statsSeconds: p.statsSeconds })
        } else {
          await send(encode(p.updates), { rows: p.updates.length })
        }
      },
      progress: (p) => post('progress', p),
    })
    if (stream !== null) await send(stream.end(), { rows: 0 })
    post('done', { stats })
  } catch (err) {
    const code = isAppError(err) ? err.code : 'INTERNAL'
    post('error', { code, message: err instanceof Error ? err.message : String(err) })
  } finally {
    if (current === state) current = null
  }
}
