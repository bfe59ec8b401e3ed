import { FopError } from './errors.js';

/**
 * Reports whether `path` is a canonical fops path: absolute (`/` first),
 * slash-separated, with no empty, `.` or `..` segment, no trailing slash
 * (except the root `/` itself), no backslash and no NUL. Every backend accepts
 * exactly this form and rejects every other with `INVALID_PATH`, so a path is
 * canonicalised once, by the caller, and never re-interpreted below.
 */
export function validFopPath(path: string): boolean {
  if (typeof path !== 'string' || path.length === 0 || path.charCodeAt(0) !== 0x2f) return false;
  if (path === '/') return true;
  if (path.includes('\0') || path.includes('\\')) return false;
  let start = 1;
  for (;;) {
    const end = path.indexOf('/', start);
    const seg = end === -1 ? path.slice(start) : path.slice(start, end);
    if (seg === '' || seg === '.' || seg === '..') return false;
    if (end === -1) return true;
    start = end + 1;
  }
}

/** Throws `INVALID_PATH` unless `path` satisfies {@link validFopPath}. */
export function assertFopPath(path: string, op: string): void {
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-conversion -- JavaScript callers may pass a non-string; the error's path is always a string
  if (!validFopPath(path)) throw new FopError('INVALID_PATH', op, String(path));
}

/** The parent of a canonical path (`/a/b` gives `/a`; `/a` gives `/`). */
export function parentPath(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

function asciiLower(c: number): number {
  return c >= 0x41 && c <= 0x5a ? c | 0x20 : c;
}

/**
 * The positions of every `/` in a canonical path that ends a segment matching
 * one of `signatures` (lower-case, each ending in `/`, such as `.zip/`),
 * compared ASCII-case-insensitively, left to right. For `/a.zip/b.ZIP/c` and
 * `.zip/` that is `[6, 12]`: each a candidate container boundary.
 */
export function signatureSplits(path: string, signatures: readonly string[]): number[] {
  const out: number[] = [];
  for (let slash = path.indexOf('/', 1); slash !== -1; slash = path.indexOf('/', slash + 1)) {
    for (const sig of signatures) {
      const start = slash + 1 - sig.length;
      if (start < 1) continue;
      let match = true;
      for (let k = 0; k < sig.length - 1 && match; k++) match = asciiLower(path.charCodeAt(start + k)) === sig.charCodeAt(k);
      if (match) {
        out.push(slash);
        break;
      }
    }
  }
  return out;
}
