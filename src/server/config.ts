/**
 * lwsws-style configuration: JSON plus `#` comments, one file or a directory
 * holding `conf` and `conf.d/*`, with lwsws's key names. Unlike lwsws, every
 * problem is an error naming the file and the JSON path: unknown keys, bad
 * values, and a broken conf.d file (which lwsws silently drops).
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { BOOLEAN_WORDS, mountFromConfig, parseBoolean, type MountOptions } from '../mounts/options.js';
import type { ZipIndexEvent } from '../fops/zip/zip-fops.js';
import type { HttpRangeFopsOptions } from '../fops/remote/http-range.js';
import { findJsonSyntaxError } from './json-syntax.js';
import { ListenAcceptParser, type ListenAcceptConfig } from './listen-accept.js';
import { cgiDefect, originDefect } from './origins.js';
import { Credentials, CredentialsError, validRealm } from '../auth/basic.js';
import { TLS_TUNING_KEYS, tlsTuningDefect, withTlsKey, type TlsTuning } from './tls-options.js';

/** A configuration problem: one clear message naming the file and JSON path. */
export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly jsonPath: string,
    detail: string,
  ) {
    super(`${file}: ${jsonPath}: ${detail}`);
    this.name = 'ConfigError';
  }
}

export interface GlobalConfig {
  readonly serverString?: string;
  readonly countThreads: number;
  readonly pluginDirs: readonly string[];
  readonly timeoutSecs?: number;
  readonly rejectServiceKeywords: readonly { readonly substring: string; readonly status: number; readonly message: string }[];
  /** `remote-*` keys: the options of every vhost's remote-archive backend (range+http, s3). */
  readonly remote?: RemoteConfig;
}

/** The remote-archive options a configuration file may set (per mount options, such as signing, come from the mount). */
export type RemoteConfig = { -readonly [K in keyof Omit<HttpRangeFopsOptions, 'baseUrl' | 'sign' | 'query' | 'headAllowed'>]?: number };

/** `remote-*` global keys: the option each sets, and its smallest value (sizes in bytes, times in milliseconds). */
const REMOTE_KEYS: Readonly<Record<string, readonly [keyof RemoteConfig, number]>> = {
  'remote-block-size': ['blockSize', 4096],
  'remote-cache-bytes': ['cacheBytes', 0],
  'remote-tail-bytes': ['tailBytes', 22],
  'remote-max-connections': ['maxConnections', 1],
  'remote-timeout-ms': ['timeoutMs', 1],
  'remote-retries': ['retries', 0],
  'remote-revalidate-ms': ['revalidateMs', 0],
  'remote-max-objects': ['maxObjects', 1],
  'remote-read-ahead-bytes': ['readAheadBytes', 0],
  'remote-read-ahead-start-bytes': ['readAheadStartBytes', 1],
};

export interface VhostConfig {
  readonly name: string;
  readonly port: number;
  readonly interface?: string;
  readonly unixSocket: boolean;
  readonly tls?: { readonly key: string; readonly cert: string; readonly ca?: string };
  readonly sts: boolean;
  readonly accessLog?: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly keepaliveTimeout?: number;
  /**
   * `"h2"`: offer HTTP/2 by ALPN on this TLS port (default on). As for every per-port setting, the
   * port's first vhost decides; ignored on a cleartext port. Unset means on.
   */
  readonly h2?: boolean;
  /** `"h2c"`: accept cleartext HTTP/2 with prior knowledge on this port (default off; first vhost decides; refused on TLS). */
  readonly h2c?: boolean;
  /** `"h2-max-concurrent-streams"`: the SETTINGS_MAX_CONCURRENT_STREAMS of the port's HTTP/2 sessions (first vhost decides). */
  readonly h2MaxConcurrentStreams?: number;
  readonly errorDocument404?: string;
  /** `ciphers`, `tls13-ciphers`, `ecdh-curve`, `ssl-option-set`, `ssl-option-clear` (TLS vhosts only). */
  readonly tlsTuning?: TlsTuning;
  /** `ipv6only`: the listening socket takes IPv6 connections only (IPV6_V6ONLY); false or absent: node's default. */
  readonly ipv6only?: boolean;
  readonly mounts: readonly MountOptions[];
  /** HTTP fallback and raw proxying (lwsws's listen-accept keys); only on a port's first vhost. */
  readonly listenAccept?: ListenAcceptConfig;
  /** Where this vhost was defined, for messages. */
  readonly source: string;
}

