/**
 * What real tools write and a safe reader must still accept (zero padding
 * after the end record, highly compressible ordinary files), and the line
 * that stays: any other trailing data is refused.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FopError, MemFops, ZipFops, readAll, type FopErrorCode, type ZipLimits } from '../../src/index.js';
import { prose } from '../helpers/fixtures.js';
import { makeZip } from '../helpers/zip-writer.js';

let serial = 0;
function mount(bytes: Uint8Array, limits?: Partial<ZipLimits>): { zip: ZipFops; archive: string } {
  const archive = `/t${++serial}.zip`;
  return { zip: new ZipFops({ source: new MemFops({ [archive]: bytes }), ...(limits ? { limits } : {}) }), archive };
}

async function names(bytes: Uint8Array): Promise<string[]> {
  const { zip, archive } = mount(bytes);
  return [...(await zip.index(archive)).entries()].map((e) => e.name).sort();
}

async function indexCode(bytes: Uint8Array): Promise<{ code: FopErrorCode | 'ok'; message: string }> {
  const { zip, archive } = mount(bytes);
  try {
    await zip.index(archive);
    return { code: 'ok', message: '' };
  } catch (err) {
    assert.ok(FopError.is(err), String(err));
    return { code: err.code, message: err.message };
  }
}

async function read(zip: ZipFops, path: string): Promise<Buffer> {
  const fd = await zip.open(path);
  try {
    return await readAll(fd);
  } finally {
    await fd.close();
  }
}

const good = (): Buffer =>
  makeZip({
    entries: [
      { name: 'a.txt', data: 'alpha' },
      { name: 'b/c.txt', data: prose(3000) },
    ],
  });

describe('zero padding after the end record (bsdtar writing to a pipe)', () => {
  it('accepts trailing zero bytes, up to 64 KiB', async () => {
    for (const pad of [1, 10_240 - 200, 64 * 1024]) {
      assert.deepEqual(await names(Buffer.concat([good(), Buffer.alloc(pad)])), ['a.txt', 'b/c.txt'], `${pad} zero bytes`);
    }
  });

  it('accepts padding after an archive comment, and keeps the comment', async () => {
    const { zip, archive } = mount(Buffer.concat([makeZip({ entries: [{ name: 'a.txt', data: 'alpha' }], comment: 'note' }), Buffer.alloc(5000)]));
    const index = await zip.index(archive);
    assert.equal(Buffer.from(index.end.comment).toString(), 'note');
    assert.equal((await read(zip, `${archive}/a.txt`)).toString(), 'alpha');
  });

  it('still refuses any non-zero trailing byte, wherever it is', async () => {
    for (const tail of [Buffer.from('junk'), Buffer.concat([Buffer.alloc(100), Buffer.from([1])]), Buffer.concat([Buffer.from([1]), Buffer.alloc(100)])]) {
      const got = await indexCode(Buffer.concat([good(), tail]));
      assert.equal(got.code, 'CORRUPT_ARCHIVE');
      assert.match(got.message, /data after the end/);
    }
  });

  it('refuses more zero padding than 64 KiB (the search window is bounded)', async () => {
    const got = await indexCode(Buffer.concat([good(), Buffer.alloc(64 * 1024 + 1)]));
    assert.equal(got.code, 'CORRUPT_ARCHIVE');
  });
});

describe('ratio limit only above 64 MiB', () => {
  it('a 2 MiB file of zeros (about 1,030:1) is served with the default limits', async () => {
    const zeros = Buffer.alloc(2 * 1024 * 1024);
    const { zip, archive } = mount(makeZip({ entries: [{ name: 'z.bin', data: zeros }] }));
    const info = (await zip.index(archive)).get('z.bin')!;
    assert.ok(info.size / info.compressedSize > 1000, `ratio ${info.size / info.compressedSize}`);
    assert.ok((await read(zip, `${archive}/z.bin`)).equals(zeros));
  });

  it('an entry declared over 64 MiB at a bomb ratio is still refused (nothing is allocated)', async () => {
    const usize = 65 * 1024 * 1024;
    const bytes = makeZip({ entries: [{ name: 'bomb.bin', data: prose(1000), cd: { usize }, local: { usize } }] });
    const { zip, archive } = mount(bytes);
    await assert.rejects(zip.open(`${archive}/bomb.bin`), (err: unknown) => FopError.is(err, 'LIMIT_EXCEEDED') && /ratio/.test(err.message));
  });
});
