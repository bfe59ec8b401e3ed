/**
 * lwsws's listen-accept keys (HTTP fallback and raw proxying on one port), read from a vhost:
 * `ws-protocols` (only `raw-proxy`), `listen-accept-role`, `listen-accept-protocol`,
 * `fallback-listen-accept`, `apply-listen-accept`, `redirect-http`, `allow-http-on-https`, and
 * vfserve's extensions `fallback-timeout-secs` and `fallback-timeout-onward`. As in lws they belong
 * on the first vhost of a port and act for the whole port (a byte stream that is not HTTP has no
 * Host header or SNI to choose a vhost by).
 */
import { isIP } from 'node:net';
import { isAbsolute, resolve } from 'node:path';
import { BOOLEAN_WORDS, parseBoolean } from '../mounts/options.js';

/** Where a raw proxy connects: lws's `onward` forms `ipv4:HOST:PORT`, `ipv6:[ADDR]:PORT` and `unix:/path`. */
export type OnwardTarget =
  | { readonly kind: 'ipv4'; readonly host: string; readonly port: number }
  | { readonly kind: 'ipv6'; readonly host: string; readonly port: number }
  | { readonly kind: 'unix'; readonly path: string };

/** A port's listen-accept settings, as written on its first vhost. */
export interface ListenAcceptConfig {
  /** The file and JSON path of the first of these keys, for messages about where they stand. */
  readonly file: string;
  readonly at: string;
  /**
   * `fallback`: what is neither TLS (on a TLS port) nor HTTP/1 goes to the raw proxy;
   * `apply`: every connection goes to it, nothing is read first; `off`: neither.
   */
  readonly mode: 'fallback' | 'apply' | 'off';
  /** The `raw-proxy` protocol's options; set whenever `mode` is not `off`. */
  readonly rawProxy?: {
    readonly onward: OnwardTarget;
    /** Closes a proxied connection after this long with no byte either way; 0: never (the default, as lws). */
    readonly idleTimeoutSecs: number;
  };
  /** TLS ports only: plain HTTP/1 gets a 301 to `https://` (beats `allowHttpOnHttps` and fallback for HTTP). */
  readonly redirectHttp: boolean;
  /** TLS ports only: plain HTTP/1 is served as on a plain port (beats fallback for HTTP). */
  readonly allowHttpOnHttps: boolean;
  /** vfserve extension: a client silent this long goes to the timeout target; 0 holds it (lws). */
  readonly timeoutSecs: number;
  /** Where a silent client goes: this, else the raw proxy's onward, else it is closed. */
  readonly timeoutOnward?: OnwardTarget;
}

/** The vhost keys {@link ListenAcceptParser.read} takes. */
export const LISTEN_ACCEPT_KEYS: ReadonlySet<string> = new Set([
  'ws-protocols',
  'listen-accept-role',
  'listen-accept-protocol',
  'fallback-listen-accept',
  'apply-listen-accept',
  'redirect-http',
  'allow-http-on-https',
  'fallback-timeout-secs',
  'fallback-timeout-onward',
]);

/** The role and protocol vfserve has; lws's others (ws, raw-file, mqtt…) are refused. */
const RAW_PROXY = 'raw-proxy';

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/**
 * Parses an lws `onward` value. `ipv4:` takes a dotted address or a host name (resolved to IPv4 at
 * each connection), `ipv6:` a bracketed IPv6 address, `unix:` a socket path (relative to `base`).
 * Throws an Error whose message says what is wrong with `spec`.
 */
export function parseOnward(spec: string, base = process.cwd()): OnwardTarget {
  const port = (p: string): number => {
    if (!/^\d{1,5}$/.test(p) || Number(p) < 1 || Number(p) > 65535) throw new Error(`${JSON.stringify(spec)}: the port must be 1 to 65535`);
    return Number(p);
  };
  if (spec.startsWith('ipv4:')) {
    const m = /^ipv4:([^:]+):([^:]*)$/.exec(spec);
    if (!m) throw new Error(`${JSON.stringify(spec)}: expected ipv4:HOST:PORT`);
    const host = m[1]!;
    if (isIP(host) !== 4 && (/^[\d.]+$/.test(host) || !HOSTNAME.test(host)))
      throw new Error(`${JSON.stringify(spec)}: ${host} is not an IPv4 address or host name`);
    return { kind: 'ipv4', host, port: port(m[2]!) };
  }
  if (spec.startsWith('ipv6:')) {
    const m = /^ipv6:\[([^\]]+)\]:([^:]*)$/.exec(spec);
    if (!m) throw new Error(`${JSON.stringify(spec)}: expected ipv6:[ADDRESS]:PORT`);
    if (isIP(m[1]!) !== 6) throw new Error(`${JSON.stringify(spec)}: ${m[1]!} is not an IPv6 address`);
    return { kind: 'ipv6', host: m[1]!, port: port(m[2]!) };
  }
  if (spec.startsWith('unix:')) {
    const path = spec.slice('unix:'.length);
    if (path === '') throw new Error(`${JSON.stringify(spec)}: expected unix:/path/to/socket`);
    return { kind: 'unix', path: isAbsolute(path) ? path : resolve(base, path) };
  }
  throw new Error(`${JSON.stringify(spec)}: expected ipv4:HOST:PORT, ipv6:[ADDRESS]:PORT or unix:/path`);
}

