/**
 * Content-coding negotiation from Accept-Encoding (RFC 9110 §12.5.3).
 */

// qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )  (§12.4.2)
const QVALUE = /^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/;
// A parameter value: token or quoted-string (§5.6.6); only q means anything here.
const PARAM = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+)[ \t]*=[ \t]*([!#$%&'*+\-.^_`|~0-9A-Za-z]+|"(?:[^"\\]|\\.)*")$/;

// §8.4.1.1, §8.4.1.3: x-compress and x-gzip are the same codings as compress and gzip.
const ALIASES: Readonly<Record<string, string>> = { 'x-gzip': 'gzip', 'x-compress': 'compress' };

function canonical(coding: string): string {
  const c = coding.toLowerCase();
  return ALIASES[c] ?? c;
}

/** qvalue → thousandths, so that comparisons are exact. */
function thousandths(q: string): number {
  const [int = '0', frac = ''] = q.split('.');
  return Number(int) * 1000 + Number(frac.padEnd(3, '0'));
}

/**
 * The q (in thousandths) of each coding listed, `*` included, by canonical
 * name. An element that does not parse, or whose q is invalid, is ignored;
 * unknown parameters are ignored, and so is OWS around `=` (which the grammar
 * does not allow, but costs nothing to read); when a coding is listed twice,
 * the first wins.
 */
function parseAcceptEncoding(header: string): Map<string, number> {
  const prefs = new Map<string, number>();
  element: for (const raw of header.split(',')) {
    // A name that is not a token cannot equal an available coding, so it needs no check of its own.
    const [name = '', ...params] = raw.split(';').map((p) => p.trim());
    let q = 1000;
    let seenQ = false;
    for (const p of params) {
      const m = PARAM.exec(p);
      if (m === null) continue element;
      const [, key = '', value = ''] = m;
      // The weight is `"q="` (§12.4.2), case-insensitive like every ABNF literal.
      if (key.toLowerCase() !== 'q') continue;
      if (seenQ || !QVALUE.test(value)) continue element;
      seenQ = true;
      q = thousandths(value);
    }
    const coding = canonical(name);
    if (!prefs.has(coding)) prefs.set(coding, q);
  }
  return prefs;
}

/**
 * Chooses the content-coding to send: one of `available` (compressed codings,
 * in server preference order, e.g. `['br', 'gzip']`), or `'identity'`; null
 * when nothing acceptable is available (identity refused, no available coding
 * acceptable); the server may then answer 406 (§15.5.7) or disregard the field and send identity.
 *
 * - No header: `'identity'` (§12.5.3: any coding is acceptable, but unencoded
 *   is the safe choice). An empty value: identity only.
 * - Codings are case-insensitive; `x-gzip` is `gzip`. q=0 refuses a coding;
 *   `*` gives its q to every coding not listed, identity included.
 * - Identity is acceptable unless `identity;q=0`, or `*;q=0` without an identity
 *   entry; when neither is listed it is acceptable but ranks below every listed coding.
 * - The highest q wins; ties go to the earlier `available` entry, then to a
 *   compressed coding over identity.
 *
 * Returns the `available` entry as given (not lowercased).
 */
export function negotiateEncoding(header: string | undefined, available: readonly string[]): string | null {
  if (header === undefined) return 'identity';
  const prefs = parseAcceptEncoding(header);
  const star = prefs.get('*');

  let best: string | null = null;
  let bestQ = 0;
  for (const coding of available) {
    const c = canonical(coding);
    // identity is always a candidate, and ranked below compressed codings on a tie, wherever it is listed.
    if (c === 'identity') continue;
    const q = prefs.get(c) ?? star ?? 0;
    // Strictly greater: on a tie the earlier (preferred) coding stays.
    if (q > bestQ) {
      best = coding;
      bestQ = q;
    }
  }

  // Unlisted identity with no `*` is acceptable (§12.5.3) but was not asked for: rank it lowest (q just above 0).
  const identityQ = prefs.get('identity') ?? star ?? 0.5;
  // Strictly greater again: a compressed coding wins a tie with identity.
  if (identityQ > bestQ) return 'identity';
  return best;
}
