/**
 * ServeEngine pinned by tables, no socket: each row is { method, url, headers } → { status, selected
 * headers, body }, run through the public API (`new ServeEngine`, `handle`) only, in the manner of Go's
 * net/http fs_test.go. These pin today's observable behaviour so that a restructure of engine.ts can be
 * checked against it.
 *
 * ETags are compared by relation only (present and quoted, stable, distinct per representation, and what
 * If-None-Match / If-Match / If-Range do with an earlier response's tag): their format is not pinned.
 * Status pages are pinned by status and headers, never by their HTML.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { brotliCompressSync, crc32, deflateRawSync, gzipSync } from 'node:zlib';
import { ServeEngine, type EngineOptions, type MountOptions } from '../../src/index.js';
import { exchange, headerOf, runRow, type Row, type Want } from '../helpers/engine-table.js';
import { noise } from '../helpers/fixtures.js';
import { makeZip } from '../helpers/zip-writer.js';

// ---------------------------------------------------------------------------------------------------
// Fixtures: named after the edge case they test.

const dir = mkdtempSync(join(tmpdir(), 'vfserve-engine-table-'));
const www = join(dir, 'www');
const outside = join(dir, 'outside');

function prose(length: number, salt = 0): Buffer {
  const words = ['candide', 'pangloss', 'garden', 'best', 'of', 'all', 'possible', 'worlds', 'cultivate', 'our'];
  let s = '';
  for (let i = salt; s.length < length; i++) s += words[(i * 7 + (i >> 3)) % words.length]! + (i % 13 === 12 ? '.\n' : ' ');
  return Buffer.from(s.slice(0, length));
}

/** 10,000 bytes, a..z repeating: any slice is recognisable. */
const tenK = Buffer.from(Array.from({ length: 10_000 }, (_, i) => String.fromCharCode(97 + (i % 26))).join(''));
const appJs = prose(50_000);
const appJsGz = gzipSync(appJs);
const appJsBr = brotliCompressSync(appJs);
const onlyGzCss = prose(4000, 3);
const onlyGzCssGz = gzipSync(onlyGzCss);
const onlyBrHtml = prose(3000, 5);
const onlyBrHtmlBr = brotliCompressSync(onlyBrHtml);
const photo = noise(2000, 1);

const zipIndex = Buffer.from('<!doctype html><h1>zip home</h1>');
const zipCss = prose(20_000, 7);
const zipLogo = noise(3000, 3);
const zipStored = Buffer.from('stored, not deflated\n');
const zipStoredSib = prose(2000, 11);
const zipStoredSibGz = gzipSync(zipStoredSib);
const zipDeflatedWithBr = prose(5000, 13);

/** What the engine sends for a deflated entry to a gzip client: a fixed gzip header, the archive's raw deflate bytes, CRC-32 and size. */
function zipGzip(data: Buffer): Buffer {
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc32(data) >>> 0, 0);
  trailer.writeUInt32LE(data.length >>> 0, 4);
  return Buffer.concat([Buffer.from('1f8b0800000000000003', 'hex'), deflateRawSync(data), trailer]);
}
const zipCssGz = zipGzip(zipCss);
const zipTenKGz = zipGzip(tenK);

const siteZip = makeZip({
  entries: [
    { name: 'index.html', data: zipIndex },
    { name: 'css/app.css', data: zipCss },
    { name: 'img/logo.png', data: zipLogo, method: 0 },
    { name: 'docs/index.html', data: Buffer.from('<p>zip docs</p>') },
    { name: 'nodefault/x.txt', data: Buffer.from('x') },
    { name: 'ten-k.txt', data: tenK },
    { name: 'stored.txt', data: zipStored, method: 0 },
    { name: 'stored-with-sibling.txt', data: zipStoredSib, method: 0 },
    { name: 'stored-with-sibling.txt.gz', data: zipStoredSibGz, method: 0 },
    { name: 'empty.txt', data: '' },
    { name: 'deflated-with-br.js', data: zipDeflatedWithBr },
    { name: 'deflated-with-br.js.br', data: brotliCompressSync(zipDeflatedWithBr), method: 0 },
    { name: 'data.bin', data: noise(100, 5) },
    { name: 'encrypted.txt', data: prose(400), flags: 1 },
    { name: '.env', data: 'SECRET=1' },
  ],
});

const MTIME = Date.UTC(2021, 4, 6, 7, 8, 9); // Thu, 06 May 2021 07:08:09 GMT
const LM = 'Thu, 06 May 2021 07:08:09 GMT';
const LM_BEFORE = 'Wed, 05 May 2021 07:08:09 GMT';
const LM_AFTER = 'Fri, 07 May 2021 07:08:09 GMT';
const SIBLING_MTIME = Date.UTC(2022, 0, 1, 0, 0, 0);
const SIBLING_LM = 'Sat, 01 Jan 2022 00:00:00 GMT';
const ZIP_LM = 'Tue, 02 Jan 2024 03:04:06 GMT'; // the zip writer's default DOS time

const files: Record<string, Buffer | string> = {
  'index.html': '<!doctype html><h1>home</h1>',
  'plain.txt': 'plain text\n',
  'ten-k.txt': tenK,
  'empty.txt': '',
  'one-byte.txt': 'x',
  'UPPER.HTML': '<p>upper</p>',
  'style.css': 'body{color:red}',
  'data.json': '{"a":1}',
  'image.svg': '<svg xmlns="http://www.w3.org/2000/svg"/>',
  'module.mjs': 'export {};',
  'photo.png': photo,
  'not-whitelisted.bin': noise(10, 2),
  'not-whitelisted.bin.gz': gzipSync(noise(10, 2)),
  no_ext: 'no extension',
  'script.php': '<?php echo 1;',
  'app.js': appJs,
  'app.js.gz': appJsGz,
  'app.js.br': appJsBr,
  'only-gz.css': onlyGzCss,
  'only-gz.css.gz': onlyGzCssGz,
  'only-br.html': onlyBrHtml,
  'only-br.html.br': onlyBrHtmlBr,
  'no-siblings.js': 'console.log(1)',
  'dir-sibling.txt': 'the .gz next to me is a directory',
  'dir-sibling.txt.gz/inner.txt': 'inner',
  'dir-with-index/index.html': '<p>dir index</p>',
  'dir-with-index/page.html': '<p>dir page</p>',
  'dir-without-index/x.txt': 'x',
  'docs-root/index.html': '<p>docs index</p>',
  'docs-root/guide.html': '<p>docs guide</p>',
  'docs-root/api/shadowed.html': '<p>shadowed by the /docs/api mount</p>',
  'docs-root/apix/page.html': '<p>docs apix</p>',
  'api-root/index.html': '<p>api index</p>',
  'api-root/ref.html': '<p>api ref</p>',
  'docsx/guide.html': '<p>www docsx</p>',
  'evil.example/index.html': '<p>a directory named like a host</p>',
  'snow ☃/index.html': '<p>snow</p>',
  'a b.txt': 'space',
  'a+b.txt': 'plus',
  'percent%.txt': 'percent',
  '.hidden.txt': 'hidden',
  '.git/config': '[core]',
  '.well-known/security.txt': 'Contact: mailto:x@example.com',
  'sub/page.txt': 'sub page',
  'sub/.well-known/x.txt': 'not at the top',
  'sub/.dotdir/x.txt': 'in a dot directory',
  'files/site.zip': siteZip,
  'files/bad.zip': 'this is not a zip archive at all, but it is named like one',
  // A second one: a refused archive is reported once per engine, and the rows share an engine.
  'files/bad-too.zip': 'not a zip archive either',
  'mutable.txt': 'version one',
};

const mounts: MountOptions[] = [
  { mountpoint: '/', origin: `file://${www}` },
  { mountpoint: '/docs', origin: `file://${www}/docs-root` },
  { mountpoint: '/docs/api', origin: join(www, 'api-root') },
  { mountpoint: '/site', origin: `file://${www}/files/site.zip`, cacheMaxAge: 60, cacheReuse: true },
  {
    mountpoint: '/assets',
    origin: www,
    cacheMaxAge: 3600,
    cacheReuse: true,
    cacheIntermediaries: true,
    cacheImmutable: true,
    headers: { 'X-Mount': 'assets', 'x-shared': 'mount', 'content-length': '1', 'content-range': 'bytes 0-0/1', 'transfer-encoding': 'chunked' },
  },
  { mountpoint: '/revalidate', origin: www, cacheMaxAge: 60, cacheReuse: true, cacheRevalidate: true },
  { mountpoint: '/nocache', origin: www, cacheNo: true, cacheMaxAge: 60, cacheReuse: true },
  { mountpoint: '/maxage-only', origin: www, cacheMaxAge: 60 },
  { mountpoint: '/reuse-only', origin: www, cacheReuse: true },
  { mountpoint: '/forever', origin: www, cacheMaxAge: 2 ** 40, cacheReuse: true },
  {
    mountpoint: '/override',
    origin: www,
    headers: { 'cache-control': 'max-age=5', 'content-type': 'application/x-forced', vary: 'Origin', 'accept-ranges': 'none' },
  },
  { mountpoint: '/old', origin: '>https://example.com/new' },
  { mountpoint: '/moved', origin: '>https://Example.COM:443/a b?x=1' },
  { mountpoint: '/cb', origin: 'callback://echo', pmo: { greeting: 'hi' }, headers: { 'x-cb': 'yes' } },
  { mountpoint: '/any', origin: www, extraMimetypes: { '*': 'application/x-any' } },
  { mountpoint: '/raw', origin: www, extraMimetypes: { '*': '' } },
  { mountpoint: '/extra', origin: www, extraMimetypes: { '.bin': 'application/x-custom', '.HTML': 'text/x-upper' } },
  { mountpoint: '/links', origin: www, followSymlinks: true },
  { mountpoint: '/nopre', origin: www, precompressed: false },
  { mountpoint: '/home', origin: www, default: 'plain.txt' },
  { mountpoint: '/single-file', origin: join(www, 'plain.txt') },
  { mountpoint: '/ghost', origin: join(www, 'no-such-dir') },
];
// Configured vhost headers, including framing headers that must never reach a response.
const vhostHeaders = { 'x-vhost': 'on', 'x-shared': 'vhost', 'content-length': '12345', 'content-encoding': 'forged' };

