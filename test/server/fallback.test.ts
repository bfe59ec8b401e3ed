/**
 * HTTP fallback and raw proxying on one port (lwsws's listen-accept keys), with the real server
 * in-process on 127.0.0.1 and raw sockets: detection of TLS, HTTP/1, h2c and everything else from
 * the first bytes, the raw proxy (bytes, half-close, a target that is down), redirect-http and
 * allow-http-on-https on a TLS port, the detection timeout, the log lines, reload and close.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { METHODS } from 'node:http';
import { request } from 'node:https';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect, TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { ConfigError, parseConfigObjects, type ServerConfig } from '../../src/server/config.js';
import { LISTEN_ACCEPT_KEYS, parseOnward, type ListenAcceptConfig } from '../../src/server/listen-accept.js';
import { startServer, type RunningServer, type StartOptions } from '../../src/server/server.js';
import { chooseRoute, classify, FrontDoor, H2_PREFACE, SNIFF_BYTES } from '../../src/server/sniff.js';
import { delay, onwardServer, PAD_ALPN, rawClient, splittingRelay, type Onward } from '../helpers/fallback.js';
import { fixture, noise, rmTree, tmpDir, writeTree } from '../helpers/fixtures.js';

const dir = tmpDir('vfserve-fallback-');
after(() => rmTree(dir));
writeTree(join(dir, 'www'), { 'index.html': Buffer.from('home page'), 'b/index.html': Buffer.from('books page') });
const tlsDir = fixture('tls');
const SSH_BANNER = 'SSH-2.0-OpenSSH_9.6\r\n';

/** A configuration from lwsws JSON, as the CLI reads it (so the keys are parsed for real). */
function conf(vhosts: Record<string, unknown>[], file = join(dir, 'conf')): ServerConfig {
  return parseConfigObjects([{ json: { vhosts }, file }]);
}

function plainVhost(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'localhost',
    port: 0,
    interface: '127.0.0.1',
    mounts: [
      { mountpoint: '/', origin: `file://${join(dir, 'www')}` },
      { mountpoint: '/server-status', origin: 'callback://server-status' },
    ],
    ...extra,
  };
}

function tlsVhosts(extra: Record<string, unknown> = {}): Record<string, unknown>[] {
  return [
    {
      name: 'localhost',
      port: 0,
      interface: '127.0.0.1',
      'host-ssl-key': join(tlsDir, 'localhost.key'),
      'host-ssl-cert': join(tlsDir, 'localhost.crt'),
      mounts: [{ mountpoint: '/', origin: `file://${join(dir, 'www')}` }],
      ...extra,
    },
    {
      name: 'books.example',
      port: 0,
      interface: '127.0.0.1',
      'host-ssl-key': join(tlsDir, 'books.example.key'),
      'host-ssl-cert': join(tlsDir, 'books.example.crt'),
      mounts: [{ mountpoint: '/', origin: `file://${join(dir, 'www', 'b')}` }],
    },
  ];
}

function fallbackKeys(onward: string, more: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    'ws-protocols': [{ 'raw-proxy': { status: 'ok', onward, ...more } }],
    'listen-accept-role': 'raw-proxy',
    'listen-accept-protocol': 'raw-proxy',
    'fallback-listen-accept': '1',
  };
}

interface Started {
  readonly server: RunningServer;
  readonly port: number;
  readonly lines: string[];
  readonly errors: unknown[];
}

async function start(config: ServerConfig, options: StartOptions = {}): Promise<Started> {
  const lines: string[] = [];
  const errors: unknown[] = [];
  const server = await startServer(config, { requestLog: (l) => lines.push(l), onError: (e) => errors.push(e), ...options });
  return { server, port: server.listeners[0]!.port, lines, errors };
}

/** Waits (bounded) for a condition the server reaches asynchronously, such as a log line after a close. */
async function eventually(test: () => boolean, what: string, ms = 3000): Promise<void> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (test()) return;
    await delay(10);
  }
  assert.fail(`${what} did not happen within ${ms} ms`);
}

/** An HTTP/1.1 response read off a raw socket (status, headers, a Content-Length body). */
function parseResponses(bytes: Buffer): { status: number; headers: Record<string, string>; body: string }[] {
  const out: { status: number; headers: Record<string, string>; body: string }[] = [];
  let text = bytes.toString('latin1');
  while (text.length > 0) {
    const end = text.indexOf('\r\n\r\n');
    if (end < 0) break;
    const [statusLine, ...headerLines] = text.slice(0, end).split('\r\n');
    const headers: Record<string, string> = {};
    for (const l of headerLines) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
    const len = Number(headers['content-length'] ?? 0);
    out.push({ status: Number(statusLine!.split(' ')[1]), headers, body: text.slice(end + 4, end + 4 + len) });
    text = text.slice(end + 4 + len);
  }
  return out;
}

function countResponses(n: number): (b: Buffer) => boolean {
  return (b) => parseResponses(b).length >= n && parseResponses(b).every((r) => r.body.length === Number(r.headers['content-length'] ?? 0));
}

