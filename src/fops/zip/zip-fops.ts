import { constants as fsc } from 'node:fs';
import { LruCache } from '../../cache/lru.js';
import { FopError } from '../errors.js';
import { FopFlags } from '../flags.js';
import { CONTAINER_SIGNATURES, locateContainer } from '../container.js';
import { fopChanged, fopStat } from '../helpers.js';
import { PlatFops } from '../plat.js';
import { assertFopPath, signatureSplits, validFopPath } from '../path.js';
import type { ContainerOps, FileOps, FopDirEntry, FopFd, FopStat, ListOps, StatOps } from '../types.js';
import { GP_DATA_DESCRIPTOR, KIND_DIR, KIND_FILE, KIND_SYMLINK, readZipIndex, type ZipIndex } from './central.js';
import {
  EmptyEntryHandle,
  GzipEntryHandle,
  InflateEntryHandle,
  MAX_EMPTY_DEFLATE,
  MemoryEntryHandle,
  StoredEntryHandle,
  checkEmptyDeflate,
  inflateWhole,
  type EntryData,
} from './entry.js';
import { INDEX_SHARE, buildCheckpoints, storedBlockSource, walkStoredBlocks, type CheckpointIndex, type DeflateIndex } from './deflate-index.js';
import { resolveLimits, type ZipLimits } from './limits.js';
import { adviseSource, readExact, sourceFromFd, type RandomAccessSource } from './source.js';

const ACCESS_MODE = fsc.O_RDONLY | fsc.O_WRONLY | fsc.O_RDWR;
const SIG_LFH = 0x04034b50;
const METHOD_NAMES: Readonly<Record<number, string>> = {
  1: 'shrink',
  6: 'implode',
  9: 'deflate64',
  12: 'bzip2',
  14: 'lzma',
  93: 'zstd',
  95: 'xz',
  98: 'ppmd',
  99: 'aes',
};

/** Options for {@link ZipFops}. */
export interface ZipFopsOptions {
  /** The backend archives are opened through (default: a new {@link PlatFops}). */
  readonly source?: FileOps;
  /** Bounds on what an archive may declare (see {@link ZipLimits}). */
  readonly limits?: Partial<ZipLimits>;
  /** Container signatures, lower-case with a trailing slash (default `.zip/`, `.jar/`, `.war/`). */
  readonly signatures?: readonly string[];
  /** Index cache bounds: archives kept open and indexed (default 64), and their total entries (default 2,000,000). */
  readonly cache?: { readonly maxArchives?: number; readonly maxIndexedEntries?: number };
  /**
   * Inflated content of small deflated entries, kept for identity reads so a hot file is inflated
   * once, not per request: entries up to `maxEntrySize` (default 1 MiB), `maxBytes` in all (default
   * 32 MiB; 0 turns it off). An entry is verified completely (exact end, size, CRC-32) before it is
   * served from here; the cache is keyed by archive identity, so a changed archive is inflated anew.
   */
  readonly inflateCache?: { readonly maxEntrySize?: number; readonly maxBytes?: number };
  /**
   * When stored entries are checked against their CRC-32 (default `'every-read'`): every read
   * sequence that covers an entry, or only the first in each version of the archive
   * (`'first-read'`). The CRC costs about a quarter of a stored entry's throughput. Use
   * `'first-read'` only where every read is also checked with the handle's `changed()` before its
   * result is trusted, as the serving engine does before the last byte of a body: then an
   * archive rewritten in place is caught by its timestamps instead.
   */
  readonly storedCrc?: 'every-read' | 'first-read';
  /**
   * Random access into large deflated entries read inflated (see `deflate-index.ts`). A deflate
   * stream made only of stored blocks is mapped onto the archive and read like a stored entry;
   * any other gets a checkpoint index on its first read deeper than `span` (default 1 MiB), after
   * which a read anywhere inflates at most about one span. Indexes are kept in an LRU of
   * `maxBytes` in all (default 64 MiB; 0 turns random access off), keyed by archive identity and
   * entry. An index takes at most `maxShare` of its entry's size (default 0.008, so under 1%
   * even where windows do not compress; a point that would pass it waits for a later block
   * boundary) and at most a quarter of `maxBytes`. At most `concurrentBuilds` passes run at once
   * (default 1; others wait their turn), so clients asking deep into many entries at once cannot
   * take more than that many cores.
   */
  readonly randomAccess?: { readonly span?: number; readonly maxBytes?: number; readonly maxShare?: number; readonly concurrentBuilds?: number };
  /**
   * Told about central-directory parses, for operators: `phase: 'progress'` about once a second
   * while a parse is under way, then `phase: 'done'` with the entry count and the index's
   * approximate memory. Not called for a parse that fails (that error is the caller's). Called
   * synchronously; a hook that throws is ignored.
   */
  readonly onIndex?: (event: ZipIndexEvent) => void;
}

/** One report of {@link ZipFopsOptions.onIndex}. */
export interface ZipIndexEvent {
  /** The archive's fops path; for `random-access`, the entry's. */
  readonly path: string;
  /**
   * What is being built: an archive's central-directory index (`directory`, the default when absent),
   * or a deflated entry's checkpoint index for random access (`random-access`; with `done`, `entries`
   * counts its access points).
   */
  readonly kind?: 'directory' | 'random-access';
  readonly phase: 'progress' | 'done';
  /** Milliseconds since the parse began. */
  readonly ms: number;
  /** With `done`: central-directory records indexed, and the index's approximate size in bytes. */
  readonly entries?: number;
  readonly bytes?: number;
}

/** An indexed archive held in the cache now, for operators: its path, entries and approximate index bytes. */
export interface ZipArchiveInfo {
  readonly path: string;
  readonly entries: number;
  readonly bytes: number;
}

