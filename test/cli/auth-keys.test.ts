/**
 * End-to-end: basic-auth, exact-match, append-path and the TLS and listen vhost keys through the
 * real `vfserve` CLI (dist/cli/main.js) as a child process, driven over sockets.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, constants as cryptoConstants } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect as h2connect } from 'node:http2';
import { connect as netConnect, createServer as createNetServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { after, describe, it } from 'node:test';
import bcrypt from 'bcryptjs';
import { checkServer } from '../../src/server/server.js';
import { ConfigError, loadCheckedConfig, parseConfigObjects } from '../../src/server/config.js';
import { fixture, root, rmTree, tmpDir, writeTree } from '../helpers/fixtures.js';
import { cli, startCli } from '../helpers/cli.js';

const dir = tmpDir('vfserve-auth-keys-');
after(() => rmTree(dir));
const tlsDir = fixture('tls');

const start = startCli;

/** Runs the CLI to its end (a configuration it refuses), asynchronously so that many run at once. */
function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('exit', (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr });
    });
  });
}

interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

function get(port: number, path: string, headers: Record<string, string> = {}, host = '127.0.0.1'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, headers: { connection: 'close', ...headers }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.setTimeout(5000, () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end();
  });
}

const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;
// The bcrypt line is made here by bcryptjs (htpasswd is not installed): bcryptjs writes $2b$, and
// htpasswd -B's $2y$ is the same algorithm under PHP's name, so the prefix is swapped to test $2y$.
const bcrypt2y = (password: string): string => bcrypt.hashSync(password, 5).replace(/^\$2b\$/, '$2y$');
const shaLine = (password: string): string => `{SHA}${createHash('sha1').update(password).digest('base64')}`;

