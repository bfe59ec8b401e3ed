import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { describeFopsConformance } from '../../src/testing/conformance.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateRawSync, gunzipSync } from 'node:zlib';
import {
  DEFAULT_TAIL_BYTES,
  FAILED_OPEN_MS,
  FopError,
  FopFlags,
  HttpRangeFops,
  PlatFops,
  REMOTE_PREFIX,
  RemoteRouterFops,
  Vfs,
  ZipFops,
  readAll,
  remoteFopPath,
  type FopFd,
} from '../../src/index.js';
import { makeZip } from '../helpers/zip-writer.js';
import { noise, prose, rmTree, sampleTree, tmpDir, under } from '../helpers/fixtures.js';
import { startRangeOrigin, type RangeOrigin } from '../helpers/range-origin.js';

const tree = sampleTree();
const dirsOf = (prefix: string) => [`${prefix}/snow ☃`, `${prefix}/sub`, `${prefix}/sub/deeper`];
const text = (b: Uint8Array) => Buffer.from(b);

describeFopsConformance('HttpRangeFops (objects over HTTP Range, small blocks)', async () => {
  const origin = await startRangeOrigin(under('/bucket/site', tree));
  const fops = new HttpRangeFops({ baseUrl: `${origin.url}/bucket`, blockSize: 4096, tailBytes: 1000 });
  return {
    fops,
    files: under('/site', tree),
    virtual: true,
    teardown: async () => {
      await fops.close();
      await origin.close();
    },
  };
});

describeFopsConformance('ZipFops over HttpRangeFops (a remote archive read in place)', async () => {
  const origin = await startRangeOrigin({ '/site.zip': makeZip({ entries: Object.entries(tree).map(([name, data]) => ({ name, data })) }) });
  const remote = new HttpRangeFops({ baseUrl: origin.url, blockSize: 8192 });
  return {
    fops: new ZipFops({ source: remote }),
    files: under('/site.zip', tree),
    dirs: dirsOf('/site.zip'),
    virtual: true,
    teardown: async () => {
      await remote.close();
      await origin.close();
    },
  };
});

async function whole(fd: FopFd): Promise<Buffer> {
  try {
    return await readAll(fd);
  } finally {
    await fd.close();
  }
}

function isIo(pattern: RegExp) {
  return (err: unknown) => {
    assert.ok(FopError.is(err, 'IO'), `expected an IO FopError, got ${String(err)}`);
    assert.match(err.message, pattern);
    return true;
  };
}

