/**
 * A read-only backend over any HTTP server that honours Range: each fops path names a remote
 * object (`/docs/site.zip` is `${baseUrl}/docs/site.zip`), read in place by byte ranges.
 *
 * Contracts:
 * - Opening costs one request: a suffix range (`bytes=-tailBytes`: the zip end record, the largest
 *   comment and the zero padding the zip reader tolerates) whose `Content-Range` gives the size, and whose bytes are kept so that a zip
 *   reader finds its directory without another request. A server that refuses suffix ranges (416)
 *   or answers another range than asked (s3rver reads `bytes=-N` as `0-N`) gets HEAD and explicit
 *   ranges instead.
 * - Versions are pinned by the object's strong ETag: every later read sends `If-Match`. A 412 or a
 *   new ETag means the object was replaced: the handles of the old version fail their reads with
 *   `IO` and report `changed()`; the next `open` or `stat` sees the new version. Objects without a
 *   strong ETag are refused (nothing could tell two versions apart).
 * - A range answered with 200 (Range ignored), a `Content-Range` other than the one asked, or a
 *   body longer or shorter than asked fails the read with `IO`; the body is aborted, never read
 *   whole, and nothing is ever allocated from a size the server declares beyond what was asked.
 * - Reads go through an aligned block cache (LRU, bounded in bytes) shared by all handles, with one
 *   fetch in flight per block. A GET's body streams into its blocks: each block is readable as soon
 *   as its bytes have arrived (the last one once the body has ended with exactly the bytes asked).
 *   Failed GETs (network errors, timeouts, 5xx) are retried with backoff, for the blocks still missing.
 * - Read-ahead: a handle's `advise(offset, length)` names a range about to be read (a zip entry from
 *   its local header to the end of its data; a central directory larger than the tail). The first
 *   read inside it from its start fetches its first window with one GET, and reading near the end
 *   of what was fetched asks for the next, so a sequential reader costs about one request per
 *   window and never has more than a window and a half ahead of it. Windows start at
 *   `readAheadStartBytes` and double up to `readAheadBytes`, as the kernel's read-ahead does: an
 *   entry whose reader stops early (a 304, a HEAD, a short range of a large entry) costs one small
 *   GET, not a large one. A range advised `whole` (a central directory) starts at the full window. A read that
 *   jumps into the middle of an advised range fetches only its own blocks; the read after it,
 *   continuing in sequence, starts the windows.
 * - A failed open is remembered for {@link FAILED_OPEN_MS}: calls in that time fail at once with the
 *   same error, so a store that is down is not asked again by every request.
 * - The pinned ETag is revalidated (one `HEAD` with `If-None-Match`) at most every `revalidateMs`
 *   when `stat` or `changed()` asks, so that reads served from the cache alone still notice a
 *   replacement.
 * - Authorisation is the caller's: `sign` sees every request just before it is sent (and again for
 *   each retry), and `query` goes verbatim on every request path. With `headAllowed: false` (a URL
 *   presigned for GET) no `HEAD` is sent: a `GET` of `bytes=0-0` stands in for it. Neither the query
 *   nor the signed headers ever appear in an error message or in the version identity.
 */
import { createHash } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { Pool } from 'undici';
import { FopError } from '../errors.js';
import { FopFlags } from '../flags.js';
import { FopHandle } from '../handle.js';
import { assertFopPath } from '../path.js';
import type { FopFd, FopStat, StatOps } from '../types.js';

/** Options of {@link HttpRangeFops}; every one but `baseUrl` has a default. */
export interface HttpRangeFopsOptions {
  /** `http://` or `https://` URL the fops paths are appended to (no query, no fragment). */
  readonly baseUrl: string;
  /** Bytes of the aligned blocks the cache holds (default 64 KiB). */
  readonly blockSize?: number;
  /** Bytes the block cache may hold in all (default 64 MiB). */
  readonly cacheBytes?: number;
  /**
   * Bytes of the suffix range read on open (default {@link DEFAULT_TAIL_BYTES}: the window the zip
   * reader searches for its end record, so that indexing an archive whose directory fits costs no
   * further request).
   */
  readonly tailBytes?: number;
  /** Connections to the origin at most (default 8); further requests queue. */
  readonly maxConnections?: number;
  /** Milliseconds to wait for response headers, and between body chunks (default 10000). */
  readonly timeoutMs?: number;
  /** Retries of a failed GET or HEAD (network error, timeout, 5xx), with doubling backoff from 50 ms (default 2). */
  readonly retries?: number;
  /**
   * Milliseconds between revalidations of a pinned ETag (default 4000: with the engine's 1 s resolve
   * cache, a replaced archive reaches every response within 5 s).
   */
  readonly revalidateMs?: number;
  /**
   * Objects whose pinned version (and tail, up to `tailBytes` each) is kept for the next open
   * (default 256); the least recently opened is forgotten first (its open handles keep their pin).
   */
  readonly maxObjects?: number;
  /**
   * Bytes fetched by one read-ahead GET at most (default 4 MiB, and at most a quarter of
   * `cacheBytes`); 0 turns read-ahead off, so that only the blocks each read needs are fetched.
   */
  readonly readAheadBytes?: number;
  /**
   * Bytes of the first read-ahead GET of a range that may not be read whole (default 256 KiB); each
   * later window doubles, up to `readAheadBytes`.
   */
  readonly readAheadStartBytes?: number;
  /**
   * Called just before each request is sent (each retry included), with the request as it will go
   * out: returns the headers to send instead (such as the same ones plus a signature). The query is
   * part of `path`; the `host` header is the one named here, and a `host` in the result is ignored.
   */
  readonly sign?: RequestSigner;
  /**
   * Query string (without `?`) appended verbatim to every request path, such as a presigned URL's
   * signature. It is a credential: never put into errors or the version identity.
   */
  readonly query?: string;
  /**
   * Whether the origin answers `HEAD` (default true). A URL presigned for GET does not: a `GET` of
   * `bytes=0-0` then stands in for it (for the size and ETag, and for revalidation).
   */
  readonly headAllowed?: boolean;
}

