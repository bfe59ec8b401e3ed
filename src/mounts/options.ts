import { isIP } from 'node:net';
import { dirname, isAbsolute, resolve as resolvePath } from 'node:path';
import { cacheControl } from '../cache/http.js';
import { DEFAULT_INHERIT_ENV, ENV_NAME, type CgiSettings } from '../cgi/settings.js';
import { parseProxyOrigin, type ProxyHeaderMode, type ProxySettings } from '../proxy/origin.js';
import { validFopPath } from '../fops/path.js';
import { remoteFopPath, type RemoteObjectRef } from '../fops/remote/router.js';
import { defaultS3Region, s3CredentialsFromEnv, s3ObjectLocation, s3Signer, validBucketName, validRegion, type S3Credentials } from '../fops/remote/s3.js';
import { BasicAuth, Credentials, CredentialsError, DEFAULT_REALM, validRealm } from '../auth/basic.js';
import { createMimeLookup, MIMETYPE_PRESETS, type MimeDecision, type MimetypePreset } from './mime.js';
import { redactOrigin } from './redact.js';

export { redactOrigin } from './redact.js';

/**
 * `Array.isArray` for a value typed as a readonly array: TypeScript's own guard
 * narrows `readonly T[]` to `any[]`; this one keeps `T`. The check is for
 * JavaScript callers, whose value may be no array at all.
 */
export const isReadonlyArray: (v: unknown) => v is readonly unknown[] = Array.isArray;

/**
 * One mount, with lwsws's options in camelCase (the JSON config's kebab-case
 * keys map one to one: `cache-max-age` is `cacheMaxAge`; see {@link mountFromConfig}).
 */