describe('classify: the protocol from the first bytes', () => {
  const cases: [string, Buffer, string | undefined][] = [
    ['nothing yet', Buffer.alloc(0), undefined],
    ['a lone G (GET, GETX…?)', Buffer.from('G'), undefined],
    ['GET without its space', Buffer.from('GET'), undefined],
    ['a request line', Buffer.from('GET / HTTP/1.1\r\n'), 'http1'],
    ['a method with a hyphen', Buffer.from('M-SEARCH * HTTP/1.1\r\n'), 'http1'],
    ['a lower-case method (methods are case-sensitive)', Buffer.from('get / HTTP/1.1\r\n'), 'other'],
    ['a method without the space', Buffer.from('GETX / HTTP/1.1'), 'other'],
    ['an SSH banner', Buffer.from(SSH_BANNER), 'other'],
    ['S alone (SEARCH, SOURCE, SUBSCRIBE or SSH)', Buffer.from('S'), undefined],
    ['SS rules out every method', Buffer.from('SS'), 'other'],
    ['a TLS handshake record', Buffer.from([0x16, 0x03, 0x01]), 'tls'],
    ['0x16 alone', Buffer.from([0x16]), 'tls'],
    ['another control byte (TLS alert 0x15 is not a ClientHello)', Buffer.from([0x15, 0x03, 0x03]), 'other'],
    ['the h2 preface, partly', H2_PREFACE.subarray(0, 10), undefined],
    ['the whole h2 preface', H2_PREFACE, 'h2c'],
    ['PRI that is not the preface (not a method node parses)', Buffer.from('PRI /x HTTP/1.1\r\n'), 'other'],
  ];
  for (const [label, bytes, expected] of cases) {
    it(`${label} → ${expected ?? 'wait for more'}`, () => assert.equal(classify(bytes), expected));
  }
  it(`decides every connection within ${SNIFF_BYTES} bytes (prefixes of methods and the preface, and noise)`, () => {
    for (const m of METHODS) assert.ok(m.length + 1 < SNIFF_BYTES, m);
    const samples: Buffer[] = [H2_PREFACE, Buffer.from('VERSION-CONTROL /x HTTP/1.1\r\n'), Buffer.from('MKCALENDAR ' + 'x'.repeat(20))];
    for (let seed = 1; seed <= 300; seed++) samples.push(noise(SNIFF_BYTES, seed));
    for (const s of samples) assert.notEqual(classify(s.subarray(0, SNIFF_BYTES)), undefined, s.toString('latin1'));
  });
});

describe('chooseRoute: priorities (lws: redirect-http, then allow-http-on-https, beat fallback)', () => {
  const la = (over: Partial<ListenAcceptConfig>): ListenAcceptConfig => ({
    file: 'f',
    at: '$',
    mode: 'off',
    redirectHttp: false,
    allowHttpOnHttps: false,
    timeoutSecs: 0,
    ...over,
  });
  const fb = la({ mode: 'fallback' });
  const tlsPort = { tls: true, h2c: false };
  const plainPort = { tls: false, h2c: false };
  it('on a plain port: HTTP/1 is served, TLS and other bytes fall back, or are closed without fallback', () => {
    assert.equal(chooseRoute('http1', plainPort, fb), 'http1');
    assert.equal(chooseRoute('tls', plainPort, fb), 'fallback');
    assert.equal(chooseRoute('other', plainPort, fb), 'fallback');
    assert.equal(chooseRoute('other', plainPort, undefined), 'close');
  });
  it('on a TLS port: HTTP/1 gets the redirect, else plain service, else the fallback', () => {
    assert.equal(chooseRoute('tls', tlsPort, fb), 'tls');
    assert.equal(chooseRoute('http1', tlsPort, la({ mode: 'fallback', redirectHttp: true })), 'redirect');
    assert.equal(chooseRoute('http1', tlsPort, la({ mode: 'fallback', allowHttpOnHttps: true })), 'http1');
    assert.equal(chooseRoute('http1', tlsPort, fb), 'fallback');
    assert.equal(chooseRoute('http1', tlsPort, la({ redirectHttp: true })), 'redirect');
    // Not HTTP at all: still the fallback (lws's HTTP parser falls back on a bad method), or closed.
    assert.equal(chooseRoute('other', tlsPort, la({ mode: 'fallback', redirectHttp: true })), 'fallback');
    assert.equal(chooseRoute('other', tlsPort, la({ redirectHttp: true })), 'close');
  });
  it('h2c goes to the h2c server where the port has one, else falls back or is closed', () => {
    assert.equal(chooseRoute('h2c', { tls: false, h2c: true }, undefined), 'h2c');
    assert.equal(chooseRoute('h2c', plainPort, fb), 'fallback');
    assert.equal(chooseRoute('h2c', plainPort, undefined), 'close');
  });
  it('the detection timeout goes to its target when there is one', () => {
    assert.equal(chooseRoute('timeout', plainPort, la({ mode: 'fallback', timeoutSecs: 1 })), 'timeout');
    assert.equal(chooseRoute('timeout', tlsPort, la({ redirectHttp: true, timeoutSecs: 1, timeoutOnward: parseOnward('ipv4:127.0.0.1:22') })), 'timeout');
    assert.equal(chooseRoute('timeout', tlsPort, la({ redirectHttp: true, timeoutSecs: 1 })), 'close');
  });
});

