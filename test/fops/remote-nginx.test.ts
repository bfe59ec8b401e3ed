/**
 * Remote archives against a real origin: Debian's nginx serving a temp dir of archives (written by
 * Info-ZIP and Python's zipfile, committed under test/fixtures/tools/, and by the repo's zip
 * generator), with its own Range, ETag and If-Match handling. Checked: opening costs one request
 * (HttpRangeFops' counters and nginx's access log agree), entries and ranges are the archive's bytes,
 * gzip passthrough through createHandler, and an archive replaced by an atomic rename gets a 412 from
 * nginx for the old version and is then served whole in its new version, never mixed.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, renameSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { DEFAULT_TAIL_BYTES, FopError, HttpRangeFops, ZipFops, createHandler, readAll, type FopFd } from '../../src/index.js';
import { noise, prose, root, rmTree, tmpDir } from '../helpers/fixtures.js';
import { get, listen } from '../helpers/http.js';
import { nginxSkip, startNginx, type RunningNginx } from '../helpers/nginx.js';
import { makeZip } from '../helpers/zip-writer.js';

interface ManifestArchive {
  readonly archive: string;
  readonly files: readonly { readonly name: string; readonly size: number; readonly sha256: string }[];
}
const toolsDir = join(root, 'test', 'fixtures', 'tools');
const manifest = JSON.parse(readFileSync(join(toolsDir, 'manifest.json'), 'utf8')) as { archives: readonly ManifestArchive[] };
/** Real tools' archives: Info-ZIP (deflated, with the 200 KiB data.bin) and Python's zipfile (stored and deflated mixed). */
const TOOL_ARCHIVES = ['infozip-deflate.zip', 'python-mixed.zip'];

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const v1 = { 'index.html': prose(5000), 'app.css': prose(30_000), 'photo.jpg': noise(400_000, 4) };
const v2 = { 'index.html': Buffer.from('<h1>version two</h1>\n'.repeat(300)), 'app.css': prose(12_000).reverse(), 'photo.jpg': noise(400_000, 12) };
const zipOf = (files: Record<string, Buffer>): Buffer => makeZip({ entries: Object.entries(files).map(([name, data]) => ({ name, data })) });

/** Writes `data` beside `target`, gives it `mtimeSeconds`, and renames it into place (what a deploy does). */
function replaceAtomically(target: string, data: Buffer, mtimeSeconds: number): void {
  const next = `${target}.next`;
  writeFileSync(next, data);
  // nginx's ETag is mtime-size: a distinct mtime makes a distinct tag even for a same-size archive.
  utimesSync(next, mtimeSeconds, mtimeSeconds);
  renameSync(next, target);
}

async function whole(fd: FopFd): Promise<Buffer> {
  try {
    return await readAll(fd);
  } finally {
    await fd.close();
  }
}

