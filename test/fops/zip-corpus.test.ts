/**
 * Every archive of the shared corpus (test/fixtures/zip) against the result
 * its manifest asks of a safe reader. Each file has one row; a file without a
 * row fails the suite, so the corpus cannot grow untested.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { FopError, FopFlags, HttpRangeFops, ZipFops, createFopReadStream, readAll, type FopErrorCode } from '../../src/index.js';
import { fixture } from '../helpers/fixtures.js';
import { startRangeOrigin, type RangeOrigin } from '../helpers/range-origin.js';

type Outcome = 'ok' | FopErrorCode;

interface Row {
  /** What indexing the archive gives. */
  readonly index: Outcome;
  /** A fragment of the index error's message, when it fails. */
  readonly because?: RegExp;
  /** Expected file names (sorted), when the index opens. */
  readonly files?: readonly string[];
  /** How many entries are hidden for an unsafe name (default 0), when the index opens. */
  readonly refused?: number;
  /** Per-file result of opening and reading the identity form (default 'ok' for every file). */
  readonly read?: Readonly<Record<string, Outcome>>;
  /** Files expected to go out as gzip passthrough with a valid member. */
  readonly passthrough?: readonly string[];
  /** Files whose passthrough bytes a gzip client must reject (the archive lies; the client's check catches it). */
  readonly passthroughRejectedByClient?: readonly string[];
}