/** A request about to be sent to the origin, as {@link HttpRangeFopsOptions.sign} sees it. */
export interface OutgoingRequest {
  readonly method: 'GET' | 'HEAD';
  /** `host[:port]`, as sent in the `host` header. */
  readonly host: string;
  /** The path as sent: percent-encoded (RFC 3986), with the query if any. */
  readonly path: string;
  /** Lower-case names: `range`, `if-match`, `if-none-match` as the request needs them. */
  readonly headers: Readonly<Record<string, string>>;
}

/** See {@link HttpRangeFopsOptions.sign}. */
export type RequestSigner = (request: OutgoingRequest) => Record<string, string> | Promise<Record<string, string>>;

/** Counters for tests and benchmarks: requests made to the origin. */
export interface HttpRangeFopsStats {
  readonly requests: number;
  readonly bytesFetched: number;
  readonly cachedBytes: number;
}

/** One pinned version of a remote object. */
interface RemoteObject {
  readonly url: string;
  readonly etag: string;
  readonly size: number;
  readonly modTime: number | undefined;
  /** Bytes `[tailStart, size)`, fetched on open. */
  readonly tail: Buffer;
  readonly tailStart: number;
  /** Names the bytes: a hash of URL, ETag and size (never a path). */
  readonly identity: string;
  validatedAt: number;
  replaced: boolean;
  revalidating?: Promise<void> | undefined;
}

interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: {
    destroy(err?: Error): unknown;
    dump(): Promise<void>;
    on(event: 'error', listener: (err: unknown) => void): unknown;
    [Symbol.asyncIterator](): AsyncIterator<Buffer>;
  };
}

/** Aborts a body without reading it; the abort error it emits is expected, so it is swallowed. */
function discard(r: Reply): void {
  r.body.on('error', () => undefined);
  r.body.destroy();
}

class Retryable extends Error {}

/** A block being fetched: readable once all its bytes have arrived, or failed with its GET. */
interface PendingBlock {
  readonly promise: Promise<Buffer>;
  resolve(block: Buffer): void;
  reject(err: unknown): void;
}

