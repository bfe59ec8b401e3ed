import { makeEtag, negotiateEncoding } from '../cache/http.js';
import { LruCache } from '../cache/lru.js';
import { CONTAINER_SIGNATURES } from '../fops/container.js';
import { FopError } from '../fops/errors.js';
import { FopFlags } from '../fops/flags.js';
import { fopChanged, fopIdentity, fopRealPath, fopStat, readAll, vfsGetModTime } from '../fops/helpers.js';
import { PlatFops } from '../fops/plat.js';
import type { FileOps, FopFd } from '../fops/types.js';
import { Vfs } from '../fops/vfs.js';
import { canonicalizePath, encodePath, type CanonicalPath } from './canonical.js';
import {
  FRAMING,
  makeSnapshot,
  serveContent,
  type BodySource,
  type CoreRequest,
  type CoreResponse,
  type Representation,
  type Snapshot,
  type SnapshotContent,
} from './content.js';
import { headerPairs, isReadonlyArray, resolveMount, type MountOptions, type ResolvedMount } from './options.js';
import { isArchiveRefusal, statusForError, statusPage } from './status.js';

export type { BodySource, CallbackTarget, CoreRequest, CoreResponse } from './content.js';

/** Lookups and hits of the engine's caches since it was made, and what they hold now. */
export interface EngineCacheStats {
  readonly resolutions: { readonly entries: number; readonly hits: number; readonly misses: number };
  readonly smallContents: { readonly entries: number; readonly bytes: number; readonly hits: number; readonly misses: number };
}

/** Options for {@link ServeEngine}. */
export interface EngineOptions {
  readonly mounts: readonly MountOptions[];
  /** Headers added to every response (the vhost's `headers`). */
  readonly headers?: Readonly<Record<string, string>>;
  /** The filesystem mounts resolve into (default: a {@link Vfs} over the disk, entering zip/jar/war archives). */
  readonly vfs?: FileOps;
  /** Most ranges served as multipart/byteranges after merging; more get the whole 200 (default 16). */
  readonly maxRanges?: number;
  /**
   * How long (ms) lookups and small contents are reused before the disk is
   * asked again (default 1000; 0: every request opens its file). A
   * resolution (default file, mimetype verdict, symlink verdict, which
   * precompressed siblings exist) is a lookup and never supplies a length or a
   * validator. A small content is a whole snapshot: bytes and validators read
   * from one handle, served together, so a file changed within the window is
   * served whole in its old version with its old validators, never mixed.
   */
  readonly resolveCacheMs?: number;
  /** Most resolutions kept (default 10,000). */
  readonly resolveCacheSize?: number;
  /**
   * Snapshots of representations up to `maxFileSize` bytes (default 256 KiB:
   * typical JS and CSS bundles) are kept in memory with their validators,
   * `maxBytes` in all (default 32 MiB; 0 turns it off). Past `resolveCacheMs`
   * the file is opened again and the snapshot reused only if the handle's
   * identity is the same.
   */
  readonly smallFileCache?: { readonly maxFileSize?: number; readonly maxBytes?: number };
  /**
   * A URL path served, with status 404, in place of the built-in 404 page
   * (lwsws's `error-document-404`, without its 302 redirect). It carries no
   * validators and `Cache-Control: no-store`: it is not the resource asked for.
   */
  readonly notFoundDocument?: string;
}

/** What a request path under a file mount resolved to: lookups only, cached for `resolveCacheMs`. */
type Resolution =
  | { readonly kind: 'file'; readonly identity: Representation; readonly encoded: readonly Representation[] }
  | { readonly kind: 'page'; readonly status: number; readonly reason?: string; readonly notFound?: boolean }
  | { readonly kind: 'redirect'; readonly location: string };

interface CachedResolution {
  readonly resolution: Resolution;
  readonly expires: number;
}

/** A small content: one snapshot and its bytes, kept while fresh and revalidated by identity after. */
interface CachedContent {
  readonly snapshot: Snapshot;
  readonly data: Buffer;
  expires: number;
}

const SIBLINGS: readonly (readonly [string, string])[] = [
  ['br', '.br'],
  ['gzip', '.gz'],
];
// A file rewritten while it is read is read again, at most this many times, before the request fails.
const READ_ATTEMPTS = 3;
// Headers of the 404 document that describe it, not the missing resource the client asked for.
const NOT_FOUND_DROPPED_HEADERS: ReadonlySet<string> = new Set(['etag', 'last-modified', 'cache-control', 'vary']);

