/**
 * ZipFops's onIndex hook: progress about once a second while a slow central
 * directory is parsed, one `done` with the entry count and index size, nothing
 * for a parse that fails, and a throwing hook never breaks the open.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { deflateRawSync } from 'node:zlib';
import { PlatFops } from '../../src/fops/plat.js';
import type { FileOps, FopFd } from '../../src/fops/types.js';
import { indexLine } from '../../src/cli/describe.js';
import { ZipFops, type ZipIndexEvent } from '../../src/fops/zip/zip-fops.js';
import { logText, rmTree, tmpDir } from '../helpers/fixtures.js';
import { makeManyEntryZip, makeZip } from '../helpers/zip-writer.js';

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

  it('reports a checkpoint pass for random access as its own kind, with progress while it is slow', async () => {
    const big = join(dir, 'big.zip');
    const text = logText(1_500_000, 3);
    // Small blocks (memLevel 2) so the pass has boundaries for points every 16 KiB.
    writeFileSync(big, makeZip({ entries: [{ name: 'log.txt', data: text, method: 8, stored: deflateRawSync(text, { level: 1, memLevel: 2 }) }] }));
    const events: ZipIndexEvent[] = [];
    // Reads 200 ms each: the pass reads the ~450 KB of deflate data in 64 KiB pieces, over a second in all.
    const zip = new ZipFops({
      source: slowDisk(200),
      inflateCache: { maxBytes: 0 },
      randomAccess: { span: 16 * 1024, maxShare: 1 },
      onIndex: (e) => events.push(e),
    });
    try {
      const fd = await zip.open(`${big}/log.txt`);
      const buf = Buffer.alloc(20);
      assert.equal(await fd.readAt!(buf, 1_400_000), 20);
      assert.ok(buf.equals(text.subarray(1_400_000, 1_400_020)));
      await fd.close();
    } finally {
      await zip.close();
    }
    const pass = events.filter((e) => e.kind === 'random-access');
    assert.ok(
      pass.some((e) => e.phase === 'progress'),
      `progress while the pass is slow: ${JSON.stringify(events)}`,
    );
    const done = pass.filter((e) => e.phase === 'done');
    assert.equal(done.length, 1);
    assert.equal(done[0]!.path, `${big}/log.txt`);
    assert.ok(done[0]!.entries! > 10, 'access points counted');
    assert.ok(done[0]!.bytes! > 0);
    assert.equal(events.filter((e) => e.kind === undefined && e.phase === 'done').length, 1, 'the central directory is still reported as before');
  });
});

describe('the terminal line for an index event (vfserve indexLine)', () => {
  it('names what was built: entries of a central directory, access points of a random-access index', () => {
    assert.equal(indexLine({ path: '/s/a.zip', phase: 'progress', ms: 2100 }), 'vfserve: indexing /s/a.zip: 2 s so far');
    assert.match(indexLine({ path: '/s/a.zip', phase: 'done', ms: 12, entries: 3, bytes: 2048 }), /^vfserve: indexed \/s\/a\.zip: 3 entries in 12 ms, index /);
    assert.equal(
      indexLine({ path: '/s/a.zip/log.txt', kind: 'random-access', phase: 'progress', ms: 1000 }),
      'vfserve: indexing random-access index of /s/a.zip/log.txt: 1 s so far',
    );
    assert.match(
      indexLine({ path: '/s/a.zip/log.txt', kind: 'random-access', phase: 'done', ms: 2600, entries: 998, bytes: 7_566_013 }),
      /^vfserve: indexed random-access index of \/s\/a\.zip\/log\.txt: 998 access points in 2600 ms, index /,
    );
  });
});
