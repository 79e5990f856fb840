import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { AppError } from '../../src/errors.js'
import {
  CONFIG_DEFS,
  CONFIG_NAMES,
  CROSS_CONFIG_RULES,
  DEFAULT_CONFIG_VALUES,
  configDef,
  isConfigName,
  toConfigJson,
  validateConfigValue,
  type BatchOrder,
  type ConfigName,
  type ConfigValues,
} from '../../src/dyncfg/registry.js'
import { parseConfigPatch } from '../../src/dyncfg/config-state.js'

const MiB = 1024 * 1024

interface Case {
  /** A valid JSON value and the held value it becomes. */
  readonly good: readonly [unknown, unknown]
  readonly badType: unknown
  /** A value of the right JSON type outside the config's range or options. */
  readonly outOfRange: unknown
}

const bool: Case = { good: [false, false], badType: 'false', outOfRange: 0 }
const count = (min: number): Case => ({ good: [min + 3, min + 3], badType: '3', outOfRange: min - 1 })

/** Every config: a good value, a bad type, a value out of range. */
const CASES: Record<ConfigName, Case> = {
  compaction_process_requests: bool,
  persist_compaction_check_process_flag: bool,
  persist_compaction_minimum_timeout: { good: ['2m', 120_000], badType: true, outOfRange: '-1s' },
  persist_compaction_use_most_recent_schema: bool,
  persist_compaction_heuristic_min_inputs: count(0),
  persist_compaction_heuristic_min_parts: count(0),
  persist_compaction_heuristic_min_updates: count(0),
  persist_compaction_memory_bound_bytes: { good: [2 ** 31, 2 ** 31], badType: '1GiB', outOfRange: -1 },
  persist_blob_target_size: { good: [MiB, MiB], badType: null, outOfRange: 0 },
  persist_batch_builder_max_outstanding_parts: count(1),
  persist_batch_preferred_order: { good: ['codec', 'codec'], badType: 1, outOfRange: 'unordered' },
  persist_inline_writes_single_max_bytes: { good: [0, 0], badType: 1.5, outOfRange: 2 ** 53 },
  persist_inline_writes_total_max_bytes: { good: [0, 0], badType: [1], outOfRange: -4096 },
  persist_gc_blob_delete_concurrency_limit: count(1),
  compaction_queue_size: count(1),
  compaction_concurrency_limit: count(1),
  compaction_yield_after_n_updates: count(1),
  compaction_lease_timeout: { good: ['30s', 30_000], badType: false, outOfRange: '-1s' },
  compaction_history_retention: { good: ['7d', 604_800_000], badType: [], outOfRange: '1.5d' },
  persist_enable_incremental_compaction: bool,
  compaction_idle_sweep_interval: { good: ['0s', 0], badType: {}, outOfRange: -5 },
  compaction_maintenance_enabled: bool,
  persist_reader_lease_duration: { good: ['15m', 900_000], badType: false, outOfRange: '-5m' },
  persist_state_deltas_enabled: bool,
}