const INDEX_BYTES = new WeakMap<ZipIndex, number>();

/** The approximate memory of an index: its columns, plus its name maps at two bytes a character and some overhead. */
function indexBytes(index: ZipIndex): number {
  let bytes = INDEX_BYTES.get(index);
  if (bytes !== undefined) return bytes;
  bytes = 0;
  for (const col of [
    index.lfhOffset,
    index.limit,
    index.cdPos,
    index.csize,
    index.usize,
    index.mtime,
    index.crc,
    index.method,
    index.gpFlags,
    index.nameLen,
    index.kind,
    index.dataStart,
  ]) {
    bytes += col.byteLength;
  }
  for (const name of index.files.keys()) bytes += name.length * 2 + 48;
  for (const name of index.dirs) bytes += name.length * 2 + 48;
  INDEX_BYTES.set(index, bytes);
  return bytes;
}

/** Counters for operators and tests. */
export interface ZipFopsStats {
  /** Central directories parsed since construction. */
  readonly indexBuilds: number;
  /** Archive indexes (or cached failures) held now. */
  readonly cachedArchives: number;
  /** Archive files open now: indexed ones, and retired ones still pinned by entry handles. */
  readonly openArchives: number;
  /** Entry handles open now. */
  readonly openEntries: number;
  /** Checkpoint indexes built (each one pass over its entry) since construction. */
  readonly accessIndexBuilds: number;
  /** Checkpoint passes running now (at most `randomAccess.concurrentBuilds`); others wait. */
  readonly accessIndexBuildsRunning: number;
  /** Random-access indexes and stored-block maps held now, and their bytes. */
  readonly accessIndexes: number;
  readonly accessIndexBytes: number;
}

/** Where an archive sits: how many archives it is inside, and how much every level above amplifies its bytes. */
interface Nesting {
  /** 0 for an archive opened through the source, 1 for one inside it, and so on. */
  readonly depth: number;
  /** Uncompressed bytes per stored byte of the outermost archive: the product of the ratios of the deflated entries above. */
  readonly factor: number;
}

const OUTERMOST: Nesting = Object.freeze({ depth: 0, factor: 1 });

/**
 * An indexed archive held open; entry handles keep it alive after eviction. An archive inside
 * another is read through an entry handle of its parent, which keeps the parent open in turn.
 */
class OpenArchive {
  readonly fd: FopFd;
  readonly source: RandomAccessSource;
  readonly index: ZipIndex;
  /** The version of the archive file `fd` reads (its handle's identity, or its stat's); never the path. */
  readonly identity: string;
  readonly nesting: Nesting;
  /** Cache keys of the archives opened inside this one: they are dropped with it. */
  readonly inner = new Set<string>();
  /** Opened under a stat of another version (the file was replaced in between): used once, never cached. */
  misfiled = false;
  /** Rows of stored entries a complete read has matched to their CRC-32, in this version of the archive. */
  #verified: Uint8Array | undefined;
  readonly #onClose: (closing: Promise<void>) => void;
  #refs = 0;
  #retired = false;
  #closed = false;

  /** `onClose` is told of the close, whichever of `retire` or the last `release` starts it. */
  constructor(fd: FopFd, index: ZipIndex, identity: string, onClose: (closing: Promise<void>) => void, nesting = OUTERMOST) {
    this.fd = fd;
    this.source = sourceFromFd(fd);
    this.index = index;
    this.identity = identity;
    this.nesting = nesting;
    this.#onClose = onClose;
  }

  isVerified(row: number): boolean {
    return this.#verified?.[row] === 1;
  }

