/**
 * End-to-end: the real `vfserve` CLI (dist/cli/main.js) as a child process on
 * 127.0.0.1, driven over sockets.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TLSSocket } from 'node:tls';
import { after, describe, it } from 'node:test';
import { fixture, root, rmTree, tmpDir, writeTree } from '../helpers/fixtures.js';
import { cli, startCli } from '../helpers/cli.js';
import { get } from '../helpers/http.js';

const dir = tmpDir('vfserve-cli-');
after(() => rmTree(dir));

const start = startCli;

function run(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: root, encoding: 'utf8', timeout: 15_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('vfserve CLI: help and version', () => {
  it('prints usage with --help and the package version with --version', () => {
    const h = run(['--help']);
    assert.equal(h.code, 0);
    assert.match(h.stdout, /vfserve <dir-or-archive> \[flags\]/);
    const v = run(['--version']);
    assert.equal(v.code, 0);
    assert.equal(v.stdout.trim(), `vfserve ${(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version}`);
  });
  it('refuses a bad invocation with a clear message and a non-zero exit', () => {
    const none = run([]);
    assert.notEqual(none.code, 0);
    assert.match(none.stderr, /give one directory or archive/);
    const missing = run([join(dir, 'nope')]);
    assert.match(missing.stderr, /does not exist/);
    assert.notEqual(missing.code, 0);
    assert.match(run(['--port', 'x', dir]).stderr, /--port must be/);
  });
  it('refuses to start on an archive it cannot read, or a missing path: one line, exit 2, no stack', () => {
    const broken = join(dir, 'broken.zip');
    writeFileSync(broken, 'not a zip archive, named like one');
    for (const [path, defect] of [
      [broken, /^vfserve: .*broken\.zip cannot be served: CORRUPT_ARCHIVE index ".*broken\.zip": .+$/],
      [join(dir, 'nope.zip'), /^vfserve: .*nope\.zip does not exist$/],
      [join(dir, 'nope'), /^vfserve: .*nope does not exist$/],
    ] as const) {
      const r = run([path, '--port', '0']);
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.equal(r.stdout, '', 'nothing served');
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr.trim(), defect);
    }
  });
});

describe('vfserve CLI: zero-config', () => {
  it('serves a directory at /, prints its URL and logs each request', async () => {
    const www = join(dir, 'www');
    writeTree(www, { 'index.html': Buffer.from('<h1>zero config</h1>') });
    const s = await start([www, '--port', '0']);
    try {
      const r = await get(s.port, '/');
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), '<h1>zero config</h1>');
      await new Promise((res) => setTimeout(res, 100));
      assert.match(s.output(), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z 127\.0\.0\.1 GET \/ 200 20B (read|cached) \d+ms$/m);
    } finally {
      assert.equal(await s.stop(), 0);
    }
  });
  it('keeps serving after requests that fail (a corrupt archive, a hostile path, an aborted client)', async () => {
    const www = join(dir, 'www-errors');
    writeTree(www, { 'index.html': Buffer.from('still here'), 'bad.zip': Buffer.from('not a zip at all'), 'big.png': Buffer.alloc(5 * 1024 * 1024, 1) });
    const s = await start([www, '--port', '0', '--quiet']);
    try {
      const bad = await get(s.port, '/bad.zip/index.html');
      assert.equal(bad.status, 500);
      assert.ok(!bad.body.toString().includes(www), 'no internal path in the body');
      assert.equal((await get(s.port, '/%2e%2e/%2e%2e/etc/passwd')).status, 403);
      const { request } = await import('node:http');
      await new Promise<void>((resolve) => {
        const req = request({ host: '127.0.0.1', port: s.port, path: '/big.png', agent: false }, (res) =>
          res.once('data', () => {
            req.destroy();
            resolve();
          }),
        );
        req.on('error', () => resolve());
        req.end();
      });
      assert.equal((await get(s.port, '/')).body.toString(), 'still here');
      assert.equal(s.child.exitCode, null, 'the process is still running');
    } finally {
      await s.stop();
    }
  });

  it('serves an archive at /, with gzip passthrough', async () => {
    const s = await start([fixture('lws', 'candide.zip'), '--port', '0', '--quiet']);
    try {
      const r = await get(s.port, '/candide.html', { 'accept-encoding': 'gzip' });
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-encoding'], 'gzip');
      assert.equal(r.body.length, 95147);
    } finally {
      await s.stop('SIGINT');
    }
  });
});

describe('vfserve CLI: --config', () => {
  const conf = join(dir, 'conf-ok');
  mkdirSync(join(conf, 'conf.d'), { recursive: true });
  mkdirSync(join(conf, 'site'), { recursive: true });
  writeFileSync(join(conf, 'site', 'index.html'), 'default vhost');
  writeFileSync(
    join(conf, 'conf'),
    `# lwsws-style: JSON plus comments
{
  "global": { "server-string": "vfserve-test", # a comment after a value
              "reject-service-keywords": [{ "BadBot": "403 go away # not a comment" }] },
  "vhosts": [{ "name": "first.example", "port": 0, "interface": "127.0.0.1",
               "access-log": "access.log",
               "mounts": [{ "mountpoint": "/", "origin": "file://site" }] }]
}
`,
  );
  writeFileSync(
    join(conf, 'conf.d', '10-books'),
    JSON.stringify({
      vhosts: [
        {
          name: 'books.example',
          port: 0,
          interface: '127.0.0.1',
          headers: [{ 'X-Vhost': 'books' }],
          mounts: [{ mountpoint: '/', origin: fixture('lws', 'candide.zip'), default: 'candide.html', 'cache-max-age': '60', 'cache-reuse': '1' }],
        },
      ],
    }),
  );
  writeFileSync(
    join(conf, 'conf.d', '20-wild'),
    JSON.stringify({
      vhosts: [{ name: '*.wild.example', port: 0, interface: '127.0.0.1', mounts: [{ mountpoint: '/', origin: '>https://example.com/wild' }] }],
    }),
  );
  writeFileSync(join(conf, 'conf.d', '30-broken~'), '{ this is an editor backup and is skipped');

  it('loads conf and conf.d, resolves relative paths, chooses vhosts by Host and writes the access log', async () => {
    const s = await start(['--config', conf]);
    try {
      const d = await get(s.port, '/', { host: 'unknown.example' });
      assert.equal(d.body.toString(), 'default vhost');
      assert.equal(d.headers.server, 'vfserve-test');
      const b = await get(s.port, '/', { host: 'books.example:8080' });
      assert.equal(b.status, 200);
      assert.equal(b.headers['x-vhost'], 'books');
      assert.equal(b.headers['cache-control'], 'private, max-age=60');
      const w = await get(s.port, '/x', { host: 'a.wild.example' });
      assert.equal(w.status, 301);
      assert.equal(w.headers.location, 'https://example.com/wild');
      const bot = await get(s.port, '/', { 'user-agent': 'Mozilla BadBot/1.0' });
      assert.equal(bot.status, 403);
      assert.equal(bot.body.toString(), 'go away # not a comment\n');
      assert.equal((await get(s.port, '/missing%20%22q%22?x=1', { referer: 'http://r.example/', 'user-agent': 'tester "1"' })).status, 404);
      await new Promise((res) => setTimeout(res, 150));
    } finally {
      assert.equal(await s.stop(), 0);
    }
    const log = readFileSync(join(conf, 'access.log'), 'utf8').trim().split('\n');
    assert.ok(log.length >= 3, log.join('\n'));
    assert.match(log[0]!, /^127\.0\.0\.1 - - \[\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} \+0000\] "GET \/ HTTP\/1\.1" 200 13 "-" "-"$/);
    // A response refused by reject-service-keywords is a response: logged like any other.
    assert.match(log[1]!, /"GET \/ HTTP\/1\.1" 403 \d+ "-" "Mozilla BadBot\/1\.0"$/);
    // Quotes and control characters from clients are escaped, so a line cannot be forged.
    assert.match(log[2]!, /"GET \/missing%20%22q%22\?x=1 HTTP\/1\.1" 404 \d+ "http:\/\/r\.example\/" "tester \\x221\\x22"$/);
  });

  const bad: [string, Record<string, string>, RegExp][] = [
    ['an unknown vhost key', { conf: '{ "vhosts": [{ "port": 0, "mounts": [], "moutns": [] }] }' }, /conf: \$\.vhosts\[0\]\["moutns"\]: unknown vhost key/],
    ['an unknown global key', { conf: '{ "global": { "count-thread": 2 }, "vhosts": [{ "port": 0 }] }' }, /\$\.global\["count-thread"\]: unknown global key/],
    [
      'a remote option out of range',
      { conf: '{ "global": { "remote-block-size": 100 }, "vhosts": [{ "port": 0 }] }' },
      /\$\.global\["remote-block-size"\]: must be an integer from 4096/,
    ],
    ['invalid JSON, by line and column', { conf: '{\n  "vhosts": [ }' }, /conf: line 2, column 15: not valid JSON: expected a value, found "}"$/m],
    ['a trailing comma', { conf: '# lwsws\n{ "vhosts": [{ "port": 0 },\n] }' }, /conf: line 2, column 27: not valid JSON: a trailing ',' before ']'/],
    [
      'a broken conf.d file (lwsws would drop it silently)',
      { conf: '{ "vhosts": [{ "port": 0 }] }', 'conf.d/10-bad': '{ "vhosts": [{ "port": "eighty" }] }' },
      /10-bad: \$\.vhosts\[0\]\["port"\]: must be an integer/,
    ],
    ['a missing port', { conf: '{ "vhosts": [{ "name": "x" }] }' }, /"port" is required/],
    [
      'an unknown mount key',
      { conf: '{ "vhosts": [{ "port": 0, "mounts": [{ "mountpoint": "/", "origin": "/tmp", "cache-max-agee": 1 }] }] }' },
      /\$\.vhosts\[0\]\["mounts"\]\[0\]: unknown key "cache-max-agee"/,
    ],
    ['no vhost at all', { conf: '{ "global": {} }' }, /no vhost is configured/],
    [
      'an origin that does not exist',
      {
        conf: '{ "vhosts": [{ "port": 0, "mounts": [{ "mountpoint": "/", "origin": "/tmp" }] }] }',
        'conf.d/10-more': '{ "vhosts": [{ "port": 0, "mounts": [{ "mountpoint": "/", "origin": "/tmp" }, { "mountpoint": "/x", "origin": "file://nope" }] }] }',
      },
      /conf\.d\/10-more: \$\.vhosts\[0\]\["mounts"\]\[1\]\["origin"\]: \/.*\/conf\.d\/nope does not exist\n/,
    ],
    [
      'an archive origin that cannot be read',
      { conf: '{ "vhosts": [{ "port": 0, "mounts": [{ "mountpoint": "/", "origin": "file://broken.zip" }] }] }', 'broken.zip': 'not a zip' },
      /conf: \$\.vhosts\[0\]\["mounts"\]\[0\]\["origin"\]: \/.*broken\.zip cannot be served: CORRUPT_ARCHIVE index ".*broken\.zip": .+\n/,
    ],
  ];
  for (const [label, files, message] of bad) {
    it(`fails the whole load with one clear message: ${label}`, () => {
      const d = join(dir, `bad-${label.replace(/\W+/g, '-')}`);
      for (const [name, text] of Object.entries(files)) {
        mkdirSync(join(d, name, '..'), { recursive: true });
        writeFileSync(join(d, name), text);
      }
      const r = run(['--config', d]);
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split('\n').length, 1, 'one line');
    });
  }
});

describe('vfserve CLI: refused configurations', () => {
  for (const [label, conf, message] of [
    [
      'a TLS key file that does not exist',
      '{ "vhosts": [{ "port": 0, "interface": "127.0.0.1", "host-ssl-key": "k.pem", "host-ssl-cert": "c.pem" }] }',
      /host-ssl-key .*k\.pem cannot be read/,
    ],
    ['sts without TLS', '{ "vhosts": [{ "port": 0, "interface": "127.0.0.1", "sts": 1 }] }', /"sts" needs a TLS vhost/],
    [
      'an interface that does not exist',
      '{ "vhosts": [{ "port": 0, "interface": "no-such-if0" }] }',
      /"interface" "no-such-if0" is neither an IP address nor a network interface/,
    ],
  ] as const) {
    it(`refuses ${label} with a clear message`, () => {
      const file = join(dir, `unsupported-${label}.json`);
      writeFileSync(file, conf);
      const r = run(['--config', file]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, message);
    });
  }
});

describe('vfserve CLI: TLS vhosts chosen by SNI', () => {
  it('serves each TLS vhost on one port with its own certificate, and sts where asked', async () => {
    const d = join(dir, 'tls');
    writeTree(d, { 'a/index.html': Buffer.from('localhost site'), 'b/index.html': Buffer.from('books site') });
    const tlsDir = fixture('tls');
    writeFileSync(
      join(d, 'conf'),
      JSON.stringify({
        vhosts: [
          {
            name: 'localhost',
            port: 0,
            interface: '127.0.0.1',
            'host-ssl-key': join(tlsDir, 'localhost.key'),
            'host-ssl-cert': join(tlsDir, 'localhost.crt'),
            mounts: [{ mountpoint: '/', origin: 'file://a' }],
          },
          {
            name: 'books.example',
            port: 0,
            interface: '127.0.0.1',
            sts: 1,
            'host-ssl-key': join(tlsDir, 'books.example.key'),
            'host-ssl-cert': join(tlsDir, 'books.example.crt'),
            mounts: [{ mountpoint: '/', origin: 'file://b' }],
          },
        ],
      }),
    );
    const s = await start(['--config', d]);
    const { request } = await import('node:https');
    const fetchTls = (servername: string): Promise<{ cn: unknown; body: string; sts: unknown }> =>
      new Promise((resolve, reject) => {
        const req = request(
          { host: '127.0.0.1', port: s.port, path: '/', servername, headers: { host: servername }, rejectUnauthorized: false, agent: false },
          (res) => {
            if (!(res.socket instanceof TLSSocket)) {
              reject(new Error('the response did not come over TLS'));
              return;
            }
            const cert = res.socket.getPeerCertificate();
            let body = '';
            res.on('data', (c: Buffer) => (body += c.toString()));
            res.on('end', () => resolve({ cn: cert.subject.CN, body, sts: res.headers['strict-transport-security'] }));
          },
        );
        req.on('error', reject);
        req.end();
      });
    try {
      assert.match(s.output(), /at https:\/\/127\.0\.0\.1:/);
      assert.deepEqual(await fetchTls('books.example'), { cn: 'books.example', body: 'books site', sts: 'max-age=15768000 ; includeSubDomains' });
      assert.deepEqual(await fetchTls('localhost'), { cn: 'localhost', body: 'localhost site', sts: undefined });
      const other = await fetchTls('other.example');
      assert.equal(other.cn, 'localhost', "an unknown name gets the port's first vhost");
    } finally {
      await s.stop();
    }
  });

  it('refuses a port shared by TLS and plain vhosts', () => {
    const file = join(dir, 'mixed.json');
    const tlsDir = fixture('tls');
    writeFileSync(
      file,
      JSON.stringify({
        vhosts: [
          { name: 'a', port: 0, interface: '127.0.0.1' },
          { name: 'b', port: 0, interface: '127.0.0.1', 'host-ssl-key': join(tlsDir, 'localhost.key'), 'host-ssl-cert': join(tlsDir, 'localhost.crt') },
        ],
      }),
    );
    const r = run(['--config', file]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /all or none of them must have TLS/);
  });
});

describe('vfserve CLI: plugins', () => {
  it('loads ESM handlers from plugin-dir and routes callback:// mounts to them', async () => {
    const d = join(dir, 'plugins');
    writeTree(d, {
      'plugins/hello.mjs': Buffer.from(
        "export function hello(req, res, target) { res.setHeader('content-type', 'text/plain'); res.end(`hello ${req.method} ${target.remainder} ${target.pmo.who}`); }\nexport const notAHandler = 42;\n",
      ),
      'plugins/README.txt': Buffer.from('not a module'),
    });
    writeFileSync(
      join(d, 'conf'),
      JSON.stringify({
        global: { 'plugin-dir': 'plugins' },
        vhosts: [{ port: 0, interface: '127.0.0.1', mounts: [{ mountpoint: '/hi', origin: 'callback://hello', pmo: [{ who: 'world' }] }] }],
      }),
    );
    const s = await start(['--config', d, '--quiet']);
    try {
      const r = await get(s.port, '/hi/there?x=1', {}, 'POST');
      assert.equal(r.body.toString(), 'hello POST /there world');
    } finally {
      await s.stop();
    }
  });

  it('refuses a mount whose handler no plugin provides, and a handler exported twice', () => {
    const d = join(dir, 'plugins-bad');
    writeTree(d, { 'p/a.mjs': Buffer.from('export function same() {}\n'), 'p/b.mjs': Buffer.from('export function same() {}\n') });
    writeFileSync(
      join(d, 'missing.json'),
      JSON.stringify({ vhosts: [{ port: 0, interface: '127.0.0.1', mounts: [{ mountpoint: '/x', origin: 'callback://nobody' }] }] }),
    );
    const missing = run(['--config', join(d, 'missing.json')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no handler registered for callback:\/\/nobody/);
    writeFileSync(join(d, 'twice.json'), JSON.stringify({ global: { 'plugin-dir': 'p' }, vhosts: [{ port: 0, interface: '127.0.0.1' }] }));
    const twice = run(['--config', join(d, 'twice.json')]);
    assert.equal(twice.code, 1);
    assert.match(twice.stderr, /plugin handler "same" is exported by both/);
  });
});

describe('vfserve CLI: reload on SIGHUP', () => {
  it('swaps in a new configuration on the same port, and keeps the old one when the new one is bad', async () => {
    const d = join(dir, 'reload');
    writeTree(d, { 'a/index.html': Buffer.from('site A'), 'b/index.html': Buffer.from('site B'), 'big/x.png': Buffer.alloc(30 * 1024 * 1024, 7) });
    const conf = (origin: string): string =>
      JSON.stringify({
        vhosts: [
          {
            port: 0,
            interface: '127.0.0.1',
            mounts: [
              { mountpoint: '/', origin },
              { mountpoint: '/big', origin: 'file://big' },
            ],
          },
        ],
      });
    writeFileSync(join(d, 'conf'), conf('file://a'));
    const s = await start(['--config', d, '--quiet']);
    const waitFor = async (re: RegExp): Promise<void> => {
      for (let i = 0; i < 100 && !re.test(s.output()); i++) await new Promise((r) => setTimeout(r, 50));
      assert.match(s.output(), re);
    };
    try {
      assert.equal((await get(s.port, '/')).body.toString(), 'site A');
      // A large response in flight across the reload must complete: the client stops reading
      // after its first chunk, so the server cannot finish before the reload.
      const { request } = await import('node:http');
      let resumeBig: () => void = () => undefined;
      let paused = false as boolean; // set by a callback
      const inFlight = new Promise<{ body: Buffer }>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: s.port, path: '/big/x.png', agent: false }, (res) => {
          let n = 0;
          res.once('data', (c: Buffer) => {
            n += c.length;
            res.pause();
            paused = true;
            resumeBig = () => {
              res.on('data', (more: Buffer) => (n += more.length));
              res.resume();
            };
          });
          res.on('end', () => resolve({ body: Buffer.alloc(n) }));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end();
      });
      for (let i = 0; i < 100 && !paused; i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(paused, 'the large response started');
      writeFileSync(join(d, 'conf'), conf('file://b'));
      s.child.kill('SIGHUP');
      await waitFor(/configuration reloaded/);
      assert.equal((await get(s.port, '/')).body.toString(), 'site B', 'same port, new configuration');
      resumeBig();
      assert.equal((await inFlight).body.length, 30 * 1024 * 1024, 'the response in flight across the reload completed');
      writeFileSync(join(d, 'conf'), '{ "vhosts": [ { "port": "not a port" } ] }');
      s.child.kill('SIGHUP');
      await waitFor(/reload failed, still serving the previous configuration: .*port.*must be an integer/);
      assert.equal((await get(s.port, '/')).body.toString(), 'site B', 'the old configuration keeps serving');
    } finally {
      assert.equal(await s.stop(), 0);
    }
  });
});

describe('vfserve CLI: origins checked at reload', () => {
  it('refuses a reload whose origin does not exist, naming file and JSON path, and keeps serving the old one', async () => {
    const d = join(dir, 'reload-origin');
    writeTree(d, { 'a/index.html': Buffer.from('site A'), 'broken.zip': Buffer.from('not a zip') });
    const conf = (origin: string): string => JSON.stringify({ vhosts: [{ port: 0, interface: '127.0.0.1', mounts: [{ mountpoint: '/', origin }] }] });
    writeFileSync(join(d, 'conf'), conf('file://a'));
    const s = await start(['--config', d, '--quiet']);
    const waitFor = async (re: RegExp): Promise<void> => {
      for (let i = 0; i < 100 && !re.test(s.output()); i++) await new Promise((r) => setTimeout(r, 50));
      assert.match(s.output(), re);
    };
    try {
      writeFileSync(join(d, 'conf'), conf('file://gone'));
      s.child.kill('SIGHUP');
      await waitFor(/reload failed, still serving the previous configuration: .*conf: \$\.vhosts\[0\]\["mounts"\]\[0\]\["origin"\]: .*gone does not exist/);
      assert.equal((await get(s.port, '/')).body.toString(), 'site A', 'the old configuration keeps serving');
      writeFileSync(join(d, 'conf'), conf('file://broken.zip'));
      s.child.kill('SIGHUP');
      await waitFor(/reload failed, still serving the previous configuration: .*\["origin"\]: .*broken\.zip cannot be served: CORRUPT_ARCHIVE/);
      assert.equal((await get(s.port, '/')).body.toString(), 'site A');
      assert.doesNotMatch(s.output(), /configuration reloaded/);
    } finally {
      assert.equal(await s.stop(), 0);
    }
  });
});

describe('vfserve CLI: count-threads', () => {
  it('serves one port from several worker processes, reloads them all, and stops them all', async () => {
    const d = join(dir, 'cluster');
    writeTree(d, { 'p/pid.mjs': Buffer.from('export function pid(req, res) { res.end(String(process.pid)); }\n') });
    const conf = (greeting: string): string =>
      JSON.stringify({
        global: { 'count-threads': 2, 'plugin-dir': 'p', 'server-string': greeting },
        vhosts: [{ port: 0, interface: '127.0.0.1', mounts: [{ mountpoint: '/pid', origin: 'callback://pid' }] }],
      });
    writeFileSync(join(d, 'conf'), conf('one'));
    const s = await start(['--config', d, '--quiet']);
    try {
      assert.match(s.output(), /\(2 workers\)/);
      assert.equal(s.output().match(/serving/g)?.length, 1, 'the URL is printed once');
      const pids = new Set<string>();
      for (let i = 0; i < 40 && pids.size < 2; i++) pids.add((await get(s.port, '/pid')).body.toString());
      assert.equal(pids.size, 2, `responses came from ${[...pids].join(', ')}`);
      assert.ok(![...pids].includes(String(s.child.pid)), 'the primary serves nothing itself');
      writeFileSync(join(d, 'conf'), conf('two'));
      s.child.kill('SIGHUP');
      for (let i = 0; i < 100 && (s.output().match(/configuration reloaded/g)?.length ?? 0) < 2; i++) await new Promise((r) => setTimeout(r, 50));
      assert.equal(s.output().match(/configuration reloaded/g)?.length, 2, 'both workers reloaded');
      assert.equal((await get(s.port, '/pid')).headers.server, 'two');
    } finally {
      assert.equal(await s.stop(), 0);
    }
  });
});

describe('vfserve CLI: error-document-404, unix sockets and interface names', () => {
  it('serves the error document with status 404 for any missing path', async () => {
    const d = join(dir, 'e404');
    writeTree(d, { 'www/index.html': Buffer.from('home'), 'www/404.html': Buffer.from('<h1>not here</h1>') });
    writeFileSync(
      join(d, 'conf'),
      JSON.stringify({ vhosts: [{ port: 0, interface: 'lo', 'error-document-404': '/404.html', mounts: [{ mountpoint: '/', origin: 'file://www' }] }] }),
    );
    const s = await start(['--config', d, '--quiet']); // interface "lo" is a name: 127.0.0.1
    try {
      const r = await get(s.port, '/no/such/page.html');
      assert.equal(r.status, 404);
      assert.equal(r.body.toString(), '<h1>not here</h1>');
      assert.equal(r.headers['content-type'], 'text/html; charset=utf-8');
      assert.equal(r.headers.etag, undefined);
      assert.equal((await get(s.port, '/no/such/page.html', {}, 'HEAD')).body.length, 0);
      assert.equal((await get(s.port, '/')).status, 200);
    } finally {
      await s.stop();
    }
  });

  it('listens on a unix socket given in "interface", replacing a stale socket file', async () => {
    const d = join(dir, 'unix');
    writeTree(d, { 'www/index.html': Buffer.from('over a unix socket') });
    const sock = join(d, 'vfserve.sock');
    writeFileSync(join(d, 'conf'), JSON.stringify({ vhosts: [{ 'unix-socket': 1, interface: sock, mounts: [{ mountpoint: '/', origin: 'file://www' }] }] }));
    const { request } = await import('node:http');
    // A stale socket file: bound once, never listened on, its process gone.
    const made = spawnSync('python3', ['-c', `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(sock)})`]);
    assert.equal(made.status, 0, String(made.stderr));
    const child = spawn(process.execPath, [cli, '--config', d, '--quiet'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    try {
      for (let i = 0; i < 100 && !/on unix socket/.test(out); i++) await new Promise((r) => setTimeout(r, 50));
      assert.match(out, /serving default \[directory .*www\] on unix socket .*vfserve\.sock \(HTTP\/1\.1\)/);
      const body = await new Promise<string>((resolve, reject) => {
        const req = request({ socketPath: sock, path: '/', headers: { host: 'x' } }, (res) => {
          let b = '';
          res.on('data', (c: Buffer) => (b += c.toString()));
          res.on('end', () => resolve(b));
        });
        req.on('error', reject);
        req.end();
      });
      assert.equal(body, 'over a unix socket');
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  });
});

describe('vfserve CLI: ports, keep-alive, logs and shutdown', () => {
  async function freePorts(n: number): Promise<number[]> {
    const { createServer } = await import('node:net');
    const servers = await Promise.all(
      Array.from(
        { length: n },
        () =>
          new Promise<import('node:net').Server>((r) => {
            const srv = createServer();
            srv.listen(0, '127.0.0.1', () => r(srv));
          }),
      ),
    );
    const ports = servers.map((srv) => (srv.address() as import('node:net').AddressInfo).port);
    await Promise.all(servers.map((srv) => new Promise((r) => srv.close(r))));
    return ports;
  }

  it('gives vhosts of the same name on different ports each their own listener', async () => {
    const [p1, p2] = (await freePorts(2)) as [number, number];
    const d = join(dir, 'two-ports');
    writeTree(d, { 'one/index.html': Buffer.from('port one'), 'two/index.html': Buffer.from('port two') });
    writeFileSync(
      join(d, 'conf'),
      JSON.stringify({
        vhosts: [
          { name: 'same.example', port: p1, interface: '127.0.0.1', mounts: [{ mountpoint: '/', origin: 'file://one' }] },
          { name: 'same.example', port: p2, interface: '127.0.0.1', keepalive_timeout: 1, mounts: [{ mountpoint: '/', origin: 'file://two' }] },
        ],
      }),
    );
    const s = await start(['--config', d, '--quiet']);
    try {
      assert.equal((await get(p1, '/', { host: 'same.example' })).body.toString(), 'port one');
      assert.equal((await get(p2, '/', { host: 'same.example' })).body.toString(), 'port two');
      // keepalive_timeout 1: an idle kept-alive connection is closed by the server after about a second.
      const { connect } = await import('node:net');
      const sock = connect(p2, '127.0.0.1');
      sock.write('GET / HTTP/1.1\r\nHost: same.example\r\n\r\n');
      const closedAfter = await new Promise<number>((resolve) => {
        const t0 = Date.now();
        sock.on('data', () => undefined);
        sock.on('close', () => resolve(Date.now() - t0));
        setTimeout(() => {
          sock.destroy();
          resolve(-1);
        }, 8000);
      });
      assert.ok(closedAfter > 500 && closedAfter < 4000, `closed after ${closedAfter} ms`);
    } finally {
      await s.stop();
    }
  });

  it('keeps appending to the access log after logrotate copytruncate empties it', async () => {
    const d = join(dir, 'logrotate');
    writeTree(d, { 'www/index.html': Buffer.from('logged') });
    writeFileSync(
      join(d, 'conf'),
      JSON.stringify({ vhosts: [{ port: 0, interface: '127.0.0.1', 'access-log': 'access.log', mounts: [{ mountpoint: '/', origin: 'file://www' }] }] }),
    );
    const s = await start(['--config', d, '--quiet']);
    const log = join(d, 'access.log');
    const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 150));
    try {
      await get(s.port, '/?before');
      await settle();
      assert.match(readFileSync(log, 'utf8'), /GET \/\?before/);
      writeFileSync(log, ''); // what copytruncate does after copying
      await get(s.port, '/?after');
      await settle();
      const text = readFileSync(log, 'utf8');
      assert.ok(text.startsWith('127.0.0.1 - - ['), `no hole of NUL bytes before the new line: ${JSON.stringify(text.slice(0, 20))}`);
      assert.match(text, /GET \/\?after/);
      assert.doesNotMatch(text, /before/);
    } finally {
      await s.stop();
    }
  });

  it('finishes in-flight responses on SIGTERM before exiting', async () => {
    const d = join(dir, 'graceful');
    writeTree(d, { 'www/big.png': Buffer.alloc(20 * 1024 * 1024, 3) });
    const s = await start([join(d, 'www'), '--port', '0', '--quiet']);
    const { request } = await import('node:http');
    let bytes = 0;
    const done = new Promise<void>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: s.port, path: '/big.png', agent: false }, (res) => {
        res.once('data', (c: Buffer) => {
          bytes += c.length;
          res.pause();
          // The server is told to stop while this response is still being sent.
          void s.stop().then((code) => assert.equal(code, 0));
          setTimeout(() => {
            res.on('data', (more: Buffer) => (bytes += more.length));
            res.resume();
          }, 300);
        });
        res.on('end', resolve);
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    await done;
    assert.equal(bytes, 20 * 1024 * 1024);
  });
});

describe('npm start: the bundled demo site', () => {
  it('serves every page, stylesheet and image of demo/site.zip, reached by following links from /', async () => {
    const s = await start([join(root, 'demo', 'site.zip'), '--port', '0', '--quiet']);
    try {
      const seen = new Map<string, string | undefined>();
      const queue = ['/'];
      while (queue.length > 0) {
        const path = queue.shift()!;
        if (seen.has(path)) continue;
        const r = await get(s.port, path, { 'accept-encoding': 'gzip' });
        assert.equal(r.status, 200, `${path}: ${r.status}`);
        const type = r.headers['content-type'];
        seen.set(path, type);
        if (type?.startsWith('text/html') || type?.startsWith('text/css')) {
          const { gunzipSync } = await import('node:zlib');
          const text = (r.headers['content-encoding'] === 'gzip' ? gunzipSync(r.body) : r.body).toString();
          for (const m of text.matchAll(/(?:href|src)="([^"#?:]+)[^"]*"|url\(([^)#?:]+)\)/g)) {
            const ref = (m[1] ?? m[2])!.replace(/['"]/g, '');
            queue.push(new URL(ref, `http://x${path}`).pathname);
          }
        }
      }
      const types = [...seen.values()];
      assert.ok(seen.size >= 10, `${seen.size} resources reached`);
      assert.ok(types.includes('image/jpeg') && types.includes('image/png'), 'images are served');
      assert.ok(types.includes('text/css; charset=utf-8'));
    } finally {
      await s.stop();
    }
  });
});
