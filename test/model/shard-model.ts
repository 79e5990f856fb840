/**
 * Model-based testing of the shard API: seeded random operations (create, write with right and
 * wrong uppers, JSON and Arrow bodies, unappended batches appended later or never, since moves
 * and regressions, schema evolution, config flips that change part sizes and inlining, GC,
 * restarts, deletes, unique names) go through `app.inject`, and every answer is checked against a
 * simple model: per shard, a list of rows with since and upper. Every snapshot is compared with the
 * model's consolidation of the rows at or before asOf. A deleted shard is simply gone: 410 for
 * everything, absent from listings, its name free, and no blob of it left after GC.
 *
 * Background compaction (writer maintenance) runs as in production, so every check holds whatever
 * it did meanwhile; env MODEL_NO_COMPACTION turns it off (the kill switch) to tell its faults apart.
 * Compactions run with incremental compaction on or off (a config op flips it), and some are
 * cancelled while they run: the chunks they applied stay, and the snapshots must not notice.
 *
 * Shards have utf8 keys and struct values `{a: int64, f1?: utf8, f2?: utf8, ...}`: each schema
 * evolution adds a nullable field, which older rows read as null.
 */
import assert from 'node:assert/strict'
import * as arrow from 'apache-arrow'
import type { InjectOptions } from 'fastify'
import type { App } from '../../src/app.js'
import { encodeUpdatesStream } from '../../src/columnar/part-format.js'
import { parseDataType } from '../../src/columnar/data-type.js'
import { updatesFromJson } from '../../src/columnar/updates.js'
import type { Services } from '../../src/services.js'
import type { ShardId } from '../../src/core/ids.js'
import { mulberry32 as prng } from '../../src/core/prng.js'

export const ARROW = 'application/vnd.apache.arrow.stream'

/** A server under test; `restart` (when the stores survive one) replaces it with a fresh one on the same stores. */
export interface Server {
  readonly app: App
  readonly services: Services
}

export interface ModelRun {
  readonly seed: number
  readonly ops: number
  readonly start: () => Promise<Server & { stop(): Promise<void> }>
  /** Whether the stores survive a restart (mem:// ones do not). */
  readonly restarts: boolean
}

export type Val = Record<string, number | string | null>

export interface Row {
  readonly key: string
  readonly val: Val
  readonly time: bigint
  readonly diff: bigint
}

/** A shard as a cluster test's model holds it: what its acknowledged writes and since say it reads as. */
export interface ClusterModelShard {
  readonly id: string
  since: bigint
  upper: bigint
  readonly rows: Row[]
  readonly fields: readonly string[]
}

interface Pending {
  readonly batch: unknown
  readonly lower: bigint
  readonly rows: readonly Row[]
}

interface ModelShard {
  readonly id: string
  /** '' for none; unique among the model's live shards otherwise. */
  readonly name: string
  since: bigint
  upper: bigint
  /** Nullable fields added by evolutions, in order. */
  fields: string[]
  rows: Row[]
  pending: Pending[]
}


export function valType(fields: readonly string[]) {
  return {
    type: 'struct',
    fields: [{ name: 'a', type: { type: 'int64' }, nullable: false }, ...fields.map((name) => ({ name, type: { type: 'utf8' }, nullable: true }))],
  }
}

/** `v` with every field of the current schema, in schema order (missing ones null). */
export function normalize(v: Val, fields: readonly string[]): Val {
  const out: Val = { a: v.a ?? null }
  for (const f of fields) out[f] = v[f] ?? null
  return out
}

/** The model's snapshot at `asOf`: sorted `[key, val, diff]` JSON strings (the oracle; test/cluster/ uses it too). */
export function expected(s: { readonly rows: readonly Row[]; readonly fields: readonly string[] }, asOf: bigint): string[] {
  const sums = new Map<string, bigint>()
  for (const r of s.rows) {
    if (r.time > asOf) continue
    const k = JSON.stringify([r.key, normalize(r.val, s.fields)])
    sums.set(k, (sums.get(k) ?? 0n) + r.diff)
  }
  const out: string[] = []
  for (const [k, d] of sums) if (d !== 0n) out.push(`${k.slice(0, -1)},${d}]`)
  return out.sort()
}

