// Deterministic, streaming generators for the benchmark archives. Everything is
// written into bench/.data once and reused; a file is produced under a temporary
// name and renamed when complete, so an interrupted run never leaves a half file
// that looks finished. Bump GEN_VERSION when the output format changes.
//
// writeManyEntryZip(count) writes byte-for-byte what test/helpers/zip-writer.ts
// makeManyEntryZip(count) builds in memory (checked by bench/verify-gen.mjs), but
// streams it so 1M entries never need ~130 MB of small Buffers at once.
import { createCipheriv } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { once } from 'node:events';
import { createDeflateRaw, crc32 } from 'node:zlib';
import { dataPath, MiB } from './common.mjs';

export const GEN_VERSION = 1;

const SIG_LFH = 0x04034b50;
const SIG_CEN = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_Z64_EOCD = 0x06064b50;
const SIG_Z64_LOC = 0x07064b50;
// DOS date/time of 2024-01-02T03:04:06Z, as zip-writer.ts's default.
const DOS_DATE = (44 << 9) | (1 << 5) | 2;
const DOS_TIME = (3 << 11) | (4 << 5) | 3;
const EXTERNAL_ATTR = 0o100644 * 0x10000;
export const GZIP_HEADER = Buffer.from([0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0x03]);

/** A sequential file writer with a large buffer and positional patching. */
class FileWriter {
  constructor(path, bufSize = 4 * MiB) {
    this.fd = openSync(path, 'w');
    this.buf = Buffer.allocUnsafe(bufSize);
    this.len = 0;
    this.offset = 0; // logical bytes written (buffered included)
  }
  ensure(n) {
    if (this.len + n > this.buf.length) this.flush();
  }
  flush() {
    let done = 0;
    while (done < this.len) done += writeSync(this.fd, this.buf, done, this.len - done);
    this.len = 0;
  }
  u16(v) {
    this.ensure(2);
    this.buf.writeUInt16LE(v, this.len);
    this.len += 2;
    this.offset += 2;
  }
  u32(v) {
    this.ensure(4);
    this.buf.writeUInt32LE(v >>> 0, this.len);
    this.len += 4;
    this.offset += 4;
  }
  u64(v) {
    this.u32(v % 0x100000000);
    this.u32(Math.floor(v / 0x100000000));
  }
  bytes(b) {
    if (b.length > this.buf.length / 2) {
      this.flush();
      let done = 0;
      while (done < b.length) done += writeSync(this.fd, b, done, b.length - done);
      this.offset += b.length;
      return;
    }
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    this.offset += b.length;
  }
  /** Overwrites already-written bytes at an absolute position (flushes first). */
  patch(position, b) {
    this.flush();
    writeSync(this.fd, b, 0, b.length, position);
  }
  close() {
    this.flush();
    closeSync(this.fd);
  }
}