describe('HttpRangeFops against a fault-injecting origin', () => {
  const big = noise(300_000, 3);
  let origin: RangeOrigin;
  const made: HttpRangeFops[] = [];
  const fops = (extra: Partial<ConstructorParameters<typeof HttpRangeFops>[0]> = {}) => {
    const f = new HttpRangeFops({ baseUrl: origin.url, blockSize: 16384, timeoutMs: 500, retries: 1, ...extra });
    made.push(f);
    return f;
  };
  before(async () => {
    origin = await startRangeOrigin({ '/big.bin': big, '/small.txt': Buffer.from('small object') });
  });
  after(async () => {
    for (const f of made) await f.close();
    await origin.close();
  });
  const reset = () => {
    origin.faults = {};
    origin.log.length = 0;
  };

  it('opens with one suffix-range request and serves the tail from it', async () => {
    reset();
    const f = fops();
    const fd = await f.open('/big.bin');
    assert.equal(fd.length, big.length);
    assert.equal(origin.log.length, 1);
    assert.equal(origin.log[0]!.range, `bytes=-${DEFAULT_TAIL_BYTES}`);
    const buf = Buffer.alloc(100);
    assert.equal(await fd.readAt!(buf, big.length - 100), 100);
    assert.ok(buf.equals(big.subarray(big.length - 100)));
    assert.equal(origin.log.length, 1, 'the tail costs no request');
    // A read before the tail: one block, then cached.
    assert.equal(await fd.readAt!(buf, 1000), 100);
    assert.ok(buf.equals(big.subarray(1000, 1100)));
    assert.equal(origin.log.length, 2);
    assert.equal(await fd.readAt!(buf, 2000), 100);
    assert.equal(origin.log.length, 2, 'same block: no request');
    assert.equal(await whole(fd).then((b) => b.equals(big)), true);
  });

  it('shares one fetch per block among concurrent readers', async () => {
    reset();
    const f = fops();
    const fd = await f.open('/big.bin');
    const bufs = Array.from({ length: 8 }, () => Buffer.alloc(10));
    await Promise.all(bufs.map((b, i) => fd.readAt!(b, 100 + i)));
    bufs.forEach((b, i) => assert.ok(b.equals(big.subarray(100 + i, 110 + i))));
    assert.equal(origin.log.length, 2, 'open plus one block');
    await fd.close();
  });

  it('keeps the block cache within its byte bound', async () => {
    reset();
    const f = fops({ cacheBytes: 40_000 });
    const fd = await whole(await f.open('/big.bin'));
    assert.ok(fd.equals(big));
    assert.ok(f.stats.cachedBytes <= 40_000, `cached ${f.stats.cachedBytes}`);
  });

  it('falls back to HEAD and explicit ranges when suffix ranges are refused (416)', async () => {
    reset();
    origin.faults = { refuseSuffix: true };
    const f = fops();
    const got = await whole(await f.open('/big.bin'));
    assert.ok(got.equals(big));
    assert.deepEqual(
      origin.log.slice(0, 3).map((r) => [r.method, r.range]),
      [
        ['GET', `bytes=-${DEFAULT_TAIL_BYTES}`],
        ['HEAD', undefined],
        ['GET', `bytes=${big.length - DEFAULT_TAIL_BYTES}-${big.length - 1}`],
      ],
    );
  });

  it('falls back when a suffix range is read as 0-N (s3rver), never taking those bytes as the tail', async () => {
    reset();
    origin.faults = { misparseSuffix: true };
    const got = await whole(await fops().open('/big.bin'));
    assert.ok(got.equals(big));
    assert.equal(origin.log[1]!.method, 'HEAD');
  });

  it('refuses an origin that ignores Range, without reading the whole body', async () => {
    reset();
    origin.faults = { ignoreRange: true };
    await assert.rejects(fops().open('/big.bin'), isIo(/ignores Range/));
  });

  it('fails reads of a replaced object (412 to If-Match), reports changed(), and reopens the new version', async () => {
    reset();
    const f = fops();
    const fd = await f.open('/big.bin');
    assert.equal(await fd.changed!(), false);
    const next = noise(300_000, 9);
    origin.objects.set('/big.bin', next);
    await assert.rejects(fd.readAt!(Buffer.alloc(10), 0), isIo(/replaced/));
    assert.equal(await fd.changed!(), true);
    await assert.rejects(fd.readAt!(Buffer.alloc(10), big.length - 10), isIo(/replaced/), 'even cached bytes of the old version are refused');
    await fd.close();
    const again = await whole(await f.open('/big.bin'));
    assert.ok(again.equals(next));
    origin.objects.set('/big.bin', big);
  });

  it('notices a replacement within revalidateMs even when reads come from the cache alone', async () => {
    reset();
    const f = fops({ revalidateMs: 100 });
    const fd = await f.open('/small.txt');
    const st1 = await f.stat('/small.txt');
    origin.objects.set('/small.txt', Buffer.from('SMALL OBJECT'));
    assert.equal((await f.stat('/small.txt')).version, st1.version, 'within revalidateMs: no request');
    const before = origin.log.length;
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(await fd.changed!(), true);
    assert.equal(origin.log.length, before + 1, 'one conditional request');
    const st2 = await f.stat('/small.txt');
    assert.notEqual(st2.version, st1.version);
    assert.equal((await whole(await f.open('/small.txt'))).toString(), 'SMALL OBJECT');
    await fd.close();
    origin.objects.set('/small.txt', Buffer.from('small object'));
  });

  it('counts the revalidation interval from when the version was asked for, not from when a slow body ended', async () => {
    reset();
    const f = fops({ revalidateMs: 200 });
    origin.faults = { slowBodyMs: 300 };
    const fd = await f.open('/small.txt');
    origin.faults = {};
    const before = origin.log.length;
    // The open took over 300 ms: its version is already due for revalidation.
    assert.equal(await fd.changed!(), false);
    assert.equal(origin.log.length, before + 1, 'one conditional request at once');
    await fd.close();
  });

  it('treats an ETag that flips on every request as a replacement: clean errors, never bytes', async () => {
    reset();
    const f = fops();
    origin.faults = { flipEtag: true };
    const fd = await f.open('/big.bin');
    await assert.rejects(fd.readAt!(Buffer.alloc(10), 0), isIo(/replaced/));
    await fd.close();
  });

  it('fails a block read answered with 200 (Range ignored) or with another range than asked', async () => {
    reset();
    const f = fops();
    const fd = await f.open('/big.bin');
    origin.faults = { ignoreRange: true };
    await assert.rejects(fd.readAt!(Buffer.alloc(10), 0), isIo(/ignores Range/));
    origin.faults = { shiftRange: true };
    await assert.rejects(fd.readAt!(Buffer.alloc(10), 0), isIo(/another range/));
    assert.equal(f.stats.bytesFetched, DEFAULT_TAIL_BYTES, 'no body of a refused answer was taken');
    origin.faults = {};
    const buf = Buffer.alloc(10);
    await fd.readAt!(buf, 0);
    assert.ok(buf.equals(big.subarray(0, 10)));
    await fd.close();
  });

  it('fails cleanly on 412 and 416 answers to block reads', async () => {
    for (const status of [412, 416]) {
      reset();
      const f = fops();
      const fd = await f.open('/big.bin');
      origin.faults = { forceStatus: status };
      await assert.rejects(fd.readAt!(Buffer.alloc(10), 0), isIo(status === 412 ? /replaced/ : /answered 416/));
      await fd.close();
    }
  });

  it('retries a truncated body, then fails cleanly', async () => {
    reset();
    const f = fops();
    const fd = await f.open('/big.bin');
    origin.faults = { truncate: true };
    await assert.rejects(fd.readAt!(Buffer.alloc(10), 0), (err: unknown) => FopError.is(err, 'IO'));
    assert.equal(origin.log.length, 3, 'open, then the block twice (one retry)');
    origin.faults = {};
    const buf = Buffer.alloc(10);
    await fd.readAt!(buf, 0);
    assert.ok(buf.equals(big.subarray(0, 10)), 'a failed block is not cached');
    await fd.close();
  });

  it('times out a stalled body and fails cleanly', async () => {
    reset();
    const f = fops({ timeoutMs: 200, retries: 0 });
    const fd = await f.open('/big.bin');
    origin.faults = { stall: true };
    const t0 = Date.now();
    await assert.rejects(fd.readAt!(Buffer.alloc(10), 0), (err: unknown) => FopError.is(err, 'IO'));
    assert.ok(Date.now() - t0 < 3000);
    await fd.close();
  });

  it('fails an open whose suffix-range body stalls, within the timeout and its retry', async () => {
    reset();
    origin.faults = { stall: true };
    const t0 = Date.now();
    await assert.rejects(fops({ timeoutMs: 200, retries: 1 }).open('/big.bin'), (err: unknown) => FopError.is(err, 'IO'));
    assert.ok(Date.now() - t0 < 3000);
    assert.equal(origin.log.length, 2, 'one retry');
  });

  it('reads a range sent chunked, and refuses one with more bytes than asked', async () => {
    reset();
    const f = fops();
    const fd = await f.open('/big.bin');
    origin.faults = { chunked: true };
    const buf = Buffer.alloc(10);
    await fd.readAt!(buf, 5);
    assert.ok(buf.equals(big.subarray(5, 15)));
    origin.faults = { chunked: 'extra' };
    await assert.rejects(fd.readAt!(buf, 20_000), isIo(/more than/));
    await fd.close();
  });

  it('keeps to the per-origin connection cap', async () => {
    reset();
    const f = fops({ maxConnections: 2, blockSize: 4096 });
    const fd = await f.open('/big.bin');
    // Twenty separate blocks (never adjacent, so never one request), all at once.
    const bufs = Array.from({ length: 20 }, () => Buffer.alloc(10));
    await Promise.all(bufs.map((b, i) => fd.readAt!(b, i * 8192)));
    bufs.forEach((b, i) => assert.ok(b.equals(big.subarray(i * 8192, i * 8192 + 10))));
    assert.equal(origin.log.length, 21, 'open plus one request per block');
    assert.ok(origin.maxActive <= 2, `at most 2 at once, saw ${origin.maxActive}`);
    await fd.close();
  });

  it('fetches a run of missing blocks with one request, and only the missing ones', async () => {
    reset();
    const f = fops({ blockSize: 4096 });
    const fd = await f.open('/big.bin');
    const a = Buffer.alloc(10 * 4096);
    assert.equal(await fd.readAt!(a, 4096), a.length);
    assert.ok(a.equals(big.subarray(4096, 4096 + a.length)));
    assert.deepEqual(
      origin.log.slice(1).map((r) => r.range),
      [`bytes=4096-${11 * 4096 - 1}`],
    );
    // Blocks 0..15: 1..10 are cached, so 0 and 11..15 are fetched, as two runs.
    const b = Buffer.alloc(16 * 4096);
    assert.equal(await fd.readAt!(b, 0), b.length);
    assert.ok(b.equals(big.subarray(0, b.length)));
    assert.deepEqual(
      origin.log.slice(2).map((r) => r.range),
      ['bytes=0-4095', `bytes=${11 * 4096}-${16 * 4096 - 1}`],
    );
    // More than 16 missing blocks: one request per 16, and none for the part in the tail fetched on open.
    origin.log.length = 0;
    const c = Buffer.alloc(40 * 4096);
    assert.equal(await fd.readAt!(c, 20 * 4096), c.length);
    assert.ok(c.equals(big.subarray(20 * 4096, 60 * 4096)));
    const lastBlock = Math.floor((big.length - DEFAULT_TAIL_BYTES - 1) / 4096);
    assert.deepEqual(
      origin.log.map((r) => r.range),
      [`bytes=${20 * 4096}-${36 * 4096 - 1}`, `bytes=${36 * 4096}-${(lastBlock + 1) * 4096 - 1}`],
    );
    await fd.close();
  });

  it('keeps at most maxObjects pinned versions, and open handles keep theirs', async () => {
    reset();
    const f = fops({ maxObjects: 1 });
    const fd = await f.open('/small.txt');
    await f.open('/big.bin').then((h) => h.close());
    await f.open('/big.bin').then((h) => h.close());
    assert.equal(origin.log.length, 2, 'big.bin stays pinned');
    await f.open('/small.txt').then((h) => h.close());
    assert.equal(origin.log.length, 3, 'small.txt was forgotten, and is opened again');
    assert.equal((await readAll(fd)).toString(), 'small object');
    await fd.close();
  });

  it('refuses objects without a strong ETag, and maps 404 to NOT_FOUND', async () => {
    reset();
    origin.faults = { weakEtag: true };
    await assert.rejects(fops().open('/small.txt'), isIo(/strong ETag/));
    origin.faults = {};
    await assert.rejects(fops().open('/nothing.bin'), (err: unknown) => FopError.is(err, 'NOT_FOUND'));
  });

  it('answers opens from a failed one for FAILED_OPEN_MS, so a store that is down is not asked again by every request', async () => {
    reset();
    const f = fops();
    origin.faults = { forceStatus: 503 };
    await assert.rejects(f.open('/small.txt'), isIo(/503/));
    const asked = origin.log.length;
    assert.equal(asked, 2, 'the open and its one retry');
    origin.faults = {};
    await assert.rejects(f.stat('/small.txt'), isIo(/503/));
    assert.equal(origin.log.length, asked, 'failed at once, from memory');
    await new Promise((r) => setTimeout(r, FAILED_OPEN_MS + 100));
    assert.equal((await whole(await f.open('/small.txt'))).toString(), 'small object', 'then asked again, and the store is back');
    assert.ok(origin.log.slice(asked).length > 0, 'a new request after the failure was forgotten');
  });
});

