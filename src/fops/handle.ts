import { FopError } from './errors.js';
import type { FileOps, FopFd } from './types.js';

/** The generic state a backend sets when it opens a file. */
export interface FopHandleInit {
  readonly length: number;
  readonly flags: number;
  readonly modTime?: number;
}

/**
 * A base class for handles. It keeps lws's generic state (`pos`, `length`,
 * `flags`, `modTime`), clamps seeks, serialises calls on the handle and
 * enforces the closed state; a backend implements `readImpl` (and optionally
 * `writeImpl` and `closeImpl`).
 */
export abstract class FopHandle implements FopFd {
  readonly fops: FileOps;
  readonly path: string;
  pos = 0;
  length: number;
  readonly flags: number;
  readonly modTime: number;
  #closed = false;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(fops: FileOps, path: string, init: FopHandleInit) {
    this.fops = fops;
    this.path = path;
    this.length = init.length;
    this.flags = init.flags;
    this.modTime = init.modTime ?? 0;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Reads at `this.pos` into `buf`, which the base has already trimmed to the
   * bytes left before `length` and which is never empty. Returns the count read;
   * 0 means the backend found the end early, which the base treats as end of file.
   */
  protected abstract readImpl(buf: Uint8Array): Promise<number>;

  protected writeImpl(_buf: Uint8Array): Promise<number> {
    return Promise.reject(new FopError('READ_ONLY', 'write', this.path));
  }

  protected closeImpl(): Promise<void> {
    return Promise.resolve();
  }

  read(buf: Uint8Array): Promise<number> {
    return this.serial('read', async () => {
      const left = this.length - this.pos;
      if (buf.length === 0 || left <= 0) return 0;
      const n = await this.readImpl(buf.length > left ? buf.subarray(0, left) : buf);
      this.pos += n;
      return n;
    });
  }

  seekCur(delta: number): number {
    this.assertOpen('seek');
    if (!Number.isSafeInteger(delta)) throw new FopError('INVALID_ARGUMENT', 'seek', this.path, `invalid offset ${String(delta)}`);
    const next = this.pos + delta;
    this.pos = next < 0 ? 0 : next > this.length ? this.length : next;
    return this.pos;
  }

  write(buf: Uint8Array): Promise<number> {
    return this.serial('write', async () => {
      const n = await this.writeImpl(buf);
      this.pos += n;
      if (this.pos > this.length) this.length = this.pos;
      return n;
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Let in-flight calls settle before the backend releases its resources.
    await this.#queue.catch(() => undefined);
    await this.closeImpl();
  }

  protected assertOpen(op: string): void {
    if (this.#closed) throw new FopError('CLOSED', op, this.path);
  }

  /** Runs `fn` after every earlier call on this handle has settled, rejecting with `CLOSED` once closed. */
  protected serial<T>(op: string, fn: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new FopError('CLOSED', op, this.path));
    const run = this.#queue.then(() => {
      if (this.#closed) throw new FopError('CLOSED', op, this.path);
      return fn();
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }
}
