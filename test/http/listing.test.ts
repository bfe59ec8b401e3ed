/**
 * Directory listings (`listing` per mount) over real sockets on 127.0.0.1, with raw request
 * paths: disk directories, archive mounts, archives inside a served folder, JSON negotiation,
 * hostile names, what is hidden, the cap, HEAD, and listings off by default.
 */
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createHandler, fopReadDir, MemFops, prefersJson, Vfs, type ListingJson } from '../../src/index.js';
import { ConfigError, loadConfig } from '../../src/server/config.js';
import { rmTree, tmpDir, writeTree } from '../helpers/fixtures.js';
import { get, listen, rawRequest, type RawResponse } from '../helpers/http.js';
import { makeZip } from '../helpers/zip-writer.js';

const dir = tmpDir('vfserve-listing-');
const www = join(dir, 'www');
const outside = join(dir, 'outside');
const ZIP_TIME = new Date('2024-01-02T03:04:06Z');
const HOSTILE = ['<script>alert(1)<.txt', `q"uote's & amp.txt`, 'snow ☃ é.txt', 'a b#?%.txt'];
const archive = makeZip({
  entries: [
    { name: 'readme.txt', data: 'read me\n', mtime: ZIP_TIME },
    { name: 'css/app.css', data: 'body{}', mtime: ZIP_TIME },
    { name: 'docs/guide/intro.html', data: '<p>intro</p>', mtime: ZIP_TIME },
    { name: 'docs/guide/.secret', data: 'hidden', mtime: ZIP_TIME },
    { name: 'docs/guide/run.sh', data: 'echo', mtime: ZIP_TIME },
    { name: 'docs/index.html', data: '<p>docs home</p>', mtime: ZIP_TIME },
  ],
});

let port = 0;
let close: () => Promise<void> = () => Promise.resolve();

before(async () => {
  writeTree(www, {
    'plain.txt': Buffer.from('plain text\n'),
    'photo.png': Buffer.alloc(3000, 1),
    'run.sh': Buffer.from('echo hi'),
    'secret.php': Buffer.from('<?php'),
    '.hidden.txt': Buffer.from('hidden'),
    '.git/config': Buffer.from('[core]'),
    'hostile/<b>no suffix': Buffer.from('refused'),
    'sub/index.html': Buffer.from('<p>sub home</p>'),
    'nodefault/x.txt': Buffer.from('x'),
    'files/site.zip': archive,
    'nest/outer.zip': makeZip({
      entries: [
        { name: 'lib/inner.zip', data: archive, method: 0 },
        { name: 'lib/notes.txt', data: 'n', mtime: ZIP_TIME },
      ],
    }),
    ...Object.fromEntries(HOSTILE.map((n) => [`hostile/${n}`, Buffer.from(n)])),
    ...Object.fromEntries(Array.from({ length: 25 }, (_, i) => [`many/f${String(i).padStart(2, '0')}.txt`, Buffer.from(String(i))])),
  });
  mkdirSync(join(www, 'empty'));
  writeTree(outside, { 'secret.txt': Buffer.from('outside the root') });
  symlinkSync(join(www, 'plain.txt'), join(www, 'inside-link.txt'));
  symlinkSync(join(outside, 'secret.txt'), join(www, 'outside-link.txt'));
  symlinkSync(outside, join(www, 'outside-dir'));
  symlinkSync(join(www, 'missing.txt'), join(www, 'dangling.txt'));
  writeFileSync(join(dir, 'site.zip'), archive);
  const handler = createHandler({
    mounts: [
      { mountpoint: '/', origin: `file://${www}`, listing: true, headers: { 'x-mount': 'root' } },
      { mountpoint: '/off', origin: `file://${www}` },
      { mountpoint: '/site', origin: `file://${dir}/site.zip`, listing: true },
      { mountpoint: '/capped', origin: `file://${www}/many`, listing: true, listingMax: 10 },
      { mountpoint: '/links', origin: `file://${www}`, listing: true, followSymlinks: true },
      { mountpoint: '/shell', origin: `file://${www}`, listing: true, extraMimetypes: { '.sh': 'text/plain' } },
    ],
  });
  ({ port, close } = await listen(handler));
});

