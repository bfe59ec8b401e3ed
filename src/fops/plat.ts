import { constants as fsc } from 'node:fs';
import { open as fsOpen, stat as fsStat, type FileHandle } from 'node:fs/promises';
import { FopError, fromSystemError } from './errors.js';
import { FopFlags } from './flags.js';
import { FopHandle } from './handle.js';
import { assertFopPath } from './path.js';
import type { FopFd, FopStat, StatOps } from './types.js';

const ACCESS_MODE = fsc.O_RDONLY | fsc.O_WRONLY | fsc.O_RDWR;
// O_NONBLOCK: opening a FIFO for reading would otherwise block a threadpool
// thread until a writer appears; with it, open returns and fstat rejects it.
const NONBLOCK = fsc.O_NONBLOCK ?? 0;

class PlatHandle extends FopHandle {
  readonly #fh: FileHandle;

  constructor(fops: PlatFops, path: string, fh: FileHandle, length: number, flags: number, modTime: number) {
    super(fops, path, { length, flags, modTime });
    this.#fh = fh;
  }

  protected async readImpl(buf: Uint8Array): Promise<number> {
    return this.#readAt(buf, this.pos);
  }

  readAt(buf: Uint8Array, position: number): Promise<number> {
    this.assertOpen('read');
    return this.#readAt(buf, position);
  }

  async #readAt(buf: Uint8Array, position: number): Promise<number> {
    try {
      const { bytesRead } = await this.#fh.read(buf, 0, buf.length, position);
      return bytesRead;
    } catch (err) {
      throw fromSystemError(err, 'read', this.path);
    }
  }

  protected override async writeImpl(buf: Uint8Array): Promise<number> {
    if ((this.flags & ACCESS_MODE) === fsc.O_RDONLY) throw new FopError('READ_ONLY', 'write', this.path, 'opened read-only');
    try {
      const { bytesWritten } = await this.#fh.write(buf, 0, buf.length, this.pos);
      return bytesWritten;
    } catch (err) {
      throw fromSystemError(err, 'write', this.path);
    }
  }

  protected override async closeImpl(): Promise<void> {
    await this.#fh.close();
  }
}

/**
 * The disk backend (`lws_plat_file_ops`): positional reads on a `FileHandle`,
 * so concurrent readers never share a cursor, with `MOD_TIME_VALID` set from
 * `fstat`. Paths are canonical absolute paths on the local filesystem.
 * Symlinks are followed; containing them is the mount layer's job.
 *
 * Subclass it to wrap opens (`override async open(...) { ...; return super.open(...) }`).
 */
export class PlatFops implements StatOps {
  async open(path: string, flags = 0): Promise<FopFd> {
    assertFopPath(path, 'open');
    let fh: FileHandle;
    try {
      fh = await fsOpen(path, (flags & FopFlags.MASK) | NONBLOCK);
    } catch (err) {
      throw fromSystemError(err, 'open', path);
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new FopError('NOT_A_FILE', 'open', path, st.isDirectory() ? 'is a directory' : 'not a regular file');
      // The platform flags are kept; the generic ones are ours to set.
      const out = (flags & ~FopFlags.COMPR_IS_GZIP & ~FopFlags.VIRTUAL) | FopFlags.MOD_TIME_VALID;
      return new PlatHandle(this, path, fh, st.size, out, st.mtimeMs);
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw fromSystemError(err, 'open', path);
    }
  }

  async stat(path: string): Promise<FopStat> {
    assertFopPath(path, 'stat');
    try {
      const st = await fsStat(path);
      return {
        type: st.isFile() ? 'file' : st.isDirectory() ? 'directory' : 'other',
        size: st.size,
        modTime: st.mtimeMs,
        ino: st.ino,
        dev: st.dev,
      };
    } catch (err) {
      throw fromSystemError(err, 'stat', path);
    }
  }
}
