/**
 * Issue 9's serving behaviours, each driven through createHandler on a real socket on 127.0.0.1: the SPA
 * fallback, clean URLs and default lists, /.well-known/ names without a suffix, the whitelist's log line
 * and the `downloads` preset, archives inside a served folder, relative origins, and CORS.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createHandler, type HandlerOptions } from '../../src/index.js';
import { loadConfig } from '../../src/server/config.js';
import { noise, rmTree, tmpDir, writeTree } from '../helpers/fixtures.js';
import { get, listen, type RawResponse } from '../helpers/http.js';
import { makeZip } from '../helpers/zip-writer.js';

const dir = tmpDir('vfserve-behaviours-');
const www = join(dir, 'www');
const shell = '<!doctype html><div id=app></div>';
const zipShell = '<!doctype html><p>zip app</p>';
const binary = noise(64, 9);

before(() => {
  writeTree(www, {
    'index.html': Buffer.from(shell),
    '404.html': Buffer.from('<p>custom 404</p>'),
    'about.html': Buffer.from('<p>about</p>'),
    'plain.txt': Buffer.from('plain\n'),
    'both.html': Buffer.from('<p>both.html</p>'),
    'both/index.html': Buffer.from('<p>both/</p>'),
    'legacy/index.htm': Buffer.from('<p>htm index</p>'),
    'legacy/page.htm': Buffer.from('<p>htm page</p>'),
    '.well-known/acme-challenge/LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0': Buffer.from('LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0.key'),
    '.well-known/apple-app-site-association': Buffer.from('{"applinks":{}}'),
    '.well-known/assetlinks.json': Buffer.from('[]'),
    '.well-known/.secret': Buffer.from('hidden'),
    '.well-known/tool.exe': binary,
    '.env': Buffer.from('SECRET=1'),
    'config.yaml': Buffer.from('a: 1\n'),
    'other.yaml': Buffer.from('b: 2\n'),
    LICENSE: Buffer.from('MIT\n'),
    CNAME: Buffer.from('example.com\n'),
    'vfserve-linux-x64': binary,
    'setup.exe': binary,
    'report.docx': binary,
    'site.zip': makeZip({
      entries: [
        { name: 'index.html', data: Buffer.from(zipShell) },
        { name: 'app.js', data: Buffer.from('console.log(1)') },
      ],
    }),
    'bad.zip': Buffer.from('not a zip archive'),
  });
  mkdirSync(join(www, 'empty-dir'));
});

after(() => rmTree(dir));

const hdr = (r: RawResponse, name: string): string | undefined => {
  const v = r.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
};

/** Starts a handler on a socket for the length of `fn`. */
async function withServer(options: HandlerOptions, fn: (port: number) => Promise<void>): Promise<void> {
  const server = await listen(createHandler(options));
  try {
    await fn(server.port);
  } finally {
    await server.close();
  }
}

const HTML = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' };

