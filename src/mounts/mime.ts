import { charset as mimeCharset, lookup as mimeLookup } from 'mime-types';

/** What the whitelist says about a path. */
export type MimeDecision =
  | { readonly allowed: true; readonly contentType: string | undefined } // undefined: send no Content-Type at all
  | { readonly allowed: false; readonly reason: string }; // short, safe to show a client

/**
 * The curated whitelist: what websites and documentation serve. lws's canned list (all of it), then
 * today's web types. Deliberately absent: executables and scripts for other platforms and server-side
 * sources (.php, .exe, .sh, .bat, .cgi, .cjs, .ts), configuration and logs (.yml, .ini, .conf, .log,
 * .env), archives other than lws's .gz (.zip, .tar, .tgz, .7z: a mount's own archive would be served
 * whole, with everything inside it; opt in per mount with `extra-mimetypes`), .svgz (useless without
 * Content-Encoding) and streaming playlists and segments (.m3u8, .mpd, and .ts, which is also TypeScript).
 */
const CURATED_SUFFIXES = [
  // lws's canned list (lws-behaviour §3.5), in its order
  '.html',
  '.htm',
  '.js',
  '.css',
  '.png',
  '.jpg',
  '.jpeg',
  '.ico',
  '.gif',
  '.svg',
  '.ttf',
  '.otf',
  '.woff',
  '.woff2',
  '.gz',
  '.txt',
  '.xml',
  '.json',
  '.babylon',
  '.mjs',
  '.wasm',
  // pages, data and documents
  '.xhtml',
  '.map',
  '.webmanifest',
  '.jsonld',
  '.csv',
  '.md',
  '.pdf',
  '.ics',
  '.vtt',
  '.rss',
  '.atom',
  // images and fonts
  '.webp',
  '.avif',
  '.apng',
  '.bmp',
  '.jxl',
  '.eot',
  // audio and video
  '.mp4',
  '.webm',
  '.mov',
  '.ogv',
  '.mp3',
  '.m4a',
  '.aac',
  '.ogg',
  '.oga',
  '.opus',
  '.weba',
  '.wav',
  '.flac',
  // 3D scenes, today's counterpart of lws's .babylon
  '.gltf',
  '.glb',
] as const;

/** Where mime-types has no type, or not the one the web should get. Every entry says why. */
const OVERRIDES: Readonly<Record<string, string>> = {
  // Babylon.js scenes are JSON; mime-types does not know the suffix. lws's canned type.
  '.babylon': 'application/json',
  // mime-types gives the unregistered audio/x-flac; audio/flac is registered with IANA and browsers take it.
  '.flac': 'audio/flac',
};

/** Named additions to the built-in list, chosen per mount with `mimetypePreset`. */
export type MimetypePreset = 'strict' | 'downloads';
export const MIMETYPE_PRESETS: readonly MimetypePreset[] = Object.freeze(['strict', 'downloads']);

/**
 * The `downloads` preset: what a folder of release files and documents holds. A mount's own archive is
 * then served whole as a download (`/site.zip`), while `/site.zip/` still enters it.
 */
const DOWNLOADS: Readonly<Record<string, string>> = {
  '.zip': 'application/zip',
  '.docx': 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  '.xlsx': 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  '.pptx': 'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  '.epub': 'application/epub+zip',
  '.iso': 'application/x-iso9660-image',
  '.bin': 'application/octet-stream',
  // RFC 9512 registers application/yaml; mime-types still says text/yaml.
  '.yaml': 'application/yaml; charset=utf-8',
  '.yml': 'application/yaml; charset=utf-8',
  // CommonJS is JavaScript (RFC 9239); mime-types says application/node, which browsers would not run or show.
  '.cjs': 'text/javascript; charset=utf-8',
  '.heic': 'image/heic',
};

/** Names without a suffix that are text by convention; under `downloads` every other such name is a binary. */
const TEXT_NAMES: ReadonlySet<string> = new Set([
  'LICENSE',
  'LICENCE',
  'COPYING',
  'NOTICE',
  'README',
  'AUTHORS',
  'CONTRIBUTORS',
  'CHANGELOG',
  'CHANGES',
  'CNAME',
  'VERSION',
]);

const TEXT_PLAIN = 'text/plain; charset=utf-8';

/**
 * The type of an extensionless file under `/.well-known/` (RFC 8615): ACME http-01 tokens are text, Apple's
 * app-site-association file is JSON (the only extensionless JSON name registered there that clients check).
 */
export function wellKnownType(name: string): string {
  return name === 'apple-app-site-association' ? 'application/json' : TEXT_PLAIN;
}

/**
 * The suffix the whitelist would decide `path` by, lower-cased with its dot (`.yaml`), or `''` for a last
 * segment without one (leading dots do not start a suffix). For messages and for telling names like
 * `LICENSE` apart; the lookup itself is {@link createMimeLookup}.
 */
