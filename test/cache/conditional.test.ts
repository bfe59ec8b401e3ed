import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  evaluatePreconditions,
  httpDate,
  ifRangeAllows,
  parseHttpDate,
  type ConditionalRequest,
  type PreconditionResult,
  type Validators,
} from '../../src/cache/http.js';

const ETAG = '"5929049-40189"';
const OTHER = '"5929049-4018a"';
const LM = Date.UTC(2024, 0, 2, 3, 4, 5, 678); // sub-second part: compared to the second
const LM_DATE = 'Tue, 02 Jan 2024 03:04:05 GMT';
const BEFORE = 'Tue, 02 Jan 2024 03:04:04 GMT';
const AFTER = 'Tue, 02 Jan 2024 03:04:06 GMT';
const V: Validators = { etag: ETAG, lastModified: LM };

describe('evaluatePreconditions (RFC 9110 §13.2.2)', () => {
  const GET = { method: 'GET' } as const;
  const table: [string, ConditionalRequest, Validators, PreconditionResult][] = [
    ['no preconditions', GET, V, 'proceed'],
    ['no preconditions, no validators', GET, {}, 'proceed'],

    // If-Match (§13.1.1): strong comparison
    ['If-Match matching', { ...GET, ifMatch: ETAG }, V, 'proceed'],
    ['If-Match in a list', { ...GET, ifMatch: `"x", ${ETAG}` }, V, 'proceed'],
    ['If-Match *', { ...GET, ifMatch: '*' }, V, 'proceed'],
    ['If-Match * without validators', { ...GET, ifMatch: '*' }, {}, 'proceed'],
    ['If-Match not matching', { ...GET, ifMatch: OTHER }, V, 'precondition-failed'],
    ['If-Match weak tag: strong comparison fails', { ...GET, ifMatch: `W/${ETAG}` }, V, 'precondition-failed'],
    ['If-Match against a weak current tag', { ...GET, ifMatch: ETAG }, { etag: `W/${ETAG}` }, 'precondition-failed'],
    ['If-Match with no current ETag', { ...GET, ifMatch: ETAG }, { lastModified: LM }, 'precondition-failed'],
    ['If-Match malformed', { ...GET, ifMatch: 'xyzzy' }, V, 'precondition-failed'],
    ['If-Match empty list', { ...GET, ifMatch: '' }, V, 'precondition-failed'],
    ['If-Match false beats a matching If-None-Match', { ...GET, ifMatch: OTHER, ifNoneMatch: ETAG }, V, 'precondition-failed'],
    ['If-Match true, then If-None-Match matches', { ...GET, ifMatch: ETAG, ifNoneMatch: ETAG }, V, 'not-modified'],

    // If-Unmodified-Since (§13.1.4)
    ['If-Unmodified-Since later', { ...GET, ifUnmodifiedSince: AFTER }, V, 'proceed'],
    ['If-Unmodified-Since same second', { ...GET, ifUnmodifiedSince: LM_DATE }, V, 'proceed'],
    ['If-Unmodified-Since earlier', { ...GET, ifUnmodifiedSince: BEFORE }, V, 'precondition-failed'],
    ['If-Unmodified-Since earlier, PUT', { method: 'PUT', ifUnmodifiedSince: BEFORE }, V, 'precondition-failed'],
    ['If-Unmodified-Since ignored with If-Match', { ...GET, ifMatch: ETAG, ifUnmodifiedSince: BEFORE }, V, 'proceed'],
    ['If-Unmodified-Since invalid date ignored', { ...GET, ifUnmodifiedSince: 'yesterday' }, V, 'proceed'],
    ['If-Unmodified-Since list of dates ignored', { ...GET, ifUnmodifiedSince: `${BEFORE}, ${BEFORE}` }, V, 'proceed'],
    ['If-Unmodified-Since without Last-Modified', { ...GET, ifUnmodifiedSince: BEFORE }, { etag: ETAG }, 'proceed'],
    ['If-Unmodified-Since false beats If-None-Match', { ...GET, ifUnmodifiedSince: BEFORE, ifNoneMatch: ETAG }, V, 'precondition-failed'],
    ['If-Unmodified-Since true, then If-None-Match matches', { ...GET, ifUnmodifiedSince: LM_DATE, ifNoneMatch: ETAG }, V, 'not-modified'],

    // If-None-Match (§13.1.2): weak comparison
    ['If-None-Match matching, GET', { ...GET, ifNoneMatch: ETAG }, V, 'not-modified'],
    ['If-None-Match matching, HEAD', { method: 'HEAD', ifNoneMatch: ETAG }, V, 'not-modified'],
    ['If-None-Match weak tag matches weakly', { ...GET, ifNoneMatch: `W/${ETAG}` }, V, 'not-modified'],
    ['If-None-Match in a list with empty elements', { ...GET, ifNoneMatch: ` , "x",, ${ETAG} ,` }, V, 'not-modified'],
    ['If-None-Match *', { ...GET, ifNoneMatch: '*' }, V, 'not-modified'],
    ['If-None-Match matching, POST', { method: 'POST', ifNoneMatch: ETAG }, V, 'precondition-failed'],
    ['If-None-Match *, PUT', { method: 'PUT', ifNoneMatch: '*' }, V, 'precondition-failed'],
    ['methods are case-sensitive: "get" is not GET', { method: 'get', ifNoneMatch: ETAG }, V, 'precondition-failed'],
    ['If-None-Match not matching', { ...GET, ifNoneMatch: OTHER }, V, 'proceed'],
    ['If-None-Match with no current ETag', { ...GET, ifNoneMatch: ETAG }, { lastModified: LM }, 'proceed'],
    ['If-None-Match malformed: no match', { ...GET, ifNoneMatch: ETAG.slice(1) }, V, 'proceed'],

    // If-Modified-Since (§13.1.3)
    ['If-Modified-Since same second', { ...GET, ifModifiedSince: LM_DATE }, V, 'not-modified'],
    ['If-Modified-Since later', { ...GET, ifModifiedSince: AFTER }, V, 'not-modified'],
    ['If-Modified-Since earlier', { ...GET, ifModifiedSince: BEFORE }, V, 'proceed'],
    ['If-Modified-Since, HEAD', { method: 'HEAD', ifModifiedSince: LM_DATE }, V, 'not-modified'],
    ['If-Modified-Since RFC 850 form', { ...GET, ifModifiedSince: 'Tuesday, 02-Jan-24 03:04:05 GMT' }, V, 'not-modified'],
    ['If-Modified-Since asctime form', { ...GET, ifModifiedSince: 'Tue Jan  2 03:04:05 2024' }, V, 'not-modified'],
    ['If-Modified-Since ignored for POST', { method: 'POST', ifModifiedSince: AFTER }, V, 'proceed'],
    ['If-Modified-Since invalid date ignored', { ...GET, ifModifiedSince: '2024-01-02T03:04:05Z' }, V, 'proceed'],
    ['If-Modified-Since without Last-Modified', { ...GET, ifModifiedSince: AFTER }, { etag: ETAG }, 'proceed'],
    ['If-None-Match present (no match): If-Modified-Since ignored', { ...GET, ifNoneMatch: OTHER, ifModifiedSince: AFTER }, V, 'proceed'],
    ['If-None-Match malformed: If-Modified-Since still ignored', { ...GET, ifNoneMatch: 'junk', ifModifiedSince: AFTER }, V, 'proceed'],
    ['If-None-Match matches, If-Modified-Since says modified', { ...GET, ifNoneMatch: ETAG, ifModifiedSince: BEFORE }, V, 'not-modified'],
  ];
  for (const [name, req, v, expected] of table) {
    it(name, () => assert.equal(evaluatePreconditions(req, v), expected));
  }
});

