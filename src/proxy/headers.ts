/**
 * The headers of a proxied exchange: what a request carries upstream and what
 * a response carries back. Pure functions over raw header lists, so every rule
 * is pinned by table tests without a socket.
 *
 * Order matters (RFC 9110 §7.6.1, golang/go#50580, fastify-reply-from's 2026-04 fix):
 * Connection-named and hop-by-hop fields are removed first, and only then does
 * the proxy add its own (X-Forwarded-*, Via, Host), so a client can never
 * nominate a header the proxy sets for removal.
 */
import { randomBytes } from 'node:crypto';
import { normalizeIp } from '../mounts/options.js';
import type { ProxySettings } from './origin.js';

/** Hop-by-hop fields (RFC 9110 §7.6.1, plus the ones every proxy drops): never forwarded in either direction. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-authenticate',
  'proxy-authorization',
  'http2-settings',
]);

/** What this process calls itself in Via: random per process, so a loop back to it is recognised (RFC 9110 §7.6.3). */
export const VIA_PSEUDONYM = `vfserve-${randomBytes(4).toString('hex')}`;

// More Via entries than this is a loop through processes that each look new (workers, restarts).
const MAX_VIA_HOPS = 32;

// lws's allowlists (seed 004, lws's dummy-callback.c): the request headers it copies onward, and the response headers it relays.
const LWS_REQUEST: ReadonlySet<string> = new Set([
  'etag',
  'if-modified-since',
  'accept-language',
  'accept-encoding',
  'cache-control',
  'cookie',
  'content-type',
  'content-length',
]);
const LWS_RESPONSE: ReadonlySet<string> = new Set([
  'content-length',
  'content-type',
  'etag',
  'accept-language',
  'content-encoding',
  'cache-control',
  'set-cookie',
  'location',
]);

/** A header list as node gives it (`req.rawHeaders`) or undici does: name, value, name, value… */
export type RawHeaders = readonly (string | Buffer)[];

/** Header fields by lower-case name, in arrival order, repeated fields kept apart. */
export type HeaderFields = Map<string, string[]>;

/** Groups a raw list by lower-case name; HTTP/2 pseudo-headers (`:path`) are left out. */
export function collectFields(raw: RawHeaders): HeaderFields {
  const fields: HeaderFields = new Map();
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = latin1(raw[i]!).toLowerCase();
    if (name.startsWith(':')) continue;
    const value = latin1(raw[i + 1]!);
    const list = fields.get(name);
    if (list === undefined) fields.set(name, [value]);
    else list.push(value);
  }
  return fields;
}

/**
 * A header as text, byte for byte: undici hands over Buffers, and a field value may carry obs-text
 * (RFC 9110 §5.5), which UTF-8 decoding would turn into U+FFFD. Node writes header strings as latin1.
 */
function latin1(v: string | Buffer): string {
  return typeof v === 'string' ? v : v.toString('latin1');
}

/** The comma-separated elements of a field's values, trimmed of OWS (SP, HTAB), empty ones kept. */
function listElements(values: readonly string[] | undefined): string[] {
  if (values === undefined) return [];
  return values.flatMap((v) => v.split(',')).map((e) => e.replace(/^[ \t]+|[ \t]+$/g, ''));
}

/** The header names a Connection field nominates, lower-case. */
function connectionTokens(fields: HeaderFields): string[] {
  return listElements(fields.get('connection'))
    .map((t) => t.toLowerCase())
    .filter((t) => t !== '');
}

/**
 * Why a request's framing is ambiguous, or undefined when it is not (RFC 9112 §6.1, §6.3): Content-Length
 * together with Transfer-Encoding, more than one Content-Length field (equal or not), a Content-Length that
 * is not digits, or a Transfer-Encoding whose final coding is not `chunked` (an empty element, as in
 * `chunked,`, counts as a coding). Each has smuggled requests past a proxy (CVE-2026-29057, tinyproxy#609).
 */
