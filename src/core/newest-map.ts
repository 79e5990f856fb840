/**
 * A Map used as a bounded cache of the most recently stored entries: its insertion order is their
 * age, so the first key is the one stored longest ago.
 */

/** Stores `value` as the newest entry of `key`, then forgets the oldest entries beyond `max`. */
export function setNewest<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key)
  map.set(key, value)
  for (const oldest of map.keys()) {
    if (map.size <= max) break
    map.delete(oldest)
  }
}
