// Interoperability: ZipFops must read archives written by real tools (Info-ZIP
// zip, Python zipfile, the JDK's jar, 7-Zip, libarchive's bsdtar). The archives are committed under
// test/fixtures/tools/ (made by make.sh there; provenance in its README.md),
// and manifest.json, computed from the content the tools were given, says what
// each must contain. No zip tool is needed at test time.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { FopError, FopFlags, hasFlag, readAll, vfsGetLength, vfsGetModTime, ZipFops, type FopFd } from '../../src/index.js';

interface ManifestFile {
  readonly name: string;
  readonly size: number;
  readonly sha256: string;
  /** false for entries the tool stamps with the build time (jar's MANIFEST.MF, stdin). */
  readonly fixedModTime?: boolean;
}

interface ManifestArchive {
  readonly archive: string;
  readonly tool: string;
  readonly bytes: number;
  /** `exact`: a Unix/NTFS timestamp extra is stored; `dos`: DOS date/time only (2 s resolution). */
  readonly modTime: 'exact' | 'dos';
  readonly files: readonly ManifestFile[];
  readonly dirs: readonly string[];
  readonly expect: {
    readonly baseOffset?: number;
    readonly comment?: string;
    readonly zip64?: boolean;
    readonly unsupportedMethod?: number;
  };
}

interface Manifest {
  readonly fixedTime: string;
  readonly archives: readonly ManifestArchive[];
}

// Tests run from the repository root (scripts/run-tests.mjs, npm test).
const dir = join(process.cwd(), 'test', 'fixtures', 'tools');
const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
const FIXED_TIME = Date.parse(manifest.fixedTime);
const GZIP_OVERHEAD = 18; // 10-byte header + 8-byte trailer (RFC 1952)
const METHOD_STORED = 0;
const METHOD_DEFLATE = 8;

const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');
const sorted = (names: Iterable<string>): string[] => [...names].sort();

const zip = new ZipFops();
after(() => zip.clear());

async function withOpen<T>(path: string, flags: number, use: (fd: FopFd) => Promise<T>): Promise<T> {
  const fd = await zip.open(path, flags);
  try {
    return await use(fd);
  } finally {
    await fd.close();
  }
}

describe('tool-made archives: the fixture set', () => {
  it('manifest.json covers exactly the archives in the directory', () => {
    const onDisk = readdirSync(dir).filter((f) => /\.(zip|jar)$/.test(f));
    assert.deepEqual(sorted(onDisk), sorted(manifest.archives.map((a) => a.archive)));
    assert.ok(manifest.archives.length >= 15, `only ${manifest.archives.length} archives`);
  });

  it('every archive is the one the manifest was made with, and small', () => {
    let total = 0;
    for (const a of manifest.archives) {
      const size = statSync(join(dir, a.archive)).size;
      assert.equal(size, a.bytes, `${a.archive}: size differs from manifest.json (rebuild with make.sh)`);
      assert.ok(size < 300 * 1024, `${a.archive} is ${size} bytes`);
      total += size;
    }
    assert.ok(total < 1.5 * 1024 * 1024, `fixtures total ${total} bytes`);
  });
});

