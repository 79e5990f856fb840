/**
 * The dynamic configs (docs/operations.md#dynamic-configs): names, types, defaults, descriptions and validation rules.
 * This list is the single source: `ConfigName` and `ConfigValues` are derived from it.
 *
 * Held values: booleans, non-negative safe integers (counts and bytes), integer milliseconds
 * (durations) and string unions (enums). JSON values differ only for durations, which are written
 * as canonical strings (`duration.ts`).
 */
import { formatDuration, parseDuration } from './duration.js'

export const CONFIG_TYPES = ['bool', 'count', 'bytes', 'duration', 'enum'] as const
export type ConfigType = (typeof CONFIG_TYPES)[number]

/** A config value in its JSON form (what the API and the persisted document carry). */
export type ConfigJsonValue = boolean | number | string

export type Validation<V> = { ok: true; value: V } | { ok: false; error: string }

interface ConfigDefBase<N extends string, T extends ConfigType, V> {
  readonly name: N
  readonly type: T
  /** The held (not JSON) value used while nothing else is set. */
  readonly default: V
  readonly description: string
  /** Parses a JSON value into the held value, or returns a sentence naming the rule it breaks. */
  readonly validate: (input: unknown) => Validation<V>
}

export type BoolConfigDef<N extends string> = ConfigDefBase<N, 'bool', boolean>
export interface IntegerConfigDef<N extends string, T extends 'count' | 'bytes'> extends ConfigDefBase<N, T, number> {
  /** Inclusive bounds. */
  readonly min: number
  readonly max: number
}
export type DurationConfigDef<N extends string> = ConfigDefBase<N, 'duration', number>
export interface EnumConfigDef<N extends string, O extends string> extends ConfigDefBase<N, 'enum', O> {
  readonly options: readonly O[]
}

function bool<N extends string>(name: N, dflt: boolean, description: string): BoolConfigDef<N> {
  return {
    name,
    type: 'bool',
    default: dflt,
    description,
    validate: (input) =>
      typeof input === 'boolean' ? { ok: true, value: input } : { ok: false, error: `must be a JSON boolean, got ${show(input)}` },
  }
}

function integer<N extends string, T extends 'count' | 'bytes'>(
  type: T,
  name: N,
  dflt: number,
  description: string,
  min = 0,
): IntegerConfigDef<N, T> {
  const max = Number.MAX_SAFE_INTEGER
  return {
    name,
    type,
    default: dflt,
    description,
    min,
    max,
    validate: (input) => {
      if (typeof input !== 'number' || !Number.isInteger(input)) return { ok: false, error: `must be an integer, got ${show(input)}` }
      if (input < min) return { ok: false, error: `must be an integer ≥ ${min}, got ${input}` }
      if (input > max) return { ok: false, error: `must be an integer ≤ ${max}, got ${show(input)}` }
      return { ok: true, value: input }
    },
  }
}

const count = <N extends string>(name: N, dflt: number, description: string, min?: number) =>
  integer('count', name, dflt, description, min)
const bytes = <N extends string>(name: N, dflt: number, description: string, min?: number) =>
  integer('bytes', name, dflt, description, min)

function duration<N extends string>(name: N, dflt: number, description: string): DurationConfigDef<N> {
  return {
    name,
    type: 'duration',
    default: dflt,
    description,
    validate: (input) => {
      const parsed = parseDuration(input)
      return parsed.ok ? parsed : { ok: false, error: parsed.error }
    },
  }
}

function oneOf<N extends string, const O extends string>(
  name: N,
  options: readonly O[],
  dflt: NoInfer<O>,
  description: string,
): EnumConfigDef<N, O> {
  return {
    name,
    type: 'enum',
    default: dflt,
    description,
    options,
    validate: (input) =>
      typeof input === 'string' && (options as readonly string[]).includes(input)
        ? { ok: true, value: input as O }
        : { ok: false, error: `must be one of ${options.map((o) => `"${o}"`).join(', ')}, got ${show(input)}` },
  }
}

function show(input: unknown): string {
  if (input === undefined) return 'nothing'
  const json = JSON.stringify(input)
  return json.length > 60 ? `${json.slice(0, 60)}…` : json
}

const KiB = 1024
const MiB = 1024 * KiB
const GiB = 1024 * MiB

export const BATCH_ORDERS = ['structured', 'codec'] as const
export type BatchOrder = (typeof BATCH_ORDERS)[number]

