// vfserve as the store of another vfserve: one serves a directory of archives as plain files (Range,
// strong ETags, If-Match), the other mounts an archive from it with range+http and serves its entries.
import assert from 'node:assert/strict';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { createHandler } from '../../src/index.js';
import { rmTree, tmpDir } from '../helpers/fixtures.js';
import { get, listen } from '../helpers/http.js';
import { assertReplacedWithin, siteV1, siteV2, zipOf } from '../helpers/remote-site.js';

describe('vfserve as the origin of a range+http mount', () => {
  const dir = tmpDir('vfserve-as-origin-');
  const asked: { method: string; range: string | undefined; ifMatch: string | undefined; status: number }[] = [];
  const closers: (() => Promise<void>)[] = [];
  let front = 0;

  before(async () => {
    writeFileSync(join(dir, 'site.zip'), zipOf(siteV1));
    // The store: archives as files, not entered (a .zip is served as itself once its type is allowed).
    const store = createHandler({
      mounts: [{ mountpoint: '/archives', origin: dir, extraMimetypes: { '.zip': 'application/zip' } }],
      resolveCacheMs: 0,
      log: () => undefined,
    });
    const s = await listen((req, res) => {
      res.on('finish', () => asked.push({ method: req.method ?? '', range: req.headers.range, ifMatch: req.headers['if-match'], status: res.statusCode }));
      store(req, res);
    });
    closers.push(s.close, () => store.close());
    const handler = createHandler({
      mounts: [{ mountpoint: '/', origin: `range+http://127.0.0.1:${s.port}/archives/site.zip` }],
      remote: { revalidateMs: 200 },
      resolveCacheMs: 0,
      log: () => undefined,
    });
    const f = await listen(handler);
    front = f.port;
    closers.unshift(f.close, () => handler.close());
  });
  after(async () => {
    for (const close of closers) await close();
    rmTree(dir);
  });

  it('opens the archive with one suffix request to the store, then serves entries, a range and gzip passthrough', async () => {
    const page = await get(front, '/');
    assert.equal(page.status, 200);
    assert.ok(page.body.equals(siteV1['index.html']));
    assert.match(asked[0]?.range ?? '', /^bytes=-\d+$/, 'a suffix range');
    assert.equal(asked[0]?.status, 206, 'which vfserve answers as a range');
    const part = await get(front, '/photo.jpg', { range: 'bytes=200000-200999' });
    assert.equal(part.status, 206);
    assert.ok(part.body.equals(siteV1['photo.jpg'].subarray(200_000, 201_000)));
    const gz = await get(front, '/app.css', { 'accept-encoding': 'gzip' });
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.ok(gunzipSync(gz.body).equals(siteV1['app.css']));
    // Every read after the opening one is pinned to the version it opened.
    const reads = asked.filter((a) => a.method === 'GET').slice(1);
    assert.ok(reads.length > 0 && reads.every((a) => a.ifMatch !== undefined && a.status === 206), JSON.stringify(reads));
  });

  it('picks up an archive renamed over the old one (the store gives it a new ETag), never mixing the two', async () => {
    const etag1 = (await get(front, '/app.css')).headers.etag;
    const next = join(dir, 'site.zip.new');
    writeFileSync(next, zipOf(siteV2));
    renameSync(next, join(dir, 'site.zip'));
    await assertReplacedWithin(front, etag1);
  });
});
