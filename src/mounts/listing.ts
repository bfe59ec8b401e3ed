/**
 * Directory listings: what a mount with `listing` on answers for a directory
 * that has no default file. This module only renders; the engine decides what
 * is listed (dotfiles, refused types, escaping symlinks and unservable names
 * are hidden before an entry gets here) and reads the directory through the
 * fops layer. Everything shown is a URL path, never a backend path.
 *
 * - HTML by default: directories first, then files, each group in code-unit
 *   order of the name (as `ls` in the C locale: deterministic, whatever the
 *   server's locale); sizes, modification times in UTC, a breadcrumb of the
 *   URL path; an inline stylesheet that follows `prefers-color-scheme`; no script,
 *   and a Content-Security-Policy that allows none.
 * - JSON (`application/json`, when the client's Accept prefers it over
 *   `text/html`): see {@link ListingJson}.
 */
import { createHash } from 'node:crypto';
import type { CoreResponse } from './content.js';
import { FRAMING } from './content.js';

/** One entry of a listing, as the engine hands it over (already filtered). */
export interface ListingEntry {
  /** One URL path segment, decoded. */
  readonly name: string;
  readonly type: 'file' | 'directory';
  /** Bytes, for files, when known. */
  readonly size?: number | undefined;
  /** Milliseconds since the epoch, when known. */
  readonly modTime?: number | undefined;
}

/** What the engine lists: the directory's URL path and its entries, sorted and capped. */
export interface Listing {
  /** The directory's URL path, decoded, ending in `/` (`/site/css/`). */
  readonly path: string;
  /** The mount's own path (`/` or `/site`): the breadcrumb and the parent link stop there. */
  readonly mountpoint: string;
  /** The entries shown: sorted with `compareEntries` (directories first, then names by code unit), at most the mount's `listingMax`. */
  readonly entries: readonly ListingEntry[];
  /** How many entries there were to show before the cap. */
  readonly total: number;
}

/**
 * The JSON form, one object:
 * `{ "path": "/site/css/", "total": 2, "truncated": false, "entries": [{ "name": "app.css", "type": "file",
 * "size": 20000, "mtime": "2024-01-02T03:04:06.000Z", "path": "/site/css/app.css", "href": "/site/css/app.css" }] }`.
 * `path` is decoded, `href` percent-encoded; a directory's `path` and `href` end in `/`; `size` and
 * `mtime` are null when unknown (directories have no size). `total` counts the entries there were to
 * show; `truncated` is true when `entries` holds fewer.
 */
export interface ListingJson {
  readonly path: string;
  readonly total: number;
  readonly truncated: boolean;
  readonly entries: readonly {
    readonly name: string;
    readonly type: 'file' | 'directory';
    readonly size: number | null;
    readonly mtime: string | null;
    readonly path: string;
    readonly href: string;
  }[];
}

/** Directories first, then by name in UTF-16 code-unit order. */
export function compareEntries(a: ListingEntry, b: ListingEntry): number {
  if (a.type !== b.type) return a.type === 'directory' ? -1 : 1;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

const ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text safe in HTML content and quoted attributes; control characters are shown as U+FFFD. */
export function escapeHtml(s: string): string {
  // eslint-disable-next-line no-control-regex -- a name may hold any character but `/` and NUL
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c]!).replace(/[\u0000-\u001f\u007f]/g, '\ufffd');
}