for (const arc of manifest.archives) {
  const archivePath = join(dir, arc.archive);

  describe(`tool-made archive ${arc.archive} (${arc.tool})`, () => {
    it('index lists exactly the manifest files and directories', async () => {
      const index = await zip.index(archivePath);
      assert.deepEqual(sorted(index.files.keys()), sorted(arc.files.map((f) => f.name)), 'files');
      assert.ok(index.dirs.has(''), 'the root is a directory');
      assert.deepEqual(sorted([...index.dirs].filter((d) => d !== '')), sorted(arc.dirs), 'directories');
      for (const name of arc.dirs) {
        const st = await zip.stat(`${archivePath}/${name}`);
        assert.equal(st.type, 'directory', name);
        await assert.rejects(zip.open(`${archivePath}/${name}`, 0), (err) => FopError.is(err, 'NOT_A_FILE'), name);
      }
    });

    const { baseOffset, comment, zip64, unsupportedMethod } = arc.expect;
    if (baseOffset !== undefined || comment !== undefined || zip64 !== undefined) {
      it('end record: base offset, comment, zip64 as the tool wrote them', async () => {
        const { end } = await zip.index(archivePath);
        if (baseOffset !== undefined) assert.equal(end.baseOffset, baseOffset, 'baseOffset');
        if (comment !== undefined) assert.equal(Buffer.from(end.comment).toString('utf8'), comment, 'comment');
        if (zip64 !== undefined) assert.equal(end.zip64, zip64, 'zip64');
      });
    }
    if (unsupportedMethod !== undefined) {
      it(`holds entries compressed with method ${unsupportedMethod}`, async () => {
        const index = await zip.index(archivePath);
        const methods = [...index.entries()].map((e) => e.method);
        assert.ok(methods.includes(unsupportedMethod), `methods present: ${methods.join(', ')}`);
      });
    }

    for (const file of arc.files) {
      const path = `${archivePath}/${file.name}`;

      it(`reads ${JSON.stringify(file.name)}`, async () => {
        const index = await zip.index(archivePath);
        const info = index.get(file.name);
        assert.ok(info, `${file.name} is not in the index; it holds ${JSON.stringify(sorted(index.files.keys()))}`);
        assert.equal(info.size, file.size, 'size in the central directory');

        if (unsupportedMethod !== undefined && info.method === unsupportedMethod) {
          await assert.rejects(zip.open(path, 0), (err) => FopError.is(err, 'UNSUPPORTED_ENTRY'));
          await assert.rejects(zip.open(path, FopFlags.COMPR_ACCEPTABLE_GZIP), (err) => FopError.is(err, 'UNSUPPORTED_ENTRY'));
          return;
        }
        assert.ok(info.method === METHOD_STORED || info.method === METHOD_DEFLATE, `method ${info.method}`);

        // Identity bytes.
        const content = await withOpen(path, 0, async (fd) => {
          assert.equal(hasFlag(fd.flags, FopFlags.COMPR_IS_GZIP), false, 'COMPR_IS_GZIP without COMPR_ACCEPTABLE_GZIP');
          assert.equal(vfsGetLength(fd), file.size, 'handle length');
          const modTime = vfsGetModTime(fd);
          assert.ok(typeof modTime === 'number' && Number.isFinite(modTime), `modTime ${String(modTime)}`);
          if (file.fixedModTime !== false) {
            if (arc.modTime === 'exact') {
              assert.equal(new Date(modTime).toISOString(), new Date(FIXED_TIME).toISOString(), 'exact modTime');
            } else {
              assert.ok(Math.abs(modTime - FIXED_TIME) <= 2000, `DOS modTime ${new Date(modTime).toISOString()} is not within 2 s of ${manifest.fixedTime}`);
            }
          }
          const data = await readAll(fd);
          assert.equal(data.length, file.size, 'bytes read');
          assert.equal(sha256(data), file.sha256, 'sha256');
          assert.equal(await fd.read(Buffer.alloc(16)), 0, 'EOF after the content');
          const st = await zip.stat(path);
          assert.equal(st.type, 'file');
          assert.equal(st.size, file.size, 'stat size');
          assert.equal(st.modTime, modTime, 'stat modTime agrees with the handle');
          return data;
        });

        // With gzip acceptable: a deflated entry is passed through as one gzip member.
        await withOpen(path, FopFlags.COMPR_ACCEPTABLE_GZIP, async (fd) => {
          const gz = await readAll(fd);
          assert.equal(gz.length, fd.length, 'bytes read = handle length');
          if (info.method === METHOD_DEFLATE && file.size > 0) {
            assert.ok(hasFlag(fd.flags, FopFlags.COMPR_IS_GZIP), 'deflated entry served as gzip');
            assert.equal(fd.length, info.compressedSize + GZIP_OVERHEAD, 'gzip length = compressed size + 18');
            assert.deepEqual([...gz.subarray(0, 3)], [0x1f, 0x8b, 0x08], 'gzip magic and CM=8');
            assert.ok(gunzipSync(gz).equals(content), 'gunzip gives the content');
          } else if (hasFlag(fd.flags, FopFlags.COMPR_IS_GZIP)) {
            // An empty deflated entry may be sent either way; as gzip it must still be exact.
            assert.equal(info.method, METHOD_DEFLATE, 'a stored entry is never gzip');
            assert.equal(fd.length, info.compressedSize + GZIP_OVERHEAD);
            assert.equal(gunzipSync(gz).length, 0);
          } else {
            assert.ok(gz.equals(content), 'identity bytes');
          }
        });
      });
    }
  });
}