/**
 * The serving core: a request in, a response plan out, no framework. Mounts
 * are resolved and precomputed once. Per request it canonicalises the path
 * once, finds the longest mount and resolves the file (serveFile); then it
 * opens the chosen representation and serves that one snapshot
 * (serveContent): the body and its validators always come from the same
 * open handle.
 */
export class ServeEngine {
  readonly mounts: readonly ResolvedMount[];
  readonly #vfs: FileOps;
  readonly #headers: readonly (readonly [string, string])[];
  readonly #maxRanges: number;
  readonly #realRoots = new Map<ResolvedMount, Promise<string | undefined>>();
  readonly #resolveMs: number;
  readonly #resolved: LruCache<string, CachedResolution> | undefined;
  readonly #small: LruCache<string, CachedContent> | undefined;
  readonly #smallMax: number;
  readonly #notFoundDocument: string | undefined;
  readonly #pages = new Map<ResolvedMount, (status: number) => CoreResponse>();
  // Archive refusals already reported: the backend returns one error object per archive version.
  readonly #reported = new WeakSet<object>();
  readonly #counts = { resolveHits: 0, resolveMisses: 0, smallHits: 0, smallMisses: 0 };

  /** The filesystem mounts resolve into (for operators' statistics). */
  get vfs(): FileOps {
    return this.#vfs;
  }