/** An onward target as it is written in the configuration (and in log lines). */
export function formatOnward(t: OnwardTarget): string {
  return t.kind === 'unix' ? `unix:${t.path}` : t.kind === 'ipv6' ? `ipv6:[${t.host}]:${t.port}` : `ipv4:${t.host}:${t.port}`;
}

/** Does this port read the first bytes of each connection (or, with `apply`, skip HTTP altogether)? */
export function detects(la: ListenAcceptConfig | undefined): boolean {
  return la !== undefined && (la.mode !== 'off' || la.redirectHttp || la.allowHttpOnHttps);
}

/**
 * Reads the listen-accept keys of one vhost, one {@link read} per key, and checks them together in
 * {@link result}. `error(jsonPath, detail)` makes the error to throw (the configuration's ConfigError,
 * which names the file); `at` is the vhost's JSON path, `base` the directory relative paths resolve against.
 */
export class ListenAcceptParser {
  readonly #values = new Map<string, { value: unknown; at: string }>();

  constructor(
    readonly file: string,
    readonly at: string,
    readonly base: string,
    readonly error: (jsonPath: string, detail: string) => Error,
  ) {}

  /** Takes one of {@link LISTEN_ACCEPT_KEYS} (the caller dispatches only those). */
  read(key: string, value: unknown): void {
    this.#values.set(key, { value, at: `${this.at}["${key}"]` });
  }

  /** The vhost's settings (undefined when it has none of the keys); `tls`: the vhost has a certificate. */
  result(tls: boolean): ListenAcceptConfig | undefined {
    if (this.#values.size === 0) return undefined;
    const first = [...this.#values.values()][0]!.at;
    const bool = (key: string): boolean => {
      const v = this.#values.get(key);
      if (v === undefined) return false;
      const b = parseBoolean(v.value);
      if (b === undefined) throw this.error(v.at, `must be a boolean (${BOOLEAN_WORDS})`);
      return b;
    };
    const text = (key: string): string | undefined => {
      const v = this.#values.get(key);
      if (v === undefined) return undefined;
      if (typeof v.value !== 'string') throw this.error(v.at, 'must be a string');
      return v.value;
    };
    const where = (key: string): string => this.#values.get(key)?.at ?? this.at;

    const rawProxy = this.#protocols();
    const role = text('listen-accept-role');
    const protocol = text('listen-accept-protocol');
    if (role !== undefined && role !== RAW_PROXY)
      throw this.error(where('listen-accept-role'), `${JSON.stringify(role)}: vfserve has only the "raw-proxy" role`);
    if (protocol !== undefined && protocol !== RAW_PROXY)
      throw this.error(where('listen-accept-protocol'), `${JSON.stringify(protocol)}: vfserve has only the "raw-proxy" protocol`);
    const fallback = bool('fallback-listen-accept');
    const apply = bool('apply-listen-accept');
    const redirectHttp = bool('redirect-http');
    const allowHttpOnHttps = bool('allow-http-on-https');
    if (fallback && apply)
      throw this.error(where('apply-listen-accept'), '"apply-listen-accept" and "fallback-listen-accept" exclude each other: apply proxies everything');
    const mode = apply ? 'apply' : fallback ? 'fallback' : 'off';
    if (mode !== 'off') {
      const key = apply ? 'apply-listen-accept' : 'fallback-listen-accept';
      if (role === undefined) throw this.error(where(key), `needs "listen-accept-role": "raw-proxy"`);
      if (protocol === undefined) throw this.error(where(key), `needs "listen-accept-protocol": "raw-proxy"`);
      if (rawProxy === undefined)
        throw this.error(
          where(key),
          `needs the raw-proxy protocol and its onward: "ws-protocols": [{ "raw-proxy": { "status": "ok", "onward": "ipv4:HOST:PORT" } }]`,
        );
    } else {
      // Nothing would use them: an error, so a forgotten "fallback-listen-accept" does not pass unnoticed.
      for (const key of ['listen-accept-role', 'listen-accept-protocol', 'ws-protocols']) {
        if (this.#values.has(key)) throw this.error(where(key), 'has no effect without "fallback-listen-accept" or "apply-listen-accept"');
      }
    }
    for (const key of ['redirect-http', 'allow-http-on-https'] as const) {
      if (!bool(key)) continue;
      if (!tls) throw this.error(where(key), `is for TLS vhosts (host-ssl-key and host-ssl-cert): it says what plain HTTP on a TLS port gets`);
      if (apply) throw this.error(where(key), `has no effect with "apply-listen-accept", which proxies every connection`);
    }
    if (redirectHttp && allowHttpOnHttps) throw this.error(where('allow-http-on-https'), '"redirect-http" and "allow-http-on-https" exclude each other');

    const timeoutSecs = this.#values.has('fallback-timeout-secs') ? this.#int('fallback-timeout-secs', 0, 3600) : 0;
    let timeoutOnward: OnwardTarget | undefined;
    const onwardSpec = text('fallback-timeout-onward');
    if (onwardSpec !== undefined) {
      if (timeoutSecs === 0) throw this.error(where('fallback-timeout-onward'), 'needs "fallback-timeout-secs" above 0');
      timeoutOnward = this.#onward(onwardSpec, where('fallback-timeout-onward'));
    }
    if (timeoutSecs > 0 && (apply || (!fallback && !redirectHttp && !allowHttpOnHttps)))
      throw this.error(
        where('fallback-timeout-secs'),
        'needs a port that reads the first bytes: "fallback-listen-accept", "redirect-http" or "allow-http-on-https"',
      );
    return {
      file: this.file,
      at: first,
      mode,
      ...(rawProxy && mode !== 'off' ? { rawProxy } : {}),
      redirectHttp,
      allowHttpOnHttps,
      timeoutSecs,
      ...(timeoutOnward ? { timeoutOnward } : {}),
    };
  }

  #int(key: string, min: number, max: number): number {
    const v = this.#values.get(key)!;
    const n = typeof v.value === 'string' && /^\s*\d+\s*$/.test(v.value) ? Number(v.value) : v.value;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) throw this.error(v.at, `must be an integer from ${min} to ${max}`);
    return n;
  }

  #onward(spec: string, at: string): OnwardTarget {
    try {
      return parseOnward(spec, this.base);
    } catch (err) {
      throw this.error(at, (err as Error).message);
    }
  }

