import { FopError } from '../errors.js';
import { fopAdvise, fopReadAt, fopReadvAt } from '../helpers.js';
import type { FopFd } from '../types.js';

/**
 * What the zip reader sits on: a size and positional reads, like Go's
 * `io.ReaderAt`. Reads may be short; 0 means end of data.
 */
export interface RandomAccessSource {
  readonly size: number;
  read(buf: Uint8Array, position: number): Promise<number>;
  /** Optional: a scatter read in one call (`preadv`), short only at the end of data. */
  readv?(buffers: readonly Uint8Array[], position: number): Promise<number>;
  /** Optional: up to `maxLength` bytes at `position` as a view not to be modified (see `FopFd.viewAt`). */
  view?(position: number, maxLength: number): Promise<Buffer>;
  /** Optional: `[position, position + length)` is about to be read (see `FopFd.advise`); never fails. */
  advise?(position: number, length: number, whole: boolean): void;
}

/** Advises `src` of a range about to be read, where it takes advice; clamped to the source. */
export function adviseSource(src: RandomAccessSource, position: number, length: number, whole = false): void {
  const end = Math.min(src.size, position + length);
  if (src.advise && position >= 0 && end > position) src.advise(position, end - position, whole);
}

/** A source over an open handle of any backend (its `readAt`, or serialised seek+read; `readvAt` and `advise` where it has them). */
export function sourceFromFd(fd: FopFd): RandomAccessSource {
  let source: RandomAccessSource = { size: fd.length, read: (buf, position) => fopReadAt(fd, buf, position) };
  if (fd.readvAt) source = { ...source, readv: (buffers, position) => fopReadvAt(fd, buffers, position) };
  if (fd.advise) source = { ...source, advise: (position, length, whole) => fopAdvise(fd, position, length, whole) };
  const viewAt = fd.viewAt?.bind(fd);
  if (viewAt) source = { ...source, view: viewAt };
  return source;
}

/** A source over bytes in memory. */
export function sourceFromBytes(bytes: Uint8Array): RandomAccessSource {
  return {
    size: bytes.length,
    read(buf, position) {
      if (position >= bytes.length) return Promise.resolve(0);
      const n = Math.min(buf.length, bytes.length - position);
      buf.set(bytes.subarray(position, position + n));
      return Promise.resolve(n);
    },
  };
}

/**
 * Fills `buf` from `position`, looping over short reads; a source that ends
 * first means the archive is truncated (or changed under us).
 */
export async function readExact(src: RandomAccessSource, buf: Uint8Array, position: number, path: string): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const n = await src.read(done === 0 ? buf : buf.subarray(done), position + done);
    if (n <= 0) throw new FopError('CORRUPT_ARCHIVE', 'read', path, 'archive is truncated');
    done += n;
  }
}
