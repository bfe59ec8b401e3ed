import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LruCache } from '../../src/index.js';

describe('LruCache', () => {
  it('evicts the least recently used entry, counting get() as use and peek() not', () => {
    const evicted: string[] = [];
    const lru = new LruCache<string, number>({ maxEntries: 2, onEvict: (_v, k) => evicted.push(k) });
    lru.set('a', 1).set('b', 2);
    assert.equal(lru.get('a'), 1);
    lru.set('c', 3);
    assert.deepEqual(evicted, ['b']);
    assert.equal(lru.peek('a'), 1);
    lru.set('d', 4);
    assert.deepEqual(evicted, ['b', 'a']);
    assert.deepEqual([...lru.keys()], ['c', 'd']);
  });

  it('bounds total weight but always keeps the newest entry', () => {
    const lru = new LruCache<string, number>({ maxEntries: 10, maxWeight: 10, weigh: (v) => v });
    lru.set('a', 4).set('b', 4).set('c', 4);
    assert.deepEqual([...lru.keys()], ['b', 'c']);
    assert.equal(lru.weight, 8);
    lru.set('huge', 50);
    assert.deepEqual([...lru.keys()], ['huge']);
  });

  it('re-weighs an entry set again with the same value, without evicting it', () => {
    const evicted: number[] = [];
    const box = { w: 1 };
    const lru = new LruCache<string, { w: number }>({ maxEntries: 5, maxWeight: 100, weigh: (v) => v.w, onEvict: (v) => evicted.push(v.w) });
    lru.set('k', box);
    box.w = 30;
    lru.set('k', box);
    assert.equal(lru.weight, 30);
    assert.deepEqual(evicted, []);
  });

  it('reports every departure once: replace, delete, clear', () => {
    const gone: number[] = [];
    const lru = new LruCache<string, number>({ maxEntries: 5, onEvict: (v) => gone.push(v) });
    lru.set('a', 1).set('a', 2).set('b', 3);
    assert.equal(lru.delete('b'), true);
    assert.equal(lru.delete('b'), false);
    lru.clear();
    assert.deepEqual(gone, [1, 3, 2]);
    assert.equal(lru.size, 0);
    assert.equal(lru.weight, 0);
  });

  it('refuses a nonsense bound', () => {
    assert.throws(() => new LruCache({ maxEntries: 0 }), TypeError);
  });
});
