/**
 * End-to-end HTTP/2: the real `vfserve` CLI (dist/cli/main.js) as a child process, driven by
 * node:http2 clients and HTTP/1.1 clients on the same ports. Listeners that must be separate
 * ports bind different loopback addresses (127.0.0.1 to 127.0.0.4) on port 0.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http';
import { connect as h2connect, constants, type ClientHttp2Session, type OutgoingHttpHeaders } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { connect as netConnect, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect, type PeerCertificate } from 'node:tls';
import { gunzipSync } from 'node:zlib';
import WebSocket, { WebSocketServer } from 'ws';
import { fixture, noise, root, rmTree, tmpDir, writeTree } from '../helpers/fixtures.js';
import { cli, startCli, type RunningCli } from '../helpers/cli.js';

const dir = tmpDir('vfserve-cli-h2-');
after(() => rmTree(dir));
const tls = (name: string): Record<string, string> => ({ 'host-ssl-key': fixture('tls', `${name}.key`), 'host-ssl-cert': fixture('tls', `${name}.crt`) });
const CONNECTION_SPECIFIC = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade'];

const start = startCli;
type Running = RunningCli;

async function waitFor(what: () => boolean, label: string, ms = 5000): Promise<void> {
  for (let i = 0; i < ms / 20 && !what(); i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(what(), label);
}

/** An HTTP/2 session, once connected (TLS: ALPN h2, certificate not checked; `servername` for SNI). */
function session(authority: string, servername?: string): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const s = h2connect(authority, { rejectUnauthorized: false, ...(servername !== undefined ? { servername } : {}) });
    s.once('connect', () => {
      s.off('error', reject);
      // Errors after connecting are the tests' to assert on, never an uncaught exception.
      s.on('error', () => undefined);
      resolve(s);
    });
    s.once('error', reject);
  });
}

interface H2Response {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

/** One HTTP/2 request on `s`; `body` is sent as the request body. */
function h2request(s: ClientHttp2Session, path: string, headers: OutgoingHttpHeaders = {}, body?: string): Promise<H2Response> {
  return new Promise((resolve, reject) => {
    const req = s.request({ ':path': path, ...headers });
    req.setTimeout(10_000, () => req.close(constants.NGHTTP2_CANCEL));
    let head: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    req.on('response', (h) => (head = h));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve({ status: Number(head[':status']), headers: head, body: Buffer.concat(chunks) }));
    req.on('error', reject);
    req.end(body);
  });
}

/** One HTTP/1.1 request (TLS offering only http/1.1 by ALPN, or cleartext); resolves with the ALPN result too. */
function h1request(
  host: string,
  port: number,
  path: string,
  options: { tls?: boolean; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer; alpn: string | false | undefined; version: string }> {
  return new Promise((resolve, reject) => {
    const common = { host, port, path, agent: false, headers: { connection: 'close', ...options.headers } };
    const onResponse = (res: IncomingMessage): void => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks),
          alpn: (res.socket as { alpnProtocol?: string | false }).alpnProtocol,
          version: res.httpVersion,
        }),
      );
      res.on('error', reject);
    };
    // Passed to tls.connect, though @types/node leaves it out of https.RequestOptions.
    const tlsOptions = { ...common, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] };
    const req = options.tls === true ? httpsRequest(tlsOptions, onResponse) : httpRequest(common, onResponse);
    req.setTimeout(10_000, () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** The protocol a TLS server picks by ALPN from `protocols`. */
function alpn(host: string, port: number, protocols: string[], servername = 'localhost'): Promise<string | false> {
  return new Promise((resolve, reject) => {
    const sock = tlsConnect({ host, port, servername, ALPNProtocols: protocols, rejectUnauthorized: false }, () => {
      resolve(sock.alpnProtocol ?? false);
      sock.destroy();
    });
    sock.on('error', reject);
  });
}

/** Writes `bytes` to a cleartext port and resolves with what comes back until the server closes (or 2 s). */
function raw(host: string, port: number, bytes: string | Buffer): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const sock = netConnect(port, host, () => sock.write(bytes));
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed: false });
    }, 2000);
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', () => undefined);
    sock.on('close', () => {
      clearTimeout(timer);
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed: true });
    });
  });
}

/** The resident set of process `pid` in MiB (Linux). */
function rssMiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, 'VmRSS in /proc/<pid>/status');
  return Number(m[1]) / 1024;
}

