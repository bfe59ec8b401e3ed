import { crc32 } from 'node:zlib';

// CP437 for bytes 0x80-0xFF (APPNOTE 4.4.4: names without bit 11 are CP437).
const CP437_HIGH =
  '\u00c7\u00fc\u00e9\u00e2\u00e4\u00e0\u00e5\u00e7\u00ea\u00eb\u00e8\u00ef\u00ee\u00ec\u00c4\u00c5\u00c9\u00e6\u00c6\u00f4\u00f6\u00f2\u00fb\u00f9\u00ff\u00d6\u00dc\u00a2\u00a3\u00a5\u20a7\u0192\u00e1\u00ed\u00f3\u00fa\u00f1\u00d1\u00aa\u00ba\u00bf\u2310\u00ac\u00bd\u00bc\u00a1\u00ab\u00bb\u2591\u2592\u2593\u2502\u2524\u2561\u2562\u2556\u2555\u2563\u2551\u2557\u255d\u255c\u255b\u2510\u2514\u2534\u252c\u251c\u2500\u253c\u255e\u255f\u255a\u2554\u2569\u2566\u2560\u2550\u256c\u2567\u2568\u2564\u2565\u2559\u2558\u2552\u2553\u256b\u256a\u2518\u250c\u2588\u2584\u258c\u2590\u2580\u03b1\u00df\u0393\u03c0\u03a3\u03c3\u00b5\u03c4\u03a6\u0398\u03a9\u03b4\u221e\u03c6\u03b5\u2229\u2261\u00b1\u2265\u2264\u2320\u2321\u00f7\u2248\u00b0\u2219\u00b7\u221a\u207f\u00b2\u25a0\u00a0';
// ignoreBOM: a leading U+FEFF must stay in the name (and be refused), not be
// silently stripped, or the name checked would differ from the bytes stored.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Why an entry name was refused. */
export type BadNameReason =
  | 'empty'
  | 'too long'
  | 'invalid UTF-8'
  | 'NUL byte'
  | 'control character'
  | 'bidirectional or invisible format character'
  | 'backslash'
  | 'absolute path'
  | 'empty, "." or ".." segment';

/** A decoded, validated name: the canonical form (no trailing slash) and whether it named a directory. */
export interface EntryName {
  readonly name: string;
  readonly isDir: boolean;
}

/** A decoded name, or why it could not be decoded. */
export type DecodedName = { readonly name: string } | { readonly bad: BadNameReason };

/**
 * Host systems (high byte of "version made by") that are Unix: their tools store names in the local,
 * nowadays UTF-8, charset, and a Unix mode in the high 16 bits of the external attributes.
 */
export const UNIX_HOSTS: ReadonlySet<number> = new Set([3 /* Unix */, 19 /* OS X */]);

/**
 * Decodes an entry name:
 * 1. an Info-ZIP Unicode Path extra field (0x7075) whose CRC matches the
 *    header name replaces it (strict UTF-8);
 * 2. with general-purpose bit 11, the name is strict UTF-8 (APPNOTE 4.4.4);
 * 3. without it, APPNOTE says CP437 - but Info-ZIP and others on Unix write
 *    raw UTF-8 without the flag, and unzip and 7-Zip read it as UTF-8. So a
 *    name from a Unix host that is valid UTF-8 is read as UTF-8; anything
 *    else is CP437, which can decode any bytes.
 */