describe('ZipFops over HttpRangeFops: requests per client read', () => {
  const files = { 'index.html': prose(3000), 'big.bin': noise(200_000, 5), 'css/app.css': prose(500) };
  let origin: RangeOrigin;
  let remote: HttpRangeFops;
  let zip: ZipFops;
  before(async () => {
    origin = await startRangeOrigin({ '/site.zip': makeZip({ entries: Object.entries(files).map(([name, data]) => ({ name, data })) }) });
    remote = new HttpRangeFops({ baseUrl: origin.url });
  });
  after(async () => {
    await remote.close();
    await origin.close();
  });

  it('opens an archive whose directory fits in 64 KiB with exactly 1 request; a warm small entry costs 0', async () => {
    zip = new ZipFops({ source: remote });
    // Indexing the archive (stat of a member): the one suffix range, nothing else.
    assert.equal((await zip.stat('/site.zip/index.html')).size, files['index.html'].length);
    assert.deepEqual(
      origin.log.map((r) => r.range),
      [`bytes=-${DEFAULT_TAIL_BYTES}`],
    );
    const first = await whole(await zip.open('/site.zip/index.html'));
    assert.ok(first.equals(files['index.html']));
    assert.equal(origin.log.length, 2, 'the entry at the start of the archive: one block');
    const css = await whole(await zip.open('/site.zip/css/app.css'));
    assert.ok(css.equals(files['css/app.css']));
    const warm = origin.log.length;
    assert.ok(text(await whole(await zip.open('/site.zip/index.html'))).equals(files['index.html']));
    assert.equal(origin.log.length, warm, 'a warm small entry costs 0 requests');
  });

  it('re-indexes a replaced remote archive and never mixes versions', async () => {
    // Inflate cache and read-ahead off: otherwise the entry is fetched whole at open, before the replacement.
    const z = new ZipFops({
      source: new HttpRangeFops({ baseUrl: origin.url, blockSize: 4096, revalidateMs: 0, readAheadBytes: 0 }),
      inflateCache: { maxBytes: 0 },
    });
    assert.ok((await whole(await z.open('/site.zip/index.html'))).equals(files['index.html']));
    const fd = await z.open('/site.zip/big.bin');
    const v2 = prose(4000);
    origin.objects.set('/site.zip', makeZip({ entries: [{ name: 'index.html', data: v2 }] }));
    // The open handle's blocks are fetched with If-Match: the old version, or a clean failure; never the new bytes.
    await assert.rejects(readAll(fd), (err: unknown) => FopError.is(err) && /replaced/.test(err.message));
    await fd.close();
    assert.ok((await whole(await z.open('/site.zip/index.html'))).equals(v2));
    await assert.rejects(z.open('/site.zip/big.bin'), (err: unknown) => FopError.is(err, 'NOT_FOUND'));
  });

  it('with read-ahead, an entry fetched before a replacement reads whole as the old version, and reports changed()', async () => {
    origin.objects.set('/site.zip', makeZip({ entries: Object.entries(files).map(([name, data]) => ({ name, data })) }));
    const src = new HttpRangeFops({ baseUrl: origin.url, blockSize: 4096, revalidateMs: 0 });
    const z = new ZipFops({ source: src, inflateCache: { maxBytes: 0 } });
    const fd = await z.open('/site.zip/big.bin');
    origin.objects.set('/site.zip', makeZip({ entries: [{ name: 'index.html', data: prose(4000) }] }));
    // Old bytes, complete, or nothing: a server checks changed() before the last byte and cuts the response.
    assert.ok((await readAll(fd)).equals(files['big.bin']));
    assert.equal(await fd.changed!(), true);
    await fd.close();
    await src.close();
  });
});

