/**
 * Conditional requests (RFC 9110 §13): the precondition header fields,
 * If-Range, and the HTTP-date format they use.
 */
import { parseEntityTag, parseEtagList, strongMatchTags, weakMatchTags, type EntityTag } from './etag.js';

/** The request's method and precondition header field values, as received (absent: undefined). */
export interface ConditionalRequest {
  /** Case-sensitive (RFC 9110 §9.1): only `GET` and `HEAD` count as GET and HEAD. */
  readonly method: string;
  readonly ifMatch?: string;
  readonly ifNoneMatch?: string;
  readonly ifModifiedSince?: string;
  readonly ifUnmodifiedSince?: string;
}

/** The selected representation's validators. */
export interface Validators {
  /** The ETag as sent, quoted (as from `makeEtag`). */
  readonly etag?: string | undefined;
  /** ms since the epoch; compared to the second, the resolution of an HTTP-date. */
  readonly lastModified?: number | undefined;
}

export type PreconditionResult = 'proceed' | 'not-modified' | 'precondition-failed';

function currentTag(v: Validators): EntityTag | null {
  return v.etag === undefined ? null : parseEntityTag(v.etag);
}

function lastModifiedSeconds(v: Validators): number | undefined {
  return v.lastModified !== undefined && Number.isFinite(v.lastModified) ? Math.floor(v.lastModified / 1000) : undefined;
}

/**
 * Evaluates the preconditions in RFC 9110 §13.2.2 order, for a resource that
 * exists (so `*` always matches):
 * 1. If-Match, by strong comparison; false (or unparseable) → precondition-failed.
 * 2. Only without If-Match: If-Unmodified-Since, when valid and `lastModified` is known;
 *    modified after the date → precondition-failed.
 * 3. If-None-Match, by weak comparison (unparseable: no match); a match →
 *    not-modified for GET and HEAD, precondition-failed for other methods.
 * 4. Only for GET and HEAD, and only without If-None-Match (even an unparseable one):
 *    If-Modified-Since, when valid and `lastModified` is known; not modified since → not-modified.
 *
 * Invalid dates are ignored (§13.1.3-4). If-Range is separate: {@link ifRangeAllows}.
 * The caller must not call this when the response would not be 2xx or 412
 * without the conditions (a 404, a redirect): §13.2.1.
 */
export function evaluatePreconditions(req: ConditionalRequest, v: Validators): PreconditionResult {
  const getOrHead = req.method === 'GET' || req.method === 'HEAD';
  const tag = currentTag(v);
  const modified = lastModifiedSeconds(v);

  if (req.ifMatch !== undefined) {
    // §13.1.1: strong comparison; a malformed list matches nothing, so the condition is false.
    const list = parseEtagList(req.ifMatch);
    const ok = list === '*' || (list !== null && tag !== null && list.some((t) => strongMatchTags(t, tag)));
    if (!ok) return 'precondition-failed';
  } else if (req.ifUnmodifiedSince !== undefined && modified !== undefined) {
    // §13.1.4: ignored when If-Match is present, the date is invalid, or there is no modification date.
    const date = parseHttpDate(req.ifUnmodifiedSince);
    if (date !== undefined && modified > date / 1000) return 'precondition-failed';
  }

  if (req.ifNoneMatch !== undefined) {
    // §13.1.2: weak comparison; `*` matches any current representation.
    const list = parseEtagList(req.ifNoneMatch);
    const matched = list === '*' || (list !== null && tag !== null && list.some((t) => weakMatchTags(t, tag)));
    if (matched) return getOrHead ? 'not-modified' : 'precondition-failed';
  } else if (getOrHead && req.ifModifiedSince !== undefined && modified !== undefined) {
    // §13.1.3: only GET/HEAD, only without If-None-Match, invalid dates ignored.
    const date = parseHttpDate(req.ifModifiedSince);
    if (date !== undefined && modified <= date / 1000) return 'not-modified';
  }

  return 'proceed';
}

/**
 * If-Range (RFC 9110 §13.1.5): true when the Range header field may be
 * honoured. An entity-tag must strongly match the current ETag (so a weak one
 * never does); an HTTP-date must equal `lastModified` to the second. Anything
 * else, including an unparseable value, is false (serve the whole
 * representation). Absent → true.
 *
 * Not checked here (no clock): §13.1.5 also wants the Last-Modified date to be
 * strong (§8.8.2.2), i.e. at least a second older than the response's Date.
 */
