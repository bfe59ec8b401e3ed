import assert from 'node:assert/strict';
import { closeSync, openSync, renameSync, statSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { FopError, MemFops, ZipFops, readAll } from '../../src/index.js';
import { noise, rmTree, tmpDir } from '../helpers/fixtures.js';
import { makeZip } from '../helpers/zip-writer.js';

const FIXED_MTIME = new Date(Date.UTC(2020, 0, 1, 0, 0, 0));

async function text(zip: ZipFops, path: string): Promise<string> {
  const fd = await zip.open(path);
  try {
    return (await readAll(fd)).toString();
  } finally {
    await fd.close();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Puts `bytes` at `path` (in place, or by rename over it) and restores the
 * fixed mtime, as `touch -r` or `rsync -a` would; waits until the ctime has
 * moved past `before` (ctime ticks are coarse) so the only trace of the change is the ctime or inode.
 */
async function replaceKeepingMtime(path: string, bytes: Buffer, how: 'in-place' | 'rename', before: number): Promise<void> {
  if (how === 'in-place') writeFileSync(path, bytes);
  else {
    writeFileSync(`${path}.tmp`, bytes);
    renameSync(`${path}.tmp`, path);
  }
  utimesSync(path, FIXED_MTIME, FIXED_MTIME);
  while (statSync(path).ctimeMs === before) {
    await sleep(5);
    utimesSync(path, FIXED_MTIME, FIXED_MTIME);
  }
}

function put(path: string, bytes: Buffer): number {
  writeFileSync(path, bytes);
  utimesSync(path, FIXED_MTIME, FIXED_MTIME);
  return statSync(path).ctimeMs;
}

describe('archive identity includes the ctime', () => {
  const dir = tmpDir();
  after(() => rmTree(dir));

  it('re-indexes an archive rewritten in place with its size and mtime restored', async () => {
    const path = join(dir, 'touch-r.zip');
    // Same size, but the entry moves: a stale index would read the wrong place.
    const one = makeZip({ entries: [{ name: 's.txt', data: 'version one', method: 0 }, { name: 'pad.txt', data: 'padding', method: 0 }] });
    const two = makeZip({ entries: [{ name: 'pad.txt', data: 'padding', method: 0 }, { name: 's.txt', data: 'version TWO', method: 0 }] });
    assert.equal(one.length, two.length);
    const before = put(path, one);
    const zip = new ZipFops();
    assert.equal(await text(zip, `${path}/s.txt`), 'version one');
    await replaceKeepingMtime(path, two, 'in-place', before);
    const st = statSync(path);
    assert.equal(st.size, one.length);
    assert.equal(st.mtimeMs, FIXED_MTIME.getTime());
    assert.equal(await text(zip, `${path}/s.txt`), 'version TWO');
    assert.equal(zip.stats.indexBuilds, 2);
    await zip.close();
  });
});

describe('the inflate cache is keyed by the archive identity (defect 4d)', () => {
  const dir = tmpDir();
  after(() => rmTree(dir));

  it('serves the new content of a small deflated entry after an archive of the same size and mtime replaces it', async () => {
    const path = join(dir, 'repro.zip');
    const a = makeZip({ entries: [{ name: 'page.html', data: 'a'.repeat(400), method: 8 }] });
    const b = makeZip({ entries: [{ name: 'page.html', data: 'b'.repeat(400), method: 8 }] });
    assert.equal(a.length, b.length, 'reproducible builds: same size');
    const before = put(path, a);
    const zip = new ZipFops();
    assert.equal(await text(zip, `${path}/page.html`), 'a'.repeat(400));
    await replaceKeepingMtime(path, b, 'rename', before);
    assert.equal(statSync(path).mtimeMs, FIXED_MTIME.getTime());
    assert.equal(await text(zip, `${path}/page.html`), 'b'.repeat(400));
    assert.equal(zip.stats.indexBuilds, 2);
    await zip.close();
  });
});

const corrupt = (err: unknown): boolean => FopError.is(err, 'CORRUPT_ARCHIVE') && /CRC-32 mismatch/.test(err.message);

describe('stored entries are CRC-checked on every complete read (defect 4c)', () => {
  const dir = tmpDir();
  after(() => rmTree(dir));
  const data = noise(50_000, 21);

  it('refuses an entry whose bytes changed in memory after a verified read', async () => {
    const bytes = makeZip({ entries: [{ name: 's.bin', data, method: 0 }] });
    const zip = new ZipFops({ source: new MemFops({ '/v.zip': bytes }) });
    assert.ok((await readAll(await zip.open('/v.zip/s.bin'))).equals(data));
    // Same size and mtime: the index is reused, so only the CRC can notice.
    const at = bytes.indexOf(data.subarray(0, 16));
    bytes[at + 100] = data[100]! ^ 0xff;
    const fd = await zip.open('/v.zip/s.bin');
    await assert.rejects(readAll(fd), corrupt);
    await fd.close();
    assert.equal(zip.stats.indexBuilds, 1);
  });

  it('refuses, through a handle opened before, an archive rewritten in place on disk after a verified read', async () => {
    const path = join(dir, 'inplace.zip');
    const bytes = makeZip({ entries: [{ name: 's.bin', data, method: 0 }] });
    writeFileSync(path, bytes);
    const zip = new ZipFops();
    const first = await zip.open(`${path}/s.bin`);
    assert.ok((await readAll(first)).equals(data));
    await first.close();
    // Opened before the write: a new open would see the new ctime and index afresh.
    const fd = await zip.open(`${path}/s.bin`);
    const d = openSync(path, 'r+');
    writeSync(d, Buffer.of(data[100]! ^ 0xff), 0, 1, bytes.indexOf(data.subarray(0, 16)) + 100);
    closeSync(d);
    await assert.rejects(readAll(fd), corrupt);
    await fd.close();
    await zip.close();
  });
});
