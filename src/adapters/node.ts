/**
 * The node:http adapter (also node:http2's compatibility API and
 * Connect/Express): translates requests for the core and sends what it
 * answers. It decides nothing about files.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { constants as h2, Http2ServerResponse, type Http2ServerRequest } from 'node:http2';
import type { Duplex } from 'node:stream';
import { CgiError, runCgi } from '../cgi/run.js';
import { FopError } from '../fops/errors.js';
import {
  ServeEngine,
  type BodySource,
  type CallbackTarget,
  type CgiTarget,
  type CoreRequest,
  type CoreResponse,
  type EngineOptions,
  type ProxyTarget,
} from '../mounts/engine.js';
import { forward, ProxyPools } from '../proxy/forward.js';
import { forwardUpgrade, refuseUpgrade, type UpgradeOutcome } from '../proxy/upgrade.js';
import { canonicalizePath } from '../mounts/canonical.js';
import { keepPrivate } from './private.js';

/** A request as node:http, node:http2's compatibility API or Express gives it. */
export type NodeRequest = IncomingMessage | Http2ServerRequest;
/** A response as node:http, node:http2's compatibility API or Express gives it. */
export type NodeResponse = ServerResponse | Http2ServerResponse;

/** A `callback://name` handler: the raw request and response, and where the mount matched. */
export type CallbackHandler = (req: NodeRequest, res: NodeResponse, target: CallbackTarget) => void | Promise<void>;

/** Options for {@link createHandler}. */
export interface HandlerOptions extends EngineOptions {
  /** Handlers for `callback://name` mounts, by name. */
  readonly callbacks?: Readonly<Record<string, CallbackHandler>>;
  /**
   * With Connect/Express: call `next()` instead of answering when a mount
   * cannot serve the request (default true): no mount or no file answers (404),
   * a method other than GET and HEAD (405: later POST routes and OPTIONS
   * handlers are reached), or a type the whitelist refuses (403). Without
   * `next`, vfserve's page is sent.
   */
  readonly fallthrough?: boolean;
  /**
   * Called once per failed request with the error behind a 5xx, a failed
   * stream, a throwing callback, or a response the app had already started
   * (default: {@link logError}). Never sent to clients. If it throws, that is
   * logged with console.error and otherwise ignored. A refused archive (corrupt,
   * unsupported, over an archive-wide limit) is reported once per version of
   * the archive, not once per request.
   */
  readonly onError?: (err: unknown, req: NodeRequest) => void;
  /** The operator's log, one line per call: a CGI program's stderr, malformed CGI output (default: console.error). */
  readonly log?: (line: string) => void;
}

/** A node:http request listener that is also Connect/Express middleware. */
export type NodeHandler = (req: NodeRequest, res: NodeResponse, next?: (err?: unknown) => void) => void;

/** What {@link createHandler} returns: the listener, its engine, its upgrade listener and its close. */
export interface NodeHandlerWithEngine extends NodeHandler {
  readonly engine: ServeEngine;
  /**
   * A node:http `'upgrade'` listener (`server.on('upgrade', handler.upgrade)`): WebSocket (and other
   * HTTP/1.1 Upgrade) requests under a proxy mount pass through to its origin: its 101 relayed, then
   * both directions piped with backpressure and closed after the mount's read timeout of silence.
   * Mounts with `noWsUpgrades` are passed over. Any other upgrade is refused with a bodiless status
   * and the socket closed: 404 under no mount, 403 under a mount that is not a proxy (as lws), the
   * 301 to `/mount/` for a bare proxy mountpoint, 400/403 for a path refused by canonicalisation.
   * Mountpoints are matched against the whole `req.url` (Express's `app.use` path is not stripped
   * from upgrade requests). `done`, when given, is called once when the client's socket closes,
   * with the status it was sent (101 for a tunnel; 0 if it left before any) and the bytes relayed
   * to it after the response head.
   */
  readonly upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer, done?: (outcome: Readonly<UpgradeOutcome>) => void) => void;
  /** Closes the proxy mounts' connection pools once their requests in flight are done, and the remote archives' (range+http) pools. */
  readonly close: () => Promise<void>;
  /**
   * For adapters that run the engine themselves (Fastify): carries out a callback, proxy or CGI
   * plan on `res` and returns true; returns false for any other response, which the adapter sends.
   */
  readonly runOrigin: (req: NodeRequest, res: NodeResponse, out: CoreResponse, fail: (err: unknown) => void) => boolean;
}

/**
 * Creates the request handler for `mounts`. It works as a node:http or
 * node:http2 (compatibility API) request listener and as Connect/Express
 * middleware. Options are checked here: a bad mount throws a TypeError naming it.
 */
