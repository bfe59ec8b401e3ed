import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Readable } from 'node:stream';
import { ServeEngine, type CallbackTarget, type CoreResponse, type EngineOptions } from './engine.js';

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
    const core = {
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      header: (name: string): string | undefined => {
        const v = req.headers[name];
        return Array.isArray(v) ? v.join(', ') : v;
      },
    };
    engine.handle(core).then(
      (out) => {
        if (out.callback) return runCallback(callbacks[out.callback.name]!, req, res, out.callback, onError);
        if (out.notFound && next && fallthrough) return next();
        if (out.error !== undefined) onError(out.error, req);
        return write(res, out, (err) => onError(err, req));
      },
      (err: unknown) => {
        // The core maps every error it expects; this is a bug, still never echoed.
        onError(err, req);
        if (!res.headersSent) {
          res.statusCode = 500;
          res.end();
        } else res.destroy();
      },
    );
  };
  return Object.assign(handler, { engine });
}

function runCallback(fn: (req: NodeRequest, res: NodeResponse, t: CallbackTarget) => void | Promise<void>, req: NodeRequest, res: NodeResponse, target: CallbackTarget, onError: (err: unknown, req: NodeRequest) => void): void {
  Promise.resolve()
    .then(() => fn(req, res, target))
    .catch((err: unknown) => {
      onError(err, req);
      if (!res.headersSent) {
        res.statusCode = 500;
        res.end();
      } else res.destroy();
    });
}

/** Writes a core response; a body stream that fails after the headers went out aborts the response. */
export function write(res: NodeResponse, out: CoreResponse, onStreamError: (err: unknown) => void): void {
  res.statusCode = out.status;
  for (const [name, value] of Object.entries(out.headers)) res.setHeader(name, value);
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

function streamTo(body: Readable, res: NodeResponse, onStreamError: (err: unknown) => void): void {
  let finished = false;
  res.on('close', () => {
    // A client that went away: stop reading, which closes the file handle.
    if (!finished) body.destroy();
  });
  body.on('error', (err) => {
    onStreamError(err);
    // Bytes are out: the status cannot change. Cut the connection (HTTP/2: RST_STREAM) so the
    // client sees a truncated response, never a complete wrong one.
    res.destroy();
  });
  body.on('end', () => {
    finished = true;
  });
  (body as Readable).pipe(res as unknown as NodeJS.WritableStream);
}

export type { CallbackTarget };