describe('registry', () => {
  it('has exactly the configs of docs/operations.md, each with a test case', () => {
    assert.deepEqual([...CONFIG_NAMES].sort(), Object.keys(CASES).sort())
    assert.equal(CONFIG_DEFS.length, 24)
    assert.equal(new Set(CONFIG_NAMES).size, CONFIG_NAMES.length)
  })

  it('has the documented defaults', () => {
    const expected: ConfigValues = {
      compaction_process_requests: true,
      persist_compaction_check_process_flag: true,
      persist_compaction_minimum_timeout: 90_000,
      persist_compaction_use_most_recent_schema: true,
      persist_compaction_heuristic_min_inputs: 8,
      persist_compaction_heuristic_min_parts: 8,
      persist_compaction_heuristic_min_updates: 1024,
      persist_compaction_memory_bound_bytes: 1024 * MiB,
      persist_blob_target_size: 128 * MiB,
      persist_batch_builder_max_outstanding_parts: 2,
      persist_batch_preferred_order: 'structured',
      persist_inline_writes_single_max_bytes: 4096,
      persist_inline_writes_total_max_bytes: MiB,
      persist_gc_blob_delete_concurrency_limit: 32,
      compaction_queue_size: 20,
      compaction_concurrency_limit: 5,
      compaction_yield_after_n_updates: 100_000,
      compaction_lease_timeout: 15_000,
      compaction_history_retention: 7 * 24 * 60 * 60 * 1000,
      persist_enable_incremental_compaction: true,
      compaction_idle_sweep_interval: 60_000,
      compaction_maintenance_enabled: true,
      persist_reader_lease_duration: 300_000,
      persist_state_deltas_enabled: true,
    }
    assert.deepEqual(DEFAULT_CONFIG_VALUES, expected)
    assert.ok(Object.isFrozen(DEFAULT_CONFIG_VALUES))
    assert.equal(toConfigJson('persist_compaction_minimum_timeout', DEFAULT_CONFIG_VALUES.persist_compaction_minimum_timeout), '90s')
  })

  it('types ConfigValues: numbers, booleans and the enum union', () => {
    const n: number = DEFAULT_CONFIG_VALUES.persist_blob_target_size
    const ms: number = DEFAULT_CONFIG_VALUES.persist_compaction_minimum_timeout
    const b: boolean = DEFAULT_CONFIG_VALUES.compaction_process_requests
    const o: BatchOrder = DEFAULT_CONFIG_VALUES.persist_batch_preferred_order
    // @ts-expect-error a count is not a string
    const s: string = DEFAULT_CONFIG_VALUES.compaction_queue_size
    // @ts-expect-error unknown configs are not in ConfigValues
    void DEFAULT_CONFIG_VALUES.compaction_queue_length
    assert.deepEqual([typeof n, typeof ms, typeof b, typeof o, typeof s], ['number', 'number', 'boolean', 'string', 'number'])
  })

  it('defaults pass their own validation and every cross-config rule', () => {
    for (const def of CONFIG_DEFS) {
      const v = def.validate(toConfigJson(def.name, def.default))
      assert.deepEqual(v, { ok: true, value: def.default }, def.name)
    }
    for (const rule of CROSS_CONFIG_RULES) assert.equal(rule.check(DEFAULT_CONFIG_VALUES), null)
  })

  it('looks names up', () => {
    assert.equal(isConfigName('compaction_queue_size'), true)
    assert.equal(isConfigName('compaction_queue_length'), false)
    assert.equal(configDef('nope'), undefined)
    assert.equal(configDef('persist_batch_preferred_order')?.type, 'enum')
  })

  for (const [name, c] of Object.entries(CASES) as [ConfigName, Case][]) {
    describe(name, () => {
      it('accepts a good value', () => {
        assert.deepEqual(validateConfigValue(name, c.good[0]), { ok: true, value: c.good[1] })
        assert.deepEqual(parseConfigPatch({ [name]: c.good[0] }), [{ name, value: c.good[1] }])
      })
      for (const [what, input] of [
        ['a bad type', c.badType],
        ['a value out of range', c.outOfRange],
      ] as const) {
        it(`rejects ${what} (${JSON.stringify(input)}) naming the config and the rule`, () => {
          const v = validateConfigValue(name, input)
          assert.equal(v.ok, false)
          assert.throws(
            () => parseConfigPatch({ [name]: input }),
            (err: unknown) =>
              err instanceof AppError &&
              err.code === 'INVALID_CONFIG' &&
              err.extra.config === name &&
              err.message.includes(name) &&
              err.message.includes(v.ok ? '<none>' : v.error) &&
              /must/.test(err.message),
          )
        })
      }
    })
  }

  it('states each integer range in the rule', () => {
    const v = validateConfigValue('compaction_concurrency_limit', 0)
    assert.deepEqual(v, { ok: false, error: 'must be an integer ≥ 1, got 0' })
    const e = validateConfigValue('persist_batch_preferred_order', 'unordered')
    assert.deepEqual(e, { ok: false, error: 'must be one of "structured", "codec", got "unordered"' })
  })

  it('rejects an unknown name with INVALID_CONFIG naming it', () => {
    assert.throws(
      () => parseConfigPatch({ compaction_queue_size: 3, compaction_queue_length: 3 }),
      (err: unknown) =>
        err instanceof AppError &&
        err.code === 'INVALID_CONFIG' &&
        err.extra.config === 'compaction_queue_length' &&
        err.message === 'unknown config "compaction_queue_length"',
    )
  })

  it('names the first bad entry in the patch order', () => {
    assert.throws(
      () => parseConfigPatch({ compaction_queue_size: 3, compaction_concurrency_limit: 0, persist_blob_target_size: 'x' }),
      (err: unknown) => err instanceof AppError && err.extra.config === 'compaction_concurrency_limit',
    )
  })

  it('the memory-bound rule is exact at the boundary, even for huge values', () => {
    const [rule] = CROSS_CONFIG_RULES
    assert.ok(rule !== undefined)
    const at = (bound: number, target: number): ConfigValues => ({
      ...DEFAULT_CONFIG_VALUES,
      persist_compaction_memory_bound_bytes: bound,
      persist_blob_target_size: target,
    })
    assert.equal(rule.check(at(4 * MiB, MiB)), null)
    assert.match(rule.check(at(4 * MiB - 1, MiB)) ?? '', /persist_compaction_memory_bound_bytes \(4194303\) must be at least 4 × persist_blob_target_size \(1048576\)/)
    const max = Number.MAX_SAFE_INTEGER
    assert.equal(rule.check(at(max, Math.floor(max / 4))), null)
    assert.notEqual(rule.check(at(max, Math.floor(max / 4) + 1)), null)
  })
})
