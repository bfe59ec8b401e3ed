import type { Transform } from 'node:stream';
import { createGunzip, createInflateRaw, crc32, inflateRaw, inflateRawSync } from 'node:zlib';
import { FopError } from '../errors.js';
import { FopHandle, type FopHandleInit } from '../handle.js';
import type { FileOps } from '../types.js';
import { pointFor, pointWindow, preface, type AccessPoint, type CheckpointIndex } from './deflate-index.js';
import { adviseSource, readExact, type RandomAccessSource } from './source.js';

/** What an entry handle needs to know about its entry. */
export interface EntryData {
  readonly source: RandomAccessSource;
  readonly dataStart: number;
  readonly csize: number;
  readonly usize: number;
  readonly crc: number;
  /** The entry's identity form's token: the archive's identity (never its path), the row, CRC-32 and size. */
  readonly identity: string;
  /** A complete read has already matched the CRC-32 in this version of the archive, and the backend trusts that (`storedCrc: 'first-read'`). */
  readonly verified: boolean;
  /** Records that a complete read matched the CRC-32. */
  readonly markVerified: () => void;
  /** Whether the archive file may have changed since it was opened (its handle's `changed()`). */
  readonly archiveChanged: () => Promise<boolean>;
  /** Called once when the handle closes (releases the archive). */
  readonly release: () => void;
}

// The gzip member header lws sends: ID1 ID2, CM=8, FLG=0, MTIME=0, XFL=0, OS=3 (RFC 1952 §2.3).
// MTIME=0 keeps the bytes, and so validators, stable across rebuilds.
export const GZIP_HEADER: Readonly<Uint8Array> = Uint8Array.of(0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0x03);
const INPUT_CHUNK = 64 * 1024;

function corruptData(path: string, detail: string, cause?: unknown): FopError {
  return new FopError('CORRUPT_ARCHIVE', 'read', path, detail, cause === undefined ? undefined : { cause });
}

/** Says in zip terms what zlib found wrong with the wrapped member. */
function describeZlibError(err: Error): string {
  if (/incorrect data check/.test(err.message)) return 'CRC-32 mismatch';
  if (/incorrect length check/.test(err.message)) return 'inflated size disagrees with the declared size';
  if (/unexpected end of file/.test(err.message)) return 'deflate data is truncated';
  return `invalid deflate data (${err.message})`;
}

/** The 8-byte gzip trailer: CRC-32 and ISIZE (size mod 2^32), little-endian (RFC 1952 §2.3.1). */
export function gzipTrailer(crc: number, usize: number): Uint8Array {
  const t = Buffer.alloc(8);
  t.writeUInt32LE(crc >>> 0, 0);
  t.writeUInt32LE(usize % 0x100000000, 4);
  return t;
}

abstract class EntryHandle extends FopHandle {
  protected readonly entry: EntryData;
  /** See {@link EntryData.identity}; the gzip form adds its own suffix. */
  readonly identity: string;

  constructor(fops: FileOps, path: string, init: FopHandleInit, entry: EntryData, identity = entry.identity) {
    super(fops, path, init);
    this.entry = entry;
    this.identity = identity;
  }

  /** True when the archive file may have changed since it was opened: these bytes come from it as they are read. */
  async changed(): Promise<boolean> {
    this.assertOpen('stat');
    return this.entry.archiveChanged();
  }

  protected override closeImpl(): Promise<void> {
    this.entry.release();
    return Promise.resolve();
  }

  /** Reads raw entry bytes at `offset` within the stored data. */
  protected async readRaw(buf: Uint8Array, offset: number): Promise<number> {
    const n = await this.entry.source.read(buf, this.entry.dataStart + offset);
    if (n <= 0) throw corruptData(this.path, 'archive is truncated (or changed while open)');
    return n;
  }

