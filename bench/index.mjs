// Benchmark 1: central-directory index time and memory.
//
//   node bench/index.mjs [--sizes 10000,100000,1000000] [--runs 5]
//                        [--yauzl-sizes 10000,100000,1000000] [--yauzl-cap-s 20]
//                        [--no-analyze]
//
// Every measurement runs in a fresh `node --expose-gc` child: gc(), heapUsed,
// time `await new ZipFops().index(path)` (the first build, i.e. the parse),
// gc() with the index still referenced, then the retained deltas and RSS.
// yauzl 3.4.0 iterates the same archives with lazyEntries (capped by time).
// The analysis step (1M entries) separates I/O from parsing and summarises a
// --cpu-prof profile of one index build down to the source lines of readZipIndex.
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dataPath, DIST, emitResult, fmt, fullGc, isMain, log, median, mem, MiB, runChild, table, toMB } from './lib/common.mjs';
import { summarizeProfile } from './lib/profile.mjs';
import { manyEntryZip } from './lib/zipgen.mjs';

const SELF = fileURLToPath(import.meta.url);
const GOAL_MS = 2000;
// "300 MB" read strictly as 300,000,000 bytes (286.1 MiB).
const GOAL_HEAP_MB = 300e6 / MiB;

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

// ---------------------------------------------------------------------------
// Child measurements.

/** Samples heapUsed + arrayBuffers every few ms while the event loop turns. */
function heapSampler(ms = 5) {
  let peakHeap = 0;
  let peakTotal = 0;
  let peakRss = 0;
  const take = () => {
    const m = process.memoryUsage();
    if (m.rss > peakRss) peakRss = m.rss;
    if (m.heapUsed > peakHeap) peakHeap = m.heapUsed;
    if (m.heapUsed + m.arrayBuffers > peakTotal) peakTotal = m.heapUsed + m.arrayBuffers;
  };
  const timer = setInterval(take, ms);
  return {
    stop() {
      clearInterval(timer);
      take();
      return { peakHeap, peakTotal, peakRss };
    },
  };
}

async function childZipFops(path) {
  const { ZipFops } = await import(pathToFileURL(DIST).href);
  fullGc();
  const m0 = mem();
  const sampler = heapSampler();
  const t0 = performance.now();
  const fops = new ZipFops();
  const index = await fops.index(path);
  const ms = performance.now() - t0;
  const peak = sampler.stop();
  fullGc();
  const m1 = mem();
  globalThis.keep = [fops, index]; // still referenced after the gc
  return {
    count: index.count,
    ms,
    heapMB: toMB(m1.heapUsed - m0.heapUsed),
    arrayBuffersMB: toMB(m1.arrayBuffers - m0.arrayBuffers),
    retainedMB: toMB(m1.heapUsed - m0.heapUsed + (m1.arrayBuffers - m0.arrayBuffers)),
    peakSampledMB: toMB(peak.peakTotal - (m0.heapUsed + m0.arrayBuffers)),
    rssMB: toMB(m1.rss),
    rssDeltaMB: toMB(m1.rss - m0.rss),
    // Sampled, not getrusage: ru_maxrss survives fork+exec, so a child would
    // report its parent's peak if that were higher.
    peakRssMB: toMB(Math.max(peak.peakRss, m1.rss)),
    baseRssMB: toMB(m0.rss),
  };
}

async function childYauzl(path, capMs) {
  const yauzl = (await import('yauzl')).default;
  fullGc();
  const m0 = mem();
  const t0 = performance.now();
  const deadline = t0 + capMs;
  const out = await new Promise((resolve, reject) => {
    yauzl.open(path, { lazyEntries: true, autoClose: true }, (err, zip) => {
      if (err) return reject(err);
      let n = 0;
      zip.on('error', reject);
      zip.on('entry', () => {
        n++;
        if (performance.now() > deadline) {
          zip.close();
          resolve({ entries: n, partial: true, declared: zip.entryCount });
        } else {
          zip.readEntry();
        }
      });
      zip.on('end', () => resolve({ entries: n, partial: false, declared: zip.entryCount }));
      zip.readEntry();
    });
  });
  const ms = performance.now() - t0;
  fullGc();
  const m1 = mem();
  return {
    ...out,
    ms,
    perEntryUs: (ms * 1000) / out.entries,
    extrapolatedMs: out.partial ? (ms * out.declared) / out.entries : ms,
    heapMB: toMB(m1.heapUsed - m0.heapUsed),
    rssMB: toMB(m1.rss),
  };
}

