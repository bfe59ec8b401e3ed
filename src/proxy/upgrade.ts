/**
 * WebSocket (and other HTTP/1.1 Upgrade) pass-through for proxy mounts: the request goes to the
 * origin over a connection of its own, the origin's 101 is relayed, and then bytes are piped both
 * ways until either side ends. Extended CONNECT (RFC 8441, WebSockets over HTTP/2) is not handled:
 * only HTTP/1.1 clients reach node's `'upgrade'` event.
 *
 * Never pooled: an upgraded connection belongs to one client for its whole life, so each upgrade
 * opens its own TCP, TLS or unix-socket connection and destroys it with the tunnel.
 */
import type { IncomingMessage } from 'node:http';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import type { CoreResponse, ProxyTarget } from '../mounts/content.js';
import type { ProxyContext } from './forward.js';
import { clientResponseHeaders, collectFields, framingProblem, upstreamRequestHeaders, type ClientConnection } from './headers.js';
import type { ProxySettings } from './origin.js';

/** The most bytes of response head (interim 1xx heads included) read from an origin before it is called broken (502). */
export const MAX_RESPONSE_HEAD = 16 * 1024;

/**
 * The most bytes a tunnel may hold queued for one side before it is cut, as lws drops a proxied
 * WebSocket past 10 MiB. With backpressure (the reader pauses once the writer's buffer passes its
 * high-water mark) the queue stays near 16 KiB; this bound is the guarantee, not the working level.
 */
export const MAX_TUNNEL_BUFFER = 10 * 1024 * 1024;

// A refused client gets this long to read the answer and close before its socket is destroyed.
const REFUSAL_GRACE_MS = 5_000;

/** How an upgrade ended, for access logs: filled in as the exchange goes, read when the client socket closes. */
export interface UpgradeOutcome {
  /**
   * The status the client was sent: 101, the origin's refusal (relayed), or the proxy's own
   * (502, 503, 504, 508, …). 0 while none has been sent; still 0 at close means the client left first.
   */
  status: number;
  /** Bytes relayed from the origin to the client after the response head: the body of a refusal, or the tunnel's traffic. */
  bytes: number;
}

/** What {@link forwardUpgrade} takes from its adapter: the proxy context, and where it records the outcome. */
export interface UpgradeContext extends ProxyContext {
  /** Updated in place as the exchange goes (see {@link UpgradeOutcome}); optional. */
  readonly outcome?: UpgradeOutcome;
}

const PHRASES: Readonly<Record<number, string>> = {
  301: 'Moved Permanently',
  302: 'Found',
  307: 'Temporary Redirect',
  308: 'Permanent Redirect',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  508: 'Loop Detected',
};

/**
 * Answers an upgrade request with `status` and no body, then closes the socket: the client's
 * further bytes are read and dropped (so closing never turns into a reset that could eat the
 * answer), and a client that does not close within a few seconds is cut. `extra` are header lines
 * without CRLF (`location: /ws/`). Safe on a socket that is already gone.
 */
export function refuseUpgrade(socket: Duplex, status: number, outcome?: UpgradeOutcome, extra: readonly string[] = []): void {
  if (outcome !== undefined) outcome.status = status;
  if (socket.destroyed) return;
  if (socket.listenerCount('error') === 0) socket.on('error', () => undefined);
  const timer = setTimeout(() => socket.destroy(), REFUSAL_GRACE_MS);
  // The socket holds the process anyway; the timer alone must not.
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  socket.resume();
  const lines = [`HTTP/1.1 ${status} ${PHRASES[status] ?? 'Error'}`, ...extra, 'connection: close', 'content-length: 0'];
  socket.end(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
}

/** A parsed response head: status, reason and raw header list (name, value, …) as {@link clientResponseHeaders} takes it. */
interface ResponseHead {
  readonly status: number;
  readonly reason: string;
  readonly raw: string[];
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Field values: visible characters, SP, HTAB and obs-text; no CR, LF, NUL or other controls.
// eslint-disable-next-line no-control-regex
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;

/**
 * Parses one response head (without its final empty line) as latin1 text. Strict where a lenient
 * reading could be turned against the client: obs-fold, a bare CR or LF, a name that is not a
 * token or a colon after whitespace are all refused (RFC 9112 §2.2, §5.1, §5.2).
 */
function parseHead(text: string): ResponseHead | string {
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.[01] ([1-9][0-9]{2})(?: ([^\r\n]*))?$/.exec(lines[0]!);
  if (!m) return 'a malformed status line';
  const raw: string[] = [];
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) return 'a header line without a name';
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) return `a malformed header name ${JSON.stringify(name.slice(0, 40))}`;
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
    if (BAD_VALUE.test(value)) return `a control character in header ${name}`;
    raw.push(name, value);
  }
  return { status: Number(m[1]), reason: m[2] ?? '', raw };
}