  /**
   * A `readBuffer` over the source's views of its own memory, where it has them (see
   * `RandomAccessSource.view`): serialised, from `pos`, advancing it by what `produce` gave, which
   * gets the source's `view` and the handle's position and bytes left (at least one).
   */
  protected viewReader(
    produce: (view: (offset: number, maxLength: number) => Promise<Buffer>, at: number, n: number) => Promise<Buffer>,
  ): ((maxLength: number) => Promise<Buffer>) | undefined {
    const source = this.entry.source;
    if (!source.view) return undefined;
    // Raw entry bytes at `offset` within the stored data, as a view; never empty.
    const view = async (offset: number, maxLength: number): Promise<Buffer> => {
      const chunk = await source.view!(this.entry.dataStart + offset, maxLength);
      if (chunk.length === 0) throw corruptData(this.path, 'archive is truncated (or changed while open)');
      return chunk;
    };
    return (maxLength) =>
      this.serial('read', async () => {
        const n = Math.min(maxLength, this.length - this.pos);
        if (n <= 0) return Buffer.alloc(0);
        const chunk = await produce(view, this.pos, n);
        this.pos += chunk.length;
        return chunk;
      });
  }
}

/**
 * A stored (method 0) entry: reads are slices of the archive, seeks are free.
 * Every read sequence that covers the entry from byte 0 to the end is checked
 * against the CRC-32, however often the entry has matched before; a mismatch
 * rejects the read that completes the entry. `readAt` is not checked.
 */
export class StoredEntryHandle extends EntryHandle {
  #crc = 0;
  #crcPos = 0;
  /**
   * Where the archive's source hands out views of its own memory (a remote archive's block cache):
   * the entry's bytes as those views, checked as reads are, with no copy.
   */
  readonly readBuffer?: (maxLength: number) => Promise<Buffer>;

  constructor(fops: FileOps, path: string, init: FopHandleInit, entry: EntryData) {
    super(fops, path, init, entry);
    const reader = this.viewReader(async (view, at, n) => {
      const chunk = await view(at, n);
      this.#check(chunk);
      return chunk;
    });
    if (reader) this.readBuffer = reader;
  }

  protected async readImpl(buf: Uint8Array): Promise<number> {
    const n = await this.readRaw(buf, this.pos);
    this.#check(buf.subarray(0, n));
    return n;
  }

  /** Checks `bytes`, just read at `pos`, into the running CRC-32 of a read from byte 0 on. */
  #check(bytes: Uint8Array): void {
    // Skipped only under storedCrc 'first-read', whose users check changed() before trusting a read.
    if (this.entry.verified) return;
    if (this.pos === 0) {
      this.#crc = 0;
      this.#crcPos = 0;
    }
    if (this.pos === this.#crcPos) {
      this.#crc = crc32(bytes, this.#crc);
      this.#crcPos += bytes.length;
      if (this.#crcPos === this.length) {
        if (this.#crc >>> 0 !== this.entry.crc) throw corruptData(this.path, 'CRC-32 mismatch');
        this.entry.markVerified();
      }
    }
  }

  readAt(buf: Uint8Array, position: number): Promise<number> {
    this.assertOpen('read');
    if (position >= this.length) return Promise.resolve(0);
    return this.readRaw(buf.length > this.length - position ? buf.subarray(0, this.length - position) : buf, position);
  }

  /** Passes read-ahead advice on to the archive (an archive stored inside one reads through here). */
  advise(offset: number, length: number, whole = false): void {
    if (this.closed || offset >= this.length) return;
    adviseSource(this.entry.source, this.entry.dataStart + offset, Math.min(length, this.length - offset), whole);
  }
}

/**
 * A deflated entry sent as one gzip member without decompressing it:
 * header (10) + the entry's raw deflate bytes + CRC-32 and ISIZE from the
 * central directory (8). Positions count gzip bytes; seeks are free.
 * The client's gunzip checks the CRC.
 */
export class GzipEntryHandle extends EntryHandle {
  readonly #trailer: Uint8Array;

