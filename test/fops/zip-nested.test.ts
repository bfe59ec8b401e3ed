// Archives inside archives (issue 8 §3): entries reached through one or more archives inside the
// outermost, read in place (stored) or through the inner entry's handle (deflated), never extracted.
// The tool-made fixtures are in test/fixtures/zip/nested/ (make.sh there; manifest.json holds the
// size and SHA-256 of what `unzip -p` gives, level by level); hostile cases come from zip-writer.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, realpathSync, renameSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { FopError, FopFlags, Vfs, ZipFops, createFopReadStream, readAll, type FopFd, type ZipFopsOptions } from '../../src/index.js';
import { fixture, noise, prose, rmTree, tmpDir } from '../helpers/fixtures.js';
import { fopErrorCode } from '../helpers/errors.js';
import { makeZip } from '../helpers/zip-writer.js';

interface ManifestFile {
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
  /** The method of each level on the way, outermost first; the last is the file's own. */
  readonly methods: readonly ('stored' | 'deflated')[];
}

const nested = (...parts: string[]): string => fixture('zip', 'nested', ...parts);
const manifest = (JSON.parse(readFileSync(nested('manifest.json'), 'utf8')) as { files: ManifestFile[] }).files;
const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');
/** Archives a path passes through inside the outermost one. */
const depthOf = (f: ManifestFile): number => f.methods.length - 1;

async function readWhole(zip: ZipFops | Vfs, path: string, flags = 0): Promise<{ data: Buffer; fd: FopFd }> {
  const fd = await zip.open(path, flags);
  try {
    return { data: await readAll(fd), fd };
  } finally {
    await fd.close();
  }
}

function streamRange(fd: FopFd, start: number, end: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    createFopReadStream(fd, { start, end, autoClose: false, highWaterMark: 5000 })
      .on('data', (c: Buffer) => chunks.push(c))
      .on('end', () => resolve(Buffer.concat(chunks)))
      .on('error', reject);
  });
}

async function assertNoLeaks(zip: ZipFops): Promise<void> {
  await zip.close();
  assert.deepEqual({ archives: zip.stats.openArchives, entries: zip.stats.openEntries }, { archives: 0, entries: 0 });
}

// Both ways a deflated inner archive is read: from the inflated-content cache (small entries),
// and through the streaming inflater's positional reads (cache off).
const configs: readonly [string, ZipFopsOptions][] = [
  ['default options', {}],
  ['inflate cache off (the inflater serves every deflated level)', { inflateCache: { maxBytes: 0 } }],
];

