/**
 * Entity tags (RFC 9110 §8.8.3): making them, parsing If-Match / If-None-Match
 * lists, and the strong and weak comparison functions.
 */
import { createHash } from 'node:crypto';

/** One parsed entity-tag. */
export interface EntityTag {
  /** `W/` was present. */
  readonly weak: boolean;
  /** The opaque-tag, including its double quotes. */
  readonly opaque: string;
}

const CODING = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;

/**
 * A strong, quoted ETag. With `version` (an opaque token that names one
 * version of the bytes, such as a file handle's identity: device, inode,
 * size, mtime and ctime), `"<size hex>-<hash of version>"`: a file replaced by
 * another of the same size and mtime still gets a new tag. Otherwise
 * `"<crc32, 8 hex>-<size hex>"` from crc32 and size, or `"<size hex>-<mtime ms hex>"`.
 * A content-coding other than identity is appended inside the quotes (`-gzip`,
 * `-br`), so each coding of a resource has its own tag (RFC 9110 §8.8.3.3:
 * different representations, different tags). Lowercase hex.
 *
 * @throws TypeError when size is not a non-negative safe integer, crc32 is not
 * an int32/uint32, mtime is not finite, the coding is not a token, or none of
 * version, crc32 and mtime is given: a size alone would let different content
 * of the same length look unchanged, so the caller must send no ETag instead.
 */
export function makeEtag(v: {
  readonly size: number;
  readonly version?: string;
  readonly mtime?: number;
  readonly crc32?: number;
  readonly encoding?: string;
}): string {
  if (!Number.isSafeInteger(v.size) || v.size < 0) {
    throw new TypeError(`makeEtag: size must be a non-negative integer, not ${String(v.size)}`);
  }
  let tag: string;
  if (v.version !== undefined) {
    // 96 bits of SHA-256: the token may hold inode numbers, which are nobody's business.
    tag = `${v.size.toString(16)}-${createHash('sha256').update(v.version).digest('hex').slice(0, 24)}`;
  } else if (v.crc32 !== undefined) {
    if (!Number.isInteger(v.crc32) || v.crc32 < -0x8000_0000 || v.crc32 > 0xffff_ffff) {
      throw new TypeError(`makeEtag: crc32 must be a 32-bit integer, not ${String(v.crc32)}`);
    }
    tag = `${(v.crc32 >>> 0).toString(16).padStart(8, '0')}-${v.size.toString(16)}`;
  } else if (v.mtime !== undefined) {
    if (!Number.isFinite(v.mtime)) throw new TypeError(`makeEtag: mtime must be finite, not ${String(v.mtime)}`);
    tag = `${v.size.toString(16)}-${Math.floor(v.mtime).toString(16)}`;
  } else {
    throw new TypeError('makeEtag: needs a version, crc32 (zip entries) or mtime (files)');
  }
  if (v.encoding !== undefined) {
    const coding = v.encoding.toLowerCase();
    if (!CODING.test(coding)) throw new TypeError(`makeEtag: not a content-coding: ${JSON.stringify(v.encoding)}`);
    if (coding !== 'identity') tag += `-${coding}`;
  }
  return `"${tag}"`;
}

function isOws(c: string | undefined): boolean {
  return c === ' ' || c === '\t';
}

function skipOws(s: string, i: number): number {
  while (isOws(s[i])) i++;
  return i;
}

function trimOws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && isOws(s[a])) a++;
  while (b > a && isOws(s[b - 1])) b--;
  return s.slice(a, b);
}

// etagc = %x21 / %x23-7E / obs-text (RFC 9110 §8.8.3); header strings are latin1, so obs-text is U+0080-00FF.
function isEtagc(code: number): boolean {
  return code === 0x21 || (code >= 0x23 && code <= 0x7e) || (code >= 0x80 && code <= 0xff);
}

/** Reads one entity-tag at `i`; null when there is none there. */
function readEntityTag(s: string, i: number): { tag: EntityTag; end: number } | null {
  // weak = %s"W/": case-sensitive, so w/"x" is not an entity-tag.
  const weak = s.startsWith('W/', i);
  const open = weak ? i + 2 : i;
  if (s[open] !== '"') return null;
  let j = open + 1;
  while (j < s.length && s[j] !== '"') {
    if (!isEtagc(s.charCodeAt(j))) return null;
    j++;
  }
  if (j >= s.length) return null;
  return { tag: { weak, opaque: s.slice(open, j + 1) }, end: j + 1 };
}

/** Parses a value that must be exactly one entity-tag (surrounding OWS allowed); null otherwise. */
export function parseEntityTag(value: string): EntityTag | null {
  const s = trimOws(value);
  const r = readEntityTag(s, 0);
  return r !== null && r.end === s.length ? r.tag : null;
}

/**
 * Parses an If-Match / If-None-Match value: `'*'`, or the list of
 * entity-tags (RFC 9110 §13.1.1-2; `*` only on its own). OWS around commas
 * and empty list elements are tolerated (§5.6.1.2); an empty value is the
 * empty list, which matches nothing. Null when the value does not parse.
 */
export function parseEtagList(value: string): '*' | EntityTag[] | null {
  const s = trimOws(value);
  if (s === '*') return '*';
  const tags: EntityTag[] = [];
  let i = 0;
  for (;;) {
    i = skipOws(s, i);
    if (i >= s.length) return tags;
    if (s[i] === ',') {
      i++;
      continue;
    }
    const r = readEntityTag(s, i);
    if (r === null) return null;
    tags.push(r.tag);
    i = skipOws(s, r.end);
    if (i < s.length && s[i++] !== ',') return null;
  }
}

/** Strong comparison of parsed tags (RFC 9110 §8.8.3.2): neither weak, opaque-tags identical. */
export function strongMatchTags(a: EntityTag, b: EntityTag): boolean {
  return !a.weak && !b.weak && a.opaque === b.opaque;
}

/** Weak comparison of parsed tags (RFC 9110 §8.8.3.2): opaque-tags identical, weakness ignored. */
export function weakMatchTags(a: EntityTag, b: EntityTag): boolean {
  return a.opaque === b.opaque;
}

/** Strong comparison (RFC 9110 §8.8.3.2) of two entity-tag strings; false if either does not parse. */
export function strongMatch(a: string, b: string): boolean {
  const x = parseEntityTag(a);
  const y = parseEntityTag(b);
  return x !== null && y !== null && strongMatchTags(x, y);
}

/** Weak comparison (RFC 9110 §8.8.3.2) of two entity-tag strings; false if either does not parse. */
export function weakMatch(a: string, b: string): boolean {
  const x = parseEntityTag(a);
  const y = parseEntityTag(b);
  return x !== null && y !== null && weakMatchTags(x, y);
}