export function decodeName(raw: Uint8Array, utf8Flag: boolean, unicodeExtra: Uint8Array | undefined, madeByHost = 0): DecodedName {
  if (unicodeExtra && unicodeExtra.length >= 5 && unicodeExtra[0] === 1) {
    const view = new DataView(unicodeExtra.buffer, unicodeExtra.byteOffset, unicodeExtra.length);
    // The extra applies only if it was written for this very header name.
    if (view.getUint32(1, true) === crc32(raw)) return strictUtf8(unicodeExtra.subarray(5));
  }
  let ascii = true;
  for (let i = 0; i < raw.length; i++) {
    if (raw[i]! >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) return { name: Buffer.from(raw.buffer, raw.byteOffset, raw.length).toString('latin1') };
  if (utf8Flag) return strictUtf8(raw);
  if (UNIX_HOSTS.has(madeByHost)) {
    const asUtf8 = strictUtf8(raw);
    if ('name' in asUtf8) return asUtf8;
  }
  return { name: cp437(raw) };
}

function strictUtf8(bytes: Uint8Array): DecodedName {
  try {
    return { name: utf8.decode(bytes) };
  } catch {
    return { bad: 'invalid UTF-8' };
  }
}

/** CP437 decoding (total: every byte sequence has a meaning). */
export function cp437(raw: Uint8Array): string {
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i]!;
    out += b < 0x80 ? String.fromCharCode(b) : CP437_HIGH[b - 0x80]!;
  }
  return out;
}

/** Host number (high byte of "version made by") of MS-DOS and OS/2 FAT, and of Windows tools that write 0. */
export const HOST_FAT = 0;

/**
 * The two repairs real writers need, made before validation, both as Info-ZIP
 * unzip 6.0 makes them (extract.c):
 * - backslashes become slashes only when the entry was made on host 0 (FAT:
 *   MS-DOS, and Windows tools such as PowerShell 5's Compress-Archive and
 *   .NET Framework's ZipFile) and the name holds no slash at all; elsewhere a
 *   backslash is an ordinary character and stays refused by {@link validateName};
 * - leading `./` segments are dropped (`bsdtar -C dir .` writes `./index.html`).
 *   A name that was nothing but `./` segments becomes `''`: the root directory.
 */
export function normalizeName(name: string, madeByHost: number): string {
  if (madeByHost === HOST_FAT && name.includes('\\') && !name.includes('/')) name = name.replaceAll('\\', '/');
  while (name.startsWith('./')) name = name.slice(2);
  return name;
}

function isFormatChar(c: number): boolean {
  // Bidi embeddings/overrides and isolates (Trojan Source), line/paragraph
  // separators, and the BOM: they make a name display as another name.
  return (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069) || c === 0x2028 || c === 0x2029 || c === 0xfeff || c === 0x200e || c === 0x200f;
}

/**
 * Validates a decoded name and returns its canonical form. The only accepted
 * form is a relative, slash-separated path with no empty, `.` or `..` segment,
 * optionally ending in one `/` (a directory). Everything else is refused, not
 * repaired: NUL, C0/C1 controls and DEL, bidi and invisible format characters,
 * backslashes, a leading `/` or drive letter.
 */
export function validateName(name: string, maxLength: number): EntryName | BadNameReason {
  if (name.length === 0) return 'empty';
  if (name.length > maxLength) return 'too long';
  const first = name.charCodeAt(0);
  if (first === 0x2f) return 'absolute path';
  // "C:" and "C:/x": a drive-relative or absolute Windows path.
  if (name.length >= 2 && name.charCodeAt(1) === 0x3a && (first | 0x20) >= 0x61 && (first | 0x20) <= 0x7a) return 'absolute path';
  let segStart = 0;
  const end = name.charCodeAt(name.length - 1) === 0x2f ? name.length - 1 : name.length;
  for (let i = 0; i <= end; i++) {
    const c = i === end ? 0x2f : name.charCodeAt(i);
    if (c === 0x2f) {
      const len = i - segStart;
      if (
        len === 0 ||
        (len === 1 && name.charCodeAt(segStart) === 0x2e) ||
        (len === 2 && name.charCodeAt(segStart) === 0x2e && name.charCodeAt(segStart + 1) === 0x2e)
      ) {
        return 'empty, "." or ".." segment';
      }
      segStart = i + 1;
      continue;
    }
    if (c === 0) return 'NUL byte';
    if (c < 0x20 || c === 0x7f || (c >= 0x80 && c <= 0x9f)) return 'control character';
    if (c === 0x5c) return 'backslash';
    if (c >= 0x2000 && isFormatChar(c)) return 'bidirectional or invisible format character';
  }
  return end === name.length ? { name, isDir: false } : { name: name.slice(0, end), isDir: true };
}
