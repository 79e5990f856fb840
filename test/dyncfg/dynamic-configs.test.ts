import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createDynamicConfigs, type DynamicConfigs, type DynamicConfigsOptions } from '../../src/dyncfg/dynamic-configs.js'
import type { ConfigName } from '../../src/dyncfg/registry.js'
import { AppError } from '../../src/errors.js'
import type { CasResult, Consensus, SeqNo, VersionedData } from '../../src/location/consensus.js'
import { determinate, indeterminate, noSpace, type Abortable } from '../../src/location/errors.js'
import { MemConsensus } from '../../src/location/mem-consensus.js'

const KEY = 'compactd/configs'

type Fault = 'indeterminate-after-write' | 'indeterminate-before-write' | 'determinate' | 'no-space'

/**
 * MemConsensus with scripted compare-and-set faults and counters: each queued fault applies to the
 * next compare-and-set. An "after write" fault commits and then reports an indeterminate error, as
 * a timeout after the request left would.
 */
class ScriptedConsensus implements Consensus {
  readonly inner = new MemConsensus()
  readonly faults: Fault[] = []
  /** Awaited just before a scripted indeterminate error is thrown (another writer acting meanwhile). */
  beforeIndeterminate: () => Promise<void> = async () => undefined
  mismatches = 0
  heads = 0

  async head(key: string, opts?: Abortable) {
    this.heads++
    return this.inner.head(key, opts)
  }
  async compareAndSet(key: string, expected: SeqNo | null, data: VersionedData, opts?: Abortable): Promise<CasResult> {
    const fault = this.faults.shift()
    if (fault === 'determinate') throw determinate('connection refused')
    if (fault === 'no-space') throw noSpace('file consensus compareAndSet "k": no space left under /srv/data/consensus')
    if (fault === 'indeterminate-before-write') {
      await this.beforeIndeterminate()
      throw indeterminate('timed out before the write')
    }
    const result = await this.inner.compareAndSet(key, expected, data, opts)
    if (result.kind === 'mismatch') this.mismatches++
    if (fault === 'indeterminate-after-write') throw indeterminate('timed out after the write')
    return result
  }
  scan(key: string, from: SeqNo, limit: number, opts?: Abortable) {
    return this.inner.scan(key, from, limit, opts)
  }
  truncate(key: string, seqno: SeqNo, opts?: Abortable) {
    return this.inner.truncate(key, seqno, opts)
  }
  list(opts?: Abortable) {
    return this.inner.list(opts)
  }
  close() {
    return this.inner.close()
  }
}

/** A clock that ticks one second per call, so history entries are ordered and distinct. */
function tickingClock(): () => Date {
  let t = Date.parse('2024-05-01T00:00:00.000Z')
  return () => new Date((t += 1000))
}

async function started(consensus: Consensus, opts: Partial<DynamicConfigsOptions> = {}): Promise<DynamicConfigs> {
  const configs = createDynamicConfigs({ consensus, now: tickingClock(), ...opts })
  await configs.start()
  return configs
}

/** NB: `watch` runs on an unref'd timer, so hold the event loop open while awaiting its poll. */
async function whileLoopAlive<T>(promise: Promise<T>): Promise<T> {
  const keepAlive = setInterval(() => undefined, 60_000)
  try {
    return await promise
  } finally {
    clearInterval(keepAlive)
  }
}

const isCode = (code: string, extra: Record<string, unknown> = {}) => (err: unknown) =>
  err instanceof AppError && err.code === code && Object.entries(extra).every(([k, v]) => err.extra[k] === v)

