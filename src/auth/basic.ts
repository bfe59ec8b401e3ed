/**
 * HTTP Basic authentication (RFC 7617) for mounts with `basic-auth`: the credentials file (lws's
 * `user:password` lines, and Apache htpasswd's bcrypt and `{SHA}` lines), the Authorization header,
 * and a verifier whose timing does not tell which user names exist.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { compare as bcryptCompare, genSaltSync } from 'bcryptjs';
import { LruCache } from '../cache/lru.js';

/** lws's realm, the default of `basic-auth-realm`. */
export const DEFAULT_REALM = 'lwsws';

// A credentials file is a few lines per user; anything this large is the wrong file.
const MAX_FILE_BYTES = 1024 * 1024;
// node caps a whole header block at 16 KiB; an Authorization value past this is not a login.
const MAX_HEADER_LENGTH = 8192;
// Logins that passed a bcrypt check, kept so that a page's thirty assets cost one bcrypt, not thirty.
const ACCEPTED_CACHE_ENTRIES = 1024;

/** A credentials file that cannot be used: `line` is 1-based, 0 for the file as a whole. */
export class CredentialsError extends Error {
  constructor(
    readonly line: number,
    detail: string,
  ) {
    super(line === 0 ? detail : `line ${line}: ${detail}`);
    this.name = 'CredentialsError';
  }
}

/** How one user's password is checked. The secret itself is never kept as text. */
type Verifier =
  | { readonly kind: 'plain'; readonly digest: Buffer }
  | { readonly kind: 'sha1'; readonly digest: Buffer }
  | { readonly kind: 'bcrypt'; readonly hash: string; readonly cost: number };

const BCRYPT = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/;
// Hash formats htpasswd or crypt(3) write that are refused by name rather than taken for plain passwords.
const REFUSED: readonly (readonly [RegExp, string])[] = [
  [/^\$apr1\$/, 'Apache MD5 ($apr1$) hashes are not accepted: MD5 is too fast to resist guessing; re-create the entry with htpasswd -B (bcrypt)'],
  [/^\$1\$/, 'MD5-crypt ($1$) hashes are not accepted; re-create the entry with htpasswd -B (bcrypt)'],
  [/^\$[56]\$/, 'SHA-crypt ($5$, $6$) hashes are not supported; use bcrypt (htpasswd -B)'],
  [/^\$2x\$/, '$2x$ marks a bcrypt hash made by a buggy implementation; re-create the entry with htpasswd -B'],
  [/^\$2[aby]\$/, 'not a well-formed bcrypt hash ($2y$NN$ and 53 characters of salt and hash)'],
  [/^\$argon2/i, 'argon2 hashes are not supported; use bcrypt (htpasswd -B)'],
  [/^\{SSHA\}/, 'salted SHA ({SSHA}) entries are not supported; use bcrypt (htpasswd -B)'],
];

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** The verifier for one line's secret; throws a {@link CredentialsError} for `line`. */
function verifierOf(secret: string, line: number): Verifier {
  if (secret === '') throw new CredentialsError(line, 'the password is empty');
  const bcrypt = BCRYPT.exec(secret);
  if (bcrypt) {
    const cost = Number(bcrypt[1]);
    if (cost < 4 || cost > 31) throw new CredentialsError(line, `bcrypt cost ${cost} is outside 4 to 31`);
    return { kind: 'bcrypt', hash: secret, cost };
  }
  if (secret.startsWith('{SHA}')) {
    const b64 = secret.slice('{SHA}'.length);
    const digest = Buffer.from(b64, 'base64');
    if (digest.length !== 20 || digest.toString('base64') !== b64) throw new CredentialsError(line, 'not a well-formed {SHA} entry (the base64 of 20 bytes)');
    return { kind: 'sha1', digest };
  }
  for (const [re, why] of REFUSED) if (re.test(secret)) throw new CredentialsError(line, why);
  // lws's format: the password as it is. Only its digest is kept, so every comparison is of 32 bytes.
  return { kind: 'plain', digest: sha256(secret) };
}

/**
 * A credentials file, parsed: checks a user name and password in time that does not depend on
 * whether the user exists, nor on how much of a password is right. Immutable: a changed file is
 * a new `Credentials` (the CLI reads the file again on every start and reload).
 */
