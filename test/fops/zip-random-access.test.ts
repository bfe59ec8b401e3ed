import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { constants as zc, crc32, deflateRawSync, inflateRawSync } from 'node:zlib';
import { FopError, MemFops, ZipFops, type FopFd } from '../../src/index.js';
import { buildCheckpoints, preface, pointWindow, walkStoredBlocks, type CheckpointIndex, type DeflateEntry } from '../../src/fops/zip/deflate-index.js';
import { sourceFromBytes } from '../../src/fops/zip/source.js';
import { fixture, logText, noise, prose, rmTree, tmpDir } from '../helpers/fixtures.js';
import { makeZip } from '../helpers/zip-writer.js';

const text = (length: number, seed = 7): Buffer => logText(length, seed);

function entryOf(data: Buffer, raw: Uint8Array): DeflateEntry {
  return { source: sourceFromBytes(raw), dataStart: 0, csize: raw.length, usize: data.length, crc: crc32(data) >>> 0 };
}

/** One fixed-Huffman block of literals only: a stream with no block boundary inside it. */
function oneFixedBlock(data: Uint8Array): Buffer {
  const bytes: number[] = [];
  let acc = 0;
  let n = 0;
  const put = (value: number, count: number): void => {
    for (let i = 0; i < count; i++) {
      acc |= ((value >>> i) & 1) << n;
      if (++n === 8) {
        bytes.push(acc);
        acc = 0;
        n = 0;
      }
    }
  };
  // Huffman codes go most-significant bit first (RFC 1951 §3.1.1).
  const code = (value: number, len: number): void => {
    for (let i = len - 1; i >= 0; i--) put((value >>> i) & 1, 1);
  };
  put(1, 1); // BFINAL
  put(1, 2); // fixed Huffman
  for (const b of data) {
    if (b < 144) code(0x30 + b, 8);
    else code(0x190 + b - 144, 9);
  }
  code(0, 7); // end of block
  if (n > 0) bytes.push(acc);
  return Buffer.from(bytes);
}

async function readAtAll(fd: FopFd, pos: number, len: number): Promise<Buffer> {
  const buf = Buffer.alloc(len);
  const n = await fd.readAt!(buf, pos);
  return buf.subarray(0, n);
}

async function readAll(fd: FopFd): Promise<Buffer> {
  const parts: Buffer[] = [];
  const buf = Buffer.alloc(50_000);
  for (let n; (n = await fd.read(buf)) > 0;) parts.push(Buffer.from(buf.subarray(0, n)));
  return Buffer.concat(parts);
}

function zipFops(files: Record<string, { data: Buffer; raw?: Uint8Array }>, options: ConstructorParameters<typeof ZipFops>[0] = {}): ZipFops {
  const archive = makeZip({
    entries: Object.entries(files).map(([name, f]) => ({ name, data: f.data, method: 8, ...(f.raw ? { stored: f.raw } : {}) })),
  });
  return new ZipFops({ source: new MemFops({ '/a.zip': archive }), inflateCache: { maxBytes: 0 }, ...options });
}