function atomically(finalPath, build) {
  const tmp = `${finalPath}.tmp-${process.pid}`;
  try {
    const r = build(tmp);
    if (r && typeof r.then === 'function') {
      return r.then(
        (v) => {
          renameSync(tmp, finalPath);
          return v;
        },
        (err) => {
          rmSync(tmp, { force: true });
          throw err;
        },
      );
    }
    renameSync(tmp, finalPath);
    return r;
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** The entry names of makeManyEntryZip's default `nameOf`. */
export function manyEntryName(i) {
  return `d${Math.floor(i / 1000)}/f${String(i).padStart(7, '0')}.txt`;
}

function writeLocalHeader(w, { flags = 0, method, crc, csize, usize, name }) {
  w.u32(SIG_LFH);
  w.u16(20);
  w.u16(flags);
  w.u16(method);
  w.u16(DOS_TIME);
  w.u16(DOS_DATE);
  w.u32(crc);
  w.u32(csize);
  w.u32(usize);
  w.u16(name.length);
  w.u16(0);
  w.bytes(name);
}

function writeCentralHeader(w, { flags = 0, method, crc, csize, usize, name, offset }) {
  w.u32(SIG_CEN);
  w.u16(0x031e);
  w.u16(20);
  w.u16(flags);
  w.u16(method);
  w.u16(DOS_TIME);
  w.u16(DOS_DATE);
  w.u32(crc);
  w.u32(csize);
  w.u32(usize);
  w.u16(name.length);
  w.u16(0); // extra
  w.u16(0); // comment
  w.u16(0); // disk
  w.u16(0); // internal attributes
  w.u32(EXTERNAL_ATTR);
  w.u32(offset);
  w.bytes(name);
}

function writeEnd(w, { count, cdSize, cdOffset, zip64 }) {
  if (zip64) {
    const recordOffset = cdOffset + cdSize;
    w.u32(SIG_Z64_EOCD);
    w.u64(44);
    w.u16(45);
    w.u16(45);
    w.u32(0);
    w.u32(0);
    w.u64(count);
    w.u64(count);
    w.u64(cdSize);
    w.u64(cdOffset);
    w.u32(SIG_Z64_LOC);
    w.u32(0);
    w.u64(recordOffset);
    w.u32(1);
  }
  w.u32(SIG_EOCD);
  w.u16(0);
  w.u16(0);
  w.u16(zip64 ? 0xffff : count);
  w.u16(zip64 ? 0xffff : count);
  w.u32(Math.min(cdSize, 0xffffffff));
  w.u32(Math.min(cdOffset, 0xffffffff));
  w.u16(0);
}

/**
 * Streams makeManyEntryZip(count) to `path`: `count` tiny stored entries, each
 * holding its own name, zip64 end records above 65,535 entries.
 */
export function writeManyEntryZipTo(path, count) {
  const w = new FileWriter(path);
  // Pass 1: local headers and data. Pass 2 regenerates names and offsets for the central directory.
  for (let i = 0; i < count; i++) {
    const name = Buffer.from(manyEntryName(i), 'latin1');
    const crc = crc32(name) >>> 0;
    writeLocalHeader(w, { method: 0, crc, csize: name.length, usize: name.length, name });
    w.bytes(name);
  }
  const cdOffset = w.offset;
  let offset = 0;
  for (let i = 0; i < count; i++) {
    const name = Buffer.from(manyEntryName(i), 'latin1');
    const crc = crc32(name) >>> 0;
    writeCentralHeader(w, { method: 0, crc, csize: name.length, usize: name.length, name, offset });
    offset += 30 + 2 * name.length;
  }
  const cdSize = w.offset - cdOffset;
  writeEnd(w, { count, cdSize, cdOffset, zip64: count > 0xffff });
  const size = w.offset;
  w.close();
  return size;
}

/** The many-entry archive for `count`, generated once into bench/.data. */
export function manyEntryZip(count) {
  const path = dataPath(`many-${count}.v${GEN_VERSION}.zip`);
  if (!existsSync(path)) atomically(path, (tmp) => writeManyEntryZipTo(tmp, count));
  return path;
}

// ---------------------------------------------------------------------------
// Data sources.

/** Deterministic pseudo-random ("incompressible") bytes: AES-128-CTR keystream, `size` bytes in chunks. */
export function* randomChunks(size, seed, chunkSize = 4 * MiB) {
  const key = Buffer.alloc(16);
  key.write(`vfserve-bench-${seed}`.slice(0, 16), 'latin1');
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(chunkSize);
  let left = size;
  while (left > 0) {
    const n = Math.min(chunkSize, left);
    yield cipher.update(n === chunkSize ? zeros : zeros.subarray(0, n));
    left -= n;
  }
}

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Deterministic text-like bytes: words from a random vocabulary chosen with a
 * skewed (Zipf-like) distribution, with spaces, punctuation and line breaks.
 * `vocab` and `skew` set the compression ratio (fewer words / more skew = more
 * compressible). Yields exactly `size` bytes in chunks of `chunkSize`.
 */
export function* textChunks(size, { seed = 1, vocab = 300, skew = 2.5, chunkSize = 4 * MiB } = {}) {
  const rnd = mulberry32(seed);
  const letters = 'etaoinshrdlcumwfgypbvkjxqz';
  const words = [];
  for (let i = 0; i < vocab; i++) {
    const len = 2 + Math.floor(rnd() * rnd() * 11);
    let w = '';
    for (let k = 0; k < len; k++) w += letters[Math.floor(rnd() * rnd() * 26)];
    words.push(w);
  }
  // Each word is stored with its separator variants: word + ' ', word + ', ', word + '.\n'.
  const seps = [' ', ', ', '.\n'];
  const pieces = [];
  for (const w of words) for (const sep of seps) pieces.push(Buffer.from(w + sep, 'latin1'));
  const flat = Buffer.concat(pieces);
  const starts = new Uint32Array(pieces.length + 1);
  for (let i = 0, o = 0; i < pieces.length; i++) {
    starts[i] = o;
    o += pieces[i].length;
  }
  starts[pieces.length] = flat.length;
  // Word choice by table lookup: index = floor(vocab * u^skew) for u uniform.
  const pick = new Uint16Array(65536);
  for (let k = 0; k < 65536; k++) pick[k] = Math.min(vocab - 1, Math.floor(vocab * Math.pow((k + 0.5) / 65536, skew)));
  let x = (seed * 2654435761) >>> 0 || 1; // xorshift32 state
  let left = size;
  let carry = Buffer.alloc(0);
  let wordsInLine = 0;
  while (left > 0) {
    const n = Math.min(chunkSize, left);
    const out = Buffer.allocUnsafe(n);
    let p = 0;
    if (carry.length > 0) {
      const k = Math.min(carry.length, n);
      carry.copy(out, 0, 0, k);
      p = k;
      carry = carry.subarray(k);
    }
    while (p < n) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      const r = x & 0xff;
      const sep = ++wordsInLine >= 12 && r < 77 ? ((wordsInLine = 0), 2) : r > 240 ? 1 : 0;
      const piece = pick[x >>> 16] * 3 + sep;
      const s = starts[piece];
      const e = starts[piece + 1];
      if (p + (e - s) <= n) {
        for (let j = s; j < e; j++) out[p++] = flat[j];
      } else {
        const k = n - p;
        flat.copy(out, p, s, s + k);
        p = n;
        carry = flat.subarray(s + k, e);
      }
    }
    left -= n;
    yield out;
  }
}

// ---------------------------------------------------------------------------
// A small archive writer for a few large entries.

export class ZipWriter {
  constructor(path) {
    this.w = new FileWriter(path);
    this.central = [];
  }

  addStored(name, chunks) {
    const nameBuf = Buffer.from(name, 'latin1');
    const offset = this.w.offset;
    writeLocalHeader(this.w, { method: 0, crc: 0, csize: 0, usize: 0, name: nameBuf });
    let crc = 0;
    let size = 0;
    for (const c of chunks) {
      crc = crc32(c, crc);
      size += c.length;
      this.w.bytes(c);
    }
    this.#finishEntry(nameBuf, offset, 0, crc >>> 0, size, size);
    return { crc: crc >>> 0, size };
  }

  /** Deflates `chunks` (raw deflate) into the archive; `onRaw(buf)` sees every compressed byte. */
  async addDeflated(name, chunks, { level = 6, onRaw } = {}) {
    const nameBuf = Buffer.from(name, 'latin1');
    const offset = this.w.offset;
    writeLocalHeader(this.w, { method: 8, crc: 0, csize: 0, usize: 0, name: nameBuf });
    const d = createDeflateRaw({ level, memLevel: 9 });
    let csize = 0;
    const drain = (async () => {
      for await (const out of d) {
        csize += out.length;
        this.w.bytes(out);
        onRaw?.(out);
      }
    })();
    let crc = 0;
    let usize = 0;
    for (const c of chunks) {
      crc = crc32(c, crc);
      usize += c.length;
      if (!d.write(c)) await once(d, 'drain');
    }
    d.end();
    await drain;
    this.#finishEntry(nameBuf, offset, 8, crc >>> 0, csize, usize);
    return { crc: crc >>> 0, csize, usize };
  }

  #finishEntry(name, offset, method, crc, csize, usize) {
    if (csize > 0xfffffffe || usize > 0xfffffffe || offset > 0xfffffffe) throw new Error('bench zip writer: entry needs zip64');
    // Patch CRC-32 and sizes into the local header (no data descriptor).
    const fix = Buffer.alloc(12);
    fix.writeUInt32LE(crc, 0);
    fix.writeUInt32LE(csize, 4);
    fix.writeUInt32LE(usize, 8);
    this.w.patch(offset + 14, fix);
    this.central.push({ method, crc, csize, usize, name, offset });
  }

  close() {
    const cdOffset = this.w.offset;
    for (const c of this.central) writeCentralHeader(this.w, c);
    const cdSize = this.w.offset - cdOffset;
    writeEnd(this.w, { count: this.central.length, cdSize, cdOffset, zip64: false });
    const size = this.w.offset;
    this.w.close();
    return size;
  }
}

