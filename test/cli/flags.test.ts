/**
 * End-to-end: the zero-config flags of the real `vfserve` CLI, their
 * configuration equivalent (--print-config, round-tripped through --config),
 * --check, the start-up and request lines, and the status page, all over
 * sockets on the loopback interface.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { brotliDecompressSync, gzipSync } from 'node:zlib';
import { after, describe, it } from 'node:test';
import { fixture, root, rmTree, tmpDir, writeTree } from '../helpers/fixtures.js';
import { get, type RawResponse } from '../helpers/http.js';
import { makeZip } from '../helpers/zip-writer.js';

const cli = join(root, 'dist', 'cli', 'main.js');
const dir = tmpDir('vfserve-flags-');
after(() => rmTree(dir));

const www = join(dir, 'www');
writeTree(www, {
  'index.html': Buffer.from('<h1>home</h1>'),
  'app.js': Buffer.from('console.log(1)'),
  'big.css': Buffer.from('body{}'.repeat(100)),
  'big.css.gz': gzipSync(Buffer.from('body{}'.repeat(100))),
  'data.bin': Buffer.from('binary'),
  'notes.xyz': Buffer.from('xyz notes'),
  'bundle.js': Buffer.from('export const answer = 42;\n'.repeat(200)),
  'docs/guide.txt': Buffer.from('a guide'),
});
const site = join(dir, 'site.zip');
writeFileSync(site, makeZip({ entries: [{ name: 'index.html', data: 'zipped home '.repeat(50) }] }));
const tlsDir = fixture('tls');

interface Running {
  readonly child: ChildProcess;
  readonly port: number;
  readonly output: () => string;
  readonly stop: () => Promise<number | null>;
}

/** Starts the CLI and waits for a start-up line matching `url` (its first group is the port). */
function start(args: string[], url = /at https?:\/\/127\.0\.0\.1:(\d+)\//): Promise<Running> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the CLI did not start: ${out}`));
    }, 15_000);
    let started = false;
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const m = url.exec(out);
      if (m && !started) {
        started = true;
        clearTimeout(timer);
        resolve({
          child,
          port: Number(m[1]),
          output: () => out,
          stop: () =>
            new Promise((res) => {
              const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
              child.once('exit', (code) => {
                clearTimeout(killer);
                res(code);
              });
              child.kill('SIGTERM');
            }),
        });
      }
    });
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (!started) reject(new Error(`the CLI exited (${code}): ${out}`));
    });
  });
}

