import { Readable } from 'node:stream';
import { FopError } from './errors.js';
import { FopFlags } from './flags.js';
import type { FileOps, FopDirEntry, FopFd, FopStat, ListOps, RealPathOps, StatOps } from './types.js';

/** `lws_vfs_tell`: the handle's current position. */
export function vfsTell(fd: FopFd): number {
  return fd.pos;
}

/** `lws_vfs_get_length`: the logical length (the gzip length for `COMPR_IS_GZIP` handles). */
export function vfsGetLength(fd: FopFd): number {
  return fd.length;
}

/** `lws_vfs_get_mod_time`: the modification time in ms, or `undefined` unless `MOD_TIME_VALID` is set. */
export function vfsGetModTime(fd: FopFd): number | undefined {
  return (fd.flags & FopFlags.MOD_TIME_VALID) !== 0 ? fd.modTime : undefined;
}

/** `lws_vfs_file_seek_set`: moves to `offset` from the start; returns the new (clamped) position. */
export function vfsSeekSet(fd: FopFd, offset: number): number {
  return fd.seekCur(offset - fd.pos);
}

/**
 * `lws_vfs_file_seek_end`: moves to `offset` from the end (normally `<= 0`);
 * returns the new position. (lws computes `len + pos + offset`, which is only
 * right at `pos == 0`; this is `len - pos + offset` relative to `pos`.)
 */
export function vfsSeekEnd(fd: FopFd, offset: number): number {
  return fd.seekCur(fd.length - fd.pos + offset);
}

/** Reports whether a backend has the `stat` capability. */
export function hasStat(fops: FileOps): fops is StatOps {
  return typeof (fops as Partial<StatOps>).stat === 'function';
}

/**
 * Stats `path` with the backend's `stat` when it has one; otherwise opens and
 * closes the path, reporting a file (from the handle) or a directory (when
 * open fails with `NOT_A_FILE`).
 */
export async function fopStat(fops: FileOps, path: string): Promise<FopStat> {
  if (hasStat(fops)) return fops.stat(path);
  let fd: FopFd;
  try {
    fd = await fops.open(path, 0);
  } catch (err) {
    if (FopError.is(err, 'NOT_A_FILE')) return { type: 'directory', size: 0 };
    throw err;
  }
  try {
    const st: FopStat = { type: 'file', size: fd.length };
    const modTime = vfsGetModTime(fd);
    return modTime === undefined ? st : { ...st, modTime };
  } finally {
    await fd.close();
  }
}

/**
 * The handle's {@link FopFd.identity}, or, for backends without one, a token
 * from its length and modification time (undefined when the modification
 * time is not valid: then nothing but the bytes themselves could tell two
 * versions apart, and no validator should be made).
 */
export function fopIdentity(fd: FopFd): string | undefined {
  if (fd.identity !== undefined) return fd.identity;
  const modTime = vfsGetModTime(fd);
  return modTime === undefined ? undefined : `${fd.length}:${modTime}`;
}

/** The handle's {@link FopFd.changed}, or false for backends that cannot tell. */
export function fopChanged(fd: FopFd): Promise<boolean> {
  return fd.changed ? fd.changed() : Promise.resolve(false);
}

/**
 * Tells the handle that `[offset, offset + length)` is about to be read ({@link FopFd.advise});
 * a no-op for backends without the capability, and for an empty or invalid range.
 */
export function fopAdvise(fd: FopFd, offset: number, length: number, whole = false): void {
  if (!fd.advise || !Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length <= 0) return;
  fd.advise(offset, length, whole);
}

/** Reports whether a backend has the `readDir` capability. */
export function hasReadDir(fops: FileOps): fops is ListOps {
  return typeof (fops as Partial<ListOps>).readDir === 'function';
}

/**
 * The entries of the directory `path` through the backend's `readDir`, or
 * undefined when the backend cannot list. Rejects as the backend does.
 */
export function fopReadDir(fops: FileOps, path: string): Promise<readonly FopDirEntry[] | undefined> {
  return hasReadDir(fops) ? fops.readDir(path) : Promise.resolve(undefined);
}

/** Reports whether a backend has the `realPath` capability. */
export function hasRealPath(fops: FileOps): fops is RealPathOps {
  return typeof (fops as Partial<RealPathOps>).realPath === 'function';
}

/**
 * The real on-disk path of `path` through the backend's `realPath`, or
 * undefined when the backend has none (wholly virtual). Rejects as the
 * backend does (`NOT_FOUND` and so on).
 */
export function fopRealPath(fops: FileOps, path: string): Promise<string | undefined> {
  return hasRealPath(fops) ? fops.realPath(path) : Promise.resolve(undefined);
}

const serialReads = new WeakMap<FopFd, Promise<unknown>>();