/** Finds where an HTTP/1.1 response body ends, passing its bytes through unchanged. */
interface BodyEnd {
  /** How many bytes of `chunk` belong to the body; fewer than `chunk.length` means the body ends inside it. Throws on malformed framing. */
  take(chunk: Buffer): number;
  /** The body is complete. */
  readonly done: boolean;
  /** The body ends with the connection (no Content-Length, no Transfer-Encoding): `done` is never set. */
  readonly closeDelimited: boolean;
}

/** A Content-Length body, or a bodiless one (0). */
function lengthEnd(length: number): BodyEnd {
  let left = length;
  return {
    take(chunk) {
      const n = Math.min(left, chunk.length);
      left -= n;
      return n;
    },
    get done() {
      return left === 0;
    },
    closeDelimited: false,
  };
}

/** A body delimited by the connection's close: everything is body. */
function closeEnd(): BodyEnd {
  return { take: (chunk) => chunk.length, done: false, closeDelimited: true };
}

// A chunk-size line (with extensions) or trailer line longer than this is malformed for our purposes.
const MAX_CHUNK_LINE = 4096;

/**
 * A chunked body (RFC 9112 §7.1): tracks chunk sizes, data and the trailer section only to find
 * the end; the bytes themselves are relayed as they are, framing included.
 */
function chunkedEnd(): BodyEnd {
  type State = 'size' | 'ext' | 'sizeLf' | 'data' | 'dataCr' | 'dataLf' | 'trailer' | 'trailerLf' | 'done';
  let state: State = 'size';
  let size = 0;
  let digits = 0;
  let line = 0;
  let left = 0;
  const bad = (why: string): never => {
    throw new Error(`the origin's chunked body is malformed (${why})`);
  };
  return {
    take(chunk) {
      let i = 0;
      while (i < chunk.length && state !== 'done') {
        if (state === 'data') {
          const n = Math.min(left, chunk.length - i);
          left -= n;
          i += n;
          if (left === 0) state = 'dataCr';
          continue;
        }
        const c = chunk[i++]!;
        if (++line > MAX_CHUNK_LINE) bad('a line too long');
        switch (state) {
          case 'size': {
            const hex = c >= 0x30 && c <= 0x39 ? c - 0x30 : (c | 0x20) >= 0x61 && (c | 0x20) <= 0x66 ? (c | 0x20) - 0x57 : -1;
            if (hex >= 0) {
              // 13 hex digits is already past 2^52: a size that large is an attack, not a body.
              if (++digits > 13) bad('a chunk size too large');
              size = size * 16 + hex;
            } else if (digits === 0) bad('no chunk size');
            else if (c === 0x0d) state = 'sizeLf';
            else if (c === 0x3b || c === 0x20 || c === 0x09) state = 'ext';
            else bad('a character after the chunk size');
            break;
          }
          case 'ext':
            if (c === 0x0d) state = 'sizeLf';
            else if (c === 0x0a) bad('a bare LF');
            break;
          case 'sizeLf':
            if (c !== 0x0a) bad('CR without LF');
            line = 0;
            if (size === 0) state = 'trailer';
            else {
              left = size;
              state = 'data';
            }
            size = 0;
            digits = 0;
            break;
          case 'dataCr':
            if (c !== 0x0d) bad('no CRLF after chunk data');
            state = 'dataLf';
            break;
          case 'dataLf':
            if (c !== 0x0a) bad('no CRLF after chunk data');
            state = 'size';
            line = 0;
            break;
          case 'trailer':
            if (c === 0x0d) state = 'trailerLf';
            else if (c === 0x0a) bad('a bare LF');
            break;
          case 'trailerLf':
            if (c !== 0x0a) bad('CR without LF');
            // An empty line (only its CRLF seen since the last line ended) ends the trailer section.
            state = line === 2 ? 'done' : 'trailer';
            line = 0;
            break;
        }
      }
      return i;
    },
    get done() {
      return state === 'done';
    },
    closeDelimited: false,
  };
}

