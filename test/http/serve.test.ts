/**
 * Black-box tests of the serving engine over real sockets on 127.0.0.1, with
 * raw request paths (http.request({path}) or net, never fetch).
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { brotliCompressSync, gunzipSync, gzipSync } from 'node:zlib';
import { createHandler, FopFlags, Vfs, ZipFops, readAll, type FileOps, type FopFd } from '../../src/index.js';
import { noise, prose, rmTree, tmpDir, writeTree } from '../helpers/fixtures.js';
import { get, listen, rawRequest, type RawResponse } from '../helpers/http.js';
import { makeZip } from '../helpers/zip-writer.js';

const dir = tmpDir('vfserve-http-');
const www = join(dir, 'www');
const outside = join(dir, 'outside');
const tenK = Buffer.from(Array.from({ length: 10_000 }, (_, i) => String.fromCharCode(97 + (i % 26))).join(''));
const appJs = prose(50_000);
const zipIndex = Buffer.from('<!doctype html><h1>zip home</h1>');
const zipCss = prose(20_000);
const zipLogo = noise(3000, 3);
const bigStored = noise(8 * 1024 * 1024, 4);
const siteEntries = [
  { name: 'index.html', data: zipIndex },
  { name: 'css/app.css', data: zipCss },
  { name: 'img/logo.png', data: zipLogo, method: 0 },
  { name: 'docs/index.html', data: prose(3000) },
  { name: 'data.bin', data: noise(100, 5) },
  { name: 'big.png', data: bigStored, method: 0 },
  { name: 'ten-k.txt', data: tenK },
  { name: 'secret.txt', data: prose(400), flags: 1 },
];

let port = 0;
let portNoCache = 0;
let close: () => Promise<void> = () => Promise.resolve();
let closeNoCache: () => Promise<void> = () => Promise.resolve();
const errors: unknown[] = [];

before(async () => {
  writeTree(www, {
    'index.html': Buffer.from('<!doctype html><h1>home</h1>'),
    'plain.txt': Buffer.from('plain text\n'),
    'UPPER.HTML': Buffer.from('<p>upper</p>'),
    'style.css': Buffer.from('body{color:red}'),
    'app.js': appJs,
    'app.js.gz': gzipSync(appJs),
    'app.js.br': brotliCompressSync(appJs),
    'solo.js': Buffer.from('console.log(1)'),
    'ten-k.txt': tenK,
    no_ext: Buffer.from('no extension'),
    'photo.png': noise(2000, 1),
    'data.bin': noise(10, 2),
    'snow ☃/index.html': Buffer.from('<p>snow</p>'),
    'a b.txt': Buffer.from('space'),
    '.hidden.txt': Buffer.from('hidden'),
    '.git/config': Buffer.from('[core]'),
    '.well-known/security.txt': Buffer.from('Contact: mailto:x@example.com'),
    'docs/index.html': Buffer.from('<p>docs index</p>'),
    'docs/guide.html': Buffer.from('<p>guide</p>'),
    'sub/index.html': Buffer.from('<p>sub</p>'),
    'nodefault/x.txt': Buffer.from('x'),
    'evil.example/index.html': Buffer.from('<p>evil dir</p>'),
    'files/site.zip': makeZip({ entries: siteEntries }),
    'files/bad.zip': Buffer.from('this is not a zip archive at all, but it is named like one'),
    'files/refused.zip': makeZip({
      entries: [
        { name: 'ok.txt', data: Buffer.from('served') },
        { name: 'bzip2.txt', method: 12, stored: Buffer.from('BZh9 pretend'), data: Buffer.from('pretend') },
        { name: 'link.txt', data: Buffer.from('ok.txt'), method: 0, madeBy: 0x0314, externalAttr: (0o120777 << 16) >>> 0 },
        { name: 'bomb.bin', data: Buffer.alloc(4 * 1024 * 1024) },
      ],
    }),
  });
  writeTree(outside, { 'secret.txt': Buffer.from('outside the root') });
  symlinkSync(join(www, 'plain.txt'), join(www, 'inside-link.txt'));
  symlinkSync(join(outside, 'secret.txt'), join(www, 'outside-link.txt'));
  symlinkSync(outside, join(www, 'outside-dir'));
  const handler = createHandler({
    headers: { 'x-vhost': 'on' },
    mounts: [
      { mountpoint: '/', origin: `file://${www}` },
      { mountpoint: '/docs', origin: `file://${www}/docs` },
      { mountpoint: '/site', origin: `file://${www}/files/site.zip`, cacheMaxAge: 60, cacheReuse: true },
      {
        mountpoint: '/assets',
        origin: www,
        cacheMaxAge: 3600,
        cacheReuse: true,
        cacheIntermediaries: true,
        cacheImmutable: true,
        headers: { 'x-mount': 'assets', 'x-vhost': 'replaced' },
      },
      { mountpoint: '/revalidate', origin: www, cacheMaxAge: 60, cacheReuse: true, cacheRevalidate: true },
      { mountpoint: '/nocache', origin: www, cacheNo: true, cacheMaxAge: 60, cacheReuse: true },
      { mountpoint: '/old', origin: '>https://example.com/new' },
      { mountpoint: '/cb', origin: 'callback://echo', pmo: { greeting: 'hi' } },
      { mountpoint: '/any', origin: www, extraMimetypes: { '*': 'application/x-any' } },
      { mountpoint: '/raw', origin: www, extraMimetypes: { '*': '' } },
      { mountpoint: '/extra', origin: www, extraMimetypes: { '.bin': 'application/x-custom', '.HTML': 'text/x-upper' } },
      { mountpoint: '/links', origin: www, followSymlinks: true },
      { mountpoint: '/plainjs', origin: www, precompressed: false },
      { mountpoint: '/home', origin: www, default: 'plain.txt' },
    ],
    callbacks: {
      echo: (req, res, target) => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ method: req.method, remainder: target.remainder, mountpoint: target.mountpoint, pmo: target.pmo }));
      },
    },
    onError: (err) => errors.push(err),
  });
  ({ port, close } = await listen(handler));
  // The same files with no resolution or small-content cache: every body comes through a file handle.
  const uncached = createHandler({
    mounts: [
      { mountpoint: '/', origin: www },
      { mountpoint: '/site', origin: `file://${www}/files/site.zip` },
    ],
    resolveCacheMs: 0,
  });
  ({ port: portNoCache, close: closeNoCache } = await listen(uncached));
});

after(async () => {
  await closeNoCache();
  await close();
  rmTree(dir);
});

const hdr = (r: RawResponse, name: string): string | undefined => {
  const v = r.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
};

describe('mounts: longest mountpoint on a segment boundary', () => {
  it('serves from the longest matching mount', async () => {
    const r = await get(port, '/docs/guide.html');
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), '<p>guide</p>');
  });
  it('does not match /docsx against /docs', async () => {
    const r = await get(port, '/docsx/guide.html');
    assert.equal(r.status, 404); // the / mount answered: www/docsx does not exist
  });
  it('redirects a URI equal to a mountpoint to the same path plus /, keeping the query', async () => {
    const r = await get(port, '/docs?x=1&y=%2F');
    assert.equal(r.status, 301);
    assert.equal(hdr(r, 'location'), '/docs/?x=1&y=%2F');
    assert.equal((await get(port, '/docs/')).body.toString(), '<p>docs index</p>');
  });
  it('redirects a directory without its slash, and serves its default file with it', async () => {
    assert.equal(hdr(await get(port, '/sub'), 'location'), '/sub/');
    assert.equal((await get(port, '/sub/')).body.toString(), '<p>sub</p>');
    assert.equal((await get(port, '/')).body.toString(), '<!doctype html><h1>home</h1>');
    const snow = await get(port, '/snow%20%E2%98%83');
    assert.equal(snow.status, 301);
    assert.equal(hdr(snow, 'location'), '/snow%20%E2%98%83/');
  });
  it('uses the mount default file', async () => {
    assert.equal((await get(port, '/home/')).body.toString(), 'plain text\n');
  });
  it('answers 404 for a directory without a default file', async () => {
    assert.equal((await get(port, '/nodefault/')).status, 404);
  });
  it('never builds a Location that names another host', async () => {
    for (const path of ['//evil.example', '///evil.example', '/.//evil.example', '//evil.example?x']) {
      const r = await get(port, path);
      assert.equal(r.status, 301, path);
      assert.match(hdr(r, 'location') ?? '', /^\/evil\.example\/(\?x)?$/, path);
    }
  });
});

describe('canonicalising the request path once', () => {
  const cases: [string, number][] = [
    ['/%2e%2e/%2e%2e/etc/passwd', 403],
    ['/docs/../plain.txt', 403],
    ['/.%2E/plain.txt', 403],
    ['/plain.txt%00.html', 400],
    ['/%2fetc/passwd', 400],
    ['/a%5c..%5cplain.txt', 400],
    ['/plain.txt%', 400],
    ['/plain.txt%zz', 400],
    ['/%c3%28', 400],
    ['//plain.txt', 200],
    ['/./plain.txt', 200],
    ['/a%20b.txt', 200],
  ];
  for (const [path, status] of cases) {
    it(`${path} → ${status}`, async () => {
      assert.equal((await get(port, path)).status, status);
    });
  }
  it('refuses a raw backslash and a raw ../ sent byte for byte', async () => {
    assert.equal((await rawRequest(port, 'GET /..\\..\\etc\\passwd HTTP/1.1')).status, 400);
    assert.equal((await rawRequest(port, 'GET /../../etc/passwd HTTP/1.1')).status, 403);
    assert.equal((await rawRequest(port, 'GET http://127.0.0.1/plain.txt HTTP/1.1')).status, 400);
  });
});

describe('dotfiles and symlinks', () => {
  it('hides dotfiles, except under /.well-known/', async () => {
    assert.equal((await get(port, '/.hidden.txt')).status, 404);
    assert.equal((await get(port, '/.git/config')).status, 404);
    assert.equal((await get(port, '/.well-known/security.txt')).status, 200);
  });
  it('serves symlinks inside the origin, and not those that leave it', async () => {
    assert.equal((await get(port, '/inside-link.txt')).status, 200);
    assert.equal((await get(port, '/outside-link.txt')).status, 404);
    assert.equal((await get(port, '/outside-dir/secret.txt')).status, 404);
    const followed = await get(port, '/links/outside-link.txt');
    assert.equal(followed.status, 200);
    assert.equal(followed.body.toString(), 'outside the root');
  });
});

describe('strict mimetype whitelisting', () => {
  it('serves whitelisted types, text with charset=utf-8', async () => {
    assert.equal(hdr(await get(port, '/plain.txt'), 'content-type'), 'text/plain; charset=utf-8');
    assert.equal(hdr(await get(port, '/style.css'), 'content-type'), 'text/css; charset=utf-8');
    assert.equal(hdr(await get(port, '/photo.png'), 'content-type'), 'image/png');
    assert.equal(hdr(await get(port, '/UPPER.HTML'), 'content-type'), 'text/html; charset=utf-8');
  });
  it('refuses everything else with 403 and a short reason, echoing nothing', async () => {
    for (const p of ['/no_ext', '/data.bin', '/site/data.bin']) {
      const r = await get(port, p);
      assert.equal(r.status, 403, p);
      assert.ok(r.body.length < 400);
      assert.ok(!r.body.toString().includes(www) && !r.body.toString().includes('data.bin'), 'no path in the body');
      assert.match(r.body.toString(), /not allowed/);
    }
  });
  it('honours extra-mimetypes: additions, overrides, "*" with a type, "*" with none', async () => {
    assert.equal(hdr(await get(port, '/extra/data.bin'), 'content-type'), 'application/x-custom');
    assert.equal(hdr(await get(port, '/extra/UPPER.HTML'), 'content-type'), 'text/x-upper; charset=utf-8');
    assert.equal(hdr(await get(port, '/any/no_ext'), 'content-type'), 'application/x-any');
    assert.equal(hdr(await get(port, '/any/plain.txt'), 'content-type'), 'text/plain; charset=utf-8');
    const raw = await get(port, '/raw/no_ext');
    assert.equal(raw.status, 200);
    assert.equal(raw.headers['content-type'], undefined);
  });
});

describe('cache policy and validators', () => {
  it('builds Cache-Control from the mount options', async () => {
    assert.equal(hdr(await get(port, '/plain.txt'), 'cache-control'), 'no-store');
    assert.equal(hdr(await get(port, '/site/index.html'), 'cache-control'), 'private, max-age=60');
    assert.equal(hdr(await get(port, '/assets/style.css'), 'cache-control'), 'public, max-age=3600, immutable');
    assert.equal(hdr(await get(port, '/revalidate/style.css'), 'cache-control'), 'must-revalidate, private, max-age=60');
    assert.equal(hdr(await get(port, '/nocache/style.css'), 'cache-control'), 'no-cache');
  });
  it('sends a strong quoted ETag and Last-Modified, and 304s with the same policy and no body', async () => {
    const r = await get(port, '/assets/style.css');
    const etag = hdr(r, 'etag')!;
    assert.match(etag, /^"[^"]+"$/);
    assert.ok(hdr(r, 'last-modified'));
    const nm = await get(port, '/assets/style.css', { 'if-none-match': etag });
    assert.equal(nm.status, 304);
    assert.equal(nm.body.length, 0);
    assert.equal(hdr(nm, 'etag'), etag);
    assert.equal(hdr(nm, 'cache-control'), 'public, max-age=3600, immutable');
    assert.equal(hdr(nm, 'x-mount'), 'assets');
    const nocache = await get(port, '/nocache/style.css');
    assert.equal(hdr(await get(port, '/nocache/style.css', { 'if-none-match': hdr(nocache, 'etag')! }), 'cache-control'), 'no-cache');
  });
  it('gives each encoding of an entry its own ETag, and never leaks the inode behind it', async () => {
    const id = await get(port, '/site/css/app.css');
    const gz = await get(port, '/site/css/app.css', { 'accept-encoding': 'gzip' });
    assert.notEqual(hdr(id, 'etag'), hdr(gz, 'etag'));
    assert.equal(hdr(await get(port, '/site/css/app.css'), 'etag'), hdr(id, 'etag'), 'stable while the archive is unchanged');
    const ino = String(statSync(join(www, 'files/site.zip')).ino);
    assert.ok(!hdr(id, 'etag')!.includes(ino), 'the ETag is a hash, not the handle identity');
  });
  it('gives a zip entry a new ETag when the archive is rebuilt, even with the same content', async () => {
    // Validators name the bytes of one archive version (its identity, the entry's CRC and size):
    // a rebuilt archive may deflate the same content into other gzip bytes.
    // portNoCache: every request opens the archive (the default server may serve its snapshot for 1 s more).
    const before = hdr(await get(portNoCache, '/site/css/app.css'), 'etag');
    const archive = join(www, 'files/site.zip');
    writeFileSync(archive, makeZip({ entries: [...siteEntries].reverse() }));
    utimesSync(archive, new Date(), new Date(Date.now() + 5000));
    const afterRebuild = await get(portNoCache, '/site/css/app.css');
    assert.equal(afterRebuild.status, 200);
    assert.notEqual(hdr(afterRebuild, 'etag'), before);
  });
  const cases: [string, Record<string, string>, number][] = [
    ['a list containing the tag', { 'if-none-match': '"nope", ETAG' }, 304],
    ['*', { 'if-none-match': '*' }, 304],
    ['a weak copy of the tag', { 'if-none-match': 'W/ETAG' }, 304],
    [
      'a different tag, even with If-Modified-Since in the future (ignored)',
      { 'if-none-match': '"nope"', 'if-modified-since': 'Fri, 01 Jan 2100 00:00:00 GMT' },
      200,
    ],
    ['If-Modified-Since in the future', { 'if-modified-since': 'Fri, 01 Jan 2100 00:00:00 GMT' }, 304],
    ['If-Modified-Since in the past', { 'if-modified-since': 'Thu, 01 Jan 1970 00:00:00 GMT' }, 200],
    ['If-Modified-Since that is not a date', { 'if-modified-since': 'yesterday' }, 200],
    ['If-Match with another tag', { 'if-match': '"nope"' }, 412],
    ['If-Match with the tag', { 'if-match': 'ETAG' }, 200],
    ['If-Match with a weak tag (strong comparison)', { 'if-match': 'W/ETAG' }, 412],
    ['If-Unmodified-Since in the past', { 'if-unmodified-since': 'Thu, 01 Jan 1970 00:00:00 GMT' }, 412],
    ['If-Match false beats If-None-Match', { 'if-match': '"nope"', 'if-none-match': 'ETAG' }, 412],
  ];
  for (const [label, headers, status] of cases) {
    it(`preconditions: ${label} → ${status}`, async () => {
      const etag = hdr(await get(port, '/plain.txt'), 'etag')!;
      const h = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, v.replace('ETAG', etag)]));
      const r = await get(port, '/plain.txt', h);
      assert.equal(r.status, status);
      if (status === 304) assert.equal(r.body.length, 0);
    });
  }
});

describe('ranges (RFC 9110 §14 examples on a 10,000-byte representation)', () => {
  const single: [string, number, number][] = [
    ['bytes=0-499', 0, 499],
    ['bytes=500-999', 500, 999],
    ['bytes=-500', 9500, 9999],
    ['bytes=9500-', 9500, 9999],
    ['bytes=0-0', 0, 0],
    ['bytes=-1', 9999, 9999],
    ['bytes=500-700,601-999', 500, 999], // overlapping: merged into one
    ['bytes=9000-99999', 9000, 9999],
  ];
  for (const [path, which] of [
    ['/ten-k.txt', 'cached'],
    ['/site/ten-k.txt', 'cached'],
    ['/ten-k.txt', 'uncached'],
    ['/site/ten-k.txt', 'uncached'],
  ] as const) {
    for (const [range, start, end] of single) {
      it(`${path} (${which}) ${range} → 206 bytes ${start}-${end}`, async () => {
        const r = await get(which === 'cached' ? port : portNoCache, path, { range });
        assert.equal(r.status, 206);
        assert.equal(hdr(r, 'content-range'), `bytes ${start}-${end}/10000`);
        assert.equal(hdr(r, 'content-length'), String(end - start + 1));
        assert.ok(r.body.equals(tenK.subarray(start, end + 1)));
      });
    }
  }
  for (const which of ['cached', 'uncached'] as const)
    it(`serves several ranges as multipart/byteranges with a boundary (${which})`, async () => {
      const r = await get(which === 'cached' ? port : portNoCache, '/ten-k.txt', { range: 'bytes=0-0,-1, 500-599' });
      assert.equal(r.status, 206);
      const boundary = /^multipart\/byteranges; boundary=(.+)$/.exec(hdr(r, 'content-type') ?? '')?.[1];
      assert.ok(boundary, hdr(r, 'content-type'));
      assert.equal(Number(hdr(r, 'content-length')), r.body.length);
      const parts = r.body.toString('latin1').split(`--${boundary}`).slice(1, -1);
      const ranges = parts.map((p) => /Content-Range: bytes (\d+)-(\d+)\/10000/.exec(p)!.slice(1).map(Number));
      assert.deepEqual(ranges.map(([a, b]) => `${a}-${b}`).sort(), ['0-0', '500-599', '9999-9999']);
      for (const p of parts) {
        const [a, b] = /Content-Range: bytes (\d+)-(\d+)/.exec(p)!.slice(1).map(Number) as [number, number];
        assert.match(p, /Content-Type: text\/plain; charset=utf-8/);
        const data = p.slice(p.indexOf('\r\n\r\n') + 4, -2);
        assert.equal(data, tenK.subarray(a, b + 1).toString('latin1'));
      }
      assert.ok(r.body.toString('latin1').endsWith(`--${boundary}--\r\n`));
    });
  it('answers too many ranges with the whole body (200)', async () => {
    const many = Array.from({ length: 40 }, (_, i) => `${i * 200}-${i * 200 + 10}`).join(',');
    const r = await get(port, '/ten-k.txt', { range: `bytes=${many}` });
    assert.equal(r.status, 200);
    assert.equal(r.body.length, 10_000);
  });
  it('answers an unsatisfiable range with 416 and bytes */N', async () => {
    const r = await get(port, '/ten-k.txt', { range: 'bytes=20000-' });
    assert.equal(r.status, 416);
    assert.equal(hdr(r, 'content-range'), 'bytes */10000');
  });
  for (const bad of ['bytes=abc', 'items=0-5', 'bytes=5-2', 'bytes 0-5', 'Bytes=']) {
    it(`ignores an invalid Range (${bad}): 200`, async () => {
      const r = await get(port, '/ten-k.txt', { range: bad });
      assert.equal(r.status, 200);
      assert.equal(r.body.length, 10_000);
    });
  }
  it('applies If-Range only on a strong match', async () => {
    const etag = hdr(await get(port, '/ten-k.txt'), 'etag')!;
    assert.equal((await get(port, '/ten-k.txt', { range: 'bytes=0-9', 'if-range': etag })).status, 206);
    assert.equal((await get(port, '/ten-k.txt', { range: 'bytes=0-9', 'if-range': '"other"' })).status, 200);
    assert.equal((await get(port, '/ten-k.txt', { range: 'bytes=0-9', 'if-range': `W/${etag}` })).status, 200);
  });
  it('ranges the gzip form in gzip bytes, and the inflated form in content bytes', async () => {
    const full = await get(port, '/site/css/app.css', { 'accept-encoding': 'gzip' });
    assert.equal(hdr(full, 'content-encoding'), 'gzip');
    const part = await get(port, '/site/css/app.css', { 'accept-encoding': 'gzip', range: 'bytes=5-104' });
    assert.equal(part.status, 206);
    assert.equal(hdr(part, 'content-encoding'), 'gzip');
    assert.ok(part.body.equals(full.body.subarray(5, 105)));
    const tail = await get(port, '/site/css/app.css', { 'accept-encoding': 'gzip', range: 'bytes=-8' });
    assert.ok(tail.body.equals(full.body.subarray(-8)), 'the gzip trailer');
    const inflated = await get(port, '/site/css/app.css', { range: 'bytes=15000-15999' });
    assert.equal(inflated.status, 206);
    assert.ok(inflated.body.equals(zipCss.subarray(15000, 16000)));
    const stored = await get(port, '/site/img/logo.png', { range: 'bytes=100-199' });
    assert.ok(stored.body.equals(zipLogo.subarray(100, 200)));
  });
});