/** One path segment percent-encoded, with the characters encodeURIComponent leaves that are not safe everywhere. */
function encodeSegment(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`);
}

function encodeUrlPath(path: string): string {
  return path.split('/').map(encodeSegment).join('/');
}

/**
 * Whether a request's Accept header prefers `application/json` to `text/html`
 * (RFC 9110 §12.5.1: each type takes the q of the most specific range that
 * matches it). A tie goes to the type named more specifically, then to HTML;
 * an absent or unparseable header is HTML.
 */
export function prefersJson(accept: string | undefined): boolean {
  if (accept === undefined || accept.trim() === '') return false;
  const json = { q: 0, specificity: -1 };
  const html = { q: 0, specificity: -1 };
  for (const part of accept.split(',')) {
    const [range = '', ...params] = part.split(';').map((s) => s.trim().toLowerCase());
    const slash = range.indexOf('/');
    if (slash <= 0) continue;
    const type = range.slice(0, slash);
    const sub = range.slice(slash + 1);
    let q = 1;
    for (const p of params) {
      const m = /^q=([01](?:\.\d{0,3})?)$/.exec(p);
      if (m) q = Math.min(1, Number(m[1]));
    }
    const specificity = type === '*' ? 0 : sub === '*' ? 1 : 2;
    const apply = (target: { q: number; specificity: number }, t: string, s: string): void => {
      const matches = type === '*' || (type === t && (sub === '*' || sub === s));
      if (matches && specificity > target.specificity) {
        target.q = q;
        target.specificity = specificity;
      }
    };
    apply(json, 'application', 'json');
    apply(html, 'text', 'html');
  }
  if (json.q !== html.q) return json.q > html.q;
  return json.q > 0 && json.specificity > html.specificity;
}

/** `1.2 KiB`, `3.4 MiB`: binary prefixes, one decimal below 10. */
function humanSize(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let i = -1;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]!}`;
}

