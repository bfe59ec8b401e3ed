/**
 * A request path in canonical form: decoded once, `//` and `/./` collapsed,
 * no trailing slash (except the root) but whether there was one is kept.
 */
export interface CanonicalPath {
  /** `/` followed by decoded segments joined by `/`; never `..`, `.`, empty segments, NUL, `/` or `\` inside a segment. */
  readonly path: string;
  readonly segments: readonly string[];
  /** Whether the request path ended in `/` (or was exactly `/`). */
  readonly trailingSlash: boolean;
  /** The query string including its `?`, or `''`; passed through untouched. */
  readonly query: string;
}

/** Why a request path was refused: 400 (malformed) or 403 (`..`). */
export interface PathRefusal {
  readonly status: 400 | 403;
  readonly reason: string;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function hex(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

/**
 * Canonicalises a raw request target (`req.url`). The path is percent-decoded
 * exactly once, per segment, and every other spelling of the same thing is
 * refused rather than repaired:
 * - not starting with `/` (absolute-form, `*`), a malformed escape, a NUL
 *   (raw or `%00`), a control character, an encoded `/` or `\`, any backslash,
 *   or bytes that are not UTF-8: 400;
 * - a `..` segment in any spelling (`..`, `%2e%2e`, `.%2E`): 403;
 * - empty and `.` segments are dropped, so `//` and `/./` never resolve upward.
 * `+` is a literal `+` in a path (lws turns it into a space; RFC 3986 does not).
 */
export function canonicalizePath(target: string): CanonicalPath | PathRefusal {
  const q = target.indexOf('?');
  const rawPath = q === -1 ? target : target.slice(0, q);
  const query = q === -1 ? '' : target.slice(q);
  if (rawPath.charCodeAt(0) !== 0x2f) return { status: 400, reason: 'the request path must start with /' };
  const segments: string[] = [];
  const raw = rawPath.split('/');
  for (let i = 1; i < raw.length; i++) {
    const seg = decodeSegment(raw[i]!);
    if (typeof seg !== 'string') return seg;
    if (seg === '' || seg === '.') continue;
    if (seg === '..') return { status: 403, reason: 'path traversal is not allowed' };
    segments.push(seg);
  }
  return {
    path: `/${segments.join('/')}`,
    segments,
    trailingSlash: rawPath.endsWith('/'),
    query,
  };
}

function decodeSegment(seg: string): string | PathRefusal {
  let needsDecode = false;
  for (let i = 0; i < seg.length; i++) {
    const c = seg.charCodeAt(i);
    if (c === 0x25) needsDecode = true;
    else if (c === 0x5c) return { status: 400, reason: 'backslashes are not allowed in paths' };
    else if (c < 0x20 || c === 0x7f) return { status: 400, reason: 'control characters are not allowed in paths' };
  }
  if (!needsDecode) return seg;
  const bytes: number[] = [];
  for (let i = 0; i < seg.length; i++) {
    const c = seg.charCodeAt(i);
    if (c !== 0x25) {
      // Non-ASCII characters in the raw target (not valid per RFC 3986, but Node passes them) as UTF-8.
      if (c < 0x80) bytes.push(c);
      else for (const b of Buffer.from(seg[i]!, 'utf8')) bytes.push(b);
      continue;
    }
    const hi = hex(seg.charCodeAt(i + 1));
    const lo = hex(seg.charCodeAt(i + 2));
    if (hi < 0 || lo < 0) return { status: 400, reason: 'malformed percent-encoding' };
    const b = (hi << 4) | lo;
    if (b === 0) return { status: 400, reason: 'NUL is not allowed in paths' };
    if (b === 0x2f || b === 0x5c) return { status: 400, reason: 'encoded separators are not allowed in paths' };
    if (b < 0x20 || b === 0x7f) return { status: 400, reason: 'control characters are not allowed in paths' };
    bytes.push(b);
    i += 2;
  }
  try {
    return utf8.decode(Uint8Array.from(bytes));
  } catch {
    return { status: 400, reason: 'the path is not valid UTF-8' };
  }
}

/**
 * Percent-encodes a canonical path for a `Location` header. The result always
 * starts with exactly one `/`, so it can never be read as a scheme-relative
 * URL (`//evil.example`) or another host.
 */
export function encodePath(path: string): string {
  const encoded = path
    .split('/')
    .map((s) => encodeURIComponent(s).replace(/[!'()*]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`))
    .join('/');
  return `/${encoded.replace(/^\/+/, '')}`;
}
