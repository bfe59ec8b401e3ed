/** Helpers shared by the CGI tests: fixture programs, process checks, requests with bodies. */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync } from 'node:fs';
import { request, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { fixture } from '../helpers/fixtures.js';

/** A fixture program's absolute path; made executable (a checkout may drop the mode). */
export function program(name: string): string {
  const p = fixture('cgi', name);
  chmodSync(p, 0o755);
  return p;
}

/**
 * Whether `pid` is still a live process. A zombie counts as gone: an orphaned grandchild is
 * reparented to PID 1, and a container's init may never reap it, though it has exited.
 */
export function alive(pid: number): boolean {
  if (!exists(pid)) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Waits (bounded) until `cond()` holds, then asserts it. */
export async function waitFor(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond() && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  assert.ok(cond(), what);
}

/** The pids a hang.sh run wrote: its own and its grandchild's. */
export async function pidsOf(file: string): Promise<[number, number]> {
  await waitFor(() => existsSync(file), `the program wrote ${file}`);
  const [a, b] = readFileSync(file, 'utf8').trim().split(' ').map(Number);
  assert.ok(Number.isInteger(a) && Number.isInteger(b), `pids in ${file}`);
  return [a!, b!];
}

/** Asserts that both processes are gone within a bounded wait (the kill grace is 1 s). */
export async function assertGone(pids: readonly number[], ms = 3000): Promise<void> {
  for (const pid of pids) await waitFor(() => !alive(pid), `process ${pid} is gone`, ms);
  // Our direct child is reaped by node (its exit awaited): not even a zombie is left.
  await waitFor(() => !exists(pids[0]!), `process ${pids[0]!} is reaped`, ms);
}

function exists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

export interface Reply {
  readonly status: number;
  readonly message: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

/**
 * One request on 127.0.0.1 with a raw path. `body`: bytes sent with a Content-Length, or an
 * array of chunks sent without one (chunked). Rejects when the response is cut.
 */
export function send(port: number, path: string, opts: { method?: string; headers?: Record<string, string>; body?: Buffer | Buffer[] } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { connection: 'close', ...opts.headers };
    if (Buffer.isBuffer(opts.body)) headers['content-length'] = String(opts.body.length);
    const req = request({ host: '127.0.0.1', port, path, method: opts.method ?? (opts.body ? 'POST' : 'GET'), headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, message: res.statusMessage ?? '', headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
      res.on('aborted', () => reject(new Error('response aborted')));
    });
    req.setTimeout(10_000, () => req.destroy(new Error('request timed out')));
    // A server that answers before reading the whole body (413) may close while we still write.
    req.on('error', reject);
    if (Array.isArray(opts.body)) for (const c of opts.body) req.write(c);
    req.end(Buffer.isBuffer(opts.body) ? opts.body : undefined);
  });
}

/** Sends `head` (request line and headers, CRLF-separated, no final blank line) over a socket; the reply's status and body (de-chunked). */
export function rawSend(port: number, head: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    sock.setTimeout(10_000, () => sock.destroy(new Error('raw request timed out')));
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', reject);
    sock.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      const headText = text.slice(0, split);
      let body = text.slice(split + 4);
      if (/\r\ntransfer-encoding: chunked/i.test(headText)) body = dechunk(body);
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), body });
    });
    sock.write(`${head}\r\nConnection: close\r\n\r\n`, 'latin1');
  });
}

function dechunk(s: string): string {
  let out = '';
  let i = 0;
  for (;;) {
    const eol = s.indexOf('\r\n', i);
    const size = parseInt(s.slice(i, eol), 16);
    if (!(size > 0)) return out;
    out += s.slice(eol + 2, eol + 2 + size);
    i = eol + 2 + size + 2;
  }
}

/** `NAME=value` lines (env's output) as a map. */
export function parseEnv(text: string): Map<string, string> {
  const env = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) env.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return env;
}
