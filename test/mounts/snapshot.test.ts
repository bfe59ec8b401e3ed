/**
 * The snapshot model of the serving core, without a socket: a response's body
 * and validators come from one open handle, caches hold whole snapshots, a
 * file rewritten mid-response is never sent complete, bodies release their
 * handles however they end, and symlink containment holds for any backend on
 * a disk. Each case was a defect of the core before it was restructured.
 */
import assert from 'node:assert/strict';
import { openSync, readdirSync, readlinkSync, renameSync, symlinkSync, unlinkSync, utimesSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { MemFops, ServeEngine, Vfs, type CoreRequest, type CoreResponse, type EngineOptions } from '../../src/index.js';
import { rmTree, tmpDir, writeTree } from '../helpers/fixtures.js';
import { makeZip } from '../helpers/zip-writer.js';

const dir = tmpDir('vfserve-snapshot-');
after(() => rmTree(dir));
let seq = 0;
// Whole seconds, so both versions' mtimes are exactly equal whatever the filesystem's precision.
const FIXED_TIME = new Date('2026-01-01T00:00:00Z');
const BIN = { '.bin': 'application/octet-stream' };

function request(url: string, headers: Record<string, string> = {}, method = 'GET'): CoreRequest {
  return { method, url, header: (name) => headers[name] };
}

async function drain(out: CoreResponse): Promise<Buffer> {
  if (out.body === null) return Buffer.alloc(0);
  if (Buffer.isBuffer(out.body)) return out.body;
  const chunks: Buffer[] = [];
  for await (const c of out.body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A fresh origin directory with `files`, and an engine serving it at `/`. */
function site(files: Record<string, Uint8Array>, options: Partial<EngineOptions> = {}): { root: string; engine: ServeEngine } {
  const root = join(dir, `site-${++seq}`);
  writeTree(root, files);
  return { root, engine: new ServeEngine({ mounts: [{ mountpoint: '/', origin: root, extraMimetypes: BIN }], ...options }) };
}

/** Replaces `path` by renaming a new file over it (a new inode), optionally with a given mtime. */
function replace(path: string, data: Uint8Array, mtime?: Date): void {
  const tmp = `${path}.tmp-${++seq}`;
  writeFileSync(tmp, data);
  if (mtime) utimesSync(tmp, mtime, mtime);
  renameSync(tmp, path);
}

/** Regular files this process holds open (sockets, pipes and the like left out). */
function openFiles(): string[] {
  const out: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith('/') && !target.startsWith('/dev/') && !target.startsWith('/proc/')) out.push(target);
    } catch {
      // closed while listing
    }
  }
  return out;
}

async function settledOpenFiles(baseline: number): Promise<number> {
  for (let i = 0; i < 50 && openFiles().length > baseline; i++) await sleep(20);
  return openFiles().length;
}

/** Records every (ETag, body) pair seen and fails if one ETag ever names two bodies. */
class EtagLedger {
  readonly #seen = new Map<string, string>();
  note(out: CoreResponse, body: Buffer): void {
    const etag = out.headers.etag;
    if (etag === undefined || out.status !== 200) return;
    const text = body.toString('latin1');
    const before = this.#seen.get(etag);
    if (before !== undefined) assert.equal(text, before, `ETag ${etag} named two different bodies`);
    this.#seen.set(etag, text);
  }
}

const version = (byte: number, length: number): Buffer => Buffer.alloc(length, byte);

