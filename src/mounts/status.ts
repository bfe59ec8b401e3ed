import { FopError } from '../fops/errors.js';

/**
 * The one place errors become statuses. Nothing about the error (paths,
 * messages) reaches the client; the caller logs it.
 * - not found, a directory or an invalid path below the mount: 404;
 * - refused access, an entry that cannot be served (encrypted, unsupported
 *   method, a link opened directly) or over a per-entry limit (a zip bomb):
 *   403 (the engine stats first, and answers a link entry, not a file, 404);
 * - a refused archive (corrupt, unsupported, or over a limit for the whole
 *   archive, such as its entry count), an I/O
 *   error, anything else: 500.
 */
export function statusForError(err: unknown): 404 | 403 | 500 {
  if (!FopError.is(err)) return 500;
  switch (err.code) {
    case 'NOT_FOUND':
    case 'NOT_A_FILE':
    case 'INVALID_PATH':
      return 404;
    case 'FORBIDDEN':
    case 'UNSUPPORTED_ENTRY':
      return 403;
    case 'LIMIT_EXCEEDED':
      // An entry over a limit is refused like any unservable entry; an archive over one is refused whole.
      return err.op === 'index' ? 500 : 403;
    default:
      return 500;
  }
}

/**
 * Whether `err` refuses an archive, or an entry's data, for what it is rather
 * than for a passing failure: corrupt, unsupported, or over a limit for the
 * whole archive. The archive backend keeps such a failure for the archive's
 * version, so the same error object comes back until the file changes.
 */
export function isArchiveRefusal(err: unknown): boolean {
  if (!FopError.is(err)) return false;
  return err.code === 'CORRUPT_ARCHIVE' || err.code === 'UNSUPPORTED_ARCHIVE' || (err.code === 'LIMIT_EXCEEDED' && err.op === 'index');
}

// The reason phrases of the statuses the core sends (RFC 9110 §15); mounts stay free of node:http.
const PHRASES: Readonly<Record<number, string>> = {
  301: 'Moved Permanently',
  302: 'Found',
  304: 'Not Modified',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  412: 'Precondition Failed',
  413: 'Content Too Large',
  416: 'Range Not Satisfiable',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  508: 'Loop Detected',
};

const ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/**
 * A small HTML status page: the code, its reason phrase and, optionally, a
 * short fixed reason written by the server (never request or error text).
 */
export function statusPage(status: number, reason?: string): { body: Buffer; headers: Record<string, string> } {
  const phrase = PHRASES[status] ?? 'Error';
  const detail = reason ? `<p>${escapeHtml(reason)}</p>` : '';
  return pageWith(status, `<h1>${status} ${phrase}</h1>${detail}`);
}

// lws's words for a proxy origin it cannot reach (lib/core-net/dummy-callback.c), kept verbatim.
const LWS_UNAVAILABLE =
  '<h1>Service Temporarily Unavailable</h1>The server is temporarily unable to service your request due to maintenance downtime or capacity problems. Please try again later.';

/**
 * The 503 page lws sends when a proxy mount's unix socket has no listener: lws's heading and
 * sentence, in {@link statusPage}'s wrapping (lws's own wrapping also loads `/error.css`, which the
 * page's Content-Security-Policy would block anyway).
 */
export function unavailablePage(): { body: Buffer; headers: Record<string, string> } {
  return pageWith(503, LWS_UNAVAILABLE);
}

function pageWith(status: number, html: string): { body: Buffer; headers: Record<string, string> } {
  const body = Buffer.from(`<!doctype html><meta charset=utf-8><title>${status} ${PHRASES[status] ?? 'Error'}</title>${html}\n`);
  return {
    body,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'content-length': String(body.length),
      // send's precautions: never sniff an error page, never run anything in it.
      'x-content-type-options': 'nosniff',
      'content-security-policy': "default-src 'none'",
    },
  };
}
