import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { FopError, FopFlags, MemFops, PlatFops, Vfs, readAll, type FileOps, type FopFd, type FopStat } from '../../src/index.js';
import { prose, rmTree, tmpDir } from '../helpers/fixtures.js';
import { fopErrorCode } from '../helpers/errors.js';
import { makeZip } from '../helpers/zip-writer.js';

class Counting extends PlatFops {
  stats: string[] = [];
  opens: string[] = [];
  override async stat(path: string): Promise<FopStat> {
    this.stats.push(path);
    return super.stat(path);
  }
  override async open(path: string, flags = 0): Promise<FopFd> {
    this.opens.push(path);
    return super.open(path, flags);
  }
}

async function text(vfs: FileOps, path: string, flags = 0): Promise<string> {
  const fd = await vfs.open(path, flags);
  try {
    return (await readAll(fd)).toString();
  } finally {
    await fd.close();
  }
}

describe('Vfs: choosing the backend by path signature', () => {
  const dir = tmpDir();
  after(() => rmTree(dir));
  const site = makeZip({
    entries: [
      { name: 'index.html', data: 'zip index' },
      { name: 'css/app.css', data: prose(3000) },
      { name: 'inner.zip', data: makeZip({ entries: [{ name: 'x', data: 'nested' }] }), method: 0 },
    ],
  });
  writeFileSync(join(dir, 'site.zip'), site);
  writeFileSync(join(dir, 'UPPER.ZIP'), site);
  writeFileSync(join(dir, 'app.jar'), site);
  writeFileSync(join(dir, 'app.war'), site);
  writeFileSync(join(dir, 'fake.zip'), 'this is not an archive');
  mkdirSync(join(dir, 'folder.zip', 'deeper'), { recursive: true });
  writeFileSync(join(dir, 'folder.zip', 'deeper', 'plain.txt'), 'a real directory named folder.zip');
  writeFileSync(join(dir, 'folder.zip', 'real.zip'), site);
  writeFileSync(join(dir, 'plain.txt'), 'plain disk file');

  it('serves archive members and plain files through one open()', async () => {
    const vfs = new Vfs();
    assert.equal(await text(vfs, join(dir, 'site.zip/index.html')), 'zip index');
    assert.equal(await text(vfs, join(dir, 'plain.txt')), 'plain disk file');
    assert.equal(await text(vfs, join(dir, 'app.jar/index.html')), 'zip index');
    assert.equal(await text(vfs, join(dir, 'app.war/index.html')), 'zip index');
  });

  it('matches signatures case-insensitively', async () => {
    assert.equal(await text(new Vfs(), join(dir, 'UPPER.ZIP/index.html')), 'zip index');
    assert.equal(await text(new Vfs(), join(dir, 'site.zip/css/app.css')), prose(3000).toString());
  });

  it('treats a directory called x.zip as a directory and keeps looking past it', async () => {
    const vfs = new Vfs();
    assert.equal(await text(vfs, join(dir, 'folder.zip/deeper/plain.txt')), 'a real directory named folder.zip');
    assert.equal(await text(vfs, join(dir, 'folder.zip/real.zip/index.html')), 'zip index');
    assert.equal((await vfs.stat(join(dir, 'folder.zip/deeper'))).type, 'directory');
  });

  it('ZipFops alone passes over directories named x.zip the same way', async () => {
    const { ZipFops } = await import('../../src/index.js');
    const zip = new ZipFops();
    assert.equal(await text(zip, join(dir, 'folder.zip/real.zip/index.html')), 'zip index');
    assert.equal(await fopErrorCode(zip.open(join(dir, 'folder.zip/deeper/plain.txt'))), 'NOT_FOUND');
  });

  it('enters an archive inside an archive (the zip backend resolves the nesting), and the inner archive is still a file', async () => {
    assert.equal(await text(new Vfs(), join(dir, 'site.zip/inner.zip/x')), 'nested');
    assert.equal(await fopErrorCode(new Vfs({ zip: { limits: { maxDepth: 0 } } }).open(join(dir, 'site.zip/inner.zip/x'))), 'LIMIT_EXCEEDED');
    assert.equal((await new Vfs().stat(join(dir, 'site.zip/inner.zip'))).type, 'file');
  });

  it('serves the archive file itself when nothing follows the signature', async () => {
    const fd = await new Vfs().open(join(dir, 'site.zip'));
    assert.equal(fd.length, site.length);
    assert.equal(fd.flags & FopFlags.VIRTUAL, 0);
    await fd.close();
  });

  it('gives clear errors: missing archive, missing member, non-archive, directory member', async () => {
    const vfs = new Vfs();
    assert.equal(await fopErrorCode(vfs.open(join(dir, 'missing.zip/index.html'))), 'NOT_FOUND');
    assert.equal(await fopErrorCode(vfs.open(join(dir, 'site.zip/missing.html'))), 'NOT_FOUND');
    assert.equal(await fopErrorCode(vfs.open(join(dir, 'fake.zip/index.html'))), 'CORRUPT_ARCHIVE');
    assert.equal(await fopErrorCode(vfs.open(join(dir, 'site.zip/css'))), 'NOT_A_FILE');
    const err = (await vfs.open(join(dir, 'missing.zip/index.html')).catch((e: unknown) => e)) as FopError;
    assert.equal(err.path, join(dir, 'missing.zip/index.html'), 'the error names the path asked for');
  });

  it('costs no stat for paths without a signature, and opens each archive once while it is unchanged', async () => {
    const base = new Counting();
    const vfs = new Vfs({ base });
    await text(vfs, join(dir, 'plain.txt'));
    assert.deepEqual(base.stats, []);
    for (let i = 0; i < 5; i++) await text(vfs, join(dir, 'site.zip/index.html'));
    assert.deepEqual(base.stats, Array(5).fill(join(dir, 'site.zip')));
    assert.deepEqual(
      base.opens.filter((p) => p.endsWith('site.zip')),
      [join(dir, 'site.zip')],
      'the subclass sees the archive open, once',
    );
  });

  it('routes prefix namespaces to their own backend', async () => {
    const mem = new MemFops({
      '/virtual/hello.txt': 'from memory',
      '/virtual/pack.zip': makeZip({ entries: [{ name: 'a.txt', data: 'in a zip in memory' }] }),
    });
    const vfs = new Vfs({ prefixes: [{ prefix: '/virtual', fops: mem }] });
    assert.equal(await text(vfs, '/virtual/hello.txt'), 'from memory');
    const fd = await vfs.open('/virtual/hello.txt');
    assert.ok(fd.flags & FopFlags.VIRTUAL);
    await fd.close();
    assert.equal(await text(vfs, join(dir, 'plain.txt')), 'plain disk file');
    assert.equal(await fopErrorCode(vfs.open('/virtualx/hello.txt')), 'NOT_FOUND'); // segment boundary, then disk
    // Archives inside a prefix namespace: a Vfs with that backend as its base.
    assert.equal(await text(new Vfs({ base: mem }), '/virtual/pack.zip/a.txt'), 'in a zip in memory');
  });

  it('rejects non-canonical paths before touching any backend', async () => {
    const base = new Counting();
    const vfs = new Vfs({ base });
    for (const p of ['site.zip/index.html', `${dir}/site.zip/../site.zip/index.html`, `${dir}//site.zip/index.html`, `${dir}/site.zip/index.html/`]) {
      assert.equal(await fopErrorCode(vfs.open(p)), 'INVALID_PATH', p);
    }
    assert.deepEqual(base.stats, []);
    assert.deepEqual(base.opens, []);
  });

  it('refuses writes into archives', async () => {
    assert.equal(await fopErrorCode(new Vfs().open(join(dir, 'site.zip/index.html'), 2 /* O_RDWR */)), 'READ_ONLY');
  });
});
