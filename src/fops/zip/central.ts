import { FopError } from '../errors.js';
import { UNIX_HOSTS, decodeName, normalizeName, validateName, type BadNameReason } from './names.js';
import type { ZipLimits } from './limits.js';
import { adviseSource, readExact, type RandomAccessSource } from './source.js';

// APPNOTE.TXT record signatures and fixed sizes.
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_CENTRAL = 0x02014b50;
const EOCD_SIZE = 22;
const LOCATOR_SIZE = 20;
const ZIP64_EOCD_SIZE = 56;
const CENTRAL_SIZE = 46;
const LFH_SIZE = 30;
const MAX_COMMENT = 0xffff;
/** Zero bytes accepted after the end record (a block-padded tar-style writer; bsdtar pads to 10,240). */
const MAX_ZERO_PADDING = 64 * 1024;
// The smallest data descriptor (no signature, 32-bit sizes): a lower bound for overlap maths.
const MIN_DATA_DESCRIPTOR = 12;
// Central directory reads: one fixed-size window, never a buffer sized from the archive.
const CD_WINDOW = 1024 * 1024;

/** General-purpose flag bits (APPNOTE 4.4.4). */
export const GP_ENCRYPTED = 0x0001;
export const GP_DATA_DESCRIPTOR = 0x0008;
export const GP_STRONG_ENCRYPTION = 0x0040;
export const GP_UTF8 = 0x0800;
export const GP_MASKED_HEADERS = 0x2000;

/** Entry kinds in {@link ZipIndex.kind}. */
export const KIND_FILE = 0;
export const KIND_DIR = 1;
export const KIND_SYMLINK = 2;
/** Bit in {@link ZipIndex.kind}: a WinZip AES extra field (0x9901) was present. */
export const KIND_AES = 0x10;

/** Per-archive facts from the end records. */
export interface ZipEnd {
  /** Bytes prepended to the archive (a self-extractor stub); offsets are shifted by it. */
  readonly baseOffset: number;
  readonly cdStart: number;
  readonly cdEnd: number;
  readonly declaredCount: number;
  readonly zip64: boolean;
  readonly comment: Uint8Array;
}

/** A central-directory record hidden because its name is unsafe, and why. */
export interface RefusedEntry {
  readonly row: number;
  readonly reason: BadNameReason;
}

/** Public, materialised view of one record (built on demand, not stored). */
export interface ZipEntryInfo {
  readonly name: string;
  readonly isDirectory: boolean;
  readonly isSymlink: boolean;
  readonly method: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly crc32: number;
  readonly modTime: number;
  readonly encrypted: boolean;
  readonly generalPurposeFlags: number;
  /** Absolute offset of the local header in the source. */
  readonly localHeaderOffset: number;
}

function corrupt(path: string, detail: string): FopError {
  return new FopError('CORRUPT_ARCHIVE', 'index', path, detail);
}

function u64(b: Buffer, o: number, path: string, what: string): number {
  const lo = b.readUInt32LE(o);
  const hi = b.readUInt32LE(o + 4);
  // Anything past 2^53 cannot be an offset or size in a real file (and loses precision).
  if (hi > 0x1fffff) throw corrupt(path, `${what} is larger than 2^53`);
  return hi * 0x100000000 + lo;
}

/** Growable struct-of-arrays storage: a few bytes per record, no per-entry objects. */
class Columns {
  length = 0;
  lfhOffset = new Float64Array(0);
  cdPos = new Float64Array(0);
  csize = new Float64Array(0);
  usize = new Float64Array(0);
  mtime = new Float64Array(0);
  crc = new Uint32Array(0);
  method = new Uint16Array(0);
  gpFlags = new Uint16Array(0);
  nameLen = new Uint16Array(0);
  kind = new Uint8Array(0);

  constructor(capacity: number) {
    this.#resize(Math.max(16, capacity));
  }

  push(): number {
    if (this.length === this.lfhOffset.length) this.#resize(this.length * 2);
    return this.length++;
  }

