import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { multipartByteranges, parseRange, type ByteRange, type MultipartPlan, type RangeResult } from '../../src/cache/http.js';

const NONE: RangeResult = { type: 'none' };
const UNSAT: RangeResult = { type: 'unsatisfiable' };
const r = (...pairs: [number, number][]): RangeResult => ({ type: 'ranges', ranges: pairs.map(([start, end]) => ({ start, end })) });

describe('parseRange', () => {
  const table: [string | undefined, number, RangeResult][] = [
    // RFC 9110 §14.1.2 examples, on a 10000-byte representation
    ['bytes=0-499', 10000, r([0, 499])],
    ['bytes=500-999', 10000, r([500, 999])],
    ['bytes=-500', 10000, r([9500, 9999])],
    ['bytes=9500-', 10000, r([9500, 9999])],
    ['bytes=0-0,-1', 10000, r([0, 0], [9999, 9999])],
    ['bytes= 0-999, 4500-5499, -1000', 10000, r([0, 999], [4500, 5499], [9000, 9999])],
    ['bytes=500-600,601-999', 10000, r([500, 999])],
    ['bytes=500-700,601-999', 10000, r([500, 999])],

    // the unit, case-insensitively
    ['Bytes=0-3', 10000, r([0, 3])],
    ['BYTES=0-3', 10000, r([0, 3])],
    ['items=0-5', 10000, NONE],
    ['bytesx=0-5', 10000, NONE],
    ['none', 10000, NONE],

    // ignored: absent, or syntactically invalid
    [undefined, 10000, NONE],
    ['', 10000, NONE],
    ['bytes', 10000, NONE],
    ['bytes=', 10000, NONE],
    ['bytes=,', 10000, NONE],
    ['bytes= , ,', 10000, NONE],
    ['bytes=5-2', 10000, NONE], // last-pos < first-pos
    ['bytes=0-3,5-2', 10000, NONE], // one invalid spec spoils the set
    ['bytes=-', 10000, NONE],
    ['bytes=--1', 10000, NONE],
    ['bytes=1-2-3', 10000, NONE],
    ['bytes=a-b', 10000, NONE],
    ['bytes=+1-2', 10000, NONE],
    ['bytes=0x1-2', 10000, NONE],
    ['bytes=1 -2', 10000, NONE],
    ['bytes=1.5-2', 10000, NONE],
    ['bytes=0-1;q=1', 10000, NONE],
    ['bytes=\u0661-2', 10000, NONE], // Arabic-Indic digit one
    ['bytes=99999999999999999999-99999999999999999998', 10000, NONE], // compared exactly

    // clamping and satisfiability
    ['bytes=0-99999', 10000, r([0, 9999])],
    ['bytes=0-99999999999999999999999', 10000, r([0, 9999])],
    ['bytes=-99999', 10000, r([0, 9999])],
    ['bytes=0-', 10000, r([0, 9999])],
    ['bytes=9999-', 10000, r([9999, 9999])],
    ['bytes=9999-9999', 10000, r([9999, 9999])],
    ['bytes=00005-0007', 10000, r([5, 7])],
    ['bytes=10000-', 10000, UNSAT],
    ['bytes=10000-10005', 10000, UNSAT],
    ['bytes=99999999999999999999-', 10000, UNSAT],
    ['bytes=-0', 10000, UNSAT],
    ['bytes=-0,10000-', 10000, UNSAT],
    ['bytes=10000-,0-1', 10000, r([0, 1])],
    ['bytes=-0,-1', 10000, r([9999, 9999])],

    // OWS and empty elements
    ['bytes=0-1 , 5-6', 10000, r([0, 1], [5, 6])],
    ['bytes=0-1,\t5-6', 10000, r([0, 1], [5, 6])],
    ['bytes=,0-1,,5-6,', 10000, r([0, 1], [5, 6])],

    // sorting and merging
    ['bytes=900-999,0-99', 10000, r([0, 99], [900, 999])],
    ['bytes=0-99,50-60', 10000, r([0, 99])],
    ['bytes=50-60,0-99', 10000, r([0, 99])],
    ['bytes=-100,9950-', 10000, r([9900, 9999])],
    ['bytes=0-1,2-3', 10000, r([0, 3])], // adjacent
    ['bytes=0-1,3-4', 10000, r([0, 1], [3, 4])], // a one-byte gap stays
    ['bytes=0-0,0-0,0-0', 10000, r([0, 0])],
    ['bytes=5-9,0-2,3-4', 10000, r([0, 9])],

    // a zero-length representation
    ['bytes=0-', 0, UNSAT],
    ['bytes=0-0', 0, UNSAT],
    ['bytes=-0', 0, UNSAT],
    ['bytes=-5', 0, NONE], // satisfiable (§14.1.1) but nothing to send: a 200
    ['bytes=0-5,-5', 0, NONE],
    ['bytes=5-2', 0, NONE],

    // a one-byte representation
    ['bytes=0-0', 1, r([0, 0])],
    ['bytes=-1', 1, r([0, 0])],
    ['bytes=1-', 1, UNSAT],
  ];
  for (const [header, size, expected] of table) {
    it(`${JSON.stringify(header)} on ${size} bytes`, () => assert.deepEqual(parseRange(header, size), expected));
  }

  const disjoint = (n: number): string => `bytes=${Array.from({ length: n }, (_, i) => `${i * 10}-${i * 10 + 4}`).join(',')}`;

  it('serves the whole representation when more than maxRanges (default 16) remain after merging', () => {
    const sixteen = parseRange(disjoint(16), 10000);
    assert.equal(sixteen.type === 'ranges' && sixteen.ranges.length, 16);
    assert.deepEqual(parseRange(disjoint(17), 10000), NONE);
    assert.deepEqual(parseRange(disjoint(3), 10000, { maxRanges: 2 }), NONE);
    assert.deepEqual(parseRange(disjoint(2), 10000, { maxRanges: 2 }), r([0, 4], [10, 14]));
    assert.equal(parseRange(disjoint(100), 10000, { maxRanges: 100 }).type, 'ranges');
  });

  it('counts ranges after merging: many overlapping ones are one', () => {
    const header = `bytes=${Array.from({ length: 500 }, (_, i) => `${i}-${i + 10}`).join(',')}`;
    assert.deepEqual(parseRange(header, 10000), r([0, 509]));
  });

  it('refuses nonsense arguments', () => {
    assert.throws(() => parseRange('bytes=0-1', -1), TypeError);
    assert.throws(() => parseRange('bytes=0-1', 1.5), TypeError);
    assert.throws(() => parseRange('bytes=0-1', 10, { maxRanges: 0 }), TypeError);
    assert.throws(() => parseRange('bytes=0-1', 10, { maxRanges: 2.5 }), TypeError);
  });
});

