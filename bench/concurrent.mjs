// Benchmark 3: 200 concurrent opens + full reads.
//
//   node bench/concurrent.mjs [--runs 5] [--concurrency 200]
//
// Fixtures (bench/.data, generated once): conc.zip with 200 stored entries of
// 1 MiB each (distinct pseudo-random bytes), and the same 200 files as plain
// files. Each case starts all opens at once (Promise.all), pipes every handle
// through createFopReadStream into a counting Writable, and reports the wall
// time until the last stream finishes; one warm-up, then best (and median) of
// --runs. The "cold" row is the first batch on a fresh ZipFops, so it includes
// the index build, which 200 simultaneous opens must share (indexBuilds == 1).
import { pipeline } from 'node:stream/promises';
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { countingSink, timeRounds, DIST, emitResult, fmt, isMain, log, MiB, runChild, table } from './lib/common.mjs';
import { CONC_SIZE, concurrentFixtures } from './lib/zipgen.mjs';

const SELF = fileURLToPath(import.meta.url);

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

async function child() {
  const runs = Number(arg('--runs', '5'));
  const conc = Number(arg('--concurrency', '200'));
  const { zip, names, plainPaths } = concurrentFixtures();
  const { PlatFops, ZipFops, createFopReadStream } = await import(pathToFileURL(DIST).href);
  // Page cache warm for both forms.
  readFileSync(zip);
  for (const p of plainPaths) readFileSync(p);

  const readOne = async (fops, path) => {
    const fd = await fops.open(path, 0);
    const sink = countingSink();
    await pipeline(createFopReadStream(fd), sink);
    return sink.bytes;
  };
  const batch = async (fops, paths) => {
    const counts = await Promise.all(paths.map((p) => readOne(fops, p)));
    const total = counts.reduce((a, b) => a + b, 0);
    if (total !== paths.length * CONC_SIZE) throw new Error(`read ${total} bytes`);
    return total;
  };
  const pick = (list) => Array.from({ length: conc }, (_, i) => list[i % list.length]);
  const zipDistinct = pick(names).map((n) => `${zip}/${n}`);
  const zipSame = Array.from({ length: conc }, () => `${zip}/${names[0]}`);
  const plainDistinct = pick(plainPaths);
  const plainSame = Array.from({ length: conc }, () => plainPaths[0]);

  // Cold: a fresh ZipFops, 200 opens racing for the first index build.
  const cold = new ZipFops();
  const t0 = performance.now();
  await batch(cold, zipDistinct);
  const coldMs = performance.now() - t0;
  const coldIndexBuilds = cold.stats.indexBuilds;
  cold.clear();

  const zf = new ZipFops();
  const plat = new PlatFops();
  await zf.index(zip);
  const cases = [
    { key: 'zipDistinct', label: `ZipFops, ${conc} distinct 1 MiB stored entries`, fn: () => batch(zf, zipDistinct) },
    { key: 'plainDistinct', label: `PlatFops, ${conc} distinct 1 MiB plain files`, fn: () => batch(plat, plainDistinct) },
    { key: 'zipSame', label: `ZipFops, the same 1 MiB entry ${conc} times`, fn: () => batch(zf, zipSame) },
    { key: 'plainSame', label: `PlatFops, the same 1 MiB file ${conc} times`, fn: () => batch(plat, plainSame) },
  ];
  const timed = await timeRounds(cases, { runs, warmup: 1 });
  const results = {};
  for (const c of cases) {
    const r = timed[c.key];
    results[c.key] = { label: c.label, bestMs: r.best, medianMs: r.median, timesMs: r.times, mibPerSec: (conc * CONC_SIZE) / MiB / (r.best / 1000) };
  }
  zf.clear();
  emitResult({ concurrency: conc, coldMs, coldIndexBuilds, results });
}

export async function main() {
  const runs = arg('--runs', '5');
  const conc = arg('--concurrency', '200');
  log('concurrent: generating/reusing fixtures in bench/.data');
  const t0 = performance.now();
  concurrentFixtures();
  const dt = performance.now() - t0;
  if (dt > 100) log(`  fixtures ready in ${fmt(dt / 1000)} s`);
  const r = await runChild(SELF, ['--child', '--runs', runs, '--concurrency', conc], { timeoutMs: 300_000 });
  if (r.error) throw new Error(`concurrent: ${r.error}`);
  const R = r.results;
  log('');
  log(
    `${conc} concurrent open + createFopReadStream of 1 MiB each (${conc} MiB total); wall time until all finish; best of ${runs} rounds after 1 warm-up round (cases interleaved); page cache warm`,
  );
  log(
    table(
      ['case', 'best ms', 'median ms', 'aggregate MiB/s (best)'],
      [
        ...Object.values(R).map((x) => [x.label, fmt(x.bestMs, 0), fmt(x.medianMs, 0), fmt(x.mibPerSec, 0)]),
        [`ZipFops cold (fresh instance; index builds: ${r.coldIndexBuilds}), distinct entries, single run`, fmt(r.coldMs, 0), '-', '-'],
      ],
    ),
  );
  const distinctRatio = R.zipDistinct.bestMs / R.plainDistinct.bestMs;
  const sameRatio = R.zipSame.bestMs / R.plainSame.bestMs;
  log(`zip / plain wall time: distinct ${fmt(distinctRatio, 2)}x, same entry ${fmt(sameRatio, 2)}x`);
  const goals = [
    {
      goal: `${conc} concurrent 1 MiB reads: zip vs plain files (no target set; reported)`,
      value: distinctRatio,
      unit: 'x plain wall time',
      limit: null,
      pass: null,
      note: `${fmt(R.zipDistinct.bestMs, 0)} ms vs ${fmt(R.plainDistinct.bestMs, 0)} ms; same entry ${fmt(R.zipSame.bestMs, 0)} vs ${fmt(R.plainSame.bestMs, 0)} ms; index builds when cold: ${r.coldIndexBuilds}`,
    },
    {
      goal: `${conc} simultaneous opens on a fresh ZipFops share one index build`,
      value: r.coldIndexBuilds,
      unit: 'builds',
      limit: 1,
      cmp: '=',
      pass: r.coldIndexBuilds === 1,
      note: `cold batch ${fmt(r.coldMs, 0)} ms`,
    },
  ];
  return { bench: 'concurrent', runs: Number(runs), ...r, distinctRatio, sameRatio, goals };
}

if (isMain(import.meta.url)) {
  if (process.argv.includes('--child')) await child();
  else {
    const r = await main();
    log('');
    for (const g of r.goals) log(`${g.pass === null ? 'INFO' : g.pass ? 'PASS' : 'FAIL'}  ${g.goal}: ${fmt(g.value, 2)} ${g.unit} (${g.note})`);
    emitResult(r);
  }
}
