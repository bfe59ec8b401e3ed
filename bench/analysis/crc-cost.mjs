// Analysis only (not part of `npm run bench`): how much of the stored-entry
// overhead (single 64 MiB stream, and 200 concurrent 1 MiB reads) is the CRC-32
// that StoredEntryHandle computes on the main thread? Compares dist/ as built
// with a patched copy (bench/.data/variants/no-crc) whose stored handle skips
// the CRC, and with plain files, in interleaved rounds.
//
//   node bench/analysis/crc-cost.mjs [--runs 7]
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { countingSink, dataPath, DIST, emitResult, fmt, isMain, log, ROOT, table, timeRounds } from '../lib/common.mjs';
import { concurrentFixtures, readFixtures } from '../lib/zipgen.mjs';

const SEARCH = 'this.#crc = crc32(buf.subarray(0, n), this.#crc);';

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

async function main() {
  const runs = Number(arg('--runs', '7'));
  const dir = dataPath(join('variants', 'no-crc'));
  rmSync(dir, { recursive: true, force: true });
  cpSync(join(ROOT, 'dist'), join(dir, 'dist'), { recursive: true });
  const entryJs = join(dir, 'dist', 'fops', 'zip', 'entry.js');
  const text = readFileSync(entryJs, 'utf8');
  if (!text.includes(SEARCH)) {
    log(`crc-cost: pattern not found in entry.js (the library changed): ${SEARCH}`);
    return;
  }
  writeFileSync(entryJs, text.replace(SEARCH, 'this.#crc = this.entry.crc; // bench: CRC skipped'));

  const conc = concurrentFixtures();
  const rf = await readFixtures();
  const A = await import(pathToFileURL(DIST).href);
  const B = await import(pathToFileURL(join(dir, 'dist', 'index.js')).href);
  const za = new A.ZipFops();
  const zb = new B.ZipFops();
  const plat = new A.PlatFops();
  const readOne = async (lib, fops, path) => {
    const fd = await fops.open(path, 0);
    const s = countingSink();
    await pipeline(lib.createFopReadStream(fd), s);
    return s.bytes;
  };
  const batch = (lib, fops, paths) => Promise.all(paths.map((p) => readOne(lib, fops, p)));
  const zipPaths = conc.names.map((n) => `${conc.zip}/${n}`);
  const cases = [
    { key: 'c-zip', label: '200 x 1 MiB stored entries, CRC checked (as built)', fn: () => batch(A, za, zipPaths) },
    { key: 'c-zip-nocrc', label: '200 x 1 MiB stored entries, CRC skipped (patched)', fn: () => batch(B, zb, zipPaths) },
    { key: 'c-plain', label: '200 x 1 MiB plain files', fn: () => batch(A, plat, conc.plainPaths) },
    { key: 's-zip', label: 'stored entry 64 MiB, CRC checked (as built)', fn: () => readOne(A, za, `${rf.zip}/stored.bin`) },
    { key: 's-zip-nocrc', label: 'stored entry 64 MiB, CRC skipped (patched)', fn: () => readOne(B, zb, `${rf.zip}/stored.bin`) },
    { key: 's-plain', label: 'plain file 64 MiB', fn: () => readOne(A, plat, rf.plain) },
  ];
  const r = await timeRounds(cases, { runs, warmup: 1 });
  za.clear();
  zb.clear();
  const rows = cases.map((c) => ({ label: c.label, bestMs: r[c.key].best, medianMs: r[c.key].median }));
  log(`CRC-32 cost on stored entries; best and median of ${runs} interleaved rounds`);
  log(
    table(
      ['case', 'best ms', 'median ms'],
      rows.map((x) => [x.label, fmt(x.bestMs, 0), fmt(x.medianMs, 0)]),
    ),
  );
  emitResult({ bench: 'crc-cost', runs, rows });
}

if (isMain(import.meta.url)) await main();
