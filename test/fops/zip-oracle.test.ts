/**
 * yauzl 3.4.0 as an oracle: on every archive both readers accept, the index
 * must agree with yauzl on names, sizes, CRCs, methods, modification times
 * and, where both decode an entry, its bytes. Where the two disagree about
 * accepting something, the difference must be one of the documented ones.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import yauzl from 'yauzl';
import { FopError, ZipFops, readAll, type ZipIndex } from '../../src/index.js';
import { cp437 } from '../../src/fops/zip/names.js';
import { fixture, noise, prose, rmTree, tmpDir } from '../helpers/fixtures.js';
import { extendedTimestamp, extra, makeZip, unicodePath, u32 } from '../helpers/zip-writer.js';

interface OracleEntry {
  readonly name: string;
  readonly size: number;
  readonly compressedSize: number;
  readonly crc32: number;
  readonly method: number;
  readonly modTime: number;
  readonly bytes: Buffer | Error | undefined; // undefined: yauzl cannot decode (method, encryption)
}

function readWithYauzl(path: string): Promise<OracleEntry[] | Error> {
  return new Promise((resolve) => {
    yauzl.open(path, { lazyEntries: true, autoClose: false }, (err, zip) => {
      if (err) {
        resolve(err);
        return;
      }
      const out: OracleEntry[] = [];
      zip.on('error', (e: Error) => {
        zip.close();
        resolve(e);
      });
      zip.on('end', () => {
        zip.close();
        resolve(out);
      });
      zip.on('entry', (entry: yauzl.Entry) => {
        const base = {
          name: entry.fileName,
          size: entry.uncompressedSize,
          compressedSize: entry.compressedSize,
          crc32: entry.crc32,
          method: entry.compressionMethod,
          modTime: entry.getLastModDate({ timezone: 'UTC' }).getTime(),
        };
        if (entry.fileName.endsWith('/')) {
          zip.readEntry();
          return;
        }
        if (!entry.canDecodeFileData()) {
          out.push({ ...base, bytes: undefined });
          zip.readEntry();
          return;
        }
        zip.openReadStream(entry, (e, stream) => {
          if (e) {
            out.push({ ...base, bytes: e });
            zip.readEntry();
            return;
          }
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('error', (se: Error) => {
            out.push({ ...base, bytes: se });
            zip.readEntry();
          });
          stream.on('end', () => {
            out.push({ ...base, bytes: Buffer.concat(chunks) });
            zip.readEntry();
          });
        });
      });
      zip.readEntry();
    });
  });
}

/**
 * Archives yauzl accepts and we refuse, with the reason. All are refusals
 * the project makes on purpose.
 */
const weRefuse: Record<string, RegExp> = {
  'dup-exact.zip': /duplicate name/, // yauzl has no index, so it lists both
  'overlap-full.zip': /overlap|overflows/, // yauzl does not detect overlap bombs
  'eocd-count-too-low.zip': /declares 1/, // yauzl silently lists 1 of 3 entries
  'eocd-cdsize-wrong.zip': /./, // yauzl never checks the directory size
  'size-zip64-huge.zip': /2\^53/,
  'trunc-mid-data.zip': /./,
  // yauzl lists these and fails when reading; we refuse the archive when indexing.
  'csize-beyond-eof.zip': /overflows/,
  'failure__file_data_overflows_file_bounds_63_2147483647_308.zip': /overflows/,
  'failure__unexpected_EOF.zip': /overflows/,
};

/**
 * Archives both accept where we hide entries with unsafe names (listed nowhere, NOT_FOUND) that yauzl
 * lists: the entries yauzl lists and we do not must be exactly those in `index.refused`.
 */
const weHide = new Set([
  'name-nul.zip', // yauzl accepts NUL in names
  'name-control.zip', // and control characters
  'name-dot-empty.zip', // and empty/"." segments
  'success__sloppy-filenames.zip', // host 3 (Unix): unzip keeps the backslash; yauzl always turns it into a slash
  'failure__invalid_characters_in_fileName_a_txt.zip', // the same archive; yauzl refuses it only with strictFileNames
]);