  #resize(cap: number): void {
    const grow = <T extends Float64Array | Uint32Array | Uint16Array | Uint8Array>(old: T, make: (n: number) => T): T => {
      const next = make(cap);
      next.set(old.subarray(0, this.length));
      return next;
    };
    this.lfhOffset = grow(this.lfhOffset, (n) => new Float64Array(n));
    this.cdPos = grow(this.cdPos, (n) => new Float64Array(n));
    this.csize = grow(this.csize, (n) => new Float64Array(n));
    this.usize = grow(this.usize, (n) => new Float64Array(n));
    this.mtime = grow(this.mtime, (n) => new Float64Array(n));
    this.crc = grow(this.crc, (n) => new Uint32Array(n));
    this.method = grow(this.method, (n) => new Uint16Array(n));
    this.gpFlags = grow(this.gpFlags, (n) => new Uint16Array(n));
    this.nameLen = grow(this.nameLen, (n) => new Uint16Array(n));
    this.kind = grow(this.kind, (n) => new Uint8Array(n));
  }
}

/**
 * The parsed central directory of one archive: a `Map` from canonical name to
 * a row number, and per-row columns in typed arrays. Built once per archive
 * identity; immutable afterwards except for the cached data offsets.
 *
 * Rules (documented in the README):
 * - every name is decoded, normalised (leading `./`, FAT backslashes) and
 *   validated; an unsafe name hides that entry only (see {@link refused});
 * - a name used by two files rejects the archive (repeated directory entries
 *   are harmless and allowed); a name that is both a file and a directory
 *   prefix (`a` and `a/b`) is a file when looked up, and `a/b` stays reachable;
 * - entries whose [local header, data end) ranges overlap, or run into the
 *   central directory, reject the archive (non-recursive zip bombs).
 */
export class ZipIndex {
  readonly path: string;
  readonly end: ZipEnd;
  /** Canonical file name to row. */
  readonly files: Map<string, number>;
  /** Every directory, explicit or implied by a name; the root is `''`. */
  readonly dirs: Set<string>;
  /** Number of central-directory records (files, directories and links). */
  readonly count: number;
  readonly lfhOffset: Float64Array;
  /** Where the next entry's local header (or the central directory) begins: the end of this entry's space. */
  readonly limit: Float64Array;
  readonly cdPos: Float64Array;
  readonly csize: Float64Array;
  readonly usize: Float64Array;
  readonly mtime: Float64Array;
  readonly crc: Uint32Array;
  readonly method: Uint16Array;
  readonly gpFlags: Uint16Array;
  readonly nameLen: Uint16Array;
  readonly kind: Uint8Array;
  /** Cached absolute data offsets, 0 until the local header has been read and checked. */
  readonly dataStart: Float64Array;

  /** Records whose name is unsafe: listed nowhere and never opened (opening one is `NOT_FOUND`), in central-directory order. */
  readonly refused: readonly RefusedEntry[];

  /** @internal */
  constructor(path: string, end: ZipEnd, cols: Columns, files: Map<string, number>, dirs: Set<string>, limit: Float64Array, refused: readonly RefusedEntry[]) {
    this.path = path;
    this.refused = refused;
    this.end = end;
    this.files = files;
    this.dirs = dirs;
    this.count = cols.length;
    const n = cols.length;
    // Doubling leaves spare capacity; copy to the exact size only when the
    // slack is worth a transient second copy (more than an eighth).
    const trim = cols.lfhOffset.length > n + (n >>> 3);
    const fit = <T extends Float64Array | Uint32Array | Uint16Array | Uint8Array>(a: T): T => (trim ? a.slice(0, n) : a.subarray(0, n)) as T;
    this.lfhOffset = fit(cols.lfhOffset);
    this.cdPos = fit(cols.cdPos);
    this.csize = fit(cols.csize);
    this.usize = fit(cols.usize);
    this.mtime = fit(cols.mtime);
    this.crc = fit(cols.crc);
    this.method = fit(cols.method);
    this.gpFlags = fit(cols.gpFlags);
    this.nameLen = fit(cols.nameLen);
    this.kind = fit(cols.kind);
    this.limit = limit;
    this.dataStart = new Float64Array(n);
  }