  markVerified(row: number): void {
    (this.#verified ??= new Uint8Array(this.index.count))[row] = 1;
  }

  tryAcquire(): boolean {
    if (this.#closed) return false;
    this.#refs++;
    return true;
  }

  release(): void {
    this.#refs--;
    this.#maybeClose();
  }

  /** Stops new use; the archive closes now, or when its last handle closes. */
  retire(): void {
    this.#retired = true;
    this.#maybeClose();
  }

  #maybeClose(): void {
    if (this.#retired && this.#refs === 0 && !this.#closed) {
      this.#closed = true;
      this.#onClose(this.fd.close().catch(() => undefined));
    }
  }
}

interface Slot {
  readonly container: string;
  readonly promise: Promise<OpenArchive>;
  archive?: OpenArchive;
  evicted?: boolean;
  /** Callers waiting to acquire the archive: an evicted archive is retired only once they hold it. */
  waiting: number;
}

// Errors that mean "the archive was replaced under us": the caller states the file again.
const REPLACED = new WeakSet<object>();

/**
 * One version of an archive file as its backend's stat names it: device,
 * inode, size, mtime and ctime (the ctime moves on every write, even one whose
 * mtime is put back with `touch -r`). Fields the backend lacks are empty.
 * An archive entry's stat has no inode but names its version outright.
 */
function statIdentity(st: FopStat): string {
  if (st.version !== undefined) return st.version;
  return `${st.dev ?? ''}:${st.ino ?? ''}:${st.size}:${st.modTime ?? ''}:${st.changeTime ?? ''}`;
}

/** An entry's identity: the identity of its archive (so of every archive around it), the row, CRC-32 and size. */
function entryIdentity(arc: OpenArchive, row: number): string {
  return `${arc.identity}:${row}:${arc.index.crc[row]!.toString(16)}:${arc.index.usize[row]!}`;
}

/** The entries directly inside directory `dir` (`''`: the root) of an index, sorted by name. */
function listIndex(index: ZipIndex, dir: string): FopDirEntry[] {
  const prefix = dir === '' ? '' : `${dir}/`;
  const out: FopDirEntry[] = [];
  for (const [name, row] of index.files) {
    if (!name.startsWith(prefix) || name.indexOf('/', prefix.length) !== -1) continue;
    const kind = index.kind[row]! & 0x0f;
    const base = name.slice(prefix.length);
    if (kind === KIND_SYMLINK) out.push({ name: base, type: 'other', symlink: true });
    else out.push({ name: base, type: 'file', size: index.usize[row]!, modTime: index.mtime[row]! });
  }
  for (const name of index.dirs) {
    if (name === '' || !name.startsWith(prefix) || name.indexOf('/', prefix.length) !== -1) continue;
    out.push({ name: name.slice(prefix.length), type: 'directory' });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (!done) {
      done = true;
      fn();
    }
  };
}

/**
 * The archive backend: serves entries of zip (and jar/war) archives, opened
 * through the backend below (`source`), so an archive can live on disk, in
 * memory or in any user backend.
 *
 * - Paths are `<archive path>/<entry name>`, split at the first signature.
 * - The central directory is parsed once per archive identity (path, size,
 *   mtime, ctime, device, inode) into a compact index held in an LRU; a changed
 *   archive is re-read, an unchanged one never rescanned.
 * - Methods 0 (stored) and 8 (deflate) are served; a deflated entry opened
 *   with `COMPR_ACCEPTABLE_GZIP` is one gzip member, never recompressed.
 * - Entry handles read positionally; concurrent reads never queue.
 * - Archives inside archives are entered by path (`/srv/app.war/WEB-INF/lib/lib.jar/META-INF/MANIFEST.MF`),
 *   read in place (stored) or through the entry's handle (deflated), never extracted; up to
 *   `limits.maxDepth` deep, every limit applied at every level, and the compression ratio limit
 *   to the product of the ratios on the way. An inner archive is cached under its entry's identity,
 *   which names every archive version around it.
 */
export class ZipFops implements ContainerOps, StatOps, ListOps {
  readonly signatures: readonly string[];
  readonly limits: ZipLimits;
  readonly #source: FileOps;
  readonly #cache: LruCache<string, Slot>;
  readonly #current = new Map<string, string>();
  readonly #closing = new Set<Promise<void>>(); // archive closes still under way
  #indexBuilds = 0;
  #openArchives = 0;
  #openEntries = 0;
  readonly #inflated: LruCache<string, Promise<Buffer>> | undefined;
  readonly #inflateMax: number;
  readonly #storedCrc: 'every-read' | 'first-read';
  readonly #span: number;
  readonly #accessMaxBytes: number;
  readonly #accessShare: number;
  // Keys: `s\0…` a stored-block map (or null: not all stored), `c\0…` a checkpoint index.
  readonly #access: LruCache<string, { readonly promise: Promise<DeflateIndex | null>; bytes: number }> | undefined;
  #accessIndexBuilds = 0;
  readonly #buildSlots: number;
  #building = 0;
  readonly #buildQueue: (() => void)[] = [];
  readonly #onIndex: ((event: ZipIndexEvent) => void) | undefined;

