/**
 * Open flags, with libwebsockets' bit values so they combine with ordinary
 * `node:fs` open flags, which live below bit 23.
 *
 * Input to `open`: the low bits (`MASK`) and `COMPR_ACCEPTABLE_GZIP`.
 * Output on the handle's `flags`: the input, plus `COMPR_IS_GZIP`,
 * `MOD_TIME_VALID` and `VIRTUAL` as they apply.
 */
export const FopFlags = Object.freeze({
  /** The bits passed straight through as platform open flags (`O_RDONLY`, `O_RDWR`, ...). */
  MASK: (1 << 23) - 1,
  /** Input: the client accepts `Content-Encoding: gzip`, so a backend may return gzip bytes. */
  COMPR_ACCEPTABLE_GZIP: 1 << 24,
  /** Output: the handle's bytes are one gzip member; `length` counts the gzip bytes. */
  COMPR_IS_GZIP: 1 << 25,
  /** Output: the handle's `modTime` is valid. */
  MOD_TIME_VALID: 1 << 26,
  /** Output: not a platform file; the caller must not stat it on disk. */
  VIRTUAL: 1 << 27,
});

/** Reports whether every bit of `flag` is set in `flags`. */
export function hasFlag(flags: number, flag: number): boolean {
  return (flags & flag) === flag;
}
