// Fixtures for the remote-archive benchmark (bench/remote.mjs), generated once into
// bench/.data/remote/ and reused; manifest.json records the generator version and every entry
// (offset, sizes, SHA-256), and a mismatch or a missing file regenerates the set. Deterministic
// (mulberry32 and AES-CTR seeds), nothing from the network.
//
//   site.zip     SMALL_COUNT small entries s/NNNN.<ext>, 1–16 KiB: text (.html .css .js .txt,
//                deflated at level 6) and binary (.png .woff2, random bytes, stored); then big.mp4
//                (10 MiB random, stored) and big.txt (10 MiB text, deflated); its central
//                directory fits in 64 KiB (the "opening costs one request" case).
//   site-v2.zip  site.zip with s/0000.html changed (and so another size): the replacement.
//   many.zip     MANY_COUNT tiny stored entries m/NNNNN.txt: a directory larger than the suffix
//                read on open (the "one more request fetches exactly it" case).
//   fill.zip     FILL_COUNT stored entries f/NN.mp4 of 10 MiB random: enough distinct bytes to
//                fill a 64 MiB block cache.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DATA_DIR, MiB } from './common.mjs';
import { randomChunks, ZipWriter } from './zipgen.mjs';

export const REMOTE_GEN_VERSION = 1;
export const REMOTE_DIR = join(DATA_DIR, 'remote');
export const SMALL_COUNT = 1000;
export const MANY_COUNT = 5000;
export const FILL_COUNT = 10;
export const BIG_SIZE = 10 * MiB;

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = (() => {
  const rnd = mulberry32(99);
  const syll = ['ba', 'ce', 'di', 'fo', 'gu', 'ha', 'je', 'ki', 'lo', 'mu', 'na', 'pe', 'qi', 'ro', 'su', 'ta', 've', 'wi', 'xo', 'yu', 'ze'];
  return Array.from({ length: 600 }, () => {
    let w = '';
    const n = 1 + Math.floor(rnd() * 3);
    for (let i = 0; i < n; i++) w += syll[Math.floor(rnd() * syll.length)];
    return w;
  });
})();

/** `size` bytes of text (words with a skewed choice, so deflate gets about 3:1), from `seed`. */
export function textBytes(size, seed) {
  const rnd = mulberry32(seed);
  const parts = [];
  let n = 0;
  while (n < size) {
    const w = WORDS[Math.floor(rnd() * rnd() * WORDS.length)];
    const sep = rnd() < 0.1 ? '.\n' : ' ';
    parts.push(w, sep);
    n += w.length + sep.length;
  }
  return Buffer.from(parts.join('').slice(0, size), 'latin1');
}

const randomBytes = (size, seed) => Buffer.concat([...randomChunks(size, seed)]);
const sha = (b) => createHash('sha256').update(b).digest('hex');
const TEXT_EXT = ['.html', '.css', '.js', '.txt'];
const BIN_EXT = ['.png', '.woff2'];

/** The small entries of site.zip: name, bytes, whether deflated. `version` 2 changes the first one. */
function smallEntries(version) {
  const rnd = mulberry32(12);
  const out = [];
  for (let i = 0; i < SMALL_COUNT; i++) {
    const size = 1024 + Math.floor(rnd() * 15 * 1024);
    const text = rnd() < 0.6;
    const ext = text ? TEXT_EXT[i % TEXT_EXT.length] : BIN_EXT[i % BIN_EXT.length];
    const name = `s/${String(i).padStart(4, '0')}${i === 0 ? '.html' : ext}`;
    let data = i === 0 || text ? textBytes(size, 1000 + i) : randomBytes(size, `s${i}`);
    if (i === 0 && version === 2) data = Buffer.concat([Buffer.from('<!-- version 2 -->\n'), data]);
    out.push({ name, data, deflate: i === 0 || text });
  }
  return out;
}