describe('deflate preface: reaching any bit offset with native zlib', () => {
  it('restores every bit offset 0-7 at block boundaries, and inflating from each gives the rest of the stream', async () => {
    const data = text(200_000);
    // memLevel 1 makes blocks of 128 symbols: hundreds of boundaries at every bit offset.
    const raw = deflateRawSync(data, { level: 1, memLevel: 1, strategy: zc.Z_HUFFMAN_ONLY });
    const index = await buildCheckpoints(entryOf(data, raw), '/t', { span: 1, maxBytes: Infinity });
    const bitsSeen = new Set(index.points.map((p) => p.bits));
    assert.deepEqual([...bitsSeen].sort(), [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.ok(index.points.length > 500, `${index.points.length} points`);
    for (const p of index.points) {
      if (p.out === 0) continue;
      const dictionary = pointWindow(p);
      // A bounded slice of input, so each point costs a little: what it gives must be what follows the point.
      const input = Buffer.concat([preface(p.bits, p.partialByte), raw.subarray(p.in, p.in + 4000)]);
      const tail = inflateRawSync(input, { finishFlush: zc.Z_SYNC_FLUSH, ...(dictionary ? { dictionary } : {}) });
      assert.ok(tail.length >= Math.min(1000, data.length - p.out), `point at ${p.out}: ${tail.length} bytes out`);
      assert.ok(tail.equals(data.subarray(p.out, p.out + tail.length)), `point at ${p.out} (bits ${p.bits})`);
    }
  });

  it('is empty at a byte boundary, and otherwise ends with the boundary byte’s unread bits', () => {
    assert.equal(preface(0, 0xff).length, 0);
    for (let bits = 1; bits <= 7; bits++) {
      const p = preface(bits, 0xff);
      // The boundary's bits are the high bits of the last byte.
      assert.equal(p[p.length - 1]! >> (8 - bits), (1 << bits) - 1, `bits ${bits}`);
    }
  });
});

describe('checkpoint index', () => {
  const data = text(3_000_000);
  const raw = deflateRawSync(data, { level: 6 });
  const span = 64 * 1024;

  it('puts a point at the first block boundary after each span, with its window', async () => {
    const index = await buildCheckpoints(entryOf(data, raw), '/t', { span, maxBytes: Infinity });
    assert.ok(index.points.length > 5, `${index.points.length} points`);
    assert.equal(index.points[0]!.out, 0);
    for (let i = 1; i < index.points.length; i++) {
      const p = index.points[i]!;
      assert.ok(p.out - index.points[i - 1]!.out >= span);
      assert.ok(pointWindow(p)!.equals(data.subarray(p.out - 32768, p.out)), `window of point ${i}`);
    }
  });

  it('stays within its byte budget by spacing points further apart', async () => {
    const roomy = await buildCheckpoints(entryOf(data, raw), '/t', { span, maxBytes: Infinity });
    const tight = await buildCheckpoints(entryOf(data, raw), '/t', { span, maxBytes: Math.floor(roomy.bytes / 3) });
    assert.ok(tight.bytes <= roomy.bytes / 3, `${tight.bytes} > ${roomy.bytes / 3}`);
    assert.ok(tight.points.length > 1 && tight.points.length < roomy.points.length);
  });

  it('degrades to one point for a stream that is one huge block, and still reads right', async () => {
    const big = noise(1_500_000, 9);
    const single = oneFixedBlock(big);
    assert.ok(inflateRawSync(single).equals(big), 'the generator writes a valid stream');
    const index = await buildCheckpoints(entryOf(big, single), '/t', { span, maxBytes: Infinity });
    assert.equal(index.points.length, 1);
    const zip = zipFops({ 'one-block.bin': { data: big, raw: single } }, { randomAccess: { span } });
    const fd = await zip.open('/a.zip/one-block.bin');
    for (const pos of [0, 700_000, 1_499_990]) assert.ok((await readAtAll(fd, pos, 10)).equals(big.subarray(pos, pos + 10)));
    await fd.close();
    await zip.close();
  });

  it('checks the whole entry while it builds: CRC-32, size and the end of the stream', async () => {
    const cases: [string, DeflateEntry, RegExp][] = [
      ['crc', { ...entryOf(data, raw), crc: 1 }, /CRC-32 mismatch/],
      ['short', { ...entryOf(data, raw), usize: data.length + 1 }, /shorter than the declared/],
      ['long', { ...entryOf(data, raw), usize: data.length - 1 }, /exceeds the declared/],
      ['truncated', entryOf(data, raw.subarray(0, raw.length - 100)), /truncated/],
      ['trailing', entryOf(data, Buffer.concat([raw, Buffer.from([1, 2, 3])])), /after the end/],
      ['garbage', entryOf(data, Buffer.alloc(1000, 0xff)), /invalid deflate data/],
    ];
    for (const [name, entry, message] of cases) {
      await assert.rejects(buildCheckpoints(entry, '/t', { span, maxBytes: Infinity }), (err: unknown) => {
        assert.ok(FopError.is(err, 'CORRUPT_ARCHIVE'), name);
        assert.match(err.message, message, name);
        return true;
      });
    }
  });
});

describe('ZipFops: reads anywhere in a deflated entry', () => {
  const data = text(3_000_000);
  const span = 64 * 1024;
  const accessPoints = async (): Promise<CheckpointIndex> => buildCheckpoints(entryOf(data, deflateRawSync(data)), '/t', { span, maxBytes: data.length });

  it('reads at, just before and just after every access point, and across points', async () => {
    const zip = zipFops({ 'log.txt': { data } }, { randomAccess: { span, maxShare: 1, maxBytes: 4 * data.length } });
    const fd = await zip.open('/a.zip/log.txt');
    const index = await accessPoints(); // the same points ZipFops builds
    assert.ok(index.points.length > 3);
    for (const p of index.points) {
      for (const pos of [p.out - 1, p.out, p.out + 1]) {
        if (pos < 0) continue;
        assert.ok((await readAtAll(fd, pos, 3)).equals(data.subarray(pos, pos + 3)), `at ${pos}`);
      }
      const from = Math.max(0, p.out - 5000);
      assert.ok((await readAtAll(fd, from, 2 * span)).equals(data.subarray(from, from + 2 * span)), `across ${p.out}`);
    }
    assert.equal(zip.stats.accessIndexBuilds, 1, 'built once, on the first deep read');
    await fd.close();
    await zip.close();
  });

  it('answers random reads, seeks and concurrent reads with the inflated bytes', async () => {
    const zip = zipFops({ 'log.txt': { data } }, { randomAccess: { span } });
    const fd = await zip.open('/a.zip/log.txt');
    let seed = 11;
    const rnd = (n: number): number => (seed = (seed * 48271) % 0x7fffffff) % n;
    const reads = Array.from({ length: 40 }, () => {
      const pos = rnd(data.length);
      return { pos, len: 1 + rnd(100_000) };
    });
    const got = await Promise.all(reads.map(({ pos, len }) => readAtAll(fd, pos, len)));
    reads.forEach(({ pos, len }, i) => assert.ok(got[i]!.equals(data.subarray(pos, pos + len)), `readAt ${pos}+${len}`));
    // Seeks on the handle's own position: deep, back, forward.
    for (const pos of [2_500_000, 100, 1_000_000, 2_999_990]) {
      fd.seekCur(pos - fd.pos);
      const buf = Buffer.alloc(10);
      const n = await fd.read(buf);
      assert.ok(buf.subarray(0, n).equals(data.subarray(pos, pos + 10)), `seek to ${pos}`);
    }
    fd.seekCur(-fd.pos);
    assert.ok((await readAll(fd)).equals(data), 'a whole read from the start after all that');
    assert.equal(zip.stats.accessIndexBuilds, 1);
    await fd.close();
    await zip.close();
    assert.equal(zip.stats.openEntries, 0);
    assert.equal(zip.stats.accessIndexes, 0, 'close() drops the indexes');
  });

  it('shares one build between concurrent deep reads, and reuses it for later handles', async () => {
    const zip = zipFops({ 'log.txt': { data } }, { randomAccess: { span } });
    const fds = await Promise.all([1, 2, 3].map(() => zip.open('/a.zip/log.txt')));
    await Promise.all(fds.map((fd, i) => readAtAll(fd, 2_000_000 + i, 5)));
    const later = await zip.open('/a.zip/log.txt');
    assert.ok((await readAtAll(later, 2_900_000, 5)).equals(data.subarray(2_900_000, 2_900_005)));
    assert.equal(zip.stats.accessIndexBuilds, 1);
    await Promise.all([...fds, later].map((fd) => fd.close()));
    await zip.close();
  });

  for (const concurrentBuilds of [1, 2]) {
    it(`runs at most ${concurrentBuilds} checkpoint pass(es) at once; deep reads into other entries wait their turn`, async () => {
      const files = Object.fromEntries([1, 2, 3].map((i) => [`f${i}.txt`, text(1_500_000, i)]));
      const dir = tmpDir();
      const archive = join(dir, 'a.zip');
      writeFileSync(archive, makeZip({ entries: Object.entries(files).map(([name, data]) => ({ name, data, method: 8 })) }));
      // On disk, so every read of the pass waits for the thread pool and the watcher below gets turns.
      const zip = new ZipFops({ inflateCache: { maxBytes: 0 }, randomAccess: { span: 16 * 1024, concurrentBuilds } });
      const fds = await Promise.all(Object.keys(files).map((name) => zip.open(`${archive}/${name}`)));
      let most = 0;
      const state = { done: false }; // an object: the loop must see the write made after it started
      const watch = (async () => {
        while (!state.done) {
          most = Math.max(most, zip.stats.accessIndexBuildsRunning);
          await new Promise((resolve) => setImmediate(resolve));
        }
      })();
      const got = await Promise.all(fds.map((fd) => readAtAll(fd, 1_400_000, 50)));
      state.done = true;
      await watch;
      Object.values(files).forEach((data, i) => assert.ok(got[i]!.equals(data.subarray(1_400_000, 1_400_050))));
      assert.equal(zip.stats.accessIndexBuilds, 3);
      assert.equal(most, concurrentBuilds, `at most ${concurrentBuilds} at once, and that many did run together`);
      assert.equal(zip.stats.accessIndexBuildsRunning, 0);
      await Promise.all(fds.map((fd) => fd.close()));
      await zip.close();
      rmTree(dir);
    });
  }

  it('keeps indexes within maxBytes, evicting and rebuilding as needed', async () => {
    const files = Object.fromEntries([1, 2, 3, 4, 5, 6].map((i) => [`f${i}.txt`, { data: text(1_000_000, i) }]));
    const maxBytes = 40_000;
    const zip = zipFops(files, { randomAccess: { span: 16 * 1024, maxBytes, maxShare: 1 } });
    for (let round = 0; round < 2; round++) {
      for (const [name, f] of Object.entries(files)) {
        const fd = await zip.open(`/a.zip/${name}`);
        assert.ok((await readAtAll(fd, 900_000, 100)).equals(f.data.subarray(900_000, 900_100)), name);
        await fd.close();
        assert.ok(zip.stats.accessIndexBytes <= maxBytes, `${zip.stats.accessIndexBytes} bytes held`);
      }
    }
    // Each index is capped at a quarter of maxBytes, so they are built, evicted and built again.
    assert.ok(zip.stats.accessIndexBuilds > 6, `${zip.stats.accessIndexBuilds} builds`);
    await zip.close();
  });

  it('refuses a corrupt entry on the deep read that builds the index, and keeps refusing it', async () => {
    const bad = Buffer.from(data);
    const raw = deflateRawSync(data);
    bad[2_000_000]! ^= 1; // the CRC in the archive is of `bad`, the deflate data of `data`
    const zip = zipFops({ 'bad.txt': { data: bad, raw } }, { randomAccess: { span } });
    const fd = await zip.open('/a.zip/bad.txt');
    await assert.rejects(readAtAll(fd, 2_500_000, 10), (err: unknown) => FopError.is(err, 'CORRUPT_ARCHIVE') && /CRC-32/.test(err.message));
    await assert.rejects(readAtAll(fd, 1_500_000, 10), (err: unknown) => FopError.is(err, 'CORRUPT_ARCHIVE'));
    assert.equal(zip.stats.accessIndexBuilds, 1, 'the failure is cached for this version of the archive');
    await fd.close();
    await zip.close();
  });

  it('rejects a read with CLOSED when its handle closes under it, and leaves nothing open', async () => {
    const zip = zipFops({ 'log.txt': { data } }, { randomAccess: { span } });
    const fd = await zip.open('/a.zip/log.txt');
    await readAtAll(fd, 2_000_000, 10); // index built
    const pending = readAtAll(fd, 2_990_000, 10_000);
    await fd.close();
    await assert.rejects(pending, (err: unknown) => FopError.is(err, 'CLOSED'));
    assert.equal(zip.stats.openEntries, 0);
    await zip.close();
  });
});

describe('ZipFops: deflate streams made only of stored blocks', () => {
  it('maps Info-ZIP’s incompressible entry onto the archive: no inflating, no index build', async () => {
    const archive = fixture('tools', 'infozip-random-stored-blocks.zip');
    const want = noise(300_000, 42);
    const zip = new ZipFops({ source: new MemFops({ '/r.zip': readFileSync(archive) }) });
    const st = await zip.stat('/r.zip/random.bin');
    assert.equal(st.gzipAvailable, true, 'method 8 in the archive');
    const fd = await zip.open('/r.zip/random.bin');
    for (const pos of [0, 65_535, 65_536, 150_000, 299_990]) assert.ok((await readAtAll(fd, pos, 10)).equals(want.subarray(pos, pos + 10)), `at ${pos}`);
    assert.ok((await readAll(fd)).equals(want));
    assert.equal(zip.stats.accessIndexBuilds, 0);
    await fd.close();
    await zip.close();
  });

  it('maps zlib level 0 output, checks the CRC-32 on a whole read, and refuses bad block lengths', async () => {
    const data = noise(200_000, 5);
    const raw = deflateRawSync(data, { level: 0 });
    const map = await walkStoredBlocks(entryOf(data, raw), '/t');
    assert.equal(map?.kind, 'stored');
    const mismatched = Buffer.from(data);
    mismatched[150_000]! ^= 1;
    const zip = zipFops({ 'ok.bin': { data, raw }, 'crc.bin': { data: mismatched, raw } });
    // In memory (reads and a copy per block) and on disk (one scatter read, preadv).
    const dir = tmpDir();
    writeFileSync(join(dir, 'a.zip'), makeZip({ entries: [{ name: 'ok.bin', data, method: 8, stored: raw }] }));
    const onDisk = new ZipFops({ inflateCache: { maxBytes: 0 } });
    const diskFd = await onDisk.open(join(dir, 'a.zip', 'ok.bin'));
    assert.ok((await readAll(diskFd)).equals(data));
    const ok = await zip.open('/a.zip/ok.bin');
    assert.ok((await readAll(ok)).equals(data));
    // Reads that start and end anywhere, within a block and across two or several
    // (zlib's stored blocks here: 65,531 bytes, then 32,773, then 32,768 each).
    for (const [pos, len] of [
      [0, 1],
      [65_526, 10],
      [65_531, 32_773],
      [60_000, 100_000],
      [199_990, 10],
      [5, 199_995],
    ] as const) {
      assert.ok((await readAtAll(ok, pos, len)).equals(data.subarray(pos, pos + len)), `readAt ${pos}+${len}`);
      assert.ok((await readAtAll(diskFd, pos, len)).equals(data.subarray(pos, pos + len)), `readAt ${pos}+${len} on disk`);
    }
    await diskFd.close();
    await onDisk.close();
    rmTree(dir);
    const crc = await zip.open('/a.zip/crc.bin');
    await assert.rejects(readAll(crc), (err: unknown) => FopError.is(err, 'CORRUPT_ARCHIVE') && /CRC-32/.test(err.message));
    await Promise.all([ok.close(), crc.close()]);
    await zip.close();

    const badLen = Buffer.from(raw);
    badLen[3]! ^= 1; // NLEN of the first block
    await assert.rejects(walkStoredBlocks(entryOf(data, badLen), '/t'), /stored block length/);
    await assert.rejects(walkStoredBlocks(entryOf(data, raw.subarray(0, raw.length - 1)), '/t'), /truncated/);
    await assert.rejects(walkStoredBlocks({ ...entryOf(data, raw), usize: data.length + 1 }, '/t'), /shorter than the declared/);
  });

  it('hands a stream that turns to Huffman blocks after stored ones to the checkpoint index', async () => {
    const head = noise(100_000, 3);
    const tail = prose(400_000);
    const data = Buffer.concat([head, tail]);
    // Stored blocks (level 0) then compressed ones, in one stream, as a writer switching levels would.
    const stored = deflateRawSync(head, { level: 0, finishFlush: zc.Z_FULL_FLUSH });
    const raw = Buffer.concat([stored, deflateRawSync(tail, { dictionary: head.subarray(head.length - 32768) })]);
    assert.ok(inflateRawSync(raw).equals(data), 'the spliced stream is valid');
    assert.equal(await walkStoredBlocks(entryOf(data, raw), '/t'), undefined);
    const zip = zipFops({ 'mixed.bin': { data, raw } }, { randomAccess: { span: 32 * 1024, maxShare: 1 } });
    const fd = await zip.open('/a.zip/mixed.bin');
    for (const pos of [10, 99_999, 100_000, 450_000]) assert.ok((await readAtAll(fd, pos, 20)).equals(data.subarray(pos, pos + 20)), `at ${pos}`);
    await fd.close();
    await zip.close();
  });
});
