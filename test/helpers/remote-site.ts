// The two versions of a small site the remote-archive tests serve, and the check that a replaced
// archive is picked up without a response ever mixing the versions.
import assert from 'node:assert/strict';
import { noise, prose } from './fixtures.js';
import { get } from './http.js';
import { makeZip } from './zip-writer.js';

export type Site = Readonly<Record<'index.html' | 'app.css' | 'photo.jpg', Buffer>>;

export const siteV1: Site = { 'index.html': prose(5000), 'app.css': prose(20_000), 'photo.jpg': noise(300_000, 4) };
export const siteV2: Site = {
  'index.html': Buffer.from('<h1>version two</h1>\n'.repeat(200)),
  'app.css': prose(9000).reverse(),
  'photo.jpg': noise(300_000, 11),
};

/** A zip of `files`, each deflated (the writer's default). */
export const zipOf = (files: Readonly<Record<string, Buffer>>): Buffer => makeZip({ entries: Object.entries(files).map(([name, data]) => ({ name, data })) });

/**
 * Polls the server on `port` (page, stylesheet, and a Range of the photo at once) until it serves
 * `siteV2`, within `withinMs`. Every complete response on the way must be one version's bytes: one
 * cut because the archive changed under it is allowed, a wrong one is not. Then a new version must
 * have a new ETag.
 */
export async function assertReplacedWithin(port: number, etagBefore: string | undefined, withinMs = 5000): Promise<void> {
  const deadline = Date.now() + withinMs;
  let sawNew = false;
  while (!sawNew && Date.now() < deadline) {
    const [page, css, big] = await Promise.all([get(port, '/'), get(port, '/app.css'), get(port, '/photo.jpg', { range: 'bytes=5000-9999' })]);
    for (const [r, name, slice] of [
      [page, 'index.html', undefined],
      [css, 'app.css', undefined],
      [big, 'photo.jpg', [5000, 10000]],
    ] as const) {
      if (r.status !== 200 && r.status !== 206) continue;
      const want = (v: Site) => (slice ? v[name].subarray(slice[0], slice[1]) : v[name]);
      assert.ok(r.body.equals(want(siteV1)) || r.body.equals(want(siteV2)), `${name}: bytes of neither version`);
    }
    sawNew = page.body.equals(siteV2['index.html']) && css.body.equals(siteV2['app.css']);
    if (!sawNew) await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(sawNew, `the new version is served within ${withinMs} ms`);
  assert.notEqual((await get(port, '/app.css')).headers.etag, etagBefore, 'a new version gets a new ETag');
  assert.ok((await get(port, '/photo.jpg')).body.equals(siteV2['photo.jpg']));
}
