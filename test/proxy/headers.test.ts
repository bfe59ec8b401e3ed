import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { clientResponseHeaders, framingProblem, rewriteLocation, upstreamRequestHeaders, VIA_PSEUDONYM } from '../../src/proxy/headers.js';
import { parseProxyOrigin, upstreamPath, type ProxySettings } from '../../src/proxy/origin.js';

function settings(origin: string, over: Partial<ProxySettings> = {}): ProxySettings {
  return {
    origin: parseProxyOrigin(origin),
    connectTimeoutMs: 10_000,
    readTimeoutMs: 60_000,
    trusted: [],
    preserveHost: false,
    tlsVerify: true,
    headerMode: 'standard',
    maxConcurrent: 1024,
    ...over,
  };
}
const client = { peer: '::ffff:10.0.0.7', encrypted: false, httpVersion: '1.1', localPort: 8080 };

describe('proxy origins', () => {
  const cases: [string, Record<string, unknown>][] = [
    ['http://127.0.0.1:7681/up', { scheme: 'http', host: '127.0.0.1', port: 7681, basePath: '/up', authority: '127.0.0.1:7681', socketPath: undefined }],
    ['https://Example.com/', { scheme: 'https', host: 'example.com', port: 443, basePath: '', authority: 'example.com' }],
    ['http://[::1]:81/a/b/', { host: '::1', port: 81, basePath: '/a/b', authority: '[::1]:81' }],
    ['http://+/run/app.sock:/inside', { socketPath: '/run/app.sock', basePath: '/inside', port: 0, authority: 'localhost' }],
    ['http://+/run/app.sock', { socketPath: '/run/app.sock', basePath: '' }],
  ];
  for (const [origin, want] of cases) {
    it(`parses ${origin}`, () => {
      const got = parseProxyOrigin(origin) as unknown as Record<string, unknown>;
      for (const [k, v] of Object.entries(want)) assert.equal(got[k], v, k);
    });
  }
  for (const bad of [
    'ftp://x',
    'http://a b',
    'http://u:p@host/',
    'http://host/a/../b',
    'http://host/a?q',
    'http://host:0/',
    'http://+rel:/x',
    'http://host/%2e%2e',
  ]) {
    it(`refuses ${bad}`, () => assert.throws(() => parseProxyOrigin(bad), TypeError));
  }
  it('builds the upstream path by concatenation, keeping the trailing slash and the query', () => {
    assert.equal(upstreamPath('/up', '/a/b', false, '?x=1'), '/up/a/b?x=1');
    assert.equal(upstreamPath('/up', '', true, ''), '/up/');
    assert.equal(upstreamPath('', '', true, '?q'), '/?q');
    assert.equal(upstreamPath('', '/d', true, ''), '/d/');
  });
});

describe('request framing', () => {
  const table: [string, string[], string | undefined][] = [
    ['plain', ['Content-Length', '5'], undefined],
    ['chunked', ['Transfer-Encoding', 'chunked'], undefined],
    ['gzip then chunked', ['Transfer-Encoding', 'gzip, chunked'], undefined],
    ['chunked with a trailing tab (OWS)', ['Transfer-Encoding', 'chunked\t'], undefined],
    ['CL and TE', ['Content-Length', '5', 'Transfer-Encoding', 'chunked'], 'Content-Length together with Transfer-Encoding'],
    ['duplicate equal CL', ['Content-Length', '5', 'content-length', '5'], 'more than one Content-Length'],
    ['CL list', ['Content-Length', '5, 5'], 'a Content-Length that is not a number'],
    ['trailing comma', ['Transfer-Encoding', 'chunked,'], 'a Transfer-Encoding whose final coding is not chunked'],
    ['final coding gzip', ['Transfer-Encoding', 'chunked, gzip'], 'a Transfer-Encoding whose final coding is not chunked'],
    ['chunked twice', ['Transfer-Encoding', 'chunked', 'Transfer-Encoding', 'chunked'], 'chunked applied more than once'],
    ['empty coding inside', ['Transfer-Encoding', 'gzip,,chunked'], 'an empty transfer coding'],
  ];
  for (const [name, raw, want] of table) it(name, () => assert.equal(framingProblem(raw), want));
});