interface Engines {
  /** resolveCacheMs 0: every request resolves afresh; bodies come from file handles. */
  plain: ServeEngine;
  /** The defaults: a 1 s resolution cache and the small-content cache (buffer bodies). */
  cached: ServeEngine;
  /** maxRanges 2. */
  tight: ServeEngine;
  /** No `/` mount. */
  partial: ServeEngine;
}
let E: Engines;
/** ETags of earlier responses, for the relation rows. */
const T: Record<string, string> = {};

before(async () => {
  for (const [name, data] of Object.entries(files)) {
    const p = join(www, name);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, data);
    utimesSync(p, MTIME / 1000, MTIME / 1000);
  }
  for (const sib of ['app.js.gz', 'app.js.br', 'only-gz.css.gz', 'only-br.html.br']) utimesSync(join(www, sib), SIBLING_MTIME / 1000, SIBLING_MTIME / 1000);
  mkdirSync(outside, { recursive: true });
  writeFileSync(join(outside, 'secret.txt'), 'outside the root');
  symlinkSync(join(www, 'plain.txt'), join(www, 'inside-link.txt'));
  symlinkSync(join(outside, 'secret.txt'), join(www, 'outside-link.txt'));
  symlinkSync(outside, join(www, 'outside-dir'));
  const base: EngineOptions = { mounts, headers: vhostHeaders };
  E = {
    plain: new ServeEngine({ ...base, resolveCacheMs: 0 }),
    cached: new ServeEngine(base),
    tight: new ServeEngine({ mounts: [{ mountpoint: '/', origin: www }], resolveCacheMs: 0, maxRanges: 2 }),
    partial: new ServeEngine({ mounts: [{ mountpoint: '/only', origin: www }], headers: { 'x-vhost': 'on' }, resolveCacheMs: 0 }),
  };
  const tag = async (url: string, ae?: string): Promise<string> => {
    const r = await exchange(E.plain, 'GET', url, ae === undefined ? {} : { 'accept-encoding': ae });
    assert.equal(r.status, 200, url);
    const etag = r.headers.etag;
    assert.ok(etag !== undefined, `${url} has an ETag`);
    return etag;
  };
  T.tenK = await tag('/ten-k.txt');
  T.appId = await tag('/app.js');
  T.appGz = await tag('/app.js', 'gzip');
  T.appBr = await tag('/app.js', 'br');
  T.zipCssId = await tag('/site/css/app.css');
  T.zipCssGz = await tag('/site/css/app.css', 'gzip');
  T.zipTenK = await tag('/site/ten-k.txt');
  T.zipLogo = await tag('/site/img/logo.png');
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

type EngineName = keyof Engines;

function table(title: string, rows: readonly Row[], engines: readonly EngineName[] = ['plain']): void {
  describe(title, () => {
    const names = new Set<string>();
    for (const row of rows) {
      assert.ok(!names.has(row.name), `duplicate row name ${row.name}`);
      names.add(row.name);
    }
    for (const e of engines) {
      for (const row of rows) {
        it(`${engines.length > 1 ? `[${e}] ` : ''}${row.name}`, () => runRow(E[e], row));
      }
    }
  });
}

const page = (status: number, extra: Partial<Want> = {}): Want => ({
  status,
  page: true,
  ...extra,
  headers: { 'accept-ranges': 'bytes', 'x-vhost': 'on', 'content-encoding': null, ...extra.headers },
});
const notFound = (extra: Partial<Want> = {}): Want => page(404, { notFound: true, ...extra });
const TEXT = 'text/plain; charset=utf-8';
const HTML = 'text/html; charset=utf-8';
const QUOTED = /^"[^"]+"$/;

// ---------------------------------------------------------------------------------------------------
// Ranges: the same rows on a disk file and on a deflated zip entry (inflated for identity clients).

interface Source {
  readonly label: string;
  readonly url: string;
  readonly cacheControl: string;
  readonly vary: string | null;
}
const rangeSources: readonly Source[] = [
  { label: 'disk', url: '/ten-k.txt', cacheControl: 'no-store', vary: null },
  { label: 'zip', url: '/site/ten-k.txt', cacheControl: 'private, max-age=60', vary: 'Accept-Encoding' },
];

function rangeRows(src: Source): Row[] {
  const N = tenK.length;
  const common = {
    'content-type': TEXT,
    'accept-ranges': 'bytes',
    'cache-control': src.cacheControl,
    vary: src.vary,
    etag: QUOTED,
    'content-encoding': null,
    'x-vhost': 'on',
  };
  const single = (range: string, start: number, end: number): Row => ({
    name: `${src.label} ${range} → 206 ${start}-${end}`,
    url: src.url,
    headers: { range },
    head: true,
    want: {
      status: 206,
      headers: { ...common, 'content-range': `bytes ${start}-${end}/${N}`, 'content-length': String(end - start + 1) },
      body: tenK.subarray(start, end + 1),
    },
  });
  const multi = (range: string, parts: [number, number][]): Row => ({
    name: `${src.label} ${range} → multipart ${parts.map(([a, b]) => `${a}-${b}`).join(',')}`,
    url: src.url,
    headers: { range },
    head: true,
    want: { status: 206, headers: { ...common, 'content-type': /^multipart\/byteranges; boundary=/, 'content-range': null }, parts, of: tenK, partType: TEXT },
  });
  const unsat = (range: string): Row => ({
    name: `${src.label} ${range} → 416`,
    url: src.url,
    headers: { range },
    head: true,
    want: page(416, { headers: { 'content-range': `bytes */${N}`, 'cache-control': null } }),
  });
  const ignored = (range: string): Row => ({
    name: `${src.label} ${JSON.stringify(range)} is ignored → 200`,
    url: src.url,
    headers: { range },
    want: { status: 200, headers: { ...common, 'content-length': String(N), 'content-range': null }, body: tenK },
  });
  return [
    {
      name: `${src.label} no Range → 200 whole`,
      url: src.url,
      head: true,
      want: {
        status: 200,
        headers: { ...common, 'content-length': String(N), 'content-range': null, 'last-modified': src.label === 'zip' ? ZIP_LM : LM },
        body: tenK,
      },
    },
    single('bytes=0-499', 0, 499),
    single('bytes=500-999', 500, 999),
    single('bytes=-500', 9500, 9999),
    single('bytes=9500-', 9500, 9999),
    single('bytes=0-0', 0, 0),
    single('bytes=-1', 9999, 9999),
    single('bytes=9999-', 9999, 9999),
    single('bytes=9000-99999', 9000, 9999),
    single('bytes=0-9999', 0, 9999),
    single('bytes=0-', 0, 9999),
    single('bytes=-20000', 0, 9999),
    single('bytes=500-700,601-999', 500, 999), // overlapping: merged
    single('bytes=0-4,5-9', 0, 9), // adjacent: merged
    single('bytes=0-1,20000-', 0, 1), // the unsatisfiable one is dropped
    single('BYTES=10-19', 10, 19), // unit is case-insensitive
    single('bytes=00000000000000000000010-19', 10, 19), // leading zeros
    multi('bytes=0-0,-1,500-599', [
      [0, 0],
      [500, 599],
      [9999, 9999],
    ]),
    multi('bytes=9000-9100,0-10', [
      [0, 10],
      [9000, 9100],
    ]),
    multi('bytes= 0-1 , 3-4', [
      [0, 1],
      [3, 4],
    ]),
    multi('bytes=0-1,,3-4', [
      [0, 1],
      [3, 4],
    ]),
    multi(
      `bytes=${Array.from({ length: 16 }, (_, i) => `${i * 100}-${i * 100 + 9}`).join(',')}`,
      Array.from({ length: 16 }, (_, i) => [i * 100, i * 100 + 9] as [number, number]),
    ),
    unsat('bytes=10000-'),
    unsat('bytes=20000-30000'),
    unsat('bytes=-0'),
    unsat('bytes=10000-,-0'),
    ignored('bytes=abc'),
    ignored('items=0-5'),
    ignored('bytes=5-2'),
    ignored('bytes 0-5'),
    ignored('bytes='),
    ignored('bytes=-'),
    ignored('bytes=0-1,x'),
    ignored('bytes=1-2-3'),
    ignored(`bytes=${Array.from({ length: 17 }, (_, i) => `${i * 100}-${i * 100 + 9}`).join(',')}`), // more than maxRanges (16)
  ];
}