  /** Whether a row's entry is encrypted in any of the ways APPNOTE knows (never servable). */
  isEncrypted(row: number): boolean {
    return (
      (this.gpFlags[row]! & (GP_ENCRYPTED | GP_STRONG_ENCRYPTION | GP_MASKED_HEADERS)) !== 0 || this.method[row] === 99 || (this.kind[row]! & KIND_AES) !== 0
    );
  }

  /** The materialised record of a file, or undefined. */
  get(name: string): ZipEntryInfo | undefined {
    const row = this.files.get(name);
    return row === undefined ? undefined : this.#info(name, row);
  }

  /** Every file entry, in central-directory order. Directories are in {@link dirs}. */
  *entries(): IterableIterator<ZipEntryInfo> {
    const byRow = new Array<string | undefined>(this.count);
    for (const [name, row] of this.files) byRow[row] = name;
    for (let row = 0; row < this.count; row++) {
      const name = byRow[row];
      if (name !== undefined) yield this.#info(name, row);
    }
  }

  #info(name: string, row: number): ZipEntryInfo {
    const kind = this.kind[row]! & 0x0f;
    return {
      name,
      isDirectory: kind === KIND_DIR,
      isSymlink: kind === KIND_SYMLINK,
      method: this.method[row]!,
      compressedSize: this.csize[row]!,
      size: this.usize[row]!,
      crc32: this.crc[row]!,
      modTime: this.mtime[row]!,
      encrypted: this.isEncrypted(row),
      generalPurposeFlags: this.gpFlags[row]!,
      localHeaderOffset: this.lfhOffset[row]!,
    };
  }
}

/** DOS date/time (no zone; read as UTC so the result does not depend on the server's zone). */
function dosToMs(date: number, time: number): number {
  const year = 1980 + (date >>> 9);
  const month = (date >>> 5) & 0x0f;
  const day = date & 0x1f;
  if (month < 1 || month > 12 || day < 1) return Date.UTC(1980, 0, 1);
  return Date.UTC(year, month - 1, day, time >>> 11, (time >>> 5) & 0x3f, (time & 0x1f) * 2);
}

interface EndCandidate {
  readonly pos: number;
  readonly end?: ZipEnd;
  readonly error?: FopError;
}

async function readAt(src: RandomAccessSource, position: number, length: number, path: string): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  await readExact(src, buf, position, path);
  return buf;
}

