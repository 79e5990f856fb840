/**
 * Worker-thread entry: runs merge tasks (`mergeRuns`) for the pool. Parts arrive as messages on
 * request; outputs leave as messages and wait for an `ack` (the main thread's upload
 * backpressure). Outputs are encoded part files (for compaction and for snapshot reads alike).
 */
import { parentPort } from 'node:worker_threads'
import type { Description } from '../core/description.js'
import { encodePart } from '../columnar/part-format.js'
import { updatesByteLength } from '../columnar/updates.js'
import { isAppError } from '../errors.js'
import { mergeRuns, type MergedPart, type MergeRunsTask } from './merge-runs.js'

/** What a merge task produces: part files with this description and schema id. */
export interface MergeOutputMode {
  readonly kind: 'parts'
  readonly desc: Description
  readonly schemaId: number
}

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
  const send = async (bytes: Uint8Array, fields: Record<string, unknown>): Promise<void> => {
    const acked = new Promise<void>((resolve) => state.acks.push(resolve))
    const copy = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice()
    post('output', { bytes: copy, ...fields }, [copy.buffer as ArrayBuffer])
    await acked
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
        const bytes = encodePart(p.updates, { desc: payload.output.desc, order: payload.task.order, schemaId: payload.output.schemaId }, p.diffsSum)
        await send(bytes, { rows: p.updates.length, diffsSum: p.diffsSum, keyLower: p.keyLower, goodBytes: updatesByteLength(p.updates), statsSeconds: p.statsSeconds })
      },
      progress: (p) => post('progress', p),
    })
    post('done', { stats })
  } catch (err) {
    const code = isAppError(err) ? err.code : 'INTERNAL'
    post('error', { code, message: err instanceof Error ? err.message : String(err) })
  } finally {
    if (current === state) current = null
  }
}