describe('RemoteRouterFops: the reserved prefix of an engine with range+http mounts', () => {
  const site = { 'index.html': prose(2000) };
  const dir = tmpDir();
  let origin: RangeOrigin;
  let router: RemoteRouterFops;
  let archive = '';
  before(async () => {
    // `.zip` in a directory name above the object: the container search must pass over it.
    origin = await startRangeOrigin({ '/dir.zip/site.zip': makeZip({ entries: [{ name: 'index.html', data: site['index.html'] }] }) });
    router = new RemoteRouterFops(new PlatFops(), [{ origin: origin.url, path: '/dir.zip/site.zip' }]);
    archive = remoteFopPath({ origin: origin.url, path: '/dir.zip/site.zip' });
    writeFileSync(join(dir, 'local.txt'), 'on disk');
  });
  after(async () => {
    await router.close();
    await origin.close();
    rmTree(dir);
  });

  it('enters the remote archive through a Vfs, and passes other paths to the disk', async () => {
    const vfs = new Vfs({ base: router });
    assert.ok((await whole(await vfs.open(`${archive}/index.html`))).equals(site['index.html']));
    assert.equal((await whole(await vfs.open(join(dir, 'local.txt')))).toString(), 'on disk');
    assert.equal((await vfs.stat(`${REMOTE_PREFIX}/http`)).type, 'directory');
  });

  it('reaches only the objects the mounts name: anything else under the prefix is NOT_FOUND without a request', async () => {
    origin.log.length = 0;
    const host = new URL(origin.url).host;
    for (const path of [`${REMOTE_PREFIX}/http/${host}/other.zip`, `${REMOTE_PREFIX}/http/169.254.169.254/latest.zip`, `${archive}x`]) {
      await assert.rejects(router.open(path), (err: unknown) => FopError.is(err, 'NOT_FOUND'), path);
      await assert.rejects(router.stat(path), (err: unknown) => FopError.is(err, 'NOT_FOUND'), path);
    }
    assert.equal(origin.log.length, 0);
  });
});

