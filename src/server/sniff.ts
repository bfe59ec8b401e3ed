/**
 * Protocol detection on one listening port (lws's HTTP fallback): the first bytes of a connection
 * are read without being lost, the protocol is told from them, and the socket goes on to the inner
 * server for it, or to the raw proxy.
 *
 * The pattern is httpolyglot's: a `net.Server` with `pauseOnConnect` owns the port; each socket is
 * read with `read()`/`'readable'` (never flowing `'data'`, which would hand bytes to nobody), the
 * bytes are put back with `unshift()`, and the inner server gets the socket through
 * `emit('connection', socket)`, which Node documents for http, https, tls and http2 servers.
 */
import { METHODS, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { detects, formatOnward, type ListenAcceptConfig, type OnwardTarget } from './listen-accept.js';
import { rawProxy, type RawProxyRecord } from './raw-proxy.js';

/** What the first bytes are: a TLS record, an HTTP/1 request line, the HTTP/2 prior-knowledge preface, or something else. */
export type Detected = 'tls' | 'http1' | 'h2c' | 'other';

/** The HTTP/2 connection preface (RFC 9113 §3.4), which a prior-knowledge h2c client sends first. */
export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** Every HTTP method node's parser knows, followed by the space of a request line. */
const METHOD_TOKENS = METHODS.map((m) => Buffer.from(`${m} `, 'latin1'));

/**
 * The most bytes {@link classify} ever needs: the h2 preface is 24 bytes, and every method token of
 * `http.METHODS` is shorter (`UNSUBSCRIBE ` is 12), so by 24 bytes every connection is decided.
 */
export const SNIFF_BYTES = H2_PREFACE.length;

/**
 * Tells the protocol from the first bytes of a connection, or returns undefined while they are
 * still too few to tell (`G` could begin `GET `). TLS: the first byte is 0x16, a handshake record
 * (lws's TLS listener treats any first byte below 0x20 as TLS; 0x16 is the only one a ClientHello
 * starts with). HTTP/1: a method of `http.METHODS` followed by a space, case-sensitive, as node's
 * parser would accept it. h2c: the whole 24-byte preface. Anything else is `other`. Only the first {@link SNIFF_BYTES} bytes are looked at.
 */
export function classify(bytes: Buffer): Detected | undefined {
  const head = bytes.subarray(0, SNIFF_BYTES);
  if (head.length === 0) return undefined;
  if (head[0] === 0x16) return 'tls';
  if (head.equals(H2_PREFACE.subarray(0, head.length))) return head.length === H2_PREFACE.length ? 'h2c' : undefined;
  let possible = false;
  for (const token of METHOD_TOKENS) {
    const n = Math.min(head.length, token.length);
    if (!head.subarray(0, n).equals(token.subarray(0, n))) continue;
    if (n === token.length) return 'http1';
    possible = true;
  }
  return possible ? undefined : 'other';
}

/** Where a connection goes: an inner server, the raw proxy (as fallback or after the detection timeout), or nowhere. */
export type Route = 'tls' | 'http1' | 'h2c' | 'redirect' | 'fallback' | 'timeout' | 'close';

/**
 * The routing rules of a port. On a TLS port, plain HTTP/1 gets `redirect-http`'s redirect, else
 * `allow-http-on-https`'s plain service, else the fallback: as in lws, those two beat the fallback
 * (and anything that is not HTTP still falls back, as lws's HTTP parser falls back on a bad method).
 * TLS on a plain port, h2c on a port without h2c, and anything else fall back, or are closed when
 * the port has no fallback. `timeout` (no decision in `fallback-timeout-secs`) goes to the timeout
 * target when there is one.
 */
export function chooseRoute(detected: Detected | 'timeout', port: { readonly tls: boolean; readonly h2c: boolean }, la: ListenAcceptConfig | undefined): Route {
  const fallback: Route = la?.mode === 'fallback' ? 'fallback' : 'close';
  switch (detected) {
    case 'timeout':
      return la?.timeoutOnward !== undefined || la?.mode === 'fallback' ? 'timeout' : 'close';
    case 'tls':
      return port.tls ? 'tls' : fallback;
    case 'h2c':
      return port.h2c ? 'h2c' : fallback;
    case 'http1':
      if (!port.tls) return 'http1';
      if (la?.redirectHttp) return 'redirect';
      if (la?.allowHttpOnHttps) return 'http1';
      return fallback;
    case 'other':
      return fallback;
  }
}

/** The inner servers of a port with detection; each gets its sockets through `emit('connection')` and never listens itself. */
export interface FrontDoorRoutes {
  /** The port's TLS server (TLS ports). */
  readonly tls?: NetServer;
  /** HTTP/1: the port's server on a plain port; on a TLS port the plain one `allow-http-on-https` serves with. */
  readonly http1?: NetServer;
  /** The h2c (prior-knowledge) server, where the port has h2c on; the h2c preface falls back or is closed without it. */
  readonly h2c?: NetServer;
  /** On a TLS port: the server that answers plain HTTP/1 with `redirect-http`'s redirect. */
  readonly redirect?: NetServer;
}

export interface FrontDoorOptions {
  /** The port serves TLS. */
  readonly tls: boolean;
  readonly routes: FrontDoorRoutes;
  /** The port's listen-accept settings, read at each connection so a reload applies to the next one. */
  readonly settings: () => ListenAcceptConfig | undefined;
  /**
   * Called as a connection goes to the raw proxy (so a log can be claimed while its configuration is
   * current); the function it returns gets the connection's record once both sides have closed.
   */
  readonly proxyLogger: () => (record: RawProxyRecord) => void;
  /** An onward target that could not be reached, once per connection. */
  readonly onError: (err: unknown) => void;
}

/** Whether a port needs a front door: listen-accept settings that read the first bytes or proxy everything, or h2c. */
export function needsFrontDoor(la: ListenAcceptConfig | undefined, h2c: boolean): boolean {
  return detects(la) || h2c;
}

/**
 * The listening side of a port with detection. {@link server} is what listens; every socket it
 * accepts is tracked until it closes, so {@link close} waits for connections whatever server they
 * went to, and {@link destroyAll} can cut them all.
 */
export class FrontDoor {
  /** The listening server: `pauseOnConnect` so no byte is read before detection asks for it. */
  readonly server: NetServer;
  readonly #options: FrontDoorOptions;
  readonly #routes: readonly NetServer[];
  readonly #accepted = new Set<Socket>();
  readonly #detecting = new Set<Socket>();

  constructor(options: FrontDoorOptions) {
    this.#options = options;
    this.#routes = [...new Set(Object.values(options.routes) as NetServer[])];
    // Node's http servers start tracking connections (headers and request timeouts, closeIdleConnections)
    // on 'listening'; these never listen themselves, so they are told the port is open.
    for (const route of this.#routes) route.emit('listening');
    // allowHalfOpen and noDelay as http.Server accepts its own sockets: the inner servers and the proxy rely on them.
    this.server = createServer({ pauseOnConnect: true, allowHalfOpen: true, noDelay: true }, (socket) => this.#accept(socket));
  }

  /**
   * Stops listening; sockets still in detection are closed (nothing is in flight on them); the
   * inner servers close their idle connections. `callback` runs once every accepted socket is closed.
   */
  close(callback: () => void): void {
    this.server.close(() => callback());
    for (const socket of this.#detecting) socket.destroy();
    for (const route of this.#routes) route.close();
  }

  /** Cuts every connection this port accepted (the end of a graceful close's grace period). */
  destroyAll(): void {
    for (const route of this.#routes) {
      if ('closeAllConnections' in route && typeof route.closeAllConnections === 'function') (route as { closeAllConnections(): void }).closeAllConnections();
    }
    for (const socket of this.#accepted) socket.destroy();
  }

  #accept(socket: Socket): void {
    this.#accepted.add(socket);
    socket.once('close', () => this.#accepted.delete(socket));
    const la = this.#options.settings();
    // apply-listen-accept: no detection, nothing read; the proxy starts the flow.
    if (la?.mode === 'apply' && la.rawProxy) {
      this.#proxy(socket, Buffer.alloc(0), 'apply', la.rawProxy.onward, la);
      return;
    }
    this.#detect(socket, la);
  }

  #detect(socket: Socket, la: ListenAcceptConfig | undefined): void {
    this.#detecting.add(socket);
    const chunks: Buffer[] = [];
    let length = 0;
    let timer: NodeJS.Timeout | undefined;
    // A reset during detection must not become an uncaught 'error'; the inner server installs its own.
    const ignore = (): void => undefined;
    const finish = (outcome: Detected | 'timeout' | 'gone'): void => {
      socket.off('readable', onReadable);
      socket.off('end', onEnd);
      socket.off('close', onClose);
      socket.off('error', ignore);
      if (timer !== undefined) clearTimeout(timer);
      this.#detecting.delete(socket);
      if (outcome === 'gone') {
        socket.destroy();
        return;
      }
      this.#route(socket, Buffer.concat(chunks, length), outcome, la);
    };
    const onReadable = (): void => {
      let chunk: Buffer | null;
      while ((chunk = socket.read() as Buffer | null) !== null) {
        chunks.push(chunk);
        length += chunk.length;
        const detected = classify(length === chunk.length ? chunk : Buffer.concat(chunks, length));
        if (detected !== undefined) {
          finish(detected);
          return;
        }
      }
    };
    // The client ended before the bytes decided anything: what it sent (if anything) is not HTTP or TLS.
    const onEnd = (): void => finish(length > 0 ? 'other' : 'gone');
    const onClose = (): void => finish('gone');
    socket.on('error', ignore);
    socket.on('readable', onReadable);
    socket.once('end', onEnd);
    socket.once('close', onClose);
    // Without a timeout a silent client is held, as lws holds it: a server-speaks-first protocol cannot be told apart.
    if (la !== undefined && la.timeoutSecs > 0) timer = setTimeout(() => finish('timeout'), la.timeoutSecs * 1000);
  }

  #route(socket: Socket, head: Buffer, detected: Detected | 'timeout', la: ListenAcceptConfig | undefined): void {
    const route = chooseRoute(detected, { tls: this.#options.tls, h2c: this.#options.routes.h2c !== undefined }, la);
    if (route === 'fallback' && la?.rawProxy) {
      this.#proxy(socket, head, 'fallback', la.rawProxy.onward, la);
      return;
    }
    if (route === 'timeout' && la) {
      const onward = la.timeoutOnward ?? la.rawProxy?.onward;
      if (onward !== undefined) {
        this.#proxy(socket, head, 'timeout', onward, la);
        return;
      }
    }
    const server = route === 'tls' || route === 'http1' || route === 'h2c' || route === 'redirect' ? this.#options.routes[route] : undefined;
    // Closed: a protocol this port does not serve, or an end already read (unshift() is refused after 'end').
    if (server === undefined || socket.readableEnded) {
      socket.destroy();
      return;
    }
    if (head.length > 0) socket.unshift(head);
    server.emit('connection', socket);
  }

  #proxy(socket: Socket, head: Buffer, reason: RawProxyRecord['reason'], onward: OnwardTarget, la: ListenAcceptConfig): void {
    const logged = this.#options.proxyLogger();
    rawProxy(socket, {
      onward,
      head,
      reason,
      idleTimeoutMs: (la.rawProxy?.idleTimeoutSecs ?? 0) * 1000,
      done: (record) => {
        if (record.error) {
          this.#options.onError(
            new Error(`raw-proxy: ${formatOnward(onward)} cannot be reached for client ${record.client}: ${record.error.message}`, { cause: record.error }),
          );
        }
        logged(record);
      },
    });
  }
}

// A Host header fit to put in a Location: a DNS name or IPv4 address, or a bracketed IPv6 address, and a port.
const REDIRECT_HOST =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/**
 * `redirect-http`'s answer to plain HTTP on a TLS port: a 301 to `https://<Host><path>`, taking
 * the host from the Host header only (never the request target's authority or the server's own
 * idea of its name), then closes. A missing Host, or one with characters a host name cannot
 * have, gets 400: a Location must not carry what the client put there.
 */
export function redirectToHttps(req: IncomingMessage, res: ServerResponse): void {
  const host = req.headers.host ?? '';
  let path = req.url ?? '';
  // An absolute-form target (`GET http://a/b`) gives its path; its authority is ignored.
  if (/^https?:\/\//i.test(path)) {
    try {
      const u = new URL(path);
      path = u.pathname + u.search;
    } catch {
      path = '';
    }
  }
  if (!REDIRECT_HOST.test(host) || !path.startsWith('/')) {
    res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' });
    res.end('This port speaks TLS; a plain HTTP request needs a valid Host header to be redirected.\n');
    return;
  }
  const location = `https://${host}${path}`;
  res.writeHead(301, { location, 'content-type': 'text/plain; charset=utf-8', connection: 'close' });
  res.end(`This port speaks TLS: ${location}\n`);
}
