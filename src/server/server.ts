import { lstatSync, readFileSync, unlinkSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer, type Server as HttpsServer } from 'node:https';
import { createServer as createH2cServer, createSecureServer, Http2ServerRequest, type Http2SecureServer, type Http2Server } from 'node:http2';
import { createSecureContext, Server as TlsServer, type SecureContext } from 'node:tls';
import { connect, createServer as createNetServer, isIP, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Duplex } from 'node:stream';
import { pathToFileURL } from 'node:url';
import fg from 'fast-glob';
import {
  bodySource,
  createHandler,
  logError,
  type CallbackHandler,
  type NodeHandlerWithEngine,
  type NodeRequest,
  type NodeResponse,
} from '../adapters/node.js';
import { refuseUpgrade, type UpgradeOutcome } from '../proxy/upgrade.js';
import { PlatFops } from '../fops/plat.js';
import { Vfs } from '../fops/vfs.js';
import { isRemoteOrigin } from '../mounts/options.js';
import { ZipFops, type ZipIndexEvent } from '../fops/zip/zip-fops.js';
import { AccessLog } from './access-log.js';
import { ConfigError, type ServerConfig, type VhostConfig } from './config.js';
import type { RawProxyRecord } from './raw-proxy.js';
import { FrontDoor, needsFrontDoor, redirectToHttps } from './sniff.js';
import { H2Sessions, h2ServerOptions, h2Settings, requestHost, routeH2c } from './h2.js';
import { createStatusHandler, hitRate, STATUS_HANDLER, type ServerStatus, type VhostStatus } from './status.js';
import { nodeTlsOptions, sameTlsOptions } from './tls-options.js';

/** One listening socket (or, from {@link checkServer}, one it would open) and the vhosts it serves. */
export interface ListenerInfo {
  /** The bound address (`0.0.0.0`, `::`, `127.0.0.1`, …), or the socket path. */
  readonly host: string;
  /** The port (the one picked, for port 0 once listening); 0 for a unix socket. */
  readonly port: number;
  readonly unix: boolean;
  readonly tls: boolean;
  /** The socket takes IPv6 connections only (the vhosts' `ipv6only`). */
  readonly ipv6Only: boolean;
  /** HTTP/2 is offered on this TLS port by ALPN, next to HTTP/1.1 (the first vhost's `"h2"`). */
  readonly h2: boolean;
  /** Cleartext HTTP/2 with prior knowledge is accepted on this port, next to HTTP/1.1 (the first vhost's `"h2c"`). */
  readonly h2c: boolean;
  /** The vhosts' names, in configuration order. */
  readonly vhosts: readonly string[];
  /** The vhosts' configurations, in the same order. */
  readonly configs: readonly VhostConfig[];
}

/** A running server: its listeners and a graceful close. */
export interface RunningServer {
  readonly listeners: readonly ListenerInfo[];
  /**
   * Stops accepting, lets in-flight responses finish for up to `timeoutMs`, then cuts the rest.
   * Resolves once every access log holds the line of every response and is closed.
   */
  close(timeoutMs?: number): Promise<void>;
  /**
   * Swaps in a new configuration without dropping listening sockets or in-flight responses:
   * everything new is built first; if any of it fails, this rejects and the old configuration
   * keeps serving. Listeners for new interface/port pairs start, ones no longer configured close.
   * A response in flight across the reload is logged once, to the access log it started with,
   * which closes after its last such response.
   */
  reload(config: ServerConfig): Promise<void>;
}

export interface StartOptions {
  /** One line per request, for a terminal (zero-config mode). */
  readonly requestLog?: (line: string) => void;
  /** Errors behind 5xx responses, failed streams and access-log write errors (default {@link logError}: one line for a FopError, a stack for a bug). */
  readonly onError?: (err: unknown) => void;
  /** The operator's log, one line per call: CGI programs' stderr (default: console.error, so stderr). */
  readonly log?: (line: string) => void;
  /** This process is one of `count-threads` cluster workers (the CLI sets it): the port is shared. */
  readonly clusterWorker?: boolean;
  /** Archive indexing: a `progress` event about once a second while a large one is parsed, `done` when it is indexed. */
  readonly onIndex?: (event: ZipIndexEvent) => void;
  /** The version the status page reports (default: none given, `"unknown"`). */
  readonly version?: string;
}

interface Vhost {
  readonly config: VhostConfig;
  readonly handler: NodeHandlerWithEngine;
  readonly log: AccessLog | undefined;
  readonly context: SecureContext | undefined;
}

// lws's value for "sts": half a year, subdomains included.
const STS = 'max-age=15768000 ; includeSubDomains';

