import type { IncomingMessage, ServerResponse } from 'node:http';
import { constants as h2, Http2ServerResponse, type Http2ServerRequest } from 'node:http2';
import type { Readable } from 'node:stream';
import { ServeEngine, type CallbackTarget, type CoreRequest, type CoreResponse, type EngineOptions } from './engine.js';

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
   * With Connect/Express: call `next()` instead of answering 404 when no mount
   * or no file answers (default true). Without `next`, a 404 page is sent.
   */
  readonly fallthrough?: boolean;
  /** Called with errors behind 5xx responses and failed streams (default: console.error). Never sent to clients. */
  readonly onError?: (err: unknown, req: NodeRequest) => void;
  /**
   * A URL path served, with status 404, in place of the built-in 404 page (lwsws's
   * `error-document-404`, without its 302 redirect). Ignored when falling through to `next()`.
   */
  readonly notFoundDocument?: string;
}

/** A node:http request listener that is also Connect/Express middleware. */
export type NodeHandler = (req: NodeRequest, res: NodeResponse, next?: (err?: unknown) => void) => void;

/**
 * Creates the request handler for `mounts`. It works as a node:http or
 * node:http2 (compatibility API) request listener and as Connect/Express
 * middleware. Options are checked here: a bad mount throws a TypeError naming it.
 */
export function createHandler(options: HandlerOptions): NodeHandler & { readonly engine: ServeEngine } {
  const engine = new ServeEngine(options);
  const callbacks = options.callbacks ?? {};
  for (const m of engine.mounts) {
    if (m.kind === 'callback' && typeof callbacks[m.callback] !== 'function') {
      throw new TypeError(`mount ${JSON.stringify(m.mountpoint)}: no handler registered for callback://${m.callback}`);
    }
  }
  const fallthrough = options.fallthrough ?? true;
  const onError = options.onError ?? ((err: unknown) => console.error('vfserve:', err));

  const handler = (req: NodeRequest, res: NodeResponse, next?: (err?: unknown) => void): void => {
    const core = coreRequest(req);
    const base = expressBase(req);
    const root = base?.bare && (core.method === 'GET' || core.method === 'HEAD') ? engine.match('/') : undefined;
    if (base !== undefined && root?.kind === 'file') {
      // `app.use('/static', h)` with `/static`: Express hands over `/`. Redirect to `/static/` as the
      // core does for a bare mountpoint, so relative links resolve inside the mount.
      const q = core.url.indexOf('?');
      return write(res, engine.redirect(`${base.path}/${q === -1 ? '' : core.url.slice(q)}`, root), () => {});
    }
    /** Serves the configured 404 document with status 404, or the built-in page if it cannot be served. */
    const notFound = (fallback: CoreResponse): Promise<void> =>
      engine.handle({ method: 'GET', url: options.notFoundDocument!, header: () => undefined }).then((doc) => {
        if (doc.status !== 200 || doc.body === null) {
          if (doc.body !== null && !Buffer.isBuffer(doc.body)) doc.body.destroy();
          return write(res, fallback, (err) => onError(err, req));
        }
        const headers: Record<string, string> = { ...doc.headers };
        // Not the resource the client asked for: no validators or caching for it.
        for (const name of ['etag', 'last-modified', 'cache-control', 'vary']) delete headers[name];
        headers['cache-control'] = 'no-store';
        const head = core.method === 'HEAD';
        if (head && !Buffer.isBuffer(doc.body)) doc.body.destroy();
        return write(res, { status: 404, headers, body: head ? null : doc.body }, (err) => onError(err, req));
      });
    engine.handle(core).then(
      (out) => {
        if (base !== undefined && out.headers.location?.startsWith('/')) {
          out = { ...out, headers: { ...out.headers, location: `${base.path}${out.headers.location}` } };
        }
        if (out.callback) {
          for (const [name, value] of Object.entries(out.headers)) res.setHeader(name, value);
          return runCallback(callbacks[out.callback.name]!, req, res, out.callback, onError);
        }
        if (out.notFound && next && fallthrough) return next();
        if (out.error !== undefined) onError(out.error, req);
        if (out.notFound && options.notFoundDocument !== undefined) return notFound(out);
        return write(res, out, (err) => onError(err, req));
      },
      (err: unknown) => {
        // The core maps every error it expects; this is a bug, still never echoed.
        onError(err, req);
        if (!res.headersSent) {
          res.statusCode = 500;
          res.end();
        } else abort(res);
      },
    );
  };
  return Object.assign(handler, { engine });
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

function runCallback(fn: (req: NodeRequest, res: NodeResponse, t: CallbackTarget) => void | Promise<void>, req: NodeRequest, res: NodeResponse, target: CallbackTarget, onError: (err: unknown, req: NodeRequest) => void): void {
  Promise.resolve()
    .then(() => fn(req, res, target))
    .catch((err: unknown) => {
      onError(err, req);
      if (!res.headersSent) {
        res.statusCode = 500;
        res.end();
      } else abort(res);
    });
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

/** Writes a core response; a body stream that fails after the headers went out aborts the response. */
export function write(res: NodeResponse, out: CoreResponse, onStreamError: (err: unknown) => void): void {
  res.statusCode = out.status;
  const isH2 = res instanceof Http2ServerResponse; // HTTP/1 requests on an allowHTTP1 server are not
  for (const [name, value] of Object.entries(out.headers)) if (!(isH2 && H2_FORBIDDEN.has(name))) res.setHeader(name, value);
  const body = out.body;
  if (body === null) {
    res.end();
    return;
  }
  if (Buffer.isBuffer(body)) {
    res.end(body);
    return;
  }
  streamTo(body, res, onStreamError);
}

/**
 * Cuts a response whose head may be out (internal; used by the adapters). HTTP/2: RST_STREAM with INTERNAL_ERROR; a bare destroy()
 * resets with NO_ERROR, which clients take for a complete response.
 */
export function abort(res: NodeResponse): void {
  if (res instanceof Http2ServerResponse) res.stream.close(h2.NGHTTP2_INTERNAL_ERROR);
  else res.destroy();
}

function streamTo(body: Readable, res: NodeResponse, onStreamError: (err: unknown) => void): void {
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
    onStreamError(err);
    // Bytes are out: the status cannot change. Cut the connection (HTTP/2: RST_STREAM) so the
    // client sees a truncated response, never a complete wrong one.
    abort(res);
  });
  body.on('end', () => {
    finished = true;
  });
  (body as Readable).pipe(res as unknown as NodeJS.WritableStream);
}

export type { CallbackTarget };