const rangeExtras: Row[] = [
  {
    name: 'empty file: GET → 200, Content-Length 0, empty body',
    url: '/empty.txt',
    head: true,
    want: { status: 200, headers: { 'content-length': '0', 'content-type': TEXT, etag: QUOTED }, body: Buffer.alloc(0) },
  },
  {
    name: 'empty file: bytes=0-0 → 416 */0',
    url: '/empty.txt',
    headers: { range: 'bytes=0-0' },
    want: page(416, { headers: { 'content-range': 'bytes */0' } }),
  },
  { name: 'empty file: bytes=0- → 416 */0', url: '/empty.txt', headers: { range: 'bytes=0-' }, want: page(416, { headers: { 'content-range': 'bytes */0' } }) },
  {
    name: 'empty file: bytes=-5 → 200 empty',
    url: '/empty.txt',
    headers: { range: 'bytes=-5' },
    want: { status: 200, headers: { 'content-length': '0', 'content-range': null }, body: Buffer.alloc(0) },
  },
  {
    name: 'empty zip entry: GET → 200 empty',
    url: '/site/empty.txt',
    head: true,
    want: { status: 200, headers: { 'content-length': '0', 'content-type': TEXT, vary: null }, body: Buffer.alloc(0) },
  },
  {
    name: 'one byte: bytes=0-0 → 206 0-0/1',
    url: '/one-byte.txt',
    headers: { range: 'bytes=0-0' },
    want: { status: 206, headers: { 'content-range': 'bytes 0-0/1', 'content-length': '1' }, body: 'x' },
  },
  {
    name: 'one byte: bytes=-1 → 206 0-0/1',
    url: '/one-byte.txt',
    headers: { range: 'bytes=-1' },
    want: { status: 206, headers: { 'content-range': 'bytes 0-0/1' }, body: 'x' },
  },
  {
    name: 'one byte: bytes=1- → 416 */1',
    url: '/one-byte.txt',
    headers: { range: 'bytes=1-' },
    want: page(416, { headers: { 'content-range': 'bytes */1' } }),
  },
  {
    name: 'stored zip entry: bytes=100-199 → 206, stored bytes',
    url: '/site/img/logo.png',
    headers: { range: 'bytes=100-199' },
    want: { status: 206, headers: { 'content-range': 'bytes 100-199/3000', 'content-type': 'image/png', vary: null }, body: zipLogo.subarray(100, 200) },
  },
  {
    name: 'binary multipart parts carry image/png',
    url: '/photo.png',
    headers: { range: 'bytes=0-9,1000-1099' },
    head: true,
    want: {
      status: 206,
      parts: [
        [0, 9],
        [1000, 1099],
      ],
      of: photo,
      partType: 'image/png',
    },
  },
  {
    name: 'no Content-Type ("*": "") → parts without Content-Type',
    url: '/raw/no_ext',
    headers: { range: 'bytes=0-1,3-4' },
    want: {
      status: 206,
      headers: { 'content-type': /^multipart\/byteranges; boundary=/ },
      parts: [
        [0, 1],
        [3, 4],
      ],
      of: Buffer.from('no extension'),
      partType: null,
    },
  },
  {
    name: 'no Content-Type ("*": "") single range → no Content-Type',
    url: '/raw/no_ext',
    headers: { range: 'bytes=3-4' },
    want: { status: 206, headers: { 'content-type': null, 'content-range': 'bytes 3-4/12' }, body: 'ex' },
  },
  {
    name: 'zip gzip form: bytes=0-9 ranges gzip bytes',
    url: '/site/ten-k.txt',
    headers: { 'accept-encoding': 'gzip', range: 'bytes=0-9' },
    head: true,
    want: {
      status: 206,
      headers: { 'content-encoding': 'gzip', vary: 'Accept-Encoding', 'content-range': `bytes 0-9/${zipTenKGz.length}`, 'content-length': '10' },
      body: zipTenKGz.subarray(0, 10),
    },
  },
  {
    name: 'zip gzip form: bytes=-8 is the gzip trailer',
    url: '/site/ten-k.txt',
    headers: { 'accept-encoding': 'gzip', range: 'bytes=-8' },
    want: {
      status: 206,
      headers: { 'content-encoding': 'gzip', 'content-range': `bytes ${zipTenKGz.length - 8}-${zipTenKGz.length - 1}/${zipTenKGz.length}` },
      body: zipTenKGz.subarray(-8),
    },
  },
  {
    name: 'zip gzip form: multipart over gzip bytes',
    url: '/site/css/app.css',
    headers: { 'accept-encoding': 'gzip', range: 'bytes=0-1,100-199' },
    want: {
      status: 206,
      headers: { 'content-encoding': 'gzip' },
      parts: [
        [0, 1],
        [100, 199],
      ],
      of: zipCssGz,
      partType: 'text/css; charset=utf-8',
    },
  },
  {
    name: 'zip gzip form: past the gzip length → 416 */gzlen',
    url: '/site/ten-k.txt',
    headers: { 'accept-encoding': 'gzip', range: `bytes=${zipTenKGz.length}-` },
    want: page(416, { headers: { 'content-range': `bytes */${zipTenKGz.length}` } }),
  },
  {
    name: 'disk br sibling: bytes=0-3 ranges br bytes',
    url: '/app.js',
    headers: { 'accept-encoding': 'br', range: 'bytes=0-3' },
    want: { status: 206, headers: { 'content-encoding': 'br', 'content-range': `bytes 0-3/${appJsBr.length}` }, body: appJsBr.subarray(0, 4) },
  },
  { name: 'Range on a missing file → 404', url: '/missing.txt', headers: { range: 'bytes=0-1' }, want: notFound({ headers: { 'content-range': null } }) },
  { name: 'Range on a refused type → 403', url: '/no_ext', headers: { range: 'bytes=0-1' }, want: page(403, { headers: { 'content-range': null } }) },
];

const tightRows: Row[] = [
  {
    name: 'maxRanges 2: two ranges → multipart',
    url: '/ten-k.txt',
    headers: { range: 'bytes=0-0,10-10' },
    want: {
      status: 206,
      parts: [
        [0, 0],
        [10, 10],
      ],
      of: tenK,
    },
  },
  {
    name: 'maxRanges 2: three ranges → 200 whole',
    url: '/ten-k.txt',
    headers: { range: 'bytes=0-0,10-10,20-20' },
    want: { status: 200, headers: { 'content-length': '10000', 'content-range': null }, body: tenK },
  },
  {
    name: 'maxRanges 2: three that merge into two → multipart',
    url: '/ten-k.txt',
    headers: { range: 'bytes=0-0,1-1,20-20' },
    want: {
      status: 206,
      parts: [
        [0, 1],
        [20, 20],
      ],
      of: tenK,
    },
  },
];

for (const src of rangeSources) table(`ranges: ${src.label} (10,000 bytes)`, rangeRows(src), ['plain', 'cached']);
table('ranges: edge representations', rangeExtras, ['plain', 'cached']);
table('ranges: maxRanges', tightRows, ['tight']);

// ---------------------------------------------------------------------------------------------------
// Preconditions (RFC 9110 §13), If-Range, and 304s.

const notModified =
  (etag: () => string, extra: Record<string, string | RegExp | null> = {}): (() => Want) =>
  () => ({
    status: 304,
    body: null,
    headers: {
      etag: etag(),
      'content-type': null,
      'content-encoding': null,
      'content-length': null,
      'content-range': null,
      'accept-ranges': 'bytes',
      'x-vhost': 'on',
      ...extra,
    },
  });
const failed: Want = page(412, { headers: { etag: null } });
const okWhole =
  (extra: Record<string, string | RegExp | null> = {}): (() => Want) =>
  () => ({ status: 200, headers: { etag: T.tenK!, 'content-length': '10000', ...extra }, body: tenK });