describe('onward targets', () => {
  it('parses ipv4 (address or host name), ipv6 (bracketed) and unix (relative to the configuration) forms', () => {
    assert.deepEqual(parseOnward('ipv4:127.0.0.1:22'), { kind: 'ipv4', host: '127.0.0.1', port: 22 });
    assert.deepEqual(parseOnward('ipv4:git.example:2222'), { kind: 'ipv4', host: 'git.example', port: 2222 });
    assert.deepEqual(parseOnward('ipv6:[::1]:22'), { kind: 'ipv6', host: '::1', port: 22 });
    assert.deepEqual(parseOnward('ipv6:[2001:db8::7]:65535'), { kind: 'ipv6', host: '2001:db8::7', port: 65535 });
    assert.deepEqual(parseOnward('unix:/run/sshd.sock'), { kind: 'unix', path: '/run/sshd.sock' });
    assert.deepEqual(parseOnward('unix:run/x.sock', '/etc/vfserve'), { kind: 'unix', path: '/etc/vfserve/run/x.sock' });
  });
  for (const [spec, message] of [
    ['ipv4:127.0.0.1', /expected ipv4:HOST:PORT/],
    ['ipv4:127.0.0.1:0', /port must be 1 to 65535/],
    ['ipv4:127.0.0.1:65536', /port must be 1 to 65535/],
    ['ipv4:999.1.1.1:22', /not an IPv4 address or host name/],
    ['ipv4:bad_host:22', /not an IPv4 address or host name/],
    ['ipv6:::1:22', /expected ipv6:\[ADDRESS\]:PORT/],
    ['ipv6:[127.0.0.1]:22', /not an IPv6 address/],
    ['unix:', /expected unix:\/path/],
    ['tcp://127.0.0.1:22', /expected ipv4:HOST:PORT, ipv6:\[ADDRESS\]:PORT or unix:\/path/],
  ] as const) {
    it(`refuses ${spec}`, () => assert.throws(() => parseOnward(spec), message));
  }
});

describe('listen-accept configuration errors name the file and the JSON path', () => {
  const file = join(dir, 'conf.d', '10-ssh');
  const bad: [string, Record<string, unknown>[], RegExp][] = [
    [
      'a role other than raw-proxy',
      [plainVhost({ ...fallbackKeys('ipv4:127.0.0.1:22'), 'listen-accept-role': 'ws' })],
      /10-ssh: \$\.vhosts\[0\]\["listen-accept-role"\]: "ws": vfserve has only the "raw-proxy" role/,
    ],
    [
      'a protocol other than raw-proxy',
      [plainVhost({ ...fallbackKeys('ipv4:127.0.0.1:22'), 'listen-accept-protocol': 'lws-minimal' })],
      /\$\.vhosts\[0\]\["listen-accept-protocol"\]: "lws-minimal": vfserve has only the "raw-proxy" protocol/,
    ],
    [
      'a ws-protocol other than raw-proxy',
      [plainVhost({ ...fallbackKeys('ipv4:127.0.0.1:22'), 'ws-protocols': [{ 'lws-mirror-protocol': { status: 'ok' } }] })],
      /\$\.vhosts\[0\]\["ws-protocols"\]\[0\]\["lws-mirror-protocol"\]: vfserve has no ws-protocol "lws-mirror-protocol"/,
    ],
    [
      'a raw-proxy without onward',
      [plainVhost({ ...fallbackKeys('ipv4:127.0.0.1:22'), 'ws-protocols': [{ 'raw-proxy': { status: 'ok' } }] })],
      /\$\.vhosts\[0\]\["ws-protocols"\]\[0\]\["raw-proxy"\]: needs "onward"/,
    ],
    [
      'a bad onward',
      [plainVhost(fallbackKeys('ipv4:localhost'))],
      /\$\.vhosts\[0\]\["ws-protocols"\]\[0\]\["raw-proxy"\]\["onward"\]: "ipv4:localhost": expected ipv4:HOST:PORT/,
    ],
    [
      'an unknown raw-proxy option',
      [plainVhost(fallbackKeys('ipv4:127.0.0.1:22', { 'onward-tls': 1 }))],
      /\["raw-proxy"\]\["onward-tls"\]: unknown raw-proxy option/,
    ],
    [
      'fallback without the role',
      [
        plainVhost({
          'fallback-listen-accept': '1',
          'listen-accept-protocol': 'raw-proxy',
          'ws-protocols': [{ 'raw-proxy': { onward: 'ipv4:127.0.0.1:22' } }],
        }),
      ],
      /\$\.vhosts\[0\]\["fallback-listen-accept"\]: needs "listen-accept-role": "raw-proxy"/,
    ],
    [
      'the role without fallback or apply',
      [plainVhost({ 'listen-accept-role': 'raw-proxy' })],
      /\$\.vhosts\[0\]\["listen-accept-role"\]: has no effect without "fallback-listen-accept" or "apply-listen-accept"/,
    ],
    [
      'fallback-listen-accept that is not a boolean',
      [plainVhost({ ...fallbackKeys('ipv4:127.0.0.1:22'), 'fallback-listen-accept': 'maybe' })],
      /\["fallback-listen-accept"\]: must be a boolean/,
    ],
    [
      'fallback and apply together',
      [plainVhost({ ...fallbackKeys('ipv4:127.0.0.1:22'), 'apply-listen-accept': '1' })],
      /\["apply-listen-accept"\]: "apply-listen-accept" and "fallback-listen-accept" exclude each other/,
    ],
    ['redirect-http on a plain vhost', [plainVhost({ 'redirect-http': '1' })], /\$\.vhosts\[0\]\["redirect-http"\]: is for TLS vhosts/],
    [
      'redirect-http with allow-http-on-https',
      tlsVhosts({ 'redirect-http': '1', 'allow-http-on-https': '1' }),
      /\["allow-http-on-https"\]: "redirect-http" and "allow-http-on-https" exclude each other/,
    ],
    ['a timeout without detection', [plainVhost({ 'fallback-timeout-secs': '5' })], /\["fallback-timeout-secs"\]: needs a port that reads the first bytes/],
    [
      'a timeout out of range',
      [plainVhost({ ...fallbackKeys('ipv4:127.0.0.1:22'), 'fallback-timeout-secs': '-1' })],
      /\["fallback-timeout-secs"\]: must be an integer from 0 to 3600/,
    ],
    [
      'a timeout target without a timeout',
      [plainVhost({ ...fallbackKeys('ipv4:127.0.0.1:22'), 'fallback-timeout-onward': 'ipv4:127.0.0.1:25' })],
      /\["fallback-timeout-onward"\]: needs "fallback-timeout-secs" above 0/,
    ],
  ];
  for (const [label, vhosts, message] of bad) {
    it(`refuses ${label}`, () => {
      assert.throws(
        () => conf(vhosts, file),
        (err: unknown) => err instanceof ConfigError && message.test(err.message),
      );
    });
  }
  it('refuses the keys on a vhost that is not the first of its port, naming where they are', async () => {
    const config = conf([plainVhost(), { ...plainVhost(fallbackKeys('ipv4:127.0.0.1:22')), name: 'second' }], file);
    await assert.rejects(startServer(config), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /10-ssh: \$\.vhosts\[1\]\["ws-protocols"\]: belongs on the first vhost of its port \("localhost"\)/);
      return true;
    });
  });
  it('accepts every key it documents', () => {
    assert.deepEqual([...LISTEN_ACCEPT_KEYS].sort(), [
      'allow-http-on-https',
      'apply-listen-accept',
      'fallback-listen-accept',
      'fallback-timeout-onward',
      'fallback-timeout-secs',
      'listen-accept-protocol',
      'listen-accept-role',
      'redirect-http',
      'ws-protocols',
    ]);
    const readme = readFileSync(join(process.cwd(), 'README.md'), 'utf8');
    for (const key of [...LISTEN_ACCEPT_KEYS, 'idle-timeout-secs']) assert.ok(readme.includes(`| \`${key}\``), `README has a row for ${key}`);
  });
});

