import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { AppError } from '../../src/errors.js'
import {
  EMPTY_CONFIG_STATE,
  applyConfigPatch,
  changedNames,
  decodeConfigState,
  effectiveValues,
  encodeConfigState,
  parseConfigPatch,
  type ConfigState,
} from '../../src/dyncfg/config-state.js'
import { DEFAULT_CONFIG_VALUES } from '../../src/dyncfg/registry.js'

const MiB = 1024 * 1024
const GiB = 1024 * MiB
const at = '2024-01-02T03:04:05.000Z'
const apply = (state: ConfigState, patch: Record<string, unknown>, historyLimit = 1000) =>
  applyConfigPatch(state, parseConfigPatch(patch), { at, historyLimit })

const isInvalid = (config: string, message: RegExp) => (err: unknown) =>
  err instanceof AppError && err.code === 'INVALID_CONFIG' && err.extra.config === config && message.test(err.message)

describe('applyConfigPatch', () => {
  it('stores JSON values, records old and new in registry order, and leaves the input state alone', () => {
    const { state, changes } = apply(EMPTY_CONFIG_STATE, { compaction_queue_size: 3, persist_compaction_minimum_timeout: 120_000 })
    assert.deepEqual(changes, [
      { at, name: 'persist_compaction_minimum_timeout', old: '90s', new: '2m' },
      { at, name: 'compaction_queue_size', old: 20, new: 3 },
    ])
    assert.deepEqual(state.set, { compaction_queue_size: 3, persist_compaction_minimum_timeout: '2m' })
    assert.deepEqual(state.history, changes)
    assert.deepEqual(EMPTY_CONFIG_STATE, { set: {}, history: [] })
    const values = effectiveValues(state)
    assert.equal(values.compaction_queue_size, 3)
    assert.equal(values.persist_compaction_minimum_timeout, 120_000)
    assert.ok(Object.isFrozen(values))
  })

  it('accepts unchanged values without storing or recording them', () => {
    const first = apply(EMPTY_CONFIG_STATE, { compaction_queue_size: 3 }).state
    const { state, changes } = apply(first, { compaction_queue_size: 3, compaction_process_requests: true, persist_compaction_minimum_timeout: '90000ms' })
    assert.deepEqual(changes, [])
    assert.equal(state, first)
  })

  it('keeps history newest first and capped', () => {
    let state = EMPTY_CONFIG_STATE
    for (let n = 1; n <= 5; n++) state = apply(state, { compaction_queue_size: n }, 3).state
    assert.deepEqual(
      state.history.map((c) => [c.old, c.new]),
      [
        [4, 5],
        [3, 4],
        [2, 3],
      ],
    )
  })

  describe('memory bound ≥ 4 × target size, judged on the resulting set', () => {
    it('rejects raising the target alone, naming the target', () => {
      assert.throws(() => apply(EMPTY_CONFIG_STATE, { persist_blob_target_size: 512 * MiB }), isInvalid('persist_blob_target_size', /at least 4 ×/))
    })
    it('rejects lowering the bound alone, naming the bound', () => {
      assert.throws(
        () => apply(EMPTY_CONFIG_STATE, { persist_compaction_memory_bound_bytes: 256 * MiB }),
        isInvalid('persist_compaction_memory_bound_bytes', /must be at least 4 × persist_blob_target_size \(134217728\)/),
      )
    })
    it('accepts both changed together when the result is valid', () => {
      const { changes } = apply(EMPTY_CONFIG_STATE, { persist_blob_target_size: GiB, persist_compaction_memory_bound_bytes: 4 * GiB })
      assert.equal(changes.length, 2)
    })
    it('judges both together when the result is invalid, naming the bound', () => {
      assert.throws(
        () => apply(EMPTY_CONFIG_STATE, { persist_blob_target_size: GiB, persist_compaction_memory_bound_bytes: 2 * GiB }),
        isInvalid('persist_compaction_memory_bound_bytes', /at least 4 ×/),
      )
    })
    it('does not block an unrelated update when stored values break the rule', () => {
      const broken: ConfigState = { set: { persist_blob_target_size: GiB }, history: [] }
      assert.equal(apply(broken, { compaction_queue_size: 1 }).changes.length, 1)
      assert.throws(() => apply(broken, { persist_blob_target_size: 2 * GiB }), isInvalid('persist_blob_target_size', /at least/))
    })
  })
})

describe('document encoding', () => {
  it('round-trips', () => {
    const { state } = apply(EMPTY_CONFIG_STATE, { persist_batch_preferred_order: 'codec', compaction_process_requests: false })
    assert.deepEqual(decodeConfigState(encodeConfigState(state)), state)
  })

  it('keeps entries it cannot use verbatim and uses defaults for them', () => {
    const doc = {
      version: 1,
      values: { from_a_newer_build: 'x', compaction_queue_size: -5, compaction_concurrency_limit: 2 },
      history: [],
    }
    const state = decodeConfigState(new TextEncoder().encode(JSON.stringify(doc)))
    const values = effectiveValues(state)
    assert.equal(values.compaction_queue_size, 20)
    assert.equal(values.compaction_concurrency_limit, 2)
    const next = apply(state, { compaction_concurrency_limit: 3 }).state
    assert.deepEqual(next.set, { from_a_newer_build: 'x', compaction_queue_size: -5, compaction_concurrency_limit: 3 })
  })

  it('rejects a malformed document with a sentence', () => {
    const bytes = (s: string) => new TextEncoder().encode(s)
    assert.throws(() => decodeConfigState(bytes('{')), /not JSON/)
    assert.throws(() => decodeConfigState(bytes('{"version":2,"values":{},"history":[]}')), /malformed/)
    assert.throws(() => decodeConfigState(bytes('{"version":1,"values":{},"history":[{"at":"x"}]}')), /malformed/)
    assert.throws(() => decodeConfigState(new Uint8Array([0xff, 0xfe])), /not JSON/)
  })
})

describe('changedNames', () => {
  it('lists differing names in registry order', () => {
    const after = { ...DEFAULT_CONFIG_VALUES, compaction_concurrency_limit: 1, compaction_process_requests: false }
    assert.deepEqual(changedNames(DEFAULT_CONFIG_VALUES, after), ['compaction_process_requests', 'compaction_concurrency_limit'])
    assert.deepEqual(changedNames(after, after), [])
  })
})