const generated: Record<string, Row> = {
  'ok-basic.zip': { index: 'ok', files: ['dir/nested.txt', 'hello.txt', 'stored.txt'], passthrough: ['hello.txt'] },
  'ok-empty.zip': { index: 'ok', files: [] },
  // Unsafe names hide their entries only; the rest of the archive serves.
  'name-dotdot.zip': { index: 'ok', files: ['ok.txt'], refused: 2 },
  'name-absolute.zip': { index: 'ok', files: [], refused: 6 },
  'name-backslash.zip': { index: 'ok', files: [], refused: 3 }, // made on Unix (host 3): the backslash is not converted
  'name-nul.zip': { index: 'ok', files: [], refused: 2 },
  'name-control.zip': { index: 'ok', files: [], refused: 6 },
  'name-dot-empty.zip': { index: 'ok', files: ['a.txt'], refused: 5 }, // './a.txt' is a.txt now (leading ./ dropped, as unzip does)
  'dup-exact.zip': { index: 'CORRUPT_ARCHIVE', because: /duplicate name/ },
  'dup-case-unicode.zip': { index: 'ok', files: ['README', 'caf\u00e9.txt', 'cafe\u0301.txt', 'readme'] },
  'name-proto.zip': { index: 'ok', files: ['__proto__', '__proto__/x.txt', 'constructor', 'hasOwnProperty', 'toString'] },
  'lfh-name-mismatch.zip': { index: 'ok', read: { 'central.txt': 'CORRUPT_ARCHIVE' } },
  'lfh-method-size-mismatch.zip': { index: 'ok', read: { 'm.txt': 'CORRUPT_ARCHIVE' } },
  'symlink-entry.zip': { index: 'ok', files: ['link'], read: { link: 'UNSUPPORTED_ENTRY' } },
  'dir-with-data.zip': { index: 'ok', files: [] },
  'overlap-full.zip': { index: 'CORRUPT_ARCHIVE' },
  'ratio-256mib.zip': { index: 'ok', read: { 'zeros.bin': 'LIMIT_EXCEEDED' } },
  'size-lie-large.zip': { index: 'ok', read: { 'liar-large.txt': 'LIMIT_EXCEEDED' } },
  'size-zip64-huge.zip': { index: 'CORRUPT_ARCHIVE', because: /larger than 2\^53/ },
  'csize-beyond-eof.zip': { index: 'CORRUPT_ARCHIVE', because: /overflows/ },
  'crc-mismatch.zip': {
    index: 'ok',
    read: { 'badcrc-deflate.txt': 'CORRUPT_ARCHIVE', 'badcrc-stored.txt': 'CORRUPT_ARCHIVE' },
    passthroughRejectedByClient: ['badcrc-deflate.txt'],
  },
  'datadesc-ok.zip': { index: 'ok', files: ['dd-ok.txt', 'dd-stored.txt'], passthrough: ['dd-ok.txt'] },
  'datadesc-crc-mismatch.zip': { index: 'ok', passthrough: ['dd-badcrc.txt'] },
  'datadesc-size-mismatch.zip': { index: 'ok', passthrough: ['dd-badsize.txt'] },
  'encrypted-flag.zip': { index: 'ok', read: { 'enc-flag-only.txt': 'UNSUPPORTED_ENTRY' } },
  'encrypted-strong.zip': { index: 'ok', read: { 'strong.txt': 'UNSUPPORTED_ENTRY' } },
  'encrypted-aes-method99.zip': { index: 'ok', read: { 'aes.txt': 'UNSUPPORTED_ENTRY' } },
  'infozip-zipcrypto.zip': { index: 'ok', read: { 'secret.txt': 'UNSUPPORTED_ENTRY' } },
  'methods-unsupported.zip': {
    index: 'ok',
    read: {
      'deflate64.bin': 'UNSUPPORTED_ENTRY',
      'bzip2.bin': 'UNSUPPORTED_ENTRY',
      'lzma.bin': 'UNSUPPORTED_ENTRY',
      'zstd.bin': 'UNSUPPORTED_ENTRY',
      'weird.bin': 'UNSUPPORTED_ENTRY',
    },
  },
  'trunc-eocd-missing.zip': { index: 'CORRUPT_ARCHIVE', because: /end of central directory record not found/ },
  'trunc-mid-cd.zip': { index: 'CORRUPT_ARCHIVE' },
  'trunc-mid-data.zip': { index: 'CORRUPT_ARCHIVE' },
  'trailing-junk.zip': { index: 'CORRUPT_ARCHIVE', because: /data after the end of central directory record/ },
  'eocd-comment-len-truncated.zip': { index: 'CORRUPT_ARCHIVE', because: /comment runs past the end/ },
  'prefix-sfx.zip': { index: 'ok', files: ['a.txt', 'b.txt'] },
  'eocd-count-too-high.zip': { index: 'CORRUPT_ARCHIVE', because: /declares 5 entries/ },
  'eocd-count-too-low.zip': { index: 'CORRUPT_ARCHIVE', because: /holds 3 entries but the end record declares 1/ },
  'eocd-cdsize-wrong.zip': { index: 'CORRUPT_ARCHIVE' },
  'eocd-cdoffset-oob.zip': { index: 'CORRUPT_ARCHIVE' },
  'multi-disk.zip': { index: 'UNSUPPORTED_ARCHIVE', because: /multi-disk/ },
  'extra-field-overrun.zip': { index: 'CORRUPT_ARCHIVE', because: /extra field length exceeds/ },
  'zip64-extra-unneeded.zip': { index: 'ok', files: ['not64.txt'] },
  'zip64-valid-small.zip': { index: 'ok', files: ['a.txt', 'b.txt'] },
  'zip64-locator-bad.zip': { index: 'CORRUPT_ARCHIVE', because: /invalid zip64 end of central directory record/ },
  'zip64-eocd-absurd-count.zip': { index: 'CORRUPT_ARCHIVE' },
  'infozip-zip64-stream.zip': { index: 'ok', files: ['-'], passthrough: ['-'] },
  'go-quine-r.zip': { index: 'ok', files: ['r/r.zip'], passthrough: ['r/r.zip'] },
};