function readPem(vc: VhostConfig, what: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new Error(`${vc.source}: vhost "${vc.name}": ${what} ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/** The TLS context of a vhost, from its key, certificate and CA files, and its ciphers, curves and options. */
function secureContext(vc: VhostConfig): SecureContext | undefined {
  if (!vc.tls) return undefined;
  const { key, cert, ca } = vc.tls;
  try {
    return createSecureContext({
      key: readPem(vc, 'host-ssl-key', key),
      cert: readPem(vc, 'host-ssl-cert', cert),
      ...(ca ? { ca: readPem(vc, 'host-ssl-ca', ca) } : {}),
      ...nodeTlsOptions(vc.tlsTuning),
    });
  } catch (err) {
    if ((err as Error).message.startsWith(vc.source)) throw err;
    throw new Error(`${vc.source}: vhost "${vc.name}": the TLS key and certificate cannot be used (${(err as Error).message})`);
  }
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `[21/Nov/2026:10:01:02 +0000]`, Apache's %t, in UTC. */
function clfDate(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `[${p(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000]`;
}

/** A header or request-line value for a log line: quotes and control characters escaped (log injection). */
function logSafe(s: string | undefined): string {
  if (s === undefined || s === '') return '-';
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\x00-\x1f\x7f"\\]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/**
 * Apache combined log format: %h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i". `res` is the
 * response, or for an upgrade the status it was answered with (101 for a tunnel). `client` is the
 * client's address, read when the request came: an HTTP/2 request's socket is its session's, which
 * a stream no longer reaches once it has closed.
 */
export function combinedLogLine(
  req: NodeRequest,
  res: Pick<ServerResponse, 'statusCode'>,
  bytes: number,
  when: Date,
  client: string | undefined = req.socket.remoteAddress,
): string {
  const ua = req.headers['user-agent'];
  const ref = req.headers.referer;
  return `${client ?? '-'} - - ${clfDate(when)} "${logSafe(`${req.method ?? '-'} ${req.url ?? '-'} HTTP/${req.httpVersion}`)}" ${res.statusCode} ${bytes > 0 ? bytes : '-'} "${logSafe(ref)}" "${logSafe(ua)}"\n`;
}

/** The vhost for a Host header: an exact name, then a `*.example.com` wildcard, then the port's first vhost. */
export function selectVhost<T extends { readonly config: { readonly name: string } }>(vhosts: readonly T[], hostHeader: string | undefined): T {
  const host = (hostHeader ?? '')
    .toLowerCase()
    .replace(/:\d+$/, '')
    .replace(/^\[(.*)\]$/, '$1');
  const exact = vhosts.find((v) => v.config.name.toLowerCase() === host);
  if (exact) return exact;
  const wild = vhosts.find(
    (v) => v.config.name.startsWith('*.') && host.endsWith(v.config.name.slice(1).toLowerCase()) && host.length > v.config.name.length - 1,
  );
  return wild ?? vhosts[0]!;
}

/**
 * Loads the plugins of every `plugin-dir`: each `.mjs`/`.js` module there
 * (found with fast-glob, not recursively, in sorted order) contributes its
 * exported functions as `callback://name` handlers. A name exported twice is
 * an error, as is a module that fails to load.
 */
export async function loadPlugins(dirs: readonly string[], generation = 0): Promise<Record<string, CallbackHandler>> {
  const handlers: Record<string, CallbackHandler> = {};
  const from: Record<string, string> = {};
  for (const dir of dirs) {
    const files = (await fg(['*.mjs', '*.js'], { cwd: dir, absolute: true, onlyFiles: true })).sort();
    for (const file of files) {
      let mod: Record<string, unknown>;
      try {
        // A query per reload generation: ESM caches modules by URL, and a reload must see edited plugins.
        mod = (await import(`${pathToFileURL(file).href}${generation > 0 ? `?reload=${generation}` : ''}`)) as Record<string, unknown>;
      } catch (err) {
        throw new Error(`plugin ${file} failed to load: ${(err as Error).message}`);
      }
      for (const [name, value] of Object.entries(mod)) {
        if (typeof value !== 'function') continue;
        if (from[name] !== undefined) throw new Error(`plugin handler "${name}" is exported by both ${from[name]} and ${file}`);
        handlers[name] = value as CallbackHandler;
        from[name] = file;
      }
    }
  }
  return handlers;
}

interface Group {
  /** An IP address, or the socket path for a unix-socket group. */
  readonly host: string;
  readonly port: number;
  readonly unix: boolean;
  readonly vhosts: Vhost[];
  readonly tls: boolean;
  readonly ipv6Only: boolean;
  /** TLS, and HTTP/2 is offered by ALPN (the first vhost's `"h2"`). */
  readonly h2: boolean;
  /** Cleartext, and h2c prior-knowledge connections are taken (the first vhost's `"h2c"`). */
  readonly h2c: boolean;
}

/**
 * `interface`: an IP address, or a network interface name (its first IPv4, else IPv6, address).
 * With `ipv6only`: `::` when there is none, and an interface's first IPv6 address.
 */
function bindAddress(vc: VhostConfig): string {
  const iface = vc.interface;
  const v6 = vc.ipv6only === true;
  if (iface === undefined) return v6 ? '::' : '0.0.0.0';
  if (isIP(iface) !== 0) return iface;
  const addrs = networkInterfaces()[iface];
  const pick = v6 ? addrs?.find((a) => a.family === 'IPv6') : (addrs?.find((a) => a.family === 'IPv4') ?? addrs?.[0]);
  if (!pick)
    throw new Error(
      `${vc.source}: vhost "${vc.name}": "interface" ${JSON.stringify(iface)} is neither an IP address nor a network interface${v6 ? ' with an IPv6 address (ipv6only)' : ''} here`,
    );
  return pick.address;
}

/** With `unix-socket`, `interface` is the socket's path (as in lwsws). */
function socketPath(vc: VhostConfig): string {
  if (vc.interface === undefined || vc.interface === '')
    throw new Error(`${vc.source}: vhost "${vc.name}": "unix-socket" needs the socket path in "interface"`);
  return vc.interface;
}

/** Removes a socket file left by a server that is gone; refuses one that still answers. */
async function clearStaleSocket(path: string): Promise<void> {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new Error(`unix socket ${path}: the path exists and is not a socket`);
  const alive = await new Promise<boolean>((resolve) => {
    const sock = connect(path);
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
  if (alive) throw new Error(`unix socket ${path} is in use by another server`);
  unlinkSync(path);
}

/** What a listener serves now; reload swaps it whole, so a request sees one configuration throughout. */
interface ListenerState {
  vhosts: readonly Vhost[];
  config: ServerConfig;
}

/**
 * Builds every vhost of `config` (handlers, logs, TLS contexts) grouped by
 * interface and port, or throws without side effects worth keeping.
 */
async function buildGroups(config: ServerConfig, options: StartOptions, reloadCount: number, status: () => ServerStatus): Promise<Map<string, Group>> {
  // count-threads is the CLI's job (node:cluster); an embedder gets an error, not one process silently.
  if (config.global.countThreads > 1 && !options.clusterWorker) throw new Error('"count-threads" above 1 needs the vfserve CLI (node:cluster workers)');
  // The shipped status page, unless a plugin provides a handler of that name.
  const callbacks = { [STATUS_HANDLER]: createStatusHandler(status), ...(await loadPlugins(config.global.pluginDirs, reloadCount)) };
  // One filesystem for every vhost of this configuration: an archive two vhosts serve is indexed once,
  // and the status page sees every archive. Each configuration (reload) gets its own.
  const vfs = new Vfs({ base: new PlatFops(), zip: { storedCrc: 'first-read', ...(options.onIndex ? { onIndex: options.onIndex } : {}) } });
  const groups = new Map<string, Group>();
  const opened: AccessLog[] = [];
  const reportError = options.onError ?? logError;
  try {
    for (const vc of config.vhosts) {
      if (vc.sts && !vc.tls) throw new Error(`${vc.source}: vhost "${vc.name}": "sts" needs a TLS vhost (host-ssl-key and host-ssl-cert)`);
      if (vc.h2c === true && vc.tls) throw new Error(`${vc.source}: vhost "${vc.name}": "h2c" is cleartext HTTP/2; a TLS vhost offers HTTP/2 by ALPN ("h2")`);
      const headers: Record<string, string> = { ...vc.headers };
      if (config.global.serverString !== undefined) headers.server = config.global.serverString;
      if (vc.sts) headers['strict-transport-security'] = STS;
      let handler: Vhost['handler'];
      try {
        // A vhost with remote archives (range+http, s3) gets the engine's own filesystem, whose base routes
        // its reserved prefix to those origins; every other vhost shares this configuration's.
        const remote = vc.mounts.some((m) => isRemoteOrigin(m.origin));
        handler = createHandler({
          ...(remote ? (config.global.remote ? { remote: config.global.remote } : {}) : { vfs }),
          mounts: vc.mounts,
          headers,
          callbacks,
          ...(vc.errorDocument404 !== undefined ? { notFoundDocument: vc.errorDocument404 } : {}),
          ...(options.onError ? { onError: (err: unknown) => options.onError!(err) } : {}),
          ...(options.log ? { log: options.log } : {}),
        });
      } catch (err) {
        throw new Error(`${vc.source}: vhost "${vc.name}": ${(err as Error).message}`);
      }
      const context = secureContext(vc);
      let log: AccessLog | undefined;
      if (vc.accessLog !== undefined) {
        try {
          log = new AccessLog(vc.accessLog, reportError);
        } catch (err) {
          throw new Error(
            `${vc.source}: vhost "${vc.name}": access-log ${vc.accessLog} cannot be opened (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
          );
        }
        opened.push(log);
      }
      const host = vc.unixSocket ? socketPath(vc) : bindAddress(vc);
      const key = `${host}\0${vc.unixSocket ? 'unix' : vc.port}`;
      // Per-port settings are the first vhost's, as keepalive_timeout is.
      const group = groups.get(key) ?? {
        host,
        port: vc.port,
        unix: vc.unixSocket,
        vhosts: [],
        tls: context !== undefined,
        h2: context !== undefined && vc.h2 !== false,
        h2c: context === undefined && vc.h2c === true,
        ipv6Only: vc.ipv6only === true,
      };
      if (group.tls !== (context !== undefined)) {
        throw new Error(`port ${vc.port}: vhosts "${group.vhosts[0]?.config.name ?? ''}" and "${vc.name}" share it, so all or none of them must have TLS`);
      }
      // The listen-accept keys act for the whole port (lws reads them from its first vhost).
      if (vc.listenAccept && group.vhosts.length > 0) {
        throw new ConfigError(
          vc.listenAccept.file,
          vc.listenAccept.at,
          `belongs on the first vhost of its port ("${group.vhosts[0]!.config.name}"): it acts for the whole port`,
        );
      }
      const other = group.vhosts[0]?.config;
      // One socket, one IPV6_V6ONLY; and OpenSSL takes ciphers and options from the context the
      // handshake starts with, before SNI picks the vhost, so a second vhost's would not apply.
      if (other !== undefined && (other.ipv6only === true) !== group.ipv6Only)
        throw new Error(`port ${vc.port}: vhosts "${other.name}" and "${vc.name}" share it, so they must agree on "ipv6only"`);
      if (other !== undefined && !sameTlsOptions(other.tlsTuning, vc.tlsTuning))
        throw new Error(
          `port ${vc.port}: vhosts "${other.name}" and "${vc.name}" share it, so they must agree on "ciphers", "tls13-ciphers", "ecdh-curve", "ssl-option-set" and "ssl-option-clear"`,
        );
      group.vhosts.push({ config: vc, handler, log, context });
      groups.set(key, group);
    }
  } catch (err) {
    for (const log of opened) void log.retire();
    throw err;
  }
  return groups;
}

/**
 * A listener: the server that owns the listening socket, and what reload and close reach behind it.
 * On a TLS port with HTTP/2 the listening server is node:http2's secure server, which takes
 * HTTP/1.1 too; on an h2c port it is a net.Server handing each connection to an HTTP/1.1 or an h2c
 * server by its first bytes ({@link routeH2c}).
 */
interface Listener {
  /** Owns the listening socket: `address()`, `close()`. */
  readonly server: NetServer;
  /** Parses HTTP/1.1: `server` itself, or on an h2c port the server the router hands connections to. */
  readonly http1: Server | HttpsServer | Http2SecureServer;
  /** The HTTP/2 servers (none with HTTP/2 off): reload updates their settings. */
  readonly h2: readonly (Http2SecureServer | Http2Server)[];
  /** Their open sessions. */
  readonly sessions: H2Sessions;
  /**
   * Every TCP connection accepted and still open, whatever it carries (HTTP/1.1, an HTTP/2 session,
   * a WebSocket tunnel, a TLS handshake): what close cuts at its timeout. node's closeAllConnections()
   * knows only the HTTP/1.1 connections it still parses, and node:http2's servers have none.
   */
  readonly sockets: Set<Socket>;
  /** The port's front door (HTTP fallback): it owns the listening socket and reads each connection's first bytes. */
  readonly front: FrontDoor | undefined;
}

// node:http's default keep-alive timeout, which node:http2's secure server does not give its HTTP/1.1 connections.
const KEEPALIVE_TIMEOUT_MS = 5_000;

/** A listening server for one group, serving whatever its state holds. */
async function listen(group: Group, state: ListenerState, options: StartOptions, stats: Stats): Promise<Listener> {
  const listener = (req: NodeRequest, res: NodeResponse): void => serve(req, res, state.vhosts, state.config, options, stats);
  const first = group.vhosts[0]!;
  const keepAliveMs = first.config.keepaliveTimeout !== undefined ? first.config.keepaliveTimeout * 1000 : KEEPALIVE_TIMEOUT_MS;
  // An HTTP/2 session idle for the keep-alive timeout is closed, as an idle HTTP/1.1 connection is.
  const sessions = new H2Sessions(keepAliveMs);
  const h2: (Http2SecureServer | Http2Server)[] = [];
  let server: NetServer;
  let http1: Listener['http1'];
  let h2cServer: Http2Server | undefined;
  if (group.tls) {
    // Several TLS vhosts on one port: the certificate is chosen by SNI, as the vhost is by Host.
    const tls = {
      key: readPem(first.config, 'host-ssl-key', first.config.tls!.key),
      cert: readPem(first.config, 'host-ssl-cert', first.config.tls!.cert),
      ...nodeTlsOptions(first.config.tlsTuning),
      SNICallback: (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) => cb(null, selectVhost(state.vhosts, servername).context),
    };
    if (group.h2) {
      // ALPN offers h2 and http/1.1 (node's order for allowHTTP1); a client without ALPN gets HTTP/1.1.
      const secure = createSecureServer({ ...tls, ...h2ServerOptions(first.config.h2MaxConcurrentStreams), allowHTTP1: true }, listener);
      // node:http2 serves HTTP/1.1 without node:http's defaults for these: idle keep-alive connections
      // would never time out, and HTTP/1.1 requests without Host would be answered instead of 400.
      Object.assign(secure, { keepAliveTimeout: KEEPALIVE_TIMEOUT_MS, requireHostHeader: true });
      h2.push(secure);
      server = http1 = secure;
    } else server = http1 = createTlsServer(tls, listener);
  } else if (group.h2c) {
    const inner = createServer(listener);
    h2cServer = createH2cServer(h2ServerOptions(first.config.h2MaxConcurrentStreams), listener);
    h2.push(h2cServer);
    const routes = { http1: inner, h2c: h2cServer };
    server = createNetServer((socket) => routeH2c(socket, routes));
    // node:http starts tracking its connections (closeIdleConnections, the header and request
    // timeouts) when its server emits 'listening'; this one never listens itself.
    server.once('listening', () => inner.emit('listening'));
    http1 = inner;
  } else server = http1 = createServer(listener);
  for (const s of h2) s.on('session', (session) => sessions.add(session));
  // WebSocket upgrades go to the vhost's proxy mounts; anything else is refused there. node:http2's
  // secure server emits 'upgrade' for its HTTP/1.1 connections as node:http does.
  http1.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => serveUpgrade(req, socket, head, state, options, stats));
  // node:http2's secure server has these at run time but not in @types/node: a typed view of the HTTP/1.1 side.
  const h1 = http1 as Pick<Server, 'keepAliveTimeout' | 'headersTimeout'>;
  if (first.config.keepaliveTimeout !== undefined) h1.keepAliveTimeout = keepAliveMs;
  if (state.config.global.timeoutSecs !== undefined) h1.headersTimeout = state.config.global.timeoutSecs * 1000;
  // HTTP fallback (lwsws's listen-accept keys): a front door owns the port, reads each connection's
  // first bytes and hands it to the HTTP/TLS server, the h2c server or the raw proxy (its sniffer
  // also routes the h2c preface, so it replaces routeH2c there); any other port keeps its direct path.
  let front: FrontDoor | undefined;
  if (needsFrontDoor(first.config.listenAccept, false)) {
    front = frontDoor(group, state, options, stats, http1, h1, listener, h2cServer);
    server = front.server;
  }
  const sockets = new Set<Socket>();
  // TLS: 'secureConnection' would miss handshakes that fail; the TCP connection is what is open.
  server.on('connection', (socket: Socket) => {
    stats.connections.open++;
    stats.connections.total++;
    sockets.add(socket);
    socket.once('close', () => {
      stats.connections.open--;
      sockets.delete(socket);
    });
  });
  if (group.unix) await clearStaleSocket(group.host);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const done = (): void => {
      server.off('error', reject);
      resolve();
    };
    if (group.unix) server.listen(group.host, done);
    else server.listen({ port: group.port, host: group.host, ...(group.ipv6Only ? { ipv6Only: true } : {}) }, done);
  });
  return { server, http1, h2, sessions, sockets, front };
}

/**
 * The front door of a port with HTTP fallback. `server` takes TLS (on a TLS port) or HTTP/1 (on a
 * plain one), and `h2c` the prior-knowledge preface where the port has h2c. A TLS port also gets
 * the two plain HTTP servers its settings may ask for: one serving the vhosts as `server` does
 * (`allow-http-on-https`), one redirecting to https (`redirect-http`). Raw-proxied connections are
 * logged to the first vhost's access log and the terminal log.
 */
function frontDoor(
  group: Group,
  state: ListenerState,
  options: StartOptions,
  stats: Stats,
  server: NetServer,
  timeouts: Pick<Server, 'keepAliveTimeout' | 'headersTimeout'>,
  listener: (req: NodeRequest, res: NodeResponse) => void,
  h2c: Http2Server | undefined,
): FrontDoor {
  let plain: Server | undefined;
  let redirect: Server | undefined;
  if (group.tls) {
    plain = createServer(listener);
    plain.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => serveUpgrade(req, socket, head, state, options, stats));
    plain.keepAliveTimeout = timeouts.keepAliveTimeout;
    plain.headersTimeout = timeouts.headersTimeout;
    redirect = createServer((req, res) => {
      const vhost = selectVhost(state.vhosts, req.headers.host);
      countAndLog(req, res, vhost.log, options.requestLog, Date.now(), stats.counter(vhost.config.name));
      redirectToHttps(req, res);
    });
    redirect.headersTimeout = timeouts.headersTimeout;
  }
  return new FrontDoor({
    tls: group.tls,
    routes: group.tls ? { tls: server, ...(plain ? { http1: plain } : {}), ...(redirect ? { redirect } : {}) } : { http1: server, ...(h2c ? { h2c } : {}) },
    settings: () => state.vhosts[0]?.config.listenAccept,
    proxyLogger: () => {
      // Claimed now, while this configuration is current: the log stays open until the line is in.
      const logLine = state.vhosts[0]?.log?.begin();
      return (record) => {
        logLine?.(rawProxyLogLine(record));
        options.requestLog?.(
          `${record.startedAt.toISOString()} ${record.client} RAW-PROXY ${logSafe(record.onward)} ${record.status} ${record.bytesDown}B ${record.reason} ${record.durationMs}ms up ${record.bytesUp}B`,
        );
      };
    },
    onError: (err) => {
      if (options.onError) options.onError(err);
      else (options.log ?? ((line: string) => console.error(line)))(`vfserve: ${(err as Error).message}`);
    },
  });
}

/**
 * A raw-proxied connection in the access log, in the combined format's shape so log tools still
 * parse it: `"RAW-PROXY <onward> <reason>"` stands where the request line goes, the status is
 * nginx stream's (200 relayed, 502 onward unreachable), %b is the bytes sent to the client, and
 * the bytes from the client and the milliseconds follow the user-agent field.
 */
export function rawProxyLogLine(record: RawProxyRecord): string {
  return `${record.client} - - ${clfDate(record.startedAt)} "${logSafe(`RAW-PROXY ${record.onward} ${record.reason}`)}" ${record.status} ${record.bytesDown > 0 ? record.bytesDown : '-'} "-" "-" ${record.bytesUp} ${record.durationMs}ms\n`;
}

/**
 * Stops accepting and lets in-flight work finish for up to `timeoutMs`: idle HTTP/1.1 connections
 * close now, HTTP/2 sessions get a GOAWAY (their open streams finish, no new ones start). At the
 * timeout every connection still open is cut. Resolves once every connection is closed.
 */
function closeGracefully(l: Listener, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      l.sessions.destroyAll();
      for (const socket of l.sockets) socket.destroy();
      l.front?.destroyAll();
    }, timeoutMs);
    const done = (): void => {
      clearTimeout(timer);
      resolve();
    };
    // A front door sees every socket, raw-proxied and held ones included.
    if (l.front) l.front.close(done);
    else l.server.close(done);
    // The h2c router's HTTP/1.1 server never listened: its close() only stops its connection checks.
    if (l.http1 !== l.server) l.http1.close();
    // node:http2's secure server has it for its HTTP/1.1 connections, though @types/node does not say so.
    (l.http1 as Partial<Pick<Server, 'closeIdleConnections'>>).closeIdleConnections?.();
    l.sessions.closeAll();
  });
}

/** Counters of a running server, kept across reloads; vhosts are counted by name. */
class Stats {
  readonly started = Date.now();
  readonly connections = { open: 0, total: 0 };
  readonly vhosts = new Map<string, { requests: number; bytes: number; statuses: Map<number, number> }>();

  /** The counter for responses of the vhost called `name`. */
  counter(name: string): (status: number, bytes: number) => void {
    return (status, bytes) => {
      let v = this.vhosts.get(name);
      if (v === undefined) {
        v = { requests: 0, bytes: 0, statuses: new Map() };
        this.vhosts.set(name, v);
      }
      v.requests++;
      v.bytes += bytes;
      v.statuses.set(status, (v.statuses.get(status) ?? 0) + 1);
    };
  }

  /** The status page's view of the counters and of what `vhosts` (the current configuration) hold. */
  report(vhosts: readonly Vhost[], version: string): ServerStatus {
    const byName = new Map<string, Vhost[]>();
    for (const v of vhosts) byName.set(v.config.name, [...(byName.get(v.config.name) ?? []), v]);
    for (const name of this.vhosts.keys()) if (!byName.has(name)) byName.set(name, []);
    const list: VhostStatus[] = [...byName].map(([name, vs]) => {
      const counted = this.vhosts.get(name);
      const c = { rEntries: 0, rHits: 0, rMisses: 0, sEntries: 0, sBytes: 0, sHits: 0, sMisses: 0 };
      for (const v of vs) {
        const cs = v.handler.engine.cacheStats;
        c.rEntries += cs.resolutions.entries;
        c.rHits += cs.resolutions.hits;
        c.rMisses += cs.resolutions.misses;
        c.sEntries += cs.smallContents.entries;
        c.sBytes += cs.smallContents.bytes;
        c.sHits += cs.smallContents.hits;
        c.sMisses += cs.smallContents.misses;
      }
      return {
        name,
        requests: counted?.requests ?? 0,
        bytes: counted?.bytes ?? 0,
        statuses: Object.fromEntries([...(counted?.statuses ?? [])].sort((a, b) => a[0] - b[0]).map(([k, n]) => [String(k), n])),
        caches: {
          resolutions: { entries: c.rEntries, hits: c.rHits, misses: c.rMisses, hitRate: hitRate(c.rHits, c.rMisses) },
          smallContents: { entries: c.sEntries, bytes: c.sBytes, hits: c.sHits, misses: c.sMisses, hitRate: hitRate(c.sHits, c.sMisses) },
        },
      };
    });
    // Every vhost of a configuration shares one filesystem (buildGroups).
    const vfs = vhosts[0]?.handler.engine.vfs;
    const zip = vfs instanceof Vfs ? vfs.containers.find((c): c is ZipFops => c instanceof ZipFops) : undefined;
    const zs = zip?.stats;
    // Archives by the URL path they are served under: never a disk path.
    const indexes: { url: string; entries: number; bytes: number }[] = [];
    for (const a of zip?.archives() ?? []) {
      const url = servedAt(vhosts, a.path);
      if (url !== undefined) indexes.push({ url, entries: a.entries, bytes: a.bytes });
    }
    const uptime = (Date.now() - this.started) / 1000;
    return {
      server: 'vfserve',
      version,
      startedAt: new Date(this.started).toISOString(),
      uptimeSeconds: Math.round(uptime * 1000) / 1000,
      connections: { ...this.connections },
      requests: list.reduce((n, v) => n + v.requests, 0),
      vhosts: list,
      archives: {
        indexBuilds: zs?.indexBuilds ?? 0,
        cached: zs?.cachedArchives ?? 0,
        open: zs?.openArchives ?? 0,
        openEntries: zs?.openEntries ?? 0,
        accessIndexes: zs?.accessIndexes ?? 0,
        accessIndexBytes: zs?.accessIndexBytes ?? 0,
        indexes,
      },
    };
  }
}

/** The URL path a fops path is served under by some file mount of `vhosts` (`/book`, `/files/site.zip`), or undefined. */
function servedAt(vhosts: readonly Vhost[], path: string): string | undefined {
  for (const v of vhosts) {
    for (const m of v.handler.engine.mounts) {
      if (m.kind !== 'file') continue;
      if (path === m.root) return m.mountpoint;
      if (path.startsWith(`${m.root}/`)) return `${m.mountpoint === '/' ? '' : m.mountpoint}${path.slice(m.root.length)}`;
    }
  }
  return undefined;
}

/**
 * What {@link startServer} would do with `config`, without listening: builds every vhost
 * (handlers, plugins, TLS contexts; access logs are opened for appending, as at start-up, and
 * closed again) and returns the listeners it would open. Throws what startServer would.
 */
export async function checkServer(config: ServerConfig, options: StartOptions = {}): Promise<ListenerInfo[]> {
  const stats = new Stats();
  const groups = await buildGroups(config, { ...options, clusterWorker: true }, 0, () => stats.report([], ''));
  await Promise.all([...groups.values()].flatMap((g) => g.vhosts.map((v) => v.log?.retire() ?? Promise.resolve())));
  return [...groups.values()].map((g) => ({
    host: g.host,
    port: g.unix ? 0 : g.port,
    unix: g.unix,
    tls: g.tls,
    ipv6Only: g.ipv6Only,
    h2: g.h2,
    h2c: g.h2c,
    vhosts: g.vhosts.map((v) => v.config.name),
    configs: g.vhosts.map((v) => v.config),
  }));
}

/**
 * Starts every listener of `config`. Vhosts that share an interface and port
 * share one listener and are chosen by the Host header (and, with TLS, SNI).
 */
export async function startServer(config: ServerConfig, options: StartOptions = {}): Promise<RunningServer> {
  let reloads = 0;
  const live = new Map<string, { listener: Listener; group: Group; state: ListenerState }>();
  const stats = new Stats();
  // The status page reports the configuration current when it is asked.
  const status = (): ServerStatus =>
    stats.report(
      [...live.values()].flatMap((l) => l.state.vhosts),
      options.version ?? 'unknown',
    );
  for (const [key, group] of await buildGroups(config, options, reloads, status)) {
    const state: ListenerState = { vhosts: group.vhosts, config };
    live.set(key, { listener: await listen(group, state, options, stats), group, state });
  }
  // Retiring a log ends it once its in-flight responses have logged; reload does not wait for that.
  // The vhosts' proxy pools close the same way: after the requests they carry.
  const retireLogs = (vhosts: readonly Vhost[]): Promise<unknown> =>
    Promise.all(vhosts.flatMap((v) => [v.log?.retire() ?? Promise.resolve(), v.handler.close().catch(() => undefined)]));
  return {
    get listeners() {
      return [...live.values()].map(({ listener, group, state }) => ({
        host: group.host,
        port: group.unix ? 0 : (listener.server.address() as AddressInfo).port,
        unix: group.unix,
        tls: group.tls,
        ipv6Only: group.ipv6Only,
        h2: group.h2,
        h2c: group.h2c,
        vhosts: state.vhosts.map((v) => v.config.name),
        configs: state.vhosts.map((v) => v.config),
      }));
    },
    async reload(next: ServerConfig) {
      reloads++;
      const groups = await buildGroups(next, options, reloads, status); // throws: the old configuration stays
      for (const [key, group] of groups) {
        const old = live.get(key);
        if (old && old.group.tls !== group.tls) {
          for (const g of groups.values()) void retireLogs(g.vhosts);
          throw new Error(`port ${group.port}: switching TLS on a listening port needs a restart`);
        }
        if (old && old.group.ipv6Only !== group.ipv6Only) {
          for (const g of groups.values()) void retireLogs(g.vhosts);
          throw new Error(`port ${group.port}: switching "ipv6only" on a listening port needs a restart`);
        }
        // A front door is set up when the port starts listening (a plain port keeps its direct path).
        if (old && (old.listener.front !== undefined) !== needsFrontDoor(group.vhosts[0]!.config.listenAccept, false)) {
          for (const g of groups.values()) void retireLogs(g.vhosts);
          throw new Error(
            `port ${group.port}: turning HTTP fallback on or off (fallback-listen-accept, apply-listen-accept, redirect-http, allow-http-on-https) on a listening port needs a restart`,
          );
        }
        // The listening server is a different kind with HTTP/2 on (h2.ts), so it cannot switch in place either.
        if (old && (old.group.h2 !== group.h2 || old.group.h2c !== group.h2c)) {
          for (const g of groups.values()) void retireLogs(g.vhosts);
          throw new Error(`port ${group.port}: switching "${old.group.tls ? 'h2' : 'h2c'}" on a listening port needs a restart`);
        }
      }
      // Everything that can fail comes before the first swap, so a failure leaves the old configuration
      // whole: the new listeners and the TLS material for the kept ones.
      const started = new Map<string, { listener: Listener; group: Group; state: ListenerState }>();
      const contexts = new Map<string, { key: Buffer; cert: Buffer } & ReturnType<typeof nodeTlsOptions>>();
      try {
        for (const [key, group] of groups) {
          const old = live.get(key);
          if (old?.listener.server instanceof TlsServer) {
            const first = group.vhosts[0]!;
            contexts.set(key, {
              key: readPem(first.config, 'host-ssl-key', first.config.tls!.key),
              cert: readPem(first.config, 'host-ssl-cert', first.config.tls!.cert),
              ...nodeTlsOptions(first.config.tlsTuning),
            });
          } else if (!old) {
            const state: ListenerState = { vhosts: group.vhosts, config: next };
            started.set(key, { listener: await listen(group, state, options, stats), group, state });
          }
        }
      } catch (err) {
        await Promise.all([...started.values()].map(({ listener }) => closeGracefully(listener, 0)));
        for (const g of groups.values()) void retireLogs(g.vhosts);
        throw err;
      }
      for (const [key, group] of groups) {
        const old = live.get(key);
        if (old) {
          const previous = old.state.vhosts;
          old.state.vhosts = group.vhosts;
          old.state.config = next;
          // TLS cannot change on a listening port (refused above), so this is exactly group.tls.
          const context = contexts.get(key);
          // node:http2's secure server is a tls.Server too: setSecureContext swaps the default
          // certificate and keeps its ALPN protocols (they are the server's, not the context's).
          if (context && old.listener.server instanceof TlsServer) old.listener.server.setSecureContext(context);
          // New sessions get the new limits; open ones keep the SETTINGS they were sent.
          const first = group.vhosts[0]!;
          for (const h2 of old.listener.h2) h2.updateSettings(h2Settings(first.config.h2MaxConcurrentStreams));
          void retireLogs(previous);
        } else live.set(key, started.get(key)!);
      }
      for (const [key, entry] of [...live]) {
        if (groups.has(key)) continue;
        live.delete(key);
        await closeGracefully(entry.listener, 10_000);
        void retireLogs(entry.state.vhosts);
      }
    },
    async close(timeoutMs = 10_000) {
      await Promise.all([...live.values()].map(({ listener }) => closeGracefully(listener, timeoutMs)));
      // No request can arrive now. A response cut at the timeout may log a moment after its
      // socket is counted gone; its log waits for that line, and this waits for the files.
      await Promise.all([...live.values()].map(({ state }) => retireLogs(state.vhosts)));
    },
  };
}

/**
 * Counts body bytes for %b (without touching the engine), and when the response closes writes the
 * access-log line, the terminal line (ISO time, client, method, target, status, bytes, how the body
 * was produced or `-`, milliseconds) and counts it for the status page.
 */
function countAndLog(
  req: NodeRequest,
  res: NodeResponse,
  log: AccessLog | undefined,
  requestLog: ((line: string) => void) | undefined,
  started: number,
  counters: ((status: number, bytes: number) => void) | undefined,
): void {
  // Claimed now, while this response's configuration is current: the log stays open until the line is in.
  const logLine = log?.begin();
  const client = req.socket.remoteAddress;
  let bytes = 0;
  const size = (chunk: unknown): number => (typeof chunk === 'string' || Buffer.isBuffer(chunk) ? Buffer.byteLength(chunk) : 0);
  // Both response kinds have write(chunk, …) and end(chunk?, …); one untyped view wraps either.
  const out = res as unknown as { write: (...a: unknown[]) => boolean; end: (...a: unknown[]) => unknown };
  const write = out.write.bind(res);
  const end = out.end.bind(res);
  out.write = (chunk: unknown, ...rest: unknown[]) => {
    bytes += size(chunk);
    return write(chunk, ...rest);
  };
  out.end = (chunk?: unknown, ...rest: unknown[]) => {
    const before = bytes;
    const result = end(chunk, ...rest);
    // node:http2's compatibility end() sends its chunk through this.write, counted there; node:http's does not.
    if (bytes === before) bytes += size(chunk);
    return result;
  };
  res.once('close', () => {
    logLine?.(combinedLogLine(req, res, bytes, new Date(started), client));
    counters?.(res.statusCode, bytes);
    requestLog?.(
      `${new Date(started).toISOString()} ${client ?? '-'} ${logSafe(req.method)} ${logSafe(req.url)} ${res.statusCode} ${bytes}B ${bodySource(res) ?? '-'} ${Date.now() - started}ms`,
    );
  });
}

/**
 * An upgrade request (node's `'upgrade'` event): the User-Agent rules apply as to any request, then
 * the vhost's handler passes it through a proxy mount or refuses it. Its line is logged and counted
 * once the client's socket closes, with the status it got (101 for a tunnel, 499 if the client left
 * before any answer, as nginx logs it) and the bytes relayed to it after the response head.
 */
function serveUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, state: ListenerState, options: StartOptions, stats: Stats): void {
  const started = Date.now();
  const vhost = selectVhost(state.vhosts, req.headers.host);
  // Claimed now, while this configuration is current: the log stays open until the line is in.
  const logLine = vhost.log?.begin();
  const counter = stats.counter(vhost.config.name);
  const done = (outcome: Readonly<UpgradeOutcome>): void => {
    const status = outcome.status === 0 ? 499 : outcome.status;
    logLine?.(combinedLogLine(req, { statusCode: status }, outcome.bytes, new Date(started)));
    counter(status, outcome.bytes);
    options.requestLog?.(
      `${new Date(started).toISOString()} ${req.socket.remoteAddress ?? '-'} ${logSafe(req.method)} ${logSafe(req.url)} ${status} ${outcome.bytes}B upgrade ${Date.now() - started}ms`,
    );
  };
  const ua = req.headers['user-agent'] ?? '';
  const rule = state.config.global.rejectServiceKeywords.find((r) => ua.includes(r.substring));
  if (rule !== undefined) {
    const outcome = { status: rule.status, bytes: 0 };
    socket.once('close', () => done(outcome));
    refuseUpgrade(socket, rule.status, outcome);
    return;
  }
  vhost.handler.upgrade(req, socket, head, done);
}

function serve(req: NodeRequest, res: NodeResponse, vhosts: readonly Vhost[], config: ServerConfig, options: StartOptions, stats: Stats): void {
  const started = Date.now();
  // HTTP/2 names the host in :authority (SNI picked the certificate only).
  const vhost = selectVhost(vhosts, requestHost(req));
  // Every response is logged and counted once, refused ones included (as Apache logs its 403s).
  countAndLog(req, res, vhost.log, options.requestLog, started, stats.counter(vhost.config.name));
  const ua = req.headers['user-agent'] ?? '';
  for (const rule of config.global.rejectServiceKeywords) {
    if (ua.includes(rule.substring)) {
      // HTTP/2 forbids connection-specific headers: the session stays, the stream ends.
      const close = req instanceof Http2ServerRequest ? {} : { connection: 'close' };
      res.writeHead(rule.status, { 'content-type': 'text/plain; charset=utf-8', ...close });
      res.end(`${rule.message}\n`);
      return;
    }
  }
  vhost.handler(req, res);
}
