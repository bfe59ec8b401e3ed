import {
  close as fsClose,
  constants as fsc,
  fstat as fsFstat,
  open as fsOpen,
  read as fsRead,
  readdir as fsReaddir,
  readv as fsReadv,
  realpath as fsRealpath,
  stat as fsStat,
  write as fsWrite,
  type Dirent,
  type Stats,
} from 'node:fs';
import { FopError, fromSystemError } from './errors.js';
import { FopFlags } from './flags.js';
import { FopHandle } from './handle.js';
import { assertFopPath } from './path.js';
import type { FopDirEntry, FopFd, FopStat, ListOps, RealPathOps, StatOps } from './types.js';

const ACCESS_MODE = fsc.O_RDONLY | fsc.O_WRONLY | fsc.O_RDWR;
// O_NONBLOCK: opening a FIFO for reading would otherwise block a threadpool
// thread until a writer appears; with it, open returns and fstat rejects it.
// Absent on Windows, though @types/node declares it always.
const NONBLOCK = (fsc as Partial<typeof fsc>).O_NONBLOCK ?? 0;

// The callback fs API on raw descriptors: measurably lighter per call than
// fs/promises FileHandles, which dominated a small-file serving profile.
function openFd(path: string, flags: number): Promise<number> {
  return new Promise((resolve, reject) => fsOpen(path, flags, (err, fd) => (err ? reject(err) : resolve(fd))));
}
function fstatFd(fd: number): Promise<Stats> {
  return new Promise((resolve, reject) => fsFstat(fd, (err, st) => (err ? reject(err) : resolve(st))));
}
function closeFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fsClose(fd, (err) => (err ? reject(err) : resolve())));
}
function statPath(path: string): Promise<Stats> {
  return new Promise((resolve, reject) => fsStat(path, (err, st) => (err ? reject(err) : resolve(st))));
}
function readDirents(path: string): Promise<Dirent[]> {
  return new Promise((resolve, reject) => fsReaddir(path, { withFileTypes: true }, (err, list) => (err ? reject(err) : resolve(list))));
}
function realPath(path: string): Promise<string> {
  return new Promise((resolve, reject) => fsRealpath(path, (err, real) => (err ? reject(err) : resolve(real))));
}

/** What names one version of a file: a rename gives a new inode, an in-place write a new ctime. */
function versionOf(st: Stats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

/** `buffers` without their first `skip` bytes. */
function remainder(buffers: readonly Uint8Array[], skip: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const b of buffers) {
    if (skip >= b.length) skip -= b.length;
    else {
      out.push(skip > 0 ? b.subarray(skip) : b);
      skip = 0;
    }
  }
  return out;
}

class PlatHandle extends FopHandle {
  readonly #fd: number;
  readonly #opened: Stats;
  readonly identity: string;

  constructor(fops: PlatFops, path: string, fd: number, st: Stats, flags: number) {
    super(fops, path, { length: st.size, flags, modTime: st.mtimeMs });
    this.#fd = fd;
    this.#opened = st;
    this.identity = versionOf(st);
  }