describe('remote archives served by a real nginx', () => {
  let dir = '';
  let nginx: RunningNginx | undefined;
  const made: HttpRangeFops[] = [];
  const remote = (extra: Partial<ConstructorParameters<typeof HttpRangeFops>[0]> = {}): HttpRangeFops => {
    const f = new HttpRangeFops({ baseUrl: nginx!.url, ...extra });
    made.push(f);
    return f;
  };
  const archiveLines = (name: string): string[] => nginx!.accessLog().filter((l) => l.split(' ')[1] === `/archives/${name}`);

  before(async () => {
    if (nginxSkip !== false) return;
    dir = tmpDir('vfserve-nginx-origin-');
    mkdirSync(join(dir, 'archives'));
    for (const a of TOOL_ARCHIVES) copyFileSync(join(toolsDir, a), join(dir, 'archives', a));
    replaceAtomically(join(dir, 'archives', 'site.zip'), zipOf(v1), 1_700_000_000);
    nginx = await startNginx({ http: ['server {', '  listen 127.0.0.1:{{port}};', `  root ${dir};`, '}'].join('\n') });
  });
  after(async () => {
    for (const f of made) await f.close();
    await nginx?.stop();
    if (dir !== '') rmTree(dir);
  });

  it('nginx gives a strong ETag, suffix ranges, and honours If-Match on ranges (412 for another tag)', { skip: nginxSkip }, async () => {
    const tail = await get(nginx!.port, '/archives/site.zip', { range: 'bytes=-100' });
    const size = readFileSync(join(dir, 'archives', 'site.zip')).length;
    assert.equal(tail.status, 206);
    assert.equal(tail.headers['content-range'], `bytes ${size - 100}-${size - 1}/${size}`);
    const etag = tail.headers.etag ?? '';
    assert.match(etag, /^"[^"]+"$/, 'a strong ETag');
    const matching = await get(nginx!.port, '/archives/site.zip', { range: 'bytes=0-9', 'if-match': etag });
    assert.equal(matching.status, 206);
    assert.equal(matching.body.length, 10);
    assert.equal((await get(nginx!.port, '/archives/site.zip', { range: 'bytes=0-9', 'if-match': '"another"' })).status, 412);
  });

  for (const name of TOOL_ARCHIVES) {
    it(`${name}: opening costs one request, and every entry is the tool's bytes`, { skip: nginxSkip }, async () => {
      const arc = manifest.archives.find((a) => a.archive === name);
      assert.ok(arc, `${name} is in manifest.json`);
      const source = remote();
      const zip = new ZipFops({ source });
      const logBefore = archiveLines(name).length;
      const index = await zip.index(`/archives/${name}`);
      assert.equal(source.stats.requests, 1, 'one request opens and indexes the archive');
      const opened = archiveLines(name).slice(logBefore);
      assert.equal(opened.length, 1, `nginx saw: ${opened.join('\n')}`);
      assert.match(opened[0]!, new RegExp(`^GET /archives/${name} "bytes=-${DEFAULT_TAIL_BYTES}" .* 206 \\d+$`));
      assert.deepEqual([...index.files.keys()].sort(), arc.files.map((f) => f.name).sort());
      for (const file of arc.files) {
        const data = await whole(await zip.open(`/archives/${name}/${file.name}`));
        assert.equal(data.length, file.size, file.name);
        assert.equal(sha256(data), file.sha256, file.name);
      }
      // Archives smaller than the tail were read whole by the one request.
      const size = readFileSync(join(toolsDir, name)).length;
      if (size <= DEFAULT_TAIL_BYTES) assert.equal(source.stats.requests, 1, 'no request beyond the tail');
      zip.clear();
    });
  }

  it('reads ranges of a large entry (across blocks, at its end) exactly, with If-Match on every read', { skip: nginxSkip }, async () => {
    const source = remote({ blockSize: 16 * 1024 });
    const zip = new ZipFops({ source });
    const local = new ZipFops();
    const reference = await whole(await local.open(join(toolsDir, 'python-mixed.zip', 'data.bin')));
    assert.equal(reference.length, 204_800);
    const logBefore = archiveLines('python-mixed.zip').length;
    const fd = await zip.open('/archives/python-mixed.zip/data.bin');
    try {
      for (const [start, length] of [
        [0, 10],
        [16_380, 40],
        [100_000, 50_000],
        [204_800 - 7, 7],
      ] as const) {
        const buf = Buffer.alloc(length);
        assert.equal(await fd.readAt!(buf, start), length);
        assert.ok(buf.equals(reference.subarray(start, start + length)), `bytes ${start}+${length}`);
      }
    } finally {
      await fd.close();
    }
    const reads = archiveLines('python-mixed.zip').slice(logBefore);
    assert.ok(reads.length >= 2, `opened, then read: ${reads.join('\n')}`);
    // Every read after the opening suffix range names the pinned version.
    for (const line of reads.slice(1)) assert.match(line, /^GET \S+ "bytes=\d+-\d+" "\\x22[^\\]+\\x22" "-" 206 \d+$/, line);
    zip.clear();
    local.clear();
  });

  describe('through createHandler (range+http mount on nginx)', () => {
    let port = 0;
    let close: () => Promise<void> = () => Promise.resolve();
    let closeHandler: () => Promise<void> = () => Promise.resolve();

    before(async () => {
      if (nginxSkip !== false) return;
      const handler = createHandler({
        mounts: [
          { mountpoint: '/', origin: `range+http://127.0.0.1:${nginx!.port}/archives/site.zip` },
          { mountpoint: '/tool', origin: `range+http://127.0.0.1:${nginx!.port}/archives/infozip-deflate.zip` },
        ],
        // Short intervals keep the replacement test brief; the defaults are tested by the topology test.
        remote: { revalidateMs: 100 },
        resolveCacheMs: 0,
      });
      closeHandler = handler.close;
      ({ port, close } = await listen(handler));
    });
    after(async () => {
      await closeHandler();
      await close();
    });

    it('serves entries, ranges and gzip passthrough from the archive on nginx', { skip: nginxSkip }, async () => {
      const page = await get(port, '/');
      assert.equal(page.status, 200);
      assert.ok(page.body.equals(v1['index.html']));
      const part = await get(port, '/photo.jpg', { range: 'bytes=200000-265535' });
      assert.equal(part.status, 206);
      assert.ok(part.body.equals(v1['photo.jpg'].subarray(200_000, 265_536)));
      const gz = await get(port, '/app.css', { 'accept-encoding': 'gzip' });
      assert.equal(gz.status, 200);
      assert.equal(gz.headers['content-encoding'], 'gzip');
      assert.ok(gunzipSync(gz.body).equals(v1['app.css']));
      // Info-ZIP's deflate stream, passed through as written.
      const toolIndex = manifest.archives.find((a) => a.archive === 'infozip-deflate.zip')!.files.find((f) => f.name === 'index.html')!;
      const tgz = await get(port, '/tool/index.html', { 'accept-encoding': 'gzip' });
      assert.equal(tgz.headers['content-encoding'], 'gzip');
      assert.equal(sha256(gunzipSync(tgz.body)), toolIndex.sha256);
      const plain = await get(port, '/tool/index.html');
      assert.equal(plain.headers['content-encoding'], undefined);
      assert.equal(sha256(plain.body), toolIndex.sha256);
    });

    it('an archive renamed into place: the old version gets 412 from nginx, the new one is served, never mixed bytes', { skip: nginxSkip }, async () => {
      // A handle pinned to version 1 before the replacement, with nothing of its body cached yet.
      const pinned = remote();
      const oldFd = await pinned.open('/archives/site.zip');
      const etag1 = (await get(port, '/app.css')).headers.etag;
      replaceAtomically(join(dir, 'archives', 'site.zip'), zipOf(v2), 1_700_000_100);

      await assert.rejects(oldFd.readAt!(Buffer.alloc(100), 0), (err) => FopError.is(err, 'IO') && /replaced/.test(err.message));
      await oldFd.close();
      assert.ok(
        nginx!.accessLog().some((l) => /^GET \/archives\/site\.zip "bytes=0-\d+" "\\x22[^\\]+\\x22" "-" 412 /.test(l)),
        'nginx answered the old ETag with 412',
      );

      const deadline = Date.now() + 5000;
      let sawNew = false;
      while (!sawNew && Date.now() < deadline) {
        const [page, css, big] = await Promise.all([get(port, '/'), get(port, '/app.css'), get(port, '/photo.jpg', { range: 'bytes=5000-99999' })]);
        for (const [r, name, slice] of [
          [page, 'index.html', undefined],
          [css, 'app.css', undefined],
          [big, 'photo.jpg', [5000, 100_000]],
        ] as const) {
          // A response cut because the archive changed under it is allowed; a complete wrong one is not.
          if (r.status !== 200 && r.status !== 206) continue;
          const want = (v: Record<string, Buffer>): Buffer => (slice ? v[name]!.subarray(slice[0], slice[1]) : v[name]!);
          assert.ok(r.body.equals(want(v1)) || r.body.equals(want(v2)), `${name}: bytes of neither version`);
        }
        sawNew = page.body.equals(v2['index.html']) && css.body.equals(v2['app.css']) && big.body.equals(v2['photo.jpg'].subarray(5000, 100_000));
        if (!sawNew) await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(sawNew, 'the new version is served within 5 s');
      const css2 = await get(port, '/app.css');
      assert.notEqual(css2.headers.etag, etag1, 'a new version, a new ETag');
      assert.ok((await get(port, '/photo.jpg')).body.equals(v2['photo.jpg']));
    });
  });
});