describe('HTTP fallback on a plain port', () => {
  let onward: Onward;
  let s: Started;
  const accessLog = join(dir, 'plain-access.log');
  before(async () => {
    onward = await onwardServer();
    s = await start(conf([plainVhost({ ...fallbackKeys(onward.spec), 'access-log': accessLog })]));
  });
  after(async () => {
    await s.server.close(1000);
    await onward.close();
  });

  it('relays an SSH banner byte for byte to the onward server, and its echo back', async () => {
    const c = await rawClient(s.port);
    c.socket.write(SSH_BANNER);
    await c.until((b) => b.toString() === SSH_BANNER);
    const more = noise(100_000, 3);
    c.socket.write(more);
    await c.until((b) => b.length === SSH_BANNER.length + more.length);
    assert.ok(c.data().equals(Buffer.concat([Buffer.from(SSH_BANNER), more])), 'the echo is the bytes sent');
    assert.ok(onward.received[0]!.equals(Buffer.concat([Buffer.from(SSH_BANNER), more])), 'the onward server got them unchanged');
    c.socket.end();
    await c.whenClosed();
  });

  it('logs the proxied connection: terminal line and access-log line with client, onward, bytes and duration', async () => {
    await eventually(() => s.lines.some((l) => l.includes('RAW-PROXY')), 'the terminal line');
    const line = s.lines.find((l) => l.includes('RAW-PROXY'))!;
    assert.match(
      line,
      new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z 127\\.0\\.0\\.1 RAW-PROXY ${onward.spec.replace(/\./g, '\\.')} 200 100025B fallback \\d+ms up 100021B$`),
    );
    await eventually(() => readFileSync(accessLog, 'utf8').includes('RAW-PROXY'), 'the access-log line');
    assert.match(
      readFileSync(accessLog, 'utf8'),
      new RegExp(`^127\\.0\\.0\\.1 - - \\[[^\\]]+\\] "RAW-PROXY ${onward.spec.replace(/\./g, '\\.')} fallback" 200 100025 "-" "-" 100021 \\d+ms$`, 'm'),
    );
  });

  it('serves HTTP whose method arrives split (G, then ET / HTTP/1.1…), with keep-alive', async () => {
    const c = await rawClient(s.port);
    c.socket.write('G');
    await delay(50);
    c.socket.write('ET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await c.until(countResponses(1));
    c.socket.write('GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n');
    const [a, b] = parseResponses(await c.until(countResponses(2)));
    assert.equal(a!.status, 200);
    assert.equal(a!.body, 'home page');
    assert.equal(a!.headers.connection, 'keep-alive');
    assert.equal(b!.status, 200);
    assert.equal(b!.body, 'home page');
    assert.equal(c.closed(), false, 'two requests on one connection');
    c.socket.destroy();
    assert.equal(onward.received.length, 1, 'nothing of it reached the raw proxy');
  });

  it('passes a half-close through: the client ends, still gets the reply, then the end', async () => {
    const c = await rawClient(s.port);
    c.socket.write(SSH_BANNER);
    await c.until((b) => b.length === SSH_BANNER.length);
    c.socket.end();
    // The onward server answers the end with "bye\n" and then ends its side.
    await c.until((b) => b.toString().endsWith('bye\n'));
    await c.whenClosed();
    assert.equal(c.data().toString(), `${SSH_BANNER}bye\n`);
    assert.equal(c.ended(), true, 'the end came after the reply');
    assert.equal(c.error(), undefined);
  });

  it('holds a client that sends nothing (no timeout configured), then proxies it once it speaks', async () => {
    const c = await rawClient(s.port);
    const before = onward.received.length;
    await delay(300);
    assert.equal(c.closed(), false, 'still open after 300 ms');
    assert.equal(onward.received.length, before, 'not sent anywhere yet');
    c.socket.write(SSH_BANNER);
    await c.until((b) => b.toString() === SSH_BANNER);
    c.socket.destroy();
  });

  it('counts the connections on the status page, proxied ones included', async () => {
    const c = await rawClient(s.port);
    c.socket.write('GET /server-status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    await c.whenClosed();
    const status = JSON.parse(parseResponses(c.data())[0]!.body) as { connections: { total: number } };
    assert.ok(status.connections.total >= 5, `every connection of this port so far: ${status.connections.total}`);
  });
});

describe('raw proxy failures, apply-listen-accept, unix and ipv6 targets', () => {
  it('closes the client cleanly when the onward target is down, reports it once, and keeps serving', async () => {
    // A port that was just free: nobody listens there.
    const gone = await onwardServer();
    await gone.close();
    const s = await start(conf([plainVhost(fallbackKeys(gone.spec))]));
    try {
      const c = await rawClient(s.port);
      c.socket.write(SSH_BANNER);
      await c.whenClosed();
      assert.equal(c.data().length, 0);
      assert.equal(c.ended(), true, 'an orderly end, not a reset');
      assert.equal(c.error(), undefined);
      await eventually(() => s.lines.some((l) => / RAW-PROXY .* 502 0B fallback /.test(l)), 'the 502 line');
      assert.equal(s.errors.length, 1, 'reported once');
      assert.match(
        String(s.errors[0]),
        new RegExp(`raw-proxy: ${gone.spec.replace(/\./g, '\\.')} cannot be reached for client 127\\.0\\.0\\.1: .*ECONNREFUSED`),
      );
      const h = await rawClient(s.port);
      h.socket.write('GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
      await h.whenClosed();
      assert.equal(parseResponses(h.data())[0]!.body, 'home page', 'still serving');
    } finally {
      await s.server.close(1000);
    }
  });

  it('apply-listen-accept proxies every connection, HTTP included, with nothing read first', async () => {
    const onward = await onwardServer({ banner: 'SSH-2.0-onward\r\n' });
    const { 'fallback-listen-accept': _fallback, ...rest } = fallbackKeys(onward.spec);
    const keys = { ...rest, 'apply-listen-accept': 'on' };
    const s = await start(conf([plainVhost(keys)]));
    try {
      const c = await rawClient(s.port);
      // Server speaks first: with apply, no byte from the client is awaited.
      await c.until((b) => b.toString() === 'SSH-2.0-onward\r\n');
      c.socket.write('GET / HTTP/1.1\r\n\r\n');
      await c.until((b) => b.toString().endsWith('GET / HTTP/1.1\r\n\r\n'));
      assert.equal(onward.received[0]!.toString(), 'GET / HTTP/1.1\r\n\r\n');
      c.socket.destroy();
      await eventually(() => s.lines.some((l) => l.includes(' RAW-PROXY ') && l.includes(' apply ')), 'the apply line');
    } finally {
      await s.server.close(1000);
      await onward.close();
    }
  });

  it('closes both sides of a proxied connection idle for idle-timeout-secs', async () => {
    const onward = await onwardServer();
    const s = await start(conf([plainVhost(fallbackKeys(onward.spec, { 'idle-timeout-secs': '1' }))]));
    try {
      const c = await rawClient(s.port);
      const t0 = Date.now();
      c.socket.write(SSH_BANNER);
      await c.until((b) => b.toString() === SSH_BANNER);
      const far = await onward.connection(0);
      await c.whenClosed(3000);
      assert.ok(Date.now() - t0 >= 900, `closed after ${Date.now() - t0} ms idle`);
      await eventually(() => far.destroyed, 'the onward side closed');
    } finally {
      await s.server.close(1000);
      await onward.close();
    }
  });

  it('reaches a unix-socket onward target', async () => {
    const path = join(dir, 'onward.sock');
    const onward = await onwardServer({ path });
    assert.equal(onward.spec, `unix:${path}`);
    const s = await start(conf([plainVhost(fallbackKeys(onward.spec))]));
    try {
      const c = await rawClient(s.port);
      c.socket.write(SSH_BANNER);
      await c.until((b) => b.toString() === SSH_BANNER);
      assert.equal(onward.received[0]!.toString(), SSH_BANNER);
      c.socket.destroy();
    } finally {
      await s.server.close(1000);
      await onward.close();
    }
  });

  it('parses an ipv6 onward target, and reaches one on ::1 where this host has IPv6 loopback', async (t) => {
    const config = conf([plainVhost(fallbackKeys('ipv6:[::1]:2222'))]);
    assert.deepEqual(config.vhosts[0]!.listenAccept?.rawProxy?.onward, { kind: 'ipv6', host: '::1', port: 2222 });
    let onward: Onward;
    try {
      onward = await onwardServer({ host: '::1' });
    } catch (err) {
      // Said out loud rather than skipped: the parse above is still checked.
      t.diagnostic(`no IPv6 loopback here (${(err as NodeJS.ErrnoException).code ?? String(err)}): the ipv6 connection was not tried`);
      assert.match((err as NodeJS.ErrnoException).code ?? '', /EADDRNOTAVAIL|EAFNOSUPPORT/);
      return;
    }
    const s = await start(conf([plainVhost(fallbackKeys(onward.spec))]));
    try {
      const c = await rawClient(s.port);
      c.socket.write(SSH_BANNER);
      await c.until((b) => b.toString() === SSH_BANNER);
      assert.equal(onward.received[0]!.toString(), SSH_BANNER);
      c.socket.destroy();
    } finally {
      await s.server.close(1000);
      await onward.close();
    }
  });
});

describe('the detection timeout (vfserve extension)', () => {
  it('sends a silent client to the timeout target after fallback-timeout-secs, and what speaks in time to HTTP or the fallback', async () => {
    const fallback = await onwardServer();
    const speaksFirst = await onwardServer({ banner: 'SSH-2.0-timeout-target\r\n' });
    const s = await start(conf([plainVhost({ ...fallbackKeys(fallback.spec), 'fallback-timeout-secs': '1', 'fallback-timeout-onward': speaksFirst.spec })]));
    try {
      const t0 = Date.now();
      const silent = await rawClient(s.port);
      await delay(300);
      assert.equal(silent.data().length, 0, 'held while the timeout runs');
      await silent.until((b) => b.toString() === 'SSH-2.0-timeout-target\r\n', 3000);
      assert.ok(Date.now() - t0 >= 900, `after about a second (${Date.now() - t0} ms)`);
      assert.equal(fallback.received.length, 0);
      silent.socket.destroy();
      await eventually(() => s.lines.some((l) => l.includes(`RAW-PROXY ${speaksFirst.spec} 200`) && l.includes(' timeout ')), 'the timeout line');
    } finally {
      await s.server.close(1000);
      await fallback.close();
      await speaksFirst.close();
    }
  });
});

describe('a TLS port with fallback', () => {
  let onward: Onward;
  before(async () => {
    onward = await onwardServer();
  });
  after(() => onward.close());

  /** GET / over TLS with `servername`, through `port`: the certificate's CN and the body. */
  const tlsGet = (port: number, servername: string, alpn?: string[]): Promise<{ cn: string; body: string; alpn: string | false | null }> =>
    new Promise((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path: '/',
          servername,
          headers: { host: servername },
          rejectUnauthorized: false,
          agent: false,
          ...(alpn ? { ALPNProtocols: alpn } : {}),
        },
        (res) => {
          const sock = res.socket;
          if (!(sock instanceof TLSSocket)) {
            reject(new Error('the response did not come over TLS'));
            return;
          }
          const cn = String(sock.getPeerCertificate().subject.CN);
          const negotiated = sock.alpnProtocol;
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ cn, body, alpn: negotiated }));
        },
      );
      req.setTimeout(5000, () => req.destroy(new Error('timed out')));
      req.on('error', reject);
      req.end();
    });

  it('completes TLS with SNI vhost selection when a 1.5 KB+ ClientHello arrives in three writes', async () => {
    const s = await start(conf(tlsVhosts(fallbackKeys(onward.spec))));
    const relay = await splittingRelay(s.port, { pieces: 3, gapMs: 40 });
    try {
      const r = await tlsGet(relay.port, 'books.example', PAD_ALPN);
      assert.deepEqual(r, { cn: 'books.example', body: 'books page', alpn: 'http/1.1' });
      assert.ok(relay.sizes[0]! >= 1500 && relay.sizes[0]! <= 2000, `a post-quantum-sized ClientHello: ${relay.sizes[0]} bytes`);
      const l = await tlsGet(relay.port, 'localhost', PAD_ALPN);
      assert.deepEqual([l.cn, l.body], ['localhost', 'home page']);
      // Straight to the port too, and the fallback still works beside it.
      assert.equal((await tlsGet(s.port, 'books.example')).body, 'books page');
      const c = await rawClient(s.port);
      c.socket.write(SSH_BANNER);
      await c.until((b) => b.toString() === SSH_BANNER);
      c.socket.destroy();
      // Plain HTTP without redirect-http or allow-http-on-https is not HTTP to this port: it falls back (as lws).
      const h = await rawClient(s.port);
      h.socket.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
      await h.until((b) => b.toString() === 'GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
      h.socket.destroy();
    } finally {
      await relay.close();
      await s.server.close(1000);
    }
  });

  it('redirect-http: plain HTTP gets a 301 to https://<Host><path> and the close; it beats the fallback for HTTP only', async () => {
    const s = await start(conf(tlsVhosts({ ...fallbackKeys(onward.spec), 'redirect-http': '1' })));
    try {
      const c = await rawClient(s.port);
      c.socket.write('GET /a/b?c=d HTTP/1.1\r\nHost: books.example:8443\r\n\r\n');
      await c.whenClosed();
      const [r] = parseResponses(c.data());
      assert.equal(r!.status, 301);
      assert.equal(r!.headers.location, 'https://books.example:8443/a/b?c=d');
      assert.equal(r!.headers.connection, 'close');
      // Never the request target's authority.
      const abs = await rawClient(s.port);
      abs.socket.write('GET http://evil.example/x HTTP/1.1\r\nHost: books.example\r\n\r\n');
      await abs.whenClosed();
      assert.equal(parseResponses(abs.data())[0]!.headers.location, 'https://books.example/x');
      for (const host of ['evil.example/x', 'a b', 'a@b', '']) {
        const odd = await rawClient(s.port);
        odd.socket.write(`GET / HTTP/1.1\r\n${host === '' ? '' : `Host: ${host}\r\n`}\r\n`);
        await odd.whenClosed();
        const o = parseResponses(odd.data())[0];
        assert.equal(o?.status, 400, `Host ${JSON.stringify(host)}: ${odd.data().toString()}`);
        assert.equal(o.headers.location, undefined);
      }
      // Logged as a response.
      await eventually(() => s.lines.some((l) => / GET \/a\/b\?c=d 301 /.test(l)), 'the redirect line');
      // Not HTTP: still the fallback; and TLS as ever.
      const ssh = await rawClient(s.port);
      ssh.socket.write(SSH_BANNER);
      await ssh.until((b) => b.toString() === SSH_BANNER);
      ssh.socket.destroy();
      assert.equal((await tlsGet(s.port, 'books.example')).body, 'books page');
    } finally {
      await s.server.close(1000);
    }
  });

  it('allow-http-on-https: plain HTTP is served (vhosts by Host, keep-alive); it beats the fallback for HTTP only', async () => {
    const s = await start(conf(tlsVhosts({ ...fallbackKeys(onward.spec), 'allow-http-on-https': 'yes' })));
    try {
      const c = await rawClient(s.port);
      c.socket.write('GET / HTTP/1.1\r\nHost: books.example\r\n\r\n');
      await c.until(countResponses(1));
      c.socket.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
      const [a, b] = parseResponses(await c.until(countResponses(2)));
      assert.deepEqual([a!.status, a!.body, b!.status, b!.body], [200, 'books page', 200, 'home page']);
      c.socket.destroy();
      const ssh = await rawClient(s.port);
      ssh.socket.write(SSH_BANNER);
      await ssh.until((b2) => b2.toString() === SSH_BANNER);
      ssh.socket.destroy();
      assert.equal((await tlsGet(s.port, 'localhost')).body, 'home page');
    } finally {
      await s.server.close(1000);
    }
  });

  it('redirect-http alone (no fallback): HTTP is redirected, anything else closed', async () => {
    const s = await start(conf(tlsVhosts({ 'redirect-http': 'on' })));
    try {
      const c = await rawClient(s.port);
      c.socket.write('G');
      await delay(30);
      c.socket.write('ET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
      await c.whenClosed();
      assert.equal(parseResponses(c.data())[0]!.headers.location, 'https://localhost/');
      const ssh = await rawClient(s.port);
      ssh.socket.write(SSH_BANNER);
      await ssh.whenClosed();
      assert.equal(ssh.data().length, 0);
    } finally {
      await s.server.close(1000);
    }
  });
});

describe('the front door hook (h2c) and a TLS client that ends early', () => {
  /** A stand-in inner server: records the first bytes of each socket it is given. */
  const recorder = (): { server: NetServer; got: Promise<Buffer> } => {
    const server = createNetServer();
    const got = new Promise<Buffer>((resolve, reject) => {
      // Bounded: a socket handed on without its bytes must fail the test, not hang it.
      const timer = setTimeout(() => reject(new Error('the inner server got no bytes within 5 s')), 5000);
      server.on('connection', (sock: Socket) =>
        sock.once('data', (b: Buffer) => {
          clearTimeout(timer);
          resolve(b);
        }),
      );
    });
    got.catch(() => undefined); // the one that is never awaited must not be an unhandled rejection
    return { server, got };
  };

  it('hands the HTTP/2 preface to routes.h2c, unchanged, and closes it on a port without one', async () => {
    const h2c = recorder();
    const http1 = recorder();
    const front = new FrontDoor({
      tls: false,
      routes: { http1: http1.server, h2c: h2c.server },
      settings: () => undefined,
      proxyLogger: () => () => undefined,
      onError: () => undefined,
    });
    await new Promise<void>((resolve) => front.server.listen(0, '127.0.0.1', resolve));
    const port = (front.server.address() as AddressInfo).port;
    try {
      const c = await rawClient(port);
      c.socket.write(H2_PREFACE.subarray(0, 5));
      await delay(30);
      c.socket.write(Buffer.concat([H2_PREFACE.subarray(5), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]));
      const first = await h2c.got;
      assert.ok(first.subarray(0, 24).equals(H2_PREFACE), 'the preface, first byte included');
      c.socket.destroy();
      const h = await rawClient(port);
      h.socket.write('GET / HTTP/1.1\r\n\r\n');
      assert.equal((await http1.got).toString(), 'GET / HTTP/1.1\r\n\r\n');
      h.socket.destroy();
    } finally {
      // The stand-ins never end their sockets: cut them, then the close completes.
      front.destroyAll();
      await new Promise<void>((resolve) => front.close(resolve));
    }
    const noH2c = new FrontDoor({
      tls: false,
      routes: { http1: createNetServer() },
      settings: () => undefined,
      proxyLogger: () => () => undefined,
      onError: () => undefined,
    });
    await new Promise<void>((resolve) => noH2c.server.listen(0, '127.0.0.1', resolve));
    try {
      const c = await rawClient((noH2c.server.address() as AddressInfo).port);
      c.socket.write(H2_PREFACE);
      await c.whenClosed();
    } finally {
      await new Promise<void>((resolve) => noH2c.close(resolve));
    }
  });

  it('a TLS ClientHello to a plain port with fallback is proxied, all of it', async () => {
    const onward = await onwardServer();
    const s = await start(conf([plainVhost(fallbackKeys(onward.spec))]));
    try {
      const hello = await new Promise<Buffer>((resolve) => {
        // Capture a real ClientHello: the first flight of tls.connect, into a server that never answers.
        const catcher = createNetServer((sock) =>
          sock.once('data', (b: Buffer) => {
            resolve(b);
            sock.destroy();
            catcher.close();
          }),
        );
        catcher.listen(0, '127.0.0.1', () => {
          const t = tlsConnect({ port: (catcher.address() as AddressInfo).port, host: '127.0.0.1', servername: 'x.example' });
          t.on('error', () => undefined);
        });
      });
      assert.equal(hello[0], 0x16);
      const c = await rawClient(s.port);
      c.socket.end(hello);
      await c.until((b) => b.length === hello.length + 4);
      assert.ok(onward.received[0]!.equals(hello), 'the onward server got the ClientHello unchanged');
      assert.equal(c.data().subarray(hello.length).toString(), 'bye\n');
    } finally {
      await s.server.close(1000);
      await onward.close();
    }
  });
});

describe('reload and close', () => {
  it('follows a reload (a new onward target) on the same listening socket, and refuses turning detection on or off', async () => {
    const a = await onwardServer({ banner: 'A\n' });
    const b = await onwardServer({ banner: 'B\n' });
    const s = await start(conf([plainVhost(fallbackKeys(a.spec))]));
    const plain = await start(conf([plainVhost()]));
    try {
      const first = await rawClient(s.port);
      first.socket.write(SSH_BANNER);
      await first.until((x) => x.toString().startsWith('A\n'));
      await s.server.reload(conf([plainVhost(fallbackKeys(b.spec))]));
      assert.equal(s.server.listeners[0]!.port, s.port, 'same port');
      const second = await rawClient(s.port);
      second.socket.write(SSH_BANNER);
      await second.until((x) => x.toString().startsWith('B\n'));
      // The connection proxied before the reload carries on.
      first.socket.write('still\n');
      await first.until((x) => x.toString().endsWith('still\n'));
      first.socket.destroy();
      second.socket.destroy();
      // Detection is set up when a port starts listening: turning it off or on is refused, and the old configuration stays.
      await assert.rejects(s.server.reload(conf([plainVhost()])), /port 0: turning HTTP fallback on or off .* needs a restart/);
      const third = await rawClient(s.port);
      third.socket.write(SSH_BANNER);
      await third.until((x) => x.toString().startsWith('B\n'));
      third.socket.destroy();
      await assert.rejects(plain.server.reload(conf([plainVhost(fallbackKeys(a.spec))])), /turning HTTP fallback on or off .* needs a restart/);
      const h = await rawClient(plain.port);
      h.socket.write('GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
      await h.whenClosed();
      assert.equal(parseResponses(h.data())[0]!.body, 'home page', 'the old configuration keeps serving');
    } finally {
      await s.server.close(1000);
      await plain.server.close(1000);
      await a.close();
      await b.close();
    }
  });

  it('closes promptly with a silent client held in detection, and cuts a proxied connection at the grace period', async () => {
    const onward = await onwardServer();
    const s = await start(conf([plainVhost(fallbackKeys(onward.spec))]));
    const silent = await rawClient(s.port);
    const proxied = await rawClient(s.port);
    proxied.socket.write(SSH_BANNER);
    await proxied.until((b) => b.length === SSH_BANNER.length);
    const t0 = Date.now();
    await s.server.close(300);
    assert.ok(Date.now() - t0 < 2000, `closed in ${Date.now() - t0} ms`);
    await silent.whenClosed(1000);
    await proxied.whenClosed(1000);
    await onward.close();
  });
});