function run(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: dir, encoding: 'utf8', timeout: 15_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Waits until `read()` matches, for lines written when a response closes. */
async function eventually(read: () => string, re: RegExp): Promise<string> {
  for (let i = 0; i < 100 && !re.test(read()); i++) await new Promise((r) => setTimeout(r, 30));
  assert.match(read(), re);
  return read();
}

function getTls(port: number, path: string): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path, servername: 'localhost', rejectUnauthorized: false, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('vfserve flags: bad command lines', () => {
  for (const [args, message] of [
    [['--foo', www], /^vfserve: unknown option --foo \(see vfserve --help\)$/],
    [['-x', www], /^vfserve: unknown option -x \(see vfserve --help\)$/],
    [['-qs', www], /^vfserve: unknown option -qs: give short switches one at a time/],
    [[www, '--port'], /^vfserve: --port needs a value: --port N \(see vfserve --help\)$/],
    [[www, '--port', '70000'], /^vfserve: --port must be 0-65535, got 70000$/],
    [[www, '--cache', 'soon'], /^vfserve: --cache must be a number of seconds, got soon$/],
    [[www, '--cache', '1', '--cache', '2'], /^vfserve: --cache is given twice$/],
    [[www, '--header', 'no colon'], /^vfserve: --header must be 'Name: value', got "no colon"$/],
    [[www, '--cors=yes'], /^vfserve: --cors takes no value/],
    [[www, '--allow', 'pdf'], /^vfserve: --allow takes a suffix such as \.pdf/],
    [[www, '--allow', '.nosuchsuffix'], /^vfserve: --allow \.nosuchsuffix: no type is known for it/],
    [[www, '--allow', '.x=not a type'], /^vfserve: --allow \.x: "not a type" is not a media type$/],
    [[www, '--single=../etc/passwd'], /^vfserve: --single must name a file under the served root/],
    [[www, '--ssl-cert', join(tlsDir, 'localhost.crt')], /^vfserve: --ssl-cert and --ssl-key go together$/],
    [[www, '--ssl-cert', join(dir, 'nope.crt'), '--ssl-key', join(tlsDir, 'localhost.key')], /^vfserve: --ssl-cert .*nope\.crt cannot be read \(ENOENT\)$/],
    [[www, '--ssl-cert', join(tlsDir, 'localhost.crt'), '--ssl-key', join(tlsDir, 'books.example.key')], /^vfserve: --ssl-cert and --ssl-key cannot be used: /],
    [[www, '--access-log', join(dir, 'no', 'such', 'dir.log')], /^vfserve: --access-log .*dir\.log cannot be opened \(ENOENT\)$/],
    [['--config', join(dir, 'x'), '--cors', '--cache', '5'], /^vfserve: --cors, --cache cannot be combined with --config: set them in the configuration/],
    [['--config', join(dir, 'x'), '--print-config'], /^vfserve: --print-config prints the configuration the flags stand for/],
  ] as const) {
    it(`${args.filter((a) => a !== www).join(' ')}: one line naming the flag, exit 2`, () => {
      const r = run([...args]);
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr.split('\n').length, 2, `one line: ${r.stderr}`);
      assert.match(r.stderr.trim(), message);
      assert.doesNotMatch(r.stderr, /vhost|\$\.|ERR_PARSE_ARGS|Usage/, 'speaks of flags, not of the configuration or of parseArgs');
    });
  }

  it('--help is grouped and shows defaults and the keys flags map to', () => {
    const r = run(['--help']);
    assert.equal(r.code, 0);
    for (const group of ['Serving:', 'Caching and headers:', 'TLS:', 'Logging:', 'Configuration:']) assert.ok(r.stdout.includes(`\n${group}\n`), group);
    assert.match(r.stdout, /-p, --port N +.*\(default: 7681\)/);
    assert.match(r.stdout, /-H, --host ADDR +.*\(default: 127\.0\.0\.1\)/);
    assert.match(r.stdout, /-s, --single\[=FILE\] +.*"spa-fallback"/);
    assert.match(r.stdout, /--header 'NAME: VALUE' +.*; repeatable/);
  });
});

