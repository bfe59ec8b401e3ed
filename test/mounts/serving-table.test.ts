/**
 * Issue 9's behaviours pinned by tables through ServeEngine's public API (no socket): the Accept rule of
 * the SPA fallback, then rows for the fallback, clean URLs, default lists, CORS, the downloads preset and
 * /.well-known/ names, and the option checks.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ServeEngine, type MountOptions } from '../../src/index.js';
import { acceptsHtml } from '../../src/mounts/engine.js';
import { runRow, type Row } from '../helpers/engine-table.js';
import { rmTree, tmpDir, writeTree } from '../helpers/fixtures.js';

describe('acceptsHtml: the SPA fallback’s Accept rule', () => {
  const rows: [string | undefined, boolean][] = [
    [undefined, true],
    ['', true],
    ['*/*', true],
    ['text/*', true],
    ['text/html', true],
    ['TEXT/HTML;q=0.5', true],
    ['application/xhtml+xml', true],
    ['text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', true], // a browser navigation
    ['image/avif,image/webp,*/*', false], // an <img>
    ['application/json', false],
    ['application/json, text/plain, */*', false],
    ['text/html;q=0', false],
    ['text/html;q=0, */*', false],
    ['*/*;q=0', false],
    ['application/json;q=0, */*', true],
  ];
  for (const [accept, want] of rows) it(`${JSON.stringify(accept)} → ${want}`, () => assert.equal(acceptsHtml(accept), want));
});

const dir = tmpDir('vfserve-serving-table-');
const www = join(dir, 'www');
let engine: ServeEngine;

before(() => {
  writeTree(www, {
    'index.html': Buffer.from('<p>shell</p>'),
    'about.html': Buffer.from('<p>about</p>'),
    'only-htm/index.htm': Buffer.from('<p>htm</p>'),
    'notes.yaml': Buffer.from('a: 1\n'),
    COPYING: Buffer.from('GPL\n'),
    '.well-known/acme-challenge/tok_en-1': Buffer.from('tok_en-1.x'),
  });
  const mounts: MountOptions[] = [
    { mountpoint: '/', origin: www, spaFallback: '/index.html', extensions: 'html', default: ['index.html', 'index.htm'], cors: true },
    { mountpoint: '/dl', origin: www, mimetypePreset: 'downloads' },
  ];
  engine = new ServeEngine({ mounts, resolveCacheMs: 0 });
});

after(() => rmTree(dir));

const SHELL = '<p>shell</p>';
const rows: Row[] = [
  {
    name: 'a route → the fallback',
    url: '/x/y',
    head: true,
    want: { status: 200, body: SHELL, headers: { 'cache-control': 'no-cache', vary: 'Accept', 'access-control-allow-origin': '*' } },
  },
  {
    name: 'a route, JSON client → 404',
    url: '/x/y',
    headers: { accept: 'application/json' },
    want: { status: 404, notFound: true, headers: { vary: 'Accept' } },
  },
  { name: 'an asset → 404, no Vary', url: '/x/y.js', want: { status: 404, notFound: true, headers: { vary: null } } },
  { name: 'a dotfile → 404', url: '/.env', want: { status: 404, notFound: true } },
  { name: 'clean URL', url: '/about', want: { status: 200, body: '<p>about</p>', headers: { 'cache-control': 'no-store', vary: null } } },
  { name: 'default list, second', url: '/only-htm/', want: { status: 200, body: '<p>htm</p>' } },
  { name: 'POST → 405, declined', method: 'POST', url: '/about', want: { status: 405, headers: { allow: 'GET, HEAD, OPTIONS' } } },
  {
    name: 'preflight',
    method: 'OPTIONS',
    url: '/about',
    headers: { origin: 'https://a.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'x-a' },
    want: {
      status: 204,
      body: null,
      headers: { 'access-control-allow-headers': 'x-a', 'access-control-allow-methods': 'GET, HEAD, OPTIONS', 'content-length': '0' },
    },
  },
  { name: 'a refused type → 403 with the operator’s note', url: '/notes.yaml', want: { status: 403, error: true } },
  { name: 'the same suffix again → no second note', url: '/notes.yaml', want: { status: 403, error: false } },
  { name: 'downloads: yaml', url: '/dl/notes.yaml', want: { status: 200, headers: { 'content-type': 'application/yaml; charset=utf-8' } } },
  { name: 'downloads: COPYING', url: '/dl/COPYING', want: { status: 200, headers: { 'content-type': 'text/plain; charset=utf-8' } } },
  { name: 'strict: COPYING → 403', url: '/COPYING', want: { status: 403 } },
  {
    name: 'ACME token',
    url: '/.well-known/acme-challenge/tok_en-1',
    want: { status: 200, body: 'tok_en-1.x', headers: { 'content-type': 'text/plain; charset=utf-8' } },
  },
];

describe('serving behaviours through the engine', () => {
  for (const row of rows) it(row.name, () => runRow(engine, row));
  it('marks 405s and whitelist refusals as declined, 404s as notFound', async () => {
    assert.equal((await engine.handle({ method: 'DELETE', url: '/about', header: () => undefined })).declined, true);
    assert.equal((await engine.handle({ method: 'GET', url: '/notes.yaml', header: () => undefined })).declined, true);
    assert.equal((await engine.handle({ method: 'GET', url: '/about', header: () => undefined })).declined, undefined);
  });
});

describe('option checks', () => {
  const bad: [string, Partial<MountOptions> | Record<string, unknown>, RegExp][] = [
    ['spaFallback without a slash', { spaFallback: 'index.html' }, /spaFallback/],
    ['spaFallback with ..', { spaFallback: '/../x.html' }, /spaFallback/],
    ['extensions with a slash', { extensions: ['a/b'] }, /extensions/],
    ['extensions not strings', { extensions: [1] }, /extensions/],
    ['an empty default list', { default: [] }, /default/],
    ['a default with ..', { default: ['../x.html'] }, /default/],
    ['an unknown preset', { mimetypePreset: 'lenient' }, /mimetypePreset/],
    ['cors not a boolean', { cors: 'maybe' }, /cors/],
  ];
  for (const [name, extra, message] of bad) {
    it(`refuses ${name}`, () => {
      assert.throws(() => new ServeEngine({ mounts: [{ mountpoint: '/', origin: www, ...extra }] }), message);
    });
  }
  it('reads booleans with the configuration file’s vocabulary', () => {
    for (const v of ['yes', 'On', 'TRUE', '1', 1, true])
      assert.equal(new ServeEngine({ mounts: [{ mountpoint: '/', origin: www, cors: v as boolean }] }).mounts[0]!.cors, true);
    for (const v of ['no', 'off', 'false', '0', 0, false])
      assert.equal(new ServeEngine({ mounts: [{ mountpoint: '/', origin: www, cors: v as boolean }] }).mounts[0]!.cors, false);
  });
});
