import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CONTAINER_SIGNATURES, FopError, MemFops, Vfs, ZipFops, locateContainer, type FopStat, type StatOps } from '../../src/index.js';
import { makeZip } from '../helpers/zip-writer.js';

/** MemFops that also reports one path as 'other' (a FIFO, say) and records stats. */
class WithOther extends MemFops implements StatOps {
  stats: string[] = [];
  override async stat(path: string): Promise<FopStat> {
    this.stats.push(path);
    if (path === '/fifo.zip') return { type: 'other', size: 0 };
    return super.stat(path);
  }
}

describe('locateContainer: the one container lookup Vfs and ZipFops share', () => {
  const archive = makeZip({ entries: [{ name: 'a.txt', data: 'a' }] });

  it('is the default of ZipFops and Vfs', () => {
    assert.deepEqual([...CONTAINER_SIGNATURES], ['.zip/', '.jar/', '.war/']);
    assert.deepEqual([...new ZipFops().signatures], [...CONTAINER_SIGNATURES]);
    assert.deepEqual(
      new Vfs().containers.flatMap((c) => c.signatures),
      [...CONTAINER_SIGNATURES],
    );
  });

  it('splits at the first signature whose prefix is a file, passing over directories named x.zip', async () => {
    const base = new WithOther({ '/d.zip/x.JAR': archive, '/d.zip/plain.txt': 'p' });
    const loc = await locateContainer(base, '/d.zip/x.JAR/a.txt', CONTAINER_SIGNATURES, 'open');
    assert.equal(loc?.container, '/d.zip/x.JAR');
    assert.equal(loc.member, 'a.txt');
    assert.equal(loc.stat.type, 'file');
    assert.equal(await locateContainer(base, '/d.zip/plain.txt', CONTAINER_SIGNATURES, 'open'), undefined);
    base.stats = [];
    assert.equal(await locateContainer(base, '/no/signature/here', CONTAINER_SIGNATURES, 'open'), undefined);
    assert.deepEqual(base.stats, [], 'no signature, no stat');
    assert.deepEqual(await locateContainer(base, '/x.zip', CONTAINER_SIGNATURES, 'open'), undefined, 'a bare archive path is not a member');
  });

  it('refuses a non-file, non-directory container with NOT_FOUND, and rewraps stat errors with op and path', async () => {
    const base = new WithOther({ '/real.zip': archive });
    await assert.rejects(
      locateContainer(base, '/fifo.zip/a', CONTAINER_SIGNATURES, 'open'),
      (err: unknown) => FopError.is(err, 'NOT_FOUND') && err.op === 'open',
    );
    await assert.rejects(
      locateContainer(base, '/missing.zip/a', CONTAINER_SIGNATURES, 'stat'),
      (err: unknown) => FopError.is(err, 'NOT_FOUND') && err.op === 'stat' && err.path === '/missing.zip/a' && FopError.is(err.cause),
    );
  });
});
