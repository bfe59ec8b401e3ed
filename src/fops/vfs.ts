import { locateContainer } from './container.js';
import { fopReadDir, fopRealPath, fopStat } from './helpers.js';
import { PlatFops } from './plat.js';
import { assertFopPath, signatureSplits } from './path.js';
import type { ContainerOps, FileOps, FopDirEntry, FopFd, FopStat, ListOps, RealPathOps, StatOps } from './types.js';
import { ZipFops, type ZipFopsOptions } from './zip/zip-fops.js';

/** A wholly virtual namespace: paths equal to `prefix` or under it go to `fops` unchanged. */
export interface VfsPrefix {
  /** A canonical path such as `/mem`. */
  readonly prefix: string;
  readonly fops: FileOps;
}

/** Options for {@link Vfs}. */
export interface VfsOptions {
  /** The backend at the bottom of the chain, and the one containers are opened through (default {@link PlatFops}). */
  readonly base?: FileOps;
  /**
   * Container backends selected by path signature (default: one {@link ZipFops}
   * over `base`). A container backend should open archives through `base`.
   */
  readonly containers?: readonly ContainerOps[];
  /** Options for the default {@link ZipFops}, when `containers` is not given. */
  readonly zip?: Omit<ZipFopsOptions, 'source'>;
  /** Virtual namespaces by prefix (lws's prefix signatures), checked first. */
  readonly prefixes?: readonly VfsPrefix[];
}

interface Selected {
  readonly ops: ContainerOps;
  readonly container: string;
  readonly stat: FopStat;
  readonly member: string;
}

/**
 * The fops chain, as `lws_vfs_select_fops`: a path goes to a prefix backend,
 * or to the container backend whose signature ends one of its segments, or
 * to the base. `/srv/site.zip/css/app.css` goes to the zip backend, which
 * opens `/srv/site.zip` through the base and serves `css/app.css` from it.
 *
 * Unlike lws, a signature counts only when its prefix is a real file: a
 * directory named `x.zip` is a directory, and matching continues past it.
 * Matching is ASCII-case-insensitive. Paths with no signature cost no stat.
 */
export class Vfs implements StatOps, RealPathOps, ListOps {
  readonly base: FileOps;
  readonly containers: readonly ContainerOps[];
  readonly prefixes: readonly VfsPrefix[];
  readonly #signatures: readonly string[];

  constructor(options: VfsOptions = {}) {
    this.base = options.base ?? new PlatFops();
    this.containers = Object.freeze([...(options.containers ?? [new ZipFops({ ...options.zip, source: this.base })])]);
    this.prefixes = Object.freeze([...(options.prefixes ?? [])]);
    for (const p of this.prefixes) assertFopPath(p.prefix, 'prefix');
    this.#signatures = Object.freeze(this.containers.flatMap((c) => c.signatures));
  }

  async open(path: string, flags = 0): Promise<FopFd> {
    assertFopPath(path, 'open');
    const prefixed = this.#prefixed(path);
    if (prefixed) return prefixed.open(path, flags);
    const sel = await this.#select(path, 'open');
    return sel ? sel.ops.openMember(sel.container, sel.stat, sel.member, flags) : this.base.open(path, flags);
  }

  async stat(path: string): Promise<FopStat> {
    assertFopPath(path, 'stat');
    const prefixed = this.#prefixed(path);
    if (prefixed) return fopStat(prefixed, path);
    const sel = await this.#select(path, 'stat');
    return sel ? sel.ops.statMember(sel.container, sel.stat, sel.member) : fopStat(this.base, path);
  }

  /**
   * The real on-disk path: the base's for plain paths, the archive file's for
   * members of a container, the prefix backend's (often none) for its namespace.
   */
  async realPath(path: string): Promise<string | undefined> {
    assertFopPath(path, 'realPath');
    const prefixed = this.#prefixed(path);
    if (prefixed) return fopRealPath(prefixed, path);
    const sel = await this.#select(path, 'realPath');
    return fopRealPath(this.base, sel ? sel.container : path);
  }

  /**
   * Lists a directory: the prefix backend's, the container's for a directory inside an archive
   * or for an archive file itself (its root), else the base's. Undefined where that backend cannot list.
   */
  async readDir(path: string): Promise<readonly FopDirEntry[] | undefined> {
    assertFopPath(path, 'readDir');
    const prefixed = this.#prefixed(path);
    if (prefixed) return fopReadDir(prefixed, path);
    const sel = await this.#select(path, 'readDir');
    if (sel) return fopReadDir(sel.ops, path);
    // `/srv/site.zip` itself: a file to open, a directory to list (the archive's root).
    const owner = path === '/' ? undefined : this.#owner(path);
    if (owner && (await fopStat(this.base, path)).type === 'file') return fopReadDir(owner, path);
    return fopReadDir(this.base, path);
  }

  #prefixed(path: string): FileOps | undefined {
    for (const p of this.prefixes) {
      if (path === p.prefix || (path.startsWith(p.prefix) && (p.prefix === '/' || path.charCodeAt(p.prefix.length) === 0x2f))) return p.fops;
    }
    return undefined;
  }

  async #select(path: string, op: string): Promise<Selected | undefined> {
    if (this.#signatures.length === 0) return undefined;
    const loc = await locateContainer(this.base, path, this.#signatures, op);
    if (!loc) return undefined;
    // The signatures are the containers' own, so one of them owns every match.
    const ops = this.#owner(loc.container);
    return ops ? { ops, ...loc } : undefined;
  }

  #owner(container: string): ContainerOps | undefined {
    return this.containers.find((c) => signatureSplits(`${container}/`, c.signatures).includes(container.length));
  }
}
