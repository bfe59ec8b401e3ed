// Range requests into large deflated zip entries served identity (no Accept-Encoding), over a
// real socket: the checkpoint index is built once and every range is the inflated bytes.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { deflateRawSync, gunzipSync } from 'node:zlib';
import { createHandler, Vfs, ZipFops } from '../../src/index.js';
import { noise, prose, rmTree, tmpDir } from '../helpers/fixtures.js';
import { get, listen } from '../helpers/http.js';
import { makeZip } from '../helpers/zip-writer.js';

describe('HTTP ranges into deflated zip entries', () => {
  const dir = tmpDir();
  const log = Buffer.concat([prose(1_500_000), noise(200_000, 3), prose(1_300_000)]);
  const media = noise(2_000_000, 8); // deflates to stored blocks only
  const zip = new ZipFops({ storedCrc: 'first-read', randomAccess: { span: 64 * 1024, maxShare: 1 } });
  let port = 0;
  let close: () => Promise<void> = () => Promise.resolve();

  before(async () => {
    const archive = join(dir, 'big.zip');
    writeFileSync(
      archive,
      makeZip({
        entries: [
          { name: 'log.txt', data: log, method: 8, stored: deflateRawSync(log, { level: 6, memLevel: 4 }) },
          { name: 'media.mp4', data: media, method: 8 },
        ],
      }),
    );
    const handler = createHandler({ vfs: new Vfs({ containers: [zip] }), mounts: [{ mountpoint: '/', origin: `file://${archive}` }] });
    ({ port, close } = await listen(handler));
  });
  after(async () => {
    await close();
    await zip.close();
    rmTree(dir);
  });

  const offsets = [0, 65_535, 65_536, 1_000_000, 1_499_999, 1_600_000, 2_345_678, log.length - 100];
  for (const start of offsets) {
    it(`log.txt bytes=${start}-${start + 99} is the inflated bytes`, async () => {
      const r = await get(port, '/log.txt', { range: `bytes=${start}-${start + 99}` });
      assert.equal(r.status, 206);
      assert.equal(r.headers['content-range'], `bytes ${start}-${start + 99}/${log.length}`);
      assert.ok(r.body.equals(log.subarray(start, start + 100)));
    });
  }

  it('builds the index once for all those ranges, and serves a multipart range and a suffix range from it', async () => {
    const r = await get(port, '/log.txt', { range: 'bytes=2999000-2999009,10-19,-5' });
    assert.equal(r.status, 206);
    const body = r.body.toString('latin1');
    for (const [a, b] of [
      [2_999_000, 2_999_009],
      [10, 19],
      [log.length - 5, log.length - 1],
    ] as const) {
      assert.ok(body.includes(`Content-Range: bytes ${a}-${b}/${log.length}\r\n\r\n${log.subarray(a, b + 1).toString('latin1')}\r\n`), `${a}-${b}`);
    }
    assert.equal(zip.stats.accessIndexBuilds, 1);
  });

  it('keeps one validator for the whole entry, ranged or not, and If-Range works across them', async () => {
    const whole = await get(port, '/log.txt');
    assert.equal(whole.status, 200);
    assert.ok(whole.body.equals(log));
    const etag = whole.headers.etag as string;
    const ranged = await get(port, '/log.txt', { range: 'bytes=2000000-2000009', 'if-range': etag });
    assert.equal(ranged.status, 206);
    assert.equal(ranged.headers.etag, etag);
    assert.ok(ranged.body.equals(log.subarray(2_000_000, 2_000_010)));
  });

  it('maps an entry of stored blocks: ranges and the whole body, with no index built', async () => {
    const builds = zip.stats.accessIndexBuilds;
    for (const start of [0, 65_530, 1_999_900]) {
      const r = await get(port, '/media.mp4', { range: `bytes=${start}-${start + 99}` });
      assert.equal(r.status, 206);
      assert.ok(r.body.equals(media.subarray(start, start + 100)), `at ${start}`);
    }
    const whole = await get(port, '/media.mp4');
    assert.ok(whole.body.equals(media));
    assert.equal(zip.stats.accessIndexBuilds, builds);
    // The gzip form is still the raw stream, passed through.
    const gz = await get(port, '/media.mp4', { 'accept-encoding': 'gzip' });
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.ok(gunzipSync(gz.body).equals(media));
  });
});