export function createHandler(options: HandlerOptions): NodeHandlerWithEngine {
  const engine = new ServeEngine(options);
  const pools = new ProxyPools();
  const log = options.log ?? ((line: string) => console.error(line));
  const callbacks = options.callbacks ?? {};
  for (const m of engine.mounts) {
    if (m.kind === 'callback' && typeof callbacks[m.callback] !== 'function') {
      throw new TypeError(`mount ${JSON.stringify(m.mountpoint)}: no handler registered for callback://${m.callback}`);
    }
  }
  const fallthrough = options.fallthrough ?? true;
  const onError = safeOnError(options.onError ?? logError);

  const handler = (req: NodeRequest, res: NodeResponse, next?: (err?: unknown) => void): void => {
    const fail = once((err: unknown): void => onError(err, req));
    const core = coreRequest(req);
    const base = expressBase(req);
    const root = base?.bare && (core.method === 'GET' || core.method === 'HEAD') ? engine.match('/') : undefined;
    if (base !== undefined && root?.kind === 'file') {
      // `app.use('/static', h)` with `/static`: Express hands over `/`. Redirect to `/static/` as the
      // core does for a bare mountpoint, so relative links resolve inside the mount.
      const q = core.url.indexOf('?');
      sendResponse(res, engine.redirect(`${base.path}/${q === -1 ? '' : core.url.slice(q)}`, root), fail);
      return;
    }
    const answer = (out: CoreResponse): void => {
      if (base !== undefined && out.headers.location?.startsWith('/')) {
        out = { ...out, headers: { ...out.headers, location: `${base.path}${out.headers.location}` } };
      }
      if (runOrigin(req, res, out, fail)) return;
      if ((out.notFound === true || out.declined === true) && next && fallthrough) {
        // A whitelist refusal passed on is still worth its one line in the operator's log.
        if (out.error !== undefined) fail(out.error);
        discardBody(out);
        next();
        return;
      }
      sendResponse(res, out, fail);
    };
    // The core maps every error it expects; anything else is a bug, still never echoed.
    const bug = (err: unknown): void => failResponse(res, err, fail);
    let out: CoreResponse | Promise<CoreResponse>;
    try {
      out = engine.respond(core);
    } catch (err) {
      bug(err);
      return;
    }
    // A snapshot in memory is sent at once, without a round through the microtask queue.
    if (out instanceof Promise) out.then(answer).catch(bug);
    else {
      try {
        answer(out);
      } catch (err) {
        bug(err);
      }
    }
  };
  /** Carries out a callback, proxy or CGI plan; false for any other response. */
  const runOrigin = (req: NodeRequest, res: NodeResponse, out: CoreResponse, fail: (err: unknown) => void): boolean => {
    // An authenticated response relayed from an origin: its Cache-Control is only known when its head is written.
    if ((out.callback || out.proxy || out.cgi) && out.auth !== undefined && !out.auth.sharedCache) keepPrivate(res);
    if (out.callback) runCallback(callbacks[out.callback.name]!, req, res, out, fail);
    else if (out.proxy) forward(req, res, out as CoreResponse & { readonly proxy: ProxyTarget }, { pools, fail, basePath: expressBase(req)?.path });
    else if (out.cgi) runCgi(req, res, out as CoreResponse & { readonly cgi: CgiTarget }, { fail, log, localRedirect: (url) => localRedirect(url, res, fail) });
    else return false;
    return true;
  };

  /**
   * A CGI local redirect (RFC 3875 §6.2.2): `url` served internally as a GET without the client's
   * headers (as Go's net/http/cgi). Only a file mount serves it; a path under any other mount is
   * sent to the client as a 302 instead, since its request body and headers are gone.
   */
  const localRedirect = (url: string, res: NodeResponse, fail: (err: unknown) => void): void => {
    const send = (out: CoreResponse): void => {
      if (out.callback || out.proxy || out.cgi) {
        sendResponse(res, { status: 302, headers: { ...out.headers, location: url, 'content-length': '0' }, body: null }, fail);
        return;
      }
      sendResponse(res, out, fail);
    };
    try {
      const out = engine.respond({ method: 'GET', url, header: () => undefined });
      if (out instanceof Promise) out.then(send).catch((err: unknown) => failResponse(res, err, fail));
      else send(out);
    } catch (err) {
      failResponse(res, err, fail);
    }
  };

  const upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer, done?: (outcome: Readonly<UpgradeOutcome>) => void): void => {
    const fail = once((err: unknown): void => onError(err, req));
    const outcome: UpgradeOutcome = { status: 0, bytes: 0 };
    // A client's reset is routine, not a failure to report; without a listener it would crash the process.
    socket.on('error', () => undefined);
    if (done !== undefined) {
      if (socket.destroyed) queueMicrotask(() => done(outcome));
      else socket.once('close', () => done(outcome));
    }
    // Only proxy mounts switch protocols (lws refuses any other Upgrade with 403). The mount is found
    // first, so a refusal opens no file.
    const canon = canonicalizePath(req.url ?? '/');
    if ('status' in canon) {
      refuseUpgrade(socket, canon.status, outcome);
      return;
    }
    const mount = engine.match(canon.path, true);
    if (mount === undefined) {
      refuseUpgrade(socket, 404, outcome);
      return;
    }
    if (mount.kind !== 'proxy') {
      refuseUpgrade(socket, 403, outcome);
      return;
    }
    const answer = (out: CoreResponse): void => {
      if (out.proxy) {
        forwardUpgrade(req, socket, head, out as CoreResponse & { readonly proxy: ProxyTarget }, { pools, fail, outcome });
        return;
      }
      discardBody(out);
      // The bare mountpoint (`/ws`) is redirected to `/ws/` as for any request: the client learns where the mount is.
      const location = out.headers.location;
      const challenge = out.headers['www-authenticate'];
      if (out.status >= 300 && out.status < 400 && location !== undefined) refuseUpgrade(socket, out.status, outcome, [`location: ${location}`]);
      else if (out.status === 401 && challenge !== undefined) refuseUpgrade(socket, 401, outcome, [`www-authenticate: ${challenge}`]);
      else refuseUpgrade(socket, out.status >= 400 && out.status < 500 ? out.status : 403, outcome);
    };
    const bug = (err: unknown): void => {
      fail(err);
      refuseUpgrade(socket, 500, outcome);
    };
    try {
      const out = engine.respond({ ...coreRequest(req), upgrade: true });
      if (out instanceof Promise) out.then(answer).catch(bug);
      else answer(out);
    } catch (err) {
      bug(err);
    }
  };

  return Object.assign(handler, {
    engine,
    upgrade,
    runOrigin,
    close: async () => {
      await Promise.all([pools.close(), engine.close()]);
    },
  });
}