describe('a response is one snapshot', () => {
  it("v1, v2 (same size and mtime), then v1 again: each served whole, never under another version's ETag", async () => {
    // Defect 4a: the small-content cache stored the bytes of the current file under the key of an older stat.
    const { root, engine } = site({ 'page.html': version(0x31, 4096) }, { resolveCacheMs: 20 });
    const file = join(root, 'page.html');
    const mtime = FIXED_TIME;
    utimesSync(file, mtime, mtime);
    const ledger = new EtagLedger();
    const expectBody = async (want: Buffer): Promise<string> => {
      const out = await engine.handle(request('/page.html'));
      const body = await drain(out);
      ledger.note(out, body);
      assert.equal(out.status, 200);
      assert.ok(body.equals(want), `served ${body.subarray(0, 1).toString()}… where ${want.subarray(0, 1).toString()}… was on disk`);
      assert.equal(out.headers['content-length'], String(body.length));
      return out.headers.etag!;
    };
    const e1 = await expectBody(version(0x31, 4096));
    replace(file, version(0x32, 4096), mtime);
    await sleep(40);
    const e2 = await expectBody(version(0x32, 4096));
    assert.notEqual(e2, e1);
    replace(file, version(0x31, 4096), mtime);
    await sleep(40);
    await expectBody(version(0x31, 4096));
  });

  it('takes validators from the handle it reads, not from a resolution within its window', async () => {
    // Defect 4b: a fresh open's body went out with the ETag of a cached stat. Large: not in the small cache.
    const { root, engine } = site({ 'big.bin': version(0x41, 400_000) }, { resolveCacheMs: 60_000 });
    const first = await engine.handle(request('/big.bin'));
    const e1 = first.headers.etag;
    await drain(first);
    replace(join(root, 'big.bin'), version(0x42, 300_000));
    const second = await engine.handle(request('/big.bin'));
    const body = await drain(second);
    assert.ok(body.equals(version(0x42, 300_000)));
    assert.equal(second.headers['content-length'], '300000');
    assert.notEqual(second.headers.etag, e1, 'new bytes carry a new ETag');
    // And the old ETag no longer validates: a conditional request gets the new bytes.
    const cond = await engine.handle(request('/big.bin', { 'if-none-match': e1! }));
    assert.equal(cond.status, 200);
    await drain(cond);
  });

  it('gives a file replaced by one of the same size and mtime a new ETag', async () => {
    // rsync -a and reproducible builds keep size and mtime; the inode and ctime still change.
    const { root, engine } = site({ 'same.txt': version(0x61, 1000) }, { resolveCacheMs: 0 });
    const file = join(root, 'same.txt');
    const mtime = FIXED_TIME;
    utimesSync(file, mtime, mtime);
    const a = await engine.handle(request('/same.txt'));
    await drain(a);
    replace(file, version(0x62, 1000), mtime);
    const b = await engine.handle(request('/same.txt'));
    assert.ok((await drain(b)).equals(version(0x62, 1000)));
    assert.notEqual(b.headers.etag, a.headers.etag);
  });

  it('cuts a body whose file is rewritten in place while it streams', async () => {
    // Defect 4c: a complete 200 mixing two versions. The change check runs before the last byte.
    const length = 3 * 1024 * 1024;
    const { root, engine } = site({ 'movie.bin': version(0x10, length) });
    const out = await engine.handle(request('/movie.bin'));
    assert.equal(out.status, 200);
    assert.ok(out.body instanceof Readable);
    const body = out.body;
    const chunks: Buffer[] = [];
    const failed = new Promise<Error | undefined>((resolve) => {
      body.once('error', resolve);
      body.once('end', () => resolve(undefined));
    });
    const first = await new Promise<Buffer>((resolve) => body.once('data', resolve));
    chunks.push(first);
    body.pause();
    const fd = openSync(join(root, 'movie.bin'), 'r+');
    writeSync(fd, version(0x11, length), 0, length, 0);
    closeSync(fd);
    body.on('data', (c: Buffer) => chunks.push(c));
    body.resume();
    const err = await failed;
    assert.ok(err instanceof Error, 'the stream failed instead of ending');
    assert.ok(Buffer.concat(chunks).length < length, 'the last byte was never delivered');
  });

  it('finishes a body whose file is renamed over or deleted while it streams: its bytes are intact', async () => {
    // Unlinking moves the old inode's ctime; its bytes stay as they were, so cutting would only cost a retry.
    const length = 3 * 1024 * 1024;
    for (const how of ['renamed over', 'deleted'] as const) {
      const { root, engine } = site({ 'movie.bin': version(0x20, length) });
      const out = await engine.handle(request('/movie.bin'));
      assert.ok(out.body instanceof Readable);
      const body = out.body;
      const chunks: Buffer[] = [await new Promise<Buffer>((resolve) => body.once('data', resolve))];
      body.pause();
      if (how === 'renamed over') replace(join(root, 'movie.bin'), version(0x21, length));
      else unlinkSync(join(root, 'movie.bin'));
      body.on('data', (c: Buffer) => chunks.push(c));
      body.resume();
      await new Promise<void>((resolve, reject) => {
        body.once('end', resolve);
        body.once('error', reject);
      });
      assert.ok(Buffer.concat(chunks).equals(version(0x20, length)), `the old version, whole (${how})`);
    }
  });

  it('cuts a stored archive entry whose archive is rewritten in place while it streams, its CRC already verified', async () => {
    // The default engine checks a stored entry's CRC once per archive version (storedCrc 'first-read'),
    // and every body with changed() before its last byte: the archive's timestamps catch the rewrite.
    const length = 3 * 1024 * 1024;
    const root = join(dir, `zip-${++seq}`);
    const archive = (byte: number): Buffer => makeZip({ entries: [{ name: 'movie.bin', data: version(byte, length), method: 0 }] });
    writeTree(root, { 'site.zip': archive(0x30) });
    const engine = new ServeEngine({ mounts: [{ mountpoint: '/', origin: join(root, 'site.zip'), extraMimetypes: BIN }] });
    const whole = await engine.handle(request('/movie.bin'));
    assert.ok((await drain(whole)).equals(version(0x30, length)), 'a first complete read verifies the CRC');
    const out = await engine.handle(request('/movie.bin'));
    assert.ok(out.body instanceof Readable);
    const body = out.body;
    const chunks: Buffer[] = [await new Promise<Buffer>((resolve) => body.once('data', resolve))];
    body.pause();
    const next = archive(0x31);
    const fd = openSync(join(root, 'site.zip'), 'r+');
    writeSync(fd, next, 0, next.length, 0);
    closeSync(fd);
    body.on('data', (c: Buffer) => chunks.push(c));
    body.resume();
    const err = await new Promise<Error | undefined>((resolve) => {
      body.once('error', resolve);
      body.once('end', () => resolve(undefined));
    });
    assert.ok(err instanceof Error, 'the stream failed instead of ending');
    assert.ok(Buffer.concat(chunks).length < length);
  });

  it('serves a changed small file whole in its new version once the window passes', async () => {
    const { root, engine } = site({ 'app.js': Buffer.from('v1();') }, { resolveCacheMs: 20 });
    const a = await engine.handle(request('/app.js'));
    assert.equal((await drain(a)).toString(), 'v1();');
    writeFileSync(join(root, 'app.js'), 'v2(); // longer');
    await sleep(40);
    const b = await engine.handle(request('/app.js'));
    assert.equal((await drain(b)).toString(), 'v2(); // longer');
    assert.notEqual(b.headers.etag, a.headers.etag);
  });
});