  /** Where the archive's source hands out views of its own memory: the raw deflate bytes as those views, no copy. */
  readonly readBuffer?: (maxLength: number) => Promise<Buffer>;

  constructor(fops: FileOps, path: string, init: Omit<FopHandleInit, 'length'>, entry: EntryData) {
    // Another representation, other bytes: its own identity.
    super(fops, path, { ...init, length: entry.csize + 18 }, entry, `${entry.identity}:gzip:${entry.csize}`);
    this.#trailer = gzipTrailer(entry.crc, entry.usize);
    const reader = this.viewReader(async (view, at, n) => {
      const csize = this.entry.csize;
      if (at >= 10 && at < 10 + csize) return view(at - 10, Math.min(n, 10 + csize - at));
      // The header (with the data's first bytes) and the trailer: small copies.
      const buf = Buffer.allocUnsafe(n);
      return buf.subarray(0, await this.#readAt(buf, at));
    });
    if (reader) this.readBuffer = reader;
  }

  protected readImpl(buf: Uint8Array): Promise<number> {
    return this.#readAt(buf, this.pos);
  }

  readAt(buf: Uint8Array, position: number): Promise<number> {
    this.assertOpen('read');
    if (position >= this.length) return Promise.resolve(0);
    return this.#readAt(buf.length > this.length - position ? buf.subarray(0, this.length - position) : buf, position);
  }

  async #readAt(buf: Uint8Array, position: number): Promise<number> {
    const csize = this.entry.csize;
    if (position < 10) {
      const n = Math.min(buf.length, 10 - position);
      buf.set(GZIP_HEADER.subarray(position, position + n));
      if (n === buf.length || csize === 0) return n;
      return n + (await this.readRaw(buf.subarray(n, n + Math.min(buf.length - n, csize)), 0));
    }
    if (position < 10 + csize) {
      const want = Math.min(buf.length, 10 + csize - position);
      return this.readRaw(buf.subarray(0, want), position - 10);
    }
    const t = position - 10 - csize;
    const n = Math.min(buf.length, 8 - t);
    buf.set(this.#trailer.subarray(t, t + n));
    return n;
  }
}

/** Where an {@link Inflater} starts: the entry's beginning, or an access point of its index. */
interface InflateStart {
  readonly point: AccessPoint;
  /** The point's window, inflated (absent at offset 0). */
  readonly dictionary: Buffer | undefined;
}

/**
 * A pull interface over one zlib stream. From the entry's start it is a
 * gunzip stream fed with the entry wrapped as a gzip member, so zlib checks
 * the CRC-32 and ISIZE itself; from an access point it is a raw inflater
 * primed with the point's window and bit offset (the whole entry was checked
 * when the index was built). Memory is one input chunk plus zlib's window and
 * one output chunk, whatever the entry's size.
 */
class Inflater {
  readonly #z: Transform;
  readonly #entry: EntryData;
  readonly #path: string;
  readonly #head: Uint8Array; // the gzip header, or the preface that restores the bit offset
  readonly #from: number; // compressed offset the raw bytes start at
  readonly #tail: Uint8Array; // the gzip trailer, or nothing
  #fed = 0; // bytes written so far, head and tail included
  // One input buffer, reused: the next chunk is read only after zlib has consumed the last.
  readonly #input: Buffer;
  #writing = false;
  #ended = false;
  #error: Error | undefined;
  #wake: (() => void) | undefined;

