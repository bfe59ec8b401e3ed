/**
 * The file-operations contract, after libwebsockets' `lws_plat_file_ops`.
 *
 * A backend ({@link FileOps}) has one required method, `open`. Everything else
 * is an optional capability ({@link StatOps}, {@link ContainerOps}, a handle's
 * `readAt` and `write`) with a helper in `helpers.ts` that falls back when a
 * backend lacks it, so callers never branch on what a backend supports.
 */

/** What `stat` reports about a path. */
export interface FopStat {
  readonly type: 'file' | 'directory' | 'other';
  /** Bytes, for files (the identity form: an archive entry's uncompressed size). */
  readonly size: number;
  /** Milliseconds since the epoch, when the backend knows it. */
  readonly modTime?: number;
  /** Inode and device where the backend has them; part of an archive's cache identity. */
  readonly ino?: number;
  readonly dev?: number;
  /** Inode change time in ms where the backend has it: moves on any write or metadata change, even one that restores the mtime. */
  readonly changeTime?: number;
  /**
   * A token naming this version of the bytes, from backends without inodes to tell versions apart
   * (archive entries: the identity their handle reports, which names every archive around them);
   * part of an archive's cache identity. Never a path.
   */
  readonly version?: string;
  /** The content's CRC-32 where the backend knows it without reading (archive entries): a validator that survives rebuilds. */
  readonly crc32?: number;
  /** True when an open with `COMPR_ACCEPTABLE_GZIP` returns gzip bytes (`COMPR_IS_GZIP`): the file has two representations. */
  readonly gzipAvailable?: boolean;
}

/**
 * An open file: the generic state lws keeps in `lws_fop_fd`, plus its operations.
 *
 * Calls on one handle are serialised by the handle; use `readAt` (where present)
 * or separate handles for parallel reads.
 */
export interface FopFd {
  /** The backend that owns this handle. */
  readonly fops: FileOps;
  /** Current position in the logical stream (for gzip handles, in the gzip bytes). */
  readonly pos: number;
  /** Length of the logical stream: the gzip member's length when `COMPR_IS_GZIP` is set. */
  readonly length: number;
  /** The flags as updated by open (see {@link FopFlags}). */
  readonly flags: number;
  /** Modification time in ms since the epoch; meaningful only when `MOD_TIME_VALID` is set. */
  readonly modTime: number;
  /**
   * Reads up to `buf.length` bytes at `pos` into `buf` and advances `pos`.
   * Resolves to the count read, which is 0 only at end of file (or for an empty `buf`).
   * Rejects with a {@link FopError}; for archive entries a CRC or size mismatch
   * rejects at the read that detects it, before the bytes that complete the entry are returned.
   */
  read(buf: Uint8Array): Promise<number>;
  /**
   * Moves `pos` by `delta` and returns the new position, clamped to `[0, length]`.
   * Seeking is always synchronous and cheap; any cost is paid by the next read.
   */
  seekCur(delta: number): number;
  /** Releases the handle. Closing twice is harmless; any other call after close rejects with `CLOSED`. */
  close(): Promise<void>;
  /** Writes `buf` at `pos` and advances it; present only where the backend can write. */
  write?(buf: Uint8Array): Promise<number>;
  /**
   * Optional capability: reads at an absolute position without touching `pos`;
   * safe to call concurrently. Resolves to 0 only at end of file.
   */
  readAt?(buf: Uint8Array, position: number): Promise<number>;
  /**
   * Optional capability: a scatter read (`preadv(2)`): fills `buffers` in order from the absolute
   * position, without touching `pos`; safe to call concurrently. Resolves to the bytes read, short
   * only at end of file. Lets a reader skip framing between pieces of data (the 5-byte headers of
   * deflate's stored blocks) in one system call and no copy.
   */
  readvAt?(buffers: readonly Uint8Array[], position: number): Promise<number>;
  /**
   * Optional capability: reads up to `maxLength` bytes at `pos`, advances `pos`,
   * and returns them in a Buffer (an empty Buffer only at end of file) that the
   * caller must not modify: backends that produce bytes in their own fresh
   * buffers (an inflater), or hold them in immutable memory (a cache), hand
   * those over without a copy.
   */
  readBuffer?(maxLength: number): Promise<Buffer>;
  /**
   * Optional capability: up to `maxLength` bytes at `position` (at least one, unless at end of
   * file) as a view of the backend's own immutable memory, such as a cached block, without a copy;
   * the caller must not modify it. Does not touch `pos`; safe to call concurrently.
   */
  viewAt?(position: number, maxLength: number): Promise<Buffer>;
  /**
   * Optional capability, after `posix_fadvise(POSIX_FADV_WILLNEED)`: the caller is about to read
   * `[offset, offset + length)`. A backend may start fetching it (a remote one: in one request) and
   * must not fail or block for it; the bytes are still read with `read`/`readAt`, which see the
   * same contents with or without the advice. {@link fopAdvise} is a no-op for backends without it.
   * `whole` says the caller will read all of the range (a zip central directory), so it may be
   * fetched at once; without it the caller may stop early (an entry answered with a 304 or a short
   * range), so a backend should start small and grow as reads go on (`POSIX_FADV_SEQUENTIAL`).
   */
  advise?(offset: number, length: number, whole?: boolean): void;
  /**
   * Optional capability: a token naming the exact bytes this handle reads,
   * taken when it was opened. Two handles with the same identity read the
   * same bytes, and a change to the file gives a new identity (disk: device,
   * inode, size, mtime and ctime from `fstat`; archive entries: the archive's
   * identity, the entry and its CRC-32). Never a path; safe to hash into an ETag.
   * Without it, {@link fopIdentity} falls back to length and modTime.
   */
  readonly identity?: string;
  /**
   * Optional capability: resolves true when the bytes behind the handle may
   * have changed since it was opened (disk: `fstat` again and compare). A
   * server checks it before the last byte of a body goes out, so a file
   * rewritten mid-response is never sent as a complete response. Without it,
   * {@link fopChanged} resolves false.
   */
  changed?(): Promise<boolean>;
}