describe('ifRangeAllows (RFC 9110 §13.1.5)', () => {
  const table: [string, string | undefined, Validators, boolean][] = [
    ['absent', undefined, V, true],
    ['absent, no validators', undefined, {}, true],
    ['the current ETag', ETAG, V, true],
    ['the current ETag with OWS', ` ${ETAG}\t`, V, true],
    ['another ETag', OTHER, V, false],
    ['a weak ETag never matches', `W/${ETAG}`, V, false],
    ['a weak current ETag never matches', ETAG, { etag: `W/${ETAG}` }, false],
    ['an ETag without a current one', ETAG, { lastModified: LM }, false],
    ['a list is not one ETag', `${ETAG}, ${OTHER}`, V, false],
    ['Last-Modified exactly, to the second', LM_DATE, V, true],
    ['Last-Modified in RFC 850 form', 'Tuesday, 02-Jan-24 03:04:05 GMT', V, true],
    ['a second later', AFTER, V, false],
    ['a second earlier', BEFORE, V, false],
    ['a date without Last-Modified', LM_DATE, { etag: ETAG }, false],
    ['neither an ETag nor a date', 'garbage', V, false],
    ['empty', '', V, false],
  ];
  for (const [name, ifRange, v, expected] of table) {
    it(name, () => assert.equal(ifRangeAllows(ifRange, v), expected));
  }
});

describe('httpDate', () => {
  it('formats the RFC 9110 §5.6.7 example and drops milliseconds', () => {
    assert.equal(httpDate(784111777000), 'Sun, 06 Nov 1994 08:49:37 GMT');
    assert.equal(httpDate(784111777999), 'Sun, 06 Nov 1994 08:49:37 GMT');
    assert.equal(httpDate(0), 'Thu, 01 Jan 1970 00:00:00 GMT');
    assert.equal(httpDate(-1), 'Wed, 31 Dec 1969 23:59:59 GMT');
    assert.equal(httpDate(Date.UTC(9999, 11, 31, 23, 59, 59)), 'Fri, 31 Dec 9999 23:59:59 GMT');
  });

  it('pads years below 1000 to four digits', () => {
    const d = new Date(0);
    d.setUTCFullYear(50, 0, 1);
    assert.equal(httpDate(d.getTime()), 'Sat, 01 Jan 0050 00:00:00 GMT');
  });

  it("agrees with Date's own IMF-fixdate over a spread of times", () => {
    let checked = 0;
    for (let t = -2e12; t < 4e12; t += 1e12 / 7 + 12345) {
      assert.equal(httpDate(t), new Date(t).toUTCString());
      checked++;
    }
    assert.ok(checked > 30);
  });

  it('refuses what an IMF-fixdate cannot hold', () => {
    for (const ms of [NaN, Infinity, Date.UTC(10000, 0, 1), Date.UTC(-1, 0, 1), 8.64e15 + 1000]) {
      assert.throws(() => httpDate(ms), RangeError, String(ms));
    }
  });
});

