/**
 * Carries out a CGI plan: runs the program for one request (RFC 3875) and relays its answer.
 *
 * One program per request, spawned without a shell in a process group of its own, so that a
 * timeout or a client that goes away kills everything it started. The request body goes to stdin
 * with backpressure; stdout's header block is parsed (see {@link CgiHeadParser}) and the body
 * after it streamed to the client with backpressure; stderr goes to the operator's log line by line.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { Http2ServerResponse } from 'node:http2';
import { abort, type NodeRequest, type NodeResponse } from '../adapters/node.js';
import type { CgiTarget, CoreResponse } from '../mounts/content.js';
import { statusPage } from '../mounts/status.js';
import { cgiEnvironment } from './env.js';
import { CgiHeadParser, CgiOutputError, type CgiHead } from './output.js';
import type { CgiSettings } from './settings.js';

/** What a CGI request needs from its adapter. */
export interface CgiContext {
  /** Reports the request's failure, once: a {@link CgiError} behind a 502 or 504, or a response cut. */
  readonly fail: (err: unknown) => void;
  /** The server's log, for the program's stderr (one call per line, prefixed `cgi <program>[<pid>]: `). */
  readonly log: (line: string) => void;
  /** Serves `url` (a path and query) internally as a GET on the same response: RFC 3875 local redirects. */
  readonly localRedirect: (url: string) => void;
}

/** Why a CGI request failed, for the operator (never sent to the client). */
export class CgiError extends Error {
  override readonly name = 'CgiError';
  /**
   * `CGI_SPAWN`: the program could not be started (502); `CGI_OUTPUT`: its output broke the CGI
   * response grammar (502, or a cut response when the head was out); `CGI_TIMEOUT`: it ran past
   * `cgi-timeout` (504, or a cut response when the head was out).
   */
  readonly code: 'CGI_SPAWN' | 'CGI_OUTPUT' | 'CGI_TIMEOUT';
  constructor(code: CgiError['code'], message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/** A request body without a length (chunked on HTTP/1.1, an HTTP/2 stream without content-length) is buffered up to this many bytes; over it: 413. */
export const MAX_BUFFERED_BODY = 8 * 1024 * 1024;
/** After SIGTERM, the program's process group gets SIGKILL this many milliseconds later. */
export const KILL_GRACE_MS = 1000;
/** A stderr line longer than this (bytes) is logged cut, with ` […]`. */
export const STDERR_LINE_MAX = 1024;
/** Lines of stderr logged per request; further output is read and dropped, with one line saying so. */
export const STDERR_LINES_MAX = 100;

// Connection-specific and framing fields a program may write but a server must not relay as they
// are (RFC 9110 §7.6.1, RFC 9113 §8.2.2: node:http2 throws on them). Content-Length is handled apart.
const DROPPED = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'http2-settings']);

// Programs running per mount, keyed by the mount's settings object.
const running = new WeakMap<CgiSettings, number>();

/**
 * Runs `out.cgi`'s program for `req` and sends its response on `res`, with `out.headers` (the
 * configured headers) over the program's fields of the same name. Never throws and never leaves
 * an 'error' unhandled: every failure becomes a status (400, 413, 502, 503, 504) or a cut
 * response, reported through `ctx.fail` at most once. The program's exit is always awaited.
 */
