/** The compression core, table-driven: types, the size window, ETags, levels and the coded bytes. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { CODINGS, Compressor, HAS_ZSTD, compress, isCompressibleType } from '../../src/mounts/compress.js';
import { noise, prose } from '../helpers/fixtures.js';

describe('isCompressibleType', () => {
  const table: [string | undefined, boolean][] = [
    ['text/html; charset=utf-8', true],
    ['text/css; charset=utf-8', true],
    ['text/javascript; charset=utf-8', true],
    ['application/javascript', true],
    ['application/json', true],
    ['application/manifest+json', true],
    ['image/svg+xml', true],
    ['application/xml', true],
    ['application/wasm', true],
    ['text/x-unknown-but-text', true], // text/* by the fallback rule
    ['application/vnd.example+json', true],
    ['image/png', false],
    ['image/jpeg', false],
    ['font/woff2', false], // already compressed
    ['application/pdf', false],
    ['application/zip', false],
    ['application/octet-stream', false],
    ['Application/Octet-Stream; x=1', false],
    [undefined, false],
    ['', false],
  ];
  for (const [type, want] of table) it(`${String(type)} → ${want}`, () => assert.equal(isCompressibleType(type), want));
});

describe('Compressor', () => {
  it('compresses from minSize to maxSize inclusive', () => {
    const c = new Compressor({ minSize: 1024, maxSize: 4096 });
    for (const [n, want] of [
      [0, false],
      [1023, false],
      [1024, true],
      [4096, true],
      [4097, false],
    ] as const)
      assert.equal(c.sizeAllowed(n), want, String(n));
    assert.throws(() => new Compressor({ minSize: 10, maxSize: 5 }), TypeError);
    assert.throws(() => new Compressor({ cacheBytes: -1 }), TypeError);
  });

  it('prefers br, then zstd where available, then gzip', () => {
    assert.deepEqual(CODINGS, HAS_ZSTD ? ['br', 'zstd', 'gzip'] : ['br', 'gzip']);
  });

  it('gives one strong tag per identity and coding, never another`s', () => {
    const c = new Compressor();
    const tags = new Set<string>();
    for (const id of ['\0dev:1/ino:2/size:5/m:1', '\0dev:1/ino:3/size:5/m:1'])
      for (const coding of CODINGS) {
        const t = c.etag(id, 5, coding);
        assert.equal(c.etag(id, 5, coding), t, 'stable');
        assert.match(t, new RegExp(`^"5-[0-9a-f]{24}-${coding}"$`));
        tags.add(t);
      }
    assert.equal(tags.size, 2 * CODINGS.length);
  });

  it('codes every coding so that it decodes to the input, the same bytes every time, once for concurrent callers', async () => {
    const data = prose(50_000);
    for (const coding of CODINGS) {
      const a = await compress(coding, data);
      assert.deepEqual(await compress(coding, data), a, `${coding}: deterministic`);
      if (coding === 'br') assert.deepEqual(brotliDecompressSync(a), data);
      if (coding === 'gzip') assert.deepEqual(gunzipSync(a), data);
      assert.ok(a.length < data.length / 4);
    }
    const c = new Compressor();
    const [x, y] = await Promise.all([c.encode('id', 'gzip', data), c.encode('id', 'gzip', data)]);
    assert.equal(x, y, 'one compression, one buffer');
    assert.equal(c.cached('id', 'gzip'), x);
    assert.equal(c.cached('other', 'gzip'), undefined);
    const off = new Compressor({ cacheBytes: 0 });
    await off.encode('id', 'br', data);
    assert.equal(off.cached('id', 'br'), undefined, 'cacheBytes 0 keeps nothing');
  });

  it('keeps coded bytes up to cacheBytes, least recently used out first', async () => {
    const c = new Compressor({ cacheBytes: 3 * 1024 });
    const data = (seed: number): Buffer => Buffer.from(noise(3000, seed).toString('base64'));
    const out1 = await c.encode('a', 'gzip', data(1));
    assert.ok(out1.length > 1024, `${out1.length}`);
    await c.encode('b', 'gzip', data(2));
    await c.encode('c', 'gzip', data(3));
    assert.equal(c.cached('a', 'gzip'), undefined, 'evicted by weight');
    assert.ok(c.cached('c', 'gzip'));
  });
});
