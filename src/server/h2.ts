/**
 * HTTP/2 for the server: the limits its sessions get, the bookkeeping that
 * lets reload and close reach every open session, and the routing of a
 * cleartext connection by its first bytes (h2c prior knowledge or HTTP/1.1).
 */
import { Http2ServerRequest, type ServerHttp2Session, type ServerOptions, type Settings } from 'node:http2';
import type { Server as NetServer, Socket } from 'node:net';
import type { NodeRequest } from '../adapters/node.js';

/** SETTINGS_MAX_CONCURRENT_STREAMS unless `h2-max-concurrent-streams` says otherwise: nginx's default. */
export const H2_MAX_CONCURRENT_STREAMS = 128;
/** SETTINGS_MAX_HEADER_LIST_SIZE: 16 KiB, the header size node's HTTP/1.1 parser accepts. */
export const H2_MAX_HEADER_LIST_SIZE = 16 * 1024;
/** Header fields (pseudo-headers included) a request may carry: node's default, stated. */
export const H2_MAX_HEADER_LIST_PAIRS = 128;
/** Per-session memory for nghttp2's buffers in MiB (node's default, stated); over it, new streams are refused. */
export const H2_MAX_SESSION_MEMORY_MIB = 10;

/** The connection preface a client speaking HTTP/2 with prior knowledge starts with (RFC 9113 §3.4). */
export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** The SETTINGS the server sends each session: the concurrency limit given (default {@link H2_MAX_CONCURRENT_STREAMS}) and the header limit. */
export function h2Settings(maxConcurrentStreams = H2_MAX_CONCURRENT_STREAMS): Settings {
  return { maxConcurrentStreams, maxHeaderListSize: H2_MAX_HEADER_LIST_SIZE };
}

/**
 * The node:http2 server options of a listener: {@link h2Settings} and the per-session limits.
 * Node's own flood defences stay on at their defaults: nghttp2's stream-reset rate limit (which
 * ends a session that resets streams faster than it is allowed, CVE-2023-44487),
 * `maxSessionInvalidFrames` (1000) and `maxSessionRejectedStreams` (100).
 */
export function h2ServerOptions(maxConcurrentStreams?: number): ServerOptions {
  return { settings: h2Settings(maxConcurrentStreams), maxHeaderListPairs: H2_MAX_HEADER_LIST_PAIRS, maxSessionMemory: H2_MAX_SESSION_MEMORY_MIB };
}

/**
 * The host a request names, for vhost selection: HTTP/2's `:authority` (which node's compatibility
 * request leaves out of `headers.host`), falling back to a Host header; HTTP/1.1's Host header.
 */
export function requestHost(req: NodeRequest): string | undefined {
  return req instanceof Http2ServerRequest ? req.authority : req.headers.host;
}

/**
 * The open HTTP/2 sessions of one listener, so that close can reach them: node's http2 servers
 * neither close their sessions on `server.close()` nor have `closeIdleConnections()` for them.
 *
 * Contract: every session handed to {@link H2Sessions.add} is held until it closes. A session with
 * no stream open for `idleMs` (0: never) is closed with GOAWAY, as an idle HTTP/1.1 keep-alive
 * connection is. {@link H2Sessions.closeAll} sends every session a GOAWAY, letting the streams it
 * carries finish, and so does every session added afterwards; {@link H2Sessions.destroyAll} cuts
 * the sessions still open.
 */
export class H2Sessions {
  readonly #open = new Set<ServerHttp2Session>();
  #closing = false;

  constructor(private readonly idleMs: number) {}

  /** The sessions open now. */
  get size(): number {
    return this.#open.size;
  }

  /** Holds `session` (a server's `'session'` event) until it closes. */
  add(session: ServerHttp2Session): void {
    this.#open.add(session);
    session.once('close', () => this.#open.delete(session));
    // A TLS handshake that was under way when close began ends in a session all the same.
    if (this.#closing) {
      session.close();
      return;
    }
    let streams = 0;
    session.on('stream', (stream) => {
      streams++;
      stream.once('close', () => streams--);
    });
    // The timer counts frames, not streams: a quiet stream (a proxied event stream) keeps its session.
    // It is also what ends a session nghttp2 has given up on: after its stream-reset rate limit
    // (rapid reset, CVE-2023-44487) it sends GOAWAY and discards all that comes, which node 20
    // neither reports nor counts as activity, so the connection closes when this timer fires.
    if (this.idleMs > 0)
      session.setTimeout(this.idleMs, () => {
        if (streams === 0) session.close();
      });
  }

  /** GOAWAY to every session, now and as they are added: no new streams, the open ones finish. */
  closeAll(): void {
    this.#closing = true;
    for (const session of this.#open) session.close();
  }

  /** Cuts every session still open (their streams are reset). */
  destroyAll(): void {
    for (const session of this.#open) session.destroy();
  }
}

/**
 * Routes one cleartext connection by its first bytes: one that starts with the HTTP/2 connection
 * preface ({@link H2_PREFACE}) goes to `h2c`, anything else to `http1`, as soon as the bytes decide
 * (a first byte other than `P` decides at once; the preface may arrive split). The bytes read are
 * put back (`unshift`) before the socket is handed over with `emit('connection', socket)`, so the
 * server that takes it sees the connection whole. The socket is read with `'readable'`/`read()`,
 * never switched to flowing mode, so no byte is lost. A connection that closes or fails before the
 * bytes decide is destroyed; one still undecided after `timeoutMs` goes to `http1`, whose own
 * header timeout takes over.
 */
export function routeH2c(socket: Socket, to: { readonly http1: NetServer; readonly h2c: NetServer }, timeoutMs = 10_000): void {
  let seen: Buffer = Buffer.alloc(0);
  let done = false;
  const finish = (server: NetServer | undefined): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    socket.off('readable', onReadable);
    socket.off('end', onGone);
    socket.off('close', onGone);
    socket.off('error', onGone);
    if (server === undefined) {
      socket.destroy();
      return;
    }
    if (seen.length > 0) socket.unshift(seen);
    server.emit('connection', socket);
  };
  const onReadable = (): void => {
    for (let chunk = socket.read() as Buffer | null; chunk !== null; chunk = socket.read() as Buffer | null) {
      seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
      const n = Math.min(seen.length, H2_PREFACE.length);
      if (!seen.subarray(0, n).equals(H2_PREFACE.subarray(0, n))) {
        finish(to.http1);
        return;
      }
      if (seen.length >= H2_PREFACE.length) {
        finish(to.h2c);
        return;
      }
    }
  };
  // Until a server owns the socket, an error (a reset) must not go unhandled: it would end the process.
  const onGone = (): void => finish(undefined);
  const timer = setTimeout(() => finish(to.http1), timeoutMs);
  socket.on('readable', onReadable);
  socket.once('end', onGone);
  socket.once('close', onGone);
  socket.once('error', onGone);
}