describe('parseHttpDate', () => {
  const RFC_EXAMPLE = 784111777000;
  const NOW = Date.UTC(2040, 5, 1); // far from today, so that the default clock cannot pass for it
  const table: [string, number | undefined][] = [
    // the three forms of RFC 9110 §5.6.7
    ['Sun, 06 Nov 1994 08:49:37 GMT', RFC_EXAMPLE],
    ['Sunday, 06-Nov-94 08:49:37 GMT', RFC_EXAMPLE],
    ['Sun Nov  6 08:49:37 1994', RFC_EXAMPLE],
    ['Sun Nov 16 08:49:37 1994', Date.UTC(1994, 10, 16, 8, 49, 37)],
    ['  Sun, 06 Nov 1994 08:49:37 GMT ', RFC_EXAMPLE],
    ['Sat, 31 Dec 2016 23:59:60 GMT', Date.UTC(2017, 0, 1)], // leap second
    ['Thu, 29 Feb 2024 12:00:00 GMT', Date.UTC(2024, 1, 29, 12)],
    // RFC 850 two-digit years, relative to NOW (2040): no more than 50 years ahead
    ['Monday, 01-Jan-70 00:00:00 GMT', Date.UTC(2070, 0, 1)],
    ['Monday, 01-Jan-89 00:00:00 GMT', Date.UTC(2089, 0, 1)],
    ['Monday, 01-Jan-90 00:00:00 GMT', Date.UTC(2090, 0, 1)],
    ['Monday, 01-Jan-91 00:00:00 GMT', Date.UTC(1991, 0, 1)],
    ['Monday, 01-Jan-40 00:00:00 GMT', Date.UTC(2040, 0, 1)],
    ['Monday, 01-Jan-00 00:00:00 GMT', Date.UTC(2000, 0, 1)],
    // invalid
    ['', undefined],
    ['784111777', undefined],
    ['1994-11-06T08:49:37Z', undefined],
    ['sun, 06 Nov 1994 08:49:37 GMT', undefined],
    ['Sun, 06 nov 1994 08:49:37 GMT', undefined],
    ['Sun, 06 Nov 1994 08:49:37 UTC', undefined],
    ['Sun, 06 Nov 1994 08:49:37 gmt', undefined],
    ['Sun, 6 Nov 1994 08:49:37 GMT', undefined],
    ['Sun,  06 Nov 1994 08:49:37 GMT', undefined],
    ['Sun, 06 Nov 94 08:49:37 GMT', undefined],
    ['Sun, 31 Feb 1994 08:49:37 GMT', undefined],
    ['Sun, 29 Feb 2023 08:49:37 GMT', undefined],
    ['Sun, 00 Nov 1994 08:49:37 GMT', undefined],
    ['Sun, 06 Nov 1994 24:00:00 GMT', undefined],
    ['Sun, 06 Nov 1994 08:60:37 GMT', undefined],
    ['Sun, 06 Nov 1994 08:49:61 GMT', undefined],
    ['Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT', undefined],
    ['Sunday, 06-Nov-1994 08:49:37 GMT', undefined],
    ['Sun, 06-Nov-94 08:49:37 GMT', undefined],
    ['Sun Nov 6 08:49:37 1994', undefined],
    ['Sun Nov  6 08:49:37 1994 GMT', undefined],
  ];
  for (const [value, expected] of table) {
    it(JSON.stringify(value), () => assert.equal(parseHttpDate(value, NOW), expected));
  }

  it('keeps years below 100 (no Date.UTC 1900 mapping)', () => {
    const ms = parseHttpDate('Mon, 01 Jan 0001 00:00:00 GMT');
    assert.notEqual(ms, undefined);
    assert.equal(new Date(ms ?? NaN).getUTCFullYear(), 1);
  });

  it('uses the current year for RFC 850 dates by default', () => {
    const yy = String(new Date().getUTCFullYear() % 100).padStart(2, '0');
    const ms = parseHttpDate(`Monday, 01-Jan-${yy} 00:00:00 GMT`);
    assert.equal(new Date(ms ?? NaN).getUTCFullYear(), new Date().getUTCFullYear());
  });

  it('round-trips httpDate to the second', () => {
    let checked = 0;
    for (let t = -1e12; t < 5e12; t += 987654321987) {
      assert.equal(parseHttpDate(httpDate(t)), Math.floor(t / 1000) * 1000);
      checked++;
    }
    assert.ok(checked > 5);
  });
});
