/**
 * WebSocket (HTTP/1.1 Upgrade) pass-through on proxy mounts (src/proxy/upgrade.ts), end to end:
 * real origins (the `ws` package's server, raw node:http upgrade handlers, a TLS origin, a unix
 * socket) behind createHandler's upgrade listener, the lwsws-style server and the Fastify plugin,
 * with `ws` clients and raw sockets. Every wait is bounded.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { after, describe, it } from 'node:test';
import Fastify from 'fastify';
import WebSocket, { WebSocketServer } from 'ws';
import { vfservePlugin } from '../../src/adapters/fastify.js';
import { createHandler } from '../../src/adapters/node.js';
import type { MountOptions } from '../../src/mounts/options.js';
import { VIA_PSEUDONYM } from '../../src/proxy/headers.js';
import { parseConfigObjects } from '../../src/server/config.js';
import { startServer } from '../../src/server/server.js';
import { fixture, rmTree, tmpDir, writeTree } from '../helpers/fixtures.js';

const dir = tmpDir('vfserve-upgrade-');
writeTree(join(dir, 'www'), { 'index.html': Buffer.from('<p>home</p>') });
const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
  rmTree(dir);
});

/** `p`, or a rejection naming `what` after `ms`. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Closes `server` and cuts every socket it accepted, upgraded ones included. */
function closer(server: Server | ReturnType<typeof createNetServer>): () => Promise<void> {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  return () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
}

async function listenOn(server: Server | ReturnType<typeof createNetServer>, where: { path: string } | { port: 0 } = { port: 0 }): Promise<number> {
  if ('path' in where) server.listen(where.path);
  else server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return 'path' in where ? 0 : (server.address() as AddressInfo).port;
}

interface Origin {
  readonly port: number;
  /** The upgrade requests the origin accepted, in order. */
  readonly seen: IncomingMessage[];
  /** The origin's side of each accepted WebSocket. */
  readonly sockets: WebSocket[];
  readonly wss: WebSocketServer;
}

/** A WebSocket echo origin (the `ws` package) on 127.0.0.1, or on a unix socket. */
async function echoOrigin(where: { path: string } | { port: 0 } = { port: 0 }, tls = false): Promise<Origin> {
  const server = tls
    ? createHttpsServer({ key: readFileSync(fixture('tls', 'localhost.key')), cert: readFileSync(fixture('tls', 'localhost.crt')) })
    : createServer((_req, res) => res.end('plain'));
  const wss = new WebSocketServer({ server, maxPayload: 4 * 1024 * 1024 });
  const seen: IncomingMessage[] = [];
  const sockets: WebSocket[] = [];
  wss.on('connection', (ws, req) => {
    seen.push(req);
    sockets.push(ws);
    ws.on('error', () => undefined);
    ws.on('message', (data: Buffer, isBinary) => ws.send(data, { binary: isBinary }));
  });
  const close = closer(server);
  const port = await listenOn(server, where);
  cleanups.push(async () => {
    wss.close();
    await close();
  });
  return { port, seen, sockets, wss };
}

/** createHandler with its upgrade listener on a node:http server on 127.0.0.1. */
async function proxy(mounts: readonly MountOptions[]): Promise<{ port: number; errors: unknown[] }> {
  const errors: unknown[] = [];
  const handler = createHandler({ mounts, onError: (err) => errors.push(err) });
  const server = createServer(handler);
  server.on('upgrade', handler.upgrade);
  const close = closer(server);
  const port = await listenOn(server);
  cleanups.push(close);
  return { port, errors };
}