  /**
   * `fstat` again: a write since open moves size, mtime or ctime (the kernel stamps every write). A ctime
   * that moved only because the file was unlinked (renamed over, deleted) leaves its bytes as they were.
   */
  async changed(): Promise<boolean> {
    this.assertOpen('stat');
    let now: Stats;
    try {
      now = await fstatFd(this.#fd);
    } catch (err) {
      throw fromSystemError(err, 'stat', this.path);
    }
    if (now.size !== this.#opened.size || now.mtimeMs !== this.#opened.mtimeMs) return true;
    return now.ctimeMs !== this.#opened.ctimeMs && now.nlink > 0;
  }

  protected async readImpl(buf: Uint8Array): Promise<number> {
    return this.#readAt(buf, this.pos);
  }

  readAt(buf: Uint8Array, position: number): Promise<number> {
    this.assertOpen('read');
    return this.#readAt(buf, position);
  }

  /** One `preadv(2)`, looped only over short reads. */
  async readvAt(buffers: readonly Uint8Array[], position: number): Promise<number> {
    this.assertOpen('read');
    const total = buffers.reduce((n, b) => n + b.length, 0);
    let done = 0;
    while (done < total) {
      const rest = done === 0 ? buffers : remainder(buffers, done);
      const n = await new Promise<number>((resolve, reject) =>
        fsReadv(this.#fd, rest as NodeJS.ArrayBufferView[], position + done, (err, got) =>
          err ? reject(fromSystemError(err, 'read', this.path)) : resolve(got),
        ),
      );
      if (n <= 0) break;
      done += n;
    }
    return done;
  }

  #readAt(buf: Uint8Array, position: number): Promise<number> {
    return new Promise((resolve, reject) =>
      fsRead(this.#fd, buf, 0, buf.length, position, (err, n) => (err ? reject(fromSystemError(err, 'read', this.path)) : resolve(n))),
    );
  }

  protected override async writeImpl(buf: Uint8Array): Promise<number> {
    if ((this.flags & ACCESS_MODE) === fsc.O_RDONLY) throw new FopError('READ_ONLY', 'write', this.path, 'opened read-only');
    return new Promise((resolve, reject) =>
      fsWrite(this.#fd, buf, 0, buf.length, this.pos, (err, n) => (err ? reject(fromSystemError(err, 'write', this.path)) : resolve(n))),
    );
  }

  protected override closeImpl(): Promise<void> {
    return closeFd(this.#fd);
  }
}

/**
 * The disk backend (`lws_plat_file_ops`): positional reads on a file descriptor,
 * so concurrent readers never share a cursor, with `MOD_TIME_VALID` set from
 * `fstat`. Paths are canonical absolute paths on the local filesystem.
 * Symlinks are followed; containing them is the mount layer's job.
 *
 * Subclass it to wrap opens (`override async open(...) { ...; return super.open(...) }`).
 */
export class PlatFops implements StatOps, RealPathOps, ListOps {
  async open(path: string, flags = 0): Promise<FopFd> {
    assertFopPath(path, 'open');
    let fd: number;
    try {
      fd = await openFd(path, (flags & FopFlags.MASK) | NONBLOCK);
    } catch (err) {
      throw fromSystemError(err, 'open', path);
    }
    try {
      const st = await fstatFd(fd);
      if (!st.isFile()) throw new FopError('NOT_A_FILE', 'open', path, st.isDirectory() ? 'is a directory' : 'not a regular file');
      // The platform flags are kept; the generic ones are ours to set.
      const out = (flags & ~FopFlags.COMPR_IS_GZIP & ~FopFlags.VIRTUAL) | FopFlags.MOD_TIME_VALID;
      return new PlatHandle(this, path, fd, st, out);
    } catch (err) {
      await closeFd(fd).catch(() => undefined);
      throw fromSystemError(err, 'open', path);
    }
  }

  async stat(path: string): Promise<FopStat> {
    assertFopPath(path, 'stat');
    try {
      const st = await statPath(path);
      return {
        type: st.isFile() ? 'file' : st.isDirectory() ? 'directory' : 'other',
        size: st.size,
        modTime: st.mtimeMs,
        ino: st.ino,
        dev: st.dev,
        changeTime: st.ctimeMs,
      };
    } catch (err) {
      throw fromSystemError(err, 'stat', path);
    }
  }

  /**
   * `readdir(3)` with the types the directory reports; only symlinks are stat'ed (to follow them),
   * so sizes and times are left to the caller to ask for, for the names it keeps.
   */
  async readDir(path: string): Promise<readonly FopDirEntry[]> {
    assertFopPath(path, 'readDir');
    let list: Dirent[];
    try {
      list = await readDirents(path);
    } catch (err) {
      throw fromSystemError(err, 'readDir', path);
    }
    const base = path === '/' ? '' : path;
    const out = await Promise.all(
      list.map(async (d): Promise<FopDirEntry> => {
        const name = d.name;
        if (d.isFile()) return { name, type: 'file' };
        if (d.isDirectory()) return { name, type: 'directory' };
        if (!d.isSymbolicLink()) return { name, type: 'other' };
        // A dangling link, or one the process may not follow, names nothing servable.
        const st = await statPath(`${base}/${name}`).catch(() => undefined);
        const type = st === undefined ? 'other' : st.isFile() ? 'file' : st.isDirectory() ? 'directory' : 'other';
        return { name, type, symlink: true };
      }),
    );
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** `realpath(3)`: symlinks resolved, for containment checks. */
  async realPath(path: string): Promise<string | undefined> {
    assertFopPath(path, 'realPath');
    try {
      return await realPath(path);
    } catch (err) {
      throw fromSystemError(err, 'realPath', path);
    }
  }
}