describe('HttpRangeFops read-ahead: an advised range costs one streamed GET per window', () => {
  const bs = 16384;
  const size = 2_000_000;
  const big = noise(size, 21);
  const tailStart = size - DEFAULT_TAIL_BYTES;
  let origin: RangeOrigin;
  const made: HttpRangeFops[] = [];
  const fops = (extra: Partial<ConstructorParameters<typeof HttpRangeFops>[0]> = {}) => {
    const f = new HttpRangeFops({ baseUrl: origin.url, blockSize: bs, timeoutMs: 500, retries: 1, ...extra });
    made.push(f);
    return f;
  };
  /** The GET of blocks `[from, to)`, as the origin logs it. */
  const span = (from: number, to: number) => `bytes=${from * bs}-${Math.min(size, to * bs) - 1}`;
  /** The ranges asked after the opening request. */
  const ranges = () => origin.log.slice(1).map((r) => r.range);
  before(async () => {
    origin = await startRangeOrigin({ '/big.bin': big });
  });
  after(async () => {
    for (const f of made) await f.close();
    await origin.close();
  });
  const reset = () => {
    origin.faults = {};
    origin.log.length = 0;
  };

  it('fetches an advised range with one GET at its first read; without read-ahead each new block costs one', async () => {
    for (const readAheadBytes of [undefined, 0]) {
      reset();
      const fd = await fops(readAheadBytes === undefined ? {} : { readAheadBytes }).open('/big.bin');
      fd.advise!(1000, 100_000);
      assert.equal(origin.log.length, 1, 'advice alone costs nothing');
      for (let at = 1000; at < 101_000; at += 10_000) {
        const buf = Buffer.alloc(10_000);
        assert.equal(await fd.readAt!(buf, at), buf.length);
        assert.ok(buf.equals(big.subarray(at, at + buf.length)));
      }
      if (readAheadBytes === undefined) assert.deepEqual(ranges(), [span(0, 7)]);
      else assert.equal(ranges().length, 7, 'blocks 0..6, one request each');
      await fd.close();
    }
  });

  it('reads a large advised range in sequence with one GET per window, never more than a window and a half ahead', async () => {
    reset();
    const window = 16 * bs;
    const fd = await fops({ readAheadBytes: window }).open('/big.bin');
    fd.advise!(0, size);
    const chunks: Buffer[] = [];
    for (;;) {
      const buf = Buffer.alloc(64 * 1024);
      const n = await fd.read(buf);
      if (n === 0) break;
      chunks.push(buf.subarray(0, n));
      const asked = Math.max(...ranges().map((r) => Number(/-(\d+)$/.exec(r ?? '')![1]) + 1));
      assert.ok(asked - fd.pos <= 1.5 * window + bs, `${asked - fd.pos} bytes asked ahead of the reader`);
    }
    assert.ok(Buffer.concat(chunks).equals(big));
    // Blocks up to the one holding the first byte of the tail fetched on open; none after it.
    const blocks = Math.floor((tailStart - 1) / bs) + 1;
    const expected: string[] = [];
    for (let b = 0; b < blocks; b += 16) expected.push(span(b, Math.min(b + 16, blocks)));
    assert.deepEqual(ranges(), expected);
    await fd.close();
  });

  it('fetches only what a read jumping into an advised range needs; the read continuing it starts read-ahead', async () => {
    reset();
    const fd = await fops({ readAheadBytes: 8 * bs }).open('/big.bin');
    fd.advise!(0, size);
    const buf = Buffer.alloc(10);
    await fd.readAt!(buf, 50 * bs + 5);
    assert.deepEqual(ranges(), [span(50, 51)]);
    const next = Buffer.alloc(100);
    await fd.readAt!(next, 50 * bs + 15);
    assert.ok(next.equals(big.subarray(50 * bs + 15, 50 * bs + 115)));
    // That read was served from the cache; the window is in flight: wait for its first block (too far from its end to ask for more).
    await fd.readAt!(buf, 51 * bs);
    assert.ok(buf.equals(big.subarray(51 * bs, 51 * bs + 10)));
    // Block 50 is cached: the window starts after it.
    assert.deepEqual(ranges(), [span(50, 51), span(51, 58)]);
    await fd.close();
  });

  it('streams a GET into its blocks: with the body stalled halfway, the first blocks are read and the rest fail cleanly', async () => {
    reset();
    const fd = await fops({ readAheadBytes: 16 * bs, timeoutMs: 300, retries: 0 }).open('/big.bin');
    origin.faults = { stall: true };
    fd.advise!(0, 16 * bs);
    const first = Buffer.alloc(100);
    const last = Buffer.alloc(100);
    // Both reads start before either settles, so both are answered by the one GET.
    const early = fd.readAt!(first, 0);
    const late = assert.rejects(fd.readAt!(last, 15 * bs), (err: unknown) => FopError.is(err, 'IO'));
    assert.equal(await early, 100);
    assert.ok(first.equals(big.subarray(0, 100)));
    await late;
    assert.deepEqual(ranges(), [span(0, 16)]);
    origin.faults = {};
    // The half that arrived (blocks 0..7) is cached; block 8 is fetched again.
    await fd.readAt!(first, 7 * bs);
    assert.ok(first.equals(big.subarray(7 * bs, 7 * bs + 100)));
    assert.equal(ranges().length, 1);
    await fd.readAt!(first, 8 * bs);
    assert.ok(first.equals(big.subarray(8 * bs, 8 * bs + 100)));
    assert.deepEqual(ranges(), [span(0, 16), span(8, 9)]);
    await fd.close();
  });

  it('retries a cut body for the blocks still missing, keeping the blocks that arrived', async () => {
    reset();
    const fd = await fops({ readAheadBytes: 8 * bs, retries: 1 }).open('/big.bin');
    origin.faults = { truncate: true };
    fd.advise!(0, 8 * bs);
    const bufs = [0, 4, 6].map(() => Buffer.alloc(100));
    // Half of blocks 0..7 arrives (0..3), then half of the retry for 4..7 (4, 5); 6 and 7 fail.
    const reads = [0, 4, 6].map((b, k) => fd.readAt!(bufs[k]!, b * bs));
    const failed = assert.rejects(reads[2]!, (err: unknown) => FopError.is(err, 'IO'));
    assert.equal(await reads[0], 100);
    assert.equal(await reads[1], 100);
    await failed;
    assert.ok(bufs[0]!.equals(big.subarray(0, 100)));
    assert.ok(bufs[1]!.equals(big.subarray(4 * bs, 4 * bs + 100)));
    assert.deepEqual(ranges(), [span(0, 8), span(4, 8)]);
    origin.faults = {};
    await fd.readAt!(bufs[2]!, 6 * bs);
    assert.ok(bufs[2]!.equals(big.subarray(6 * bs, 6 * bs + 100)));
    assert.deepEqual(ranges(), [span(0, 8), span(4, 8), span(6, 7)]);
    await fd.close();
  });

  it('refuses a read-ahead GET answered with another range, or with more bytes than asked, keeping nothing from it', async () => {
    reset();
    const f = fops({ readAheadBytes: 8 * bs });
    const fd = await f.open('/big.bin');
    origin.faults = { shiftRange: true };
    fd.advise!(0, 8 * bs);
    await assert.rejects(fd.readAt!(Buffer.alloc(10), 0), isIo(/another range/));
    assert.equal(f.stats.bytesFetched, DEFAULT_TAIL_BYTES, 'no body of a refused answer was taken');
    origin.faults = { chunked: 'extra' };
    fd.advise!(8 * bs, 8 * bs);
    const first = Buffer.alloc(10);
    const early = fd.readAt!(first, 8 * bs).then(
      (n) => n,
      () => -1,
    );
    await assert.rejects(fd.readAt!(Buffer.alloc(10), 15 * bs), isIo(/more than/));
    // The first block may have been read before the extra bytes came; if so, its bytes were right.
    if ((await early) > 0) assert.ok(first.equals(big.subarray(8 * bs, 8 * bs + 10)));
    assert.equal(f.stats.cachedBytes, 0, 'the blocks of a body that broke its framing are not kept');
    origin.faults = { chunked: true };
    fd.advise!(16 * bs, 8 * bs);
    const whole8 = Buffer.alloc(8 * bs);
    assert.equal(await fd.readAt!(whole8, 16 * bs), whole8.length);
    assert.ok(whole8.equals(big.subarray(16 * bs, 24 * bs)));
    await fd.close();
  });

  it('fails reads of a replaced object fetched by read-ahead (412), never returning bytes of either version', async () => {
    reset();
    const fd = await fops().open('/big.bin');
    origin.objects.set('/big.bin', noise(size, 22));
    fd.advise!(0, 8 * bs);
    await assert.rejects(fd.readAt!(Buffer.alloc(10), 0), isIo(/replaced/));
    assert.equal(await fd.changed!(), true);
    await fd.close();
    origin.objects.set('/big.bin', big);
  });

  it('cuts the bodies still streaming when closed: their reads fail at once, not after the timeout', { timeout: 8000 }, async () => {
    reset();
    const f = new HttpRangeFops({ baseUrl: origin.url, blockSize: bs, timeoutMs: 30_000 });
    const fd = await f.open('/big.bin');
    origin.faults = { stall: true };
    fd.advise!(0, 16 * bs);
    const early = fd.readAt!(Buffer.alloc(10), 0);
    const late = assert.rejects(fd.readAt!(Buffer.alloc(10), 15 * bs), (err: unknown) => FopError.is(err, 'IO'));
    assert.equal(await early, 10);
    await f.close();
    await late;
    assert.equal(origin.log.length, 2, 'no retry after close');
  });
});