function plain(v: unknown): unknown {
  if (typeof v === 'bigint') return Number(v)
  if (v !== null && typeof v === 'object' && 'toJSON' in v && typeof (v as { toJSON: unknown }).toJSON === 'function') return plain((v as { toJSON(): unknown }).toJSON())
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]))
  return v
}

export async function runModel(run: ModelRun): Promise<{ ops: Record<string, number> }> {
  const rand = prng(run.seed)
  const int = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1))
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T
  const counts: Record<string, number> = {}
  const shards: ModelShard[] = []
  const deleted: ModelShard[] = []
  let server = await run.start()
  await server.services.dyncfg.start()
  if (process.env.MODEL_NO_COMPACTION !== undefined) await server.services.dyncfg.update({ compaction_process_requests: false })
  const inject = (opts: InjectOptions) => server.app.inject(opts)

  const randomRows = (s: ModelShard, lower: bigint, upper: bigint, n: number): Row[] => {
    if (upper <= lower) return []
    const span = Number(upper - lower)
    return Array.from({ length: n }, () => {
      const val: Val = { a: int(0, 2) }
      for (const f of s.fields) val[f] = pick(['x', 'y', null])
      return { key: `k${int(0, 9)}`, val, time: lower + BigInt(int(0, span - 1)), diff: BigInt(int(-2, 3)) }
    })
  }
  const rowJson = (r: Row) => ({ key: r.key, val: r.val, time: Number(r.time), diff: Number(r.diff) })

  /** Writes `rows` as JSON or Arrow; returns the response. */
  const write = async (s: ModelShard, lower: bigint, upper: bigint, rows: readonly Row[], opts: { append?: boolean; arrow?: boolean } = {}) => {
    if (opts.arrow === true) {
      const type = parseDataType(valType(s.fields))
      assert.ok(type.ok)
      const u = updatesFromJson(rows.map(rowJson), { keyType: { type: 'utf8' }, valType: type.value, timeKind: 'u64' })
      assert.ok(u.ok, u.ok ? '' : u.error)
      const q = `lower=${encodeURIComponent(`[${lower}]`)}&upper=${encodeURIComponent(`[${upper}]`)}${opts.append === false ? '&append=false' : ''}`
      return inject({ method: 'POST', url: `/v1/shards/${s.id}/batches?${q}`, headers: { 'content-type': ARROW }, payload: Buffer.from(encodeUpdatesStream(u.value)) })
    }
    const body = { lower: [Number(lower)], upper: [Number(upper)], updates: rows.map(rowJson), ...(opts.append === false ? { append: false } : {}) }
    return inject({ method: 'POST', url: `/v1/shards/${s.id}/batches`, payload: body })
  }

  const check = async (s: ModelShard, asOf: bigint, asArrow: boolean): Promise<void> => {
    const res = await inject({ method: 'GET', url: `/v1/shards/${s.id}/snapshot?asOf=${asOf}`, headers: asArrow ? { accept: ARROW } : {} })
    assert.equal(res.statusCode, 200, res.body)
    let got: Array<{ key: string; val: Val; time: number; diff: number }>
    if (asArrow) {
      got = arrow
        .tableFromIPC(res.rawPayload)
        .toArray()
        .map((r: unknown) => {
          const o = plain(r) as { k: string; v: Val; t: number; d: number }
          return { key: o.k, val: o.v, time: o.t, diff: o.d }
        })
    } else {
      const body = res.json() as { asOf: number; updates: typeof got }
      assert.equal(body.asOf, Number(asOf))
      got = body.updates
    }
    for (const u of got) assert.equal(u.time, Number(asOf))
    for (let i = 1; i < got.length; i++) assert.ok(got[i - 1]!.key <= got[i]!.key, `snapshot not sorted by key at ${i}`)
    const actual = got.map((u) => JSON.stringify([u.key, normalize(u.val, s.fields), u.diff])).sort()
    assert.deepEqual(actual, expected(s, asOf), `snapshot of ${s.id} at ${asOf}`)
  }

  const shardState = async (s: ModelShard) => {
    const res = await inject({ method: 'GET', url: `/v1/shards/${s.id}` })
    assert.equal(res.statusCode, 200)
    return res.json() as { seqno: number; since: number[]; upper: number[]; schemas: unknown[] }
  }

  try {
    for (let step = 0; step < run.ops; step++) {
      const r = rand()
      let op: string
      if (shards.length === 0 || (shards.length < 3 && r < 0.03)) op = 'create'
      else if (r < 0.3) op = 'write'
      else if (r < 0.36) op = 'write_wrong_upper'
      else if (r < 0.43) op = 'write_unappended'
      else if (r < 0.5) op = 'append'
      else if (r < 0.57) op = 'since'
      else if (r < 0.61) op = 'schema'
      else if (r < 0.80) op = 'snapshot'
      else if (r < 0.86) op = 'compact'
      else if (r < 0.92) op = 'config'
      else if (r < 0.96) op = 'gc'
      else if (r < 0.975) op = 'delete'
      else if (r < 0.99 && run.restarts) op = 'restart'
      else op = 'snapshot'
      counts[op] = (counts[op] ?? 0) + 1
      const s = shards.length > 0 ? pick(shards) : undefined
      const where = `step ${step} (${op}, seed ${run.seed})`

      switch (op) {
        case 'create': {
          const payload = (name: string) => ({ timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: valType([]), ...(name === '' ? {} : { name }) })
          const holder = shards.find((m) => m.name !== '')
          if (holder !== undefined && rand() < 0.3) {
            const taken = await inject({ method: 'POST', url: '/v1/shards', payload: payload(holder.name) })
            assert.equal(taken.statusCode, 409, `${where}: ${taken.body}`)
            assert.deepEqual({ code: taken.json().code, shardId: taken.json().shardId }, { code: 'SHARD_NAME_TAKEN', shardId: holder.id }, where)
          }
          // A new name, none, or the name of a deleted shard (free again).
          const freed = deleted.filter((m) => m.name !== '' && !shards.some((l) => l.name === m.name))
          const name = freed.length > 0 && rand() < 0.5 ? pick(freed).name : rand() < 0.5 ? `shard-${step}` : ''
          const res = await inject({ method: 'POST', url: '/v1/shards', payload: payload(name) })
          assert.equal(res.statusCode, 201, `${where}: ${res.body}`)
          shards.push({ id: res.json().shardId, name, since: 0n, upper: 0n, fields: [], rows: [], pending: [] })
          break
        }
        case 'delete': {
          const m = s as ModelShard
          const res = await inject({ method: 'DELETE', url: `/v1/shards/${m.id}` })
          assert.equal(res.statusCode, 200, `${where}: ${res.body}`)
          shards.splice(shards.indexOf(m), 1)
          deleted.push(m)
          for (const [method, url] of [['GET', `/v1/shards/${m.id}`], ['GET', `/v1/shards/${m.id}/snapshot?asOf=${m.since}`], ['DELETE', `/v1/shards/${m.id}`]] as const) {
            const gone = await inject({ method, url })
            assert.deepEqual({ status: gone.statusCode, code: gone.json().code }, { status: 410, code: 'SHARD_DELETED' }, `${where}: ${method} ${url}`)
          }
          const refused = await write(m, m.upper, m.upper + 1n, randomRows(m, m.upper, m.upper + 1n, 2))
          assert.equal(refused.statusCode, 410, `${where}: ${refused.body}`)
          break
        }
        case 'write': {
          const m = s as ModelShard
          const upper = m.upper + BigInt(int(0, 5))
          const rows = randomRows(m, m.upper, upper, int(0, 8))
          const res = await write(m, m.upper, upper, rows, { arrow: rand() < 0.3 })
          assert.equal(res.statusCode, 201, `${where}: ${res.body}`)
          assert.equal(res.json().appended, true, where)
          m.rows.push(...rows)
          m.upper = upper
          assert.deepEqual(res.json().upper, [Number(upper)], where)
          break
        }
        case 'write_wrong_upper': {
          const m = s as ModelShard
          const lower = m.upper === 0n || rand() < 0.5 ? m.upper + BigInt(int(1, 3)) : BigInt(int(0, Number(m.upper) - 1))
          const upper = lower + BigInt(int(1, 4))
          const res = await write(m, lower, upper, randomRows(m, lower, upper, int(0, 4)), { arrow: rand() < 0.3 })
          assert.equal(res.statusCode, 409, `${where}: ${res.body}`)
          assert.deepEqual({ code: res.json().code, currentUpper: res.json().currentUpper }, { code: 'UPPER_MISMATCH', currentUpper: [Number(m.upper)] }, where)
          // NB: not the seqno: a background compaction may commit meanwhile.
          const after = await shardState(m)
          assert.deepEqual({ since: after.since, upper: after.upper }, { since: [Number(m.since)], upper: [Number(m.upper)] }, where)
          break
        }
        case 'write_unappended': {
          const m = s as ModelShard
          const lower = m.upper + BigInt(int(0, 1))
          const upper = lower + BigInt(int(1, 4))
          const rows = randomRows(m, lower, upper, int(0, 6))
          const res = await write(m, lower, upper, rows, { append: false, arrow: rand() < 0.3 })
          assert.equal(res.statusCode, 201, `${where}: ${res.body}`)
          assert.equal(res.json().appended, false, where)
          // Rows were written with the fields of the schema at write time.
          m.pending.push({ batch: res.json().batch, lower, rows })
          break
        }
        case 'append': {
          const m = s as ModelShard
          if (m.pending.length === 0) break
          const i = int(0, m.pending.length - 1)
          const p = m.pending[i] as Pending
          const desc = (p.batch as { desc: { upper: number[] } }).desc
          const wrongExpected = rand() < 0.2 && p.lower !== m.upper
          const res = await inject({ method: 'POST', url: `/v1/shards/${m.id}/append`, payload: { batch: p.batch, ...(wrongExpected ? { expectedUpper: [Number(m.upper)] } : {}) } })
          if (p.lower === m.upper) {
            assert.equal(res.statusCode, 201, `${where}: ${res.body}`)
            m.rows.push(...p.rows)
            m.upper = BigInt(desc.upper[0] as number)
            m.pending.splice(i, 1)
          } else if (wrongExpected) {
            assert.equal(res.statusCode, 400, `${where}: ${res.body}`)
            assert.equal(res.json().code, 'INVALID_BATCH', where)
          } else {
            assert.equal(res.statusCode, 409, `${where}: ${res.body}`)
            assert.deepEqual(res.json().currentUpper, [Number(m.upper)], where)
            // A refused append deletes the batch's parts (docs/api.md#json-batches): the batch is gone either way.
            m.pending.splice(i, 1)
          }
          break
        }
        case 'since': {
          const m = s as ModelShard
          if (m.since > 0n && rand() < 0.15) {
            const res = await inject({ method: 'POST', url: `/v1/shards/${m.id}/since`, payload: { since: [Number(m.since) - 1] } })
            assert.equal(res.statusCode, 409, where)
            assert.deepEqual(res.json().since, [Number(m.since)], where)
            break
          }
          const since = m.since + BigInt(int(0, Math.max(0, Number(m.upper - m.since))))
          const res = await inject({ method: 'POST', url: `/v1/shards/${m.id}/since`, payload: { since: [Number(since)] } })
          assert.equal(res.statusCode, 200, `${where}: ${res.body}`)
          m.since = since
          assert.deepEqual(res.json().since, [Number(since)], where)
          break
        }
        case 'schema': {
          const m = s as ModelShard
          if (rand() < 0.2 && m.fields.length > 0) {
            const res = await inject({ method: 'POST', url: `/v1/shards/${m.id}/schemas`, payload: { keySchema: { type: 'utf8' }, valSchema: valType(m.fields.slice(1)) } })
            assert.equal(res.statusCode, 400, where)
            assert.equal(res.json().code, 'SCHEMA_INCOMPATIBLE', where)
            break
          }
          const fields = [...m.fields, `f${m.fields.length + 1}`]
          const res = await inject({ method: 'POST', url: `/v1/shards/${m.id}/schemas`, payload: { keySchema: { type: 'utf8' }, valSchema: valType(fields) } })
          assert.equal(res.statusCode, 201, `${where}: ${res.body}`)
          assert.deepEqual(res.json(), { id: fields.length }, where)
          m.fields = fields
          break
        }
        case 'snapshot': {
          const m = s as ModelShard
          if (m.since >= m.upper || rand() < 0.05) {
            const res = await inject({ method: 'GET', url: `/v1/shards/${m.id}/snapshot?asOf=${m.upper}` })
            assert.equal(res.statusCode, 400, where)
            assert.deepEqual({ code: res.json().code, since: res.json().since, upper: res.json().upper }, { code: 'AS_OF_NOT_AVAILABLE', since: [Number(m.since)], upper: [Number(m.upper)] }, where)
            break
          }
          await check(m, m.since + BigInt(int(0, Number(m.upper - m.since) - 1)), rand() < 0.25)
          break
        }
        case 'config': {
          const target = pick([64, 1024, 128 * 1024 * 1024])
          await server.services.dyncfg.update({
            persist_inline_writes_single_max_bytes: pick([0, 4096]),
            persist_blob_target_size: target,
            // A bound of 4 × a small target forces chunking and memory violations.
            persist_compaction_memory_bound_bytes: pick([4 * target, 1024 * 1024 * 1024]),
            persist_inline_writes_total_max_bytes: pick([1, 1024 * 1024]),
            persist_compaction_heuristic_min_inputs: pick([1, 8]),
            // Incremental compaction (each chunk applied alone) mostly on, as by default.
            persist_enable_incremental_compaction: pick([true, true, false]),
          })
          break
        }
        case 'compact': {
          // An explicit compaction of a random run of the trace's hollow batches, or of all of it.
          const m = s as ModelShard
          const res = await inject({ method: 'GET', url: `/v1/shards/${m.id}` })
          type DescJson = { desc: { lower: number[]; upper: number[] } }
          const spine = (res.json() as { trace: { batches: (DescJson & { batches: DescJson[] })[] } }).trace.batches
          if (spine.length === 0) break
          // Mostly a range inside one spine batch (what can apply); sometimes the merges in progress
          // (no desc), a major compaction of the whole trace or of a run of whole spine batches.
          const batches = pick(spine).batches
          if (batches.length === 0) break
          const i = int(0, batches.length - 1)
          const j = int(i, batches.length - 1)
          const kind = pick(['range', 'range', 'range', 'merges', 'major', 'major-range'] as const)
          const a = int(0, spine.length - 1)
          const z = int(a, spine.length - 1)
          const body: Record<string, unknown> =
            kind === 'range'
              ? { desc: { lower: batches[i]!.desc.lower, upper: batches[j]!.desc.upper, ...(rand() < 0.3 ? { since: [Number(m.since)] } : {}) }, wait: true }
              : kind === 'merges'
                ? { wait: true }
                : kind === 'major'
                  ? { major: true, wait: true }
                  : { major: true, desc: { lower: spine[a]!.desc.lower, upper: spine[z]!.desc.upper }, wait: true }
          if (rand() < 0.25) {
            // Cancelled while it may be running: whatever chunks applied before stay, the rest is
            // undone; either way every snapshot still equals the model's.
            const started = await inject({ method: 'POST', url: `/v1/shards/${m.id}/compactions`, payload: { ...body, wait: false } })
            assert.ok([200, 202, 422].includes(started.statusCode), `${where}: ${started.body}`)
            if (started.statusCode !== 202) break
            const cancelled = await inject({ method: 'DELETE', url: `/v1/compactions/${started.json().id as string}` })
            // 409: it had finished, or was applying its last output.
            assert.ok([200, 409].includes(cancelled.statusCode), `${where}: ${cancelled.body}`)
            const outcome = cancelled.statusCode === 200 ? `${cancelled.json().status}:${cancelled.json().reason?.code ?? '-'}` : cancelled.json().code
            counts[`cancel=${outcome}`] = (counts[`cancel=${outcome}`] ?? 0) + 1
            break
          }
          const submitted = await inject({ method: 'POST', url: `/v1/shards/${m.id}/compactions`, payload: body })
          // 422: a background compaction changed the trace between the read and the submission,
          // or the since is behind an input's (a merge since). Both leave state alone.
          assert.ok([200, 422].includes(submitted.statusCode), `${where}: ${submitted.body}`)
          const outcome = submitted.statusCode === 200 ? `${submitted.json().status}:${submitted.json().result ?? '-'}` : 'rejected'
          counts[`compact=${outcome}`] = (counts[`compact=${outcome}`] ?? 0) + 1
          if (submitted.statusCode === 200) assert.ok(['succeeded', 'not_applied', 'skipped'].includes(submitted.json().status as string), `${where}: ${submitted.body}`)
          break
        }
        case 'gc': {
          const m = s as ModelShard
          const res = await inject({ method: 'POST', url: `/v1/shards/${m.id}/gc` })
          assert.equal(res.statusCode, 200, where)
          // Unappended batches are collected (grace 0 in these runs); forget them.
          m.pending = []
          break
        }
        case 'restart': {
          await server.stop()
          server = await run.start()
          await server.services.start()
          break
        }
      }
    }
    // Every live shard is listed with its name, oldest first; deleted ones are not.
    const listed = (await inject({ method: 'GET', url: '/v1/shards?limit=1000' })).json() as { shards: { shardId: string; name: string }[] }
    assert.deepEqual(
      listed.shards.map((x) => [x.shardId, x.name]),
      shards.map((m) => [m.id, m.name]),
    )
    for (const m of shards.filter((x) => x.name !== '')) {
      const found = (await inject({ method: 'GET', url: `/v1/shards?name=${encodeURIComponent(m.name)}` })).json() as { shards: { shardId: string }[] }
      assert.deepEqual(found.shards.map((x) => x.shardId), [m.id])
    }
    // Every shard, at every available asOf, one last time.
    for (const m of shards) {
      const state = await shardState(m)
      assert.deepEqual({ since: state.since, upper: state.upper }, { since: [Number(m.since)], upper: [Number(m.upper)] })
      assert.equal(state.schemas.length, m.fields.length + 1)
      for (let asOf = m.since; asOf < m.upper && asOf < m.since + 8n; asOf++) await check(m, asOf, false)
    }
    // Once compactions settle and GC runs, no blob is left that state does not reference.
    const compactor = server.services.compactor
    for (const c of (await compactor.list({ limit: 1000 })).compactions) if (c.status === 'queued' || c.status === 'running') await compactor.wait(c.id)
    // The reads are over: their reader leases (which keep older versions' parts) go too.
    await server.services.shards.readerLeases.stop()
    for (const m of shards) {
      const gc = await inject({ method: 'POST', url: `/v1/shards/${m.id}/gc` })
      assert.equal(gc.statusCode, 200, gc.body)
      const shard = (await inject({ method: 'GET', url: `/v1/shards/${m.id}` })).json() as { trace: { batches: { batches: { parts: { key?: string }[] }[] }[] } }
      const referenced = new Set(shard.trace.batches.flatMap((b) => b.batches.flatMap((hb) => hb.parts.flatMap((p) => (p.key === undefined ? [] : [`${m.id}/${p.key}`])))))
      const stored: string[] = []
      for await (const meta of server.services.blob.list(`${m.id}/`)) stored.push(meta.key)
      assert.deepEqual(stored.filter((k) => !referenced.has(k)).sort(), [], `unreferenced blobs of ${m.id} after GC`)
      assert.deepEqual([...referenced].filter((k) => !stored.includes(k)), [], `referenced blobs of ${m.id} missing`)
    }
    // And of a deleted shard, nothing.
    for (const m of deleted) {
      await server.services.shards.collect(m.id as ShardId)
      const stored: string[] = []
      for await (const meta of server.services.blob.list(`${m.id}/`)) stored.push(meta.key)
      assert.deepEqual(stored, [], `blobs of the deleted shard ${m.id} after GC`)
    }
    counts['deleted'] = deleted.length
    return { ops: counts }
  } finally {
    await server.stop()
  }
}
