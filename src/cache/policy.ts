/**
 * A mount's cache options, as lwsws reads them (`cache-max-age`, `cache-reuse`,
 * `cache-revalidate`, `cache-intermediaries`, `cache-no`), plus `immutable`
 * (RFC 8246), which lws lacks.
 */
export interface CachePolicyOptions {
  /** Seconds a response stays fresh (`max-age`); a non-negative integer. 0 or absent: no caching. */
  readonly maxAge?: number;
  /** Caches may reuse the response; with `maxAge` > 0 this is what allows any caching at all. */
  readonly reuse?: boolean;
  /** Prefix `must-revalidate`: a stale response must not be used without revalidation. */
  readonly revalidate?: boolean;
  /** `public` (shared caches may store it) instead of `private`. */
  readonly intermediaries?: boolean;
  /** `no-cache`, whatever else is set: every reuse must be revalidated. */
  readonly no?: boolean;
  /** Append `immutable` to a cacheable policy: no revalidation on reload while fresh. */
  readonly immutable?: boolean;
}

// RFC 9111 §1.2.2: caches treat larger delta-seconds as 2^31, so nothing is lost by sending that.
const MAX_DELTA_SECONDS = 2 ** 31;

/**
 * The Cache-Control value for a mount, by lws's rules (first that applies):
 * `no` gives `no-cache`; `maxAge` > 0 with `reuse` gives
 * `[must-revalidate, ]public|private, max-age=N[, immutable]`; anything else
 * gives `no-store`. Unlike lws (which drops `cache-no` on a 304), the same
 * value is meant for 200, 206 and 304 responses: RFC 9110 §15.4.5 wants a 304
 * to carry the Cache-Control a 200 would have.
 *
 * @throws TypeError when `maxAge` is not a non-negative integer (a configuration error).
 */
export function cacheControl(o: CachePolicyOptions): string {
  const maxAge = o.maxAge ?? 0;
  if (!Number.isSafeInteger(maxAge) || maxAge < 0) {
    throw new TypeError(`cacheControl: maxAge must be a non-negative integer, not ${String(o.maxAge)}`);
  }
  if (o.no === true) return 'no-cache';
  if (maxAge > 0 && o.reuse === true) {
    let value = o.revalidate === true ? 'must-revalidate, ' : '';
    value += o.intermediaries === true ? 'public' : 'private';
    value += `, max-age=${Math.min(maxAge, MAX_DELTA_SECONDS)}`;
    if (o.immutable === true) value += ', immutable';
    return value;
  }
  return 'no-store';
}

/**
 * The Cache-Control for a response to an authenticated request that shared caches must not store
 * (RFC 9111 §3.5, §5.2.2.7): `private` when there was none; unchanged when it already says
 * `no-store` or (unqualified) `private`; otherwise `private` in front and any `public` dropped, the
 * other directives kept (`max-age` still lets the user's own cache reuse it). With `sharedAllowed`
 * (the operator's `cache-intermediaries`) the value is returned as it is.
 */
export function privateCacheControl(value: string | undefined, sharedAllowed: boolean): string | undefined {
  if (sharedAllowed) return value;
  if (value === undefined || value.trim() === '') return 'private';
  const directives = value
    .split(',')
    .map((d) => d.trim())
    .filter((d) => d !== '');
  const names = directives.map((d) => d.toLowerCase());
  // `private="set-cookie"` (the qualified form) only keeps those fields private: not enough.
  if (names.includes('no-store') || names.includes('private')) return value;
  return ['private', ...directives.filter((_, i) => names[i] !== 'public')].join(', ');
}
