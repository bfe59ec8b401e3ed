import { crc32, deflateRawSync, inflateRawSync, constants as zc } from 'node:zlib';
import { ZStream, Z_BLOCK, Z_BUF_ERROR, Z_NO_FLUSH, Z_STREAM_END, zlibInflate, zlibInflateEnd, zlibInflateInit2 } from 'pako';
import { FopError } from '../errors.js';
import { readExact, type RandomAccessSource } from './source.js';
import { createWasmInflater } from './wasm-inflater.js';

/**
 * Random access into a raw deflate stream (RFC 1951), after zlib's
 * `examples/zran.c`: a pass over the stream records access points at block
 * boundaries, each with the 32 KiB of output before it, so a read at any
 * offset inflates from the nearest point instead of from the start.
 *
 * Node's zlib reports neither block boundaries nor bit offsets, so the pass
 * runs pako (a JavaScript port of zlib whose `inflate(Z_BLOCK)` sets
 * `data_type` as zlib does); reads from a point run native zlib with the
 * window as its dictionary and the bit offset restored by a preface of empty
 * blocks (zran 1.4's `inflatePreface`, since Node has no `inflatePrime`).
 *
 * A stream made only of stored blocks (what zlib writes for incompressible
 * data) needs no inflating at all: {@link walkStoredBlocks} maps its output
 * offsets onto input offsets.
 */

/** A place a read can start: a block boundary at output offset `out`, input bit `in * 8 - bits`. */
export interface AccessPoint {
  /** Uncompressed offset. */
  readonly out: number;
  /** Offset of the first whole compressed byte after the boundary, from the start of the deflate data. */
  readonly in: number;
  /** Bits of the byte before `in` still to be read (0–7): the boundary is `bits` bits before `in`. */
  readonly bits: number;
  /** That byte, when `bits` > 0. */
  readonly partialByte: number;
  /** The up to 32 KiB of output before `out`, deflated (empty at offset 0). */
  readonly window: Uint8Array;
}

/** Access points for one deflate stream, the first at offset 0. */
export interface CheckpointIndex {
  readonly kind: 'checkpoints';
  readonly points: readonly AccessPoint[];
  /** Memory the index holds: windows plus per-point overhead. */
  readonly bytes: number;
}

/**
 * A deflate stream made only of stored blocks: block `k` holds output bytes
 * `[outStart[k], outStart[k+1])`, stored verbatim from input offset `inStart[k]`.
 */
export interface StoredBlockMap {
  readonly kind: 'stored';
  readonly outStart: Float64Array;
  readonly inStart: Float64Array;
  /** Total output: the last block's end. */
  readonly usize: number;
  readonly bytes: number;
}

export type DeflateIndex = CheckpointIndex | StoredBlockMap;

/** Where a deflate stream lies and what its central directory record promises. */
export interface DeflateEntry {
  readonly source: RandomAccessSource;
  readonly dataStart: number;
  readonly csize: number;
  readonly usize: number;
  readonly crc: number;
}

export const WINDOW_SIZE = 32 * 1024;
const POINT_OVERHEAD = 64; // object, numbers and array slot, roughly
const INPUT_CHUNK = 64 * 1024;
const OUTPUT_CHUNK = 256 * 1024;
const YIELD_MS = 8; // longest stretch of synchronous inflating before the event loop gets a turn

function corrupt(path: string, detail: string): FopError {
  return new FopError('CORRUPT_ARCHIVE', 'read', path, detail);
}

// --- The preface: reaching a bit offset without inflatePrime ----------------------------

/** Writes bits least-significant first, as deflate packs them (RFC 1951 §3.1.1). */
class BitWriter {
  readonly bytes: number[] = [];
  #acc = 0;
  #n = 0;