/** A connected WebSocket client, or the status of the answer that was not a 101. */
function openWs(url: string, protocols: string[] | WebSocket.ClientOptions = [], options: WebSocket.ClientOptions = {}): Promise<WebSocket> {
  if (!Array.isArray(protocols)) return openWs(url, [], protocols);
  return within(
    new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(url, protocols, { maxPayload: 4 * 1024 * 1024, ...options });
      ws.once('open', () => resolve(ws));
      ws.once('unexpected-response', (_req, res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => reject(Object.assign(new Error(`status ${res.statusCode}`), { status: res.statusCode, body: Buffer.concat(chunks).toString() })));
        res.on('error', reject);
      });
      ws.once('error', reject);
      cleanups.push(() => ws.terminate());
    }),
    5_000,
    `WebSocket ${url}`,
  );
}

function nextMessage(ws: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> {
  return within(new Promise((resolve) => ws.once('message', (data: Buffer, isBinary) => resolve({ data, isBinary }))), 5_000, 'a message');
}

async function echoes(ws: WebSocket): Promise<void> {
  ws.send('hello, origin');
  const text = await nextMessage(ws);
  assert.equal(text.isBinary, false);
  assert.equal(text.data.toString(), 'hello, origin');
  // 1 MiB of varied bytes: many TCP segments, backpressure on both legs, compared byte for byte.
  const big = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31 + (i >> 9)) & 0xff;
  ws.send(big);
  const back = await nextMessage(ws);
  assert.equal(back.isBinary, true);
  assert.equal(back.data.length, big.length);
  assert.ok(back.data.equals(big), 'the 1 MiB message came back unchanged');
}

/** Sends `request` (and `extra` in the same write) on a raw socket; resolves with everything read until close. */
function rawExchange(port: number, request: string, extra = ''): Promise<string> {
  return within(
    new Promise<string>((resolve, reject) => {
      const sock = connect(port, '127.0.0.1');
      const chunks: Buffer[] = [];
      sock.on('data', (c: Buffer) => chunks.push(c));
      sock.on('error', reject);
      sock.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
      sock.write(`${request}${extra}`, 'latin1');
    }),
    5_000,
    'the raw exchange to end with a close',
  );
}

function upgradeRequest(path: string, headers: readonly string[] = []): string {
  return [
    `GET ${path} HTTP/1.1`,
    'Host: 127.0.0.1',
    'Connection: Upgrade',
    'Upgrade: websocket',
    'Sec-WebSocket-Version: 13',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    ...headers,
    '',
    '',
  ].join('\r\n');
}

/** A raw-socket origin: `answer` writes whatever it likes on the upgraded socket. */
async function rawOrigin(answer: (req: IncomingMessage, socket: Duplex, head: Buffer) => void): Promise<{ port: number; closed: () => number }> {
  const server = createServer((_req, res) => res.end());
  let closedSockets = 0;
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => undefined);
    socket.once('close', () => closedSockets++);
    answer(req, socket, head);
    // Unless `answer` half-closes on its own terms, the origin closes when the proxy does (node's
    // server sockets allow half-open connections, so without this one would linger, the origin's doing).
    socket.once('end', () => {
      if (socket.writable) socket.end();
    });
  });
  const close = closer(server);
  const port = await listenOn(server);
  cleanups.push(close);
  return { port, closed: () => closedSockets };
}