describe('ZipFops over HttpRangeFops: one GET per entry, read-ahead, large directories', () => {
  const localExtra = Buffer.concat([Buffer.from([0x66, 0x66]), Buffer.from([0xb4, 0x0b]), Buffer.alloc(2996)]);
  const small = Array.from({ length: 40 }, (_, i) => ({ name: `file-${String(i).padStart(2, '0')}.bin`, data: noise(20_000, 100 + i), method: 0 }));
  const many = makeZip({ entries: small.map((e) => (e.name === 'file-07.bin' ? { ...e, extraLocal: localExtra } : e)) });
  const bigData = noise(10 * 1024 * 1024, 31);
  const rawData = noise(600_000, 32);
  const bigZip = makeZip({
    entries: [
      { name: 'big.bin', data: bigData, method: 0 },
      { name: 'raw.bin', data: rawData, method: 8 },
      { name: 'after.txt', data: prose(2000) },
    ],
  });
  const longName = (i: number) => `section-${i % 50}/${'a-rather-long-path-segment-'.repeat(4)}${i}.txt`;
  const wide = makeZip({ entries: Array.from({ length: 5000 }, (_, i) => ({ name: longName(i), data: `entry ${i}`, method: 0 })) });
  const logText = prose(300_000);
  const inner = { 'x.txt': prose(50_000), 'y.bin': noise(30_000, 33) };
  const nested = makeZip({
    entries: [
      { name: 'log.txt', data: logText, method: 8, stored: deflateRawSync(logText, { level: 1, memLevel: 2 }) },
      { name: 'inner.zip', data: makeZip({ entries: Object.entries(inner).map(([name, data]) => ({ name, data, method: 0 })) }), method: 0 },
      { name: 'pad.bin', data: noise(200_000, 34), method: 0 },
    ],
  });
  let origin: RangeOrigin;
  const made: HttpRangeFops[] = [];
  const remote = (extra: Partial<ConstructorParameters<typeof HttpRangeFops>[0]> = {}) => {
    const f = new HttpRangeFops({ baseUrl: origin.url, ...extra });
    made.push(f);
    return f;
  };
  before(async () => {
    origin = await startRangeOrigin({ '/many.zip': many, '/big.zip': bigZip, '/wide.zip': wide, '/nested.zip': nested });
  });
  after(async () => {
    for (const f of made) await f.close();
    await origin.close();
  });
  const reset = () => {
    origin.faults = {};
    origin.log.length = 0;
  };

  it('hands a stored entry and a gzip passthrough over as views of the block cache, without copies, and still checks the CRC', async () => {
    reset();
    const crcBad = makeZip({ entries: [{ name: 'bad.bin', data: noise(100_000, 35), method: 0, cd: { crc: 1 }, local: { crc: 1 } }] });
    origin.objects.set('/crc.zip', crcBad);
    const zip = new ZipFops({ source: remote() });
    const readViews = async (path: string, flags = 0) => {
      const fd = await zip.open(path, flags);
      const next = fd.readBuffer?.bind(fd);
      assert.ok(next, `${path}: readBuffer over a remote source`);
      const chunks: Buffer[] = [];
      for (let c = await next(256 * 1024); c.length > 0; c = await next(256 * 1024)) chunks.push(c);
      await fd.close();
      return chunks;
    };
    const first = await readViews('/big.zip/big.bin');
    const again = await readViews('/big.zip/big.bin');
    assert.ok(Buffer.concat(first).equals(bigData));
    assert.equal(first.length, again.length);
    // The same cached block under both reads: views of one memory, not two copies.
    const shared = first.filter((c, i) => c.buffer === again[i]!.buffer && c.byteOffset === again[i]!.byteOffset).length;
    assert.ok(shared > first.length / 2, `${shared} of ${first.length} chunks are the same views`);
    const gz = await readViews('/big.zip/raw.bin', FopFlags.COMPR_ACCEPTABLE_GZIP);
    assert.ok(gunzipSync(Buffer.concat(gz)).equals(rawData), 'the gzip member gunzips to the entry');
    const gzAgain = await readViews('/big.zip/raw.bin', FopFlags.COMPR_ACCEPTABLE_GZIP);
    assert.ok(
      gz.slice(1, -1).some((c, i) => c.buffer === gzAgain[i + 1]!.buffer),
      'the raw deflate bytes are views too',
    );
    const fd = await zip.open('/crc.zip/bad.bin');
    await assert.rejects(
      (async () => {
        while ((await fd.readBuffer!(64 * 1024)).length > 0);
      })(),
      (err: unknown) => FopError.is(err, 'CORRUPT_ARCHIVE') && /CRC-32/.test(err.message),
    );
    await fd.close();
  });

  it('reads a cold Range across a block boundary through views with one request for its blocks, and no read-ahead window', async () => {
    reset();
    const zip = new ZipFops({ source: remote() });
    const fd = await zip.open('/big.zip/big.bin');
    const opened = origin.log.length;
    const at = 5 * 65536 + 20_000;
    fd.seekCur(at);
    const parts: Buffer[] = [];
    // As the engine reads a 64 KiB range: whatever is left of it, until it is all there.
    for (let want = 65536; want > 0;) {
      const chunk = await fd.readBuffer!(want);
      parts.push(chunk);
      want -= chunk.length;
    }
    await fd.close();
    assert.ok(parts.length > 1, 'the range spans two blocks, so two views');
    assert.ok(Buffer.concat(parts).equals(bigData.subarray(at, at + 65536)));
    // The header's first window (256 KiB) is behind; the range needs blocks 5 and 6 of the entry, nothing after them.
    const asked = origin.log.slice(opened).map((r) => r.range);
    assert.equal(asked.length, 1, JSON.stringify(asked));
    assert.equal(asked[0], `bytes=${5 * 65536}-${7 * 65536 - 1}`);
  });

  it('reads a cold small entry with exactly 1 request after the archive is open (local header and data in one GET), a warm one with 0', async () => {
    for (const name of ['file-05.bin', 'file-07.bin']) {
      reset();
      const zip = new ZipFops({ source: remote({ blockSize: 4096 }) });
      await zip.stat(`/many.zip/${name}`);
      assert.equal(origin.log.length, 1, 'the archive is open');
      const want = small.find((e) => e.name === name)!.data;
      assert.ok((await whole(await zip.open(`/many.zip/${name}`))).equals(want));
      // file-07 has a local extra field of 3000 bytes the central directory does not have: the same one request.
      assert.equal(origin.log.length, 2, `${name}: one request`);
      assert.ok((await whole(await zip.open(`/many.zip/${name}`))).equals(want));
      assert.equal(origin.log.length, 2, `${name}: warm, no request`);
    }
    reset();
    const lazy = new ZipFops({ source: remote({ blockSize: 4096, readAheadBytes: 0 }) });
    assert.ok((await whole(await lazy.open('/many.zip/file-05.bin'))).equals(small[5]!.data));
    assert.equal(origin.log.length, 3, 'without read-ahead: open, the local header, then the data');
  });

  it('shares one GET among concurrent cold readers of the same entry', async () => {
    reset();
    const zip = new ZipFops({ source: remote({ blockSize: 4096 }) });
    await zip.stat('/many.zip/file-12.bin');
    const got = await Promise.all(Array.from({ length: 4 }, async () => whole(await zip.open('/many.zip/file-12.bin'))));
    for (const b of got) assert.ok(b.equals(small[12]!.data));
    assert.equal(origin.log.length, 2, 'the open, then one GET for the entry');
  });

  it('reads a cold 10 MiB stored entry whole with one GET per read-ahead window, windows doubling from 256 KiB', async () => {
    reset();
    const bs = 64 * 1024;
    const zip = new ZipFops({ source: remote({ readAheadBytes: 1024 * 1024 }) });
    assert.ok((await whole(await zip.open('/big.zip/big.bin'))).equals(bigData));
    // The entry runs from 0 to the next local header; the tail fetched on open holds the rest of the archive.
    const entryEnd = 30 + 'big.bin'.length + bigData.length;
    const blocks = Math.floor((Math.min(entryEnd, bigZip.length - DEFAULT_TAIL_BYTES) - 1) / bs) + 1;
    const expected = [`bytes=-${DEFAULT_TAIL_BYTES}`];
    for (let b = 0, w = 4; b < blocks; b += w, w = Math.min(16, w * 2)) expected.push(`bytes=${b * bs}-${Math.min(b + w, blocks) * bs - 1}`);
    assert.deepEqual(
      origin.log.map((r) => r.range),
      expected,
    );
  });

  it('answers a HEAD or a short range of a cold large entry with one small GET, not a full window', async () => {
    reset();
    const zip = new ZipFops({ source: remote() });
    await zip.stat('/big.zip/big.bin');
    const before = origin.log.length;
    const fd = await zip.open('/big.zip/big.bin');
    const buf = Buffer.alloc(1000);
    assert.equal(await fd.read(buf), buf.length);
    assert.ok(buf.equals(bigData.subarray(0, 1000)));
    // A second window asked too early would reach the origin within this pause.
    await new Promise((r) => setTimeout(r, 200));
    await fd.close();
    assert.deepEqual(
      origin.log.slice(before).map((r) => r.range),
      [`bytes=0-${256 * 1024 - 1}`],
      'the first window of an entry that may not be read whole is 256 KiB (of a 4 MiB read-ahead)',
    );
  });

  it('streams a cold entry: with the body stalled halfway, the first bytes (stored, and gzip passthrough) still arrive', async () => {
    for (const [name, flags] of [
      ['big.bin', 0],
      ['raw.bin', FopFlags.COMPR_ACCEPTABLE_GZIP],
    ] as const) {
      reset();
      // A window as large as the entry: one GET, of which the first half arrives.
      const zip = new ZipFops({ source: remote({ readAheadBytes: 16 * 1024 * 1024, readAheadStartBytes: 16 * 1024 * 1024, timeoutMs: 300, retries: 0 }) });
      await zip.stat(`/big.zip/${name}`);
      origin.faults = { stall: true };
      const fd = await zip.open(`/big.zip/${name}`, flags);
      const first = Buffer.alloc(16 * 1024);
      assert.equal(await fd.read(first), first.length);
      if (name === 'big.bin') assert.ok(first.equals(bigData.subarray(0, first.length)));
      else {
        assert.equal(fd.flags & FopFlags.COMPR_IS_GZIP, FopFlags.COMPR_IS_GZIP);
        // The gzip header, then the entry's raw deflate bytes as stored.
        const lfh = 30 + 'big.bin'.length + bigData.length;
        const dataStart = lfh + 30 + name.length;
        assert.ok(first.subarray(10).equals(bigZip.subarray(dataStart, dataStart + first.length - 10)));
      }
      await assert.rejects(readAll(fd), (err: unknown) => FopError.is(err, 'IO'));
      await fd.close();
      assert.equal(origin.log.length, 2, `${name}: the open, then one GET for the entry's first window: ${JSON.stringify(origin.log.map((r) => r.range))}`);
    }
  });

  it('opens an archive whose central directory is larger than the tail with exactly 2 requests', async () => {
    reset();
    const cdStart = wide.readUInt32LE(wide.length - 22 + 16);
    assert.ok(wide.length - cdStart > 4 * DEFAULT_TAIL_BYTES, 'the directory is much larger than the tail');
    const zip = new ZipFops({ source: remote() });
    assert.equal((await zip.stat(`/wide.zip/${longName(4321)}`)).size, 'entry 4321'.length);
    assert.equal(origin.log.length, 2);
    const m = /^bytes=(\d+)-(\d+)$/.exec(origin.log[1]!.range ?? '');
    assert.ok(m, `an explicit range, not ${origin.log[1]!.range}`);
    const [from, to] = [Number(m[1]), Number(m[2])];
    assert.ok(from <= cdStart && cdStart - from < 64 * 1024, `starts at the block of the directory's first byte (${from})`);
    assert.ok(to >= wide.length - DEFAULT_TAIL_BYTES - 1 && to < wide.length - DEFAULT_TAIL_BYTES + 64 * 1024, `ends where the tail begins (${to})`);
    assert.equal((await readAll(await zip.open(`/wide.zip/${longName(4321)}`))).toString(), 'entry 4321');
    reset();
    const lazy = new ZipFops({ source: remote({ readAheadBytes: 0 }) });
    await lazy.stat(`/wide.zip/${longName(1)}`);
    const lazyRequests = origin.log.map((r) => r.range);
    assert.ok(lazyRequests.length > 2, `without read-ahead: ${lazyRequests.length} requests`);
  });

  it('reads a deflated entry at random through its checkpoint index, and an archive stored inside, over the remote source', async () => {
    reset();
    const vfs = new Vfs({ base: remote({ blockSize: 4096 }), zip: { inflateCache: { maxBytes: 0 }, randomAccess: { span: 4096, maxShare: 1 } } });
    const fd = await vfs.open('/nested.zip/log.txt');
    for (const at of [200_000, 5, 299_000, 150_123]) {
      const buf = Buffer.alloc(1000);
      const n = await fd.readAt!(buf, at);
      assert.ok(buf.subarray(0, n).equals(logText.subarray(at, at + n)), `at ${at}`);
    }
    await fd.close();
    for (const [name, data] of Object.entries(inner)) assert.ok((await whole(await vfs.open(`/nested.zip/inner.zip/${name}`))).equals(data), name);
    const requests = origin.log.length;
    assert.ok((await whole(await vfs.open('/nested.zip/inner.zip/x.txt'))).equals(inner['x.txt']));
    assert.equal(origin.log.length, requests, 'warm: no request');
  });
});
