// Benchmark 2: sequential read throughput through createFopReadStream.
//
//   node bench/read.mjs [--runs 5]
//
// Fixtures (bench/.data, generated once): read.zip holding stored.bin (64 MiB
// of AES-CTR keystream, method 0) and text.txt (200 MiB of text-like data,
// deflated at level 6 to ~64 MiB); plain-64MiB.bin with the bytes of
// stored.bin; text.gz holding exactly the gzip member ZipFops serves for
// text.txt with COMPR_ACCEPTABLE_GZIP (same size, same bytes; checked).
//
// Each case opens a handle and pipes createFopReadStream (default 64 KiB
// chunks) into a counting Writable; one warm-up, then best of --runs. The
// fixtures are read once before timing, so every case reads from the page
// cache. Reference rows (plain node streams) show the platform's ceiling.
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { open as fsOpen } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createInflateRaw } from 'node:zlib';
import { countingSink, median, timeRounds, DIST, emitResult, fmt, isMain, log, MiB, runChild, table } from './lib/common.mjs';
import { readFixtures } from './lib/zipgen.mjs';

const SELF = fileURLToPath(import.meta.url);
const GOAL_GZIP_RATIO = 0.9;

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

async function child() {
  const runs = Number(arg('--runs', '5'));
  const { zip, plain, gz } = await readFixtures();
  const lib = await import(pathToFileURL(DIST).href);
  const { PlatFops, ZipFops, FopFlags, createFopReadStream } = lib;
  const plat = new PlatFops();
  const zf = new ZipFops();
  const index = await zf.index(zip);
  const textInfo = index.get('text.txt');
  const storedInfo = index.get('stored.bin');
  const gzSize = statSync(gz).size;
  if (gzSize !== textInfo.compressedSize + 18) throw new Error('text.gz is not the gzip form of text.txt');

  // Where text.txt's deflate data starts, for the zlib reference row.
  const fh = await fsOpen(zip, 'r');
  const lh = Buffer.alloc(30);
  await fh.read(lh, 0, 30, textInfo.localHeaderOffset);
  await fh.close();
  const textDataStart = textInfo.localHeaderOffset + 30 + lh.readUInt16LE(26) + lh.readUInt16LE(28);

  const viaFops = async (fops, path, flags = 0, hash) => {
    const fd = await fops.open(path, flags);
    const sink = countingSink(hash);
    await pipeline(createFopReadStream(fd), sink);
    return { bytes: sink.bytes, length: fd.length, flags: fd.flags };
  };
  const viaFs = async (path, hash) => {
    const sink = countingSink(hash);
    await pipeline(createReadStream(path, { highWaterMark: 64 * 1024 }), sink);
    return { bytes: sink.bytes };
  };
  const viaZlib = async () => {
    const sink = countingSink();
    await pipeline(
      createReadStream(zip, { start: textDataStart, end: textDataStart + textInfo.compressedSize - 1, highWaterMark: 64 * 1024 }),
      createInflateRaw(),
      sink,
    );
    return { bytes: sink.bytes };
  };

  // Correctness, once (and it pulls every fixture into the page cache).
  const sha = () => createHash('sha256');
  const digest = async (fn) => {
    const h = sha();
    const r = await fn(h);
    return { ...r, sha: h.digest('hex') };
  };
  const checks = {};
  {
    const a = await digest((h) => viaFops(zf, `${zip}/stored.bin`, 0, h));
    const b = await digest((h) => viaFops(plat, plain, 0, h));
    checks.storedEqualsPlain = a.sha === b.sha && a.bytes === storedInfo.size;
    const g = await digest((h) => viaFops(zf, `${zip}/text.txt`, FopFlags.COMPR_ACCEPTABLE_GZIP, h));
    const f = await digest((h) => viaFops(plat, gz, 0, h));
    checks.gzipIsGzip = (g.flags & FopFlags.COMPR_IS_GZIP) !== 0;
    checks.gzipEqualsTextGz = g.sha === f.sha && g.bytes === gzSize;
    const inf = await viaFops(zf, `${zip}/text.txt`, 0);
    checks.inflatedSize = inf.bytes === textInfo.size;
    readFileSync(zip); // the whole archive in the page cache
    for (const [k, v] of Object.entries(checks)) if (!v) throw new Error(`check failed: ${k}`);
  }

  const cases = [
    { key: 'plainFops', label: 'plain file 64 MiB, PlatFops', bytes: storedInfo.size, fn: () => viaFops(plat, plain) },
    { key: 'storedZip', label: 'stored entry 64 MiB, ZipFops', bytes: storedInfo.size, fn: () => viaFops(zf, `${zip}/stored.bin`) },
    { key: 'plainGzFops', label: `plain text.gz ${fmt(gzSize / MiB)} MiB, PlatFops`, bytes: gzSize, fn: () => viaFops(plat, gz) },
    {
      key: 'gzipPassthrough',
      label: `gzip passthrough ${fmt(gzSize / MiB)} MiB, ZipFops`,
      bytes: gzSize,
      fn: () => viaFops(zf, `${zip}/text.txt`, FopFlags.COMPR_ACCEPTABLE_GZIP),
    },
    {
      key: 'inflate',
      label: `inflated ${fmt(textInfo.size / MiB, 0)} MiB out (${fmt(textInfo.compressedSize / MiB)} MiB in), ZipFops`,
      bytes: textInfo.size,
      fn: () => viaFops(zf, `${zip}/text.txt`, 0),
    },
    { key: 'refFsPlain', label: 'ref: fs.createReadStream plain 64 MiB', bytes: storedInfo.size, ref: true, fn: () => viaFs(plain) },
    { key: 'refFsGz', label: 'ref: fs.createReadStream text.gz', bytes: gzSize, ref: true, fn: () => viaFs(gz) },
    { key: 'refZlib', label: 'ref: fs.createReadStream + zlib.createInflateRaw', bytes: textInfo.size, ref: true, fn: () => viaZlib() },
  ];
  const timed = await timeRounds(cases, { runs, warmup: 1 });
  const results = {};
  for (const c of cases) {
    const r = timed[c.key];
    if (r.last.bytes !== c.bytes) throw new Error(`${c.key}: read ${r.last.bytes} bytes, expected ${c.bytes}`);
    results[c.key] = {
      label: c.label,
      ref: !!c.ref,
      bytes: c.bytes,
      bestMs: r.best,
      medianMs: r.median,
      timesMs: r.times,
      mibPerSec: c.bytes / MiB / (r.best / 1000),
      medianMibPerSec: c.bytes / MiB / (r.median / 1000),
    };
  }
  // Paired comparison: per round, plain-file time / passthrough time (same round, adjacent runs).
  const pg = timed.plainGzFops.times;
  const gp = timed.gzipPassthrough.times;
  const pairedRatio = median(pg.map((t, i) => t / gp[i]));
  zf.clear();
  emitResult({ checks, textRatio: textInfo.size / textInfo.compressedSize, gzSize, results, pairedRatio });
}

