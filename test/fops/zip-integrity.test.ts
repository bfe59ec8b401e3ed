import assert from 'node:assert/strict';
import { closeSync, openSync, renameSync, statSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { FopError, FopFlags, MemFops, PlatFops, ZipFops, fopChanged, fopIdentity, readAll, type FopStat } from '../../src/index.js';
import { fixture, noise, prose, rmTree, tmpDir } from '../helpers/fixtures.js';
import { entryText as text } from '../helpers/zip-read.js';
import { makeZip, type EntrySpec } from '../helpers/zip-writer.js';
import { deflateRawSync } from 'node:zlib';

const FIXED_MTIME = new Date(Date.UTC(2020, 0, 1, 0, 0, 0));

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
    const one = makeZip({
      entries: [
        { name: 's.txt', data: 'version one', method: 0 },
        { name: 'pad.txt', data: 'padding', method: 0 },
      ],
    });
    const two = makeZip({
      entries: [
        { name: 'pad.txt', data: 'padding', method: 0 },
        { name: 's.txt', data: 'version TWO', method: 0 },
      ],
    });
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

  it("with storedCrc 'first-read', trusts a verified entry and leaves the change to changed()", async () => {
    // The serving engine's setting: the CRC once per archive version, then the handle's timestamps.
    const path = join(dir, 'first-read.zip');
    const bytes = makeZip({ entries: [{ name: 's.bin', data, method: 0 }] });
    writeFileSync(path, bytes);
    const zip = new ZipFops({ storedCrc: 'first-read' });
    const first = await zip.open(`${path}/s.bin`);
    assert.ok((await readAll(first)).equals(data));
    await first.close();
    const fd = await zip.open(`${path}/s.bin`);
    assert.equal(await fopChanged(fd), false);
    const d = openSync(path, 'r+');
    writeSync(d, Buffer.of(data[100]! ^ 0xff), 0, 1, bytes.indexOf(data.subarray(0, 16)) + 100);
    closeSync(d);
    const read = await readAll(fd);
    assert.notEqual(read[100], data[100], 'no CRC pass: the changed byte is read');
    assert.equal(await fopChanged(fd), true, 'and changed() reports it, so a server cuts the response');
    await fd.close();
    await zip.close();
    assert.throws(() => new ZipFops({ storedCrc: 'sometimes' as 'every-read' }), TypeError);
  });
});

