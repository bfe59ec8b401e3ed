/**
 * The Fastify plugin (src/adapters/fastify.ts) in a real Fastify 5 instance
 * listening on 127.0.0.1, with raw request paths.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect, constants, type IncomingHttpHeaders } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import Fastify, { type FastifyInstance } from 'fastify';
import defaultExport, { vfservePlugin } from '../../src/adapters/fastify.js';
import { prose, root, rmTree, tmpDir, writeTree } from '../helpers/fixtures.js';
import { get, type RawResponse } from '../helpers/http.js';
import { makeZip } from '../helpers/zip-writer.js';

const dir = tmpDir('vfserve-fastify-');
const www = join(dir, 'www');
const tenK = Buffer.from(Array.from({ length: 10_000 }, (_, i) => String.fromCharCode(97 + (i % 26))).join(''));
const appCss = prose(20_000);
const errors: unknown[] = [];
const logs: string[] = [];

let app: FastifyInstance | undefined;
let port = 0;

before(async () => {
  writeTree(www, {
    'index.html': Buffer.from('<!doctype html><h1>home</h1>'),
    'plain.txt': Buffer.from('plain text\n'),
    'ten-k.txt': tenK,
    'sub/index.html': Buffer.from('<p>sub</p>'),
    'bad.zip': Buffer.from('not a zip archive, named like one'),
    'site.zip': makeZip({
      entries: [
        { name: 'index.html', data: Buffer.from('<p>zip home</p>') },
        { name: 'css/app.css', data: appCss },
      ],
    }),
  });
  app = Fastify({ logger: { level: 'error', stream: { write: (line: string) => void logs.push(line) } } });
  app.addHook('onRequest', async (_request, reply) => {
    reply.header('x-hook', 'on');
  });
  app.get('/api', () => Promise.resolve({ ok: true }));
  app.setNotFoundHandler((request, reply) => void reply.code(404).type('text/plain').send(`fastify not found: ${request.url}`));
  // At the root, with a callback mount; errors go to request.log (the default).
  await app.register(vfservePlugin, {
    headers: { 'x-vhost': 'on' },
    mounts: [
      { mountpoint: '/', origin: www },
      { mountpoint: '/echo', origin: 'callback://echo' },
      { mountpoint: '/boom', origin: 'callback://boom' },
    ],
    callbacks: {
      boom: () => Promise.reject(new Error('callback failed')),
      // Reads the raw body: the plugin keeps Fastify's parsers away from it.
      echo: (req, res, target) => {
        let body = '';
        req.setEncoding('utf8');
        req.on('data', (c: string) => (body += c));
        req.on('end', () => {
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify({ method: req.method, remainder: target.remainder, mountpoint: target.mountpoint, body }));
        });
      },
    },
  });
  // Under a prefix, serving an archive, with its own 404 page and error hook.
  await app.register(defaultExport, {
    prefix: '/static',
    mounts: [{ mountpoint: '/', origin: join(www, 'site.zip'), cacheMaxAge: 60, cacheReuse: true }],
    fallthrough: false,
    onError: (err) => errors.push(err),
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  port = (app.server.address() as AddressInfo).port;
});

after(async () => {
  await app?.close();
  rmTree(dir);
});

const hdr = (r: RawResponse, name: string): string | undefined => {
  const v = r.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
};

function post(path: string, body: string, type: string): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    import('node:http').then(({ request }) => {
      const req = request(
        { host: '127.0.0.1', port, path, method: 'POST', agent: false, headers: { 'content-type': type, 'content-length': Buffer.byteLength(body) } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        },
      );
      req.setTimeout(10_000, () => req.destroy(new Error('timed out')));
      req.on('error', reject);
      req.end(body);
    }, reject);
  });
}

describe('vfservePlugin at the root', () => {
  it('serves a file with the headers Fastify hooks set', async () => {
    const r = await get(port, '/plain.txt');
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'plain text\n');
    assert.equal(hdr(r, 'content-type'), 'text/plain; charset=utf-8');
    assert.equal(hdr(r, 'x-hook'), 'on', 'an onRequest hook header');
    assert.equal(hdr(r, 'x-vhost'), 'on');
  });
  it('leaves the app routes alone', async () => {
    const r = await get(port, '/api');
    assert.deepEqual(JSON.parse(r.body.toString()), { ok: true });
  });
  it('passes a deflated zip entry through to gzip clients', async () => {
    const r = await get(port, '/site.zip/css/app.css', { 'accept-encoding': 'gzip' });
    assert.equal(r.status, 200);
    assert.equal(hdr(r, 'content-encoding'), 'gzip');
    assert.equal(hdr(r, 'vary'), 'Accept-Encoding');
    assert.equal(Number(hdr(r, 'content-length')), r.body.length);
    assert.deepEqual(gunzipSync(r.body), appCss);
  });
  it('answers a range with 206, HEAD without a body, and If-None-Match with 304', async () => {
    const r = await get(port, '/ten-k.txt', { range: 'bytes=-5' });
    assert.equal(r.status, 206);
    assert.equal(hdr(r, 'content-range'), 'bytes 9995-9999/10000');
    assert.deepEqual(r.body, tenK.subarray(9995));
    const head = await get(port, '/ten-k.txt', {}, 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(hdr(head, 'content-length'), '10000');
    assert.equal(head.body.length, 0);
    const etag = hdr(head, 'etag')!;
    const nm = await get(port, '/ten-k.txt', { 'if-none-match': etag });
    assert.equal(nm.status, 304);
    assert.equal(hdr(nm, 'etag'), etag);
    assert.equal(nm.body.length, 0);
  });
  it('redirects a directory without its slash', async () => {
    const r = await get(port, '/sub?x=1');
    assert.equal(r.status, 301);
    assert.equal(hdr(r, 'location'), '/sub/?x=1');
    assert.equal((await get(port, '/sub/')).body.toString(), '<p>sub</p>');
  });
  it("sends 404s to Fastify's not-found handler", async () => {
    for (const path of ['/missing.txt', '/sub/missing/', '/.env']) {
      const r = await get(port, path);
      assert.equal(r.status, 404, path);
      assert.equal(r.body.toString(), `fastify not found: ${path}`);
    }
  });
  it('hands callback mounts any method and the unread request body', async () => {
    const r = await post('/echo/a/b?q=1', '{"hello":"world"}', 'application/json');
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body.toString()), { method: 'POST', remainder: '/a/b', mountpoint: '/echo', body: '{"hello":"world"}' });
    const odd = await post('/echo', 'raw bytes', 'application/x-unknown');
    assert.equal((JSON.parse(odd.body.toString()) as { body: unknown }).body, 'raw bytes');
  });
  it('answers other methods on file mounts with 405 and Allow', async () => {
    const r = await post('/plain.txt', 'x', 'text/plain');
    assert.equal(r.status, 405);
    assert.equal(hdr(r, 'allow'), 'GET, HEAD');
  });
  it('answers a corrupt archive with 500, echoing nothing, and logs through request.log', async () => {
    logs.length = 0;
    const r = await get(port, '/bad.zip/x.html');
    assert.equal(r.status, 500);
    assert.doesNotMatch(r.body.toString(), /zip|central|www/i);
    assert.equal(logs.length, 1);
    assert.equal((JSON.parse(logs[0]!) as { msg: unknown }).msg, 'vfserve');
  });
  it('answers 500 when a callback handler fails, and keeps serving', async () => {
    logs.length = 0;
    const r = await get(port, '/boom');
    assert.equal(r.status, 500);
    assert.equal(r.body.length, 0);
    assert.equal(logs.length, 1);
    assert.equal((JSON.parse(logs[0]!) as { err: { message: unknown } }).err.message, 'callback failed');
    assert.equal((await get(port, '/plain.txt')).status, 200);
  });
});

describe("vfservePlugin with { prefix: '/static' }", () => {
  it('serves below the prefix', async () => {
    const r = await get(port, '/static/index.html');
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), '<p>zip home</p>');
    assert.equal(hdr(r, 'cache-control'), 'private, max-age=60');
    assert.equal((await get(port, '/static/')).body.toString(), '<p>zip home</p>');
  });
  it('redirects the bare prefix and directories, keeping the prefix', async () => {
    for (const [path, location] of [
      ['/static', '/static/'],
      ['/static?v=2', '/static/?v=2'],
      ['/static/css', '/static/css/'],
    ]) {
      const r = await get(port, path!);
      assert.equal(r.status, 301, path);
      assert.equal(hdr(r, 'location'), location, path);
    }
  });
  it('passes the zip entry through, and ranges it in gzip bytes', async () => {
    const whole = await get(port, '/static/css/app.css', { 'accept-encoding': 'gzip' });
    assert.equal(hdr(whole, 'content-encoding'), 'gzip');
    assert.deepEqual(gunzipSync(whole.body), appCss);
    const r = await get(port, '/static/css/app.css', { 'accept-encoding': 'gzip', range: 'bytes=0-9' });
    assert.equal(r.status, 206);
    assert.equal(hdr(r, 'content-range'), `bytes 0-9/${whole.body.length}`);
    assert.deepEqual(r.body, whole.body.subarray(0, 10));
  });
  it('sends its own 404 page with fallthrough: false', async () => {
    const r = await get(port, '/static/missing.html');
    assert.equal(r.status, 404);
    assert.match(r.body.toString(), /404 Not Found/);
    assert.equal(hdr(r, 'x-hook'), 'on');
  });
});

describe('plugin setup', () => {
  it('rejects bad options when the app boots', async () => {
    const bad = Fastify();
    await assert.rejects(async () => {
      await bad.register(vfservePlugin, { mounts: [{ mountpoint: '/c', origin: 'callback://nobody' }] });
    }, /no handler registered for callback:\/\/nobody/);
    await bad.close().catch(() => {});
  });
  it('never loads fastify at run time (types only)', () => {
    const js = readFileSync(join(root, 'dist', 'adapters', 'fastify.js'), 'utf8');
    assert.doesNotMatch(js, /from ['"]fastify['"]|import\(['"]fastify|require\(['"]fastify/);
    assert.match(js, /export default vfservePlugin/);
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
      exports: Record<string, unknown>;
      dependencies?: Record<string, string>;
      peerDependenciesMeta?: Record<string, { optional?: boolean }>;
    };
    assert.deepEqual(pkg.exports['./fastify'], { types: './dist/adapters/fastify.d.ts', default: './dist/adapters/fastify.js' });
    assert.equal(pkg.dependencies?.fastify, undefined);
    assert.equal(pkg.peerDependenciesMeta?.fastify?.optional, true);
  });
  it('serves through Fastify over HTTP/2 (h2c) as well', async () => {
    const h2 = Fastify({ http2: true });
    await h2.register(vfservePlugin, { mounts: [{ mountpoint: '/', origin: www }] });
    await h2.listen({ port: 0, host: '127.0.0.1' });
    const session = connect(`http://127.0.0.1:${(h2.server.address() as AddressInfo).port}`);
    session.on('error', () => {});
    try {
      const r = await new Promise<{ headers: IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
        const stream = session.request({ ':path': '/site.zip/css/app.css', 'accept-encoding': 'gzip' });
        stream.setTimeout(10_000, () => {
          stream.close(constants.NGHTTP2_CANCEL);
          reject(new Error('timed out'));
        });
        let headers: IncomingHttpHeaders = {};
        const chunks: Buffer[] = [];
        stream.on('response', (h) => (headers = h));
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => resolve({ headers, body: Buffer.concat(chunks) }));
        stream.on('error', reject);
      });
      assert.equal(r.headers[':status'], 200);
      assert.equal(r.headers['content-encoding'], 'gzip');
      assert.deepEqual(gunzipSync(r.body), appCss);
    } finally {
      session.close();
      await h2.close();
    }
  });
});

describe('fastify: the 404 document is decided in the core', () => {
  // The plugin used to ignore notFoundDocument; now the engine serves it, so every adapter has it.
  it('serves notFoundDocument with status 404, no validators and no-store, and the built-in page when it is missing', async () => {
    const site = join(dir, 'doc404');
    writeTree(site, { 'index.html': Buffer.from('<p>home</p>'), 'missing.html': Buffer.from('<p>custom not found</p>') });
    const doc = Fastify();
    await doc.register(vfservePlugin, { mounts: [{ mountpoint: '/', origin: site }], fallthrough: false, notFoundDocument: '/missing.html' });
    const broken = Fastify();
    await broken.register(vfservePlugin, { mounts: [{ mountpoint: '/', origin: site }], fallthrough: false, notFoundDocument: '/nowhere.html' });
    try {
      await doc.listen({ port: 0, host: '127.0.0.1' });
      await broken.listen({ port: 0, host: '127.0.0.1' });
      const r = await get((doc.server.address() as AddressInfo).port, '/no/such/page');
      assert.equal(r.status, 404);
      assert.equal(r.body.toString(), '<p>custom not found</p>');
      assert.equal(hdr(r, 'cache-control'), 'no-store');
      assert.equal(hdr(r, 'etag'), undefined);
      assert.equal(hdr(r, 'last-modified'), undefined);
      const head = await get((doc.server.address() as AddressInfo).port, '/no/such/page', {}, 'HEAD');
      assert.equal(head.status, 404);
      assert.equal(head.body.length, 0);
      const fallback = await get((broken.server.address() as AddressInfo).port, '/no/such/page');
      assert.equal(fallback.status, 404);
      assert.match(fallback.body.toString(), /404 Not Found/);
    } finally {
      await doc.close();
      await broken.close();
    }
  });
});