export function suffixOf(path: string): string {
  let first = path.lastIndexOf('/') + 1;
  while (first < path.length && path.charCodeAt(first) === DOT) first++;
  const dot = path.lastIndexOf('.');
  return dot < first ? '' : path.slice(dot).toLowerCase();
}

/** The built-in list: lower-case suffix with its dot → type (no charset). Frozen. */
export const BUILTIN_MIMETYPES: Readonly<Record<string, string>> = buildBuiltins();

function buildBuiltins(): Readonly<Record<string, string>> {
  // A null prototype, so `'constructor' in BUILTIN_MIMETYPES` is false.
  const table: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const suffix of CURATED_SUFFIXES) {
    const type = OVERRIDES[suffix] ?? mimeLookup(suffix);
    // Loud at load rather than a silently shorter whitelist if a mime-db update drops a suffix.
    if (type === false) throw new Error(`vfserve: mime-types has no type for built-in suffix ${suffix}`);
    table[suffix] = type;
  }
  return Object.freeze(table);
}

// RFC 9110 §5.6.2 token, and a media type with optional parameters (token or quoted-string values),
// ASCII only so that a Content-Type never needs encoding and can never split a header.
const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const QUOTED = String.raw`"(?:[\t\x20\x21\x23-\x5b\x5d-\x7e]|\\[\t\x20-\x7e])*"`;
const MEDIA_TYPE = new RegExp(`^${TOKEN}/${TOKEN}(?:[ \\t]*;[ \\t]*${TOKEN}=(?:${TOKEN}|${QUOTED}))*$`);

// A key: an optional leading dot, then dot-separated non-empty segments of printable ASCII other than
// `/`, `\` and `*` (a suffix never holds `/`; `*` would be lws's fallback marker; non-ASCII would make
// matching depend on Unicode case rules, which lws does not have).
const KEY_SEGMENT = String.raw`[\x21-\x29\x2b-\x2d\x30-\x5b\x5d-\x7e]+`;
const KEY = new RegExp(`^\\.?${KEY_SEGMENT}(?:\\.${KEY_SEGMENT})*$`);

// JavaScript types that are text without saying so in mime-db (application/javascript has its charset there).
const TEXT_APPLICATION = new Set(['application/ecmascript', 'application/x-javascript']);

/** Whether `type` (bare, no parameters) is text, and so is sent with `; charset=utf-8`. */
function isText(type: string): boolean {
  const t = type.toLowerCase();
  if (t.startsWith('text/') || TEXT_APPLICATION.has(t)) return true;
  const subtype = t.slice(t.indexOf('/') + 1);
  // XML and JSON, and their structured-syntax suffixes (+xml, +json: svg, xhtml, ld+json, manifest, rss …).
  if (subtype === 'xml' || subtype === 'json' || subtype.endsWith('+xml') || subtype.endsWith('+json')) return true;
  // mime-db's own charsets (UTF-8 for most, a few US-ASCII and oddities): all of them mean text. We say
  // utf-8 whatever it says: the bytes are the site's, and UTF-8 is the web's encoding (and a superset of ASCII).
  return mimeCharset(t) !== false;
}

/** The Content-Type for a valid media type: bare text types get `; charset=utf-8`; one with parameters is kept as it is. */
function contentTypeFor(type: string): string {
  if (type.includes(';')) return type;
  return isText(type) ? `${type}; charset=utf-8` : type;
}

const DOT = 0x2e;

const DENIED: MimeDecision = Object.freeze({ allowed: false, reason: 'file type not allowed' });

function allow(contentType: string | undefined): MimeDecision {
  return Object.freeze({ allowed: true, contentType });
}

const show = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v) : v === null ? 'null' : typeof v);

/**
 * Builds the per-mount lookup once (precompute everything; the returned function is on the hot path: one
 * lower-casing and a Map lookup, no allocation beyond that; more lookups only when `extra` has compound keys).
 *
 * The returned function takes a path (a canonical fop path or a URL path; only `/` separates segments) and
 * decides from the suffix of its LAST segment alone: `/a.b/c` has no suffix. Dots at the start of the name
 * do not start a suffix, so `.bashrc` has none; `.eslintrc.json` has `.json` (hiding dotfiles is a separate
 * policy, not this one's). A name with no suffix, or whose suffix is not listed, is not allowed unless `"*"`
 * is given. Matching is ASCII case-insensitive, as in lws (`UPPER.HTML` is text/html); a suffix with
 * non-ASCII characters matches no key. Among the keys, the longest matching suffix wins (`.tar.gz` over
 * `.gz`); the built-ins are all single suffixes, so for them the last extension decides.
 *
 * Text types (text/*, XML, JSON, JavaScript, their +xml/+json kin, anything mime-db gives a charset) are
 * sent as `type; charset=utf-8`.
 *
 * `preset`: `"downloads"` adds .zip .docx .xlsx .pptx .epub .iso .bin .yaml .yml .cjs .heic, and serves names
 * without a suffix as `text/plain` (LICENSE, COPYING, NOTICE, README, AUTHORS, CNAME, … in any case) or
 * `application/octet-stream` (anything else); `extra` still overrides it, and `"*"` decides unsuffixed names too.
 *
 * `extra`: lwsws `extra-mimetypes`. Keys are suffixes like `.zip` or `.tar.gz`; a key without its leading dot
 * (`zip`) means the same as with it (as mime-types' `lookup` reads both). Keys match case-insensitively and
 * add to or override the built-ins (`.HTML` overrides `.html`). Values are media types; a bare text type gets
 * the charset as above, a value that already has parameters is used exactly as given. `"*": "type"` serves
 * every file no other key matches with that type; `"*": ""` serves every such file with no Content-Type
 * (known suffixes keep their type either way).
 *
 * Throws a TypeError naming the bad key or value for nonsense: `extra` not a plain object, a non-string
 * value, an empty or malformed key (`.`, `a..b`, `a/b`, `*.zip`), two keys for one suffix (`.zip` and
 * `ZIP`), or a value that is not a syntactically valid media type (RFC 9110, ASCII), except `""` for `"*"`.
 */
