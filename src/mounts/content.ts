/**
 * serveContent: a snapshot of one representation in, the response out.
 * Preconditions, then Range, then the body (RFC 9110 §13.2.2 and §14), as in
 * Go's net/http serveContent.
 */
import type { Readable } from 'node:stream';
import { evaluatePreconditions, httpDate, ifRangeAllows, multipartByteranges, parseRange } from '../cache/http.js';
import type { CgiSettings } from '../cgi/settings.js';
import type { FopFd } from '../fops/types.js';
import type { ProxySettings } from '../proxy/origin.js';
import { bufferBody, HandleBody, multipartPieces, type BodyPiece } from './body.js';

/** The request as the core sees it: no framework types. Header names are lower-case. */
export interface CoreRequest {
  readonly method: string;
  /** The raw request target (`req.url`): path and query, not decoded. */
  readonly url: string;
  header(name: string): string | undefined;
  /** The request asks to switch protocols (a WebSocket upgrade): mounts with `noWsUpgrades` are skipped. */
  readonly upgrade?: boolean;
}

/** A `callback://` mount was matched: the adapter hands the request to the handler registered under `name`. */
export interface CallbackTarget {
  readonly name: string;
  /** The URI after the mountpoint, decoded and canonical: `''`, `'/'` or `'/a/b'` (no query). */
  readonly remainder: string;
  readonly mountpoint: string;
  readonly pmo: Readonly<Record<string, string>>;
  /** The user who passed the mount's basic authentication (lws hands callbacks the user name too). */
  readonly user?: string;
}

/** A proxy mount was matched: the adapter forwards the request to `settings.origin` at `path`. */
export interface ProxyTarget {
  readonly settings: ProxySettings;
  /** The upstream request target: the origin's path, the canonical remainder, the client's query. */
  readonly path: string;
  readonly mountpoint: string;
}

/** A CGI mount was matched: the adapter runs `settings.program` for the request. */
export interface CgiTarget {
  readonly settings: CgiSettings;
  readonly mountpoint: string;
  /** PATH_INFO: the URI after the mountpoint, decoded and canonical (`''`, `'/'`, `'/a/b'`). */
  readonly pathInfo: string;
  /** QUERY_STRING: the query without its `?`, undecoded. */
  readonly query: string;
  /** REMOTE_USER: the user who passed the mount's basic authentication. */
  readonly user?: string;
}

/** What to send. `body` is null for HEAD and bodiless statuses; a stream is consumed once and owns its file handle. */
export interface CoreResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer | Readable | null;
  /** Set when a callback mount matched; `headers` then holds only the configured headers to set first. */
  readonly callback?: CallbackTarget;
  /** Set when a proxy mount matched; `headers` then holds only the configured headers for the relayed response. */
  readonly proxy?: ProxyTarget;
  /** Set when a CGI mount matched; `headers` then holds only the configured headers for the program's response. */
  readonly cgi?: CgiTarget;
  /** The response is a 404 for a path no mount (or no file) answers: Connect adapters may call `next()` instead. */
  readonly notFound?: boolean;
  /**
   * The mount declined a request it is not for: a method other than GET and HEAD (405), or a type its
   * whitelist refuses (403). Connect adapters with `fallthrough` may call `next()` instead, as for `notFound`.
   */
  readonly declined?: boolean;
  /** The error behind a 5xx, or a note for the operator (a whitelist refusal), for the adapter to log (never sent). */
  readonly error?: unknown;
  /** How a file's body was produced, for request logs; absent for pages, redirects and callbacks. */
  readonly source?: BodySource;
  /** The request passed the mount's basic authentication (set on every response it gets then). */
  readonly auth?: AuthenticatedUser;
}

/**
 * Who passed a mount's basic authentication. Origins take it: a proxy mount strips the client's
 * Authorization (it was for vfserve), CGI programs get AUTH_TYPE and REMOTE_USER (RFC 3875 §4.1.1,
 * §4.1.11), and relayed responses are kept out of shared caches unless `sharedCache`. Never the password.
 */