/** Splits the 1M index build into I/O and parse: raw window reads vs. readZipIndex over bytes in memory. */
async function childPhases(path) {
  const lib = await import(pathToFileURL(DIST).href);
  const plat = new lib.PlatFops();
  const out = {};
  // 1. The reads readZipIndex issues for the central directory: 1 MiB windows through PlatFops.
  {
    const zf = new lib.ZipFops();
    const { cdStart, cdEnd } = (await zf.index(path)).end; // to learn where the directory is
    zf.clear();
    const fd = await plat.open(path, 0);
    const win = Buffer.allocUnsafe(MiB);
    const t0 = performance.now();
    let reads = 0;
    for (let pos = cdStart; pos < cdEnd;) {
      const n = await fd.readAt(win.subarray(0, Math.min(MiB, cdEnd - pos)), pos);
      pos += n;
      reads++;
    }
    out.ioMs = performance.now() - t0;
    out.ioReads = reads;
    out.cdMB = toMB(cdEnd - cdStart);
    await fd.close();
  }
  // 2. readZipIndex over the whole file in memory: parsing and validation only.
  {
    const bytes = readFileSync(path);
    fullGc();
    const t0 = performance.now();
    const idx = await lib.readZipIndex(lib.sourceFromBytes(bytes), lib.DEFAULT_ZIP_LIMITS, path);
    out.parseInMemoryMs = performance.now() - t0;
    out.count = idx.count;
  }
  // 3. A Map of the same 1M names built alone (decoding from the same bytes): the floor for a Map-based index.
  {
    const zf = new lib.ZipFops();
    const idx = await zf.index(path);
    zf.clear();
    const bytes = readFileSync(path);
    const { cdPos, nameLen } = idx;
    fullGc();
    const t0 = performance.now();
    const m = new Map();
    for (let i = 0; i < idx.count; i++) {
      const s = bytes.latin1Slice(cdPos[i] + 46, cdPos[i] + 46 + nameLen[i]);
      if (m.has(s)) throw new Error('dup');
      m.set(s, i);
    }
    out.mapOnlyMs = performance.now() - t0;
  }
  return out;
}

async function childMain() {
  const mode = process.argv[process.argv.indexOf('--child') + 1];
  const path = process.argv[process.argv.indexOf('--child') + 2];
  let r;
  if (mode === 'zipfops') r = await childZipFops(path);
  else if (mode === 'yauzl') r = await childYauzl(path, Number(process.argv[process.argv.indexOf('--child') + 3]));
  else if (mode === 'phases') r = await childPhases(path);
  else throw new Error(`unknown child mode ${mode}`);
  emitResult({ mode, path, ...r });
}

// ---------------------------------------------------------------------------
// Parent.

