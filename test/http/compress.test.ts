/**
 * Compression on the fly (mount `compress`), black-box over real sockets on
 * 127.0.0.1: negotiation, the size window and types, ready-made forms winning,
 * validators, Range, HEAD, and freshness when files change.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import zlib, { brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib';
import { createHandler, HAS_ZSTD, PlatFops, Vfs, mountFromConfig, type FileOps, type FopFd } from '../../src/index.js';
import { noise, prose, rmTree, tmpDir, writeTree } from '../helpers/fixtures.js';
import { get, listen, type RawResponse } from '../helpers/http.js';
import { makeZip } from '../helpers/zip-writer.js';

const dir = tmpDir('vfserve-compress-');
const www = join(dir, 'www');
const appJs = prose(100 * 1024);
const sibJs = prose(30_000);
const sibGz = gzipSync(sibJs, { level: 1 }); // level 1: bytes no on-the-fly gzip (level 6) would make
const big = prose(300_000);
const zipHtml = prose(20_000);
const zipStored = prose(12_000);
const files: Record<string, Buffer> = {
  'app.js': appJs,
  'sib.js': sibJs,
  'sib.js.gz': sibGz,
  'data.json': Buffer.from(JSON.stringify({ items: Array.from({ length: 300 }, (_, i) => ({ i, name: `item ${i}` })) })),
  'image.svg': Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg">${'<rect width="1" height="1"/>'.repeat(100)}</svg>`),
  'at-1023.html': prose(1023),
  'at-1024.html': prose(1024),
  'photo.png': noise(5000, 1),
  'noise.txt': noise(5000, 2), // compressible type, incompressible bytes: coded would be larger
  'big.js': big,
  'change.js': prose(5000),
  'site.zip': makeZip({
    entries: [
      { name: 'deflated.html', data: zipHtml },
      { name: 'stored.txt', data: zipStored, method: 0 },
    ],
  }),
};

/** The bytes a response carries once its Content-Encoding is undone. */
function decoded(r: RawResponse): Buffer {
  switch (r.headers['content-encoding']) {
    case undefined:
      return r.body;
    case 'br':
      return brotliDecompressSync(r.body);
    case 'gzip':
      return gunzipSync(r.body);
    case 'zstd': {
      const z = (zlib as unknown as { zstdDecompressSync?: (b: Buffer) => Buffer }).zstdDecompressSync;
      assert.ok(z, 'zstd sent by a Node that cannot decode it');
      return z(r.body);
    }
    default:
      throw new Error(`unexpected content-encoding ${r.headers['content-encoding']}`);
  }
}

const servers: (() => Promise<void>)[] = [];
let port = 0; // compress on, default caches
let portCold = 0; // compress on, no caches at all, maxSize 200,000
let portOff = 0; // the same files, compress not set
let portFresh = 0; // compress on, resolveCacheMs 0: every request opens its file
let portFault = 0; // compress on over a backend whose reads can be torn
const fault = { corrupt: false, changedLeft: 0 };
const errors: unknown[] = [];