function pendingBlock(): PendingBlock {
  let resolve!: (block: Buffer) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<Buffer>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // A block fetched ahead may never be read: its failure is not an unhandled rejection.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/** A range a reader advised it is about to read, and how far read-ahead has asked for it. */
interface Advice {
  readonly start: number;
  readonly end: number;
  /** Bytes before this one are fetched, in flight, or were read without read-ahead. */
  next: number;
  /** Blocks of the next window: doubles after each, up to the largest. */
  blocks: number;
  /** Blocks of the window asked last (0 before the first): the next is asked within half of it of its end. */
  asked: number;
}

/** The advised ranges a handle remembers, most recent last: enough for the entries read at once through one archive. */
const MAX_ADVICE = 64;

/** How long a failed open is answered from memory before the origin is asked again. */
export const FAILED_OPEN_MS = 1000;

/** Consecutive missing blocks fetched by one request at most (1 MiB with the default blocks). */
const MAX_RUN_BLOCKS = 16;

/**
 * The end record (22) plus the largest comment (65535), as the issue names it, plus the 64 KiB of
 * zero padding the zip reader tolerates after the end record: its first read is that whole window,
 * and a suffix of only 65557 bytes would cost one more request per archive opened.
 */
export const DEFAULT_TAIL_BYTES = 22 + 0xffff + 64 * 1024;

const REPLACED = 'remote object was replaced (ETag changed)';

function header(h: Reply['headers'], name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Parses `bytes a-b/total` (or `bytes *\/total`); undefined when malformed. */
function parseContentRange(v: string | undefined): { start?: number; end?: number; total: number } | undefined {
  if (v === undefined) return undefined;
  const m = /^bytes (?:(\d{1,15})-(\d{1,15})|\*)\/(\d{1,15})$/.exec(v.trim());
  if (!m) return undefined;
  const total = Number(m[3]);
  if (m[1] === undefined) return { total };
  return { start: Number(m[1]), end: Number(m[2]), total };
}

/** `encodeURIComponent`, plus the sub-delimiters it leaves (`!'()*`): the path segment encoding SigV4 canonicalises to. */
function encodeRfc3986(segment: string): string {
  return encodeURIComponent(segment).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function strongEtag(v: string | undefined): string | undefined {
  // A weak validator cannot be used with If-Match (strong comparison): it would answer 412 every time.
  return v !== undefined && /^"[^"]*"$/.test(v) ? v : undefined;
}

/** A read-only {@link StatOps} backend over HTTP Range requests; see the module comment for its contracts. */
export class HttpRangeFops implements StatOps {
  readonly #base: URL;
  readonly #pool: Pool;
  readonly #blockSize: number;
  readonly #cacheBytes: number;
  readonly #tailBytes: number;
  readonly #timeoutMs: number;
  readonly #retries: number;
  readonly #revalidateMs: number;
  readonly #maxObjects: number;
  readonly #readAheadBlocks: number;
  readonly #readAheadStartBlocks: number;
  readonly #sign: RequestSigner | undefined;
  readonly #query: string;
  readonly #headAllowed: boolean;
  readonly #objects = new Map<string, Promise<RemoteObject>>();
  /** Insertion order is recency: the first key is the least recently used. */
  readonly #blocks = new Map<string, Buffer>();
  readonly #inflight = new Map<string, Promise<Buffer>>();
  /** Bodies being streamed into blocks now: destroyed by `close`. */
  readonly #streaming = new Set<Reply>();
  #closed = false;
  #cached = 0;
  #requests = 0;
  #bytesFetched = 0;

  constructor(options: HttpRangeFopsOptions) {
    const base = new URL(options.baseUrl);
    if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new TypeError(`HttpRangeFops: baseUrl must be http(s), not ${base.protocol}`);
    if (base.search !== '' || base.hash !== '') throw new TypeError('HttpRangeFops: baseUrl must have no query or fragment');
    this.#base = base;
    this.#blockSize = options.blockSize ?? 64 * 1024;
    this.#cacheBytes = options.cacheBytes ?? 64 * 1024 * 1024;
    this.#tailBytes = options.tailBytes ?? DEFAULT_TAIL_BYTES;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#retries = options.retries ?? 2;
    this.#revalidateMs = options.revalidateMs ?? 4000;
    this.#maxObjects = options.maxObjects ?? 256;
    this.#sign = options.sign;
    if (options.query !== undefined && (options.query === '' || /[#\s]/.test(options.query)))
      throw new TypeError('HttpRangeFops: query must be a non-empty query string without "#" or spaces');
    this.#query = options.query === undefined ? '' : `?${options.query}`;
    this.#headAllowed = options.headAllowed ?? true;
    for (const [k, v] of Object.entries({ blockSize: this.#blockSize, tailBytes: this.#tailBytes, timeoutMs: this.#timeoutMs, maxObjects: this.#maxObjects })) {
      if (!Number.isSafeInteger(v) || v < 1) throw new TypeError(`HttpRangeFops: ${k} must be a positive integer`);
    }
    const readAhead = options.readAheadBytes ?? 4 * 1024 * 1024;
    if (!Number.isSafeInteger(readAhead) || readAhead < 0) throw new TypeError('HttpRangeFops: readAheadBytes must be a non-negative integer');
    // A window is at most a quarter of the cache, so that blocks fetched ahead are still there when read.
    this.#readAheadBlocks = readAhead === 0 ? 0 : Math.max(1, Math.floor(Math.min(readAhead, this.#cacheBytes / 4) / this.#blockSize));
    const start = options.readAheadStartBytes ?? 256 * 1024;
    if (!Number.isSafeInteger(start) || start < 1) throw new TypeError('HttpRangeFops: readAheadStartBytes must be a positive integer');
    this.#readAheadStartBlocks = Math.min(this.#readAheadBlocks, Math.max(1, Math.floor(start / this.#blockSize)));
    this.#pool = new Pool(base.origin, { connections: options.maxConnections ?? 8 });
  }

  /** Requests made and bytes fetched so far, and the bytes the block cache holds. */
  get stats(): HttpRangeFopsStats {
    return { requests: this.#requests, bytesFetched: this.#bytesFetched, cachedBytes: this.#cached };
  }

  /** Closes the connections to the origin; bodies still streaming are cut, and their missing blocks fail. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const r of this.#streaming) r.body.destroy(new Error('HttpRangeFops closed'));
    await this.#pool.close();
  }

  async open(path: string, flags: number = fsc.O_RDONLY): Promise<FopFd> {
    assertFopPath(path, 'open');
    if ((flags & (fsc.O_WRONLY | fsc.O_RDWR | fsc.O_CREAT | fsc.O_TRUNC)) !== 0) throw new FopError('READ_ONLY', 'open', path);
    const obj = await this.#object(path, 'open');
    const outFlags = (flags & ~FopFlags.COMPR_IS_GZIP) | FopFlags.VIRTUAL | (obj.modTime === undefined ? 0 : FopFlags.MOD_TIME_VALID);
    const advised: Advice[] = [];
    // The last range asked of viewAt: a view stops at a block's end, and the call for the rest of the
    // same read is no new read for read-ahead to judge (it would look like reading on past a jump).
    let viewed = { from: -1, to: -1 };
    return new HttpRangeHandle(this, path, obj, outFlags, {
      readAt: (buf, position) => {
        this.#readAhead(obj, path, advised, position, position + buf.length);
        return this.#readAt(obj, path, buf, position);
      },
      viewAt: (position, maxLength) => {
        const end = position + maxLength;
        if (!(position > viewed.from && end <= viewed.to)) {
          viewed = { from: position, to: end };
          this.#readAhead(obj, path, advised, position, end);
        }
        return this.#viewAt(obj, path, position, maxLength);
      },
      changed: () => this.#changed(obj, path),
      advise: (offset, length, whole) => this.#advise(obj, advised, offset, length, whole),
    });
  }

  async stat(path: string): Promise<FopStat> {
    assertFopPath(path, 'stat');
    let obj = await this.#object(path, 'stat');
    await this.#revalidate(obj, path);
    // Replaced while revalidating: the next version, opened now.
    if (obj.replaced) obj = await this.#object(path, 'stat');
    const st: FopStat = { type: 'file', size: obj.size, version: obj.identity };
    return obj.modTime === undefined ? st : { ...st, modTime: obj.modTime };
  }

  /** The pinned version of `path`, opened now (one request) unless a live one is known. */
  #object(path: string, op: string): Promise<RemoteObject> {
    const known = this.#objects.get(path);
    if (known) {
      // Most recently used: to the end of the map.
      this.#objects.delete(path);
      this.#objects.set(path, known);
      return known;
    }
    const p = this.#openObject(path, op);
    this.#objects.set(path, p);
    for (const oldest of this.#objects.keys()) {
      if (this.#objects.size <= this.#maxObjects) break;
      this.#objects.delete(oldest);
    }
    // A failure is remembered for a moment: while a store is down, requests fail at once instead of
    // each retrying against it; then the next call asks again (the object may have appeared).
    p.catch(() => {
      setTimeout(() => {
        if (this.#objects.get(path) === p) this.#objects.delete(path);
      }, FAILED_OPEN_MS).unref();
    });
    return p;
  }

  #url(path: string): string {
    const encoded = path
      .split('/')
      .map((s) => encodeRfc3986(s))
      .join('/');
    return `${this.#base.pathname.replace(/\/$/, '')}${encoded}`;
  }

  async #openObject(path: string, op: string): Promise<RemoteObject> {
    const url = this.#url(path);
    const asked = this.#tailBytes;
    // The version is known as of when it was asked for, not when its tail finished arriving.
    const askedAt = Date.now();
    const fallback = async (): Promise<RemoteObject> => {
      const head = await this.#probe(url, {}, path, op);
      await this.#settleProbe(head);
      this.#expectFound(head.status, path, op);
      const size = this.#probedSize(head, path, op);
      const etag = this.#etagOf(head.headers, path, op);
      const tailStart = Math.max(0, size - asked);
      const tail = size === 0 ? Buffer.alloc(0) : await this.#range(url, etag, tailStart, size, path, op);
      return this.#pinned(url, etag, size, head.headers, tail, tailStart, askedAt);
    };
    // The suffix request and its body are retried together: a stalled or cut body asks again.
    const pinned = await this.#retrying(path, op, async (): Promise<RemoteObject | undefined> => {
      const r = await this.#request(url, 'GET', { range: `bytes=-${asked}` });
      if (r.status >= 500) {
        await r.body.dump();
        throw new Retryable(`origin answered ${r.status}`);
      }
      if (r.status === 416) {
        await r.body.dump();
        return undefined;
      }
      this.#expectFound(r.status, path, op);
      if (r.status === 200) {
        discard(r);
        throw new FopError('IO', op, path, 'origin ignores Range (answered 200 to a range request)');
      }
      if (r.status !== 206) {
        discard(r);
        throw new FopError('IO', op, path, `origin answered ${r.status}`);
      }
      const cr = parseContentRange(header(r.headers, 'content-range'));
      const want = cr ? Math.min(asked, cr.total) : -1;
      if (cr?.start === undefined || cr.end === undefined || cr.end !== cr.total - 1 || cr.start !== cr.total - want) {
        // Not the suffix asked (a server that reads `bytes=-N` as `0-N`): explicit ranges instead.
        discard(r);
        return undefined;
      }
      const etag = this.#etagOf(r.headers, path, op, r);
      const tail = await this.#readBody(r, want, path, op);
      return this.#pinned(url, etag, cr.total, r.headers, tail, cr.start, askedAt);
    });
    return pinned ?? fallback();
  }

  /** A `HEAD` of `url`, or where HEAD is not allowed, a `GET` of its first byte (retried on failure). */
  #probe(url: string, headers: Record<string, string>, path: string, op: string): Promise<Reply> {
    return this.#headAllowed ? this.#send(url, 'HEAD', headers, path, op) : this.#send(url, 'GET', { ...headers, range: 'bytes=0-0' }, path, op);
  }

  /** Ends a {@link #probe}'s body: read when it is the byte asked (or none), aborted when it is more. */
  async #settleProbe(r: Reply): Promise<void> {
    const length = Number(header(r.headers, 'content-length'));
    if (this.#headAllowed || r.status === 304 || (Number.isSafeInteger(length) && length <= 1)) await r.body.dump();
    else discard(r);
  }

  /** The object's size from a successful {@link #probe}; its body is already settled. */
  #probedSize(r: Reply, path: string, op: string): number {
    if (this.#headAllowed) {
      if (r.status !== 200) throw new FopError('IO', op, path, `HEAD answered ${r.status}`);
      const size = Number(header(r.headers, 'content-length'));
      if (!Number.isSafeInteger(size) || size < 0) throw new FopError('IO', op, path, 'HEAD gave no usable Content-Length');
      return size;
    }
    if (r.status === 200) throw new FopError('IO', op, path, 'origin ignores Range (answered 200 to a range request)');
    // An empty object has no byte 0 (416): nothing to serve from it either.
    if (r.status !== 206) throw new FopError('IO', op, path, `origin answered ${r.status} to bytes=0-0`);
    const cr = parseContentRange(header(r.headers, 'content-range'));
    // A range from 0 still tells the size (s3rver reads `bytes=0-0` as `0-`; its body was aborted).
    if (cr?.start !== 0 || cr.end === undefined || cr.end >= cr.total) throw new FopError('IO', op, path, 'origin answered another range than bytes=0-0');
    return cr.total;
  }

  #pinned(url: string, etag: string, size: number, headers: Reply['headers'], tail: Buffer, tailStart: number, validatedAt: number): RemoteObject {
    const lm = Date.parse(header(headers, 'last-modified') ?? '');
    const identity = `http:${createHash('sha256').update(`${url}\0${etag}\0${size}`).digest('base64url').slice(0, 22)}:${size}`;
    return { url, etag, size, modTime: Number.isNaN(lm) ? undefined : lm, tail, tailStart, identity, validatedAt, replaced: false };
  }

  #etagOf(headers: Reply['headers'], path: string, op: string, r?: Reply): string {
    const etag = strongEtag(header(headers, 'etag'));
    if (etag === undefined) {
      if (r) discard(r);
      throw new FopError('IO', op, path, 'origin gives no strong ETag: versions cannot be pinned');
    }
    return etag;
  }

  #expectFound(status: number, path: string, op: string): void {
    if (status === 404 || status === 410) throw new FopError('NOT_FOUND', op, path);
    // Not FORBIDDEN (a client's 403): the server's own credentials or presigned URL are refused, which the
    // operator must hear of (an I/O error is reported) and a client cannot fix. S3 also answers 403 for a
    // missing key when the caller may not list the bucket.
    if (status === 401 || status === 403)
      throw new FopError('IO', op, path, `the origin refused access (${status}): check the mount's credentials or presigned URL`);
  }

  /** Marks `obj` replaced: its handles fail, and the next open or stat pins the new version. */
  #replaced(obj: RemoteObject, path: string): void {
    obj.replaced = true;
    const cur = this.#objects.get(path);
    if (cur) {
      void cur.then(
        (o) => {
          if (o === obj && this.#objects.get(path) === cur) this.#objects.delete(path);
        },
        () => undefined,
      );
    }
    // The blocks of that version can never be read again.
    for (const [k, b] of this.#blocks) {
      if (k.startsWith(`${obj.identity}\0`)) {
        this.#blocks.delete(k);
        this.#cached -= b.length;
      }
    }
  }

  /** Revalidates the pinned ETag when the last check is older than `revalidateMs`: one conditional {@link #probe}, shared. */
  #revalidate(obj: RemoteObject, path: string): Promise<void> {
    if (obj.replaced || Date.now() - obj.validatedAt < this.#revalidateMs) return Promise.resolve();
    obj.revalidating ??= (async () => {
      try {
        // Valid as of the question, not the answer: a slow answer must not stretch the revalidation bound.
        const askedAt = Date.now();
        const r = await this.#probe(obj.url, { 'if-none-match': obj.etag }, path, 'revalidate');
        await this.#settleProbe(r);
        const same = r.status === 304 || ((r.status === 200 || r.status === 206) && header(r.headers, 'etag') === obj.etag);
        if (same) obj.validatedAt = askedAt;
        else this.#replaced(obj, path);
      } finally {
        obj.revalidating = undefined;
      }
    })();
    return obj.revalidating;
  }

  /** Whether `obj` was replaced, revalidating first when due. */
  async #changed(obj: RemoteObject, path: string): Promise<boolean> {
    await this.#revalidate(obj, path);
    return obj.replaced;
  }

  /**
   * Up to `maxLength` bytes at `position` of `obj` without a copy: a view of the tail, or of the one
   * cached block holding `position` (never across a block's end). The blocks of the whole range are
   * asked for at once, so that a run of missing ones still costs one request.
   */
  async #viewAt(obj: RemoteObject, path: string, position: number, maxLength: number): Promise<Buffer> {
    if (obj.replaced) throw new FopError('IO', 'read', path, REPLACED);
    const end = Math.min(obj.size, position + maxLength);
    if (position >= end) return Buffer.alloc(0);
    if (position >= obj.tailStart) return obj.tail.subarray(position - obj.tailStart, end - obj.tailStart);
    const bs = this.#blockSize;
    const first = Math.floor(position / bs);
    const blocks = this.#blockRange(obj, path, first, Math.floor((Math.min(end, obj.tailStart) - 1) / bs));
    // Only the first is waited for here; the others are the next calls' (a failure is theirs to see).
    for (const later of blocks.slice(1)) later.catch(() => undefined);
    const block = await blocks[0]!;
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- set by #replaced during the await above
    if (obj.replaced) throw new FopError('IO', 'read', path, REPLACED);
    const blockStart = first * bs;
    return block.subarray(position - blockStart, Math.min(block.length, end - blockStart, obj.tailStart - blockStart));
  }

  /** Fills `buf` from `position` of `obj`, copying it view by view (see {@link #viewAt}); short only at the end. */
  async #readAt(obj: RemoteObject, path: string, buf: Uint8Array, position: number): Promise<number> {
    let got = 0;
    while (got < buf.length) {
      // Each view is checked against a replacement after its wait: a read never mixes two versions.
      const view = await this.#viewAt(obj, path, position + got, buf.length - got);
      if (view.length === 0) break;
      buf.set(view, got);
      got += view.length;
    }
    return got;
  }

  /**
   * Blocks `first..last` of `obj`: cached, in flight (shared), or fetched now, where each run of
   * consecutive missing blocks (up to `MAX_RUN_BLOCKS`) costs one request.
   */
  #blockRange(obj: RemoteObject, path: string, first: number, last: number): Promise<Buffer>[] {
    const out: Promise<Buffer>[] = [];
    let runStart = -1;
    const flush = (to: number): void => {
      if (runStart < 0) return;
      const from = runStart;
      runStart = -1;
      this.#fetchSpan(obj, path, from, to);
      for (let i = from; i < to; i++) out[i - first] = this.#inflight.get(`${obj.identity}\0${i}`)!;
    };
    for (let i = first; i <= last; i++) {
      const key = `${obj.identity}\0${i}`;
      const hit = this.#blocks.get(key);
      const ready = hit ? Promise.resolve(hit) : this.#inflight.get(key);
      if (ready) {
        if (hit) {
          // Most recently used: to the end of the map.
          this.#blocks.delete(key);
          this.#blocks.set(key, hit);
        }
        flush(i);
        out[i - first] = ready;
        continue;
      }
      if (runStart >= 0 && i - runStart >= MAX_RUN_BLOCKS) flush(i);
      if (runStart < 0) runStart = i;
    }
    flush(last + 1);
    return out;
  }

  #forget(key: string): void {
    const b = this.#blocks.get(key);
    if (!b) return;
    this.#blocks.delete(key);
    this.#cached -= b.length;
  }

  #remember(key: string, b: Buffer): void {
    if (b.length > this.#cacheBytes) return;
    this.#blocks.set(key, b);
    this.#cached += b.length;
    for (const [k, v] of this.#blocks) {
      if (this.#cached <= this.#cacheBytes) break;
      this.#blocks.delete(k);
      this.#cached -= v.length;
    }
  }

  /** Bytes `[start, end)` of the pinned version, exactly; a 412 marks `obj` replaced. */
  async #range(url: string, etag: string, start: number, end: number, path: string, op: string, obj?: RemoteObject): Promise<Buffer> {
    return this.#retrying(path, op, async () => {
      const r = await this.#rangeReply(url, etag, start, end, path, op, obj);
      return this.#readBody(r, end - start, path, op);
    });
  }

  /**
   * The response to a GET of `[start, end)` under `If-Match`, checked: a 206 with the pinned ETag
   * and exactly the `Content-Range` asked, its body not read yet. Anything else is aborted unread
   * and thrown: `FopError` (a 412 or another ETag also marks `obj` replaced), or `Retryable` (5xx,
   * network errors).
   */
  async #rangeReply(url: string, etag: string, start: number, end: number, path: string, op: string, obj?: RemoteObject): Promise<Reply> {
    const r = await this.#request(url, 'GET', { range: `bytes=${start}-${end - 1}`, 'if-match': etag });
    if (r.status === 412) {
      await r.body.dump();
      if (obj) this.#replaced(obj, path);
      throw new FopError('IO', op, path, REPLACED);
    }
    if (r.status >= 500) {
      await r.body.dump();
      throw new Retryable(`origin answered ${r.status}`);
    }
    if (r.status !== 206) {
      // Never read a body that is not the range asked: it may be the whole object.
      discard(r);
      this.#expectFound(r.status, path, op);
      throw new FopError('IO', op, path, r.status === 200 ? 'origin ignores Range (answered 200 to a range request)' : `origin answered ${r.status}`);
    }
    const got = strongEtag(header(r.headers, 'etag'));
    if (got !== undefined && got !== etag) {
      discard(r);
      if (obj) this.#replaced(obj, path);
      throw new FopError('IO', op, path, REPLACED);
    }
    const cr = parseContentRange(header(r.headers, 'content-range'));
    if (cr?.start !== start || cr.end !== end - 1) {
      discard(r);
      throw new FopError(
        'IO',
        op,
        path,
        `origin answered another range (${header(r.headers, 'content-range') ?? 'no Content-Range'}) than bytes ${start}-${end - 1}`,
      );
    }
    return r;
  }

  /**
   * Fetches blocks `[from, to)` of `obj` with one GET streamed into them. Blocks cached or in flight
   * already are passed over (their bytes are received, not kept); each other block is in flight
   * from now on, and becomes readable as soon as its bytes have arrived. A failure retries the GET
   * for the blocks still missing; once retries are spent, exactly those blocks fail.
   */
  #fetchSpan(obj: RemoteObject, path: string, from: number, to: number): void {
    const wanted = new Map<number, PendingBlock>();
    for (let i = from; i < to; i++) {
      const key = `${obj.identity}\0${i}`;
      if (this.#blocks.has(key) || this.#inflight.has(key)) continue;
      const pending = pendingBlock();
      wanted.set(i, pending);
      this.#inflight.set(key, pending.promise);
      const done = (): void => {
        if (this.#inflight.get(key) === pending.promise) this.#inflight.delete(key);
      };
      pending.promise.then(done, done);
    }
    if (wanted.size > 0) void this.#pump(obj, path, wanted);
  }

  /** Runs the GETs of {@link #fetchSpan} until every block in `wanted` has settled; never rejects. */
  async #pump(obj: RemoteObject, path: string, wanted: Map<number, PendingBlock>): Promise<void> {
    const bs = this.#blockSize;
    for (let attempt = 0; ; attempt++) {
      // Blocks complete in order, so what is missing is one span from the first missing block.
      let first = Infinity;
      let last = -1;
      for (const i of wanted.keys()) {
        first = Math.min(first, i);
        last = Math.max(last, i);
      }
      if (last < 0) return;
      try {
        if (this.#closed) throw new FopError('IO', 'read', path, 'closed');
        if (obj.replaced) throw new FopError('IO', 'read', path, REPLACED);
        const start = first * bs;
        const end = Math.min(obj.size, (last + 1) * bs);
        const r = await this.#rangeReply(obj.url, obj.etag, start, end, path, 'read', obj);
        await this.#streamInto(r, obj, path, start, end, wanted);
        return;
      } catch (err) {
        if (err instanceof Retryable && attempt < this.#retries && !this.#closed) {
          await new Promise((resolve) => setTimeout(resolve, 50 * 2 ** attempt));
          continue;
        }
        const failure = err instanceof Retryable ? new FopError('IO', 'read', path, err.message, { cause: err }) : err;
        for (const pending of wanted.values()) pending.reject(failure);
        wanted.clear();
        return;
      }
    }
  }

  /**
   * Copies the body of `r` (bytes `[start, end)`) into the blocks of `wanted`, settling each one as
   * it completes and deleting it from `wanted`. The last block waits for the end of the body, so a
   * body with more bytes than asked (chunked) never lets it through. Short or cut bodies throw
   * `Retryable`, with the blocks not yet complete still in `wanted`.
   */
  async #streamInto(r: Reply, obj: RemoteObject, path: string, start: number, end: number, wanted: Map<number, PendingBlock>): Promise<void> {
    const bs = this.#blockSize;
    const lastBlock = Math.floor((end - 1) / bs);
    let pos = start;
    let block: Buffer | undefined;
    let held: Buffer | undefined;
    const completed: string[] = [];
    const complete = (i: number, b: Buffer): void => {
      const pending = wanted.get(i);
      if (!pending) return;
      wanted.delete(i);
      const key = `${obj.identity}\0${i}`;
      if (!obj.replaced) this.#remember(key, b);
      completed.push(key);
      pending.resolve(b);
    };
    this.#streaming.add(r);
    try {
      for await (const chunk of r.body as AsyncIterable<Buffer>) {
        if (pos + chunk.length > end) {
          discard(r);
          // A body that breaks its own framing: nothing it brought stays cached.
          for (const key of completed) this.#forget(key);
          throw new FopError('IO', 'read', path, `origin sent more than the ${end - start} bytes asked`);
        }
        this.#bytesFetched += chunk.length;
        for (let off = 0; off < chunk.length;) {
          const i = Math.floor(pos / bs);
          const blockStart = i * bs;
          const blockEnd = Math.min(obj.size, blockStart + bs);
          const n = Math.min(chunk.length - off, blockEnd - pos);
          if (wanted.has(i)) {
            // Each block its own buffer: a cached block never keeps a whole body alive.
            block ??= Buffer.allocUnsafe(blockEnd - blockStart);
            chunk.copy(block, pos - blockStart, off, off + n);
          }
          pos += n;
          off += n;
          if (pos === blockEnd) {
            if (block && i === lastBlock) held = block;
            else if (block) complete(i, block);
            block = undefined;
          }
        }
      }
    } catch (err) {
      if (FopError.is(err)) throw err;
      throw new Retryable(`body failed: ${String(err)}`, { cause: err });
    } finally {
      this.#streaming.delete(r);
    }
    // A short body is retried for what is missing: a cut connection looks the same.
    if (pos !== end) throw new Retryable(`origin sent ${pos - start} of the ${end - start} bytes asked`);
    if (held) complete(lastBlock, held);
  }

  /** Remembers an advised range of `obj` for {@link #readAhead}; bytes in the tail fetched on open need none. */
  #advise(obj: RemoteObject, advised: Advice[], offset: number, length: number, whole: boolean): void {
    if (this.#readAheadBlocks === 0 || obj.replaced) return;
    const end = Math.min(obj.tailStart, offset + length);
    if (!(offset >= 0 && end > offset)) return;
    const known = advised.findIndex((a) => a.start === offset && a.end === end);
    // Advised again (another reader of the same entry): most recent, and read-ahead goes on where it was.
    const advice =
      known >= 0
        ? advised.splice(known, 1)[0]!
        : { start: offset, end, next: offset, blocks: whole ? this.#readAheadBlocks : this.#readAheadStartBlocks, asked: 0 };
    advised.push(advice);
    if (advised.length > MAX_ADVICE) advised.shift();
  }

  /**
   * Before a read of `[position, end)`: when it falls in an advised range at or behind how far
   * read-ahead has asked, and within half a window of that point, the next window of the range
   * (less its blocks cached or in flight at either end) is fetched with one GET. A read past that
   * point (random access) only moves it to the read's end.
   */
  #readAhead(obj: RemoteObject, path: string, advised: Advice[], position: number, end: number): void {
    if (advised.length === 0 || obj.replaced || position >= obj.tailStart) return;
    let at = -1;
    for (let k = advised.length - 1; k >= 0; k--) {
      const a = advised[k]!;
      if (a.start <= position && position < a.end) {
        at = k;
        break;
      }
    }
    if (at < 0) return;
    const advice = advised[at]!;
    const bs = this.#blockSize;
    if (position > advice.next) {
      advice.next = Math.min(advice.end, end);
      return;
    }
    if (advice.next >= advice.end || end + (advice.asked * bs) / 2 <= advice.next) return;
    let from = Math.floor(advice.next / bs);
    let to = Math.min(Math.floor((Math.min(advice.end, obj.tailStart) - 1) / bs) + 1, from + advice.blocks);
    advice.asked = advice.blocks;
    advice.blocks = Math.min(this.#readAheadBlocks, advice.blocks * 2);
    advice.next = Math.min(advice.end, to * bs);
    if (advice.next >= advice.end) advised.splice(at, 1);
    const present = (i: number): boolean => this.#blocks.has(`${obj.identity}\0${i}`) || this.#inflight.has(`${obj.identity}\0${i}`);
    while (from < to && present(from)) from++;
    while (to > from && present(to - 1)) to--;
    if (from < to) this.#fetchSpan(obj, path, from, to);
  }

  /** Reads exactly `length` bytes of `r`'s body into a buffer of that size; more or fewer fail. */
  async #readBody(r: Reply, length: number, path: string, op: string): Promise<Buffer> {
    const out = Buffer.allocUnsafe(length);
    let got = 0;
    try {
      for await (const chunk of r.body as AsyncIterable<Buffer>) {
        if (got + chunk.length > length) {
          discard(r);
          throw new FopError('IO', op, path, `origin sent more than the ${length} bytes asked`);
        }
        chunk.copy(out, got);
        got += chunk.length;
      }
    } catch (err) {
      if (FopError.is(err)) throw err;
      throw new Retryable(`body failed: ${String(err)}`, { cause: err });
    }
    // A short body is retried: a cut connection looks the same.
    if (got !== length) throw new Retryable(`origin sent ${got} of the ${length} bytes asked`);
    this.#bytesFetched += length;
    return out;
  }

  async #send(url: string, method: 'GET' | 'HEAD', headers: Record<string, string>, path: string, op: string): Promise<Reply> {
    return this.#retrying(path, op, async () => {
      const r = await this.#request(url, method, headers);
      if (r.status >= 500) {
        await r.body.dump();
        throw new Retryable(`origin answered ${r.status}`);
      }
      return r;
    });
  }

  async #request(url: string, method: 'GET' | 'HEAD', headers: Record<string, string>): Promise<Reply> {
    this.#requests++;
    const path = `${url}${this.#query}`;
    let sent = headers;
    if (this.#sign) {
      // Signed per attempt: a retry gets a fresh date. A signer's failure is not retried, and its
      // message is not passed on (it could name a credential).
      try {
        const signed = await this.#sign({ method, host: this.#base.host, path, headers });
        sent = Object.fromEntries(Object.entries(signed).filter(([name]) => name.toLowerCase() !== 'host'));
      } catch {
        throw new FopError('IO', 'request', url, 'signing the request failed');
      }
    }
    try {
      const r = await this.#pool.request({ path, method, headers: sent, headersTimeout: this.#timeoutMs, bodyTimeout: this.#timeoutMs });
      return { status: r.statusCode, headers: r.headers, body: r.body };
    } catch (err) {
      throw new Retryable(`request failed: ${String(err)}`, { cause: err });
    }
  }

  async #retrying<T>(path: string, op: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (!(err instanceof Retryable)) throw err;
        if (attempt >= this.#retries) throw new FopError('IO', op, path, err.message, { cause: err });
        await new Promise((resolve) => setTimeout(resolve, 50 * 2 ** attempt));
      }
    }
  }
}