  /** Cache statistics, for status pages. */
  get cacheStats(): EngineCacheStats {
    const c = this.#counts;
    return {
      resolutions: { entries: this.#resolved?.size ?? 0, hits: c.resolveHits, misses: c.resolveMisses },
      smallContents: { entries: this.#small?.size ?? 0, bytes: this.#small?.weight ?? 0, hits: c.smallHits, misses: c.smallMisses },
    };
  }

  constructor(options: EngineOptions) {
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- checked for JavaScript callers
    if (!options || !isReadonlyArray(options.mounts)) throw new TypeError('createHandler: options.mounts must be an array');
    this.#headers = headerPairs(options.headers, 'headers');
    this.#resolveMs = options.resolveCacheMs ?? 1000;
    // Every body is checked with changed() before its last byte, so a stored entry's CRC need only be
    // checked once per archive version (it costs a quarter of the throughput).
    this.#vfs = options.vfs ?? new Vfs({ base: new PlatFops(), zip: { storedCrc: 'first-read' } });
    this.#maxRanges = options.maxRanges ?? 16;
    const cacheSize = options.resolveCacheSize ?? 10_000;
    if (!(this.#resolveMs >= 0) || !(cacheSize >= 1)) throw new TypeError('resolveCacheMs must be >= 0 and resolveCacheSize >= 1');
    this.#resolved = this.#resolveMs > 0 ? new LruCache({ maxEntries: cacheSize }) : undefined;
    this.#smallMax = options.smallFileCache?.maxFileSize ?? 256 * 1024;
    const smallBytes = options.smallFileCache?.maxBytes ?? 32 * 1024 * 1024;
    this.#small =
      smallBytes > 0 && this.#smallMax > 0
        ? new LruCache<string, CachedContent>({ maxEntries: 100_000, maxWeight: smallBytes, weigh: (c) => c.data.length + 512 })
        : undefined;
    const doc = options.notFoundDocument;
    if (doc !== undefined && (typeof doc !== 'string' || !doc.startsWith('/'))) throw new TypeError('notFoundDocument must be a URL path starting with "/"');
    this.#notFoundDocument = doc;
    const mounts = options.mounts.map((m, i) => resolveMount(m, this.#headers, `mounts[${i}]`, CONTAINER_SIGNATURES));
    const seen = new Set<string>();
    for (const m of mounts) {
      if (seen.has(m.mountpoint)) throw new TypeError(`mounts: mountpoint ${JSON.stringify(m.mountpoint)} is used twice`);
      seen.add(m.mountpoint);
    }
    // Longest mountpoint first: the first segment-boundary match is the longest.
    this.mounts = Object.freeze(mounts.sort((a, b) => b.mountpoint.length - a.mountpoint.length));
  }

  /** The longest mount whose mountpoint is the path or a segment-boundary prefix of it. */
  match(path: string): ResolvedMount | undefined {
    for (const m of this.mounts) {
      const mp = m.mountpoint;
      if (mp === '/' || path === mp || (path.startsWith(mp) && path.charCodeAt(mp.length) === 0x2f)) return m;
    }
    return undefined;
  }

  /** Answers one request. Never rejects for a request's own faults: they become statuses (5xx carry `error`). */
  handle(req: CoreRequest): Promise<CoreResponse> {
    const out = this.respond(req);
    return out instanceof Promise ? out : Promise.resolve(out);
  }

  /**
   * As {@link handle}, but synchronous when it can be: a snapshot in memory
   * whose resolution and content are both fresh is answered without awaiting
   * anything (the common case for small assets), everything else returns a promise.
   */
  respond(req: CoreRequest): CoreResponse | Promise<CoreResponse> {
    const out = this.#route(req);
    if (this.#notFoundDocument === undefined && req.method !== 'HEAD') return out;
    if (out instanceof Promise) return out.then((o) => this.#finish(req, o));
    return this.#finish(req, out);
  }

  /** The 404 document in place of the built-in page, and no body for HEAD (status pages carry one). */
  #finish(req: CoreRequest, out: CoreResponse): CoreResponse | Promise<CoreResponse> {
    if (out.notFound === true && this.#notFoundDocument !== undefined) return this.#notFoundPage(req, out);
    return req.method === 'HEAD' && Buffer.isBuffer(out.body) ? { ...out, body: null } : out;
  }

  #route(req: CoreRequest): CoreResponse | Promise<CoreResponse> {
    const canon = canonicalizePath(req.url);
    if ('status' in canon) return this.#page(canon.status, this.#headers, canon.reason);
    const m = this.match(canon.path);
    if (!m) return { ...this.#page(404, this.#headers), notFound: true };
    const remainder = m.mountpoint === '/' ? canon.path : canon.path.slice(m.mountpoint.length);
    if (m.kind === 'callback') {
      // lws: `/cb` gives '', `/cb/` gives '/', `/cb/a/b?q=1` gives '/a/b'.
      const rest = canon.trailingSlash && !remainder.endsWith('/') ? `${remainder}/` : remainder;
      // The vhost and mount headers go on callback responses too; the adapter sets them before the handler runs.
      return { status: 0, headers: this.#configured({}, m), body: null, callback: { name: m.callback, remainder: rest, mountpoint: m.mountpoint, pmo: m.pmo } };
    }
    if (m.kind === 'redirect') return this.#redirect(m.redirect, m.headers);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      const page = this.#page(405, m.headers);
      return { ...page, headers: { ...page.headers, allow: 'GET, HEAD' } };
    }
    const key = `${m.mountpoint}\0${canon.path}\0${canon.trailingSlash ? '/' : ''}`;
    // The hot path: a fresh resolution and a fresh snapshot in memory. peek, not get: both are
    // re-set (and so made recent) when their window passes, which is often enough for an LRU.
    const now = Date.now();
    const hit = this.#resolved?.peek(key);
    if (hit !== undefined && hit.expires > now && hit.resolution.kind === 'file') {
      const kept = this.#small?.peek(negotiate(req, hit.resolution).key);
      if (kept !== undefined && kept.expires > now) {
        this.#counts.resolveHits++;
        this.#counts.smallHits++;
        return withSource(serveContent(req, kept, this.#pageFor(m), this.#maxRanges), 'cached');
      }
    }
    return this.#serveFile(req, canon, m, remainder, key);
  }

  /** Finds the file (resolution), opens the representation the client takes, serves that snapshot. */
  async #serveFile(req: CoreRequest, canon: CanonicalPath, m: ResolvedMount, remainder: string, key: string): Promise<CoreResponse> {
    for (let fresh = this.#resolved === undefined; ; fresh = true) {
      let resolution: Resolution;
      let cached = false;
      try {
        const hit = fresh ? undefined : this.#resolved?.peek(key);
        cached = hit !== undefined && hit.expires > Date.now();
        if (this.#resolved !== undefined) this.#counts[cached ? 'resolveHits' : 'resolveMisses']++;
        resolution = cached ? hit!.resolution : await this.#resolveAndCache(key, canon, m, remainder);
      } catch (err) {
        return this.#errorPage(err, m);
      }
      switch (resolution.kind) {
        case 'redirect':
          return this.#redirect(`${resolution.location}${canon.query}`, m.headers);
        case 'page':
          return { ...this.#page(resolution.status, m.headers, resolution.reason), ...(resolution.notFound ? { notFound: true } : {}) };
        case 'file': {
          const rep = negotiate(req, resolution);
          let content: SnapshotContent;
          const before = this.#small?.peek(rep.key);
          try {
            content = await this.#content(rep);
          } catch (err) {
            // The file went away since it was resolved: forget that, and look again once.
            this.#resolved?.delete(key);
            if (cached && statusForError(err) === 404) continue;
            return this.#errorPage(err, m);
          }
          // Served from memory: the snapshot kept before this request (the same object) came back.
          const fromMemory = before !== undefined && content === before;
          if (this.#small !== undefined) this.#counts[fromMemory ? 'smallHits' : 'smallMisses']++;
          // An entry asked for as gzip that turned out to have no gzip form was inflated after all.
          const source = fromMemory ? 'cached' : rep.source === 'passthrough' && content.snapshot.encoding === undefined ? 'inflated' : rep.source;
          try {
            return withSource(serveContent(req, content, this.#pageFor(m), this.#maxRanges), source);
          } catch (err) {
            // A bug, not the request's fault: still never a leaked handle.
            if ('fd' in content) await content.fd.close().catch(() => undefined);
            return this.#errorPage(err, m);
          }
        }
      }
    }
  }

  /**
   * The status page for `err`; a 5xx carries `error` for the adapter to report, except an archive
   * refusal already reported: a broken archive is logged once per version, not once per request.
   */
  #errorPage(err: unknown, m: ResolvedMount): CoreResponse {
    const status = statusForError(err);
    let report = status >= 500;
    if (report && isArchiveRefusal(err)) {
      report = !this.#reported.has(err as object);
      this.#reported.add(err as object);
    }
    return { ...this.#page(status, m.headers), ...(status === 404 ? { notFound: true } : {}), ...(report ? { error: err } : {}) };
  }

  /** Resolves now and caches the answer; 5xx causes are never cached. */
  async #resolveAndCache(key: string, canon: CanonicalPath, m: ResolvedMount, remainder: string): Promise<Resolution> {
    const now = Date.now();
    let resolution: Resolution;
    try {
      resolution = await this.#resolve(canon, m, remainder);
    } catch (err) {
      const status = statusForError(err);
      if (status >= 500 || this.#resolved === undefined) throw err;
      resolution = { kind: 'page', status, ...(status === 404 ? { notFound: true } : {}) };
    }
    this.#resolved?.set(key, { resolution, expires: now + this.#resolveMs });
    return resolution;
  }

  /** Resolves a path under a file mount: redirects, dotfiles, the default file, the whitelist, symlinks, siblings. */
  async #resolve(canon: CanonicalPath, m: ResolvedMount, remainder: string): Promise<Resolution> {
    // A mountpoint without its slash: redirect so relative links resolve inside the mount.
    if (m.mountpoint !== '/' && remainder === '' && !canon.trailingSlash) return { kind: 'redirect', location: encodePath(`${m.mountpoint}/`) };
    // Dotfiles (.git, .env, .htpasswd) are never served; /.well-known/ is (RFC 8615).
    for (let i = 0; i < canon.segments.length; i++) {
      const s = canon.segments[i]!;
      if (s.startsWith('.') && !(i === 0 && s === '.well-known')) return { kind: 'page', status: 404, notFound: true };
    }
    let path = remainder === '' || remainder === '/' ? m.root : `${m.root}${remainder}`;
    let st = m.archive && path === m.root ? { type: 'directory' as const, size: 0 } : await fopStat(this.#vfs, path);
    if (st.type === 'directory') {
      if (!canon.trailingSlash) return { kind: 'redirect', location: encodePath(`${canon.path}/`) };
      path = `${path}/${m.defaultFile}`;
      st = await fopStat(this.#vfs, path);
    } else if (canon.trailingSlash) {
      return { kind: 'page', status: 404, notFound: true }; // a file is not a directory
    }
    if (st.type !== 'file') return { kind: 'page', status: 404, notFound: true };
    const mime = m.mime(path);
    if (!mime.allowed) return { kind: 'page', status: 403, reason: mime.reason };
    if (!m.followSymlinks && !(await this.#contained(m, path))) return { kind: 'page', status: 404, notFound: true };
    const encoded: { encoding: string; path: string; flags: number }[] = [];
    if (st.gzipAvailable === true) encoded.push({ encoding: 'gzip', path, flags: FopFlags.COMPR_ACCEPTABLE_GZIP });
    else if (m.precompressed) {
      for (const [encoding, ext] of SIBLINGS) {
        const sib = await fopStat(this.#vfs, `${path}${ext}`).catch(() => undefined);
        if (sib?.type === 'file') encoded.push({ encoding, path: `${path}${ext}`, flags: 0 });
      }
    }
    const vary = encoded.length > 0;
    const inflates = st.gzipAvailable === true;
    const rep = (p: string, flags: number, encoding: string | undefined): Representation =>
      Object.freeze({
        source: encoding === undefined ? (inflates ? 'inflated' : 'read') : flags !== 0 ? 'passthrough' : 'precompressed',
        path: p,
        flags,
        encoding,
        contentType: mime.contentType,
        vary,
        cacheControl: m.cacheControl,
        configured: m.headers,
        key: `${m.mountpoint}\0${p}\0${flags}\0${encoding ?? ''}`,
      });
    return { kind: 'file', identity: rep(path, 0, undefined), encoded: encoded.map((e) => rep(e.path, e.flags, e.encoding)) };
  }

  /**
   * One snapshot of `rep` with its bytes. A small one comes from memory while
   * fresh; past that its file is opened and the kept bytes reused only if the
   * handle's identity is the same. Otherwise the file is opened and, when
   * small, read whole; a file that changed while being read is read again.
   * A large one is handed over as an open handle for the body to stream.
   */
  async #content(rep: Representation): Promise<SnapshotContent> {
    const small = this.#small;
    const kept = small?.peek(rep.key);
    if (kept !== undefined && kept.expires > Date.now()) return kept;
    for (let attempt = 1; ; attempt++) {
      const { snapshot, fd } = await this.#open(rep);
      const fresh = Date.now() + this.#resolveMs;
      if (kept !== undefined && snapshot.identity !== undefined && snapshot.identity === kept.snapshot.identity) {
        await fd.close();
        kept.expires = fresh;
        small?.set(rep.key, kept); // recent again
        return kept;
      }
      if (small === undefined || snapshot.length > this.#smallMax) return { snapshot, fd };
      let data: Buffer;
      let changed: boolean;
      try {
        data = await readAll(fd, this.#smallMax);
        changed = data.length !== snapshot.length || (await fopChanged(fd));
        if (!changed) {
          // The kernel stamps a write before it copies the bytes, so a read racing one can see it half
          // applied with the timestamps already moved at open. Reading twice catches that: this costs
          // a second read only when a small file is filled, never per request.
          fd.seekCur(-fd.pos);
          const again = await readAll(fd, this.#smallMax);
          changed = !again.equals(data) || (await fopChanged(fd));
        }
      } finally {
        await fd.close();
      }
      if (changed) {
        if (attempt < READ_ATTEMPTS) continue;
        throw new FopError('IO', 'read', rep.path, 'the file kept changing while it was read');
      }
      const content: CachedContent = { snapshot, data, expires: fresh };
      // Without an identity a later version could not be told from this one: never kept.
      if (snapshot.identity !== undefined) small.set(rep.key, content);
      else small.delete(rep.key);
      return content;
    }
  }

  /** Opens a representation and takes its snapshot from the handle: length, identity, validators. */
  async #open(rep: Representation): Promise<{ snapshot: Snapshot; fd: FopFd }> {
    const fd = await this.#vfs.open(rep.path, rep.flags);
    try {
      // An entry asked for as gzip that has no gzip form (the archive changed) is identity after all.
      const encoding = (rep.flags & FopFlags.COMPR_ACCEPTABLE_GZIP) !== 0 && (fd.flags & FopFlags.COMPR_IS_GZIP) === 0 ? undefined : rep.encoding;
      const identity = fopIdentity(fd);
      const etag = identity === undefined ? undefined : makeEtag({ size: fd.length, version: identity, ...(encoding !== undefined ? { encoding } : {}) });
      const snapshot = makeSnapshot(rep, {
        length: fd.length,
        etag,
        lastModified: vfsGetModTime(fd),
        encoding,
        identity: identity === undefined ? undefined : `${encoding ?? ''}\0${identity}`,
      });
      return { snapshot, fd };
    } catch (err) {
      await fd.close();
      throw err;
    }
  }

  /** The configured 404 document, with status 404; the built-in page when it cannot be served. */
  async #notFoundPage(req: CoreRequest, fallback: CoreResponse): Promise<CoreResponse> {
    const doc = await this.#route({ method: 'GET', url: this.#notFoundDocument!, header: () => undefined });
    if (doc.status !== 200 || doc.body === null) {
      if (doc.body !== null && !Buffer.isBuffer(doc.body)) doc.body.destroy();
      return fallback;
    }
    // Not the resource the client asked for: no validators or caching for it.
    const headers: Record<string, string> = Object.fromEntries(Object.entries(doc.headers).filter(([name]) => !NOT_FOUND_DROPPED_HEADERS.has(name)));
    headers['cache-control'] = 'no-store';
    const head = req.method === 'HEAD';
    if (head && !Buffer.isBuffer(doc.body)) doc.body.destroy();
    return { status: 404, headers, body: head ? null : doc.body, notFound: true };
  }

  /** Vhost and mount headers go on every response; they may replace anything but the framing headers. */
  #configured(headers: Record<string, string>, m: ResolvedMount): Record<string, string> {
    for (const [name, value] of m.headers) if (!FRAMING.has(name)) headers[name] = value;
    return headers;
  }

  /** The status-page builder serveContent is given for a mount, made once per mount. */
  #pageFor(m: ResolvedMount): (status: number) => CoreResponse {
    let fn = this.#pages.get(m);
    if (fn === undefined) {
      fn = (status) => this.#page(status, m.headers);
      this.#pages.set(m, fn);
    }
    return fn;
  }

  #page(status: number, configured: readonly (readonly [string, string])[], reason?: string): CoreResponse {
    const page = statusPage(status, reason);
    const headers = page.headers;
    for (const [name, value] of configured) if (!FRAMING.has(name)) headers[name] = value;
    headers['accept-ranges'] = 'bytes';
    return { status, headers, body: page.body };
  }

  /** A 301 to `location` carrying `mount`'s configured headers (for adapters that redirect on the core's behalf). */
  redirect(location: string, mount: ResolvedMount): CoreResponse {
    return this.#redirect(location, mount.headers);
  }

  #redirect(location: string, configured: readonly (readonly [string, string])[]): CoreResponse {
    const page = this.#page(301, configured);
    return { ...page, headers: { ...page.headers, location } };
  }

  /**
   * Whether `path` resolves inside the mount's origin, symlinks followed, for
   * every backend with the `realPath` capability (the disk, a Vfs over it, an
   * archive on disk). Wholly virtual backends have nothing to contain.
   */
  async #contained(m: ResolvedMount, path: string): Promise<boolean> {
    let root = this.#realRoots.get(m);
    if (!root) {
      root = fopRealPath(this.#vfs, m.root);
      this.#realRoots.set(m, root);
      // A root that does not exist yet is looked up again next time.
      root.catch(() => this.#realRoots.delete(m));
    }
    let realRoot: string | undefined;
    let real: string | undefined;
    try {
      realRoot = await root;
      real = await fopRealPath(this.#vfs, path);
    } catch {
      return false;
    }
    if (realRoot === undefined || real === undefined) return realRoot === undefined && real === undefined;
    return real === realRoot || real.startsWith(realRoot === '/' ? '/' : `${realRoot}/`);
  }
}

/** The representation the client takes: an encoded one it prefers (RFC 9110 §12.5.3), else identity. */
function negotiate(req: CoreRequest, file: Extract<Resolution, { kind: 'file' }>): Representation {
  if (file.encoded.length === 0) return file.identity;
  const chosen = negotiateEncoding(
    req.header('accept-encoding'),
    file.encoded.map((r) => r.encoding!),
  );
  return file.encoded.find((r) => r.encoding === chosen) ?? file.identity;
}

/** `out` marked with how its body was produced, when it has one from the file. */
function withSource(out: CoreResponse, source: BodySource): CoreResponse {
  return out.body === null || (out.status !== 200 && out.status !== 206) ? out : { ...out, source };
}