export interface ServerConfig {
  readonly global: GlobalConfig;
  readonly vhosts: readonly VhostConfig[];
}

/** Removes `#` comments (to the end of the line, never inside strings), keeping line numbers. */
export function stripComments(text: string): string {
  let out = '';
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      out += c;
      if (c === '\\') {
        out += text[i + 1] ?? '';
        i++;
      } else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
      out += c;
    } else if (c === '#') {
      while (i < text.length && text[i] !== '\n') i++;
      if (i < text.length) out += '\n';
    } else out += c;
  }
  return out;
}

function parseFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, '$', `cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let json: unknown;
  const stripped = stripComments(text);
  try {
    json = JSON.parse(stripped);
  } catch (err) {
    // Comments are cut to the end of their line, so lines and columns are those of the file as written.
    const at = findJsonSyntaxError(stripped);
    if (at === undefined) throw new ConfigError(file, '$', `is not valid JSON: ${(err as Error).message}`);
    throw new ConfigError(file, `line ${at.line}, column ${at.column}`, `not valid JSON: ${at.message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ConfigError(file, '$', 'must be a JSON object');
  return json as Record<string, unknown>;
}

/**
 * Loads a configuration from a file, or from a directory holding `conf` and
 * `conf.d/*` (read in sorted order, skipping names that contain `~`).
 * Relative paths resolve against the directory of the file they appear in.
 */
export function loadConfig(path: string): ServerConfig {
  const root = resolve(path);
  let files: string[];
  let isDir: boolean;
  try {
    isDir = statSync(root).isDirectory();
  } catch {
    throw new ConfigError(root, '$', 'does not exist');
  }
  if (isDir) {
    files = [join(root, 'conf')];
    const d = join(root, 'conf.d');
    let names: string[] = [];
    try {
      names = readdirSync(d)
        .filter((n) => !n.includes('~'))
        .sort();
    } catch {
      names = [];
    }
    for (const n of names) if (statSync(join(d, n)).isFile()) files.push(join(d, n));
  } else files = [root];

  return parseConfigObjects(files.map((file) => ({ json: parseFile(file), file })));
}

/**
 * A configuration from lwsws JSON objects already parsed, as {@link loadConfig}
 * reads them from files: `file` names each for messages, and relative paths in
 * it resolve against its directory. Later objects add vhosts and override
 * global keys. The CLI builds its flags into such an object, so flags and a
 * configuration file mean exactly the same.
 */
export function parseConfigObjects(parts: readonly { readonly json: Readonly<Record<string, unknown>>; readonly file: string }[]): ServerConfig {
  let global: GlobalConfig = { countThreads: 1, pluginDirs: [], rejectServiceKeywords: [] };
  const vhosts: VhostConfig[] = [];
  for (const { json, file } of parts) {
    const base = dirname(file);
    for (const key of Object.keys(json)) {
      if (key !== 'global' && key !== 'vhosts') throw new ConfigError(file, `$.${key}`, 'unknown key (expected "global" or "vhosts")');
    }
    if (json.global !== undefined) global = mergeGlobal(global, json.global, file, base);
    if (json.vhosts !== undefined) {
      if (!Array.isArray(json.vhosts)) throw new ConfigError(file, '$.vhosts', 'must be an array');
      json.vhosts.forEach((v: unknown, i: number) => vhosts.push(parseVhost(v, file, `$.vhosts[${i}]`, base)));
    }
  }
  if (vhosts.length === 0) throw new ConfigError(parts[0]?.file ?? '-', '$.vhosts', 'no vhost is configured');
  return { global, vhosts };
}

function str(v: unknown, file: string, at: string): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  throw new ConfigError(file, at, 'must be a string');
}

function int(v: unknown, file: string, at: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const n = typeof v === 'string' && /^\s*-?\d+\s*$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) throw new ConfigError(file, at, `must be an integer from ${min} to ${max}`);
  return n;
}

function bool(v: unknown, file: string, at: string): boolean {
  const b = parseBoolean(v);
  if (b === undefined) throw new ConfigError(file, at, `must be a boolean (${BOOLEAN_WORDS})`);
  return b;
}

