import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { constants as fsc, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, describe, it } from 'node:test';
import {
  FOP_ERROR_CODES,
  FopError,
  FopFlags,
  FopHandle,
  MemFops,
  PlatFops,
  createFopReadStream,
  fopReadAt,
  fromSystemError,
  hasFlag,
  readAll,
  signatureSplits,
  validFopPath,
  vfsGetModTime,
  vfsSeekEnd,
  vfsSeekSet,
  vfsTell,
  type FileOps,
} from '../../src/index.js';
import { noise, rmTree, tmpDir } from '../helpers/fixtures.js';

describe('FopFlags', () => {
  it("keeps libwebsockets' bit values, above the platform open flags", () => {
    assert.equal(FopFlags.COMPR_ACCEPTABLE_GZIP, 0x01000000);
    assert.equal(FopFlags.COMPR_IS_GZIP, 0x02000000);
    assert.equal(FopFlags.MOD_TIME_VALID, 0x04000000);
    assert.equal(FopFlags.VIRTUAL, 0x08000000);
    assert.equal(FopFlags.MASK, 0x007fffff);
    for (const f of [fsc.O_RDONLY, fsc.O_WRONLY, fsc.O_RDWR, fsc.O_CREAT, fsc.O_TRUNC, fsc.O_NOFOLLOW]) assert.equal(f & ~FopFlags.MASK, 0);
    assert.ok(hasFlag(FopFlags.VIRTUAL | FopFlags.MOD_TIME_VALID, FopFlags.VIRTUAL));
    assert.ok(!hasFlag(FopFlags.VIRTUAL, FopFlags.VIRTUAL | FopFlags.MOD_TIME_VALID));
  });
});

describe('validFopPath: one canonical form', () => {
  const good = ['/', '/a', '/a/b.txt', '/snow ☃/x', '/.well-known/x', '/a..b', '/...'];
  const bad = ['', 'a', 'a/b', '//', '/a/', '/a//b', '/./a', '/a/.', '/a/..', '/../a', '/a\\b', '/a\0b', '\\a'];
  for (const p of good) it(`accepts ${JSON.stringify(p)}`, () => assert.equal(validFopPath(p), true));
  for (const p of bad) it(`rejects ${JSON.stringify(p)}`, () => assert.equal(validFopPath(p), false));
});

describe('signatureSplits', () => {
  const sigs = ['.zip/', '.jar/', '.war/'];
  it('finds each segment that ends in a signature, left to right, case-insensitively', () => {
    assert.deepEqual(signatureSplits('/srv/site.zip/css/app.css', sigs), [13]);
    assert.deepEqual(signatureSplits('/a.zip/b.ZIP/c', sigs), [6, 12]);
    assert.deepEqual(signatureSplits('/x.JaR/y', sigs), [6]);
  });
  it('ignores a signature in the last segment, mid-segment text, and the root', () => {
    assert.deepEqual(signatureSplits('/srv/site.zip', sigs), []);
    assert.deepEqual(signatureSplits('/srv/site.zipx/a', sigs), []);
    assert.deepEqual(signatureSplits('/.zip/a', sigs), [5]);
    assert.deepEqual(signatureSplits('/sitezip/a', sigs), []);
    assert.deepEqual(signatureSplits('/site.z\u0130p/a', sigs), []); // no Unicode case folding
  });
});

