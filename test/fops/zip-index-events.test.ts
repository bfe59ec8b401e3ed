/**
 * ZipFops's onIndex hook: progress about once a second while a slow central
 * directory is parsed, one `done` with the entry count and index size, nothing
 * for a parse that fails, and a throwing hook never breaks the open.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { PlatFops } from '../../src/fops/plat.js';
import type { FileOps, FopFd } from '../../src/fops/types.js';
import { ZipFops, type ZipIndexEvent } from '../../src/fops/zip/zip-fops.js';
import { rmTree, tmpDir } from '../helpers/fixtures.js';
import { makeManyEntryZip } from '../helpers/zip-writer.js';

const dir = tmpDir('vfserve-index-events-');
after(() => rmTree(dir));
const archive = join(dir, 'many.zip');
writeFileSync(archive, makeManyEntryZip(2000));

/** The disk, with every positional read of an open file delayed by `ms` (a slow network filesystem). */
function slowDisk(ms: number): FileOps {
  const disk = new PlatFops();
  return {
    async open(path: string, flags?: number): Promise<FopFd> {
      const fd = await disk.open(path, flags);
      return new Proxy(fd, {
        get(target, prop, receiver) {
          const v: unknown = Reflect.get(target, prop, receiver);
          if ((prop === 'readAt' || prop === 'read') && typeof v === 'function') {
            return async (...args: unknown[]) => {
              await new Promise((r) => setTimeout(r, ms));
              return (v as (...a: unknown[]) => Promise<number>).apply(target, args);
            };
          }
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        },
      });
    },
  };
}

describe('ZipFops onIndex', () => {
  it('reports progress each second of a slow parse, then one done with entries and bytes', async () => {
    const events: ZipIndexEvent[] = [];
    const zip = new ZipFops({ source: slowDisk(700), onIndex: (e) => events.push(e) });
    try {
      const index = await zip.index(archive);
      assert.equal(index.count, 2000);
    } finally {
      await zip.close();
    }
    const progress = events.filter((e) => e.phase === 'progress');
    const done = events.filter((e) => e.phase === 'done');
    assert.ok(progress.length >= 1, `a parse of several 700 ms reads reports progress: ${JSON.stringify(events)}`);
    for (const p of progress) assert.equal(p.path, archive);
    assert.equal(done.length, 1);
    assert.equal(done[0]!.entries, 2000);
    assert.ok(done[0]!.bytes! > 2000 * 40, 'columns and names counted');
    assert.ok(done[0]!.ms >= 1000);
    assert.equal(events.at(-1)!.phase, 'done', 'no progress after done');
  });

  it('reports a quick parse once, a failed one never, and survives a throwing hook', async () => {
    const events: ZipIndexEvent[] = [];
    const zip = new ZipFops({ onIndex: (e) => events.push(e) });
    const broken = join(dir, 'broken.zip');
    writeFileSync(broken, 'not a zip');
    try {
      await zip.index(archive);
      await zip.index(archive); // cached: no second parse
      await assert.rejects(zip.index(broken));
    } finally {
      await zip.close();
    }
    assert.deepEqual(
      events.map((e) => [e.phase, e.path, e.entries]),
      [['done', archive, 2000]],
    );
    const throwing = new ZipFops({
      onIndex: () => {
        throw new Error('hook bug');
      },
    });
    try {
      assert.equal((await throwing.index(archive)).count, 2000);
      assert.deepEqual(
        throwing.archives().map((a) => [a.path, a.entries]),
        [[archive, 2000]],
      );
    } finally {
      await throwing.close();
    }
  });
});
