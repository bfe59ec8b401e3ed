import { realpath } from 'node:fs/promises';
import { Readable } from 'node:stream';
import {
  evaluatePreconditions,
  httpDate,
  ifRangeAllows,
  makeEtag,
  multipartByteranges,
  negotiateEncoding,
  parseRange,
} from '../cache/http.js';
import { FopError } from '../fops/errors.js';
import { FopFlags } from '../fops/flags.js';
import { createFopReadStream, fopStat, readAll } from '../fops/helpers.js';
import { PlatFops } from '../fops/plat.js';
import { signatureSplits } from '../fops/path.js';
import { LruCache } from '../cache/lru.js';
import type { FileOps, FopFd, FopStat } from '../fops/types.js';
import { Vfs } from '../fops/vfs.js';
import { canonicalizePath, encodePath, type CanonicalPath } from './canonical.js';
import { headerPairs, resolveMount, type MountOptions, type ResolvedMount } from './options.js';
import { statusForError, statusPage } from './status.js';

/** The request as the core sees it: no framework types. Header names are lower-case. */
export interface CoreRequest {
  readonly method: string;
  /** The raw request target (`req.url`): path and query, not decoded. */
  readonly url: string;
  header(name: string): string | undefined;
}

/** A `callback://` mount was matched: the adapter hands the request to the handler registered under `name`. */
export interface CallbackTarget {
  readonly name: string;
  /** The URI after the mountpoint, decoded and canonical: `''`, `'/'` or `'/a/b'` (no query). */
  readonly remainder: string;
  readonly mountpoint: string;
  readonly pmo: Readonly<Record<string, string>>;
}

/** What to send. `body` is null for HEAD and bodiless statuses; a stream is consumed once. */
export interface CoreResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer | Readable | null;
  /** Set when a callback mount matched; `headers` then holds only the configured headers to set first. */
  readonly callback?: CallbackTarget;
  /** The response is a 404 for a path no mount (or no file) answers: Connect adapters may call `next()` instead. */
  readonly notFound?: boolean;
  /** The error behind a 5xx, for the adapter to log (never sent). */
  readonly error?: unknown;
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
   * How long (ms) what a path resolved to (its stat, default file, mimetype, symlink verdict and
   * precompressed siblings) is reused, as nginx's open_file_cache does (default 1000; 0 resolves every
   * request afresh). The file itself is opened per request, so its length is always the real one; a
   * file replaced within the window may briefly carry its old validators.
   */
  readonly resolveCacheMs?: number;
  /** Most resolutions kept (default 10,000). */
  readonly resolveCacheSize?: number;
  /**
   * Representations up to `maxFileSize` bytes (default 256 KiB: typical JS and CSS bundles) are read once and served from memory,
   * `maxBytes` in all (default 32 MiB; 0 turns it off). They are keyed by path, encoding, size, mtime
   * and CRC from the resolution, so a changed file is read again once its resolution is refreshed.
   */
  readonly smallFileCache?: { readonly maxFileSize?: number; readonly maxBytes?: number };
}

interface Sibling {
  readonly enc: string;
  readonly path: string;
  readonly st: FopStat;
}

/** What a request path under a file mount resolved to; cached for `resolveCacheMs`. */
type Resolution =
  | { readonly kind: 'file'; readonly path: string; readonly st: FopStat; readonly contentType: string | undefined; readonly siblings: readonly Sibling[] }
  | { readonly kind: 'page'; readonly status: number; readonly reason?: string; readonly notFound?: boolean }
  | { readonly kind: 'redirect'; readonly location: string };

interface CachedResolution {
  readonly resolution: Resolution;
  readonly expires: number;
}

const SIGNATURES = ['.zip/', '.jar/', '.war/'];
// Headers the server computes that a configured header must not replace: they frame the body.
const FRAMING = new Set(['content-length', 'content-range', 'content-encoding', 'transfer-encoding']);
const SIBLINGS: readonly (readonly [string, string])[] = [
  ['br', '.br'],
  ['gzip', '.gz'],
];

