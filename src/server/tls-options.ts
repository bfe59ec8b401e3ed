/**
 * lwsws's TLS vhost keys (`ciphers`, `tls13-ciphers`, `ecdh-curve`, `ssl-option-set`,
 * `ssl-option-clear`): parsed and checked against this node's OpenSSL when the configuration is
 * read, and mapped onto node's `ciphers`, `ecdhCurve` and `secureOptions`.
 */
import { createSecureContext, DEFAULT_CIPHERS } from 'node:tls';

/** A vhost's TLS tuning, as its lwsws keys give it. */
export interface TlsTuning {
  /** `ciphers`: the OpenSSL cipher list for TLS 1.2 and below (node's default list when absent). */
  readonly ciphers?: string;
  /** `tls13-ciphers`: the TLS 1.3 suites, `TLS_…` names joined by `:` (node's default suites when absent). */
  readonly tls13Ciphers?: string;
  /** `ecdh-curve`: the key-exchange groups, joined by `:` (node's `auto` when absent). */
  readonly ecdhCurve?: string;
  /** `ssl-option-set`: `SSL_OP_*` bits, OR'd together. */
  readonly sslOptionSet?: number;
  /** `ssl-option-clear`: `SSL_OP_*` bits taken out of `sslOptionSet`. */
  readonly sslOptionClear?: number;
}

/** The lwsws key of each {@link TlsTuning} field. */
export const TLS_TUNING_KEYS: Readonly<Record<string, keyof TlsTuning>> = {
  ciphers: 'ciphers',
  'tls13-ciphers': 'tls13Ciphers',
  'ecdh-curve': 'ecdhCurve',
  'ssl-option-set': 'sslOptionSet',
  'ssl-option-clear': 'sslOptionClear',
};

/** What node's TLS server and `createSecureContext` take from a {@link TlsTuning}. */
export interface NodeTlsOptions {
  readonly ciphers?: string;
  readonly ecdhCurve?: string;
  readonly secureOptions?: number;
}

// node's one `ciphers` string holds both lists: entries starting TLS_ are TLS 1.3 suites, the rest
// the cipher list. Giving only one list would make node drop the other protocol version altogether
// (no TLS 1.3 suites caps the context at TLS 1.2), so the list not configured keeps node's default.
const DEFAULT_ENTRIES = DEFAULT_CIPHERS.split(':');
const DEFAULT_TLS13 = DEFAULT_ENTRIES.filter((c) => c.startsWith('TLS_')).join(':');
const DEFAULT_TLS12 = DEFAULT_ENTRIES.filter((c) => !c.startsWith('TLS_')).join(':');

function entries(list: string): string[] {
  return list
    .split(':')
    .map((c) => c.trim())
    .filter((c) => c !== '');
}