/** Where the body of a relayed (non-101) response ends, or why its framing cannot be trusted. */
function bodyEnd(method: string, head: ResponseHead): BodyEnd | string {
  if (method === 'HEAD' || head.status === 204 || head.status === 304) return lengthEnd(0);
  const problem = framingProblem(head.raw);
  if (problem !== undefined) return problem;
  const fields = collectFields(head.raw);
  if (fields.has('transfer-encoding')) return chunkedEnd();
  const length = fields.get('content-length')?.[0];
  if (length !== undefined) return lengthEnd(Number(length.trim()));
  return closeEnd();
}

/** The tokens of a comma-separated header field, lower-case, empties dropped. */
function tokens(value: string | undefined): string[] {
  if (value === undefined) return [];
  return value
    .split(',')
    .map((t) => t.trim().toLowerCase())
    .filter((t) => t !== '');
}

/**
 * The request's headers for the origin. In `lws` header mode lws's allowlist would drop the
 * handshake itself, so the client's `Sec-WebSocket-*` fields and `Origin` (which WebSocket servers
 * check against cross-site hijacking) are added to it; lws terminates WebSockets itself and has
 * no pass-through rule to copy.
 */
function requestHeaders(req: IncomingMessage, settings: ProxySettings, client: ClientConnection): ReturnType<typeof upstreamRequestHeaders> {
  const up = upstreamRequestHeaders(req.rawHeaders, settings, client, true);
  if (settings.headerMode !== 'lws' || !('headers' in up)) return up;
  const headers = { ...up.headers };
  for (const [name, values] of collectFields(req.rawHeaders)) if (name.startsWith('sec-websocket-') || name === 'origin') headers[name] = values.join(', ');
  return { headers };
}

/** The headers relayed on a 101: the origin's minus hop-by-hop ones, keeping the handshake's `Sec-WebSocket-*` in `lws` mode too. */
function switchHeaders(head: ResponseHead, target: ProxyTarget): Record<string, string | string[]> {
  const relayed = clientResponseHeaders(head.raw, { settings: target.settings, mountpoint: target.mountpoint });
  if (target.settings.headerMode === 'lws') {
    for (const [name, values] of collectFields(head.raw)) if (name.startsWith('sec-websocket-')) relayed[name] = values.join(', ');
  }
  return relayed;
}

// Fields the proxy sets itself on a relayed head, never taken from the origin's or the configured
// headers: framing has no place on a 101 (RFC 9110 §8.6, RFC 9112 §6.1), and hop-by-hop fields describe this hop.
const PROXY_SET = new Set(['content-length', 'transfer-encoding', 'connection', 'upgrade', 'keep-alive', 'proxy-connection', 'trailer', 'te']);