/** An independent reader for a multipart/byteranges body (RFC 2046 §5.1.1), strict about every CRLF. */
function parseMultipart(contentType: string, body: Buffer): { headers: Map<string, string>; data: Buffer }[] {
  const m = /^multipart\/byteranges; boundary=(?:"([^"]+)"|([^";\s]+))$/.exec(contentType);
  assert.ok(m, contentType);
  const boundary = m[1] ?? m[2] ?? '';
  const dash = Buffer.from(`--${boundary}`, 'latin1');
  const delimiter = Buffer.from(`\r\n--${boundary}`, 'latin1');
  assert.ok(body.subarray(0, dash.length).equals(dash), 'the body starts with the first boundary');
  let pos = dash.length;
  const parts: { headers: Map<string, string>; data: Buffer }[] = [];
  for (;;) {
    const after = body.subarray(pos, pos + 2).toString('latin1');
    if (after === '--') {
      assert.equal(body.subarray(pos + 2).toString('latin1'), '\r\n', 'only CRLF after the close delimiter');
      return parts;
    }
    assert.equal(after, '\r\n', 'CRLF after a boundary');
    const headEnd = body.indexOf('\r\n\r\n', pos + 2, 'latin1');
    assert.ok(headEnd >= 0);
    const headers = new Map<string, string>();
    for (const line of body
      .subarray(pos + 2, headEnd)
      .toString('latin1')
      .split('\r\n')) {
      const colon = line.indexOf(':');
      assert.ok(colon > 0, line);
      headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
    }
    const dataStart = headEnd + 4;
    const next = body.indexOf(delimiter, dataStart);
    assert.ok(next >= 0, 'every part is closed by a delimiter');
    parts.push({ headers, data: body.subarray(dataStart, next) });
    pos = next + delimiter.length;
  }
}

function assemble(plan: MultipartPlan, content: Buffer): Buffer {
  const chunks: Buffer[] = [];
  for (const p of plan.parts) chunks.push(p.head, content.subarray(p.start, p.end + 1));
  chunks.push(plan.tail);
  return Buffer.concat(chunks);
}