/** Entries yauzl decodes and we refuse: the checks yauzl does not make. */
const weRefuseEntry: Record<string, RegExp> = {
  'crc-mismatch.zip/badcrc-deflate.txt': /CRC-32/, // yauzl never checks CRC-32
  'crc-mismatch.zip/badcrc-stored.txt': /CRC-32/,
  'lfh-name-mismatch.zip/central.txt': /local header name/, // yauzl ignores local names
  'lfh-method-size-mismatch.zip/m.txt': /local header/,
  'failure__too_many_bytes_in_the_stream_expected_82496_got_at_least_98304.zip/zeros.bin': /local header sizes/,
  'failure__not_enough_bytes_in_the_stream_expected_2048576_got_only_1000000.zip/zeros.bin': /local header sizes/,
  'ratio-256mib.zip/zeros.bin': /ratio/, // our bomb limit
  'size-lie-large.zip/liar-large.txt': /ratio/,
  'symlink-entry.zip/link': /symbolic link/, // yauzl returns the link target as content; we never serve links
};

async function compare(path: string, label: string, zip: ZipFops): Promise<'both' | 'neither' | 'we-refuse' | 'yauzl-refuses'> {
  const theirs = await readWithYauzl(path);
  let ours: ZipIndex;
  try {
    ours = await zip.index(path);
  } catch (err) {
    assert.ok(FopError.is(err), String(err));
    if (theirs instanceof Error) return 'neither';
    const why = weRefuse[label];
    assert.ok(why, `${label}: yauzl accepts it but we refuse: ${err.message}`);
    assert.match(err.message, why);
    return 'we-refuse';
  }
  if (theirs instanceof Error) return 'yauzl-refuses';
  // One deliberate difference: names from Unix hosts that are valid UTF-8
  // without bit 11 (Info-ZIP on Linux) are UTF-8 to us, as to unzip and
  // 7-Zip; yauzl reads them as CP437. Map our name to yauzl's view of its bytes.
  const asYauzlSees = new Map([...ours.entries()].map((e) => [cp437(Buffer.from(e.name, 'utf8')), e.name]));
  // Another: leading `./` segments are dropped, as unzip drops them; yauzl keeps them.
  const ourNameFor = (theirName: string): string => {
    const name = theirName.replace(/^(\.\/)+/, '');
    return ours.get(name) ? name : (asYauzlSees.get(name) ?? name);
  };
  const ourNames = [...ours.entries()].map((e) => e.name).sort();
  let listed = theirs;
  if (ours.refused.length > 0) {
    assert.ok(weHide.has(label), `${label}: we hide ${ours.refused.length} entries yauzl may list`);
    listed = theirs.filter((t) => ours.get(ourNameFor(t.name)));
    assert.equal(theirs.length - listed.length, ours.refused.length, `${label}: the entries yauzl lists and we do not are the ones we refused`);
  }
  assert.deepEqual(ourNames, listed.map((e) => ourNameFor(e.name)).sort(), `${label}: names`);
  for (const t of listed) {
    const name = ourNameFor(t.name);
    const o = ours.get(name)!;
    assert.equal(o.size, t.size, `${label}/${t.name}: size`);
    assert.equal(o.compressedSize, t.compressedSize, `${label}/${t.name}: compressed size`);
    assert.equal(o.crc32, t.crc32, `${label}/${t.name}: crc32`);
    assert.equal(o.method, t.method, `${label}/${t.name}: method`);
    assert.equal(o.modTime, t.modTime, `${label}/${t.name}: modification time`);
    if (t.bytes === undefined) continue;
    let mine: Buffer | FopError;
    try {
      const fd = await zip.open(`${path}/${name}`);
      try {
        mine = await readAll(fd);
      } finally {
        await fd.close();
      }
    } catch (err) {
      assert.ok(FopError.is(err), String(err));
      mine = err;
    }
    const key = `${label}/${t.name}`;
    if (mine instanceof Buffer && t.bytes instanceof Buffer) {
      assert.ok(mine.equals(t.bytes), `${key}: bytes differ from yauzl's`);
    } else if (mine instanceof Buffer) {
      assert.fail(`${key}: yauzl fails to read (${(t.bytes as Error).message}) but we return bytes`);
    } else if (t.bytes instanceof Buffer) {
      const why = weRefuseEntry[key];
      const message = (mine as FopError).message;
      assert.ok(why, `${key}: yauzl reads it but we fail: ${message}`);
      assert.match(message, why);
    }
  }
  return 'both';
}