export async function main() {
  const runs = arg('--runs', '5');
  log('read: generating/reusing fixtures in bench/.data');
  const t0 = performance.now();
  await readFixtures(); // in this process, so the measuring child starts clean
  const dt = performance.now() - t0;
  if (dt > 100) log(`  fixtures ready in ${fmt(dt / 1000)} s`);
  const r = await runChild(SELF, ['--child', '--runs', runs], { timeoutMs: 300_000 });
  if (r.error) throw new Error(`read: ${r.error}`);
  const R = r.results;
  log('');
  log(
    `Sequential reads through createFopReadStream (64 KiB chunks) into a counting Writable; page cache warm; best of ${runs} rounds after 1 warm-up round (cases interleaved per round)`,
  );
  log(
    `checks: stored entry == plain file bytes: ${r.checks.storedEqualsPlain}; gzip passthrough == text.gz bytes: ${r.checks.gzipEqualsTextGz}; deflate ratio ${fmt(r.textRatio, 2)}:1`,
  );
  log(
    table(
      ['case', 'MiB', 'best ms', 'best MiB/s', 'median MiB/s'],
      Object.values(R).map((x) => [x.label, fmt(x.bytes / MiB), fmt(x.bestMs, 0), fmt(x.mibPerSec, 0), fmt(x.medianMibPerSec, 0)]),
    ),
  );
  const ratio = R.gzipPassthrough.mibPerSec / R.plainGzFops.mibPerSec;
  const medRatio = R.gzipPassthrough.medianMibPerSec / R.plainGzFops.medianMibPerSec;
  const goals = [
    {
      goal: 'gzip passthrough within 10% of a plain file of the same size',
      value: 100 * ratio,
      unit: '% of plain',
      limit: 100 * GOAL_GZIP_RATIO,
      cmp: '>=',
      pass: ratio >= GOAL_GZIP_RATIO,
      note: `${fmt(R.gzipPassthrough.mibPerSec, 0)} vs ${fmt(R.plainGzFops.mibPerSec, 0)} MiB/s best-of-${runs}; medians ${fmt(100 * medRatio, 0)}%; median of per-round ratios ${fmt(100 * r.pairedRatio, 0)}%`,
    },
  ];
  return { bench: 'read', runs: Number(runs), ...r, storedVsPlain: R.storedZip.mibPerSec / R.plainFops.mibPerSec, gzipVsPlain: ratio, goals };
}

if (isMain(import.meta.url)) {
  if (process.argv.includes('--child')) await child();
  else {
    const r = await main();
    log('');
    for (const g of r.goals) log(`${g.pass ? 'PASS' : 'FAIL'}  ${g.goal}: ${fmt(g.value, 0)}${g.unit} (${g.note})`);
    emitResult(r);
  }
}
