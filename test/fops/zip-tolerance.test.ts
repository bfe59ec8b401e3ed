/**
 * What real tools write and a safe reader must still accept (zero padding
 * after the end record, leading `./`, FAT backslash separators, highly
 * compressible ordinary files), and the line that stays: an unsafe name hides
 * its own entry only, while archive-level lies still refuse everything.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createHandler, FopError, MemFops, ZipFops, readAll, validFopPath, type FopErrorCode, type ZipLimits } from '../../src/index.js';
import { prose, rmTree, tmpDir } from '../helpers/fixtures.js';
import { get, listen } from '../helpers/http.js';
import { makeZip, type ArchiveSpec, type EntrySpec } from '../helpers/zip-writer.js';

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

describe('names: leading ./ and FAT backslashes are normalised, then validated', () => {
  it('strips leading ./ segments; an entry that is only ./ is the root', async () => {
    const bytes = makeZip({
      entries: [
        { name: './', data: '' },
        { name: './index.html', data: '<h1>home</h1>' },
        { name: '././css/', data: '' },
        { name: '././css/app.css', data: 'body{}' },
      ],
    });
    const { zip, archive } = mount(bytes);
    const index = await zip.index(archive);
    assert.deepEqual([...index.files.keys()].sort(), ['css/app.css', 'index.html']);
    assert.deepEqual([...index.dirs].sort(), ['', 'css']);
    assert.equal(index.refused.length, 0);
    assert.equal((await read(zip, `${archive}/index.html`)).toString(), '<h1>home</h1>');
  });

  it('converts backslashes from host 0 (MS-DOS/Windows FAT: PowerShell 5, .NET Framework ZipFile), as unzip does', async () => {
    // No Windows tool here: the generator writes what those tools write (made-by 0x0014, `\` separators).
    const bytes = makeZip({
      entries: [
        { name: 'docs\\index.html', data: '<p>docs</p>', madeBy: 0x0014 },
        { name: 'docs\\img\\x.txt', data: 'x', madeBy: 0x0014 },
      ],
    });
    const { zip, archive } = mount(bytes);
    assert.deepEqual([...(await zip.index(archive)).files.keys()].sort(), ['docs/img/x.txt', 'docs/index.html']);
    assert.equal((await read(zip, `${archive}/docs/img/x.txt`)).toString(), 'x');
  });

  it('leaves backslashes alone elsewhere (unzip: FAT host only, and only in names with no slash): those entries are hidden', async () => {
    for (const [name, madeBy] of [
      ['a\\b.txt', 0x0b14], // NTFS host 11: unzip keeps the backslash
      ['a\\b.txt', 0x031e], // Unix: a backslash is an ordinary character
      ['a/b\\c.txt', 0x0014], // FAT, but the name already uses slashes
    ] as const) {
      const { zip, archive } = mount(
        makeZip({
          entries: [
            { name: 'ok.txt', data: 'ok' },
            { name, data: 'x', madeBy },
          ],
        }),
      );
      const index = await zip.index(archive);
      assert.deepEqual([...index.files.keys()], ['ok.txt'], name);
      assert.deepEqual(
        index.refused.map((r) => r.reason),
        ['backslash'],
      );
    }
  });

  it('hides the unsafe names a conversion reveals: ..\\evil, C:\\x, \\abs, NUL', async () => {
    const bad: [string, RegExp][] = [
      ['..\\evil.txt', /segment/],
      ['a\\..\\..\\evil.txt', /segment/],
      ['C:\\x.txt', /absolute/],
      ['\\abs.txt', /absolute/],
      ['\\\\host\\share\\x', /absolute/],
      ['.\\..\\x', /segment/],
      ['a\\b\0.txt', /NUL/],
    ];
    for (const [name, why] of bad) {
      const { zip, archive } = mount(
        makeZip({
          entries: [
            { name: 'ok.txt', data: 'ok' },
            { name, data: 'x', madeBy: 0x0014 },
          ],
        }),
      );
      const index = await zip.index(archive);
      assert.deepEqual([...index.files.keys()], ['ok.txt'], name);
      assert.deepEqual([...index.dirs], [''], `${name}: implies no directory`);
      assert.equal(index.refused.length, 1, name);
      assert.match(index.refused[0]!.reason, why, name);
    }
  });

  it('two names that become one after normalisation are duplicates: the archive is refused', async () => {
    const cases: EntrySpec[][] = [
      [
        { name: 'a.txt', data: '1' },
        { name: './a.txt', data: '2' },
      ],
      [
        { name: 'd/a.txt', data: '1' },
        { name: 'd\\a.txt', data: '2', madeBy: 0x0014 },
      ],
      [
        { name: './d/a.txt', data: '1' },
        { name: '.\\d\\a.txt', data: '2', madeBy: 0x0014 },
      ],
    ];
    for (const entries of cases) {
      const got = await indexCode(makeZip({ entries }));
      assert.equal(got.code, 'CORRUPT_ARCHIVE');
      assert.match(got.message, /duplicate name/);
    }
  });
});

describe('one unsafe entry does not poison the archive', () => {
  const spec: ArchiveSpec = {
    entries: [
      { name: 'index.html', data: '<h1>fine</h1>' },
      { name: '../evil.txt', data: 'evil' },
      { name: 'C:/Windows/win.ini', data: 'evil' },
      { name: 'invoice\u202Efdp.exe', data: 'evil' },
      { name: 'css/app.css', data: prose(2000) },
    ],
  };

  it('the good entries serve; the unsafe ones are listed nowhere and open as NOT_FOUND', async () => {
    const { zip, archive } = mount(makeZip(spec));
    const index = await zip.index(archive);
    assert.deepEqual([...index.entries()].map((e) => e.name).sort(), ['css/app.css', 'index.html']);
    assert.deepEqual([...index.dirs].sort(), ['', 'css'], 'no directory implied by an unsafe name (no C:, no Windows)');
    assert.deepEqual(
      index.refused.map((r) => [r.row, r.reason]),
      [
        [1, 'empty, "." or ".." segment'],
        [2, 'absolute path'],
        [3, 'bidirectional or invisible format character'],
      ],
    );
    assert.equal((await read(zip, `${archive}/index.html`)).toString(), '<h1>fine</h1>');
    assert.equal((await read(zip, `${archive}/css/app.css`)).length, 2000);
    for (const name of ['C:/Windows/win.ini', 'invoice\u202Efdp.exe', 'C:', 'C:/Windows']) {
      const path = `${archive}/${name}`;
      assert.ok(validFopPath(path), path);
      await assert.rejects(zip.open(path), (err: unknown) => FopError.is(err, 'NOT_FOUND'), name);
      await assert.rejects(zip.stat(path), (err: unknown) => FopError.is(err, 'NOT_FOUND'), name);
    }
  });

  it('over HTTP: 200 for the good entries, 404 for the unsafe one', async () => {
    const dir = tmpDir('vfserve-tolerance-');
    after(() => rmTree(dir));
    writeFileSync(join(dir, 'site.zip'), makeZip(spec));
    const { port, close } = await listen(createHandler({ mounts: [{ mountpoint: '/', origin: `file://${dir}/site.zip` }] }));
    try {
      const home = await get(port, '/index.html');
      assert.equal(home.status, 200);
      assert.equal(home.body.toString(), '<h1>fine</h1>');
      assert.equal((await get(port, '/css/app.css')).status, 200);
      assert.equal((await get(port, '/C:/Windows/win.ini')).status, 404);
      assert.equal((await get(port, '/invoice%E2%80%AEfdp.exe')).status, 404);
    } finally {
      await close();
    }
  });

  it('archive-level defects still refuse everything: overlap, a lying count, a duplicate', async () => {
    const dup = makeZip({
      entries: [
        { name: '../evil', data: 'e' },
        { name: 'a', data: '1' },
        { name: 'a', data: '2' },
      ],
    });
    assert.equal((await indexCode(dup)).code, 'CORRUPT_ARCHIVE');
    const count = makeZip({
      entries: [
        { name: '../evil', data: 'e' },
        { name: 'a', data: '1' },
      ],
      eocd: { count: 1 },
    });
    assert.match((await indexCode(count)).message, /holds 2 entries but the end record declares 1/);
    // An unsafe entry whose data overlaps a good one still counts for the overlap check.
    const overlap = makeZip({
      entries: [
        { name: 'a', data: prose(1000) },
        { name: '../evil', data: 'e', cd: { offset: 0 } },
      ],
    });
    assert.match((await indexCode(overlap)).message, /overlap/);
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

describe('the real-tool fixtures carry what they are meant to test', () => {
  const tools = join(process.cwd(), 'test', 'fixtures', 'tools');

  it('bsdtar-padded-dotslash.zip: ./ names and zero padding after the end record, read as plain names', async () => {
    const raw = readFileSync(join(tools, 'bsdtar-padded-dotslash.zip'));
    const eocd = raw.lastIndexOf(Buffer.from('PK\x05\x06', 'latin1'));
    const after = raw.subarray(eocd + 22 + raw.readUInt16LE(eocd + 20));
    assert.ok(after.length > 1000 && after.every((b) => b === 0), `${after.length} trailing bytes, all zero`);
    assert.equal(raw.length % 10_240, 0, 'padded to a 10,240-byte block');
    assert.ok(raw.includes(Buffer.from('./index.html')), 'names start with ./');
    const zip = new ZipFops();
    const index = await zip.index(join(tools, 'bsdtar-padded-dotslash.zip'));
    assert.ok(index.files.has('index.html') && index.files.has('sub/deeper/big.txt'));
    assert.equal(index.refused.length, 0);
  });

  it('infozip-zeros.zip: Info-ZIP deflated 2 MiB of zeros above 1,000:1, and it is served', async () => {
    const zip = new ZipFops();
    const path = join(tools, 'infozip-zeros.zip');
    const info = (await zip.index(path)).get('zeros.bin')!;
    assert.equal(info.size, 2 * 1024 * 1024);
    assert.ok(info.size / info.compressedSize > 1000, `ratio ${info.size / info.compressedSize}`);
    assert.ok((await read(zip, `${path}/zeros.bin`)).equals(Buffer.alloc(info.size)));
  });
});
