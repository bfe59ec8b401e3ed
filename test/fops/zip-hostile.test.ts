/**
 * Hostile archives generated in code, one hazard each, so every category of
 * the corpus is covered in general and not only by its sample file.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deflateRawSync, gunzipSync } from 'node:zlib';
import { FopError, FopFlags, MemFops, ZipFops, readAll, type FopErrorCode, type ZipLimits } from '../../src/index.js';
import { noise, prose } from '../helpers/fixtures.js';
import { centralHeader, dosDateTime, endRecord, extra, localHeader, makeManyEntryZip, makeZip, unicodePath, type ArchiveSpec } from '../helpers/zip-writer.js';

let serial = 0;
/** Serves `bytes` as /a<n>.zip from memory and returns a ZipFops over it plus the archive path. */
function mount(bytes: Uint8Array, limits?: Partial<ZipLimits>): { zip: ZipFops; archive: string } {
  const archive = `/a${++serial}.zip`;
  const mem = new MemFops({ [archive]: bytes });
  return { zip: new ZipFops({ source: mem, ...(limits ? { limits } : {}) }), archive };
}

async function indexError(bytes: Uint8Array, limits?: Partial<ZipLimits>): Promise<FopError | undefined> {
  const { zip, archive } = mount(bytes, limits);
  try {
    await zip.index(archive);
    return undefined;
  } catch (err) {
    assert.ok(FopError.is(err), String(err));
    return err;
  }
}

async function expectIndexError(spec: ArchiveSpec | Uint8Array, code: FopErrorCode, message: RegExp, limits?: Partial<ZipLimits>): Promise<void> {
  const bytes = spec instanceof Uint8Array ? spec : makeZip(spec);
  const err = await indexError(bytes, limits);
  assert.ok(err, `expected ${code} (${String(message)}) but the archive was accepted`);
  assert.equal(err.code, code, err.message);
  assert.match(err.message, message);
}

async function readEntry(spec: ArchiveSpec | Uint8Array, name: string, flags = 0, limits?: Partial<ZipLimits>): Promise<Buffer> {
  const { zip, archive } = mount(spec instanceof Uint8Array ? spec : makeZip(spec), limits);
  const fd = await zip.open(`${archive}/${name}`, flags);
  try {
    return await readAll(fd);
  } finally {
    await fd.close();
  }
}

async function entryError(spec: ArchiveSpec, name: string, flags = 0, limits?: Partial<ZipLimits>): Promise<FopError> {
  try {
    await readEntry(spec, name, flags, limits);
  } catch (err) {
    assert.ok(FopError.is(err), String(err));
    return err;
  }
  assert.fail(`${name}: expected an error`);
}