export interface MountOptions {
  /** URL prefix, matched on a path-segment boundary: `/docs` matches `/docs` and `/docs/x`, never `/docsx`. */
  readonly mountpoint: string;
  /**
   * - `file:///srv/www` (or an absolute path): a directory, or a `.zip`/`.jar`/`.war` archive, which
   *   may itself lie inside an archive (`file:///srv/app.war/WEB-INF/lib/lib.jar`); archives inside a
   *   directory or an archive are entered by path;
   * - `>https://host/path` or `>http://…`: a 301 redirect to that URL;
   * - `callback://name`: the handler registered under `name`;
   * - `http://host[:port]/path`, `https://…` or `http://+/run/app.sock:/path` (a unix socket): a reverse proxy;
   * - `cgi:///path/to/program`: a CGI program, run per request;
   * - `range+http://host[:port]/path/site.zip` or `range+https://…`: an archive read in place from any
   *   HTTP server that honours Range (see `HttpRangeFops`); its root directory is served, as for
   *   a local archive origin. A query is accepted only as a URL presigned for S3 (it carries
   *   `X-Amz-Signature`), and is never shown in messages;
   * - `s3://bucket/path/site.zip`: the same, for an object of an S3 bucket (see the `s3*` options).
   *
   * A relative file origin (`./public`, `file://public`) or one with `..` in it (`${__dirname}/../public`)
   * is resolved to an absolute path once, when the mount is resolved: against `process.cwd()` here, against
   * the configuration file's directory in a configuration file. Request paths keep their strict rules.
   */
  readonly origin: string;
  /** The file served for a directory (default `index.html`); a list is tried in order and the first that exists wins. */
  readonly default?: string | readonly string[];
  /** Suffixes tried in order for a path that does not exist (`["html"]`: `/about` serves `about.html`); none by default. */
  readonly extensions?: string | readonly string[];
  /**
   * A file inside the mount (`/index.html`) answered with 200 and `Cache-Control: no-cache` for a GET or
   * HEAD of a path that does not exist, whose last segment has no suffix and no segment of which is a
   * dotfile, from a client that accepts HTML (see the README for the Accept rule). Anything else that is
   * missing stays a 404.
   */
  readonly spaFallback?: string;
  /** `Access-Control-Allow-Origin: *` on every response of the mount, and OPTIONS (preflights) answered 204. */
  readonly cors?: boolean;
  /** `"downloads"` adds archives, office documents, disk images, YAML and files without a suffix to the whitelist (default `"strict"`). */
  readonly mimetypePreset?: MimetypePreset;
  /** Seconds a client may reuse a response; needs `cacheReuse` (lws). */
  readonly cacheMaxAge?: number;
  readonly cacheReuse?: boolean;
  /** Adds `must-revalidate`. */
  readonly cacheRevalidate?: boolean;
  /** `public` instead of `private`: shared caches may store responses. */
  readonly cacheIntermediaries?: boolean;
  /** `no-cache`, whatever else is set. */
  readonly cacheNo?: boolean;
  /** Adds `immutable`, for content-hashed assets. */
  readonly cacheImmutable?: boolean;
  /** Suffix to type, added to or overriding the built-in whitelist; `"*"` covers every other file (`""`: no Content-Type). */
  readonly extraMimetypes?: Readonly<Record<string, string>>;
  /** Headers added to every response from this mount (replacing a vhost header of the same name). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Per-mount options handed to `callback://` handlers (lws's `pmo`). */
  readonly pmo?: Readonly<Record<string, string>>;
  /** Serve files whose symlinks resolve outside the origin (default false: they are 404). */
  readonly followSymlinks?: boolean;
  /** Serve `x.br` / `x.gz` siblings of a disk file `x` to clients that accept them (default true). */
  readonly precompressed?: boolean;
  /**
   * Compress compressible responses on the fly (br, zstd where Node has it,
   * gzip) for clients that accept them, caching the results by snapshot
   * identity (default false; see README "Compression on the fly").
   */
  readonly compress?: boolean;
  /**
   * Answer a directory that has no default file with a listing of it (HTML, or JSON to clients
   * that ask for `application/json`) instead of a 404 (default false). See `listing.ts`.
   */
  readonly listing?: boolean;
  /** Most entries a listing shows, after hiding; more are left out with a note (default 1000). */
  readonly listingMax?: number;
  /** Proxy mounts: seconds allowed to connect to the origin (default 10). */
  readonly proxyConnectTimeout?: number | string;
  /** Proxy mounts: seconds allowed between two upstream reads, the response head included (default 60; 0: none). */
  readonly proxyReadTimeout?: number | string;
  /** Proxy mounts: peer addresses whose X-Forwarded-For/-Proto/-Host are appended to, not replaced (default none). */
  readonly proxyTrusted?: string | readonly string[];
  /** Proxy mounts: send the client's Host header rather than the origin's (default false). */
  readonly proxyPreserveHost?: boolean | string | number;
  /** Proxy mounts: verify the origin's TLS certificate (default true; false is for test origins only). */
  readonly proxyTlsVerify?: boolean | string | number;
  /** Proxy mounts: `"lws"` forwards exactly lws's header allowlists (default `"standard"`). */
  readonly proxyHeaders?: ProxyHeaderMode;
  /** Proxy mounts: requests in flight at once before 503 (default 1024). */
  readonly proxyMaxConcurrent?: number | string;
  /** Skip this mount for WebSocket upgrade requests (lws v5 `no-ws-upgrades`): a shorter mount answers them. */
  readonly noWsUpgrades?: boolean | string | number;
  /** CGI mounts: variables set last in the program's environment (lwsws writes `[{ "VAR": "value" }]`). */
  readonly cgiEnv?: Readonly<Record<string, string>>;
  /** CGI mounts: seconds a program may run before it is killed (default 5, as lws; 0: no limit). */
  readonly cgiTimeout?: number | string;
  /** CGI mounts: the program's working directory (default: the program's own directory). */
  readonly cgiChdir?: string;
  /** CGI mounts: programs running at once before 503 (default 16). */
  readonly cgiMaxConcurrent?: number | string;
  /** CGI mounts: names of the server's environment variables passed on (default LANG, LC_ALL, LC_CTYPE, TZ). */
  readonly cgiInheritEnv?: string | readonly string[];
  /**
   * HTTP Basic authentication for everything under the mount, whatever its origin: a credentials
   * file's path (read once, when the mount is resolved) or {@link Credentials} already loaded. A
   * request without a valid login gets 401 with `WWW-Authenticate: Basic realm="…"`. See the README.
   */
  readonly basicAuth?: string | Credentials;
  /** The realm of `basicAuth`'s challenge (default `"lwsws"`, as lws). */
  readonly basicAuthRealm?: string;
  /** Match only the exact URI `mountpoint` (lws v5 `exact-match`), not the paths below it. */
  readonly exactMatch?: boolean | string | number;
  /** Redirect mounts: append the request's path after the mountpoint, and its query, to the target (lws v5 `append-path`). */
  readonly appendPath?: boolean | string | number;
  /**
   * `s3://` mounts: an S3-compatible store's `http(s)://` URL, addressed path style
   * (`endpoint/bucket/key`). Default: AWS, virtual-hosted style (`https://bucket.s3.region.amazonaws.com/key`).
   */
  readonly s3Endpoint?: string;
  /** `s3://` mounts: the region signed for (default: `AWS_REGION`, then `AWS_DEFAULT_REGION`, then `us-east-1`). */
  readonly s3Region?: string;
  /**
   * `s3://` mounts: the access key id, with `s3SecretAccessKey` (both or neither). Given, they win over
   * `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` from the environment; with neither anywhere, requests
   * are not signed (a public bucket).
   */
  readonly s3AccessKeyId?: string;
  /** `s3://` mounts: the secret access key, with `s3AccessKeyId`. Never shown in a message. */
  readonly s3SecretAccessKey?: string;
}