describe('spaFallback', () => {
  const options: HandlerOptions = {
    mounts: [
      { mountpoint: '/', origin: www, spaFallback: '/index.html' },
      { mountpoint: '/zip', origin: join(www, 'site.zip'), spaFallback: '/index.html' },
      { mountpoint: '/broken', origin: join(www, 'empty-dir'), spaFallback: '/missing.html' },
    ],
    notFoundDocument: '/404.html',
  };

  it('answers a missing route that accepts HTML with the fallback, 200, no-cache, Vary: Accept', async () => {
    await withServer(options, async (port) => {
      for (const path of ['/dashboard', '/users/42/edit', '/deep/route/', '/v1.2/']) {
        const r = await get(port, path, HTML);
        assert.equal(r.status, 200, path);
        assert.equal(r.body.toString(), shell, path);
        assert.equal(hdr(r, 'cache-control'), 'no-cache', path);
        assert.equal(hdr(r, 'content-type'), 'text/html; charset=utf-8', path);
        assert.match(hdr(r, 'vary') ?? '', /\bAccept\b/, path);
      }
      // HEAD: the same head, no body.
      const head = await get(port, '/dashboard', HTML, 'HEAD');
      assert.equal(head.status, 200);
      assert.equal(head.body.length, 0);
      assert.equal(hdr(head, 'content-length'), String(shell.length));
    });
  });

  it('follows the documented Accept rule: HTML by name, or wildcards only', async () => {
    await withServer(options, async (port) => {
      const cases: [Record<string, string>, number][] = [
        [{}, 200], // no Accept at all: anything goes
        [{ accept: '*/*' }, 200], // curl, fetch's default
        [{ accept: 'text/*' }, 200],
        [{ accept: 'text/html' }, 200],
        [{ accept: 'application/json' }, 404],
        [{ accept: 'application/json, text/plain, */*' }, 404], // axios: names what it wants
        [{ accept: 'text/html;q=0, */*' }, 404],
        [{ accept: '*/*;q=0' }, 404],
      ];
      for (const [headers, status] of cases) {
        const r = await get(port, '/dashboard', headers);
        assert.equal(r.status, status, JSON.stringify(headers));
        assert.match(hdr(r, 'vary') ?? '', /\bAccept\b/, `${JSON.stringify(headers)}: the answer depends on Accept`);
      }
    });
  });

  it('keeps assets, dotfiles and other methods 404 (and error-document-404 for them)', async () => {
    await withServer(options, async (port) => {
      for (const path of ['/missing.js', '/img/logo.png', '/.env.local', '/.git/config', '/app/.hidden/x']) {
        const r = await get(port, path, HTML);
        assert.equal(r.status, 404, path);
        assert.equal(r.body.toString(), '<p>custom 404</p>', `${path}: the 404 document`);
      }
      assert.equal((await get(port, '/dashboard', HTML, 'POST')).status, 405);
    });
  });

  it('leaves existing files, directories and redirects alone', async () => {
    await withServer(options, async (port) => {
      const r = await get(port, '/plain.txt', HTML);
      assert.equal(r.body.toString(), 'plain\n');
      assert.equal(hdr(r, 'cache-control'), 'no-store');
      assert.equal(hdr(r, 'vary'), undefined);
      assert.equal((await get(port, '/legacy', HTML)).status, 301);
    });
  });

  it('serves the fallback from an archive mount, with revalidation by ETag', async () => {
    await withServer(options, async (port) => {
      const r = await get(port, '/zip/some/route', HTML);
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), zipShell);
      assert.equal(hdr(r, 'cache-control'), 'no-cache');
      const etag = hdr(r, 'etag');
      assert.ok(etag);
      const again = await get(port, '/zip/other', { ...HTML, 'if-none-match': etag });
      assert.equal(again.status, 304);
      assert.equal(hdr(again, 'cache-control'), 'no-cache');
      assert.equal((await get(port, '/zip/missing.css', HTML)).status, 404);
    });
  });

  it('gives the 404 when the fallback file itself is missing', async () => {
    await withServer(options, async (port) => {
      const r = await get(port, '/broken/route', HTML);
      assert.equal(r.status, 404);
      assert.equal(r.body.toString(), '<p>custom 404</p>');
    });
  });
});

describe('extensions and default lists (clean URLs)', () => {
  const options: HandlerOptions = {
    mounts: [
      { mountpoint: '/', origin: www, extensions: ['html', 'htm'] },
      { mountpoint: '/legacy', origin: join(www, 'legacy'), default: ['index.html', 'index.htm'], extensions: ['.htm'] },
    ],
  };
  it('serves about.html for /about when /about does not exist', async () => {
    await withServer(options, async (port) => {
      const r = await get(port, '/about');
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), '<p>about</p>');
      assert.equal(hdr(r, 'content-type'), 'text/html; charset=utf-8');
      assert.equal((await get(port, '/legacy/page')).body.toString(), '<p>htm page</p>');
      // The directory wins over the file with a suffix added: it exists.
      assert.equal((await get(port, '/both')).status, 301);
      assert.equal((await get(port, '/about/')).status, 404, 'a trailing slash names a directory, never a file plus suffix');
      assert.equal((await get(port, '/nothing')).status, 404);
    });
  });
  it('tries the default files in order', async () => {
    await withServer(options, async (port) => {
      assert.equal((await get(port, '/legacy/')).body.toString(), '<p>htm index</p>');
      assert.equal((await get(port, '/both/')).body.toString(), '<p>both/</p>');
    });
  });
});