describe('names: canonical form only; an unsafe name hides its entry, never repaired', () => {
  const bad: [string, string | Uint8Array, RegExp][] = [
    ['dot-dot first', '../evil.txt', /segment/],
    ['dot-dot inside', 'a/../../evil.txt', /segment/],
    ['dot-dot last', 'a/..', /segment/],
    ['dot segment', 'a/./b.txt', /segment/],
    ['lone dot', '.', /segment/],
    ['empty segment', 'a//b.txt', /segment/],
    ['empty name', '', /empty/],
    ['absolute', '/etc/passwd', /absolute/],
    ['drive letter', 'C:/Windows/win.ini', /absolute/],
    ['drive-relative', 'c:evil.txt', /absolute/],
    ['UNC-like', '//host/share/x', /absolute/],
    ['backslash', 'a\\b.txt', /backslash/],
    ['backslash dot-dot', '..\\evil.txt', /backslash/],
    ['NUL inside', 'safe.txt\0.html', /NUL/],
    ['NUL at end', 'safe.txt\0', /NUL/],
    ['tab', 'a\tb.txt', /control/],
    ['newline (header injection)', 'a\r\nSet-Cookie: x.txt', /control/],
    ['escape sequence', '\u001b[31mred.txt', /control/],
    ['DEL', 'a\u007f.txt', /control/],
    ['C1 control', 'a\u0085.txt', /control/],
    ['bidi override (Trojan Source)', 'invoice\u202Efdp.exe', /bidirectional/],
    ['bidi isolate', 'a\u2066b.txt', /bidirectional/],
    ['zero-width BOM', '\ufeffindex.html', /bidirectional/],
    ['invalid UTF-8 with bit 11', Buffer.from([0x61, 0xc3, 0x28, 0x2e]), /invalid UTF-8/],
    ['overlong UTF-8 dot-dot', Buffer.from([0xc0, 0xae, 0xc0, 0xae, 0x2f, 0x78]), /invalid UTF-8/],
  ];
  // Each unsafe name is a defect of its own entry: hidden (listed nowhere, NOT_FOUND), the rest serves.
  for (const [label, name, why] of bad) {
    it(`hides the entry: ${label}`, async () => {
      const utf8 = name instanceof Uint8Array;
      const { zip, archive } = mount(
        makeZip({
          entries: [
            { name: 'ok.txt', data: 'fine' },
            { name, data: 'x', ...(utf8 ? { flags: 0x800, utf8: true } : {}) },
          ],
        }),
      );
      const index = await zip.index(archive);
      assert.deepEqual([...index.files.keys()], ['ok.txt']);
      assert.deepEqual([...index.dirs], ['']);
      assert.equal(index.refused.length, 1);
      assert.match(index.refused[0]!.reason, why);
      assert.equal((await readAll(await zip.open(`${archive}/ok.txt`))).toString(), 'fine');
    });
  }

  it('validates the Unicode Path extra name that is used, not the harmless header name', async () => {
    const header = Buffer.from('harmless.txt');
    const { zip, archive } = mount(makeZip({ entries: [{ name: header, data: 'x', extraCd: unicodePath(header, '../../evil.txt') }] }));
    const index = await zip.index(archive);
    assert.equal(index.files.size, 0);
    assert.match(index.refused[0]!.reason, /segment/);
  });

  it('ignores a Unicode Path extra whose CRC does not match the header name', async () => {
    const header = Buffer.from('real.txt');
    const stale = unicodePath(Buffer.from('other.txt'), 'fake.txt');
    const { zip, archive } = mount(makeZip({ entries: [{ name: header, data: 'r', extraCd: stale }] }));
    assert.deepEqual(
      [...(await zip.index(archive)).entries()].map((e) => e.name),
      ['real.txt'],
    );
  });

  it('reads names without bit 11 as UTF-8 from Unix hosts (Info-ZIP on Linux) when valid, else as CP437', async () => {
    const raw = Buffer.from('caf\u00e9.txt');
    const names = async (madeBy: number): Promise<string[]> => {
      const { zip, archive } = mount(makeZip({ entries: [{ name: raw, data: 'x', utf8: false, madeBy }] }));
      return [...(await zip.index(archive)).entries()].map((e) => e.name);
    };
    assert.deepEqual(await names(0x031e), ['caf\u00e9.txt']); // Unix
    assert.deepEqual(await names(0x131e), ['caf\u00e9.txt']); // OS X
    assert.deepEqual(await names(0x0014), ['caf\u251c\u2310.txt']); // MS-DOS: CP437, as APPNOTE says
    const latin1 = Buffer.from([0x63, 0x61, 0x66, 0xe9]); // not valid UTF-8: CP437 even from Unix
    const { zip, archive } = mount(makeZip({ entries: [{ name: latin1, data: 'x', utf8: false, madeBy: 0x031e }] }));
    assert.deepEqual(
      [...(await zip.index(archive)).entries()].map((e) => e.name),
      ['caf\u0398'],
    );
  });

  it('limits name length', async () => {
    // Over maxNameLength is a name defect like the others: that entry is hidden, the archive serves.
    const { zip, archive } = mount(
      makeZip({
        entries: [
          { name: `${'a'.repeat(300)}.txt`, data: 'x' },
          { name: 'ok', data: 'y' },
        ],
      }),
      { maxNameLength: 200 },
    );
    const index = await zip.index(archive);
    assert.deepEqual([...index.files.keys()], ['ok']);
    assert.deepEqual(
      index.refused.map((r) => r.reason),
      ['too long'],
    );
  });

  it('accepts ordinary odd names: spaces, unicode, dots inside, leading dots, colons after the first segment', async () => {
    const names = ['snow \u2603/flake.txt', 'caf\u00e9.txt', 'a..b.txt', '.well-known/x', 'time/12:30.json', '\u4e03.txt', 'no_ext'];
    const { zip, archive } = mount(makeZip({ entries: names.map((name) => ({ name, data: name })) }));
    const index = await zip.index(archive);
    assert.deepEqual([...index.entries()].map((e) => e.name).sort(), [...names].sort());
    for (const name of names) assert.equal((await readEntry(makeZip({ entries: [{ name, data: name }] }), name)).toString(), name);
  });
});

