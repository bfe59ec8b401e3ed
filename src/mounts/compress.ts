/**
 * Compression on the fly: which responses are compressed, in which coding and
 * at which level, and the bounded cache of compressed representations, keyed
 * by the snapshot they were made from (the open handle's identity).
 *
 * The engine hands this module the whole bytes of one snapshot (read from one
 * handle and checked unchanged); it never reads a file itself. The same
 * identity, coding and level always give the same bytes (one-shot zlib call on
 * the whole input, fixed parameters), so a representation evicted and made
 * again is byte-for-byte the one its ETag already named.
 */
import compressible from 'compressible';
import zlib from 'node:zlib';
import { makeEtag } from '../cache/http.js';
import { LruCache } from '../cache/lru.js';
import { FopError } from '../fops/errors.js';
import { fopChanged, readAll } from '../fops/helpers.js';
import type { FopFd } from '../fops/types.js';

/** A content-coding made on the fly. */
export type Coding = 'br' | 'zstd' | 'gzip';

/** Engine-wide tunables of compression on the fly (mounts switch it on with `compress`). */
export interface CompressionOptions {
  /** Smallest representation compressed, in bytes (default 1024: below that headers dominate and a coded body may even be larger). */
  readonly minSize?: number;
  /**
   * Largest representation compressed, in bytes (default 8 MiB); larger ones
   * are sent identity. Each compression reads the whole file into memory and
   * compresses it before the first byte goes out (br at 8 MiB: about 140 ms).
   */
  readonly maxSize?: number;
  /** Bytes of compressed representations kept, least recently used first out (default 32 MiB; 0 keeps none). */
  readonly cacheBytes?: number;
}

type OneShot = (data: Buffer, options: object, callback: (err: Error | null, out: Buffer) => void) => void;

// zstd landed in zlib in Node 22.15 / 23.8; @types/node 20 does not know it, hence the structural lookup.
const zstdCompress = (zlib as unknown as { readonly zstdCompress?: OneShot }).zstdCompress;
const ZSTD_LEVEL = (zlib.constants as unknown as Readonly<Record<string, number | undefined>>).ZSTD_c_compressionLevel;

/** Whether this Node can make zstd (feature-detected, never assumed from the version). */
export const HAS_ZSTD = typeof zstdCompress === 'function' && ZSTD_LEVEL !== undefined;

/**
 * The codings made on the fly, in server preference order for equal q-values:
 * br first (smallest output at a cost close to gzip's: see BENCHMARKS.md), zstd
 * next (close to br in size, the fastest to decode), gzip last (understood by
 * every client, so it is the fallback rather than the choice).
 */
export const CODINGS: readonly Coding[] = HAS_ZSTD ? ['br', 'zstd', 'gzip'] : ['br', 'gzip'];

/**
 * Levels, chosen for on-the-fly cost on a 100 KiB JS bundle (BENCHMARKS.md §7):
 * br quality 5 is 17.1% of the input in 1.4 ms, smaller than gzip 9 and three
 * times faster than gzip 6; quality 11 saves 9% more but takes 100 times as
 * long (137 ms for 100 KiB, 25 s for 8 MiB), which the first client would wait
 * for. gzip 6 is zlib's default (9 gains nothing on JS for twice the time);
 * zstd 3 is zstd's default. Cached results use the same levels: a cached and an
 * uncached response must carry the same bytes for the same ETag.
 */
export const LEVELS: Readonly<Record<Coding, number>> = Object.freeze({ br: 5, zstd: 3, gzip: 6 });

// The library version is part of a coded ETag: a new zlib or brotli may code the same input differently.
const versions = process.versions as Readonly<Record<string, string | undefined>>;
const LIBRARY: Readonly<Record<Coding, string>> = {
  br: `brotli-${versions.brotli ?? ''}`,
  zstd: `zstd-${versions.zstd ?? ''}`,
  gzip: `zlib-${versions.zlib ?? ''}`,
};

/**
 * Whether a Content-Type is worth compressing: mime-db's `compressible` flag
 * (through the `compressible` package: text/*, JSON, JS, SVG, XML, wasm, ttf…),
 * and for types it does not know, text/* and +json/+xml/+text. Unknown and
 * absent types, and application/octet-stream, are not compressed.
 */
export function isCompressibleType(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  // mime-db flags octet-stream compressible, but it is what unknown binaries (often already compressed) are served as.
  if (/^\s*application\/octet-stream\s*(;|$)/i.test(contentType)) return false;
  return compressible(contentType) === true;
}