/** lwsws writes header and pmo lists as `[{ "Name": "value" }]`; an object is accepted too. */
function nameValues(v: unknown, file: string, at: string): Record<string, string> {
  const out: Record<string, string> = {};
  const items = Array.isArray(v) ? v : [v];
  items.forEach((item: unknown, i: number) => {
    const where = Array.isArray(v) ? `${at}[${i}]` : at;
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw new ConfigError(file, where, 'must be an object of name: value');
    for (const [k, val] of Object.entries(item)) out[k] = str(val, file, `${where}.${k}`);
  });
  return out;
}

function within(base: string, p: string): string {
  return isAbsolute(p) ? p : resolve(base, p);
}

function mergeGlobal(prev: GlobalConfig, v: unknown, file: string, base: string): GlobalConfig {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError(file, '$.global', 'must be an object');
  let out: GlobalConfig = prev;
  for (const [key, value] of Object.entries(v)) {
    const at = `$.global["${key}"]`;
    switch (key) {
      case 'server-string':
        out = { ...out, serverString: str(value, file, at) };
        break;
      case 'count-threads':
        out = { ...out, countThreads: int(value, file, at, 1, 256) };
        break;
      case 'plugin-dir':
        out = { ...out, pluginDirs: [...out.pluginDirs, ...(Array.isArray(value) ? value : [value]).map((d, i) => within(base, str(d, file, `${at}[${i}]`)))] };
        break;
      case 'timeout-secs':
        out = { ...out, timeoutSecs: int(value, file, at, 1, 86400) };
        break;
      case 'reject-service-keywords': {
        const map = nameValues(value, file, at);
        const rules = Object.entries(map).map(([substring, spec]) => {
          const m = /^(\d{3})\s*(.*)$/.exec(spec);
          if (!m) throw new ConfigError(file, `${at}.${substring}`, 'must be "NNN message" (a status and a message)');
          return { substring, status: Number(m[1]), message: m[2] ?? '' };
        });
        out = { ...out, rejectServiceKeywords: [...out.rejectServiceKeywords, ...rules] };
        break;
      }
      default: {
        const remote = REMOTE_KEYS[key];
        if (!remote) throw new ConfigError(file, at, 'unknown global key');
        out = { ...out, remote: { ...out.remote, [remote[0]]: int(value, file, at, remote[1]) } };
      }
    }
  }
  return out;
}

const MOUNT_PATHS = new Set(['origin']);
// Where each parsed mount was written, for messages about it after parsing (checkOrigins).
const MOUNT_SOURCES = new WeakMap<MountOptions, { readonly file: string; readonly at: string }>();

