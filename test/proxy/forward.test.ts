/**
 * Reverse-proxy forwarding end to end: createHandler behind node:http, real upstreams on 127.0.0.1
 * (and a unix socket, and TLS), requests by node:http or raw sockets. Go's reverseproxy_test.go
 * cases, lws's proxy cases, timeouts, retries and the concurrency cap.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { VIA_PSEUDONYM } from '../../src/proxy/headers.js';
import { fixture, rmTree, tmpDir } from '../helpers/fixtures.js';
import { closeServer, echo, front, raw, send, statusOf, upstream, within, type Front, type Upstream } from '../helpers/proxy.js';

const dir = tmpDir('vfserve-proxy-');
after(() => rmTree(dir));

const LWS_503 =
  '<h1>Service Temporarily Unavailable</h1>The server is temporarily unable to service your request due to maintenance downtime or capacity problems. Please try again later.';

function json(body: Buffer): { url: string; headers: IncomingHttpHeaders; length: number; sha256: string; method: string } {
  return JSON.parse(body.toString()) as { url: string; headers: IncomingHttpHeaders; length: number; sha256: string; method: string };
}

/** A TCP server that accepts and reads but never answers; its sockets are kept to be destroyed. */
async function silent(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: NetServer = createNetServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.resume();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A port that had a listener a moment ago and has none now: connecting to it is refused. */
async function closedPort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

describe('proxy: headers end to end (Go reverseproxy_test.go)', () => {
  let up: Upstream;
  let fr: Front;
  let inbound: { before: IncomingHttpHeaders; raw: string[]; after?: IncomingHttpHeaders } | undefined;
  before(async () => {
    up = await upstream((req, res, seen) => {
      if (req.url?.includes('hop') === true) {
        // Response-side hop-by-hop and Connection-named fields, which must not reach the client.
        res.setHeader('connection', 'X-Up-Hop, close');
        res.setHeader('x-up-hop', 'secret');
        res.setHeader('keep-alive', 'timeout=9');
        res.setHeader('proxy-connection', 'keep-alive');
        res.setHeader('x-up-kept', 'yes');
        res.setHeader('cache-control', 'max-age=60');
      }
      echo(req, res, seen);
    });
    fr = await front(
      {
        headers: { 'x-vhost': 'on' },
        mounts: [
          { mountpoint: '/p', origin: `http://127.0.0.1:${up.port}/up`, headers: { 'cache-control': 'no-store', 'x-frame-options': 'DENY' } },
          { mountpoint: '/trusting', origin: `http://127.0.0.1:${up.port}/up`, proxyTrusted: '127.0.0.1' },
          { mountpoint: '/kept-host', origin: `http://127.0.0.1:${up.port}/up`, proxyPreserveHost: true },
          { mountpoint: '/lws', origin: `http://127.0.0.1:${up.port}/up`, proxyHeaders: 'lws' },
        ],
      },
      (h) => (req, res) => {
        // The test's own view of the inbound request, before and after the handler ran.
        inbound = { before: structuredClone(req.headers), raw: [...req.rawHeaders] };
        const mine = inbound;
        res.on('finish', () => (mine.after = structuredClone(req.headers)));
        h(req, res);
      },
    );
  });
  after(async () => {
    await fr.close();
    await up.close();
  });

  it('strips hop-by-hop and Connection-named fields on the request and the response, and leaves the inbound request unmodified', async () => {
    const r = await send(fr.port, '/p/hop', {
      headers: {
        connection: 'keep-alive, X-Hop, X-Forwarded-Proto',
        'x-hop': 'drop me',
        'keep-alive': 'timeout=5',
        'proxy-connection': 'keep-alive',
        te: 'trailers, deflate',
        'proxy-authorization': 'Basic eA==',
        'x-end-to-end': 'kept',
      },
    });
    assert.equal(r.status, 200);
    const seen = up.seen.at(-1)!;
    assert.equal(seen.url, '/up/hop');
    for (const name of ['x-hop', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'upgrade'])
      assert.equal(seen.headers[name], undefined, `${name} reached the upstream`);
    assert.equal(seen.headers.te, 'trailers');
    assert.equal(seen.headers['x-end-to-end'], 'kept');
    // Nominating X-Forwarded-Proto cannot remove the one the proxy sets.
    assert.equal(seen.headers['x-forwarded-proto'], 'http');
    // The client sees none of the upstream's hop-by-hop or Connection-named fields; configured headers win.
    assert.equal(r.headers['x-up-hop'], undefined);
    assert.equal(r.headers['proxy-connection'], undefined);
    assert.notEqual(r.headers['keep-alive'], 'timeout=9');
    assert.equal(r.headers['x-up-kept'], 'yes');
    assert.equal(r.headers['cache-control'], 'no-store');
    assert.equal(r.headers['x-frame-options'], 'DENY');
    assert.equal(r.headers['x-vhost'], 'on');
    assert.ok(inbound?.after, 'the response finished');
    assert.deepEqual(inbound.after, inbound.before);
    assert.equal(inbound.before['x-hop'], 'drop me');
  });

  it('replaces X-Forwarded-For from an untrusted peer and appends for a trusted one; sets Via, Host and X-Forwarded-Host', async () => {
    await send(fr.port, '/p/xff', { headers: { 'x-forwarded-for': '6.6.6.6', 'x-forwarded-host': 'evil.test', host: 'front.test' } });
    let h = up.seen.at(-1)!.headers;
    assert.equal(h['x-forwarded-for'], '127.0.0.1');
    assert.equal(h['x-forwarded-host'], 'front.test');
    assert.equal(h.host, `127.0.0.1:${up.port}`);
    assert.equal(h.via, `1.1 ${VIA_PSEUDONYM}`);
    await send(fr.port, '/trusting/xff', { headers: { 'x-forwarded-for': '10.1.1.1, 10.2.2.2' } });
    h = up.seen.at(-1)!.headers;
    assert.equal(h['x-forwarded-for'], '10.1.1.1, 10.2.2.2, 127.0.0.1');
    await send(fr.port, '/kept-host/x', { headers: { host: 'front.test:8080' } });
    assert.equal(up.seen.at(-1)!.headers.host, 'front.test:8080');
  });

  it('passes the query untouched and keeps the trailing slash', async () => {
    await send(fr.port, '/p/a/b/?us=er&sta=tic&x=%20y');
    assert.equal(up.seen.at(-1)!.url, '/up/a/b/?us=er&sta=tic&x=%20y');
    await send(fr.port, '/p/?q');
    assert.equal(up.seen.at(-1)!.url, '/up/?q');
  });

  it('redirects the bare mountpoint as lws does', async () => {
    const r = await send(fr.port, '/p?x=1');
    assert.equal(r.status, 301);
    assert.equal(r.headers.location, '/p/?x=1');
  });

  it('proxy-headers "lws": exactly lws allowlists, Host origin-host:listen-port, X-Forwarded-For = peer', async () => {
    const r = await send(fr.port, '/lws/hop', {
      headers: { cookie: 'a=1', 'accept-language': 'fr', authorization: 'Bearer t', range: 'bytes=0-1', 'x-forwarded-for': '6.6.6.6' },
    });
    assert.equal(r.status, 200);
    const h = up.seen.at(-1)!.headers;
    assert.equal(h.cookie, 'a=1');
    assert.equal(h['accept-language'], 'fr');
    assert.equal(h.authorization, undefined);
    assert.equal(h.range, undefined);
    assert.equal(h.via, undefined);
    assert.equal(h['x-forwarded-for'], '127.0.0.1');
    assert.equal(h.host, `127.0.0.1:${fr.port}`);
    // Response allowlist: cache-control and content-type relayed, the rest dropped.
    assert.equal(r.headers['cache-control'], 'max-age=60');
    assert.equal(r.headers['content-type'], 'application/json');
    assert.equal(r.headers['x-up-kept'], undefined);
  });
});

describe('proxy: bodies, trailers, streaming', () => {
  let up: Upstream;
  let fr: Front;
  let secondSent = false;
  let releaseSecond: () => void = () => undefined;
  before(async () => {
    up = await upstream((req, res, seen) => {
      if (req.url === '/trailers') {
        res.writeHead(200, { 'content-type': 'text/plain', trailer: 'X-Sum' });
        res.write('part one, ');
        res.write('part two');
        res.addTrailers({ 'x-sum': 'abc123', 'x-unannounced': 'also' });
        res.end();
      } else if (req.url === '/sse') {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        res.write('data: one\n\n');
        releaseSecond = () => {
          secondSent = true;
          res.end('data: two\n\n');
        };
      } else if (req.url === '/head') {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '11' });
        res.end(req.method === 'HEAD' ? undefined : 'hello world');
      } else if (req.url === '/204') {
        res.writeHead(204, { 'x-empty': '1' });
        res.end();
      } else if (req.url === '/304') {
        res.writeHead(304, { etag: '"e"' });
        res.end();
      } else if (req.url === '/early') {
        res.writeEarlyHints({ link: '</a.css>; rel=preload' });
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('after hints');
      } else if (req.url === '/up/redirect') {
        res.writeHead(302, { location: `http://127.0.0.1:${up.port}/up/next?x=1`, 'content-length': '0' });
        res.end();
      } else echo(req, res, seen);
    });
    fr = await front({
      mounts: [
        { mountpoint: '/p', origin: `http://127.0.0.1:${up.port}` },
        { mountpoint: '/r', origin: `http://127.0.0.1:${up.port}/up` },
      ],
    });
  });
  after(async () => {
    releaseSecond();
    await fr.close();
    await up.close();
  });

  it('streams a 1 MiB POST (Content-Length) and a chunked one, hashed at the upstream', async () => {
    const body = randomBytes(1024 * 1024);
    const sha = createHash('sha256').update(body).digest('hex');
    let r = await send(fr.port, '/p/upload', { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(r.status, 200);
    assert.equal(json(r.body).sha256, sha);
    assert.equal(up.seen.at(-1)!.headers['content-length'], String(body.length));
    r = await send(fr.port, '/p/upload', { method: 'PUT', body, chunked: true });
    assert.equal(r.status, 200);
    assert.equal(json(r.body).sha256, sha);
    const seen = up.seen.at(-1)!;
    assert.equal(seen.headers['transfer-encoding'], 'chunked');
    assert.equal(seen.headers['content-length'], undefined);
  });

  it('sends no body for a request without one, and a bodiless POST as Content-Length: 0', async () => {
    await send(fr.port, '/p/nobody');
    let seen = up.seen.at(-1)!;
    assert.equal(seen.headers['transfer-encoding'], undefined);
    assert.equal(seen.headers['content-length'], undefined);
    await send(fr.port, '/p/nobody', { method: 'POST' });
    seen = up.seen.at(-1)!;
    assert.equal(seen.headers['transfer-encoding'], undefined);
    assert.equal(seen.body.length, 0);
  });

  it('relays trailers, announced with Trailer, on a chunked response', async () => {
    const r = await send(fr.port, '/p/trailers', { headers: { te: 'trailers' } });
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'part one, part two');
    assert.equal(r.headers['transfer-encoding'], 'chunked');
    assert.equal(r.headers.trailer, 'X-Sum');
    assert.equal(r.trailers['x-sum'], 'abc123');
    assert.equal(r.trailers['x-unannounced'], 'also');
  });

  it('lets server-sent events through as they come: the first arrives before the second is sent', async () => {
    const events = await within(
      5000,
      new Promise<string[]>((resolve, reject) => {
        const got: string[] = [];
        const req = request({ host: '127.0.0.1', port: fr.port, path: '/p/sse', agent: false }, (res) => {
          assert.equal(res.headers['content-type'], 'text/event-stream');
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            got.push(`${secondSent ? 'after' : 'before'}:${c}`);
            if (got.length === 1) releaseSecond();
          });
          res.on('end', () => resolve(got));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end();
      }),
      'SSE',
    );
    assert.equal(events[0], 'before:data: one\n\n');
    assert.equal(events.join('').replace(/(before|after):/g, ''), 'data: one\n\ndata: two\n\n');
  });

  it('gives HEAD, 204 and 304 no body, and drops 1xx informational responses', async () => {
    let r = await send(fr.port, '/p/head', { method: 'HEAD' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-length'], '11');
    assert.equal(r.body.length, 0);
    r = await send(fr.port, '/p/204');
    assert.equal(r.status, 204);
    assert.equal(r.headers['x-empty'], '1');
    assert.equal(r.body.length, 0);
    r = await send(fr.port, '/p/304');
    assert.equal(r.status, 304);
    assert.equal(r.headers.etag, '"e"');
    r = await send(fr.port, '/p/early');
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'after hints');
  });

  it('rewrites a Location into the origin onto the mountpoint', async () => {
    const r = await send(fr.port, '/r/redirect');
    assert.equal(up.seen.at(-1)!.url, '/up/redirect');
    assert.equal(r.status, 302);
    assert.equal(r.headers.location, '/r/next?x=1');
  });
});

describe('proxy: cancellation both ways', () => {
  it('a client that goes away aborts its upstream request', async () => {
    let upstreamClosed: () => void = () => undefined;
    const closed = new Promise<void>((resolve) => (upstreamClosed = resolve));
    const up = await upstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first chunk');
      // Never ends: only the proxy's abort closes this response.
      res.on('close', upstreamClosed);
    });
    const fr = await front({ mounts: [{ mountpoint: '/p', origin: `http://127.0.0.1:${up.port}` }] });
    try {
      await new Promise<void>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: fr.port, path: '/p/long', agent: false }, (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        });
        req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? undefined : reject(err)));
        req.end();
      });
      await within(3000, closed, 'the upstream response closing');
      assert.deepEqual(fr.errors, []);
    } finally {
      await fr.close();
      await up.close();
    }
  });

  it('a client that goes away mid-upload aborts the upstream request, with nothing reported and no crash', async () => {
    let upstreamAborted: () => void = () => undefined;
    const aborted = new Promise<void>((resolve) => (upstreamAborted = resolve));
    const up = await upstream();
    // Record the partial upload's fate on the upstream's side.
    up.server.prependListener('request', (req: IncomingMessage) => req.on('close', () => (req.complete ? undefined : upstreamAborted())));
    const fr = await front({ mounts: [{ mountpoint: '/p', origin: `http://127.0.0.1:${up.port}` }] });
    try {
      const req = request({ host: '127.0.0.1', port: fr.port, path: '/p/upload', method: 'POST', agent: false, headers: { 'content-length': '1000000' } });
      req.on('error', () => undefined);
      req.write(Buffer.alloc(64 * 1024, 1));
      setTimeout(() => req.destroy(), 100);
      await within(3000, aborted, 'the upstream request aborting');
      assert.deepEqual(fr.errors, []);
      assert.equal(up.seen.length, 0);
      // The proxy still serves.
      assert.equal((await send(fr.port, '/p/after')).status, 200);
    } finally {
      await fr.close();
      await up.close();
    }
  });

  it('an upstream that dies mid-body cuts the client connection: never a complete response', async () => {
    const up = await upstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000' });
      res.write('only ten b');
      setTimeout(() => res.socket?.destroy(), 50);
    });
    const fr = await front({ mounts: [{ mountpoint: '/p', origin: `http://127.0.0.1:${up.port}` }] });
    try {
      await assert.rejects(send(fr.port, '/p/dies'), /aborted|socket hang up|ECONNRESET/);
      const chunkedUp = await upstream((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('chunked start');
        setTimeout(() => res.socket?.destroy(), 50);
      });
      const fr2 = await front({ mounts: [{ mountpoint: '/p', origin: `http://127.0.0.1:${chunkedUp.port}` }] });
      try {
        const text = await raw(fr2.port, 'GET /p/dies HTTP/1.1\r\nHost: x\r\n\r\n');
        assert.equal(statusOf(text), 200);
        assert.ok(!text.endsWith('0\r\n\r\n'), 'the chunked response was not terminated');
        assert.equal(fr2.errors.length, 1);
      } finally {
        await fr2.close();
        await chunkedUp.close();
      }
    } finally {
      await fr.close();
      await up.close();
    }
  });
});