export function framingProblem(raw: RawHeaders): string | undefined {
  const fields = collectFields(raw);
  const lengths = fields.get('content-length');
  const codings = fields.get('transfer-encoding');
  if (lengths !== undefined && codings !== undefined) return 'Content-Length together with Transfer-Encoding';
  if (lengths !== undefined) {
    if (lengths.length > 1) return 'more than one Content-Length';
    if (!/^[0-9]+$/.test(lengths[0]!.replace(/^[ \t]+|[ \t]+$/g, ''))) return 'a Content-Length that is not a number';
  }
  if (codings !== undefined) {
    const list = listElements(codings).map((c) => c.toLowerCase());
    if (list.at(-1) !== 'chunked') return 'a Transfer-Encoding whose final coding is not chunked';
    if (list.indexOf('chunked') !== list.length - 1) return 'chunked applied more than once';
    if (list.some((c) => c === '')) return 'an empty transfer coding';
  }
  return undefined;
}

/** What the proxy knows of the client's connection. */
export interface ClientConnection {
  /** The peer's address as the socket reports it. */
  readonly peer: string;
  /** The client reached us over TLS. */
  readonly encrypted: boolean;
  /** The client's HTTP version as node reports it: `1.1`, `1.0`, `2.0`. */
  readonly httpVersion: string;
  /** The local port the client connected to (lws sends `Host: origin-host:this-port`). */
  readonly localPort: number;
}

/** The headers for the upstream request, or why the request is refused (508: it looped back to this proxy). */
export type UpstreamHeaders = { readonly headers: Record<string, string> } | { readonly status: 508; readonly reason: string };

/**
 * The request headers sent upstream. Standard mode: the client's fields minus Connection-named and
 * hop-by-hop ones (TE kept only as exactly `trailers`), minus Host, Expect and, from untrusted peers,
 * Forwarded; then X-Forwarded-For/-Proto/-Host (replaced, or appended to when the peer is in
 * `settings.trusted`), Via with this process's pseudonym (a loop gives 508), and Host (the origin's unless
 * `preserveHost`). `lws` mode: exactly lws's allowlist, `Host: origin-host:local-port` and
 * `X-Forwarded-For: peer`. `upgrade`: the client's Upgrade is kept and `Connection: upgrade` set.
 * Content-Length is kept when the client sent one (framing is checked before, by {@link framingProblem}).
 */
export function upstreamRequestHeaders(raw: RawHeaders, settings: ProxySettings, client: ClientConnection, upgrade = false): UpstreamHeaders {
  const fields = collectFields(raw);
  const host = fields.get('host')?.[0] ?? authorityOf(raw);
  const peer = normalizeIp(client.peer);
  const out: Record<string, string> = {};
  if (settings.headerMode === 'lws') {
    for (const [name, values] of fields) if (LWS_REQUEST.has(name)) out[name] = joinValues(name, values);
    out.host = `${settings.origin.host.includes(':') ? `[${settings.origin.host}]` : settings.origin.host}:${client.localPort}`;
    out['x-forwarded-for'] = peer;
    if (upgrade) addUpgrade(out, fields);
    return { headers: out };
  }
  const via = fields.get('via');
  const viaEntries = listElements(via).filter((e) => e !== '');
  if (viaEntries.some((e) => e.split(/[ \t]+/)[1] === VIA_PSEUDONYM)) return { status: 508, reason: 'the request came back through this proxy (Via)' };
  if (viaEntries.length >= MAX_VIA_HOPS) return { status: 508, reason: `the request passed ${viaEntries.length} proxies (Via)` };
  const nominated = new Set(connectionTokens(fields));
  const trusted = settings.trusted.includes(peer);
  for (const [name, values] of fields) {
    if (nominated.has(name) || HOP_BY_HOP.has(name) || name === 'host' || name === 'expect' || name === 'via') continue;
    if (name === 'x-forwarded-for' || name === 'x-forwarded-proto' || name === 'x-forwarded-host') continue;
    if (name === 'forwarded' && !trusted) continue;
    out[name] = joinValues(name, values);
  }
  // TE: trailers is end-to-end in meaning (the client can take trailers), so it is the one value passed on.
  if (!nominated.has('te') && listElements(fields.get('te')).some((t) => t.toLowerCase() === 'trailers')) out.te = 'trailers';
  const prior = (name: string): string | undefined => {
    if (!trusted) return undefined;
    const v = fields.get(name);
    return v === undefined ? undefined : v.join(', ');
  };
  const priorFor = prior('x-forwarded-for');
  out['x-forwarded-for'] = priorFor === undefined || priorFor.trim() === '' ? peer : `${priorFor}, ${peer}`;
  out['x-forwarded-proto'] = prior('x-forwarded-proto') ?? (client.encrypted ? 'https' : 'http');
  const priorHost = prior('x-forwarded-host');
  if (priorHost !== undefined) out['x-forwarded-host'] = priorHost;
  else if (host !== undefined) out['x-forwarded-host'] = host;
  const version = client.httpVersion.startsWith('2') ? '2' : client.httpVersion;
  out.via = `${viaEntries.length > 0 ? `${viaEntries.join(', ')}, ` : ''}${version} ${VIA_PSEUDONYM}`;
  out.host = settings.preserveHost && host !== undefined ? host : settings.origin.authority;
  if (upgrade) addUpgrade(out, fields);
  return { headers: out };
}

