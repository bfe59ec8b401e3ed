/**
 * createHandler as Connect/Express middleware, in a real Express 4 app on
 * 127.0.0.1: mounted under a path (Express strips it from req.url) and at
 * the root, falling through to later routes, with HEAD, ranges, 304 and gzip
 * passthrough.
 */
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import compression from 'compression';
import express, { type ErrorRequestHandler } from 'express';
import { createHandler } from '../../src/index.js';
import { prose, rmTree, tmpDir, writeTree } from '../helpers/fixtures.js';
import { get, type RawResponse } from '../helpers/http.js';
import { makeZip } from '../helpers/zip-writer.js';

const dir = tmpDir('vfserve-express-');
const www = join(dir, 'www');
const tenK = Buffer.from(Array.from({ length: 10_000 }, (_, i) => String.fromCharCode(97 + (i % 26))).join(''));
const appCss = prose(20_000);
const errors: unknown[] = [];
const expressErrors: unknown[] = [];

async function start(app: express.Express): Promise<{ port: number; close: () => Promise<void> }> {
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

let port = 0;
let close: () => Promise<void> = () => Promise.resolve();

before(async () => {
  writeTree(www, {
    'index.html': Buffer.from('<!doctype html><h1>home</h1>'),
    'plain.txt': Buffer.from('plain text\n'),
    'ten-k.txt': tenK,
    'sub/index.html': Buffer.from('<p>sub</p>'),
    'evil.example/index.html': Buffer.from('<p>a directory</p>'),
    'bad.zip': Buffer.from('not a zip archive, named like one'),
    'site.zip': makeZip({
      entries: [
        { name: 'index.html', data: Buffer.from('<p>zip home</p>') },
        { name: 'css/app.css', data: appCss },
      ],
    }),
  });
  const onError = (err: unknown): void => void errors.push(err);
  const app = express();
  // Mounted under a path: Express strips /static from req.url and keeps it in req.baseUrl.
  app.use('/static', createHandler({ mounts: [{ mountpoint: '/', origin: www }], onError }));
  // At the root: the mountpoint does the matching.
  app.use(
    createHandler({
      mounts: [
        { mountpoint: '/files', origin: `file://${www}` },
        { mountpoint: '/cb', origin: 'callback://cb' },
      ],
      callbacks: {
        cb: (req, res, target) => {
          if (target.remainder === '/throw') throw new Error('callback failed');
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify({ url: req.url, remainder: target.remainder }));
        },
      },
      onError,
    }),
  );
  app.use('/strict', createHandler({ mounts: [{ mountpoint: '/', origin: www }], fallthrough: false, onError }));
  app.get('/files/generated.txt', (_req, res) => void res.send('from an express route'));
  app.get('/strict/missing.txt', (_req, res) => void res.send('unreachable'));
  app.get('/other', (_req, res) => void res.send('other route'));
  const errorHandler: ErrorRequestHandler = (err, _req, res, _next) => {
    expressErrors.push(err);
    res.status(599).end();
  };
  app.use(errorHandler);
  ({ port, close } = await start(app));
});

after(async () => {
  await close();
  rmTree(dir);
});

const hdr = (r: RawResponse, name: string): string | undefined => {
  const v = r.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
};

