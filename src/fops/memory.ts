import { constants as fsc } from 'node:fs';
import { FopError } from './errors.js';
import { FopFlags } from './flags.js';
import { FopHandle } from './handle.js';
import { assertFopPath, parentPath } from './path.js';
import type { FopFd, FopStat, StatOps } from './types.js';

const ACCESS_MODE = fsc.O_RDONLY | fsc.O_WRONLY | fsc.O_RDWR;

interface MemFile {
  data: Uint8Array;
  modTime: number;
}

class MemHandle extends FopHandle {
  readonly #file: MemFile;

  constructor(fops: MemFops, path: string, file: MemFile, flags: number) {
    super(fops, path, { length: file.data.length, flags, modTime: file.modTime });
    this.#file = file;
  }

  protected readImpl(buf: Uint8Array): Promise<number> {
    return Promise.resolve(this.#copy(buf, this.pos));
  }

  readAt(buf: Uint8Array, position: number): Promise<number> {
    this.assertOpen('read');
    return Promise.resolve(this.#copy(buf, position));
  }

  #copy(buf: Uint8Array, position: number): number {
    const data = this.#file.data;
    if (position >= data.length) return 0;
    const n = Math.min(buf.length, data.length - position);
    buf.set(data.subarray(position, position + n));
    return n;
  }

  protected override writeImpl(buf: Uint8Array): Promise<number> {
    if ((this.flags & ACCESS_MODE) === fsc.O_RDONLY) return Promise.reject(new FopError('READ_ONLY', 'write', this.path, 'opened read-only'));
    const end = this.pos + buf.length;
    let data = this.#file.data;
    if (end > data.length) {
      const grown = new Uint8Array(end);
      grown.set(data);
      data = grown;
    }
    data.set(buf, this.pos);
    this.#file.data = data;
    this.#file.modTime = Date.now();
    return Promise.resolve(buf.length);
  }
}

/** Initial content for {@link MemFops}: bytes or a string (stored as UTF-8). */
export type MemFileInit = Uint8Array | string;

/**
 * A wholly virtual, in-memory backend: an example of a user backend and the
 * workhorse of the tests. Handles set `VIRTUAL` and `MOD_TIME_VALID`.
 * Directories are implied by the files' paths. Files opened with `O_WRONLY`
 * or `O_RDWR` can be written (and grow); nothing else changes the tree.
 */
export class MemFops implements StatOps {
  readonly #files = new Map<string, MemFile>();
  readonly #dirs = new Set<string>(['/']);

  /** `files` maps canonical paths to content; `modTime` (ms) applies to all of them. */
  constructor(files: Record<string, MemFileInit> | Iterable<[string, MemFileInit]> = {}, modTime = Date.now()) {
    const entries = Symbol.iterator in files ? files : Object.entries(files);
    for (const [path, content] of entries) this.set(path, content, modTime);
  }

  /** Adds or replaces a file, creating its parent directories. */
  set(path: string, content: MemFileInit, modTime = Date.now()): void {
    assertFopPath(path, 'set');
    if (path === '/' || this.#dirs.has(path)) throw new FopError('NOT_A_FILE', 'set', path, 'is a directory');
    for (let dir = parentPath(path); !this.#dirs.has(dir); dir = parentPath(dir)) {
      if (this.#files.has(dir)) throw new FopError('NOT_A_FILE', 'set', path, 'a parent is a file');
      this.#dirs.add(dir);
    }
    const data = typeof content === 'string' ? new TextEncoder().encode(content) : content;
    this.#files.set(path, { data, modTime });
  }

  // eslint-disable-next-line @typescript-eslint/require-await -- a bad path or missing file must reject, not throw
  async open(path: string, flags = 0): Promise<FopFd> {
    assertFopPath(path, 'open');
    const file = this.#files.get(path);
    if (!file) {
      if (this.#dirs.has(path)) throw new FopError('NOT_A_FILE', 'open', path, 'is a directory');
      throw new FopError('NOT_FOUND', 'open', path);
    }
    const out = (flags & ~FopFlags.COMPR_IS_GZIP) | FopFlags.VIRTUAL | FopFlags.MOD_TIME_VALID;
    return new MemHandle(this, path, file, out);
  }

  // eslint-disable-next-line @typescript-eslint/require-await -- a bad path or missing file must reject, not throw
  async stat(path: string): Promise<FopStat> {
    assertFopPath(path, 'stat');
    const file = this.#files.get(path);
    if (file) return { type: 'file', size: file.data.length, modTime: file.modTime };
    if (this.#dirs.has(path)) return { type: 'directory', size: 0 };
    throw new FopError('NOT_FOUND', 'stat', path);
  }
}