describe('multipartByteranges', () => {
  // Content with no CRLF-dash runs, so only real delimiters are found.
  const content = Buffer.from(Array.from({ length: 10000 }, (_, i) => 0x41 + ((i * 7) % 26)));

  it('lays out the RFC 9110 §14.6 example exactly', () => {
    const small = Buffer.from('0123456789');
    const plan = multipartByteranges(
      [
        { start: 1, end: 2 },
        { start: 7, end: 9 },
      ],
      10,
      'application/pdf',
      'THIS_STRING_SEPARATES',
    );
    assert.equal(plan.contentType, 'multipart/byteranges; boundary=THIS_STRING_SEPARATES');
    const expected =
      '--THIS_STRING_SEPARATES\r\nContent-Type: application/pdf\r\nContent-Range: bytes 1-2/10\r\n\r\n12\r\n' +
      '--THIS_STRING_SEPARATES\r\nContent-Type: application/pdf\r\nContent-Range: bytes 7-9/10\r\n\r\n789\r\n' +
      '--THIS_STRING_SEPARATES--\r\n';
    const body = assemble(plan, small);
    assert.equal(body.toString('latin1'), expected);
    assert.equal(plan.length, Buffer.byteLength(expected));
  });

  const cases: [string, ByteRange[], number, string | undefined][] = [
    [
      'two ranges',
      [
        { start: 0, end: 499 },
        { start: 9500, end: 9999 },
      ],
      10000,
      'text/html; charset=utf-8',
    ],
    [
      'one-byte ranges at both ends',
      [
        { start: 0, end: 0 },
        { start: 9999, end: 9999 },
      ],
      10000,
      'image/jpeg',
    ],
    [
      'three ranges, no part type',
      [
        { start: 0, end: 999 },
        { start: 4500, end: 5499 },
        { start: 9000, end: 9999 },
      ],
      10000,
      undefined,
    ],
    ['a single range', [{ start: 10, end: 20 }], 10000, 'text/plain'],
    ['the whole representation', [{ start: 0, end: 9999 }], 10000, 'application/octet-stream'],
  ];
  for (const [name, ranges, size, type] of cases) {
    it(`round-trips ${name}, byte for byte, with an exact length`, () => {
      const plan = multipartByteranges(ranges, size, type);
      const body = assemble(plan, content);
      assert.equal(plan.length, body.length);
      const parts = parseMultipart(plan.contentType, body);
      assert.equal(parts.length, ranges.length);
      ranges.forEach((range, i) => {
        const part = parts[i];
        assert.ok(part);
        assert.equal(part.headers.get('content-range'), `bytes ${range.start}-${range.end}/${size}`);
        assert.equal(part.headers.get('content-type'), type);
        assert.equal(part.headers.size, type === undefined ? 1 : 2);
        assert.ok(part.data.equals(content.subarray(range.start, range.end + 1)), `part ${i} data`);
        assert.deepEqual([plan.parts[i]?.start, plan.parts[i]?.end], [range.start, range.end]);
      });
    });
  }

  it('describes positions in a representation beyond 4 GiB', () => {
    const size = 2 ** 33 + 5;
    const plan = multipartByteranges(
      [
        { start: 0, end: 0 },
        { start: size - 1, end: size - 1 },
      ],
      size,
      'video/mp4',
      'b',
    );
    assert.equal(plan.parts[1]?.head.toString('latin1'), `\r\n--b\r\nContent-Type: video/mp4\r\nContent-Range: bytes ${size - 1}-${size - 1}/${size}\r\n\r\n`);
    const heads = plan.parts.reduce((n, p) => n + p.head.length, 0);
    assert.equal(plan.length, heads + 2 + plan.tail.length);
  });

  it('picks a fresh random hex boundary of at least 24 characters', () => {
    const a = multipartByteranges([{ start: 0, end: 1 }], 10, 'text/plain');
    const b = multipartByteranges([{ start: 0, end: 1 }], 10, 'text/plain');
    const ba = /boundary=([0-9a-f]+)$/.exec(a.contentType)?.[1] ?? '';
    const bb = /boundary=([0-9a-f]+)$/.exec(b.contentType)?.[1] ?? '';
    assert.ok(ba.length >= 24, a.contentType);
    assert.notEqual(ba, bb);
    assert.ok(a.parts[0]?.head.toString('latin1').startsWith(`--${ba}\r\n`));
    assert.equal(a.tail.toString('latin1'), `\r\n--${ba}--\r\n`);
  });

  it('quotes a boundary that is not a token', () => {
    const plan = multipartByteranges(
      [
        { start: 0, end: 1 },
        { start: 3, end: 4 },
      ],
      10,
      'text/plain',
      "it's a (boundary)",
    );
    assert.equal(plan.contentType, `multipart/byteranges; boundary="it's a (boundary)"`);
    const parts = parseMultipart(plan.contentType, assemble(plan, content));
    assert.equal(parts.length, 2);
  });

  it('refuses bad boundaries, header injection and ranges outside the representation', () => {
    const one = [{ start: 0, end: 1 }];
    for (const boundary of ['', 'a'.repeat(71), 'trailing ', 'quo"te', 'semi;colon', 'new\r\nline']) {
      assert.throws(() => multipartByteranges(one, 10, 'text/plain', boundary), TypeError, JSON.stringify(boundary));
    }
    assert.doesNotThrow(() => multipartByteranges(one, 10, 'text/plain', 'a'.repeat(70)));
    assert.throws(() => multipartByteranges(one, 10, 'text/plain\r\nSet-Cookie: x=1'), TypeError);
    assert.throws(() => multipartByteranges(one, 10, 'text/plain\n'), TypeError);
    assert.throws(() => multipartByteranges([], 10, 'text/plain'), RangeError);
    for (const bad of [
      { start: 0, end: 10 },
      { start: -1, end: 2 },
      { start: 5, end: 4 },
      { start: 0.5, end: 2 },
    ]) {
      assert.throws(() => multipartByteranges([bad], 10, 'text/plain'), RangeError, JSON.stringify(bad));
    }
  });
});
