/** The real `vfserve` CLI (dist/cli/main.js) as a child process, for end-to-end tests driven over sockets. */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { root } from './fixtures.js';

/** The CLI's entry point. */
export const cli = join(root, 'dist', 'cli', 'main.js');

/** A started CLI. */
export interface RunningCli {
  readonly child: ChildProcess;
  /** Each listener's start-up line, host as in its URL (`[::1]` for IPv6) and port, in the order printed. */
  readonly listeners: readonly { readonly line: string; readonly host: string; readonly port: number }[];
  /** The first listener's port. */
  readonly port: number;
  /** Every listener's port, in the order printed. */
  readonly ports: number[];
  /** Everything the CLI wrote on stdout and stderr so far. */
  output: () => string;
  /** Waits (bounded) until the output matches `re`, then asserts it. */
  waitFor: (re: RegExp, ms?: number) => Promise<void>;
  /** Sends `signal` (default SIGTERM) and resolves with the exit code; a CLI that does not stop is killed after 20 s. */
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
}

const LISTENER_LINE = /^.* at https?:\/\/(\[[^\]]+\]|[^:/\s]+):(\d+)\/.*$/gm;

/**
 * Starts the CLI with `args` and waits until it has announced `count` listeners ("serving … at
 * http(s)://HOST:PORT/"). `env` is the child's whole environment (default: this process's).
 */
export function startCli(args: readonly string[], count = 1, env: NodeJS.ProcessEnv = process.env): Promise<RunningCli> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let started = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the CLI did not start: ${out}`));
    }, 15_000);
    const check = (): void => {
      if (started) return;
      const lines = [...out.matchAll(LISTENER_LINE)];
      if (lines.length < count) return;
      started = true;
      clearTimeout(timer);
      const listeners = lines.map((m) => ({ line: m[0], host: m[1]!, port: Number(m[2]) }));
      resolve({
        child,
        listeners,
        port: listeners[0]!.port,
        ports: listeners.map((l) => l.port),
        output: () => out,
        waitFor: async (re, ms = 5000) => {
          for (let t0 = Date.now(); !re.test(out) && Date.now() - t0 < ms;) await new Promise((r) => setTimeout(r, 20));
          assert.match(out, re);
        },
        stop: (signal = 'SIGTERM') =>
          new Promise((res) => {
            if (child.exitCode !== null) {
              res(child.exitCode);
              return;
            }
            // A server that does not stop fails the test in bounded time instead of hanging the file.
            const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
            child.once('exit', (code) => {
              clearTimeout(killer);
              res(code);
            });
            child.kill(signal);
          }),
      });
    };
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      check();
    });
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (!started) reject(new Error(`the CLI exited (${code}): ${out}`));
    });
  });
}