export async function main() {
  const sizes = arg('--sizes', '10000,100000,1000000').split(',').map(Number);
  const runs = Number(arg('--runs', '5'));
  const yauzlSizes = process.argv.includes('--no-yauzl') ? [] : arg('--yauzl-sizes', '10000,100000,1000000').split(',').map(Number);
  const capS = Number(arg('--yauzl-cap-s', '20'));
  const analyze = !process.argv.includes('--no-analyze');

  log(`index: generating/reusing archives in bench/.data (${sizes.join(', ')} entries)`);
  const paths = new Map();
  for (const n of new Set([...sizes, ...yauzlSizes])) {
    const t0 = performance.now();
    paths.set(n, manyEntryZip(n));
    const dt = performance.now() - t0;
    if (dt > 50) log(`  generated ${n} entries in ${fmt(dt / 1000)} s`);
  }

  const zipRows = [];
  for (const n of sizes) {
    const results = [];
    for (let i = 0; i < runs; i++) {
      const r = await runChild(SELF, ['--child', 'zipfops', paths.get(n)], { timeoutMs: 60_000 });
      if (r.error) throw new Error(`index ${n}: ${r.error}`);
      if (r.count !== n) throw new Error(`index ${n}: indexed ${r.count}`);
      results.push(r);
    }
    const ms = results.map((r) => r.ms);
    const pick = results.find((r) => r.ms === median(ms));
    zipRows.push({
      entries: n,
      medianMs: median(ms),
      minMs: Math.min(...ms),
      maxMs: Math.max(...ms),
      runsMs: ms,
      heapMB: median(results.map((r) => r.heapMB)),
      arrayBuffersMB: median(results.map((r) => r.arrayBuffersMB)),
      retainedMB: median(results.map((r) => r.retainedMB)),
      peakSampledMB: Math.max(...results.map((r) => r.peakSampledMB)),
      rssMB: pick.rssMB,
      peakRssMB: Math.max(...results.map((r) => r.peakRssMB)),
      baseRssMB: pick.baseRssMB,
    });
    log(`  ZipFops ${n}: ${ms.map((x) => fmt(x, 0)).join(' / ')} ms`);
  }
  log('');
  log('ZipFops.index(): first build, fresh process per run (time: median of runs; memory: after gc, index still referenced)');
  log(
    table(
      [
        'entries',
        'median ms',
        'min..max ms',
        'heapUsed Δ MiB',
        'arrayBuffers Δ MiB',
        'retained MiB',
        'peak Δ during MiB',
        'RSS before MiB',
        'RSS after MiB',
        'peak RSS MiB',
      ],
      zipRows.map((r) => [
        r.entries.toLocaleString('en-US'),
        fmt(r.medianMs, 0),
        `${fmt(r.minMs, 0)}..${fmt(r.maxMs, 0)}`,
        fmt(r.heapMB),
        fmt(r.arrayBuffersMB),
        fmt(r.retainedMB),
        fmt(r.peakSampledMB),
        fmt(r.baseRssMB, 0),
        fmt(r.rssMB, 0),
        fmt(r.peakRssMB, 0),
      ]),
    ),
  );

  const yauzlRows = [];
  for (const n of yauzlSizes) {
    const r = await runChild(SELF, ['--child', 'yauzl', paths.get(n), String(capS * 1000)], { timeoutMs: capS * 1000 + 60_000 });
    if (r.error) {
      yauzlRows.push({ archiveEntries: n, error: r.error });
      continue;
    }
    yauzlRows.push({ ...r, archiveEntries: n });
    log(`  yauzl ${n}: ${fmt(r.ms, 0)} ms for ${r.entries} entries${r.partial ? ` (capped at ${capS} s)` : ''}`);
  }
  if (yauzlRows.length) {
    log('');
    log(`yauzl 3.4.0, open({lazyEntries:true}) and readEntry() through every entry (capped at ${capS} s; fresh process each)`);
    log(
      table(
        ['entries', 'entries read', 'ms', 'µs/entry', 'full-run ms (extrapolated if capped)', 'vs ZipFops median'],
        yauzlRows.map((r) => {
          if (r.error) return [r.archiveEntries.toLocaleString('en-US'), 'error', r.error, '', '', ''];
          const z = zipRows.find((x) => x.entries === r.archiveEntries);
          return [
            r.archiveEntries.toLocaleString('en-US'),
            `${r.entries.toLocaleString('en-US')}${r.partial ? ' (capped)' : ''}`,
            fmt(r.ms, 0),
            fmt(r.perEntryUs, 1),
            `${fmt(r.extrapolatedMs, 0)}${r.partial ? ' (est.)' : ''}`,
            z ? `${fmt(r.extrapolatedMs / z.medianMs, 1)}x slower` : '-',
          ];
        }),
      ),
    );
  }

  let analysis;
  if (analyze && sizes.includes(1_000_000)) {
    analysis = await analyzeMillion(paths.get(1_000_000));
  }

  const oneM = zipRows.find((r) => r.entries === 1_000_000);
  const goals = oneM
    ? [
        {
          goal: 'index 1M entries: time < 2 s',
          value: oneM.medianMs,
          unit: 'ms',
          limit: GOAL_MS,
          pass: oneM.medianMs < GOAL_MS,
          note: `median of ${runs}; min ${fmt(oneM.minMs, 0)}, max ${fmt(oneM.maxMs, 0)}`,
        },
        {
          goal: 'index 1M entries: heap < 300 MB',
          value: oneM.retainedMB,
          unit: 'MiB',
          limit: GOAL_HEAP_MB,
          pass: oneM.retainedMB < GOAL_HEAP_MB,
          note: `retained heapUsed ${fmt(oneM.heapMB)} + arrayBuffers ${fmt(oneM.arrayBuffersMB)} MiB; sampled peak during the build ${fmt(oneM.peakSampledMB)} MiB; peak RSS ${fmt(oneM.peakRssMB, 0)} MiB`,
        },
      ]
    : [];
  return { bench: 'index', runs, zipfops: zipRows, yauzl: yauzlRows, yauzlCapS: capS, analysis, goals };
}