describe('/.well-known/ names without a suffix', () => {
  it('serves ACME tokens as text/plain and apple-app-site-association as JSON', async () => {
    await withServer({ mounts: [{ mountpoint: '/', origin: www }] }, async (port) => {
      const acme = await get(port, '/.well-known/acme-challenge/LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0');
      assert.equal(acme.status, 200);
      assert.equal(hdr(acme, 'content-type'), 'text/plain; charset=utf-8');
      assert.equal(acme.body.toString(), 'LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0.key');
      const aasa = await get(port, '/.well-known/apple-app-site-association');
      assert.equal(aasa.status, 200);
      assert.equal(hdr(aasa, 'content-type'), 'application/json');
      assert.equal(hdr(await get(port, '/.well-known/assetlinks.json'), 'content-type'), 'application/json; charset=utf-8');
      assert.equal((await get(port, '/.well-known/.secret')).status, 404, 'dotfiles inside stay hidden');
      assert.equal((await get(port, '/.well-known/tool.exe')).status, 403, 'a suffix still goes through the whitelist');
      assert.equal((await get(port, '/LICENSE')).status, 403, 'outside /.well-known/ names without a suffix stay refused');
    });
  });
});

describe('whitelist refusals: one log line naming the key, and the downloads preset', () => {
  it('logs a refused suffix once per mount, with the key that would allow it', async () => {
    const logged: unknown[] = [];
    const options: HandlerOptions = {
      mounts: [
        { mountpoint: '/', origin: www },
        { mountpoint: '/again', origin: www },
      ],
      onError: (err) => void logged.push(err),
    };
    await withServer(options, async (port) => {
      for (const path of ['/config.yaml', '/config.yaml', '/other.yaml', '/again/config.yaml', '/LICENSE', '/CNAME']) {
        const r = await get(port, path);
        assert.equal(r.status, 403, path);
        assert.doesNotMatch(r.body.toString(), /extra-mimetypes|www/, `${path}: the hint is for the log, never the client`);
      }
    });
    const lines = logged.map((e) => (e as Error).message);
    assert.equal(lines.length, 3, lines.join('\n'));
    assert.match(lines[0]!, /mount "\/".*\.yaml.*"extra-mimetypes": \{"\.yaml": "text\/yaml"\}.*--allow \.yaml/);
    assert.match(lines[1]!, /mount "\/again".*\.yaml/);
    assert.match(lines[2]!, /without a suffix.*"mimetype-preset": "downloads"/);
  });

  it('downloads: archives, documents, YAML and names without a suffix, nothing else', async () => {
    await withServer({ mounts: [{ mountpoint: '/', origin: www, mimetypePreset: 'downloads' }] }, async (port) => {
      const expect: [string, number, string | undefined][] = [
        ['/config.yaml', 200, 'application/yaml; charset=utf-8'],
        ['/report.docx', 200, 'application/vnd.openxmlformats-officedocument.wordprocessingml.document'],
        ['/site.zip', 200, 'application/zip'],
        ['/LICENSE', 200, 'text/plain; charset=utf-8'],
        ['/CNAME', 200, 'text/plain; charset=utf-8'],
        ['/vfserve-linux-x64', 200, 'application/octet-stream'],
        ['/setup.exe', 403, 'text/html; charset=utf-8'],
        ['/index.html', 200, 'text/html; charset=utf-8'],
      ];
      for (const [path, status, type] of expect) {
        const r = await get(port, path);
        assert.equal(r.status, status, path);
        assert.equal(hdr(r, 'content-type'), type, path);
      }
      // The archive is still entered with its slash.
      assert.equal((await get(port, '/site.zip/')).body.toString(), zipShell);
    });
  });
});

describe('an archive inside a served folder', () => {
  it('redirects /site.zip to /site.zip/ and serves its default file there', async () => {
    const errors: unknown[] = [];
    const options: HandlerOptions = {
      mounts: [
        { mountpoint: '/', origin: www },
        { mountpoint: '/files', origin: www },
      ],
      onError: (err) => void errors.push(err),
    };
    await withServer(options, async (port) => {
      for (const [path, location] of [
        ['/site.zip', '/site.zip/'],
        ['/files/site.zip', '/files/site.zip/'],
        ['/files/site.zip?v=1', '/files/site.zip/?v=1'],
      ] as const) {
        const r = await get(port, path);
        assert.equal(r.status, 301, path);
        assert.equal(hdr(r, 'location'), location, path);
      }
      for (const path of ['/site.zip/', '/files/site.zip/']) {
        const r = await get(port, path);
        assert.equal(r.status, 200, path);
        assert.equal(r.body.toString(), zipShell, path);
      }
      assert.equal((await get(port, '/files/site.zip/app.js')).body.toString(), 'console.log(1)');
      // A broken archive is a server-side problem once entered, logged, never described to the client.
      const bad = await get(port, '/bad.zip/');
      assert.equal(bad.status, 500);
      assert.doesNotMatch(bad.body.toString(), /bad\.zip|www/);
      assert.equal(errors.length, 1);
    });
  });
});

