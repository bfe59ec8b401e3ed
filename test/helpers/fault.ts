/**
 * Helpers for the fault suite (test/fault/): descriptor accounting through
 * /proc/self/fd, clients that abort at a chosen moment, bounded requests that
 * report a cut response instead of throwing, process-level error collection,
 * and versioned content that says which version every byte came from.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readlinkSync } from 'node:fs';
import { request, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';

/** The targets of this process's open descriptors that are files (sockets, pipes, anon inodes and /proc itself left out). */
export function fileFds(): string[] {
  const out: string[] = [];
  let names: string[];
  try {
    names = readdirSync('/proc/self/fd');
  } catch {
    return out; // not Linux: nothing to count (the callers then compare empty lists)
  }
  for (const name of names) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${name}`);
    } catch {
      continue; // closed meanwhile (the directory listing's own descriptor among them)
    }
    if (target.startsWith('socket:[') || target.startsWith('pipe:') || target.startsWith('anon_inode:') || target.startsWith('/proc/')) continue;
    out.push(target);
  }
  return out.sort();
}

/** Whether /proc/self/fd can be read here (the descriptor checks are meaningless without it). */
export function haveProcFds(): boolean {
  try {
    readdirSync('/proc/self/fd');
    return true;
  } catch {
    return false;
  }
}

/** The multiset difference `now - base` (descriptors opened since `base` and still open). */
export function extraFds(base: readonly string[], now: readonly string[]): string[] {
  const left = new Map<string, number>();
  for (const t of base) left.set(t, (left.get(t) ?? 0) + 1);
  const extra: string[] = [];
  for (const t of now) {
    const n = left.get(t) ?? 0;
    if (n > 0) left.set(t, n - 1);
    else extra.push(t);
  }
  return extra;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `read` every 20 ms until `ok` holds or `ms` have passed; returns the last value read. */
export async function pollUntil<T>(read: () => T, ok: (v: T) => boolean, ms = 2000): Promise<T> {
  const deadline = Date.now() + ms;
  let v = read();
  while (!ok(v) && Date.now() < deadline) {
    await sleep(20);
    v = read();
  }
  return v;
}

/**
 * Collects unhandled rejections and uncaught exceptions until `stop()`. The listeners already
 * there (node:test's, which would fail whichever test is running at once, with the raw error)
 * are detached meanwhile and put back by `stop()`, so the test that caused an error reports it.
 */
export function collectProcessErrors(): { readonly errors: { kind: string; err: unknown }[]; stop(): void } {
  const errors: { kind: string; err: unknown }[] = [];
  const onRejection = (err: unknown): void => {
    errors.push({ kind: 'unhandledRejection', err });
  };
  const onException = (err: unknown): void => {
    errors.push({ kind: 'uncaughtException', err });
  };
  const saved = {
    rejection: process.listeners('unhandledRejection'),
    exception: process.listeners('uncaughtException'),
  };
  process.removeAllListeners('unhandledRejection');
  process.removeAllListeners('uncaughtException');
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  let stopped = false;
  return {
    errors,
    stop: () => {
      if (stopped) return;
      stopped = true;
      process.off('unhandledRejection', onRejection);
      process.off('uncaughtException', onException);
      for (const l of saved.rejection) process.on('unhandledRejection', l);
      for (const l of saved.exception) process.on('uncaughtException', l);
    },
  };
}

/** One line per collected process error, for assertion messages. */
export function describeErrors(errors: readonly { kind: string; err: unknown }[]): string {
  return errors.map((e) => `${e.kind}: ${e.err instanceof Error ? `${e.err.name}: ${e.err.message}` : String(e.err)}`).join(' | ');
}

export type AbortMoment = 'sent' | 'body';

/**
 * A GET over a raw socket that the client destroys at `moment`: 'sent' right
 * after the request bytes are written (before any response byte), 'body' once
 * the headers and at least one body byte have arrived. Resolves with how many
 * bytes arrived when the socket has closed (bounded: destroyed after 5 s anyway).
 */
export function abortedGet(port: number, path: string, headers: Record<string, string>, moment: AbortMoment): Promise<{ received: number; gotHead: boolean }> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1');
    let received = Buffer.alloc(0);
    let gotHead = false;
    const timer = setTimeout(() => sock.destroy(), 5000);
    sock.on('error', () => undefined);
    sock.on('data', (c: Buffer) => {
      received = Buffer.concat([received, c]);
      const end = received.indexOf('\r\n\r\n');
      if (end !== -1) gotHead = true;
      if (moment === 'body' && end !== -1 && received.length > end + 4) sock.destroy();
    });
    sock.on('end', () => sock.destroy());
    sock.on('close', () => {
      clearTimeout(timer);
      resolve({ received: received.length, gotHead });
    });
    const lines = [`GET ${path} HTTP/1.1`, 'Host: 127.0.0.1', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), '', ''];
    sock.write(lines.join('\r\n'), 'latin1', () => {
      if (moment === 'sent') sock.destroy();
    });
  });
}

export interface Outcome {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  /** The response arrived whole (res.complete) and neither side errored. */
  readonly complete: boolean;
  /** The request failed or the response was cut (an error message), if so. */
  readonly error?: string;
  /** Nothing ended the exchange within the bound: the client gave up. */
  readonly timedOut: boolean;
}

/**
 * One request over a fresh connection that never rejects: a cut, an error or
 * a hang (past `timeoutMs`) is reported in the outcome.
 */
export function tryGet(port: number, path: string, headers: Record<string, string> = {}, timeoutMs = 5000, method = 'GET'): Promise<Outcome> {
  return new Promise((resolve) => {
    let settled = false;
    let status = 0;
    let resHeaders: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    let error: string | undefined;
    let complete = false;
    const finish = (timedOut: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({
        status,
        headers: resHeaders,
        body: Buffer.concat(chunks),
        complete: complete && error === undefined && !timedOut,
        timedOut,
        ...(error !== undefined ? { error } : {}),
      });
    };
    const req = request({ host: '127.0.0.1', port, path, method, headers: { connection: 'close', ...headers }, agent: false }, (res) => {
      status = res.statusCode ?? 0;
      resHeaders = res.headers;
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (err) => {
        error ??= err.message;
      });
      res.on('aborted', () => {
        error ??= 'aborted';
      });
      res.on('end', () => {
        complete = res.complete;
        if (!res.complete) error ??= 'incomplete';
      });
      res.on('close', () => {
        if (!res.complete) error ??= 'cut before the end';
        finish(false);
      });
    });
    const timer = setTimeout(() => {
      req.destroy(new Error('client timeout'));
      finish(true);
    }, timeoutMs);
    req.on('error', (err) => {
      error ??= err.message;
      // Without a response there is no res 'close' to wait for.
      setImmediate(() => finish(false));
    });
    req.end();
  });
}

export function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Deterministic bytes from (seed): xorshift32. */
function rng(seed: number): () => number {
  let x = (seed * 2654435761) >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

const WORDS = (
  'the of and to in is was for on that with as by at from his her an which or had be are this were but it not ' +
  'garden candide world best possible cultivate our pangloss reason cause effect island voyage letter ship city ' +
  'storm river mountain silver quiet window lantern harbour orchard kettle meadow copper thistle ember'
).split(' ');

/**
 * Text-like content of exactly `length` bytes whose every byte depends on
 * `seed`: words drawn at random (deflates about 3:1, never trivially), with
 * `tag` (say, a version label) at the start of every line.
 */
export function versionText(length: number, seed: number, tag: string): Buffer {
  const next = rng(seed);
  const parts: string[] = [];
  let size = 0;
  let line = 0;
  while (size < length) {
    let s = `${tag}#${line++}:`;
    const n = 6 + (next() % 10);
    for (let i = 0; i < n; i++) s += ` ${WORDS[next() % WORDS.length]!}`;
    s += '\n';
    parts.push(s);
    size += s.length;
  }
  return Buffer.from(parts.join('').slice(0, length), 'latin1');
}

/** Incompressible bytes of exactly `length` from `seed`. */
export function versionNoise(length: number, seed: number): Buffer {
  const next = rng(seed);
  const out = Buffer.allocUnsafe(length);
  let i = 0;
  for (; i + 4 <= length; i += 4) out.writeUInt32LE(next(), i);
  for (; i < length; i++) out[i] = next() & 0xff;
  return out;
}
