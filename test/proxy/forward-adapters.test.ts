/**
 * Proxy mounts through every way vfserve is run: an HTTP/2 client (node:http2 compatibility API over
 * TLS) in front of a chunked HTTP/1 upstream, Express, the Fastify plugin, and the lwsws-style server
 * configured in JSON with kebab-case keys.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect, constants, createSecureServer, type IncomingHttpHeaders } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import express from 'express';
import Fastify from 'fastify';
import { vfservePlugin } from '../../src/adapters/fastify.js';
import { createHandler } from '../../src/index.js';
import { parseConfigObjects } from '../../src/server/config.js';
import { startServer } from '../../src/server/server.js';
import { fixture } from '../helpers/fixtures.js';
import { closeServer, echo, send, upstream, type Upstream } from '../helpers/proxy.js';

let up: Upstream;
before(async () => {
  up = await upstream((req, res, seen) => {
    if (req.url?.endsWith('/chunked') === true) {
      // No Content-Length: node frames this chunked, with hop-by-hop fields HTTP/2 forbids.
      res.writeHead(200, { 'content-type': 'text/plain', connection: 'keep-alive', 'keep-alive': 'timeout=5', trailer: 'X-Sum' });
      res.write('chunk one|');
      setTimeout(() => {
        res.addTrailers({ 'x-sum': 'ok' });
        res.end('chunk two');
      }, 20);
    } else if (req.url?.endsWith('/redirect') === true) {
      res.writeHead(302, { location: '/up/next', 'content-length': '0' });
      res.end();
    } else if (req.url?.endsWith('/never') === true) {
      // Holds the head back: only the read timeout ends this.
    } else echo(req, res, seen);
  });
});
after(() => up.close());

describe('proxy: HTTP/2 client, HTTP/1 chunked upstream', () => {
  it('relays the body intact with no transfer-encoding or connection header, and the trailers', async () => {
    const tls = { key: readFileSync(fixture('tls', 'localhost.key')), cert: readFileSync(fixture('tls', 'localhost.crt')) };
    const errors: unknown[] = [];
    const handler = createHandler({
      mounts: [{ mountpoint: '/p', origin: `http://127.0.0.1:${up.port}/up`, headers: { connection: 'close', 'x-mount': 'on' } }],
      onError: (e) => errors.push(e),
    });
    const server = createSecureServer({ ...tls, allowHTTP1: true }, handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const session = connect(`https://127.0.0.1:${(server.address() as AddressInfo).port}`, { ca: tls.cert });
    try {
      const got = await new Promise<{ headers: IncomingHttpHeaders; body: string; trailers: IncomingHttpHeaders }>((resolve, reject) => {
        const stream = session.request({ ':path': '/p/chunked', te: 'trailers' });
        let headers: IncomingHttpHeaders = {};
        let trailers: IncomingHttpHeaders = {};
        let body = '';
        stream.on('response', (h) => (headers = h));
        stream.on('trailers', (t: IncomingHttpHeaders) => (trailers = t));
        stream.setEncoding('utf8');
        stream.on('data', (c: string) => (body += c));
        stream.on('end', () => resolve({ headers, body, trailers }));
        stream.on('error', reject);
        stream.end();
      });
      assert.equal(got.headers[':status'], 200);
      assert.equal(got.body, 'chunk one|chunk two');
      for (const name of ['transfer-encoding', 'connection', 'keep-alive', 'proxy-connection', 'upgrade'])
        assert.equal(got.headers[name], undefined, `${name} on an HTTP/2 response`);
      assert.equal(got.headers['x-mount'], 'on');
      assert.equal(got.trailers['x-sum'], 'ok');
      // The HTTP/2 request reached the upstream as HTTP/1.1 with Via naming version 2.
      assert.match(String(up.seen.at(-1)!.headers.via), /^2 vfserve-/);
      assert.equal(up.seen.at(-1)!.headers['x-forwarded-proto'], 'https');
      // A POST body over HTTP/2 streams upstream too.
      const posted = await new Promise<string>((resolve, reject) => {
        const stream = session.request({ ':path': '/p/upload', ':method': 'POST' });
        let body = '';
        stream.setEncoding('utf8');
        stream.on('data', (c: string) => (body += c));
        stream.on('end', () => resolve(body));
        stream.on('error', reject);
        stream.write('h2 ');
        stream.end('body');
      });
      assert.equal((JSON.parse(posted) as { length: number }).length, 7);
      assert.equal(up.seen.at(-1)!.body.toString(), 'h2 body');
      assert.deepEqual(errors, []);
    } finally {
      session.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await handler.close();
    }
  });

  it('cuts an HTTP/2 stream with RST_STREAM INTERNAL_ERROR when the upstream dies mid-body', async () => {
    const dying = await upstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('partial');
      setTimeout(() => res.socket?.destroy(), 30);
    });
    const tls = { key: readFileSync(fixture('tls', 'localhost.key')), cert: readFileSync(fixture('tls', 'localhost.crt')) };
    const handler = createHandler({ mounts: [{ mountpoint: '/p', origin: `http://127.0.0.1:${dying.port}` }], onError: () => undefined });
    const server = createSecureServer(tls, handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const session = connect(`https://127.0.0.1:${(server.address() as AddressInfo).port}`, { ca: tls.cert });
    try {
      const code = await new Promise<number>((resolve) => {
        const stream = session.request({ ':path': '/p/x' });
        stream.resume();
        stream.on('error', () => undefined);
        stream.on('close', () => resolve(stream.rstCode));
      });
      assert.equal(code, constants.NGHTTP2_INTERNAL_ERROR);
    } finally {
      session.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await handler.close();
      await dying.close();
    }
  });
});

describe('proxy: through Express', () => {
  it('forwards under app.use(prefix), rewriting Locations onto the prefix too', async () => {
    const handler = createHandler({ mounts: [{ mountpoint: '/p', origin: `http://127.0.0.1:${up.port}/up` }], onError: () => undefined });
    const app = express();
    app.use('/api', handler);
    const server = app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      const r = await send(port, '/api/p/x?y=1', { method: 'POST', body: Buffer.from('express body') });
      assert.equal(r.status, 200);
      assert.equal(up.seen.at(-1)!.url, '/up/x?y=1');
      assert.equal(up.seen.at(-1)!.body.toString(), 'express body');
      const red = await send(port, '/api/p/redirect');
      assert.equal(red.status, 302);
      assert.equal(red.headers.location, '/api/p/next');
    } finally {
      await closeServer(server);
      await handler.close();
    }
  });
});

describe('proxy: through the Fastify plugin', () => {
  it('forwards under the register prefix, any method, the body unread by Fastify', async () => {
    const app = Fastify();
    await app.register(vfservePlugin, { prefix: '/f', mounts: [{ mountpoint: '/p', origin: `http://127.0.0.1:${up.port}/up` }], onError: () => undefined });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const port = (app.server.address() as AddressInfo).port;
    try {
      const r = await send(port, '/f/p/x', { method: 'PATCH', body: Buffer.from('{"a":1}'), headers: { 'content-type': 'application/json' } });
      assert.equal(r.status, 200);
      assert.equal(up.seen.at(-1)!.method, 'PATCH');
      assert.equal(up.seen.at(-1)!.url, '/up/x');
      assert.equal(up.seen.at(-1)!.body.toString(), '{"a":1}');
      const red = await send(port, '/f/p/redirect');
      assert.equal(red.headers.location, '/f/p/next');
    } finally {
      await app.close();
    }
  });
});

describe('proxy: through the server, JSON config', () => {
  it('takes kebab-case proxy keys: proxy-read-timeout "0.5" gives 504, proxy-headers "lws" the allowlist', async () => {
    const config = parseConfigObjects([
      {
        file: '/test/proxy.json',
        json: {
          vhosts: [
            {
              name: 'localhost',
              port: 0,
              interface: '127.0.0.1',
              mounts: [
                { mountpoint: '/p', origin: `http://127.0.0.1:${up.port}/up`, 'proxy-read-timeout': '0.5' },
                { mountpoint: '/lws', origin: `http://127.0.0.1:${up.port}/up`, 'proxy-headers': 'lws', 'proxy-max-concurrent': 4 },
              ],
            },
          ],
        },
      },
    ]);
    const errors: unknown[] = [];
    const server = await startServer(config, { onError: (e) => errors.push(e) });
    try {
      const port = server.listeners[0]!.port;
      const ok = await send(port, '/p/x');
      assert.equal(ok.status, 200);
      const t0 = Date.now();
      const slow = await send(port, '/p/never');
      assert.equal(slow.status, 504);
      assert.ok(Date.now() - t0 < 3000);
      await send(port, '/lws/x', { headers: { authorization: 'Bearer t', cookie: 'c=1' } });
      const h = up.seen.at(-1)!.headers;
      assert.equal(h.authorization, undefined);
      assert.equal(h.cookie, 'c=1');
      assert.equal(h.host, `127.0.0.1:${port}`);
      assert.equal(errors.length, 1);
    } finally {
      await server.close(1000);
    }
  });
});