/** Text parameters for a ~3.1:1 deflate ratio (level 6). */
export const TEXT_3TO1 = { seed: 7, vocab: 300, skew: 2.5 };
/** Text parameters for the 1 GiB inflate-memory entry (more compressible, smaller file). */
export const TEXT_BIG = { seed: 11, vocab: 30, skew: 3 };

export const READ_STORED_SIZE = 64 * MiB;
export const READ_TEXT_SIZE = 200 * MiB; // ~3.1:1 at level 6, so ~64 MiB of raw deflate

/**
 * The read-throughput fixtures: read.zip with `stored.bin` (64 MiB random,
 * method 0) and `text.txt` (200 MiB text, deflated to ~64 MiB), plus plain files with the
 * same bytes: plain-64MiB.bin, and text.gz = exactly the gzip member that
 * ZipFops serves for text.txt with COMPR_ACCEPTABLE_GZIP.
 */
export async function readFixtures() {
  const zip = dataPath(`read.v${GEN_VERSION}.zip`);
  const plain = dataPath(`plain-64MiB.v${GEN_VERSION}.bin`);
  const gz = dataPath(`text.v${GEN_VERSION}.gz`);
  if (!existsSync(plain)) {
    atomically(plain, (tmp) => {
      const w = new FileWriter(tmp);
      for (const c of randomChunks(READ_STORED_SIZE, 'read')) w.bytes(c);
      w.close();
    });
  }
  if (!existsSync(zip) || !existsSync(gz)) {
    await atomically(gz, (gzTmp) =>
      atomically(zip, async (zipTmp) => {
        const gw = new FileWriter(gzTmp);
        gw.bytes(GZIP_HEADER);
        const z = new ZipWriter(zipTmp);
        z.addStored('stored.bin', randomChunks(READ_STORED_SIZE, 'read'));
        const t = await z.addDeflated('text.txt', textChunks(READ_TEXT_SIZE, TEXT_3TO1), { level: 6, onRaw: (b) => gw.bytes(b) });
        const trailer = Buffer.alloc(8);
        trailer.writeUInt32LE(t.crc, 0);
        trailer.writeUInt32LE(t.usize % 0x100000000, 4);
        gw.bytes(trailer);
        gw.close();
        z.close();
      }),
    );
  }
  return { zip, plain, gz };
}