/** The client's Upgrade offer, and the Connection token that makes it one (RFC 9110 §7.8). */
function addUpgrade(out: Record<string, string>, fields: HeaderFields): void {
  const offer = fields.get('upgrade');
  if (offer === undefined) return;
  out.upgrade = offer.join(', ');
  out.connection = 'upgrade';
}

/** The client's host: the Host field, or HTTP/2's :authority. */
function authorityOf(raw: RawHeaders): string | undefined {
  for (let i = 0; i + 1 < raw.length; i += 2) if (latin1(raw[i]!) === ':authority') return latin1(raw[i + 1]!);
  return undefined;
}

/** Repeated fields as one (RFC 9110 §5.3); cookies with `; ` (RFC 9113 §8.2.3: HTTP/2 splits them). */
function joinValues(name: string, values: readonly string[]): string {
  return values.join(name === 'cookie' ? '; ' : ', ');
}

/** Where a proxied response's Location is rewritten from and to. */
export interface LocationRewrite {
  readonly settings: ProxySettings;
  /** The mount's URL prefix (`/app`, or `/`). */
  readonly mountpoint: string;
}

/**
 * The response headers relayed to the client: the origin's minus hop-by-hop and Connection-named fields
 * (which covers every field HTTP/2 forbids, RFC 9113 §8.2.2), or in `lws` mode exactly lws's allowlist.
 * `Set-Cookie` stays a list; other repeated fields are joined. `Location` (and `Content-Location`)
 * pointing into the origin's path is rewritten onto the mountpoint, as nginx's `proxy_redirect default`.
 */
export function clientResponseHeaders(raw: RawHeaders, rewrite: LocationRewrite): Record<string, string | string[]> {
  const fields = collectFields(raw);
  const lws = rewrite.settings.headerMode === 'lws';
  const nominated = new Set(connectionTokens(fields));
  const out: Record<string, string | string[]> = {};
  for (const [name, values] of fields) {
    if (lws ? !LWS_RESPONSE.has(name) : nominated.has(name) || HOP_BY_HOP.has(name)) continue;
    if (name === 'set-cookie') out[name] = values;
    else if (name === 'location' || name === 'content-location') out[name] = rewriteLocation(values[0]!, rewrite);
    else out[name] = values.join(', ');
  }
  return out;
}

/**
 * A Location from the origin, mapped onto the mountpoint when it points into the origin's path:
 * `http://origin:port/base/x` and `/base/x` become `/mount/x`. Anything else (another host, a
 * scheme-relative `//x`, a path outside the base) is relayed unchanged.
 */
export function rewriteLocation(location: string, { settings, mountpoint }: LocationRewrite): string {
  const { origin } = settings;
  const mount = mountpoint === '/' ? '' : mountpoint;
  let rest: string | undefined;
  if (origin.socketPath === undefined) {
    for (const prefix of [`${origin.scheme}://${origin.authority}`, `${origin.scheme}://${origin.key.slice(origin.scheme.length + 3)}`]) {
      if (location.toLowerCase().startsWith(prefix.toLowerCase())) {
        const after = location.slice(prefix.length);
        if (after === '' || after.startsWith('/') || after.startsWith('?')) {
          rest = after;
          break;
        }
      }
    }
  }
  if (rest === undefined) {
    if (!location.startsWith('/') || location.startsWith('//')) return location;
    rest = location;
  }
  if (rest === '' || rest.startsWith('?')) rest = `/${rest}`;
  const base = origin.basePath;
  if (base !== '') {
    if (rest === base) return `${mount}/`;
    if (!(rest.startsWith(`${base}/`) || rest.startsWith(`${base}?`))) return location;
    rest = rest.slice(base.length);
    if (rest.startsWith('?')) rest = `/${rest}`;
  }
  return `${mount}${rest}`;
}
