/**
 * basic-auth, exact-match and append-path in the engine, no socket: rows of request → response
 * through the public API (`new ServeEngine`, `handle`), for every origin kind.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Credentials, mountFromConfig, ServeEngine, type MountOptions } from '../../src/index.js';
import { exchange, runRow, type Row } from '../helpers/engine-table.js';
import { rmTree, tmpDir, writeTree } from '../helpers/fixtures.js';

const dir = tmpDir('vfserve-auth-table-');
after(() => rmTree(dir));
const www = join(dir, 'www');
writeTree(www, { 'index.html': Buffer.from('<h1>home</h1>'), 'a.txt': Buffer.from('private a\n'), 'sub/index.html': Buffer.from('<h1>sub</h1>') });
const robots = join(dir, 'robots.txt');
writeFileSync(robots, 'User-agent: *\n');

const credentials = Credentials.parse('alice:wonderland\nbob:builder\n');
const login = (user: string, password: string): Record<string, string> => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });
const alice = login('alice', 'wonderland');

const challenge = { 'www-authenticate': 'Basic realm="lwsws", charset="UTF-8"', 'cache-control': 'no-store' } as const;
const denied = { status: 401, headers: challenge, page: true } as const;

describe('basic-auth in the engine', () => {
  const auth = { basicAuth: credentials };
  const engine = new ServeEngine({
    mounts: [
      { mountpoint: '/files', origin: www, ...auth },
      { mountpoint: '/cached', origin: www, cacheMaxAge: 60, cacheReuse: true, ...auth },
      { mountpoint: '/shared', origin: www, cacheMaxAge: 60, cacheReuse: true, cacheIntermediaries: true, ...auth },
      { mountpoint: '/cors', origin: www, cors: true, ...auth },
      { mountpoint: '/staff', origin: www, basicAuth: credentials, basicAuthRealm: 'Staff only' },
      { mountpoint: '/cb', origin: 'callback://app', ...auth },
      { mountpoint: '/px', origin: 'http://127.0.0.1:9/base', ...auth },
      { mountpoint: '/cgi', origin: 'cgi:///usr/lib/cgi-bin/app', ...auth },
      { mountpoint: '/go', origin: '>https://example.com/', ...auth },
      { mountpoint: '/', origin: www },
    ],
  });

  it('answers 401 with the challenge, never 500, for a missing, malformed or wrong login, under every origin kind', async () => {
    const bad: [string, Record<string, string>][] = [
      ['missing', {}],
      ['another scheme', { authorization: 'Bearer abc' }],
      ['not base64', { authorization: 'Basic %%%' }],
      ['no colon', { authorization: `Basic ${Buffer.from('alice').toString('base64')}` }],
      ['empty', { authorization: '' }],
      ['wrong password', login('alice', 'Wonderland')],
      ['unknown user', login('mallory', 'wonderland')],
      ["another user's password", login('bob', 'wonderland')],
    ];
    for (const url of ['/files/a.txt', '/files/missing', '/files', '/cb/x', '/px/y', '/cgi/z', '/go/anywhere']) {
      for (const [what, headers] of bad) await runRow(engine, { name: `${url} ${what}`, url, headers, want: denied, head: true });
      await runRow(engine, { name: `${url} POST`, method: 'POST', url, want: denied });
    }
    await runRow(engine, {
      name: 'realm',
      url: '/staff/a.txt',
      want: { ...denied, headers: { ...challenge, 'www-authenticate': 'Basic realm="Staff only", charset="UTF-8"' } },
    });
  });

  it('serves a valid login as the mount would, marking the response with its user and keeping it private', async () => {
    const rows: Row[] = [
      { name: 'file', url: '/files/a.txt', headers: alice, want: { status: 200, body: 'private a\n', headers: { 'cache-control': 'no-store' } } },
      { name: 'max-age', url: '/cached/a.txt', headers: alice, want: { status: 200, headers: { 'cache-control': 'private, max-age=60' } } },
      { name: 'intermediaries', url: '/shared/a.txt', headers: alice, want: { status: 200, headers: { 'cache-control': 'public, max-age=60' } } },
      { name: 'a 404 page', url: '/files/missing', headers: alice, want: { status: 404, notFound: true, page: true, headers: { 'cache-control': 'private' } } },
      { name: 'slash redirect', url: '/files', headers: alice, want: { status: 301, headers: { location: '/files/', 'cache-control': 'private' } } },
      { name: 'redirect mount', url: '/go/x', headers: alice, want: { status: 301, headers: { location: 'https://example.com/' } } },
      { name: 'bob too', url: '/files/a.txt', headers: login('bob', 'builder'), want: { status: 200 } },
      { name: 'no auth elsewhere', url: '/a.txt', want: { status: 200 } },
      {
        name: 'cors preflight (browsers send no credentials)',
        method: 'OPTIONS',
        url: '/cors/a.txt',
        headers: { origin: 'https://a.example', 'access-control-request-method': 'GET' },
        want: { status: 204 },
      },
      { name: 'cors OPTIONS that is no preflight', method: 'OPTIONS', url: '/cors/a.txt', want: denied },
    ];
    for (const row of rows) await runRow(engine, row);
    const file = await exchange(engine, 'GET', '/files/a.txt', alice);
    assert.deepEqual(file.res.auth, { user: 'alice', sharedCache: false });
    assert.equal((await exchange(engine, 'GET', '/shared/a.txt', alice)).res.auth?.sharedCache, true);
    const cb = (await exchange(engine, 'GET', '/cb/x?q', alice)).res;
    assert.deepEqual(cb.callback, { name: 'app', remainder: '/x', mountpoint: '/cb', pmo: {}, user: 'alice' });
    assert.deepEqual(cb.auth, { user: 'alice', sharedCache: false });
    const px = (await exchange(engine, 'GET', '/px/y', alice)).res;
    assert.equal(px.proxy?.path, '/base/y');
    assert.equal(px.auth?.user, 'alice');
    const cgi = (await exchange(engine, 'GET', '/cgi/z', alice)).res;
    assert.equal(cgi.cgi?.user, 'alice');
    assert.equal(cgi.cgi.pathInfo, '/z');
  });
});

describe('exact-match', () => {
  const engine = new ServeEngine({
    mounts: [
      { mountpoint: '/x', origin: 'callback://exact', exactMatch: true },
      { mountpoint: '/robots.txt', origin: robots, exactMatch: true, extraMimetypes: { txt: 'text/plain' } },
      { mountpoint: '/sub', origin: www, exactMatch: '1' },
      { mountpoint: '/both', origin: 'callback://exact-both', exactMatch: true },
      { mountpoint: '/both', origin: www },
      { mountpoint: '/', origin: www },
    ],
  });
  const target = (name: string, mountpoint: string) => ({ name, remainder: '', mountpoint, pmo: {} });

  it('matches the exact URI only; the paths below go to another mount or 404', async () => {
    const rows: Row[] = [
      { name: '/x', url: '/x', want: { status: 0, callback: target('exact', '/x') } },
      { name: '/x?q', url: '/x?q=1', want: { status: 0, callback: target('exact', '/x') } },
      { name: '/x/ is below it', url: '/x/', want: { status: 404, notFound: true, page: true } },
      { name: '/x/y is below it', url: '/x/y', want: { status: 404, notFound: true, page: true } },
      { name: 'a file origin, served without a slash redirect', url: '/robots.txt', want: { status: 200, body: 'User-agent: *\n' } },
      { name: 'a directory origin serves its default file', url: '/sub', want: { status: 200, body: '<h1>home</h1>' } },
      { name: 'below a directory origin: the / mount', url: '/sub/', want: { status: 200, body: '<h1>sub</h1>' } },
      { name: 'a mountpoint twice: the exact one wins for the URI', url: '/both', want: { status: 0, callback: target('exact-both', '/both') } },
      { name: 'a mountpoint twice: the other one below it', url: '/both/a.txt', want: { status: 200, body: 'private a\n' } },
    ];
    for (const row of rows) await runRow(engine, row);
  });

  it('refuses an exact-match mountpoint written with a trailing slash, and a mountpoint twice without one exact', () => {
    assert.throws(
      () => new ServeEngine({ mounts: [{ mountpoint: '/x/', origin: www, exactMatch: true }] }),
      /mounts\[0\]\.mountpoint: write an exact-match mountpoint without the trailing slash/,
    );
    assert.throws(
      () =>
        new ServeEngine({
          mounts: [
            { mountpoint: '/x', origin: www },
            { mountpoint: '/x', origin: www },
          ],
        }),
      /used twice/,
    );
  });
});

describe('append-path', () => {
  const engine = new ServeEngine({
    mounts: [
      { mountpoint: '/old', origin: '>https://new.example', appendPath: true },
      { mountpoint: '/docs', origin: '>https://docs.example/v2/', appendPath: 'on' },
      { mountpoint: '/bare', origin: '>https://new.example/home' },
    ],
  });

  it('appends the path after the mountpoint and the query to the target; without it the bare target', async () => {
    const table: [string, string][] = [
      ['/old/a/b?q=1&r', 'https://new.example/a/b?q=1&r'],
      ['/old/a/b/', 'https://new.example/a/b/'],
      ['/old', 'https://new.example/'],
      ['/old/', 'https://new.example/'],
      ['/old?x', 'https://new.example/?x'],
      ['/old/caf%C3%A9%20menu', 'https://new.example/caf%C3%A9%20menu'],
      ['/old//a/./b', 'https://new.example/a/b'],
      ['/docs/guide', 'https://docs.example/v2/guide'],
      ['/docs', 'https://docs.example/v2/'],
      ['/bare/a/b?q=1', 'https://new.example/home'],
    ];
    for (const [url, location] of table) await runRow(engine, { name: url, url, want: { status: 301, headers: { location } } });
  });

  it('is refused on other origins and on a target with a query', () => {
    assert.throws(() => new ServeEngine({ mounts: [{ mountpoint: '/a', origin: www, appendPath: true }] }), /appendPath applies only to redirect origins/);
    assert.throws(
      () => new ServeEngine({ mounts: [{ mountpoint: '/a', origin: '>https://x.example/?a=1', appendPath: true }] }),
      /must have no query or fragment/,
    );
  });
});

describe('mount keys that are refused', () => {
  it('refuses keepalive-timeout on a mount, saying why and pointing to the vhost key', () => {
    assert.throws(
      () => mountFromConfig({ mountpoint: '/', origin: www, 'keepalive-timeout': '30' }, 'mounts[0]'),
      /^TypeError: mounts\[0\]: "keepalive-timeout" is not supported on a mount: node sets the keep-alive timeout per server .*set the vhost's "keepalive-timeout" instead$/,
    );
    for (const key of ['auth-mask', 'interpret', 'cgi-chroot', 'protocol', 'interceptor-path'])
      assert.throws(() => mountFromConfig({ mountpoint: '/', origin: www, [key]: '1' }, 'm'), new RegExp(`^TypeError: m: "${key}" is not supported`));
    assert.throws(() => mountFromConfig({ mountpoint: '/', origin: www, constructor: '1' }, 'm'), /unknown key "constructor"/);
  });

  it('checks basic-auth options in code as the config does', () => {
    const m = (extra: Partial<MountOptions>): MountOptions => ({ mountpoint: '/', origin: www, ...extra });
    assert.throws(() => new ServeEngine({ mounts: [m({ basicAuth: join(dir, 'nope') })] }), /mounts\[0\]\.basicAuth: .*nope cannot be read \(ENOENT\)/);
    assert.throws(() => new ServeEngine({ mounts: [m({ basicAuthRealm: 'x' })] }), /basicAuthRealm needs basicAuth/);
    assert.throws(() => new ServeEngine({ mounts: [m({ basicAuth: credentials, basicAuthRealm: 'a"b' })] }), /basicAuthRealm must be printable/);
    const file = join(dir, 'users');
    writeFileSync(file, 'carol:x\n');
    assert.equal(new ServeEngine({ mounts: [m({ basicAuth: file })] }).mounts[0]!.auth?.credentials.size, 1);
  });
});
