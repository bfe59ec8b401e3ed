import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createHandler, mountFromConfig } from '../../src/index.js';
import { fixture } from '../helpers/fixtures.js';
import { get, listen } from '../helpers/http.js';

describe('mount options from an lwsws-style config', () => {
  it('maps kebab-case keys one to one, with string and number values as lwsws writes them', async () => {
    const m = mountFromConfig({
      mountpoint: '/book',
      origin: `file://${fixture('lws', 'candide.zip')}`,
      default: 'candide.html',
      'cache-max-age': '60',
      'cache-reuse': '1',
      'cache-revalidate': 1,
      'cache-intermediaries': '0',
      'extra-mimetypes': { '.x': 'text/plain' },
      headers: { 'X-Frame-Options': 'DENY' },
    });
    assert.equal(m.cacheMaxAge, '60' as unknown as number);
    const { port, close } = await listen(createHandler({ mounts: [m] }));
    try {
      const r = await get(port, '/book/');
      assert.equal(r.status, 200);
      assert.equal(r.headers['cache-control'], 'must-revalidate, private, max-age=60');
      assert.equal(r.headers['x-frame-options'], 'DENY');
    } finally {
      await close();
    }
  });

  it('reports unknown keys and bad values by name', () => {
    assert.throws(
      () => mountFromConfig({ mountpoint: '/', origin: '/x', 'cache-max-agee': 5 }, 'vhosts[0].mounts[1]'),
      /vhosts\[0\]\.mounts\[1\]: unknown key "cache-max-agee"/,
    );
    assert.throws(
      () => createHandler({ mounts: [mountFromConfig({ mountpoint: '/', origin: '/x', 'cache-reuse': 'maybe' })] }),
      /mounts\[0\]\.cacheReuse must be a boolean/,
    );
    assert.throws(
      () => createHandler({ mounts: [{ mountpoint: '/', origin: '/x', headers: { 'x-a': 'v\r\nSet-Cookie: evil' } }] }),
      /cannot contain CR, LF or NUL/,
    );
    assert.throws(
      () =>
        createHandler({
          mounts: [
            { mountpoint: '/', origin: '/x' },
            { mountpoint: '/', origin: '/y' },
          ],
        }),
      /used twice/,
    );
  });
});

describe('directories inside an archive', () => {
  it('redirect without their slash and serve their default file with it', async () => {
    const { port, close } = await listen(createHandler({ mounts: [{ mountpoint: '/', origin: fixture('lws', 'candide.zip') }] }));
    try {
      const r = await get(port, '/images?x=1');
      assert.equal(r.status, 301);
      assert.equal(r.headers.location, '/images/?x=1');
      assert.equal((await get(port, '/images/')).status, 404); // no index.html in images/
      assert.equal((await get(port, '/images/001_th.jpg')).headers['content-type'], 'image/jpeg');
      const root = await get(port, '/', { 'accept-encoding': 'gzip' });
      assert.equal(root.status, 404); // candide.zip has no index.html
    } finally {
      await close();
    }
  });
});
