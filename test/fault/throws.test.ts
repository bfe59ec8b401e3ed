/**
 * Fault suite C: an app that wrote before the handler ran, callback://
 * handlers that throw (before and after the head is out), and an onError
 * that throws. None of it may leave an unhandled rejection or an uncaught
 * exception, hang a client, call onError other than exactly once, or stop the
 * server serving.
 */
import assert from 'node:assert/strict';
import { createServer, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import express from 'express';
import { createHandler, type HandlerOptions, type NodeRequest, type NodeResponse } from '../../src/index.js';
import { noise, rmTree, tmpDir, writeTree } from '../helpers/fixtures.js';
import { collectProcessErrors, describeErrors, sleep, tryGet, type Outcome } from '../helpers/fault.js';
import { makeZip } from '../helpers/zip-writer.js';

const dir = tmpDir('vfserve-fault-throws-');
const BOUND_MS = 2000; // a client that has heard nothing by then is hanging
const hello = Buffer.from('hello, fault suite\n');
const big = noise(1024 * 1024, 9);

let proc: ReturnType<typeof collectProcessErrors>;
const servers: Server[] = [];
let attributed = 0; // process errors already reported by the test that caused them

before(() => {
  proc = collectProcessErrors();
  writeTree(dir, {
    'hello.txt': hello,
    'bad.zip': Buffer.from('not a zip archive at all, only named like one'),
    // A 1 MiB stored entry whose CRC-32 is wrong in both headers: the error comes at the end of the stream.
    'crc.zip': makeZip({ entries: [{ name: 'big.png', data: big, method: 0, cd: { crc: 0x12345678 }, local: { crc: 0x12345678 } }] }),
  });
});

after(async () => {
  proc.stop();
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
  rmTree(dir);
});

async function serve(listener: RequestListener): Promise<number> {
  const server = createServer(listener);
  server.keepAliveTimeout = 100;
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function serveApp(app: express.Express): Promise<number> {
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  server.keepAliveTimeout = 100;
  servers.push(server);
  return (server.address() as AddressInfo).port;
}

/** Runs `fn` and returns the process errors it caused (waiting a little for late rejections). */
async function processErrorsDuring(fn: () => Promise<void>): Promise<string> {
  const before = proc.errors.length;
  await fn();
  await sleep(100);
  const mine = proc.errors.slice(before);
  attributed += mine.length;
  return describeErrors(mine);
}

function how(out: Outcome): string {
  return out.timedOut
    ? `no end within ${BOUND_MS} ms (hung)`
    : out.complete
      ? `complete ${out.status}`
      : `cut (${out.error ?? 'incomplete'}) after status ${out.status}`;
}

function handlerWith(extra: Partial<HandlerOptions> = {}): { handler: ReturnType<typeof createHandler>; errors: unknown[] } {
  const errors: unknown[] = [];
  const handler = createHandler({
    mounts: [
      { mountpoint: '/', origin: dir },
      { mountpoint: '/cb', origin: 'callback://cb' },
    ],
    onError: (err) => errors.push(err),
    callbacks: { cb: callbackRouter },
    ...extra,
  });
  return { handler, errors };
}

/** The callback mount: the remainder says how to fail. */
function callbackRouter(_req: NodeRequest, nodeRes: NodeResponse, target: { remainder: string }): void | Promise<void> {
  const res = nodeRes as ServerResponse; // HTTP/1 servers only here
  switch (target.remainder) {
    case '/throw':
      throw new Error('callback threw');
    case '/reject':
      return Promise.reject(new Error('callback rejected'));
    case '/after-head':
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000' });
      res.write('partial body');
      throw new Error('callback threw after the head');
    case '/after-head-chunked':
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('partial body');
      throw new Error('callback threw after the head (chunked)');
    case '/async-after-head':
      return (async () => {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000' });
        res.write('partial body');
        await sleep(5);
        throw new Error('callback rejected after the head');
      })();
    default:
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('callback ok');
  }
}

/** After a fault, the same server still answers a normal request (problems, if not). */
async function stillServes(port: number): Promise<string[]> {
  const next = await tryGet(port, '/hello.txt', {}, BOUND_MS);
  return next.complete && next.status === 200 && next.body.equals(hello) ? [] : [`the next normal request: ${how(next)}`];
}

describe('the app wrote before the handler ran', { concurrency: false }, () => {
  it('node:http: res.write() first, then the handler for a file', async () => {
    const { handler, errors } = handlerWith();
    const port = await serve((req, res) => {
      if (req.url === '/hello.txt' && req.headers['x-prewrite'] === '1') res.write('0');
      handler(req, res);
    });
    let out: Outcome | undefined;
    const perr = await processErrorsDuring(async () => {
      out = await tryGet(port, '/hello.txt', { 'x-prewrite': '1' }, BOUND_MS);
    });
    const problems: string[] = [];
    if (perr !== '') problems.push(`process errors: ${perr}`);
    if (out!.timedOut) problems.push(`the client must see the request finish or fail: ${how(out!)}`);
    if (errors.length !== 1) problems.push(`onError called ${errors.length}x, not exactly once`);
    problems.push(...(await stillServes(port)));
    assert.deepEqual(problems, [], problems.join('; '));
  });

  it('Express: app.use((req, res, next) => { res.write("0"); next() }) before the handler', async () => {
    const { handler, errors } = handlerWith();
    const app = express();
    app.use((req, res, next) => {
      if (req.headers['x-prewrite'] === '1') res.write('0');
      next();
    });
    app.use(handler);
    const port = await serveApp(app);
    let out: Outcome | undefined;
    const perr = await processErrorsDuring(async () => {
      out = await tryGet(port, '/hello.txt', { 'x-prewrite': '1' }, BOUND_MS);
    });
    const problems: string[] = [];
    if (perr !== '') problems.push(`process errors: ${perr}`);
    if (out!.timedOut) problems.push(`the client must see the request finish or fail: ${how(out!)}`);
    if (errors.length !== 1) problems.push(`onError called ${errors.length}x, not exactly once`);
    problems.push(...(await stillServes(port)));
    assert.deepEqual(problems, [], problems.join('; '));
  });
});

describe('callback:// handlers that fail', { concurrency: false }, () => {
  const cases: readonly { path: string; what: string; headSent: boolean }[] = [
    { path: '/cb/throw', what: 'throws synchronously', headSent: false },
    { path: '/cb/reject', what: 'returns a rejected promise', headSent: false },
    { path: '/cb/after-head', what: 'writes the head (Content-Length) and some body, then throws', headSent: true },
    { path: '/cb/after-head-chunked', what: 'writes the head (chunked) and some body, then throws', headSent: true },
    { path: '/cb/async-after-head', what: 'writes the head and some body, then rejects', headSent: true },
  ];
  for (const c of cases) {
    it(`a handler that ${c.what}: onError once, ${c.headSent ? 'a cut connection' : 'a 500'}, and the server keeps serving`, async () => {
      const { handler, errors } = handlerWith();
      const port = await serve(handler);
      const ok = await tryGet(port, '/cb/ok', {}, BOUND_MS);
      assert.equal(ok.status, 200, 'a callback that works');
      let out: Outcome | undefined;
      const perr = await processErrorsDuring(async () => {
        out = await tryGet(port, c.path, {}, BOUND_MS);
      });
      const problems: string[] = [];
      if (perr !== '') problems.push(`process errors: ${perr}`);
      if (out!.timedOut) problems.push(`the client must not hang: ${how(out!)}`);
      else if (c.headSent && out!.complete) problems.push(`after the head the connection must be cut, got ${how(out!)}`);
      else if (!c.headSent && !(out!.complete && out!.status === 500)) problems.push(`expected a 500, got ${how(out!)}`);
      if (errors.length !== 1) problems.push(`onError called ${errors.length}x, not exactly once`);
      problems.push(...(await stillServes(port)));
      assert.deepEqual(problems, [], problems.join('; '));
    });
  }
});

describe('an onError that throws does not take the process down', { concurrency: false }, () => {
  const cases: readonly { path: string; what: string; expect: 'status' | 'cut' }[] = [
    { path: '/bad.zip/x.txt', what: 'a 500 from the core (corrupt archive)', expect: 'status' },
    { path: '/cb/throw', what: 'a callback that throws', expect: 'status' },
    { path: '/cb/after-head', what: 'a callback that throws after the head', expect: 'cut' },
    { path: '/crc.zip/big.png', what: 'a body stream that fails mid-response (CRC mismatch at the end)', expect: 'cut' },
  ];
  for (const c of cases) {
    it(`${c.what}: the client gets an answer or a cut, no unhandled error, the server keeps serving`, async () => {
      let calls = 0;
      const { handler } = handlerWith({
        onError: () => {
          calls++;
          throw new Error('onError exploded');
        },
      });
      const port = await serve(handler);
      let out: Outcome | undefined;
      const perr = await processErrorsDuring(async () => {
        out = await tryGet(port, c.path, {}, BOUND_MS);
      });
      const problems: string[] = [];
      if (perr !== '') problems.push(`process errors: ${perr}`);
      if (out!.timedOut) problems.push(`the client must not hang: ${how(out!)}`);
      else if (c.expect === 'status' && !(out!.complete && out!.status >= 500)) problems.push(`expected a 5xx, got ${how(out!)}`);
      else if (c.expect === 'cut' && out!.complete) problems.push(`expected a cut connection, got ${how(out!)}`);
      if (calls !== 1) problems.push(`onError called ${calls}x, not exactly once`);
      problems.push(...(await stillServes(port)));
      assert.deepEqual(problems, [], problems.join('; '));
    });
  }
});

it('no unhandled rejection or uncaught exception outside the tests that caused them', async () => {
  // Each test asserts its own; this one catches anything that came after a test had finished.
  await sleep(100);
  assert.equal(describeErrors(proc.errors.slice(attributed)), '');
});
