/**
 * Archives inside archives over HTTP: a real server on 127.0.0.1, raw request paths. A mount whose
 * origin is an inner archive, and paths through nested archives under an archive mount and a
 * directory mount, with Range and gzip passthrough; the tool-made fixtures of
 * test/fixtures/zip/nested/, whose manifest holds what `unzip -p` gives.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { createHandler, FopError, Vfs, ZipFops } from '../../src/index.js';
import { originDefect } from '../../src/server/origins.js';
import { fixture, rmTree, tmpDir } from '../helpers/fixtures.js';
import { get, listen } from '../helpers/http.js';
import { makeZip } from '../helpers/zip-writer.js';

interface ManifestFile {
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
}

const nested = (...parts: string[]): string => fixture('zip', 'nested', ...parts);
const manifest = (JSON.parse(readFileSync(nested('manifest.json'), 'utf8')) as { files: ManifestFile[] }).files;
const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');
const expected = (path: string): ManifestFile => {
  const f = manifest.find((m) => m.path === path);
  assert.ok(f, path);
  return f;
};

describe('HTTP: archives inside archives', () => {
  const dir = tmpDir('vfserve-http-nested-');
  const files = join(dir, 'files');
  const zip = new ZipFops({ storedCrc: 'first-read' });
  let port = 0;
  let close: () => Promise<void> = () => Promise.resolve();
  const errors: unknown[] = [];

  before(async () => {
    for (const name of ['app.war', 'stored-inner.zip', 'deflated-inner.zip', 'depth3.zip']) {
      copyFileSync(nested(name), join(dir, name === 'app.war' ? name : `x-${name}`));
    }
    mkdirSync(files);
    for (const name of ['stored-inner.zip', 'deflated-inner.zip', 'depth3.zip']) copyFileSync(nested(name), join(files, name));
    const handler = createHandler({
      vfs: new Vfs({ containers: [zip] }),
      resolveCacheMs: 0,
      mounts: [
        { mountpoint: '/', origin: `file://${files}` },
        { mountpoint: '/lib', origin: `file://${dir}/app.war/WEB-INF/lib/lib.jar`, extraMimetypes: { '.MF': 'text/plain', '.properties': 'text/plain' } },
        { mountpoint: '/manual', origin: `file://${dir}/x-stored-inner.zip/docs/manual.zip` },
        { mountpoint: '/site', origin: `file://${dir}/x-deflated-inner.zip` },
      ],
      onError: (err) => errors.push(err),
    });
    ({ port, close } = await listen(handler));
  });

  after(async () => {
    await close();
    await zip.close();
    rmTree(dir);
  });

  it('a mount whose origin is a jar inside a war serves its entries', async () => {
    const mf = await get(port, '/lib/META-INF/MANIFEST.MF');
    assert.equal(mf.status, 200);
    assert.equal(sha256(mf.body), expected('app.war/WEB-INF/lib/lib.jar/META-INF/MANIFEST.MF').sha256);
    const props = await get(port, '/lib/com/example/messages.properties');
    assert.equal(props.status, 200);
    assert.equal(props.body.toString(), 'greeting=hello from lib.jar\n');
    assert.equal((await get(port, '/lib/missing.txt')).status, 404);
    const root = await get(port, '/lib');
    assert.equal(root.status, 301);
    assert.equal(root.headers.location, '/lib/');
  });

  it('a mount on a stored inner archive serves its default file, and its deflated entries as gzip byte for byte', async () => {
    const index = await get(port, '/manual/');
    assert.equal(index.status, 200);
    assert.equal(sha256(index.body), expected('stored-inner.zip/docs/manual.zip/index.html').sha256);
    const guide = expected('stored-inner.zip/docs/manual.zip/guide.txt');
    const gz = await get(port, '/manual/guide.txt', { 'accept-encoding': 'gzip' });
    assert.equal(gz.status, 200);
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.equal(sha256(gunzipSync(gz.body)), guide.sha256);
    // The deflate data goes out as it lies in the outer file.
    assert.ok(readFileSync(join(dir, 'x-stored-inner.zip')).includes(gz.body.subarray(10, gz.body.length - 8)));
    const part = await get(port, '/manual/guide.txt', { 'accept-encoding': 'gzip', range: 'bytes=100-4195' });
    assert.equal(part.status, 206);
    assert.equal(part.headers['content-encoding'], 'gzip');
    assert.ok(part.body.equals(gz.body.subarray(100, 4196)), 'a range of the gzip form counts gzip bytes');
  });

  it('a path through a deflated inner archive under an archive mount: whole and at several ranges', async () => {
    const f = expected('deflated-inner.zip/docs/manual.zip/guide.txt');
    const whole = await get(port, '/site/docs/manual.zip/guide.txt');
    assert.equal(whole.status, 200);
    assert.equal(whole.headers['content-length'], String(f.size));
    assert.equal(sha256(whole.body), f.sha256);
    for (const [start, end] of [
      [100_000, 100_099],
      [0, 0],
      [f.size - 10, f.size - 1],
      [65_530, 65_545],
    ] as const) {
      const r = await get(port, '/site/docs/manual.zip/guide.txt', { range: `bytes=${start}-${end}` });
      assert.equal(r.status, 206, `bytes=${start}-${end}`);
      assert.equal(r.headers['content-range'], `bytes ${start}-${end}/${f.size}`);
      assert.ok(r.body.equals(whole.body.subarray(start, end + 1)), `bytes=${start}-${end}`);
    }
  });

  it('paths through nested archives under a directory mount: depth 2 serves, depth 3 is refused (403)', async () => {
    const l2 = await get(port, '/depth3.zip/l1.zip/l2.zip/l2.txt');
    assert.equal(l2.status, 200);
    assert.equal(sha256(l2.body), expected('depth3.zip/l1.zip/l2.zip/l2.txt').sha256);
    const stored = await get(port, '/stored-inner.zip/docs/manual.zip/logo.bin');
    assert.equal(stored.status, 403, 'a .bin is off the whitelist, nested or not');
    const page = await get(port, '/stored-inner.zip/docs/manual.zip/index.html');
    assert.equal(page.status, 200);
    assert.equal(sha256(page.body), expected('stored-inner.zip/docs/manual.zip/index.html').sha256);
    assert.equal((await get(port, '/depth3.zip/l1.zip/l2.zip/l3.zip/deep.txt')).status, 403);
    assert.equal((await get(port, '/stored-inner.zip/docs/manual.zip/nope.html')).status, 404);
  });

  it('a replaced outer archive is served anew at once (same inner size and mtime)', async () => {
    const version = (text: string): Buffer =>
      makeZip({ entries: [{ name: 'inner.zip', data: makeZip({ entries: [{ name: 'v.txt', data: text }] }), method: 0 }] });
    writeFileSync(join(files, 'swap.zip'), version('version one'));
    assert.equal((await get(port, '/swap.zip/inner.zip/v.txt')).body.toString(), 'version one');
    writeFileSync(join(files, 'swap.tmp'), version('version two'));
    renameSync(join(files, 'swap.tmp'), join(files, 'swap.zip'));
    assert.equal((await get(port, '/swap.zip/inner.zip/v.txt')).body.toString(), 'version two');
  });

  it('start-up checks accept a nested archive origin and report a broken, missing or too deep one', async () => {
    assert.equal(await originDefect(`${dir}/app.war/WEB-INF/lib/lib.jar`), undefined);
    assert.equal(await originDefect(`${dir}/x-deflated-inner.zip/docs/manual.zip`), undefined);
    assert.equal(await originDefect(`${dir}/x-depth3.zip/l1.zip/l2.zip`), undefined);
    writeFileSync(join(dir, 'broken-inner.zip'), makeZip({ entries: [{ name: 'lib.jar', data: 'not an archive, named like one', method: 0 }] }));
    assert.match(
      (await originDefect(`${dir}/broken-inner.zip/lib.jar`))!,
      /lib\.jar cannot be served: CORRUPT_ARCHIVE index ".*broken-inner\.zip\/lib\.jar": /,
    );
    assert.match((await originDefect(`${dir}/app.war/WEB-INF/lib/nope.jar`))!, /nope\.jar does not exist$/);
    assert.match((await originDefect(`${dir}/x-depth3.zip/l1.zip/l2.zip/l3.zip`))!, /cannot be served: LIMIT_EXCEEDED/);
  });

  it('left no handle open once the responses ended, and reported no errors', async () => {
    // Only cached archives are open now: close() must bring every counter to 0.
    await zip.close();
    assert.deepEqual({ archives: zip.stats.openArchives, entries: zip.stats.openEntries }, { archives: 0, entries: 0 });
    // A whitelist refusal is the operator's note (the key that would allow it), not an error.
    assert.deepEqual(
      errors.filter((e) => !FopError.is(e) || e.op !== 'whitelist'),
      [],
    );
  });
});