describe('duplicates and prototype keys', () => {
  it('refuses two files with one name', async () => {
    await expectIndexError(
      {
        entries: [
          { name: 'a.txt', data: '1' },
          { name: 'b.txt', data: '2' },
          { name: 'a.txt', data: '3' },
        ],
      },
      'CORRUPT_ARCHIVE',
      /entry 2: duplicate name/,
    );
  });
  it('allows a repeated directory entry', async () => {
    const { zip, archive } = mount(
      makeZip({
        entries: [
          { name: 'd/', data: '' },
          { name: 'd/x', data: 'x' },
          { name: 'd/', data: '' },
        ],
      }),
    );
    assert.equal((await zip.stat(`${archive}/d`)).type, 'directory');
  });
  it('treats names that differ only by case or Unicode normalisation as distinct', async () => {
    const spec = {
      entries: [
        { name: 'A.txt', data: 'upper' },
        { name: 'a.txt', data: 'lower' },
      ],
    };
    assert.equal((await readEntry(spec, 'A.txt')).toString(), 'upper');
    assert.equal((await readEntry(spec, 'a.txt')).toString(), 'lower');
  });
  it('keeps __proto__, constructor and friends as ordinary names', async () => {
    const names = ['__proto__', 'constructor', 'prototype', 'hasOwnProperty', 'valueOf'];
    const spec = { entries: names.map((name) => ({ name, data: `is ${name}` })) };
    for (const name of names) assert.equal((await readEntry(spec, name)).toString(), `is ${name}`);
  });
});

describe('overlap (non-recursive zip bombs)', () => {
  it('refuses many central records sharing one local header (full overlap)', async () => {
    const kernel = deflateRawSync(Buffer.alloc(1 << 20));
    const good = makeZip({ entries: [{ name: 'k', data: Buffer.alloc(1 << 20), stored: kernel, method: 8 }] });
    // Re-point extra central records at the same local header.
    const cdOffset = good.readUInt32LE(good.length - 6);
    const cd = good.subarray(cdOffset, good.length - 22);
    const records = Array.from({ length: 10 }, (_, i) => {
      const r = Buffer.from(cd);
      r[46] = 0x61 + i; // a different one-letter name each
      return r;
    });
    const all = Buffer.concat(records);
    const bomb = Buffer.concat([good.subarray(0, cdOffset), all, endRecord({ count: 10, cdSize: all.length, cdOffset })]);
    await expectIndexError(bomb, 'CORRUPT_ARCHIVE', /overlap/);
  });

  it('refuses an entry whose data runs into the next local header (quoted overlap)', async () => {
    const a = makeZip({
      entries: [
        { name: 'a', data: 'aaaa', method: 0 },
        { name: 'b', data: 'bbbb', method: 0 },
      ],
    });
    const cdOffset = a.readUInt32LE(a.length - 6);
    const patched = Buffer.from(a);
    // Entry a claims 10 bytes of data (stored): its 4 and 6 of b's local header.
    patched.writeUInt32LE(10, cdOffset + 20);
    patched.writeUInt32LE(10, cdOffset + 24);
    await expectIndexError(patched, 'CORRUPT_ARCHIVE', /overlap/);
  });

  it('detects the exact overlap at open, using the local extra length the central directory does not show', async () => {
    // The local header's extra field pushes the data past the next header.
    const spec: ArchiveSpec = {
      entries: [
        { name: 'a', data: 'aaaa', method: 0, extraLocal: extra(0xcafe, Buffer.alloc(40)) },
        { name: 'b', data: 'b', method: 0 },
      ],
    };
    const bytes = makeZip(spec);
    // Move b's header to 4 bytes after a's data would start if the extra were not there.
    const cdOffset = bytes.readUInt32LE(bytes.length - 6);
    const cd = Buffer.from(bytes.subarray(cdOffset, bytes.length - 22));
    const bRecord = cd.indexOf(Buffer.from([0x50, 0x4b, 1, 2]), 1);
    cd.writeUInt32LE(30 + 1 + 4, bRecord + 42);
    const forged = Buffer.concat([bytes.subarray(0, cdOffset), cd, endRecord({ count: 2, cdSize: cd.length, cdOffset })]);
    const { zip, archive } = mount(forged);
    await assert.rejects(zip.open(`${archive}/a`), (err: unknown) => FopError.is(err, 'CORRUPT_ARCHIVE'));
  });
});