describe('HEAD', () => {
  it('returns the GET headers and no body', async () => {
    for (const [path, headers] of [
      ['/ten-k.txt', {}],
      ['/site/css/app.css', { 'accept-encoding': 'gzip' }],
      ['/ten-k.txt', { range: 'bytes=0-9' }],
    ] as const) {
      const g = await get(port, path, headers);
      const h = await get(port, path, headers, 'HEAD');
      assert.equal(h.status, g.status);
      assert.equal(h.body.length, 0);
      for (const name of [
        'content-length',
        'content-type',
        'etag',
        'last-modified',
        'cache-control',
        'content-encoding',
        'content-range',
        'vary',
        'accept-ranges',
      ]) {
        assert.equal(hdr(h, name), hdr(g, name), `${path} ${name}`);
      }
    }
  });
});

describe('encodings', () => {
  it('sends a deflated zip entry to gzip clients untouched: header + raw bytes + trailer', async () => {
    const r = await get(port, '/site/css/app.css', { 'accept-encoding': 'gzip, deflate, br' });
    assert.equal(hdr(r, 'content-encoding'), 'gzip');
    assert.equal(hdr(r, 'vary'), 'Accept-Encoding');
    assert.ok(gunzipSync(r.body).equals(zipCss));
    const archive = readFileSync(join(www, 'files/site.zip'));
    const zip = new ZipFops();
    const fd = await zip.open(join(www, 'files/site.zip/css/app.css'), FopFlags.COMPR_ACCEPTABLE_GZIP);
    assert.ok((await readAll(fd)).equals(r.body));
    await fd.close();
    const info = (await zip.index(join(www, 'files/site.zip'))).get('css/app.css')!;
    const raw = r.body.subarray(10, -8);
    assert.equal(raw.length, info.compressedSize);
    assert.ok(archive.includes(raw), 'the raw deflate bytes are the archive bytes');
    assert.ok(r.body.subarray(0, 10).equals(Buffer.from('1f8b0800000000000003', 'hex')));
  });
  const negotiation: [string | undefined, string | undefined][] = [
    [undefined, undefined],
    ['gzip;q=0', undefined],
    ['identity', undefined],
    ['x-gzip', 'gzip'],
    ['*', 'gzip'],
    ['GZIP;q=0.5, identity;q=0.1', 'gzip'],
    ['deflate, br', undefined],
  ];
  for (const [accept, expected] of negotiation) {
    it(`Accept-Encoding ${JSON.stringify(accept)} on a deflated entry → ${expected ?? 'identity'}, with Vary`, async () => {
      const r = await get(port, '/site/css/app.css', accept === undefined ? {} : { 'accept-encoding': accept });
      assert.equal(hdr(r, 'content-encoding'), expected);
      assert.equal(hdr(r, 'vary'), 'Accept-Encoding');
      assert.ok((expected ? gunzipSync(r.body) : r.body).equals(zipCss));
    });
  }
  it('sends no Vary for a resource with one encoding (a stored entry, a file without siblings)', async () => {
    assert.equal(hdr(await get(port, '/site/img/logo.png', { 'accept-encoding': 'gzip' }), 'vary'), undefined);
    assert.equal(hdr(await get(port, '/solo.js', { 'accept-encoding': 'gzip, br' }), 'vary'), undefined);
  });
  it('serves precompressed siblings on disk, br first, and can be switched off per mount', async () => {
    const br = await get(port, '/app.js', { 'accept-encoding': 'gzip, br' });
    assert.equal(hdr(br, 'content-encoding'), 'br');
    assert.equal(hdr(br, 'content-type'), 'text/javascript; charset=utf-8');
    const gz = await get(port, '/app.js', { 'accept-encoding': 'gzip' });
    assert.equal(hdr(gz, 'content-encoding'), 'gzip');
    assert.ok(gunzipSync(gz.body).equals(appJs));
    const id = await get(port, '/app.js');
    assert.equal(hdr(id, 'content-encoding'), undefined);
    assert.ok(id.body.equals(appJs));
    for (const r of [br, gz, id]) assert.equal(hdr(r, 'vary'), 'Accept-Encoding');
    assert.equal(new Set([br, gz, id].map((r) => hdr(r, 'etag'))).size, 3, 'one ETag per encoding');
    const off = await get(port, '/plainjs/app.js', { 'accept-encoding': 'br' });
    assert.equal(hdr(off, 'content-encoding'), undefined);
    assert.equal(hdr(off, 'vary'), undefined);
  });
});