/** Resolves one end-record candidate at `pos` into the central directory's location, or explains why not. */
async function resolveEnd(src: RandomAccessSource, eocd: Buffer, pos: number, path: string): Promise<ZipEnd> {
  let disk = eocd.readUInt16LE(4);
  let cdDisk = eocd.readUInt16LE(6);
  let onDisk = eocd.readUInt16LE(8);
  let count = eocd.readUInt16LE(10);
  let cdSize = eocd.readUInt32LE(12);
  let cdOffset = eocd.readUInt32LE(16);
  const comment = Buffer.from(eocd.subarray(EOCD_SIZE));
  let recordPos = pos;
  let zip64 = false;

  if (pos >= LOCATOR_SIZE) {
    const loc = await readAt(src, pos - LOCATOR_SIZE, LOCATOR_SIZE, path);
    if (loc.readUInt32LE(0) === SIG_ZIP64_LOCATOR) {
      zip64 = true;
      const locDisk = loc.readUInt32LE(4);
      const z64Pos = u64(loc, 8, path, 'zip64 end record offset');
      const disks = loc.readUInt32LE(16);
      if (locDisk !== 0 || disks > 1) {
        throw new FopError('UNSUPPORTED_ARCHIVE', 'index', path, 'split (multi-disk) archives are not supported');
      }
      if (z64Pos + ZIP64_EOCD_SIZE > pos - LOCATOR_SIZE) throw corrupt(path, 'invalid zip64 end of central directory record offset');
      const z = await readAt(src, z64Pos, ZIP64_EOCD_SIZE, path);
      if (z.readUInt32LE(0) !== SIG_ZIP64_EOCD) throw corrupt(path, 'invalid zip64 end of central directory record signature');
      const recordSize = u64(z, 4, path, 'zip64 end record size');
      if (z64Pos + 12 + recordSize !== pos - LOCATOR_SIZE) throw corrupt(path, 'zip64 end record size disagrees with its locator');
      disk = z.readUInt32LE(16);
      cdDisk = z.readUInt32LE(20);
      onDisk = u64(z, 24, path, 'zip64 entry count');
      count = u64(z, 32, path, 'zip64 entry count');
      cdSize = u64(z, 40, path, 'central directory size');
      cdOffset = u64(z, 48, path, 'central directory offset');
      recordPos = z64Pos;
    }
  }
  if (disk !== 0 || cdDisk !== 0 || onDisk !== count) {
    throw new FopError('UNSUPPORTED_ARCHIVE', 'index', path, 'split (multi-disk) archives are not supported');
  }
  // The central directory ends where the (zip64) end record begins; anything
  // else means the sizes lie. A positive difference is a prepended stub.
  if (cdSize > recordPos) throw corrupt(path, 'central directory size exceeds the archive');
  const cdStart = recordPos - cdSize;
  const baseOffset = cdStart - cdOffset;
  if (baseOffset < 0) throw corrupt(path, 'central directory offset is out of range');
  if (count > Math.floor(cdSize / CENTRAL_SIZE)) throw corrupt(path, `end record declares ${count} entries, more than the central directory can hold`);
  if (cdSize > 0) {
    // The whole directory is read next: a remote source fetches what it lacks of it in one request.
    adviseSource(src, cdStart, cdSize, true);
    const sig = await readAt(src, cdStart, 4, path);
    if (sig.readUInt32LE(0) !== SIG_CENTRAL) throw corrupt(path, 'no central directory where the end record says');
  } else if (count !== 0) {
    throw corrupt(path, 'end record declares entries but an empty central directory');
  }
  return { baseOffset, cdStart, cdEnd: recordPos, declaredCount: count, zip64, comment };
}

/**
 * Finds the end of central directory record. The search covers the last
 * 22 + 65,535 + 65,536 bytes; a candidate counts only if its comment ends
 * exactly at the end of the file, or is followed by nothing but zero bytes
 * (at most {@link MAX_ZERO_PADDING}: bsdtar writing to a pipe pads its output
 * to a 10,240-byte block). Exactly one candidate may resolve to a consistent
 * central directory (two are an ambiguous archive, CVE-2024-24789 class).
 * Any other trailing data after the comment is refused.
 */
async function findEnd(src: RandomAccessSource, path: string): Promise<ZipEnd> {
  const size = src.size;
  if (size < EOCD_SIZE) throw corrupt(path, 'end of central directory record not found: not a zip archive, or truncated');
  const tailLen = Math.min(size, EOCD_SIZE + MAX_COMMENT + MAX_ZERO_PADDING);
  const tailStart = size - tailLen;
  const tail = await readAt(src, tailStart, tailLen, path);
  // Where the run of zero bytes that ends the file begins.
  let zeros = tailLen;
  while (zeros > 0 && tail[zeros - 1] === 0) zeros--;
  const candidates: EndCandidate[] = [];
  let overrun = false;
  let trailing = false;
  for (let i = tailLen - EOCD_SIZE; i >= 0; i--) {
    if (tail[i] !== 0x50 || tail.readUInt32LE(i) !== SIG_EOCD) continue;
    const commentLen = tail.readUInt16LE(i + 20);
    const recEnd = i + EOCD_SIZE + commentLen;
    if (recEnd > tailLen) {
      overrun = true;
      continue;
    }
    if (recEnd < tailLen && (recEnd < zeros || tailLen - recEnd > MAX_ZERO_PADDING)) {
      trailing = true;
      continue;
    }
    const pos = tailStart + i;
    try {
      candidates.push({ pos, end: await resolveEnd(src, tail.subarray(i, recEnd), pos, path) });
    } catch (err) {
      if (!FopError.is(err)) throw err;
      candidates.push({ pos, error: err });
    }
  }
  const good = candidates.filter((c) => c.end);
  if (good.length > 1) throw corrupt(path, 'ambiguous archive: more than one end of central directory record');
  if (good.length === 1) return good[0]!.end!;
  const firstError = candidates[0]?.error;
  if (firstError) throw firstError;
  if (overrun) throw corrupt(path, 'end of central directory comment runs past the end of the file');
  if (trailing) throw corrupt(path, 'data after the end of central directory record');
  throw corrupt(path, 'end of central directory record not found: not a zip archive, or truncated');
}