describe('local headers must agree with the central directory', () => {
  it('signature', async () => {
    const bytes = makeZip({ entries: [{ name: 'x.txt', data: 'hello' }] });
    bytes.writeUInt32LE(0x04034b51, 0);
    const { zip, archive } = mount(bytes);
    await assert.rejects(zip.open(`${archive}/x.txt`), /invalid local file header signature/);
  });
  const c = 'central.txt';
  const mismatch: [string, ArchiveSpec, RegExp][] = [
    ['name of another length', { entries: [{ name: c, data: 'x', local: { name: Buffer.from('local-name.txt') } }] }, /name/],
    ['name of the same length', { entries: [{ name: c, data: 'x', local: { name: Buffer.from('centrax.txt') } }] }, /name/],
    ['method', { entries: [{ name: c, data: 'xxxxxxxx', method: 8, local: { method: 0 } }] }, /method/],
    ['encryption flag', { entries: [{ name: c, data: 'x', local: { flags: 1 } }] }, /encryption/],
    ['CRC without a descriptor', { entries: [{ name: c, data: 'x', local: { crc: 1234 } }] }, /CRC/],
    ['sizes without a descriptor', { entries: [{ name: c, data: 'xyz', method: 0, local: { usize: 99, csize: 99 } }] }, /sizes/],
  ];
  for (const [label, spec, why] of mismatch) {
    it(label, async () => {
      const err = await entryError(spec, c);
      assert.equal(err.code, 'CORRUPT_ARCHIVE');
      assert.match(err.message, why);
    });
  }
  it('takes CRC and sizes from the central directory when a data descriptor lies', async () => {
    const data = prose(3000);
    const spec = { entries: [{ name: 'd.txt', data, descriptor: { crc: 1, csize: 2, usize: 3 } }] };
    assert.ok((await readEntry(spec, 'd.txt')).equals(data));
    assert.ok(gunzipSync(await readEntry(spec, 'd.txt', FopFlags.COMPR_ACCEPTABLE_GZIP)).equals(data));
  });
});

