/**
 * createHandler as a node:http2 compatibility-API listener: h2c
 * (`http2.createServer`) and TLS with HTTP/1.1 fallback
 * (`http2.createSecureServer({ allowHTTP1: true })`), driven by the
 * node:http2 client on 127.0.0.1 with raw `:path`s.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import {
  connect,
  constants,
  createSecureServer,
  createServer,
  type ClientHttp2Session,
  type Http2Server,
  type Http2SecureServer,
  type IncomingHttpHeaders,
} from 'node:http2';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { createHandler, Vfs, type CallbackTarget, type FileOps, type FopFd } from '../../src/index.js';
import { fixture, noise, prose, rmTree, tmpDir, writeTree } from '../helpers/fixtures.js';
import { makeZip } from '../helpers/zip-writer.js';

const dir = tmpDir('vfserve-h2-');
const www = join(dir, 'www');
const tenK = Buffer.from(Array.from({ length: 10_000 }, (_, i) => String.fromCharCode(97 + (i % 26))).join(''));
const appCss = prose(20_000);
const big = noise(8 * 1024 * 1024, 7);
// Above the inflate cache's 1 MiB entry limit, so it streams and fails only at its end.
const badCrc = prose(1_500_000);

// A self-signed certificate for 127.0.0.1/localhost, committed as a test fixture (see test/fixtures/README.md).
const tls = { key: readFileSync(fixture('tls', 'localhost.key')), cert: readFileSync(fixture('tls', 'localhost.crt')) };

// Counts the file handles the engine holds (entry and file handles; not the cached archive).
let openHandles = 0;
const inner = new Vfs();
const vfs: FileOps & { stat: Vfs['stat'] } = {
  stat: (p) => inner.stat(p),
  async open(p: string, flags = 0): Promise<FopFd> {
    const fd = await inner.open(p, flags);
    openHandles++;
    let closed = false;
    const closeFd = fd.close.bind(fd);
    return Object.assign(fd, {
      close: async () => {
        if (!closed) openHandles--;
        closed = true;
        return closeFd();
      },
    });
  },
};

const errors: unknown[] = [];
const handler = createHandler({
  vfs,
  headers: { 'x-vhost': 'on' },
  mounts: [
    { mountpoint: '/', origin: www },
    // HTTP/2 forbids connection-specific headers; a mount may still configure them for HTTP/1.
    { mountpoint: '/conn', origin: www, headers: { connection: 'close', 'keep-alive': 'timeout=5', 'proxy-connection': 'keep-alive', upgrade: 'h2c' } },
    { mountpoint: '/site', origin: join(www, 'site.zip') },
    { mountpoint: '/cb', origin: 'callback://echo' },
    { mountpoint: '/boom', origin: 'callback://boom' },
  ],
  callbacks: {
    echo: (req, res, target: CallbackTarget) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ method: req.method, version: req.httpVersion, remainder: target.remainder }));
    },
    boom: () => {
      throw new Error('callback failed');
    },
  },
  onError: (err) => errors.push(err),
});

before(() => {
  writeTree(www, {
    'index.html': Buffer.from('<!doctype html><h1>home</h1>'),
    'plain.txt': Buffer.from('plain text\n'),
    'ten-k.txt': tenK,
    'sub/index.html': Buffer.from('<p>sub</p>'),
    'site.zip': makeZip({
      entries: [
        { name: 'index.html', data: Buffer.from('<p>zip home</p>') },
        { name: 'css/app.css', data: appCss },
        { name: 'big.png', data: big, method: 0 },
        // Both headers agree on a wrong CRC: the error surfaces only when the inflated entry completes.
        { name: 'bad-crc.txt', data: badCrc, cd: { crc: 0x12345678 }, local: { crc: 0x12345678 } },
      ],
    }),
  });
});

after(() => rmTree(dir));

interface H2Response {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

function h2request(session: ClientHttp2Session, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<H2Response> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': method, ':path': path, ...headers });
    stream.setTimeout(10_000, () => {
      stream.close(constants.NGHTTP2_CANCEL);
      reject(new Error(`${method} ${path} timed out`));
    });
    let head: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => (head = h));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve({ status: Number(head[':status']), headers: head, body: Buffer.concat(chunks) }));
    stream.on('error', reject);
    stream.end();
  });
}

const CONNECTION_SPECIFIC = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade'];

async function waitFor(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 100 && !cond(); i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(cond(), what);
}

const servers: { name: string; start: () => Http2Server | Http2SecureServer; url: string; client: Parameters<typeof connect>[1] }[] = [
  { name: 'h2c: http2.createServer(handler)', start: () => createServer(handler), url: 'http', client: {} },
  {
    name: 'TLS: http2.createSecureServer({ allowHTTP1: true }, handler)',
    start: () => createSecureServer({ key: tls.key, cert: tls.cert, allowHTTP1: true }, handler),
    url: 'https',
    client: { rejectUnauthorized: false },
  },
];

for (const kind of servers) {
  describe(kind.name, () => {
    let server: Http2Server | Http2SecureServer;
    let port = 0;
    let session: ClientHttp2Session;
    const connectClient = (): ClientHttp2Session => {
      const s = connect(`${kind.url}://127.0.0.1:${port}`, kind.client);
      s.on('error', () => {}); // surfaced through the streams
      return s;
    };

    before(async () => {
      server = kind.start();
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      port = (server.address() as AddressInfo).port;
      session = connectClient();
    });
    after(async () => {
      session.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Sessions a failed test left open would keep close() waiting.
        setTimeout(resolve, 2000).unref();
      });
    });

    it('serves a file: 200, the body, no connection-specific headers', async () => {
      const r = await h2request(session, '/plain.txt');
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), 'plain text\n');
      assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8');
      assert.equal(r.headers['content-length'], '11');
      assert.equal(r.headers['x-vhost'], 'on');
      for (const name of CONNECTION_SPECIFIC) assert.equal(r.headers[name], undefined, name);
    });

    it('drops the connection-specific headers a mount configures (node:http2 throws on them)', async () => {
      for (const [path, headers, method, status] of [
        ['/conn/plain.txt', {}, 'GET', 200],
        ['/conn/ten-k.txt', { range: 'bytes=0-0' }, 'GET', 206],
        ['/conn/ten-k.txt', {}, 'HEAD', 200],
        ['/conn/missing', {}, 'GET', 404],
        ['/conn/sub', {}, 'GET', 301],
        ['/conn/plain.txt', {}, 'PUT', 405],
      ] as const) {
        const r = await h2request(session, path, headers, method);
        assert.equal(r.status, status, `${method} ${path}`);
        assert.equal(r.headers['x-vhost'], 'on');
        for (const name of CONNECTION_SPECIFIC) assert.equal(r.headers[name], undefined, `${path}: ${name}`);
      }
      assert.equal((await h2request(session, '/plain.txt')).status, 200, 'the server keeps serving');
    });

    it('serves a directory default and the 301 that adds its slash', async () => {
      assert.equal((await h2request(session, '/')).body.toString(), '<!doctype html><h1>home</h1>');
      const r = await h2request(session, '/sub?x=1');
      assert.equal(r.status, 301);
      assert.equal(r.headers.location, '/sub/?x=1');
      for (const name of CONNECTION_SPECIFIC) assert.equal(r.headers[name], undefined, name);
      assert.equal((await h2request(session, '/sub/')).body.toString(), '<p>sub</p>');
    });

    it('answers a range with 206 and the bytes', async () => {
      const r = await h2request(session, '/ten-k.txt', { range: 'bytes=100-199' });
      assert.equal(r.status, 206);
      assert.equal(r.headers['content-range'], 'bytes 100-199/10000');
      assert.equal(r.headers['content-length'], '100');
      assert.deepEqual(r.body, tenK.subarray(100, 200));
    });

    it('passes a deflated zip entry through to a gzip client', async () => {
      const r = await h2request(session, '/site/css/app.css', { 'accept-encoding': 'gzip' });
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-encoding'], 'gzip');
      assert.equal(r.headers.vary, 'Accept-Encoding');
      assert.equal(Number(r.headers['content-length']), r.body.length);
      assert.deepEqual(r.body.subarray(0, 3), Buffer.from([0x1f, 0x8b, 0x08]));
      assert.deepEqual(gunzipSync(r.body), appCss);
      const id = await h2request(session, '/site/css/app.css');
      assert.equal(id.headers['content-encoding'], undefined);
      assert.deepEqual(id.body, appCss);
    });

    it('answers HEAD with the GET headers and no body', async () => {
      const r = await h2request(session, '/ten-k.txt', {}, 'HEAD');
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-length'], '10000');
      assert.equal(r.body.length, 0);
      for (const name of CONNECTION_SPECIFIC) assert.equal(r.headers[name], undefined, name);
    });

    it('answers a matching If-None-Match with 304 and no body', async () => {
      const first = await h2request(session, '/site/index.html');
      const etag = String(first.headers.etag);
      assert.match(etag, /^"/);
      const r = await h2request(session, '/site/index.html', { 'if-none-match': etag });
      assert.equal(r.status, 304);
      assert.equal(r.headers.etag, etag);
      assert.equal(r.body.length, 0);
      for (const name of CONNECTION_SPECIFIC) assert.equal(r.headers[name], undefined, name);
    });

    it('answers 404 for a missing file, and 400 for a bad path', async () => {
      const r = await h2request(session, '/missing.txt');
      assert.equal(r.status, 404);
      assert.match(String(r.headers['content-type']), /^text\/html/);
      assert.match(r.body.toString(), /404 Not Found/);
      assert.equal((await h2request(session, '/a%00b')).status, 400);
    });

    it('hands callback mounts the Http2ServerRequest, and answers 500 when one throws', async () => {
      const r = await h2request(session, '/cb/a?q', {}, 'POST');
      assert.deepEqual(JSON.parse(r.body.toString()), { method: 'POST', version: '2.0', remainder: '/a' });
      errors.length = 0;
      assert.equal((await h2request(session, '/boom')).status, 500);
      assert.equal(errors.length, 1);
      assert.equal((await h2request(session, '/plain.txt')).status, 200);
    });

    it('resets the stream (INTERNAL_ERROR) when the body fails after the headers', async () => {
      errors.length = 0;
      const outcome = await new Promise<{ status: number; bytes: number; ended: boolean; rstCode: number | undefined }>((resolve) => {
        const stream = session.request({ ':path': '/site/bad-crc.txt' });
        let status = 0;
        let bytes = 0;
        let ended = false;
        stream.setTimeout(10_000, () => stream.close(constants.NGHTTP2_CANCEL));
        stream.on('response', (h) => (status = Number(h[':status'])));
        stream.on('data', (c: Buffer) => (bytes += c.length));
        stream.on('end', () => (ended = true));
        stream.on('error', () => {});
        stream.on('close', () => resolve({ status, bytes, ended, rstCode: stream.rstCode }));
        stream.end();
      });
      assert.equal(outcome.status, 200, 'the headers went out before the CRC check failed');
      assert.ok(outcome.bytes > 0 && outcome.bytes < badCrc.length, `${outcome.bytes} bytes`);
      assert.equal(outcome.ended, false, 'a truncated body must not look complete');
      assert.equal(outcome.rstCode, constants.NGHTTP2_INTERNAL_ERROR);
      assert.equal(errors.length, 1, 'the error is reported');
      await waitFor(() => openHandles === 0, `${openHandles} handles still open`);
      assert.equal((await h2request(session, '/plain.txt')).status, 200, 'the session keeps serving');
    });

    it('survives a client reset mid-stream, releases the handle and keeps serving', async () => {
      let before = 0;
      await new Promise<void>((resolve, reject) => {
        const stream = session.request({ ':path': '/site/big.png' });
        stream.setTimeout(10_000, () => reject(new Error('no data')));
        stream.once('data', () => {
          before = openHandles;
          stream.close(constants.NGHTTP2_CANCEL);
        });
        stream.on('error', () => {});
        stream.on('close', () => resolve());
        stream.end();
      });
      assert.equal(before, 1, 'the entry was open while streaming');
      await waitFor(() => openHandles === 0, `${openHandles} handles still open after the reset`);
      const again = await h2request(session, '/site/big.png', { range: 'bytes=0-9' });
      assert.deepEqual(again.body, big.subarray(0, 10));
      const fresh = connectClient();
      try {
        assert.equal((await h2request(fresh, '/plain.txt')).status, 200, 'new sessions are served');
      } finally {
        fresh.close();
      }
    });

    if (kind.url === 'https') {
      it('serves HTTP/1.1 clients on the same port (allowHTTP1), with the configured HTTP/1 headers', async () => {
        const r = await new Promise<{ status: number; version: string; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
          const req = httpsRequest({ host: '127.0.0.1', port, path: '/conn/plain.txt', rejectUnauthorized: false, agent: false }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (body += c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, version: res.httpVersion, headers: res.headers, body }));
          });
          req.setTimeout(10_000, () => req.destroy(new Error('timed out')));
          req.on('error', reject);
          req.end();
        });
        assert.equal(r.status, 200);
        assert.equal(r.version, '1.1');
        assert.equal(r.body, 'plain text\n');
        assert.equal(r.headers['keep-alive'], 'timeout=5', 'HTTP/1 responses keep the configured header');
      });
    }
  });
}