describe('entry handles: identity and changed()', () => {
  const dir = tmpDir();
  after(() => rmTree(dir));
  const entries = [
    { name: 'stored.bin', data: noise(20_000, 5), method: 0 },
    { name: 'small.html', data: prose(3000), method: 8 }, // served from the inflate cache
    { name: 'big.txt', data: prose(2_000_000), method: 8 }, // inflated on the fly
  ];
  const bytes = makeZip({ entries });

  async function identityOf(zip: ZipFops, path: string, flags = 0): Promise<string | undefined> {
    const fd = await zip.open(path, flags);
    try {
      return fd.identity;
    } finally {
      await fd.close();
    }
  }

  it('is the archive identity, the entry, its CRC-32 and size; stable across opens; never the path', async () => {
    const path = join(dir, 'ident.zip');
    writeFileSync(path, bytes);
    const zip = new ZipFops();
    const seen = new Set<string>();
    for (const e of entries) {
      const a = await identityOf(zip, `${path}/${e.name}`);
      assert.ok(a !== undefined, e.name);
      assert.equal(await identityOf(zip, `${path}/${e.name}`), a, `${e.name}: stable across opens`);
      assert.ok(!a.includes('ident.zip') && !a.includes(e.name), `${e.name}: no path in ${a}`);
      seen.add(a);
    }
    assert.equal(seen.size, entries.length, 'one identity per entry');
    const fd = await zip.open(`${path}/small.html`);
    assert.equal(fopIdentity(fd), fd.identity);
    await fd.close();
    await zip.close();
  });

  it('differs between the gzip and identity forms of a deflated entry, and says the gzip length', async () => {
    const path = join(dir, 'forms.zip');
    writeFileSync(path, bytes);
    const zip = new ZipFops();
    const plain = await identityOf(zip, `${path}/big.txt`);
    const gz = await zip.open(`${path}/big.txt`, FopFlags.COMPR_ACCEPTABLE_GZIP);
    assert.ok(gz.flags & FopFlags.COMPR_IS_GZIP);
    assert.notEqual(gz.identity, plain);
    assert.match(gz.identity!, new RegExp(`:gzip:${gz.length - 18}$`));
    await gz.close();
    // A stored entry has one form: the gzip flag changes nothing.
    assert.equal(await identityOf(zip, `${path}/stored.bin`, FopFlags.COMPR_ACCEPTABLE_GZIP), await identityOf(zip, `${path}/stored.bin`));
    await zip.close();
  });

  it('changes when the archive is replaced, even by identical bytes', async () => {
    const path = join(dir, 'replaced.zip');
    const before = put(path, bytes);
    const zip = new ZipFops();
    const old = await identityOf(zip, `${path}/stored.bin`);
    await replaceKeepingMtime(path, bytes, 'rename', before);
    assert.notEqual(await identityOf(zip, `${path}/stored.bin`), old);
    await zip.close();
  });

  it('changed() turns true after an in-place write to the archive while an entry is open', async () => {
    const path = join(dir, 'changed.zip');
    const before = put(path, bytes);
    const zip = new ZipFops();
    const handles = [
      await zip.open(`${path}/stored.bin`),
      await zip.open(`${path}/big.txt`),
      await zip.open(`${path}/big.txt`, FopFlags.COMPR_ACCEPTABLE_GZIP),
    ];
    for (const fd of handles) assert.equal(await fopChanged(fd), false, 'unchanged archive');
    const d = openSync(path, 'r+');
    writeSync(d, bytes.subarray(0, 4), 0, 4, 0); // the same bytes: only the ctime (and mtime) move
    closeSync(d);
    utimesSync(path, FIXED_MTIME, FIXED_MTIME);
    while (statSync(path).ctimeMs === before) {
      await sleep(5);
      utimesSync(path, FIXED_MTIME, FIXED_MTIME);
    }
    for (const fd of handles) assert.equal(await fopChanged(fd), true, 'rewritten in place');
    // Content already verified whole and held in memory cannot change under its handle.
    const cached = await zip.open(`${path}/small.html`);
    assert.equal(await fopChanged(cached), false);
    await cached.close();
    for (const fd of handles) await fd.close();
    await assert.rejects(handles[0]!.changed!(), (err: unknown) => FopError.is(err, 'CLOSED'));
    await zip.close();
  });
});