const y = (reason: string): Row => ({ index: 'CORRUPT_ARCHIVE', because: new RegExp(reason) });
const yauzl: Record<string, Row> = {
  'failure__End_of_central_directory_record_signature_not_found_Either_not_a_zip_file_or_file_is_truncated.zip': y('not found'),
  'failure__End_of_central_directory_record_signature_not_found_Either_not_a_zip_file_or_file_is_truncated_1.zip': y('not found'),
  // What follows the end record is one zero byte: padding, accepted now (as Go, Python and unzip do).
  'failure__Invalid_comment_length_Expected_1_Found_0_Are_there_extra_bytes_at_the_end_of_the_file_Or_is_the_end_of_central_dir_signature_PK_in_the_com.zip': {
    index: 'ok',
    files: ['a.txt', 'b.txt'],
  },
  'failure__absolute_path_C_xt.zip': { index: 'ok', files: ['b.txt'], refused: 1 }, // the unsafe entry is hidden, b.txt serves
  'failure__absolute_path_atxt.zip': { index: 'ok', files: ['b.txt'], refused: 1 },
  'failure__compressed_uncompressed_size_mismatch_for_stored_file_2147483647_5.zip': y('overflows'),
  'failure__extra_field_length_exceeds_extra_field_buffer_size.zip': y('extra field length exceeds'),
  'failure__file_data_overflows_file_bounds_63_2147483647_308.zip': y('overflows'),
  'failure__invalid_central_directory_file_header_signature_0x1014b50.zip': y('invalid central directory file header signature'),
  'failure__invalid_characters_in_fileName_a_txt.zip': { index: 'ok', files: ['b.txt'], refused: 1 }, // host 3: backslash kept, entry hidden
  'failure__invalid_code_lengths_set.zip': { index: 'ok', read: { 'index.js': 'CORRUPT_ARCHIVE' }, passthroughRejectedByClient: ['index.js'] },
  'failure__invalid_local_file_header_signature_0x3034b50.zip': { index: 'ok', read: { 'b.txt': 'CORRUPT_ARCHIVE' } },
  'failure__invalid_relative_path_xt.zip': { index: 'ok', files: ['b.txt'], refused: 1 },
  'failure__invalid_zip64_end_of_central_directory_record_signature.zip': y('invalid zip64 end of central directory record'),
  'failure__multi-disk_zip_files_are_not_supported_found_disk_number_1.zip': { index: 'UNSUPPORTED_ARCHIVE', because: /multi-disk/ },
  // 2 MB declared is below ratioMinSize (64 MiB) now, so the lie is caught by the local header check instead.
  'failure__not_enough_bytes_in_the_stream_expected_2048576_got_only_1000000.zip': { index: 'ok', read: { 'zeros.bin': 'CORRUPT_ARCHIVE' } },
  'failure__strong_encryption_is_not_supported.zip': { index: 'ok', read: { 'a.txt': 'UNSUPPORTED_ENTRY' } },
  'failure__too_many_bytes_in_the_stream_expected_82496_got_at_least_98304.zip': { index: 'ok', read: { 'zeros.bin': 'CORRUPT_ARCHIVE' } },
  'failure__too_many_length_or_distance_symbols.zip': { index: 'ok', read: { 'index.js': 'CORRUPT_ARCHIVE' }, passthroughRejectedByClient: ['index.js'] },
  'failure__unexpected_EOF.zip': y('overflows'),
  'failure__unsupported_compression_method_1.zip': { index: 'ok', read: { 'b.txt': 'UNSUPPORTED_ENTRY' } },
  'failure__zip64_extended_information_extra_field_does_not_include_compressed_size.zip': y('does not include compressed size'),
  'failure__zip64_extended_information_extra_field_does_not_include_relative_header_offset.zip': y('does not include relative header offset'),
  'failure__zip64_extended_information_extra_field_does_not_include_uncompressed_size.zip': y('does not include uncompressed size'),
  'success__NtfsTimestamp.zip': { index: 'ok', files: ['a'] },
  'success__big-compression.zip': { index: 'ok', files: ['0x21000'], passthrough: ['0x21000'] },
  'success__big-uncompressed.zip': { index: 'ok', files: ['0x21000'] },
  'success__bogus-compression-method.zip': { index: 'ok', read: { 'index.js': 'UNSUPPORTED_ENTRY' } },
  'success__cygwin-info-zip.zip': { index: 'ok', files: ['a.txt', 'b.txt'] },
  'success__deflate.zip': { index: 'ok', files: ['index.js'], passthrough: ['index.js'] },
  'success__directories.zip': { index: 'ok', files: ['a/a.txt'] },
  'success__empty.zip': { index: 'ok', files: [] },
  'success__everything.zip': { index: 'ok' },
  'success__linux-info-zip.zip': { index: 'ok', files: ['a.txt', 'b.txt'] },
  // Deliberate: made on Unix (host 3), so the backslash is not a separator (unzip's rule; yauzl converts it): hidden.
  'success__sloppy-filenames.zip': { index: 'ok', files: ['b.txt'], refused: 1 },
  'success__streaming.zip': { index: 'ok', files: ['test1.txt', 'test2.txt'] },
  'success__traditional-encryption-and-compression.zip': { index: 'ok', read: { 'a.bin': 'UNSUPPORTED_ENTRY' } },
  'success__traditional-encryption-and-compression_deprecated.zip': { index: 'ok', read: { 'a.bin': 'UNSUPPORTED_ENTRY' } },
  'success__traditional-encryption.zip': { index: 'ok', read: { 'a.txt': 'UNSUPPORTED_ENTRY' } },
  'success__traditional-encryption_deprecated.zip': { index: 'ok', read: { 'a.txt': 'UNSUPPORTED_ENTRY' } },
  'success__unicode-path-extra-field.zip': { index: 'ok', files: ['\u4e03\u4e2a\u623f\u95f4.txt'] },
  'success__unicode.zip': {
    index: 'ok',
    files: ['Turmion K\u00e4til\u00f6t/Hoitovirhe/Rautaketju.mp3', 'Turmion K\u00e4til\u00f6t/Pirun nyrkki/Mist\u00e4 veri pakenee.mp3'],
  },
  'success__unix-epoch.zip': { index: 'ok', files: ['unix-epoch.txt'] },
  'success__windows-7-zip.zip': { index: 'ok', files: ['a.txt', 'b.txt'] },
  'success__windows-compressed-folder.zip': { index: 'ok', files: ['a.txt', 'b.txt'] },
  'success__zip64.zip': { index: 'ok', files: ['test1.txt', 'test2.txt'] },
  'wrong-entry-sizes__wrong-entry-sizes.zip': { index: 'ok', read: { 'a.txt': 'CORRUPT_ARCHIVE', 'b.txt': 'CORRUPT_ARCHIVE' } },
};