describe('relative origins', () => {
  it('resolves ./dir and dir/../dir against process.cwd() in code', async () => {
    const rel = `./${relative(process.cwd(), www)}`;
    const dotted = `file://${join(www, 'legacy')}/../`;
    const options: HandlerOptions = {
      mounts: [
        { mountpoint: '/', origin: rel },
        { mountpoint: '/dotted', origin: dotted },
      ],
    };
    const handler = createHandler(options);
    assert.equal(handler.engine.mounts.find((m) => m.mountpoint === '/')!.root, www);
    assert.equal(handler.engine.mounts.find((m) => m.mountpoint === '/dotted')!.root, www);
    await withServer(options, async (port) => {
      assert.equal((await get(port, '/plain.txt')).body.toString(), 'plain\n');
      assert.equal((await get(port, '/dotted/plain.txt')).body.toString(), 'plain\n');
      // Request paths keep their rules.
      assert.equal((await get(port, '/dotted/legacy/../plain.txt')).status, 403);
    });
  });
  it("resolves a configuration file's origins against its directory", () => {
    const confDir = join(dir, 'conf');
    mkdirSync(join(confDir, 'sub'), { recursive: true });
    writeFileSync(
      join(confDir, 'conf'),
      JSON.stringify({
        vhosts: [
          {
            port: 0,
            mounts: [
              { mountpoint: '/', origin: '../www' },
              { mountpoint: '/b', origin: `file://${confDir}/sub/../../www/` },
            ],
          },
        ],
      }),
    );
    const config = loadConfig(join(confDir, 'conf'));
    assert.deepEqual(
      config.vhosts[0]!.mounts.map((m) => m.origin),
      [`file://${www}`, `file://${www}`],
    );
  });
});

describe('cors', () => {
  const options: HandlerOptions = {
    mounts: [
      { mountpoint: '/', origin: www, cors: true },
      { mountpoint: '/closed', origin: www },
    ],
  };
  it('adds Access-Control-Allow-Origin: * to every response of the mount, and no Vary: Origin', async () => {
    await withServer(options, async (port) => {
      for (const [path, status] of [
        ['/plain.txt', 200],
        ['/missing.txt', 404],
        ['/setup.exe', 403],
        ['/legacy', 301],
      ] as const) {
        const r = await get(port, path, { origin: 'https://app.example' });
        assert.equal(r.status, status, path);
        assert.equal(hdr(r, 'access-control-allow-origin'), '*', path);
        assert.doesNotMatch(hdr(r, 'vary') ?? '', /origin/i, path);
      }
      assert.match(hdr(await get(port, '/plain.txt'), 'access-control-expose-headers') ?? '', /Content-Range/);
      assert.equal(hdr(await get(port, '/closed/plain.txt', { origin: 'https://app.example' }), 'access-control-allow-origin'), undefined);
    });
  });
  it('answers preflights with 204, the methods, the asked headers and a max age', async () => {
    await withServer(options, async (port) => {
      const r = await get(
        port,
        '/plain.txt',
        { origin: 'https://app.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'range, x-requested-with' },
        'OPTIONS',
      );
      assert.equal(r.status, 204);
      assert.equal(r.body.length, 0);
      assert.equal(hdr(r, 'access-control-allow-origin'), '*');
      assert.equal(hdr(r, 'access-control-allow-methods'), 'GET, HEAD, OPTIONS');
      assert.equal(hdr(r, 'access-control-allow-headers'), 'range, x-requested-with');
      assert.equal(hdr(r, 'access-control-max-age'), '7200');
      assert.equal(hdr(r, 'vary'), 'Access-Control-Request-Method, Access-Control-Request-Headers');
      // A header list that is not one is not echoed.
      const odd = await get(port, '/x', { 'access-control-request-method': 'GET', 'access-control-request-headers': 'a b' }, 'OPTIONS');
      assert.equal(odd.status, 204);
      assert.equal(hdr(odd, 'access-control-allow-headers'), undefined);
      const post = await get(port, '/plain.txt', {}, 'POST');
      assert.equal(post.status, 405);
      assert.equal(hdr(post, 'allow'), 'GET, HEAD, OPTIONS');
      assert.equal(hdr(post, 'access-control-allow-origin'), '*');
      const closed = await get(port, '/closed/plain.txt', { 'access-control-request-method': 'GET' }, 'OPTIONS');
      assert.equal(closed.status, 405, 'without cors an OPTIONS is not answered');
    });
  });
});