const preconditionRows: Row[] = [
  {
    name: 'If-None-Match: the ETag → 304',
    url: '/ten-k.txt',
    headers: () => ({ 'if-none-match': T.tenK! }),
    head: true,
    want: notModified(() => T.tenK!, { 'cache-control': 'no-store', 'last-modified': LM }),
  },
  { name: 'If-None-Match: another tag → 200', url: '/ten-k.txt', headers: { 'if-none-match': '"nope"' }, head: true, want: okWhole() },
  { name: 'If-None-Match: * → 304', url: '/ten-k.txt', headers: { 'if-none-match': '*' }, want: notModified(() => T.tenK!) },
  {
    name: 'If-None-Match: W/ETag (weak comparison) → 304',
    url: '/ten-k.txt',
    headers: () => ({ 'if-none-match': `W/${T.tenK!}` }),
    want: notModified(() => T.tenK!),
  },
  {
    name: 'If-None-Match: a list containing the ETag → 304',
    url: '/ten-k.txt',
    headers: () => ({ 'if-none-match': `"a", ${T.tenK!}, "b"` }),
    want: notModified(() => T.tenK!),
  },
  { name: 'If-None-Match: malformed → 200', url: '/ten-k.txt', headers: { 'if-none-match': 'not-a-tag' }, want: okWhole() },
  { name: 'If-None-Match: the ETag of another file → 200', url: '/ten-k.txt', headers: () => ({ 'if-none-match': T.zipLogo! }), want: okWhole() },
  {
    name: 'If-None-Match wins over If-Modified-Since (tag differs, date would 304)',
    url: '/ten-k.txt',
    headers: { 'if-none-match': '"nope"', 'if-modified-since': LM_AFTER },
    want: okWhole(),
  },
  {
    name: 'If-None-Match matching, If-Modified-Since old → 304',
    url: '/ten-k.txt',
    headers: () => ({ 'if-none-match': T.tenK!, 'if-modified-since': LM_BEFORE }),
    want: notModified(() => T.tenK!),
  },
  {
    name: 'If-None-Match: the ETag, with a Range → 304',
    url: '/ten-k.txt',
    headers: () => ({ 'if-none-match': T.tenK!, range: 'bytes=0-9' }),
    want: notModified(() => T.tenK!),
  },
  {
    name: 'If-Modified-Since: Last-Modified exactly → 304',
    url: '/ten-k.txt',
    headers: { 'if-modified-since': LM },
    head: true,
    want: notModified(() => T.tenK!, { 'last-modified': LM }),
  },
  { name: 'If-Modified-Since: later → 304', url: '/ten-k.txt', headers: { 'if-modified-since': LM_AFTER }, want: notModified(() => T.tenK!) },
  { name: 'If-Modified-Since: earlier → 200', url: '/ten-k.txt', headers: { 'if-modified-since': LM_BEFORE }, want: okWhole({ 'last-modified': LM }) },
  {
    name: 'If-Modified-Since: one second earlier → 200',
    url: '/ten-k.txt',
    headers: { 'if-modified-since': 'Thu, 06 May 2021 07:08:08 GMT' },
    want: okWhole(),
  },
  {
    name: 'If-Modified-Since: RFC 850 date → 304',
    url: '/ten-k.txt',
    headers: { 'if-modified-since': 'Thursday, 06-May-21 07:08:09 GMT' },
    want: notModified(() => T.tenK!),
  },
  {
    name: 'If-Modified-Since: asctime date → 304',
    url: '/ten-k.txt',
    headers: { 'if-modified-since': 'Thu May  6 07:08:09 2021' },
    want: notModified(() => T.tenK!),
  },
  { name: 'If-Modified-Since: not a date → 200', url: '/ten-k.txt', headers: { 'if-modified-since': 'yesterday' }, want: okWhole() },
  { name: 'If-Match: the ETag → 200', url: '/ten-k.txt', headers: () => ({ 'if-match': T.tenK! }), want: okWhole() },
  { name: 'If-Match: * → 200', url: '/ten-k.txt', headers: { 'if-match': '*' }, want: okWhole() },
  { name: 'If-Match: another tag → 412', url: '/ten-k.txt', headers: { 'if-match': '"nope"' }, head: true, want: failed },
  { name: 'If-Match: W/ETag (strong comparison) → 412', url: '/ten-k.txt', headers: () => ({ 'if-match': `W/${T.tenK!}` }), want: failed },
  { name: 'If-Match: malformed → 412', url: '/ten-k.txt', headers: { 'if-match': 'garbage' }, want: failed },
  {
    name: 'If-Match mismatch beats If-None-Match match → 412',
    url: '/ten-k.txt',
    headers: () => ({ 'if-match': '"nope"', 'if-none-match': T.tenK! }),
    want: failed,
  },
  { name: 'If-Match mismatch with a Range → 412', url: '/ten-k.txt', headers: { 'if-match': '"nope"', range: 'bytes=0-9' }, want: failed },
  {
    name: 'If-Match match makes If-Unmodified-Since (past) ignored → 200',
    url: '/ten-k.txt',
    headers: () => ({ 'if-match': T.tenK!, 'if-unmodified-since': LM_BEFORE }),
    want: okWhole(),
  },
  { name: 'If-Unmodified-Since: earlier → 412', url: '/ten-k.txt', headers: { 'if-unmodified-since': LM_BEFORE }, want: failed },
  { name: 'If-Unmodified-Since: Last-Modified exactly → 200', url: '/ten-k.txt', headers: { 'if-unmodified-since': LM }, want: okWhole() },
  { name: 'If-Unmodified-Since: later → 200', url: '/ten-k.txt', headers: { 'if-unmodified-since': LM_AFTER }, want: okWhole() },
  { name: 'If-Unmodified-Since: not a date → 200', url: '/ten-k.txt', headers: { 'if-unmodified-since': 'soon' }, want: okWhole() },
  {
    name: 'If-Range: the ETag → Range honoured (206)',
    url: '/ten-k.txt',
    headers: () => ({ 'if-range': T.tenK!, range: 'bytes=0-9' }),
    head: true,
    want: { status: 206, headers: { 'content-range': 'bytes 0-9/10000' }, body: tenK.subarray(0, 10) },
  },
  {
    name: 'If-Range: another tag → whole 200',
    url: '/ten-k.txt',
    headers: { 'if-range': '"nope"', range: 'bytes=0-9' },
    head: true,
    want: okWhole({ 'content-range': null }),
  },
  {
    name: 'If-Range: W/ETag → whole 200',
    url: '/ten-k.txt',
    headers: () => ({ 'if-range': `W/${T.tenK!}`, range: 'bytes=0-9' }),
    want: okWhole({ 'content-range': null }),
  },
  {
    name: 'If-Range: Last-Modified exactly → 206',
    url: '/ten-k.txt',
    headers: { 'if-range': LM, range: 'bytes=0-9' },
    want: { status: 206, body: tenK.subarray(0, 10) },
  },
  {
    name: 'If-Range: another date → whole 200',
    url: '/ten-k.txt',
    headers: { 'if-range': LM_AFTER, range: 'bytes=0-9' },
    want: okWhole({ 'content-range': null }),
  },
  {
    name: 'If-Range: the ETag, unsatisfiable Range → 416',
    url: '/ten-k.txt',
    headers: () => ({ 'if-range': T.tenK!, range: 'bytes=20000-' }),
    want: page(416, { headers: { 'content-range': 'bytes */10000' } }),
  },
  { name: 'If-Range: wrong, unsatisfiable Range → whole 200', url: '/ten-k.txt', headers: { 'if-range': '"nope"', range: 'bytes=20000-' }, want: okWhole() },
  { name: 'If-Range without Range → 200', url: '/ten-k.txt', headers: () => ({ 'if-range': T.tenK! }), want: okWhole() },
  {
    name: 'POST with If-Match: * → 405 (method first)',
    method: 'POST',
    url: '/ten-k.txt',
    headers: { 'if-match': '*' },
    want: page(405, { headers: { allow: 'GET, HEAD' } }),
  },
  { name: 'If-None-Match: * on a missing file → 404', url: '/missing.txt', headers: { 'if-none-match': '*' }, want: notFound() },
  { name: 'If-Match: "nope" on a missing file → 404', url: '/missing.txt', headers: { 'if-match': '"nope"' }, want: notFound() },
  {
    name: 'If-None-Match on a directory redirect → 301',
    url: '/dir-with-index',
    headers: { 'if-none-match': '*' },
    want: page(301, { headers: { location: '/dir-with-index/' } }),
  },
  // Per representation: a coding's ETag validates only that coding.
  {
    name: 'disk gzip: gzip ETag with gzip → 304, Vary kept, no Content-Encoding',
    url: '/app.js',
    headers: () => ({ 'accept-encoding': 'gzip', 'if-none-match': T.appGz! }),
    want: notModified(() => T.appGz!, { vary: 'Accept-Encoding' }),
  },
  {
    name: 'disk gzip: identity ETag with gzip → 200 gzip',
    url: '/app.js',
    headers: () => ({ 'accept-encoding': 'gzip', 'if-none-match': T.appId! }),
    want: () => ({ status: 200, headers: { 'content-encoding': 'gzip', etag: T.appGz! }, body: appJsGz }),
  },
  {
    name: 'disk identity: gzip ETag → 200 identity',
    url: '/app.js',
    headers: () => ({ 'if-none-match': T.appGz! }),
    want: () => ({ status: 200, headers: { 'content-encoding': null, etag: T.appId! }, body: appJs }),
  },
  {
    name: 'disk br: If-Match with the br ETag → 200 br',
    url: '/app.js',
    headers: () => ({ 'accept-encoding': 'br', 'if-match': T.appBr! }),
    want: () => ({ status: 200, headers: { 'content-encoding': 'br', etag: T.appBr! }, body: appJsBr }),
  },
  { name: 'disk br: If-Match with the identity ETag → 412', url: '/app.js', headers: () => ({ 'accept-encoding': 'br', 'if-match': T.appId! }), want: failed },
  {
    name: 'disk gzip: If-Range with the gzip ETag → 206 of gzip bytes',
    url: '/app.js',
    headers: () => ({ 'accept-encoding': 'gzip', 'if-range': T.appGz!, range: 'bytes=0-9' }),
    want: { status: 206, headers: { 'content-encoding': 'gzip' }, body: appJsGz.subarray(0, 10) },
  },
  {
    name: 'disk gzip: If-Range with the identity ETag → whole gzip 200',
    url: '/app.js',
    headers: () => ({ 'accept-encoding': 'gzip', 'if-range': T.appId!, range: 'bytes=0-9' }),
    want: { status: 200, headers: { 'content-encoding': 'gzip' }, body: appJsGz },
  },
  // Validators come from the handle whose bytes are sent: a rebuilt .gz alone is a new version.
  {
    name: "disk gzip: Last-Modified is the sibling's own, so a rebuilt .gz is modified",
    url: '/app.js',
    headers: { 'accept-encoding': 'gzip', 'if-modified-since': LM },
    want: { status: 200, headers: { 'last-modified': SIBLING_LM, 'content-encoding': 'gzip' }, body: appJsGz },
  },
  {
    name: "disk gzip: If-Modified-Since the sibling's date → 304",
    url: '/app.js',
    headers: { 'accept-encoding': 'gzip', 'if-modified-since': SIBLING_LM },
    want: notModified(() => T.appGz!, { 'last-modified': SIBLING_LM }),
  },
  {
    name: 'zip: identity ETag → 304 with Vary and the mount policy',
    url: '/site/css/app.css',
    headers: () => ({ 'if-none-match': T.zipCssId! }),
    head: true,
    want: notModified(() => T.zipCssId!, { vary: 'Accept-Encoding', 'cache-control': 'private, max-age=60', 'last-modified': ZIP_LM }),
  },
  {
    name: 'zip: gzip ETag with gzip → 304',
    url: '/site/css/app.css',
    headers: () => ({ 'accept-encoding': 'gzip', 'if-none-match': T.zipCssGz! }),
    want: notModified(() => T.zipCssGz!),
  },
  {
    name: 'zip: identity ETag with gzip → 200 gzip',
    url: '/site/css/app.css',
    headers: () => ({ 'accept-encoding': 'gzip', 'if-none-match': T.zipCssId! }),
    want: { status: 200, headers: { 'content-encoding': 'gzip' }, body: zipCssGz },
  },
  { name: 'zip: If-Match mismatch → 412', url: '/site/css/app.css', headers: { 'if-match': '"nope"' }, want: failed },
  {
    name: 'zip: If-Modified-Since the DOS time → 304',
    url: '/site/img/logo.png',
    headers: { 'if-modified-since': ZIP_LM },
    want: notModified(() => T.zipLogo!, { vary: null }),
  },
  {
    name: 'zip: If-Range with the ETag → 206',
    url: '/site/ten-k.txt',
    headers: () => ({ 'if-range': T.zipTenK!, range: 'bytes=10-19' }),
    want: { status: 206, body: tenK.subarray(10, 20) },
  },
  {
    name: "zip: If-Range with the disk file's ETag → whole 200",
    url: '/site/ten-k.txt',
    headers: () => ({ 'if-range': T.tenK!, range: 'bytes=10-19' }),
    want: { status: 200, body: tenK },
  },
  {
    name: 'assets: 304 keeps Cache-Control and the mount headers',
    url: '/assets/ten-k.txt',
    headers: () => ({ 'if-none-match': T.tenK! }),
    want: notModified(() => T.tenK!, {
      'cache-control': 'public, max-age=3600, immutable',
      'x-mount': 'assets',
      'x-shared': 'mount',
      'transfer-encoding': null,
    }),
  },
];
table('preconditions', preconditionRows, ['plain', 'cached']);

