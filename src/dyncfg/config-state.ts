/**
 * The persisted configs document and its pure transitions. One consensus version holds one whole
 * document: the explicitly set values (JSON form) and the audit history, newest first.
 *
 * Values never set keep following their default, so a build with a new default applies it.
 * Entries under names this build does not know (written by a newer build), and known names whose
 * stored value this build rejects, are kept verbatim and written back untouched; the effective
 * value of such a known name is its default.
 */
import { z } from 'zod'
import { AppError } from '../errors.js'
import {
  CONFIG_DEFS,
  CROSS_CONFIG_RULES,
  DEFAULT_CONFIG_VALUES,
  configDef,
  toConfigJson,
  type ConfigJsonValue,
  type ConfigName,
  type ConfigValue,
  type ConfigValues,
} from './registry.js'

/** One audited change. `name` may be a config this build does not know (written by another build). */
export interface ConfigChange {
  /** ISO 8601 time of the update. */
  readonly at: string
  readonly name: string
  readonly old: ConfigJsonValue
  readonly new: ConfigJsonValue
}

export interface ConfigState {
  /** Explicitly set values in JSON form, by name. */
  readonly set: Readonly<Record<string, unknown>>
  /** Newest first; the changes of one update share `at` and are in registry order. */
  readonly history: readonly ConfigChange[]
}

export const EMPTY_CONFIG_STATE: ConfigState = Object.freeze({ set: Object.freeze({}), history: Object.freeze([]) })

/** One validated entry of a patch. */
export interface PatchEntry {
  readonly name: ConfigName
  readonly value: ConfigValue
}

const JsonValue = z.union([z.boolean(), z.number(), z.string()])
const Document = z.object({
  version: z.literal(1),
  values: z.record(z.string(), z.unknown()),
  history: z.array(z.object({ at: z.string(), name: z.string(), old: JsonValue, new: JsonValue })),
})
type Document = z.infer<typeof Document>

export function encodeConfigState(state: ConfigState): Uint8Array {
  const doc: Document = { version: 1, values: { ...state.set }, history: [...state.history] }
  return new TextEncoder().encode(JSON.stringify(doc))
}

/** Decodes a persisted document; throws an Error naming what is wrong with it. */
export function decodeConfigState(data: Uint8Array): ConfigState {
  let json: unknown
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data))
  } catch (err) {
    throw new Error(`the persisted configs document is not JSON: ${(err as Error).message}`, { cause: err })
  }
  const parsed = Document.safeParse(json)
  if (!parsed.success) {
    throw new Error(`the persisted configs document is malformed: ${z.prettifyError(parsed.error)}`)
  }
  return { set: parsed.data.values, history: parsed.data.history }
}

/** Defaults overlaid with every valid set value of a known config; frozen. */
export function effectiveValues(state: ConfigState): ConfigValues {
  const values: Record<string, ConfigValue> = { ...DEFAULT_CONFIG_VALUES }
  for (const def of CONFIG_DEFS) {
    if (!Object.hasOwn(state.set, def.name)) continue
    const v = def.validate(state.set[def.name])
    if (v.ok) values[def.name] = v.value
  }
  return Object.freeze(values) as unknown as ConfigValues
}

/**
 * Validates every entry of a patch (all or nothing). Throws INVALID_CONFIG naming the first bad
 * entry (in the patch's order) and its rule, with the config's name in the extra field `config`.
 */
export function parseConfigPatch(patch: Readonly<Record<string, unknown>>): PatchEntry[] {
  const entries: PatchEntry[] = []
  for (const [name, input] of Object.entries(patch)) {
    const def = configDef(name)
    if (def === undefined) throw invalidConfig(name, `unknown config "${name}"`)
    const v = def.validate(input)
    if (!v.ok) throw invalidConfig(name, `invalid value for ${name}: ${v.error}`)
    entries.push({ name: def.name, value: v.value })
  }
  return entries
}

export interface ApplyOptions {
  /** ISO 8601 time recorded on the changes. */
  readonly at: string
  /** Most history entries kept. */
  readonly historyLimit: number
}

/**
 * Applies a validated patch to `state`; the changes come in registry order. Entries equal to the current value are accepted but neither
 * stored nor recorded. The cross-config rules that read a patched config are judged on the whole
 * resulting values (so a patch that changes both sides of a rule is judged together); a rule none
 * of whose configs is patched is not re-judged, so an unrelated update is never blocked by it.
 * Throws INVALID_CONFIG when a rule is broken. Pure: `state` is not modified.
 */
export function applyConfigPatch(
  state: ConfigState,
  patch: readonly PatchEntry[],
  opts: ApplyOptions,
): { state: ConfigState; changes: ConfigChange[] } {
  const current = effectiveValues(state)
  const next: Record<string, ConfigValue> = { ...current }
  for (const { name, value } of patch) next[name] = value
  const nextValues = next as unknown as ConfigValues

  const patched = new Set<string>(patch.map((e) => e.name))
  for (const rule of CROSS_CONFIG_RULES) {
    const touched = rule.configs.filter((c) => patched.has(c))
    if (touched.length === 0) continue
    const error = rule.check(nextValues)
    if (error !== null) {
      const named = touched.length === 1 ? (touched[0] as ConfigName) : (rule.configs[0] as ConfigName)
      throw invalidConfig(named, `invalid value for ${named}: ${error}`)
    }
  }

  const changes: ConfigChange[] = []
  const set: Record<string, unknown> = { ...state.set }
  for (const { name } of CONFIG_DEFS) {
    if (!patched.has(name)) continue
    const before = current[name]
    const after = nextValues[name]
    if (before === after) continue
    const json = toConfigJson(name, after)
    set[name] = json
    changes.push({ at: opts.at, name, old: toConfigJson(name, before), new: json })
  }
  if (changes.length === 0) return { state, changes }
  const history = [...changes, ...state.history].slice(0, Math.max(0, opts.historyLimit))
  return { state: { set, history }, changes }
}

/** Names whose effective value differs between two value sets, in registry order. */
export function changedNames(before: ConfigValues, after: ConfigValues): ConfigName[] {
  return CONFIG_DEFS.map((d) => d.name).filter((name) => before[name] !== after[name])
}

function invalidConfig(name: string, message: string): AppError {
  return new AppError('INVALID_CONFIG', message, { config: name })
}