/**
 * Reads at an absolute position without disturbing other readers: the handle's
 * `readAt` when it has one, otherwise seek-and-read serialised per handle
 * (the position is restored afterwards).
 */
export function fopReadAt(fd: FopFd, buf: Uint8Array, position: number): Promise<number> {
  if (fd.readAt) return fd.readAt(buf, position);
  const prev = serialReads.get(fd) ?? Promise.resolve();
  const run = prev.then(async () => {
    const saved = fd.pos;
    try {
      if (fd.seekCur(position - fd.pos) !== position) return 0;
      return await fd.read(buf);
    } finally {
      fd.seekCur(saved - fd.pos);
    }
  });
  serialReads.set(
    fd,
    run.catch(() => undefined),
  );
  return run;
}

/**
 * A scatter read at `position`: `fd.readvAt` where the backend has it, else
 * {@link fopReadAt} into each buffer in turn. Resolves to the bytes read,
 * short only at end of file.
 */
export async function fopReadvAt(fd: FopFd, buffers: readonly Uint8Array[], position: number): Promise<number> {
  if (fd.readvAt) return fd.readvAt(buffers, position);
  let done = 0;
  for (const buf of buffers) {
    let got = 0;
    while (got < buf.length) {
      const n = await fopReadAt(fd, got === 0 ? buf : buf.subarray(got), position + done + got);
      if (n <= 0) return done + got;
      got += n;
    }
    done += got;
  }
  return done;
}

/**
 * Reads the rest of the handle into one Buffer. It grows by chunks as bytes
 * arrive and never allocates from the declared length; past `maxBytes` it
 * rejects with `LIMIT_EXCEEDED`.
 */
export async function readAll(fd: FopFd, maxBytes = 256 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    const chunk = Buffer.allocUnsafe(64 * 1024);
    const n = await fd.read(chunk);
    if (n === 0) break;
    total += n;
    if (total > maxBytes) throw new FopError('LIMIT_EXCEEDED', 'read', '', `more than ${maxBytes} bytes`);
    chunks.push(n === chunk.length ? chunk : chunk.subarray(0, n));
  }
  return Buffer.concat(chunks, total);
}

/** Options for {@link createFopReadStream}. */
export interface FopReadStreamOptions {
  /** First byte to send (default 0). */
  readonly start?: number;
  /** Last byte to send, inclusive, as in `fs.createReadStream` (default: the last byte). */
  readonly end?: number;
  /** Bytes per read (default 64 KiB). */
  readonly highWaterMark?: number;
  /** Close the handle when the stream ends, errors or is destroyed (default true). */
  readonly autoClose?: boolean;
}

/**
 * Streams a handle, or the inclusive byte range `[start, end]` of it, as a
 * Readable with backpressure: the next `read` is issued only when the consumer
 * asks for more. Errors from the handle destroy the stream (so an HTTP
 * response is aborted, never completed with wrong bytes). The handle is used
 * exclusively by the stream until it ends.
 */
export function createFopReadStream(fd: FopFd, options: FopReadStreamOptions = {}): Readable {
  const start = options.start ?? 0;
  const end = Math.min(options.end ?? fd.length - 1, fd.length - 1);
  const chunkSize = options.highWaterMark ?? 64 * 1024;
  const autoClose = options.autoClose ?? true;
  let remaining = Math.max(0, end - start + 1);
  let positioned = false;
  return new Readable({
    highWaterMark: chunkSize,
    read() {
      if (!positioned) {
        positioned = true;
        if (fd.seekCur(start - fd.pos) !== start && remaining > 0) {
          this.destroy(new FopError('INVALID_ARGUMENT', 'read', '', `start ${start} is past the end`));
          return;
        }
      }
      if (remaining <= 0) {
        this.push(null);
        return;
      }
      const want = Math.min(chunkSize, remaining);
      // A backend with its own fresh buffers hands them over; otherwise read into a new one.
      const next: Promise<Buffer> = fd.readBuffer
        ? fd.readBuffer(want)
        : (async () => {
            const buf = Buffer.allocUnsafe(want);
            const n = await fd.read(buf);
            return n === buf.length ? buf : buf.subarray(0, n);
          })();
      next.then(
        (chunk) => {
          if (chunk.length === 0) {
            this.destroy(new FopError('IO', 'read', '', 'unexpected end of file'));
            return;
          }
          remaining -= chunk.length;
          this.push(chunk);
          if (remaining === 0) this.push(null);
        },
        (err: unknown) => this.destroy(err instanceof Error ? err : new Error(String(err))),
      );
    },
    destroy(err, callback) {
      if (!autoClose) {
        callback(err);
        return;
      }
      fd.close().then(
        () => callback(err),
        (closeErr: unknown) => callback(err ?? (closeErr instanceof Error ? closeErr : null)),
      );
    },
  });
}
