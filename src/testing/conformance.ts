/**
 * A conformance suite any fops backend can run, after Go's `testing/fstest`:
 *
 * ```ts
 * import { describeFopsConformance } from 'vfserve/testing';
 * describeFopsConformance('my backend', () => ({ fops: new MyFops(), files: { '/a.txt': 'hello' } }));
 * ```
 *
 * It registers `node:test` tests that check the whole contract: generic state,
 * reads at every buffer size, seeks and clamping, positional reads, streams
 * and ranges, independent handles, close semantics, error codes, canonical
 * paths, directories, stat, gzip output and (optionally) writes.
 *
 * @module vfserve/testing
 */
import assert from 'node:assert/strict';
import { constants as fsc } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { FopError, type FopErrorCode } from '../fops/errors.js';
import { FopFlags } from '../fops/flags.js';
import { createFopReadStream, fopReadAt, fopReadvAt, fopStat, readAll, vfsGetLength, vfsGetModTime, vfsSeekEnd, vfsSeekSet, vfsTell } from '../fops/helpers.js';
import type { FileOps, FopFd } from '../fops/types.js';

/** What a backend under test serves. */
export interface ConformanceFixture {
  readonly fops: FileOps;
  /** Every file to check: canonical path to its exact (identity) content. At least one. */
  readonly files: Readonly<Record<string, Uint8Array | string>>;
  /** Paths that are directories: open rejects with `NOT_A_FILE`, stat says directory. */
  readonly dirs?: readonly string[];
  /** Paths that must not exist (default: a sibling of each file with a suffix added). */
  readonly missing?: readonly string[];
  /** Whether handles must set `VIRTUAL` (true), must not (false), or either (undefined). */
  readonly virtual?: boolean;
  /** A file the suite may open with `O_RDWR` and overwrite; write tests run only when given. */
  readonly writable?: string;
  /** Called after the suite. */
  readonly teardown?: () => Promise<void> | void;
}

const text = new TextEncoder();

function contentOf(c: Uint8Array | string): Buffer {
  return Buffer.from(typeof c === 'string' ? text.encode(c) : c);
}

async function rejectsWith(p: Promise<unknown>, code: FopErrorCode, what: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(FopError.is(err), `${what}: expected a FopError, got ${String(err)}`);
    assert.equal(err.code, code, `${what}: ${err.message}`);
    return true;
  });
}

async function readWith(fd: FopFd, size: number): Promise<Buffer> {
  const out: Buffer[] = [];
  for (;;) {
    const buf = Buffer.alloc(size);
    const n = await fd.read(buf);
    if (n === 0) return Buffer.concat(out);
    assert.ok(n > 0 && n <= size, `read returned ${n} for a ${size}-byte buffer`);
    out.push(buf.subarray(0, n));
  }
}

async function readExactly(fd: FopFd, length: number): Promise<Buffer> {
  const out = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const n = await fd.read(out.subarray(got));
    if (n === 0) break;
    got += n;
  }
  return out.subarray(0, got);
}

function streamBytes(fd: FopFd, start?: number, end?: number): Promise<Buffer> {
  const opts: { start?: number; end?: number; autoClose: boolean; highWaterMark: number } = { autoClose: false, highWaterMark: 4096 };
  if (start !== undefined) opts.start = start;
  if (end !== undefined) opts.end = end;
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    createFopReadStream(fd, opts)
      .on('data', (c: Buffer) => chunks.push(c))
      .on('end', () => resolve(Buffer.concat(chunks)))
      .on('error', reject);
  });
}

/** A deterministic sequence of positions for random-access checks. */
function* positions(length: number, count: number): Generator<number> {
  let x = 0x2545f491;
  for (let i = 0; i < count; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    yield (x >>> 0) % (length + 1);
  }
}

function badForms(path: string): string[] {
  const slash = path.lastIndexOf('/');
  const dir = path.slice(0, slash) || '';
  const name = path.slice(slash + 1);
  return [
    path.slice(1), // relative
    `${path}/`, // trailing slash
    `${dir}/./${name}`,
    `${dir}//${name}`,
    `${dir}/../${dir.split('/').pop() ?? ''}/${name}`,
    `${dir}/x/../${name}`,
    `${dir}\\${name}`,
    `${path}\0.html`,
    '',
  ];
}