/** A mount checked once and precomputed: the request path is a lookup plus copies of these. */
export interface ResolvedMount {
  readonly mountpoint: string;
  readonly kind: 'file' | 'redirect' | 'callback' | 'proxy' | 'cgi';
  /** For files: the origin as a canonical fops path. */
  readonly root: string;
  /** For files: the origin is an archive (its root directory is served). */
  readonly archive: boolean;
  readonly redirect: string;
  readonly callback: string;
  /** The first of `defaultFiles`. */
  readonly defaultFile: string;
  /** The files tried for a directory, in order. */
  readonly defaultFiles: readonly string[];
  /** Suffixes tried for a missing path, each with its leading dot (`.html`). */
  readonly extensions: readonly string[];
  /** The SPA fallback as a path inside the mount (`/index.html`), or `''` for none. */
  readonly spaFallback: string;
  readonly cors: boolean;
  readonly cacheControl: string;
  readonly mime: (path: string) => MimeDecision;
  readonly headers: readonly (readonly [string, string])[];
  readonly pmo: Readonly<Record<string, string>>;
  readonly followSymlinks: boolean;
  readonly precompressed: boolean;
  readonly compress: boolean;
  readonly listing: boolean;
  readonly listingMax: number;
  /** For proxy mounts: where and how requests are forwarded. */
  readonly proxy: ProxySettings | undefined;
  /** For CGI mounts: the program and how it runs. */
  readonly cgi: CgiSettings | undefined;
  /** For `range+http(s)://` mounts: the remote archive; `root` is its path under `REMOTE_PREFIX`. */
  readonly remote: RemoteObjectRef | undefined;
  /** The mount is skipped for WebSocket upgrade requests. */
  readonly noWsUpgrades: boolean;
  /** Basic authentication every request under the mount must pass, or undefined. */
  readonly auth: BasicAuth | undefined;
  /** `cache-intermediaries` was set: shared caches may store the mount's responses, authenticated ones included. */
  readonly sharedCache: boolean;
  /** The mount matches its mountpoint exactly, and nothing below it. */
  readonly exactMatch: boolean;
  /** Redirect mounts: the path after the mountpoint and the query go on the end of the target. */
  readonly appendPath: boolean;
}

const KEYS: Readonly<Record<string, keyof MountOptions>> = {
  mountpoint: 'mountpoint',
  origin: 'origin',
  default: 'default',
  'cache-max-age': 'cacheMaxAge',
  'cache-reuse': 'cacheReuse',
  'cache-revalidate': 'cacheRevalidate',
  'cache-intermediaries': 'cacheIntermediaries',
  'cache-no': 'cacheNo',
  'cache-immutable': 'cacheImmutable',
  'extra-mimetypes': 'extraMimetypes',
  headers: 'headers',
  pmo: 'pmo',
  'follow-symlinks': 'followSymlinks',
  precompressed: 'precompressed',
  extensions: 'extensions',
  'spa-fallback': 'spaFallback',
  cors: 'cors',
  'mimetype-preset': 'mimetypePreset',
  compress: 'compress',
  listing: 'listing',
  'listing-max': 'listingMax',
  'proxy-connect-timeout': 'proxyConnectTimeout',
  'proxy-read-timeout': 'proxyReadTimeout',
  'proxy-trusted': 'proxyTrusted',
  'proxy-preserve-host': 'proxyPreserveHost',
  'proxy-tls-verify': 'proxyTlsVerify',
  'proxy-headers': 'proxyHeaders',
  'proxy-max-concurrent': 'proxyMaxConcurrent',
  'no-ws-upgrades': 'noWsUpgrades',
  'cgi-env': 'cgiEnv',
  'cgi-timeout': 'cgiTimeout',
  'cgi-chdir': 'cgiChdir',
  'cgi-max-concurrent': 'cgiMaxConcurrent',
  'cgi-inherit-env': 'cgiInheritEnv',
  'basic-auth': 'basicAuth',
  'basic-auth-realm': 'basicAuthRealm',
  'exact-match': 'exactMatch',
  'append-path': 'appendPath',
  's3-endpoint': 's3Endpoint',
  's3-region': 's3Region',
  's3-access-key-id': 's3AccessKeyId',
  's3-secret-access-key': 's3SecretAccessKey',
};

/** lwsws mount keys vfserve does not implement, each refused with its reason rather than as unknown. */
const REFUSED_KEYS: Readonly<Record<string, string>> = {
  'keepalive-timeout':
    'is not supported on a mount: node sets the keep-alive timeout per server (per listening socket), not per response, and a connection outlives the requests on it; set the vhost\'s "keepalive-timeout" instead',
  'auth-mask':
    'is not supported: it feeds lws\'s LWS_CALLBACK_CHECK_ACCESS_RIGHTS, which callback:// handlers here do not have; use "basic-auth", or check access in the handler',
  interpret: 'is not supported: lws hands matching files to a protocol plugin; use a callback:// or cgi:// mount instead',
  'cgi-chroot': 'is not supported: node cannot chroot a child process; run vfserve itself in a container or chroot',
  protocol: 'is not supported (lws parses and ignores it): use a callback:// origin',
  'interceptor-path': 'is not supported: lws\'s interceptors (lws-login, captcha) are JOSE plugins; use "basic-auth" or a proxy mount',
};

const PROXY_KEYS: readonly (keyof MountOptions)[] = [
  'proxyConnectTimeout',
  'proxyReadTimeout',
  'proxyTrusted',
  'proxyPreserveHost',
  'proxyTlsVerify',
  'proxyHeaders',
  'proxyMaxConcurrent',
];
const CGI_KEYS: readonly (keyof MountOptions)[] = ['cgiEnv', 'cgiTimeout', 'cgiChdir', 'cgiMaxConcurrent', 'cgiInheritEnv'];
const S3_KEYS: readonly (keyof MountOptions)[] = ['s3Endpoint', 's3Region', 's3AccessKeyId', 's3SecretAccessKey'];

