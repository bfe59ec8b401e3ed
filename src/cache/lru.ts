/** Options for {@link LruCache}. */
export interface LruOptions<K, V> {
  /** Most entries kept (at least 1). */
  readonly maxEntries: number;
  /** Most total weight kept; the newest entry is always kept even if heavier (default: unbounded). */
  readonly maxWeight?: number;
  /** An entry's weight (default 1). Read when the entry is set. */
  readonly weigh?: (value: V, key: K) => number;
  /** Called once for every entry that leaves the cache (evicted, deleted, replaced or cleared). */
  readonly onEvict?: (value: V, key: K) => void;
}

/**
 * A least-recently-used map bounded by count and by total weight. `get`
 * refreshes an entry; `peek` does not. Built on Map's insertion order, so
 * every operation is O(1) apart from evictions.
 */
export class LruCache<K, V> {
  readonly #map = new Map<K, { value: V; weight: number }>();
  readonly #maxEntries: number;
  readonly #maxWeight: number;
  readonly #weigh: (value: V, key: K) => number;
  readonly #onEvict: ((value: V, key: K) => void) | undefined;
  #weight = 0;

  constructor(options: LruOptions<K, V>) {
    if (!(options.maxEntries >= 1)) throw new TypeError('LruCache: maxEntries must be at least 1');
    this.#maxEntries = options.maxEntries;
    this.#maxWeight = options.maxWeight ?? Infinity;
    this.#weigh = options.weigh ?? (() => 1);
    this.#onEvict = options.onEvict;
  }

  get size(): number {
    return this.#map.size;
  }

  /** The sum of the weights of the entries kept. */
  get weight(): number {
    return this.#weight;
  }

  get(key: K): V | undefined {
    const slot = this.#map.get(key);
    if (!slot) return undefined;
    this.#map.delete(key);
    this.#map.set(key, slot);
    return slot.value;
  }

  peek(key: K): V | undefined {
    return this.#map.get(key)?.value;
  }

  has(key: K): boolean {
    return this.#map.has(key);
  }

  /** Adds or replaces (then re-weighs) an entry and makes it the most recent; evicts the oldest as needed. */
  set(key: K, value: V): this {
    const old = this.#map.get(key);
    if (old) {
      this.#map.delete(key);
      this.#weight -= old.weight;
      if (old.value !== value) this.#onEvict?.(old.value, key);
    }
    const weight = Math.max(0, this.#weigh(value, key));
    this.#map.set(key, { value, weight });
    this.#weight += weight;
    this.#trim();
    return this;
  }

  delete(key: K): boolean {
    const slot = this.#map.get(key);
    if (!slot) return false;
    this.#map.delete(key);
    this.#weight -= slot.weight;
    this.#onEvict?.(slot.value, key);
    return true;
  }

  clear(): void {
    for (const key of [...this.#map.keys()]) this.delete(key);
  }

  keys(): IterableIterator<K> {
    return this.#map.keys();
  }

  #trim(): void {
    while (this.#map.size > this.#maxEntries || (this.#weight > this.#maxWeight && this.#map.size > 1)) {
      const oldest = this.#map.keys().next();
      if (oldest.done) return;
      this.delete(oldest.value);
    }
  }
}
