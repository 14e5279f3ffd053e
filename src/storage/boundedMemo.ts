/**
 * Sets `key` in an isolate-memory memo of at most `max` entries. When it is full the oldest entry
 * goes (a Map keeps insertion order), not everything: a burst of new keys, a stranger's random ones
 * included, cannot flush the entries real traffic relies on.
 */
export function setBounded<K, V>(memo: Map<K, V>, key: K, value: V, max: number): void {
  memo.delete(key);
  if (memo.size >= max) memo.delete(memo.keys().next().value as K);
  memo.set(key, value);
}