/** The framework-free view of a node request the core takes (repeated headers joined with ", "). */
export function coreRequest(req: NodeRequest): CoreRequest {
  return {
    method: req.method ?? 'GET',
    url: req.url ?? '/',
    header: (name: string): string | undefined => {
      const v = req.headers[name];
      return Array.isArray(v) ? v.join(', ') : v;
    },
  };
}

/** The first call goes through; later ones are dropped: a failed request is reported once. */
export function once(fn: (err: unknown) => void): (err: unknown) => void {
  let done = false;
  return (err) => {
    if (done) return;
    done = true;
    fn(err);
  };
}

/**
 * The default error report, on stderr: a {@link FopError} is an expected
 * failure (a broken archive, a disk error) and gets one line,
 * `vfserve: <code> <message>`, as does a {@link CgiError} (a CGI program that
 * cannot run, misbehaves or times out); anything else is a bug and keeps its stack.
 */
export function logError(err: unknown): void {
  if (FopError.is(err) || err instanceof CgiError) console.error(`vfserve: ${err.code} ${err.message}${causes(err)}`);
  else console.error('vfserve:', err);
}

/**
 * What lies under `err`, for the operator: the messages of its causes (a remote store's
 * `connect ECONNREFUSED` under an archive's `I/O error`), each once, at most four deep.
 */
function causes(err: Error): string {
  const seen = [err.message];
  let cause = err.cause;
  for (let depth = 0; cause instanceof Error && depth < 4; depth++, cause = cause.cause) {
    const message = cause.message;
    if (!seen.some((s) => s.includes(message))) seen.push(message);
  }
  return seen.length > 1 ? ` (${seen.slice(1).join('; ')})` : '';
}

/** Wraps `onError` so that an onError which throws cannot take the process down. */
export function safeOnError(onError: (err: unknown, req: NodeRequest) => void): (err: unknown, req: NodeRequest) => void {
  return (err, req) => {
    try {
      onError(err, req);
    } catch (thrown) {
      console.error('vfserve: onError threw', thrown, 'while reporting', err);
    }
  };
}

/**
 * Runs a `callback://` handler after setting the configured headers. A
 * handler that throws, rejects or fails after the head went out is reported
 * once; the client gets a 500, or a cut connection when bytes are out.
 */
export function runCallback(fn: CallbackHandler, req: NodeRequest, res: NodeResponse, out: CoreResponse, fail: (err: unknown) => void): void {
  Promise.resolve()
    .then(() => {
      for (const [name, value] of Object.entries(out.headers)) res.setHeader(name, value);
      return fn(req, res, out.callback!);
    })
    .catch((err: unknown) => failResponse(res, err, fail));
}

// HTTP/2 forbids connection-specific headers (RFC 9113 §8.2.2); node:http2 throws on them when the
// response starts (`connection` alone is dropped with a warning). Configured headers may name them.
const H2_FORBIDDEN = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings', 'te']);