  constructor(options: ZipFopsOptions = {}) {
    this.#source = options.source ?? new PlatFops();
    this.#onIndex = options.onIndex;
    this.limits = resolveLimits(options.limits);
    this.signatures = Object.freeze([...(options.signatures ?? CONTAINER_SIGNATURES)].map((s) => s.toLowerCase()));
    for (const sig of this.signatures) {
      if (!/^\.[a-z0-9]+\/$/.test(sig)) throw new TypeError(`ZipFops: signature ${JSON.stringify(sig)} must look like ".zip/"`);
    }
    this.#cache = new LruCache<string, Slot>({
      maxEntries: options.cache?.maxArchives ?? 64,
      maxWeight: options.cache?.maxIndexedEntries ?? 2_000_000,
      weigh: (slot) => 1 + (slot.archive?.index.count ?? 0),
      onEvict: (slot, key) => {
        slot.evicted = true;
        if (slot.waiting === 0) slot.archive?.retire();
        if (this.#current.get(slot.container) === key) this.#current.delete(slot.container);
        // The archives inside go too: their keys name this version, and their handles pin it open.
        for (const inner of slot.archive?.inner ?? []) this.#cache.delete(inner);
      },
    });
    const inflateBytes = options.inflateCache?.maxBytes ?? 32 * 1024 * 1024;
    this.#inflateMax = options.inflateCache?.maxEntrySize ?? 1024 * 1024;
    this.#storedCrc = options.storedCrc ?? 'every-read';
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- checked for JavaScript callers
    if (this.#storedCrc !== 'every-read' && this.#storedCrc !== 'first-read') throw new TypeError(`ZipFops: storedCrc must be 'every-read' or 'first-read'`);
    // Weighed by the entry's declared size, which the verified content matches exactly.
    this.#inflated =
      inflateBytes > 0 && this.#inflateMax > 0
        ? new LruCache<string, Promise<Buffer>>({
            maxEntries: 100_000,
            maxWeight: inflateBytes,
            weigh: (_v, key) => Number(key.slice(key.lastIndexOf('\0') + 1)),
          })
        : undefined;
    this.#span = options.randomAccess?.span ?? 1024 * 1024;
    const accessBytes = options.randomAccess?.maxBytes ?? 64 * 1024 * 1024;
    this.#accessMaxBytes = accessBytes;
    this.#accessShare = options.randomAccess?.maxShare ?? INDEX_SHARE;
    this.#buildSlots = options.randomAccess?.concurrentBuilds ?? 1;
    if (!Number.isInteger(this.#buildSlots) || this.#buildSlots < 1)
      throw new TypeError('ZipFops: randomAccess.concurrentBuilds must be an integer of at least 1');
    if (!(this.#span >= 1) || !(accessBytes >= 0) || !(this.#accessShare >= 0)) {
      throw new TypeError('ZipFops: randomAccess.span must be at least 1, maxBytes and maxShare non-negative');
    }
    this.#access = accessBytes > 0 ? new LruCache({ maxEntries: 100_000, maxWeight: accessBytes, weigh: (slot) => slot.bytes }) : undefined;
  }

  get stats(): ZipFopsStats {
    return {
      indexBuilds: this.#indexBuilds,
      cachedArchives: this.#cache.size,
      openArchives: this.#openArchives,
      openEntries: this.#openEntries,
      accessIndexBuilds: this.#accessIndexBuilds,
      accessIndexBuildsRunning: this.#building,
      accessIndexes: this.#access?.size ?? 0,
      accessIndexBytes: this.#access?.weight ?? 0,
    };
  }

  /** The archives indexed and held now (not failures, not ones still loading), least recently used first. */
  archives(): ZipArchiveInfo[] {
    const out: ZipArchiveInfo[] = [];
    for (const key of this.#cache.keys()) {
      const index = this.#cache.peek(key)?.archive?.index;
      if (index !== undefined) out.push({ path: index.path, entries: index.count, bytes: indexBytes(index) });
    }
    return out;
  }

  /** Runs one central-directory parse, reporting it to `onIndex`; without a hook, exactly `parse()` (no added ticks). */
  #indexing(path: string, parse: () => Promise<ZipIndex>): Promise<ZipIndex> {
    const hook = this.#onIndex;
    return hook === undefined ? parse() : this.#reportIndexing(path, parse, hook, (index) => ({ entries: index.count, bytes: indexBytes(index) }));
  }

  /** Runs one checkpoint pass, reporting it to `onIndex` as `random-access` (it takes seconds on large entries). */
  #checkpointing(path: string, build: () => Promise<CheckpointIndex>): Promise<CheckpointIndex> {
    const hook = this.#onIndex;
    if (hook === undefined) return build();
    return this.#reportIndexing(path, build, hook, (index) => ({ entries: index.points.length, bytes: index.bytes }), 'random-access');
  }

  async #reportIndexing<T>(
    path: string,
    parse: () => Promise<T>,
    hook: (event: ZipIndexEvent) => void,
    measure: (built: T) => { entries: number; bytes: number },
    kind: 'directory' | 'random-access' = 'directory',
  ): Promise<T> {
    const started = Date.now();
    const report = (event: ZipIndexEvent): void => {
      try {
        hook(event);
      } catch {
        // an operator's hook never breaks serving
      }
    };
    const tag = kind === 'directory' ? {} : { kind };
    const timer = setInterval(() => report({ path, ...tag, phase: 'progress', ms: Date.now() - started }), 1000);
    timer.unref();
    try {
      const built = await parse();
      report({ path, ...tag, phase: 'done', ms: Date.now() - started, ...measure(built) });
      return built;
    } finally {
      clearInterval(timer);
    }
  }

  /** Opens `<archive>/<entry>`; the archive is the prefix ending at the first signature. */
  async open(path: string, flags = 0): Promise<FopFd> {
    const { container, member, stat } = await this.#locate(path, 'open');
    return this.openMember(container, stat, member, flags);
  }

  async stat(path: string): Promise<FopStat> {
    const { container, member, stat } = await this.#locate(path, 'stat');
    return this.statMember(container, stat, member);
  }