interface Extras {
  zip64?: Buffer;
  unicodePath?: Buffer;
  mtime?: number;
  aes: boolean;
}

function parseExtras(b: Buffer, start: number, end: number, path: string, entry: number): Extras {
  const out: Extras = { aes: false };
  let ntfs: number | undefined;
  let i = start;
  // Fewer than 4 bytes left is padding some writers add; yauzl and Info-ZIP ignore it.
  while (i + 4 <= end) {
    const id = b.readUInt16LE(i);
    const len = b.readUInt16LE(i + 2);
    const data = i + 4;
    if (data + len > end) throw corrupt(path, `entry ${entry}: extra field length exceeds the extra field`);
    switch (id) {
      case 0x0001:
        out.zip64 = b.subarray(data, data + len);
        break;
      case 0x7075:
        out.unicodePath = b.subarray(data, data + len);
        break;
      case 0x5455:
        // Extended timestamp: flags, then mtime (Unix seconds) if bit 0.
        if (len >= 5 && (b[data]! & 1) !== 0) out.mtime = b.readInt32LE(data + 1) * 1000;
        break;
      case 0x000a: {
        // NTFS: 4 reserved bytes, then tagged attributes; tag 1 holds mtime in 100 ns since 1601.
        let j = data + 4;
        while (j + 4 <= data + len) {
          const tag = b.readUInt16LE(j);
          const size = b.readUInt16LE(j + 2);
          if (tag === 1 && size >= 24 && j + 4 + 8 <= data + len) {
            const ticks = b.readInt32LE(j + 8) * 0x100000000 + b.readUInt32LE(j + 4);
            ntfs = ticks / 10000 - 11644473600000;
            break;
          }
          j += 4 + size;
        }
        break;
      }
      case 0x9901:
        out.aes = true;
        break;
    }
    i = data + len;
  }
  if (out.mtime === undefined && ntfs !== undefined && Number.isFinite(ntfs)) out.mtime = Math.trunc(ntfs);
  return out;
}

/**
 * Parses an archive's central directory into a {@link ZipIndex}, validating as
 * it goes. Reads the directory through a fixed 1 MiB window; allocates columns
 * that grow with records actually parsed, never from a declared count.
 * Rejects with `CORRUPT_ARCHIVE`, `UNSUPPORTED_ARCHIVE` or `LIMIT_EXCEEDED`.
 */