  write(value: number, count: number): void {
    for (let i = 0; i < count; i++) {
      this.#acc |= ((value >>> i) & 1) << this.#n;
      if (++this.#n === 8) {
        this.bytes.push(this.#acc);
        this.#acc = 0;
        this.#n = 0;
      }
    }
  }

  /** Bits written into the byte not yet complete. */
  get pending(): number {
    return this.#n;
  }

  /** That byte so far: its low `pending` bits. */
  get partial(): number {
    return this.#acc;
  }
}

// An empty fixed-Huffman block: BFINAL=0, BTYPE=01, end-of-block (code 0000000): 10 bits.
function emptyFixedBlock(w: BitWriter): void {
  w.write(0, 1);
  w.write(1, 2);
  w.write(0, 7);
}

/**
 * An empty dynamic-Huffman block of 93 bits: an odd length, which fixed
 * blocks (10 bits) cannot give. Its literal/length code has one symbol, 256
 * (end of block), of length 1, an incomplete code zlib accepts for a single
 * length-1 code; its distance code is empty.
 */
function emptyDynamicBlock(w: BitWriter): void {
  w.write(0, 1); // BFINAL
  w.write(2, 2); // BTYPE=10
  w.write(0, 5); // HLIT: 257 codes
  w.write(0, 5); // HDIST: 1 code
  w.write(14, 4); // HCLEN: 18 code length codes, to reach symbol 1 in the order below
  // Code length code lengths in the order 16 17 18 0 8 7 9 6 10 5 11 4 12 3 13 2 14 1:
  // 18 → 2 bits, 0 → 2 bits, 1 → 1 bit (a complete code).
  const lengths = [0, 0, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
  for (const len of lengths) w.write(len, 3);
  // Canonical codes: symbol 1 (length 1) = 0; symbols 0 and 18 (length 2) = 10, 11.
  // Huffman codes are written most-significant bit first.
  const sym18 = (): void => w.write(0b11, 2);
  const sym0 = (): void => w.write(0b01, 2);
  const sym1 = (): void => w.write(0b0, 1);
  sym18();
  w.write(138 - 11, 7); // 138 zero lengths
  sym18();
  w.write(118 - 11, 7); // 118 more: symbols 0–255 have no code
  sym1(); // symbol 256: length 1
  sym0(); // the one distance code: length 0
  w.write(0, 1); // the block's only symbol: end of block
}

const prefaces: Uint8Array[] = [];

/**
 * Bytes that, fed to a fresh raw inflater, leave it exactly at a block
 * boundary `bits` bits before the next whole byte, with nothing output: empty
 * blocks whose length brings the stream to the right bit, then the last
 * `bits` bits of `partialByte`.
 */
export function preface(bits: number, partialByte: number): Uint8Array {
  if (bits === 0) return new Uint8Array(0);
  let base = prefaces[bits];
  if (!base) {
    // Find the empty blocks whose total length L satisfies (L + bits) % 8 == 0.
    const need = (8 - bits) % 8;
    let w: BitWriter | undefined;
    for (const dynamic of [false, true]) {
      for (let fixed = 0; fixed < 4 && !w; fixed++) {
        const len = (dynamic ? 93 : 0) + 10 * fixed;
        if (len % 8 !== need || len === 0) continue;
        w = new BitWriter();
        if (dynamic) emptyDynamicBlock(w);
        for (let i = 0; i < fixed; i++) emptyFixedBlock(w);
      }
      if (w) break;
    }
    if (!w || w.pending + bits !== 8) throw new Error(`deflate preface: no block combination for ${bits} bits`);
    base = Uint8Array.from([...w.bytes, w.partial]); // the last byte's high bits come from partialByte
    prefaces[bits] = base;
  }
  const out = Uint8Array.from(base);
  const pendingBits = 8 - bits;
  // The pending low bits are already in place in `base`'s last byte; the
  // boundary's `bits` bits are the high bits of partialByte.
  out[out.length - 1] = (base[base.length - 1]! & ((1 << pendingBits) - 1)) | (partialByte & ~((1 << pendingBits) - 1) & 0xff);
  return out;
}

// --- Streams of stored blocks -------------------------------------------------------------

/**
 * Maps a deflate stream made only of stored blocks (BTYPE 00), walking the
 * 5-byte block headers and reading no data. Resolves undefined as soon as a
 * block of another type appears (the stream needs inflating). The walk
 * checks each LEN against its NLEN, that the final block ends exactly at the
 * compressed size and that the blocks add up to the declared size; anything
 * else rejects with `CORRUPT_ARCHIVE`.
 */
export async function walkStoredBlocks(entry: DeflateEntry, path: string): Promise<StoredBlockMap | undefined> {
  const { source, dataStart, csize, usize } = entry;
  const hdr = new Uint8Array(5);
  const outStart: number[] = [];
  const inStart: number[] = [];
  let inPos = 0;
  let outPos = 0;
  for (;;) {
    if (inPos >= csize) throw corrupt(path, 'deflate data is truncated');
    const n = Math.min(5, csize - inPos);
    await readExact(source, hdr.subarray(0, n), dataStart + inPos, path);
    const type = (hdr[0]! >> 1) & 3;
    // Every header of an all-stored stream starts on a byte boundary (stored blocks end on one).
    if (type !== 0) return undefined;
    if (n < 5) throw corrupt(path, 'deflate data is truncated');
    const len = hdr[1]! | (hdr[2]! << 8);
    const nlen = hdr[3]! | (hdr[4]! << 8);
    if ((len ^ 0xffff) !== nlen) throw corrupt(path, 'invalid deflate data (stored block length check)');
    if (len > 0) {
      outStart.push(outPos);
      inStart.push(inPos + 5);
    }
    inPos += 5 + len;
    outPos += len;
    if (inPos > csize) throw corrupt(path, 'deflate data is truncated');
    if (outPos > usize) throw corrupt(path, `inflated data exceeds the declared ${usize} bytes`);
    if ((hdr[0]! & 1) === 1) break;
  }
  if (inPos !== csize) throw corrupt(path, 'data after the end of the deflate stream');
  if (outPos !== usize) throw corrupt(path, `inflated data is shorter than the declared ${usize} bytes`);
  return { kind: 'stored', outStart: Float64Array.from(outStart), inStart: Float64Array.from(inStart), usize, bytes: 16 * outStart.length + POINT_OVERHEAD };
}

/** The last block starting at or before `pos` (the blocks start in order at `starts[0] === 0`). */
function blockAt(starts: Float64Array | readonly AccessPoint[], pos: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    const start = starts instanceof Float64Array ? starts[mid]! : starts[mid]!.out;
    if (start <= pos) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * The uncompressed bytes of an all-stored deflate stream as a source: each
 * read is one read of the archive, ending at a block's end. Nothing here
 * checks the CRC-32; its reader does.
 */
export function storedBlockSource(entry: DeflateEntry, map: StoredBlockMap): RandomAccessSource {
  const { outStart, inStart, usize } = map;
  const blockEnd = (k: number): number => (k + 1 < outStart.length ? outStart[k + 1]! : usize);
  const rawAt = (k: number, pos: number): number => inStart[k]! + (pos - outStart[k]!);
  const header = new Uint8Array(5); // where scatter reads drop block headers (never read back)
  return {
    size: usize,
    /**
     * Fills `buf` as far as the entry goes. A read across blocks is one read of the archive
     * (headers included) and a copy per block: writers' blocks are 16–64 KiB, and a read of
     * the archive costs more than a copy.
     */
    async read(buf, position) {
      const want = Math.min(buf.length, usize - position);
      if (want <= 0) return 0;
      const first = blockAt(outStart, position);
      let last = first;
      while (blockEnd(last) < position + want) last++;
      const from = entry.dataStart + rawAt(first, position);
      if (first === last) return entry.source.read(buf.subarray(0, want), from);
      if (entry.source.readv) {
        // One scatter read: each block's bytes straight to their place in buf, each header to scratch.
        const pieces: Uint8Array[] = [];
        for (let k = first; k <= last; k++) {
          if (k > first) pieces.push(header);
          pieces.push(buf.subarray(Math.max(position, outStart[k]!) - position, Math.min(position + want, blockEnd(k)) - position));
        }
        const n = await entry.source.readv(pieces, from);
        // Bytes that landed in buf: all of them but the headers passed (a short read ends early).
        let done = 0;
        let left = n;
        for (const [i, piece] of pieces.entries()) {
          const take = Math.min(left, piece.length);
          if (i % 2 === 0) done += take;
          left -= take;
          if (take < piece.length) break;
        }
        return done;
      }
      const raw = Buffer.allocUnsafe(entry.dataStart + rawAt(last, position + want) - from);
      let got = 0;
      while (got < raw.length) {
        const n = await entry.source.read(raw.subarray(got), from + got);
        if (n <= 0) break;
        got += n;
      }
      let done = 0;
      for (let k = first; k <= last; k++) {
        const start = Math.max(position, outStart[k]!);
        const end = Math.min(position + want, blockEnd(k));
        const at = entry.dataStart + rawAt(k, start) - from;
        if (at + (end - start) > got) break; // the archive ended early: a short read
        buf.set(raw.subarray(at, at + (end - start)), start - position);
        done = end - position;
      }
      return done;
    },
  };
}

// --- Checkpoints ----------------------------------------------------------------------------

/**
 * What the checkpoint pass needs of an inflater: zlib's `inflate()` on a raw
 * stream, with `Z_BLOCK` (stop at the next block boundary) and zlib's
 * `data_type` (128: at a boundary, 64: the last block is done, low 3 bits:
 * unused bits of the last byte taken). pako provides it
 * ({@link createPakoInflater}); another zlib build may.
 */
export interface BoundaryInflater {
  /** Hands over the next input; call only when `availIn` is 0. */
  setInput(input: Uint8Array): void;
  /** Input bytes not yet consumed. */
  readonly availIn: number;
  /** The last input byte consumed (valid when at least one byte of the current input has been). */
  readonly lastByte: number;
  /** Whether any byte of the current input has been consumed. */
  readonly tookInput: boolean;
  /**
   * Inflates into `out[offset, offset + length)`; with `stopAtBlock`, returns at the next block
   * boundary too. Returns zlib's status (`Z_OK` 0, `Z_STREAM_END` 1, `Z_BUF_ERROR` -5, other
   * negatives for bad data) and sets `produced`.
   */
  inflate(out: Uint8Array, offset: number, length: number, stopAtBlock: boolean): number;
  /** Bytes the last `inflate` wrote. */
  readonly produced: number;
  readonly dataType: number;
  /** zlib's message for the last error. */
  readonly message: string;
  /** Frees the inflater. */
  end(): void;
}

/** The {@link BoundaryInflater} over pako's port of zlib (`zlibInflate` with `Z_BLOCK`). */
export function createPakoInflater(): BoundaryInflater {
  const strm = new ZStream();
  zlibInflateInit2(strm, -15);
  let produced = 0;
  return {
    setInput(input) {
      strm.input = input;
      strm.next_in = 0;
      strm.avail_in = input.length;
    },
    get availIn() {
      return strm.avail_in;
    },
    get lastByte() {
      return strm.input[strm.next_in - 1] ?? 0;
    },
    get tookInput() {
      return strm.next_in > 0;
    },
    inflate(out, offset, length, stopAtBlock) {
      strm.output = out as Uint8Array<ArrayBuffer>;
      strm.next_out = offset;
      strm.avail_out = length;
      const status = zlibInflate(strm, stopAtBlock ? Z_BLOCK : Z_NO_FLUSH);
      produced = strm.next_out - offset;
      return status;
    },
    get produced() {
      return produced;
    },
    get dataType() {
      return strm.data_type;
    },
    get message() {
      return strm.msg;
    },
    end() {
      zlibInflateEnd(strm);
    },
  };
}

/**
 * The inflater the checkpoint pass uses by default: zlib itself compiled to
 * WebAssembly ({@link createWasmInflater}), or pako where WebAssembly is
 * unavailable or will not instantiate.
 */
export function createBoundaryInflater(): BoundaryInflater {
  try {
    return createWasmInflater();
  } catch {
    return createPakoInflater();
  }
}

/** How the checkpoint pass spaces its points. */
export interface CheckpointOptions {
  /** Least output between two access points (default 1 MiB): a read inflates at most about this much to reach its offset. */
  readonly span: number;
  /** Most bytes the index may hold; a point that would pass it is put off to a later boundary. */
  readonly maxBytes: number;
}

/** The default most index memory per byte of entry: 0.8%, so it stays under 1% even where windows do not compress. */
export const INDEX_SHARE = 0.008;

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * One pass over a deflate stream with pako, recording an access point at the
 * first block boundary after each `span` of output, as long as the index
 * stays within `maxBytes` in proportion to the output so far (so points are
 * spread over the whole entry). The pass is the entry's full check: the
 * stream must end exactly at the compressed size, the output must be exactly
 * the declared size and match the CRC-32; anything else rejects with
 * `CORRUPT_ARCHIVE`. A stream that is one huge block gives one point, at 0.
 */
export async function buildCheckpoints(
  entry: DeflateEntry,
  path: string,
  options: CheckpointOptions,
  inflater: BoundaryInflater = createBoundaryInflater(),
): Promise<CheckpointIndex> {
  const { source, dataStart, csize, usize } = entry;
  const input = new Uint8Array(Math.max(1, Math.min(INPUT_CHUNK, csize)));
  // Output lands after a copy of the last window, so each point's window is one slice.
  const out = new Uint8Array(WINDOW_SIZE + OUTPUT_CHUNK);
  const points: AccessPoint[] = [{ out: 0, in: 0, bits: 0, partialByte: 0, window: new Uint8Array(0) }];
  let bytes = POINT_OVERHEAD;
  let inRead = 0; // compressed bytes handed to the inflater
  let total = 0; // output so far
  let crc = 0;
  let held = 0; // bytes of earlier output kept before WINDOW_SIZE in `out`
  let nextTry = options.span; // output offset from which the next block boundary becomes a point
  let lastYield = performance.now();
  try {
    for (;;) {
      if (inflater.availIn === 0 && inRead < csize) {
        const chunk = input.subarray(0, Math.min(input.length, csize - inRead));
        await readExact(source, chunk, dataStart + inRead, path);
        inRead += chunk.length;
        inflater.setInput(chunk);
        lastYield = performance.now();
      }
      // Until the next point is due, inflate without stopping at blocks (stopping at each one
      // costs pako a third more), and only up to where it is due.
      const seeking = total >= nextTry;
      const status = inflater.inflate(out, WINDOW_SIZE, seeking ? OUTPUT_CHUNK : Math.min(OUTPUT_CHUNK, nextTry - total), seeking);
      const produced = inflater.produced;
      // All input given and nothing more to come out: the stream ends without its final block.
      if (status === Z_BUF_ERROR || (produced === 0 && inflater.availIn === 0 && inRead >= csize && status !== Z_STREAM_END)) {
        throw corrupt(path, 'deflate data is truncated');
      }
      if (status < 0) throw corrupt(path, `invalid deflate data (${inflater.message || `zlib status ${status}`})`);
      const end = WINDOW_SIZE + produced;
      if (produced > 0) {
        if (total + produced > usize) throw corrupt(path, `inflated data exceeds the declared ${usize} bytes`);
        crc = crc32(out.subarray(WINDOW_SIZE, end), crc);
        total += produced;
      }
      if (status === Z_STREAM_END) {
        if (inflater.availIn !== 0 || inRead !== csize) throw corrupt(path, 'data after the end of the deflate stream');
        break;
      }
      // data_type: 128 = at a block boundary (before a header), 64 = the last block was done, low 3 = unused bits.
      const dataType = inflater.dataType;
      const boundary = (dataType & 128) !== 0 && (dataType & 64) === 0;
      const bits = dataType & 7;
      // (A boundary with bits left needs the byte they are in, which zlib has always taken from this input.)
      if (boundary && total >= nextTry && (bits === 0 || inflater.tookInput)) {
        const windowLength = Math.min(WINDOW_SIZE, total);
        // Copied to its own exact-size buffer: zlib's sync result can be a view of a larger chunk it would keep alive.
        const window = new Uint8Array(deflateRawSync(out.subarray(end - windowLength, end), { level: 1 }));
        const cost = window.length + POINT_OVERHEAD;
        if (bytes + cost <= options.maxBytes * (total / Math.max(1, usize))) {
          points.push({ out: total, in: inRead - inflater.availIn, bits, partialByte: bits > 0 ? inflater.lastByte : 0, window });
          bytes += cost;
          nextTry = total + options.span;
        } else {
          // Over budget so far: wait until the output has grown enough to pay for a point like this one.
          nextTry = options.maxBytes > 0 ? Math.max(total + 1, Math.ceil(((bytes + cost) * usize) / options.maxBytes)) : Infinity;
        }
      }
      // Keep the last WINDOW_SIZE bytes of output in front for the next call.
      const keep = Math.min(WINDOW_SIZE, held + produced);
      out.copyWithin(WINDOW_SIZE - keep, end - keep, end);
      held = keep;
      if (performance.now() - lastYield > YIELD_MS) {
        await yieldToLoop();
        lastYield = performance.now();
      }
    }
  } finally {
    inflater.end();
  }
  if (total !== usize) throw corrupt(path, `inflated data is shorter than the declared ${usize} bytes`);
  if (crc >>> 0 !== entry.crc >>> 0) throw corrupt(path, 'CRC-32 mismatch');
  return { kind: 'checkpoints', points, bytes };
}

/** The access point a read at `pos` starts from. */
export function pointFor(index: CheckpointIndex, pos: number): AccessPoint {
  return index.points[blockAt(index.points, pos)]!;
}

/** The window of a point, inflated, for `createInflateRaw({ dictionary })`. */
export function pointWindow(point: AccessPoint): Buffer | undefined {
  return point.window.length === 0 ? undefined : inflateRawSync(point.window, { finishFlush: zc.Z_FINISH });
}
