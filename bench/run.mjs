// Runs every benchmark in sequence and prints a summary against the goals.
//
//   npm run bench            (builds dist/ first, then this script)
//   node bench/run.mjs [--skip verify,index,read,concurrent,inflate,http,proxy]
//
// Each benchmark is its own script (bench/index.mjs, bench/read.mjs, bench/concurrent.mjs,
// bench/inflate-mem.mjs, bench/http.mjs, bench/proxy.mjs), run here as a child process
// with a time limit; their measurements run in fresh grandchildren. The
// numbers are printed to stdout and also written to bench/.data/results.json.
// bench/verify-gen.mjs first compiles the test helpers (npx tsc -p
// tsconfig.test.json) and checks that the streaming archive generator writes
// exactly what test/helpers/zip-writer.ts makeManyEntryZip builds.
// Generated data is cached in bench/.data (git-ignored); a first run also
// generates ~1 GB of fixtures (about a minute).
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { availableParallelism, cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { BENCH_DIR, dataPath, distFingerprint, fmt, log, ROOT, runChild, table } from './lib/common.mjs';

const skip = new Set((process.argv.includes('--skip') ? process.argv[process.argv.indexOf('--skip') + 1] : '').split(',').filter(Boolean));

function sh(cmd, args) {
  try {
    return execFileSync(cmd, args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

const machine = {
  date: new Date().toISOString(),
  node: process.version,
  nproc: availableParallelism(),
  cpu: cpus()[0]?.model,
  kernel: release(),
  totalMemGiB: totalmem() / 2 ** 30,
  free: sh('free', ['-g']),
  commit: sh('git', ['rev-parse', '--short', 'HEAD']),
  dirty: (sh('git', ['status', '--porcelain', '--', 'src']) ?? '') !== '',
  dist: distFingerprint(),
};

const BENCHES = [
  { key: 'verify', script: 'verify-gen.mjs', title: 'generator check (vs test/helpers/zip-writer.ts)', timeoutMs: 120_000, optional: true },
  { key: 'index', script: 'index.mjs', title: '1. index time and memory', timeoutMs: 300_000 },
  { key: 'read', script: 'read.mjs', title: '2. read throughput', timeoutMs: 300_000 },
  { key: 'concurrent', script: 'concurrent.mjs', title: '3. 200 concurrent reads', timeoutMs: 180_000 },
  { key: 'inflate', script: 'inflate-mem.mjs', title: '4. inflate memory (1 GiB)', timeoutMs: 400_000 },
  { key: 'http', script: 'http.mjs', title: '5. HTTP load (wrk or autocannon, loopback; ~6½ min)', timeoutMs: 600_000 },
  { key: 'proxy', script: 'proxy.mjs', title: '8. reverse proxy against @fastify/http-proxy and http-proxy-3 (wrk, loopback; ~5 min)', timeoutMs: 900_000 },
];

const t0 = performance.now();
log(
  `vfserve benchmarks: node ${machine.node}, ${machine.nproc} CPUs (${machine.cpu}), ${fmt(machine.totalMemGiB)} GiB, commit ${machine.commit ?? '?'}${machine.dirty ? ' (src has uncommitted changes)' : ''}, dist ${machine.dist}`,
);
const results = {};
for (const b of BENCHES) {
  if (skip.has(b.key)) continue;
  log('');
  log(`=== ${b.title}: node bench/${b.script}`);
  const s = performance.now();
  const r = await runChild(join(BENCH_DIR, b.script), [], { execArgv: [], timeoutMs: b.timeoutMs, prefix: '' });
  r.wallS = (performance.now() - s) / 1000;
  results[b.key] = r;
  if (r.error) log(`!!! ${b.script} ${b.optional ? 'skipped' : 'failed'}: ${r.error}`);
}
const totalS = (performance.now() - t0) / 1000;
machine.distAtEnd = distFingerprint();

// Summary.
const rows = [];
const goalRow = (bench, g) =>
  rows.push([
    bench,
    g.goal,
    `${fmt(g.value, g.unit === 'ms' ? 0 : 1)} ${g.unit}`,
    g.limit === null ? '-' : `${g.cmp ?? '<'} ${+g.limit.toFixed(1)} ${g.unit}`,
    g.pass === null ? 'INFO' : g.pass ? 'PASS' : 'FAIL',
  ]);
const info = (bench, what, value) => rows.push([bench, what, value, '-', '']);

const idx = results.index;
if (idx && !idx.error) {
  for (const z of idx.zipfops)
    info('index', `ZipFops ${z.entries.toLocaleString('en-US')} entries`, `${fmt(z.medianMs, 0)} ms, ${fmt(z.retainedMB)} MiB retained`);
  for (const y of idx.yauzl) {
    if (y.error) info('index', `yauzl ${y.archiveEntries.toLocaleString('en-US')} entries`, `error: ${y.error}`);
    else
      info(
        'index',
        `yauzl ${y.archiveEntries.toLocaleString('en-US')} entries`,
        y.partial
          ? `capped at ${idx.yauzlCapS} s after ${y.entries.toLocaleString('en-US')} entries; est. ${fmt(y.extrapolatedMs / 1000)} s`
          : `${fmt(y.ms, 0)} ms`,
      );
  }
  for (const g of idx.goals) goalRow('index', g);
}
const rd = results.read;
if (rd && !rd.error) {
  for (const [k, v] of Object.entries(rd.results)) if (!v.ref || k === 'refZlib') info('read', v.label, `${fmt(v.mibPerSec, 0)} MiB/s`);
  for (const g of rd.goals) goalRow('read', g);
}
const cc = results.concurrent;
if (cc && !cc.error) {
  for (const v of Object.values(cc.results)) info('concurrent', v.label, `${fmt(v.bestMs, 0)} ms`);
  for (const g of cc.goals) goalRow('concurrent', g);
}
const im = results.inflate;
if (im && !im.error) {
  info('inflate', 'throughput (1 GiB out)', `${fmt(im.zipfops.mibPerSec, 0)} MiB/s`);
  if (im.ref) info('inflate', 'ref: node fs + zlib pipeline RSS growth', `${fmt(im.ref.growthMB)} MiB`);
  for (const g of im.goals) goalRow('inflate', g);
}
const ht = results.http;
if (ht && !ht.error && ht.best) {
  const byCase = {};
  for (const r of Object.values(ht.best)) if (!r.error) (byCase[r.case] ??= []).push(`${r.server} ${fmt(r.reqPerSec, 0)}`);
  for (const [c, list] of Object.entries(byCase)) info('http', `req/s, ${c}`, list.join(', '));
  // Ratios near 1 as percentages, so one decimal is enough (0.97 x would print as 1.0 x).
  for (const g of ht.goals) {
    const pct = g.limit < 2;
    goalRow('http', { ...g, value: g.value === null ? NaN : pct ? g.value * 100 : g.value, limit: pct ? g.limit * 100 : g.limit, unit: pct ? '%' : 'x' });
  }
}
const px = results.proxy;
if (px && !px.error && px.rows) {
  for (const [key, f] of Object.entries(px.failed ?? {})) info('proxy', `${key} FAILED its check`, f);
  const bySize = {};
  for (const r of Object.values(px.rows))
    if (!r.failed && r.reqPerSec !== undefined)
      (bySize[r.size] ??= []).push(`${r.target} ${fmt(r.reqPerSec, 0)}${r.addedUsPerReq !== undefined ? ` (+${fmt(r.addedUsPerReq, 0)} µs)` : ''}`);
  for (const [size, list] of Object.entries(bySize)) info('proxy', `req/s, ${size} B (added µs/req)`, list.join(', '));
  for (const g of px.goals)
    rows.push([
      'proxy',
      g.goal,
      g.value === undefined ? '-' : `${fmt(g.value, 1)} µs`,
      g.limit === undefined ? '-' : `<= ${fmt(g.limit, 1)} µs`,
      g.pass === null ? 'INFO' : g.pass ? 'PASS' : 'FAIL',
    ]);
}
log('');
log(`=== summary (${fmt(totalS, 0)} s in all; units: MiB = 2^20 bytes)`);
log(table(['bench', 'figure', 'measured', 'goal', 'result'], rows, 'llrrl'));
const failed = Object.entries(results).filter(([k, r]) => r.error && !BENCHES.find((b) => b.key === k)?.optional);
if (failed.length) log(`benchmarks that did not complete: ${failed.map(([k]) => k).join(', ')}`);
if (machine.distAtEnd !== machine.dist) {
  log(`WARNING: dist/ changed during the run (${machine.dist} -> ${machine.distAtEnd}): someone rebuilt it; the results mix builds.`);
}

const out = dataPath(skip.size ? 'results-partial.json' : 'results.json');
writeFileSync(out, JSON.stringify({ machine, totalS, results }, null, 2));
log(`results written to ${out.slice(ROOT.length + 1)}`);
if (failed.length) process.exitCode = 1;
