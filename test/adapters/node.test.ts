/**
 * createHandler on node:http, for what test/http/serve.test.ts leaves out:
 * `next` and `fallthrough` outside Express, onError and its default, failing
 * callback handlers and bodies that fail after the headers went out.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createHandler, FopError, PlatFops, statusPage, Vfs, type HandlerOptions } from '../../src/index.js';
import { prose, rmTree, tmpDir, writeTree } from '../helpers/fixtures.js';
import { get, listen } from '../helpers/http.js';
import { makeZip } from '../helpers/zip-writer.js';

const dir = tmpDir('vfserve-node-');
const www = join(dir, 'www');
// Above the inflate cache's 1 MiB entry limit, so it streams and fails only at its end.
const badCrc = prose(1_500_000);

before(() => {
  writeTree(www, {
    'plain.txt': Buffer.from('plain text\n'),
    'photo.xyz': Buffer.from('not a whitelisted type'),
    'sub/index.html': Buffer.from('<p>sub</p>'),
    'bad.zip': Buffer.from('not a zip archive, named like one'),
    'site.zip': makeZip({ entries: [{ name: 'bad-crc.txt', data: badCrc, cd: { crc: 0x12345678 }, local: { crc: 0x12345678 } }] }),
  });
});
after(() => rmTree(dir));

const mounts = [
  { mountpoint: '/files', origin: www },
  { mountpoint: '/cb', origin: 'callback://cb' },
] as const;

/** A node:http server whose listener passes a Connect-style `next` that answers 299. */
async function withNext(options: Partial<HandlerOptions>): Promise<{ port: number; close: () => Promise<void>; nexts: string[] }> {
  const nexts: string[] = [];
  const h = createHandler({ mounts: [...mounts], callbacks: { cb: (_q, s) => void s.end('cb') }, onError: () => {}, ...options });
  const srv = await listen((req: IncomingMessage, res: ServerResponse) =>
    h(req, res, () => {
      nexts.push(req.url ?? '');
      res.statusCode = 299;
      res.end('next');
    }),
  );
  return { port: srv.port, close: srv.close, nexts };
}

describe('next and fallthrough outside Express', () => {
  it('calls next for what a mount cannot serve (404s, other methods, refused types), never for other answers', async () => {
    const s = await withNext({});
    try {
      const passed: [string, string?][] = [
        ['/elsewhere'],
        ['/files/missing.txt'],
        ['/files/sub/nope/'],
        ['/files/.env'],
        ['/files/photo.xyz'],
        ['/files/plain.txt', 'DELETE'],
        ['/files/plain.txt', 'OPTIONS'],
      ];
      for (const [path, method] of passed) {
        const r = await get(s.port, path, {}, method);
        assert.equal(r.status, 299, path);
        assert.equal(r.body.toString(), 'next');
      }
      const answered: [string, number, string?][] = [
        ['/files/plain.txt', 200],
        ['/files/sub', 301],
        ['/files/bad.zip/x.txt', 500],
        ['/files/%2e%2e/x', 403],
        ['/cb/x', 200],
      ];
      for (const [path, status, method] of answered) assert.equal((await get(s.port, path, {}, method)).status, status, path);
      assert.deepEqual(
        s.nexts,
        passed.map(([path]) => path),
      );
    } finally {
      await s.close();
    }
  });
  it('with fallthrough: false sends its own 404 page and never calls next', async () => {
    const s = await withNext({ fallthrough: false });
    try {
      for (const path of ['/elsewhere', '/files/missing.txt']) {
        const r = await get(s.port, path);
        assert.equal(r.status, 404, path);
        assert.match(r.body.toString(), /404 Not Found/);
      }
      assert.equal((await get(s.port, '/files/plain.txt', {}, 'DELETE')).status, 405);
      assert.equal((await get(s.port, '/files/photo.xyz')).status, 403);
      assert.deepEqual(s.nexts, []);
    } finally {
      await s.close();
    }
  });
  it('without next answers 404 itself, whatever fallthrough says', async () => {
    const srv = await listen(createHandler({ mounts: [...mounts], callbacks: { cb: () => {} }, fallthrough: true }));
    try {
      assert.equal((await get(srv.port, '/elsewhere')).status, 404);
    } finally {
      await srv.close();
    }
  });
});