export async function readZipIndex(src: RandomAccessSource, limits: ZipLimits, path = ''): Promise<ZipIndex> {
  const end = await findEnd(src, path);
  if (end.zip64 && end.declaredCount > limits.maxEntries) {
    throw new FopError('LIMIT_EXCEEDED', 'index', path, `archive declares ${end.declaredCount} entries; the limit is ${limits.maxEntries}`);
  }
  const { cdStart, cdEnd, baseOffset } = end;
  const cols = new Columns(Math.min(end.declaredCount, limits.maxEntries, 1 << 16));
  const files = new Map<string, number>();
  const dirs = new Set<string>(['']);
  const refused: RefusedEntry[] = [];

  const window = Buffer.allocUnsafe(Math.min(CD_WINDOW, cdEnd - cdStart));
  let winStart = 0;
  let winEnd = 0; // window holds [winStart, winEnd) of the source
  const refill = async (from: number): Promise<void> => {
    const len = Math.min(window.length, cdEnd - from);
    await readExact(src, window.subarray(0, len), from, path);
    winStart = from;
    winEnd = from + len;
  };
  const noExtras: Extras = { aes: false };
  let lastDir = '';

  let pos = cdStart;
  let n = 0;
  while (pos < cdEnd) {
    if (pos + CENTRAL_SIZE > cdEnd) throw corrupt(path, `entry ${n}: central directory record is truncated`);
    // Only await when the record is not already in the window: an await per
    // record costs a microtask each, which dominates at a million entries.
    if (pos < winStart || pos + CENTRAL_SIZE > winEnd) await refill(pos);
    let o = pos - winStart;
    if (window.readUInt32LE(o) !== SIG_CENTRAL) throw corrupt(path, `entry ${n}: invalid central directory file header signature`);
    const nameLen = window.readUInt16LE(o + 28);
    const extraLen = window.readUInt16LE(o + 30);
    const commentLen = window.readUInt16LE(o + 32);
    const recLen = CENTRAL_SIZE + nameLen + extraLen + commentLen;
    if (pos + recLen > cdEnd) throw corrupt(path, `entry ${n}: central directory record runs past the directory`);
    if (pos + recLen > winEnd) {
      await refill(pos);
      o = 0;
    }

    if (n >= limits.maxEntries) {
      throw new FopError('LIMIT_EXCEEDED', 'index', path, `more than ${limits.maxEntries} entries`);
    }
    const madeBy = window.readUInt16LE(o + 4);
    const gp = window.readUInt16LE(o + 8);
    const method = window.readUInt16LE(o + 10);
    const dosTime = window.readUInt16LE(o + 12);
    const dosDate = window.readUInt16LE(o + 14);
    const crc = window.readUInt32LE(o + 16);
    let csize = window.readUInt32LE(o + 20);
    let usize = window.readUInt32LE(o + 24);
    let diskStart = window.readUInt16LE(o + 34);
    const external = window.readUInt32LE(o + 38);
    let lfh = window.readUInt32LE(o + 42);
    const nameStart = o + CENTRAL_SIZE;
    const extras = extraLen === 0 ? noExtras : parseExtras(window, nameStart + nameLen, nameStart + nameLen + extraLen, path, n);

    // APPNOTE 4.5.3: the zip64 extra holds, in order, only the fields whose
    // header value is all ones; its other bytes are ignored.
    if (extras.zip64) {
      const z = extras.zip64;
      let k = 0;
      const take = (what: string): number => {
        if (k + 8 > z.length) throw corrupt(path, `entry ${n}: zip64 extended information extra field does not include ${what}`);
        const v = u64(z, k, path, what);
        k += 8;
        return v;
      };
      if (usize === 0xffffffff) usize = take('uncompressed size');
      if (csize === 0xffffffff) csize = take('compressed size');
      if (lfh === 0xffffffff) lfh = take('relative header offset');
      if (diskStart === 0xffff) {
        if (k + 4 > z.length) throw corrupt(path, `entry ${n}: zip64 extended information extra field does not include disk number`);
        diskStart = z.readUInt32LE(k);
      }
    }
    if (diskStart !== 0) throw new FopError('UNSUPPORTED_ARCHIVE', 'index', path, 'split (multi-disk) archives are not supported');

    const lfhAbs = baseOffset + lfh;
    const bit3 = (gp & GP_DATA_DESCRIPTOR) !== 0;
    if (lfhAbs + LFH_SIZE + nameLen + csize + (bit3 ? MIN_DATA_DESCRIPTOR : 0) > cdStart) {
      throw corrupt(path, `entry ${n}: file data overflows the archive (runs into the central directory)`);
    }

    const nameEnd = nameStart + nameLen;
    let ascii = extras.unicodePath === undefined;
    for (let k = nameStart; ascii && k < nameEnd; k++) ascii = window[k]! < 0x80;
    // Fast path: plain ASCII names decode the same under every rule.
    const decoded = ascii
      ? { name: window.toString('latin1', nameStart, nameEnd) }
      : decodeName(window.subarray(nameStart, nameEnd), (gp & GP_UTF8) !== 0, extras.unicodePath, madeBy >>> 8);
    let checked: { name: string; isDir: boolean } | BadNameReason;
    if ('bad' in decoded) checked = decoded.bad;
    else {
      const normal = normalizeName(decoded.name, madeBy >>> 8);
      // Nothing but `./` segments (bsdtar's `./`): the root directory, which always exists.
      checked = normal === '' && decoded.name !== '' ? { name: '', isDir: true } : validateName(normal, limits.maxNameLength);
    }

    const row = cols.push();
    cols.lfhOffset[row] = lfhAbs;
    cols.cdPos[row] = pos;
    cols.csize[row] = csize;
    cols.usize[row] = usize;
    cols.crc[row] = crc;
    cols.method[row] = method;
    cols.gpFlags[row] = gp;
    cols.nameLen[row] = nameLen;
    cols.mtime[row] = extras.mtime ?? dosToMs(dosDate, dosTime);
    // macOS's zip and Archive Utility say host 19 (OS X) and store Unix modes there too.
    const unixMode = UNIX_HOSTS.has(madeBy >>> 8) ? external >>> 16 : 0;
    const isLink = (unixMode & 0o170000) === 0o120000;
    if (typeof checked === 'string') {
      // An unsafe name is a defect of this entry alone: it stays in the columns (its bytes still
      // count for the overlap and count checks) but is reachable by no name and implies no directory.
      cols.kind[row] = KIND_FILE;
      refused.push({ row, reason: checked });
      pos += recLen;
      n++;
      continue;
    }
    cols.kind[row] = (checked.isDir ? KIND_DIR : isLink ? KIND_SYMLINK : KIND_FILE) | (extras.aes ? KIND_AES : 0);

    const name = checked.name;
    if (!checked.isDir) {
      if (files.has(name)) throw corrupt(path, `entry ${n}: duplicate name`);
      files.set(name, row);
    }
    // Every ancestor is a directory, whether or not the archive lists it.
    let slash = name.lastIndexOf('/');
    if (checked.isDir) dirs.add(name);
    // Archives list siblings together: skip the walk when the parent is the last one seen.
    if (slash > 0 && slash === lastDir.length && name.startsWith(lastDir)) slash = -1;
    else if (slash > 0) lastDir = name.slice(0, slash);
    while (slash > 0) {
      const dir = name.slice(0, slash);
      if (dirs.has(dir)) break;
      dirs.add(dir);
      slash = name.lastIndexOf('/', slash - 1);
    }
    pos += recLen;
    n++;
  }

  // Writers that predate zip64 store the count modulo 65,536 (Go allows this too).
  if (end.zip64 ? n !== end.declaredCount : n % 0x10000 !== end.declaredCount) {
    throw corrupt(path, `central directory holds ${n} entries but the end record declares ${end.declaredCount}`);
  }
  const limit = checkOverlap(cols, cdStart, path);
  return new ZipIndex(path, end, cols, files, dirs, limit, refused);
}