/**
 * The serving core: a request in, a response plan out, no framework. Mounts
 * are resolved and precomputed once; per request it canonicalises the path
 * once, finds the longest mount, resolves the file through the fops layer,
 * and applies mimetype whitelisting, cache policy, preconditions, ranges and
 * content negotiation.
 */
export class ServeEngine {
  readonly mounts: readonly ResolvedMount[];
  readonly #vfs: FileOps;
  readonly #onDisk: boolean;
  readonly #headers: readonly (readonly [string, string])[];
  readonly #maxRanges: number;
  readonly #realRoots = new Map<ResolvedMount, Promise<string | undefined>>();
  readonly #resolveMs: number;
  readonly #resolved: LruCache<string, CachedResolution> | undefined;
  readonly #small: LruCache<string, Buffer> | undefined;
  readonly #smallMax: number;

  constructor(options: EngineOptions) {
    if (!options || !Array.isArray(options.mounts)) throw new TypeError('createHandler: options.mounts must be an array');
    this.#headers = headerPairs(options.headers, 'headers');
    this.#resolveMs = options.resolveCacheMs ?? 1000;
    // Archives are re-stated on every open (no window there): an archive rewritten in place must never be
    // read through its old index.
    this.#vfs = options.vfs ?? new Vfs({ base: new PlatFops() });
    // Symlink containment is checked with realpath, so only on the built-in disk filesystem.
    this.#onDisk = options.vfs === undefined;
    this.#maxRanges = options.maxRanges ?? 16;
    const cacheSize = options.resolveCacheSize ?? 10_000;
    if (!(this.#resolveMs >= 0) || !(cacheSize >= 1)) throw new TypeError('resolveCacheMs must be >= 0 and resolveCacheSize >= 1');
    this.#resolved = this.#resolveMs > 0 ? new LruCache({ maxEntries: cacheSize }) : undefined;
    this.#smallMax = options.smallFileCache?.maxFileSize ?? 256 * 1024;
    const smallBytes = options.smallFileCache?.maxBytes ?? 32 * 1024 * 1024;
    // Content is only as fresh as the resolution it is keyed by; without that cache it would never be refreshed.
    this.#small = this.#resolved && smallBytes > 0 && this.#smallMax > 0 ? new LruCache<string, Buffer>({ maxEntries: 100_000, maxWeight: smallBytes, weigh: (b) => b.length }) : undefined;
    const mounts = options.mounts.map((m, i) => resolveMount(m, this.#headers, `mounts[${i}]`, SIGNATURES));
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

  async handle(req: CoreRequest): Promise<CoreResponse> {
    const canon = canonicalizePath(req.url);
    if ('status' in canon) return this.#page(canon.status, this.#headers, canon.reason);
    const m = this.match(canon.path);
    if (!m) return { ...this.#page(404, this.#headers), notFound: true };
    const remainder = m.mountpoint === '/' ? canon.path : canon.path.slice(m.mountpoint.length);
    if (m.kind === 'callback') {
      // lws: `/cb` gives '', `/cb/` gives '/', `/cb/a/b?q=1` gives '/a/b'.
      const rest = canon.trailingSlash && !remainder.endsWith('/') ? `${remainder}/` : remainder;
      // The vhost and mount headers go on callback responses too; the adapter sets them before the handler runs.
      return { status: 0, headers: this.#withConfigured({}, m), body: null, callback: { name: m.callback, remainder: rest, mountpoint: m.mountpoint, pmo: m.pmo } };
    }
    if (m.kind === 'redirect') return this.#redirect(m.redirect, m.headers);
    const method = req.method;
    if (method !== 'GET' && method !== 'HEAD') {
      const page = this.#page(405, m.headers);
      return { ...page, headers: { ...page.headers, allow: 'GET, HEAD' } };
    }
    let resolution: Resolution;
    try {
      resolution = await this.#cachedResolve(canon, m, remainder);
    } catch (err) {
      return this.#errorPage(err, m);
    }
    switch (resolution.kind) {
      case 'redirect':
        return this.#redirect(`${resolution.location}${canon.query}`, m.headers);
      case 'page':
        return { ...this.#page(resolution.status, m.headers, resolution.reason), ...(resolution.notFound ? { notFound: true } : {}) };
      case 'file':
        try {
          return await this.#send(req, m, resolution);
        } catch (err) {
          // The file changed since it was resolved: forget the resolution.
          this.#resolved?.delete(this.#key(canon, m));
          return this.#errorPage(err, m);
        }
    }
  }

  #errorPage(err: unknown, m: ResolvedMount): CoreResponse {
    const status = statusForError(err);
    return { ...this.#page(status, m.headers), ...(status === 404 ? { notFound: true } : {}), ...(status >= 500 ? { error: err } : {}) };
  }

  #key(canon: CanonicalPath, m: ResolvedMount): string {
    return `${m.mountpoint}\0${canon.path}\0${canon.trailingSlash ? '/' : ''}`;
  }

  /** A resolution from the cache while fresh; otherwise resolved now. 5xx causes are never cached. */
  async #cachedResolve(canon: CanonicalPath, m: ResolvedMount, remainder: string): Promise<Resolution> {
    const cache = this.#resolved;
    if (!cache) return this.#resolve(canon, m, remainder);
    const key = this.#key(canon, m);
    const now = Date.now();
    const hit = cache.get(key);
    if (hit && hit.expires > now) return hit.resolution;
    let resolution: Resolution;
    try {
      resolution = await this.#resolve(canon, m, remainder);
    } catch (err) {
      const status = statusForError(err);
      if (status >= 500) throw err;
      resolution = { kind: 'page', status, ...(status === 404 ? { notFound: true } : {}) };
    }
    cache.set(key, { resolution, expires: now + this.#resolveMs });
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
    let st: FopStat = m.archive && path === m.root ? { type: 'directory', size: 0 } : await fopStat(this.#vfs, path);
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
    if (this.#onDisk && !m.followSymlinks && !(await this.#contained(m, path))) return { kind: 'page', status: 404, notFound: true };
    const siblings: Sibling[] = [];
    if (m.precompressed && !st.gzipAvailable) {
      for (const [enc, ext] of SIBLINGS) {
        const sib = await fopStat(this.#vfs, `${path}${ext}`).catch(() => undefined);
        if (sib?.type === 'file') siblings.push({ enc, path: `${path}${ext}`, st: sib });
      }
    }
    return { kind: 'file', path, st, contentType: mime.contentType, siblings };
  }

  async #send(req: CoreRequest, m: ResolvedMount, file: Extract<Resolution, { kind: 'file' }>): Promise<CoreResponse> {
    const { st, contentType } = file;
    // Choose the representation: a zip entry's gzip form, a precompressed sibling, or identity.
    const accept = req.header('accept-encoding');
    let repPath = file.path;
    let rep = st;
    let encoding: string | undefined;
    let flags = 0;
    let vary = false;
    if (st.gzipAvailable) {
      vary = true;
      if (negotiateEncoding(accept, ['gzip']) === 'gzip') {
        encoding = 'gzip';
        flags = FopFlags.COMPR_ACCEPTABLE_GZIP;
      }
    } else if (file.siblings.length > 0) {
      vary = true;
      const chosen = negotiateEncoding(accept, file.siblings.map((a) => a.enc));
      const pick = file.siblings.find((a) => a.enc === chosen);
      if (pick) {
        encoding = pick.enc;
        repPath = pick.path;
        rep = pick.st;
      }
    }
    // No ETag without something that changes with the content (makeEtag refuses size alone).
    const validators: { etag?: string; lastModified?: number } = {};
    if (rep.modTime !== undefined || st.crc32 !== undefined) {
      validators.etag = makeEtag({ size: rep.size, ...(rep.modTime !== undefined ? { mtime: rep.modTime } : {}), ...(st.crc32 !== undefined ? { crc32: st.crc32 } : {}), ...(encoding ? { encoding } : {}) });
    }
    if (st.modTime !== undefined) validators.lastModified = st.modTime;
    const headers: Record<string, string> = {};
    if (contentType !== undefined) headers['content-type'] = contentType;
    if (encoding) headers['content-encoding'] = encoding;
    if (vary) headers.vary = 'Accept-Encoding';
    if (validators.etag !== undefined) headers.etag = validators.etag;
    if (validators.lastModified !== undefined) headers['last-modified'] = httpDate(validators.lastModified);
    headers['cache-control'] = m.cacheControl;
    headers['accept-ranges'] = 'bytes';

    const verdict = evaluatePreconditions(
      {
        method: req.method,
        ...opt('ifMatch', req.header('if-match')),
        ...opt('ifNoneMatch', req.header('if-none-match')),
        ...opt('ifModifiedSince', req.header('if-modified-since')),
        ...opt('ifUnmodifiedSince', req.header('if-unmodified-since')),
      },
      validators,
    );
    if (verdict === 'not-modified') {
      // RFC 9110 §15.4.5: the validators and caching headers, no content headers, no body.
      delete headers['content-type'];
      delete headers['content-encoding'];
      return { status: 304, headers: this.#withConfigured(headers, m), body: null };
    }
    if (verdict === 'precondition-failed') return this.#page(412, m.headers);

    const content = await this.#content(repPath, flags, encoding, rep, st);
    if (content === 'not-gzip') {
      // The backend gave identity bytes after all (the entry changed): answer as identity, with its own validators.
      return this.#send(req, m, { ...file, st: { ...st, gzipAvailable: false } });
    }
    const length = content.length;
    const rangeHeader = ifRangeAllows(req.header('if-range'), validators) ? req.header('range') : undefined;
    const range = parseRange(rangeHeader, length, { maxRanges: this.#maxRanges });
    const head = req.method === 'HEAD';
    let status = 200;
    let body: () => Buffer | Readable;
    if (range.type === 'unsatisfiable') {
      await content.release();
      const page = this.#page(416, m.headers);
      return { ...page, headers: { ...page.headers, 'content-range': `bytes */${length}`, 'accept-ranges': 'bytes' } };
    }
    if (range.type === 'ranges' && range.ranges.length === 1) {
      const r = range.ranges[0]!;
      status = 206;
      headers['content-range'] = `bytes ${r.start}-${r.end}/${length}`;
      headers['content-length'] = String(r.end - r.start + 1);
      body = () => content.slice(r.start, r.end);
    } else if (range.type === 'ranges') {
      const plan = multipartByteranges(range.ranges, length, contentType);
      status = 206;
      headers['content-type'] = plan.contentType;
      headers['content-length'] = String(plan.length);
      body = () => content.multipart(plan.parts, plan.tail);
    } else {
      headers['content-length'] = String(length);
      body = () => content.slice(0, length - 1);
    }
    if (head || length === 0) {
      await content.release();
      return { status, headers: this.#withConfigured(headers, m), body: head ? null : Buffer.alloc(0) };
    }
    return { status, headers: this.#withConfigured(headers, m), body: body() };
  }

  /**
   * The bytes of a representation: from the small-content cache, or an open handle. Small
   * representations are read whole once and kept, keyed by everything their validators are made of.
   */
  async #content(path: string, flags: number, encoding: string | undefined, rep: FopStat, st: FopStat): Promise<Content | 'not-gzip'> {
    const key = this.#small ? `${path}\0${encoding ?? ''}\0${rep.size}\0${rep.modTime ?? ''}\0${st.crc32 ?? ''}` : '';
    const cached = this.#small?.get(key);
    if (cached) return bufferContent(cached);
    const fd = await this.#vfs.open(path, flags);
    if (flags !== 0 && (fd.flags & FopFlags.COMPR_IS_GZIP) === 0) {
      await fd.close();
      return 'not-gzip';
    }
    // Cache only bytes that are the ones the key describes: a disk file changed since its stat is served
    // from the handle, uncached (zip entries are keyed by CRC and their archive is re-checked on open).
    const current = st.crc32 !== undefined || (fd.length === rep.size && fd.modTime === rep.modTime);
    if (this.#small && fd.length <= this.#smallMax && current) {
      try {
        const data = await readAll(fd, this.#smallMax);
        this.#small.set(key, data);
        return bufferContent(data);
      } finally {
        await fd.close();
      }
    }
    return fdContent(fd);
  }

  /** Vhost and mount headers go on every response; they may replace anything but the framing headers. */
  #withConfigured(headers: Record<string, string>, m: ResolvedMount): Record<string, string> {
    for (const [name, value] of m.headers) if (!FRAMING.has(name)) headers[name] = value;
    return headers;
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

  /** Whether `path` (on disk, or an entry of an archive on disk) resolves inside the mount's origin. */
  async #contained(m: ResolvedMount, path: string): Promise<boolean> {
    let root = this.#realRoots.get(m);
    if (!root) {
      root = realpath(m.root).catch(() => undefined);
      this.#realRoots.set(m, root);
    }
    const realRoot = await root;
    if (realRoot === undefined) return false;
    const real = await diskRealpath(path);
    return real !== undefined && (real === realRoot || real.startsWith(realRoot === '/' ? '/' : `${realRoot}/`));
  }
}

/** The real path of a file, or of the archive a member path lies in. */
async function diskRealpath(path: string): Promise<string | undefined> {
  try {
    return await realpath(path);
  } catch (err) {
    if (!FopError.is(err) && (err as NodeJS.ErrnoException).code !== 'ENOTDIR') return undefined;
  }
  for (const split of signatureSplits(path, SIGNATURES)) {
    try {
      return await realpath(path.slice(0, split));
    } catch {
      // a directory named x.zip further in, or nothing: keep looking
    }
  }
  return undefined;
}

/** A representation's bytes, as the response body needs them. */
interface Content {
  readonly length: number;
  /** The inclusive range as a body; for a handle, the stream owns and closes it. */
  slice(start: number, end: number): Buffer | Readable;
  multipart(parts: readonly { readonly head: Buffer; readonly start: number; readonly end: number }[], tail: Buffer): Buffer | Readable;
  /** Releases what the content holds when no body is sent (HEAD, 416). */
  release(): Promise<void>;
}

// Larger reads than fs streams' 64 KiB: one read for a 100 KiB file, a quarter of the reads for big ones.
const READ_CHUNK = 256 * 1024;

function fdContent(fd: FopFd): Content {
  return {
    length: fd.length,
    slice: (start, end) => createFopReadStream(fd, { start, end, highWaterMark: READ_CHUNK }),
    multipart: (parts, tail) => Readable.from(multipartBody(fd, parts, tail)),
    release: () => fd.close(),
  };
}

function bufferContent(data: Buffer): Content {
  return {
    length: data.length,
    slice: (start, end) => data.subarray(start, end + 1),
    multipart: (parts, tail) => Buffer.concat([...parts.flatMap((p) => [p.head, data.subarray(p.start, p.end + 1)]), tail]),
    release: () => Promise.resolve(),
  };
}

async function* multipartBody(fd: FopFd, parts: readonly { readonly head: Buffer; readonly start: number; readonly end: number }[], tail: Buffer): AsyncGenerator<Buffer> {
  try {
    for (const part of parts) {
      yield part.head;
      // The CRLF after each part's data is in the next head (and the tail).
      for await (const chunk of createFopReadStream(fd, { start: part.start, end: part.end, autoClose: false })) yield chunk as Buffer;
    }
    yield tail;
  } finally {
    await fd.close();
  }
}

function opt<K extends string>(key: K, value: string | undefined): { [P in K]?: string } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: string };
}