/** A port nothing listens on: bound, then closed. */
async function deadPort(): Promise<number> {
  const server = createNetServer();
  const port = await listenOn(server);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function until(what: string, check: () => boolean, ms = 3_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) assert.fail(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('WebSocket pass-through (node:http handler)', () => {
  it('echoes text and a 1 MiB binary message, and the origin sees the path built from the mount, the query and X-Forwarded-For', async () => {
    const origin = await echoOrigin();
    const p = await proxy([{ mountpoint: '/ws', origin: `http://127.0.0.1:${origin.port}/base` }]);
    const ws = await openWs(`ws://127.0.0.1:${p.port}/ws/chat?x=1`, { headers: { 'x-forwarded-for': '203.0.113.9', cookie: 'a=1' } });
    await echoes(ws);
    const req = origin.seen[0]!;
    assert.equal(req.url, '/base/chat?x=1');
    // Replaced, not appended: the client is not a trusted proxy.
    assert.equal(req.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(req.headers['x-forwarded-proto'], 'http');
    assert.equal(req.headers.host, `127.0.0.1:${origin.port}`);
    assert.equal(req.headers.cookie, 'a=1');
    assert.match(String(req.headers.via), new RegExp(`^1\\.1 ${VIA_PSEUDONYM}$`));
    assert.equal(req.headers.upgrade, 'websocket');
    ws.close();
    assert.deepEqual(p.errors, []);
  });

  it('lws header mode: the allowlist plus the handshake fields, so the subprotocol is negotiated through it', async () => {
    const origin = await echoOrigin();
    const p = await proxy([{ mountpoint: '/', origin: `http://127.0.0.1:${origin.port}`, proxyHeaders: 'lws' }]);
    const ws = await openWs(`ws://127.0.0.1:${p.port}/lws`, ['chat.v2', 'chat.v1'], {
      headers: { authorization: 'Bearer secret', origin: 'http://app.example' },
    });
    assert.equal(ws.protocol, 'chat.v2');
    await echoes(ws);
    const req = origin.seen[0]!;
    assert.equal(req.headers['sec-websocket-protocol'], 'chat.v2,chat.v1'); // as the ws client wrote it
    assert.equal(req.headers.origin, 'http://app.example');
    // Outside lws's allowlist: not forwarded.
    assert.equal(req.headers.authorization, undefined);
    assert.equal(req.headers.via, undefined);
    ws.close();
  });

  it('passes the head bytes sent with the upgrade request to the origin, keeps the protocol token, and lets a half-close through both ways', async () => {
    const got: Buffer[] = [];
    let originSawEnd = false;
    const origin = await rawOrigin((_req, socket, head) => {
      got.push(head);
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: Test-Proto/1\r\nConnection: Upgrade\r\n\r\nfrom-origin;');
      socket.on('data', (c: Buffer) => got.push(c));
      // The client's FIN arrives as 'end': the origin still writes, then ends its side.
      socket.on('end', () => {
        originSawEnd = true;
        socket.end('after-your-fin');
      });
    });
    const p = await proxy([{ mountpoint: '/raw', origin: `http://127.0.0.1:${origin.port}` }]);
    const sock = connect(p.port, '127.0.0.1');
    const chunks: Buffer[] = [];
    sock.on('data', (c: Buffer) => chunks.push(c));
    const closed = once(sock, 'close');
    sock.write('GET /raw/x HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: test-proto/1\r\n\r\nHEAD-BYTES', 'latin1');
    await until('the head bytes reach the origin', () => Buffer.concat(got).toString() === 'HEAD-BYTES');
    sock.end('-and-more');
    await within(closed, 3_000, 'the client socket to close');
    const text = Buffer.concat(chunks).toString('latin1');
    assert.match(text, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    assert.match(text, /\r\nupgrade: Test-Proto\/1\r\n/i);
    assert.match(text, /\r\nconnection: Upgrade\r\n/i);
    assert.ok(text.endsWith('\r\n\r\nfrom-origin;after-your-fin'), text);
    assert.equal(Buffer.concat(got).toString(), 'HEAD-BYTES-and-more');
    assert.ok(originSawEnd);
    await until('the origin socket to close', () => origin.closed() === 1);
  });

  it('client terminates: the origin sees its socket close', async () => {
    const origin = await echoOrigin();
    const p = await proxy([{ mountpoint: '/', origin: `http://127.0.0.1:${origin.port}` }]);
    const ws = await openWs(`ws://127.0.0.1:${p.port}/`);
    ws.send('x');
    await nextMessage(ws);
    const serverSide = origin.sockets[0]!;
    const closed = once(serverSide, 'close');
    ws.terminate();
    await within(closed, 3_000, 'the origin to see the close');
    // A reset rather than a FIN: the proxy sees an error on the client's socket, not an end.
    const raw = connect(p.port, '127.0.0.1');
    raw.on('error', () => undefined);
    raw.write(upgradeRequest('/'));
    await within(once(raw, 'data'), 3_000, 'the 101');
    await until('the second origin socket', () => origin.sockets.length === 2);
    const reset = once(origin.sockets[1]!, 'close');
    raw.resetAndDestroy();
    await within(reset, 3_000, 'the origin to see the reset client go');
  });

  it('origin terminates: the client sees close', async () => {
    const origin = await echoOrigin();
    const p = await proxy([{ mountpoint: '/', origin: `http://127.0.0.1:${origin.port}` }]);
    const ws = await openWs(`ws://127.0.0.1:${p.port}/`);
    const closed = once(ws, 'close');
    origin.sockets[0]!.terminate();
    const [code] = (await within(closed, 3_000, 'the client to see the close')) as [number];
    assert.equal(code, 1006); // abnormal closure: no close frame, the connection went
  });

  it('an origin refusing the upgrade: its 403 and body reach the client, never a 101, and both connections close', async () => {
    const origin = await rawOrigin((_req, socket) => {
      socket.write('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 14\r\nX-Why: origin\r\n\r\nnot for you!\r\n');
      // The origin keeps its connection open: the proxy must find the end from Content-Length.
    });
    const p = await proxy([{ mountpoint: '/', origin: `http://127.0.0.1:${origin.port}` }]);
    const text = await rawExchange(p.port, upgradeRequest('/chat'));
    assert.match(text, /^HTTP\/1\.1 403 Forbidden\r\n/);
    assert.doesNotMatch(text, /101/);
    assert.match(text, /\r\nx-why: origin\r\n/i);
    assert.match(text, /\r\ncontent-length: 14\r\n/i);
    assert.match(text, /\r\nconnection: close\r\n/i);
    assert.ok(text.endsWith('\r\n\r\nnot for you!\r\n'), text);
    await until('the origin connection to be closed', () => origin.closed() === 1);
    await assert.rejects(openWs(`ws://127.0.0.1:${p.port}/chat`), { status: 403, body: 'not for you!\r\n' });
  });

  it('relays a chunked refusal up to its last chunk', async () => {
    const origin = await rawOrigin((_req, socket) => {
      socket.write('HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n');
    });
    const p = await proxy([{ mountpoint: '/', origin: `http://127.0.0.1:${origin.port}` }]);
    const text = await rawExchange(p.port, upgradeRequest('/x'));
    assert.match(text, /^HTTP\/1\.1 404 Not Found\r\n/);
    assert.match(text, /\r\ntransfer-encoding: chunked\r\n/i);
    assert.ok(text.endsWith('\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n'), text);
    await assert.rejects(openWs(`ws://127.0.0.1:${p.port}/x`), { status: 404, body: 'hello world' });
  });

  it('a 101 for a protocol the client did not offer is a 502, not a switch', async () => {
    const origin = await rawOrigin((_req, socket) => socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n'));
    const p = await proxy([{ mountpoint: '/', origin: `http://127.0.0.1:${origin.port}` }]);
    const text = await rawExchange(p.port, upgradeRequest('/x'));
    assert.match(text, /^HTTP\/1\.1 502 Bad Gateway\r\n/);
    assert.equal(p.errors.length, 1);
    assert.match(String(p.errors[0]), /h2c/);
  });

  it('a response head over 16 KiB is a 502', async () => {
    const origin = await rawOrigin((_req, socket) => socket.write(`HTTP/1.1 101 Switching Protocols\r\nX-Big: ${'a'.repeat(20_000)}\r\n`));
    const p = await proxy([{ mountpoint: '/', origin: `http://127.0.0.1:${origin.port}` }]);
    assert.match(await rawExchange(p.port, upgradeRequest('/x')), /^HTTP\/1\.1 502 /);
    assert.match(String(p.errors[0]), /16384/);
  });

  it('origin down: 502, reported once', async () => {
    const p = await proxy([{ mountpoint: '/', origin: `http://127.0.0.1:${await deadPort()}` }]);
    await assert.rejects(openWs(`ws://127.0.0.1:${p.port}/`), { status: 502 });
    assert.equal(p.errors.length, 1);
    assert.match(String(p.errors[0]), /ECONNREFUSED/);
  });

  it('unix socket missing: 503', async () => {
    const p = await proxy([{ mountpoint: '/', origin: `http://+${join(dir, 'absent.sock')}:/in` }]);
    await assert.rejects(openWs(`ws://127.0.0.1:${p.port}/x`), { status: 503 });
    assert.match(String(p.errors[0]), /ENOENT/);
  });

  it('a unix-socket origin echoes', async () => {
    const path = join(dir, 'origin.sock');
    const origin = await echoOrigin({ path });
    const p = await proxy([{ mountpoint: '/ws', origin: `http://+${path}:/inside` }]);
    const ws = await openWs(`ws://127.0.0.1:${p.port}/ws/room`);
    await echoes(ws);
    assert.equal(origin.seen[0]!.url, '/inside/room');
    ws.close();
  });

  it('a TLS origin echoes without verification, and a self-signed one is refused (502) with it', async () => {
    const origin = await echoOrigin({ port: 0 }, true);
    const p = await proxy([
      { mountpoint: '/unverified', origin: `https://localhost:${origin.port}`, proxyTlsVerify: false },
      { mountpoint: '/verified', origin: `https://localhost:${origin.port}` },
    ]);
    const ws = await openWs(`ws://127.0.0.1:${p.port}/unverified/`);
    await echoes(ws);
    ws.close();
    await assert.rejects(openWs(`ws://127.0.0.1:${p.port}/verified/`), { status: 502 });
    assert.match(String(p.errors[0]), /self-signed|self signed/);
  });

  it('connect timeout: 504 (an origin that accepts but never finishes the TLS handshake)', async () => {
    const silent = createNetServer((s) => s.on('error', () => undefined));
    const port = await listenOn(silent);
    cleanups.push(closer(silent));
    const p = await proxy([{ mountpoint: '/', origin: `https://127.0.0.1:${port}`, proxyConnectTimeout: '0.2' }]);
    const started = Date.now();
    await assert.rejects(openWs(`ws://127.0.0.1:${p.port}/`), { status: 504 });
    assert.ok(Date.now() - started < 2_000);
    assert.match(String(p.errors[0]), /timed out/);
  });

  it('an origin that never answers the upgrade: 504 after the read timeout', async () => {
    const origin = await rawOrigin(() => undefined);
    const p = await proxy([{ mountpoint: '/', origin: `http://127.0.0.1:${origin.port}`, proxyReadTimeout: '0.2' }]);
    await assert.rejects(openWs(`ws://127.0.0.1:${p.port}/`), { status: 504 });
    await until('the origin connection to be closed', () => origin.closed() === 1);
  });

  it('an idle tunnel is closed after the read timeout; traffic keeps it open', async () => {
    const origin = await echoOrigin();
    const p = await proxy([{ mountpoint: '/', origin: `http://127.0.0.1:${origin.port}`, proxyReadTimeout: '0.6' }]);
    const ws = await openWs(`ws://127.0.0.1:${p.port}/`);
    const closed = once(ws, 'close');
    // Traffic every 150 ms for 900 ms, half again the limit: still open.
    for (let i = 0; i < 6; i++) {
      await new Promise((r) => setTimeout(r, 150));
      ws.send(`tick ${i}`);
      await nextMessage(ws);
    }
    assert.equal(ws.readyState, WebSocket.OPEN);
    const quiet = Date.now();
    await within(closed, 3_000, 'the idle tunnel to close');
    assert.ok(Date.now() - quiet >= 500, 'closed for idleness, not before');
    assert.deepEqual(p.errors, []);
  });

  it('a Via loop is refused with 508', async () => {
    const origin = await echoOrigin();
    const p = await proxy([{ mountpoint: '/', origin: `http://127.0.0.1:${origin.port}` }]);
    await assert.rejects(openWs(`ws://127.0.0.1:${p.port}/`, { headers: { via: `1.1 ${VIA_PSEUDONYM}` } }), { status: 508 });
    assert.equal(origin.seen.length, 0);
  });

  it('noWsUpgrades: the mount is passed over for upgrades, so the shorter proxy mount answers them', async () => {
    const a = await echoOrigin();
    const b = await echoOrigin();
    const p = await proxy([
      { mountpoint: '/', origin: `http://127.0.0.1:${b.port}/root` },
      { mountpoint: '/app', origin: `http://127.0.0.1:${a.port}/a`, noWsUpgrades: true },
    ]);
    const ws = await openWs(`ws://127.0.0.1:${p.port}/app/socket`);
    ws.send('which');
    await nextMessage(ws);
    assert.equal(a.seen.length, 0);
    assert.equal(b.seen[0]!.url, '/root/app/socket');
    ws.close();
  });

  it('upgrades under a file mount are refused with 403 and the socket closed; under no mount 404; a bare proxy mountpoint gets its 301', async () => {
    const origin = await echoOrigin();
    const p = await proxy([
      { mountpoint: '/files', origin: `file://${join(dir, 'www')}` },
      { mountpoint: '/ws', origin: `http://127.0.0.1:${origin.port}` },
    ]);
    const files = await rawExchange(p.port, upgradeRequest('/files/index.html'), 'extra bytes the client sent');
    assert.match(files, /^HTTP\/1\.1 403 Forbidden\r\n/);
    assert.match(files, /\r\ncontent-length: 0\r\n/);
    assert.match(await rawExchange(p.port, upgradeRequest('/elsewhere')), /^HTTP\/1\.1 404 Not Found\r\n/);
    const bare = await rawExchange(p.port, upgradeRequest('/ws?q=1'));
    assert.match(bare, /^HTTP\/1\.1 301 Moved Permanently\r\nlocation: \/ws\/\?q=1\r\n/);
    assert.equal(origin.seen.length, 0);
    assert.deepEqual(p.errors, []);
  });
});

describe('WebSocket pass-through (lwsws server)', () => {
  it('passes an echo through a vhost from parseConfigObjects, honours no-ws-upgrades, and logs the upgrade with 101', async () => {
    const origin = await echoOrigin();
    const other = await echoOrigin();
    const log = join(dir, 'access.log');
    const config = parseConfigObjects([
      {
        file: join(dir, 'conf.json'),
        json: {
          vhosts: [
            {
              name: 'localhost',
              port: 0,
              interface: '127.0.0.1',
              'access-log': log,
              mounts: [
                { mountpoint: '/', origin: `file://${join(dir, 'www')}` },
                { mountpoint: '/ws', origin: `http://127.0.0.1:${origin.port}/base`, 'proxy-read-timeout': '5' },
                { mountpoint: '/ws/private', origin: `http://127.0.0.1:${other.port}`, 'no-ws-upgrades': '1' },
              ],
            },
          ],
        },
      },
    ]);
    const lines: string[] = [];
    const running = await startServer(config, { requestLog: (line) => lines.push(line) });
    let closed = false;
    cleanups.push(() => (closed ? undefined : running.close(100)));
    const port = running.listeners[0]!.port;
    const ws = await openWs(`ws://127.0.0.1:${port}/ws/private/chat`);
    await echoes(ws);
    assert.equal(origin.seen[0]!.url, '/base/private/chat');
    assert.equal(other.seen.length, 0);
    const gone = once(ws, 'close');
    ws.close();
    await within(gone, 3_000, 'the close handshake');
    assert.match(await rawExchange(port, upgradeRequest('/index.html')), /^HTTP\/1\.1 403 /);
    await until('two log lines', () => lines.length === 2);
    assert.match(lines[0]!, / GET \/ws\/private\/chat 101 \d+B upgrade /);
    // The tunnel's bytes from the origin: the echoes (over 1 MiB) and the close frame.
    assert.ok(Number(/ 101 (\d+)B /.exec(lines[0]!)![1]) > 1024 * 1024, lines[0]);
    assert.match(lines[1]!, / GET \/index\.html 403 0B upgrade /);
    // A tunnel still open at close() is cut at the timeout, and close() resolves.
    const open = await openWs(`ws://127.0.0.1:${port}/ws/x`);
    const cut = once(open, 'close');
    const started = Date.now();
    await within(running.close(200), 3_000, 'close() with a tunnel open');
    closed = true;
    await within(cut, 1_000, 'the tunnel to be cut');
    assert.ok(Date.now() - started < 2_000);
    const logged = readFileSync(log, 'utf8').trim().split('\n');
    assert.equal(logged.length, 3, logged.join('\n'));
    assert.match(logged[0]!, /"GET \/ws\/private\/chat HTTP\/1\.1" 101 \d+ /);
  });
});

describe('WebSocket pass-through (Fastify plugin)', () => {
  it('passes an echo through a proxy mount under the prefix, refuses what it alone hears, and app.close() cuts open tunnels', async () => {
    const origin = await echoOrigin();
    const app = Fastify();
    await app.register(vfservePlugin, {
      prefix: '/api',
      mounts: [
        { mountpoint: '/', origin: `file://${join(dir, 'www')}` },
        { mountpoint: '/live', origin: `http://127.0.0.1:${origin.port}/feed` },
      ],
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    let closed = false;
    cleanups.push(() => (closed ? undefined : app.close()));
    const port = (app.server.address() as AddressInfo).port;
    assert.equal(app.server.listenerCount('upgrade'), 1);
    const ws = await openWs(`ws://127.0.0.1:${port}/api/live/now?k=v`);
    await echoes(ws);
    assert.equal(origin.seen[0]!.url, '/feed/now?k=v');
    // The plugin's listener is the only one: it answers what no proxy mount takes rather than leave it hanging.
    assert.match(await rawExchange(port, upgradeRequest('/api/index.html')), /^HTTP\/1\.1 403 /);
    assert.match(await rawExchange(port, upgradeRequest('/elsewhere')), /^HTTP\/1\.1 404 /);
    const cut = once(ws, 'close');
    await within(app.close(), 3_000, 'app.close() with a tunnel open');
    closed = true;
    await within(cut, 1_000, 'the tunnel to be cut');
    assert.equal(app.server.listenerCount('upgrade'), 0, 'the listener is removed on close');
  });

  it('leaves upgrades it does not serve to the app’s own upgrade listener', async () => {
    const origin = await echoOrigin();
    const app = Fastify();
    await app.register(vfservePlugin, { mounts: [{ mountpoint: '/ws', origin: `http://127.0.0.1:${origin.port}` }] });
    await app.ready();
    const mine: string[] = [];
    app.server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
      if (req.url?.startsWith('/ws/') === true) return;
      mine.push(req.url ?? '');
      socket.end('HTTP/1.1 418 I am a teapot\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    cleanups.push(() => app.close());
    const port = (app.server.address() as AddressInfo).port;
    assert.match(await rawExchange(port, upgradeRequest('/other')), /^HTTP\/1\.1 418 /);
    assert.deepEqual(mine, ['/other']);
    const ws = await openWs(`ws://127.0.0.1:${port}/ws/a`);
    ws.send('still mine');
    assert.equal((await nextMessage(ws)).data.toString(), 'still mine');
    ws.close();
  });
});
