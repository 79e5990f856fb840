/**
 * Schema evolution rules (docs/concepts.md#schemas-and-evolution): a shard's next schema may add nullable fields to a struct
 * (at any depth, at any position) and make non-null fields nullable. Nothing else: no removed
 * field, no changed type, no nullable→non-null, no new non-null field, no reordered fields.
 *
 * NB: keeping the existing fields' relative order is what keeps migrated runs sorted. Both sort
 * encodings are prefix-free per field, so inserting a constant (a null field) or a constant marker
 * (a field made nullable) between fields preserves the order of every pair of old rows; a
 * reordering would not.
 */
import { formatDataType, type DataType } from './data-type.js'

const subject = (path: string): string => `field ${path}`
const join = (path: string, name: string): string => (path === '' ? name : `${path}.${name}`)

/**
 * Whether `next` may replace `old`: null if allowed, else one sentence naming the first offending
 * field. `root` prefixes field paths (`val` gives `field val.price was removed`).
 */
export function checkEvolution(old: DataType, next: DataType, root = ''): string | null {
  if (old.type !== next.type) {
    return `${root === '' ? 'the schema' : `the ${root} schema`} changed type from ${formatDataType(old)} to ${formatDataType(next)}`
  }
  return check(old, next, root)
}

function check(old: DataType, next: DataType, path: string): string | null {
  if (old.type !== next.type || old.type !== 'struct' || next.type !== 'struct') {
    if (old.type === next.type) return null
    return `${subject(path)} changed type from ${formatDataType(old)} to ${formatDataType(next)}`
  }
  const position = new Map<string, number>()
  next.fields.forEach((f, i) => position.set(f.name, i))
  let lastPosition = -1
  for (const f of old.fields) {
    const p = join(path, f.name)
    const at = position.get(f.name)
    if (at === undefined) return `${subject(p)} was removed`
    const g = next.fields[at]!
    if (f.nullable && !g.nullable) return `${subject(p)} changed from nullable to non-null`
    const inner = check(f.type, g.type, p)
    if (inner !== null) return inner
    if (at < lastPosition) return `${subject(p)} moved; existing fields must keep their order`
    lastPosition = at
  }
  const known = new Set(old.fields.map((f) => f.name))
  for (const g of next.fields) {
    if (!known.has(g.name) && !g.nullable) return `${subject(join(path, g.name))} was added as non-null; new fields must be nullable`
  }
  return null
}

/**
 * Whether every value of `from` migrates losslessly (and order-preservingly) to `to`: no field of
 * `from` is missing from `to`, nothing non-null in `to` is absent or nullable in `from`. The same
 * relation as an allowed evolution, so it is reflexive and transitive.
 */
export function canRepresent(from: DataType, to: DataType): boolean {
  return checkEvolution(from, to) === null
}
