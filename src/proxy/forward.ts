/**
 * Carries out a proxy plan: forwards one request to its origin over a pooled keep-alive connection
 * and relays the answer as it arrives, with backpressure both ways and nothing buffered whole.
 *
 * undici, because a `Pool` is bound to one origin when it is made: no request target, Host header or
 * absolute-form URL can send a request anywhere else (structural SSRF protection; fast-proxy#42,
 * angular#68436). The request goes through `dispatch` with one handler object per exchange (undici's
 * own handler interface, the one its core calls without wrapping), so the per-request path allocates
 * no promise, no stream and no closure of its own.
 */
import type { ServerResponse } from 'node:http';
import { Http2ServerResponse, type Http2ServerRequest } from 'node:http2';
import { isIP } from 'node:net';
import type { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { buildConnector, Pool, type Dispatcher } from 'undici';
import { abort, type NodeRequest, type NodeResponse } from '../adapters/node.js';
import type { CoreResponse, ProxyTarget } from '../mounts/content.js';
import { statusPage, unavailablePage } from '../mounts/status.js';
import { clientResponseHeaders, collectFields, framingProblem, HOP_BY_HOP, upstreamRequestHeaders, type RawHeaders } from './headers.js';
import type { ProxySettings } from './origin.js';

/** What one proxy mount uses: its origin's pool and its count of requests in flight. */
export interface ProxyRoute {
  readonly settings: ProxySettings;
  readonly pool: Pool;
  /** Requests of this mount between dispatch and their end; at `settings.maxConcurrent`, 503. */
  inflight: number;
}

/**
 * The upstream connection pools of one handler: one undici `Pool` per origin (its key, TLS
 * verification and connect timeout), shared by every mount that forwards there, closed with the
 * handler. WebSocket upgrades open connections of their own (upgrade.ts): a tunnel never goes back
 * to a pool.
 */
export class ProxyPools {
  readonly #pools = new Map<string, Pool>();
  readonly #routes = new Map<ProxySettings, ProxyRoute>();
  #closed = false;

  /** Closes every pool: new requests are refused at once, requests in flight finish (a cut client cuts its own). */
  async close(): Promise<void> {
    this.#closed = true;
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    this.#routes.clear();
    await Promise.all(pools.map((p) => p.close()));
  }

  /**
   * The mount's route: the pool that reaches `settings.origin` (TCP, TLS verified unless `tlsVerify`
   * is false, or the origin's unix socket, with `connectTimeoutMs` for the connect and the handshake)
   * and the mount's in-flight count. Dispatch with `servername: settings.origin.host`, so that a
   * preserved client Host never changes a connection's TLS server name (undici would otherwise derive
   * one from each request's Host and drop the connection when it changes). Undefined once
   * {@link ProxyPools.close} was called.
   */
  route(settings: ProxySettings): ProxyRoute | undefined {
    let route = this.#routes.get(settings);
    if (route !== undefined) return route;
    if (this.#closed) return undefined;
    const key = `${settings.origin.key} verify=${settings.tlsVerify} connect=${settings.connectTimeoutMs}`;
    let pool = this.#pools.get(key);
    if (pool === undefined) {
      pool = createPool(settings);
      this.#pools.set(key, pool);
    }
    route = { settings, pool, inflight: 0 };
    this.#routes.set(settings, route);
    return route;
  }
}

/** An undici pool bound to `settings.origin`; see {@link ProxyPools.route}. */
function createPool(settings: ProxySettings): Pool {
  const { origin } = settings;
  const tls = origin.scheme === 'https';
  // RFC 6066 §3: no IP address literal in SNI; certificate checks then use the address itself.
  const sni = isIP(origin.host) === 0 ? origin.host : undefined;
  const connector = buildConnector({
    timeout: settings.connectTimeoutMs,
    ...(origin.socketPath === undefined ? {} : { socketPath: origin.socketPath }),
    ...(tls ? { rejectUnauthorized: settings.tlsVerify } : {}),
  });
  // undici passes the server name it derived from the request; the origin's name is the one that counts.
  const connect: buildConnector.connector = tls
    ? (options, callback) => {
        const { servername: _ignored, ...rest } = options;
        connector(sni === undefined ? rest : { ...rest, servername: sni }, callback);
      }
    : connector;
  const url = origin.socketPath === undefined ? origin.key : `${origin.scheme}://localhost`;
  return new Pool(url, { connect, pipelining: 1 });
}

/** What a proxied request needs from its adapter. */
export interface ProxyContext {
  readonly pools: ProxyPools;
  /** Reports the request's failure to the operator, once; never shown to the client. */
  readonly fail: (err: unknown) => void;
  /**
   * The path the framework stripped before the handler ran (Express's `app.use('/api', h)`: `/api`);
   * Locations rewritten onto the mountpoint get it in front.
   */
  readonly basePath?: string | undefined;
}

// RFC 9110 §9.2.2: the methods a retry cannot change the meaning of.
const IDEMPOTENT: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
// A connection that died before any answer: typically a keep-alive connection the origin closed as
// the request went out (undici: "other side closed").
const RETRYABLE: ReadonlySet<unknown> = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE']);
// Fields a trailer section cannot carry (RFC 9110 §6.5.1): framing, routing, content metadata.
const NOT_IN_TRAILERS: ReadonlySet<string> = new Set([
  ...HOP_BY_HOP,
  'content-length',
  'content-encoding',
  'content-range',
  'content-type',
  'host',
  'set-cookie',
]);

const EXCHANGE = Symbol('vfserve.proxyExchange');
type Tagged = NodeResponse & { [EXCHANGE]?: Exchange };

/** The response's 'close', shared by every exchange (no closure per request). */
function onClientClose(this: NodeResponse): void {
  (this as Tagged)[EXCHANGE]?.clientClosed();
}

// An error on the request body after undici let go of it (it destroys the body with the error).
function ignore(): void {}

/**
 * Forwards `req` as `out.proxy` says and relays the answer on `res`, the configured headers
 * (`out.headers`) over the relayed ones. Before any response byte: ambiguous framing gives 400,
 * a Via loop 508, the mount's concurrency cap 503 with Retry-After, an unreachable or broken origin
 * 502, a missing unix socket lws's 503 page, a timeout 504. After the head went out, a failure cuts
 * the connection (HTTP/2: RST_STREAM). Failures other than the client's own go to `ctx.fail` once.
 * Never throws.
 */
export function forward(req: NodeRequest, res: NodeResponse, out: CoreResponse & { readonly proxy: ProxyTarget }, ctx: ProxyContext): void {
  const target = out.proxy;
  const { settings } = target;
  const h2 = req.httpVersionMajor === 2;
  try {
    // RFC 9112 §6.1, §6.3: refuse what two parsers could frame differently (CVE-2026-29057, tinyproxy#609),
    // and close the connection, since where this request ends is unknown.
    // Only Content-Length and Transfer-Encoding can make framing ambiguous: most requests have neither.
    const framed = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
    if (framed && framingProblem(req.rawHeaders) !== undefined) {
      sendPage(req, res, out, 400, statusPage(400), h2 ? undefined : 'close');
      return;
    }
    const sock = req.socket;
    const made = upstreamRequestHeaders(req.rawHeaders, settings, {
      peer: sock.remoteAddress ?? '',
      encrypted: (sock as Partial<TLSSocket>).encrypted === true,
      httpVersion: req.httpVersion,
      localPort: sock.localPort ?? 0,
    });
    // Credentials checked by the mount's basic-auth were for vfserve, not for the origin.
    if (out.auth !== undefined && 'headers' in made) delete made.headers.authorization;
    if ('status' in made) {
      ctx.fail(new Error(`vfserve: proxy ${settings.origin.key}: 508, ${made.reason}`));
      sendPage(req, res, out, 508, statusPage(508));
      return;
    }
    const route = ctx.pools.route(settings);
    if (route === undefined || route.inflight >= settings.maxConcurrent) {
      ctx.fail(
        new Error(
          `vfserve: proxy ${settings.origin.key}: 503, ${route === undefined ? 'the handler is closed' : `${route.inflight} requests in flight (the cap)`}`,
        ),
      );
      sendPage(req, res, out, 503, statusPage(503), undefined, '1');
      return;
    }
    if (res.destroyed) return; // the client left while the engine routed
    new Exchange(req, res, out, ctx, route, made.headers, h2).start();
  } catch (err) {
    // Nothing above should throw; if it does, it is a bug, still answered and reported, never a crash.
    ctx.fail(err);
    if (res.headersSent) abort(res);
    else sendPage(req, res, out, 502, statusPage(502));
  }
}

/** One request forwarded and its answer relayed: undici's handler for it, and its retry. */
class Exchange implements Dispatcher.DispatchHandler {
  readonly #req: NodeRequest;
  readonly #res: NodeResponse;
  readonly #out: CoreResponse & { readonly proxy: ProxyTarget };
  readonly #ctx: ProxyContext;
  readonly #route: ProxyRoute;
  readonly #h2: boolean;
  // `servername` is read by undici's Request but missing from its types.
  readonly #opts: Dispatcher.DispatchOptions & { readonly servername: string };
  readonly #hasBody: boolean;
  #abort: ((err?: Error) => void) | undefined = undefined;
  /** The response head went out (or is written): from here a failure can only cut. */
  #started = false;
  /** res.end() was called: the exchange is complete. */
  #ended = false;
  /** The client went away first. */
  #gone = false;
  #retried = false;
  #released = false;
  /** undici's resume for this response, called on the client's 'drain' after a write that filled its buffer. */
  #resumeOnDrain: (() => void) | undefined = undefined;

  constructor(
    req: NodeRequest,
    res: NodeResponse,
    out: CoreResponse & { readonly proxy: ProxyTarget },
    ctx: ProxyContext,
    route: ProxyRoute,
    headers: Record<string, string>,
    h2: boolean,
  ) {
    this.#req = req;
    this.#res = res;
    this.#out = out;
    this.#ctx = ctx;
    this.#route = route;
    this.#h2 = h2;
    const body = requestBody(req, h2);
    this.#hasBody = body !== null;
    const { settings } = route;
    this.#opts = {
      path: out.proxy.path,
      method: req.method ?? 'GET',
      headers,
      // Never framed here: the client's Content-Length is in `headers` when it sent one, else undici
      // frames the stream chunked (CVE-2026-29057: never synthesise or drop framing).
      body,
      headersTimeout: settings.readTimeoutMs,
      bodyTimeout: settings.readTimeoutMs,
      servername: settings.origin.host,
    };
  }

  start(): void {
    this.#route.inflight++;
    (this.#res as Tagged)[EXCHANGE] = this;
    this.#res.on('close', onClientClose);
    if (this.#hasBody) this.#req.on('error', ignore);
    this.#route.pool.dispatch(this.#opts, this);
  }

  /** The client's response closed: if the exchange is not over, the upstream request is aborted. */
  clientClosed(): void {
    if (this.#ended || this.#gone) return;
    this.#gone = true;
    // Before onConnect there is nothing to abort yet; onConnect aborts on seeing #gone.
    this.#abort?.();
  }

  onConnect(abortRequest: (err?: Error) => void): void {
    this.#abort = abortRequest;
    if (this.#gone) abortRequest();
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    // 1xx other than 101 (103 Early Hints…): informational, dropped (RFC 9110 §15.2 lets a proxy).
    if (statusCode < 200) return true;
    const res = this.#res;
    const settings = this.#route.settings;
    const base = this.#ctx.basePath;
    const target = this.#out.proxy;
    const rewrite = base === undefined ? target : { settings, mountpoint: target.mountpoint === '/' ? base : `${base}${target.mountpoint}` };
    const headers = clientResponseHeaders(rawHeaders, rewrite);
    const configured = this.#out.headers;
    for (const name in configured) if (!this.#h2 || !HOP_BY_HOP.has(name)) headers[name] = configured[name]!;
    // RFC 9110 §6.6.2: the upstream's Trailer announcement goes on when the relayed response is chunked too.
    if (headers['content-length'] === undefined && settings.headerMode === 'standard' && this.#chunked(statusCode)) {
      const announced = collectFields(rawHeaders).get('trailer');
      if (announced !== undefined) headers.trailer = announced.join(', ');
    }
    try {
      if (res instanceof Http2ServerResponse) res.writeHead(statusCode, headers);
      else res.writeHead(statusCode, headers);
    } catch (err) {
      // An answer node cannot relay (a status or field value it refuses): an invalid response, 502.
      for (const name in headers) res.removeHeader(name);
      this.#abort?.(err as Error);
      return false;
    }
    this.#started = true;
    // Server-sent events: the head goes now, not with the first event (WHATWG HTML §9.2).
    const type = headers['content-type'];
    if (typeof type === 'string' && type.startsWith('text/event-stream') && !(res instanceof Http2ServerResponse)) res.flushHeaders();
    this.#resumeOnDrain = resume;
    return true;
  }

  onData(chunk: Buffer): boolean {
    const res = this.#res;
    if (this.#h2 ? (res as Http2ServerResponse).write(chunk) : (res as ServerResponse).write(chunk)) return true;
    // Backpressure: undici stops reading the origin until the client has taken what it was given.
    this.#res.once('drain', this.#resumeOnDrain!);
    return false;
  }

  onComplete(trailers: string[] | Buffer[] | null): void {
    const res = this.#res;
    this.#ended = true;
    this.#release();
    try {
      if (trailers !== null && trailers.length > 0 && this.#route.settings.headerMode === 'standard') {
        const relayed = relayedTrailers(trailers);
        if (relayed !== undefined) res.addTrailers(relayed);
      }
      res.end();
    } catch (err) {
      this.#ctx.fail(err);
      abort(res);
    }
  }

  onError(err: Error): void {
    if (this.#gone) {
      // The client left first; the upstream request was aborted for it. Nothing to report or send.
      this.#release();
      return;
    }
    if (!this.#started && this.#retryable(err)) {
      this.#retried = true;
      this.#abort = undefined;
      this.#route.pool.dispatch(this.#opts, this);
      return;
    }
    this.#release();
    const { settings } = this.#route;
    const status = statusFor(err, settings.origin.socketPath !== undefined);
    this.#ctx.fail(new Error(`vfserve: proxy ${settings.origin.key}${this.#opts.path}: ${status}, ${describe(err)}`, { cause: err }));
    this.#ended = true;
    if (this.#started || this.#res.headersSent) {
      // Bytes are out: the status cannot change. A cut connection (HTTP/2: RST_STREAM), never an
      // appended error body a client could take for the end of the answer.
      abort(this.#res);
      return;
    }
    const page = status === 503 ? unavailablePage() : statusPage(status);
    sendPage(this.#req, this.#res, this.#out, status, page);
  }

  /** RFC 9110 §9.2.2: once, for an idempotent bodiless request whose connection died before any answer. */
  #retryable(err: Error): boolean {
    return !this.#retried && !this.#hasBody && RETRYABLE.has((err as { code?: unknown }).code) && IDEMPOTENT.has(this.#opts.method);
  }

  /** Whether node frames this response chunked (so it can carry trailers). */
  #chunked(statusCode: number): boolean {
    if (this.#h2) return true; // HTTP/2 frames by itself and carries trailers always
    return this.#req.httpVersion === '1.1' && this.#req.method !== 'HEAD' && statusCode !== 204 && statusCode !== 304;
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#route.inflight--;
    if (this.#hasBody) this.#req.off('error', ignore);
  }
}

/** The request body undici streams upstream, or null for a request that has none. */
function requestBody(req: NodeRequest, h2: boolean): Readable | null {
  const length = req.headers['content-length'];
  if (h2) return (req as Http2ServerRequest).stream.endAfterHeaders || length === '0' ? null : req;
  // RFC 9112 §6.3: with neither Content-Length nor Transfer-Encoding, a request has no body.
  if (req.headers['transfer-encoding'] !== undefined) return req;
  return length === undefined || length === '0' ? null : req;
}

/** The upstream's trailer fields a client may be given, or undefined for none. */
function relayedTrailers(raw: RawHeaders): Record<string, string> | undefined {
  let out: Record<string, string> | undefined;
  for (const [name, values] of collectFields(raw)) {
    if (NOT_IN_TRAILERS.has(name)) continue;
    (out ??= {})[name] = values.join(', ');
  }
  return out;
}

/**
 * The status for an upstream failure before any response byte (RFC 9110 §15.6): a timeout (connect,
 * TLS handshake, head, idle) 504; a unix socket with nothing listening 503 (lws's page); a pool closed
 * by a reload 503; anything else (refused, reset, TLS verification, an invalid answer) 502.
 */
function statusFor(err: Error, unix: boolean): 502 | 503 | 504 {
  switch ((err as { code?: unknown }).code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
    case 'ETIMEDOUT':
      return 504;
    case 'ENOENT':
    case 'ECONNREFUSED':
      return unix ? 503 : 502;
    case 'UND_ERR_CLOSED':
    case 'UND_ERR_DESTROYED':
      return 503;
    default:
      return 502;
  }
}

function describe(err: Error): string {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? `${code} ${err.message}` : err.message;
}

/**
 * Answers with one of the proxy's own pages: the configured headers over it (never the framing
 * ones, as on every page; on HTTP/2 never a connection-specific one), no body for HEAD.
 */
function sendPage(
  req: NodeRequest,
  res: NodeResponse,
  out: CoreResponse,
  status: number,
  page: { body: Buffer; headers: Record<string, string> },
  connection?: 'close',
  retryAfter?: string,
): void {
  const h2 = req.httpVersionMajor === 2;
  try {
    if (res.headersSent) {
      abort(res);
      return;
    }
    const headers = page.headers;
    for (const name in out.headers) if (!h2 || !HOP_BY_HOP.has(name)) headers[name] = out.headers[name]!;
    if (retryAfter !== undefined) headers['retry-after'] = retryAfter;
    if (connection !== undefined) headers.connection = connection;
    if (res instanceof Http2ServerResponse) res.writeHead(status, headers);
    else res.writeHead(status, headers);
    if (req.method === 'HEAD') res.end();
    else res.end(page.body);
  } catch {
    abort(res);
  }
}
