import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canonicalizePath, encodePath } from '../../src/mounts/canonical.js';

describe('canonicalizePath: one canonical form, every other spelling refused', () => {
  const ok: [string, string, boolean, string][] = [
    ['/', '/', true, ''],
    ['/a/b.txt', '/a/b.txt', false, ''],
    ['/a/b/', '/a/b', true, ''],
    ['//a//b', '/a/b', false, ''],
    ['/./a/./b/.', '/a/b', false, ''],
    ['/snow%20%E2%98%83/x', '/snow ☃/x', false, ''],
    ['/a+b.txt', '/a+b.txt', false, ''], // + is literal in a path
    ['/a%2Bb', '/a+b', false, ''],
    ['/te;st.txt', '/te;st.txt', false, ''],
    ['/x?y=1&z=%2e%2e', '/x', false, '?y=1&z=%2e%2e'],
    ['/...', '/...', false, ''],
    ['/.well-known/x', '/.well-known/x', false, ''],
    ['/%25', '/%', false, ''],
  ];
  for (const [raw, path, trailing, query] of ok) {
    it(`accepts ${raw}`, () => {
      const c = canonicalizePath(raw);
      assert.ok(!('status' in c), JSON.stringify(c));
      assert.equal(c.path, path);
      assert.equal(c.trailingSlash, trailing);
      assert.equal(c.query, query);
    });
  }
  const refused: [string, 400 | 403][] = [
    ['/../etc/passwd', 403],
    ['/a/../b', 403],
    ['/a/..', 403],
    ['/%2e%2e/x', 403],
    ['/%2E%2e/x', 403],
    ['/.%2e/x', 403],
    ['/a/%2e./x', 403],
    ['/a%2f..%2fb', 400],
    ['/a%2Fb', 400],
    ['/a%5cb', 400],
    ['/a\\b', 400],
    ['/..\\x', 400],
    ['/a%00.html', 400],
    ['/a\u0000b', 400],
    ['/a%0d%0aSet-Cookie:x', 400],
    ['/a%', 400],
    ['/a%2', 400],
    ['/a%zz', 400],
    ['/%c3%28', 400], // invalid UTF-8
    ['/%c0%ae%c0%ae/x', 400], // overlong '..'
    ['x', 400],
    ['*', 400],
    ['http://evil.example/x', 400],
    ['', 400],
  ];
  for (const [raw, status] of refused) {
    it(`refuses ${JSON.stringify(raw)} with ${status}`, () => {
      const c = canonicalizePath(raw);
      assert.ok('status' in c, `accepted as ${JSON.stringify(c)}`);
      assert.equal(c.status, status);
    });
  }
});

describe('encodePath: Location headers that cannot name another host', () => {
  it('never starts with two slashes', () => {
    for (const p of ['//evil.example/', '/', '/a', '///x']) assert.match(encodePath(p), /^\/(?!\/)/);
  });
  it('round-trips through the canonicaliser', () => {
    for (const p of ['/snow ☃/a b/', '/a+b', '/100%', "/it's (x)*!"]) {
      const c = canonicalizePath(encodePath(p));
      assert.ok(!('status' in c));
      assert.equal(c.path, p.replace(/\/$/, '') || '/');
    }
  });
});