/** A Vfs whose handles on big.js can report a change (`changedLeft` times) and, while `corrupt`, read flipped bytes. */
function faultyVfs(): FileOps {
  const vfs = new Vfs({ base: new PlatFops() });
  const wrapFd = (fd: FopFd, path: string): FopFd =>
    new Proxy(fd, {
      get(target, prop) {
        if (path.endsWith('/big.js') && prop === 'changed') {
          return async () => {
            if (fault.changedLeft > 0) {
              fault.changedLeft--;
              return true;
            }
            return fault.corrupt || (target.changed ? await target.changed() : false);
          };
        }
        if (path.endsWith('/big.js') && prop === 'read') {
          return async (buf: Uint8Array) => {
            const n = await target.read(buf);
            if (fault.corrupt && n > 0) buf[0] = buf[0]! ^ 0xff;
            return n;
          };
        }
        if (path.endsWith('/big.js') && prop === 'readBuffer') return undefined; // every read goes through read()
        const v: unknown = Reflect.get(target, prop, target);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  return new Proxy(vfs, {
    get(target, prop) {
      if (prop === 'open') return async (path: string, flags?: number) => wrapFd(await target.open(path, flags), path);
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

before(async () => {
  writeTree(www, files);
  const origin = `file://${www}`;
  const mounts = [
    { mountpoint: '/', origin, compress: true },
    { mountpoint: '/site', origin: `file://${join(www, 'site.zip')}`, compress: true },
  ];
  const onError = (err: unknown): void => void errors.push(err);
  for (const [options, set] of [
    [{ mounts }, (p: number) => (port = p)],
    [{ mounts, resolveCacheMs: 0, smallFileCache: { maxBytes: 0 }, compression: { cacheBytes: 0, maxSize: 200_000 } }, (p: number) => (portCold = p)],
    [{ mounts: mounts.map(({ compress: _, ...m }) => m) }, (p: number) => (portOff = p)],
    [{ mounts, resolveCacheMs: 0 }, (p: number) => (portFresh = p)],
    [{ mounts, resolveCacheMs: 0, vfs: faultyVfs(), onError }, (p: number) => (portFault = p)],
  ] as const) {
    const s = await listen(createHandler(options));
    set(s.port);
    servers.push(s.close);
  }
});

after(async () => {
  for (const close of servers) await close();
  rmTree(dir);
});

describe('compression on the fly', () => {
  it('sends br and gzip (and zstd where this Node has it), each decoding to the file, with Vary and the coded length', async () => {
    const codings = HAS_ZSTD ? ['br', 'zstd', 'gzip'] : ['br', 'gzip'];
    for (const coding of codings) {
      const r = await get(port, '/app.js', { 'accept-encoding': coding });
      assert.equal(r.status, 200, coding);
      assert.equal(r.headers['content-encoding'], coding);
      assert.equal(r.headers.vary, 'Accept-Encoding');
      assert.equal(r.headers['content-type'], 'text/javascript; charset=utf-8');
      assert.equal(r.headers['content-length'], String(r.body.length));
      assert.ok(r.body.length < appJs.length / 3, `${coding}: ${r.body.length} bytes`);
      assert.deepEqual(decoded(r), appJs, coding);
    }
    // Without zstd in zlib it is never offered: a client taking only zstd gets identity.
    const z = await get(port, '/app.js', { 'accept-encoding': 'zstd' });
    assert.equal(z.headers['content-encoding'], HAS_ZSTD ? 'zstd' : undefined);
    assert.deepEqual(decoded(z), appJs);
  });

  it('negotiates by q-value, ties going br, zstd, gzip; identity when nothing acceptable is offered', async () => {
    const table: [string | undefined, string | undefined][] = [
      [undefined, undefined], // no Accept-Encoding: identity (RFC 9110 §12.5.3)
      ['', undefined],
      ['identity', undefined],
      ['gzip, br', 'br'],
      ['gzip, deflate, br, zstd', 'br'],
      ['gzip, zstd', HAS_ZSTD ? 'zstd' : 'gzip'],
      ['*', 'br'],
      ['br;q=0.5, gzip', 'gzip'],
      ['gzip;q=1.0, br;q=0.999', 'gzip'],
      ['br;q=0, *;q=0.1', HAS_ZSTD ? 'zstd' : 'gzip'],
      ['x-gzip', 'gzip'],
      ['GZIP', 'gzip'],
      ['br;q=0, gzip;q=0', undefined],
      ['deflate', undefined],
      ['identity;q=1, gzip;q=0.5', undefined],
    ];
    for (const [ae, want] of table) {
      const r = await get(port, '/app.js', ae === undefined ? {} : { 'accept-encoding': ae });
      assert.equal(r.status, 200, String(ae));
      assert.equal(r.headers['content-encoding'], want, `Accept-Encoding: ${String(ae)}`);
      assert.equal(r.headers.vary, 'Accept-Encoding', String(ae));
      assert.deepEqual(decoded(r), appJs, String(ae));
    }
  });

  it('compresses from 1024 bytes up, and never above maxSize', async () => {
    const under = await get(port, '/at-1023.html', { 'accept-encoding': 'br, gzip' });
    assert.equal(under.headers['content-encoding'], undefined);
    assert.equal(under.headers.vary, 'Accept-Encoding', 'the resource still varies: an edit can take it over the threshold');
    assert.deepEqual(under.body, files['at-1023.html']);
    const at = await get(port, '/at-1024.html', { 'accept-encoding': 'br, gzip' });
    assert.equal(at.headers['content-encoding'], 'br');
    assert.deepEqual(decoded(at), files['at-1024.html']);
    // maxSize 200,000 on portCold: big.js (300,000) goes identity there, br on the default server.
    const over = await get(portCold, '/big.js', { 'accept-encoding': 'br' });
    assert.equal(over.headers['content-encoding'], undefined);
    assert.equal(over.headers['content-length'], String(big.length));
    assert.deepEqual(over.body, big);
    const within = await get(port, '/big.js', { 'accept-encoding': 'br' });
    assert.equal(within.headers['content-encoding'], 'br');
    assert.deepEqual(decoded(within), big);
  });

  it('compresses JSON and SVG; leaves images alone; sends identity when coding would not make it smaller', async () => {
    for (const path of ['/data.json', '/image.svg']) {
      const r = await get(port, path, { 'accept-encoding': 'gzip' });
      assert.equal(r.headers['content-encoding'], 'gzip', path);
      assert.deepEqual(decoded(r), files[path.slice(1)]);
    }
    const png = await get(port, '/photo.png', { 'accept-encoding': 'br, gzip' });
    assert.equal(png.headers['content-encoding'], undefined);
    assert.equal(png.headers.vary, undefined, 'one coding only: no Vary');
    assert.deepEqual(png.body, files['photo.png']);
    const noisy = await get(port, '/noise.txt', { 'accept-encoding': 'br' });
    assert.equal(noisy.headers['content-encoding'], undefined);
    assert.deepEqual(noisy.body, files['noise.txt']);
  });

  it('is off unless the mount says compress', async () => {
    const r = await get(portOff, '/app.js', { 'accept-encoding': 'br, gzip' });
    assert.equal(r.headers['content-encoding'], undefined);
    assert.equal(r.headers.vary, undefined);
    assert.deepEqual(r.body, appJs);
  });

  it('serves a precompressed sibling for its coding, and makes only the codings it lacks', async () => {
    const gz = await get(port, '/sib.js', { 'accept-encoding': 'gzip' });
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.deepEqual(gz.body, sibGz, 'the sibling, byte for byte');
    const br = await get(port, '/sib.js', { 'accept-encoding': 'gzip, br' });
    assert.equal(br.headers['content-encoding'], 'br', 'no .br sibling: made on the fly');
    assert.deepEqual(decoded(br), sibJs);
  });

  it('passes a deflated zip entry through as gzip, and compresses a stored entry', async () => {
    const pass = await get(port, '/site/deflated.html', { 'accept-encoding': 'gzip' });
    const ref = await get(portOff, '/site/deflated.html', { 'accept-encoding': 'gzip' });
    assert.equal(pass.headers['content-encoding'], 'gzip');
    assert.equal(pass.headers.etag, ref.headers.etag, 'the passthrough representation, not a recompression');
    assert.deepEqual(pass.body, ref.body);
    assert.deepEqual(decoded(pass), zipHtml);
    // br is not what the archive holds: it is made on the fly from the inflated entry.
    const br = await get(port, '/site/deflated.html', { 'accept-encoding': 'br, gzip' });
    assert.equal(br.headers['content-encoding'], 'br');
    assert.deepEqual(decoded(br), zipHtml);
    for (const coding of ['gzip', 'br']) {
      const stored = await get(port, '/site/stored.txt', { 'accept-encoding': coding });
      assert.equal(stored.headers['content-encoding'], coding);
      assert.ok(stored.body.length < zipStored.length / 3);
      assert.deepEqual(decoded(stored), zipStored);
    }
  });

  it('gives each coding its own strong ETag, stable across requests and across caches', async () => {
    const tags = new Map<string, string>();
    for (const coding of ['identity', 'br', 'gzip']) {
      const a = await get(port, '/app.js', { 'accept-encoding': coding });
      const b = await get(port, '/app.js', { 'accept-encoding': coding });
      const cold = await get(portCold, '/app.js', { 'accept-encoding': coding });
      const etag = a.headers.etag ?? '';
      assert.match(etag, /^"[^"]+"$/, 'strong');
      assert.equal(b.headers.etag, etag, `${coding}: stable`);
      assert.deepEqual(b.body, a.body, `${coding}: the same bytes from the cache`);
      assert.equal(cold.headers.etag, etag, `${coding}: the same tag with no cache`);
      assert.deepEqual(cold.body, a.body, `${coding}: the same bytes with no cache`);
      tags.set(coding, etag);
    }
    assert.equal(new Set(tags.values()).size, 3, [...tags.values()].join(' '));
  });

  it('answers If-None-Match on the coded ETag with 304, and not on another coding`s', async () => {
    const br = await get(port, '/app.js', { 'accept-encoding': 'br' });
    const hit = await get(port, '/app.js', { 'accept-encoding': 'br', 'if-none-match': br.headers.etag! });
    assert.equal(hit.status, 304);
    assert.equal(hit.headers.etag, br.headers.etag);
    assert.equal(hit.headers.vary, 'Accept-Encoding');
    assert.equal(hit.body.length, 0);
    const other = await get(port, '/app.js', { 'accept-encoding': 'gzip', 'if-none-match': br.headers.etag! });
    assert.equal(other.status, 200);
    assert.equal(other.headers['content-encoding'], 'gzip');
  });

  it('applies Range to the coded bytes, honours If-Range only with the coded ETag', async () => {
    for (const p of [port, portCold]) {
      const whole = await get(p, '/app.js', { 'accept-encoding': 'br' });
      const r = await get(p, '/app.js', { 'accept-encoding': 'br', range: 'bytes=10-99' });
      assert.equal(r.status, 206);
      assert.equal(r.headers['content-encoding'], 'br');
      assert.equal(r.headers['content-range'], `bytes 10-99/${whole.body.length}`);
      assert.deepEqual(r.body, whole.body.subarray(10, 100));
      const ifRange = await get(p, '/app.js', { 'accept-encoding': 'br', range: 'bytes=-5', 'if-range': whole.headers.etag! });
      assert.equal(ifRange.status, 206);
      assert.deepEqual(ifRange.body, whole.body.subarray(-5));
      const identityTag = (await get(p, '/app.js')).headers.etag!;
      const stale = await get(p, '/app.js', { 'accept-encoding': 'br', range: 'bytes=0-9', 'if-range': identityTag });
      assert.equal(stale.status, 200, 'If-Range with another representation`s tag: the whole coded body');
      assert.deepEqual(stale.body, whole.body);
      const past = await get(p, '/app.js', { 'accept-encoding': 'br', range: `bytes=${whole.body.length}-` });
      assert.equal(past.status, 416);
      assert.equal(past.headers['content-range'], `bytes */${whole.body.length}`);
    }
  });

  it('answers HEAD with the GET headers and no body', async () => {
    for (const p of [port, portCold]) {
      const g = await get(p, '/app.js', { 'accept-encoding': 'gzip' });
      const h = await get(p, '/app.js', { 'accept-encoding': 'gzip' }, 'HEAD');
      assert.equal(h.status, 200);
      assert.equal(h.body.length, 0);
      for (const name of ['content-encoding', 'content-length', 'etag', 'vary', 'content-type']) assert.equal(h.headers[name], g.headers[name], name);
    }
  });

  it('serves new bytes and a new ETag once the file changed (the cache is keyed by the snapshot)', async () => {
    const path = join(www, 'change.js');
    const before = await get(portFresh, '/change.js', { 'accept-encoding': 'br' });
    assert.deepEqual(decoded(before), files['change.js']);
    const next = Buffer.concat([prose(5000).subarray(0, 4000), Buffer.from('// version two\n'.repeat(60))]);
    writeFileSync(path, next);
    const after = await get(portFresh, '/change.js', { 'accept-encoding': 'br' });
    assert.equal(after.headers['content-encoding'], 'br');
    assert.notEqual(after.headers.etag, before.headers.etag);
    assert.deepEqual(decoded(after), next);
    const old = await get(portFresh, '/change.js', { 'accept-encoding': 'br', 'if-none-match': before.headers.etag! });
    assert.equal(old.status, 200, 'the old coded tag names a version that is gone');
  });

  it('reads a file that changed while it was compressed again, and never caches or sends a torn read', async () => {
    fault.changedLeft = 1; // one change noticed: read again, then a good response
    const retried = await get(portFault, '/big.js', { 'accept-encoding': 'br' });
    assert.equal(retried.status, 200);
    assert.deepEqual(decoded(retried), big);
    const tag = retried.headers.etag;

    fault.corrupt = true; // torn reads, and the handle says so every time
    const cut = await get(portFault, '/big.js', { 'accept-encoding': 'gzip' });
    assert.equal(cut.status, 500, 'the file kept changing: no response with its bytes');
    assert.equal(cut.headers['content-encoding'], undefined);
    fault.corrupt = false;
    const good = await get(portFault, '/big.js', { 'accept-encoding': 'gzip' });
    assert.equal(good.status, 200);
    assert.deepEqual(decoded(good), big, 'nothing from the torn reads was cached');
    assert.equal((await get(portFault, '/big.js', { 'accept-encoding': 'br' })).headers.etag, tag);
    assert.ok(errors.length >= 1, 'the 500 was reported');
  });

  it('reads `compress` from an lwsws-style mount object', async () => {
    assert.equal(mountFromConfig({ mountpoint: '/', origin: `file://${www}`, compress: '1' }).compress, '1' as unknown as boolean);
    for (const [value, coding] of [
      ['1', 'br'],
      [true, 'br'],
      ['0', undefined],
      [false, undefined],
    ] as const) {
      const s = await listen(createHandler({ mounts: [mountFromConfig({ mountpoint: '/', origin: `file://${www}`, compress: value })] }));
      try {
        assert.equal((await get(s.port, '/app.js', { 'accept-encoding': 'br' })).headers['content-encoding'], coding, String(value));
      } finally {
        await s.close();
      }
    }
    // The config's one boolean vocabulary (true/false, 1/0, on/off, yes/no); anything else is an error.
    assert.throws(
      () => createHandler({ mounts: [mountFromConfig({ mountpoint: '/', origin: `file://${www}`, compress: 'maybe' })] }),
      /compress must be a boolean/,
    );
  });
});