/** Whether `origin` names a remote archive (`range+http://`, `range+https://` or `s3://`), read through the engine's own filesystem. */
export function isRemoteOrigin(origin: unknown): boolean {
  return typeof origin === 'string' && /^(range\+https?|s3):\/\//i.test(origin);
}

/**
 * Maps an lwsws-style mount object (kebab-case keys, values as strings or
 * numbers: `"cache-max-age": "60"`, `"cache-reuse": "1"`) onto {@link MountOptions}.
 * Unknown keys are an error naming the key.
 */
export function mountFromConfig(obj: Readonly<Record<string, unknown>>, where = 'mount'): MountOptions {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(obj)) {
    // Own keys only: `constructor` or `toString` must not find Object.prototype's.
    const name = Object.hasOwn(KEYS, key) ? KEYS[key] : Object.values(KEYS).includes(key as keyof MountOptions) ? (key as keyof MountOptions) : undefined;
    const refused = Object.hasOwn(REFUSED_KEYS, key) ? REFUSED_KEYS[key] : undefined;
    if (refused !== undefined) throw new TypeError(`${where}: ${JSON.stringify(key)} ${refused}`);
    if (!name) throw new TypeError(`${where}: unknown key ${JSON.stringify(key)}`);
    out[name] = value;
  }
  return out as unknown as MountOptions;
}

/**
 * The one boolean vocabulary of every configuration value, JSON config and code alike:
 * `true`/`false`, `1`/`0` (numbers or strings), and the strings `"true"`/`"false"`,
 * `"on"`/`"off"`, `"yes"`/`"no"` in any case. Anything else is undefined (the caller's error).
 */
export function parseBoolean(v: unknown): boolean | undefined {
  if (typeof v === 'boolean') return v;
  if (v === 1 || v === 0) return v === 1;
  if (typeof v !== 'string') return undefined;
  if (/^(1|true|on|yes)$/i.test(v.trim())) return true;
  if (/^(0|false|off|no)$/i.test(v.trim())) return false;
  return undefined;
}

/** What a boolean may be written as, for messages. */
export const BOOLEAN_WORDS = 'true/false, 1/0, on/off, yes/no';

function bool(v: unknown, where: string): boolean {
  if (v === undefined) return false;
  const b = parseBoolean(v);
  if (b === undefined) throw new TypeError(`${where} must be a boolean (${BOOLEAN_WORDS}), got ${JSON.stringify(v)}`);
  return b;
}

/** A string or a list of strings, as a list (`"html"` is `["html"]`). */
function stringList(v: unknown, where: string): readonly string[] {
  const list: unknown[] = typeof v === 'string' ? [v] : Array.isArray(v) ? v : [null];
  for (const s of list) if (typeof s !== 'string') throw new TypeError(`${where} must be a string or a list of strings`);
  return list as string[];
}

const EXTENSION = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$/;

function seconds(v: unknown, where: string): number {
  if (v === undefined) return 0;
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new TypeError(`${where} must be a non-negative integer, got ${JSON.stringify(v)}`);
  return n;
}

/** Seconds as a number or a decimal string (`"2.5"`), into milliseconds; `fallback` when absent. */
function durationMs(v: unknown, where: string, fallback: number, zeroAllowed: boolean): number {
  if (v === undefined) return fallback;
  const n = typeof v === 'string' && /^\s*\d+(?:\.\d+)?\s*$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0 || n > 86_400 || (!zeroAllowed && n === 0))
    throw new TypeError(`${where} must be a number of seconds ${zeroAllowed ? 'from 0' : 'above 0'} to 86400, got ${JSON.stringify(v)}`);
  return Math.round(n * 1000);
}

function positiveInt(v: unknown, where: string, fallback: number): number {
  if (v === undefined) return fallback;
  const n = seconds(v, where);
  if (n < 1) throw new TypeError(`${where} must be a positive integer, got ${JSON.stringify(v)}`);
  return n;
}

function listingMax(v: unknown, where: string): number {
  if (v === undefined) return 1000;
  const n = seconds(v, where);
  if (n < 1) throw new TypeError(`${where} must be a positive integer, got ${JSON.stringify(v)}`);
  return n;
}