describe('FopError', () => {
  it('has a closed set of codes and is recognised by brand', () => {
    const err = new FopError('NOT_FOUND', 'open', '/x');
    assert.ok(FopError.is(err));
    assert.ok(FopError.is(err, 'NOT_FOUND'));
    assert.equal(FopError.is(err, 'IO'), false); // not assert.ok(!…): that would narrow err to never below
    assert.ok(!FopError.is(new Error('x')));
    assert.ok(!FopError.is(null));
    assert.ok(FOP_ERROR_CODES.includes(err.code));
    assert.match(err.message, /open "\/x": no such file/);
  });
  it('maps system errors onto the codes', () => {
    const sys = (code: string): string => fromSystemError(Object.assign(new Error(code), { code }), 'open', '/p').code;
    assert.equal(sys('ENOENT'), 'NOT_FOUND');
    assert.equal(sys('ENOTDIR'), 'NOT_FOUND');
    assert.equal(sys('ELOOP'), 'NOT_FOUND');
    assert.equal(sys('EACCES'), 'FORBIDDEN');
    assert.equal(sys('EISDIR'), 'NOT_A_FILE');
    assert.equal(sys('EMFILE'), 'IO');
    assert.equal(fromSystemError(new Error('weird'), 'read', '/p').code, 'IO');
  });
});

describe('handle helpers', () => {
  const data = noise(10_000, 4);
  const mem = new MemFops({ '/d.bin': data });

  it('vfsSeekEnd is relative to the end from any position (lws computes len + pos + off)', async () => {
    const fd = await mem.open('/d.bin');
    vfsSeekSet(fd, 7000);
    assert.equal(vfsSeekEnd(fd, -100), 9900);
    assert.equal(vfsTell(fd), 9900);
    await fd.close();
  });

  it('vfsGetModTime is undefined unless MOD_TIME_VALID is set', async () => {
    class NoTime extends FopHandle {
      protected readImpl(): Promise<number> {
        return Promise.resolve(0);
      }
    }
    const fops: FileOps = { open: () => Promise.resolve(new NoTime(fops, '/x', { length: 0, flags: 0, modTime: 123 })) };
    assert.equal(vfsGetModTime(await fops.open('/x')), undefined);
    const fd = await mem.open('/d.bin');
    assert.equal(typeof vfsGetModTime(fd), 'number');
    await fd.close();
  });

  it('fopReadAt falls back to seek+read, restores pos, and serialises concurrent calls', async () => {
    class NoReadAt extends FopHandle {
      protected readImpl(buf: Uint8Array): Promise<number> {
        const n = Math.min(buf.length, data.length - this.pos);
        buf.set(data.subarray(this.pos, this.pos + n));
        return Promise.resolve(n);
      }
    }
    const fops: FileOps = { open: () => Promise.resolve(new NoReadAt(fops, '/x', { length: data.length, flags: 0 })) };
    const fd = await fops.open('/x');
    assert.equal(typeof fd.readAt, 'undefined');
    vfsSeekSet(fd, 42);
    const reads = await Promise.all(
      [100, 5000, 9000].map(async (p) => {
        const b = Buffer.alloc(50);
        await fopReadAt(fd, b, p);
        return b.equals(data.subarray(p, p + 50));
      }),
    );
    assert.deepEqual(reads, [true, true, true]);
    assert.equal(vfsTell(fd), 42);
  });

  it('readAll refuses to grow past maxBytes', async () => {
    const fd = await mem.open('/d.bin');
    await assert.rejects(readAll(fd, 5000), (e: unknown) => FopError.is(e, 'LIMIT_EXCEEDED'));
    await fd.close();
  });
});

