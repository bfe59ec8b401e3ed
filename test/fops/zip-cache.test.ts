import assert from 'node:assert/strict';
import { renameSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ZipFops, readAll, createFopReadStream } from '../../src/index.js';
import { noise, rmTree, tmpDir } from '../helpers/fixtures.js';
import { entryText as text } from '../helpers/zip-read.js';
import { makeZip } from '../helpers/zip-writer.js';

describe('archive index cache (src/cache LRU keyed by path, size, mtime, ctime, device, inode)', () => {
  const dir = tmpDir();
  after(() => rmTree(dir));
  const v1 = makeZip({ entries: [{ name: 'v.txt', data: 'version one' }] });
  const v2 = makeZip({
    entries: [
      { name: 'v.txt', data: 'version two!' },
      { name: 'new.txt', data: 'added' },
    ],
  });

  it('parses an unchanged archive once, however many opens', async () => {
    const path = join(dir, 'once.zip');
    writeFileSync(path, v1);
    const zip = new ZipFops();
    for (let i = 0; i < 20; i++) assert.equal(await text(zip, `${path}/v.txt`), 'version one');
    assert.equal(zip.stats.indexBuilds, 1);
  });

  it('parses concurrent first opens once (single flight)', async () => {
    const path = join(dir, 'flight.zip');
    writeFileSync(path, v1);
    const zip = new ZipFops();
    const all = await Promise.all(Array.from({ length: 50 }, () => text(zip, `${path}/v.txt`)));
    assert.ok(all.every((t) => t === 'version one'));
    assert.equal(zip.stats.indexBuilds, 1);
  });

  it('re-reads an archive rewritten in place, and one replaced by rename', async () => {
    const path = join(dir, 'changing.zip');
    writeFileSync(path, v1);
    const zip = new ZipFops();
    assert.equal(await text(zip, `${path}/v.txt`), 'version one');
    writeFileSync(path, v2);
    assert.equal(await text(zip, `${path}/v.txt`), 'version two!');
    assert.equal(await text(zip, `${path}/new.txt`), 'added');
    assert.equal(zip.stats.indexBuilds, 2);
    writeFileSync(join(dir, 'next.zip'), v1);
    renameSync(join(dir, 'next.zip'), path);
    assert.equal(await text(zip, `${path}/v.txt`), 'version one');
    assert.equal(zip.stats.indexBuilds, 3);
    assert.equal(zip.stats.cachedArchives, 1, 'the stale index of the same path was dropped');
  });

  it('re-reads an archive of the same size whose mtime changed', async () => {
    const path = join(dir, 'touched.zip');
    writeFileSync(path, v1);
    const zip = new ZipFops();
    await text(zip, `${path}/v.txt`);
    utimesSync(path, new Date(2001, 1, 1), new Date(2001, 1, 1));
    await text(zip, `${path}/v.txt`);
    assert.equal(zip.stats.indexBuilds, 2);
  });

  it('keeps an open handle reading the archive it was opened on after a replace', async () => {
    const path = join(dir, 'swap.zip');
    const big = noise(500_000, 11);
    writeFileSync(path, makeZip({ entries: [{ name: 'n.bin', data: big, method: 0 }] }));
    const zip = new ZipFops();
    const fd = await zip.open(`${path}/n.bin`);
    writeFileSync(join(dir, 'swap.tmp'), v2);
    renameSync(join(dir, 'swap.tmp'), path);
    assert.equal(await text(zip, `${path}/v.txt`), 'version two!');
    assert.ok((await readAll(fd)).equals(big), 'the old handle still reads the old archive');
    await fd.close();
  });

  it('evicts by count, and handles on an evicted archive stay valid until closed', async () => {
    const zip = new ZipFops({ cache: { maxArchives: 2 } });
    const paths = [0, 1, 2].map((i) => {
      const p = join(dir, `lru${i}.zip`);
      writeFileSync(p, makeZip({ entries: [{ name: 'n.bin', data: noise(100_000, i + 1), method: 0 }] }));
      return p;
    });
    const held = await zip.open(`${paths[0]}/n.bin`);
    await text(zip, `${paths[1]}/n.bin`);
    await text(zip, `${paths[2]}/n.bin`);
    assert.equal(zip.stats.cachedArchives, 2);
    assert.ok((await readAll(held)).equals(noise(100_000, 1)), 'evicted archive still readable through its open handle');
    await held.close();
    await text(zip, `${paths[0]}/n.bin`);
    assert.equal(zip.stats.indexBuilds, 4, 'the evicted archive was indexed again');
  });

  it('evicts by total indexed entries', async () => {
    const zip = new ZipFops({ cache: { maxIndexedEntries: 150 } });
    for (let i = 0; i < 3; i++) {
      const p = join(dir, `weight${i}.zip`);
      writeFileSync(p, makeZip({ entries: Array.from({ length: 100 }, (_, k) => ({ name: `f${k}`, data: `${k}` })) }));
      await text(zip, `${p}/f7`);
    }
    assert.equal(zip.stats.cachedArchives, 1);
  });

  it('serves 200 concurrent reads of one archive correctly (positional reads, no shared cursor)', async () => {
    const path = join(dir, 'concurrent.zip');
    const entries = Array.from({ length: 20 }, (_, i) => ({ name: `e${i}.bin`, data: noise(64 * 1024, i + 100), method: i % 2 === 0 ? 0 : 8 }));
    writeFileSync(path, makeZip({ entries }));
    const zip = new ZipFops();
    const results = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const e = entries[i % entries.length]!;
        const fd = await zip.open(`${path}/${e.name}`);
        const chunks: Buffer[] = [];
        await new Promise<void>((resolve, reject) => {
          createFopReadStream(fd, { highWaterMark: 4096 })
            .on('data', (c: Buffer) => chunks.push(c))
            .on('end', resolve)
            .on('error', reject);
        });
        return Buffer.concat(chunks).equals(e.data);
      }),
    );
    assert.equal(results.filter(Boolean).length, 200);
  });

  it('close() closes every archive no handle is using, and the rest when their handles close', async () => {
    const { PlatFops } = await import('../../src/index.js');
    const closed: string[] = [];
    class Tracking extends PlatFops {
      override async open(path: string, flags = 0) {
        const fd = await super.open(path, flags);
        const close = fd.close.bind(fd);
        return Object.assign(fd, { close: async () => (closed.push(path), close()) });
      }
    }
    const a = join(dir, 'close-a.zip');
    const b = join(dir, 'close-b.zip');
    writeFileSync(a, v1);
    writeFileSync(b, v1);
    const zip = new ZipFops({ source: new Tracking() });
    await text(zip, `${a}/v.txt`);
    const held = await zip.open(`${b}/v.txt`);
    await zip.close();
    assert.deepEqual(closed, [a]);
    assert.equal(zip.stats.cachedArchives, 0);
    await held.close();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(closed.sort(), [a, b].sort());
  });

  it('clear() drops every index', async () => {
    const path = join(dir, 'clear.zip');
    writeFileSync(path, v1);
    const zip = new ZipFops();
    await text(zip, `${path}/v.txt`);
    zip.clear();
    assert.equal(zip.stats.cachedArchives, 0);
    await text(zip, `${path}/v.txt`);
    assert.equal(zip.stats.indexBuilds, 2);
  });
});