describe('upstream request headers', () => {
  it('strips hop-by-hop and Connection-named fields before adding its own, so X-Forwarded-For cannot be nominated away', () => {
    const raw = [
      'Host',
      'site.test',
      'Connection',
      'keep-alive, X-Forwarded-For, X-Secret',
      'X-Secret',
      's',
      'X-Forwarded-For',
      '6.6.6.6',
      'Keep-Alive',
      '5',
      'Proxy-Authorization',
      'b',
      'Upgrade',
      'h2c',
      'TE',
      'trailers, deflate',
      'Expect',
      '100-continue',
      'Accept',
      'a',
      'accept',
      'b',
      'Cookie',
      'a=1',
      'cookie',
      'b=2',
    ];
    const out = upstreamRequestHeaders(raw, settings('http://127.0.0.1:9/up'), client);
    assert.ok('headers' in out);
    const h = out.headers;
    for (const gone of ['connection', 'x-secret', 'keep-alive', 'proxy-authorization', 'upgrade', 'expect']) assert.equal(h[gone], undefined, gone);
    assert.equal(h['x-forwarded-for'], '10.0.0.7', 'replaced, not appended, for an untrusted peer');
    assert.equal(h['x-forwarded-proto'], 'http');
    assert.equal(h['x-forwarded-host'], 'site.test');
    assert.equal(h.host, '127.0.0.1:9');
    assert.equal(h.te, 'trailers');
    assert.equal(h.accept, 'a, b');
    assert.equal(h.cookie, 'a=1; b=2');
    assert.equal(h.via, `1.1 ${VIA_PSEUDONYM}`);
  });
  it('appends to X-Forwarded-* from a trusted peer, and keeps its Forwarded', () => {
    const raw = ['Host', 'h', 'X-Forwarded-For', '1.2.3.4', 'X-Forwarded-Proto', 'https', 'Forwarded', 'for=1.2.3.4'];
    const out = upstreamRequestHeaders(raw, settings('http://o', { trusted: ['10.0.0.7'] }), client);
    assert.ok('headers' in out);
    assert.equal(out.headers['x-forwarded-for'], '1.2.3.4, 10.0.0.7');
    assert.equal(out.headers['x-forwarded-proto'], 'https');
    assert.equal(out.headers.forwarded, 'for=1.2.3.4');
    const untrusted = upstreamRequestHeaders(raw, settings('http://o'), client);
    assert.ok('headers' in untrusted);
    assert.equal(untrusted.headers.forwarded, undefined);
    assert.equal(untrusted.headers['x-forwarded-proto'], 'http');
  });
  it('detects a loop through its own Via entry, and keeps others', () => {
    assert.deepEqual(upstreamRequestHeaders(['Via', `1.1 other, 1.1 ${VIA_PSEUDONYM}`], settings('http://o'), client), {
      status: 508,
      reason: 'the request came back through this proxy (Via)',
    });
    const ok = upstreamRequestHeaders(['Via', '1.0 fred'], settings('http://o'), { ...client, httpVersion: '2.0' });
    assert.ok('headers' in ok);
    assert.equal(ok.headers.via, `1.0 fred, 2 ${VIA_PSEUDONYM}`);
  });
  it('preserves Host on request, and takes :authority from HTTP/2', () => {
    const out = upstreamRequestHeaders([':authority', 'h2.test', ':path', '/x'], settings('http://o', { preserveHost: true }), client);
    assert.ok('headers' in out);
    assert.equal(out.headers.host, 'h2.test');
    assert.equal(out.headers[':path'], undefined);
  });
  it('in lws mode sends exactly lws allowlist, Host origin:listen-port and X-Forwarded-For = peer', () => {
    const raw = ['Host', 'h', 'Range', 'bytes=0-1', 'Accept-Encoding', 'gzip', 'Cookie', 'c=1', 'Authorization', 'x', 'X-Forwarded-For', '9.9.9.9'];
    const out = upstreamRequestHeaders(raw, settings('http://127.0.0.1:7/', { headerMode: 'lws' }), client);
    assert.ok('headers' in out);
    assert.deepEqual(out.headers, { 'accept-encoding': 'gzip', cookie: 'c=1', host: '127.0.0.1:8080', 'x-forwarded-for': '10.0.0.7' });
  });
  it('keeps the Upgrade offer for upgrades', () => {
    const out = upstreamRequestHeaders(['Connection', 'Upgrade', 'Upgrade', 'websocket', 'Sec-WebSocket-Key', 'k'], settings('http://o'), client, true);
    assert.ok('headers' in out);
    assert.equal(out.headers.upgrade, 'websocket');
    assert.equal(out.headers.connection, 'upgrade');
    assert.equal(out.headers['sec-websocket-key'], 'k');
  });
});