describe('archives inside archives: tool-made fixtures, every byte as unzip -p gives it', () => {
  it('the manifest covers stored and deflated inner archives, depth 2 and depth 3', () => {
    assert.ok(manifest.some((f) => depthOf(f) === 1 && f.methods[0] === 'stored'));
    assert.ok(manifest.some((f) => depthOf(f) === 1 && f.methods[0] === 'deflated'));
    assert.ok(manifest.some((f) => depthOf(f) === 2));
    assert.ok(manifest.some((f) => depthOf(f) === 3));
  });

  for (const [name, options] of configs) {
    it(`${name}: every file up to maxDepth has unzip's bytes, in both forms; deeper is LIMIT_EXCEEDED`, async () => {
      const zip = new ZipFops(options);
      const vfs = new Vfs({ containers: [zip] });
      for (const f of manifest) {
        const path = nested(f.path);
        if (depthOf(f) > zip.limits.maxDepth) {
          const err = await vfs.open(path).catch((e: unknown) => e);
          assert.ok(FopError.is(err, 'LIMIT_EXCEEDED'), `${f.path}: ${String(err)}`);
          assert.match(err.message, /maxDepth/);
          continue;
        }
        const { data, fd } = await readWhole(vfs, path);
        assert.equal(data.length, f.size, f.path);
        assert.equal(sha256(data), f.sha256, f.path);
        assert.equal(fd.flags & FopFlags.COMPR_IS_GZIP, 0);
        const st = await vfs.stat(path);
        assert.equal(st.type, 'file');
        assert.equal(st.size, f.size);
        assert.equal(st.gzipAvailable, f.methods.at(-1) === 'deflated' && f.size > 0, f.path);
        if (st.gzipAvailable) {
          const gz = await readWhole(vfs, path, FopFlags.COMPR_ACCEPTABLE_GZIP);
          assert.notEqual(gz.fd.flags & FopFlags.COMPR_IS_GZIP, 0, `${f.path}: gzip form`);
          assert.equal(sha256(gunzipSync(gz.data)), f.sha256, `${f.path}: gunzipped`);
        }
      }
      await assertNoLeaks(zip);
    });
  }

  it('maxDepth 3 serves the file three archives down; maxDepth 0 enters none but serves the inner archive as a file', async () => {
    const deep = manifest.find((f) => depthOf(f) === 3)!;
    const three = new ZipFops({ limits: { maxDepth: 3 } });
    assert.equal(sha256((await readWhole(three, nested(deep.path))).data), deep.sha256);
    await assertNoLeaks(three);
    const none = new ZipFops({ limits: { maxDepth: 0 } });
    assert.equal(await fopErrorCode(none.open(nested('stored-inner.zip/docs/manual.zip/index.html'))), 'LIMIT_EXCEEDED');
    assert.equal(await fopErrorCode(none.stat(nested('stored-inner.zip/docs/manual.zip/index.html'))), 'LIMIT_EXCEEDED');
    const inner = manifest.find((f) => f.path === 'stored-inner.zip/docs/manual.zip')!;
    assert.equal(sha256((await readWhole(none, nested(inner.path))).data), inner.sha256);
    await assertNoLeaks(none);
  });

  it('opens /app.war/WEB-INF/lib/lib.jar/META-INF/MANIFEST.MF (jar in a war, both by jar)', async () => {
    const zip = new ZipFops();
    const { data } = await readWhole(zip, nested('app.war/WEB-INF/lib/lib.jar/META-INF/MANIFEST.MF'));
    assert.match(data.toString(), /^Manifest-Version: 1\.0\r?\n/);
    assert.equal(
      (await readWhole(zip, nested('app.war/WEB-INF/lib/lib.jar/com/example/messages.properties'))).data.toString(),
      'greeting=hello from lib.jar\n',
    );
    await assertNoLeaks(zip);
  });

  it('stat, index and realPath work for nested paths', async () => {
    const zip = new ZipFops();
    const vfs = new Vfs({ containers: [zip] });
    const inner = nested('deflated-inner.zip/docs/manual.zip');
    assert.equal((await vfs.stat(inner)).type, 'file', 'the inner archive is an entry');
    const index = await zip.index(inner);
    assert.deepEqual([...index.files.keys()].sort(), ['empty.txt', 'guide.txt', 'index.html', 'logo.bin']);
    assert.deepEqual([...(await zip.index(nested('depth3.zip/l1.zip/l2.zip'))).files.keys()].sort(), ['l2.txt', 'l3.zip']);
    assert.equal(await fopErrorCode(zip.index(nested('depth3.zip/l1.zip/l2.zip/l3.zip'))), 'LIMIT_EXCEEDED');
    assert.equal(await fopErrorCode(zip.index(nested('deflated-inner.zip/docs'))), 'NOT_FOUND');
    assert.equal(await fopErrorCode(zip.index(nested('deflated-inner.zip/docs/missing.zip'))), 'NOT_FOUND');
    assert.equal(await fopErrorCode(zip.index(nested('deflated-inner.zip/readme.txt'))), 'CORRUPT_ARCHIVE', 'a file that is not an archive');
    const dirStat = await vfs.stat(nested('depth3.zip/l1.zip/l2.zip/l3.zip'));
    assert.equal(dirStat.type, 'file');
    assert.equal(await fopErrorCode(vfs.stat(nested('deflated-inner.zip/docs/manual.zip/missing.txt'))), 'NOT_FOUND');
    assert.equal(await fopErrorCode(vfs.open(nested('deflated-inner.zip/docs/manual.zip/missing.txt'))), 'NOT_FOUND');
    const outerReal = realpathSync(nested('deflated-inner.zip'));
    assert.equal(await vfs.realPath(`${inner}/guide.txt`), outerReal);
    assert.equal(await vfs.realPath(nested('depth3.zip/l1.zip/l2.zip/l2.txt')), realpathSync(nested('depth3.zip')));
    await assertNoLeaks(zip);
  });

  it('a directory entry named pkg.zip/ is a directory, and an archive inside it is entered', async () => {
    const zip = new ZipFops();
    assert.equal((await zip.stat(nested('dir-named-zip.zip/pkg.zip'))).type, 'directory');
    assert.equal(await fopErrorCode(zip.open(nested('dir-named-zip.zip/pkg.zip'))), 'NOT_A_FILE');
    assert.equal((await readWhole(zip, nested('dir-named-zip.zip/pkg.zip/plain.txt'))).data.toString(), 'a plain file in a directory named pkg.zip\n');
    assert.equal((await readWhole(zip, nested('dir-named-zip.zip/pkg.zip/inner.zip/f.txt'))).data.toString(), 'inside inner.zip\n');
    assert.equal((await zip.stat(nested('dir-named-zip.zip/pkg.zip/inner.zip/f.txt'))).size, 17);
    await assertNoLeaks(zip);
  });

  for (const [name, options] of configs) {
    it(`${name}: Range reads at several offsets of an entry inside a deflated inner archive, in any order`, async () => {
      const zip = new ZipFops(options);
      const path = nested('deflated-inner.zip/docs/manual.zip/guide.txt');
      const f = manifest.find((m) => m.path === 'deflated-inner.zip/docs/manual.zip/guide.txt')!;
      assert.deepEqual(f.methods, ['deflated', 'stored']);
      const { data: whole } = await readWhole(zip, path);
      assert.equal(sha256(whole), f.sha256);
      const fd = await zip.open(path);
      // Backward as well as forward: a backward read on the inner archive's inflater restarts it.
      const ranges: [number, number][] = [
        [100_000, 100_099],
        [0, 0],
        [f.size - 1, f.size - 1],
        [65_535, 65_536 + 4096],
        [1, 70_000],
        [f.size - 5000, f.size - 1],
        [33_333, 33_333 + 17],
      ];
      for (const [start, end] of ranges) {
        assert.ok((await streamRange(fd, start, end)).equals(whole.subarray(start, end + 1)), `bytes ${start}-${end}`);
        if (fd.readAt) {
          const buf = Buffer.alloc(end - start + 1);
          const n = await fd.readAt(buf, start);
          assert.ok(n > 0 && buf.subarray(0, n).equals(whole.subarray(start, start + n)), `readAt ${start}`);
        }
      }
      const concurrent = await Promise.all(
        ranges.map(async ([start, end]) => {
          const h = await zip.open(path);
          try {
            return (await streamRange(h, start, end)).equals(whole.subarray(start, end + 1));
          } finally {
            await h.close();
          }
        }),
      );
      assert.deepEqual(
        concurrent,
        ranges.map(() => true),
        'concurrent handles over one inner archive',
      );
      await fd.close();
      await assertNoLeaks(zip);
    });
  }

  it('gzip passthrough of an entry of a stored inner archive: its deflate bytes are a slice of the outer file', async () => {
    const zip = new ZipFops();
    const f = manifest.find((m) => m.path === 'stored-inner.zip/docs/manual.zip/guide.txt')!;
    assert.deepEqual(f.methods, ['stored', 'deflated']);
    const path = nested(f.path);
    const gz = await zip.open(path, FopFlags.COMPR_ACCEPTABLE_GZIP);
    assert.notEqual(gz.flags & FopFlags.COMPR_IS_GZIP, 0);
    const member = await readAll(gz);
    assert.equal(sha256(gunzipSync(member)), f.sha256);
    const raw = member.subarray(10, member.length - 8);
    assert.ok(readFileSync(nested('stored-inner.zip')).includes(raw), 'the raw deflate data is in the outer file as it is');
    for (const [start, end] of [
      [0, 9],
      [5, 5000],
      [member.length - 20, member.length - 1],
      [4096, 8191],
    ] as const) {
      assert.ok((await streamRange(gz, start, end)).equals(member.subarray(start, end + 1)), `gzip bytes ${start}-${end}`);
    }
    await gz.close();
    await assertNoLeaks(zip);
  });

  it('no handle leaks: many concurrent opens across levels, eviction with handles open, then close()', async () => {
    const zip = new ZipFops({ cache: { maxArchives: 1 }, inflateCache: { maxBytes: 0 } });
    const files = manifest.filter((f) => depthOf(f) >= 1 && depthOf(f) <= 2);
    const held = await Promise.all(files.map((f) => zip.open(nested(f.path))));
    assert.ok(zip.stats.openArchives > 1, 'archives stay open under their handles after eviction');
    const read = await Promise.all(held.map(async (fd) => sha256(await readAll(fd))));
    assert.deepEqual(
      read,
      files.map((f) => f.sha256),
    );
    await zip.close();
    assert.ok(zip.stats.openArchives > 0, 'open handles keep their chain open through close()');
    await Promise.all(held.map((fd) => fd.close()));
    await assertNoLeaks(zip);
  });
});

