/**
 * The last pass over the OpenAPI document @fastify/swagger builds from the zod schemas, so clients
 * can generate from it:
 *
 * - **One component per schema.** The zod provider emits each schema with an id twice, as `X`
 *   (responses) and `XInput` (requests), and every one whether used or not. Twins that are the same
 *   schema become one (`X`), a request-only schema keeps the plain name, and components no
 *   operation reaches are dropped. Twins differing only in `additionalProperties: false` (zod
 *   writes it for outputs, not inputs, as parsing strips unknown keys) count as the same: the
 *   merged schema keeps it, which tells clients to send no other keys.
 * - **Operations from OPERATIONS** (openapi-operations.ts): each gets its `operationId` and example
 *   request bodies; operations the routes leave without `security` (those outside /v1) get an
 *   explicit `security: []`, saying they need no token.
 *
 * Pure: takes the document, returns a new one; the input is not changed.
 */
import { OPERATIONS, operationKey } from './openapi-operations.js'

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }
type JsonObject = { [key: string]: Json }

const SCHEMA_REF = '#/components/schemas/'
const INPUT = 'Input'
const METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'])

export function finishOpenApi<D extends object>(doc: D): D {
  const copy: unknown = JSON.parse(JSON.stringify(doc))
  if (!isObject(copy)) return doc
  tidySchemas(copy)
  decorateOperations(copy)
  // NB: the same keys as the input, completed; the caller's type still describes it.
  return copy as D
}

// ---- components ----------------------------------------------------------------------------------

function tidySchemas(doc: JsonObject): void {
  const components = doc['components']
  if (!isObject(components)) return
  const schemas = components['schemas']
  if (!isObject(schemas)) return

  // Twins X / XInput are merged when equal once every merged twin's refs are renamed alike; a
  // pair that differs is dropped from the candidates and the check runs again (a fixpoint).
  const merged = new Set(Object.keys(schemas).filter((name) => name.endsWith(INPUT) && baseOf(name) in schemas))
  for (let changed = true; changed; ) {
    changed = false
    const rename = renaming(merged)
    for (const input of [...merged]) {
      if (canonical(schemas[input] ?? null, rename) !== canonical(schemas[baseOf(input)] ?? null, rename)) {
        merged.delete(input)
        changed = true
      }
    }
  }
  rewriteRefs(doc, renaming(merged))
  for (const input of merged) delete schemas[input]

  // Drop what no operation reaches, then give request-only schemas their plain name.
  const reached = reachable(doc, schemas)
  for (const name of Object.keys(schemas)) if (!reached.has(name)) delete schemas[name]
  const plain = new Set([...reached].filter((name) => name.endsWith(INPUT) && !(baseOf(name) in schemas)))
  rewriteRefs(doc, renaming(plain))
  for (const input of plain) {
    schemas[baseOf(input)] = schemas[input] ?? null
    delete schemas[input]
  }
  components['schemas'] = sortedObject(schemas)
}

const baseOf = (input: string): string => input.slice(0, -INPUT.length)

function renaming(inputs: ReadonlySet<string>): Map<string, string> {
  return new Map([...inputs].map((input) => [`${SCHEMA_REF}${input}`, `${SCHEMA_REF}${baseOf(input)}`]))
}

/** `value` as JSON with refs renamed and keys sorted, for comparison. */
function canonical(value: Json, rename: ReadonlyMap<string, string>): string {
  const walk = (v: Json): Json => {
    if (Array.isArray(v)) return v.map(walk)
    if (!isObject(v)) return v
    const out: JsonObject = {}
    for (const key of Object.keys(v).sort()) {
      const inner = v[key] ?? null
      if (key === 'additionalProperties' && inner === false) continue
      out[key] = key === '$ref' && typeof inner === 'string' ? (rename.get(inner) ?? inner) : walk(inner)
    }
    return out
  }
  return JSON.stringify(walk(value))
}

/** Renames every `$ref` in place. */
function rewriteRefs(value: Json, rename: ReadonlyMap<string, string>): void {
  if (rename.size === 0) return
  if (Array.isArray(value)) {
    for (const v of value) rewriteRefs(v, rename)
    return
  }
  if (!isObject(value)) return
  for (const [key, inner] of Object.entries(value)) {
    if (key === '$ref' && typeof inner === 'string') value[key] = rename.get(inner) ?? inner
    else rewriteRefs(inner, rename)
  }
}

/** Names of the schemas reachable from the paths, through refs, transitively. */
function reachable(doc: JsonObject, schemas: JsonObject): Set<string> {
  const seen = new Set<string>()
  const stack: Json[] = [doc['paths'] ?? null]
  while (stack.length > 0) {
    const v = stack.pop() ?? null
    if (Array.isArray(v)) stack.push(...v)
    if (!isObject(v)) continue
    for (const [key, inner] of Object.entries(v)) {
      if (key === '$ref' && typeof inner === 'string' && inner.startsWith(SCHEMA_REF)) {
        const name = inner.slice(SCHEMA_REF.length)
        if (!seen.has(name) && name in schemas) {
          seen.add(name)
          stack.push(schemas[name] ?? null)
        }
      } else {
        stack.push(inner)
      }
    }
  }
  return seen
}

// ---- operations ----------------------------------------------------------------------------------

function decorateOperations(doc: JsonObject): void {
  const paths = doc['paths']
  if (!isObject(paths)) return
  for (const [path, item] of Object.entries(paths)) {
    if (!isObject(item)) continue
    for (const [method, op] of Object.entries(item)) {
      if (!METHODS.has(method) || !isObject(op)) continue
      const entry = OPERATIONS[operationKey(method, path)]
      if (entry !== undefined) op['operationId'] = entry.operationId
      if (op['security'] === undefined) op['security'] = []
      const media = jsonMedia(op)
      if (entry?.examples !== undefined && media !== null) {
        const examples: JsonObject = {}
        for (const [name, ex] of Object.entries(entry.examples)) examples[name] = { summary: ex.summary, value: toJson(ex.value) }
        media['examples'] = examples
      }
    }
  }
}

/** The operation's `requestBody.content['application/json']`, or null. */
function jsonMedia(op: JsonObject): JsonObject | null {
  const body = op['requestBody']
  const content = isObject(body) ? body['content'] : null
  const media = isObject(content) ? content['application/json'] : null
  return isObject(media) ? media : null
}

function toJson(value: unknown): Json {
  const parsed: unknown = JSON.parse(JSON.stringify(value ?? null))
  return isJson(parsed) ? parsed : null
}

function isJson(value: unknown): value is Json {
  return value === null || ['boolean', 'number', 'string', 'object'].includes(typeof value)
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function sortedObject(o: JsonObject): JsonObject {
  const out: JsonObject = {}
  for (const key of Object.keys(o).sort()) out[key] = o[key] ?? null
  return out
}