describe('errors, status pages and configured headers', () => {
  it('maps a corrupt archive to 500 without echoing paths or messages', async () => {
    errors.length = 0;
    const r = await get(port, '/files/bad.zip/x.html');
    assert.equal(r.status, 500);
    const body = r.body.toString();
    assert.ok(!body.includes(www) && !/corrupt|central|zip/i.test(body), body);
    assert.match(hdr(r, 'content-type') ?? '', /^text\/html/);
    assert.equal(errors.length, 1, 'the error is logged on the server');
  });
  it('maps an encrypted entry to 403 and a missing one to 404', async () => {
    assert.equal((await get(port, '/site/secret.txt')).status, 403);
    assert.equal((await get(port, '/site/missing.html')).status, 404);
  });
  it('refuses an entry, not its archive: unsupported method and zip bomb 403, symlink entry 404, nothing logged', async () => {
    errors.length = 0;
    assert.equal((await get(port, '/files/refused.zip/ok.txt')).body.toString(), 'served', 'the rest of the archive is served');
    for (const [entry, status] of [
      ['bzip2.txt', 403],
      ['bomb.bin', 403],
      ['link.txt', 404],
    ] as const) {
      for (const encoding of ['identity', 'gzip']) {
        const r = await get(port, `/files/refused.zip/${entry}`, { 'accept-encoding': encoding });
        assert.equal(r.status, status, `${entry} (${encoding})`);
        assert.ok(!/bzip|method|ratio|limit|link/i.test(r.body.toString()), r.body.toString());
      }
    }
    assert.equal(errors.length, 0, "a refused entry is the client's answer, not a server error");
  });
  it('puts the vhost and mount headers, and Accept-Ranges, on every response', async () => {
    for (const [path, headers] of [
      ['/missing'],
      ['/docs'],
      ['/plain.txt'],
      ['/ten-k.txt', { range: 'bytes=1-2' }],
      ['/ten-k.txt', { range: 'bytes=99999-' }],
      ['/files/bad.zip/x.html'],
      ['/no_ext'],
      ['/old/x'],
    ] as [string, Record<string, string>?][]) {
      const r = await get(port, path, headers ?? {});
      assert.equal(hdr(r, 'x-vhost'), 'on', path);
      assert.equal(hdr(r, 'accept-ranges'), 'bytes', path);
    }
    const m = await get(port, '/assets/missing.css');
    assert.equal(hdr(m, 'x-mount'), 'assets');
    assert.equal(hdr(m, 'x-vhost'), 'replaced');
  });
  it('answers other methods on file mounts with 405 and Allow', async () => {
    const r = await get(port, '/plain.txt', {}, 'POST');
    assert.equal(r.status, 405);
    assert.equal(hdr(r, 'allow'), 'GET, HEAD');
  });
});