export function runCgi(req: NodeRequest, res: NodeResponse, out: CoreResponse & { readonly cgi: CgiTarget }, ctx: CgiContext): void {
  const settings = out.cgi.settings;
  const page = (status: number, extra: Record<string, string> = {}): void => sendPage(res, status, out.headers, extra);
  req.on('error', () => undefined); // a client that resets mid-body; res 'close' handles it
  const count = running.get(settings) ?? 0;
  if (count >= settings.maxConcurrent) {
    page(503, { 'retry-after': '1' });
    return;
  }
  running.set(settings, count + 1);
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    running.set(settings, (running.get(settings) ?? 1) - 1);
  };

  const declared = req.headers['content-length'];
  if (declared !== undefined) {
    if (!/^\d{1,15}$/.test(declared)) {
      release();
      page(400);
      return;
    }
    const length = Number(declared);
    if (length > 0) new CgiRun(req, res, out, ctx, release).start(length, req);
    else new CgiRun(req, res, out, ctx, release).start(undefined, null);
    return;
  }
  if (!hasUnframedBody(req)) {
    new CgiRun(req, res, out, ctx, release).start(undefined, null);
    return;
  }
  // RFC 3875 §4.1.2 wants CONTENT_LENGTH before the program starts: read the body first.
  const chunks: Buffer[] = [];
  let size = 0;
  const onData = (chunk: Buffer): void => {
    size += chunk.length;
    if (size <= MAX_BUFFERED_BODY) {
      chunks.push(chunk);
      return;
    }
    // Over the cap: the program is never started; the rest of the body is read and dropped.
    req.off('data', onData);
    req.off('end', onEnd);
    req.resume();
    chunks.length = 0;
    release();
    page(413);
  };
  const onEnd = (): void => {
    res.off('close', onGone);
    const body = Buffer.concat(chunks, size);
    new CgiRun(req, res, out, ctx, release).start(body.length > 0 ? body.length : undefined, body.length > 0 ? body : null);
  };
  const onGone = (): void => {
    req.off('data', onData);
    req.off('end', onEnd);
    release();
  };
  req.on('data', onData);
  req.on('end', onEnd);
  res.once('close', onGone);
}

/** A body without Content-Length: chunked on HTTP/1.1; on HTTP/2 any stream the headers did not end. */
function hasUnframedBody(req: NodeRequest): boolean {
  if ('stream' in req) return !req.stream.endAfterHeaders;
  return req.headers['transfer-encoding'] !== undefined;
}

/** A status page for `status`, carrying the configured headers; a response already started is cut. */
function sendPage(res: NodeResponse, status: number, configured: Readonly<Record<string, string>>, extra: Record<string, string>): void {
  if (res.headersSent || res.writableEnded) {
    if (!res.writableEnded) abort(res);
    return;
  }
  const p = statusPage(status);
  try {
    res.writeHead(status, forH2(res, { ...configured, ...p.headers, ...extra }));
    res.end(p.body);
  } catch {
    abort(res);
  }
}

/** `headers` without the connection-specific fields HTTP/2 forbids, on an HTTP/2 response. */
function forH2<T>(res: NodeResponse, headers: Record<string, T>): Record<string, T> {
  if (!(res instanceof Http2ServerResponse)) return headers;
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !DROPPED.has(name)));
}

/** Kills a process group, ignoring one that is already gone. */
function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: every process of the group has exited.
  }
}

type Phase = 'head' | 'body' | 'redirect' | 'done';

/** One program run: its process, its output's phase, its timers. */
class CgiRun {
  readonly #req: NodeRequest;
  readonly #res: NodeResponse;
  readonly #out: CoreResponse & { readonly cgi: CgiTarget };
  readonly #ctx: CgiContext;
  readonly #release: () => void;
  readonly #settings: CgiSettings;
  #child: ChildProcessWithoutNullStreams | undefined;
  #phase: Phase = 'head';
  #spawnError: NodeJS.ErrnoException | undefined;
  #timer: NodeJS.Timeout | undefined;
  #killing = false;
  #closed = false;
  #parser = new CgiHeadParser();
  // Body bytes the program declared with Content-Length, and sent so far.
  #expected: number | undefined;
  #sent = 0;
  #paused = false;
  #withBody = true;

  constructor(req: NodeRequest, res: NodeResponse, out: CoreResponse & { readonly cgi: CgiTarget }, ctx: CgiContext, release: () => void) {
    this.#req = req;
    this.#res = res;
    this.#out = out;
    this.#ctx = ctx;
    this.#release = release;
    this.#settings = out.cgi.settings;
  }