async function writeArchive(path, entries) {
  const z = new ZipWriter(path);
  const out = [];
  for (const e of entries) {
    const offset = z.w.offset;
    const chunks = e.chunks ?? [e.data];
    let csize;
    let usize;
    let hash = e.sha256;
    if (e.deflate) {
      const r = await z.addDeflated(e.name, chunks, { level: 6 });
      csize = r.csize;
      usize = r.usize;
    } else {
      const h = createHash('sha256');
      const r = z.addStored(
        e.name,
        (function* () {
          for (const c of chunks) {
            h.update(c);
            yield c;
          }
        })(),
      );
      csize = r.size;
      usize = r.size;
      hash ??= h.digest('hex');
    }
    hash ??= sha(e.data);
    out.push({ name: e.name, offset, csize, usize, method: e.deflate ? 8 : 0, sha256: hash });
  }
  const cdOffset = z.w.offset;
  const size = z.close();
  return { entries: out, cdOffset, size };
}

/**
 * Ensures bench/.data/remote/ holds the four archives. Returns { dir, archives: { name: { path,
 * size, cdOffset, entries: [{ name, offset, csize, usize, method, sha256 }] } } }.
 */
export async function remoteFixtures() {
  const manifestPath = join(REMOTE_DIR, 'manifest.json');
  if (existsSync(manifestPath)) {
    try {
      const m = JSON.parse(readFileSync(manifestPath, 'utf8'));
      if (m.version === REMOTE_GEN_VERSION && Object.values(m.archives).every((a) => existsSync(join(REMOTE_DIR, a.file)))) {
        for (const a of Object.values(m.archives)) a.path = join(REMOTE_DIR, a.file);
        return { dir: REMOTE_DIR, archives: m.archives };
      }
    } catch {
      // regenerate below
    }
  }
  // Built in a temporary directory and swapped in, so an interrupted run never leaves a half set.
  const tmp = `${REMOTE_DIR}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const archives = {};
  const big = () => [
    { name: 'big.mp4', chunks: [...randomChunks(BIG_SIZE, 'remote-big')], deflate: false },
    { name: 'big.txt', data: textBytes(BIG_SIZE, 7), deflate: true },
  ];
  for (const version of [1, 2]) {
    const file = version === 1 ? 'site.zip' : 'site-v2.zip';
    archives[file] = { file, ...(await writeArchive(join(tmp, file), [...smallEntries(version), ...big()])) };
  }
  const many = Array.from({ length: MANY_COUNT }, (_, i) => {
    const name = `m/${String(i).padStart(5, '0')}.txt`;
    return { name, data: Buffer.from(`${name}\n`), deflate: false };
  });
  archives['many.zip'] = { file: 'many.zip', ...(await writeArchive(join(tmp, 'many.zip'), many)) };
  const fill = Array.from({ length: FILL_COUNT }, (_, i) => ({
    name: `f/${String(i).padStart(2, '0')}.mp4`,
    chunks: randomChunks(BIG_SIZE, `remote-fill-${i}`),
    deflate: false,
  }));
  archives['fill.zip'] = { file: 'fill.zip', ...(await writeArchive(join(tmp, 'fill.zip'), fill)) };
  writeFileSync(join(tmp, 'manifest.json'), JSON.stringify({ version: REMOTE_GEN_VERSION, archives }, null, 1));
  rmSync(REMOTE_DIR, { recursive: true, force: true });
  renameSync(tmp, REMOTE_DIR);
  for (const a of Object.values(archives)) a.path = join(REMOTE_DIR, a.file);
  return { dir: REMOTE_DIR, archives };
}

/** The bytes of entry `name` of the archive at `path` as a client sees them (inflated when deflated). */
export async function entryBytes(archive, name) {
  const { inflateRawSync } = await import('node:zlib');
  const { openSync, readSync, closeSync } = await import('node:fs');
  const e = archive.entries.find((x) => x.name === name);
  if (!e) throw new Error(`no entry ${name}`);
  const fd = openSync(archive.path, 'r');
  try {
    const head = Buffer.alloc(30);
    readSync(fd, head, 0, 30, e.offset);
    const start = e.offset + 30 + head.readUInt16LE(26) + head.readUInt16LE(28);
    const raw = Buffer.alloc(e.csize);
    readSync(fd, raw, 0, e.csize, start);
    return e.method === 8 ? inflateRawSync(raw) : raw;
  } finally {
    closeSync(fd);
  }
}
