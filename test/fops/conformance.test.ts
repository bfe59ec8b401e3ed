import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { describeFopsConformance } from '../../src/testing/conformance.js';
import { FopHandle, MemFops, PlatFops, Vfs, ZipFops, type FileOps, type FopFd } from '../../src/index.js';
import { makeZip } from '../helpers/zip-writer.js';
import { rmTree, sampleTree, tmpDir, under, writeTree } from '../helpers/fixtures.js';

const tree = sampleTree();
const entries = (method?: number) => Object.entries(tree).map(([name, data]) => ({ name, data, ...(method === undefined ? {} : { method }) }));
const dirsOf = (prefix: string) => [`${prefix}/snow ☃`, `${prefix}/sub`, `${prefix}/sub/deeper`];

describeFopsConformance('PlatFops (disk)', () => {
  const dir = tmpDir();
  writeTree(dir, tree);
  writeFileSync(join(dir, 'scratch.bin'), Buffer.alloc(64, 0x2e));
  return { fops: new PlatFops(), files: under(dir, tree), dirs: dirsOf(dir), virtual: false, writable: join(dir, 'scratch.bin'), teardown: () => rmTree(dir) };
});

describeFopsConformance('MemFops (virtual, in memory)', () => {
  const fops = new MemFops(under('/site', tree));
  fops.set('/scratch.bin', new Uint8Array(64));
  return { fops, files: under('/site', tree), dirs: ['/site', ...dirsOf('/site')], virtual: true, writable: '/scratch.bin' };
});

describeFopsConformance('ZipFops, deflated entries, archive on disk', () => {
  const dir = tmpDir();
  const archive = join(dir, 'site.zip');
  writeFileSync(archive, makeZip({ entries: entries() }));
  return { fops: new ZipFops(), files: under(archive, tree), dirs: dirsOf(archive), virtual: true, teardown: () => rmTree(dir) };
});

describeFopsConformance('ZipFops, deflated entries streamed through the inflater (inflate cache off)', () => {
  const dir = tmpDir();
  const archive = join(dir, 'stream.zip');
  writeFileSync(archive, makeZip({ entries: entries() }));
  return {
    fops: new ZipFops({ inflateCache: { maxBytes: 0 } }),
    files: under(archive, tree),
    dirs: dirsOf(archive),
    virtual: true,
    teardown: () => rmTree(dir),
  };
});

describeFopsConformance('ZipFops, deflated entries read through the random-access index (a point every 4 KiB)', () => {
  const dir = tmpDir();
  const archive = join(dir, 'indexed.zip');
  // Level 1 with small blocks, so the 300 KB prose has boundaries every few KiB; noise.bin is all stored blocks (mapped).
  const raw = (data: Buffer) => deflateRawSync(data, { level: 1, memLevel: 2 });
  writeFileSync(
    archive,
    makeZip({ entries: Object.entries(tree).map(([name, data]) => ({ name, data, ...(data.length > 0 ? { method: 8, stored: raw(data) } : {}) })) }),
  );
  return {
    fops: new ZipFops({ inflateCache: { maxBytes: 0 }, randomAccess: { span: 4096, maxShare: 1 } }),
    files: under(archive, tree),
    dirs: dirsOf(archive),
    virtual: true,
    teardown: () => rmTree(dir),
  };
});

describeFopsConformance('ZipFops, stored entries, archive on disk', () => {
  const dir = tmpDir();
  const archive = join(dir, 'stored.zip');
  writeFileSync(archive, makeZip({ entries: entries(0) }));
  return { fops: new ZipFops(), files: under(archive, tree), dirs: dirsOf(archive), virtual: true, teardown: () => rmTree(dir) };
});

describeFopsConformance('ZipFops, an archive stored inside an archive (read in place)', () => {
  const dir = tmpDir();
  const archive = join(dir, 'outer.zip');
  writeFileSync(archive, makeZip({ entries: [{ name: 'docs/inner.zip', data: makeZip({ entries: entries() }), method: 0 }] }));
  const inner = `${archive}/docs/inner.zip`;
  return { fops: new ZipFops(), files: under(inner, tree), dirs: dirsOf(inner), virtual: true, teardown: () => rmTree(dir) };
});

describeFopsConformance('Vfs chain: an archive deflated inside an archive deflated inside an archive', () => {
  const dir = tmpDir();
  const archive = join(dir, 'outer.war');
  const inner = makeZip({ entries: entries(0) });
  const middle = makeZip({ entries: [{ name: 'WEB-INF/lib/lib.jar', data: inner }] });
  writeFileSync(archive, makeZip({ entries: [{ name: 'middle.zip', data: middle }] }));
  const path = `${archive}/middle.zip/WEB-INF/lib/lib.jar`;
  return {
    fops: new Vfs(),
    files: under(path, tree),
    dirs: dirsOf(path),
    virtual: true,
    teardown: () => rmTree(dir),
  };
});