/** Serialises a response head: status line, each field on its own line (Set-Cookie stays a list), the empty line. */
function serializeHead(status: number, reason: string, headers: Record<string, string | string[]>): string {
  let out = `HTTP/1.1 ${status} ${reason}\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    for (const v of Array.isArray(value) ? value : [value]) out += `${name}: ${v}\r\n`;
  }
  return `${out}\r\n`;
}

/** Connects to the origin: a unix socket, TCP, or TLS with SNI (host names only) and verification per the settings; half-open allowed. */
function connectOrigin(settings: ProxySettings): Socket {
  const { origin } = settings;
  if (origin.socketPath !== undefined) return netConnect({ path: origin.socketPath, allowHalfOpen: true });
  if (origin.scheme === 'https') {
    // tls.connect passes allowHalfOpen to its TLSSocket (node's _tls_wrap), though @types/node omits it.
    const options: ConnectionOptions & { readonly allowHalfOpen: boolean } = {
      host: origin.host,
      port: origin.port,
      // SNI carries host names only (RFC 6066 §3); a literal IP is verified against the certificate's IP SANs.
      ...(isIP(origin.host) === 0 ? { servername: origin.host } : {}),
      rejectUnauthorized: settings.tlsVerify,
      ALPNProtocols: ['http/1.1'],
      allowHalfOpen: true,
    };
    return tlsConnect(options);
  }
  return netConnect({ host: origin.host, port: origin.port, allowHalfOpen: true });
}

/** The status for a failed connect: a missing or dead unix socket is 503 (as lws), a refusal or reset 502. */
function connectStatus(err: unknown, settings: ProxySettings): number {
  const code = (err as NodeJS.ErrnoException).code;
  if (settings.origin.socketPath !== undefined && (code === 'ENOENT' || code === 'ECONNREFUSED')) return 503;
  return 502;
}

/** What the proxy tells the operator about an origin, without the client's request in it. */
function where(settings: ProxySettings): string {
  return settings.origin.socketPath !== undefined ? `unix:${settings.origin.socketPath}` : `${settings.origin.scheme}://${settings.origin.authority}`;
}

/**
 * Forwards an upgrade request (node:http's `'upgrade'` event) as `out.proxy` says. Contract:
 *
 * - A connection of its own is opened to the origin (connect timeout: `connectTimeoutMs`), the
 *   request line `METHOD <out.proxy.path> HTTP/1.1` and the headers of {@link upstreamRequestHeaders}
 *   (the client's Upgrade offer and `Connection: upgrade`) are written, then `head`.
 * - The origin's response head is read (at most {@link MAX_RESPONSE_HEAD} bytes; interim 1xx heads
 *   other than 101 are skipped; idle limit `readTimeoutMs`). A 101 whose `Upgrade` is one of the
 *   tokens the client offered, with `Connection: upgrade`, is relayed as `101 Switching Protocols`
 *   with the origin's end-to-end headers and the configured `out.headers` (framing and hop-by-hop
 *   names left out), then the two sockets are piped both ways. Any other final status is relayed
 *   as the origin sent it (head re-serialised, body byte for byte up to its framed end) and both
 *   connections closed: the client never sees a 101 the origin did not give.
 * - Before the client has an answer, failures answer with a bodiless status and close: a framing
 *   problem 400, a Via loop 508, a refused or reset connect or a broken response head 502, a
 *   missing or dead unix socket 503, a connect or response-head timeout 504. Each but the 400 (the
 *   client's own fault) is reported once through `ctx.fail`; an origin's refusal is its answer,
 *   relayed and not reported.
 * - The tunnel: backpressure both ways (each side's queue is capped at {@link MAX_TUNNEL_BUFFER});
 *   an end (FIN) on one side ends the other's writing side, so half-closes pass through; an error
 *   or an abrupt close on either side destroys both; `readTimeoutMs` without a byte in either
 *   direction (0: no limit) closes both. An upstream error after the 101 is reported; a client's
 *   reset is not (clients leave).
 *
 * Never throws, never leaves an `'error'` event unhandled, never leaves a socket open after the
 * exchange ends. `ctx.outcome`, when given, is kept up to date for the access log.
 */