describe('archives inside archives: hostile and changing archives (zip-writer)', () => {
  const dir = tmpDir('vfserve-nested-');
  after(() => rmTree(dir));

  it('an inner archive with a bad central directory is refused for what is inside it, once per version; the rest serves', async () => {
    const good = makeZip({ entries: [{ name: 'a.txt', data: 'inside' }] });
    const bad = makeZip({ entries: [{ name: 'a.txt', data: 'inside' }], eocd: { cdOffset: 3 } });
    const path = join(dir, 'bad-inner.zip');
    writeFileSync(
      path,
      makeZip({
        entries: [
          { name: 'ok.txt', data: 'outer ok' },
          { name: 'good.zip', data: good, method: 0 },
          { name: 'bad.zip', data: bad, method: 0 },
          { name: 'bad-deflated.zip', data: bad },
        ],
      }),
    );
    const zip = new ZipFops();
    for (const inner of ['bad.zip', 'bad-deflated.zip']) {
      const first = await zip.open(`${path}/${inner}/a.txt`).catch((e: unknown) => e);
      assert.ok(FopError.is(first, 'CORRUPT_ARCHIVE'), String(first));
      assert.equal(first.op, 'index');
      assert.equal(first.path, `${path}/${inner}`, 'the error names the inner archive');
      const again = await zip.stat(`${path}/${inner}/a.txt`).catch((e: unknown) => e);
      assert.equal(again, first, 'the refusal is cached for this version: the same error object');
      assert.ok((await readWhole(zip, `${path}/${inner}`)).data.equals(bad), 'the inner archive is still served as a file');
    }
    assert.equal((await readWhole(zip, `${path}/ok.txt`)).data.toString(), 'outer ok');
    assert.equal((await readWhole(zip, `${path}/good.zip/a.txt`)).data.toString(), 'inside');
    await assertNoLeaks(zip);
  });

  it('a zip bomb over maxRatio only across levels is refused; each level alone is under it', async () => {
    // Inner entry: 1 KB of noise then zeros (about 29:1). Inner archive: that, plus 40 KB of stored
    // zeros, so the outer archive deflates it at about 37:1. Together about 1,000:1.
    const bombData = Buffer.concat([noise(1000, 7), Buffer.alloc(29_000)]);
    const inner = makeZip({
      entries: [
        { name: 'bomb.bin', data: bombData },
        { name: 'pad.bin', data: Buffer.alloc(40_000), method: 0 },
      ],
    });
    const path = join(dir, 'split-bomb.zip');
    writeFileSync(path, makeZip({ entries: [{ name: 'inner.zip', data: inner }] }));
    const limits = { maxRatio: 50, ratioMinSize: 1024 };
    const zip = new ZipFops({ limits });
    const outerIndex = await zip.index(path);
    const innerIndex = await zip.index(`${path}/inner.zip`);
    const ratio = (index: typeof outerIndex, name: string): number => {
      const e = index.get(name)!;
      return e.size / e.compressedSize;
    };
    const outerRatio = ratio(outerIndex, 'inner.zip');
    const bombRatio = ratio(innerIndex, 'bomb.bin');
    assert.ok(outerRatio < 50 && bombRatio < 50 && outerRatio * bombRatio > 50, `${outerRatio} × ${bombRatio}`);
    const err = await zip.open(`${path}/inner.zip/bomb.bin`).catch((e: unknown) => e);
    assert.ok(FopError.is(err, 'LIMIT_EXCEEDED'), String(err));
    assert.match(err.message, /ratio exceeds the limit of 50:1 across the archives/);
    // In both forms: passthrough would hand the whole product to the client.
    assert.equal(await fopErrorCode(zip.open(`${path}/inner.zip/bomb.bin`, FopFlags.COMPR_ACCEPTABLE_GZIP)), 'LIMIT_EXCEEDED');
    // A stored entry is amplified by the levels above it alone (about 37:1 here): within the limit.
    assert.ok((await readWhole(zip, `${path}/inner.zip/pad.bin`)).data.equals(Buffer.alloc(40_000)));
    const tighter = new ZipFops({ limits: { maxRatio: 20, ratioMinSize: 1024 } });
    assert.equal(await fopErrorCode(tighter.open(`${path}/inner.zip/pad.bin`)), 'LIMIT_EXCEEDED', 'stored, but 37:1 through the level above');
    const looser = new ZipFops({ limits: { maxRatio: 2000, ratioMinSize: 1024 } });
    assert.ok((await readWhole(looser, `${path}/inner.zip/bomb.bin`)).data.equals(bombData), 'the same archive under a higher limit');
    for (const z of [zip, tighter, looser]) await assertNoLeaks(z);
  });

  it('depth 3 is refused with LIMIT_EXCEEDED (generated chain), and each archive is still an entry', async () => {
    const d = makeZip({ entries: [{ name: 'f.txt', data: 'four levels' }] });
    const c = makeZip({ entries: [{ name: 'd.zip', data: d }] });
    const b = makeZip({ entries: [{ name: 'c.zip', data: c, method: 0 }] });
    const path = join(dir, 'a.zip');
    writeFileSync(path, makeZip({ entries: [{ name: 'b.zip', data: b }] }));
    const zip = new ZipFops();
    const err = await zip.open(`${path}/b.zip/c.zip/d.zip/f.txt`).catch((e: unknown) => e);
    assert.ok(FopError.is(err, 'LIMIT_EXCEEDED'), String(err));
    assert.equal(err.op, 'open');
    assert.equal(err.path, `${path}/b.zip/c.zip/d.zip/f.txt`);
    assert.ok((await readWhole(zip, `${path}/b.zip/c.zip/d.zip`)).data.equals(d));
    assert.equal((await readWhole(new ZipFops({ limits: { maxDepth: 3 } }), `${path}/b.zip/c.zip/d.zip/f.txt`)).data.toString(), 'four levels');
    await assertNoLeaks(zip);
  });

  it('replacing the outer archive (same inner size and mtime, different inner content) serves the new content', async () => {
    const version = (text: string): Buffer =>
      makeZip({
        entries: [
          { name: 'lib.jar', data: makeZip({ entries: [{ name: 'f.txt', data: text }] }), method: 0 },
          { name: 'pad.txt', data: prose(100) },
        ],
      });
    const v1 = version('version one');
    const v2 = version('version two');
    assert.equal(v1.length, v2.length);
    const path = join(dir, 'replaced.zip');
    const when = new Date('2024-05-06T07:08:09Z');
    const install = (data: Buffer, how: 'rename' | 'in place'): void => {
      if (how === 'rename') {
        writeFileSync(`${path}.tmp`, data);
        utimesSync(`${path}.tmp`, when, when);
        renameSync(`${path}.tmp`, path);
      } else {
        writeFileSync(path, data);
        utimesSync(path, when, when);
      }
    };
    const zip = new ZipFops();
    const vfs = new Vfs({ containers: [zip] });
    // A second archive backend over the Vfs, entering .jar/ only: it opens lib.jar as a file of the
    // Vfs, whose stat (an entry's: no inode) must still tell the two versions apart.
    const jars = new ZipFops({ source: vfs, signatures: ['.jar/'] });
    const read = async (fops: Vfs | ZipFops): Promise<string> => (await readWhole(fops, `${path}/lib.jar/f.txt`)).data.toString();
    install(v1, 'rename');
    assert.equal(await read(vfs), 'version one');
    assert.equal(await read(jars), 'version one');
    const before = await vfs.stat(`${path}/lib.jar`);
    install(v2, 'rename');
    const after = await vfs.stat(`${path}/lib.jar`);
    assert.equal(after.size, before.size);
    assert.equal(after.modTime, before.modTime);
    assert.equal(await read(vfs), 'version two');
    assert.equal(await read(jars), 'version two');
    install(v1, 'in place');
    assert.equal(await read(vfs), 'version one');
    assert.equal(await read(jars), 'version one');
    assert.equal(zip.stats.cachedArchives, 2, 'the stale chain was dropped: one outer archive and one inner');
    await jars.close();
    await assertNoLeaks(jars);
    await assertNoLeaks(zip);
  });

  it('the inner archives of a replaced outer archive are dropped with it, and the old file closes', async () => {
    const version = (text: string): Buffer =>
      makeZip({
        entries: [
          { name: 'in.zip', data: makeZip({ entries: [{ name: 'f.txt', data: text }] }) },
          { name: 'top.txt', data: text },
        ],
      });
    const path = join(dir, 'cascade.zip');
    writeFileSync(path, version('one'));
    const zip = new ZipFops();
    assert.equal((await readWhole(zip, `${path}/in.zip/f.txt`)).data.toString(), 'one');
    assert.deepEqual([zip.stats.cachedArchives, zip.stats.openArchives], [2, 2]);
    writeFileSync(`${path}.tmp`, version('two'));
    renameSync(`${path}.tmp`, path);
    // Only the outer archive is read: its old version goes, and the inner archive that pinned it.
    assert.equal((await readWhole(zip, `${path}/top.txt`)).data.toString(), 'two');
    // The old file's close is under way: give it a moment.
    for (let i = 0; i < 100 && zip.stats.openArchives > 1; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.deepEqual([zip.stats.cachedArchives, zip.stats.openArchives, zip.stats.openEntries], [1, 1, 0]);
    await assertNoLeaks(zip);
  });

  it('a handle keeps its whole chain open after the outer archive is replaced', async () => {
    const big = noise(300_000, 5);
    const path = join(dir, 'held.zip');
    writeFileSync(join(dir, 'held-inner.zip'), makeZip({ entries: [{ name: 'big.bin', data: big }] }));
    writeFileSync(path, makeZip({ entries: [{ name: 'in.zip', data: readFileSync(join(dir, 'held-inner.zip')) }] }));
    const zip = new ZipFops({ inflateCache: { maxBytes: 0 } });
    const fd = await zip.open(`${path}/in.zip/big.bin`);
    writeFileSync(`${path}.tmp`, makeZip({ entries: [{ name: 'in.zip', data: makeZip({ entries: [{ name: 'big.bin', data: 'new' }] }) }] }));
    renameSync(`${path}.tmp`, path);
    assert.equal((await readWhole(zip, `${path}/in.zip/big.bin`)).data.toString(), 'new');
    assert.ok((await readAll(fd)).equals(big), 'the old handle reads the old chain');
    await fd.close();
    await assertNoLeaks(zip);
  });
});