describe("app.use('/static', handler): Express strips the mount path", () => {
  it('serves files below the Express mount path', async () => {
    const r = await get(port, '/static/plain.txt');
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'plain text\n');
    assert.equal(hdr(r, 'x-powered-by'), 'Express');
    assert.equal((await get(port, '/static/site.zip/index.html')).body.toString(), '<p>zip home</p>');
    assert.equal((await get(port, '/static/')).body.toString(), '<!doctype html><h1>home</h1>');
  });
  it('puts the mount path back in front of the redirects it builds', async () => {
    for (const [path, location] of [
      ['/static/sub', '/static/sub/'],
      ['/static/sub?x=1', '/static/sub/?x=1'],
      ['/static//evil.example', '/static/evil.example/'],
    ]) {
      const r = await get(port, path!);
      assert.equal(r.status, 301, path);
      assert.equal(hdr(r, 'location'), location, path);
    }
    assert.equal((await get(port, '/static/sub/')).body.toString(), '<p>sub</p>');
  });
  it('redirects the bare mount path to itself plus a slash, keeping the query', async () => {
    const r = await get(port, '/static');
    assert.equal(r.status, 301);
    assert.equal(hdr(r, 'location'), '/static/');
    assert.match(r.body.toString(), /301 Moved Permanently/);
    assert.equal(hdr(await get(port, '/static?a=1'), 'location'), '/static/?a=1');
    assert.equal((await get(port, '/static', {}, 'HEAD')).status, 301);
    assert.equal((await get(port, '/static', {}, 'POST')).status, 404, "other methods fall through to Express's own 404");
  });
  it('answers HEAD with the GET headers and no body', async () => {
    const r = await get(port, '/static/ten-k.txt', {}, 'HEAD');
    assert.equal(r.status, 200);
    assert.equal(hdr(r, 'content-length'), '10000');
    assert.equal(r.body.length, 0);
  });
  it('answers a range with 206', async () => {
    const r = await get(port, '/static/ten-k.txt', { range: 'bytes=9990-' });
    assert.equal(r.status, 206);
    assert.equal(hdr(r, 'content-range'), 'bytes 9990-9999/10000');
    assert.deepEqual(r.body, tenK.subarray(9990));
  });
  it('answers a matching If-None-Match with 304', async () => {
    const etag = hdr(await get(port, '/static/plain.txt'), 'etag')!;
    const r = await get(port, '/static/plain.txt', { 'if-none-match': etag });
    assert.equal(r.status, 304);
    assert.equal(r.body.length, 0);
  });
  it('passes a deflated zip entry through to gzip clients', async () => {
    const r = await get(port, '/static/site.zip/css/app.css', { 'accept-encoding': 'gzip, deflate' });
    assert.equal(r.status, 200);
    assert.equal(hdr(r, 'content-encoding'), 'gzip');
    assert.equal(Number(hdr(r, 'content-length')), r.body.length);
    assert.ok(r.body.length < appCss.length / 2, `${r.body.length} bytes`);
    assert.deepEqual(gunzipSync(r.body), appCss);
  });
});

describe('app.use(handler): mountpoints at the root, falling through', () => {
  it('serves its mounts', async () => {
    assert.equal((await get(port, '/files/plain.txt')).body.toString(), 'plain text\n');
    assert.equal(hdr(await get(port, '/files'), 'location'), '/files/');
    const cb = await get(port, '/cb/a?b', {}, 'POST');
    assert.deepEqual(JSON.parse(cb.body.toString()), { url: '/cb/a?b', remainder: '/a' });
  });
  it('falls through to later routes when no mount matches, and on a 404 from a mount', async () => {
    assert.equal((await get(port, '/other')).body.toString(), 'other route');
    const r = await get(port, '/files/generated.txt');
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'from an express route');
    // Nothing answers: Express's own final 404.
    const none = await get(port, '/files/missing.txt');
    assert.equal(none.status, 404);
    assert.match(none.body.toString(), /Cannot GET \/files\/missing\.txt/);
  });
  it('does not fall through with fallthrough: false', async () => {
    const r = await get(port, '/strict/missing.txt');
    assert.equal(r.status, 404);
    assert.match(r.body.toString(), /404 Not Found/);
    assert.doesNotMatch(r.body.toString(), /unreachable/);
  });
  it('answers errors itself (500, nothing echoed), reports them, and leaves the Express error handler alone', async () => {
    errors.length = 0;
    const r = await get(port, '/files/bad.zip/x.html');
    assert.equal(r.status, 500);
    assert.doesNotMatch(r.body.toString(), /zip|central|www/i);
    assert.equal((await get(port, '/cb/throw')).status, 500);
    assert.equal(errors.length, 2);
    assert.deepEqual(expressErrors, []);
    assert.equal((await get(port, '/files/plain.txt')).status, 200);
  });
});

describe('behind the compression middleware', () => {
  it('leaves a gzip passthrough alone and lets other responses be compressed', async () => {
    const app = express();
    app.use(compression({ threshold: 0 }));
    app.use(createHandler({ mounts: [{ mountpoint: '/', origin: www }] }));
    const s = await start(app);
    try {
      const zipped = await get(s.port, '/site.zip/css/app.css', { 'accept-encoding': 'gzip' });
      assert.equal(hdr(zipped, 'content-encoding'), 'gzip');
      assert.deepEqual(gunzipSync(zipped.body), appCss, 'compressed once, by the zip writer');
      const plain = await get(s.port, '/ten-k.txt', { 'accept-encoding': 'gzip' });
      assert.equal(hdr(plain, 'content-encoding'), 'gzip', 'compression is active');
      assert.deepEqual(gunzipSync(plain.body), tenK);
    } finally {
      await s.close();
    }
  });
});