export function forwardUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  out: CoreResponse & { readonly proxy: ProxyTarget },
  ctx: UpgradeContext,
): void {
  const target = out.proxy;
  const { settings } = target;
  const outcome = ctx.outcome ?? { status: 0, bytes: 0 };
  const method = req.method ?? 'GET';
  const origin = where(settings);
  // A client's reset is routine; it ends the exchange below through 'close'.
  socket.on('error', () => undefined);
  // Gone already (it left while the plan was made): nothing to open a connection for.
  if (socket.destroyed) return;

  const offered = tokens(req.headers.upgrade);
  if (offered.length === 0 || framingProblem(req.rawHeaders) !== undefined) {
    refuseUpgrade(socket, 400, outcome);
    return;
  }
  const peer = req.socket;
  const client: ClientConnection = {
    peer: peer.remoteAddress ?? '',
    encrypted: (peer as { encrypted?: unknown }).encrypted === true,
    httpVersion: req.httpVersion,
    localPort: peer.localPort ?? 0,
  };
  const up = requestHeaders(req, settings, client);
  // Credentials checked by the mount's basic-auth were for vfserve, not for the origin.
  if (out.auth !== undefined && 'headers' in up) delete up.headers.authorization;
  if (!('headers' in up)) {
    ctx.fail(new Error(`vfserve: proxy ${origin}: upgrade refused with 508: ${up.reason}`));
    refuseUpgrade(socket, 508, outcome);
    return;
  }

  // connect → head (request sent, reading the answer) → tunnel (101 relayed) or relay (a refusal
  // relayed) → done. Every handler below checks the phase, so late events from either socket are inert.
  let phase: 'connect' | 'head' | 'tunnel' | 'relay' | 'done' = 'connect';
  const upstream = connectOrigin(settings);
  const connectTimer = setTimeout(
    () => failBefore(504, new Error(`vfserve: proxy ${origin}: upgrade connect timed out after ${settings.connectTimeoutMs} ms`)),
    settings.connectTimeoutMs,
  );
  /** Before the client has an answer: report once, answer `status`, drop the origin's connection. */
  const failBefore = (status: number, err: Error): void => {
    if (phase !== 'connect' && phase !== 'head') return;
    phase = 'done';
    clearTimeout(connectTimer);
    upstream.destroy();
    ctx.fail(err);
    refuseUpgrade(socket, status, outcome);
  };
  /** After the answer went out: both connections go at once (the client sees the break). */
  const cut = (): void => {
    phase = 'done';
    clearTimeout(connectTimer);
    upstream.destroy();
    socket.destroy();
  };

  upstream.on('error', (err) => {
    if (phase === 'connect')
      failBefore(connectStatus(err, settings), new Error(`vfserve: proxy ${origin}: upgrade connect failed: ${err.message}`, { cause: err }));
    else if (phase === 'head')
      failBefore(502, new Error(`vfserve: proxy ${origin}: the connection failed before the upgrade response: ${err.message}`, { cause: err }));
    else if (phase !== 'done') {
      ctx.fail(
        new Error(`vfserve: proxy ${origin}: the ${phase === 'tunnel' ? 'upgraded connection' : 'relayed refusal'} failed: ${err.message}`, { cause: err }),
      );
      cut();
    }
  });
  upstream.on('timeout', () => {
    if (phase === 'connect' || phase === 'head')
      failBefore(504, new Error(`vfserve: proxy ${origin}: no upgrade response within ${settings.readTimeoutMs} ms`));
    // An idle tunnel (or stalled relayed refusal) is closed: idling is no one's failure.
    else if (phase !== 'done') cut();
  });
  // The client left before its answer: nothing to relay to.
  socket.once('close', () => {
    if (phase !== 'connect' && phase !== 'head') return;
    phase = 'done';
    clearTimeout(connectTimer);
    upstream.destroy();
  });

  upstream.once(settings.origin.scheme === 'https' && settings.origin.socketPath === undefined ? 'secureConnect' : 'connect', () => {
    if (phase !== 'connect') return;
    phase = 'head';
    clearTimeout(connectTimer);
    if (settings.readTimeoutMs > 0) upstream.setTimeout(settings.readTimeoutMs);
    let text = `${method} ${target.path} HTTP/1.1\r\n`;
    for (const [name, value] of Object.entries(up.headers)) text += `${name}: ${value}\r\n`;
    upstream.write(`${text}\r\n`, 'latin1');
    // Bytes the client sent after its request head (node read them with it) go on right after ours.
    if (head.length > 0) upstream.write(head);
    readHead();
  });

  /** Reads response heads until a final one, MAX_RESPONSE_HEAD bytes at most in all: nothing accumulates past that. */
  const readHead = (): void => {
    let pending: Buffer = Buffer.alloc(0);
    let consumed = 0;
    const tooLong = (): void => failBefore(502, new Error(`vfserve: proxy ${origin}: the upgrade response head is over ${MAX_RESPONSE_HEAD} bytes`));
    const onData = (chunk: Buffer): void => {
      if (phase !== 'head') return;
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      for (;;) {
        const end = pending.indexOf('\r\n\r\n', 0, 'latin1');
        if (end === -1) {
          if (consumed + pending.length > MAX_RESPONSE_HEAD) tooLong();
          return;
        }
        consumed += end + 4;
        if (consumed > MAX_RESPONSE_HEAD) {
          tooLong();
          return;
        }
        const parsed = parseHead(pending.toString('latin1', 0, end));
        const rest = pending.subarray(end + 4);
        if (typeof parsed === 'string') {
          failBefore(502, new Error(`vfserve: proxy ${origin}: the upgrade response has ${parsed}`));
          return;
        }
        // 100 Continue, 103 Early Hints: interim, never the answer.
        if (parsed.status < 200 && parsed.status !== 101) {
          pending = rest;
          continue;
        }
        // Paused before the listener goes: a flowing stream without one would drop bytes.
        upstream.pause();
        upstream.off('data', onData);
        upstream.off('end', onEnd);
        if (parsed.status === 101) switchProtocols(parsed, rest);
        else relayRefusal(parsed, rest);
        return;
      }
    };
    const onEnd = (): void => failBefore(502, new Error(`vfserve: proxy ${origin}: the origin closed before its upgrade response`));
    upstream.on('data', onData);
    upstream.once('end', onEnd);
  };

  /** A 101: checked against the offer, relayed, then the tunnel. */
  const switchProtocols = (parsed: ResponseHead, rest: Buffer): void => {
    const fields = collectFields(parsed.raw);
    const chosen = tokens(fields.get('upgrade')?.join(','));
    const connection = tokens(fields.get('connection')?.join(','));
    // One protocol, one the client offered, and the Connection option that makes it a switch (RFC 9110 §7.8).
    if (chosen.length !== 1 || !offered.includes(chosen[0]!) || !connection.includes('upgrade')) {
      const said = `Upgrade ${JSON.stringify(fields.get('upgrade')?.join(', ') ?? '')}, Connection ${JSON.stringify(fields.get('connection')?.join(', ') ?? '')}`;
      failBefore(502, new Error(`vfserve: proxy ${origin}: the origin's 101 (${said}) does not accept the offer ${JSON.stringify(req.headers.upgrade)}`));
      return;
    }
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(switchHeaders(parsed, target))) if (!PROXY_SET.has(name)) headers[name] = value;
    // The configured headers are harmless on a 101 (security headers, Server) and consistent with every other response.
    for (const [name, value] of Object.entries(out.headers)) if (!PROXY_SET.has(name)) headers[name] = value;
    headers.connection = 'Upgrade';
    // The origin's own spelling of the token (WebSocket's is case-insensitive; others need not be).
    headers.upgrade = fields
      .get('upgrade')!
      .join(',')
      .split(',')
      .map((t) => t.trim())
      .find((t) => t !== '')!;
    phase = 'tunnel';
    outcome.status = 101;
    socket.write(serializeHead(101, 'Switching Protocols', headers), 'latin1');
    if (rest.length > 0) {
      outcome.bytes += rest.length;
      socket.write(rest);
    }
    upstream.on('data', (chunk: Buffer) => {
      outcome.bytes += chunk.length;
    });
    pipeGuarded(upstream, socket);
    pipeGuarded(socket, upstream);
  };

  /** One direction of the tunnel: backpressure by pipe(), a FIN passed on, an abort turned into a cut. */
  const pipeGuarded = (from: Duplex, to: Duplex): void => {
    // pipe() pauses `from` once `to` is past its high-water mark; this catches a writer that keeps
    // accepting regardless, which must not grow without bound (it cannot happen with node's sockets).
    from.on('data', () => {
      if (to.writableLength > MAX_TUNNEL_BUFFER) cut();
    });
    // A FIN reaches pipe() as 'end', and pipe() ends `to`: the half-close passes through.
    from.pipe(to);
    // A close without that end (a reset, a destroy) is an abort: the other side goes too.
    from.once('close', () => {
      if (phase === 'tunnel' && !from.readableEnded) cut();
    });
  };

  /** Any final status but 101: relayed as the origin sent it, then both connections closed. */
  const relayRefusal = (parsed: ResponseHead, rest: Buffer): void => {
    const end = bodyEnd(method, parsed);
    if (typeof end === 'string') {
      failBefore(502, new Error(`vfserve: proxy ${origin}: the origin's answer to an upgrade has ${end}`));
      return;
    }
    const framing = collectFields(parsed.raw);
    const headers = clientResponseHeaders(parsed.raw, { settings, mountpoint: target.mountpoint });
    for (const [name, value] of Object.entries(out.headers)) if (!PROXY_SET.has(name)) headers[name] = value;
    // The body goes byte for byte, so its framing fields go with it; the connection closes after it.
    const te = framing.get('transfer-encoding');
    if (te !== undefined) headers['transfer-encoding'] = te.join(', ');
    else if (framing.has('content-length')) headers['content-length'] = framing.get('content-length')![0]!.trim();
    headers.connection = 'close';
    phase = 'relay';
    outcome.status = parsed.status;
    socket.write(serializeHead(parsed.status, parsed.reason === '' ? (PHRASES[parsed.status] ?? 'Unknown') : parsed.reason, headers), 'latin1');
    // The client's further bytes have nowhere to go: read and dropped, so that closing is clean.
    socket.resume();
    const complete = (): void => {
      phase = 'done';
      upstream.destroy();
      socket.end();
      const timer = setTimeout(() => socket.destroy(), REFUSAL_GRACE_MS);
      timer.unref();
      socket.once('close', () => clearTimeout(timer));
    };
    let waiting = false;
    const feed = (chunk: Buffer): void => {
      if (phase !== 'relay') return;
      let n: number;
      try {
        n = end.take(chunk);
      } catch (err) {
        ctx.fail(new Error(`vfserve: proxy ${origin}: ${(err as Error).message}`));
        cut();
        return;
      }
      if (n > 0) {
        outcome.bytes += n;
        // Backpressure: the origin waits while the client is slow.
        if (!socket.write(n === chunk.length ? chunk : chunk.subarray(0, n)) && !waiting) {
          waiting = true;
          upstream.pause();
          socket.once('drain', () => {
            waiting = false;
            upstream.resume();
          });
        }
      }
      if (end.done) complete();
    };
    if (end.done) {
      complete();
      return;
    }
    upstream.on('data', feed);
    // The origin's close ends a close-delimited body; any other body it cuts short, and so the client's copy.
    upstream.once('end', () => {
      if (phase !== 'relay') return;
      if (end.closeDelimited) complete();
      else cut();
    });
    upstream.once('close', () => {
      if (phase === 'relay') cut();
    });
    if (rest.length > 0) feed(rest);
    // Harmless when `rest` already held the whole body: the upstream is destroyed by then.
    upstream.resume();
  };
}