export interface AuthenticatedUser {
  /** The user name the request logged in with. */
  readonly user: string;
  /** The mount has `cache-intermediaries`: shared caches may store its responses. */
  readonly sharedCache: boolean;
}

/**
 * How a file response's body is produced: `read` as it is (a disk file, a stored entry),
 * `inflated` from a deflated archive entry, `passthrough` a deflated entry sent as gzip byte for
 * byte, `precompressed` a `.br`/`.gz` sibling, `compressed` on the fly, `cached` from the
 * engine's small-content memory (no file opened).
 */
export type BodySource = 'read' | 'inflated' | 'passthrough' | 'precompressed' | 'compressed' | 'cached';

/** What a representation is, whatever version of its bytes is read: fixed per resolution. */
export interface Representation {
  /** The fops path opened for it. */
  readonly path: string;
  /** Open flags (`COMPR_ACCEPTABLE_GZIP` for an archive entry's gzip form). */
  readonly flags: number;
  /** The content-coding asked for (`gzip`, `br`), undefined for identity. */
  readonly encoding: string | undefined;
  readonly contentType: string | undefined;
  /** The resource has more than one coding (RFC 9110 §12.5.5). */
  readonly vary: boolean;
  readonly cacheControl: string;
  /** Vhost and mount headers, lower-case; they replace anything but the framing headers. */
  readonly configured: readonly (readonly [string, string])[];
  /** Key of its snapshot in the small-content cache: mount, path and coding. */
  readonly key: string;
  /** How its bytes are produced when read from the file (see {@link BodySource}). */
  readonly source: BodySource;
}

/**
 * One version of a representation: its length and validators, all read from
 * one open handle, and the frozen headers of a whole 200 built from them.
 */
export interface Snapshot {
  readonly length: number;
  readonly etag: string | undefined;
  readonly lastModified: number | undefined;
  /** The coding the bytes are in (an entry asked for as gzip may turn out to have no gzip form). */
  readonly encoding: string | undefined;
  readonly contentType: string | undefined;
  /** The handle's identity, when the backend has one (see `FopFd.identity`). */
  readonly identity: string | undefined;
  /** The fops path read, for errors in the log (never sent). */
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
}

/** A snapshot with its bytes: in memory, or an open handle the response takes over. */
export type SnapshotContent = { readonly snapshot: Snapshot; readonly data: Buffer } | { readonly snapshot: Snapshot; readonly fd: FopFd };

// Headers that frame the body: configured headers never replace them.
export const FRAMING: ReadonlySet<string> = new Set(['content-length', 'content-range', 'content-encoding', 'transfer-encoding']);

/** A snapshot of `rep` whose bytes have these length and validators. */
export function makeSnapshot(
  rep: Representation,
  v: { length: number; etag: string | undefined; lastModified: number | undefined; encoding: string | undefined; identity: string | undefined },
): Snapshot {
  const h: Record<string, string> = {};
  if (rep.contentType !== undefined) h['content-type'] = rep.contentType;
  if (v.encoding !== undefined) h['content-encoding'] = v.encoding;
  if (rep.vary) h.vary = 'Accept-Encoding';
  if (v.etag !== undefined) h.etag = v.etag;
  if (v.lastModified !== undefined) h['last-modified'] = httpDate(v.lastModified);
  h['cache-control'] = rep.cacheControl;
  h['accept-ranges'] = 'bytes';
  h['content-length'] = String(v.length);
  for (const [name, value] of rep.configured) {
    if (FRAMING.has(name)) continue;
    // A configured Vary adds to ours: dropping Accept-Encoding would let caches hand gzip to anyone.
    if (name === 'vary' && rep.vary && value.trim() !== '*' && !/(^|,)\s*accept-encoding\s*(,|$)/i.test(value)) h.vary = `Accept-Encoding, ${value}`;
    else h[name] = value;
  }
  return { ...v, contentType: rep.contentType, path: rep.path, headers: Object.freeze(h) };
}