describe('vfserve CLI: HTTP/2', () => {
  const d = join(dir, 'main');
  const big = noise(300_000, 3);
  writeTree(d, {
    'www/index.html': Buffer.from('<h1>h2 home</h1>'),
    'www/big.png': big,
    'books/index.html': Buffer.from('books vhost'),
  });
  // An HTTP/1.1 upstream that streams (chunked) and sends the connection-specific headers HTTP/2 forbids.
  const upstream: Server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain', connection: 'keep-alive', 'keep-alive': 'timeout=5', 'x-upstream': 'yes' });
      res.write(`${req.method ?? '-'} ${req.url ?? '-'} `);
      setTimeout(() => res.end(`body=${Buffer.concat(parts).toString()}`), 30);
    });
  });
  // WebSocket origin behind the proxy mount: echoes each message.
  const wss = new WebSocketServer({ server: upstream });
  wss.on('connection', (ws) => ws.on('message', (data: Buffer) => ws.send(`echo ${data.toString()}`)));
  let s: Running;
  let tlsPort = 0;
  let h2cPort = 0;
  let plainPort = 0;
  let h1onlyPort = 0;
  before(async () => {
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const upPort = (upstream.address() as AddressInfo).port;
    writeFileSync(
      join(d, 'conf'),
      JSON.stringify({
        vhosts: [
          {
            name: 'localhost',
            port: 0,
            interface: '127.0.0.1',
            ...tls('localhost'),
            'access-log': 'access.log',
            'h2-max-concurrent-streams': 50,
            mounts: [
              { mountpoint: '/', origin: 'file://www' },
              { mountpoint: '/book', origin: fixture('lws', 'candide.zip') },
              { mountpoint: '/proxy', origin: `http://127.0.0.1:${upPort}/up` },
              { mountpoint: '/cgi', origin: `cgi://${fixture('cgi', 'env.sh')}` },
              { mountpoint: '/status', origin: 'callback://server-status' },
            ],
          },
          { name: 'books.example', port: 0, interface: '127.0.0.1', ...tls('books.example'), mounts: [{ mountpoint: '/', origin: 'file://books' }] },
          { name: 'clear', port: 0, interface: '127.0.0.2', h2c: '1', mounts: [{ mountpoint: '/', origin: 'file://www' }] },
          { name: 'plain', port: 0, interface: '127.0.0.3', mounts: [{ mountpoint: '/', origin: 'file://www' }] },
          { name: 'h1only', port: 0, interface: '127.0.0.4', h2: '0', ...tls('localhost'), mounts: [{ mountpoint: '/', origin: 'file://www' }] },
        ],
      }),
    );
    s = await start(['--config', d, '--quiet'], 4);
    const port = (host: string): number => s.listeners.find((l) => l.host === host)!.port;
    [tlsPort, h2cPort, plainPort, h1onlyPort] = [port('127.0.0.1'), port('127.0.0.2'), port('127.0.0.3'), port('127.0.0.4')];
  });
  after(async () => {
    await s.stop();
    wss.close();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  });

  it('says on start-up which protocols each port speaks', () => {
    const line = (host: string): string => s.listeners.find((l) => l.host === host)!.line;
    assert.match(line('127.0.0.1'), /at https:\/\/127\.0\.0\.1:\d+\/ \(TLS, HTTP\/2 and HTTP\/1\.1\)$/);
    assert.match(line('127.0.0.2'), /at http:\/\/127\.0\.0\.2:\d+\/ \(HTTP\/1\.1, h2c\)$/);
    assert.match(line('127.0.0.3'), /at http:\/\/127\.0\.0\.3:\d+\/ \(HTTP\/1\.1\)$/);
    assert.match(line('127.0.0.4'), /at https:\/\/127\.0\.0\.4:\d+\/ \(TLS, HTTP\/1\.1\)$/);
  });

  it('offers h2 and http/1.1 by ALPN on one TLS port, and only http/1.1 where "h2" is "0"', async () => {
    assert.equal(await alpn('127.0.0.1', tlsPort, ['h2', 'http/1.1']), 'h2');
    assert.equal(await alpn('127.0.0.1', tlsPort, ['http/1.1']), 'http/1.1');
    assert.equal(await alpn('127.0.0.4', h1onlyPort, ['h2', 'http/1.1']), 'http/1.1');
    const h2 = await session(`https://127.0.0.1:${tlsPort}`);
    try {
      assert.equal(h2.alpnProtocol, 'h2');
      const r = await h2request(h2, '/index.html');
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), '<h1>h2 home</h1>');
      // The server's SETTINGS came before its first response.
      assert.equal(h2.remoteSettings.maxConcurrentStreams, 50, 'h2-max-concurrent-streams');
    } finally {
      h2.close();
    }
    for (const [host, port] of [
      ['127.0.0.1', tlsPort],
      ['127.0.0.4', h1onlyPort],
    ] as const) {
      const r = await h1request(host, port, '/index.html', { tls: true });
      assert.equal(r.status, 200);
      assert.equal(r.version, '1.1');
      assert.equal(r.alpn, 'http/1.1');
      assert.equal(r.body.toString(), '<h1>h2 home</h1>');
    }
    // HTTP/1.1 on the HTTP/2 port keeps node:http's rules: a request without Host is refused.
    const noHost = await new Promise<string>((resolve, reject) => {
      const sock = tlsConnect({ host: '127.0.0.1', port: tlsPort, servername: 'localhost', ALPNProtocols: ['http/1.1'], rejectUnauthorized: false }, () =>
        sock.write('GET / HTTP/1.1\r\n\r\n'),
      );
      let text = '';
      sock.on('data', (c: Buffer) => (text += c.toString('latin1')));
      sock.on('close', () => resolve(text));
      sock.on('error', reject);
    });
    assert.match(noHost, /^HTTP\/1\.1 400 /);
  });

  it('takes h2c with prior knowledge and HTTP/1.1 on an "h2c" port, and refuses h2c on a port without it', async () => {
    const h2c = await session(`http://127.0.0.2:${h2cPort}`);
    try {
      const r = await h2request(h2c, '/index.html');
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), '<h1>h2 home</h1>');
      assert.equal(h2c.remoteSettings.maxConcurrentStreams, 128, 'the default limit');
    } finally {
      h2c.close();
    }
    const h1 = await h1request('127.0.0.2', h2cPort, '/index.html');
    assert.equal(h1.status, 200);
    assert.equal(h1.version, '1.1');
    assert.equal(h1.body.toString(), '<h1>h2 home</h1>');
    const refused = await raw('127.0.0.3', plainPort, 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
    assert.ok(refused.closed, 'the connection is closed');
    assert.match(refused.text, /^(HTTP\/1\.1 400 |$)/, JSON.stringify(refused.text));
    await assert.rejects(
      (async () => {
        const c = await session(`http://127.0.0.3:${plainPort}`);
        try {
          await h2request(c, '/index.html');
        } finally {
          c.destroy();
        }
      })(),
    );
  });

  it('refuses "h2c" on a TLS vhost and a bad h2-max-concurrent-streams, naming the vhost or the key', () => {
    const check = (vhost: Record<string, unknown>): { code: number | null; stderr: string } => {
      const file = join(dir, 'check.json');
      writeFileSync(file, JSON.stringify({ vhosts: [{ name: 'v', port: 0, interface: '127.0.0.1', ...vhost }] }));
      const r = spawnSync(process.execPath, [cli, '--config', file, '--check'], { cwd: root, encoding: 'utf8', timeout: 15_000 });
      return { code: r.status, stderr: r.stderr };
    };
    const h2cTls = check({ h2c: 1, ...tls('localhost') });
    assert.equal(h2cTls.code, 2);
    assert.match(h2cTls.stderr, /vhost "v": "h2c" is cleartext HTTP\/2; a TLS vhost offers HTTP\/2 by ALPN \("h2"\)/);
    const streams = check({ 'h2-max-concurrent-streams': 0 });
    assert.equal(streams.code, 2);
    assert.match(streams.stderr, /\["h2-max-concurrent-streams"\]: must be an integer from 1 to 10000/);
  });

  it('chooses the certificate by SNI and the vhost by :authority', async () => {
    const books = await session(`https://127.0.0.1:${tlsPort}`, 'books.example');
    try {
      const cert: PeerCertificate = (books.socket as unknown as { getPeerCertificate: () => PeerCertificate }).getPeerCertificate();
      assert.equal(cert.subject.CN, 'books.example');
      assert.equal((await h2request(books, '/', { ':authority': 'books.example' })).body.toString(), 'books vhost');
    } finally {
      books.close();
    }
    // SNI picks the certificate only: the vhost comes from :authority (port stripped), the first vhost for an unknown name.
    const local = await session(`https://127.0.0.1:${tlsPort}`, 'localhost');
    try {
      assert.equal((await h2request(local, '/', { ':authority': 'books.example:443' })).body.toString(), 'books vhost');
      assert.equal((await h2request(local, '/index.html', { ':authority': 'unknown.example' })).body.toString(), '<h1>h2 home</h1>');
    } finally {
      local.close();
    }
  });

  it('serves ranges and gzip passthrough from an archive over HTTP/2', async () => {
    const c = await session(`https://127.0.0.1:${tlsPort}`);
    try {
      const range = await h2request(c, '/big.png', { range: 'bytes=1000-1999' });
      assert.equal(range.status, 206);
      assert.equal(range.headers['content-range'], `bytes 1000-1999/${big.length}`);
      assert.deepEqual(range.body, big.subarray(1000, 2000));
      const gz = await h2request(c, '/book/candide.html', { 'accept-encoding': 'gzip' });
      assert.equal(gz.status, 200);
      assert.equal(gz.headers['content-encoding'], 'gzip');
      assert.equal(gz.body.length, 95147);
      assert.match(gunzipSync(gz.body).toString('latin1'), /Candide/);
      const whole = await h2request(c, '/big.png');
      assert.deepEqual(whole.body, big);
    } finally {
      c.close();
    }
  });

  it('relays a proxy mount and a CGI program over HTTP/2 without connection-specific headers', async () => {
    const c = await session(`https://127.0.0.1:${tlsPort}`);
    try {
      const got = await h2request(c, '/proxy/stream?x=1');
      assert.equal(got.status, 200);
      assert.equal(got.body.toString(), 'GET /up/stream?x=1 body=');
      assert.equal(got.headers['x-upstream'], 'yes');
      for (const name of CONNECTION_SPECIFIC) assert.equal(got.headers[name], undefined, `${name} on the proxied response`);
      const posted = await h2request(c, '/proxy/post', { ':method': 'POST', 'content-type': 'text/plain' }, 'sent over h2');
      assert.equal(posted.body.toString(), 'POST /up/post body=sent over h2');
      const cgi = await h2request(c, '/cgi/info?q=1', { ':authority': 'localhost' });
      assert.equal(cgi.status, 200);
      for (const name of CONNECTION_SPECIFIC) assert.equal(cgi.headers[name], undefined, `${name} on the CGI response`);
      const env = cgi.body.toString();
      assert.match(env, /^SERVER_PROTOCOL=HTTP\/2\.0$/m);
      assert.match(env, /^PATH_INFO=\/info$/m);
      assert.match(env, /^QUERY_STRING=q=1$/m);
      assert.match(env, /^HTTP_HOST=localhost$/m);
    } finally {
      c.close();
    }
  });

  it('passes a WebSocket (HTTP/1.1 Upgrade) through a proxy mount on the HTTP/2 TLS port', async () => {
    const ws = new WebSocket(`wss://127.0.0.1:${tlsPort}/proxy/ws`, { rejectUnauthorized: false });
    try {
      await new Promise<void>((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      const reply = new Promise<string>((resolve) => ws.once('message', (data: Buffer) => resolve(data.toString())));
      ws.send('over h1 on an h2 port');
      assert.equal(await reply, 'echo over h1 on an h2 port');
    } finally {
      ws.terminate();
    }
  });

  it('logs HTTP/2 requests as HTTP/2.0 with their body bytes, and counts them on the status page', async () => {
    const c = await session(`https://127.0.0.1:${tlsPort}`);
    try {
      type Status = { requests: number; vhosts: { name: string; requests: number; bytes: number }[] };
      const status = async (): Promise<Status['vhosts'][number]> =>
        (JSON.parse((await h2request(c, '/status')).body.toString()) as Status).vhosts.find((v) => v.name === 'localhost')!;
      const before = await status();
      const r = await h2request(c, '/index.html?log=1', { 'user-agent': 'h2 "test"', referer: 'https://r.example/' });
      assert.equal(r.body.length, 16);
      const after = await status();
      assert.equal(after.requests, before.requests + 2, 'the page and the first status request');
      assert.ok(after.bytes >= before.bytes + 16);
    } finally {
      c.close();
    }
    const line = (): string | undefined =>
      readFileSync(join(d, 'access.log'), 'utf8')
        .split('\n')
        .find((l) => l.includes('/index.html?log=1'));
    await waitFor(() => line() !== undefined, 'the line is written');
    assert.match(
      line()!,
      /^127\.0\.0\.1 - - \[\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} \+0000\] "GET \/index\.html\?log=1 HTTP\/2\.0" 200 16 "https:\/\/r\.example\/" "h2 \\x22test\\x22"$/,
    );
  });
});