export function ifRangeAllows(ifRange: string | undefined, v: Validators): boolean {
  if (ifRange === undefined) return true;
  const value = ifRange.trim();
  if (value.startsWith('"') || value.startsWith('W/')) {
    const given = parseEntityTag(value);
    const tag = currentTag(v);
    return given !== null && tag !== null && strongMatchTags(given, tag);
  }
  const date = parseHttpDate(value);
  const modified = lastModifiedSeconds(v);
  return date !== undefined && modified !== undefined && modified * 1000 === date;
}

const DAY_NAMES = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const;
const LONG_DAY_NAMES = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'] as const;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const;

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/**
 * Formats an IMF-fixdate (RFC 9110 §5.6.7), e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
 * Milliseconds are dropped (rounded down to the second).
 *
 * @throws RangeError when the time is not finite or its year is outside 0000-9999.
 */
export function httpDate(ms: number): string {
  // The UTC getters ignore the milliseconds; NaN, ±Infinity and times beyond ±8.64e15 give an Invalid Date.
  const d = new Date(ms);
  const year = d.getUTCFullYear();
  // IMF-fixdate's year is exactly 4 digits.
  if (!(year >= 0 && year <= 9999)) throw new RangeError(`httpDate: ${String(ms)} has no IMF-fixdate`);
  const day = DAY_NAMES[d.getUTCDay()] ?? '';
  const month = MONTHS[d.getUTCMonth()] ?? '';
  return `${day}, ${pad(d.getUTCDate())} ${month} ${pad(year, 4)} ` + `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} GMT`;
}

const DAY = DAY_NAMES.join('|');
const MONTH = MONTHS.join('|');
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})';
// §5.6.7 grammar: day and month names and "GMT" are case-sensitive (%s), single SPs only.
const IMF_FIXDATE = new RegExp(`^(?:${DAY}), (\\d{2}) (${MONTH}) (\\d{4}) ${TIME} GMT$`);
const RFC850_DATE = new RegExp(`^(?:${LONG_DAY_NAMES.join('|')}), (\\d{2})-(${MONTH})-(\\d{2}) ${TIME} GMT$`);
const ASCTIME_DATE = new RegExp(`^(?:${DAY}) (${MONTH}) (\\d{2}| \\d) ${TIME} (\\d{4})$`);

/** ms for a UTC calendar time, or undefined when the fields are out of range (Feb 30, 24:00:00, …). */
function utc(year: number, month: string, day: number, hour: number, minute: number, second: number): number | undefined {
  const m = (MONTHS as readonly string[]).indexOf(month);
  // second 60 is a leap second (§5.6.7); Date folds it into the next minute.
  if (m < 0 || hour > 23 || minute > 59 || second > 60) return undefined;
  const d = new Date(0);
  // setUTCFullYear, not Date.UTC, which maps years 0-99 to 1900-1999.
  d.setUTCFullYear(year, m, day);
  if (d.getUTCFullYear() !== year || d.getUTCMonth() !== m || d.getUTCDate() !== day) return undefined;
  d.setUTCHours(hour, minute, second, 0);
  return d.getTime();
}

/**
 * Parses an HTTP-date (RFC 9110 §5.6.7): IMF-fixdate, or the obsolete RFC 850
 * and asctime forms. Returns ms since the epoch (whole seconds), or undefined
 * for anything else (including a list of dates). The weekday is not checked
 * against the date. An RFC 850 two-digit year is the latest year with those
 * digits that is not more than 50 years after `now`'s (§5.6.7).
 */
export function parseHttpDate(s: string, now: number = Date.now()): number | undefined {
  const value = s.trim();
  let m = IMF_FIXDATE.exec(value);
  if (m !== null) {
    const [, day = '', month = '', year = '', h = '', min = '', sec = ''] = m;
    return utc(Number(year), month, Number(day), Number(h), Number(min), Number(sec));
  }
  m = RFC850_DATE.exec(value);
  if (m !== null) {
    const [, day = '', month = '', yy = '', h = '', min = '', sec = ''] = m;
    const limit = new Date(now).getUTCFullYear() + 50;
    const year = limit - ((((limit - Number(yy)) % 100) + 100) % 100);
    return utc(year, month, Number(day), Number(h), Number(min), Number(sec));
  }
  m = ASCTIME_DATE.exec(value);
  if (m !== null) {
    const [, month = '', day = '', h = '', min = '', sec = '', year = ''] = m;
    return utc(Number(year), month, Number(day.trim()), Number(h), Number(min), Number(sec));
  }
  return undefined;
}