function stringMap(v: unknown, where: string): Readonly<Record<string, string>> {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new TypeError(`${where} must be an object of strings`);
  for (const [k, s] of Object.entries(v)) if (typeof s !== 'string') throw new TypeError(`${where}.${k} must be a string`);
  return v as Readonly<Record<string, string>>;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Header name/value pairs, lower-cased names; rejects names that are not tokens and values with CR/LF/NUL (header injection). */
export function headerPairs(v: unknown, where: string): [string, string][] {
  return Object.entries(stringMap(v, where)).map(([name, value]) => {
    if (!TOKEN.test(name)) throw new TypeError(`${where}: ${JSON.stringify(name)} is not a valid header name`);
    if (/[\r\n\0]/.test(value)) throw new TypeError(`${where}.${name}: header values cannot contain CR, LF or NUL`);
    return [name.toLowerCase(), value];
  });
}

/** Merges mount headers over vhost headers: a mount header replaces a vhost header of the same name. */
export function mergeHeaders(vhost: readonly (readonly [string, string])[], mount: readonly (readonly [string, string])[]): (readonly [string, string])[] {
  const names = new Set(mount.map(([n]) => n));
  return [...vhost.filter(([n]) => !names.has(n)), ...mount];
}

/** What `cors: true` adds: any origin may read, and read the headers a range or revalidation needs. */
const CORS_HEADERS: readonly (readonly [string, string])[] = [
  ['access-control-allow-origin', '*'],
  ['access-control-expose-headers', 'Content-Range, Accept-Ranges, Content-Encoding, ETag'],
];

/** Canonical mountpoint: `/`, or `/a/b` with no trailing slash, no `.`/`..`/empty segments. */
function canonicalMountpoint(mp: unknown, where: string): string {
  if (typeof mp !== 'string' || !mp.startsWith('/')) throw new TypeError(`${where}.mountpoint must be a path starting with /`);
  const trimmed = mp.length > 1 && mp.endsWith('/') ? mp.slice(0, -1) : mp;
  if (!validFopPath(trimmed)) throw new TypeError(`${where}.mountpoint ${JSON.stringify(mp)} is not a canonical path`);
  return trimmed;
}

/**
 * Validates and precomputes one mount. Throws a TypeError naming the field
 * (`mounts[2].cacheMaxAge must be …`); an unsupported origin is refused with
 * a clear message.
 */
export function resolveMount(
  m: MountOptions,
  vhostHeaders: readonly (readonly [string, string])[],
  where: string,
  signatures: readonly string[],
): ResolvedMount {
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- checked for JavaScript callers and JSON config
  if (typeof m !== 'object' || m === null) throw new TypeError(`${where} must be an object`);
  const mountpoint = canonicalMountpoint(m.mountpoint, where);
  const exactMatch = bool(m.exactMatch, `${where}.exactMatch`);
  // lws compares the URI with the mountpoint as written; here mountpoints lose their trailing slash.
  if (exactMatch && mountpoint !== '/' && m.mountpoint.endsWith('/'))
    throw new TypeError(
      `${where}.mountpoint: write an exact-match mountpoint without the trailing slash (${JSON.stringify(mountpoint)} matches that URI only)`,
    );
  const origin = m.origin;
  if (typeof origin !== 'string' || origin === '') throw new TypeError(`${where}.origin must be a non-empty string`);
  const defaultFiles = m.default === undefined ? ['index.html'] : stringList(m.default, `${where}.default`);
  if (defaultFiles.length === 0 || !defaultFiles.every((f) => validFopPath(`/${f}`)))
    throw new TypeError(`${where}.default must be a relative file name such as "index.html", or a non-empty list of them`);
  const extensions = (m.extensions === undefined ? [] : stringList(m.extensions, `${where}.extensions`)).map((e) => {
    const bare = e.startsWith('.') ? e.slice(1) : e;
    if (!EXTENSION.test(bare)) throw new TypeError(`${where}.extensions: ${JSON.stringify(e)} is not a suffix such as "html"`);
    return `.${bare}`;
  });
  const spa: unknown = m.spaFallback ?? '';
  if (typeof spa !== 'string' || (spa !== '' && (!spa.startsWith('/') || spa === '/' || !validFopPath(spa))))
    throw new TypeError(`${where}.spaFallback must be a file path inside the mount such as "/index.html"`);
  const preset: unknown = m.mimetypePreset ?? 'strict';
  if (typeof preset !== 'string' || !MIMETYPE_PRESETS.includes(preset as MimetypePreset))
    throw new TypeError(`${where}.mimetypePreset must be one of ${MIMETYPE_PRESETS.map((p) => JSON.stringify(p)).join(', ')}`);
  const cors = bool(m.cors, `${where}.cors`);
  const cache = cacheControl({
    maxAge: seconds(m.cacheMaxAge, `${where}.cacheMaxAge`),
    reuse: bool(m.cacheReuse, `${where}.cacheReuse`),
    revalidate: bool(m.cacheRevalidate, `${where}.cacheRevalidate`),
    intermediaries: bool(m.cacheIntermediaries, `${where}.cacheIntermediaries`),
    no: bool(m.cacheNo, `${where}.cacheNo`),
    immutable: bool(m.cacheImmutable, `${where}.cacheImmutable`),
  });
  const headers = mergeHeaders(vhostHeaders, headerPairs(m.headers, `${where}.headers`));
  if (cors) {
    // Headers configured by name win: a mount may name its own origin or exposed headers.
    for (const pair of CORS_HEADERS) if (!headers.some(([n]) => n === pair[0])) headers.push(pair);
  }
  const base = {
    mountpoint,
    defaultFile: defaultFiles[0]!,
    defaultFiles: Object.freeze([...defaultFiles]),
    extensions: Object.freeze(extensions),
    spaFallback: spa,
    cors,
    cacheControl: cache,
    mime: createMimeLookup(stringMap(m.extraMimetypes, `${where}.extraMimetypes`), preset as MimetypePreset),
    headers,
    pmo: stringMap(m.pmo, `${where}.pmo`),
    followSymlinks: bool(m.followSymlinks, `${where}.followSymlinks`),
    precompressed: m.precompressed === undefined ? true : bool(m.precompressed, `${where}.precompressed`),
    compress: bool(m.compress, `${where}.compress`),
    listing: bool(m.listing, `${where}.listing`),
    listingMax: listingMax(m.listingMax, `${where}.listingMax`),
    noWsUpgrades: bool(m.noWsUpgrades, `${where}.noWsUpgrades`),
    auth: basicAuth(m, where),
    sharedCache: bool(m.cacheIntermediaries, `${where}.cacheIntermediaries`),
    exactMatch,
    appendPath: bool(m.appendPath, `${where}.appendPath`),
    root: '',
    archive: false,
    redirect: '',
    callback: '',
    proxy: undefined,
    cgi: undefined,
    remote: undefined,
  };
  const isProxy = /^https?:\/\//.test(origin);
  const isCgi = origin.startsWith('cgi://');
  const isS3 = /^s3:\/\//i.test(origin);
  for (const key of PROXY_KEYS)
    if (m[key] !== undefined && !isProxy) throw new TypeError(`${where}.${key} applies only to reverse-proxy origins (http://, https://)`);
  for (const key of CGI_KEYS) if (m[key] !== undefined && !isCgi) throw new TypeError(`${where}.${key} applies only to cgi:// origins`);
  for (const key of S3_KEYS) if (m[key] !== undefined && !isS3) throw new TypeError(`${where}.${key} applies only to s3:// origins`);
  if (isS3 || /^range\+https?:\/\//i.test(origin)) {
    const remote = isS3 ? s3Origin(m, origin, where, signatures) : remoteOrigin(origin.slice('range+'.length), where, signatures);
    return Object.freeze({ ...base, kind: 'file', root: remoteFopPath(remote), archive: true, remote });
  }
  if (base.appendPath && !origin.startsWith('>')) throw new TypeError(`${where}.appendPath applies only to redirect origins (>https://…)`);
  if (origin.startsWith('>')) {
    const target = origin.slice(1);
    let url: URL;
    try {
      url = new URL(target);
    } catch {
      throw new TypeError(`${where}.origin: ${JSON.stringify(origin)} is not a valid redirect URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`${where}.origin: redirects must be >http:// or >https://`);
    // The path goes on the end of the target's path: a query or fragment there would end up in the middle.
    if (base.appendPath && (url.search !== '' || url.hash !== ''))
      throw new TypeError(`${where}.appendPath: the redirect target ${JSON.stringify(target)} must have no query or fragment to append a path to`);
    return Object.freeze({ ...base, kind: 'redirect', redirect: url.href });
  }
  if (origin.startsWith('callback://')) {
    const name = origin.slice('callback://'.length);
    if (!/^[\w.-]+$/.test(name)) throw new TypeError(`${where}.origin: callback name ${JSON.stringify(name)} must be letters, digits, _ . or -`);
    return Object.freeze({ ...base, kind: 'callback', callback: name });
  }
  if (isCgi) return Object.freeze({ ...base, kind: 'cgi', cgi: cgiSettings(m, origin, where) });
  if (isProxy) return Object.freeze({ ...base, kind: 'proxy', proxy: proxySettings(m, origin, where) });
  if (origin.startsWith('ws://') || origin.startsWith('wss://'))
    throw new TypeError(`${where}.origin: WebSocket origins are written http:// or https:// (upgrades pass through proxy mounts)`);
  let path = origin.startsWith('file://') ? origin.slice('file://'.length) : origin;
  // Relative origins and `..` are the operator's, resolved once here; request paths never get this.
  if (!validFopPath(path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path)) path = resolvePath(path);
  if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
  if (!path.startsWith('/'))
    throw new TypeError(
      `${where}.origin: ${JSON.stringify(redactOrigin(origin))} must be file:///absolute/path, >https://…, callback://name, http(s)://host/path, cgi:///program, range+http(s)://host/site.zip or s3://bucket/site.zip`,
    );
  if (!validFopPath(path)) throw new TypeError(`${where}.origin: ${JSON.stringify(redactOrigin(origin))} is not a canonical absolute path`);
  const lower = `${path}/`.toLowerCase();
  const archive = signatures.some((sig) => lower.endsWith(sig));
  return Object.freeze({ ...base, kind: 'file', root: path, archive });
}

/** The mount's basic authentication: credentials loaded now from a path, or given loaded. */
function basicAuth(m: MountOptions, where: string): BasicAuth | undefined {
  const source: unknown = m.basicAuth;
  if (source === undefined) {
    if (m.basicAuthRealm !== undefined) throw new TypeError(`${where}.basicAuthRealm needs basicAuth (a credentials file)`);
    return undefined;
  }
  let credentials: Credentials;
  if (source instanceof Credentials) credentials = source;
  else if (typeof source === 'string' && source !== '') {
    try {
      credentials = Credentials.load(source);
    } catch (err) {
      if (err instanceof CredentialsError) throw new TypeError(`${where}.basicAuth: ${err.message}`);
      throw err;
    }
  } else throw new TypeError(`${where}.basicAuth must be the path of a credentials file, or Credentials`);
  const realm: unknown = m.basicAuthRealm ?? DEFAULT_REALM;
  if (!validRealm(realm)) throw new TypeError(`${where}.basicAuthRealm must be printable text of up to 200 characters without " or \\`);
  return new BasicAuth(credentials, realm);
}

/**
 * Parses the URL of a `range+http(s)://` origin: an absolute URL naming an archive, without
 * credentials or fragment, and without a query unless it is a presigned S3 URL's. Messages show
 * the URL without its query.
 */
function remoteOrigin(spec: string, where: string, signatures: readonly string[]): RemoteObjectRef {
  let url: URL;
  try {
    url = new URL(spec);
  } catch {
    throw new TypeError(`${where}.origin: ${JSON.stringify(redactOrigin(`range+${spec}`))} is not a valid URL`);
  }
  // Credentials in the URL would end up in logs and errors.
  if (url.username !== '' || url.password !== '') throw new TypeError(`${where}.origin: range+http(s) origins must not carry credentials`);
  if (url.hash !== '') throw new TypeError(`${where}.origin: range+http(s) origins take no fragment`);
  const query = url.search.slice(1);
  if (url.search !== '' && !new URLSearchParams(query).has('X-Amz-Signature'))
    throw new TypeError(`${where}.origin: range+http(s) origins take no query, except a presigned S3 URL's (with X-Amz-Signature)`);
  const shown = `${url.origin}${url.pathname}`;
  const path = objectPath(url.pathname, shown, where);
  if (!isArchivePath(path, signatures))
    throw new TypeError(`${where}.origin: range+http(s) origins name an archive (${signatures.map((s) => s.slice(0, -1)).join(', ')})`);
  return query === '' ? { origin: url.origin, path } : { origin: url.origin, path, query };
}

/** The decoded, canonical object path of a URL path; `shown` names it in messages. */
function objectPath(pathname: string, shown: string, where: string): string {
  let segments: string[];
  try {
    segments = pathname.split('/').map((s) => decodeURIComponent(s));
  } catch {
    throw new TypeError(`${where}.origin: the path of ${JSON.stringify(shown)} is not valid percent-encoding`);
  }
  const path = segments.join('/');
  // An encoded slash would be re-encoded as a separator when the object is fetched: another object.
  if (segments.some((s) => s.includes('/')) || !validFopPath(path) || path === '/')
    throw new TypeError(`${where}.origin: the path of ${JSON.stringify(shown)} is not a canonical path to an object`);
  return path;
}

function isArchivePath(path: string, signatures: readonly string[]): boolean {
  const lower = `${path.toLowerCase()}/`;
  return signatures.some((sig) => lower.endsWith(sig));
}

/**
 * Parses an `s3://bucket/key` origin and its `s3*` keys: where the object is, and the signer of
 * its credentials (the mount's, else the environment's, else none: unsigned requests).
 */
function s3Origin(m: MountOptions, origin: string, where: string, signatures: readonly string[]): RemoteObjectRef {
  const match = /^s3:\/\/([^/?#]*)(\/[^?#]*)?([?#].*)?$/i.exec(origin);
  if (!match) throw new TypeError(`${where}.origin: ${JSON.stringify(redactOrigin(origin))} is not an s3://bucket/key URL`);
  const bucket = match[1]!;
  if (match[3] !== undefined) throw new TypeError(`${where}.origin: s3:// origins take no query or fragment`);
  if (!validBucketName(bucket))
    throw new TypeError(`${where}.origin: the bucket of ${JSON.stringify(redactOrigin(origin))} is not an S3 bucket name (3 to 63 of a-z, 0-9, . and -)`);
  const key = objectPath(match[2] ?? '/', origin, where);
  if (!isArchivePath(key, signatures))
    throw new TypeError(`${where}.origin: s3:// origins name an archive (${signatures.map((s) => s.slice(0, -1)).join(', ')})`);
  const region: unknown = m.s3Region ?? defaultS3Region();
  if (typeof region !== 'string' || !validRegion(region)) throw new TypeError(`${where}.s3Region must be a region name such as "eu-west-1"`);
  let endpoint: URL | undefined;
  if (m.s3Endpoint !== undefined) {
    const bad = `${where}.s3Endpoint must be an http:// or https:// URL without credentials, query or fragment`;
    if (typeof m.s3Endpoint !== 'string') throw new TypeError(bad);
    try {
      endpoint = new URL(m.s3Endpoint);
    } catch {
      throw new TypeError(bad);
    }
    if ((endpoint.protocol !== 'http:' && endpoint.protocol !== 'https:') || endpoint.username !== '' || endpoint.password !== '') throw new TypeError(bad);
    if (endpoint.search !== '' || endpoint.hash !== '') throw new TypeError(bad);
  }
  const credentials = s3Credentials(m, where);
  const at = s3ObjectLocation(bucket, key, region, endpoint);
  const ref = { origin: at.origin, path: at.path, s3: { bucket, key } };
  return credentials ? { ...ref, sign: s3Signer(credentials, region) } : ref;
}

/** The mount's credentials when it names them (both keys), else the environment's; errors name keys, never values. */
function s3Credentials(m: MountOptions, where: string): S3Credentials | undefined {
  const id: unknown = m.s3AccessKeyId;
  const secret: unknown = m.s3SecretAccessKey;
  if (id === undefined && secret === undefined) {
    try {
      return s3CredentialsFromEnv();
    } catch (err) {
      throw new TypeError(`${where}.origin: ${(err as Error).message}`);
    }
  }
  if (typeof id !== 'string' || id === '' || !/^[\x21-\x7e]+$/.test(id))
    throw new TypeError(`${where}.s3AccessKeyId must be a non-empty string (given with s3SecretAccessKey)`);
  if (typeof secret !== 'string' || secret === '' || !/^[\x21-\x7e]+$/.test(secret))
    throw new TypeError(`${where}.s3SecretAccessKey must be a non-empty string (given with s3AccessKeyId)`);
  return { accessKeyId: id, secretAccessKey: secret };
}

function proxySettings(m: MountOptions, origin: string, where: string): ProxySettings {
  let parsed;
  try {
    parsed = parseProxyOrigin(origin);
  } catch (err) {
    throw new TypeError(`${where}.origin: ${(err as Error).message}`);
  }
  const mode: unknown = m.proxyHeaders ?? 'standard';
  if (mode !== 'standard' && mode !== 'lws') throw new TypeError(`${where}.proxyHeaders must be "standard" or "lws", got ${JSON.stringify(mode)}`);
  const trusted = (m.proxyTrusted === undefined ? [] : stringList(m.proxyTrusted, `${where}.proxyTrusted`)).map((a) => {
    const bare = a.trim().replace(/^\[(.*)\]$/, '$1');
    if (isIP(bare) === 0) throw new TypeError(`${where}.proxyTrusted: ${JSON.stringify(a)} is not an IP address`);
    return normalizeIp(bare);
  });
  return Object.freeze({
    origin: parsed,
    connectTimeoutMs: durationMs(m.proxyConnectTimeout, `${where}.proxyConnectTimeout`, 10_000, false),
    readTimeoutMs: durationMs(m.proxyReadTimeout, `${where}.proxyReadTimeout`, 60_000, true),
    trusted: Object.freeze(trusted),
    preserveHost: bool(m.proxyPreserveHost, `${where}.proxyPreserveHost`),
    tlsVerify: m.proxyTlsVerify === undefined ? true : bool(m.proxyTlsVerify, `${where}.proxyTlsVerify`),
    headerMode: mode,
    maxConcurrent: positiveInt(m.proxyMaxConcurrent, `${where}.proxyMaxConcurrent`, 1024),
  });
}

/** An IP address as peers report it: IPv4-mapped IPv6 (`::ffff:127.0.0.1`) as plain IPv4, IPv6 lower-case. */
export function normalizeIp(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped ? mapped[1]! : address.toLowerCase();
}

function cgiSettings(m: MountOptions, origin: string, where: string): CgiSettings {
  const program = origin.slice('cgi://'.length);
  if (!isAbsolute(program) || !validFopPath(program))
    throw new TypeError(`${where}.origin: ${JSON.stringify(origin)} must name a program by its absolute path, cgi:///path/to/program`);
  const env = Object.entries(stringMap(m.cgiEnv, `${where}.cgiEnv`)).map(([name, value]) => {
    if (!ENV_NAME.test(name)) throw new TypeError(`${where}.cgiEnv: ${JSON.stringify(name)} is not a valid environment variable name`);
    if (value.includes('\0')) throw new TypeError(`${where}.cgiEnv.${name}: values cannot contain NUL`);
    return [name, value] as const;
  });
  const chdir: unknown = m.cgiChdir ?? dirname(program);
  if (typeof chdir !== 'string' || !isAbsolute(chdir)) throw new TypeError(`${where}.cgiChdir must be an absolute directory path`);
  const inherit = m.cgiInheritEnv === undefined ? DEFAULT_INHERIT_ENV : stringList(m.cgiInheritEnv, `${where}.cgiInheritEnv`);
  for (const name of inherit)
    if (!ENV_NAME.test(name)) throw new TypeError(`${where}.cgiInheritEnv: ${JSON.stringify(name)} is not a valid environment variable name`);
  return Object.freeze({
    program,
    env: Object.freeze(env),
    timeoutMs: durationMs(m.cgiTimeout, `${where}.cgiTimeout`, 5000, true),
    chdir,
    maxConcurrent: positiveInt(m.cgiMaxConcurrent, `${where}.cgiMaxConcurrent`, 16),
    inheritEnv: Object.freeze([...inherit]),
  });
}