async function analyzeMillion(path) {
  log('');
  log('analysis (1M entries): where the index time goes');
  const phases = await runChild(SELF, ['--child', 'phases', path], { timeoutMs: 120_000 });
  if (phases.error) throw new Error(`phases: ${phases.error}`);
  log(`  central directory ${fmt(phases.cdMB)} MiB read in ${phases.ioReads} windows of 1 MiB via PlatFops.readAt: ${fmt(phases.ioMs, 0)} ms`);
  log(`  readZipIndex over the file in memory (no I/O): ${fmt(phases.parseInMemoryMs, 0)} ms`);
  log(`  a bare Map of the same 1M names (latin1Slice + has + set): ${fmt(phases.mapOnlyMs, 0)} ms`);

  // Read the compiled source now: dist/ could be rebuilt by someone else later.
  const centralSource = readFileSync(fileURLToPath(new URL('../dist/fops/zip/central.js', import.meta.url)), 'utf8');
  const profDir = dataPath('prof');
  rmSync(profDir, { recursive: true, force: true });
  const prof = await runChild(SELF, ['--child', 'zipfops', path], {
    execArgv: ['--expose-gc', '--cpu-prof', '--cpu-prof-interval', '250', '--cpu-prof-dir', profDir],
    timeoutMs: 120_000,
  });
  if (prof.error) throw new Error(`profile: ${prof.error}`);
  const file = join(
    profDir,
    readdirSync(profDir).find((f) => f.endsWith('.cpuprofile')),
  );
  const s = summarizeProfile(file, { top: 12 });
  log(`  --cpu-prof of one index build (${fmt(prof.ms, 0)} ms under the profiler); top self time, whole process:`);
  log(
    table(
      ['function', 'self ms', '%'],
      s.self.map((r) => [r.fn, fmt(r.ms, 0), fmt(r.pct)]),
    ),
  );
  const lines = profileLines(file, 'readZipIndex', centralSource);
  log(`  readZipIndex self time by source line (dist/fops/zip/central.js; includes inlined callees):`);
  log(
    table(
      ['line', '% of readZipIndex self', 'code'],
      lines.slice(0, 10).map((r) => [String(r.line), fmt(r.pct), r.code]),
      'rrl',
    ),
  );
  return { phases, profile: { file, totalMs: s.totalMs, self: s.self, readZipIndexLines: lines.slice(0, 15) } };
}

/**
 * positionTicks of one function, by line, with the source text. Ticks of code
 * inlined from other scripts also carry line numbers (of those scripts), so only
 * lines inside the function's own body are kept; percentages are of those.
 */
function profileLines(file, fnName, sourceText) {
  const prof = JSON.parse(readFileSync(file, 'utf8'));
  const src = sourceText.split('\n');
  const ticks = new Map();
  for (const n of prof.nodes) {
    if (n.callFrame.functionName !== fnName || !n.positionTicks) continue;
    const first = n.callFrame.lineNumber + 1;
    for (const t of n.positionTicks) {
      const code = (src[t.line - 1] ?? '').trim();
      if (t.line < first || code.startsWith('*') || code.startsWith('/')) continue;
      ticks.set(t.line, (ticks.get(t.line) ?? 0) + t.ticks);
    }
  }
  const total = [...ticks.values()].reduce((a, b) => a + b, 0);
  return [...ticks.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([line, t]) => ({ line, pct: (100 * t) / total, code: (src[line - 1] ?? '').trim().slice(0, 90) }));
}

if (isMain(import.meta.url)) {
  if (process.argv.includes('--child')) {
    await childMain();
  } else {
    const r = await main();
    log('');
    for (const g of r.goals) log(`${g.pass ? 'PASS' : 'FAIL'}  ${g.goal}: ${fmt(g.value, g.unit === 'ms' ? 0 : 1)} ${g.unit} (${g.note})`);
    emitResult(r);
  }
}