/** Compresses `data` in `coding` at its level (asynchronously, on the libuv thread pool). */
export function compress(coding: Coding, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, out: Buffer): void => (err ? reject(err) : resolve(out));
    switch (coding) {
      case 'br':
        // The size hint lets brotli size its window to the input; it is the input's length, so fixed per snapshot.
        zlib.brotliCompress(data, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: LEVELS.br, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: data.length } }, done);
        return;
      case 'gzip':
        zlib.gzip(data, { level: LEVELS.gzip }, done);
        return;
      case 'zstd':
        if (!HAS_ZSTD) throw new TypeError('zstd is not available in this Node');
        zstdCompress!(data, { params: { [ZSTD_LEVEL!]: LEVELS.zstd } }, done);
        return;
    }
  });
}

/**
 * Reads the whole of a snapshot's handle, twice, and closes it: the bytes when
 * both reads are `length` bytes, equal, and the handle says its file did not
 * change (as the small-content cache does: the kernel stamps a write before it
 * copies the bytes, so one read can see a write half applied); undefined when
 * the file changed, so the caller opens it again.
 */
export async function readUnchanged(fd: FopFd, length: number): Promise<Buffer | undefined> {
  try {
    const data = await readAll(fd, length);
    if (data.length !== length || (await fopChanged(fd))) return undefined;
    fd.seekCur(-fd.pos);
    const again = await readAll(fd, length);
    return again.equals(data) && !(await fopChanged(fd)) ? data : undefined;
  } catch (err) {
    // More bytes than the snapshot had: the file grew while it was read.
    if (err instanceof FopError && err.code === 'LIMIT_EXCEEDED') return undefined;
    throw err;
  } finally {
    await fd.close();
  }
}

/**
 * Compression on the fly for one engine: the size window, the ETags of coded
 * representations, and a cache of coded bytes bounded in bytes, keyed by
 * snapshot identity, coding and level.
 */
export class Compressor {
  readonly minSize: number;
  readonly maxSize: number;
  readonly #cache: LruCache<string, Buffer> | undefined;
  // Compressions under way, so that concurrent first requests for one snapshot compress it once.
  readonly #pending = new Map<string, Promise<Buffer>>();

  constructor(options: CompressionOptions = {}) {
    this.minSize = options.minSize ?? 1024;
    this.maxSize = options.maxSize ?? 8 * 1024 * 1024;
    const bytes = options.cacheBytes ?? 32 * 1024 * 1024;
    if (!(this.minSize >= 0) || !(this.maxSize >= this.minSize) || !(bytes >= 0)) {
      throw new TypeError('compression: need 0 <= minSize <= maxSize and cacheBytes >= 0');
    }
    this.#cache = bytes > 0 ? new LruCache<string, Buffer>({ maxEntries: 100_000, maxWeight: bytes, weigh: (b) => b.length + 128 }) : undefined;
  }

  /** Whether a representation of `length` bytes is compressed (`minSize <= length <= maxSize`). */
  sizeAllowed(length: number): boolean {
    return length >= this.minSize && length <= this.maxSize;
  }

  /**
   * The strong ETag of the `coding` representation of the snapshot `identity`
   * (`length` bytes identity): derived from the identity, the coding, its level
   * and the library version, never equal to the identity's ETag or another
   * coding's (RFC 9110 §8.8.3.3), and known before anything is compressed.
   */
  etag(identity: string, length: number, coding: Coding): string {
    return makeEtag({ size: length, version: `${identity}\0${coding}\0${LEVELS[coding]}\0${LIBRARY[coding]}`, encoding: coding });
  }

  /** The cached coded bytes of the snapshot `identity`, if any (made recent). */
  cached(identity: string, coding: Coding): Buffer | undefined {
    return this.#cache?.get(key(identity, coding));
  }

  /**
   * The `coding` form of `data`, the whole bytes of the snapshot `identity`:
   * from the cache, else compressed (once for concurrent callers) and cached.
   * The caller guarantees that `data` is that snapshot's bytes, read unchanged.
   */
  encode(identity: string, coding: Coding, data: Buffer): Promise<Buffer> {
    const k = key(identity, coding);
    const hit = this.#cache?.get(k);
    if (hit !== undefined) return Promise.resolve(hit);
    let pending = this.#pending.get(k);
    if (pending === undefined) {
      pending = compress(coding, data).then(
        (out) => {
          this.#pending.delete(k);
          this.#cache?.set(k, out);
          return out;
        },
        (err: unknown) => {
          this.#pending.delete(k);
          throw err;
        },
      );
      this.#pending.set(k, pending);
    }
    return pending;
  }
}

function key(identity: string, coding: Coding): string {
  return `${coding}\0${LEVELS[coding]}\0${identity}`;
}
