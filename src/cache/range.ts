/**
 * Range requests (RFC 9110 §14): parsing a `bytes` Range header field and
 * laying out a multipart/byteranges body.
 */
import { randomBytes } from 'node:crypto';

/** An inclusive byte range, `0 <= start <= end < size`. */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

/**
 * - `none`: no usable Range; send the whole representation (200).
 * - `unsatisfiable`: 416, with Content-Range in its unsatisfied-range form (§14.4: `bytes`, `*`, `/` and the size).
 * - `ranges`: 206; sorted, disjoint and non-adjacent. One range: a single part
 *   with Content-Range; more: {@link multipartByteranges}.
 */
export type RangeResult = { readonly type: 'none' } | { readonly type: 'unsatisfiable' } | { readonly type: 'ranges'; readonly ranges: readonly ByteRange[] };

const NONE: RangeResult = Object.freeze({ type: 'none' });
const UNSATISFIABLE: RangeResult = Object.freeze({ type: 'unsatisfiable' });
const SPEC = /^(\d*)-(\d*)$/;

function trimOws(s: string): string {
  return s.replace(/^[ \t]+|[ \t]+$/g, '');
}

/** Compares two non-empty digit strings as integers, exactly, whatever their length. */
function compareDigits(a: string, b: string): number {
  const x = a.replace(/^0+(?=\d)/, '');
  const y = b.replace(/^0+(?=\d)/, '');
  if (x.length !== y.length) return x.length - y.length;
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * Parses a Range header field against a representation of `size` bytes.
 *
 * Absent, a unit other than `bytes` (case-insensitive, §14.1), or any
 * syntactically invalid range-spec (including `last-pos < first-pos`,
 * §14.1.1) → `none`: the field is ignored. OWS around commas and empty list
 * elements are tolerated (§5.6.1.2). `a-b` has `b` clamped to `size - 1`;
 * `-n` is the last n bytes (clamped); a spec is unsatisfiable when its
 * first-pos is at or past the end, or it is `-0`. No satisfiable spec →
 * `unsatisfiable`. Overlapping and adjacent ranges are merged, so each byte is
 * sent once (§14.3 allows it); more than `maxRanges` (default 16) left after
 * that → `none`, a defence against many small ranges (§14.3, §17.15).
 *
 * A zero-length representation: §14.1.1 makes a non-zero suffix-range
 * satisfiable, but no 206 can describe zero bytes, so that gives `none` (a
 * 200 with an empty body); every other spec is unsatisfiable.
 *
 * @throws TypeError when size is not a non-negative safe integer or maxRanges not a positive integer.
 */
export function parseRange(header: string | undefined, size: number, options?: { readonly maxRanges?: number }): RangeResult {
  const maxRanges = options?.maxRanges ?? 16;
  if (!Number.isSafeInteger(size) || size < 0) throw new TypeError(`parseRange: bad size ${String(size)}`);
  if (!Number.isSafeInteger(maxRanges) || maxRanges < 1) {
    throw new TypeError(`parseRange: maxRanges must be a positive integer, not ${String(maxRanges)}`);
  }
  if (header === undefined) return NONE;
  const eq = header.indexOf('=');
  if (eq < 0) return NONE;
  // Range units are case-insensitive (§14.1); an unknown unit means the field is ignored (§14.2).
  if (trimOws(header.slice(0, eq)).toLowerCase() !== 'bytes') return NONE;

  const ranges: { start: number; end: number }[] = [];
  let specs = 0;
  let emptySuffix = false;
  for (const element of header.slice(eq + 1).split(',')) {
    const spec = trimOws(element);
    if (spec === '') continue;
    const m = SPEC.exec(spec);
    if (m === null) return NONE;
    const [, first = '', last = ''] = m;
    specs++;
    if (first === '') {
      // suffix-range: "-" is not one, "-0" is one that selects nothing.
      if (last === '') return NONE;
      const n = Number(last);
      if (n === 0) continue;
      if (size === 0) {
        emptySuffix = true;
        continue;
      }
      ranges.push({ start: Math.max(0, size - n), end: size - 1 });
    } else {
      if (last !== '' && compareDigits(last, first) < 0) return NONE;
      const start = Number(first);
      if (start >= size) continue;
      ranges.push({ start, end: last === '' ? size - 1 : Math.min(Number(last), size - 1) });
    }
  }
  // range-set = 1#range-spec: "bytes=" and "bytes=," are not range sets.
  if (specs === 0) return NONE;
  if (ranges.length === 0) return emptySuffix ? NONE : UNSATISFIABLE;

  ranges.sort((a, b) => a.start - b.start || a.end - b.end);
  const merged: ByteRange[] = [];
  let cur = ranges[0];
  for (const r of ranges) {
    if (cur === undefined) break;
    if (r.start <= cur.end + 1) {
      if (r.end > cur.end) cur = { start: cur.start, end: r.end };
    } else {
      merged.push(cur);
      cur = r;
    }
  }
  if (cur !== undefined) merged.push(cur);
  if (merged.length > maxRanges) return NONE;
  return { type: 'ranges', ranges: merged };
}

/** A multipart/byteranges body: write head, then bytes start..end (inclusive), for each part, then tail. */
export interface MultipartPlan {
  /** The response's Content-Type: `multipart/byteranges; boundary=...`. */
  readonly contentType: string;
  readonly parts: readonly { readonly head: Buffer; readonly start: number; readonly end: number }[];
  readonly tail: Buffer;
  /** The exact number of body bytes: the Content-Length. */
  readonly length: number;
}

// RFC 2046 §5.1.1: bchars, 1 to 70 of them, not ending in a space.
const BOUNDARY = /^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// A field value may hold HTAB, SP, VCHAR and obs-text, never CR, LF or NUL (RFC 9110 §5.5).
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * Lays out a multipart/byteranges body (RFC 9110 §14.6, RFC 2046 §5.1.1):
 *
 *     --B CRLF [Content-Type: T CRLF] Content-Range: bytes S-E/N CRLF CRLF <data> CRLF
 *     ... one per range ...
 *     --B-- CRLF
 *
 * The CRLF that ends each part's data is carried by the next part's head and
 * by the tail. Ranges are used in the order given (pass `parseRange`'s).
 * The default boundary is 32 random hex digits, which content will not contain
 * by chance; a caller-chosen boundary must not occur in the data.
 *
 * @throws RangeError for an empty list or a range outside `[0, size)`;
 * TypeError for a bad boundary or a part content type containing CR, LF or other controls.
 */
export function multipartByteranges(
  ranges: readonly ByteRange[],
  size: number,
  partContentType: string | undefined,
  boundary: string = randomBytes(16).toString('hex'),
): MultipartPlan {
  if (!BOUNDARY.test(boundary)) throw new TypeError(`multipartByteranges: bad boundary ${JSON.stringify(boundary)}`);
  if (partContentType !== undefined && !FIELD_VALUE.test(partContentType)) {
    throw new TypeError('multipartByteranges: the part content type is not a valid field value');
  }
  if (ranges.length === 0) throw new RangeError('multipartByteranges: no ranges');
  const typeLine = partContentType === undefined ? '' : `Content-Type: ${partContentType}\r\n`;
  let length = 0;
  const parts = ranges.map((r, i) => {
    if (!Number.isSafeInteger(r.start) || !Number.isSafeInteger(r.end) || r.start < 0 || r.start > r.end || r.end >= size) {
      throw new RangeError(`multipartByteranges: range ${r.start}-${r.end} is outside 0-${size - 1}`);
    }
    const head = Buffer.from(`${i === 0 ? '' : '\r\n'}--${boundary}\r\n${typeLine}Content-Range: bytes ${r.start}-${r.end}/${size}\r\n\r\n`, 'latin1');
    length += head.length + (r.end - r.start + 1);
    return { head, start: r.start, end: r.end };
  });
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1');
  length += tail.length;
  // A boundary with characters outside token must be a quoted-string in the parameter (RFC 9110 §5.6.6).
  const param = TOKEN.test(boundary) ? boundary : `"${boundary}"`;
  return { contentType: `multipart/byteranges; boundary=${param}`, parts, tail, length };
}
