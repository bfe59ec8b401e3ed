/**
 * A CGI program's environment, built from nothing (RFC 3875 §4.1): the request's meta-variables,
 * lws's extra names, a fixed PATH, the mount's allowlist of the server's own variables, then the
 * mount's `cgi-env`. Nothing else of the server's environment reaches the program.
 */
import type { TLSSocket } from 'node:tls';
import type { NodeRequest } from '../adapters/node.js';
import type { CgiTarget } from '../mounts/content.js';
import { normalizeIp } from '../mounts/options.js';

/** The PATH every program gets (lws's), unless the mount inherits the server's with `cgi-inherit-env`. */
export const CGI_PATH = '/bin:/usr/bin:/usr/local/bin:/var/www/cgi-bin';

// Never passed as HTTP_*: Proxy would become HTTP_PROXY, which HTTP clients take for their outbound
// proxy (httpoxy: CVE-2016-5385, -5386, -5387); credentials (RFC 3875 §4.1.18 SHOULD); the framing
// headers the server has already consumed or passes as CONTENT_* instead.
const SKIPPED = new Set(['proxy', 'authorization', 'proxy-authorization', 'content-length', 'content-type', 'transfer-encoding']);
// Underscores collide after mapping (`X_Foo` and `X-Foo`); HTTP/2 pseudo-headers start with ':'.
const HEADER_NAME = /^[A-Za-z0-9-]+$/;

/**
 * The environment for `target`'s program run for `req`. `contentLength` is the body's length,
 * undefined when the request has none (then neither CONTENT_LENGTH nor CONTENT_TYPE is set). `scriptBase` is the path a framework
 * stripped in front of the URL (Express's `baseUrl`), '' for none.
 */
export function cgiEnvironment(req: NodeRequest, target: CgiTarget, contentLength: number | undefined, scriptBase: string): Record<string, string> {
  const env: Record<string, string> = Object.create(null) as Record<string, string>;
  const fields = headerFields(req);
  for (const [name, values] of fields) env[`HTTP_${name.toUpperCase().replace(/-/g, '_')}`] = values.join(name === 'cookie' ? '; ' : ', ');
  // HTTP/2 carries the host in :authority (RFC 9113 §8.3.1).
  const authority = req.headers[':authority'];
  if (env.HTTP_HOST === undefined && typeof authority === 'string' && authority !== '') env.HTTP_HOST = authority;

  const socket = req.socket as Partial<TLSSocket> | null;
  const settings = target.settings;
  env.GATEWAY_INTERFACE = 'CGI/1.1';
  env.REQUEST_METHOD = req.method ?? 'GET';
  env.QUERY_STRING = target.query;
  env.PATH_INFO = target.pathInfo;
  env.SCRIPT_NAME = `${scriptBase}${target.mountpoint === '/' ? '' : target.mountpoint}`;
  env.SERVER_NAME = serverName(env.HTTP_HOST) ?? socket?.localAddress ?? '';
  env.SERVER_PORT = String(socket?.localPort ?? '');
  env.SERVER_PROTOCOL = `HTTP/${req.httpVersion}`;
  env.SERVER_SOFTWARE = 'vfserve';
  env.REMOTE_ADDR = socket?.remoteAddress === undefined ? '' : normalizeIp(socket.remoteAddress);
  env.REMOTE_PORT = String(socket?.remotePort ?? '');
  if (contentLength !== undefined) {
    env.CONTENT_LENGTH = String(contentLength);
    const type = req.headers['content-type'];
    if (typeof type === 'string' && type !== '') env.CONTENT_TYPE = type;
  }
  // lws's names: the raw request target, the program, and HTTPS under TLS.
  const original = (req as { originalUrl?: unknown }).originalUrl;
  env.REQUEST_URI = typeof original === 'string' ? original : (req.url ?? '/');
  env.SCRIPT_PATH = settings.program;
  env.SCRIPT_FILENAME = settings.program;
  if (socket?.encrypted === true) env.HTTPS = 'ON';
  // RFC 3875 §4.1.1, §4.1.11: the mount's basic-auth let this user in (the password is never passed).
  if (target.user !== undefined) {
    env.AUTH_TYPE = 'Basic';
    env.REMOTE_USER = target.user;
  }
  env.PATH = CGI_PATH;

  for (const name of settings.inheritEnv) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  for (const [name, value] of settings.env) env[name] = value;
  return env;
}

/** The request's header fields that become HTTP_* variables, by lower-case name, repeated values kept in order (RFC 3875 §4.1.18). */
function headerFields(req: NodeRequest): Map<string, string[]> {
  const fields = new Map<string, string[]>();
  // rawHeaders keeps every repetition; req.headers drops some (a second User-Agent) and joins others.
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const rawName = raw[i]!;
    if (!HEADER_NAME.test(rawName)) continue;
    const name = rawName.toLowerCase();
    if (SKIPPED.has(name)) continue;
    const values = fields.get(name);
    if (values === undefined) fields.set(name, [raw[i + 1]!]);
    else values.push(raw[i + 1]!);
  }
  return fields;
}

/** The Host header's host, without its port (RFC 3875 §4.1.14); brackets of an IPv6 literal kept. */
function serverName(host: string | undefined): string | undefined {
  if (host === undefined || host === '') return undefined;
  const m = /^(\[[^\]]*\]|[^:]*)(?::\d*)?$/.exec(host);
  return m?.[1] ?? host;
}