/** A status page the engine builds (412, 416), given by the caller so this file knows no page layout. */
export type PageFn = (status: number) => CoreResponse;

/**
 * Serves one snapshot: preconditions (RFC 9110 §13.2.2), then Range and
 * If-Range (§14), then the body. Takes over `content`'s handle: it is closed
 * here when no body needs it, otherwise by the body stream. Synchronous, so
 * a snapshot in memory is served without a microtask.
 */
export function serveContent(req: CoreRequest, content: SnapshotContent, page: PageFn, maxRanges: number, source?: BodySource): CoreResponse {
  const snap = content.snapshot;
  const release = (out: CoreResponse): CoreResponse => {
    // A read-only handle has nothing to flush: a failed close changes nothing for this response.
    if ('fd' in content) content.fd.close().catch(() => undefined);
    return out;
  };
  const ifMatch = req.header('if-match');
  const ifNoneMatch = req.header('if-none-match');
  const ifModifiedSince = req.header('if-modified-since');
  const ifUnmodifiedSince = req.header('if-unmodified-since');
  const conditional = ifMatch !== undefined || ifNoneMatch !== undefined || ifModifiedSince !== undefined || ifUnmodifiedSince !== undefined;
  const verdict = conditional
    ? evaluatePreconditions(
        {
          method: req.method,
          ...opt('ifMatch', ifMatch),
          ...opt('ifNoneMatch', ifNoneMatch),
          ...opt('ifModifiedSince', ifModifiedSince),
          ...opt('ifUnmodifiedSince', ifUnmodifiedSince),
        },
        snap,
      )
    : 'proceed';
  if (verdict === 'not-modified') {
    // §15.4.5: the validators and caching headers; no content headers, no body.
    const headers = { ...snap.headers };
    delete headers['content-type'];
    delete headers['content-encoding'];
    delete headers['content-length'];
    return release({ status: 304, headers, body: null });
  }
  if (verdict === 'precondition-failed') return release(page(412));

  const length = snap.length;
  const rangeHeader = req.header('range');
  const range =
    rangeHeader === undefined || !ifRangeAllows(req.header('if-range'), snap) ? { type: 'none' as const } : parseRange(rangeHeader, length, { maxRanges });
  if (range.type === 'unsatisfiable') {
    const p = page(416);
    return release({ ...p, headers: { ...p.headers, 'content-range': `bytes */${length}`, 'accept-ranges': 'bytes' } });
  }
  let status = 200;
  let headers = snap.headers;
  let pieces: BodyPiece[];
  if (range.type === 'ranges' && range.ranges.length === 1) {
    const r = range.ranges[0]!;
    status = 206;
    headers = { ...headers, 'content-range': `bytes ${r.start}-${r.end}/${length}`, 'content-length': String(r.end - r.start + 1) };
    pieces = [r];
  } else if (range.type === 'ranges') {
    const plan = multipartByteranges(range.ranges, length, snap.contentType);
    status = 206;
    headers = { ...headers, 'content-type': plan.contentType, 'content-length': String(plan.length) };
    pieces = multipartPieces(plan.parts, plan.tail);
  } else {
    pieces = length === 0 ? [] : [{ start: 0, end: length - 1 }];
  }
  if (req.method === 'HEAD') return release({ status, headers, body: null });
  // `source` goes into the one literal: a second object per response (a spread) costs on the hot path.
  if (pieces.length === 0)
    return release(source === undefined ? { status, headers, body: Buffer.alloc(0) } : { status, headers, body: Buffer.alloc(0), source });
  const body = 'data' in content ? bufferBody(content.data, pieces) : new HandleBody(content.fd, pieces, snap.path);
  return source === undefined ? { status, headers, body } : { status, headers, body, source };
}

function opt<K extends string>(key: K, value: string | undefined): { [P in K]?: string } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: string };
}