// ---------------------------------------------------------------------------------------------------
// Content codings: precompressed siblings on disk, zip gzip passthrough.

const enc = (
  name: string,
  url: string,
  ae: string | undefined,
  want: 'br' | 'gzip' | 'identity',
  body: Buffer,
  extra: Record<string, string | RegExp | null> = {},
  vary: string | null = 'Accept-Encoding',
): Row => ({
  name,
  url,
  ...(ae === undefined ? {} : { headers: { 'accept-encoding': ae } }),
  head: true,
  want: {
    status: 200,
    headers: { 'content-encoding': want === 'identity' ? null : want, vary, etag: QUOTED, 'content-length': String(body.length), ...extra },
    body,
  },
});
const appJsType = 'text/javascript; charset=utf-8';

const encodingRows: Row[] = [
  enc('app.js: no Accept-Encoding → identity', '/app.js', undefined, 'identity', appJs, { 'content-type': appJsType }),
  enc('app.js: gzip → the .gz file, with its own Last-Modified', '/app.js', 'gzip', 'gzip', appJsGz, {
    'content-type': appJsType,
    'last-modified': SIBLING_LM,
  }),
  enc('app.js: br → the .br file', '/app.js', 'br', 'br', appJsBr, { 'content-type': appJsType }),
  enc('app.js: gzip, br → br (server prefers br)', '/app.js', 'gzip, br', 'br', appJsBr),
  enc('app.js: br;q=0.5, gzip → gzip (higher q)', '/app.js', 'br;q=0.5, gzip', 'gzip', appJsGz),
  enc('app.js: gzip;q=0.5, br;q=0.5 → br (tie: server order)', '/app.js', 'gzip;q=0.5, br;q=0.5', 'br', appJsBr),
  enc('app.js: identity → identity', '/app.js', 'identity', 'identity', appJs),
  enc('app.js: empty → identity', '/app.js', '', 'identity', appJs),
  enc('app.js: gzip;q=0, br;q=0 → identity', '/app.js', 'gzip;q=0, br;q=0', 'identity', appJs),
  enc('app.js: * → br', '/app.js', '*', 'br', appJsBr),
  enc('app.js: *;q=0 → identity anyway (no 406)', '/app.js', '*;q=0', 'identity', appJs),
  enc('app.js: identity;q=0 alone → identity anyway (no 406)', '/app.js', 'identity;q=0', 'identity', appJs),
  enc('app.js: gzip, identity;q=0 → gzip', '/app.js', 'gzip, identity;q=0', 'gzip', appJsGz),
  enc('app.js: x-gzip → gzip', '/app.js', 'x-gzip', 'gzip', appJsGz),
  enc('app.js: GZIP (case) → gzip', '/app.js', 'GZIP', 'gzip', appJsGz),
  enc('app.js: gzip;q=0.001 → gzip (beats unlisted identity)', '/app.js', 'gzip;q=0.001', 'gzip', appJsGz),
  enc('app.js: identity;q=1, gzip;q=0.5 → identity', '/app.js', 'identity;q=1, gzip;q=0.5', 'identity', appJs),
  enc('app.js: br;q=1.5 (invalid q) → identity', '/app.js', 'br;q=1.5', 'identity', appJs),
  enc('app.js: deflate → identity', '/app.js', 'deflate', 'identity', appJs),
  enc('only-gz.css: br → identity, Vary', '/only-gz.css', 'br', 'identity', onlyGzCss, { 'content-type': 'text/css; charset=utf-8' }),
  enc('only-gz.css: gzip, br → gzip', '/only-gz.css', 'gzip, br', 'gzip', onlyGzCssGz, { 'content-type': 'text/css; charset=utf-8' }),
  enc('only-br.html: gzip → identity, Vary', '/only-br.html', 'gzip', 'identity', onlyBrHtml, { 'content-type': HTML }),
  enc('only-br.html: br → br', '/only-br.html', 'br', 'br', onlyBrHtmlBr, { 'content-type': HTML }),
  enc('no-siblings.js: gzip, br → identity, no Vary', '/no-siblings.js', 'gzip, br', 'identity', Buffer.from('console.log(1)'), {}, null),
  enc('dir-sibling.txt: a .gz directory is no sibling', '/dir-sibling.txt', 'gzip', 'identity', Buffer.from('the .gz next to me is a directory'), {}, null),
  enc('precompressed: false → identity, no Vary', '/nopre/app.js', 'gzip, br', 'identity', appJs, {}, null),
  enc('the .gz sibling itself → application/gzip, no coding', '/app.js.gz', 'gzip', 'identity', appJsGz, { 'content-type': 'application/gzip' }, null),
  { name: 'the .br sibling itself → 403 (.br is not whitelisted)', url: '/app.js.br', headers: { 'accept-encoding': 'br' }, want: page(403) },
  { name: 'a refused type with a .gz sibling → 403', url: '/not-whitelisted.bin', headers: { 'accept-encoding': 'gzip' }, want: page(403) },
  enc('zip deflated: no Accept-Encoding → inflated, Vary', '/site/css/app.css', undefined, 'identity', zipCss, {
    'content-type': 'text/css; charset=utf-8',
    'cache-control': 'private, max-age=60',
  }),
  {
    name: 'zip deflated: gzip → passthrough, gunzips to the entry',
    url: '/site/css/app.css',
    headers: { 'accept-encoding': 'gzip' },
    head: true,
    want: {
      status: 200,
      headers: {
        'content-encoding': 'gzip',
        vary: 'Accept-Encoding',
        'content-type': 'text/css; charset=utf-8',
        'content-length': String(zipCssGz.length),
        'last-modified': ZIP_LM,
      },
      body: zipCssGz,
      gunzip: zipCss,
    },
  },
  enc('zip deflated: gzip, deflate, br → gzip', '/site/css/app.css', 'gzip, deflate, br', 'gzip', zipCssGz),
  enc('zip deflated: br → inflated', '/site/css/app.css', 'br', 'identity', zipCss),
  enc('zip deflated: gzip;q=0 → inflated', '/site/css/app.css', 'gzip;q=0', 'identity', zipCss),
  enc('zip deflated: identity;q=0 → inflated anyway', '/site/css/app.css', 'identity;q=0', 'identity', zipCss),
  enc('zip deflated: * → gzip', '/site/css/app.css', '*', 'gzip', zipCssGz),
  enc('zip deflated: GZIP;q=0.5, identity;q=0.1 → gzip', '/site/css/app.css', 'GZIP;q=0.5, identity;q=0.1', 'gzip', zipCssGz),
  enc('zip deflated index: gzip → passthrough', '/site/', 'gzip', 'gzip', zipGzip(zipIndex), { 'content-type': HTML }),
  enc('zip stored: gzip → stored bytes, no Vary', '/site/stored.txt', 'gzip', 'identity', zipStored, { 'content-type': TEXT }, null),
  enc('zip stored, .gz sibling entry: gzip → the sibling', '/site/stored-with-sibling.txt', 'gzip', 'gzip', zipStoredSibGz, { 'content-type': TEXT }),
  enc('zip stored, .gz sibling entry: none → identity, Vary', '/site/stored-with-sibling.txt', undefined, 'identity', zipStoredSib),
  enc(
    'zip deflated, .br sibling entry: br → inflated (siblings unused for deflated entries)',
    '/site/deflated-with-br.js',
    'br',
    'identity',
    zipDeflatedWithBr,
    { 'content-type': appJsType },
  ),
  enc('zip deflated, .br sibling entry: br, gzip → gzip passthrough', '/site/deflated-with-br.js', 'br, gzip', 'gzip', zipGzip(zipDeflatedWithBr)),
  enc('zip deflated via the / mount (archive entered by path): gzip', '/files/site.zip/css/app.css', 'gzip', 'gzip', zipCssGz, { 'cache-control': 'no-store' }),
];
table('content codings', encodingRows, ['plain', 'cached']);

