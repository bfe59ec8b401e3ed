// A range+http:// mount served through createHandler on node:http, reading its archive from an
// in-repo origin by Range requests.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { CONTAINER_SIGNATURES, FopError, REMOTE_PREFIX, createHandler, resolveMount } from '../../src/index.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startCli } from '../helpers/cli.js';
import { noise, prose, rmTree, tmpDir, writeTree } from '../helpers/fixtures.js';
import { get, listen } from '../helpers/http.js';
import { startRangeOrigin, type RangeOrigin } from '../helpers/range-origin.js';
import { makeZip } from '../helpers/zip-writer.js';
import { assertReplacedWithin, siteV1, siteV2, zipOf } from '../helpers/remote-site.js';

const v1 = siteV1;
const v2 = siteV2;

describe('range+http mount options', () => {
  const resolve = (origin: string) => resolveMount({ mountpoint: '/', origin }, [], 'm', CONTAINER_SIGNATURES);

  it('maps a range+http origin to the archive under the reserved prefix, served as an archive root', () => {
    const m = resolve('range+http://127.0.0.1:8080/a%20b/site.zip');
    assert.equal(m.kind, 'file');
    assert.equal(m.archive, true);
    assert.equal(m.root, `${REMOTE_PREFIX}/http/127.0.0.1:8080/a b/site.zip`);
    assert.deepEqual(m.remote, { origin: 'http://127.0.0.1:8080', path: '/a b/site.zip' });
    assert.equal(resolve('range+https://example.com/x/app.jar').remote?.origin, 'https://example.com');
  });

  it('refuses credentials, queries (but presigned ones), fragments, non-archives and non-canonical paths', () => {
    for (const bad of [
      'range+http://user:pw@127.0.0.1/site.zip',
      'range+http://127.0.0.1/site.zip?a=1',
      'range+http://127.0.0.1/site.zip#part',
      'range+http://127.0.0.1/site.txt',
      'range+http://127.0.0.1/',
      'range+http://127.0.0.1/a//site.zip',
      'range+http://127.0.0.1/a%2Fb/site.zip',
    ]) {
      assert.throws(() => resolve(bad), TypeError, bad);
    }
  });
});

