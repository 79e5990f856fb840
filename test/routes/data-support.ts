/**
 * What a client of the data routes does, written with apache-arrow directly (not compactd's codec):
 * Arrow IPC request bodies, and reading Arrow responses back as rows.
 */
import * as arrow from 'apache-arrow'

export const ARROW = 'application/vnd.apache.arrow.stream'

/** An Arrow IPC stream of u64-timed rows with utf8 keys and int64 values. */
export function arrowRows(rows: ReadonlyArray<{ key: string; val: bigint; time: bigint; diff: bigint }>): Buffer {
  const table = new arrow.Table({
    k: arrow.vectorFromArray(rows.map((r) => r.key), new arrow.Utf8()),
    v: arrow.vectorFromArray(rows.map((r) => r.val), new arrow.Int64()),
    t: arrow.vectorFromArray(rows.map((r) => r.time), new arrow.Uint64()),
    d: arrow.vectorFromArray(rows.map((r) => r.diff), new arrow.Int64()),
  })
  return Buffer.from(arrow.tableToIPC(table, 'stream'))
}

/** The same as `arrowRows`, written as record batches of `perBatch` rows each. */
export function arrowRowBatches(rows: ReadonlyArray<{ key: string; val: bigint; time: bigint; diff: bigint }>, perBatch: number): Buffer {
  const batches: arrow.RecordBatch[] = []
  for (let at = 0; at < rows.length; at += perBatch) batches.push(...arrow.tableFromIPC(arrowRows(rows.slice(at, at + perBatch))).batches)
  return Buffer.from(arrow.RecordBatchStreamWriter.writeAll(batches).toUint8Array(true))
}

/** The rows of an Arrow IPC stream response, as plain objects. */
export function rowsOfArrow(bytes: Uint8Array): Array<Record<string, unknown>> {
  return arrow
    .tableFromIPC(bytes)
    .toArray()
    .map((r: { toJSON(): Record<string, unknown> }) => r.toJSON())
}