// ---------------------------------------------------------------------------------------------------
// Paths, canonicalisation, dotfiles, mimetypes, mount selection, redirect and callback mounts.

const ok = (url: string, body: Buffer | string, contentType: string | null, extra: Partial<Row> = {}): Row => ({
  name: `${url} → 200`,
  url,
  want: { status: 200, headers: { 'content-type': contentType }, body },
  ...extra,
});
const moved = (url: string, location: string, extra: Partial<Row> = {}): Row => ({
  name: `${url} → 301 ${location}`,
  url,
  want: page(301, { headers: { location, 'cache-control': null } }),
  ...extra,
});
const gone = (url: string, extra: Partial<Row> = {}): Row => ({ name: `${url} → 404`, url, want: notFound(), ...extra });
const refused = (url: string, status: 400 | 403, label = url): Row => ({ name: `${label} → ${status}`, url, want: page(status) });

const pathRows: Row[] = [
  // default file, directories, trailing slashes
  ok('/', '<!doctype html><h1>home</h1>', HTML),
  ok('/index.html', '<!doctype html><h1>home</h1>', HTML),
  moved('/dir-with-index', '/dir-with-index/'),
  moved('/dir-with-index?a=1&b=%2F', '/dir-with-index/?a=1&b=%2F'),
  ok('/dir-with-index/', '<p>dir index</p>', HTML),
  ok('/dir-with-index/?x=1', '<p>dir index</p>', HTML),
  ok('/dir-with-index/page.html', '<p>dir page</p>', HTML),
  moved('/dir-without-index', '/dir-without-index/'),
  gone('/dir-without-index/'),
  gone('/ten-k.txt/'),
  gone('/missing.txt'),
  gone('/missing-dir/'),
  gone('/missing-dir/x.txt'),
  gone('/missing.bin', { name: '/missing.bin → 404 (existence before the whitelist)' }),
  ok('/home/', 'plain text\n', TEXT, { name: 'mount default: plain.txt' }),
  // canonical spellings that resolve
  ok('//ten-k.txt', tenK, TEXT),
  ok('/./ten-k.txt', tenK, TEXT),
  ok('/dir-with-index//page.html', '<p>dir page</p>', HTML),
  ok('/dir-with-index/./page.html', '<p>dir page</p>', HTML),
  ok('/ten-k.txt?download=1', tenK, TEXT),
  ok('/a%20b.txt', 'space', TEXT),
  ok('/a b.txt', 'space', TEXT, { name: '/a b.txt (raw space) → 200' }),
  ok('/a+b.txt', 'plus', TEXT),
  ok('/a%2Bb.txt', 'plus', TEXT),
  ok('/percent%25.txt', 'percent', TEXT),
  ok('/%70lain.txt', 'plain text\n', TEXT),
  moved('/snow%20%E2%98%83', '/snow%20%E2%98%83/'),
  ok('/snow%20%E2%98%83/', '<p>snow</p>', HTML),
  ok('/snow ☃/', '<p>snow</p>', HTML, { name: '/snow ☃/ (raw non-ASCII) → 200' }),
  moved('//evil.example', '/evil.example/'),
  moved('///evil.example?x', '/evil.example/?x'),
  moved('/.//evil.example', '/evil.example/'),
  // refusals by the canonicaliser
  refused('/%2e%2e/%2e%2e/etc/passwd', 403),
  refused('/dir-with-index/../ten-k.txt', 403),
  refused('/.%2E/ten-k.txt', 403),
  refused('/..', 403),
  refused('/docs/..', 403),
  refused('/ten-k.txt%00.html', 400),
  refused('/ten-k.txt\u0000', 400, '/ten-k.txt<NUL> (raw)'),
  refused('/%2fetc/passwd', 400),
  refused('/dir-with-index%2Fpage.html', 400),
  refused('/a%5c..%5cten-k.txt', 400),
  refused('/a\\b.txt', 400, '/a\\b.txt (raw backslash)'),
  refused('/ten-k.txt%', 400),
  refused('/ten-k.txt%zz', 400),
  refused('/%c3%28', 400),
  refused('/%0a', 400),
  refused('/a%7f', 400),
  refused('/tab\there', 400, '/tab<TAB>here (raw control)'),
  refused('ten-k.txt', 400),
  refused('*', 400),
  refused('http://127.0.0.1/ten-k.txt', 400),
  refused('', 400, '<empty target>'),
  // dotfiles
  gone('/.hidden.txt'),
  gone('/%2ehidden.txt'),
  gone('/.git/config'),
  gone('/.git/'),
  gone('/.git'),
  gone('/.hidden.txt/'),
  ok('/.well-known/security.txt', 'Contact: mailto:x@example.com', TEXT),
  moved('/.well-known', '/.well-known/'),
  gone('/.well-known/'),
  gone('/sub/.well-known/x.txt'),
  gone('/sub/.dotdir/x.txt'),
  gone('/site/.env'),
  gone('/docs/.hidden.txt', { name: '/docs/.hidden.txt → 404 (dot segment below a mount)' }),
  // mimetypes
  ok('/UPPER.HTML', '<p>upper</p>', HTML),
  ok('/style.css', 'body{color:red}', 'text/css; charset=utf-8'),
  ok('/data.json', '{"a":1}', 'application/json; charset=utf-8'),
  ok('/image.svg', '<svg xmlns="http://www.w3.org/2000/svg"/>', 'image/svg+xml; charset=utf-8'),
  ok('/module.mjs', 'export {};', 'text/javascript; charset=utf-8'),
  ok('/photo.png', photo, 'image/png'),
  refused('/not-whitelisted.bin', 403),
  refused('/no_ext', 403),
  refused('/script.php', 403),
  refused('/site/data.bin', 403),
  ok('/extra/not-whitelisted.bin', noise(10, 2), 'application/x-custom'),
  ok('/extra/UPPER.HTML', '<p>upper</p>', 'text/x-upper; charset=utf-8'),
  ok('/any/no_ext', 'no extension', 'application/x-any'),
  ok('/any/script.php', '<?php echo 1;', 'application/x-any'),
  ok('/any/plain.txt', 'plain text\n', TEXT),
  ok('/raw/no_ext', 'no extension', null),
  // symlinks
  ok('/inside-link.txt', 'plain text\n', TEXT),
  gone('/outside-link.txt'),
  gone('/outside-dir/secret.txt'),
  ok('/links/outside-link.txt', 'outside the root', TEXT),
  ok('/links/outside-dir/secret.txt', 'outside the root', TEXT),
  // mount selection: longest mountpoint on a segment boundary
  moved('/docs', '/docs/'),
  moved('/docs?x=1&y=%2F', '/docs/?x=1&y=%2F'),
  ok('/docs/', '<p>docs index</p>', HTML),
  ok('/docs/guide.html', '<p>docs guide</p>', HTML),
  moved('/docs/api', '/docs/api/'),
  ok('/docs/api/', '<p>api index</p>', HTML),
  ok('/docs/api/ref.html', '<p>api ref</p>', HTML),
  ok('/docs//api/ref.html', '<p>api ref</p>', HTML),
  gone('/docs/api/shadowed.html', { name: '/docs/api/shadowed.html → 404 (the longer mount wins)' }),
  ok('/docs/apix/page.html', '<p>docs apix</p>', HTML),
  ok('/docsx/guide.html', '<p>www docsx</p>', HTML),
  gone('/DOCS/guide.html', { name: '/DOCS/guide.html → 404 (mountpoints are case-sensitive)' }),
  ok('/api-root/ref.html', '<p>api ref</p>', HTML, { name: '/api-root/ref.html → 200 (the / mount sees the whole tree)' }),
  // zip mounts
  moved('/site', '/site/'),
  moved('/site?v=2', '/site/?v=2'),
  ok('/site/', zipIndex, HTML),
  ok('/site/index.html', zipIndex, HTML),
  moved('/site/docs', '/site/docs/'),
  ok('/site/docs/', '<p>zip docs</p>', HTML),
  gone('/site/nodefault/'),
  gone('/site/missing.html'),
  gone('/site/css/app.css/'),
  refused('/site/encrypted.txt', 403),
  ok('/files/site.zip/index.html', zipIndex, HTML),
  moved('/files/site.zip', '/files/site.zip/', { name: '/files/site.zip → 301 (an archive in a folder is a directory unless .zip is whitelisted)' }),
  moved('/files/site.zip?v=1', '/files/site.zip/?v=1'),
  ok('/files/site.zip/', zipIndex, HTML),
  moved('/files/bad.zip', '/files/bad.zip/', { name: '/files/bad.zip → 301 (never opened)' }),
  gone('/site/css/', { name: '/site/css/ → 404 (zip directory without index.html)' }),
  moved('/files/site.zip/css', '/files/site.zip/css/'),
  { name: '/files/bad.zip/x.html → 500 with the error', url: '/files/bad.zip/x.html', want: page(500, { error: true }) },
  { name: '/files/bad.zip/ → 500, reported once per archive version', url: '/files/bad.zip/', want: page(500, { error: false }) },
  // mounts whose origin is a file, or nothing
  moved('/single-file', '/single-file/'),
  gone('/single-file/', { name: '/single-file/ → 404 (a file origin is never served)' }),
  moved('/ghost', '/ghost/', { name: '/ghost → 301 (a missing origin still redirects)' }),
  gone('/ghost/'),
  gone('/ghost/x.txt'),
  // redirect mounts
  { name: '/old → 301 to the target', url: '/old', want: page(301, { headers: { location: 'https://example.com/new' } }) },
  {
    name: '/old/a/b?x=1 → 301 to the target, path and query dropped',
    url: '/old/a/b?x=1',
    want: page(301, { headers: { location: 'https://example.com/new' } }),
  },
  {
    name: 'POST /old → 301 (no method check on redirect mounts)',
    method: 'POST',
    url: '/old',
    want: page(301, { headers: { location: 'https://example.com/new', allow: null } }),
  },
  { name: '/moved → 301 to the normalised URL', url: '/moved/x', want: page(301, { headers: { location: 'https://example.com/a%20b?x=1' } }) },
  gone('/oldx', { name: '/oldx → 404 (not the /old mount)' }),
  // callback mounts: status 0, the target, configured headers only
  ...(
    [
      ['/cb', ''],
      ['/cb/', '/'],
      ['/cb/a/b?q=1', '/a/b'],
      ['/cb/a/b/', '/a/b/'],
      ['/cb//a/./b', '/a/b'],
    ] as const
  ).map(([url, remainder]): Row => ({
    name: `${url} → callback remainder ${JSON.stringify(remainder)}`,
    url,
    want: {
      status: 0,
      body: null,
      headers: { 'x-cb': 'yes', 'x-vhost': 'on', 'content-type': null, 'content-length': null, 'accept-ranges': null },
      callback: { name: 'echo', remainder, mountpoint: '/cb', pmo: { greeting: 'hi' } },
    },
  })),
  {
    name: 'DELETE /cb/x → callback (no method check)',
    method: 'DELETE',
    url: '/cb/x',
    want: { status: 0, body: null, callback: { name: 'echo', remainder: '/x', mountpoint: '/cb', pmo: { greeting: 'hi' } } },
  },
  refused('/cb/%2e%2e', 403),
];
table('paths and mounts', pathRows);
table(
  'paths and mounts (default resolution cache)',
  pathRows.filter((r) => /^\/(docs|site|dir-with-index|\.git|snow)/.test(r.url)),
  ['cached'],
);

