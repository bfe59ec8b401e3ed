/**
 * One raw-socket regression test per advisory class a Node proxy has shipped (request smuggling,
 * hop-by-hop abuse, path and host escapes): the bytes go to the proxy exactly as written, and a
 * recording upstream says what reached it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { front, raw, statusOf, upstream, type Front, type Upstream } from '../helpers/proxy.js';

let up: Upstream;
let fr: Front;
before(async () => {
  up = await upstream();
  fr = await front({ mounts: [{ mountpoint: '/p', origin: `http://127.0.0.1:${up.port}/up` }] });
});
after(async () => {
  await fr.close();
  await up.close();
});

/** The requests the upstream saw during `fn`. */
async function seenDuring(fn: () => Promise<void>): Promise<typeof up.seen> {
  const before = up.seen.length;
  await fn();
  // A request smuggled through would arrive right after the first: give it a moment to.
  await new Promise((resolve) => setTimeout(resolve, 50));
  return up.seen.slice(before);
}

describe('proxy: request smuggling (CVE-2026-29057, tinyproxy#609, openlitespeed#392)', () => {
  const smuggled = 'GET /p/smuggled HTTP/1.1\r\nHost: x\r\n\r\n';

  it('refuses Content-Length with Transfer-Encoding: 400, nothing upstream', async () => {
    let text = '';
    const seen = await seenDuring(async () => {
      text = await raw(fr.port, `POST /p/x HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${smuggled}`);
    });
    assert.equal(statusOf(text), 400);
    assert.deepEqual(seen, []);
  });

  it('refuses a duplicate Content-Length, equal or not: 400, nothing upstream', async () => {
    for (const second of ['5', '6']) {
      let text = '';
      const seen = await seenDuring(async () => {
        text = await raw(fr.port, `POST /p/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: ${second}\r\nConnection: close\r\n\r\nhello!`);
      });
      assert.equal(statusOf(text), 400, second);
      assert.deepEqual(seen, []);
    }
  });

  it('refuses "Transfer-Encoding: chunked," (a final coding that is not chunked): 400, nothing upstream', async () => {
    let text = '';
    const seen = await seenDuring(async () => {
      text = await raw(fr.port, `POST /p/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked,\r\n\r\n5\r\nhello\r\n0\r\n\r\n${smuggled}`);
    });
    assert.equal(statusOf(text), 400);
    assert.deepEqual(seen, []);
  });

  it('reads "Transfer-Encoding: chunked<TAB>" as chunked (OWS) and re-frames it: one request upstream, its body intact', async () => {
    let text = '';
    const seen = await seenDuring(async () => {
      text = await raw(fr.port, 'POST /p/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\t\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n');
    });
    // Refusing would be as safe; whatever node's parser does, the upstream never sees a second request.
    if (statusOf(text) === 400) assert.deepEqual(seen, []);
    else {
      assert.equal(statusOf(text), 200);
      assert.equal(seen.length, 1);
      assert.equal(seen[0]!.body.toString(), 'hello');
      assert.equal(seen[0]!.headers['transfer-encoding'], 'chunked');
    }
    assert.ok(!seen.some((s) => s.url.includes('smuggled')));
  });

  // The framing upstream is undici's, from the body it actually reads: chunked while the body is still
  // arriving, or the exact length when it had all of it already. Never Content-Length: 0 with a body.
  it('forwards a DELETE with a chunked body as it is: body kept, chunked, no Content-Length: 0', async () => {
    let text = '';
    const seen = await seenDuring(async () => {
      text = await raw(fr.port, [
        'DELETE /p/item HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n',
        '6\r\n world\r\n0\r\n\r\n',
      ]);
    });
    assert.equal(statusOf(text), 200);
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.method, 'DELETE');
    assert.equal(seen[0]!.body.toString(), 'hello world');
    assert.equal(seen[0]!.headers['transfer-encoding'], 'chunked');
    assert.equal(seen[0]!.headers['content-length'], undefined);
  });

  it('forwards a DELETE or OPTIONS whose chunked body came whole with its exact length, never Content-Length: 0', async () => {
    for (const method of ['DELETE', 'OPTIONS']) {
      const seen = await seenDuring(async () => {
        await raw(fr.port, `${method} /p/item HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n`);
      });
      assert.equal(seen.length, 1, method);
      assert.equal(seen[0]!.body.toString(), 'abc');
      const h = seen[0]!.headers;
      assert.ok(h['transfer-encoding'] === 'chunked' ? h['content-length'] === undefined : h['content-length'] === '3', JSON.stringify(h));
    }
  });
});

describe('proxy: hop-by-hop abuse (golang/go#50580, reply-from#449)', () => {
  it('a Connection header naming X-Forwarded-For cannot remove it: the upstream gets XFF = peer', async () => {
    const seen = await seenDuring(async () => {
      await raw(fr.port, 'GET /p/x HTTP/1.1\r\nHost: x\r\nConnection: close, X-Forwarded-For, X-Forwarded-Host, Via\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n');
    });
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen[0]!.headers['x-forwarded-host'], 'x');
    assert.match(String(seen[0]!.headers.via), /vfserve-/);
  });
});

describe('proxy: path and host escapes (GHSA-2q7r-29rg-6m5h, fast-proxy#42, angular#68436)', () => {
  const targets = [
    '//evil.test/p/x',
    'http://evil.test/p/x',
    'http://evil.test/up/x',
    '/p//evil.test/x',
    '/p/%2E%2E/secret',
    '/p/%2e%2e/%2e%2e/etc/passwd',
    '/p/..%2f..%2fsecret',
    '/p/a%2F..%2F..%2Fsecret',
    '/p/..\\..\\secret',
    '/p/./../secret',
  ];
  for (const target of targets) {
    it(`never leaves the origin or its path: ${target}`, async () => {
      let text = '';
      const seen = await seenDuring(async () => {
        text = await raw(fr.port, `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      });
      assert.notEqual(statusOf(text), 0, 'an HTTP answer');
      for (const s of seen) {
        assert.ok(s.url === '/up' || s.url.startsWith('/up/'), `the upstream saw ${s.url}`);
        assert.ok(!s.url.includes('..') && !/%2e%2e/i.test(s.url), s.url);
        assert.equal(s.headers.host, `127.0.0.1:${up.port}`);
      }
      if (seen.length === 1) assert.equal(statusOf(text), 200);
    });
  }
});