after(async () => {
  await close();
  rmTree(dir);
});

const html = (r: RawResponse): string => r.body.toString('utf8');
const json = (r: RawResponse): ListingJson => JSON.parse(r.body.toString('utf8')) as ListingJson;
const names = (r: RawResponse): string[] => json(r).entries.map((e) => e.name);
const asJson = { accept: 'application/json' };

describe('disk listing', () => {
  it('lists a directory without a default file as HTML: directories first, sizes, UTC times, no script', async () => {
    const r = await get(port, '/');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(r.headers['cache-control'], 'no-cache');
    assert.equal(r.headers.vary, 'Accept');
    assert.equal(r.headers['x-mount'], 'root');
    assert.equal(r.headers['content-length'], String(r.body.length));
    const csp = String(r.headers['content-security-policy']);
    assert.match(csp, /default-src 'none'/);
    assert.doesNotMatch(csp, /script-src|unsafe-inline/);
    const body = html(r);
    assert.doesNotMatch(body, /<script/i);
    assert.match(body, /prefers-color-scheme:dark/);
    assert.match(body, /<a href="plain\.txt">plain\.txt<\/a><\/td><td class="s"><span title="11 bytes">11 B<\/span>/);
    assert.match(body, /<time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z">\d{4}-\d\d-\d\d \d\d:\d\d UTC<\/time>/);
    const at = (s: string): number => body.indexOf(`>${s}<`);
    const order = ['empty/', 'files/', 'hostile/', 'many/', 'nodefault/', 'sub/', 'inside-link.txt', 'photo.png', 'plain.txt'];
    for (const [i, n] of order.entries()) {
      assert.ok(at(n) > 0, `${n} is listed`);
      if (i > 0) assert.ok(at(n) > at(order[i - 1]!), `${n} after ${order[i - 1]!}`);
    }
    // The disk path of the mount is never shown.
    assert.ok(!body.includes(www));
  });

  it('still serves the default file of a directory that has one', async () => {
    const r = await get(port, '/sub/');
    assert.equal(r.status, 200);
    assert.equal(html(r), '<p>sub home</p>');
  });

  it('lists a subdirectory with a breadcrumb and a parent link; redirects the slashless form first', async () => {
    const redirect = await get(port, '/nodefault');
    assert.equal(redirect.status, 301);
    assert.equal(redirect.headers.location, '/nodefault/');
    const r = await get(port, '/nodefault/');
    assert.equal(r.status, 200);
    const body = html(r);
    assert.match(body, /<h1>Index of <a href="\/">\/<\/a><span aria-current="page">nodefault\/<\/span><\/h1>/);
    assert.match(body, /<a href="\.\.\/">\.\.\/<\/a>/);
    assert.match(body, /<a href="x\.txt">x\.txt<\/a>/);
  });

  it('says so for an empty directory', async () => {
    const r = await get(port, '/empty/');
    assert.equal(r.status, 200);
    assert.match(html(r), /This directory is empty/);
    assert.deepEqual(json(await get(port, '/empty/', asJson)).entries, []);
  });

  it('answers HEAD with the headers of GET and no body', async () => {
    const g = await get(port, '/nodefault/');
    const h = await get(port, '/nodefault/', {}, 'HEAD');
    assert.equal(h.status, 200);
    assert.equal(h.body.length, 0);
    assert.equal(h.headers['content-type'], g.headers['content-type']);
    assert.equal(h.headers['content-length'], g.headers['content-length']);
    assert.equal(h.headers.vary, 'Accept');
  });

  it('is off by default: a directory without a default file is 404, as before', async () => {
    assert.equal((await get(port, '/off/nodefault/')).status, 404);
    assert.equal((await get(port, '/off/')).status, 404);
    // And an archive asked for as a directory is not a directory there.
    assert.equal((await get(port, '/off/files/site.zip/')).status, 404);
  });

  it('answers 405 to other methods, as for files', async () => {
    assert.equal((await get(port, '/nodefault/', {}, 'POST')).status, 405);
  });
});

describe('what a listing hides', () => {
  it('hides dotfiles and dot-directories', async () => {
    const listed = names(await get(port, '/', asJson));
    assert.ok(!listed.some((n) => n.startsWith('.')), listed.join(' '));
    assert.ok(!html(await get(port, '/')).includes('.git'));
  });

  it('hides files the mount’s mimetype whitelist refuses, and shows them where the mount allows them', async () => {
    const listed = names(await get(port, '/', asJson));
    assert.ok(!listed.includes('run.sh'));
    assert.ok(!listed.includes('secret.php'));
    const shell = names(await get(port, '/shell/', asJson));
    assert.ok(shell.includes('run.sh'));
    assert.ok(!shell.includes('secret.php'));
  });

  it('hides symlinks that leave the root, and dangling ones; shows them with followSymlinks', async () => {
    const listed = names(await get(port, '/', asJson));
    assert.ok(listed.includes('inside-link.txt'));
    assert.ok(!listed.includes('outside-link.txt'));
    assert.ok(!listed.includes('outside-dir'));
    assert.ok(!listed.includes('dangling.txt'));
    assert.equal((await get(port, '/outside-dir/')).status, 404);
    const followed = names(await get(port, '/links/', asJson));
    assert.ok(followed.includes('outside-link.txt'));
    assert.ok(followed.includes('outside-dir'));
    assert.ok(!followed.includes('dangling.txt'));
  });
});

describe('hostile names', () => {
  it('escapes names in text and encodes them in hrefs, and every href fetches its file', async () => {
    const r = await get(port, '/hostile/');
    const body = html(r);
    assert.ok(!body.includes('<script>'), 'no raw <script>');
    assert.ok(body.includes('&lt;script&gt;alert(1)&lt;.txt'));
    assert.ok(body.includes('q&quot;uote&#39;s &amp; amp.txt'));
    assert.ok(body.includes('snow ☃ é.txt'));
    const hrefs = [...body.matchAll(/<a href="([^"]*)">/g)].map((m) => m[1]!).filter((h) => h !== '../' && !h.startsWith('/'));
    assert.equal(hrefs.length, HOSTILE.length);
    for (const href of hrefs) assert.match(href, /^[A-Za-z0-9%._~-]+$/, `href ${href} is fully encoded`);
    assert.ok(hrefs.includes('%3Cscript%3Ealert%281%29%3C.txt'));
    // Each href, resolved against the directory, serves the file it names.
    for (const [i, n] of HOSTILE.entries()) {
      const href = hrefs.find((h) => decodeURIComponent(h) === n);
      assert.ok(href !== undefined, `${n} has an href (${i})`);
      const file = await rawRequest(port, `GET /hostile/${href} HTTP/1.1`);
      assert.equal(file.status, 200, n);
      assert.ok(Buffer.from(file.text, 'latin1').toString('utf8').endsWith(n), n);
    }
  });

  it('does not list a name without a suffix the whitelist knows', async () => {
    const listed = names(await get(port, '/hostile/', asJson));
    assert.equal(listed.length, HOSTILE.length);
    assert.ok(!listed.includes('<b>no suffix'));
    assert.ok(!html(await get(port, '/hostile/')).includes('no suffix'));
  });

  it('keeps names exact in JSON, with encoded hrefs', async () => {
    const j = json(await get(port, '/hostile/', asJson));
    const e = j.entries.find((x) => x.name === `q"uote's & amp.txt`);
    assert.ok(e);
    assert.equal(e.path, `/hostile/q"uote's & amp.txt`);
    assert.equal(e.href, '/hostile/q%22uote%27s%20%26%20amp.txt');
    assert.equal(j.entries.find((x) => x.name === 'a b#?%.txt')?.href, '/hostile/a%20b%23%3F%25.txt');
  });
});

describe('JSON negotiation', () => {
  it('answers application/json with the documented shape', async () => {
    const r = await get(port, '/nodefault/', asJson);
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
    assert.equal(r.headers.vary, 'Accept');
    assert.equal(r.headers['cache-control'], 'no-cache');
    const j = json(r);
    assert.equal(j.path, '/nodefault/');
    assert.equal(j.total, 1);
    assert.equal(j.truncated, false);
    assert.equal(j.entries.length, 1);
    const e = j.entries[0]!;
    assert.equal(e.name, 'x.txt');
    assert.equal(e.type, 'file');
    assert.equal(e.size, 1);
    assert.match(e.mtime ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(e.path, '/nodefault/x.txt');
    assert.equal(e.href, '/nodefault/x.txt');
    const root = json(await get(port, '/', asJson));
    const sub = root.entries.find((x) => x.name === 'sub')!;
    assert.deepEqual([sub.type, sub.size, sub.path], ['directory', null, '/sub/']);
  });

  it('follows the Accept header’s preferences', async () => {
    const kind = async (accept: string): Promise<string> => (await get(port, '/nodefault/', { accept })).headers['content-type'] ?? '';
    assert.match(await kind('text/html,application/json;q=0.9'), /^text\/html/);
    assert.match(await kind('application/json, text/html;q=0.5'), /^application\/json/);
    assert.match(await kind('*/*'), /^text\/html/);
    assert.match(await kind('application/json, */*'), /^application\/json/);
    assert.match(await kind('text/html;q=0, application/*'), /^application\/json/);
    assert.match(await kind('image/png'), /^text\/html/);
  });

  it('prefersJson: q-values, specificity, and malformed headers', () => {
    assert.equal(prefersJson(undefined), false);
    assert.equal(prefersJson(''), false);
    assert.equal(prefersJson('application/json'), true);
    assert.equal(prefersJson('application/json;q=0'), false);
    assert.equal(prefersJson('text/*;q=0.2, application/json;q=0.3'), true);
    assert.equal(prefersJson('garbage, ;;, /'), false);
  });
});

describe('archives', () => {
  it('lists an archive mount’s root and a nested subdirectory, with the entries’ sizes and times', async () => {
    const root = json(await get(port, '/site/', asJson));
    assert.deepEqual(
      root.entries.map((e) => `${e.type}:${e.name}`),
      ['directory:css', 'directory:docs', 'file:readme.txt'],
    );
    assert.equal(root.entries[2]!.size, 8);
    assert.equal(root.entries[2]!.mtime, ZIP_TIME.toISOString());
    const nested = await get(port, '/site/docs/guide/', asJson);
    assert.equal(nested.status, 200);
    const j = json(nested);
    assert.equal(j.path, '/site/docs/guide/');
    // .secret and run.sh are hidden inside archives too.
    assert.deepEqual(
      j.entries.map((e) => [e.name, e.size, e.mtime, e.href]),
      [['intro.html', 12, ZIP_TIME.toISOString(), '/site/docs/guide/intro.html']],
    );
    const page = html(await get(port, '/site/docs/guide/'));
    assert.match(page, /<h1>Index of <a href="\/site\/">\/site\/<\/a><a href="\/site\/docs\/">docs\/<\/a><span aria-current="page">guide\/<\/span><\/h1>/);
    assert.ok(!page.includes(dir), 'no disk path');
  });

  it('serves a directory’s default file inside an archive instead of listing it', async () => {
    assert.equal(html(await get(port, '/site/docs/')), '<p>docs home</p>');
  });

  it('shows an archive inside a served folder as a directory and lists it', async () => {
    const files = json(await get(port, '/files/', asJson));
    assert.deepEqual(
      files.entries.map((e) => [e.name, e.type, e.href]),
      [['site.zip', 'directory', '/files/site.zip/']],
    );
    const inside = json(await get(port, '/files/site.zip/', asJson));
    assert.deepEqual(
      inside.entries.map((e) => e.name),
      ['css', 'docs', 'readme.txt'],
    );
    const css = json(await get(port, '/files/site.zip/css/', asJson));
    assert.deepEqual(
      css.entries.map((e) => [e.name, e.size]),
      [['app.css', 6]],
    );
    assert.equal((await get(port, '/files/site.zip/nope/')).status, 404);
  });

  it('lists archives inside archives: the inner root and a directory in it', async () => {
    const lib = json(await get(port, '/nest/outer.zip/lib/', asJson));
    assert.deepEqual(
      lib.entries.map((e) => [e.name, e.type]),
      [
        ['inner.zip', 'directory'],
        ['notes.txt', 'file'],
      ],
    );
    const inner = json(await get(port, '/nest/outer.zip/lib/inner.zip/', asJson));
    assert.deepEqual(
      inner.entries.map((e) => e.name),
      ['css', 'docs', 'readme.txt'],
    );
    const guide = json(await get(port, '/nest/outer.zip/lib/inner.zip/docs/guide/', asJson));
    assert.deepEqual(
      guide.entries.map((e) => [e.name, e.size, e.href]),
      [['intro.html', 12, '/nest/outer.zip/lib/inner.zip/docs/guide/intro.html']],
    );
    assert.equal((await get(port, '/nest/outer.zip/lib/notes.txt/')).status, 404);
  });
});

describe('backends that cannot list', () => {
  it('answers 404, as with listings off, when the filesystem has no readDir', async () => {
    const mem = new MemFops({ '/www/dir/a.txt': 'a', '/www/home/index.html': '<p>home</p>' });
    assert.equal(await fopReadDir(mem, '/www/dir'), undefined);
    // A Vfs over it reports the same "cannot list" for the paths it hands down.
    assert.equal(await new Vfs({ base: mem }).readDir('/www/dir'), undefined);
    const server = await listen(createHandler({ vfs: mem, mounts: [{ mountpoint: '/', origin: '/www', listing: true }] }));
    try {
      assert.equal((await get(server.port, '/dir/')).status, 404);
      assert.equal(html(await get(server.port, '/home/')), '<p>home</p>');
      assert.equal((await get(server.port, '/dir/a.txt')).status, 200);
    } finally {
      await server.close();
    }
  });
});

describe('the cap', () => {
  it('shows at most listingMax entries, with a note, and says so in JSON', async () => {
    const body = html(await get(port, '/capped/'));
    assert.equal([...body.matchAll(/<tr class="f">/g)].length, 10);
    assert.match(body, /Showing the first 10 of 25 entries\./);
    assert.ok(body.includes('>f09.txt<') && !body.includes('>f10.txt<'));
    const j = json(await get(port, '/capped/', asJson));
    assert.equal(j.entries.length, 10);
    assert.equal(j.total, 25);
    assert.equal(j.truncated, true);
  });

  it('adds no note when nothing was left out', async () => {
    assert.doesNotMatch(html(await get(port, '/many/')), /Showing the first/);
  });
});

describe('configuration', () => {
  it('accepts listing and listing-max in the config’s vocabulary, and names the path of a bad value', () => {
    const conf = join(dir, 'conf');
    const write = (mount: Record<string, unknown>): void =>
      writeFileSync(conf, JSON.stringify({ vhosts: [{ port: 0, mounts: [{ mountpoint: '/', origin: www, ...mount }] }] }));
    write({ listing: '1', 'listing-max': '50' });
    assert.deepEqual((({ listing, listingMax }) => ({ listing, listingMax }))(loadConfig(conf).vhosts[0]!.mounts[0]!), { listing: true, listingMax: 50 });
    write({ listing: 'yes' });
    assert.equal(loadConfig(conf).vhosts[0]!.mounts[0]!.listing, true);
    write({ listing: 'sometimes' });
    assert.throws(
      () => loadConfig(conf),
      (err: unknown) => err instanceof ConfigError && /\["listing"\]: must be a boolean/.test(err.message),
    );
    write({ 'listing-max': 0 });
    assert.throws(
      () => loadConfig(conf),
      (err: unknown) => err instanceof ConfigError && /\["listing-max"\]: must be an integer/.test(err.message),
    );
  });

  it('refuses a bad listingMax in code', () => {
    assert.throws(() => createHandler({ mounts: [{ mountpoint: '/', origin: www, listing: true, listingMax: 0 }] }), /listingMax must be a positive integer/);
  });
});