describe('DynamicConfigs', () => {
  it('starts with defaults when consensus has nothing, and refuses reads before start', async () => {
    const consensus = new MemConsensus()
    const configs = createDynamicConfigs({ consensus })
    assert.throws(() => configs.snapshot(), /not started/)
    assert.throws(() => configs.list(), /not started/)
    await Promise.all([configs.start(), configs.start()])
    await configs.start()
    assert.equal(configs.snapshot().compaction_queue_size, 20)
    assert.ok(Object.isFrozen(configs.snapshot()))
    assert.deepEqual(configs.get('persist_compaction_minimum_timeout'), {
      name: 'persist_compaction_minimum_timeout',
      type: 'duration',
      value: '90s',
      default: '90s',
      description: 'Floor of the per-request timeout, which is otherwise 1 s per whole MiB of input.',
    })
    assert.equal(configs.list().length, 24)
    assert.deepEqual(configs.history(), [])
    assert.deepEqual(await consensus.list(), [], 'reading writes nothing')
    assert.throws(() => configs.get('nope'), isCode('CONFIG_NOT_FOUND', { config: 'nope' }))
    await configs.stop()
    await configs.stop()
  })

  it('start loads once even when called concurrently', async () => {
    const consensus = new ScriptedConsensus()
    const configs = createDynamicConfigs({ consensus })
    await Promise.all([configs.start(), configs.start(), configs.start()])
    assert.equal(consensus.heads, 1)
  })

  it('updates, returns the changed entries in JSON form, and persists across restarts', async () => {
    const consensus = new MemConsensus()
    const a = await started(consensus)
    const snapshotBefore = a.snapshot()
    const changed = await a.update({ persist_compaction_minimum_timeout: 120_000, compaction_queue_size: 20, persist_batch_preferred_order: 'codec' })
    assert.deepEqual(
      changed.map((e) => [e.name, e.value, e.default]),
      [
        ['persist_compaction_minimum_timeout', '2m', '90s'],
        ['persist_batch_preferred_order', 'codec', 'structured'],
      ],
    )
    assert.equal(snapshotBefore.persist_compaction_minimum_timeout, 90_000, 'an earlier snapshot never changes')
    assert.equal(a.snapshot().persist_compaction_minimum_timeout, 120_000)
    assert.equal(a.get('persist_compaction_minimum_timeout').value, '2m')

    const restarted = await started(consensus)
    assert.deepEqual(restarted.snapshot(), a.snapshot())
    assert.deepEqual(restarted.history(), a.history())
    assert.equal((await consensus.head(KEY))?.seqno, 0)
  })

  it('accepts unchanged values without writing or recording them', async () => {
    const consensus = new MemConsensus()
    const configs = await started(consensus)
    assert.deepEqual(await configs.update({ compaction_queue_size: 20, persist_compaction_minimum_timeout: '90000ms' }), [])
    assert.deepEqual(await configs.update({}), [])
    assert.equal(await consensus.head(KEY), null)
    await configs.update({ compaction_queue_size: 7 })
    assert.deepEqual(await configs.update({ compaction_queue_size: 7 }), [])
    assert.equal(configs.history().length, 1)
    assert.equal((await consensus.head(KEY))?.seqno, 0)
  })

  it('applies nothing when one entry of a patch is bad', async () => {
    const consensus = new MemConsensus()
    const configs = await started(consensus)
    await configs.update({ compaction_concurrency_limit: 4 })
    const head = await consensus.head(KEY)
    for (const patch of [
      { compaction_queue_size: 3, compaction_concurrency_limit: 0 },
      { compaction_queue_size: 3, no_such_config: 1 },
      { compaction_queue_size: 3, persist_blob_target_size: 1024 * 1024 * 1024 },
    ]) {
      await assert.rejects(configs.update(patch), isCode('INVALID_CONFIG'))
      assert.deepEqual(await consensus.head(KEY), head)
      assert.equal(configs.snapshot().compaction_queue_size, 20)
      assert.equal(configs.snapshot().compaction_concurrency_limit, 4)
    }
    await assert.rejects(
      configs.update({ compaction_queue_size: 3, compaction_concurrency_limit: 0 }),
      (err: unknown) => err instanceof AppError && err.extra.config === 'compaction_concurrency_limit' && /compaction_concurrency_limit: must be an integer ≥ 1, got 0/.test(err.message),
    )
  })

  it('judges the cross-config rule on the whole resulting set', async () => {
    const configs = await started(new MemConsensus())
    const GiB = 1024 ** 3
    await assert.rejects(configs.update({ persist_blob_target_size: GiB }), isCode('INVALID_CONFIG', { config: 'persist_blob_target_size' }))
    const changed = await configs.update({ persist_blob_target_size: GiB, persist_compaction_memory_bound_bytes: 4 * GiB })
    assert.equal(changed.length, 2)
    assert.equal(configs.snapshot().persist_compaction_memory_bound_bytes, 4 * GiB)
  })

  it('keeps history newest first, capped at historyLimit', async () => {
    const configs = await started(new MemConsensus(), { historyLimit: 3 })
    for (let n = 1; n <= 5; n++) await configs.update({ compaction_queue_size: n })
    await configs.update({ compaction_process_requests: false, compaction_concurrency_limit: 2 })
    const history = configs.history()
    assert.deepEqual(
      history.map((c) => [c.name, c.old, c.new]),
      [
        ['compaction_process_requests', true, false],
        ['compaction_concurrency_limit', 5, 2],
        ['compaction_queue_size', 4, 5],
      ],
    )
    assert.equal(history[0]?.at, history[1]?.at, 'one update, one time')
    assert.ok((history[1]?.at ?? '') > (history[2]?.at ?? ''))
    assert.match(history[0]?.at ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  })

  it('two instances see each other after refresh, and onChange fires with the changed names', async () => {
    const consensus = new MemConsensus()
    const a = await started(consensus)
    const b = await started(consensus)
    const seenByB: (readonly ConfigName[])[] = []
    const seenByA: (readonly ConfigName[])[] = []
    b.onChange((names) => seenByB.push(names))
    a.onChange((names) => seenByA.push(names))

    await a.update({ compaction_concurrency_limit: 1, compaction_process_requests: false })
    assert.deepEqual(seenByA, [['compaction_process_requests', 'compaction_concurrency_limit']])
    assert.equal(b.snapshot().compaction_concurrency_limit, 5, 'b has not re-read yet')
    assert.deepEqual(await b.refresh(), ['compaction_process_requests', 'compaction_concurrency_limit'])
    assert.equal(b.snapshot().compaction_concurrency_limit, 1)
    assert.deepEqual(seenByB, [['compaction_process_requests', 'compaction_concurrency_limit']])
    assert.deepEqual(await b.refresh(), [], 'nothing new')
    assert.equal(seenByB.length, 1)

    await b.update({ compaction_queue_size: 2 })
    await a.refresh()
    assert.equal(a.snapshot().compaction_queue_size, 2)
    assert.deepEqual(seenByA.at(-1), ['compaction_queue_size'])
    assert.deepEqual(a.history(), b.history())
  })

  it('keeps every one of many concurrent updates from two instances', async () => {
    const consensus = new ScriptedConsensus()
    const a = await started(consensus)
    const b = await started(consensus)
    const patches: [DynamicConfigs, Record<string, unknown>][] = [
      [a, { compaction_queue_size: 11 }],
      [b, { compaction_concurrency_limit: 3 }],
      [a, { persist_compaction_heuristic_min_inputs: 2 }],
      [b, { persist_compaction_heuristic_min_parts: 3 }],
      [a, { persist_compaction_minimum_timeout: '1h' }],
      [b, { persist_batch_preferred_order: 'codec' }],
      [a, { compaction_yield_after_n_updates: 10 }],
      [b, { persist_gc_blob_delete_concurrency_limit: 4 }],
    ]
    const results = await Promise.all(patches.map(([c, p]) => c.update(p)))
    assert.ok(consensus.mismatches > 0, 'the updates raced')
    assert.deepEqual(
      results.map((r) => r.length),
      patches.map(() => 1),
    )
    await Promise.all([a.refresh(), b.refresh()])
    for (const c of [a, b]) {
      const s = c.snapshot()
      assert.equal(s.compaction_queue_size, 11)
      assert.equal(s.compaction_concurrency_limit, 3)
      assert.equal(s.persist_compaction_heuristic_min_inputs, 2)
      assert.equal(s.persist_compaction_heuristic_min_parts, 3)
      assert.equal(s.persist_compaction_minimum_timeout, 3_600_000)
      assert.equal(s.persist_batch_preferred_order, 'codec')
      assert.equal(s.compaction_yield_after_n_updates, 10)
      assert.equal(s.persist_gc_blob_delete_concurrency_limit, 4)
      assert.equal(c.history().length, 8)
    }
    assert.equal((await consensus.head(KEY))?.seqno, 7)
  })

  it('gives up with SERVICE_UNAVAILABLE after maxAttempts lost races, applying nothing of the loser', async () => {
    const consensus = new MemConsensus()
    const a = await started(consensus, { maxAttempts: 1 })
    const b = await started(consensus, { maxAttempts: 1 })
    const [ra, rb] = await Promise.allSettled([a.update({ compaction_queue_size: 1 }), b.update({ compaction_queue_size: 2 })])
    assert.equal(ra.status, 'fulfilled')
    assert.equal(rb.status, 'rejected')
    assert.ok(rb.status === 'rejected' && isCode('SERVICE_UNAVAILABLE')(rb.reason))
    await b.refresh()
    assert.equal(b.snapshot().compaction_queue_size, 1)
    assert.equal(b.history().length, 1)
  })

  it('an indeterminate write that landed counts as committed, once', async () => {
    const consensus = new ScriptedConsensus()
    const configs = await started(consensus)
    consensus.faults.push('indeterminate-after-write')
    const changed = await configs.update({ compaction_queue_size: 9 })
    assert.deepEqual(
      changed.map((e) => e.value),
      [9],
    )
    assert.equal(configs.history().length, 1)
    assert.equal((await consensus.head(KEY))?.seqno, 0)
  })

  it('an indeterminate write that did not land is retried', async () => {
    const consensus = new ScriptedConsensus()
    const configs = await started(consensus)
    consensus.faults.push('indeterminate-before-write', 'indeterminate-before-write')
    await configs.update({ compaction_queue_size: 9 })
    assert.equal(configs.snapshot().compaction_queue_size, 9)
    assert.equal((await consensus.head(KEY))?.seqno, 0)
  })

  it('an indeterminate write beaten by another writer is retried on top of it', async () => {
    const consensus = new ScriptedConsensus()
    const a = await started(consensus)
    const b = await started(consensus)
    // b's write fails before landing; a writes that same seqno before b re-reads.
    consensus.faults.push('indeterminate-before-write')
    consensus.beforeIndeterminate = async () => {
      await a.update({ compaction_concurrency_limit: 2 })
    }
    await b.update({ compaction_queue_size: 9 })
    assert.equal((await consensus.head(KEY))?.seqno, 1)
    await a.refresh()
    assert.equal(a.snapshot().compaction_queue_size, 9)
    assert.equal(a.snapshot().compaction_concurrency_limit, 2)
    assert.equal(a.history().length, 2)
  })

  it('an indeterminate write whose seqno was truncated away since is reported as maybe applied', async () => {
    const consensus = new ScriptedConsensus()
    const a = await started(consensus, { keepVersions: 1 })
    const b = await started(consensus)
    consensus.faults.push('indeterminate-before-write')
    consensus.beforeIndeterminate = async () => {
      for (let n = 1; n <= 3; n++) await a.update({ compaction_concurrency_limit: n })
    }
    await assert.rejects(
      b.update({ compaction_queue_size: 9 }),
      (err: unknown) => isCode('STORAGE_ERROR')(err) && /may or may not have been applied/.test((err as Error).message),
    )
  })

  it('a determinate storage failure is STORAGE_ERROR and applies nothing', async () => {
    const consensus = new ScriptedConsensus()
    const configs = await started(consensus)
    consensus.faults.push('determinate')
    await assert.rejects(configs.update({ compaction_queue_size: 9 }), isCode('STORAGE_ERROR'))
    assert.equal(await consensus.head(KEY), null)
    assert.equal(configs.snapshot().compaction_queue_size, 20)
  })

  it('a change consensus has no space for is INSUFFICIENT_STORAGE, applies nothing, and names no path', async () => {
    const consensus = new ScriptedConsensus()
    const configs = await started(consensus)
    consensus.faults.push('no-space')
    await assert.rejects(configs.update({ compaction_queue_size: 9 }), (err: unknown) => isCode('INSUFFICIENT_STORAGE')(err) && !/\/srv/.test((err as Error).message))
    assert.equal(await consensus.head(KEY), null)
    assert.equal(configs.snapshot().compaction_queue_size, 20)
  })

  it('truncates old versions after a write, keeping the last few', async () => {
    const consensus = new MemConsensus()
    const configs = await started(consensus, { keepVersions: 3 })
    for (let n = 1; n <= 10; n++) await configs.update({ compaction_queue_size: n })
    const versions = await consensus.scan(KEY, 0, 100)
    assert.deepEqual(
      versions.map((v) => v.seqno),
      [7, 8, 9],
    )
  })

  it('watch polls until stop, reporting changes to listeners', async () => {
    const consensus = new MemConsensus()
    const a = await started(consensus)
    const b = await started(consensus)
    a.watch(5)
    const changed = new Promise<readonly ConfigName[]>((resolve) => a.onChange(resolve))
    await b.update({ compaction_process_requests: false })
    assert.deepEqual(await whileLoopAlive(changed), ['compaction_process_requests'])
    assert.equal(a.snapshot().compaction_process_requests, false)
    await a.stop()
    await a.stop()
    assert.throws(() => a.watch(0), RangeError)
  })

  it('reports errors of a watch poll to onError and keeps polling', async () => {
    const consensus = new ScriptedConsensus()
    const errors: unknown[] = []
    let resolveError: () => void = () => undefined
    const gotError = new Promise<void>((resolve) => (resolveError = resolve))
    const a = await started(consensus, { onError: (err) => (errors.push(err), resolveError()) })
    const b = await started(consensus)
    await b.update({ compaction_queue_size: 1 })
    // A document a.refresh() cannot decode makes the next poll fail.
    await consensus.inner.compareAndSet(KEY, 0, { seqno: 1, data: new TextEncoder().encode('{') })
    a.watch(2)
    await whileLoopAlive(gotError)
    assert.ok(errors[0] instanceof AppError && errors[0].code === 'INTERNAL' && /not JSON/.test(errors[0].message))
    const changed = new Promise<readonly ConfigName[]>((resolve) => a.onChange(resolve))
    const fixed = '{"version":1,"values":{"compaction_queue_size":4},"history":[]}'
    await consensus.inner.compareAndSet(KEY, 1, { seqno: 2, data: new TextEncoder().encode(fixed) })
    assert.deepEqual(await whileLoopAlive(changed), ['compaction_queue_size'])
    assert.equal(a.snapshot().compaction_queue_size, 4)
    await a.stop()
  })

  it('a throwing listener goes to onError and does not stop the others; unsubscribe works', async () => {
    const errors: unknown[] = []
    const configs = await started(new MemConsensus(), { onError: (err) => errors.push(err) })
    const calls: string[] = []
    configs.onChange(() => {
      throw new Error('listener bug')
    })
    const off = configs.onChange(() => calls.push('second'))
    await configs.update({ compaction_queue_size: 1 })
    off()
    await configs.update({ compaction_queue_size: 2 })
    assert.deepEqual(calls, ['second'])
    assert.equal(errors.length, 2)
    assert.match((errors[0] as Error).message, /listener bug/)
  })

  it('a corrupt document fails start with INTERNAL, and start can be retried', async () => {
    const consensus = new MemConsensus()
    await consensus.compareAndSet(KEY, null, { seqno: 0, data: new TextEncoder().encode('{"version":1}') })
    const configs = createDynamicConfigs({ consensus })
    await assert.rejects(configs.start(), (err: unknown) => isCode('INTERNAL')(err) && /malformed/.test((err as Error).message))
    await consensus.compareAndSet(KEY, 0, { seqno: 1, data: new TextEncoder().encode('{"version":1,"values":{"compaction_queue_size":4},"history":[]}') })
    await configs.start()
    assert.equal(configs.snapshot().compaction_queue_size, 4)
  })

  it('uses its own key', async () => {
    const consensus = new MemConsensus()
    const a = await started(consensus, { key: 'tenant-a/configs' })
    const b = await started(consensus, { key: 'tenant-b/configs' })
    await a.update({ compaction_queue_size: 1 })
    await b.refresh()
    assert.equal(b.snapshot().compaction_queue_size, 20)
    assert.deepEqual(await consensus.list(), ['tenant-a/configs'])
  })
})