describe('redirect and callback mounts', () => {
  it('answers >https:// mounts with 301 and the Location', async () => {
    const r = await get(port, '/old/a/b?x=1');
    assert.equal(r.status, 301);
    assert.equal(hdr(r, 'location'), 'https://example.com/new');
  });
  it('hands callback:// requests to the registered handler with the URI remainder', async () => {
    for (const [path, remainder] of [
      ['/cb', ''],
      ['/cb/', '/'],
      ['/cb/a/b?q=1', '/a/b'],
    ]) {
      const r = await get(port, path!, {}, 'POST');
      assert.deepEqual(JSON.parse(r.body.toString()), { method: 'POST', remainder, mountpoint: '/cb', pmo: { greeting: 'hi' } });
      assert.equal(hdr(r, 'x-vhost'), 'on', 'the vhost headers go on callback responses too');
    }
  });
  it('refuses malformed cgi:// and proxy origins, misplaced keys and unknown callback origins when the handler is created', () => {
    assert.throws(() => createHandler({ mounts: [{ mountpoint: '/c', origin: 'cgi://relative/x' }] }), /must name a program by its absolute path/);
    assert.throws(() => createHandler({ mounts: [{ mountpoint: '/p', origin: 'http://127.0.0.1:99999/' }] }), /port must be from 1 to 65535/);
    assert.throws(() => createHandler({ mounts: [{ mountpoint: '/p', origin: 'http://a/b/../c' }] }), /must be a canonical path/);
    assert.throws(() => createHandler({ mounts: [{ mountpoint: '/p', origin: 'http://+relative.sock:/x' }] }), /unix socket path after "\+" must be absolute/);
    assert.throws(
      () => createHandler({ mounts: [{ mountpoint: '/p', origin: www, proxyReadTimeout: 5 }] }),
      /proxyReadTimeout applies only to reverse-proxy origins/,
    );
    assert.throws(
      () => createHandler({ mounts: [{ mountpoint: '/p', origin: 'http://127.0.0.1:9/', cgiTimeout: 5 }] }),
      /cgiTimeout applies only to cgi:\/\/ origins/,
    );
    assert.throws(() => createHandler({ mounts: [{ mountpoint: '/p', origin: 'http://127.0.0.1:9/', proxyTrusted: 'nope' }] }), /is not an IP address/);
    assert.throws(() => createHandler({ mounts: [{ mountpoint: '/c', origin: 'callback://nobody' }] }), /no handler registered for callback:\/\/nobody/);
    assert.throws(() => createHandler({ mounts: [{ mountpoint: '/c', origin: www, cacheMaxAge: -1 }] }), /mounts\[0\]\.cacheMaxAge/);
    assert.throws(() => createHandler({ mounts: [{ mountpoint: 'docs', origin: www }] }), /mounts\[0\]\.mountpoint/);
  });
});