/** `2024-01-02 03:04 UTC`: minutes are enough to read; the exact ISO time is in `datetime`. */
function readableTime(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

const STYLE = [
  ':root{color-scheme:light dark;--fg:#1f2328;--bg:#fff;--muted:#59636e;--line:#d1d9e0;--link:#0969da;--hover:#f6f8fa}',
  '@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--bg:#0d1117;--muted:#9198a1;--line:#3d444d;--link:#4493f8;--hover:#151b23}}',
  'body{margin:2rem auto;max-width:60rem;padding:0 1rem;font:15px/1.5 system-ui,sans-serif;color:var(--fg);background:var(--bg)}',
  'h1{font-size:1.25rem;font-weight:600;word-break:break-all}h1 a{color:var(--link);text-decoration:none}',
  'table{width:100%;border-collapse:collapse}th,td{padding:.35rem .5rem;border-bottom:1px solid var(--line);text-align:left}',
  'th{color:var(--muted);font-weight:500}td.n{word-break:break-all}td.s,td.t,th.s,th.t{white-space:nowrap;color:var(--muted)}td.s,th.s{text-align:right}',
  'tr:hover td{background:var(--hover)}a{color:var(--link)}tr.d a{font-weight:600}p.note{color:var(--muted)}',
].join('');
// The one inline style allowed by the policy, by its hash: no 'unsafe-inline', and nothing else runs.
const STYLE_HASH = createHash('sha256').update(STYLE).digest('base64');
const CSP = `default-src 'none'; style-src 'sha256-${STYLE_HASH}'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;

/** The breadcrumb: each segment of the URL path from the mountpoint down, linking to its directory. */
function breadcrumb(listing: Listing): string {
  const mp = listing.mountpoint === '/' ? '' : listing.mountpoint;
  const rest = listing.path.slice(mp.length).split('/').filter(Boolean);
  const parts: string[] = [];
  let url = `${mp}/`;
  const root = mp === '' ? '/' : `${mp}/`;
  parts.push(rest.length === 0 ? escapeHtml(root) : `<a href="${escapeHtml(encodeUrlPath(url))}">${escapeHtml(root)}</a>`);
  rest.forEach((seg, i) => {
    url += `${seg}/`;
    const label = escapeHtml(`${seg}/`);
    parts.push(i === rest.length - 1 ? `<span aria-current="page">${label}</span>` : `<a href="${escapeHtml(encodeUrlPath(url))}">${label}</a>`);
  });
  return parts.join('');
}

/** The HTML page for `listing` (UTF-8). */
export function renderListingHtml(listing: Listing): string {
  const title = escapeHtml(`Index of ${listing.path}`);
  const rows: string[] = [];
  if (listing.path !== (listing.mountpoint === '/' ? '/' : `${listing.mountpoint}/`)) {
    rows.push('<tr class="d"><td class="n"><a href="../">../</a></td><td class="s"></td><td class="t"></td></tr>');
  }
  for (const e of listing.entries) {
    const dir = e.type === 'directory';
    const href = escapeHtml(`${encodeSegment(e.name)}${dir ? '/' : ''}`);
    const size = !dir && e.size !== undefined ? `<span title="${e.size} bytes">${escapeHtml(humanSize(e.size))}</span>` : '';
    const time = e.modTime !== undefined ? `<time datetime="${new Date(e.modTime).toISOString()}">${readableTime(e.modTime)}</time>` : '';
    rows.push(
      `<tr class="${dir ? 'd' : 'f'}"><td class="n"><a href="${href}">${escapeHtml(e.name)}${dir ? '/' : ''}</a></td><td class="s">${size}</td><td class="t">${time}</td></tr>`,
    );
  }
  const shown = listing.entries.length;
  const note =
    shown < listing.total
      ? `<p class="note">Showing the first ${shown} of ${listing.total} entries.</p>`
      : shown === 0
        ? '<p class="note">This directory is empty.</p>'
        : '';
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">',
    '<meta name="color-scheme" content="light dark">',
    `<title>${title}</title><style>${STYLE}</style></head><body>`,
    `<h1>Index of ${breadcrumb(listing)}</h1>`,
    '<table><thead><tr><th class="n">Name</th><th class="s">Size</th><th class="t">Modified</th></tr></thead><tbody>',
    ...rows,
    '</tbody></table>',
    note,
    '</body></html>',
    '',
  ].join('\n');
}

/** The JSON form of `listing` ({@link ListingJson}). */
export function listingJson(listing: Listing): ListingJson {
  return {
    path: listing.path,
    total: listing.total,
    truncated: listing.entries.length < listing.total,
    entries: listing.entries.map((e) => {
      const path = `${listing.path}${e.name}${e.type === 'directory' ? '/' : ''}`;
      return {
        name: e.name,
        type: e.type,
        size: e.type === 'file' ? (e.size ?? null) : null,
        mtime: e.modTime === undefined ? null : new Date(e.modTime).toISOString(),
        path,
        href: encodeUrlPath(path),
      };
    }),
  };
}

/**
 * The response for a listing: HTML or JSON by the request's Accept, `Vary: Accept`,
 * `Cache-Control: no-cache` (a directory changes without a validator to tell),
 * a script-free Content-Security-Policy, and the mount's configured headers
 * (which never replace the framing headers).
 */
export function listingResponse(accept: string | undefined, listing: Listing, configured: readonly (readonly [string, string])[]): CoreResponse {
  const json = prefersJson(accept);
  const body = Buffer.from(json ? `${JSON.stringify(listingJson(listing))}\n` : renderListingHtml(listing));
  const headers: Record<string, string> = {
    'content-type': json ? 'application/json; charset=utf-8' : 'text/html; charset=utf-8',
    'cache-control': 'no-cache',
    vary: 'Accept',
    'x-content-type-options': 'nosniff',
    'content-security-policy': json ? "default-src 'none'; frame-ancestors 'none'" : CSP,
  };
  for (const [name, value] of configured) {
    if (FRAMING.has(name)) continue;
    // A configured Vary adds to ours: dropping Accept would let caches hand JSON to browsers.
    headers[name] = name === 'vary' && value.trim() !== '*' && !/(^|,)\s*accept\s*(,|$)/i.test(value) ? `Accept, ${value}` : value;
  }
  headers['content-length'] = String(body.length);
  return { status: 200, headers, body };
}