/**
 * Rejects overlapping entries (Fifield's non-recursive zip bombs): sorted by
 * local-header offset, each entry's smallest possible end must not pass the
 * next header (or the central directory). Returns each row's limit: where
 * the next header starts, for the exact check once the local header is read.
 */
function checkOverlap(cols: Columns, cdStart: number, path: string): Float64Array {
  const n = cols.length;
  const off = cols.lfhOffset;
  const limit = new Float64Array(n);
  let sorted = true;
  for (let i = 1; i < n && sorted; i++) sorted = off[i - 1]! < off[i]!;
  if (sorted) {
    for (let i = 0; i < n; i++) limit[i] = i + 1 < n ? off[i + 1]! : cdStart;
  } else {
    const order = Float64Array.from(off.subarray(0, n)).sort();
    for (let i = 0; i < n; i++) {
      // Binary search for this offset; the next distinct offset bounds it.
      let lo = 0;
      let hi = n - 1;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (order[mid]! < off[i]!) lo = mid + 1;
        else hi = mid;
      }
      limit[i] = lo + 1 < n ? order[lo + 1]! : cdStart;
    }
  }
  for (let i = 0; i < n; i++) {
    const bit3 = (cols.gpFlags[i]! & GP_DATA_DESCRIPTOR) !== 0;
    const minEnd = off[i]! + LFH_SIZE + cols.nameLen[i]! + cols.csize[i]! + (bit3 ? MIN_DATA_DESCRIPTOR : 0);
    if (limit[i] === off[i] || minEnd > limit[i]!) throw corrupt(path, `entry ${i}: overlapping entries (possible zip bomb)`);
  }
  return limit;
}