describe('errors', () => {
  const errors: unknown[] = [];
  let port = 0;
  let close: () => Promise<void> = () => Promise.resolve();
  before(async () => {
    ({ port, close } = await listen(
      createHandler({
        mounts: [
          { mountpoint: '/', origin: www },
          { mountpoint: '/sync', origin: 'callback://sync' },
          { mountpoint: '/async', origin: 'callback://async' },
          { mountpoint: '/late', origin: 'callback://late' },
        ],
        callbacks: {
          sync: () => {
            throw new Error('sync failure');
          },
          async: async () => {
            await new Promise((r) => setTimeout(r, 5));
            throw new Error('async failure');
          },
          late: async (_req, res) => {
            const r = res as ServerResponse; // node:http here
            r.writeHead(200, { 'content-length': '100' });
            r.write('partial');
            await new Promise((r) => setTimeout(r, 5));
            throw new Error('late failure');
          },
        },
        onError: (err) => errors.push(err),
      }),
    ));
  });
  after(() => close());

  it('answers 500 when a callback handler throws or rejects, and reports the error', async () => {
    errors.length = 0;
    for (const path of ['/sync', '/async/x']) {
      const r = await get(port, path);
      assert.equal(r.status, 500, path);
      assert.equal(r.body.length, 0, 'nothing about the error is sent');
    }
    assert.deepEqual(
      errors.map((e) => (e as Error).message),
      ['sync failure', 'async failure'],
    );
  });
  it('cuts the connection when a callback fails after its headers, and keeps serving', async () => {
    errors.length = 0;
    await assert.rejects(get(port, '/late'), /aborted|ECONNRESET|socket hang up/);
    assert.deepEqual(
      errors.map((e) => (e as Error).message),
      ['late failure'],
    );
    assert.equal((await get(port, '/plain.txt')).status, 200);
  });
  it('cuts the connection when a body fails after the headers (a CRC mismatch at the end)', async () => {
    errors.length = 0;
    await assert.rejects(get(port, '/site.zip/bad-crc.txt'), /aborted|ECONNRESET|socket hang up/);
    assert.equal(errors.length, 1);
    assert.equal((await get(port, '/plain.txt')).status, 200, 'the server keeps serving');
  });
  it('logs with console.error by default: one line for a FopError, the stack for a bug', async (t) => {
    const logged = t.mock.method(console, 'error', () => {});
    const srv = await listen(
      createHandler({
        mounts: [
          { mountpoint: '/', origin: www },
          { mountpoint: '/bug', origin: 'callback://bug' },
        ],
        callbacks: {
          bug: () => {
            throw new TypeError('a bug');
          },
        },
      }),
    );
    try {
      assert.equal((await get(srv.port, '/bad.zip/x.txt')).status, 500);
      assert.equal(logged.mock.callCount(), 1);
      const line: readonly unknown[] = logged.mock.calls[0]?.arguments ?? [];
      assert.equal(line.length, 1, 'one string, no error object and so no stack');
      assert.match(String(line[0]), /^vfserve: CORRUPT_ARCHIVE index ".*bad\.zip": [^\n]+$/);
      assert.equal((await get(srv.port, '/bug')).status, 500);
      assert.equal(logged.mock.callCount(), 2);
      assert.equal(logged.mock.calls[1]?.arguments[0], 'vfserve:');
      assert.ok(logged.mock.calls[1].arguments[1] instanceof TypeError, 'a bug is logged with its stack');
    } finally {
      await srv.close();
    }
  });
  it('reports a refused archive once per version of it, and never tells the client why', async () => {
    const d = join(dir, 'refused');
    writeTree(d, { 'a.zip': Buffer.from('not a zip archive') });
    const seen: unknown[] = [];
    const srv = await listen(createHandler({ mounts: [{ mountpoint: '/', origin: d }], onError: (err) => seen.push(err) }));
    try {
      const pages: string[] = [];
      for (let i = 0; i < 5; i++) {
        const r = await get(srv.port, i % 2 === 0 ? '/a.zip/index.html' : '/a.zip/other.txt');
        assert.equal(r.status, 500);
        pages.push(r.body.toString());
      }
      assert.equal(seen.length, 1, 'reported once, not per request');
      assert.ok(FopError.is(seen[0], 'CORRUPT_ARCHIVE'));
      // Another corrupt archive in its place is another version: reported once more.
      writeTree(d, { 'a.zip': Buffer.from('still not a zip archive, but a different one') });
      for (let i = 0; i < 3; i++) pages.push((await get(srv.port, '/a.zip/index.html')).body.toString());
      assert.equal(seen.length, 2);
      assert.notEqual(seen[1], seen[0]);
      assert.deepEqual(new Set(pages), new Set([statusPage(500).body.toString()]), 'the generic page, every time');
    } finally {
      await srv.close();
    }
  });
  it('answers an archive over the entry limit with 500 (the whole archive is refused), reported once', async () => {
    const d = join(dir, 'many');
    writeTree(d, { 'many.zip': makeZip({ entries: [1, 2, 3].map((n) => ({ name: `${n}.txt`, data: Buffer.from(String(n)) })) }) });
    const seen: unknown[] = [];
    const vfs = new Vfs({ base: new PlatFops(), zip: { limits: { maxEntries: 2 } } });
    const srv = await listen(createHandler({ mounts: [{ mountpoint: '/', origin: d }], vfs, onError: (err) => seen.push(err) }));
    try {
      for (let i = 0; i < 3; i++) assert.equal((await get(srv.port, '/many.zip/1.txt')).status, 500);
      assert.equal(seen.length, 1);
      assert.ok(FopError.is(seen[0], 'LIMIT_EXCEEDED'));
    } finally {
      await srv.close();
    }
  });
});