/**
 * A backend. `open` is the minimum; it resolves to a handle or rejects with a
 * {@link FopError} (never resolves to null). `path` must be canonical
 * ({@link validFopPath}); `flags` combines platform open flags with {@link FopFlags}.
 */
export interface FileOps {
  open(path: string, flags?: number): Promise<FopFd>;
}

/** Optional capability: report what a path is without opening it. */
export interface StatOps extends FileOps {
  stat(path: string): Promise<FopStat>;
}

/** One name in a directory, as {@link ListOps.readDir} reports it. */
export interface FopDirEntry {
  /** One path segment: never empty, `.`, `..`, and never containing `/`. */
  readonly name: string;
  /** What the name is, symlinks followed (a dangling or special one is `other`). */
  readonly type: 'file' | 'directory' | 'other';
  /** The name is a symbolic link (disk backends): its target may lie anywhere. */
  readonly symlink?: boolean;
  /** Bytes, for files, when the backend knows it without another call (archive entries). */
  readonly size?: number;
  /** Milliseconds since the epoch, when the backend knows it without another call. */
  readonly modTime?: number;
}

/**
 * Optional capability, after Go's `io/fs.ReadDirFS`: the names in a directory.
 * {@link fopReadDir} resolves undefined for backends without it ("cannot list").
 */
export interface ListOps extends FileOps {
  /**
   * The entries of the directory `path`, sorted by name (code unit order), without `.` and `..`;
   * undefined when the path belongs to a backend that cannot list (a chain delegating to one).
   * Rejects with a {@link FopError}: `NOT_FOUND` when `path` names no directory. An archive file
   * named as the path is listed as its root directory by backends that enter archives.
   */
  readDir(path: string): Promise<readonly FopDirEntry[] | undefined>;
}

/**
 * Optional capability of backends that sit on a real disk: the canonical
 * on-disk path a path resolves to, symlinks followed (`realpath(3)`). For a
 * member of an archive it is the archive file's real path. Servers use it to
 * keep symlinks inside a mount's root; {@link fopRealPath} falls back to
 * undefined (wholly virtual: nothing to contain).
 */
export interface RealPathOps extends FileOps {
  /** The real path, or undefined where `path` is wholly virtual (a prefix namespace without a disk). */
  realPath(path: string): Promise<string | undefined>;
}

/**
 * Optional capability of backends chained into a {@link Vfs} by path signature,
 * as lws's zip fops is: a path such as `/srv/site.zip/css/app.css` is split at
 * the first signature (`.zip/`) whose prefix names a real file (the container),
 * and the rest (`css/app.css`) is the member.
 */
export interface ContainerOps extends FileOps {
  /** Lower-case signatures that end a container segment, each with its trailing `/` (`.zip/`). */
  readonly signatures: readonly string[];
  /**
   * Opens `member` (relative, canonical, may be `''` for the root) of the container
   * at `container`, whose stat by the backend below is `containerStat`.
   */
  openMember(container: string, containerStat: FopStat, member: string, flags: number): Promise<FopFd>;
  /** Stats `member` of the container, as `openMember`. */
  statMember(container: string, containerStat: FopStat, member: string): Promise<FopStat>;
}