describe('vfserve flags: --print-config', () => {
  it('maps every zero-config flag onto its configuration key, with absolute paths', () => {
    const r = run([
      'www',
      '-p',
      '8080',
      '-H',
      '0.0.0.0',
      '-s',
      '-C',
      '--listing',
      '--compress',
      '--cache',
      '60',
      '--immutable',
      '--header',
      'X-Frame-Options: DENY',
      '--header',
      'X-Team:  web ',
      '--allow',
      '.xyz=text/plain',
      '--allow',
      '.bin',
      '--allow',
      'downloads',
      '--ssl-cert',
      join(tlsDir, 'localhost.crt'),
      '--ssl-key',
      join(tlsDir, 'localhost.key'),
      '--access-log',
      'access.log',
      '--print-config',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), {
      vhosts: [
        {
          name: 'localhost',
          port: 8080,
          interface: '0.0.0.0',
          'host-ssl-cert': join(tlsDir, 'localhost.crt'),
          'host-ssl-key': join(tlsDir, 'localhost.key'),
          'access-log': join(dir, 'access.log'),
          headers: [{ 'X-Frame-Options': 'DENY', 'X-Team': 'web' }],
          mounts: [
            {
              mountpoint: '/',
              origin: `file://${www}`,
              'spa-fallback': '/index.html',
              listing: 1,
              cors: 1,
              compress: 1,
              'cache-max-age': 60,
              'cache-reuse': 1,
              'cache-immutable': 1,
              'mimetype-preset': 'downloads',
              'extra-mimetypes': { '.xyz': 'text/plain', '.bin': 'application/octet-stream' },
            },
          ],
        },
      ],
    });
  });

  it('maps --single=FILE, and --immutable alone to a year of caching', () => {
    const r = run([www, '--single=app.html', '--immutable', '--print-config']);
    assert.equal(r.code, 0, r.stderr);
    const mount = (JSON.parse(r.stdout) as { vhosts: [{ mounts: [Record<string, unknown>] }] }).vhosts[0].mounts[0];
    assert.equal(mount['spa-fallback'], '/app.html');
    assert.equal(mount['cache-max-age'], 31_536_000);
    assert.equal(mount['cache-immutable'], 1);
  });

  it('prints a configuration that --config accepts, with --single, --cors, --listing, --compress and --allow downloads', () => {
    const r = run([www, '-p', '0', '--single', '--cors', '--listing', '--compress', '--allow', 'downloads', '--print-config']);
    assert.equal(r.code, 0, r.stderr);
    const file = join(dir, 'pending.json');
    writeFileSync(file, r.stdout);
    const check = run(['--config', file, '--check']);
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, /^vfserve: would serve directory .*www at http:\/\/127\.0\.0\.1:0\/ \(HTTP\/1\.1\)\nvfserve: configuration OK\n$/);
  });

  it('serves what --single, --cors, --compress and --listing stand for, over a socket', async () => {
    const s = await start([www, '-p', '0', '--single', '--cors', '--compress', '--listing', '--quiet']);
    try {
      const route = await get(s.port, '/settings/profile', { accept: 'text/html' });
      assert.equal(route.status, 200);
      assert.equal(route.body.toString(), '<h1>home</h1>');
      assert.equal(route.headers['cache-control'], 'no-cache');
      assert.equal((await get(s.port, '/missing.png', { accept: 'text/html' })).status, 404, 'assets stay 404');
      const preflight = await get(s.port, '/bundle.js', { origin: 'https://example.org', 'access-control-request-method': 'GET' }, 'OPTIONS');
      assert.equal(preflight.status, 204);
      assert.equal(preflight.headers['access-control-allow-origin'], '*');
      const br = await get(s.port, '/bundle.js', { 'accept-encoding': 'br' });
      assert.equal(br.headers['content-encoding'], 'br');
      assert.equal(brotliDecompressSync(br.body).toString(), 'export const answer = 42;\n'.repeat(200));
      const listing = await get(s.port, '/docs/', { accept: 'text/html' });
      assert.equal(listing.status, 200);
      assert.match(listing.body.toString(), /guide\.txt/);
    } finally {
      await s.stop();
    }
  });

  it('round-trips: the flags and `--config <printed file>` serve the same responses', async () => {
    const flags = [
      www,
      '-p',
      '0',
      '--cache',
      '60',
      '--immutable',
      '--header',
      'X-Frame-Options: DENY',
      '--allow',
      '.xyz=text/x-notes',
      '--ssl-cert',
      join(tlsDir, 'localhost.crt'),
      '--ssl-key',
      join(tlsDir, 'localhost.key'),
      '--quiet',
    ];
    const printed = run([...flags, '--access-log', 'flags.log', '--print-config']);
    assert.equal(printed.code, 0, printed.stderr);
    const file = join(dir, 'roundtrip.json');
    writeFileSync(file, printed.stdout.replace('flags.log', 'config.log'));
    const observe = async (args: string[]): Promise<string[]> => {
      const s = await start(args);
      try {
        assert.match(s.output(), /^vfserve: serving directory .*www at https:\/\/127\.0\.0\.1:\d+\/ \(TLS, HTTP\/2 and HTTP\/1\.1\)$/m);
        const seen: string[] = [];
        for (const path of ['/', '/notes.xyz', '/data.bin', '/missing']) {
          const r = await getTls(s.port, path);
          seen.push(
            `${path} ${r.status} ${String(r.headers['content-type'])} ${String(r.headers['cache-control'])} ${String(r.headers['x-frame-options'])} ${r.body.length}`,
          );
        }
        return seen;
      } finally {
        assert.equal(await s.stop(), 0);
      }
    };
    const viaFlags = await observe([...flags, '--access-log', 'flags.log']);
    const viaConfig = await observe(['--config', file, '--quiet']);
    assert.deepEqual(viaConfig, viaFlags);
    assert.equal(viaFlags[0], '/ 200 text/html; charset=utf-8 private, max-age=60, immutable DENY 13');
    assert.match(viaFlags[1]!, /^\/notes\.xyz 200 text\/x-notes/);
    assert.match(viaFlags[2]!, /^\/data\.bin 403 /, 'not allowed by the whitelist, either way');
    const lines = (name: string): string[] =>
      readFileSync(join(dir, name), 'utf8')
        .trim()
        .split('\n')
        .map((l) => l.replace(/^.*\] /, ''));
    assert.deepEqual(lines('config.log'), lines('flags.log'));
    assert.equal(lines('flags.log').length, 4);
  });
});

