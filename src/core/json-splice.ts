/**
 * JSON text put together from pieces, for values written whole again and again whose bulk was
 * converted once (a shard's state: its trace's batches are kept as JSON bytes). The pieces are an
 * object's small fields, stringified each time, then one last field whose value's text the caller
 * already has.
 */

/**
 * The text of `fields` as an object, left open for one more field `name`: `{"a":1,"name":`. The
 * caller follows it with the field's value text and `}`.
 */
export function jsonFieldsThen(fields: object, name: string): string {
  const text = JSON.stringify(fields)
  return `${text === '{}' ? '{' : `${text.slice(0, -1)},`}${JSON.stringify(name)}:`
}