describeFopsConformance('ZipFops, an archive deflated inside an archive, read through the random-access index (inflate cache off)', () => {
  const dir = tmpDir();
  const archive = join(dir, 'outer.zip');
  // Small blocks (memLevel 2), so the inner archive's deflate stream has access points every few KiB.
  const inner = makeZip({ entries: entries(0) });
  writeFileSync(archive, makeZip({ entries: [{ name: 'inner.zip', data: inner, method: 8, stored: deflateRawSync(inner, { level: 1, memLevel: 2 }) }] }));
  const path = `${archive}/inner.zip`;
  return {
    fops: new ZipFops({ inflateCache: { maxBytes: 0 }, randomAccess: { span: 4096, maxShare: 1 } }),
    files: under(path, tree),
    dirs: dirsOf(path),
    virtual: true,
    teardown: () => rmTree(dir),
  };
});

describeFopsConformance('ZipFops over an archive held in MemFops', () => {
  const mem = new MemFops({ '/bundles/app.JAR': makeZip({ entries: entries() }) });
  return { fops: new ZipFops({ source: mem }), files: under('/bundles/app.JAR', tree), dirs: dirsOf('/bundles/app.JAR'), virtual: true };
});

describeFopsConformance('Vfs chain: disk files and entries of an archive beside them', () => {
  const dir = tmpDir();
  writeTree(dir, tree);
  writeFileSync(join(dir, 'site.zip'), makeZip({ entries: entries() }));
  return {
    fops: new Vfs(),
    files: { ...under(dir, tree), ...under(join(dir, 'site.zip'), tree) },
    dirs: [...dirsOf(dir), ...dirsOf(join(dir, 'site.zip'))],
    teardown: () => rmTree(dir),
  };
});

/** A subclass that wraps the platform open, as lws's test server does. */
class Logged extends PlatFops {
  readonly opened: string[] = [];
  override async open(path: string, flags = 0): Promise<FopFd> {
    this.opened.push(path);
    return super.open(path, flags);
  }
}

describeFopsConformance('Vfs over a subclassed PlatFops (it sees archive opens too)', () => {
  const dir = tmpDir();
  writeFileSync(join(dir, 'site.zip'), makeZip({ entries: entries() }));
  const base = new Logged();
  return { fops: new Vfs({ base }), files: under(join(dir, 'site.zip'), tree), teardown: () => rmTree(dir) };
});

/**
 * The smallest user backend: only open(), handles with only read/seek/close
 * (no stat, no readAt), so every helper's fallback is exercised, and a zip
 * archive inside it is read through serialised seek+read.
 */
class MinimalFops implements FileOps {
  readonly #files: Map<string, Uint8Array>;
  constructor(files: Record<string, Uint8Array>) {
    this.#files = new Map(Object.entries(files));
  }
  async open(path: string, flags = 0): Promise<FopFd> {
    const { FopError, assertFopPath, FopFlags } = await import('../../src/index.js');
    assertFopPath(path, 'open');
    const data = this.#files.get(path);
    if (!data) {
      const isDir = [...this.#files.keys()].some((k) => k.startsWith(`${path}/`));
      throw new FopError(isDir ? 'NOT_A_FILE' : 'NOT_FOUND', 'open', path);
    }
    return new MinimalHandle(this, path, data, (flags & ~FopFlags.COMPR_IS_GZIP) | FopFlags.VIRTUAL);
  }
}
class MinimalHandle extends FopHandle {
  readonly #data: Uint8Array;
  constructor(fops: FileOps, path: string, data: Uint8Array, flags: number) {
    super(fops, path, { length: data.length, flags });
    this.#data = data;
  }
  protected readImpl(buf: Uint8Array): Promise<number> {
    const n = Math.min(buf.length, this.#data.length - this.pos);
    buf.set(this.#data.subarray(this.pos, this.pos + n));
    return Promise.resolve(n);
  }
}

describeFopsConformance('a minimal user backend (open only; no stat, no readAt)', () => ({
  fops: new MinimalFops(under('/v', tree)),
  files: under('/v', tree),
  dirs: ['/v/sub'],
  virtual: true,
}));

describeFopsConformance('Vfs over a minimal user backend holding a .war archive', () => ({
  fops: new Vfs({ base: new MinimalFops({ '/deploy/app.war': makeZip({ entries: entries() }) }) }),
  files: under('/deploy/app.war', tree),
  dirs: dirsOf('/deploy/app.war'),
  virtual: true,
}));