describe('end records', () => {
  const good = (): Buffer => makeZip({ entries: [{ name: 'a.txt', data: 'a' }] });

  it('refuses an ambiguous archive: a second consistent end record hidden in the comment', async () => {
    const inner = makeZip({ entries: [{ name: 'EVIL.txt', data: 'evil' }] });
    // The real archive's comment carries a whole fake archive whose end record ends the file.
    const real = good();
    const withComment = Buffer.concat([real.subarray(0, real.length - 2), Buffer.from([inner.length & 0xff, inner.length >> 8]), inner]);
    const err = await indexError(withComment);
    assert.ok(err && err.code === 'CORRUPT_ARCHIVE', String(err));
  });

  it('reads an archive comment, even one containing "PK\\5\\6"', async () => {
    const bytes = makeZip({ entries: [{ name: 'a.txt', data: 'a' }], comment: 'see PK\u0005\u0006 inside' });
    const { zip, archive } = mount(bytes);
    const index = await zip.index(archive);
    assert.equal(Buffer.from(index.end.comment).toString(), 'see PK\u0005\u0006 inside');
  });

  it('refuses trailing data after the end record (documented policy)', async () => {
    await expectIndexError(Buffer.concat([good(), Buffer.from('junk')]), 'CORRUPT_ARCHIVE', /data after the end/);
  });

  it('reads an archive with a prepended stub (offsets not adjusted) and one with adjusted offsets', async () => {
    const stub = noise(4096, 7);
    const unadjusted = makeZip({
      entries: [
        { name: 'a.txt', data: prose(1000) },
        { name: 'b.bin', data: noise(100), method: 0 },
      ],
      prefix: stub,
    });
    assert.ok((await readEntry(unadjusted, 'a.txt')).equals(prose(1000)));
    assert.ok((await readEntry(unadjusted, 'b.bin')).equals(noise(100)));
    const plain = makeZip({ entries: [{ name: 'a.txt', data: prose(1000) }] });
    const cdOffset = plain.readUInt32LE(plain.length - 6);
    const adjusted = Buffer.concat([stub, plain]);
    adjusted.writeUInt32LE(cdOffset + stub.length, adjusted.length - 6);
    const cd = stub.length + cdOffset;
    adjusted.writeUInt32LE(stub.length, cd + 42); // the entry's offset, adjusted too
    assert.ok((await readEntry(adjusted, 'a.txt')).equals(prose(1000)));
  });

  it('accepts entry counts stored modulo 65,536 by writers without zip64 (70,000 entries)', async () => {
    const bytes = makeManyEntryZip(70_000);
    // Rewrite as a non-zip64 archive whose 16-bit count wrapped.
    const cdSize = bytes.readUInt32LE(bytes.length - 22 + 12);
    const cdOffset = bytes.readUInt32LE(bytes.length - 22 + 16);
    const noZip64 = Buffer.concat([bytes.subarray(0, cdOffset + cdSize), endRecord({ count: 70_000 % 65_536, cdSize, cdOffset })]);
    const { zip, archive } = mount(noZip64);
    const index = await zip.index(archive);
    assert.equal(index.files.size, 70_000);
    assert.equal((await readEntry(noZip64, 'd69/f0069999.txt')).toString(), 'd69/f0069999.txt');
  });

  it('refuses a count that disagrees with the directory beyond the 16-bit wrap', async () => {
    await expectIndexError(
      {
        entries: [
          { name: 'a', data: 'a' },
          { name: 'b', data: 'b' },
        ],
        eocd: { count: 1 },
      },
      'CORRUPT_ARCHIVE',
      /holds 2 entries/,
    );
  });

  it('refuses split archives and end records pointing outside the file', async () => {
    await expectIndexError({ entries: [{ name: 'a', data: 'a' }], eocd: { disk: 1 } }, 'UNSUPPORTED_ARCHIVE', /multi-disk/);
    await expectIndexError({ entries: [{ name: 'a', data: 'a' }], eocd: { cdOffset: 0x7fffffff } }, 'CORRUPT_ARCHIVE', /offset|central directory/);
    await expectIndexError({ entries: [{ name: 'a', data: 'a' }], eocd: { cdSize: 0x7fffffff } }, 'CORRUPT_ARCHIVE', /size exceeds/);
  });

  it('refuses non-archives and tiny files with a clear error', async () => {
    for (const junk of [Buffer.alloc(0), Buffer.from('PK'), Buffer.from('<html>not a zip</html>'), noise(100_000, 3)]) {
      await expectIndexError(junk, 'CORRUPT_ARCHIVE', /end of central directory record not found/);
    }
  });

  it('refuses zip64 records that lie: absurd counts, huge sizes, a missing zip64 value', async () => {
    await expectIndexError(
      { entries: [{ name: 'a', data: 'a' }], zip64: true, zip64Eocd: { count: 2 ** 40 } },
      'CORRUPT_ARCHIVE',
      /more than the central directory can hold/,
    );
    await expectIndexError({ entries: [{ name: 'a', data: 'a' }], zip64: true, zip64Eocd: { offset: 3 } }, 'CORRUPT_ARCHIVE', /zip64 end/);
  });
});