/**
 * Express strips the path of `app.use('/static', h)` from req.url and keeps it in req.baseUrl. The
 * core sees the stripped URL; `path` (no trailing slash) goes back in front of Locations it builds.
 * `bare`: the request was `/static` itself, which Express turns into `/`.
 */
function expressBase(req: NodeRequest): { path: string; bare: boolean } | undefined {
  const { baseUrl, originalUrl } = req as { baseUrl?: unknown; originalUrl?: unknown };
  if (typeof baseUrl !== 'string' || baseUrl === '' || typeof originalUrl !== 'string') return undefined;
  // A collapsed leading `//` keeps the Location on this host.
  const path = baseUrl.replace(/^\/+/, '/');
  const q = originalUrl.indexOf('?');
  return { path, bare: (q === -1 ? originalUrl : originalUrl.slice(0, q)) === baseUrl };
}

// A symbol property, not a WeakMap: a WeakMap entry per response cost the 1 KiB hot path a third of its
// throughput (ephemeron tables churned by every response), where a property on the response is cheap.
const SOURCE = Symbol('vfserve.bodySource');
type WithSource = NodeResponse & { [SOURCE]?: BodySource };

/**
 * How the body sent on `res` by this adapter was produced (see {@link BodySource}), for request
 * logs; undefined for pages, redirects, callbacks and responses the adapter did not send.
 */
export function bodySource(res: NodeResponse): BodySource | undefined {
  return (res as WithSource)[SOURCE];
}

/**
 * Sends a core response: the status and headers in one `writeHead` (headers
 * set earlier by the app or a framework's hooks stay, the core's win), then
 * the body. Every failure on this path reaches `fail` exactly once and the
 * response is ended or its connection cut; a body stream is always released.
 * A response the app already started cannot carry this one: it is cut.
 */
export function sendResponse(res: NodeResponse, out: CoreResponse, fail: (err: unknown) => void): void {
  if (out.source !== undefined) (res as WithSource)[SOURCE] = out.source;
  if (res.headersSent) {
    discardBody(out);
    const cause = out.error === undefined ? {} : { cause: out.error };
    fail(new Error(`vfserve: the response was already started before the handler ran (status ${res.statusCode}); it was cut`, cause));
    abort(res);
    return;
  }
  if (out.error !== undefined) fail(out.error);
  const body = out.body;
  try {
    if (res instanceof Http2ServerResponse) {
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(out.headers)) if (!H2_FORBIDDEN.has(name)) headers[name] = value;
      res.writeHead(out.status, headers);
    } else res.writeHead(out.status, out.headers);
    if (body === null) {
      res.end();
      return;
    }
    if (Buffer.isBuffer(body)) {
      res.end(body);
      return;
    }
  } catch (err) {
    discardBody(out);
    failResponse(res, err, fail);
    return;
  }
  streamTo(body, res, fail);
}

/** Releases a response's body without sending it (its stream owns a file handle). */
export function discardBody(out: CoreResponse): void {
  if (out.body !== null && !Buffer.isBuffer(out.body)) out.body.destroy();
}

/** Reports `err` once, then answers 500 if nothing was sent yet, or cuts the response. */
export function failResponse(res: NodeResponse, err: unknown, fail: (err: unknown) => void): void {
  fail(err);
  try {
    if (!res.headersSent) {
      res.statusCode = 500;
      res.end();
      return;
    }
  } catch {
    // fall through to the cut
  }
  abort(res);
}

/**
 * Cuts a response whose head may be out (internal; used by the adapters). HTTP/2: RST_STREAM with INTERNAL_ERROR; a bare destroy()
 * resets with NO_ERROR, which clients take for a complete response.
 */
export function abort(res: NodeResponse): void {
  if (res instanceof Http2ServerResponse) res.stream.close(h2.NGHTTP2_INTERNAL_ERROR);
  else res.destroy();
}

function streamTo(body: NonNullable<Exclude<CoreResponse['body'], Buffer>>, res: NodeResponse, fail: (err: unknown) => void): void {
  // The client may have gone while the file was being opened: its 'close' has already fired, so
  // nothing below would ever destroy the body and its file handle would leak.
  if (res.destroyed || (res as { closed?: boolean }).closed === true) {
    body.destroy();
    return;
  }
  let finished = false;
  res.on('close', () => {
    // A client that went away: stop reading, which closes the file handle.
    if (!finished) body.destroy();
  });
  body.on('error', (err) => {
    fail(err);
    // Bytes are out: the status cannot change. Cut the connection (HTTP/2: RST_STREAM) so the
    // client sees a truncated response, never a complete wrong one.
    abort(res);
  });
  body.on('end', () => {
    finished = true;
  });
  body.pipe(res);
}

export type { BodySource, CallbackTarget, CgiTarget, ProxyTarget };