describe('client response headers', () => {
  const rw = { settings: settings('http://127.0.0.1:9000/up'), mountpoint: '/app' };
  it('drops hop-by-hop and Connection-named fields, keeps Set-Cookie as a list', () => {
    const h = clientResponseHeaders(
      [
        'Connection',
        'close, X-Internal',
        'X-Internal',
        '1',
        'Transfer-Encoding',
        'chunked',
        'Keep-Alive',
        'timeout=5',
        'Set-Cookie',
        'a=1',
        'Set-Cookie',
        'b=2',
        'Content-Type',
        'text/plain',
      ],
      rw,
    );
    assert.deepEqual(h, { 'set-cookie': ['a=1', 'b=2'], 'content-type': 'text/plain' });
  });
  it('reads the Buffers undici hands over as latin1, so obs-text in a value survives byte for byte', () => {
    const raw = [Buffer.from('X-Name'), Buffer.from([0x63, 0x61, 0x66, 0xe9]), Buffer.from('Set-Cookie'), Buffer.from('a=1')];
    const h = clientResponseHeaders(raw, rw);
    assert.equal(h['x-name'], 'caf\u00e9');
    assert.deepEqual(Buffer.from(h['x-name'] as string, 'latin1'), Buffer.from([0x63, 0x61, 0x66, 0xe9]));
    assert.deepEqual(h['set-cookie'], ['a=1']);
  });
  const locations: [string, string][] = [
    ['http://127.0.0.1:9000/up/x?y=1', '/app/x?y=1'],
    ['http://127.0.0.1:9000/up', '/app/'],
    ['/up/x', '/app/x'],
    ['/up', '/app/'],
    ['/upper', '/upper'],
    ['/other', '/other'],
    ['//evil.test/up/x', '//evil.test/up/x'],
    ['https://127.0.0.1:9000/up/x', 'https://127.0.0.1:9000/up/x'],
    ['http://elsewhere/up/x', 'http://elsewhere/up/x'],
  ];
  for (const [from, to] of locations) it(`rewrites Location ${from}`, () => assert.equal(rewriteLocation(from, rw), to));
  it('rewrites onto the root mount and from a root origin path', () => {
    assert.equal(rewriteLocation('/x', { settings: settings('http://o'), mountpoint: '/m' }), '/m/x');
    assert.equal(rewriteLocation('http://o/x', { settings: settings('http://o'), mountpoint: '/' }), '/x');
  });
  it('in lws mode relays only lws allowlist', () => {
    const h = clientResponseHeaders(['Content-Type', 't', 'X-Powered-By', 'p', 'ETag', '"e"', 'Last-Modified', 'x'], {
      ...rw,
      settings: settings('http://o', { headerMode: 'lws' }),
    });
    assert.deepEqual(h, { 'content-type': 't', etag: '"e"' });
  });
});
