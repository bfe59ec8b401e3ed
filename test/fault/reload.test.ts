/**
 * Fault test: reload repeatedly with an access log and slow readers; assert zero failed
 * requests, and every response logged exactly once. The real CLI as a child process on
 * 127.0.0.1, reloaded with SIGHUP the way an operator (or logrotate) does it.
 * Every loop is bounded in count and in time.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { root, rmTree, tmpDir, writeTree } from '../helpers/fixtures.js';

const cli = join(root, 'dist', 'cli', 'main.js');
const dir = tmpDir('vfserve-fault-reload-');
after(() => rmTree(dir));

const SMALL = 4096;
const BIG = 4 * 1024 * 1024;
const FAST_REQUESTS = 400;
const SLOW_READERS = 24;
const CONCURRENCY = 8;
const SIGHUPS = 60;
const SIGHUP_EVERY_MS = 60;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * GET `path` on a fresh connection; a slow reader pauses after its first chunk for `pauseMs`,
 * so its response is still being written while reloads go by. Resolves with status and length.
 */
function fetchLength(port: number, path: string, pauseMs = 0): Promise<{ status: number; length: number }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, headers: { connection: 'close' } }, (res) => {
      let length = 0;
      let paused = false;
      res.on('data', (c: Buffer) => {
        length += c.length;
        if (pauseMs > 0 && !paused) {
          paused = true;
          res.pause();
          setTimeout(() => res.resume(), pauseMs);
        }
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, length }));
      res.on('error', reject);
    });
    req.setTimeout(8000, () => req.destroy(new Error(`${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

interface Cli {
  readonly child: ChildProcessByStdio<null, Readable, Readable>;
  /** Its port, once it printed "serving … at http://127.0.0.1:PORT/" (0 if it never did). */
  readonly port: number;
  readonly output: () => string;
  /** Resolves with the exit code, or the signal that killed it. */
  readonly exited: Promise<number | NodeJS.Signals | null>;
  /** Kills it if it still runs; always call it (in a finally). */
  readonly dispose: () => Promise<void>;
}

/**
 * Starts the CLI on `confDir` and resolves as soon as it prints its URL. `onUrl` runs in the
 * same callback that saw the URL, so a signal it sends arrives as early as a script's would.
 */
async function startCli(confDir: string, onUrl: (child: Cli['child']) => void = () => undefined): Promise<Cli> {
  const child = spawn(process.execPath, [cli, '--config', confDir, '--quiet'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const exited = new Promise<number | NodeJS.Signals | null>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
  // Whatever happens, the child does not outlive the test.
  const killer = setTimeout(() => child.kill('SIGKILL'), 25_000);
  let giveUp: NodeJS.Timeout | undefined;
  let seen = false;
  const port = await new Promise<number>((resolve) => {
    giveUp = setTimeout(() => resolve(0), 10_000);
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /at http:\/\/127\.0\.0\.1:(\d+)\//.exec(out);
      if (m && !seen) {
        seen = true;
        onUrl(child);
        resolve(Number(m[1]));
      }
    });
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    void exited.then(() => resolve(0));
  });
  clearTimeout(giveUp);
  return {
    child,
    port,
    output: () => out,
    exited,
    dispose: async () => {
      clearTimeout(killer);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

const running = (c: Cli): boolean => c.child.exitCode === null && c.child.signalCode === null;

describe('fault: SIGHUP reloads under load with an access log', () => {
  it('survives a SIGHUP sent the moment it prints its URL (the handler is in place by then)', { timeout: 30_000 }, async () => {
    const d = join(dir, 'early');
    writeTree(join(d, 'www'), { 'a.txt': Buffer.from('a') });
    writeFileSync(join(d, 'conf'), JSON.stringify({ vhosts: [{ port: 0, interface: '127.0.0.1', mounts: [{ mountpoint: '/', origin: 'file://www' }] }] }));
    for (let i = 0; i < 4; i++) {
      const s = await startCli(d, (child) => child.kill('SIGHUP'));
      try {
        assert.ok(s.port > 0, `the CLI started: ${s.output()}`);
        for (let j = 0; j < 100 && running(s) && !/configuration reloaded/.test(s.output()); j++) await sleep(20);
        assert.ok(
          running(s),
          `run ${i}: a SIGHUP right after the URL must not stop it, but it ended with ${String(s.child.signalCode ?? s.child.exitCode)}:\n${s.output()}`,
        );
        assert.match(s.output(), /configuration reloaded/);
      } finally {
        await s.dispose();
      }
    }
  });

  it('reload repeatedly with an access log and slow readers; zero failed requests, every response logged exactly once', { timeout: 30_000 }, async () => {
    const log = join(dir, 'access.log');
    writeTree(join(dir, 'www'), { 'small.txt': Buffer.alloc(SMALL, 'a'), 'big.png': Buffer.alloc(BIG, 'b') });
    writeFileSync(
      join(dir, 'conf'),
      JSON.stringify({
        vhosts: [{ name: 'localhost', port: 0, interface: '127.0.0.1', 'access-log': 'access.log', mounts: [{ mountpoint: '/', origin: 'file://www' }] }],
      }),
    );

    const s = await startCli(dir);
    const { child, port } = s;
    try {
      assert.ok(port > 0, `the CLI started: ${s.output()}`);

      const failures: string[] = [];
      const expected = new Map<string, number>(); // unique query -> expected length
      const check = (id: string, want: number, p: Promise<{ status: number; length: number }>): Promise<void> =>
        p.then(
          (r) => {
            if (r.status !== 200 || r.length !== want) failures.push(`${id}: ${r.status}, ${r.length} bytes (want 200, ${want})`);
          },
          (err: unknown) => {
            failures.push(`${id}: ${(err as Error).message}`);
          },
        );

      let loadDone = false as boolean; // set once the load finishes
      const hups = (async () => {
        for (let i = 0; i < SIGHUPS && !loadDone && running(s); i++) {
          child.kill('SIGHUP');
          await sleep(SIGHUP_EVERY_MS);
        }
      })();

      // Slow readers, started in waves so reloads keep landing while some are mid-response.
      const slow = (async () => {
        const all: Promise<void>[] = [];
        for (let i = 0; i < SLOW_READERS; i++) {
          const id = `slow-${i}`;
          expected.set(id, BIG);
          all.push(check(id, BIG, fetchLength(port, `/big.png?id=${id}`, 100 + (i % 4) * 60)));
          await sleep(40);
        }
        await Promise.all(all);
      })();

      // Fast requests, CONCURRENCY at a time.
      const fast = (async () => {
        let next = 0;
        await Promise.all(
          Array.from({ length: CONCURRENCY }, async () => {
            while (next < FAST_REQUESTS) {
              const id = `fast-${next++}`;
              expected.set(id, SMALL);
              await check(id, SMALL, fetchLength(port, `/small.txt?id=${id}`));
            }
          }),
        );
      })();

      await Promise.all([slow, fast]);
      loadDone = true;
      await hups;
      assert.ok(running(s), `the server is still running:\n${s.output()}`);
      assert.deepEqual(failures, [], 'zero failed requests');
      assert.ok((s.output().match(/configuration reloaded/g)?.length ?? 0) >= 10, `reloads happened during the load:\n${s.output()}`);

      child.kill('SIGTERM');
      assert.equal(await s.exited, 0, `a clean exit:\n${s.output()}`);

      const counts = new Map<string, number>();
      for (const line of readFileSync(log, 'utf8').split('\n')) {
        const id = /\?id=([\w-]+) HTTP/.exec(line)?.[1];
        if (id !== undefined) counts.set(id, (counts.get(id) ?? 0) + 1);
      }
      const wrong = [...expected.keys()].filter((id) => counts.get(id) !== 1).map((id) => `${id}: ${counts.get(id) ?? 0} lines`);
      assert.deepEqual(wrong, [], 'every response logged exactly once');
      assert.equal(counts.size, expected.size, 'no line for a request that was not made');
    } finally {
      await s.dispose();
    }
  });
});