async function outcome(p: Promise<unknown>): Promise<Outcome> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    assert.ok(FopError.is(err), `expected a FopError, got ${String(err)}`);
    return err.code;
  }
}

/**
 * Runs `table` against the archives of `folder`: read from the disk, or (`remote`) the same files read
 * in place by Range requests from an HTTP origin, where every rule must hold the same.
 */
function runCorpus(folder: string, table: Record<string, Row>, remote = false): void {
  const dir = fixture('zip', folder);
  let zip = new ZipFops();
  // The path an archive has for `zip`: on the disk, or on the origin.
  const at = (file: string) => (remote ? `/${file}` : `${dir}/${file}`);
  if (remote) {
    let origin: RangeOrigin | undefined;
    let source: HttpRangeFops | undefined;
    before(async () => {
      const files = readdirSync(dir).filter((f) => f.endsWith('.zip'));
      origin = await startRangeOrigin(Object.fromEntries(files.map((f) => [`/${f}`, readFileSync(`${dir}/${f}`)])));
      source = new HttpRangeFops({ baseUrl: origin.url });
      zip = new ZipFops({ source });
    });
    after(async () => {
      await source?.close();
      await origin?.close();
    });
  }

  it('has a row for every archive in the folder, and a file for every row', () => {
    const present = readdirSync(dir)
      .filter((f) => f.endsWith('.zip'))
      .sort();
    assert.deepEqual(present, Object.keys(table).sort());
  });

  for (const [file, row] of Object.entries(table)) {
    it(`${file}: index ${row.index}`, async () => {
      const archive = at(file);
      if (row.index !== 'ok') {
        await assert.rejects(zip.index(archive), (err: unknown) => {
          assert.ok(FopError.is(err), String(err));
          assert.equal(err.code, row.index, err.message);
          if (row.because) assert.match(err.message, row.because);
          return true;
        });
        // Every entry path reports the same clear error, and the failure is cached, not re-parsed.
        const builds = zip.stats.indexBuilds;
        assert.equal(await outcome(zip.open(`${archive}/any.txt`)), row.index);
        assert.equal(zip.stats.indexBuilds, builds);
        return;
      }
      const index = await zip.index(archive);
      const names = [...index.entries()].map((e) => e.name).sort();
      if (row.files) assert.deepEqual(names, [...row.files].sort());
      assert.equal(index.refused.length, row.refused ?? 0, 'entries hidden for an unsafe name');
      for (const name of names) {
        const want = row.read?.[name] ?? 'ok';
        const got = await outcome(
          zip.open(`${archive}/${name}`).then(async (fd) => {
            try {
              const bytes = await readAll(fd);
              assert.equal(bytes.length, fd.length, `${name}: bytes read equal the length`);
            } finally {
              await fd.close();
            }
          }),
        );
        assert.equal(got, want, `${file}/${name}`);
        if (want === 'UNSUPPORTED_ENTRY' && index.get(name)!.encrypted) {
          // Encrypted bytes must never go out as gzip either.
          assert.equal(await outcome(zip.open(`${archive}/${name}`, FopFlags.COMPR_ACCEPTABLE_GZIP)), 'UNSUPPORTED_ENTRY');
        }
      }
      for (const name of row.passthrough ?? []) {
        const fd = await zip.open(`${archive}/${name}`, FopFlags.COMPR_ACCEPTABLE_GZIP);
        try {
          assert.ok(fd.flags & FopFlags.COMPR_IS_GZIP, `${name}: passthrough`);
          const gz = await readAll(fd);
          assert.equal(gz.length, index.get(name)!.compressedSize + 18);
          const plain = await zip.open(`${archive}/${name}`);
          const identity = await readAll(plain);
          await plain.close();
          assert.ok(gunzipSync(gz).equals(identity), `${name}: gunzip of passthrough equals the inflated entry`);
          // Byte for byte: lws's header, the entry's raw deflate bytes as stored, CRC-32 and ISIZE.
          const info = index.get(name)!;
          const row = index.files.get(name)!;
          const raw = readFileSync(`${dir}/${file}`).subarray(index.dataStart[row], index.dataStart[row]! + info.compressedSize);
          const trailer = Buffer.alloc(8);
          trailer.writeUInt32LE(info.crc32, 0);
          trailer.writeUInt32LE(info.size % 2 ** 32, 4);
          assert.ok(gz.equals(Buffer.concat([Buffer.from('1f8b0800000000000003', 'hex'), raw, trailer])), `${name}: header + raw bytes + trailer`);
        } finally {
          await fd.close();
        }
      }
      for (const name of row.passthroughRejectedByClient ?? []) {
        const fd = await zip.open(`${archive}/${name}`, FopFlags.COMPR_ACCEPTABLE_GZIP);
        const gz = await readAll(fd);
        await fd.close();
        assert.throws(() => gunzipSync(gz), `${name}: a gzip client detects the lie`);
      }
    });
  }
}

