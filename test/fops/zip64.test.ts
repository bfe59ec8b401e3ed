/**
 * zip64 at real scale without real files: a user backend serves a 5 GiB
 * archive whose entry data is computed from its offset, so entries and
 * offsets beyond 4 GiB are read through the same code as any archive.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { crc32, deflateRawSync, gunzipSync } from 'node:zlib';
import {
  FopError,
  FopFlags,
  FopHandle,
  MemFops,
  Vfs,
  ZipFops,
  assertFopPath,
  readAll,
  vfsSeekEnd,
  vfsSeekSet,
  type FileOps,
  type FopFd,
} from '../../src/index.js';
import { prose } from '../helpers/fixtures.js';
import { centralHeader, dosDateTime, endRecord, extra, localHeader, makeManyEntryZip, u64, zip64EndRecord, zip64Locator } from '../helpers/zip-writer.js';

const GiB = 1024 ** 3;

/** The byte at offset `i` of the huge entry: cheap, and different across every 4 GiB boundary. */
function patternByte(i: number): number {
  return (i * 31 + Math.floor(i / 4096) + Math.floor(i / 2 ** 32) * 7) & 0xff;
}

function pattern(start: number, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let k = 0; k < length; k++) out[k] = patternByte(start + k);
  return out;
}

type Segment = { readonly at: number; readonly bytes: Uint8Array } | { readonly at: number; readonly length: number; readonly generated: true };

/** A read-only file made of literal byte segments and one generated run. */
class SyntheticFile {
  readonly size: number;
  readonly #segments: Segment[];
  reads = 0;
  constructor(segments: Segment[]) {
    this.#segments = segments;
    const last = segments[segments.length - 1]!;
    this.size = last.at + ('bytes' in last ? last.bytes.length : last.length);
  }
  readAt(buf: Uint8Array, position: number): number {
    this.reads++;
    let done = 0;
    while (done < buf.length && position + done < this.size) {
      const p = position + done;
      const seg = this.#segments.find((s) => p >= s.at && p < s.at + ('bytes' in s ? s.bytes.length : s.length))!;
      const segLen = 'bytes' in seg ? seg.bytes.length : seg.length;
      const n = Math.min(buf.length - done, seg.at + segLen - p);
      if ('bytes' in seg) buf.set(seg.bytes.subarray(p - seg.at, p - seg.at + n), done);
      else buf.set(pattern(p - seg.at, n), done);
      done += n;
    }
    return done;
  }
}