const partialRows: Row[] = [
  { name: 'no mount matches / → 404 notFound, vhost headers', url: '/', want: notFound() },
  { name: 'no mount matches /onlyx → 404 notFound', url: '/onlyx/plain.txt', want: notFound() },
  { name: 'POST where no mount matches → 404, not 405', method: 'POST', url: '/x', want: notFound({ headers: { allow: null } }) },
  { name: '/only/plain.txt → 200', url: '/only/plain.txt', want: { status: 200, body: 'plain text\n', headers: { 'x-vhost': 'on' } } },
  { name: '/only → 301 /only/', url: '/only', want: page(301, { headers: { location: '/only/' } }) },
];
table('no / mount', partialRows, ['partial']);

// ---------------------------------------------------------------------------------------------------
// Statuses, methods, Cache-Control and configured headers.

const cc = (url: string, value: string): Row => ({
  name: `Cache-Control ${url} → ${value}`,
  url,
  head: true,
  want: { status: 200, headers: { 'cache-control': value } },
});

const statusRows: Row[] = [
  cc('/plain.txt', 'no-store'),
  cc('/site/stored.txt', 'private, max-age=60'),
  cc('/assets/plain.txt', 'public, max-age=3600, immutable'),
  cc('/revalidate/plain.txt', 'must-revalidate, private, max-age=60'),
  cc('/nocache/plain.txt', 'no-cache'),
  cc('/maxage-only/plain.txt', 'no-store'),
  cc('/reuse-only/plain.txt', 'no-store'),
  cc('/forever/plain.txt', 'private, max-age=2147483648'),
  {
    name: 'Cache-Control on a 206',
    url: '/assets/ten-k.txt',
    headers: { range: 'bytes=0-0' },
    want: { status: 206, headers: { 'cache-control': 'public, max-age=3600, immutable' }, body: 'a' },
  },
  { name: 'no Cache-Control on a 404', url: '/assets/missing.txt', want: notFound({ headers: { 'cache-control': null, 'x-mount': 'assets' } }) },
  { name: 'no Cache-Control on a 403', url: '/assets/no_ext', want: page(403, { headers: { 'cache-control': null } }) },
  {
    name: 'no Cache-Control on a 416',
    url: '/assets/ten-k.txt',
    headers: { range: 'bytes=20000-' },
    want: page(416, { headers: { 'cache-control': null, 'content-range': 'bytes */10000' } }),
  },
  { name: 'no Cache-Control on a 412', url: '/assets/ten-k.txt', headers: { 'if-match': '"nope"' }, want: page(412, { headers: { 'cache-control': null } }) },
  {
    name: 'no Cache-Control on a directory 301',
    url: '/assets/dir-with-index',
    want: page(301, { headers: { 'cache-control': null, location: '/assets/dir-with-index/' } }),
  },
  // methods
  ...['POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'get', 'head'].map((method): Row => ({
    name: `${method} /plain.txt → 405, Allow: GET, HEAD`,
    method,
    url: '/plain.txt',
    want: page(405, { headers: { allow: 'GET, HEAD' } }),
  })),
  { name: 'POST /missing.txt → 405 (before resolution)', method: 'POST', url: '/missing.txt', want: page(405, { headers: { allow: 'GET, HEAD' } }) },
  { name: 'POST /site/ → 405', method: 'POST', url: '/site/', want: page(405, { headers: { allow: 'GET, HEAD' } }) },
  {
    name: 'POST /assets/plain.txt → 405 with mount headers',
    method: 'POST',
    url: '/assets/plain.txt',
    want: page(405, { headers: { allow: 'GET, HEAD', 'x-mount': 'assets' } }),
  },
  { name: 'POST /.. → 403 (canonicalisation first)', method: 'POST', url: '/..', want: page(403) },
  {
    name: 'HEAD /plain.txt → 200, no body, Content-Length',
    method: 'HEAD',
    url: '/plain.txt',
    want: { status: 200, body: null, headers: { 'content-length': '11', 'content-type': TEXT, etag: QUOTED, 'last-modified': LM } },
  },
  {
    // The core's contract: no body for HEAD, status pages included (adapters other than node:http rely on it).
    name: 'HEAD /missing.txt → 404 page headers, no body',
    method: 'HEAD',
    url: '/missing.txt',
    want: { status: 404, notFound: true, body: null, headers: { 'content-type': HTML, 'accept-ranges': 'bytes' } },
  },
  // configured headers: vhost and mount, never framing headers
  {
    name: 'vhost headers on a 200; framing ones dropped',
    url: '/plain.txt',
    head: true,
    want: {
      status: 200,
      headers: { 'x-vhost': 'on', 'x-shared': 'vhost', 'content-length': '11', 'content-encoding': null, 'x-mount': null },
      body: 'plain text\n',
    },
  },
  {
    name: 'mount headers replace vhost headers of the same name (names lower-cased)',
    url: '/assets/plain.txt',
    want: {
      status: 200,
      headers: { 'x-vhost': 'on', 'x-shared': 'mount', 'x-mount': 'assets', 'content-length': '11', 'content-range': null, 'transfer-encoding': null },
      body: 'plain text\n',
    },
  },
  {
    name: 'mount headers never replace Content-Range / Content-Length on a 206',
    url: '/assets/ten-k.txt',
    headers: { range: 'bytes=5-9' },
    want: { status: 206, headers: { 'content-range': 'bytes 5-9/10000', 'content-length': '5', 'x-mount': 'assets' }, body: tenK.subarray(5, 10) },
  },
  {
    name: 'configured headers never replace Content-Encoding',
    url: '/assets/app.js',
    headers: { 'accept-encoding': 'gzip' },
    want: { status: 200, headers: { 'content-encoding': 'gzip', 'content-length': String(appJsGz.length) }, body: appJsGz },
  },
  {
    name: 'configured headers never add Content-Encoding to identity',
    url: '/assets/app.js',
    want: { status: 200, headers: { 'content-encoding': null }, body: appJs },
  },
  {
    name: 'configured headers on 404 pages',
    url: '/assets/missing.txt',
    want: notFound({ headers: { 'x-vhost': 'on', 'x-shared': 'mount', 'x-mount': 'assets', 'transfer-encoding': null } }),
  },
  {
    name: 'configured headers on 400 refusals are the vhost ones only',
    url: '/assets/%00',
    want: page(400, { headers: { 'x-vhost': 'on', 'x-shared': 'vhost', 'x-mount': null } }),
  },
  { name: 'configured headers on redirect mounts', url: '/old', want: page(301, { headers: { 'x-vhost': 'on', 'x-shared': 'vhost' } }) },
  {
    name: 'configured headers on 416',
    url: '/assets/ten-k.txt',
    headers: { range: 'bytes=20000-' },
    want: page(416, { headers: { 'x-mount': 'assets', 'content-range': 'bytes */10000' } }),
  },
  { name: 'configured headers on a 500', url: '/files/bad-too.zip/x.html', want: page(500, { error: true, headers: { 'x-vhost': 'on' } }) },
  // Today a configured header may replace anything but the framing headers, computed ones included.
  {
    name: 'today: a mount Cache-Control replaces the policy',
    url: '/override/plain.txt',
    want: {
      status: 200,
      headers: { 'cache-control': 'max-age=5', 'content-type': 'application/x-forced', 'accept-ranges': 'none', vary: 'Origin' },
      body: 'plain text\n',
    },
  },
  // A configured Vary adds to Accept-Encoding: dropping it would let a cache hand gzip to a client that cannot take it.
  {
    name: 'a mount Vary is added to Vary: Accept-Encoding',
    url: '/override/app.js',
    headers: { 'accept-encoding': 'gzip' },
    want: { status: 200, headers: { vary: 'Accept-Encoding, Origin', 'content-encoding': 'gzip' }, body: appJsGz },
  },
  // The multipart type frames the body (its boundary): a configured Content-Type never replaces it.
  {
    name: 'a mount Content-Type leaves the multipart type alone',
    url: '/override/ten-k.txt',
    headers: { range: 'bytes=0-0,5-5' },
    want: { status: 206, headers: { 'content-type': /^multipart\/byteranges; boundary=/ } },
  },
  {
    name: 'today: a mount Content-Type replaces a status page type; Accept-Ranges stays bytes there',
    url: '/override/missing.txt',
    want: { status: 404, notFound: true, headers: { 'content-type': 'application/x-forced', 'accept-ranges': 'bytes', 'cache-control': 'max-age=5' } },
  },
];
table('statuses, methods and headers', statusRows);