describe('shared corpus: generated hazards', () => runCorpus('generated', generated));
describe('shared corpus: yauzl 3.4.0 fixtures', () => runCorpus('yauzl', yauzl));
describe('shared corpus: generated hazards, read in place from an HTTP origin (HttpRangeFops)', () => runCorpus('generated', generated, true));
describe('shared corpus: yauzl 3.4.0 fixtures, read in place from an HTTP origin (HttpRangeFops)', () => runCorpus('yauzl', yauzl, true));

describe('corpus files under relaxed limits: the data checks themselves', () => {
  const relaxed = new ZipFops({ limits: { maxRatio: Infinity, maxUncompressedSize: 2 ** 40 } });
  const gen = (f: string) => fixture('zip', 'generated', f);
  const yz = (f: string) => fixture('zip', 'yauzl', f);

  it('size-lie-large.zip: a 13-byte entry declaring 4 GiB fails at the read that runs short, without allocating 4 GiB', async () => {
    const fd = await relaxed.open(`${gen('size-lie-large.zip')}/liar-large.txt`);
    assert.equal(fd.length, 0xfffffffe);
    const before = process.memoryUsage().rss;
    await assert.rejects(readAll(fd, 2 ** 33), (err: unknown) => FopError.is(err, 'CORRUPT_ARCHIVE') && /declared/.test(err.message));
    assert.ok(process.memoryUsage().rss - before < 64 * 1024 * 1024, 'no allocation from the declared size');
    await fd.close();
  });

  it('not_enough_bytes: a stream shorter than declared is an error (here its local header already disagrees), not short data', async () => {
    const path = `${yz('failure__not_enough_bytes_in_the_stream_expected_2048576_got_only_1000000.zip')}/zeros.bin`;
    const got = await outcome(relaxed.open(path).then(async (fd) => readAll(fd).finally(() => fd.close())));
    assert.equal(got, 'CORRUPT_ARCHIVE');
  });

  it('ratio-256mib.zip: with the ratio limit lifted, 256 MiB of zeros stream through bounded memory', async () => {
    const fd = await relaxed.open(`${gen('ratio-256mib.zip')}/zeros.bin`);
    let total = 0;
    let nonZero = 0;
    await new Promise<void>((resolve, reject) => {
      createFopReadStream(fd)
        .on('data', (c: Buffer) => {
          total += c.length;
          if (c.some((b) => b !== 0)) nonZero++;
        })
        .on('end', resolve)
        .on('error', reject);
    });
    assert.equal(total, 256 * 1024 * 1024);
    assert.equal(nonZero, 0);
  });

  it('go-quine-r.zip: the entry is the archive itself, entered only maxDepth (2) deep', async () => {
    const quine = readFileSync(gen('go-quine-r.zip'));
    // The same bytes at every level the depth limit lets a path reach.
    for (const path of ['r/r.zip', 'r/r.zip/r/r.zip', 'r/r.zip/r/r.zip/r/r.zip']) {
      const fd = await relaxed.open(`${gen('go-quine-r.zip')}/${path}`);
      const inner = await readAll(fd);
      await fd.close();
      assert.ok(inner.equals(quine), path);
    }
    assert.equal(await outcome(relaxed.open(`${gen('go-quine-r.zip')}/r/r.zip/r/r.zip/r/r.zip/r/r.zip`)), 'LIMIT_EXCEEDED');
  });

  it('symlink-entry.zip: a link is listed as such and stats as "other", never followed', async () => {
    const archive = gen('symlink-entry.zip');
    const index = await relaxed.index(archive);
    assert.equal(index.get('link')!.isSymlink, true);
    assert.equal((await relaxed.stat(`${archive}/link`)).type, 'other');
  });

  it('encrypted entries are listed as encrypted', async () => {
    for (const [file, name] of [
      ['encrypted-flag.zip', 'enc-flag-only.txt'],
      ['encrypted-strong.zip', 'strong.txt'],
      ['encrypted-aes-method99.zip', 'aes.txt'],
      ['infozip-zipcrypto.zip', 'secret.txt'],
    ] as const) {
      assert.equal((await relaxed.index(gen(file))).get(name)!.encrypted, true, file);
    }
  });

  it('dir-with-data.zip: a directory entry with data is a directory', async () => {
    const archive = gen('dir-with-data.zip');
    assert.equal((await relaxed.stat(`${archive}/d`)).type, 'directory');
    assert.equal(await outcome(relaxed.open(`${archive}/d`)), 'NOT_A_FILE');
  });

  it('name-proto.zip: prototype names are ordinary keys; a file that is also a directory prefix opens as the file', async () => {
    const archive = gen('name-proto.zip');
    for (const name of ['__proto__', 'constructor', 'hasOwnProperty', 'toString', '__proto__/x.txt']) {
      assert.equal((await relaxed.stat(`${archive}/${name}`)).type, 'file', name);
    }
  });
});