  /**
   * The index of the archive at `archivePath` (for listings), parsed or from the cache: an archive
   * file of the source, or an archive entry inside one (`/srv/site.zip/docs/manual.zip`).
   */
  async index(archivePath: string): Promise<ZipIndex> {
    assertFopPath(archivePath, 'index');
    const loc = await locateContainer(this.#source, archivePath, this.signatures, 'index');
    if (!loc) {
      const st = await fopStat(this.#source, archivePath);
      if (st.type !== 'file') throw new FopError('NOT_FOUND', 'index', archivePath, 'not an archive file');
      const arc = await this.#archive(archivePath, st);
      arc.release();
      return arc.index;
    }
    const { arc: outer } = await this.#fresh(loc.container, loc.stat, archivePath);
    const { arc, member } = await this.#descend(outer, loc.member, 'index', archivePath);
    try {
      const row = arc.index.files.get(member);
      if (row === undefined || (arc.index.kind[row]! & 0x0f) !== KIND_FILE) throw new FopError('NOT_FOUND', 'index', archivePath, 'not an archive file');
      const inner = await this.#enter(arc, member, row, 'index', archivePath);
      inner.release();
      return inner.index;
    } finally {
      arc.release();
    }
  }

  /**
   * Lists a directory of an archive (`/srv/site.zip/css`), an archive's root named by the archive
   * itself (`/srv/site.zip`), or an archive inside one (`/srv/site.zip/docs/manual.zip`). From the
   * index alone: files carry their size and time, directories and symbolic links (`other`) neither.
   */
  async readDir(path: string): Promise<readonly FopDirEntry[]> {
    assertFopPath(path, 'readDir');
    const loc = await locateContainer(this.#source, path, this.signatures, 'readDir');
    let arc: OpenArchive;
    let member = '';
    if (!loc) {
      const st = await fopStat(this.#source, path);
      if (st.type !== 'file') throw new FopError('NOT_FOUND', 'readDir', path, 'not an archive file');
      arc = await this.#archive(path, st);
    } else {
      const { arc: outer } = await this.#fresh(loc.container, loc.stat, path);
      ({ arc, member } = await this.#descend(outer, loc.member, 'readDir', path));
    }
    try {
      if (member !== '' && !arc.index.dirs.has(member)) {
        // The path names an archive entry itself: list its root when it is an archive.
        const row = arc.index.files.get(member);
        const isArchive = signatureSplits(`/${member}/`, this.signatures).includes(member.length + 1);
        if (row === undefined || (arc.index.kind[row]! & 0x0f) !== KIND_FILE || !isArchive) throw new FopError('NOT_FOUND', 'readDir', path, 'not a directory');
        const inner = await this.#enter(arc, member, row, 'readDir', path);
        arc.release();
        arc = inner;
        member = '';
      }
      return listIndex(arc.index, member);
    } finally {
      arc.release();
    }
  }

  async openMember(container: string, containerStat: FopStat, member: string, flags: number): Promise<FopFd> {
    const path = member === '' ? container : `${container}/${member}`;
    if (!validFopPath(path)) throw new FopError('INVALID_PATH', 'open', path);
    if ((flags & FopFlags.MASK & ACCESS_MODE) !== fsc.O_RDONLY) throw new FopError('READ_ONLY', 'open', path, 'archives are read-only');
    const { arc: outer } = await this.#fresh(container, containerStat, path);
    const { arc, member: rest } = await this.#descend(outer, member, 'open', path);
    try {
      return await this.#openEntry(arc, path, rest, flags);
    } catch (err) {
      arc.release();
      throw err;
    }
  }

  /**
   * Follows `member` of `arc` into the archives inside it: while it names no entry, the first
   * signature split whose prefix is a file entry is an archive to enter (a directory entry named
   * `x.zip/` is passed over, as on disk). Takes over the caller's reference on `arc` and resolves
   * to the innermost archive, acquired, and the member left inside it.
   */
  async #descend(arc: OpenArchive, member: string, op: string, path: string): Promise<{ arc: OpenArchive; member: string }> {
    try {
      for (;;) {
        const index = arc.index;
        if (member === '' || index.files.has(member) || index.dirs.has(member)) return { arc, member };
        let next: { name: string; row: number } | undefined;
        for (const slash of signatureSplits(`/${member}`, this.signatures)) {
          const name = member.slice(0, slash - 1);
          const row = index.files.get(name);
          if (row === undefined && index.dirs.has(name)) continue;
          if (row !== undefined && (index.kind[row]! & 0x0f) === KIND_FILE) next = { name, row };
          break;
        }
        if (!next) return { arc, member }; // opening it reports what is wrong
        const inner = await this.#enter(arc, next.name, next.row, op, path);
        arc.release();
        arc = inner;
        member = member.slice(next.name.length + 1);
      }
    } catch (err) {
      arc.release();
      throw err;
    }
  }

  /**
   * The archive in the file entry `name` (row `row`) of `parent`, which the caller holds: from the
   * cache, or opened now through the entry's own handle. Keyed by the entry's identity, which
   * names every archive version around it. Resolves acquired.
   */
  async #enter(parent: OpenArchive, name: string, row: number, op: string, path: string): Promise<OpenArchive> {
    const { maxDepth } = this.limits;
    if (parent.nesting.depth >= maxDepth) {
      throw new FopError('LIMIT_EXCEEDED', op, path, `archives nested more than ${maxDepth} deep (maxDepth) are not entered`);
    }
    const inner = `${parent.index.path}/${name}`;
    const key = `${inner}\0${entryIdentity(parent, row)}`;
    parent.inner.add(key);
    return this.#cached(inner, key, () => this.#loadInner(parent, inner, name, row));
  }

  /** Opens and indexes the archive in entry `name` of `parent` (held by the caller); its handle pins `parent` until it closes. */
  async #loadInner(parent: OpenArchive, path: string, name: string, row: number): Promise<OpenArchive> {
    if (!parent.tryAcquire()) throw new FopError('IO', 'index', path, 'archive was closed while opening');
    let fd: FopFd;
    try {
      fd = await this.#openEntry(parent, path, name, fsc.O_RDONLY);
    } catch (err) {
      parent.release();
      throw err;
    }
    this.#openArchives++;
    try {
      // Stored: a slice of the parent, read in place. Deflated: positional reads on the inflating handle.
      const index = await this.#indexing(path, () => readZipIndex(sourceFromFd(fd), this.limits, path));
      this.#indexBuilds++;
      const p = parent.index;
      const ratio = p.method[row] === 8 ? p.usize[row]! / p.csize[row]! : 1;
      const nesting = { depth: parent.nesting.depth + 1, factor: parent.nesting.factor * ratio };
      return new OpenArchive(fd, index, fd.identity ?? entryIdentity(parent, row), (closing) => this.#archiveClosing(closing), nesting);
    } catch (err) {
      await fd.close().catch(() => undefined);
      this.#openArchives--;
      throw err;
    }
  }

  /**
   * The archive for `st`, acquired. An archive replaced between the stat and the open is stated
   * again and looked up anew: three tries.
   */
  async #fresh(container: string, st: FopStat, path: string): Promise<{ arc: OpenArchive; st: FopStat }> {
    for (let attempt = 1; ; attempt++) {
      try {
        return { arc: await this.#archive(container, st), st };
      } catch (err) {
        if (!(FopError.is(err) && REPLACED.has(err) && attempt < 3)) throw err;
        st = await this.#restat(container, path, err);
      }
    }
  }

  async #restat(container: string, path: string, cause: unknown): Promise<FopStat> {
    const st = await fopStat(this.#source, container);
    if (st.type !== 'file') throw new FopError('NOT_FOUND', 'open', path, 'the archive went away', { cause });
    return st;
  }

  async statMember(container: string, containerStat: FopStat, member: string): Promise<FopStat> {
    const path = member === '' ? container : `${container}/${member}`;
    if (!validFopPath(path)) throw new FopError('INVALID_PATH', 'stat', path);
    // Acquired: entering an inner archive opens an entry handle of its parent.
    const fresh = await this.#fresh(container, containerStat, path);
    const { arc, member: rest } = await this.#descend(fresh.arc, member, 'stat', path);
    try {
      const index = arc.index;
      const row = index.files.get(rest);
      if (row === undefined) {
        // An inner archive's directories take the archive entry's time, as the outermost's take the file's.
        const modTime = arc.nesting.depth === 0 ? (fresh.st.modTime ?? 0) : arc.fd.modTime;
        if (index.dirs.has(rest)) return { type: 'directory', size: 0, modTime };
        throw new FopError('NOT_FOUND', 'stat', path);
      }
      const kind = index.kind[row]! & 0x0f;
      if (kind === KIND_SYMLINK) return { type: 'other', size: index.usize[row]!, modTime: index.mtime[row]! };
      const usize = index.usize[row]!;
      // Mirrors #openEntry: only a non-empty, unencrypted deflated entry has a gzip form.
      const gzipAvailable = index.method[row] === 8 && usize > 0 && index.csize[row]! > 0 && !index.isEncrypted(row);
      return { type: 'file', size: usize, modTime: index.mtime[row]!, crc32: index.crc[row]!, gzipAvailable, version: entryIdentity(arc, row) };
    } finally {
      arc.release();
    }
  }

  /** Drops every cached index (central directories and random-access indexes); open entry handles stay valid until closed. */
  clear(): void {
    this.#cache.clear();
    this.#access?.clear();
  }

  /**
   * Drops every cached index and closes the archives no handle is using;
   * an archive with open entry handles closes when the last of them does.
   */
  async close(): Promise<void> {
    this.clear();
    // Closing an inner archive releases its parent, whose own close starts only then.
    while (this.#closing.size > 0) await Promise.all(this.#closing);
  }

  /** Counts an archive file closed once `closing` settles, and lets `close()` wait for it. */
  #archiveClosing(closing: Promise<void>): void {
    const done = closing.then(() => {
      this.#openArchives--;
    });
    this.#closing.add(done);
    void done.then(() => this.#closing.delete(done));
  }

  async #locate(path: string, op: string): Promise<{ container: string; member: string; stat: FopStat }> {
    assertFopPath(path, op);
    const loc = await locateContainer(this.#source, path, this.signatures, op);
    if (!loc) throw new FopError('NOT_FOUND', op, path, 'no archive in path');
    return loc;
  }

  #archive(container: string, st: FopStat): Promise<OpenArchive> {
    return this.#cached(container, `${container}\0${statIdentity(st)}`, () => this.#load(container, st));
  }

  /** The archive cached under `key` (single flight), or loaded now by `load`, acquired; `container` is its path. */
  #cached(container: string, key: string, load: () => Promise<OpenArchive>): Promise<OpenArchive> {
    const hit = this.#cache.get(key);
    if (hit) return this.#acquire(hit);
    // A new identity for a known path: the old index is stale.
    const previous = this.#current.get(container);
    if (previous !== undefined) this.#cache.delete(previous);
    this.#current.set(container, key);
    const slot: Slot = { container, promise: load(), waiting: 0 };
    this.#cache.set(key, slot);
    slot.promise.then(
      (arc) => {
        slot.archive = arc;
        if (arc.misfiled) {
          // Not the version its key names: out of the cache now; it closes once its callers are done.
          if (this.#cache.peek(key) === slot) this.#cache.delete(key);
          else slot.evicted = true;
        }
        if (slot.evicted) {
          if (slot.waiting === 0) arc.retire();
        } else if (this.#cache.peek(key) === slot) this.#cache.set(key, slot); // re-weigh by entry count
      },
      () => undefined, // a failure stays cached for this identity: a broken archive is not re-parsed per request
    );
    return this.#acquire(slot);
  }

  /**
   * The slot's archive once loaded, acquired. An eviction while callers wait (many archives opened
   * at once, a small cache) retires the archive only after the last of them holds it, so a load is
   * never wasted and never retried.
   */
  #acquire(slot: Slot): Promise<OpenArchive> {
    slot.waiting++;
    const settle = (): void => {
      if (--slot.waiting === 0 && slot.evicted) slot.archive?.retire();
    };
    return slot.promise.then(
      (arc) => {
        const held = arc.tryAcquire();
        settle();
        if (held) return arc;
        // Not expected (an archive closes only once evicted and unwaited for): stated again by #fresh.
        const closed = new FopError('IO', 'open', slot.container, 'archive was closed while opening');
        REPLACED.add(closed);
        throw closed;
      },
      (err: unknown) => {
        settle();
        throw err;
      },
    );
  }

  async #load(container: string, st: FopStat): Promise<OpenArchive> {
    const fd = await this.#source.open(container, fsc.O_RDONLY);
    this.#openArchives++;
    try {
      // The file opened is not the one stat saw (replaced in between). The handle is still one whole
      // version, so it serves the callers waiting now; but filed under that stat's key it would stand
      // for another version, so it is marked to leave the cache at once (a rename loop under load
      // otherwise made every retry miss, and the request failed).
      const named = st.ino !== undefined || st.version !== undefined;
      const misfiled = fd.length !== st.size || (fd.identity !== undefined && named && fd.identity !== statIdentity(st));
      const index = await this.#indexing(container, () => readZipIndex(sourceFromFd(fd), this.limits, container));
      this.#indexBuilds++;
      // The open handle's own identity names the bytes it reads, even if the file was replaced since the stat.
      const arc = new OpenArchive(fd, index, fd.identity ?? statIdentity(st), (closing) => this.#archiveClosing(closing));
      arc.misfiled = misfiled;
      return arc;
    } catch (err) {
      await fd.close().catch(() => undefined);
      this.#openArchives--;
      throw err;
    }
  }

  async #openEntry(arc: OpenArchive, path: string, member: string, flags: number): Promise<FopFd> {
    const index = arc.index;
    const row = member === '' ? undefined : index.files.get(member);
    if (row === undefined) {
      if (index.dirs.has(member)) throw new FopError('NOT_A_FILE', 'open', path, 'is a directory');
      throw new FopError('NOT_FOUND', 'open', path);
    }
    const kind = index.kind[row]! & 0x0f;
    if (kind === KIND_SYMLINK) throw new FopError('UNSUPPORTED_ENTRY', 'open', path, 'symbolic link entries are not served');
    if (kind === KIND_DIR) throw new FopError('NOT_A_FILE', 'open', path, 'is a directory');
    if (index.isEncrypted(row)) throw new FopError('UNSUPPORTED_ENTRY', 'open', path, 'entry is encrypted');
    const method = index.method[row]!;
    if (method !== 0 && method !== 8) {
      const name = METHOD_NAMES[method];
      throw new FopError('UNSUPPORTED_ENTRY', 'open', path, `compression method ${method}${name ? ` (${name})` : ''} is not supported`);
    }
    const csize = index.csize[row]!;
    const usize = index.usize[row]!;
    const { maxUncompressedSize, maxRatio, ratioMinSize } = this.limits;
    if (method === 8) {
      if (usize > maxUncompressedSize) {
        throw new FopError('LIMIT_EXCEEDED', 'open', path, `uncompressed size ${usize} exceeds the limit of ${maxUncompressedSize}`);
      }
    } else if (csize !== usize) {
      throw new FopError('CORRUPT_ARCHIVE', 'open', path, `stored entry sizes disagree (${csize} != ${usize})`);
    }
    // The ratio counts every level: inside an inflated archive even a stored entry is amplified.
    const { factor } = arc.nesting;
    if (usize > ratioMinSize && (method === 8 || factor > 1) && usize * factor > csize * maxRatio) {
      const across = factor > 1 ? ' across the archives it is in' : '';
      throw new FopError('LIMIT_EXCEEDED', 'open', path, `compression ratio exceeds the limit of ${maxRatio}:1${across}`);
    }
    if (usize === 0) {
      // Declared empty must be empty: a streamed entry whose central size was zeroed
      // still holds bytes that unzip extracts. The deflate stream is checked in #dataStart.
      if (index.crc[row] !== 0) throw new FopError('CORRUPT_ARCHIVE', 'open', path, 'empty entry has a CRC-32 other than 0');
      if (csize > MAX_EMPTY_DEFLATE) throw new FopError('CORRUPT_ARCHIVE', 'open', path, `empty entry has ${csize} bytes of compressed data`);
    }
    this.#adviseEntry(arc, row);
    const dataStart = await this.#dataStart(arc, row, path);
    const entry: EntryData = {
      source: arc.source,
      dataStart,
      csize,
      usize,
      crc: index.crc[row]!,
      identity: entryIdentity(arc, row),
      verified: this.#storedCrc === 'first-read' && arc.isVerified(row),
      markVerified: () => arc.markVerified(row),
      archiveChanged: () => fopChanged(arc.fd),
      release: once(() => {
        this.#openEntries--;
        arc.release();
      }),
    };
    // Counted once the handle exists: only its close calls release.
    const opened = (fd: FopFd): FopFd => {
      this.#openEntries++;
      return fd;
    };
    const base = (flags & ~FopFlags.COMPR_IS_GZIP) | FopFlags.VIRTUAL | FopFlags.MOD_TIME_VALID;
    const init = { flags: base, modTime: index.mtime[row]! };
    if (usize === 0) return opened(new EmptyEntryHandle(this, path, { ...init, length: 0 }, entry));
    if (method === 0) return opened(new StoredEntryHandle(this, path, { ...init, length: usize }, entry));
    if (csize === 0) throw new FopError('CORRUPT_ARCHIVE', 'open', path, 'deflated entry has no data');
    if ((flags & FopFlags.COMPR_ACCEPTABLE_GZIP) !== 0) {
      return opened(new GzipEntryHandle(this, path, { ...init, flags: base | FopFlags.COMPR_IS_GZIP }, entry));
    }
    if (this.#inflated && usize <= this.#inflateMax) {
      const data = await this.#inflatedContent(arc, row, entry, path);
      return opened(new MemoryEntryHandle(this, path, init, entry, data));
    }
    if (!this.#access) return opened(new InflateEntryHandle(this, path, init, entry));
    const key = `${arc.index.path}\0${arc.identity}\0${row}`;
    const map = await this.#accessIndex(`s\0${key}`, () => walkStoredBlocks(entry, path));
    if (map?.kind === 'stored') {
      // The same bytes as the deflated form, read in place: a stored entry over the block map.
      const mapped: EntryData = { ...entry, source: storedBlockSource(entry, map), dataStart: 0, csize: usize };
      return opened(new StoredEntryHandle(this, path, { ...init, length: usize }, mapped));
    }
    const budget = Math.min(Math.floor(usize * this.#accessShare), Math.floor(this.#accessMaxBytes / 4));
    const checkpoints = async (): Promise<CheckpointIndex> => {
      const built = await this.#accessIndex(`c\0${key}`, () =>
        this.#buildTurn(() => {
          this.#accessIndexBuilds++;
          return this.#checkpointing(path, () => buildCheckpoints(entry, path, { span: this.#span, maxBytes: budget }));
        }),
      );
      if (built?.kind !== 'checkpoints') throw new FopError('IO', 'read', path, 'checkpoint index unavailable');
      return built;
    };
    return opened(new InflateEntryHandle(this, path, init, entry, { span: this.#span, index: checkpoints }));
  }

  /** Runs `build` when one of the `concurrentBuilds` slots is free. */
  async #buildTurn<T>(build: () => Promise<T>): Promise<T> {
    while (this.#building >= this.#buildSlots) await new Promise<void>((resolve) => this.#buildQueue.push(resolve));
    this.#building++;
    try {
      return await build();
    } finally {
      this.#building--;
      this.#buildQueue.shift()?.();
    }
  }

  /**
   * A random-access index from the cache, or made now by `make` (one at a time per key). Corrupt
   * data stays refused for this identity; other failures are forgotten, to be tried again.
   */
  #accessIndex(key: string, make: () => Promise<DeflateIndex | undefined>): Promise<DeflateIndex | null> {
    const cache = this.#access!;
    const hit = cache.get(key);
    if (hit) return hit.promise;
    const slot = { promise: make().then((v) => v ?? null), bytes: 0 };
    cache.set(key, slot);
    slot.promise.then(
      (index) => {
        slot.bytes = index?.bytes ?? 0;
        if (cache.peek(key) === slot) cache.set(key, slot); // re-weigh now the size is known
      },
      (err: unknown) => {
        if (!FopError.is(err, 'CORRUPT_ARCHIVE') && cache.peek(key) === slot) cache.delete(key);
      },
    );
    return slot.promise;
  }

  /** The verified inflated content of a small entry, from the cache or inflated now (one inflate per key at a time). */
  #inflatedContent(arc: OpenArchive, row: number, entry: EntryData, path: string): Promise<Buffer> {
    const cache = this.#inflated!;
    // The path too: backends without inodes give two archives of one size and mtime the same identity.
    const key = `${arc.index.path}\0${arc.identity}\0${row}\0${entry.usize}`;
    let data = cache.get(key);
    if (!data) {
      data = inflateWhole(entry, path);
      cache.set(key, data);
      // Corrupt content stays refused for this identity (no re-inflating per request); other failures are retried.
      data.catch((err: unknown) => {
        if (!FopError.is(err, 'CORRUPT_ARCHIVE') && cache.peek(key) === data) cache.delete(key);
      });
    }
    return data;
  }

  /**
   * Tells the source the entry's bytes are about to be read, so that a remote one fetches them with
   * one request: from the local header (unless already checked) to the end of the data and its
   * descriptor. The local extra field may differ from the central one: up to its largest size is
   * allowed for, but never past where the next entry (or the central directory) starts.
   */
  #adviseEntry(arc: OpenArchive, row: number): void {
    const index = arc.index;
    const csize = index.csize[row]!;
    const known = index.dataStart[row]!;
    if (known !== 0) {
      adviseSource(arc.source, known, csize);
      return;
    }
    const lfh = index.lfhOffset[row]!;
    const descriptor = (index.gpFlags[row]! & GP_DATA_DESCRIPTOR) !== 0 ? 24 : 0;
    const end = Math.min(index.limit[row]!, lfh + 30 + index.nameLen[row]! + 0xffff + csize + descriptor);
    adviseSource(arc.source, lfh, end - lfh);
  }

  /**
   * Reads and checks the local header once per entry, then caches where the
   * data starts. The central directory is authoritative; a local header that
   * disagrees with it (signature, name, method, encryption, CRC or sizes when
   * known) means the archive is corrupt or crafted. A deflated entry declared
   * empty must hold an empty deflate stream ending at its compressed size.
   */
  async #dataStart(arc: OpenArchive, row: number, path: string): Promise<number> {
    const index = arc.index;
    const cached = index.dataStart[row]!;
    if (cached !== 0) return cached;
    const lfh = index.lfhOffset[row]!;
    const nameLen = index.nameLen[row]!;
    const bad = (detail: string): FopError => new FopError('CORRUPT_ARCHIVE', 'open', path, detail);
    const hdr = Buffer.allocUnsafe(30 + nameLen);
    await readExact(arc.source, hdr, lfh, path);
    if (hdr.readUInt32LE(0) !== SIG_LFH) throw bad('invalid local file header signature');
    const gp = index.gpFlags[row]!;
    const localGp = hdr.readUInt16LE(6);
    if (hdr.readUInt16LE(8) !== index.method[row]) throw bad('local header compression method disagrees with the central directory');
    if ((localGp & 1) !== (gp & 1)) throw bad('local header encryption flag disagrees with the central directory');
    if (hdr.readUInt16LE(26) !== nameLen) throw bad('local header name disagrees with the central directory');
    const cdName = Buffer.allocUnsafe(nameLen);
    await readExact(arc.source, cdName, index.cdPos[row]! + 46, path);
    if (!cdName.equals(hdr.subarray(30))) throw bad('local header name disagrees with the central directory');
    if ((localGp & GP_DATA_DESCRIPTOR) === 0) {
      // Without a data descriptor the local header carries the real values
      // (or all ones, deferring to a zip64 extra).
      const same = (local: number, central: number): boolean => local === 0xffffffff || local === central;
      if (hdr.readUInt32LE(14) !== index.crc[row]) throw bad('local header CRC-32 disagrees with the central directory');
      if (!same(hdr.readUInt32LE(18), index.csize[row]!) || !same(hdr.readUInt32LE(22), index.usize[row]!)) {
        throw bad('local header sizes disagree with the central directory');
      }
    }
    const start = lfh + 30 + nameLen + hdr.readUInt16LE(28);
    const descriptor = (gp & GP_DATA_DESCRIPTOR) !== 0 ? 12 : 0;
    if (start + index.csize[row]! + descriptor > index.limit[row]!) throw bad('entry data overlaps the next entry (possible zip bomb)');
    // Once per entry, like the header checks: cached only when it passes.
    if (index.usize[row] === 0 && index.method[row] === 8) await checkEmptyDeflate(arc.source, start, index.csize[row]!, path);
    index.dataStart[row] = start;
    return start;
  }
}