describe('vfserve flags: --check', () => {
  it('prints what would listen where for flags and for a configuration, without listening, and exits 0', () => {
    const conf = join(dir, 'check.json');
    writeFileSync(
      conf,
      JSON.stringify({
        vhosts: [
          {
            name: 'a.example',
            port: 0,
            interface: '127.0.0.1',
            mounts: [
              { mountpoint: '/', origin: www },
              { mountpoint: '/book', origin: site },
            ],
          },
          { name: 'b.example', port: 0, interface: '127.0.0.1', mounts: [{ mountpoint: '/', origin: '>https://example.com/' }] },
          { name: 'v6', port: 0, interface: '::1', mounts: [{ mountpoint: '/', origin: www }] },
        ],
      }),
    );
    const r = run(['--config', conf, '--check']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout,
      `vfserve: would serve a.example [directory ${www}, /book → archive ${site}], b.example [redirect https://example.com/] at http://127.0.0.1:0/ (HTTP/1.1)\n` +
        `vfserve: would serve v6 [directory ${www}] at http://[::1]:0/ (HTTP/1.1)\n` +
        'vfserve: configuration OK\n',
    );
    const flags = run([site, '--port', '8123', '--check']);
    assert.equal(flags.code, 0, flags.stderr);
    assert.match(flags.stdout, new RegExp(`^vfserve: would serve archive ${site.replace(/[.]/g, '\\.')} at http://127\\.0\\.0\\.1:8123/ \\(HTTP/1\\.1\\)\\n`));
  });

  it('exits 2 with one line for a configuration that would not start', () => {
    const conf = join(dir, 'check-bad.json');
    writeFileSync(conf, JSON.stringify({ vhosts: [{ port: 0, interface: '127.0.0.1', mounts: [{ mountpoint: '/x', origin: 'callback://nobody' }] }] }));
    const r = run(['--config', conf, '--check']);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^vfserve: .*no handler registered for callback:\/\/nobody\n$/);
    writeFileSync(conf, '{ "vhosts": [{ "port": 0, "sts": "maybe" }] }');
    const b = run(['--config', conf, '--check']);
    assert.equal(b.code, 2);
    assert.match(b.stderr, /\$\.vhosts\[0\]\["sts"\]: must be a boolean \(true\/false, 1\/0, on\/off, yes\/no\)\n$/);
  });
});