/** Every dynamic config, in the order `list()` returns (and docs/operations.md#dynamic-configs lists them). */
export const CONFIG_DEFS = [
  bool('compaction_process_requests', true, 'Kill switch: whether queued compaction requests are processed at all.'),
  bool(
    'persist_compaction_check_process_flag',
    true,
    'Whether compaction obeys compaction_process_requests; when false the kill switch is ignored.',
  ),
  duration(
    'persist_compaction_minimum_timeout',
    90_000,
    'Floor of the per-request timeout, which is otherwise 1 s per whole MiB of input.',
  ),
  bool(
    'persist_compaction_use_most_recent_schema',
    true,
    "Whether compaction writes with the newest schema among the inputs' runs rather than the requester's writer schema.",
  ),
  count('persist_compaction_heuristic_min_inputs', 8, 'Compact when a request has at least this many input batches (OR with the other heuristics).'),
  count('persist_compaction_heuristic_min_parts', 8, 'Compact when the inputs have at least this many parts (OR with the other heuristics).'),
  count('persist_compaction_heuristic_min_updates', 1024, 'Compact when the inputs have at least this many updates (OR with the other heuristics).'),
  bytes(
    'persist_compaction_memory_bound_bytes',
    GiB,
    'Memory bound of one compaction; must be at least 4 × persist_blob_target_size.',
  ),
  bytes('persist_blob_target_size', 128 * MiB, 'Target size of a written part; compaction cuts parts at this size.', 1),
  count('persist_batch_builder_max_outstanding_parts', 2, 'Part uploads a batch builder keeps in flight at once.', 1),
  oneOf('persist_batch_preferred_order', BATCH_ORDERS, 'structured', 'Sort order of written parts: structured (by decoded columns) or codec (by encoded bytes).'),
  bytes('persist_inline_writes_single_max_bytes', 4 * KiB, 'Largest batch written inline in state rather than to blob (compaction always writes to blob).'),
  bytes('persist_inline_writes_total_max_bytes', MiB, 'Total inline bytes allowed in a shard state before writes go to blob.'),
  count('persist_gc_blob_delete_concurrency_limit', 32, 'Concurrent blob deletes for GC and for the outputs of not-applied compactions.', 1),
  count('compaction_queue_size', 20, "Capacity of the cluster's compaction queue; a request beyond it is dropped with 429. Lowering it never drops queued work.", 1),
  count('compaction_concurrency_limit', 5, 'Compactions running at once on each instance. Lowering it never kills running work.', 1),
  count('compaction_yield_after_n_updates', 100_000, 'Most updates the consolidator emits before yielding a chunk.', 1),
  duration(
    'compaction_lease_timeout',
    15_000,
    "How long a running compaction's owner may go without progress before another instance takes the job over (attempt + 1). Owners renew while their compaction makes progress.",
  ),
  duration('compaction_history_retention', 7 * 24 * 60 * 60 * 1000, 'How long finished compactions are kept for listing and idempotency keys.'),
  bool(
    'persist_enable_incremental_compaction',
    true,
    'Apply each finished chunk of a multi-chunk compaction to the trace at once, so a crash, timeout or cancel keeps the chunks already applied and a rescued job compacts only what is left.',
  ),
  bool(
    'compaction_maintenance_enabled',
    true,
    "Whether compactd compacts on its own: writer maintenance after appends and the idle sweep. False leaves the merge work in the spine (an operator's request, or maintenance once it is true again, picks it up); operators' requests run either way, and queued and running maintenance finishes.",
  ),
  duration(
    'compaction_idle_sweep_interval',
    60_000,
    'How often one instance looks for shards whose spine holds merge work but that receive no appends, and submits their maintenance; 0s turns the sweep off.',
  ),
  duration(
    'persist_reader_lease_duration',
    5 * 60 * 1000,
    "How long a snapshot read's lease in shard state lasts unless renewed (every quarter of it, 1s to 60s). While live it keeps the parts of the versions it holds from every instance's GC; a dead instance's lease holds GC back until it expires. 0s: no leases in state (reads then rely on the GC grace).",
  ),
  bool(
    'persist_state_deltas_enabled',
    true,
    'Whether shard state versions may be written as deltas against the version before (while every live instance reads them); false writes every version whole, and GC writes a shard whose latest version is a delta again whole, so that a build that reads only whole versions can serve it (rolling back).',
  ),
] as const

export type ConfigDef = (typeof CONFIG_DEFS)[number]
export type ConfigName = ConfigDef['name']

/** A consistent set of held values of every config, keyed by config name. */
export type ConfigValues = { readonly [D in ConfigDef as D['name']]: D['default'] }
export type ConfigValue = ConfigValues[ConfigName]

const DEF_BY_NAME: ReadonlyMap<string, ConfigDef> = new Map(CONFIG_DEFS.map((d) => [d.name, d]))

export const CONFIG_NAMES: readonly ConfigName[] = CONFIG_DEFS.map((d) => d.name)

export const isConfigName = (name: string): name is ConfigName => DEF_BY_NAME.has(name)

/** The definition of `name`, or undefined for an unknown name. */
export const configDef = (name: string): ConfigDef | undefined => DEF_BY_NAME.get(name)

/** Every config at its default, frozen. */
export const DEFAULT_CONFIG_VALUES: ConfigValues = Object.freeze(
  Object.fromEntries(CONFIG_DEFS.map((d) => [d.name, d.default])) as unknown as ConfigValues,
)

/** Validates a JSON value for config `name` (a known name) into its held value. */
export function validateConfigValue(name: ConfigName, input: unknown): Validation<ConfigValue> {
  const def = DEF_BY_NAME.get(name) as ConfigDef
  return def.validate(input)
}

/** The JSON form of a held value of `name` (durations become canonical strings). */
export function toConfigJson(name: ConfigName, value: ConfigValue): ConfigJsonValue {
  const def = DEF_BY_NAME.get(name) as ConfigDef
  return def.type === 'duration' ? formatDuration(value as number) : value
}

/** A rule over several configs, judged on a whole resulting config set. */
export interface CrossConfigRule {
  /** The configs the rule reads; the first is the one an error names unless only another was set. */
  readonly configs: readonly ConfigName[]
  /** A sentence naming the rule when `values` breaks it, else null. */
  readonly check: (values: ConfigValues) => string | null
}

export const CROSS_CONFIG_RULES: readonly CrossConfigRule[] = [
  {
    configs: ['persist_compaction_memory_bound_bytes', 'persist_blob_target_size'],
    check: (v) => {
      const bound = v.persist_compaction_memory_bound_bytes
      const target = v.persist_blob_target_size
      // NB: 4 × target may exceed 2^53 for huge targets; compare by division to stay exact.
      return bound / 4 >= target
        ? null
        : `persist_compaction_memory_bound_bytes (${bound}) must be at least 4 × persist_blob_target_size (${target})`
    },
  },
]
