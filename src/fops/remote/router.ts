/**
 * The base backend of an engine with `range+http(s)://` mounts: the disk, plus a reserved path
 * prefix ({@link REMOTE_PREFIX}) under which each remote archive a mount names appears as one file.
 * Because this is the Vfs's base, its zip layer enters those files as it enters archives on disk.
 *
 * Only the exact objects the mounts name are reachable: any other path under the prefix is
 * `NOT_FOUND`, so a disk mount of `/` cannot be turned into a fetcher of arbitrary URLs.
 * A disk path under the prefix is shadowed (it is reserved).
 */
import { FopError } from '../errors.js';
import { fopReadDir, fopRealPath, fopStat } from '../helpers.js';
import { assertFopPath } from '../path.js';
import type { FileOps, FopDirEntry, FopFd, FopStat, ListOps, RealPathOps, StatOps } from '../types.js';
import { HttpRangeFops, type HttpRangeFopsOptions, type RequestSigner } from './http-range.js';

/** The reserved fops path prefix under which remote archives appear. */
export const REMOTE_PREFIX = '/.vfserve-remote';

/**
 * One remote object a mount names: its origin (`http://host:port`) and its path there (decoded,
 * canonical), and how requests for it are authorised.
 */
export interface RemoteObjectRef {
  readonly origin: string;
  readonly path: string;
  /** A presigned URL's query (a credential): sent with every request, and no HEAD is sent. */
  readonly query?: string;
  /** Signs every request (an `s3://` mount with credentials). */
  readonly sign?: RequestSigner;
  /** For `s3://` mounts: the bucket and key, which name the object under {@link REMOTE_PREFIX}. */
  readonly s3?: { readonly bucket: string; readonly key: string };
}

/**
 * The fops path under {@link REMOTE_PREFIX} standing for a remote object:
 * `/.vfserve-remote/<scheme>/<host:port>/<path>`, or `/.vfserve-remote/s3/<bucket>/<key>`.
 */
export function remoteFopPath(ref: RemoteObjectRef): string {
  if (ref.s3) return `${REMOTE_PREFIX}/s3/${ref.s3.bucket}${ref.s3.key}`;
  const url = new URL(ref.origin);
  return `${REMOTE_PREFIX}/${url.protocol.slice(0, -1)}/${url.host}${ref.path}`;
}

/**
 * Routes the reserved prefix to {@link HttpRangeFops} backends and the rest to `disk`. Objects on
 * one origin without their own authorisation share a backend (one connection pool and block cache);
 * a signed (`s3://` with credentials) or presigned object gets a backend of its own.
 */
export class RemoteRouterFops implements StatOps, ListOps, RealPathOps {
  readonly #disk: FileOps;
  readonly #objects = new Map<string, { fops: HttpRangeFops; path: string }>();
  readonly #byOrigin = new Map<string, HttpRangeFops>();
  /** The directories above each object (host and path segments may end in `.zip` too: `cdn.zip`). */
  readonly #dirs = new Set<string>();

  constructor(disk: FileOps, refs: readonly RemoteObjectRef[], options: Omit<HttpRangeFopsOptions, 'baseUrl' | 'sign' | 'query' | 'headAllowed'> = {}) {
    this.#disk = disk;
    for (const ref of refs) {
      const own = ref.sign !== undefined || ref.query !== undefined;
      // Keyed by position for the ones of their own: a key holding a query would hold a credential.
      const key = own ? `\0${this.#byOrigin.size}` : ref.origin;
      let fops = this.#byOrigin.get(key);
      if (!fops) {
        fops = new HttpRangeFops({
          ...options,
          baseUrl: ref.origin,
          ...(ref.sign ? { sign: ref.sign } : {}),
          ...(ref.query !== undefined ? { query: ref.query, headAllowed: false } : {}),
        });
        this.#byOrigin.set(key, fops);
      }
      const path = remoteFopPath(ref);
      this.#objects.set(path, { fops, path: ref.path });
      for (let i = path.indexOf('/', 1); i !== -1; i = path.indexOf('/', i + 1)) this.#dirs.add(path.slice(0, i));
    }
  }

  /** Closes every origin's connections. */
  async close(): Promise<void> {
    await Promise.all([...this.#byOrigin.values()].map((f) => f.close()));
  }

  /**
   * The object `path` names under the prefix, or undefined outside it. The directories above an
   * object are directories (so that a container search passes over `cdn.zip` in `/…/cdn.zip/site.zip`);
   * anything else under the prefix is `NOT_FOUND`.
   */
  #remote(path: string, op: string): { fops: HttpRangeFops; path: string } | 'dir' | undefined {
    assertFopPath(path, op);
    if (path !== REMOTE_PREFIX && !path.startsWith(`${REMOTE_PREFIX}/`)) return undefined;
    const hit = this.#objects.get(path);
    if (hit) return hit;
    if (this.#dirs.has(path)) return 'dir';
    throw new FopError('NOT_FOUND', op, path);
  }

  // Async throughout, so that every refusal is a rejection, never a synchronous throw.
  async open(path: string, flags?: number): Promise<FopFd> {
    const r = this.#remote(path, 'open');
    if (r === 'dir') throw new FopError('NOT_A_FILE', 'open', path, 'is a directory');
    return r ? r.fops.open(r.path, flags) : this.#disk.open(path, flags);
  }

  async stat(path: string): Promise<FopStat> {
    const r = this.#remote(path, 'stat');
    if (r === 'dir') return { type: 'directory', size: 0 };
    return r ? r.fops.stat(r.path) : fopStat(this.#disk, path);
  }

  async readDir(path: string): Promise<readonly FopDirEntry[] | undefined> {
    // Nothing under the prefix is listed: a remote object is a file, and its directories are not browsable.
    if (this.#remote(path, 'readDir')) return undefined;
    return fopReadDir(this.#disk, path);
  }

  async realPath(path: string): Promise<string | undefined> {
    // Wholly virtual: nothing on disk to contain.
    return this.#remote(path, 'realPath') ? undefined : fopRealPath(this.#disk, path);
  }
}