describe('an entry declared empty must be empty (defect 4e)', () => {
  /** Opens `name` in a generated archive (in memory) and reads it whole. */
  async function readEntry(entry: EntrySpec, flags = 0): Promise<Buffer> {
    const zip = new ZipFops({ source: new MemFops({ '/e.zip': makeZip({ entries: [entry] }) }) });
    const fd = await zip.open(`/e.zip/${String(entry.name)}`, flags);
    try {
      return await readAll(fd);
    } finally {
      await fd.close();
    }
  }
  const refused =
    (detail: RegExp) =>
    (err: unknown): boolean =>
      FopError.is(err, 'CORRUPT_ARCHIVE') && detail.test(err.message);
  const content = prose(5000);

  it('refuses a streamed entry whose central uncompressed size was zeroed (unzip would extract its bytes)', async () => {
    for (const method of [0, 8]) {
      const entry = { name: 's.txt', data: content, method, descriptor: {}, cd: { usize: 0 } };
      for (const flags of [0, FopFlags.COMPR_ACCEPTABLE_GZIP]) await assert.rejects(readEntry(entry, flags), (err) => FopError.is(err), `method ${method}`);
    }
  });

  it('refuses one whose CRC-32 was zeroed too: its compressed data is not an empty stream', async () => {
    // More than a small bound of compressed bytes: refused without reading them.
    await assert.rejects(readEntry({ name: 'a', data: content, descriptor: {}, cd: { usize: 0, crc: 0 } }), refused(/compressed/));
    // A few bytes that inflate to something.
    await assert.rejects(readEntry({ name: 'b', data: 'hidden', descriptor: {}, cd: { usize: 0, crc: 0 } }), refused(/not empty/));
    // An empty stream followed by junk inside the entry.
    const junk = Buffer.concat([deflateRawSync(Buffer.alloc(0)), Buffer.from('junk')]);
    await assert.rejects(readEntry({ name: 'c', data: '', stored: junk, method: 8 }), refused(/after the end/));
    // No deflate stream at all.
    await assert.rejects(readEntry({ name: 'd', data: '', stored: Buffer.alloc(0), method: 8 }), refused(/deflate/));
    // A stored entry with data is already refused for its sizes.
    await assert.rejects(readEntry({ name: 'e', data: '', stored: Buffer.from('x'), method: 0 }), refused(/sizes disagree/));
  });

  it('refuses an empty entry whose CRC-32 is not 0', async () => {
    await assert.rejects(readEntry({ name: 'z', data: '', method: 0, cd: { crc: 0x1234 }, local: { crc: 0x1234 } }), refused(/CRC-32/));
  });

  it('serves empty entries as real tools and the generator write them', async () => {
    assert.equal((await readEntry({ name: 's', data: '', method: 0 })).length, 0);
    assert.equal((await readEntry({ name: 'd', data: '', method: 8, stored: deflateRawSync(Buffer.alloc(0)) })).length, 0);
    assert.equal((await readEntry({ name: 'dd', data: '', method: 0, descriptor: {} })).length, 0);
    const zip = new ZipFops();
    // Info-ZIP stores them (with a data descriptor when streaming); Python deflates them to 2 bytes; jar stores them.
    for (const archive of ['infozip-stored.zip', 'infozip-stream-dd.zip', 'python-deflate.zip', 'python-stored.zip', 'jar-default.jar']) {
      for (const flags of [0, FopFlags.COMPR_ACCEPTABLE_GZIP]) {
        const fd = await zip.open(`${fixture('tools', archive)}/empty.txt`, flags);
        assert.equal((await readAll(fd)).length, 0, archive);
        await fd.close();
      }
    }
    assert.equal((await zip.index(fixture('tools', 'python-deflate.zip'))).get('empty.txt')?.compressedSize, 2, 'a deflated empty entry is among them');
    await zip.close();
  });
});

describe('symbolic links made on macOS (defect 4f)', () => {
  const link = (madeBy: number): EntrySpec => ({ name: 'link', data: '../../etc/passwd', method: 0, madeBy, externalAttr: 0o120777 * 0x10000 });

  it('refuses a link entry from an OS X host (19) as it refuses a Unix one (3)', async () => {
    for (const host of [3, 19]) {
      const zip = new ZipFops({
        source: new MemFops({ '/l.zip': makeZip({ entries: [link((host << 8) | 20), { name: 'f', data: 'file', madeBy: (host << 8) | 20 }] }) }),
      });
      await assert.rejects(zip.open('/l.zip/link'), (err: unknown) => FopError.is(err, 'UNSUPPORTED_ENTRY'), `host ${host}`);
      assert.equal((await zip.stat('/l.zip/link')).type, 'other');
      assert.equal((await zip.index('/l.zip')).get('link')?.isSymlink, true);
      assert.equal(await text(zip, '/l.zip/f'), 'file', 'a regular file from the same host still serves');
    }
  });

  it('ignores the high attribute bits from hosts whose attributes are not Unix modes (MS-DOS, 0)', async () => {
    const zip = new ZipFops({ source: new MemFops({ '/l.zip': makeZip({ entries: [link(20)] }) }) });
    assert.equal(await text(zip, '/l.zip/link'), '../../etc/passwd');
  });
});

