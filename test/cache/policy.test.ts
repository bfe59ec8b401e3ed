import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cacheControl, type CachePolicyOptions } from '../../src/cache/http.js';

describe('cacheControl', () => {
  // The lws rows (notes §3.6, c1-c7), then what vfserve adds.
  const table: [string, CachePolicyOptions, string][] = [
    ['c1: max-age and reuse', { maxAge: 60, reuse: true }, 'private, max-age=60'],
    ['c2: plus revalidate', { maxAge: 60, reuse: true, revalidate: true }, 'must-revalidate, private, max-age=60'],
    ['c3: plus intermediaries', { maxAge: 60, reuse: true, revalidate: true, intermediaries: true }, 'must-revalidate, public, max-age=60'],
    ['c3b: intermediaries, no revalidate', { maxAge: 60, reuse: true, intermediaries: true }, 'public, max-age=60'],
    ['c4: no', { no: true }, 'no-cache'],
    ['c5: no options', {}, 'no-store'],
    ['c6: max-age without reuse', { maxAge: 60 }, 'no-store'],
    ['reuse without max-age', { reuse: true }, 'no-store'],
    ['reuse with max-age 0', { maxAge: 0, reuse: true }, 'no-store'],
    ['intermediaries alone', { intermediaries: true }, 'no-store'],
    ['c7: no beats max-age and reuse', { no: true, maxAge: 60, reuse: true }, 'no-cache'],
    ['no beats everything, immutable too', { no: true, maxAge: 60, reuse: true, revalidate: true, intermediaries: true, immutable: true }, 'no-cache'],
    ['immutable', { maxAge: 31536000, reuse: true, intermediaries: true, immutable: true }, 'public, max-age=31536000, immutable'],
    ['immutable without caching', { immutable: true }, 'no-store'],
    ['explicit false flags', { maxAge: 5, reuse: true, revalidate: false, intermediaries: false, no: false, immutable: false }, 'private, max-age=5'],
    ['max-age capped at 2^31 (RFC 9111 §1.2.2)', { maxAge: 2 ** 40, reuse: true }, 'private, max-age=2147483648'],
  ];
  for (const [name, options, expected] of table) {
    it(name, () => assert.equal(cacheControl(options), expected));
  }

  it('refuses a negative, fractional or non-finite max-age, even when no would win', () => {
    for (const maxAge of [-1, 1.5, NaN, Infinity]) {
      assert.throws(() => cacheControl({ maxAge, reuse: true }), TypeError, String(maxAge));
      assert.throws(() => cacheControl({ maxAge, no: true }), TypeError, String(maxAge));
    }
  });
});
