/**
 * What real tools write and a safe reader must still accept: highly
 * compressible ordinary files.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FopError, MemFops, ZipFops, readAll, type ZipLimits } from '../../src/index.js';
import { prose } from '../helpers/fixtures.js';
import { makeZip } from '../helpers/zip-writer.js';

let serial = 0;
function mount(bytes: Uint8Array, limits?: Partial<ZipLimits>): { zip: ZipFops; archive: string } {
  const archive = `/t${++serial}.zip`;
  return { zip: new ZipFops({ source: new MemFops({ [archive]: bytes }), ...(limits ? { limits } : {}) }), archive };
}

async function read(zip: ZipFops, path: string): Promise<Buffer> {
  const fd = await zip.open(path);
  try {
    return await readAll(fd);
  } finally {
    await fd.close();
  }
}

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
