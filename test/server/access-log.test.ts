/**
 * The access log across reload() and close(), with the real server in-process on 127.0.0.1:
 * a response that started under one configuration logs its line exactly once, into the log
 * it started with, and nothing writes to a log stream that has been ended.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { request } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { startServer, type RunningServer } from '../../src/server/server.js';
import type { ServerConfig } from '../../src/server/config.js';
import { rmTree, tmpDir, writeTree } from '../helpers/fixtures.js';
import { get } from '../helpers/http.js';

const dir = tmpDir('vfserve-access-log-');
after(() => rmTree(dir));

// Large enough that the kernel's socket buffers cannot take it all: the server is still
// writing it while the client holds off reading.
const BIG = 32 * 1024 * 1024;
writeTree(join(dir, 'www'), { 'index.html': Buffer.from('home'), 'big.png': Buffer.alloc(BIG, 7) });

function config(accessLog: string, headers: Record<string, string> = {}): ServerConfig {
  return {
    global: { countThreads: 1, pluginDirs: [], rejectServiceKeywords: [] },
    vhosts: [
      {
        name: 'localhost',
        port: 0,
        interface: '127.0.0.1',
        unixSocket: false,
        sts: false,
        accessLog,
        headers,
        mounts: [{ mountpoint: '/', origin: `file://${join(dir, 'www')}` }],
        source: 'test',
      },
    ],
  };
}

/**
 * Starts a GET of `path` and stops reading after the first chunk. `finish()` reads the rest
 * and resolves with the body length.
 */
async function held(port: number, path: string): Promise<{ finish: () => Promise<number> }> {
  let resume: (() => void) | undefined;
  const done = new Promise<number>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let n = 0;
      res.once('data', (c: Buffer) => {
        n += c.length;
        res.pause();
        resume = () => {
          res.on('data', (more: Buffer) => (n += more.length));
          res.resume();
        };
      });
      res.on('end', () => resolve(n));
      res.on('error', reject);
    });
    req.setTimeout(15_000, () => req.destroy(new Error('held request timed out')));
    req.on('error', reject);
    req.end();
  });
  done.catch(() => undefined); // surfaced through finish()
  for (let i = 0; i < 200 && !resume; i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(resume, 'the held response started');
  return {
    finish: () => {
      resume!();
      return done;
    },
  };
}

function linesFor(log: string, marker: string): string[] {
  return readFileSync(log, 'utf8')
    .split('\n')
    .filter((l) => l.includes(marker));
}

async function waitFor(check: () => boolean, ms = 3000): Promise<void> {
  for (let waited = 0; waited < ms && !check(); waited += 20) await new Promise((r) => setTimeout(r, 20));
}