describe('vfserve CLI: HTTP/2 sessions across reload and shutdown', () => {
  const d = join(dir, 'lifecycle');
  const huge = noise(8 * 1024 * 1024, 5);
  writeTree(d, { 'a/index.html': Buffer.from('site A'), 'b/index.html': Buffer.from('site B'), 'big/x.png': huge });
  const conf = (origin: string): string =>
    JSON.stringify({
      vhosts: [
        {
          port: 0,
          interface: '127.0.0.1',
          ...tls('localhost'),
          mounts: [
            { mountpoint: '/', origin },
            { mountpoint: '/big', origin: 'file://big' },
          ],
        },
      ],
    });

  /** Starts the big download on `c` and resolves once its first bytes are in and reading is paused. */
  async function pausedDownload(c: ClientHttp2Session): Promise<{ resume: () => void; done: Promise<number> }> {
    const req = c.request({ ':path': '/big/x.png' });
    let n = 0;
    let first: () => void = () => undefined;
    const started = new Promise<void>((r) => (first = r));
    const done = new Promise<number>((resolve, reject) => {
      req.once('data', (chunk: Buffer) => {
        n += chunk.length;
        req.pause();
        first();
      });
      req.on('end', () => resolve(n));
      req.on('error', reject);
    });
    req.end();
    await started;
    return {
      resume: () => {
        req.on('data', (chunk: Buffer) => (n += chunk.length));
        req.resume();
      },
      done,
    };
  }

  it('reloads on SIGHUP with a session open: the session keeps working and sees the new configuration', async () => {
    writeFileSync(join(d, 'conf'), conf('file://a'));
    const s = await start(['--config', d, '--quiet']);
    const url = `https://127.0.0.1:${s.listeners[0]!.port}`;
    const c = await session(url);
    try {
      assert.equal((await h2request(c, '/')).body.toString(), 'site A');
      const download = await pausedDownload(c);
      writeFileSync(join(d, 'conf'), conf('file://b'));
      s.child.kill('SIGHUP');
      await waitFor(() => /configuration reloaded/.test(s.output()), 'reloaded');
      assert.equal((await h2request(c, '/')).body.toString(), 'site B', 'the open session, new configuration');
      const fresh = await session(url);
      assert.equal((await h2request(fresh, '/')).body.toString(), 'site B', 'a new session');
      fresh.close();
      download.resume();
      assert.equal(await download.done, huge.length, 'the response in flight across the reload completed');
      // Turning HTTP/2 off needs a new kind of listener: refused, the old configuration serves on.
      writeFileSync(join(d, 'conf'), conf('file://a').replace('"port":0', '"h2":"0","port":0'));
      s.child.kill('SIGHUP');
      await waitFor(
        () => /reload failed, still serving the previous configuration: port 0: switching "h2" on a listening port needs a restart/.test(s.output()),
        s.output(),
      );
      assert.equal((await h2request(c, '/')).body.toString(), 'site B');
    } finally {
      c.destroy();
      assert.equal(await s.stop(), 0);
    }
  });

  it('shuts down on SIGTERM with a GOAWAY: the stream in flight completes, then the process exits', async () => {
    writeFileSync(join(d, 'conf'), conf('file://a'));
    const s = await start(['--config', d, '--quiet']);
    const c = await session(`https://127.0.0.1:${s.listeners[0]!.port}`);
    let goaway: number | undefined;
    c.on('goaway', (code: number) => (goaway = code));
    try {
      const download = await pausedDownload(c);
      const started = Date.now();
      const exited = s.stop('SIGTERM');
      await waitFor(() => goaway !== undefined, 'the session got a GOAWAY');
      assert.equal(goaway, constants.NGHTTP2_NO_ERROR);
      assert.equal(s.child.exitCode, null, 'still running while the stream is open');
      download.resume();
      assert.equal(await download.done, huge.length, 'the stream in flight completed');
      assert.equal(await exited, 0);
      assert.ok(Date.now() - started < 8000, 'it exited once the stream was done, not at the 10 s timeout');
      assert.match(s.output(), /SIGTERM, finishing in-flight requests/);
    } finally {
      c.destroy();
    }
  });

  it('serves HTTP/2 from count-threads workers', async () => {
    const cd = join(dir, 'cluster');
    writeTree(cd, { 'p/pid.mjs': Buffer.from('export function pid(req, res) { res.end(`${process.pid} ${req.httpVersion}`); }\n') });
    writeFileSync(
      join(cd, 'conf'),
      JSON.stringify({
        global: { 'count-threads': 2, 'plugin-dir': 'p' },
        vhosts: [{ port: 0, interface: '127.0.0.1', ...tls('localhost'), mounts: [{ mountpoint: '/pid', origin: 'callback://pid' }] }],
      }),
    );
    const s = await start(['--config', cd, '--quiet']);
    try {
      assert.match(s.listeners[0]!.line, /\(TLS, HTTP\/2 and HTTP\/1\.1\) \(2 workers\)$/);
      const pids = new Set<string>();
      for (let i = 0; i < 40 && pids.size < 2; i++) {
        const c = await session(`https://127.0.0.1:${s.listeners[0]!.port}`);
        const [pid, version] = (await h2request(c, '/pid')).body.toString().split(' ');
        assert.equal(version, '2.0');
        pids.add(pid!);
        c.close();
      }
      assert.equal(pids.size, 2, 'sessions spread over both workers');
    } finally {
      assert.equal(await s.stop(), 0);
    }
  });
});

