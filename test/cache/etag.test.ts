import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { makeEtag, parseEntityTag, parseEtagList, strongMatch, weakMatch } from '../../src/cache/http.js';

describe('makeEtag', () => {
  it('formats zip entries from crc32 and size, files from size and mtime', () => {
    assert.equal(makeEtag({ size: 262537, crc32: 0x05929049 }), '"05929049-40189"');
    assert.equal(makeEtag({ size: 11, mtime: 1577934245000 }), '"b-16f6435cc88"');
  });

  it('ignores the mtime of a zip entry, so a rebuilt archive keeps the tag', () => {
    const a = makeEtag({ size: 100, crc32: 0xc80af20e, mtime: 1 });
    const b = makeEtag({ size: 100, crc32: 0xc80af20e, mtime: 2_000_000_000_000 });
    assert.equal(a, b);
    assert.equal(a, '"c80af20e-64"');
  });

  it('changes with every input it is built from', () => {
    const tags = [
      makeEtag({ size: 100, crc32: 1 }),
      makeEtag({ size: 101, crc32: 1 }),
      makeEtag({ size: 100, crc32: 2 }),
      makeEtag({ size: 100, mtime: 1000 }),
      makeEtag({ size: 100, mtime: 1001 }),
      makeEtag({ size: 101, mtime: 1000 }),
    ];
    assert.equal(new Set(tags).size, tags.length);
  });

  it('gives each content-coding its own tag, case-insensitively, identity none', () => {
    const v = { size: 95147, crc32: 0x05929049 };
    assert.equal(makeEtag({ ...v, encoding: 'gzip' }), '"05929049-173ab-gzip"');
    assert.equal(makeEtag({ ...v, encoding: 'GZIP' }), '"05929049-173ab-gzip"');
    assert.equal(makeEtag({ ...v, encoding: 'br' }), '"05929049-173ab-br"');
    assert.equal(makeEtag({ ...v, encoding: 'identity' }), makeEtag(v));
    assert.notEqual(makeEtag({ size: 5, mtime: 9, encoding: 'gzip' }), makeEtag({ size: 5, mtime: 9 }));
  });

  it('handles sizes and mtimes beyond 2^32, fractional mtimes and signed crcs', () => {
    assert.equal(makeEtag({ size: 2 ** 40 + 1, mtime: 2 ** 45 + 0.75 }), '"10000000001-200000000000"');
    assert.equal(makeEtag({ size: 2 ** 33, crc32: 0xffffffff }), '"ffffffff-200000000"');
    assert.equal(makeEtag({ size: 1, crc32: -1 }), makeEtag({ size: 1, crc32: 0xffffffff }));
    assert.equal(makeEtag({ size: 0, crc32: 0 }), '"00000000-0"');
  });

  it('produces a strong entity-tag that parses back', () => {
    for (const tag of [makeEtag({ size: 7, mtime: Date.UTC(2024, 0, 1) }), makeEtag({ size: 7, crc32: 3, encoding: 'br' })]) {
      const parsed = parseEntityTag(tag);
      assert.deepEqual(parsed, { weak: false, opaque: tag });
      assert.ok(strongMatch(tag, tag));
    }
  });

  it('refuses inputs that cannot make a safe tag', () => {
    const bad: Parameters<typeof makeEtag>[0][] = [
      { size: 10 }, // no validator: a size alone is not one
      { size: -1, mtime: 0 },
      { size: 1.5, mtime: 0 },
      { size: 2 ** 53, mtime: 0 },
      { size: 1, crc32: 2 ** 32 },
      { size: 1, crc32: 0.5 },
      { size: 1, mtime: NaN },
      { size: 1, mtime: 0, encoding: 'gz ip' },
      { size: 1, mtime: 0, encoding: 'g"zip' },
      { size: 1, mtime: 0, encoding: '' },
    ];
    for (const v of bad) assert.throws(() => makeEtag(v), TypeError, JSON.stringify(v));
  });
});

describe('parseEtagList', () => {
  const table: [string, ReturnType<typeof parseEtagList>][] = [
    ['*', '*'],
    [' * ', '*'],
    ['"xyzzy"', [{ weak: false, opaque: '"xyzzy"' }]],
    // RFC 9110 §13.1.1 and §13.1.2 examples
    [
      '"xyzzy", "r2d2xxxx", "c3piozzzz"',
      [
        { weak: false, opaque: '"xyzzy"' },
        { weak: false, opaque: '"r2d2xxxx"' },
        { weak: false, opaque: '"c3piozzzz"' },
      ],
    ],
    [
      'W/"xyzzy", W/"r2d2xxxx", W/"c3piozzzz"',
      [
        { weak: true, opaque: '"xyzzy"' },
        { weak: true, opaque: '"r2d2xxxx"' },
        { weak: true, opaque: '"c3piozzzz"' },
      ],
    ],
    [
      '"a",W/"b"',
      [
        { weak: false, opaque: '"a"' },
        { weak: true, opaque: '"b"' },
      ],
    ],
    [
      ' ,\t"a" ,, , "b",',
      [
        { weak: false, opaque: '"a"' },
        { weak: false, opaque: '"b"' },
      ],
    ],
    ['""', [{ weak: false, opaque: '""' }]],
    ['"a,b"', [{ weak: false, opaque: '"a,b"' }]],
    ['"caf\u00e9"', [{ weak: false, opaque: '"caf\u00e9"' }]], // obs-text
    ['', []],
    [' , ', []],
    ['xyzzy', null], // unquoted
    ['"a" "b"', null], // no comma
    ['"a', null], // unterminated
    ['w/"a"', null], // W/ is case-sensitive
    ['W/ "a"', null],
    ['"a b"', null], // SP is not etagc
    ['"a\u0001"', null],
    ['"a\u0100"', null], // not latin1
    ['*, "a"', null], // * only alone
    ['**', null],
  ];
  for (const [value, expected] of table) {
    it(JSON.stringify(value), () => assert.deepEqual(parseEtagList(value), expected));
  }
});

describe('strongMatch / weakMatch (RFC 9110 §8.8.3.2)', () => {
  const table: [string, string, boolean, boolean][] = [
    // ETag 1, ETag 2, strong, weak: the RFC's table
    ['W/"1"', 'W/"1"', false, true],
    ['W/"1"', 'W/"2"', false, false],
    ['W/"1"', '"1"', false, true],
    ['"1"', '"1"', true, true],
    // and a few more
    ['"1"', 'W/"1"', false, true],
    ['"1"', '"2"', false, false],
    ['"1"', '"10"', false, false],
    ['"a"', '"A"', false, false], // opaque-tags are case-sensitive
    [' "1" ', '"1"', true, true], // OWS around a field value
    ['1', '1', false, false], // unquoted: not entity-tags at all
    ['"1", "2"', '"1"', false, false], // a list is not an entity-tag
  ];
  for (const [a, b, strong, weak] of table) {
    it(`${a} vs ${b}`, () => {
      assert.equal(strongMatch(a, b), strong, 'strong');
      assert.equal(weakMatch(a, b), weak, 'weak');
      assert.equal(strongMatch(b, a), strong, 'strong, symmetric');
      assert.equal(weakMatch(b, a), weak, 'weak, symmetric');
    });
  }
});