describe('access log across reload() and close()', () => {
  it('logs a response held open across reload() exactly once, and the process survives', async () => {
    const log = join(dir, 'reload.log');
    const errors: unknown[] = [];
    const server: RunningServer = await startServer(config(log), { onError: (e) => errors.push(e) });
    try {
      const port = server.listeners[0]!.port;
      assert.equal((await get(port, '/?before=1')).status, 200);
      const h = await held(port, '/big.png?held=across-reload');
      await server.reload(config(log, { 'x-generation': '2' }));
      const r = await get(port, '/?after=1');
      assert.equal(r.headers['x-generation'], '2', 'the new configuration serves');
      // Give the retired generation's stream every chance to end before the held response finishes.
      await new Promise((res) => setTimeout(res, 200));
      assert.equal(await h.finish(), BIG, 'the held response completed');
      await waitFor(() => linesFor(log, 'held=across-reload').length > 0);
    } finally {
      await server.close(2000);
    }
    const held1 = linesFor(log, 'held=across-reload');
    assert.equal(held1.length, 1, `one line for the held response:\n${readFileSync(log, 'utf8')}`);
    assert.match(held1[0]!, /"GET \/big\.png\?held=across-reload HTTP\/1\.1" 200 33554432 /);
    assert.equal(linesFor(log, 'before=1').length, 1);
    assert.equal(linesFor(log, 'after=1').length, 1);
    assert.deepEqual(errors, []);
  });

  it('close() logs a response it cuts at the timeout, and resolves once that line is in the file', async () => {
    const log = join(dir, 'cut.log');
    const server = await startServer(config(log), { onError: () => undefined });
    const port = server.listeners[0]!.port;
    const h = await held(port, '/big.png?held=cut-by-close');
    await server.close(100); // the client never reads on: its connection is cut
    await assert.rejects(h.finish(), 'the held response was cut');
    assert.equal(linesFor(log, 'held=cut-by-close').length, 1, readFileSync(log, 'utf8'));
  });

  it('refuses a log that cannot be opened: startServer rejects, and a reload rejects and keeps the old log', async () => {
    const missing = join(dir, 'no-such-dir', 'access.log');
    // .then: a server that starts anyway is closed, not leaked to hold the test file open.
    await assert.rejects(
      startServer(config(missing)).then((s) => s.close(500)),
      /vhost "localhost": access-log .*no-such-dir.* cannot be opened \(ENOENT\)/,
    );
    const log = join(dir, 'kept.log');
    const server = await startServer(config(log), { onError: () => undefined });
    try {
      const port = server.listeners[0]!.port;
      await assert.rejects(server.reload(config(missing)), /cannot be opened \(ENOENT\)/);
      assert.equal((await get(port, '/?kept=1')).status, 200);
    } finally {
      await server.close(2000);
    }
    assert.equal(linesFor(log, 'kept=1').length, 1, 'the old configuration and its log kept serving');
  });

  it('reports a log write error once and keeps serving (disk full)', async () => {
    // Linux, where CI runs, always has /dev/full; failing here beats a test that silently proves nothing.
    assert.ok(existsSync('/dev/full'), 'this test needs /dev/full');
    const errors: unknown[] = [];
    // Every write to /dev/full fails with ENOSPC.
    const server = await startServer(config('/dev/full'), { onError: (e) => errors.push(e) });
    try {
      const port = server.listeners[0]!.port;
      for (let i = 0; i < 5; i++) {
        assert.equal((await get(port, `/?full=${i}`)).status, 200);
        await new Promise((res) => setTimeout(res, 20));
      }
      await server.reload(config('/dev/full'));
      assert.equal((await get(port, '/?full=after-reload')).status, 200);
      await new Promise((res) => setTimeout(res, 50));
    } finally {
      await server.close(2000);
    }
    // One report per log stream: the first generation and the one the reload opened.
    assert.equal(errors.length, 2, errors.map(String).join('\n'));
    for (const e of errors) assert.match(String(e), /access log \/dev\/full: .*ENOSPC/);
  });
});

describe('reload is all or nothing', () => {
  it('keeps the old configuration whole, and leaks no log, when a new listener cannot start', async () => {
    // A port already taken: the new vhost's listener fails after the kept one could have been swapped.
    const blocker = createNetServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const taken = (blocker.address() as AddressInfo).port;
    const oldLog = join(dir, 'all-or-nothing-old.log');
    const newLog = join(dir, 'all-or-nothing-new.log');
    const server = await startServer(config(oldLog, { 'x-generation': '1' }));
    try {
      const port = server.listeners[0]!.port;
      const next = config(newLog, { 'x-generation': '2' });
      const first = next.vhosts[0]!;
      const { accessLog: _noLog, ...unlogged } = first;
      const failing: ServerConfig = { ...next, vhosts: [first, { ...unlogged, name: 'second', port: taken }] };
      await assert.rejects(server.reload(failing), /EADDRINUSE|address already in use/i);
      const r = await get(port, '/');
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-generation'], '1', 'the old configuration still serves, unswapped');
      for (let i = 0; i < 50 && openTargets().includes(newLog); i++) await new Promise((res) => setTimeout(res, 20));
      assert.ok(!openTargets().includes(newLog), "the new configuration's log was closed");
    } finally {
      await server.close();
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });
});

function openTargets(): string[] {
  const out: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      out.push(readlinkSync(`/proc/self/fd/${fd}`));
    } catch {
      // closed while listing
    }
  }
  return out;
}