export const CONC_COUNT = 200;
export const CONC_SIZE = 1 * MiB;

/** conc.zip with 200 stored 1 MiB entries e000.bin..e199.bin, and the same bytes as 200 plain files. */
export function concurrentFixtures() {
  const zip = dataPath(`conc.v${GEN_VERSION}.zip`);
  const dir = dataPath(`conc-plain.v${GEN_VERSION}`);
  const names = Array.from({ length: CONC_COUNT }, (_, i) => `e${String(i).padStart(3, '0')}.bin`);
  const plainPaths = names.map((n) => `${dir}/${n}`);
  if (!existsSync(zip) || !plainPaths.every((p) => existsSync(p))) {
    rmSync(dir, { recursive: true, force: true });
    atomically(zip, (tmp) => {
      const z = new ZipWriter(tmp);
      for (const n of names) z.addStored(n, randomChunks(CONC_SIZE, `c${n}`));
      z.close();
    });
    const tmpDir = `${dir}.tmp-${process.pid}`;
    rmSync(tmpDir, { recursive: true, force: true });
    mkdirSync(tmpDir, { recursive: true });
    for (const n of names) {
      const w = new FileWriter(`${tmpDir}/${n}`, MiB);
      for (const c of randomChunks(CONC_SIZE, `c${n}`)) w.bytes(c);
      w.close();
    }
    renameSync(tmpDir, dir);
  }
  return { zip, names, plainPaths };
}

export const BIG_SIZE = 1024 * MiB;

/** big-inflate.zip: one deflated entry `big.txt` of 1 GiB of text (local header patched, no descriptor). */
export async function bigInflateFixture() {
  const zip = dataPath(`big-inflate.v${GEN_VERSION}.zip`);
  let info;
  if (!existsSync(zip)) {
    await atomically(zip, async (tmp) => {
      const z = new ZipWriter(tmp);
      info = await z.addDeflated('big.txt', textChunks(BIG_SIZE, TEXT_BIG), { level: 6 });
      z.close();
    });
  }
  return { zip, info };
}
