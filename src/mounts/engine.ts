import { lookup as mimeLookup } from 'mime-types';
import type { BasicAuth } from '../auth/basic.js';
import { makeEtag, negotiateEncoding, privateCacheControl } from '../cache/http.js';
import { LruCache } from '../cache/lru.js';
import { CONTAINER_SIGNATURES } from '../fops/container.js';
import { FopError } from '../fops/errors.js';
import { FopFlags } from '../fops/flags.js';
import { fopChanged, fopIdentity, fopReadDir, fopRealPath, fopStat, readAll, vfsGetModTime } from '../fops/helpers.js';
import { validFopPath } from '../fops/path.js';
import { PlatFops } from '../fops/plat.js';
import type { HttpRangeFopsOptions } from '../fops/remote/http-range.js';
import { RemoteRouterFops } from '../fops/remote/router.js';
import type { FileOps, FopFd, FopStat } from '../fops/types.js';
import { Vfs } from '../fops/vfs.js';
import { canonicalizePath, encodePath, type CanonicalPath } from './canonical.js';
import { CODINGS, Compressor, isCompressibleType, readUnchanged, type Coding, type CompressionOptions } from './compress.js';
import {
  FRAMING,
  makeSnapshot,
  serveContent,
  type CoreRequest,
  type CoreResponse,
  type Representation,
  type Snapshot,
  type SnapshotContent,
} from './content.js';
import { suffixOf, wellKnownType } from './mime.js';
import { compareEntries, listingResponse, type ListingEntry } from './listing.js';
import { headerPairs, isReadonlyArray, resolveMount, type MountOptions, type ResolvedMount } from './options.js';
import { isArchiveRefusal, statusForError, statusPage } from './status.js';
import { upstreamPath } from '../proxy/origin.js';

export type { BodySource, CallbackTarget, CgiTarget, CoreRequest, CoreResponse, ProxyTarget } from './content.js';

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
  /**
   * Options of the backend `range+http(s)://` and `s3://` mounts read through (block size, cache bytes, timeouts,
   * retries, revalidation interval: see {@link HttpRangeFopsOptions} for the defaults); one
   * connection pool per origin.
   */
  readonly remote?: Omit<HttpRangeFopsOptions, 'baseUrl' | 'sign' | 'query' | 'headAllowed'>;
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
  /** Compression on the fly for mounts with `compress` (see `CompressionOptions`: size window, cache bytes). */
  readonly compression?: CompressionOptions;
}