export class Credentials {
  /** Where the lines came from, for messages (`inline` when parsed from text). */
  readonly source: string;
  readonly #users: ReadonlyMap<string, Verifier>;
  // An unknown user is checked against this, a verifier of the slowest kind in the file.
  readonly #absent: Verifier;
  readonly #cacheKey = randomBytes(32);
  readonly #accepted = new LruCache<string, true>({ maxEntries: ACCEPTED_CACHE_ENTRIES });
  readonly #pending = new Map<string, Promise<boolean>>();

  private constructor(source: string, users: ReadonlyMap<string, Verifier>) {
    this.source = source;
    this.#users = users;
    let slowest: Extract<Verifier, { kind: 'bcrypt' }> | undefined;
    for (const v of users.values()) if (v.kind === 'bcrypt' && (slowest === undefined || v.cost > slowest.cost)) slowest = v;
    // A bcrypt string with a fresh salt and a random hash: comparing against it costs what a real
    // entry of that cost costs, and never matches.
    this.#absent =
      slowest === undefined
        ? { kind: 'plain', digest: randomBytes(32) }
        : { kind: 'bcrypt', hash: `${genSaltSync(slowest.cost)}${bcryptChars(31)}`, cost: slowest.cost };
  }

  /** How many users the file lists. */
  get size(): number {
    return this.#users.size;
  }

