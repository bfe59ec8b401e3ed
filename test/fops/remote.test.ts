import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { describeFopsConformance } from '../../src/testing/conformance.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DEFAULT_TAIL_BYTES,
  FopError,
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
    // Inflate cache off: otherwise the entry is inflated whole at open, before the replacement.
    const z = new ZipFops({ source: new HttpRangeFops({ baseUrl: origin.url, blockSize: 4096, revalidateMs: 0 }), inflateCache: { maxBytes: 0 } });
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