describe('createFopReadStream', () => {
  const data = noise(1_000_000, 8);

  /** A handle that counts reads, to observe backpressure and closing. */
  class Counted extends FopHandle {
    reads = 0;
    closedCount = 0;
    failAt = -1;
    protected readImpl(buf: Uint8Array): Promise<number> {
      this.reads++;
      if (this.failAt >= 0 && this.pos >= this.failAt) return Promise.reject(new FopError('CORRUPT_ARCHIVE', 'read', '/c', 'CRC-32 mismatch'));
      const n = Math.min(buf.length, data.length - this.pos);
      buf.set(data.subarray(this.pos, this.pos + n));
      return Promise.resolve(n);
    }
    protected override closeImpl(): Promise<void> {
      this.closedCount++;
      return Promise.resolve();
    }
  }
  const make = (): Counted => {
    const fops: FileOps = { open: () => Promise.resolve(h) };
    const h: Counted = new Counted(fops, '/c', { length: data.length, flags: 0 });
    return h;
  };

  it('reads only as fast as the consumer takes (backpressure)', async () => {
    const h = make();
    const stream = createFopReadStream(h, { highWaterMark: 16 * 1024 });
    stream.pause();
    await new Promise((r) => setTimeout(r, 50));
    stream.read(0);
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(h.reads <= 3, `${h.reads} reads with nobody consuming`);
    stream.destroy();
  });

  it('streams an inclusive range and closes the handle at the end', async () => {
    const h = make();
    const chunks: Buffer[] = [];
    await pipeline(
      createFopReadStream(h, { start: 1000, end: 600_000 }),
      new Writable({
        write(c: Buffer, _e, cb) {
          chunks.push(c);
          cb();
        },
      }),
    );
    assert.ok(Buffer.concat(chunks).equals(data.subarray(1000, 600_001)));
    assert.equal(h.closedCount, 1);
  });

  it('destroys the stream on a read error (so a response is aborted, not completed) and closes the handle', async () => {
    const h = make();
    h.failAt = 300_000;
    await assert.rejects(pipeline(createFopReadStream(h), new Writable({ write: (_c, _e, cb) => cb() })), /CRC-32 mismatch/);
    assert.equal(h.closedCount, 1);
  });

  it('releases the handle when the consumer aborts (client went away)', async () => {
    const h = make();
    const stream = createFopReadStream(h, { highWaterMark: 1024 });
    stream.once('data', () => stream.destroy());
    await new Promise((r) => stream.once('close', r));
    assert.equal(h.closedCount, 1);
  });

  it('leaves the handle open with autoClose: false', async () => {
    const h = make();
    const chunks: Buffer[] = [];
    await pipeline(
      createFopReadStream(h, { autoClose: false, start: 0, end: 9 }),
      new Writable({
        write: (c: Buffer, _e, cb) => {
          chunks.push(c);
          cb();
        },
      }),
    );
    assert.equal(h.closedCount, 0);
    assert.equal(Buffer.concat(chunks).length, 10);
  });
});

describe('PlatFops specifics', () => {
  const dir = tmpDir();
  after(() => rmTree(dir));

  it('refuses a FIFO at once instead of blocking on open', async () => {
    const fifo = join(dir, 'pipe');
    execFileSync('mkfifo', [fifo]);
    const started = Date.now();
    await assert.rejects(new PlatFops().open(fifo), (e: unknown) => FopError.is(e, 'NOT_A_FILE'));
    assert.ok(Date.now() - started < 5000);
    assert.equal((await new PlatFops().stat(fifo)).type, 'other');
  });

  it('passes platform open flags through and writes positionally', async () => {
    const p = join(dir, 'w.bin');
    writeFileSync(p, 'abcdefgh');
    const fd = await new PlatFops().open(p, fsc.O_RDWR);
    vfsSeekSet(fd, 3);
    await fd.write!(Buffer.from('XY'));
    await fd.close();
    assert.equal(readFileSync(p, 'utf8'), 'abcXYfgh');
  });

  it('sets MOD_TIME_VALID from fstat and never VIRTUAL or COMPR_IS_GZIP', async () => {
    const p = join(dir, 'm.txt');
    writeFileSync(p, 'm');
    const fd = await new PlatFops().open(p, FopFlags.COMPR_ACCEPTABLE_GZIP | FopFlags.COMPR_IS_GZIP | FopFlags.VIRTUAL);
    assert.ok(hasFlag(fd.flags, FopFlags.MOD_TIME_VALID | FopFlags.COMPR_ACCEPTABLE_GZIP));
    assert.equal(fd.flags & (FopFlags.VIRTUAL | FopFlags.COMPR_IS_GZIP), 0);
    await fd.close();
  });
});
