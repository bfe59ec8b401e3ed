/**
 * Reverse-proxy origins in lwsws's syntax, and a proxy mount's settings,
 * checked once when the mount is resolved.
 */
import { isIP } from 'node:net';
import { validFopPath } from '../fops/path.js';
import { redactOrigin } from '../mounts/redact.js';

/** The origin as a message shows it: without credentials or a query. */
const shown = (origin: string): string => JSON.stringify(redactOrigin(origin));

/** Where a proxy mount forwards to: fixed when the mount is resolved, never chosen by a request. */
export interface ProxyOrigin {
  readonly scheme: 'http' | 'https';
  /** The host name or IP address (IPv6 without brackets); `localhost` for a unix socket. */
  readonly host: string;
  /** The TCP port (80 or 443 when the origin names none); 0 for a unix socket. */
  readonly port: number;
  /** The unix socket's path (`http://+/run/app.sock:/inside`), or undefined for TCP. */
  readonly socketPath: string | undefined;
  /** The path inside the origin, canonical, without a trailing slash: `''` or `/up/v1`. */
  readonly basePath: string;
  /** The Host header the origin gets (unless `preserveHost`): `host[:port]`, the port only when not the scheme's default. */
  readonly authority: string;
  /** `scheme://authority` (TCP) or `scheme://+socketPath:` (unix): identifies one connection pool. */
  readonly key: string;
}

/** What `proxy-headers` selects: vfserve's forwarding rules, or lws's exact allowlists. */
export type ProxyHeaderMode = 'standard' | 'lws';

/** A proxy mount's settings, precomputed. Times are in milliseconds. */
export interface ProxySettings {
  readonly origin: ProxyOrigin;
  /** Time allowed to open the connection (TCP, TLS, unix socket); default 10 s. */
  readonly connectTimeoutMs: number;
  /** Idle time allowed between upstream bytes, the response head included; default 60 s. */
  readonly readTimeoutMs: number;
  /** Peer addresses whose X-Forwarded-* are appended to rather than replaced. */
  readonly trusted: readonly string[];
  /** Send the client's Host rather than the origin's. */
  readonly preserveHost: boolean;
  /** Verify the upstream's TLS certificate against the origin host (default true). */
  readonly tlsVerify: boolean;
  readonly headerMode: ProxyHeaderMode;
  /** Requests in flight through this mount at once; over it, 503 with Retry-After (default 1024). */
  readonly maxConcurrent: number;
}

/**
 * Parses a reverse-proxy origin: `http://host[:port]/path`, `https://…`, or a
 * unix socket, `http://+/run/app.sock:/inside` (`+` marks the socket, `:` ends
 * its path). Throws a TypeError saying what is wrong. The path inside is
 * canonical: no `..`, `.` or empty segments, no query or fragment.
 */
export function parseProxyOrigin(origin: string): ProxyOrigin {
  const m = /^(https?):\/\/(.*)$/s.exec(origin);
  if (!m) throw new TypeError(`${shown(origin)} is not an http:// or https:// origin`);
  const scheme = m[1] as 'http' | 'https';
  const rest = m[2]!;
  if (/[\s\0?#\\]/.test(rest)) throw new TypeError(`${shown(origin)}: a proxy origin has no spaces, query, fragment or backslash`);
  if (rest.startsWith('+')) {
    const colon = rest.indexOf(':');
    const socketPath = colon === -1 ? rest.slice(1) : rest.slice(1, colon);
    const inside = colon === -1 ? '' : rest.slice(colon + 1);
    if (!socketPath.startsWith('/') || socketPath.length < 2) throw new TypeError(`${shown(origin)}: the unix socket path after "+" must be absolute`);
    const basePath = insidePath(inside, origin);
    return { scheme, host: 'localhost', port: 0, socketPath, basePath, authority: 'localhost', key: `${scheme}://+${socketPath}:` };
  }
  const slash = rest.indexOf('/');
  const hostPort = slash === -1 ? rest : rest.slice(0, slash);
  const basePath = insidePath(slash === -1 ? '' : rest.slice(slash), origin);
  if (hostPort.includes('@')) throw new TypeError(`${shown(origin)}: credentials in a proxy origin are not supported`);
  let host: string;
  let portText: string | undefined;
  const v6 = /^\[([0-9A-Fa-f:.]+)\](?::(\d+))?$/.exec(hostPort);
  if (v6) {
    host = v6[1]!;
    portText = v6[2];
    if (isIP(host) !== 6) throw new TypeError(`${shown(origin)}: ${JSON.stringify(host)} is not an IPv6 address`);
  } else {
    const hp = /^([A-Za-z0-9.-]+)(?::(\d+))?$/.exec(hostPort);
    if (!hp) throw new TypeError(`${shown(origin)}: ${JSON.stringify(hostPort)} is not a host[:port]`);
    host = hp[1]!.toLowerCase();
    portText = hp[2];
  }
  const defaultPort = scheme === 'https' ? 443 : 80;
  const port = portText === undefined ? defaultPort : Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new TypeError(`${shown(origin)}: the port must be from 1 to 65535`);
  const hostText = isIP(host) === 6 ? `[${host}]` : host;
  const authority = port === defaultPort ? hostText : `${hostText}:${port}`;
  return { scheme, host, port, socketPath: undefined, basePath, authority, key: `${scheme}://${hostText}:${port}` };
}

/** The path inside the origin: `''` for none or `/`, else canonical without a trailing slash. */
function insidePath(p: string, origin: string): string {
  if (p === '' || p === '/') return '';
  const trimmed = p.endsWith('/') ? p.slice(0, -1) : p;
  if (!trimmed.startsWith('/') || !validFopPath(trimmed) || /%/.test(trimmed))
    throw new TypeError(`${shown(origin)}: the path inside the origin must be a canonical path such as /app (no "..", "//" or escapes)`);
  return trimmed;
}

/**
 * The path an upstream request goes to: the origin's path, then the canonical
 * remainder after the mountpoint (percent-encoded again), with the client's
 * trailing slash kept and its query appended untouched. Built by
 * concatenation only: a request target can never name another host or climb
 * out of the origin's path (absolute-form, `//host` and `%2E%2E` are refused
 * or collapsed by canonicalisation before the mount is matched).
 */
export function upstreamPath(basePath: string, encodedRemainder: string, trailingSlash: boolean, query: string): string {
  // encodedRemainder is '' or starts with exactly one '/' (encodePath's contract).
  let path = `${basePath}${encodedRemainder}`;
  if (trailingSlash && !path.endsWith('/')) path += '/';
  if (path === '') path = '/';
  return `${path}${query}`;
}