/** Registers the conformance tests for the backend that `setup` returns. */
export function describeFopsConformance(name: string, setup: () => Promise<ConformanceFixture> | ConformanceFixture): void {
  describe(`fops conformance: ${name}`, () => {
    let fx: ConformanceFixture;
    let files: [string, Buffer][];
    const open = (path: string, flags = 0): Promise<FopFd> => fx.fops.open(path, flags);

    before(async () => {
      fx = await setup();
      files = Object.entries(fx.files).map(([p, c]) => [p, contentOf(c)]);
      assert.ok(files.length > 0, 'the fixture must list at least one file');
    });
    after(async () => {
      await fx.teardown?.();
    });

    it('opens every file with the generic state set', async () => {
      for (const [path, content] of files) {
        const fd = await open(path);
        try {
          // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- checked for backends written in JavaScript
          assert.equal(fd.fops === undefined, false, `${path}: handle has no owning fops`);
          assert.equal(vfsTell(fd), 0, `${path}: pos starts at 0`);
          assert.equal(vfsGetLength(fd), content.length, `${path}: length`);
          assert.equal(fd.flags & FopFlags.COMPR_IS_GZIP, 0, `${path}: gzip output without COMPR_ACCEPTABLE_GZIP`);
          const mod = vfsGetModTime(fd);
          if (mod !== undefined) assert.ok(Number.isFinite(mod), `${path}: MOD_TIME_VALID with a non-finite modTime`);
          if (fx.virtual !== undefined) assert.equal((fd.flags & FopFlags.VIRTUAL) !== 0, fx.virtual, `${path}: VIRTUAL flag`);
        } finally {
          await fd.close();
        }
      }
    });

    it('reads every file exactly, at any buffer size, then returns 0', async () => {
      for (const [path, content] of files) {
        for (const size of [1, 7, 4096, 65536 + 3]) {
          if (size === 1 && content.length > 200_000) continue; // byte-at-a-time is covered by smaller files
          const fd = await open(path);
          try {
            const got = await readWith(fd, size);
            assert.ok(got.equals(content), `${path}: content read with ${size}-byte buffers differs`);
            assert.equal(await fd.read(Buffer.alloc(16)), 0, `${path}: read at end of file`);
            assert.equal(await fd.read(Buffer.alloc(0)), 0, `${path}: zero-length read`);
            assert.equal(vfsTell(fd), content.length);
          } finally {
            await fd.close();
          }
        }
      }
    });

    it('seeks with seekCur, vfsSeekSet and vfsSeekEnd, clamped to [0, length]', async () => {
      for (const [path, content] of files) {
        const len = content.length;
        const fd = await open(path);
        try {
          const mid = Math.floor(len / 2);
          assert.equal(vfsSeekSet(fd, mid), mid);
          assert.ok((await readExactly(fd, Math.min(16, len - mid))).equals(content.subarray(mid, mid + 16)), `${path}: read after seek to middle`);
          const back = Math.min(3, len);
          assert.equal(vfsSeekEnd(fd, -back), len - back);
          assert.ok((await readExactly(fd, back)).equals(content.subarray(len - back)), `${path}: read after seek from end`);
          assert.equal(fd.seekCur(-len - 10), 0, `${path}: seek before start clamps to 0`);
          assert.equal(fd.seekCur(len + 10), len, `${path}: seek past end clamps to length`);
          assert.equal(await fd.read(Buffer.alloc(8)), 0, `${path}: read at clamped end`);
          assert.equal(vfsSeekSet(fd, 0), 0);
          assert.ok((await readAll(fd)).equals(content), `${path}: whole read after rewinding from the end`);
          assert.throws(
            () => fd.seekCur(Number.NaN),
            (e: unknown) => FopError.is(e, 'INVALID_ARGUMENT'),
          );
        } finally {
          await fd.close();
        }
      }
    });

    it('returns the right bytes for random seeks forward and backward', async () => {
      for (const [path, content] of files) {
        const fd = await open(path);
        try {
          for (const p of positions(content.length, 24)) {
            vfsSeekSet(fd, p);
            const want = content.subarray(p, p + 1000);
            assert.ok((await readExactly(fd, 1000)).equals(want), `${path}: bytes at ${p}`);
          }
        } finally {
          await fd.close();
        }
      }
    });

    it('reads positionally (readAt or the fallback) without moving pos, in parallel', async () => {
      for (const [path, content] of files) {
        const fd = await open(path);
        try {
          vfsSeekSet(fd, Math.min(5, content.length));
          const before = vfsTell(fd);
          const reads = [...positions(content.length, 8)].map(async (p) => {
            const buf = Buffer.alloc(Math.min(512, content.length - p));
            let got = 0;
            while (got < buf.length) {
              const n = await fopReadAt(fd, buf.subarray(got), p + got);
              if (n === 0) break;
              got += n;
            }
            return { p, bytes: buf.subarray(0, got) };
          });
          for (const { p, bytes } of await Promise.all(reads)) {
            assert.ok(
              bytes.equals(content.subarray(p, p + bytes.length)) && bytes.length === Math.min(512, content.length - p),
              `${path}: positional read at ${p}`,
            );
          }
          assert.equal(vfsTell(fd), before, `${path}: positional reads moved pos`);
          if (fd.readAt) assert.equal(await fd.readAt(Buffer.alloc(4), content.length), 0, `${path}: readAt at end`);
        } finally {
          await fd.close();
        }
      }
    });

    it('scatter-reads (readvAt or the fallback) into several buffers without moving pos', async () => {
      for (const [path, content] of files) {
        const fd = await open(path);
        try {
          const before = vfsTell(fd);
          for (const p of positions(content.length, 4)) {
            // Pieces of 0, 1, 7 and 300 bytes: short and empty ones must be filled in order too.
            const bufs = [0, 1, 7, 300].map((n) => Buffer.alloc(n));
            const want = Math.min(308, content.length - p);
            const n = await fopReadvAt(fd, bufs, p);
            assert.equal(n, want, `${path}: scatter read at ${p} read ${n} of ${want}`);
            assert.ok(
              Buffer.concat(bufs)
                .subarray(0, n)
                .equals(content.subarray(p, p + n)),
              `${path}: scatter read at ${p}`,
            );
          }
          assert.equal(vfsTell(fd), before, `${path}: scatter reads moved pos`);
        } finally {
          await fd.close();
        }
      }
    });

    it('hands over owned buffers with readBuffer, where a backend has it', async () => {
      for (const [path, content] of files) {
        const fd = await open(path);
        try {
          if (!fd.readBuffer) continue;
          const parts: Buffer[] = [];
          for (;;) {
            const chunk = await fd.readBuffer(3000);
            assert.ok(chunk.length <= 3000, `${path}: readBuffer returned more than asked`);
            if (chunk.length === 0) break;
            parts.push(chunk);
          }
          assert.ok(Buffer.concat(parts).equals(content), `${path}: readBuffer content`);
          assert.equal(vfsTell(fd), content.length);
          vfsSeekSet(fd, Math.floor(content.length / 2));
          const tail = await fd.readBuffer(content.length);
          assert.ok(
            tail.equals(content.subarray(Math.floor(content.length / 2), Math.floor(content.length / 2) + tail.length)),
            `${path}: readBuffer after a seek back`,
          );
        } finally {
          await fd.close();
        }
      }
    });

    it('streams whole files and inclusive byte ranges', async () => {
      for (const [path, content] of files) {
        const len = content.length;
        const fd = await open(path);
        try {
          assert.ok((await streamBytes(fd)).equals(content), `${path}: whole stream`);
          if (len > 0) {
            assert.ok((await streamBytes(fd, 0, 0)).equals(content.subarray(0, 1)), `${path}: first byte`);
            assert.ok((await streamBytes(fd, len - 1)).equals(content.subarray(len - 1)), `${path}: last byte`);
            const a = Math.floor(len / 3);
            const b = Math.floor((2 * len) / 3);
            assert.ok((await streamBytes(fd, a, b)).equals(content.subarray(a, b + 1)), `${path}: range ${a}-${b}`);
            assert.ok((await streamBytes(fd, a + 1, a)).equals(Buffer.alloc(0)), `${path}: empty range (start after end)`);
          }
        } finally {
          await fd.close();
        }
      }
    });

    it('keeps handles to one file independent, and opens many at once', async () => {
      const [path, content] = files.reduce((a, b) => (b[1].length > a[1].length ? b : a));
      const [a, b] = await Promise.all([open(path), open(path)]);
      try {
        const half = Math.floor(content.length / 2);
        vfsSeekSet(b, half);
        const fromA = await readExactly(a, 100);
        const fromB = await readExactly(b, 100);
        assert.ok(fromA.equals(content.subarray(0, 100)), 'first handle');
        assert.ok(fromB.equals(content.subarray(half, half + 100)), 'second handle');
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
      const many = await Promise.all(Array.from({ length: 24 }, (_, i) => open(files[i % files.length]![0])));
      try {
        const all = await Promise.all(many.map((fd) => readAll(fd)));
        all.forEach((got, i) => assert.ok(got.equals(files[i % files.length]![1]), `concurrent handle ${i}`));
      } finally {
        await Promise.all(many.map((fd) => fd.close()));
      }
    });

    it('rejects use after close with CLOSED; closing twice is harmless', async () => {
      const fd = await open(files[0]![0]);
      await fd.close();
      await fd.close();
      await rejectsWith(fd.read(Buffer.alloc(4)), 'CLOSED', 'read after close');
      assert.throws(
        () => fd.seekCur(1),
        (e: unknown) => FopError.is(e, 'CLOSED'),
      );
    });

    it('rejects missing paths with NOT_FOUND and every non-canonical form with INVALID_PATH', async () => {
      const missing = fx.missing ?? files.map(([p]) => `${p}.missing`);
      for (const path of missing) await rejectsWith(open(path), 'NOT_FOUND', `open ${path}`);
      for (const path of badForms(files[0]![0])) await rejectsWith(open(path), 'INVALID_PATH', `open ${JSON.stringify(path)}`);
    });

    it('reports directories: open gives NOT_A_FILE, stat gives a directory', async () => {
      for (const dir of fx.dirs ?? []) {
        await rejectsWith(open(dir), 'NOT_A_FILE', `open ${dir}`);
        assert.equal((await fopStat(fx.fops, dir)).type, 'directory', `stat ${dir}`);
      }
    });

    it('stats files with their size', async () => {
      for (const [path, content] of files) {
        const st = await fopStat(fx.fops, path);
        assert.equal(st.type, 'file', path);
        assert.equal(st.size, content.length, path);
      }
      await rejectsWith(fopStat(fx.fops, `${files[0]![0]}.missing`), 'NOT_FOUND', 'stat of a missing path');
    });

    it('returns valid gzip, or the identity bytes, when gzip is acceptable', async () => {
      for (const [path, content] of files) {
        const fd = await open(path, FopFlags.COMPR_ACCEPTABLE_GZIP);
        try {
          const got = await readAll(fd);
          assert.equal(got.length, fd.length, `${path}: length counts the bytes read`);
          if ((fd.flags & FopFlags.COMPR_IS_GZIP) !== 0) assert.ok(gunzipSync(got).equals(content), `${path}: gzip member`);
          else assert.ok(got.equals(content), `${path}: identity bytes`);
        } finally {
          await fd.close();
        }
      }
    });

    it('writes where it can, and refuses writes on read-only handles', async () => {
      const ro = await open(files[0]![0]);
      try {
        if (ro.write) await rejectsWith(ro.write(Buffer.from('x')), 'READ_ONLY', 'write on a read-only handle');
      } finally {
        await ro.close();
      }
      if (fx.writable === undefined) return;
      const fd = await open(fx.writable, fsc.O_RDWR);
      try {
        assert.ok(typeof fd.write === 'function', 'a writable backend has write()');
        const data = Buffer.from('conformance write ✓');
        vfsSeekSet(fd, 2);
        assert.equal(await fd.write(data), data.length);
        assert.equal(vfsTell(fd), 2 + data.length);
        vfsSeekSet(fd, 2);
        assert.ok((await readExactly(fd, data.length)).equals(data), 'read back what was written');
      } finally {
        await fd.close();
      }
    });
  });
}