  /** Starts the program with `length` as CONTENT_LENGTH and `body` (the request stream, bytes, or none) on stdin. */
  start(length: number | undefined, body: NodeRequest | Buffer | null): void {
    const res = this.#res;
    if (res.destroyed || res.writableEnded) {
      this.#release();
      return;
    }
    const base = (this.#req as { baseUrl?: unknown }).baseUrl;
    const env = cgiEnvironment(this.#req, this.#out.cgi, length, typeof base === 'string' ? base.replace(/^\/+/, '/') : '');
    let child: ChildProcessWithoutNullStreams;
    try {
      // No shell ever; detached: a new process group (setsid), so a kill reaches grandchildren.
      child = spawn(this.#settings.program, [], { shell: false, cwd: this.#settings.chdir, env, detached: true, windowsHide: true });
    } catch (err) {
      this.#release();
      this.#phase = 'done';
      this.#ctx.fail(new CgiError('CGI_SPAWN', `cgi ${this.#settings.program}: cannot be run (${errorCode(err)})`, { cause: err }));
      sendPage(res, 502, this.#out.headers, {});
      return;
    }
    this.#child = child;
    child.on('error', (err: NodeJS.ErrnoException) => {
      // Only spawning reports here (ENOENT, EACCES): kill() is never called on the ChildProcess.
      if (child.pid === undefined) this.#spawnError = err;
    });
    child.on('close', () => this.#onClose());
    child.stdin.on('error', () => {
      // EPIPE: the program exited or closed stdin without reading the whole body. Drop the rest.
      if (body !== null && !Buffer.isBuffer(body)) {
        body.unpipe(child.stdin);
        body.resume();
      }
    });
    child.stdout.on('error', () => undefined);
    child.stderr.on('error', () => undefined);
    if (body === null) child.stdin.end();
    else if (Buffer.isBuffer(body)) child.stdin.end(body);
    else body.pipe(child.stdin); // backpressure: the request is read as fast as the program reads stdin
    child.stdout.on('data', (chunk: Buffer) => this.#onStdout(chunk));
    child.stdout.on('end', () => this.#onStdoutEnd());
    stderrToLog(child, this.#settings.program, this.#ctx.log);
    res.on('close', () => {
      // Closed before we ended it: the client went away (or the response was cut). Stop the program.
      if (!res.writableEnded || this.#phase === 'body') {
        this.#kill();
        this.#stopRelaying();
      }
    });
    if (this.#settings.timeoutMs > 0) this.#timer = setTimeout(() => this.#onTimeout(), this.#settings.timeoutMs);
  }

  /**
   * Nothing more goes to the client: the rest of stdout is dropped (a stream left paused for a gone
   * client would never end, and 'close' never come), and a missing head is no longer an error.
   */
  #stopRelaying(): void {
    if (this.#phase === 'body' || this.#phase === 'head') this.#phase = 'done';
    if (this.#paused) {
      this.#paused = false;
      this.#child?.stdout.resume();
    }
  }

  get #name(): string {
    return `cgi ${this.#settings.program}[${this.#child?.pid ?? '-'}]`;
  }

  #onStdout(chunk: Buffer): void {
    if (this.#phase === 'head') {
      let parsed;
      try {
        parsed = this.#parser.push(chunk);
      } catch (err) {
        this.#malformed(err);
        return;
      }
      if (parsed === undefined) return;
      // #respond moves the phase on: to 'body' once the head is out.
      if (this.#respond(parsed.head) && parsed.rest.length > 0) this.#write(parsed.rest);
      return;
    }
    if (this.#phase === 'body') this.#write(chunk);
    // 'redirect' and 'done': the rest of the output is read and dropped.
  }

  #onStdoutEnd(): void {
    if (this.#phase !== 'body') return; // a missing head is judged at 'close', after any spawn error
    this.#phase = 'done';
    const res = this.#res;
    if (this.#withBody && this.#expected !== undefined && this.#sent !== this.#expected) {
      this.#ctx.fail(new CgiError('CGI_OUTPUT', `${this.#name}: wrote ${this.#sent} body bytes after Content-Length: ${this.#expected}; response cut`));
      abort(res);
      return;
    }
    res.end();
  }

  #onClose(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#release();
    if (this.#phase !== 'head') return;
    if (this.#spawnError !== undefined) {
      this.#phase = 'done';
      const err = this.#spawnError;
      this.#ctx.fail(new CgiError('CGI_SPAWN', `cgi ${this.#settings.program}: cannot be run (${errorCode(err)})`, { cause: err }));
      sendPage(this.#res, 502, this.#out.headers, {});
      return;
    }
    try {
      this.#parser.end();
    } catch (err) {
      this.#malformed(err);
    }
  }

  #malformed(err: unknown): void {
    this.#phase = 'done';
    const why = err instanceof CgiOutputError ? err.message : String(err);
    this.#ctx.fail(new CgiError('CGI_OUTPUT', `${this.#name}: malformed output: ${why}`, { cause: err }));
    sendPage(this.#res, 502, this.#out.headers, {});
    this.#kill();
  }

  #onTimeout(): void {
    this.#timer = undefined;
    const seconds = this.#settings.timeoutMs / 1000;
    const phase = this.#phase;
    this.#phase = 'done';
    this.#kill();
    this.#stopRelaying();
    if (phase === 'head') {
      this.#ctx.fail(new CgiError('CGI_TIMEOUT', `${this.#name}: no response within cgi-timeout ${seconds} s; killed`));
      sendPage(this.#res, 504, this.#out.headers, {});
    } else if (phase === 'body') {
      // The head is out: the status cannot change, so the client must see a cut, never a complete answer.
      this.#ctx.fail(new CgiError('CGI_TIMEOUT', `${this.#name}: still running after cgi-timeout ${seconds} s; killed, response cut`));
      abort(this.#res);
    } else this.#ctx.log(`${this.#name}: still running after cgi-timeout ${seconds} s; killed`);
  }

  /** SIGTERM to the program's process group, SIGKILL after {@link KILL_GRACE_MS}; once. */
  #kill(): void {
    const pid = this.#child?.pid;
    if (this.#killing || this.#closed || pid === undefined) return;
    this.#killing = true;
    signalGroup(pid, 'SIGTERM');
    // Kept after the program's exit: a grandchild that ignores SIGTERM is still in the group.
    setTimeout(() => signalGroup(pid, 'SIGKILL'), KILL_GRACE_MS);
  }

  /** Sends the head the program wrote (true: its body follows), or hands a local redirect to the adapter. */
  #respond(head: CgiHead): boolean {
    const res = this.#res;
    // RFC 3875 §6.2.2: a local redirect is served by the server itself; the program's other output is dropped.
    if (head.status === undefined && head.location !== undefined && head.location.startsWith('/') && !head.location.startsWith('//')) {
      this.#phase = 'redirect';
      try {
        this.#ctx.localRedirect(head.location);
      } catch (err) {
        this.#ctx.fail(err);
        abort(res);
      }
      return false;
    }
    if (res.destroyed || res.writableEnded) {
      this.#phase = 'done';
      return false;
    }
    // RFC 3875 §6.2.3: a client redirect without Status is a 302.
    const status = head.status ?? (head.location !== undefined ? 302 : 200);
    const headers: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
    for (const [name, value] of head.fields) {
      if (DROPPED.has(name)) continue;
      const prev = headers[name];
      headers[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
    }
    if (head.contentType !== undefined) headers['content-type'] = head.contentType;
    if (head.location !== undefined) headers.location = head.location;
    // No body for HEAD and for 1xx/204/304 (RFC 9110 §6.4.1): the program's bytes are dropped, and its Content-Length kept as it is.
    this.#withBody = this.#req.method !== 'HEAD' && status !== 204 && status !== 304;
    if (head.contentLength !== undefined) {
      headers['content-length'] = String(head.contentLength);
      this.#expected = head.contentLength;
    }
    // The configured headers replace the program's of the same name (as on file mounts); they never carry framing.
    for (const [name, value] of Object.entries(this.#out.headers)) headers[name] = value;
    try {
      if (res instanceof Http2ServerResponse) res.writeHead(status, forH2(res, headers));
      else if (head.reason !== '') res.writeHead(status, head.reason, headers);
      else res.writeHead(status, headers);
    } catch (err) {
      this.#malformed(err);
      return false;
    }
    this.#phase = 'body';
    return true;
  }

  /** Relays body bytes with backpressure: stdout pauses until the response drains. */
  #write(chunk: Buffer): void {
    if (!this.#withBody) return;
    this.#sent += chunk.length;
    if (this.#expected !== undefined && this.#sent > this.#expected) {
      this.#phase = 'done';
      this.#ctx.fail(new CgiError('CGI_OUTPUT', `${this.#name}: wrote more body bytes than its Content-Length: ${this.#expected}; response cut`));
      abort(this.#res);
      this.#kill();
      this.#stopRelaying();
      return;
    }
    const stdout = this.#child!.stdout;
    // The union's write overloads do not unify; both take a Buffer.
    if (!(this.#res as NodeJS.WritableStream).write(chunk) && !this.#paused) {
      this.#paused = true;
      stdout.pause();
      this.#res.once('drain', () => {
        this.#paused = false;
        stdout.resume();
      });
    }
  }
}

/** The errno code of a spawn failure, for the log. */
function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : err instanceof Error ? err.message : String(err);
}

// Control characters in a log line (other than TAB) are escaped: a program must not forge or hide log text.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/g;

/** Sends the program's stderr to `log` line by line, capped per line and per request; it is always read to the end. */
function stderrToLog(child: ChildProcessWithoutNullStreams, program: string, log: (line: string) => void): void {
  const prefix = `cgi ${program}[${child.pid ?? '-'}]: `;
  let pending: Buffer[] = [];
  let pendingSize = 0;
  let skipping = false; // inside a line already logged cut, until its end
  let lines = 0;
  const emit = (bytes: Buffer, cut: boolean): void => {
    if (lines > STDERR_LINES_MAX) return;
    lines++;
    if (lines > STDERR_LINES_MAX) {
      log(`${prefix}more than ${STDERR_LINES_MAX} lines on stderr; the rest is dropped`);
      return;
    }
    let text = bytes.toString('utf8');
    if (text.endsWith('\r')) text = text.slice(0, -1);
    text = text.replace(CONTROL, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
    try {
      log(`${prefix}${text}${cut ? ' […]' : ''}`);
    } catch {
      // the operator's log failing must not take the request down
    }
  };
  child.stderr.on('data', (chunk: Buffer) => {
    let from = 0;
    while (from < chunk.length) {
      const nl = chunk.indexOf(0x0a, from);
      const end = nl === -1 ? chunk.length : nl;
      if (!skipping) {
        const piece = chunk.subarray(from, end);
        pending.push(piece);
        pendingSize += piece.length;
        if (pendingSize > STDERR_LINE_MAX) {
          emit(Buffer.concat(pending, pendingSize).subarray(0, STDERR_LINE_MAX), true);
          pending = [];
          pendingSize = 0;
          skipping = nl === -1;
        } else if (nl !== -1) {
          emit(Buffer.concat(pending, pendingSize), false);
          pending = [];
          pendingSize = 0;
        }
      } else if (nl !== -1) skipping = false;
      from = nl === -1 ? chunk.length : nl + 1;
    }
  });
  child.stderr.on('end', () => {
    if (pendingSize > 0) emit(Buffer.concat(pending, pendingSize), false);
  });
}