export function createMimeLookup(extra?: Readonly<Record<string, string>>, preset: MimetypePreset = 'strict'): (path: string) => MimeDecision {
  const table = new Map<string, MimeDecision>();
  for (const [suffix, type] of Object.entries(BUILTIN_MIMETYPES)) table.set(suffix, allow(contentTypeFor(type)));
  const downloads = preset === 'downloads';
  if (downloads) for (const [suffix, type] of Object.entries(DOWNLOADS)) table.set(suffix, allow(contentTypeFor(type)));

  let fallback: MimeDecision = DENIED;
  let maxDots = 1;
  if (extra !== undefined) {
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- checked for JavaScript callers and JSON config
    if (typeof extra !== 'object' || extra === null || Array.isArray(extra)) {
      throw new TypeError(`extra mimetypes: expected an object of suffix → type, got ${Array.isArray(extra) ? 'an array' : show(extra)}`);
    }
    const seen = new Map<string, string>(); // normalised suffix → the key that gave it
    for (const [key, value] of Object.entries(extra) as [string, unknown][]) {
      if (typeof value !== 'string') throw new TypeError(`extra mimetypes: value for key ${show(key)} must be a string, got ${show(value)}`);
      if (key === '*') {
        if (value !== '' && !MEDIA_TYPE.test(value)) throw new TypeError(`extra mimetypes: value for key "*" is not a media type: ${show(value)}`);
        fallback = allow(value === '' ? undefined : contentTypeFor(value));
        continue;
      }
      if (!KEY.test(key)) throw new TypeError(`extra mimetypes: key ${show(key)} is not a file suffix like ".zip" or ".tar.gz"`);
      if (!MEDIA_TYPE.test(value)) throw new TypeError(`extra mimetypes: value for key ${show(key)} is not a media type: ${show(value)}`);
      const suffix = (key.startsWith('.') ? key : `.${key}`).toLowerCase();
      const earlier = seen.get(suffix);
      if (earlier !== undefined) throw new TypeError(`extra mimetypes: keys ${show(earlier)} and ${show(key)} name the same suffix`);
      seen.set(suffix, key);
      table.set(suffix, allow(contentTypeFor(value)));
      let dots = 0;
      for (let i = 0; i < suffix.length; i++) if (suffix.charCodeAt(i) === DOT) dots++;
      if (dots > maxDots) maxDots = dots;
    }
  }

  const unmatched = fallback; // a const, for the closure
  // `"*"` decides every unmatched name; otherwise the preset decides names without a suffix.
  const bare = downloads && unmatched === DENIED;
  const textName = allow(TEXT_PLAIN);
  const binaryName = allow('application/octet-stream');
  return (path: string): MimeDecision => {
    if (bare && suffixOf(path) === '') return TEXT_NAMES.has(path.slice(path.lastIndexOf('/') + 1).toUpperCase()) ? textName : binaryName;
    const len = path.length;
    let first = path.lastIndexOf('/') + 1;
    while (first < len && path.charCodeAt(first) === DOT) first++; // leading dots are part of the name
    // Walk back from the end to the leftmost dot that can start a key: at most maxDots dots, none of them
    // in the leading run, and no character that no key holds (non-ASCII, space, control) after it, so the
    // lower-casing below is ASCII lower-casing, as lws's.
    let start = -1;
    for (let i = len - 1, dots = 0; i > first; i--) {
      const c = path.charCodeAt(i);
      if (c === DOT) {
        start = i;
        if (++dots === maxDots) break;
      } else if (c < 0x21 || c > 0x7e) break;
    }
    if (start < 0) return unmatched;
    const tail = path.slice(start).toLowerCase();
    if (maxDots === 1) return table.get(tail) ?? unmatched;
    // Longest candidate first: `.tar.gz`, then `.gz`.
    for (let i = 0; i >= 0; i = tail.indexOf('.', i + 1)) {
      const hit = table.get(i === 0 ? tail : tail.slice(i));
      if (hit !== undefined) return hit;
    }
    return unmatched;
  };
}