describe('vfserve CLI: basic-auth', () => {
  it('guards files, callbacks and proxies with 401, lets plain, bcrypt and {SHA} logins in, logs no credentials, and re-reads the file on SIGHUP', async () => {
    const d = join(dir, 'auth');
    writeTree(d, {
      'www/index.html': Buffer.from('public home'),
      'secret/index.html': Buffer.from('secret home'),
      'secret/a.txt': Buffer.from('secret a\n'),
      'plugins/app.mjs': Buffer.from(
        'export function app(req, res, target) {\n' +
          "  res.setHeader('cache-control', 'public, max-age=60');\n" +
          "  res.setHeader('content-type', 'application/json');\n" +
          '  res.end(JSON.stringify({ user: target.user, remainder: target.remainder }));\n' +
          '}\n',
      ),
    });
    const users = join(d, 'users');
    writeFileSync(users, ['# vfserve users', 'alice:wonderland', `bob:${bcrypt2y('builder')}`, `carol:${shaLine('sha pass')}`, ''].join('\n'));
    // An upstream that records what it was sent.
    const seen: IncomingHttpHeaders[] = [];
    const upstream: Server = createServer((req, res) => {
      seen.push(req.headers);
      res.writeHead(200, { 'cache-control': 'public, max-age=30', 'content-type': 'text/plain' });
      res.end('from upstream');
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const upPort = (upstream.address() as AddressInfo).port;
    const log = join(d, 'access.log');
    const conf = join(d, 'conf');
    writeFileSync(
      conf,
      JSON.stringify({
        global: { 'plugin-dir': 'plugins' },
        vhosts: [
          {
            name: 'localhost',
            port: 0,
            interface: '127.0.0.1',
            'access-log': 'access.log',
            mounts: [
              { mountpoint: '/', origin: 'file://www' },
              { mountpoint: '/secret', origin: 'file://secret', 'basic-auth': 'users', 'cache-max-age': '60', 'cache-reuse': '1' },
              { mountpoint: '/cb', origin: 'callback://app', 'basic-auth': 'users', 'basic-auth-realm': 'Callbacks' },
              { mountpoint: '/px', origin: `http://127.0.0.1:${upPort}/up`, 'basic-auth': 'users' },
            ],
          },
        ],
      }),
    );
    const s = await start(['--config', conf]);
    const port = s.listeners[0]!.port;
    const secrets = ['wonderland', 'builder', 'sha pass', 'new-wonder', 'Wonderland'];
    const sent: string[] = [];
    const as = (user: string, password: string): Record<string, string> => {
      const value = basic(user, password);
      sent.push(value, value.slice('Basic '.length));
      return { authorization: value };
    };
    try {
      const refused = [
        {},
        { authorization: 'Basic %%%not-base64' },
        { authorization: `Basic ${Buffer.from('alice-no-colon').toString('base64')}` },
        { authorization: 'Digest username="alice"' },
        as('alice', 'Wonderland'),
        as('mallory', 'wonderland'),
        as('bob', 'wonderland'),
      ];
      for (const headers of refused) {
        for (const path of ['/secret/a.txt', '/secret/', '/secret/missing', '/px/x']) {
          const r = await get(port, path, headers);
          assert.equal(r.status, 401, `${path} ${JSON.stringify(headers)}`);
          assert.equal(r.headers['www-authenticate'], 'Basic realm="lwsws", charset="UTF-8"');
          assert.equal(r.headers['cache-control'], 'no-store');
        }
        const cb = await get(port, '/cb/x', headers);
        assert.equal(cb.status, 401);
        assert.equal(cb.headers['www-authenticate'], 'Basic realm="Callbacks", charset="UTF-8"');
      }
      assert.equal(seen.length, 0, 'nothing reached the upstream without a login');
      // A WebSocket upgrade under the proxy mount is refused before it reaches the origin, with the challenge.
      const upgrade = await new Promise<string>((resolve, reject) => {
        const sock = netConnect({ host: '127.0.0.1', port });
        let text = '';
        sock.setTimeout(5000, () => sock.destroy(new Error('upgrade timed out')));
        sock.on('data', (c: Buffer) => (text += c.toString('latin1')));
        sock.on('close', () => resolve(text));
        sock.on('error', reject);
        sock.write(
          'GET /px/ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
        );
      });
      assert.match(upgrade, /^HTTP\/1\.1 401 Unauthorized\r\n/);
      assert.match(upgrade, /\r\nwww-authenticate: Basic realm="lwsws", charset="UTF-8"\r\n/i);
      assert.equal(seen.length, 0);

      for (const [user, password] of [
        ['alice', 'wonderland'],
        ['bob', 'builder'],
        ['carol', 'sha pass'],
      ] as const) {
        const r = await get(port, '/secret/a.txt', as(user, password));
        assert.equal(r.status, 200, user);
        assert.equal(r.body, 'secret a\n');
        assert.equal(r.headers['cache-control'], 'private, max-age=60', 'authenticated: private, whatever the mount allows the client');
      }
      assert.equal((await get(port, '/')).body, 'public home', 'other mounts need no login');

      const cb = await get(port, '/cb/x', as('bob', 'builder'));
      assert.equal(cb.status, 200);
      assert.deepEqual(JSON.parse(cb.body), { user: 'bob', remainder: '/x' });
      assert.equal(cb.headers['cache-control'], 'private, max-age=60', "the handler's public is made private");

      const px = await get(port, '/px/x?q=1', as('alice', 'wonderland'));
      assert.equal(px.status, 200);
      assert.equal(px.body, 'from upstream');
      assert.equal(px.headers['cache-control'], 'private, max-age=30', "the upstream's public is made private");
      assert.equal(seen.length, 1);
      assert.equal(seen[0]!.authorization, undefined, 'the credentials were for vfserve: not forwarded');

      // The credentials file changes: SIGHUP reads it again.
      writeFileSync(users, 'alice:new-wonder\n');
      s.child.kill('SIGHUP');
      await s.waitFor(/configuration reloaded/);
      assert.equal((await get(port, '/secret/a.txt', as('alice', 'new-wonder'))).status, 200, 'the new password works');
      assert.equal((await get(port, '/secret/a.txt', as('alice', 'wonderland'))).status, 401, 'the old one is refused');
      assert.equal((await get(port, '/secret/a.txt', as('bob', 'builder'))).status, 401, 'a user taken out is refused');

      // A broken file on reload is refused naming file and JSON path; the previous one keeps serving.
      writeFileSync(users, 'alice:new-wonder\nbroken line\n');
      s.child.kill('SIGHUP');
      await s.waitFor(
        /reload failed, still serving the previous configuration: .*conf: \$\.vhosts\[0\]\["mounts"\]\[1\]\["basic-auth"\]: .*users: line 2: expected user:password/,
      );
      assert.equal((await get(port, '/secret/a.txt', as('alice', 'new-wonder'))).status, 200);
    } finally {
      assert.equal(await s.stop(), 0);
      await new Promise((r) => upstream.close(r));
    }
    // Every request above is in the access log and in the terminal log; no password, no Authorization value.
    const accessLog = readFileSync(log, 'utf8');
    assert.ok(accessLog.split('\n').length > 40, 'the access log has the requests');
    assert.match(accessLog, /"GET \/secret\/a\.txt HTTP\/1\.1" 401 /);
    assert.match(s.output(), / GET \/secret\/a\.txt 200 /);
    for (const text of [accessLog, s.output()]) {
      for (const secret of [...secrets, ...sent]) assert.ok(!text.includes(secret), `a log line holds ${JSON.stringify(secret)}`);
      assert.doesNotMatch(text, /authorization|Basic /i);
    }
    // %u stays "-": user names are not logged either.
    for (const line of accessLog.trim().split('\n')) assert.match(line, /^\S+ - - \[/);
  });

  it("answers over HTTP/2 as over HTTP/1.1, through the CLI's TLS port (the decision is the engine's)", async () => {
    const d = join(dir, 'h2');
    writeTree(d, { 'www/a.txt': Buffer.from('h2 secret\n'), users: Buffer.from('dora:explorer\n') });
    writeFileSync(
      join(d, 'conf'),
      JSON.stringify({
        vhosts: [
          {
            name: 'localhost',
            port: 0,
            interface: '127.0.0.1',
            'host-ssl-cert': join(tlsDir, 'localhost.crt'),
            'host-ssl-key': join(tlsDir, 'localhost.key'),
            mounts: [{ mountpoint: '/', origin: 'file://www', 'basic-auth': 'users', 'basic-auth-realm': 'h2' }],
          },
        ],
      }),
    );
    const s = await start(['--config', join(d, 'conf'), '--quiet']);
    const client = h2connect(`https://127.0.0.1:${s.port}`, { rejectUnauthorized: false, servername: 'localhost' });
    client.on('error', () => undefined);
    const h2get = (headers: Record<string, string>): Promise<{ status: number; headers: Record<string, unknown>; body: string }> =>
      new Promise((resolve, reject) => {
        const req = client.request({ ':path': '/a.txt', ...headers });
        let head: Record<string, unknown> = {};
        let body = '';
        req.on('response', (h) => (head = h));
        req.setEncoding('utf8');
        req.on('data', (c: string) => (body += c));
        req.on('end', () => resolve({ status: Number(head[':status']), headers: head, body }));
        req.on('error', reject);
        req.end();
      });
    try {
      const denied = await h2get({});
      assert.equal(client.alpnProtocol, 'h2', 'the CLI offered HTTP/2 by ALPN');
      assert.equal(denied.status, 401);
      assert.equal(denied.headers['www-authenticate'], 'Basic realm="h2", charset="UTF-8"');
      assert.equal(denied.headers['cache-control'], 'no-store');
      assert.equal((await h2get({ authorization: basic('dora', 'nope') })).status, 401);
      const ok = await h2get({ authorization: basic('dora', 'explorer') });
      assert.equal(ok.status, 200);
      assert.equal(ok.body, 'h2 secret\n');
    } finally {
      client.close();
      assert.equal(await s.stop(), 0, s.output());
    }
  });
});

describe('vfserve CLI: exact-match and append-path', () => {
  it('matches an exact-match mount for its URI only, and appends the path and query to a redirect', async () => {
    const d = join(dir, 'match');
    writeTree(d, { 'www/index.html': Buffer.from('home'), 'www/x/y': Buffer.from('below x') });
    const conf = join(d, 'conf');
    writeFileSync(
      conf,
      JSON.stringify({
        vhosts: [
          {
            port: 0,
            interface: '127.0.0.1',
            mounts: [
              { mountpoint: '/', origin: 'file://www', 'extra-mimetypes': { '*': 'text/plain' } },
              { mountpoint: '/x', origin: '>https://exact.example/', 'exact-match': 'on' },
              { mountpoint: '/old', origin: '>https://new.example', 'append-path': '1' },
              { mountpoint: '/bare', origin: '>https://new.example/home' },
            ],
          },
        ],
      }),
    );
    const s = await start(['--config', conf, '--quiet']);
    const port = s.listeners[0]!.port;
    try {
      const x = await get(port, '/x');
      assert.equal(x.status, 301);
      assert.equal(x.headers.location, 'https://exact.example/');
      const below = await get(port, '/x/y');
      assert.equal(below.status, 200, '/x/y is not the exact-match mount: the / mount serves it');
      assert.equal(below.body, 'below x');
      assert.equal((await get(port, '/x/nothing')).status, 404);
      const old = await get(port, '/old/a/b?q=1');
      assert.equal(old.status, 301);
      assert.equal(old.headers.location, 'https://new.example/a/b?q=1');
      assert.equal((await get(port, '/bare/a/b?q=1')).headers.location, 'https://new.example/home', 'without append-path: the bare target');
    } finally {
      assert.equal(await s.stop(), 0);
    }
  });
});

/** A TLS handshake with `options`: the protocol and cipher it agreed, or the error that ended it. */
type Handshake = { protocol: string | null; cipher: string } | { error: string };

/** The protocol a handshake agreed, or its error. */
const protocolOf = (h: Handshake): string => ('error' in h ? `failed: ${h.error}` : (h.protocol ?? 'none'));

function handshake(port: number, options: ConnectionOptions, host = '127.0.0.1'): Promise<Handshake> {
  return new Promise((resolve) => {
    const sock = tlsConnect({ host, port, servername: 'localhost', rejectUnauthorized: false, ...options }, () => {
      const out = { protocol: sock.getProtocol(), cipher: sock.getCipher().name };
      sock.destroy();
      resolve(out);
    });
    sock.setTimeout(5000, () => sock.destroy(new Error('handshake timed out')));
    sock.on('error', (err: Error) => resolve({ error: err.message }));
  });
}

describe('vfserve CLI: TLS vhost keys', () => {
  it('applies ciphers and ssl-option-set to the handshake, and keeps them across a reload', async () => {
    const d = join(dir, 'tls');
    writeTree(d, { 'www/index.html': Buffer.from('tls home') });
    const conf = join(d, 'conf');
    const vhost = (iface: string, extra: Record<string, unknown>): Record<string, unknown> => ({
      name: 'localhost',
      port: 0,
      interface: iface,
      'host-ssl-key': join(tlsDir, 'localhost.key'),
      'host-ssl-cert': join(tlsDir, 'localhost.crt'),
      mounts: [{ mountpoint: '/', origin: 'file://www' }],
      ...extra,
    });
    writeFileSync(
      conf,
      JSON.stringify({
        vhosts: [
          vhost('127.0.0.1', { ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' }),
          vhost('127.0.0.2', { 'ssl-option-set': String(cryptoConstants.SSL_OP_NO_TLSv1_2) }),
        ],
      }),
    );
    const s = await start(['--config', conf, '--quiet'], 2);
    const ciphersPort = s.listeners.find((l) => l.host === '127.0.0.1')!.port;
    const optionsPort = s.listeners.find((l) => l.host === '127.0.0.2')!.port;
    const tls12 = { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' } as const;
    const checkCiphers = async (): Promise<void> => {
      assert.deepEqual(await handshake(ciphersPort, { ...tls12, ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' }), {
        protocol: 'TLSv1.2',
        cipher: 'ECDHE-RSA-AES128-GCM-SHA256',
      });
      const outside = await handshake(ciphersPort, { ...tls12, ciphers: 'ECDHE-RSA-AES256-GCM-SHA384' });
      assert.ok('error' in outside, 'a TLS 1.2 cipher outside the list fails the handshake');
      assert.match(outside.error, /handshake failure|no shared cipher|alert/i);
      assert.equal(protocolOf(await handshake(ciphersPort, {})), 'TLSv1.3', 'TLS 1.3 keeps its default suites');
    };
    try {
      await checkCiphers();
      const noTls12 = await handshake(optionsPort, tls12, '127.0.0.2');
      assert.ok('error' in noTls12, 'SSL_OP_NO_TLSv1_2 set: a TLS 1.2-only client fails');
      assert.equal(protocolOf(await handshake(optionsPort, {}, '127.0.0.2')), 'TLSv1.3', 'SSL_OP_NO_TLSv1_2 set: TLS 1.3 works');
      assert.equal(protocolOf(await handshake(ciphersPort, tls12)), 'TLSv1.2', 'the other vhost still takes TLS 1.2');
      // A reload gives the listening sockets new TLS contexts: the settings must come along.
      s.child.kill('SIGHUP');
      await s.waitFor(/configuration reloaded/);
      await checkCiphers();
      assert.ok('error' in (await handshake(optionsPort, tls12, '127.0.0.2')), 'still no TLS 1.2 after the reload');
      assert.equal(protocolOf(await handshake(optionsPort, {}, '127.0.0.2')), 'TLSv1.3');
    } finally {
      assert.equal(await s.stop(), 0);
    }
  });
});

/** Whether this machine can listen on ::1 (tried for real). */
function hasIpv6(): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createNetServer();
    server.once('error', () => resolve(false));
    server.listen(0, '::1', () => server.close(() => resolve(true)));
  });
}

/** Whether a TCP connection to host:port is accepted. */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = netConnect({ host, port });
    sock.setTimeout(3000, () => {
      sock.destroy();
      resolve(false);
    });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

describe('vfserve CLI: ipv6only', () => {
  it('listens on IPv6 only: an IPv4 connection to the port is refused', async () => {
    const d = join(dir, 'v6');
    writeTree(d, { 'www/index.html': Buffer.from('v6 home') });
    const json = { vhosts: [{ port: 0, interface: '::', ipv6only: 'on', mounts: [{ mountpoint: '/', origin: 'file://www' }] }] };
    const conf = join(d, 'conf');
    writeFileSync(conf, JSON.stringify(json));
    // Without ipv6only and an interface, the socket is IPv6 on "::": the listener says so either way.
    const planned = await checkServer(parseConfigObjects([{ json: { vhosts: [{ port: 0, ipv6only: true, mounts: [] }] }, file: conf }]));
    assert.deepEqual(
      planned.map((l) => [l.host, l.ipv6Only]),
      [['::', true]],
    );
    if (!(await hasIpv6())) {
      // No IPv6 here (checked by a real listen on ::1): the listen option is asserted through the listener info instead.
      const info = await checkServer(parseConfigObjects([{ json, file: conf }]));
      assert.deepEqual(
        info.map((l) => [l.host, l.ipv6Only]),
        [['::', true]],
        'no IPv6 on this machine: asserted through the listener info',
      );
      return;
    }
    const s = await start(['--config', conf, '--quiet']);
    try {
      const { host, port } = s.listeners[0]!;
      assert.equal(host, '[::1]');
      assert.equal(await accepts('::1', port), true, 'IPv6 is accepted');
      assert.equal(await accepts('127.0.0.1', port), false, 'IPv4 is refused');
      assert.equal((await get(port, '/', {}, '::1')).body, 'v6 home');
    } finally {
      assert.equal(await s.stop(), 0);
    }
  });
});

describe('vfserve CLI: bad values of the new keys', () => {
  it('refuses each at start-up with the file and the JSON path', async () => {
    const d = join(dir, 'bad');
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'apr'), 'alice:$apr1$abcdefgh$0123456789abcdefghijkl\n');
    writeFileSync(join(d, 'noline'), 'alice:ok\njust-a-name\n');
    writeFileSync(join(d, 'empty'), '# nobody\n');
    const tls = { 'host-ssl-key': join(tlsDir, 'localhost.key'), 'host-ssl-cert': join(tlsDir, 'localhost.crt') };
    const m = (extra: Record<string, unknown>): Record<string, unknown> => ({
      port: 0,
      interface: '127.0.0.1',
      mounts: [{ mountpoint: '/m', origin: d, ...extra }],
    });
    const v = (extra: Record<string, unknown>): Record<string, unknown> => ({ port: 0, interface: '127.0.0.1', mounts: [], ...tls, ...extra });
    const mount = '\\$\\.vhosts\\[0\\]\\["mounts"\\]\\[0\\]';
    const vh = '\\$\\.vhosts\\[0\\]';
    const cases: [string, Record<string, unknown>, string][] = [
      ['missing-file', m({ 'basic-auth': 'nope' }), `${mount}\\["basic-auth"\\]: .*nope cannot be read \\(ENOENT\\)`],
      ['apr1', m({ 'basic-auth': 'apr' }), `${mount}\\["basic-auth"\\]: .*apr: line 1: Apache MD5 \\(\\$apr1\\$\\) hashes are not accepted`],
      ['no-colon', m({ 'basic-auth': 'noline' }), `${mount}\\["basic-auth"\\]: .*noline: line 2: expected user:password`],
      ['no-users', m({ 'basic-auth': 'empty' }), `${mount}\\["basic-auth"\\]: .*empty: lists no users`],
      ['not-a-path', m({ 'basic-auth': 1 }), `${mount}\\["basic-auth"\\]: must be the path of a credentials file`],
      ['realm', m({ 'basic-auth': 'noline', 'basic-auth-realm': 'a"b' }), `${mount}\\["basic-auth-realm"\\]: must be printable`],
      ['realm-alone', m({ 'basic-auth-realm': 'x' }), `${mount}\\["basic-auth-realm"\\]: needs "basic-auth"`],
      ['exact', m({ 'exact-match': 'maybe' }), `${mount}\\["exact-match"\\]: must be a boolean`],
      ['append', m({ 'append-path': 'yes' }), `${mount}\\["append-path"\\]: applies only to redirect origins`],
      ['keepalive', m({ 'keepalive-timeout': '30' }), `${mount}: "keepalive-timeout" is not supported on a mount: node sets the keep-alive timeout per server`],
      ['ciphers', v({ ciphers: 'NOT-A-CIPHER' }), `${vh}\\["ciphers"\\]: is refused by OpenSSL .*no cipher match`],
      ['ciphers13', v({ ciphers: 'TLS_AES_128_GCM_SHA256' }), `${vh}\\["ciphers"\\]: holds TLS 1.3 suites`],
      ['tls13', v({ 'tls13-ciphers': 'TLS_NOPE' }), `${vh}\\["tls13-ciphers"\\]: is refused by OpenSSL`],
      ['curve', v({ 'ecdh-curve': 'no-such-curve' }), `${vh}\\["ecdh-curve"\\]: is refused by OpenSSL`],
      ['set-negative', v({ 'ssl-option-set': -4 }), `${vh}\\["ssl-option-set"\\]: must be a non-negative integer`],
      ['set-word', v({ 'ssl-option-set': 'NO_TLSv1' }), `${vh}\\["ssl-option-set"\\]: must be a non-negative integer`],
      [
        'clear-stray',
        v({ 'ssl-option-set': '4', 'ssl-option-clear': '12' }),
        `${vh}\\["ssl-option-clear"\\]: clears bits that "ssl-option-set" does not set \\(8\\)`,
      ],
      ['tls-without-tls', { port: 0, mounts: [], ciphers: 'HIGH' }, `${vh}\\["ciphers"\\]: needs a TLS vhost`],
      ['ipv6only-v4', { port: 0, interface: '127.0.0.1', ipv6only: true, mounts: [] }, `${vh}\\["ipv6only"\\]: needs an IPv6 interface`],
      ['ipv6only-bool', { port: 0, ipv6only: 'sometimes', mounts: [] }, `${vh}\\["ipv6only"\\]: must be a boolean`],
    ];
    // Every case through the configuration loader the CLI uses at start-up and reload; three through the CLI itself.
    const throughCli = new Set(['missing-file', 'keepalive', 'ciphers']);
    const results = await Promise.all(
      cases.map(async ([name, vhost]) => {
        const file = join(d, `${name}.conf`);
        writeFileSync(file, JSON.stringify({ vhosts: [vhost] }));
        let loaded: string;
        try {
          await loadCheckedConfig(file);
          loaded = 'accepted';
        } catch (err) {
          assert.ok(err instanceof ConfigError, `${name}: a ConfigError, not ${String(err)}`);
          assert.equal(err.file, file, name);
          loaded = err.message;
        }
        return { file, loaded, cli: throughCli.has(name) ? await run(['--config', file]) : undefined };
      }),
    );
    for (const [i, [name, , detail]] of cases.entries()) {
      const r = results[i]!;
      const want = new RegExp(`^${r.file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ${detail}`);
      assert.match(r.loaded, want, name);
      if (r.cli === undefined) continue;
      assert.equal(r.cli.code, 2, `${name}: ${r.cli.stdout}${r.cli.stderr}`);
      assert.equal(r.cli.stdout, '', name);
      assert.equal(r.cli.stderr.trim(), `vfserve: ${r.loaded}`, `${name}: one line, no stack`);
    }
  });
});
