/**
 * The closed set of failure codes every backend reports. Callers branch on
 * `code`, never on `message`; the HTTP layer maps codes to statuses in one place.
 *
 * - `NOT_FOUND`: nothing exists at the path (or the path leaves its namespace).
 * - `NOT_A_FILE`: the path names a directory or a special file.
 * - `FORBIDDEN`: the backend refuses access (permissions).
 * - `INVALID_PATH`: the path is not in canonical form (see {@link validFopPath}).
 * - `INVALID_ARGUMENT`: another argument is out of its domain (a non-integer offset).
 * - `CORRUPT_ARCHIVE`: an archive, or an entry's data, is malformed or lies.
 * - `UNSUPPORTED_ENTRY`: an entry exists but cannot be served (method, encryption, symlink).
 * - `UNSUPPORTED_ARCHIVE`: an archive uses a feature not supported at all (split archives).
 * - `LIMIT_EXCEEDED`: a configured limit (entries, sizes, ratio) was hit.
 * - `READ_ONLY`: a write was attempted on a backend or handle that cannot write.
 * - `CLOSED`: the handle was used after `close()`.
 * - `IO`: the underlying storage failed.
 */
export type FopErrorCode =
  | 'NOT_FOUND'
  | 'NOT_A_FILE'
  | 'FORBIDDEN'
  | 'INVALID_PATH'
  | 'INVALID_ARGUMENT'
  | 'CORRUPT_ARCHIVE'
  | 'UNSUPPORTED_ENTRY'
  | 'UNSUPPORTED_ARCHIVE'
  | 'LIMIT_EXCEEDED'
  | 'READ_ONLY'
  | 'CLOSED'
  | 'IO';

export const FOP_ERROR_CODES: readonly FopErrorCode[] = Object.freeze([
  'NOT_FOUND',
  'NOT_A_FILE',
  'FORBIDDEN',
  'INVALID_PATH',
  'INVALID_ARGUMENT',
  'CORRUPT_ARCHIVE',
  'UNSUPPORTED_ENTRY',
  'UNSUPPORTED_ARCHIVE',
  'LIMIT_EXCEEDED',
  'READ_ONLY',
  'CLOSED',
  'IO',
]);

const brand = Symbol.for('vfserve.FopError');

/**
 * The one error type of the fops layer: an operation (`op`), the path it was
 * given, a code from the closed set and, where there was one, the underlying
 * cause. Messages are for operators and logs; they contain the backend's path
 * and must never be sent to HTTP clients.
 */
export class FopError extends Error {
  readonly code: FopErrorCode;
  readonly op: string;
  readonly path: string;

  constructor(code: FopErrorCode, op: string, path: string, detail?: string, options?: { cause?: unknown }) {
    super(`${op} ${JSON.stringify(path)}: ${detail ?? describe(code)}`, options);
    this.name = 'FopError';
    this.code = code;
    this.op = op;
    this.path = path;
  }

  /** Reports whether `err` is a FopError (from any copy of this package), optionally with `code`. */
  static is(err: unknown, code?: FopErrorCode): err is FopError {
    return (
      typeof err === 'object' && err !== null && (err as Record<symbol, unknown>)[brand] === true && (code === undefined || (err as FopError).code === code)
    );
  }
}
Object.defineProperty(FopError.prototype, brand, { value: true });

function describe(code: FopErrorCode): string {
  switch (code) {
    case 'NOT_FOUND':
      return 'no such file';
    case 'NOT_A_FILE':
      return 'not a regular file';
    case 'FORBIDDEN':
      return 'access denied';
    case 'INVALID_PATH':
      return 'path is not in canonical form';
    case 'INVALID_ARGUMENT':
      return 'invalid argument';
    case 'CORRUPT_ARCHIVE':
      return 'corrupt archive';
    case 'UNSUPPORTED_ENTRY':
      return 'entry cannot be served';
    case 'UNSUPPORTED_ARCHIVE':
      return 'archive format not supported';
    case 'LIMIT_EXCEEDED':
      return 'limit exceeded';
    case 'READ_ONLY':
      return 'read-only';
    case 'CLOSED':
      return 'handle is closed';
    case 'IO':
      return 'I/O error';
  }
}

/** Maps a Node system error from `node:fs` onto the closed code set. */
export function fromSystemError(err: unknown, op: string, path: string): FopError {
  if (FopError.is(err)) return err;
  const errno = (err as NodeJS.ErrnoException | null)?.code;
  switch (errno) {
    case 'ENOENT':
    case 'ENOTDIR':
    case 'ELOOP': // a symlink loop names nothing servable
    case 'ENAMETOOLONG':
      return new FopError('NOT_FOUND', op, path, undefined, { cause: err });
    case 'EACCES':
    case 'EPERM':
      return new FopError('FORBIDDEN', op, path, undefined, { cause: err });
    case 'EISDIR':
      return new FopError('NOT_A_FILE', op, path, 'is a directory', { cause: err });
    case 'EROFS':
    case 'EBADF':
      return new FopError('READ_ONLY', op, path, undefined, { cause: err });
    default:
      return new FopError('IO', op, path, errno ? `I/O error (${errno})` : undefined, { cause: err });
  }
}