function parseVhost(v: unknown, file: string, at: string, base: string): VhostConfig {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError(file, at, 'must be an object');
  const o = v as Record<string, unknown>;
  const out: Partial<{ -readonly [K in keyof VhostConfig]: VhostConfig[K] }> & { tlsKey?: string; tlsCert?: string; tlsCa?: string } = {
    unixSocket: false,
    sts: false,
    headers: {},
    mounts: [],
    source: file,
  };
  const listenAccept = new ListenAcceptParser(file, at, base, (jsonPath, detail) => new ConfigError(file, jsonPath, detail));
  for (const [key, value] of Object.entries(o)) {
    const k = `${at}["${key}"]`;
    switch (key) {
      case 'name':
        out.name = str(value, file, k);
        break;
      case 'port':
        out.port = int(value, file, k, 0, 65535);
        break;
      case 'interface':
        out.interface = str(value, file, k);
        break;
      case 'unix-socket':
        out.unixSocket = bool(value, file, k);
        break;
      case 'host-ssl-key':
        out.tlsKey = within(base, str(value, file, k));
        break;
      case 'host-ssl-cert':
        out.tlsCert = within(base, str(value, file, k));
        break;
      case 'host-ssl-ca':
        out.tlsCa = within(base, str(value, file, k));
        break;
      case 'sts':
        out.sts = bool(value, file, k);
        break;
      case 'access-log':
        out.accessLog = within(base, str(value, file, k));
        break;
      case 'headers':
        out.headers = nameValues(value, file, k);
        break;
      case 'keepalive_timeout':
      case 'keepalive-timeout':
        out.keepaliveTimeout = int(value, file, k, 0, 86400);
        break;
      case 'h2':
        out.h2 = bool(value, file, k);
        break;
      case 'h2c':
        out.h2c = bool(value, file, k);
        break;
      case 'h2-max-concurrent-streams':
        out.h2MaxConcurrentStreams = int(value, file, k, 1, 10_000);
        break;
      case 'error-document-404':
        out.errorDocument404 = str(value, file, k);
        break;
      case 'ciphers':
      case 'tls13-ciphers':
      case 'ecdh-curve':
      case 'ssl-option-set':
      case 'ssl-option-clear':
        try {
          out.tlsTuning = withTlsKey(out.tlsTuning, key, value);
        } catch (err) {
          throw new ConfigError(file, k, (err as Error).message);
        }
        break;
      case 'ipv6only':
        out.ipv6only = bool(value, file, k);
        break;
      // HTTP fallback and raw proxying: read and checked together in listen-accept.ts.
      case 'ws-protocols':
      case 'listen-accept-role':
      case 'listen-accept-protocol':
      case 'fallback-listen-accept':
      case 'apply-listen-accept':
      case 'redirect-http':
      case 'allow-http-on-https':
      case 'fallback-timeout-secs':
      case 'fallback-timeout-onward':
        listenAccept.read(key, value);
        break;
      case 'mounts':
        if (!Array.isArray(value)) throw new ConfigError(file, k, 'must be an array');
        out.mounts = value.map((m: unknown, i: number) => parseMount(m, file, `${k}[${i}]`, base));
        break;
      default:
        throw new ConfigError(file, k, 'unknown vhost key');
    }
  }
  if (out.name === undefined) out.name = 'default';
  if (out.port === undefined && !out.unixSocket) throw new ConfigError(file, at, '"port" is required (unless "unix-socket" is set)');
  if ((out.tlsKey === undefined) !== (out.tlsCert === undefined)) throw new ConfigError(file, at, '"host-ssl-key" and "host-ssl-cert" go together');
  checkListenKeys(out, o, file, at);
  const { tlsKey, tlsCert, tlsCa, ...rest } = out;
  const la = listenAccept.result(tlsKey !== undefined);
  return {
    ...(rest as VhostConfig),
    ...(la ? { listenAccept: la } : {}),
    port: out.port ?? 0,
    ...(tlsKey !== undefined && tlsCert !== undefined ? { tls: { key: tlsKey, cert: tlsCert, ...(tlsCa !== undefined ? { ca: tlsCa } : {}) } } : {}),
  };
}

/** The TLS tuning keys need TLS and must make sense together; `ipv6only` needs an IPv6 socket. */
function checkListenKeys(out: Partial<VhostConfig> & { tlsKey?: string }, o: Readonly<Record<string, unknown>>, file: string, at: string): void {
  if (out.tlsTuning !== undefined) {
    const first = Object.keys(o).find((key) => Object.hasOwn(TLS_TUNING_KEYS, key))!;
    if (out.tlsKey === undefined) throw new ConfigError(file, `${at}["${first}"]`, 'needs a TLS vhost (host-ssl-key and host-ssl-cert)');
    const defect = tlsTuningDefect(out.tlsTuning);
    if (defect !== undefined) throw new ConfigError(file, `${at}["${Object.hasOwn(o, defect.key) ? defect.key : first}"]`, defect.detail);
  }
  if (out.ipv6only === true) {
    const k = `${at}["ipv6only"]`;
    if (out.unixSocket === true) throw new ConfigError(file, k, 'does not apply to a unix socket');
    if (out.interface !== undefined && isIP(out.interface) === 4)
      throw new ConfigError(file, k, `needs an IPv6 interface ("::" for every address, or one such as "::1"), not ${JSON.stringify(out.interface)}`);
  }
}

