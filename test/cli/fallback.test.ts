/**
 * End-to-end: HTTP fallback and raw proxying on one port with the real `vfserve` CLI
 * (dist/cli/main.js --config) as a child process on 127.0.0.1, driven over raw sockets; the onward
 * servers run in this process.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect as connectH2 } from 'node:http2';
import { request, type RequestOptions } from 'node:https';
import { join } from 'node:path';
import { TLSSocket } from 'node:tls';
import { after, describe, it } from 'node:test';
import { delay, onwardServer, PAD_ALPN, rawClient, splittingRelay } from '../helpers/fallback.js';
import { fixture, root, rmTree, tmpDir, writeTree } from '../helpers/fixtures.js';
import { cli, startCli, type RunningCli } from '../helpers/cli.js';

const dir = tmpDir('vfserve-cli-fallback-');
after(() => rmTree(dir));
writeTree(join(dir, 'www'), { 'index.html': Buffer.from('home page'), 'b/index.html': Buffer.from('books page') });
const tlsDir = fixture('tls');
const SSH_BANNER = 'SSH-2.0-OpenSSH_9.6\r\n';

const start = startCli;
type Running = RunningCli;

async function waitFor(s: Running, re: RegExp, ms = 5000): Promise<void> {
  const t0 = Date.now();
  while (!re.test(s.output())) {
    if (Date.now() - t0 > ms) assert.fail(`no ${String(re)} within ${ms} ms in:\n${s.output()}`);
    await delay(20);
  }
}

function fallbackKeys(onward: string): Record<string, unknown> {
  return {
    'ws-protocols': [{ 'raw-proxy': { status: 'ok', onward } }],
    'listen-accept-role': 'raw-proxy',
    'listen-accept-protocol': 'raw-proxy',
    'fallback-listen-accept': '1',
  };
}

describe('vfserve CLI: HTTP fallback on a plain port', () => {
  it('proxies SSH, serves split HTTP with keep-alive, times out silent clients, logs, survives a dead target and follows SIGHUP', async () => {
    const echo = await onwardServer();
    const speaksFirst = await onwardServer({ banner: 'SSH-2.0-timeout-target\r\n' });
    const other = await onwardServer({ banner: 'other\n' });
    const gone = await onwardServer();
    await gone.close();
    const d = join(dir, 'plain');
    const vhost = (port: number, extra: Record<string, unknown>): Record<string, unknown> => ({
      name: 'localhost',
      port,
      interface: '127.0.0.1',
      mounts: [{ mountpoint: '/', origin: `file://${join(dir, 'www')}` }],
      ...extra,
    });
    const write = (onward: string): void =>
      writeFileSync(
        join(d, 'conf'),
        `# SSH and HTTP on one port\n${JSON.stringify({
          vhosts: [
            vhost(0, { ...fallbackKeys(onward), 'access-log': 'access.log', 'fallback-timeout-secs': 1, 'fallback-timeout-onward': speaksFirst.spec }),
            { ...vhost(0, fallbackKeys(gone.spec)), interface: '127.0.0.2' },
          ],
        })}\n`,
      );
    mkdirSync(d, { recursive: true });
    write(echo.spec);
    let s: Running | undefined;
    try {
      s = await start(['--config', d], 2);
      const [port, deadPort] = s.ports as [number, number];
      // SSH: byte-identical both ways.
      const ssh = await rawClient(port);
      ssh.socket.write(SSH_BANNER);
      await ssh.until((b) => b.toString() === SSH_BANNER);
      assert.equal(echo.received[0]!.toString(), SSH_BANNER);
      ssh.socket.end();
      await ssh.until((b) => b.toString() === `${SSH_BANNER}bye\n`);
      await ssh.whenClosed();
      // HTTP with its method split over two writes, and a second request on the same connection.
      const http = await rawClient(port);
      http.socket.write('G');
      await delay(50);
      http.socket.write('ET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
      await http.until((b) => b.toString().endsWith('home page'));
      http.socket.write('GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n');
      await http.until((b) => (b.toString().match(/home page/g) ?? []).length === 2);
      assert.equal(
        (
          http
            .data()
            .toString()
            .match(/HTTP\/1\.1 200 OK/g) ?? []
        ).length,
        2,
      );
      assert.equal(http.closed(), false);
      http.socket.destroy();
      // A silent client: held, then sent to the timeout target after a second.
      const silent = await rawClient(port);
      await delay(300);
      assert.equal(silent.closed(), false);
      assert.equal(silent.data().length, 0);
      await silent.until((b) => b.toString() === 'SSH-2.0-timeout-target\r\n', 3000);
      silent.socket.destroy();
      // The terminal line and the access-log line of the proxied connection.
      await waitFor(s, new RegExp(`Z 127\\.0\\.0\\.1 RAW-PROXY ${echo.spec.replace(/\./g, '\\.')} 200 25B fallback \\d+ms up 21B`));
      await waitFor(s, / RAW-PROXY .* 200 \d+B timeout \d+ms up 0B/);
      await waitFor(s, / GET \/index\.html 200 9B /);
      const log = readFileSync(join(d, 'access.log'), 'utf8');
      assert.match(
        log,
        new RegExp(`^127\\.0\\.0\\.1 - - \\[[^\\]]+\\] "RAW-PROXY ${echo.spec.replace(/\./g, '\\.')} fallback" 200 25 "-" "-" 21 \\d+ms$`, 'm'),
      );
      // A target that is down: the client gets an orderly close, stderr one line, and the server goes on.
      const dead = await rawClient(deadPort, '127.0.0.2');
      dead.socket.write(SSH_BANNER);
      await dead.whenClosed();
      assert.equal(dead.data().length, 0);
      assert.equal(dead.error(), undefined);
      await waitFor(s, new RegExp(`vfserve: raw-proxy: ${gone.spec.replace(/\./g, '\\.')} cannot be reached for client 127\\.0\\.0\\.1: .*ECONNREFUSED`));
      assert.equal(s.output().match(/cannot be reached/g)?.length, 1, 'reported once');
      const after = await rawClient(port);
      after.socket.write('GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
      await after.whenClosed();
      assert.match(after.data().toString(), /home page$/);
      // SIGHUP: the new onward target on the same port.
      write(other.spec);
      s.child.kill('SIGHUP');
      await waitFor(s, /configuration reloaded/);
      const again = await rawClient(port);
      again.socket.write(SSH_BANNER);
      await again.until((b) => b.toString().startsWith('other\n'));
      again.socket.destroy();
    } finally {
      if (s) assert.equal(await s.stop(), 0, s.output());
      await echo.close();
      await speaksFirst.close();
      await other.close();
    }
  });
});

describe('vfserve CLI: a TLS port with fallback and redirect-http', () => {
  it('completes TLS from a ClientHello in three writes with SNI vhost selection, redirects plain HTTP and proxies SSH', async () => {
    const echo = await onwardServer();
    const d = join(dir, 'tls');
    const tlsVhost = (name: string, cert: string, root: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
      name,
      port: 0,
      interface: '127.0.0.1',
      'host-ssl-key': join(tlsDir, `${cert}.key`),
      'host-ssl-cert': join(tlsDir, `${cert}.crt`),
      mounts: [{ mountpoint: '/', origin: `file://${root}` }],
      ...extra,
    });
    mkdirSync(d, { recursive: true });
    writeFileSync(
      join(d, 'conf'),
      JSON.stringify({
        vhosts: [
          tlsVhost('localhost', 'localhost', join(dir, 'www'), { ...fallbackKeys(echo.spec), 'redirect-http': 'on' }),
          tlsVhost('books.example', 'books.example', join(dir, 'www', 'b')),
        ],
      }),
    );
    let s: Running | undefined;
    let relay: Awaited<ReturnType<typeof splittingRelay>> | undefined;
    const tlsGet = (servername: string): Promise<{ cn: string; body: string }> =>
      new Promise((resolve, reject) => {
        // ALPNProtocols goes through to tls.connect; @types/node's RequestOptions does not list it.
        const options: RequestOptions & { ALPNProtocols: string[] } = {
          host: '127.0.0.1',
          port: relay!.port,
          path: '/',
          servername,
          headers: { host: servername },
          rejectUnauthorized: false,
          agent: false,
          ALPNProtocols: PAD_ALPN,
        };
        const req = request(options, (res) => {
          if (!(res.socket instanceof TLSSocket)) {
            reject(new Error('not TLS'));
            return;
          }
          const cn = String(res.socket.getPeerCertificate().subject.CN);
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ cn, body }));
        });
        req.setTimeout(5000, () => req.destroy(new Error('timed out')));
        req.on('error', reject);
        req.end();
      });
    try {
      s = await start(['--config', d, '--quiet']);
      const [port] = s.ports as [number];
      relay = await splittingRelay(port, { pieces: 3, gapMs: 40 });
      assert.match(s.output(), /at https:\/\/127\.0\.0\.1:/);
      assert.deepEqual(await tlsGet('books.example'), { cn: 'books.example', body: 'books page' });
      assert.deepEqual(await tlsGet('localhost'), { cn: 'localhost', body: 'home page' });
      assert.ok(
        relay.sizes.every((n) => n >= 1500),
        `ClientHellos of ${relay.sizes.join(', ')} bytes, each in three writes`,
      );
      const plain = await rawClient(port);
      plain.socket.write('GET /docs/?q=1 HTTP/1.1\r\nHost: books.example\r\n\r\n');
      await plain.whenClosed();
      assert.match(plain.data().toString(), /^HTTP\/1\.1 301 Moved Permanently\r\n/);
      assert.match(plain.data().toString(), /\r\nlocation: https:\/\/books\.example\/docs\/\?q=1\r\n/i);
      const ssh = await rawClient(port);
      ssh.socket.write(SSH_BANNER);
      await ssh.until((b) => b.toString() === SSH_BANNER);
      ssh.socket.destroy();
    } finally {
      await relay?.close();
      await echo.close();
      if (s) assert.equal(await s.stop(), 0, s.output());
    }
  });
});

describe('vfserve CLI: listen-accept configuration errors', () => {
  const run = (conf: unknown): { code: number | null; stderr: string } => {
    const file = join(dir, `bad-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(file, JSON.stringify(conf));
    const r = spawnSync(process.execPath, [cli, '--config', file], { cwd: root, encoding: 'utf8', timeout: 15_000 });
    return { code: r.status, stderr: r.stderr.replace(file, 'FILE') };
  };
  it('refuses a role other than raw-proxy, naming the file and the JSON path (exit 2)', () => {
    const r = run({ vhosts: [{ port: 0, ...fallbackKeys('ipv4:127.0.0.1:22'), 'listen-accept-role': 'raw-file' }] });
    assert.equal(r.code, 2);
    assert.equal(r.stderr.trim(), 'vfserve: FILE: $.vhosts[0]["listen-accept-role"]: "raw-file": vfserve has only the "raw-proxy" role');
  });
  it('refuses an onward target it cannot parse', () => {
    const r = run({ vhosts: [{ port: 0, ...fallbackKeys('ipv6:::1:22') }] });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /FILE: \$\.vhosts\[0\]\["ws-protocols"\]\[0\]\["raw-proxy"\]\["onward"\]: "ipv6:::1:22": expected ipv6:\[ADDRESS\]:PORT/);
  });
  it('refuses the keys on a vhost that is not the first of its port', () => {
    const r = run({
      vhosts: [
        { port: 0, interface: '127.0.0.1' },
        { name: 'ssh', port: 0, interface: '127.0.0.1', ...fallbackKeys('ipv4:127.0.0.1:22') },
      ],
    });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /FILE: \$\.vhosts\[1\]\["ws-protocols"\]: belongs on the first vhost of its port \("default"\): it acts for the whole port/);
  });
});

describe('vfserve CLI: HTTP fallback and h2c on one plain port', () => {
  it('hands the HTTP/2 preface to h2c, HTTP/1.1 to the HTTP server and SSH to the raw proxy', async () => {
    const echo = await onwardServer();
    const d = join(dir, 'h2c');
    mkdirSync(d, { recursive: true });
    writeFileSync(
      join(d, 'conf'),
      JSON.stringify({
        vhosts: [
          {
            name: 'localhost',
            port: 0,
            interface: '127.0.0.1',
            h2c: '1',
            mounts: [{ mountpoint: '/', origin: `file://${join(dir, 'www')}` }],
            ...fallbackKeys(echo.spec),
          },
        ],
      }),
    );
    let s: Running | undefined;
    try {
      s = await start(['--config', d]);
      const port = s.ports[0]!;
      const session = connectH2(`http://127.0.0.1:${port}`);
      try {
        const body = await new Promise<string>((resolve, reject) => {
          const stream = session.request({ ':path': '/b/' });
          let text = '';
          stream.setEncoding('utf8');
          stream.on('data', (c: string) => (text += c));
          stream.on('end', () => resolve(text));
          stream.on('error', reject);
        });
        assert.equal(body, 'books page');
      } finally {
        session.close();
      }
      const http = await rawClient(port);
      http.socket.write('GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
      await http.whenClosed();
      assert.match(http.data().toString(), /^HTTP\/1\.1 200 OK[\s\S]*home page$/);
      const ssh = await rawClient(port);
      ssh.socket.write(SSH_BANNER);
      await ssh.until((b) => b.toString() === SSH_BANNER);
      ssh.socket.destroy();
      assert.equal(echo.received[0]!.toString(), SSH_BANNER, 'only the SSH client reached the onward server');
    } finally {
      if (s) assert.equal(await s.stop(), 0, s.output());
      await echo.close();
    }
  });
});