  /** `ws-protocols`: lwsws's `[{ "name": { pvo… } }]`; only `raw-proxy`, whose pvos are `status`, `onward` and `idle-timeout-secs`. */
  #protocols(): ListenAcceptConfig['rawProxy'] {
    const v = this.#values.get('ws-protocols');
    if (v === undefined) return undefined;
    const items: unknown[] = Array.isArray(v.value) ? v.value : [v.value];
    let out: ListenAcceptConfig['rawProxy'];
    items.forEach((item, i) => {
      const at = Array.isArray(v.value) ? `${v.at}[${i}]` : v.at;
      if (typeof item !== 'object' || item === null || Array.isArray(item)) throw this.error(at, 'must be an object of protocol name: options');
      for (const [name, pvo] of Object.entries(item)) {
        const pat = `${at}["${name}"]`;
        // Refused rather than ignored: vfserve has no lws protocol plugins, and a silently dropped one would look configured.
        if (name !== RAW_PROXY) throw this.error(pat, `vfserve has no ws-protocol ${JSON.stringify(name)}; only "raw-proxy" (for listen-accept)`);
        if (out !== undefined) throw this.error(pat, '"raw-proxy" is configured twice');
        if (typeof pvo !== 'object' || pvo === null || Array.isArray(pvo)) throw this.error(pat, 'must be an object of options ("status", "onward")');
        let onward: OnwardTarget | undefined;
        let idleTimeoutSecs = 0;
        for (const [k, value] of Object.entries(pvo as Record<string, unknown>)) {
          const kat = `${pat}["${k}"]`;
          switch (k) {
            case 'status':
              if (value !== 'ok') throw this.error(kat, 'must be "ok" (lwsws enables a protocol on a vhost with it)');
              break;
            case 'onward':
              if (typeof value !== 'string') throw this.error(kat, 'must be a string');
              onward = this.#onward(value, kat);
              break;
            case 'idle-timeout-secs': {
              const n = typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : value;
              if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 86400 * 7) throw this.error(kat, `must be an integer from 0 to ${86400 * 7}`);
              idleTimeoutSecs = n;
              break;
            }
            default:
              throw this.error(kat, 'unknown raw-proxy option (expected "status", "onward" or "idle-timeout-secs")');
          }
        }
        if (onward === undefined) throw this.error(pat, 'needs "onward": "ipv4:HOST:PORT", "ipv6:[ADDRESS]:PORT" or "unix:/path"');
        out = { onward, idleTimeoutSecs };
      }
    });
    return out;
  }
}