describe('client aborts', () => {
  it('release the handle when the client goes away while the file is still being opened', async () => {
    let open = 0;
    const inner = new Vfs();
    const vfs: FileOps & { stat: Vfs['stat'] } = {
      stat: (p) => inner.stat(p),
      async open(p: string, flags = 0): Promise<FopFd> {
        await new Promise((r) => setTimeout(r, 150)); // the client is gone before the open completes
        const fd = await inner.open(p, flags);
        open++;
        const closeFd = fd.close.bind(fd);
        return Object.assign(fd, { close: async () => (open--, closeFd()) });
      },
    };
    const local = await listen(createHandler({ vfs, mounts: [{ mountpoint: '/', origin: www }], smallFileCache: { maxBytes: 0 } }));
    try {
      const { request } = await import('node:http');
      for (let i = 0; i < 5; i++) {
        const req = request({ host: '127.0.0.1', port: local.port, path: '/files/site.zip/big.png', agent: false });
        req.on('error', () => undefined);
        req.end();
        setTimeout(() => req.destroy(), 20);
      }
      await new Promise((r) => setTimeout(r, 600));
      assert.equal(open, 0, `${open} handles leaked by requests aborted during open`);
    } finally {
      await local.close();
    }
  });

  it('end the stream quietly and release the file handle', async () => {
    // Count the handles the engine opens (entry handles, not the cached archive).
    let open = 0;
    const inner = new Vfs();
    const vfs: FileOps & { stat: Vfs['stat'] } = {
      stat: (p) => inner.stat(p),
      async open(p: string, flags = 0): Promise<FopFd> {
        const fd = await inner.open(p, flags);
        open++;
        let closed = false;
        const closeFd = fd.close.bind(fd);
        return Object.assign(fd, {
          close: async () => {
            if (!closed) open--;
            closed = true;
            return closeFd();
          },
        });
      },
    };
    const local = await listen(createHandler({ vfs, mounts: [{ mountpoint: '/', origin: www }] }));
    try {
      const { request } = await import('node:http');
      await new Promise<void>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: local.port, path: '/files/site.zip/big.png', agent: false }, (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        });
        req.on('error', (e) => ((e as NodeJS.ErrnoException).code === 'ECONNRESET' ? resolve() : reject(e)));
        req.end();
      });
      for (let i = 0; i < 50 && open > 0; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(open, 0, `${open} handles still open after the client went away`);
      assert.equal((await get(local.port, '/plain.txt')).status, 200, 'the server keeps serving');
    } finally {
      await local.close();
    }
  });
});