  constructor(entry: EntryData, trailer: Uint8Array, path: string, start?: InflateStart) {
    this.#entry = entry;
    this.#path = path;
    if (start && start.point.out > 0) {
      this.#z = createInflateRaw({ chunkSize: INPUT_CHUNK, ...(start.dictionary ? { dictionary: start.dictionary } : {}) });
      this.#head = preface(start.point.bits, start.point.partialByte);
      this.#from = start.point.in;
      this.#tail = new Uint8Array(0);
    } else {
      this.#z = createGunzip({ chunkSize: INPUT_CHUNK });
      this.#head = GZIP_HEADER;
      this.#from = 0;
      this.#tail = trailer;
    }
    this.#input = Buffer.allocUnsafe(Math.max(1, Math.min(INPUT_CHUNK, entry.csize)));
    const wake = (): void => this.#wakeUp();
    this.#z.on('readable', wake);
    this.#z.on('end', () => {
      this.#ended = true;
      wake();
    });
    this.#z.on('error', (err: Error) => {
      this.#error = err;
      wake();
    });
  }

  get #total(): number {
    return this.#head.length + (this.#entry.csize - this.#from) + this.#tail.length;
  }

  /** The next chunk of inflated bytes, or null at the verified end of the stream. */
  async pull(): Promise<Buffer | null> {
    for (;;) {
      if (this.#error) {
        if (FopError.is(this.#error)) throw this.#error;
        throw corruptData(this.#path, describeZlibError(this.#error), this.#error);
      }
      const chunk = this.#z.read() as Buffer | null;
      if (chunk) return chunk;
      if (this.#ended) {
        // zlib stops at the end of the deflate stream; bytes left over mean
        // junk after it inside the entry, which a gzip client would reject.
        if ((this.#z as unknown as { bytesWritten: number }).bytesWritten !== this.#total)
          throw corruptData(this.#path, 'data after the end of the deflate stream');
        return null;
      }
      // Wait for output, the end, an error, or zlib having consumed our input.
      // The input write is never awaited alone: zlib defers its callback until
      // output is read when its buffer is full (backpressure).
      const waiting = new Promise<void>((resolve) => (this.#wake = resolve));
      if (!this.#writing && this.#fed < this.#total) this.#feed();
      await waiting;
    }
  }

  #feed(): void {
    this.#writing = true;
    const rawEnd = this.#head.length + (this.#entry.csize - this.#from);
    const write = (chunk: Uint8Array): void => {
      this.#fed += chunk.length;
      const last = this.#fed === this.#total;
      this.#z.write(chunk, () => {
        this.#writing = false;
        this.#wakeUp();
      });
      if (last) this.#z.end();
    };
    if (this.#fed < this.#head.length) {
      write(this.#head);
      return;
    }
    if (this.#fed >= rawEnd) {
      write(this.#tail);
      return;
    }
    const off = this.#from + (this.#fed - this.#head.length);
    const chunk = this.#input.subarray(0, Math.min(INPUT_CHUNK, this.#entry.csize - off));
    readExact(this.#entry.source, chunk, this.#entry.dataStart + off, this.#path).then(
      () => write(chunk),
      (err: unknown) => {
        this.#error = err instanceof Error ? err : new Error(String(err));
        this.#wakeUp();
      },
    );
  }

  #wakeUp(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  /** Stops the stream; a pull waiting on it rejects with `CLOSED`. */
  destroy(): void {
    this.#error ??= new FopError('CLOSED', 'read', this.#path);
    this.#z.destroy();
    this.#wakeUp();
  }
}

/** What an inflated handle's random access needs: the span between access points, and the index (built on first use). */
export interface EntryRandomAccess {
  /** Reads within this distance ahead of a stream inflate forward; farther ones start from an access point. */
  readonly span: number;
  /** The entry's checkpoint index, from the cache or built now (one pass over the entry). */
  readonly index: () => Promise<CheckpointIndex>;
}

/**
 * A position in the inflated stream of one entry: a zlib stream and the last
 * chunk it gave. Forward reads within a span continue it; a read farther
 * ahead, or behind, starts again from the nearest access point (with an
 * index) or from the start. The output is counted against the declared size
 * (more is an error at once) and, from the start, the read that would
 * complete the entry waits for zlib's CRC-32 and length check, so wrong bytes
 * are never delivered as a whole file.
 */
class InflateCursor {
  readonly #entry: EntryData;
  readonly #trailer: Uint8Array;
  readonly #path: string;
  readonly #access: EntryRandomAccess | undefined;
  #inflater: Inflater | undefined;
  #chunk: Buffer | undefined; // the last chunk pulled, covering [#chunkStart, #outPos)
  #chunkStart = 0;
  #outPos = 0; // logical position just after everything pulled so far
  busy = false;

  constructor(entry: EntryData, trailer: Uint8Array, path: string, access: EntryRandomAccess | undefined) {
    this.#entry = entry;
    this.#trailer = trailer;
    this.#path = path;
    this.#access = access;
  }

  /** Where the next pull starts: a read at or just after here costs no restart. */
  get position(): number {
    return this.#outPos;
  }

  /** A view of up to `max` inflated bytes starting at `pos`, inflating (or restarting) as needed. */
  async viewAt(pos: number, max: number): Promise<Buffer> {
    const chunk = this.#chunk;
    if (chunk && pos >= this.#chunkStart && pos < this.#outPos) return this.#slice(chunk, pos, max);
    const span = this.#access?.span ?? Infinity;
    if (!this.#inflater || pos < this.#chunkStart || pos > this.#outPos + span) await this.#restartFor(pos);
    for (;;) {
      const c = this.#chunk;
      if (c && pos >= this.#chunkStart && pos < this.#outPos) return this.#slice(c, pos, max);
      await this.#pullNext();
    }
  }

  #slice(chunk: Buffer, pos: number, max: number): Buffer {
    const from = pos - this.#chunkStart;
    return chunk.subarray(from, from + Math.min(max, chunk.length - from));
  }

  async #restartFor(pos: number): Promise<void> {
    let point: AccessPoint | undefined;
    // Deep reads use the index (built on the first); near the start, inflating from 0 is as cheap.
    if (this.#access && pos >= this.#access.span) point = pointFor(await this.#access.index(), pos);
    // Never go back when the stream already runs between the point and pos.
    if (this.#inflater && pos >= this.#chunkStart && (point?.out ?? 0) <= this.#outPos) return;
    this.#inflater?.destroy();
    this.#inflater = new Inflater(this.#entry, this.#trailer, this.#path, point && point.out > 0 ? { point, dictionary: pointWindow(point) } : undefined);
    this.#chunk = undefined;
    this.#chunkStart = point?.out ?? 0;
    this.#outPos = this.#chunkStart;
  }

  async #pullNext(): Promise<void> {
    const inflater = this.#inflater;
    if (!inflater) throw new FopError('CLOSED', 'read', this.#path); // destroyed while a read ran
    const length = this.#entry.usize;
    const next = await inflater.pull();
    if (next === null) throw corruptData(this.#path, `inflated data is shorter than the declared ${length} bytes`);
    const outPos = this.#outPos + next.length;
    if (outPos > length) throw corruptData(this.#path, `inflated data exceeds the declared ${length} bytes`);
    if (outPos === length) {
      // Hold the final bytes back until zlib has verified CRC-32 and ISIZE.
      const after = await inflater.pull();
      if (after !== null) throw corruptData(this.#path, `inflated data exceeds the declared ${length} bytes`);
    }
    this.#chunk = next;
    this.#chunkStart = this.#outPos;
    this.#outPos = outPos;
  }

  destroy(): void {
    this.#inflater?.destroy();
    this.#inflater = undefined;
    this.#chunk = undefined;
  }
}

/**
 * A deflated entry for a client that cannot take gzip: inflated on the fly.
 * Sequential reads stream one inflater; with an index ({@link EntryRandomAccess}),
 * seeks and positional reads start from the nearest access point, so a read
 * anywhere costs at most about one span of inflating. `readAt` keeps one
 * spare stream, so positional reads that follow each other continue it.
 */
export class InflateEntryHandle extends EntryHandle {
  readonly #trailer: Uint8Array;
  readonly #access: EntryRandomAccess | undefined;
  readonly #main: InflateCursor;
  #spare: InflateCursor | undefined;
  readonly #cursors = new Set<InflateCursor>();

  constructor(fops: FileOps, path: string, init: Omit<FopHandleInit, 'length'>, entry: EntryData, access?: EntryRandomAccess) {
    super(fops, path, { ...init, length: entry.usize }, entry);
    this.#trailer = gzipTrailer(entry.crc, entry.usize);
    this.#access = access;
    this.#main = this.#cursor();
  }

  #cursor(): InflateCursor {
    const c = new InflateCursor(this.entry, this.#trailer, this.path, this.#access);
    this.#cursors.add(c);
    return c;
  }

  protected async readImpl(buf: Uint8Array): Promise<number> {
    const view = await this.#main.viewAt(this.pos, buf.length);
    buf.set(view);
    return view.length;
  }

  /** Hands over zlib's own output chunk (or part of it) without a copy. */
  readBuffer(maxLength: number): Promise<Buffer> {
    return this.serial('read', async () => {
      const left = this.length - this.pos;
      if (maxLength <= 0 || left <= 0) return Buffer.alloc(0);
      const view = await this.#main.viewAt(this.pos, Math.min(maxLength, left));
      this.pos += view.length;
      return view;
    });
  }

  /** Fills `buf` from `position` (short only at the end); concurrent calls each get their own stream. */
  async readAt(buf: Uint8Array, position: number): Promise<number> {
    this.assertOpen('read');
    if (position >= this.length || buf.length === 0) return 0;
    const want = Math.min(buf.length, this.length - position);
    let cursor = this.#spare;
    if (!cursor || cursor.busy) cursor = this.#cursor();
    cursor.busy = true;
    try {
      let done = 0;
      while (done < want) {
        const view = await cursor.viewAt(position + done, want - done);
        buf.set(view, done);
        done += view.length;
      }
      return done;
    } catch (err) {
      this.#drop(cursor);
      throw err;
    } finally {
      cursor.busy = false;
      if (this.closed)
        this.#dropAll(); // closed while this read ran
      else if (this.#cursors.has(cursor) && cursor !== this.#spare) {
        // Keep the stream that read last: the next positional read most likely follows it.
        if (this.#spare && !this.#spare.busy) this.#drop(this.#spare);
        if (this.#spare) this.#drop(cursor);
        else this.#spare = cursor;
      }
    }
  }

  #drop(cursor: InflateCursor): void {
    cursor.destroy();
    this.#cursors.delete(cursor);
    if (this.#spare === cursor) this.#spare = undefined;
  }

  #dropAll(): void {
    for (const c of this.#cursors) c.destroy();
    this.#cursors.clear();
    this.#spare = undefined;
  }

  protected override closeImpl(): Promise<void> {
    this.#dropAll();
    return super.closeImpl();
  }
}

/** An empty entry (any method): nothing to read, so nothing that can change (`changed()` is false). */
export class EmptyEntryHandle extends EntryHandle {
  protected readImpl(): Promise<number> {
    return Promise.resolve(0);
  }

  // eslint-disable-next-line @typescript-eslint/require-await -- on a closed handle it must reject, not throw
  override async changed(): Promise<boolean> {
    this.assertOpen('stat');
    return false;
  }
}

/**
 * An entry whose verified content is in memory (from the inflated-content
 * cache): reads are copies, `readBuffer` hands out views without copying.
 * `changed()` is false: the bytes were checked whole against the CRC-32 and
 * size before the handle existed, and the archive is never read again.
 */
export class MemoryEntryHandle extends EntryHandle {
  readonly #data: Buffer;

  constructor(fops: FileOps, path: string, init: Omit<FopHandleInit, 'length'>, entry: EntryData, data: Buffer) {
    super(fops, path, { ...init, length: data.length }, entry);
    this.#data = data;
  }

  // eslint-disable-next-line @typescript-eslint/require-await -- on a closed handle it must reject, not throw
  override async changed(): Promise<boolean> {
    this.assertOpen('stat');
    return false;
  }

  protected readImpl(buf: Uint8Array): Promise<number> {
    return this.readAt(buf, this.pos);
  }

  readAt(buf: Uint8Array, position: number): Promise<number> {
    this.assertOpen('read');
    if (position >= this.#data.length) return Promise.resolve(0);
    const n = Math.min(buf.length, this.#data.length - position);
    buf.set(this.#data.subarray(position, position + n));
    return Promise.resolve(n);
  }

  readBuffer(maxLength: number): Promise<Buffer> {
    return this.serial('read', () => {
      const n = Math.max(0, Math.min(maxLength, this.length - this.pos));
      const view = this.#data.subarray(this.pos, this.pos + n);
      this.pos += n;
      return Promise.resolve(view);
    });
  }
}

/**
 * Inflates a whole (small) deflated entry and verifies it completely before
 * anything is served: the deflate stream must end exactly at the compressed
 * size, the output must be exactly the declared size (never more is
 * produced), and the CRC-32 must match.
 */
export async function inflateWhole(entry: EntryData, path: string): Promise<Buffer> {
  const raw = Buffer.allocUnsafe(entry.csize);
  await readExact(entry.source, raw, entry.dataStart, path);
  const { buffer, engine } = await new Promise<{ buffer: Buffer; engine: { bytesWritten: number } }>((resolve, reject) =>
    inflateRaw(raw, { info: true, maxOutputLength: Math.max(1, entry.usize) }, (err, result) => {
      if (!err) {
        resolve(result as unknown as { buffer: Buffer; engine: { bytesWritten: number } });
        return;
      }
      // maxOutputLength stops zlib as soon as the output would pass the declared size.
      const tooLong = (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
      reject(corruptData(path, tooLong ? `inflated data exceeds the declared ${entry.usize} bytes` : describeZlibError(err), err));
    }),
  );
  if (buffer.length !== entry.usize) throw corruptData(path, 'inflated size disagrees with the declared size');
  if (engine.bytesWritten !== entry.csize) throw corruptData(path, 'data after the end of the deflate stream');
  if (crc32(buffer) >>> 0 !== entry.crc) throw corruptData(path, 'CRC-32 mismatch');
  return buffer;
}

/**
 * The most compressed bytes an empty deflated entry may have. Writers emit 2
 * (one empty final block); a few more allow for other encoders' block choices.
 */
export const MAX_EMPTY_DEFLATE = 64;

/**
 * Checks that a deflated entry declared empty holds an empty deflate stream
 * that ends exactly at its compressed size (at most {@link MAX_EMPTY_DEFLATE},
 * checked first), so that no reader can find content in it. Rejects with
 * `CORRUPT_ARCHIVE` for `open`.
 */
export async function checkEmptyDeflate(source: RandomAccessSource, dataStart: number, csize: number, path: string): Promise<void> {
  const bad = (detail: string, cause?: unknown): FopError => new FopError('CORRUPT_ARCHIVE', 'open', path, detail, cause === undefined ? undefined : { cause });
  if (csize > MAX_EMPTY_DEFLATE) throw bad(`empty entry has ${csize} bytes of compressed data`);
  const raw = Buffer.allocUnsafe(csize);
  await readExact(source, raw, dataStart, path);
  let result: { buffer: Buffer; engine: { bytesWritten: number } };
  try {
    // Sync: at most 64 bytes in, at most one byte out (one is enough to refuse).
    result = inflateRawSync(raw, { info: true, maxOutputLength: 1 }) as unknown as typeof result;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw bad('empty entry is not empty', err);
    throw bad(`empty entry: ${describeZlibError(err as Error)}`, err);
  }
  if (result.buffer.length !== 0) throw bad('empty entry is not empty');
  if (result.engine.bytesWritten !== csize) throw bad('empty entry: data after the end of the deflate stream');
}