describe('proxy: failures before the response', () => {
  it('a backend hangup is 502, reported once, never echoed', async () => {
    const up = await upstream((req) => req.socket.destroy());
    const fr = await front({ mounts: [{ mountpoint: '/p', origin: `http://127.0.0.1:${up.port}` }] });
    try {
      const r = await send(fr.port, '/p/hangup');
      assert.equal(r.status, 502);
      assert.match(r.headers['content-type'] ?? '', /text\/html/);
      assert.doesNotMatch(r.body.toString(), /UND_ERR|other side|127\.0\.0\.1/);
      assert.equal(fr.errors.length, 1);
      // An idempotent bodiless request is tried once more on a fresh connection, no more.
      assert.equal(up.seen.length, 2);
    } finally {
      await fr.close();
      await up.close();
    }
  });

  it('an invalid upstream response is 502', async () => {
    const bad = createNetServer((s) => {
      s.on('error', () => undefined);
      s.once('data', () => s.end('HELLO THERE\r\n\r\n'));
    });
    await new Promise<void>((resolve) => bad.listen(0, '127.0.0.1', resolve));
    const fr = await front({ mounts: [{ mountpoint: '/p', origin: `http://127.0.0.1:${(bad.address() as AddressInfo).port}` }] });
    try {
      const r = await send(fr.port, '/p/x', { method: 'POST', body: Buffer.from('x') });
      assert.equal(r.status, 502);
      assert.equal(fr.errors.length, 1);
    } finally {
      await fr.close();
      await new Promise<void>((resolve) => bad.close(() => resolve()));
    }
  });

  it('a refused TCP connect (lws: a bare 0\\r\\n\\r\\n) is a proper 502 with a status line', async () => {
    const port = await closedPort();
    const fr = await front({ mounts: [{ mountpoint: '/p', origin: `http://127.0.0.1:${port}` }] });
    try {
      const text = await raw(fr.port, 'GET /p/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      assert.match(text, /^HTTP\/1\.1 502 Bad Gateway\r\n/);
      assert.match(text, /<h1>502 Bad Gateway<\/h1>/);
      assert.equal(fr.errors.length, 1);
      assert.match(String(fr.errors[0]), /ECONNREFUSED/);
    } finally {
      await fr.close();
    }
  });

  it('a unix socket with nothing listening is 503 with lws page; a live one is reached, path inside kept', async () => {
    const sock = join(dir, 'app.sock');
    const fr = await front({
      mounts: [
        { mountpoint: '/gone', origin: `http://+${join(dir, 'missing.sock')}:/inside` },
        { mountpoint: '/app', origin: `http://+${sock}:/inside` },
      ],
    });
    const up = await upstream(echo, sock);
    try {
      const r = await send(fr.port, '/gone/x');
      assert.equal(r.status, 503);
      assert.ok(r.body.toString().includes(LWS_503), r.body.toString());
      assert.match(String(fr.errors[0]), /ENOENT/);
      const ok = await send(fr.port, '/app/x?y=1');
      assert.equal(ok.status, 200);
      assert.equal(json(ok.body).url, '/inside/x?y=1');
      assert.equal(up.seen.at(-1)!.headers.host, 'localhost');
    } finally {
      await fr.close();
      await up.close();
    }
  });

  it('a head that does not come within proxy-read-timeout is 504', async () => {
    const s = await silent();
    const fr = await front({ mounts: [{ mountpoint: '/p', origin: `http://127.0.0.1:${s.port}`, proxyReadTimeout: 0.3 }] });
    try {
      const t0 = Date.now();
      const r = await send(fr.port, '/p/slow');
      assert.equal(r.status, 504);
      assert.ok(Date.now() - t0 < 3000);
      assert.match(String(fr.errors[0]), /UND_ERR_HEADERS_TIMEOUT/);
    } finally {
      await fr.close();
      await s.close();
    }
  });

  it('a body that stalls past proxy-read-timeout cuts the response', async () => {
    const up = await upstream((_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('stalls');
    });
    const fr = await front({ mounts: [{ mountpoint: '/p', origin: `http://127.0.0.1:${up.port}`, proxyReadTimeout: 0.3 }] });
    try {
      await assert.rejects(within(3000, send(fr.port, '/p/stall'), 'the cut'), /aborted|socket hang up|ECONNRESET/);
      assert.match(String(fr.errors[0]), /UND_ERR_BODY_TIMEOUT/);
    } finally {
      await fr.close();
      await up.close();
    }
  });

  it('a TLS handshake that never completes within proxy-connect-timeout is 504', async () => {
    const s = await silent();
    const fr = await front({ mounts: [{ mountpoint: '/p', origin: `https://127.0.0.1:${s.port}`, proxyConnectTimeout: 0.3 }] });
    try {
      const t0 = Date.now();
      const r = await send(fr.port, '/p/x');
      assert.equal(r.status, 504);
      assert.ok(Date.now() - t0 < 3000);
      assert.match(String(fr.errors[0]), /UND_ERR_CONNECT_TIMEOUT/);
    } finally {
      await fr.close();
      await s.close();
    }
  });

  it('at the mount concurrency cap: 503 with Retry-After: 1, and the cap frees up', async () => {
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    let arrived: () => void = () => undefined;
    const first = new Promise<void>((resolve) => (arrived = resolve));
    const up = await upstream((req, res, seen) => {
      if (req.url === '/hold') {
        arrived();
        void held.then(() => echo(req, res, seen));
      } else echo(req, res, seen);
    });
    const fr = await front({ mounts: [{ mountpoint: '/p', origin: `http://127.0.0.1:${up.port}`, proxyMaxConcurrent: 1 }] });
    try {
      const holding = send(fr.port, '/p/hold');
      await within(3000, first, 'the first request');
      const r = await send(fr.port, '/p/other');
      assert.equal(r.status, 503);
      assert.equal(r.headers['retry-after'], '1');
      release();
      assert.equal((await holding).status, 200);
      assert.equal((await send(fr.port, '/p/other')).status, 200);
      assert.equal(up.seen.filter((s) => s.url === '/other').length, 1);
    } finally {
      release();
      await fr.close();
      await up.close();
    }
  });

  it('a request that comes back through this proxy (Via) is 508, reported', async () => {
    // A mount whose origin is the front itself: the second pass sees its own Via entry.
    const fr = await front((port) => ({ mounts: [{ mountpoint: '/loop', origin: `http://127.0.0.1:${port}/loop` }] }));
    try {
      const r = await send(fr.port, '/loop/x');
      assert.equal(r.status, 508);
      assert.match(r.body.toString(), /508 Loop Detected/);
      assert.ok(fr.errors.some((e) => /508/.test(String(e))));
    } finally {
      await fr.close();
    }
  });
});

describe('proxy: retries', () => {
  // An upstream that answers the first request on each connection (keep-alive) and drops the
  // connection on the second, as one closing an idle keep-alive connection just as a request arrives.
  let server: NetServer;
  let port = 0;
  const lines: string[] = [];
  before(async () => {
    server = createNetServer((s) => {
      let n = 0;
      let buf = '';
      s.on('error', () => undefined);
      s.on('data', (d: Buffer) => {
        buf += d.toString('latin1');
        for (let i = buf.indexOf('\r\n\r\n'); i !== -1; i = buf.indexOf('\r\n\r\n')) {
          const head = buf.slice(0, i);
          buf = buf.slice(i + 4);
          lines.push(head.split('\r\n')[0]!);
          if (++n === 1) s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nKeep-Alive: timeout=30\r\n\r\nok');
          else s.destroy();
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('retries a GET once when its kept-alive connection was closed', async () => {
    lines.length = 0;
    const fr = await front({ mounts: [{ mountpoint: '/p', origin: `http://127.0.0.1:${port}` }] });
    try {
      assert.equal((await send(fr.port, '/p/one')).status, 200);
      const r = await send(fr.port, '/p/two');
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), 'ok');
      assert.deepEqual(lines, ['GET /one HTTP/1.1', 'GET /two HTTP/1.1', 'GET /two HTTP/1.1']);
      assert.deepEqual(fr.errors, []);
    } finally {
      await fr.close();
    }
  });

  it('never retries a POST with a body: 502, the upstream saw it once', async () => {
    lines.length = 0;
    const fr = await front({ mounts: [{ mountpoint: '/p', origin: `http://127.0.0.1:${port}` }] });
    try {
      assert.equal((await send(fr.port, '/p/one')).status, 200);
      const p = await send(fr.port, '/p/three', { method: 'POST', body: Buffer.from('hello') });
      assert.equal(p.status, 502);
      assert.deepEqual(lines, ['GET /one HTTP/1.1', 'POST /three HTTP/1.1']);
      assert.equal(fr.errors.length, 1);
    } finally {
      await fr.close();
    }
  });
});

describe('proxy: upstream TLS', () => {
  const tls = { key: readFileSync(fixture('tls', 'localhost.key')), cert: readFileSync(fixture('tls', 'localhost.crt')) };
  let server: ReturnType<typeof createHttpsServer>;
  let port = 0;
  const sni: unknown[] = [];
  before(async () => {
    server = createHttpsServer(tls, (req: IncomingMessage, res) => {
      sni.push((req.socket as { servername?: unknown }).servername);
      res.end(`tls ${req.url ?? ''} host=${req.headers.host ?? ''}`);
    });
    await new Promise<void>((resolve) => server.listen(0, 'localhost', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(() => closeServer(server));

  it('verifies the certificate by default (502 for a self-signed one); proxy-tls-verify false reaches it, SNI = origin host', async () => {
    const fr = await front({
      mounts: [
        { mountpoint: '/verified', origin: `https://localhost:${port}` },
        { mountpoint: '/unverified', origin: `https://localhost:${port}/in`, proxyTlsVerify: false, proxyPreserveHost: true },
      ],
    });
    try {
      const r = await send(fr.port, '/verified/x');
      assert.equal(r.status, 502);
      assert.match(String(fr.errors[0]), /SELF_SIGNED|self.signed/i);
      const ok = await send(fr.port, '/unverified/x', { headers: { host: 'front.test' } });
      assert.equal(ok.status, 200);
      assert.equal(ok.body.toString(), 'tls /in/x host=front.test');
      // The preserved Host does not change the server name sent.
      assert.equal(sni.at(-1), 'localhost');
    } finally {
      await fr.close();
    }
  });
});