/** A handle on one pinned version of a remote object. */
interface PinnedOps {
  readAt(buf: Uint8Array, position: number): Promise<number>;
  viewAt(position: number, maxLength: number): Promise<Buffer>;
  changed(): Promise<boolean>;
  advise(offset: number, length: number, whole: boolean): void;
}

class HttpRangeHandle extends FopHandle {
  readonly #ops: PinnedOps;
  readonly identity: string;

  constructor(owner: HttpRangeFops, path: string, obj: RemoteObject, flags: number, ops: PinnedOps) {
    super(owner, path, { length: obj.size, flags, ...(obj.modTime === undefined ? {} : { modTime: obj.modTime }) });
    this.#ops = ops;
    this.identity = obj.identity;
  }

  protected readImpl(buf: Uint8Array): Promise<number> {
    return this.#ops.readAt(buf, this.pos);
  }

  readAt(buf: Uint8Array, position: number): Promise<number> {
    if (this.closed) return Promise.reject(new FopError('CLOSED', 'read', this.path));
    if (!Number.isSafeInteger(position) || position < 0)
      return Promise.reject(new FopError('INVALID_ARGUMENT', 'read', this.path, `invalid position ${String(position)}`));
    return this.#ops.readAt(buf, position);
  }

  /** Bytes at `position` as a view of the block cache (see `FopFd.viewAt`): no copy. */
  viewAt(position: number, maxLength: number): Promise<Buffer> {
    if (this.closed) return Promise.reject(new FopError('CLOSED', 'read', this.path));
    if (!Number.isSafeInteger(position) || position < 0 || !Number.isSafeInteger(maxLength) || maxLength < 0)
      return Promise.reject(new FopError('INVALID_ARGUMENT', 'read', this.path, `invalid position ${String(position)} or length ${String(maxLength)}`));
    return this.#ops.viewAt(position, maxLength);
  }

  changed(): Promise<boolean> {
    return this.#ops.changed();
  }

  /** Read-ahead advice (see the module comment); ignored once closed. */
  advise(offset: number, length: number, whole = false): void {
    if (!this.closed) this.#ops.advise(offset, length, whole);
  }
}