class SyntheticHandle extends FopHandle {
  readonly #file: SyntheticFile;
  constructor(fops: FileOps, path: string, file: SyntheticFile) {
    super(fops, path, { length: file.size, flags: FopFlags.VIRTUAL | FopFlags.MOD_TIME_VALID, modTime: Date.UTC(2024, 0, 1) });
    this.#file = file;
  }
  protected readImpl(buf: Uint8Array): Promise<number> {
    return Promise.resolve(this.#file.readAt(buf, this.pos));
  }
  readAt(buf: Uint8Array, position: number): Promise<number> {
    return Promise.resolve(this.#file.readAt(buf, position));
  }
}

/** A user backend holding one synthetic file. */
class SyntheticFops implements FileOps {
  constructor(
    readonly path: string,
    readonly file: SyntheticFile,
  ) {}
  // eslint-disable-next-line @typescript-eslint/require-await -- like every backend, a bad path or missing file must reject, not throw
  async open(path: string): Promise<FopFd> {
    assertFopPath(path, 'open');
    if (path !== this.path) throw new FopError('NOT_FOUND', 'open', path);
    return new SyntheticHandle(this, path, this.file);
  }
}

const HUGE = 5 * GiB + 123; // one stored entry larger than 4 GiB
const small = prose(200_000);
const smallDeflated = deflateRawSync(small);

/** huge.bin (stored, 5 GiB) then small.txt (deflated, its header beyond 4 GiB), all with zip64 fields. */
function buildHugeArchive(): SyntheticFile {
  const { date, time } = dosDateTime(new Date(Date.UTC(2024, 0, 2, 3, 4, 6)));
  const hugeName = Buffer.from('huge.bin');
  const smallName = Buffer.from('dir/small.txt');
  const hugeCrc = 0x12345678; // never checked: no test reads all 5 GiB sequentially
  const lfh1 = localHeader({
    flags: 0,
    method: 0,
    time,
    date,
    crc: hugeCrc,
    csize: 0xffffffff,
    usize: 0xffffffff,
    name: hugeName,
    extra: extra(1, Buffer.concat([u64(HUGE), u64(HUGE)])),
  });
  const data1At = lfh1.length;
  const lfh2At = data1At + HUGE;
  const lfh2 = localHeader({
    flags: 0,
    method: 8,
    time,
    date,
    crc: crc32(small),
    csize: smallDeflated.length,
    usize: small.length,
    name: smallName,
    extra: Buffer.alloc(0),
  });
  const data2At = lfh2At + lfh2.length;
  const cdAt = data2At + smallDeflated.length;
  const cd = Buffer.concat([
    centralHeader({
      madeBy: 0x031e,
      externalAttr: 0,
      flags: 0,
      method: 0,
      time,
      date,
      crc: hugeCrc,
      csize: 0xffffffff,
      usize: 0xffffffff,
      name: hugeName,
      offset: 0,
      extra: extra(1, Buffer.concat([u64(HUGE), u64(HUGE)])),
    }),
    centralHeader({
      madeBy: 0x031e,
      externalAttr: 0,
      flags: 0,
      method: 8,
      time,
      date,
      crc: crc32(small),
      csize: smallDeflated.length,
      usize: small.length,
      name: smallName,
      offset: 0xffffffff,
      extra: extra(1, u64(lfh2At)),
    }),
  ]);
  const z64At = cdAt + cd.length;
  const tail = Buffer.concat([
    zip64EndRecord({ count: 2, cdSize: cd.length, cdOffset: cdAt }),
    zip64Locator(z64At),
    endRecord({ count: 0xffff, cdSize: 0xffffffff, cdOffset: 0xffffffff }),
  ]);
  return new SyntheticFile([
    { at: 0, bytes: lfh1 },
    { at: data1At, length: HUGE, generated: true },
    { at: lfh2At, bytes: Buffer.concat([lfh2, smallDeflated, cd, tail]) },
  ]);
}

describe('zip64 through a synthetic 5 GiB source', () => {
  const file = buildHugeArchive();
  const fops = new SyntheticFops('/data/huge.zip', file);
  const zip = new ZipFops({ source: fops });

  it('indexes it with one small read of the tail, not a scan of the file', async () => {
    file.reads = 0;
    const index = await zip.index('/data/huge.zip');
    assert.ok(file.size > 5 * GiB);
    assert.equal(index.end.zip64, true);
    assert.equal(index.get('huge.bin')!.size, HUGE);
    assert.ok(index.get('dir/small.txt')!.localHeaderOffset > 4 * GiB);
    assert.ok(file.reads < 10, `${file.reads} reads`);
  });

  it('reads the >4 GiB stored entry at its start, across the 4 GiB boundary and at its end', async () => {
    const fd = await zip.open('/data/huge.zip/huge.bin');
    try {
      assert.equal(fd.length, HUGE);
      for (const at of [0, 2 ** 32 - 5000, 2 ** 32 - 1, HUGE - 70_000]) {
        vfsSeekSet(fd, at);
        const buf = Buffer.alloc(65_536);
        let got = 0;
        while (got < buf.length) {
          const n = await fd.read(buf.subarray(got));
          if (n === 0) break;
          got += n;
        }
        assert.ok(buf.subarray(0, got).equals(pattern(at, got)), `bytes at ${at}`);
      }
      vfsSeekEnd(fd, -10);
      const last = Buffer.alloc(20);
      assert.equal(await fd.read(last), 10);
      assert.ok(last.subarray(0, 10).equals(pattern(HUGE - 10, 10)));
    } finally {
      await fd.close();
    }
  });

  it('serves the deflated entry beyond 4 GiB, inflated and as gzip passthrough', async () => {
    const fd = await zip.open('/data/huge.zip/dir/small.txt');
    assert.ok((await readAll(fd)).equals(small));
    await fd.close();
    const gz = await zip.open('/data/huge.zip/dir/small.txt', FopFlags.COMPR_ACCEPTABLE_GZIP);
    assert.ok(gz.flags & FopFlags.COMPR_IS_GZIP);
    assert.equal(gz.length, smallDeflated.length + 18);
    assert.ok(gunzipSync(await readAll(gz)).equals(small));
    await gz.close();
  });

  it('writes ISIZE modulo 2^32 for a gzip member of an entry over 4 GiB', async () => {
    const { gzipTrailer } = await import('../../src/fops/zip/entry.js');
    const t = Buffer.from(gzipTrailer(0xdeadbeef, HUGE));
    assert.equal(t.readUInt32LE(0), 0xdeadbeef);
    assert.equal(t.readUInt32LE(4), HUGE % 2 ** 32);
  });

  it('works through the Vfs chain with the synthetic backend as base', async () => {
    const vfs = new Vfs({ base: fops });
    const st = await vfs.stat('/data/huge.zip/huge.bin');
    assert.equal(st.size, HUGE);
    assert.equal((await vfs.stat('/data/huge.zip/dir')).type, 'directory');
  });
});

describe('more than 65,535 entries', () => {
  it('indexes 100,000 entries through zip64 end records and reads the last one', async () => {
    const bytes = makeManyEntryZip(100_000);
    const zip = new ZipFops({ source: new MemFops({ '/many.zip': bytes }) });
    const index = await zip.index('/many.zip');
    assert.equal(index.end.zip64, true);
    assert.equal(index.files.size, 100_000);
    assert.equal(index.dirs.size, 101); // d0..d99 plus the root
    const fd = await zip.open('/many.zip/d99/f0099999.txt');
    assert.equal((await readAll(fd)).toString(), 'd99/f0099999.txt');
    await fd.close();
  });
});