describe('bodies release their handles', () => {
  const big = version(0x55, 2 * 1024 * 1024);
  const cases: [string, Record<string, string>][] = [
    ['whole', {}],
    ['one range', { range: 'bytes=100-200000' }],
    ['several ranges', { range: 'bytes=0-99,1000000-1000099,2000000-2000099' }],
  ];
  for (const [label, headers] of cases) {
    it(`closes the file of a ${label} body destroyed before it is read`, async () => {
      // Defect 3: a multipart body was an async generator under Readable.from; destroyed before it
      // started, its finally never ran and the descriptor leaked.
      const { engine } = site({ 'big.bin': big });
      const baseline = openFiles().length;
      for (let i = 0; i < 5; i++) {
        const out = await engine.handle(request('/big.bin', headers));
        assert.ok(out.body instanceof Readable);
        out.body.destroy();
      }
      assert.equal(await settledOpenFiles(baseline), baseline, `open files: ${openFiles().join(', ')}`);
    });
    it(`closes the file of a ${label} body destroyed mid-stream`, async () => {
      const { engine } = site({ 'big.bin': big });
      const baseline = openFiles().length;
      const out = await engine.handle(request('/big.bin', headers));
      assert.ok(out.body instanceof Readable);
      const body = out.body;
      await new Promise((resolve) => body.once('data', resolve));
      body.destroy();
      assert.equal(await settledOpenFiles(baseline), baseline);
    });
  }
  it('closes an archive entry of a multi-range body destroyed before it is read', async () => {
    const root = join(dir, `zip-${++seq}`);
    writeTree(root, { 'site.zip': makeZip({ entries: [{ name: 'big.bin', data: big, method: 0 }] }) });
    const vfs = new Vfs();
    const engine = new ServeEngine({ mounts: [{ mountpoint: '/', origin: join(root, 'site.zip'), extraMimetypes: BIN }], vfs });
    const out = await engine.handle(request('/big.bin', { range: 'bytes=0-9,100-109' }));
    assert.equal(out.status, 206);
    assert.ok(out.body instanceof Readable);
    out.body.destroy();
    // The entry handle pins the archive: once it is released, a closed index leaves no descriptor.
    await sleep(20);
    for (const c of vfs.containers) await (c as unknown as { close(): Promise<void> }).close();
    assert.ok(!openFiles().some((f) => f.startsWith(root)), `still open: ${openFiles().join(', ')}`);
  });
});

describe('symlink containment', () => {
  it('holds when a Vfs over the disk is passed in, not only for the built-in one', async () => {
    // Defect 5: passing any vfs turned containment off.
    const root = join(dir, `links-${++seq}`);
    const outside = join(dir, `outside-${seq}`);
    writeTree(root, { 'inside.txt': Buffer.from('inside') });
    writeTree(outside, { 'secret.txt': Buffer.from('secret') });
    symlinkSync(join(outside, 'secret.txt'), join(root, 'leak.txt'));
    symlinkSync(join(root, 'inside.txt'), join(root, 'alias.txt'));
    for (const vfs of [undefined, new Vfs()]) {
      const engine = new ServeEngine({ mounts: [{ mountpoint: '/', origin: root }], ...(vfs ? { vfs } : {}) });
      const leak = await engine.handle(request('/leak.txt'));
      assert.equal(leak.status, 404, `a link out of the root is not served (${vfs ? 'Vfs passed' : 'default'})`);
      const alias = await engine.handle(request('/alias.txt'));
      assert.equal(alias.status, 200);
      assert.equal((await drain(alias)).toString(), 'inside');
    }
  });

  it('has nothing to contain on a wholly virtual backend', async () => {
    const mem = new MemFops({ '/www/a.txt': 'virtual' });
    const engine = new ServeEngine({ mounts: [{ mountpoint: '/', origin: '/www' }], vfs: mem });
    const out = await engine.handle(request('/a.txt'));
    assert.equal(out.status, 200);
    assert.equal((await drain(out)).toString(), 'virtual');
  });
});
