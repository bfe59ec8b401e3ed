import { lstatSync, readFileSync, unlinkSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer, Server as HttpsServer } from 'node:https';
import { createSecureContext, type SecureContext } from 'node:tls';
import { connect, isIP, type AddressInfo, type Server as NetServer } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Duplex } from 'node:stream';
import { pathToFileURL } from 'node:url';
import fg from 'fast-glob';
import { bodySource, createHandler, logError, type CallbackHandler, type NodeHandlerWithEngine } from '../adapters/node.js';
import { refuseUpgrade, type UpgradeOutcome } from '../proxy/upgrade.js';
import { PlatFops } from '../fops/plat.js';
import { Vfs } from '../fops/vfs.js';
import { ZipFops, type ZipIndexEvent } from '../fops/zip/zip-fops.js';
import { AccessLog } from './access-log.js';
import { ConfigError, type ServerConfig, type VhostConfig } from './config.js';
import type { RawProxyRecord } from './raw-proxy.js';
import { FrontDoor, needsFrontDoor, redirectToHttps } from './sniff.js';
import { createStatusHandler, hitRate, STATUS_HANDLER, type ServerStatus, type VhostStatus } from './status.js';

/** One listening socket (or, from {@link checkServer}, one it would open) and the vhosts it serves. */
export interface ListenerInfo {
  /** The bound address (`0.0.0.0`, `::`, `127.0.0.1`, …), or the socket path. */
  readonly host: string;
  /** The port (the one picked, for port 0 once listening); 0 for a unix socket. */
  readonly port: number;
  readonly unix: boolean;
  readonly tls: boolean;
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

/** The TLS context of a vhost, from its key, certificate and CA files. */
function secureContext(vc: VhostConfig): SecureContext | undefined {
  if (!vc.tls) return undefined;
  const { key, cert, ca } = vc.tls;
  try {
    return createSecureContext({
      key: readPem(vc, 'host-ssl-key', key),
      cert: readPem(vc, 'host-ssl-cert', cert),
      ...(ca ? { ca: readPem(vc, 'host-ssl-ca', ca) } : {}),
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
 * response, or for an upgrade the status it was answered with (101 for a tunnel).
 */
export function combinedLogLine(req: IncomingMessage, res: Pick<ServerResponse, 'statusCode'>, bytes: number, when: Date): string {
  const ua = req.headers['user-agent'];
  const ref = req.headers.referer;
  return `${req.socket.remoteAddress ?? '-'} - - ${clfDate(when)} "${logSafe(`${req.method ?? '-'} ${req.url ?? '-'} HTTP/${req.httpVersion}`)}" ${res.statusCode} ${bytes > 0 ? bytes : '-'} "${logSafe(ref)}" "${logSafe(ua)}"\n`;
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
}

/** `interface`: an IP address, or a network interface name (its first IPv4, else IPv6, address). */
function bindAddress(vc: VhostConfig): string {
  const iface = vc.interface;
  if (iface === undefined) return '0.0.0.0';
  if (isIP(iface) !== 0) return iface;
  const addrs = networkInterfaces()[iface];
  const pick = addrs?.find((a) => a.family === 'IPv4') ?? addrs?.[0];
  if (!pick) throw new Error(`${vc.source}: vhost "${vc.name}": "interface" ${JSON.stringify(iface)} is neither an IP address nor a network interface here`);
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
      const headers: Record<string, string> = { ...vc.headers };
      if (config.global.serverString !== undefined) headers.server = config.global.serverString;
      if (vc.sts) headers['strict-transport-security'] = STS;
      let handler: Vhost['handler'];
      try {
        handler = createHandler({
          vfs,
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
      const group = groups.get(key) ?? { host, port: vc.port, unix: vc.unixSocket, vhosts: [], tls: context !== undefined };
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
      group.vhosts.push({ config: vc, handler, log, context });
      groups.set(key, group);
    }
  } catch (err) {
    for (const log of opened) void log.retire();
    throw err;
  }
  return groups;
}

/** A listening server for one group, serving whatever its state holds. */
async function listen(group: Group, state: ListenerState, options: StartOptions, stats: Stats): Promise<Server> {
  const upgraded = new Set<Duplex>();
  const listener = (req: IncomingMessage, res: ServerResponse): void => serve(req, res, state.vhosts, state.config, options, stats);
  const first = group.vhosts[0]!;
  // Several TLS vhosts on one port: the certificate is chosen by SNI, as the vhost is by Host.
  const server: Server = group.tls
    ? createTlsServer(
        {
          key: readPem(first.config, 'host-ssl-key', first.config.tls!.key),
          cert: readPem(first.config, 'host-ssl-cert', first.config.tls!.cert),
          SNICallback: (servername, cb) => cb(null, selectVhost(state.vhosts, servername).context),
        },
        listener,
      )
    : createServer(listener);
  upgradedSockets.set(server, upgraded);
  // WebSocket upgrades go to the vhost's proxy mounts; anything else is refused there.
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => serveUpgrade(req, socket, head, state, options, stats, upgraded));
  if (first.config.keepaliveTimeout !== undefined) server.keepAliveTimeout = first.config.keepaliveTimeout * 1000;
  if (state.config.global.timeoutSecs !== undefined) server.headersTimeout = state.config.global.timeoutSecs * 1000;
  // HTTP fallback (lwsws's listen-accept keys): a front door owns the port, reads each connection's
  // first bytes and hands it to `server` (or the raw proxy); any other port's server gets its sockets directly.
  const front = needsFrontDoor(first.config.listenAccept, false) ? frontDoor(group, state, options, stats, server, listener, upgraded) : undefined;
  const listening: NetServer = front?.server ?? server;
  // TLS: 'secureConnection' would miss handshakes that fail; the TCP connection is what is open.
  listening.on('connection', (socket: import('node:net').Socket) => {
    stats.connections.open++;
    stats.connections.total++;
    socket.once('close', () => stats.connections.open--);
  });
  if (group.unix) await clearStaleSocket(group.host);
  await new Promise<void>((resolve, reject) => {
    listening.once('error', reject);
    const done = (): void => {
      listening.off('error', reject);
      resolve();
    };
    if (group.unix) listening.listen(group.host, done);
    else listening.listen(group.port, group.host, done);
  });
  return server;
}

/** The front door of each listener that has one: it is what listens, and what closing waits for. */
const frontDoors = new WeakMap<Server, FrontDoor>();

/**
 * The front door of a port with HTTP fallback. `server` takes TLS (on a TLS port) or HTTP/1 (on a
 * plain one). A TLS port also gets the two plain HTTP servers its settings may ask for: one serving
 * the vhosts as `server` does (`allow-http-on-https`), one redirecting to https (`redirect-http`).
 * Raw-proxied connections are logged to the first vhost's access log and the terminal log.
 */
function frontDoor(
  group: Group,
  state: ListenerState,
  options: StartOptions,
  stats: Stats,
  server: Server,
  listener: (req: IncomingMessage, res: ServerResponse) => void,
  upgraded: Set<Duplex>,
): FrontDoor {
  let plain: Server | undefined;
  let redirect: Server | undefined;
  if (group.tls) {
    plain = createServer(listener);
    plain.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => serveUpgrade(req, socket, head, state, options, stats, upgraded));
    plain.keepAliveTimeout = server.keepAliveTimeout;
    plain.headersTimeout = server.headersTimeout;
    redirect = createServer((req, res) => {
      const vhost = selectVhost(state.vhosts, req.headers.host);
      countAndLog(req, res, vhost.log, options.requestLog, Date.now(), stats.counter(vhost.config.name));
      redirectToHttps(req, res);
    });
    redirect.headersTimeout = server.headersTimeout;
  }
  const front = new FrontDoor({
    tls: group.tls,
    routes: group.tls ? { tls: server, ...(plain ? { http1: plain } : {}), ...(redirect ? { redirect } : {}) } : { http1: server },
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
  frontDoors.set(server, front);
  return front;
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
 * The upgraded sockets (WebSocket tunnels) of each listener. node's closeAllConnections() knows only
 * the HTTP connections it still parses, while server.close() waits for every socket: a tunnel left
 * open would hold close() for as long as its client stayed.
 */
const upgradedSockets = new WeakMap<Server, Set<Duplex>>();

function closeGracefully(server: Server, timeoutMs: number): Promise<void> {
  const front = frontDoors.get(server);
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      server.closeAllConnections();
      for (const socket of upgradedSockets.get(server) ?? []) socket.destroy();
      front?.destroyAll();
    }, timeoutMs);
    const done = (): void => {
      clearTimeout(timer);
      resolve();
    };
    // With a front door, it is what listens and it sees every socket, raw-proxied ones included.
    if (front) front.close(done);
    else server.close(done);
    server.closeIdleConnections();
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
  const live = new Map<string, { server: Server; group: Group; state: ListenerState }>();
  const stats = new Stats();
  // The status page reports the configuration current when it is asked.
  const status = (): ServerStatus =>
    stats.report(
      [...live.values()].flatMap((l) => l.state.vhosts),
      options.version ?? 'unknown',
    );
  for (const [key, group] of await buildGroups(config, options, reloads, status)) {
    const state: ListenerState = { vhosts: group.vhosts, config };
    live.set(key, { server: await listen(group, state, options, stats), group, state });
  }
  // Retiring a log ends it once its in-flight responses have logged; reload does not wait for that.
  // The vhosts' proxy pools close the same way: after the requests they carry.
  const retireLogs = (vhosts: readonly Vhost[]): Promise<unknown> =>
    Promise.all(vhosts.flatMap((v) => [v.log?.retire() ?? Promise.resolve(), v.handler.close().catch(() => undefined)]));
  return {
    get listeners() {
      return [...live.values()].map(({ server, group, state }) => ({
        host: group.host,
        port: group.unix ? 0 : ((frontDoors.get(server)?.server ?? server).address() as AddressInfo).port,
        unix: group.unix,
        tls: group.tls,
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
        // A front door is set up when the port starts listening (a plain port keeps its direct path).
        if (old && frontDoors.has(old.server) !== needsFrontDoor(group.vhosts[0]!.config.listenAccept, false)) {
          for (const g of groups.values()) void retireLogs(g.vhosts);
          throw new Error(
            `port ${group.port}: turning HTTP fallback on or off (fallback-listen-accept, apply-listen-accept, redirect-http, allow-http-on-https) on a listening port needs a restart`,
          );
        }
      }
      // Everything that can fail comes before the first swap, so a failure leaves the old configuration
      // whole: the new listeners and the TLS material for the kept ones.
      const started = new Map<string, { server: Server; group: Group; state: ListenerState }>();
      const contexts = new Map<string, { key: Buffer; cert: Buffer }>();
      try {
        for (const [key, group] of groups) {
          const old = live.get(key);
          if (old?.server instanceof HttpsServer) {
            const first = group.vhosts[0]!;
            contexts.set(key, {
              key: readPem(first.config, 'host-ssl-key', first.config.tls!.key),
              cert: readPem(first.config, 'host-ssl-cert', first.config.tls!.cert),
            });
          } else if (!old) {
            const state: ListenerState = { vhosts: group.vhosts, config: next };
            started.set(key, { server: await listen(group, state, options, stats), group, state });
          }
        }
      } catch (err) {
        await Promise.all([...started.values()].map(({ server }) => closeGracefully(server, 0)));
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
          if (context && old.server instanceof HttpsServer) old.server.setSecureContext(context);
          void retireLogs(previous);
        } else live.set(key, started.get(key)!);
      }
      for (const [key, entry] of [...live]) {
        if (groups.has(key)) continue;
        live.delete(key);
        await closeGracefully(entry.server, 10_000);
        void retireLogs(entry.state.vhosts);
      }
    },
    async close(timeoutMs = 10_000) {
      await Promise.all([...live.values()].map(({ server }) => closeGracefully(server, timeoutMs)));
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
  req: IncomingMessage,
  res: ServerResponse,
  log: AccessLog | undefined,
  requestLog: ((line: string) => void) | undefined,
  started: number,
  counters: ((status: number, bytes: number) => void) | undefined,
): void {
  // Claimed now, while this response's configuration is current: the log stays open until the line is in.
  const logLine = log?.begin();
  let bytes = 0;
  const write = res.write.bind(res);
  const end = res.end.bind(res);
  res.write = ((chunk: unknown, ...rest: unknown[]) => {
    if (typeof chunk === 'string' || Buffer.isBuffer(chunk)) bytes += Buffer.byteLength(chunk);
    return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof res.write;
  res.end = ((chunk?: unknown, ...rest: unknown[]) => {
    if (typeof chunk === 'string' || Buffer.isBuffer(chunk)) bytes += Buffer.byteLength(chunk);
    return (end as (...a: unknown[]) => ServerResponse)(chunk, ...rest);
  }) as typeof res.end;
  res.once('close', () => {
    logLine?.(combinedLogLine(req, res, bytes, new Date(started)));
    counters?.(res.statusCode, bytes);
    requestLog?.(
      `${new Date(started).toISOString()} ${req.socket.remoteAddress ?? '-'} ${logSafe(req.method)} ${logSafe(req.url)} ${res.statusCode} ${bytes}B ${bodySource(res) ?? '-'} ${Date.now() - started}ms`,
    );
  });
}

/**
 * An upgrade request (node's `'upgrade'` event): the User-Agent rules apply as to any request, then
 * the vhost's handler passes it through a proxy mount or refuses it. Its line is logged and counted
 * once the client's socket closes, with the status it got (101 for a tunnel, 499 if the client left
 * before any answer, as nginx logs it) and the bytes relayed to it after the response head.
 */
function serveUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  state: ListenerState,
  options: StartOptions,
  stats: Stats,
  upgraded: Set<Duplex>,
): void {
  const started = Date.now();
  const vhost = selectVhost(state.vhosts, req.headers.host);
  // Claimed now, while this configuration is current: the log stays open until the line is in.
  const logLine = vhost.log?.begin();
  const counter = stats.counter(vhost.config.name);
  upgraded.add(socket);
  const done = (outcome: Readonly<UpgradeOutcome>): void => {
    upgraded.delete(socket);
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

function serve(req: IncomingMessage, res: ServerResponse, vhosts: readonly Vhost[], config: ServerConfig, options: StartOptions, stats: Stats): void {
  const started = Date.now();
  const vhost = selectVhost(vhosts, req.headers.host);
  // Every response is logged and counted once, refused ones included (as Apache logs its 403s).
  countAndLog(req, res, vhost.log, options.requestLog, started, stats.counter(vhost.config.name));
  const ua = req.headers['user-agent'] ?? '';
  for (const rule of config.global.rejectServiceKeywords) {
    if (ua.includes(rule.substring)) {
      res.writeHead(rule.status, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' });
      res.end(`${rule.message}\n`);
      return;
    }
  }
  vhost.handler(req, res);
}