function parseMount(m: unknown, file: string, at: string, base: string): MountOptions {
  if (typeof m !== 'object' || m === null || Array.isArray(m)) throw new ConfigError(file, at, 'must be an object');
  const obj: Record<string, unknown> = { ...(m as Record<string, unknown>) };
  for (const key of ['headers', 'pmo', 'cgi-env']) if (obj[key] !== undefined) obj[key] = nameValues(obj[key], file, `${at}.${key}`);
  // A relative working directory is relative to this file, as relative origins are.
  if (typeof obj['cgi-chdir'] === 'string') obj['cgi-chdir'] = within(base, obj['cgi-chdir']);
  // The config's own boolean and integer vocabulary, with errors naming the file and JSON path.
  if (obj.listing !== undefined) obj.listing = bool(obj.listing, file, `${at}["listing"]`);
  if (obj['listing-max'] !== undefined) obj['listing-max'] = int(obj['listing-max'], file, `${at}["listing-max"]`, 1);
  for (const key of ['exact-match', 'append-path']) if (obj[key] !== undefined) obj[key] = bool(obj[key], file, `${at}["${key}"]`);
  const realm = obj['basic-auth-realm'];
  if (realm !== undefined && !validRealm(realm))
    throw new ConfigError(file, `${at}["basic-auth-realm"]`, 'must be printable text of up to 200 characters without " or \\ (it is sent as a quoted-string)');
  if (realm !== undefined && obj['basic-auth'] === undefined)
    throw new ConfigError(file, `${at}["basic-auth-realm"]`, 'needs "basic-auth" (a credentials file)');
  if (obj['append-path'] === true && !(typeof obj.origin === 'string' && obj.origin.startsWith('>')))
    throw new ConfigError(file, `${at}["append-path"]`, 'applies only to redirect origins (">https://…")');
  if (obj['exact-match'] === true && typeof obj.mountpoint === 'string' && obj.mountpoint.length > 1 && obj.mountpoint.endsWith('/'))
    throw new ConfigError(file, `${at}["mountpoint"]`, 'write an exact-match mountpoint without the trailing slash: it then matches that URI only');
  const auth = obj['basic-auth'];
  if (auth !== undefined) {
    // Read now, at every start and reload: a changed file takes effect on SIGHUP, a broken one is refused then.
    if (typeof auth !== 'string' || auth === '') throw new ConfigError(file, `${at}["basic-auth"]`, 'must be the path of a credentials file');
    try {
      obj['basic-auth'] = Credentials.load(within(base, auth));
    } catch (err) {
      if (err instanceof CredentialsError) throw new ConfigError(file, `${at}["basic-auth"]`, err.message);
      throw err;
    }
  }
  for (const key of MOUNT_PATHS) {
    const origin = obj[key];
    // A relative file origin resolves against this file's directory (`file://site.zip`, `./www`), and
    // `..` in any origin is resolved here, once: request paths never get that leniency.
    if (typeof origin === 'string' && !/^(>|callback:|cgi:|https?:|wss?:|range\+https?:|s3:)/i.test(origin)) {
      const p = origin.startsWith('file://') ? origin.slice('file://'.length) : origin;
      obj[key] = `file://${resolve(base, p)}`;
    }
  }
  let mount: MountOptions;
  try {
    mount = mountFromConfig(obj, at);
  } catch (err) {
    throw new ConfigError(file, at, (err as Error).message.replace(`${at}: `, ''));
  }
  MOUNT_SOURCES.set(mount, { file, at });
  return mount;
}

/**
 * Checks every file and CGI origin of `config` on disk: a file origin that does not exist, an
 * archive that cannot be read, or a CGI program that is missing or not executable is a
 * {@link ConfigError} naming the file and the JSON path of the origin. The first problem found is
 * thrown. Proxy origins are not checked: an origin that is down is answered 502 or 503 per request.
 */
export async function checkOrigins(config: ServerConfig, onIndex?: (event: ZipIndexEvent) => void): Promise<void> {
  for (const vc of config.vhosts) {
    for (const [i, m] of vc.mounts.entries()) {
      const origin: unknown = m.origin; // a bad type is createHandler's to report
      if (typeof origin !== 'string') continue;
      let defect: string | undefined;
      if (origin.startsWith('file://')) defect = await originDefect(origin.slice('file://'.length), onIndex);
      else if (origin.startsWith('cgi:///')) defect = await cgiDefect(origin.slice('cgi://'.length), typeof m.cgiChdir === 'string' ? m.cgiChdir : undefined);
      if (defect === undefined) continue;
      const where = MOUNT_SOURCES.get(m) ?? { file: vc.source, at: `vhost "${vc.name}" mounts[${i}]` };
      throw new ConfigError(where.file, `${where.at}["origin"]`, defect);
    }
  }
}

/** {@link loadConfig}, then {@link checkOrigins}: what the CLI runs at start-up and on every reload. */
export async function loadCheckedConfig(path: string, onIndex?: (event: ZipIndexEvent) => void): Promise<ServerConfig> {
  const config = loadConfig(path);
  await checkOrigins(config, onIndex);
  return config;
}