describe('resolution and small-content caches', () => {
  async function counting(options: { resolveCacheMs?: number; smallFileCache?: { maxFileSize?: number; maxBytes?: number } }) {
    let opens = 0;
    const inner = new Vfs();
    const vfs: FileOps & { stat: Vfs['stat'] } = {
      stat: (p) => inner.stat(p),
      open: (p, flags) => {
        opens++;
        return inner.open(p, flags);
      },
    };
    const server = await listen(createHandler({ vfs, mounts: [{ mountpoint: '/', origin: www }], ...options }));
    return { server, opens: () => opens };
  }

  it('serves a small file from memory after the first request, and re-reads it once it changed', async () => {
    writeFileSync(join(www, 'live.txt'), 'version 1');
    const { server, opens } = await counting({ resolveCacheMs: 100 });
    try {
      for (let i = 0; i < 5; i++) assert.equal((await get(server.port, '/live.txt')).body.toString(), 'version 1');
      assert.equal(opens(), 1, 'one open for five requests');
      writeFileSync(join(www, 'live.txt'), 'version two');
      utimesSync(join(www, 'live.txt'), new Date(), new Date(Date.now() + 10_000));
      await new Promise((r) => setTimeout(r, 150));
      const r = await get(server.port, '/live.txt');
      assert.equal(r.body.toString(), 'version two');
      assert.equal(hdr(r, 'content-length'), '11');
    } finally {
      await server.close();
    }
  });

  it('opens files above maxFileSize every time, and none are kept with the cache off', async () => {
    const big = await counting({ smallFileCache: { maxFileSize: 1000 } });
    const off = await counting({ smallFileCache: { maxBytes: 0 } });
    try {
      for (let i = 0; i < 3; i++) assert.equal((await get(big.server.port, '/ten-k.txt')).body.length, 10_000);
      assert.equal(big.opens(), 3);
      for (let i = 0; i < 3; i++) assert.equal((await get(off.server.port, '/plain.txt')).body.toString(), 'plain text\n');
      assert.equal(off.opens(), 3);
    } finally {
      await big.server.close();
      await off.server.close();
    }
  });

  it('sees a new file at once when resolution caching is off', async () => {
    const { server } = await counting({ resolveCacheMs: 0 });
    try {
      assert.equal((await get(server.port, '/appears.txt')).status, 404);
      writeFileSync(join(www, 'appears.txt'), 'now here');
      assert.equal((await get(server.port, '/appears.txt')).status, 200);
    } finally {
      await server.close();
    }
  });
});