describe('vfserve CLI: HTTP/2 rapid reset (CVE-2023-44487)', () => {
  it('survives 5,000 streams opened and reset at once on one session, and keeps serving within a memory bound', async () => {
    const d = join(dir, 'reset');
    writeTree(d, { 'www/index.html': Buffer.from('still serving') });
    writeFileSync(
      join(d, 'conf'),
      JSON.stringify({ vhosts: [{ port: 0, interface: '127.0.0.1', ...tls('localhost'), mounts: [{ mountpoint: '/', origin: 'file://www' }] }] }),
    );
    const s = await start(['--config', d, '--quiet']);
    const port = s.listeners[0]!.port;
    try {
      const warm = await session(`https://127.0.0.1:${port}`);
      for (let i = 0; i < 20; i++) await h2request(warm, '/');
      warm.close();
      const baseline = rssMiB(s.child.pid!);
      // The attack on the wire: HEADERS (GET /, END_STREAM) then RST_STREAM(CANCEL) for each new
      // stream, in bursts of 100, so the server starts each response and has it cancelled at once.
      const frame = (type: number, flags: number, id: number, payload: Buffer): Buffer => {
        const head = Buffer.alloc(9);
        head.writeUIntBE(payload.length, 0, 3);
        head[3] = type;
        head[4] = flags;
        head.writeUInt32BE(id, 5);
        return Buffer.concat([head, payload]);
      };
      // HPACK: :method GET, :scheme https, :path / (static table), :authority localhost (literal).
      const headerBlock = Buffer.concat([Buffer.from([0x82, 0x87, 0x84, 0x01, 9]), Buffer.from('localhost')]);
      const cancel = Buffer.alloc(4);
      cancel.writeUInt32BE(constants.NGHTTP2_CANCEL);
      const sock = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ALPNProtocols: ['h2'], rejectUnauthorized: false });
      await new Promise<void>((resolve, reject) => {
        sock.once('secureConnect', resolve);
        sock.once('error', reject);
      });
      assert.equal(sock.alpnProtocol, 'h2');
      sock.on('error', () => undefined);
      sock.resume();
      sock.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(4, 0, 0, Buffer.alloc(0))]));
      let id = 1;
      for (let burst = 0; burst < 50 && !sock.destroyed; burst++) {
        const frames: Buffer[] = [];
        for (let i = 0; i < 100; i++, id += 2) frames.push(frame(1, 0x5, id, headerBlock), frame(3, 0, id, cancel));
        sock.write(Buffer.concat(frames));
        await new Promise((r) => setImmediate(r));
      }
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(s.child.exitCode, null, 'the server process is up');
      const after = await session(`https://127.0.0.1:${port}`);
      try {
        const r = await h2request(after, '/');
        assert.equal(r.status, 200);
        assert.equal(r.body.toString(), 'still serving');
      } finally {
        after.close();
      }
      const grown = rssMiB(s.child.pid!) - baseline;
      assert.ok(grown < 64, `RSS grew by ${grown.toFixed(1)} MiB`);
      sock.destroy();
    } finally {
      assert.equal(await s.stop(), 0);
    }
  });
});