  /**
   * Parses a credentials file's text: one `user:secret` per line, split at the first colon.
   * The secret is a bcrypt hash (`$2y$`, `$2a$`, `$2b$`), `{SHA}` and the base64 of an unsalted
   * SHA-1, or else the password itself (lws's format). Blank lines and lines starting with `#`
   * are skipped. Refused, naming the line (never its secret): no colon, an empty user name or
   * password, a user listed twice, other hash formats (`$apr1$`, `$1$`, `$5$`, `$6$`, argon2,
   * `{SSHA}`) and a file without users.
   *
   * @throws CredentialsError
   */
  static parse(text: string, source = 'inline'): Credentials {
    const users = new Map<string, Verifier>();
    const lineOf = new Map<string, number>();
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const n = i + 1;
      const line = lines[i]!.endsWith('\r') ? lines[i]!.slice(0, -1) : lines[i]!;
      if (line.trim() === '' || line.startsWith('#')) continue;
      const colon = line.indexOf(':');
      if (colon === -1) throw new CredentialsError(n, 'expected user:password (no colon)');
      const user = line.slice(0, colon);
      if (user === '') throw new CredentialsError(n, 'the user name is empty');
      // RFC 7617 §2: a user-id has no control characters.
      // eslint-disable-next-line no-control-regex
      if (/[\x00-\x1f\x7f]/.test(user)) throw new CredentialsError(n, 'the user name contains a control character');
      const first = lineOf.get(user);
      if (first !== undefined) throw new CredentialsError(n, `user ${JSON.stringify(user)} is listed twice (lines ${first} and ${n})`);
      users.set(user, verifierOf(line.slice(colon + 1), n));
      lineOf.set(user, n);
    }
    if (users.size === 0) throw new CredentialsError(0, 'lists no users (expected user:password lines)');
    return new Credentials(source, users);
  }

  /**
   * Reads and parses the credentials file at `path` (synchronously: at start-up and reload).
   *
   * @throws CredentialsError naming the line, or the file when it cannot be read.
   */
  static load(path: string): Credentials {
    let data: Buffer;
    try {
      data = readFileSync(path);
    } catch (err) {
      throw new CredentialsError(0, `${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    if (data.length > MAX_FILE_BYTES) throw new CredentialsError(0, `${path} is larger than 1 MiB: not a credentials file`);
    try {
      return Credentials.parse(data.toString('utf8'), path);
    } catch (err) {
      if (err instanceof CredentialsError) throw new CredentialsError(0, `${path}: ${err.message}`);
      throw err;
    }
  }

  /**
   * Whether `password` is `user`'s. Synchronous for plain and `{SHA}` entries, a promise for
   * bcrypt ones. Digests are compared with `timingSafeEqual`; an unknown user costs a comparison
   * against a verifier of the slowest kind in the file, and then fails: no early return tells
   * that a user does not exist. (In a file mixing kinds, a fast answer still tells a plain-text
   * user from a bcrypt one.) A bcrypt login that passed is remembered, under an HMAC of the pair
   * with a key made per file, so that it is checked once and not once per request.
   */
  verify(user: string, password: string): boolean | Promise<boolean> {
    const entry = this.#users.get(user);
    const v = entry ?? this.#absent;
    switch (v.kind) {
      case 'plain':
        return timingSafeEqual(sha256(password), v.digest) && entry !== undefined;
      case 'sha1':
        return timingSafeEqual(createHash('sha1').update(password, 'utf8').digest(), v.digest) && entry !== undefined;
      case 'bcrypt': {
        const key = createHmac('sha256', this.#cacheKey).update(user).update('\0').update(password).digest('base64');
        if (this.#accepted.get(key) === true) return true;
        // Parallel requests with the same login (a page's assets) share one bcrypt run.
        let pending = this.#pending.get(key);
        if (pending === undefined) {
          pending = bcryptCompare(password, v.hash).then(
            (ok) => {
              this.#pending.delete(key);
              const accepted = ok && entry !== undefined;
              if (accepted) this.#accepted.set(key, true);
              return accepted;
            },
            () => {
              this.#pending.delete(key);
              return false;
            },
          );
          this.#pending.set(key, pending);
        }
        return pending;
      }
    }
  }
}

/** `n` random characters of bcrypt's base64 alphabet. */
function bcryptChars(n: number): string {
  const alphabet = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  let out = '';
  for (const b of randomBytes(n)) out += alphabet[b & 63]!;
  return out;
}

const BASIC = /^basic[ \t]+([A-Za-z0-9+/]+=*)[ \t]*$/i;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The user and password of an `Authorization: Basic …` value (RFC 7617 §2), or undefined for
 * anything else: another scheme, base64 that is not canonical, no colon, a control character in
 * the user name. The password is decoded as UTF-8 (RFC 7617 §2.1), else as ISO-8859-1.
 */
export function parseBasicAuthorization(value: string | undefined): { readonly user: string; readonly password: string } | undefined {
  if (value === undefined || value.length > MAX_HEADER_LENGTH) return undefined;
  const m = BASIC.exec(value);
  if (!m) return undefined;
  const b64 = m[1]!;
  const bytes = Buffer.from(b64, 'base64');
  // Only the canonical spelling (padding optional): node's decoder skips what it cannot read.
  if (bytes.toString('base64').replace(/=+$/, '') !== b64.replace(/=+$/, '')) return undefined;
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    text = bytes.toString('latin1');
  }
  const colon = text.indexOf(':');
  if (colon === -1) return undefined;
  const user = text.slice(0, colon);
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(user)) return undefined;
  return { user, password: text.slice(colon + 1) };
}

/** A realm as `basic-auth-realm` may give it: printable, no quote or backslash (it is sent as a quoted-string). */
export function validRealm(realm: unknown): realm is string {
  // eslint-disable-next-line no-control-regex
  return typeof realm === 'string' && realm !== '' && realm.length <= 200 && !/["\\\x00-\x1f\x7f]/.test(realm);
}

/** One mount's basic authentication: its credentials and the challenge its 401s carry. */
export class BasicAuth {
  readonly credentials: Credentials;
  readonly realm: string;
  /** The `WWW-Authenticate` value: the realm, and UTF-8 as the charset clients should encode with (RFC 7617 §2.1). */
  readonly challenge: string;

  constructor(credentials: Credentials, realm: string = DEFAULT_REALM) {
    if (!validRealm(realm)) throw new TypeError(`the realm must be printable text without " or \\, got ${JSON.stringify(realm)}`);
    this.credentials = credentials;
    this.realm = realm;
    this.challenge = `Basic realm="${realm}", charset="UTF-8"`;
  }

  /** The user an Authorization value logs in, or undefined: missing, malformed or wrong all look the same. */
  check(authorization: string | undefined): string | undefined | Promise<string | undefined> {
    const login = parseBasicAuthorization(authorization);
    if (login === undefined) return undefined;
    const ok = this.credentials.verify(login.user, login.password);
    if (ok instanceof Promise) return ok.then((yes) => (yes ? login.user : undefined));
    return ok ? login.user : undefined;
  }
}