function archivesIn(dir: string): string[] {
  return existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => /\.(zip|jar|war)$/i.test(f))
        .sort()
    : [];
}

describe('yauzl agrees with the index wherever both accept an archive', () => {
  const zip = new ZipFops();
  const tally: Record<string, number> = { both: 0, neither: 0, 'we-refuse': 0, 'yauzl-refuses': 0 };

  for (const folder of [['zip', 'generated'], ['zip', 'yauzl'], ['lws'], ['tools']]) {
    const dir = fixture(...folder);
    for (const file of archivesIn(dir)) {
      it(`${folder.join('/')}/${file}`, async () => {
        tally[await compare(join(dir, file), file, zip)]!++;
      });
    }
  }

  describe('archives from our own generator', () => {
    const dir = tmpDir();
    after(() => rmTree(dir));
    const cases: Record<string, Buffer> = {
      'mixed-methods.zip': makeZip({
        entries: [
          { name: 'a.txt', data: prose(10_000) },
          { name: 'b.bin', data: noise(5000), method: 0 },
          { name: 'empty.txt', data: '' },
          { name: 'dir/', data: '' },
          { name: 'dir/c.html', data: prose(777) },
        ],
        comment: 'an archive comment',
      }),
      'data-descriptors.zip': makeZip({
        entries: [
          { name: 'dd-deflate.txt', data: prose(4000), descriptor: {} },
          { name: 'dd-stored.txt', data: 'stored with a descriptor', method: 0, descriptor: { signature: false } },
        ],
      }),
      'zip64-entries.zip': makeZip({
        entries: [
          { name: 'z.txt', data: prose(3000), zip64: true },
          { name: 'y.txt', data: 'y', method: 0, zip64: true },
        ],
        zip64: true,
      }),
      'extended-timestamps.zip': makeZip({
        entries: [{ name: 'ut.txt', data: 'ut', extraCd: extendedTimestamp(1_700_000_000) }],
      }),
      'ntfs-timestamp.zip': makeZip({
        entries: [
          {
            name: 'ntfs.txt',
            data: 'n',
            extraCd: extra(0x000a, Buffer.concat([u32(0), Buffer.from([1, 0, 24, 0]), Buffer.from('00806e8a2b61da01', 'hex'), Buffer.alloc(16)])),
          },
        ],
      }),
      'cp437-names.zip': makeZip({ entries: [{ name: Buffer.from([0x80, 0x81, 0x61, 0x2e, 0x74, 0xe1]), data: 'cp437', utf8: false }] }),
      'unicode-path-extra.zip': makeZip({
        entries: [{ name: Buffer.from('plain.txt'), data: 'u', extraCd: unicodePath(Buffer.from('plain.txt'), 'r\u00e9sum\u00e9.txt') }],
      }),
      'utf8-flag.zip': makeZip({ entries: [{ name: 'snow \u2603/\u00e9t\u00e9.txt', data: 'summer' }] }),
      'unix-utf8-without-flag.zip': makeZip({ entries: [{ name: Buffer.from('caf\u00e9.txt'), data: 'unix', utf8: false, madeBy: 0x031e }] }),
      'dos-cp437-high-bytes.zip': makeZip({ entries: [{ name: Buffer.from('caf\u00e9.txt'), data: 'dos', utf8: false, madeBy: 0x0014 }] }),
    };
    for (const [name, bytes] of Object.entries(cases)) {
      it(name, async () => {
        const path = join(dir, name);
        writeFileSync(path, bytes);
        assert.equal(await compare(path, name, zip), 'both');
      });
    }
  });

  it('compared a real number of archives (the oracle ran)', () => {
    assert.ok(tally.both! >= 40, `only ${tally.both} archives were accepted by both readers`);
  });
});
