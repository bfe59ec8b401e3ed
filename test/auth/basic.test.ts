/**
 * The credentials file, the Authorization header and the verifier of `basic-auth`, without a
 * server; and the Cache-Control rule for authenticated responses.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import bcrypt from 'bcryptjs';
import { BasicAuth, Credentials, CredentialsError, parseBasicAuthorization, privateCacheControl } from '../../src/index.js';
import { rmTree, tmpDir } from '../helpers/fixtures.js';

const dir = tmpDir('vfserve-basic-auth-');
after(() => rmTree(dir));

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const sha = (s: string): string => `{SHA}${createHash('sha1').update(s).digest('base64')}`;
// A $2y$ line as htpasswd -B writes it: bcryptjs makes $2b$, and $2y$ is the same algorithm under PHP's name.
const bcryptLine = (password: string): string => bcrypt.hashSync(password, 4).replace(/^\$2b\$/, '$2y$');

describe('Credentials.parse', () => {
  it('takes plain, bcrypt ($2y$, $2a$, $2b$) and {SHA} lines, skipping blanks, comments and CRs', async () => {
    const text = [
      '# vfserve users',
      'plain:open sesame',
      '',
      `bc:${bcryptLine('b-secret')}`,
      `bca:${bcrypt.hashSync('a-secret', 4).replace(/^\$2b\$/, '$2a$')}\r`,
      `bcb:${bcrypt.hashSync('b2', 4)}`,
      `sha:${sha('sha-secret')}`,
      'colon:pass:with:colons',
    ].join('\n');
    const c = Credentials.parse(text);
    assert.equal(c.size, 6);
    assert.equal(c.verify('plain', 'open sesame'), true);
    assert.equal(c.verify('plain', 'open sesame '), false);
    assert.equal(c.verify('plain', 'open'), false);
    assert.equal(await c.verify('bc', 'b-secret'), true);
    assert.equal(await c.verify('bc', 'b-secreT'), false);
    assert.equal(await c.verify('bca', 'a-secret'), true);
    assert.equal(await c.verify('bcb', 'b2'), true);
    assert.equal(c.verify('sha', 'sha-secret'), true);
    assert.equal(c.verify('sha', 'sha-secreT'), false);
    assert.equal(c.verify('colon', 'pass:with:colons'), true);
    // An unknown user is compared too (against the slowest kind in the file: bcrypt), and fails.
    const unknown = c.verify('nobody', 'open sesame');
    assert.ok(unknown instanceof Promise, 'an unknown user costs a bcrypt comparison when the file has bcrypt users');
    assert.equal(await unknown, false);
  });

  it('a file of plain users checks an unknown user synchronously, and never accepts it', () => {
    const c = Credentials.parse('a:1\nb:2\n');
    assert.equal(c.verify('c', '1'), false);
    assert.equal(c.verify('', ''), false);
  });

  it('refuses what cannot be a credentials line, naming the line and never the secret', () => {
    const cases: [string, RegExp][] = [
      ['no colon here', /^line 1: expected user:password/],
      ['ok:1\n:nouser', /^line 2: the user name is empty/],
      ['ok:', /^line 1: the password is empty/],
      ['a:1\nb:2\na:3', /^line 3: user "a" is listed twice \(lines 1 and 3\)/],
      ['apr:$apr1$abcdefgh$0123456789abcdefghijkl', /^line 1: Apache MD5 \(\$apr1\$\) hashes are not accepted/],
      ['md5:$1$salt$hash', /^line 1: MD5-crypt/],
      ['s6:$6$salt$hash', /^line 1: SHA-crypt/],
      ['bad:$2y$10$tooshort', /^line 1: not a well-formed bcrypt hash/],
      ['x:$2x$10$' + 'a'.repeat(53), /^line 1: \$2x\$/],
      ['s:{SHA}notbase64!', /^line 1: not a well-formed \{SHA\} entry/],
      ['s:{SSHA}abcd', /^line 1: salted SHA/],
      ['\n# only a comment\n\n', /lists no users/],
    ];
    for (const [text, re] of cases) {
      assert.throws(
        () => Credentials.parse(text),
        (err: unknown) => {
          assert.ok(err instanceof CredentialsError, text);
          assert.match(err.message, re, text);
          assert.doesNotMatch(err.message, /abcdefgh|tooshort|notbase64/, 'the secret stays out of the message');
          return true;
        },
      );
    }
  });

  it('load names the file: missing, a directory, too large', () => {
    assert.throws(() => Credentials.load(join(dir, 'missing')), /missing cannot be read \(ENOENT\)/);
    assert.throws(() => Credentials.load(dir), /cannot be read \(EISDIR\)/);
    const big = join(dir, 'big');
    writeFileSync(big, `u:${'x'.repeat(1024 * 1024)}`);
    assert.throws(() => Credentials.load(big), /larger than 1 MiB/);
    const broken = join(dir, 'broken');
    writeFileSync(broken, 'ok:1\nbroken\n');
    assert.throws(
      () => Credentials.load(broken),
      (err: unknown) => err instanceof CredentialsError && err.message === `${broken}: line 2: expected user:password (no colon)`,
    );
  });

  it('a bcrypt login that passed is checked once: later requests are answered from memory', async () => {
    const c = Credentials.parse(`u:${bcrypt.hashSync('pw', 4)}`);
    const first = c.verify('u', 'pw');
    assert.ok(first instanceof Promise);
    assert.equal(await first, true);
    assert.equal(c.verify('u', 'pw'), true, 'remembered: synchronous');
    const wrong = c.verify('u', 'px');
    assert.ok(wrong instanceof Promise, 'a wrong password is never remembered as right');
    assert.equal(await wrong, false);
  });
});

describe('parseBasicAuthorization', () => {
  it('reads the user and password of a Basic value: any case, padding optional, colons in the password', () => {
    assert.deepEqual(parseBasicAuthorization(`Basic ${b64('u:p')}`), { user: 'u', password: 'p' });
    assert.deepEqual(parseBasicAuthorization(`basic   ${b64('u:p:q')}`), { user: 'u', password: 'p:q' });
    assert.deepEqual(parseBasicAuthorization(`BASIC ${b64('us:pw').replace(/=+$/, '')}`), { user: 'us', password: 'pw' });
    assert.deepEqual(parseBasicAuthorization(`Basic ${b64('ü:pässword')}`), { user: 'ü', password: 'pässword' });
    assert.deepEqual(parseBasicAuthorization(`Basic ${Buffer.from('u:p\xe4ss', 'latin1').toString('base64')}`), { user: 'u', password: 'päss' });
  });

  it('refuses anything else', () => {
    for (const v of [
      undefined,
      '',
      'Basic',
      `Bearer ${b64('u:p')}`,
      'Basic !!!notbase64',
      `Basic ${b64('no colon')}`,
      `Basic ${b64('u:p')} extra`,
      `Basic ${b64('u\x01:p')}`,
      `Basic ${'A'.repeat(9000)}`,
      // Not canonical: node's decoder would skip the stray characters.
      `Basic ${b64('u:p').slice(0, 2)}*${b64('u:p').slice(2)}`,
    ]) {
      assert.equal(parseBasicAuthorization(v), undefined, String(v));
    }
  });
});

describe('BasicAuth', () => {
  it('checks a header against the credentials and carries the challenge', async () => {
    const auth = new BasicAuth(Credentials.parse(`a:1\nb:${bcrypt.hashSync('2', 4)}`), 'Staff only');
    assert.equal(auth.challenge, 'Basic realm="Staff only", charset="UTF-8"');
    assert.equal(auth.check(`Basic ${b64('a:1')}`), 'a');
    assert.equal(await auth.check(`Basic ${b64('b:2')}`), 'b');
    assert.equal(await auth.check(`Basic ${b64('a:2')}`), undefined);
    assert.equal(auth.check('Basic'), undefined);
    assert.throws(() => new BasicAuth(Credentials.parse('a:1'), 'say "hi"'), /realm/);
  });
});

describe('privateCacheControl', () => {
  it('keeps authenticated responses out of shared caches unless the operator allows them', () => {
    const table: [string | undefined, string | undefined][] = [
      [undefined, 'private'],
      ['', 'private'],
      ['no-store', 'no-store'],
      ['private, max-age=60', 'private, max-age=60'],
      ['public, max-age=60', 'private, max-age=60'],
      ['max-age=60, s-maxage=600', 'private, max-age=60, s-maxage=600'],
      ['must-revalidate, max-age=5', 'private, must-revalidate, max-age=5'],
      ['no-cache', 'private, no-cache'],
      ['private="set-cookie", max-age=60', 'private, private="set-cookie", max-age=60'],
    ];
    for (const [value, want] of table) assert.equal(privateCacheControl(value, false), want, String(value));
    assert.equal(privateCacheControl('public, max-age=60', true), 'public, max-age=60');
    assert.equal(privateCacheControl(undefined, true), undefined);
  });
});