/** What a request path under a file mount resolved to: lookups only, cached for `resolveCacheMs`. */
type Resolution =
  | {
      readonly kind: 'file';
      readonly identity: Representation;
      /** The codings offered, in server preference order: ready-made ones (siblings, passthrough), and those made on the fly. */
      readonly encoded: readonly Representation[];
      /** The entries of `encoded` made on the fly from the identity (mount `compress`). */
      readonly fly: readonly Representation[];
    }
  | {
      readonly kind: 'page';
      readonly status: number;
      readonly reason?: string;
      readonly notFound?: boolean;
      /** A 403 of the whitelist: the fops path refused, for the operator's log. */
      readonly refusedType?: string;
    }
  | { readonly kind: 'redirect'; readonly location: string }
  | { readonly kind: 'listing'; readonly dir: string };

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
// Preflight answers may be reused this long (seconds); Chromium caps it at 7200 anyway.
const PREFLIGHT_MAX_AGE = '7200';
// A list of header names, as Access-Control-Request-Headers carries it: echoed back only if it is one.
const HEADER_LIST = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:[ \t]*,[ \t]*[!#$%&'*+.^_`|~0-9A-Za-z-]+)*$/;
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
  /** The backend of the remote archive mounts (range+http(s), s3), when there are any. */
  readonly #remote: RemoteRouterFops | undefined;
  readonly #headers: readonly (readonly [string, string])[];
  readonly #maxRanges: number;
  readonly #realRoots = new Map<ResolvedMount, Promise<string | undefined>>();
  readonly #resolveMs: number;
  readonly #resolved: LruCache<string, CachedResolution> | undefined;
  readonly #small: LruCache<string, CachedContent> | undefined;
  readonly #smallMax: number;
  readonly #notFoundDocument: string | undefined;
  readonly #compressor: Compressor;
  readonly #pages = new Map<ResolvedMount, (status: number) => CoreResponse>();
  // Archive refusals already reported: the backend returns one error object per archive version.
  readonly #reported = new WeakSet<object>();
  // Whitelist refusals already logged, as mountpoint NUL suffix: once each is enough to tell the operator.
  readonly #refusedTypes = new Set<string>();
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

  /** Closes the connections of the range+http(s) mounts' origins (nothing to do without such mounts). */
  async close(): Promise<void> {
    await this.#remote?.close();
  }

  constructor(options: EngineOptions) {
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- checked for JavaScript callers
    if (!options || !isReadonlyArray(options.mounts)) throw new TypeError('createHandler: options.mounts must be an array');
    this.#headers = headerPairs(options.headers, 'headers');
    this.#resolveMs = options.resolveCacheMs ?? 1000;
    // Every body is checked with changed() before its last byte, so a stored entry's CRC need only be
    // checked once per archive version (it costs a quarter of the throughput).
    const mounts = options.mounts.map((m, i) => resolveMount(m, this.#headers, `mounts[${i}]`, CONTAINER_SIGNATURES));
    const remotes = mounts.flatMap((m) => (m.remote ? [m.remote] : []));
    if (remotes.length > 0 && options.vfs)
      throw new TypeError('createHandler: remote archive mounts (range+http(s), s3) need the engine to build its own vfs (options.vfs is set)');
    // Remote archives appear as files under REMOTE_PREFIX in the Vfs's base, so the zip layer enters
    // them as it enters archives on disk; only the objects the mounts name are reachable there.
    this.#remote = remotes.length > 0 ? new RemoteRouterFops(new PlatFops(), remotes, options.remote ?? {}) : undefined;
    this.#vfs = options.vfs ?? new Vfs({ base: this.#remote ?? new PlatFops(), zip: { storedCrc: 'first-read' } });
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
    this.#compressor = new Compressor(options.compression);
    // A mountpoint may be used twice when one of the two is exact-match (lws prefers it for the exact URI).
    const seen = new Set<string>();
    for (const m of mounts) {
      const id = `${m.exactMatch ? '=' : ''}${m.mountpoint}`;
      if (seen.has(id)) throw new TypeError(`mounts: mountpoint ${JSON.stringify(m.mountpoint)} is used twice`);
      seen.add(id);
    }
    // Longest mountpoint first, so the first match is the longest; of two alike, the exact-match one.
    this.mounts = Object.freeze(mounts.sort((a, b) => b.mountpoint.length - a.mountpoint.length || Number(b.exactMatch) - Number(a.exactMatch)));
  }

  /**
   * The longest mount whose mountpoint is the path or a segment-boundary prefix of it; a mount with
   * `exactMatch` only for the path itself without a trailing slash (`/` for the root). For an upgrade
   * request, mounts with `noWsUpgrades` are passed over.
   */
  match(path: string, upgrade = false, trailingSlash = false): ResolvedMount | undefined {
    for (const m of this.mounts) {
      if (upgrade && m.noWsUpgrades) continue;
      const mp = m.mountpoint;
      if (m.exactMatch) {
        if (path === mp && (mp === '/' || !trailingSlash)) return m;
        continue;
      }
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
    const m = this.match(canon.path, req.upgrade === true, canon.trailingSlash);
    if (!m) return { ...this.#page(404, this.#headers), notFound: true };
    if (m.auth !== undefined && !isPreflight(req, m)) return this.#authenticate(req, canon, m, m.auth);
    return this.#mount(req, canon, m);
  }

  /**
   * Basic authentication, before anything of the mount is looked at, whatever its kind: a missing,
   * malformed or wrong login gets the same 401. A login that passes marks the response with its
   * user (origins take it: REMOTE_USER, callbacks) and keeps it out of shared caches (see {@link #private}).
   */
  #authenticate(req: CoreRequest, canon: CanonicalPath, m: ResolvedMount, auth: BasicAuth): CoreResponse | Promise<CoreResponse> {
    const go = (user: string | undefined): CoreResponse | Promise<CoreResponse> => {
      if (user === undefined) return this.#unauthorized(m, auth);
      const out = this.#mount(req, canon, m);
      return out instanceof Promise ? out.then((o) => this.#private(o, m, user)) : this.#private(out, m, user);
    };
    const user = auth.check(req.header('authorization'));
    return user instanceof Promise ? user.then(go) : go(user);
  }

  /** 401 with the mount's challenge (RFC 9110 §11.6.1), never stored by any cache. */
  #unauthorized(m: ResolvedMount, auth: BasicAuth): CoreResponse {
    const page = this.#page(401, m.headers);
    return { ...page, headers: { ...page.headers, 'www-authenticate': auth.challenge, 'cache-control': 'no-store' } };
  }

  /**
   * An authenticated response: `auth` set, and unless the mount has `cache-intermediaries`, a
   * Cache-Control a shared cache would store made `private` (RFC 9111 §3.5: a response to a request
   * with Authorization is for that user). Relayed responses (callback, proxy, CGI) get the same rule
   * from the adapter, when their head is written.
   */
  #private(out: CoreResponse, m: ResolvedMount, user: string): CoreResponse {
    const auth = { user, sharedCache: m.sharedCache };
    if (out.callback) return { ...out, auth, callback: { ...out.callback, user } };
    if (out.cgi) return { ...out, auth, cgi: { ...out.cgi, user } };
    if (out.proxy) return { ...out, auth };
    const current = out.headers['cache-control'];
    const cc = privateCacheControl(current, m.sharedCache);
    return { ...out, auth, ...(cc === current || cc === undefined ? {} : { headers: { ...out.headers, 'cache-control': cc } }) };
  }

  /** Answers a request under mount `m`, by its kind. */
  #mount(req: CoreRequest, canon: CanonicalPath, m: ResolvedMount): CoreResponse | Promise<CoreResponse> {
    const remainder = m.mountpoint === '/' ? canon.path : canon.path.slice(m.mountpoint.length);
    if (m.kind === 'proxy') {
      // lws: `/proxy` is redirected to `/proxy/`, so relative links resolve inside the mount; an
      // exact-match mount has nothing below it, and forwards `/proxy` as it is.
      if (remainder === '' && !canon.trailingSlash && m.mountpoint !== '/' && !m.exactMatch)
        return this.#redirect(`${encodePath(`${m.mountpoint}/`)}${canon.query}`, m.headers);
      const path = upstreamPath(m.proxy!.origin.basePath, remainder === '' || remainder === '/' ? '' : encodePath(remainder), canon.trailingSlash, canon.query);
      return { status: 0, headers: this.#configured({}, m), body: null, proxy: { settings: m.proxy!, path, mountpoint: m.mountpoint } };
    }
    if (m.kind === 'cgi') {
      const pathInfo = canon.trailingSlash && !remainder.endsWith('/') ? `${remainder}/` : remainder;
      return {
        status: 0,
        headers: this.#configured({}, m),
        body: null,
        cgi: { settings: m.cgi!, mountpoint: m.mountpoint, pathInfo, query: canon.query.slice(1) },
      };
    }
    if (m.kind === 'callback') {
      // lws: `/cb` gives '', `/cb/` gives '/', `/cb/a/b?q=1` gives '/a/b'.
      const rest = canon.trailingSlash && !remainder.endsWith('/') ? `${remainder}/` : remainder;
      // The vhost and mount headers go on callback responses too; the adapter sets them before the handler runs.
      return { status: 0, headers: this.#configured({}, m), body: null, callback: { name: m.callback, remainder: rest, mountpoint: m.mountpoint, pmo: m.pmo } };
    }
    if (m.kind === 'redirect') return this.#redirect(m.appendPath ? appendedTarget(m.redirect, canon, remainder) : m.redirect, m.headers);
    if (req.method === 'OPTIONS' && m.cors) return this.#preflight(req, m);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      const page = this.#page(405, m.headers);
      return { ...page, headers: { ...page.headers, allow: m.cors ? 'GET, HEAD, OPTIONS' : 'GET, HEAD' }, declined: true };
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
        return serveContent(req, kept, this.#pageFor(m), this.#maxRanges, 'cached');
      }
    }
    return this.#serveFile(req, canon, m, remainder, key);
  }

  /**
   * A CORS preflight (or any OPTIONS) on a `cors` mount: 204, the methods a file mount answers, the
   * request's own header names back when they are a valid list. The answer depends on those request
   * headers, so it varies on them; the origin is `*`, so not on Origin.
   */
  #preflight(req: CoreRequest, m: ResolvedMount): CoreResponse {
    const headers = this.#configured({}, m);
    headers.allow = 'GET, HEAD, OPTIONS';
    headers['access-control-allow-methods'] = 'GET, HEAD, OPTIONS';
    const asked = req.header('access-control-request-headers')?.trim();
    if (asked !== undefined && asked !== '' && HEADER_LIST.test(asked)) headers['access-control-allow-headers'] = asked;
    headers['access-control-max-age'] = PREFLIGHT_MAX_AGE;
    headers.vary = addVary(headers.vary, 'Access-Control-Request-Method, Access-Control-Request-Headers');
    headers['content-length'] = '0';
    return { status: 204, headers, body: null };
  }

  /** Finds the file (resolution), opens the representation the client takes, serves that snapshot. */
  async #serveFile(req: CoreRequest, canon: CanonicalPath, m: ResolvedMount, remainder: string, key: string, spa = true): Promise<CoreResponse> {
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
        case 'page': {
          const page = { ...this.#page(resolution.status, m.headers, resolution.reason), ...(resolution.notFound ? { notFound: true } : {}) };
          if (resolution.notFound === true && spa && m.spaFallback !== '' && spaPath(canon)) return this.#spa(req, m, page);
          if (resolution.refusedType !== undefined) return { ...page, declined: true, ...this.#typeNotice(m, resolution.refusedType) };
          return page;
        }
        case 'listing':
          try {
            return await this.#listing(req, canon, m, resolution.dir);
          } catch (err) {
            this.#resolved?.delete(key);
            return this.#errorPage(err, m);
          }
        case 'file': {
          const rep = negotiate(req, resolution);
          let content: SnapshotContent;
          const before = this.#small?.peek(rep.key);
          try {
            content = resolution.fly.includes(rep) ? await this.#flyContent(rep, resolution.identity) : await this.#content(rep);
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
            return serveContent(req, content, this.#pageFor(m), this.#maxRanges, source);
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
   * A missing path the SPA fallback may answer: the fallback file with 200 and `no-cache` for a client
   * that accepts HTML, the 404 otherwise. Either way the answer depends on Accept, and says so.
   */
  async #spa(req: CoreRequest, m: ResolvedMount, notFound: CoreResponse): Promise<CoreResponse> {
    const vary = (out: CoreResponse): CoreResponse => ({ ...out, headers: { ...out.headers, vary: addVary(out.headers.vary, 'Accept') } });
    if (!acceptsHtml(req.header('accept'))) return vary(notFound);
    const url = encodePath(m.mountpoint === '/' ? m.spaFallback : `${m.mountpoint}${m.spaFallback}`);
    const canon = canonicalizePath(url);
    if ('status' in canon) return vary(notFound);
    const remainder = m.mountpoint === '/' ? canon.path : canon.path.slice(m.mountpoint.length);
    const out = await this.#serveFile(req, canon, m, remainder, `${m.mountpoint}\0${canon.path}\0`, false);
    if (out.status !== 200 && out.status !== 206 && out.status !== 304) {
      // A fallback that cannot be served is the operator's mistake: the client gets the 404 it would have.
      discard(out);
      return vary(notFound);
    }
    // The same app shell answers every route: revalidated each time, so a deploy is seen at once.
    return vary({ ...out, headers: { ...out.headers, 'cache-control': 'no-cache' } });
  }

  /** The operator's hint for a whitelist refusal, once per suffix per mount: which key would allow it. */
  #typeNotice(m: ResolvedMount, path: string): { error?: FopError } {
    const suffix = suffixOf(path);
    const id = `${m.mountpoint}\0${suffix}`;
    if (this.#refusedTypes.has(id)) return {};
    this.#refusedTypes.add(id);
    const how =
      suffix === ''
        ? `a name without a suffix is served with "mimetype-preset": "downloads" (mimetypePreset in code) or "extra-mimetypes": {"*": "application/octet-stream"}`
        : `serve it with "extra-mimetypes": {"${suffix}": "${suggestedType(suffix)}"} (extraMimetypes in code, --allow ${suffix} on the command line)`;
    const what = suffix === '' ? 'names without a suffix are' : `the suffix ${suffix} is`;
    return {
      error: new FopError(
        'FORBIDDEN',
        'whitelist',
        path,
        `refused with 403 on mount ${JSON.stringify(m.mountpoint)}: ${what} not in its mimetype whitelist; ${how}`,
      ),
    };
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
    // A mountpoint without its slash: redirect so relative links resolve inside the mount. An
    // exact-match mount answers only that URI, so it serves it (the origin file, or its default file).
    const exactRoot = m.exactMatch && remainder === '';
    if (m.mountpoint !== '/' && remainder === '' && !canon.trailingSlash && !exactRoot) return { kind: 'redirect', location: encodePath(`${m.mountpoint}/`) };
    // Dotfiles (.git, .env, .htpasswd) are never served; /.well-known/ is (RFC 8615).
    for (let i = 0; i < canon.segments.length; i++) {
      const s = canon.segments[i]!;
      if (s.startsWith('.') && !(i === 0 && s === '.well-known')) return { kind: 'page', status: 404, notFound: true };
    }
    const missing: Resolution = { kind: 'page', status: 404, notFound: true };
    let path = remainder === '' || remainder === '/' ? m.root : `${m.root}${remainder}`;
    let st = m.archive && path === m.root ? { type: 'directory' as const, size: 0 } : await this.#statIfAny(path);
    if (st === undefined && !canon.trailingSlash) {
      // Clean URLs: `/about` is `about.html` when `about` itself does not exist.
      for (const ext of m.extensions) {
        const alt = await this.#statIfAny(`${path}${ext}`);
        if (alt?.type === 'file') {
          path = `${path}${ext}`;
          st = alt;
          break;
        }
      }
    }
    if (st === undefined) return missing;
    let directory = st.type === 'directory';
    if (st.type === 'file' && isContainer(path)) {
      // An archive in a served folder is entered as a directory is; the file itself is served only when
      // the whitelist allows its type (a download), otherwise `/site.zip` leads into it.
      if (canon.trailingSlash) directory = true;
      else if (!m.mime(path).allowed) return { kind: 'redirect', location: encodePath(`${canon.path}/`) };
    }
    if (directory) {
      if (!canon.trailingSlash && !exactRoot) return { kind: 'redirect', location: encodePath(`${canon.path}/`) };
      const dir = path;
      st = undefined;
      for (const name of m.defaultFiles) {
        path = `${dir}/${name}`;
        st = await this.#statIfAny(path);
        if (st !== undefined) break;
      }
      // No default file (or a directory by that name): a listing where the mount has them.
      if (m.listing && (st === undefined || st.type === 'directory')) {
        if (!m.followSymlinks && !(await this.#contained(m, dir))) return missing;
        return { kind: 'listing', dir };
      }
      if (st === undefined) return missing;
    } else if (canon.trailingSlash) {
      return missing; // a file is not a directory
    }
    if (st.type !== 'file') return missing;
    let mime = m.mime(path);
    if (!mime.allowed && canon.segments[0] === '.well-known' && suffixOf(path) === '') {
      // RFC 8615 resources have fixed names, most without a suffix (ACME http-01 tokens).
      mime = { allowed: true, contentType: wellKnownType(path.slice(path.lastIndexOf('/') + 1)) };
    }
    if (!mime.allowed) return { kind: 'page', status: 403, reason: mime.reason, refusedType: path };
    if (!m.followSymlinks && !(await this.#contained(m, path))) return { kind: 'page', status: 404, notFound: true };
    const encoded: { encoding: string; path: string; flags: number }[] = [];
    if (st.gzipAvailable === true) encoded.push({ encoding: 'gzip', path, flags: FopFlags.COMPR_ACCEPTABLE_GZIP });
    else if (m.precompressed) {
      for (const [encoding, ext] of SIBLINGS) {
        const sib = await fopStat(this.#vfs, `${path}${ext}`).catch(() => undefined);
        if (sib?.type === 'file') encoded.push({ encoding, path: `${path}${ext}`, flags: 0 });
      }
    }
    // On the fly: the compressible codings no ready-made form (sibling, passthrough) gives.
    const fly = m.compress && isCompressibleType(mime.contentType) ? CODINGS.filter((c) => !encoded.some((e) => e.encoding === c)) : [];
    const vary = encoded.length > 0 || fly.length > 0;
    const inflates = st.gzipAvailable === true;
    const rep = (p: string, flags: number, encoding: string | undefined, made = false): Representation =>
      Object.freeze({
        source: made ? 'compressed' : encoding === undefined ? (inflates ? 'inflated' : 'read') : flags !== 0 ? 'passthrough' : 'precompressed',
        path: p,
        flags,
        encoding,
        contentType: mime.contentType,
        vary,
        cacheControl: m.cacheControl,
        configured: m.headers,
        key: `${m.mountpoint}\0${p}\0${flags}\0${encoding ?? ''}${made ? '\0fly' : ''}`,
      });
    const ready = encoded.map((e) => rep(e.path, e.flags, e.encoding));
    const made = fly.map((c) => rep(path, 0, c, true));
    const offered =
      made.length === 0 ? ready : [...ready, ...made].sort((a, b) => CODINGS.indexOf(a.encoding as Coding) - CODINGS.indexOf(b.encoding as Coding));
    return { kind: 'file', identity: rep(path, 0, undefined), encoded: offered, fly: made };
  }

  /** The stat of `path`, or undefined when nothing servable is there (a 404 cause); other failures throw. */
  async #statIfAny(path: string): Promise<FopStat | undefined> {
    try {
      return await fopStat(this.#vfs, path);
    } catch (err) {
      if (statusForError(err) === 404) return undefined;
      throw err;
    }
  }

  /**
   * The listing of directory `dir` for a mount with `listing` on. Hidden: dotfiles, names no
   * canonical path can hold, anything but files and directories, files the mount's mimetype
   * whitelist refuses, and (unless `followSymlinks`) symlinks resolving outside the origin. An
   * archive file is shown as a directory: the Vfs enters it. A backend that cannot list answers
   * 404, as with listings off. Times and sizes the backend did not report are stat'ed for the
   * entries shown only, so a huge directory costs one readdir plus `listingMax` stats.
   */
  async #listing(req: CoreRequest, canon: CanonicalPath, m: ResolvedMount, dir: string): Promise<CoreResponse> {
    const listed = await fopReadDir(this.#vfs, dir);
    if (listed === undefined) return { ...this.#page(404, m.headers), notFound: true };
    const base = dir === '/' ? '' : dir;
    const kept: (ListingEntry & { readonly path: string })[] = [];
    for (const e of listed) {
      const path = `${base}/${e.name}`;
      if (e.name.startsWith('.') || !validFopPath(path) || e.type === 'other') continue;
      let type = e.type;
      if (type === 'file' && isContainer(path)) type = 'directory';
      else if (type === 'file' && !m.mime(path).allowed) continue;
      if (e.symlink === true && !m.followSymlinks && !(await this.#contained(m, path))) continue;
      kept.push({ name: e.name, type, size: e.size, modTime: e.modTime, path });
    }
    kept.sort(compareEntries);
    const shown = kept.slice(0, m.listingMax);
    // Stats in batches: bounded concurrency against the disk, whatever listingMax is.
    const entries: ListingEntry[] = [];
    for (let i = 0; i < shown.length; i += 64) {
      const batch = shown.slice(i, i + 64).map(async (e): Promise<ListingEntry> => {
        if (e.modTime !== undefined && (e.type === 'directory' || e.size !== undefined))
          return { name: e.name, type: e.type, size: e.size, modTime: e.modTime };
        const st = await fopStat(this.#vfs, e.path).catch(() => undefined);
        return { name: e.name, type: e.type, size: e.type === 'file' ? (e.size ?? st?.size) : undefined, modTime: e.modTime ?? st?.modTime };
      });
      entries.push(...(await Promise.all(batch)));
    }
    const urlDir = canon.path === '/' ? '/' : `${canon.path}/`;
    return listingResponse(req.header('accept'), { path: urlDir, mountpoint: m.mountpoint, entries, total: kept.length }, m.headers);
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

  /**
   * A representation made on the fly (`rep.encoding`) from the identity
   * snapshot: fresh from memory, else from the identity's content (opened and
   * revalidated as {@link #content} does) and the compressor's cache keyed by
   * that snapshot's identity, else compressed from those bytes, read whole and
   * unchanged. The identity content itself when the snapshot is outside the
   * size window, has no identity to key a cache and an ETag on, or does not
   * get smaller.
   */
  async #flyContent(rep: Representation, identityRep: Representation): Promise<SnapshotContent> {
    const small = this.#small;
    const kept = small?.peek(rep.key);
    if (kept !== undefined && kept.expires > Date.now()) return kept;
    const coding = rep.encoding as Coding;
    for (let attempt = 1; ; attempt++) {
      const content = await this.#content(identityRep);
      const snap = content.snapshot;
      const id = snap.identity;
      // As fresh as the identity snapshot it is made from: the small-content contract, not a new one.
      const expires = 'expires' in content && typeof content.expires === 'number' ? content.expires : Date.now() + this.#resolveMs;
      if (id === undefined || !this.#compressor.sizeAllowed(snap.length)) return this.#keep(rep, content, expires);
      let coded = this.#compressor.cached(id, coding);
      if ('fd' in content) {
        if (coded !== undefined) await content.fd.close();
        else {
          const data = await readUnchanged(content.fd, snap.length);
          if (data === undefined) {
            if (attempt < READ_ATTEMPTS) continue;
            throw new FopError('IO', 'read', snap.path, 'the file kept changing while it was read');
          }
          coded = await this.#compressor.encode(id, coding, data);
        }
      } else coded ??= await this.#compressor.encode(id, coding, content.data);
      if (coded.length >= snap.length) return 'fd' in content ? this.#content(identityRep) : this.#keep(rep, content, expires);
      const snapshot = makeSnapshot(rep, {
        length: coded.length,
        etag: this.#compressor.etag(id, snap.length, coding),
        lastModified: snap.lastModified,
        encoding: coding,
        identity: `${coding}\0fly\0${id}`,
      });
      return this.#keep(rep, { snapshot, data: coded }, expires);
    }
  }

  /** Keeps a small content under `rep`'s key too, until `expires`, so the next request for it is answered synchronously. */
  #keep(rep: Representation, content: SnapshotContent, expires: number): SnapshotContent {
    if ('data' in content && this.#small !== undefined && content.data.length <= this.#smallMax && content.snapshot.identity !== undefined) {
      this.#small.set(rep.key, 'expires' in content && typeof content.expires === 'number' ? (content as CachedContent) : { ...content, expires });
    }
    return content;
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
    // What the 404 itself varied on (Accept, under an SPA fallback) still holds for its replacement.
    if (fallback.headers.vary !== undefined) headers.vary = fallback.headers.vary;
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

/**
 * The representation the client takes: an encoded one it prefers (RFC 9110
 * §12.5.3), else identity. On a q tie the order is br, zstd, gzip (see
 * `CODINGS`); a coding a ready-made form gives (sibling, passthrough) is
 * served from it, never made on the fly.
 */
function negotiate(req: CoreRequest, file: Extract<Resolution, { kind: 'file' }>): Representation {
  if (file.encoded.length === 0) return file.identity;
  const chosen = negotiateEncoding(
    req.header('accept-encoding'),
    file.encoded.map((r) => r.encoding!),
  );
  return file.encoded.find((r) => r.encoding === chosen) ?? file.identity;
}

/** Whether `path` names an archive the Vfs enters (`.zip`, `.jar`, `.war`). */
function isContainer(path: string): boolean {
  const lower = `${path}/`.toLowerCase();
  return CONTAINER_SIGNATURES.some((sig) => lower.endsWith(sig));
}

/** Whether a missing path is a route the SPA fallback may answer: no dotfile segment, and no suffix on the last one (not an asset). */
function spaPath(canon: CanonicalPath): boolean {
  if (canon.segments.some((s) => s.startsWith('.'))) return false;
  const last = canon.segments[canon.segments.length - 1];
  return last === undefined || canon.trailingSlash || suffixOf(last) === '';
}

/**
 * Whether a client takes HTML, for the SPA fallback. Yes when Accept is absent, when it names text/html or
 * application/xhtml+xml with q > 0, or when every range it accepts is a wildcard (`*\/*`, `text/*`: curl,
 * fetch's default). No when it names only other types (`application/json`), even beside a low-q `*\/*`: a
 * client that names what it wants and leaves HTML out is a script, and a script should get its 404.
 */
export function acceptsHtml(accept: string | undefined): boolean {
  if (accept === undefined || accept.trim() === '') return true;
  let wildcard = false;
  for (const part of accept.split(',')) {
    const [range = '', ...params] = part.split(';').map((x) => x.trim().toLowerCase());
    if (range === '') continue;
    const q = params.find((p) => p.startsWith('q='));
    const weight = q === undefined ? 1 : Number(q.slice(2));
    if (range === 'text/html' || range === 'application/xhtml+xml') {
      if (weight > 0) return true;
      return false; // refused by name: explicit, whatever a wildcard says
    }
    if (!(weight > 0)) continue;
    if (range === '*/*' || range === 'text/*') wildcard = true;
    else return false;
  }
  return wildcard;
}

/** Adds `value` to a Vary header (`*` stays `*`). */
function addVary(current: string | undefined, value: string): string {
  if (current === undefined || current.trim() === '') return value;
  if (current.trim() === '*') return current;
  const have = new Set(current.split(',').map((v) => v.trim().toLowerCase()));
  const more = value.split(',').filter((v) => !have.has(v.trim().toLowerCase()));
  return more.length === 0 ? current : `${current}, ${more.map((v) => v.trim()).join(', ')}`;
}

/** The type to suggest for a refused suffix: mime-types' if it knows one, else a download. */
function suggestedType(suffix: string): string {
  const t = mimeLookup(suffix);
  return t === false ? 'application/octet-stream' : t;
}

/**
 * A CORS preflight on a `cors` mount: OPTIONS with Access-Control-Request-Method. Browsers never
 * send credentials on one (Fetch standard, CORS-preflight fetch), so it is answered without them:
 * the answer names methods and headers only.
 */
function isPreflight(req: CoreRequest, m: ResolvedMount): boolean {
  return m.cors && m.kind === 'file' && req.method === 'OPTIONS' && req.header('access-control-request-method') !== undefined;
}

/**
 * `append-path`: the redirect target with the request's path after the mountpoint (percent-encoded
 * again, a trailing slash kept) and its query on the end. lws appends the path and drops the query;
 * a moved site keeps its links' queries working here.
 */
function appendedTarget(target: string, canon: CanonicalPath, remainder: string): string {
  const rest = canon.trailingSlash && !remainder.endsWith('/') ? `${remainder}/` : remainder;
  if (rest === '') return `${target}${canon.query}`;
  const base = target.endsWith('/') ? target.slice(0, -1) : target;
  return `${base}${encodePath(rest)}${canon.query}`;
}

/** Releases a response's body stream, if any, without sending it. */
function discard(out: CoreResponse): void {
  if (out.body !== null && !Buffer.isBuffer(out.body)) out.body.destroy();
}