describe('entry data: never short, never wrong, never unbounded', () => {
  it('stored CRC mismatch rejects the read that completes the entry, and only that read', async () => {
    const data = noise(200_000, 9);
    const { zip, archive } = mount(makeZip({ entries: [{ name: 's.bin', data, method: 0, cd: { crc: 42 }, local: { crc: 42 } }] }));
    const fd = await zip.open(`${archive}/s.bin`);
    const first = Buffer.alloc(150_000);
    assert.equal(await fd.read(first), 150_000);
    await assert.rejects(fd.read(Buffer.alloc(100_000)), /CRC-32 mismatch/);
    await fd.close();
  });

  it('deflated CRC mismatch: the final bytes are held back until zlib has checked the trailer', async () => {
    const data = prose(1_500_000); // above the inflate cache's entry limit: streamed, checked at the end
    const { zip, archive } = mount(makeZip({ entries: [{ name: 'd.txt', data, cd: { crc: 42 }, local: { crc: 42 } }] }));
    const fd = await zip.open(`${archive}/d.txt`);
    let delivered = 0;
    await assert.rejects(
      (async () => {
        const buf = Buffer.alloc(65536);
        for (;;) {
          const n = await fd.read(buf);
          if (n === 0) return;
          delivered += n;
        }
      })(),
      /CRC-32 mismatch/,
    );
    assert.ok(delivered < data.length, `all ${data.length} bytes were delivered before the CRC failed`);
    await fd.close();
  });

  it('a declared size 4 GiB larger than the data (ISIZE still matches) is caught by counting', async () => {
    const data = prose(1000);
    const err = await entryError({ entries: [{ name: 'x.txt', data, cd: { usize: data.length + 2 ** 32 }, zip64: true }] }, 'x.txt', 0, {
      maxRatio: Infinity,
      maxUncompressedSize: Infinity,
    });
    assert.equal(err.code, 'CORRUPT_ARCHIVE');
  });

  it('a declared size smaller than the data is an error as soon as it is exceeded', async () => {
    const data = prose(100_000);
    const err = await entryError({ entries: [{ name: 'x.txt', data, cd: { usize: 1000 }, local: { usize: 1000 } }] }, 'x.txt');
    assert.match(err.message, /exceeds the declared|disagrees/);
  });

  it('junk after the end of the deflate stream, inside the entry, is refused', async () => {
    const data = prose(5000);
    const stored = Buffer.concat([deflateRawSync(data), Buffer.from('trailing junk inside csize')]);
    const err = await entryError({ entries: [{ name: 'j.txt', data, stored, method: 8 }] }, 'j.txt');
    assert.equal(err.code, 'CORRUPT_ARCHIVE');
  });

  it('a truncated deflate stream is refused', async () => {
    const data = prose(50_000);
    const full = deflateRawSync(data);
    const err = await entryError({ entries: [{ name: 't.txt', data, stored: full.subarray(0, full.length - 100), method: 8 }] }, 't.txt');
    assert.equal(err.code, 'CORRUPT_ARCHIVE');
  });

  it('a stored entry whose sizes disagree is refused', async () => {
    const err = await entryError({ entries: [{ name: 's', data: 'abc', method: 0, cd: { usize: 4 }, local: { usize: 4 } }] }, 's');
    assert.match(err.message, /sizes disagree/);
  });

  it('an archive truncated after indexing fails the read, not silently short', async () => {
    const data = noise(300_000, 5);
    const bytes = makeZip({ entries: [{ name: 'n.bin', data, method: 0 }] });
    const mem = new MemFops({ '/t.zip': bytes });
    const zip = new ZipFops({ source: mem });
    const fd = await zip.open('/t.zip/n.bin');
    // Replace the archive's bytes in place with a shorter buffer, as a truncate would.
    mem.set('/t.zip', bytes.subarray(0, 1000));
    const got = await readAll(fd).catch((err: unknown) => err);
    // The open handle reads from the old bytes (like an unlinked file); a new open sees the new, broken archive.
    assert.ok(got instanceof Buffer && got.equals(data));
    await fd.close();
    await assert.rejects(zip.open('/t.zip/n.bin'), (err: unknown) => FopError.is(err, 'CORRUPT_ARCHIVE'));
  });

  it('limits: entry count, uncompressed size and ratio', async () => {
    await expectIndexError(makeManyEntryZip(200), 'LIMIT_EXCEEDED', /more than 100 entries/, { maxEntries: 100 });
    const big = { entries: [{ name: 'big.txt', data: prose(3_000_000) }] };
    assert.equal((await entryError(big, 'big.txt', 0, { maxUncompressedSize: 1_000_000 })).code, 'LIMIT_EXCEEDED');
    assert.equal((await entryError(big, 'big.txt', FopFlags.COMPR_ACCEPTABLE_GZIP, { maxUncompressedSize: 1_000_000 })).code, 'LIMIT_EXCEEDED');
    const zeros = { entries: [{ name: 'z.bin', data: Buffer.alloc(4_000_000) }] };
    // ratioMinSize lowered so a 4 MB entry exercises the ratio check (the default applies it above 64 MiB only).
    assert.equal((await entryError(zeros, 'z.bin', 0, { maxRatio: 100, ratioMinSize: 1024 * 1024 })).code, 'LIMIT_EXCEEDED');
    assert.equal((await readEntry(zeros, 'z.bin', 0, { maxRatio: 2000 })).length, 4_000_000);
  });

  it('unsupported methods and encryption are clear errors, never garbage', async () => {
    for (const method of [1, 6, 9, 12, 14, 93, 95, 98, 0x1234]) {
      const err = await entryError({ entries: [{ name: 'm', data: 'xxxx', stored: Buffer.from('xxxx'), method }] }, 'm', FopFlags.COMPR_ACCEPTABLE_GZIP);
      assert.equal(err.code, 'UNSUPPORTED_ENTRY');
      assert.match(err.message, new RegExp(`method ${method}`));
    }
    for (const flags of [0x1, 0x41, 0x2001]) {
      const err = await entryError({ entries: [{ name: 'e', data: prose(100), flags }] }, 'e', FopFlags.COMPR_ACCEPTABLE_GZIP);
      assert.match(err.message, /encrypted/);
    }
  });

  it('small deflated entries are verified completely before the first byte (the inflate cache)', async () => {
    const data = prose(200_000);
    const bad = { entries: [{ name: 'd.txt', data, cd: { crc: 42 }, local: { crc: 42 } }] };
    const err = await entryError(bad, 'd.txt');
    assert.match(err.message, /CRC-32 mismatch/);
    const { zip, archive } = mount(makeZip({ entries: [{ name: 'd.txt', data }] }));
    const fds = await Promise.all([1, 2, 3].map(() => zip.open(`${archive}/d.txt`)));
    const bodies = await Promise.all(fds.map((fd) => readAll(fd)));
    assert.ok(bodies.every((b) => b.equals(data)));
    assert.ok(
      fds.every((fd) => typeof fd.readBuffer === 'function'),
      'served from memory, zero-copy',
    );
    await Promise.all(fds.map((fd) => fd.close()));
  });

  it('empty entries read as empty, whatever their method', async () => {
    for (const method of [0, 8]) {
      const stored = method === 8 ? deflateRawSync(Buffer.alloc(0)) : Buffer.alloc(0);
      assert.equal((await readEntry({ entries: [{ name: 'e', data: '', stored, method }] }, 'e', FopFlags.COMPR_ACCEPTABLE_GZIP)).length, 0);
    }
  });
});

describe('raw headers from the writer are the ones the reader checks', () => {
  it('round-trips a hand-assembled archive', async () => {
    const name = Buffer.from('hand.txt');
    const data = Buffer.from('assembled by hand');
    const { date, time } = dosDateTime(new Date(Date.UTC(2020, 5, 15, 12, 30, 10)));
    const f = { flags: 0, method: 0, time, date, crc: 0, csize: data.length, usize: data.length, name, extra: Buffer.alloc(0) };
    const { crc32 } = await import('node:zlib');
    const withCrc = { ...f, crc: crc32(data) };
    const lh = localHeader(withCrc);
    const cd = centralHeader({ ...withCrc, madeBy: 0x0314, externalAttr: 0, offset: 0 });
    const bytes = Buffer.concat([lh, data, cd, endRecord({ count: 1, cdSize: cd.length, cdOffset: lh.length + data.length })]);
    const { zip, archive } = mount(bytes);
    const fd = await zip.open(`${archive}/hand.txt`);
    assert.equal(fd.modTime, Date.UTC(2020, 5, 15, 12, 30, 10));
    assert.ok((await readAll(fd)).equals(data));
    await fd.close();
  });
});