describe('zip.stats counts open archives and entries (for leak tests)', () => {
  const dir = tmpDir();
  after(() => rmTree(dir));
  const entries = [
    { name: 'stored.bin', data: noise(20_000, 5), method: 0 },
    { name: 'small.html', data: prose(3000), method: 8 },
    { name: 'big.txt', data: prose(2_000_000), method: 8 },
    { name: 'empty.txt', data: '', method: 0 },
  ];
  const a = join(dir, 'a.zip');
  const b = join(dir, 'b.zip');
  writeFileSync(a, makeZip({ entries }));
  writeFileSync(b, makeZip({ entries }));
  const counts = (zip: ZipFops): [number, number] => [zip.stats.openArchives, zip.stats.openEntries];

  it('return to 0 after every handle closes and zip.close()', async () => {
    const zip = new ZipFops();
    assert.deepEqual(counts(zip), [0, 0]);
    const fds = [];
    for (const archive of [a, b]) {
      for (const e of entries) {
        fds.push(await zip.open(`${archive}/${e.name}`));
        fds.push(await zip.open(`${archive}/${e.name}`, FopFlags.COMPR_ACCEPTABLE_GZIP));
      }
    }
    assert.deepEqual(counts(zip), [2, fds.length]);
    await Promise.all(fds.map((fd) => readAll(fd)));
    for (const fd of fds) await fd.close();
    await fds[0]!.close(); // twice: counted once
    assert.deepEqual(counts(zip), [2, 0], 'indexed archives stay open');
    await assert.rejects(zip.open(`${a}/missing`), (err) => FopError.is(err));
    assert.deepEqual(counts(zip), [2, 0], 'a failed open holds nothing');
    await zip.close();
    assert.deepEqual(counts(zip), [0, 0]);
  });

  it('count an archive pinned by a handle after close() or eviction until the handle closes', async () => {
    const zip = new ZipFops({ cache: { maxArchives: 1 } });
    const held = await zip.open(`${a}/big.txt`);
    await text(zip, `${b}/stored.bin`); // evicts a; its handle keeps it open
    assert.deepEqual(counts(zip), [2, 1]);
    await zip.close();
    assert.deepEqual(counts(zip), [1, 1], 'retired but pinned');
    await held.close();
    await zip.close(); // waits for closes under way
    assert.deepEqual(counts(zip), [0, 0]);
  });

  it('do not count an archive that failed to index', async () => {
    const bad = join(dir, 'bad.zip');
    writeFileSync(bad, Buffer.from('not a zip archive at all, just some text'));
    const zip = new ZipFops();
    await assert.rejects(zip.open(`${bad}/x`), (err: unknown) => FopError.is(err, 'CORRUPT_ARCHIVE'));
    assert.deepEqual(counts(zip), [0, 0]);
    await zip.close();
  });
});

describe('an archive replaced between its stat and its open', () => {
  it('is served from the file that was opened, and not cached under the stale stat', async () => {
    const dir = tmpDir();
    try {
      const path = join(dir, 'site.zip');
      const aside = join(dir, 'old.zip');
      writeFileSync(aside, makeZip({ entries: [{ name: 'v.txt', data: 'old version' }] }));
      writeFileSync(path, makeZip({ entries: [{ name: 'v.txt', data: 'the new version' }] }));
      // A stat that still sees the old file (it was renamed over right after), as a rename loop gives.
      class StaleStat extends PlatFops {
        stale = 1;
        override async stat(p: string): Promise<FopStat> {
          if (p === path && this.stale-- > 0) return super.stat(aside);
          return super.stat(p);
        }
      }
      const zip = new ZipFops({ source: new StaleStat() });
      assert.equal(await text(zip, `${path}/v.txt`), 'the new version');
      assert.equal(zip.stats.indexBuilds, 1);
      // Not filed under the stale stat's key: the next open (a true stat) parses again, and that one is kept.
      assert.equal(await text(zip, `${path}/v.txt`), 'the new version');
      assert.equal(await text(zip, `${path}/v.txt`), 'the new version');
      assert.equal(zip.stats.indexBuilds, 2);
      await zip.close();
      assert.equal(zip.stats.openArchives, 0);
    } finally {
      rmTree(dir);
    }
  });
});