// ---------------------------------------------------------------------------------------------------
// ETag relations that need more than one request per check.

interface Relation {
  readonly name: string;
  readonly run: () => Promise<void>;
}
const etagOf = async (url: string, ae?: string, engine: EngineName = 'plain'): Promise<string | undefined> =>
  headerOf(E[engine], url, 'etag', ae === undefined ? {} : { 'accept-encoding': ae });

const relations: Relation[] = [
  ...['/ten-k.txt', '/empty.txt', '/app.js', '/site/css/app.css', '/site/img/logo.png', '/site/stored-with-sibling.txt', '/files/site.zip/index.html'].flatMap(
    (url): Relation[] => [
      {
        name: `${url}: ETag quoted and stable across requests and engines`,
        run: async () => {
          const a = await etagOf(url);
          assert.match(a ?? '', QUOTED);
          assert.equal(await etagOf(url), a);
          assert.equal(await etagOf(url, undefined, 'cached'), a);
          assert.equal(await etagOf(url, undefined, 'cached'), a);
        },
      },
    ],
  ),
  {
    name: 'app.js: identity, gzip and br ETags all differ; each is stable',
    run: async () => {
      const tags = [await etagOf('/app.js'), await etagOf('/app.js', 'gzip'), await etagOf('/app.js', 'br')];
      for (const t of tags) assert.match(t ?? '', QUOTED);
      assert.equal(new Set(tags).size, 3);
      assert.deepEqual([await etagOf('/app.js'), await etagOf('/app.js', 'x-gzip'), await etagOf('/app.js', 'gzip, br')], tags);
    },
  },
  {
    name: 'zip entry: identity and gzip ETags differ',
    run: async () => {
      const id = await etagOf('/site/css/app.css');
      const gz = await etagOf('/site/css/app.css', 'gzip');
      assert.match(gz ?? '', QUOTED);
      assert.notEqual(id, gz);
    },
  },
  {
    name: 'zip stored entry with a .gz sibling entry: identity and gzip ETags differ',
    run: async () => assert.notEqual(await etagOf('/site/stored-with-sibling.txt'), await etagOf('/site/stored-with-sibling.txt', 'gzip')),
  },
  {
    name: 'the same file under two mounts has the same ETag (304 across mounts)',
    run: async () => {
      const a = await etagOf('/ten-k.txt');
      assert.equal(await etagOf('/assets/ten-k.txt'), a);
      assert.equal((await exchange(E.plain, 'GET', '/revalidate/ten-k.txt', { 'if-none-match': a! })).status, 304);
    },
  },
  {
    name: '200, 206, HEAD and 304 carry the same ETag and Last-Modified',
    run: async () => {
      const full = await exchange(E.plain, 'GET', '/ten-k.txt');
      const part = await exchange(E.plain, 'GET', '/ten-k.txt', { range: 'bytes=1-2' });
      const multi = await exchange(E.plain, 'GET', '/ten-k.txt', { range: 'bytes=1-2,5-6' });
      const head = await exchange(E.plain, 'HEAD', '/ten-k.txt');
      const nm = await exchange(E.plain, 'GET', '/ten-k.txt', { 'if-none-match': full.headers.etag! });
      for (const r of [part, multi, head, nm]) {
        assert.equal(r.headers.etag, full.headers.etag);
        assert.equal(r.headers['last-modified'], full.headers['last-modified']);
      }
    },
  },
  {
    name: 'a file rewritten with new content and mtime gets a new ETag; the old one no longer 304s',
    run: async () => {
      const file = join(www, 'mutable.txt');
      const before = await exchange(E.plain, 'GET', '/mutable.txt');
      assert.equal(before.body?.toString(), 'version one');
      writeFileSync(file, 'version two!');
      utimesSync(file, (MTIME + 60_000) / 1000, (MTIME + 60_000) / 1000);
      const afterChange = await exchange(E.plain, 'GET', '/mutable.txt', { 'if-none-match': before.headers.etag! });
      assert.equal(afterChange.status, 200);
      assert.equal(afterChange.body?.toString(), 'version two!');
      assert.equal(afterChange.headers['content-length'], '12');
      assert.notEqual(afterChange.headers.etag, before.headers.etag);
      assert.match(afterChange.headers.etag ?? '', QUOTED);
      assert.equal((await exchange(E.plain, 'GET', '/mutable.txt', { 'if-match': before.headers.etag! })).status, 412);
      assert.equal((await exchange(E.plain, 'GET', '/mutable.txt', { 'if-none-match': afterChange.headers.etag! })).status, 304);
      assert.equal((await exchange(E.plain, 'GET', '/mutable.txt', { 'if-range': before.headers.etag!, range: 'bytes=0-6' })).status, 200);
    },
  },
  {
    name: 'a file that appears is served at once with resolveCacheMs 0',
    run: async () => {
      assert.equal((await exchange(E.plain, 'GET', '/appears.txt')).status, 404);
      writeFileSync(join(www, 'appears.txt'), 'now here');
      const r = await exchange(E.plain, 'GET', '/appears.txt');
      assert.equal(r.status, 200);
      assert.equal(r.body?.toString(), 'now here');
    },
  },
  {
    name: 'the default engine keeps a resolved 404 for its window; resolveCacheMs 0 does not',
    run: async () => {
      assert.equal((await exchange(E.cached, 'GET', '/late.txt')).status, 404);
      writeFileSync(join(www, 'late.txt'), 'late');
      assert.equal((await exchange(E.plain, 'GET', '/late.txt')).status, 200);
      assert.equal((await exchange(E.cached, 'GET', '/late.txt')).status, 404, 'still the cached resolution');
      await new Promise((r) => setTimeout(r, 1100));
      assert.equal((await exchange(E.cached, 'GET', '/late.txt')).status, 200, 'resolved afresh after the window');
    },
  },
];

describe('ETag relations and freshness', () => {
  for (const r of relations) it(r.name, r.run);
});
