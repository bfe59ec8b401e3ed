/**
 * Bounds applied to every archive, and to every archive inside one. `maxEntries`
 * rejects the whole archive at index time; a name over `maxNameLength` hides that
 * entry only, like any unsafe name; size limits reject only the entry, when it is
 * opened; `maxDepth` refuses only the paths that would enter an archive too deep.
 */
export interface ZipLimits {
  /** Most records a central directory may hold (default 1,048,576). */
  readonly maxEntries: number;
  /** Longest entry name, in UTF-16 code units after decoding (default 1,024); a longer one hides its entry. */
  readonly maxNameLength: number;
  /** Largest uncompressed size of a deflated entry that will be inflated or passed through (default 4 GiB). */
  readonly maxUncompressedSize: number;
  /** Largest uncompressed/compressed ratio of a deflated entry (default 1,000; deflate's ceiling is about 1,032). */
  readonly maxRatio: number;
  /**
   * The ratio limit applies only to entries larger than this many bytes (default 64 MiB). Inflating
   * is streamed in bounded memory, so the ratio guards only against CPU spent per compressed byte on
   * large entries; below this, ordinary highly compressible files (2 MiB of zeros is about 1,030:1
   * at zlib's default level) are served.
   */
  readonly ratioMinSize: number;
  /**
   * How many archives a path may pass through inside the outermost one (default 2:
   * `/a.zip/b.zip/c.zip/f` is the deepest); 0 serves no archive inside an archive. A path that
   * would enter one more is refused with `LIMIT_EXCEEDED` (the archive itself is still an entry).
   */
  readonly maxDepth: number;
}

export const DEFAULT_ZIP_LIMITS: ZipLimits = Object.freeze({
  maxEntries: 1 << 20,
  maxNameLength: 1024,
  maxUncompressedSize: 4 * 1024 ** 3,
  maxRatio: 1000,
  ratioMinSize: 64 * 1024 * 1024,
  maxDepth: 2,
});

/** Fills in defaults and rejects nonsense (NaN, negatives, non-numbers) with a TypeError naming the field. */
export function resolveLimits(limits: Partial<ZipLimits> = {}): ZipLimits {
  const out = { ...DEFAULT_ZIP_LIMITS, ...limits };
  for (const [key, value] of Object.entries(out)) {
    // Infinity is allowed and means "no limit".
    if (typeof value !== 'number' || !(value >= 0)) {
      throw new TypeError(`zip limits: ${key} must be a non-negative number (or Infinity), got ${String(value)}`);
    }
  }
  return Object.freeze(out);
}