/** OpenSSL's verdict on `options`: undefined when it takes them, else its message. */
function probe(options: NodeTlsOptions): string | undefined {
  try {
    createSecureContext(options);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** `SSL_OP_*` bits: a non-negative integer, a decimal string, or a list of them OR'd (lws ORs repeats of the key). */
function optionBits(value: unknown): number {
  const list: unknown[] = Array.isArray(value) ? value : [value];
  if (list.length === 0) throw new TypeError('must be a non-negative integer (an SSL_OP_* bit mask), or a list of them');
  let bits = 0n;
  for (const v of list) {
    const n = typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0)
      throw new TypeError(`must be a non-negative integer (an SSL_OP_* bit mask, in decimal), or a list of them; got ${JSON.stringify(v)}`);
    // BigInt: JavaScript's | works on 32 bits, and OpenSSL 3's options reach past bit 31.
    bits |= BigInt(n);
  }
  return Number(bits);
}

/**
 * `prev` with the lwsws key `key` (one of {@link TLS_TUNING_KEYS}) set to `value`. A cipher list,
 * suite list or curve OpenSSL refuses outright is refused here.
 *
 * @throws TypeError with the reason, for the caller to place (file and JSON path).
 */
export function withTlsKey(prev: TlsTuning | undefined, key: string, value: unknown): TlsTuning {
  const field = TLS_TUNING_KEYS[key];
  if (field === undefined || !Object.hasOwn(TLS_TUNING_KEYS, key)) throw new TypeError(`${JSON.stringify(key)} is not a TLS key`);
  if (field === 'sslOptionSet' || field === 'sslOptionClear') return { ...prev, [field]: optionBits(value) };
  if (typeof value !== 'string' || entries(value).length === 0) throw new TypeError('must be a non-empty string');
  const list = entries(value).join(':');
  let options: NodeTlsOptions;
  if (field === 'ciphers') {
    if (entries(value).some((c) => c.startsWith('TLS_'))) throw new TypeError('holds TLS 1.3 suites (TLS_…): put those in "tls13-ciphers"');
    options = { ciphers: `${DEFAULT_TLS13}:${list}` };
  } else if (field === 'tls13Ciphers') {
    const bad = entries(value).find((c) => !c.startsWith('TLS_'));
    if (bad !== undefined) throw new TypeError(`${JSON.stringify(bad)} is not a TLS 1.3 suite (TLS_…): TLS 1.2 ciphers go in "ciphers"`);
    options = { ciphers: `${list}:${DEFAULT_TLS12}` };
  } else options = { ecdhCurve: list };
  const refused = probe(options);
  if (refused !== undefined) throw new TypeError(`is refused by OpenSSL ${process.versions.openssl}: ${refused}`);
  return { ...prev, [field]: list };
}

/**
 * What is wrong with a whole vhost's tuning, as the lwsws key to blame and the reason, or
 * undefined. `ssl-option-clear` can only take bits out of `ssl-option-set`: node has no way to
 * clear the options OpenSSL and node set themselves (SSL_OP_NO_SSLv2, SSL_OP_NO_SSLv3,
 * SSL_OP_NO_COMPRESSION, …), so a bit cleared that was never set would do nothing, and is refused.
 */
export function tlsTuningDefect(t: TlsTuning): { readonly key: string; readonly detail: string } | undefined {
  if (t.sslOptionClear !== undefined) {
    const stray = BigInt(t.sslOptionClear) & ~BigInt(t.sslOptionSet ?? 0);
    if (stray !== 0n)
      return {
        key: 'ssl-option-clear',
        detail: `clears bits that "ssl-option-set" does not set (${stray}): node cannot clear the options OpenSSL and node set by default, so this would do nothing`,
      };
  }
  const refused = probe(nodeTlsOptions(t));
  return refused === undefined ? undefined : { key: 'ciphers', detail: `the TLS settings together are refused by OpenSSL: ${refused}` };
}

/** Node's options for a tuning (nothing for none): `ciphers` holds both lists, `secureOptions` is set & ~clear. */
export function nodeTlsOptions(t: TlsTuning | undefined): NodeTlsOptions {
  if (t === undefined) return {};
  const bits = BigInt(t.sslOptionSet ?? 0) & ~BigInt(t.sslOptionClear ?? 0);
  return {
    ...(t.ciphers !== undefined || t.tls13Ciphers !== undefined ? { ciphers: `${t.tls13Ciphers ?? DEFAULT_TLS13}:${t.ciphers ?? DEFAULT_TLS12}` } : {}),
    ...(t.ecdhCurve !== undefined ? { ecdhCurve: t.ecdhCurve } : {}),
    ...(bits !== 0n ? { secureOptions: Number(bits) } : {}),
  };
}

/** Whether two vhosts' tunings give node the same options (vhosts sharing a TLS port must agree). */
export function sameTlsOptions(a: TlsTuning | undefined, b: TlsTuning | undefined): boolean {
  const x = nodeTlsOptions(a);
  const y = nodeTlsOptions(b);
  return x.ciphers === y.ciphers && x.ecdhCurve === y.ecdhCurve && x.secureOptions === y.secureOptions;
}