describe('vfserve: one boolean vocabulary in the configuration', () => {
  it('takes yes/no, on/off, true/false and 1/0 in any case for vhost and mount booleans alike', async () => {
    const conf = join(dir, 'bools.json');
    writeFileSync(
      conf,
      JSON.stringify({
        vhosts: [
          {
            port: 0,
            interface: '127.0.0.1',
            sts: 'no',
            mounts: [
              {
                mountpoint: '/',
                origin: www,
                'cache-max-age': 30,
                'cache-reuse': 'yes',
                'cache-intermediaries': 'On',
                'cache-revalidate': 'NO',
                'follow-symlinks': false,
              },
            ],
          },
        ],
      }),
    );
    const s = await start(['--config', conf, '--quiet']);
    try {
      assert.equal((await get(s.port, '/')).headers['cache-control'], 'public, max-age=30');
    } finally {
      await s.stop();
    }
    writeFileSync(conf, JSON.stringify({ vhosts: [{ port: 0, mounts: [{ mountpoint: '/', origin: www, 'cache-reuse': 'sure' }] }] }));
    const r = run(['--config', conf]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cacheReuse must be a boolean \(true\/false, 1\/0, on\/off, yes\/no\), got "sure"/);
  });
});

describe('vfserve: start-up and request lines', () => {
  it('prints one line per listener, IPv6 in brackets', async () => {
    const s = await start([www, '--host', '::1', '--port', '0'], /at http:\/\/\[::1\]:(\d+)\//);
    try {
      assert.match(s.output(), /^vfserve: serving directory .*www at http:\/\/\[::1\]:\d+\/ \(HTTP\/1\.1\)$/m);
    } finally {
      await s.stop();
    }
  });

  it('logs time, method, path, status, size, how the body was produced and the time taken', async () => {
    const archive = join(dir, 'deflated.zip');
    writeFileSync(archive, makeZip({ entries: [{ name: 'index.html', data: 'inflate me '.repeat(100), method: 8 }] }));
    const s = await start([archive, '--port', '0']);
    try {
      assert.match(s.output(), /^vfserve: indexed .*deflated\.zip: 1 entries in \d+ ms, index \d+\.\d MiB$/m);
      await get(s.port, '/index.html', { 'accept-encoding': 'gzip' });
      await eventually(s.output, /^\S+Z 127\.0\.0\.1 GET \/index\.html 200 \d+B passthrough \d+ms$/m);
      await get(s.port, '/index.html');
      await eventually(s.output, /^\S+Z 127\.0\.0\.1 GET \/index\.html 200 1100B inflated \d+ms$/m);
      await get(s.port, '/index.html');
      await eventually(s.output, /^\S+Z 127\.0\.0\.1 GET \/index\.html 200 1100B cached \d+ms$/m);
      await get(s.port, '/nope');
      await eventually(s.output, /^\S+Z 127\.0\.0\.1 GET \/nope 404 \d+B - \d+ms$/m);
    } finally {
      await s.stop();
    }
    const d = await start([www, '--port', '0']);
    try {
      await get(d.port, '/big.css', { 'accept-encoding': 'gzip' });
      await eventually(d.output, /GET \/big\.css 200 \d+B precompressed \d+ms$/m);
      await get(d.port, '/app.js');
      await eventually(d.output, /GET \/app\.js 200 14B read \d+ms$/m);
      await get(d.port, '/app.js', {}, 'HEAD');
      await eventually(d.output, /HEAD \/app\.js 200 0B - \d+ms$/m);
    } finally {
      await d.stop();
    }
  });

  it('--quiet keeps the start-up line and drops request and indexing lines', async () => {
    const s = await start([site, '--port', '0', '--quiet']);
    try {
      await get(s.port, '/');
      await new Promise((r) => setTimeout(r, 150));
      assert.equal(s.output().trim().split('\n').length, 1, s.output());
      assert.match(s.output(), /^vfserve: serving archive .*site\.zip at http/);
    } finally {
      await s.stop();
    }
  });
});

describe('vfserve: the server-status page', () => {
  const conf = join(dir, 'status');
  writeTree(conf, { 'plugins/README.txt': Buffer.from('no plugins') });
  writeFileSync(
    join(conf, 'conf'),
    JSON.stringify({
      global: { 'plugin-dir': 'plugins' },
      vhosts: [
        {
          name: 'site.example',
          port: 0,
          interface: '127.0.0.1',
          mounts: [
            { mountpoint: '/', origin: www, 'cache-max-age': 5, 'cache-reuse': 1 },
            { mountpoint: '/book', origin: fixture('lws', 'candide.zip'), default: 'candide.html' },
            { mountpoint: '/status', origin: 'callback://server-status' },
          ],
        },
      ],
    }),
  );

  it('reports uptime, connections, requests, bytes and statuses per vhost, archives by URL and cache hit rates, as JSON and Prometheus text', async () => {
    const s = await start(['--config', conf, '--quiet']);
    try {
      await get(s.port, '/');
      await get(s.port, '/');
      await get(s.port, '/missing');
      await get(s.port, '/book/');
      const r = await get(s.port, '/status');
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
      assert.equal(r.headers['cache-control'], 'no-store');
      const j = JSON.parse(r.body.toString()) as {
        server: string;
        uptimeSeconds: number;
        connections: { open: number; total: number };
        vhosts: {
          name: string;
          requests: number;
          bytes: number;
          statuses: Record<string, number>;
          caches: { smallContents: { hits: number; hitRate: number } };
        }[];
        archives: { indexBuilds: number; open: number; indexes: { url: string; entries: number; bytes: number }[] };
      };
      assert.equal(j.server, 'vfserve');
      assert.ok(j.uptimeSeconds > 0 && j.uptimeSeconds < 60);
      assert.equal(j.connections.total, 5, 'every request its own connection');
      assert.equal(j.connections.open, 1, 'this one');
      const v = j.vhosts.find((x) => x.name === 'site.example')!;
      assert.equal(v.requests, 4, 'the status request is counted when it ends');
      assert.deepEqual(v.statuses, { '200': 3, '404': 1 });
      assert.ok(v.bytes > 13 + 13 + 100_000);
      assert.ok(v.caches.smallContents.hits >= 1 && v.caches.smallContents.hitRate > 0);
      assert.equal(j.archives.indexBuilds, 1);
      assert.deepEqual(
        j.archives.indexes.map((a) => a.url),
        ['/book'],
      );
      assert.ok(j.archives.indexes[0]!.entries > 0 && j.archives.indexes[0]!.bytes > 0);
      assert.ok(!r.body.toString().includes(dir) && !r.body.toString().includes(root), 'no disk path');

      const m = await get(s.port, '/status/metrics');
      assert.equal(m.status, 200);
      assert.equal(m.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
      const text = m.body.toString();
      assert.match(text, /^# HELP vfserve_uptime_seconds .+\n# TYPE vfserve_uptime_seconds gauge\nvfserve_uptime_seconds \d+(\.\d+)?\n/);
      assert.match(text, /^vfserve_responses_total\{vhost="site\.example",status="200"\} 4$/m, 'the JSON request counted now');
      assert.match(text, /^vfserve_responses_total\{vhost="site\.example",status="404"\} 1$/m);
      assert.match(text, /^vfserve_archive_index_entries\{archive="\/book"\} \d+$/m);
      assert.match(text, /^# TYPE vfserve_cache_hits_total counter$/m);
      // Every sample line is `name{labels} number`, every family typed once.
      for (const line of text.trim().split('\n')) assert.match(line, /^(# (HELP|TYPE) \w+ .+|\w+(\{(\w+="[^"]*",?)+\})? -?\d+(\.\d+)?(e[+-]\d+)?)$/, line);
      assert.ok(!text.includes(dir), 'no disk path');

      assert.equal((await get(s.port, '/status/other')).status, 404);
      const post = await get(s.port, '/status', {}, 'POST');
      assert.equal(post.status, 405);
      assert.equal(post.headers.allow, 'GET, HEAD');
    } finally {
      await s.stop();
    }
  });

  it('is replaced by a plugin that exports a handler of the same name', async () => {
    writeFileSync(join(conf, 'plugins', 'mine.mjs'), "function mine(req, res) { res.end('my status'); }\nexport { mine as 'server-status' };\n");
    const s = await start(['--config', conf, '--quiet']);
    try {
      assert.equal((await get(s.port, '/status')).body.toString(), 'my status');
    } finally {
      await s.stop();
    }
  });
});