describe('serving a remote archive through createHandler (range+http)', () => {
  let origin: RangeOrigin;
  let port = 0;
  let close: () => Promise<void> = () => Promise.resolve();
  let closeHandler: () => Promise<void> = () => Promise.resolve();
  let counter = 0;

  before(async () => {
    origin = await startRangeOrigin({ '/archives/site.zip': zipOf(v1) });
    const handler = createHandler({
      mounts: [{ mountpoint: '/', origin: `range+http://127.0.0.1:${new URL(origin.url).port}/archives/site.zip` }],
      remote: { revalidateMs: 100 },
      resolveCacheMs: 0,
      log: () => counter++,
    });
    closeHandler = handler.close;
    ({ port, close } = await listen(handler));
  });
  after(async () => {
    await close();
    await origin.close();
  });

  it('serves whole entries, the default file for the root, and 404 outside the archive', async () => {
    const root = await get(port, '/');
    assert.equal(root.status, 200);
    assert.ok(root.body.equals(v1['index.html']));
    const big = await get(port, '/photo.jpg');
    assert.equal(big.status, 200);
    assert.ok(big.body.equals(v1['photo.jpg']));
    assert.equal((await get(port, '/nothing.html')).status, 404);
  });

  it('serves a Range request with the right bytes', async () => {
    const r = await get(port, '/photo.jpg', { range: 'bytes=100000-100999' });
    assert.equal(r.status, 206);
    assert.equal(r.headers['content-range'], `bytes 100000-100999/${v1['photo.jpg'].length}`);
    assert.ok(r.body.equals(v1['photo.jpg'].subarray(100000, 101000)));
  });

  it('passes the deflated entry through as gzip', async () => {
    const r = await get(port, '/app.css', { 'accept-encoding': 'gzip' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-encoding'], 'gzip');
    assert.ok(gunzipSync(r.body).equals(v1['app.css']));
  });

  it('picks up a replaced archive (new ETag) and never serves mixed bytes', async () => {
    const etag1 = (await get(port, '/app.css')).headers.etag;
    origin.objects.set('/archives/site.zip', zipOf(v2));
    await assertReplacedWithin(port, etag1);
  });

  it("closes the origin's connections when the handler closes", async () => {
    assert.ok((await origin.connections()) > 0, 'keep-alive connections to the origin');
    await closeHandler();
    const deadline = Date.now() + 2000;
    while ((await origin.connections()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(await origin.connections(), 0);
  });
});

describe('a remote archive through the vfserve CLI (range+http in a configuration file)', () => {
  it('serves the archive, a range and gzip passthrough from the origin, on a vhost beside a local one', async () => {
    const origin = await startRangeOrigin({ '/archives/site.zip': zipOf(v1) });
    const dir = tmpDir('vfserve-remote-cli-');
    writeTree(join(dir, 'www'), { 'local.txt': Buffer.from('local file\n') });
    writeFileSync(
      join(dir, 'conf'),
      JSON.stringify({
        vhosts: [
          {
            name: 'localhost',
            port: 0,
            interface: '127.0.0.1',
            mounts: [
              { mountpoint: '/', origin: `range+http://127.0.0.1:${new URL(origin.url).port}/archives/site.zip` },
              { mountpoint: '/local', origin: 'file://www' },
            ],
          },
        ],
      }),
    );
    const s = await startCli(['--config', join(dir, 'conf'), '--quiet']);
    try {
      const page = await get(s.port, '/');
      assert.equal(page.status, 200);
      assert.ok(page.body.equals(v1['index.html']));
      const part = await get(s.port, '/photo.jpg', { range: 'bytes=1000-1999' });
      assert.equal(part.status, 206);
      assert.ok(part.body.equals(v1['photo.jpg'].subarray(1000, 2000)));
      const gz = await get(s.port, '/app.css', { 'accept-encoding': 'gzip' });
      assert.equal(gz.headers['content-encoding'], 'gzip');
      assert.ok(gunzipSync(gz.body).equals(v1['app.css']));
      assert.equal((await get(s.port, '/local/local.txt')).body.toString(), 'local file\n');
      assert.ok(origin.log.length > 0, 'the archive was read from the origin');
    } finally {
      assert.equal(await s.stop(), 0, s.output());
      await origin.close();
      rmTree(dir);
    }
  });

  it('takes the backend options from the global remote-* keys', async () => {
    const origin = await startRangeOrigin({ '/archives/site.zip': zipOf(v1) });
    const dir = tmpDir('vfserve-remote-cli-');
    writeFileSync(
      join(dir, 'conf'),
      JSON.stringify({
        global: { 'remote-tail-bytes': 70_000, 'remote-block-size': '8192', 'remote-read-ahead-bytes': 0 },
        vhosts: [
          {
            name: 'localhost',
            port: 0,
            interface: '127.0.0.1',
            mounts: [{ mountpoint: '/', origin: `range+http://127.0.0.1:${new URL(origin.url).port}/archives/site.zip` }],
          },
        ],
      }),
    );
    const s = await startCli(['--config', join(dir, 'conf'), '--quiet']);
    try {
      const part = await get(s.port, '/photo.jpg', { range: 'bytes=100000-100999' });
      assert.equal(part.status, 206);
      assert.ok(part.body.equals(v1['photo.jpg'].subarray(100_000, 101_000)));
      assert.equal(origin.log[0]?.range, 'bytes=-70000', 'the suffix read on open is remote-tail-bytes');
      const explicit = origin.log.slice(1).map((r) => /^bytes=(\d+)-(\d+)$/.exec(r.range ?? ''));
      assert.ok(explicit.length > 0);
      const lengths = explicit.map((m) => {
        assert.ok(m, JSON.stringify(origin.log));
        const [from, to] = [Number(m[1]), Number(m[2])];
        assert.equal(from % 8192, 0, `${from} starts an 8 KiB block`);
        return to - from + 1;
      });
      // The entry's bytes come as 8 KiB blocks, as each read needs them (no read-ahead): with the defaults
      // no request would be shorter than a 64 KiB block.
      assert.ok(
        lengths.some((n) => n <= 2 * 8192),
        `ranges of ${lengths.join(', ')} bytes`,
      );
    } finally {
      assert.equal(await s.stop(), 0, s.output());
      await origin.close();
      rmTree(dir);
    }
  });
});

describe('reads of a remote archive through createHandler: one GET per entry, streamed', () => {
  // app.css barely compresses (base64 of noise): its deflated bytes span several blocks.
  const files = {
    'index.html': prose(5000),
    'pad.bin': noise(50_000, 7),
    'app.css': Buffer.from(noise(30_000, 9).toString('base64')),
    'photo.jpg': noise(1_200_000, 8),
  };
  const stored = new Set(['pad.bin', 'photo.jpg']);
  let origin: RangeOrigin;
  let port = 0;
  let close: () => Promise<void> = () => Promise.resolve();
  let closeHandler: () => Promise<void> = () => Promise.resolve();
  const errors: unknown[] = [];

  before(async () => {
    origin = await startRangeOrigin({
      '/site.zip': makeZip({ entries: Object.entries(files).map(([name, data]) => ({ name, data, method: stored.has(name) ? 0 : 8 })) }),
    });
    const handler = createHandler({
      mounts: [{ mountpoint: '/', origin: `range+http://127.0.0.1:${new URL(origin.url).port}/site.zip` }],
      // Small blocks, so that entries share no block; no revalidation during the test; a stalled body fails fast.
      // The first read-ahead window is the whole entry, so that half of it arrives before the stall.
      remote: { blockSize: 4096, revalidateMs: 60_000, timeoutMs: 300, retries: 0, readAheadStartBytes: 4 * 1024 * 1024 },
      resolveCacheMs: 0,
      log: () => undefined,
      onError: (err) => errors.push(err),
    });
    closeHandler = handler.close;
    ({ port, close } = await listen(handler));
  });
  after(async () => {
    await closeHandler();
    await close();
    await origin.close();
  });

  it('passes a cold deflated entry through as gzip with one request after the archive is open, a warm one with none', async () => {
    assert.ok((await get(port, '/index.html')).body.equals(files['index.html']));
    const opened = origin.log.length;
    const gz = await get(port, '/app.css', { 'accept-encoding': 'gzip' });
    assert.equal(gz.status, 200);
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.ok(gunzipSync(gz.body).equals(files['app.css']));
    assert.equal(origin.log.length, opened + 1, 'its local header and raw bytes in one GET');
    assert.ok(gunzipSync((await get(port, '/app.css', { 'accept-encoding': 'gzip' })).body).equals(files['app.css']));
    assert.equal(origin.log.length, opened + 1, 'warm: no request');
  });

  it('sends the first bytes of a cold entry while its GET streams, and cuts the response when the origin stalls', async () => {
    await get(port, '/index.html');
    origin.faults = { stall: true };
    try {
      // Half of the entry's GET arrives, then nothing: the first 256 KiB read is complete and goes out.
      const r = await new Promise<{ status: number; body: Buffer; complete: boolean }>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path: '/photo.jpg', agent: false }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', () => undefined);
          res.on('close', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), complete: res.complete }));
        });
        req.setTimeout(10_000, () => req.destroy(new Error('request timed out')));
        req.on('error', reject);
        req.end();
      });
      assert.equal(r.status, 200);
      assert.equal(r.complete, false, 'the response is cut, never completed');
      assert.ok(r.body.length >= 256 * 1024, `${r.body.length} bytes went out first`);
      assert.ok(r.body.equals(files['photo.jpg'].subarray(0, r.body.length)), 'and they are the right bytes');
      assert.ok(
        errors.some((e) => FopError.is(e, 'IO')),
        'the stalled read is reported',
      );
    } finally {
      origin.faults = {};
    }
    assert.ok((await get(port, '/photo.jpg')).body.equals(files['photo.jpg']), 'the next request reads what is missing again');
  });
});
