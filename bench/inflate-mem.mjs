// Benchmark 4: memory while inflating a 1 GiB entry.
//
//   node bench/inflate-mem.mjs [--no-ref]
//
// Fixture (bench/.data, generated once, about a minute): big-inflate.zip with
// one entry, big.txt, 1 GiB of text-like data deflated at level 6 (ratio ~5:1,
// so ~200 MB on disk, within ZipFops' default limits: 4 GiB, ratio 1000).
// The CRC-32 is computed incrementally and patched into the local header.
//
// The measurement runs in a fresh child: open the entry with flags 0 (an
// InflateEntryHandle), gc(), record the baseline RSS, then stream it through
// createFopReadStream into a Writable that discards the bytes, sampling RSS
// (and heap) every 100 ms. Reported: baseline, max growth, and throughput.
// A reference child does the same with plain node streams
// (fs.createReadStream + zlib.createInflateRaw), to show what is intrinsic.
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createReadStream } from 'node:fs';
import { open as fsOpen } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createInflateRaw } from 'node:zlib';
import { countingSink, DIST, emitResult, fmt, fullGc, isMain, log, MiB, runChild, table, toMB } from './lib/common.mjs';
import { BIG_SIZE, bigInflateFixture } from './lib/zipgen.mjs';

const SELF = fileURLToPath(import.meta.url);
// "32 MB" read strictly as 32,000,000 bytes (30.5 MiB).
const GOAL_GROWTH_BYTES = 32e6;
const SAMPLE_MS = 100;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** RSS/heap sampler at a fixed interval; records the max of each. */
function sampler(ms) {
  const s = { rssMax: 0, heapMax: 0, extMax: 0, count: 0, series: [] };
  const t0 = performance.now();
  const take = () => {
    const m = process.memoryUsage();
    s.count++;
    s.rssMax = Math.max(s.rssMax, m.rss);
    s.heapMax = Math.max(s.heapMax, m.heapUsed);
    s.extMax = Math.max(s.extMax, m.external + m.arrayBuffers);
    s.series.push([Math.round(performance.now() - t0), m.rss]);
  };
  const timer = setInterval(take, ms);
  return {
    stop() {
      clearInterval(timer);
      take();
      return s;
    },
  };
}

async function baseline() {
  fullGc();
  await sleep(300);
  fullGc();
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, ext: m.external + m.arrayBuffers };
}

async function child(mode, zip) {
  // --dist <dir/index.js>: measure another build of the library (bench/analysis uses this).
  const dist = process.argv.includes('--dist') ? process.argv[process.argv.indexOf('--dist') + 1] : DIST;
  let stream;
  let close = async () => {};
  let expected = BIG_SIZE;
  if (mode === 'plainfops') {
    // Reference: the archive file itself as a plain file (~195 MiB) streamed 5
    // times (~1 GiB) with the same stream helper, no inflation.
    const { PlatFops, createFopReadStream } = await import(pathToFileURL(dist).href);
    const plat = new PlatFops();
    const { length } = await plat.open(zip, 0).then(async (fd) => (await fd.close(), fd));
    const times = 5;
    expected = length * times;
    stream = () =>
      Readable.from(
        (async function* () {
          for (let i = 0; i < times; i++) yield* createFopReadStream(await plat.open(zip, 0));
        })(),
        { objectMode: false },
      );
  } else if (mode === 'zipfops') {
    const { ZipFops, createFopReadStream } = await import(pathToFileURL(dist).href);
    const zf = new ZipFops();
    const fd = await zf.open(`${zip}/big.txt`, 0);
    if (fd.constructor.name !== 'InflateEntryHandle') throw new Error(`expected an InflateEntryHandle, got ${fd.constructor.name}`);
    stream = () => createFopReadStream(fd);
    close = async () => zf.clear();
  } else {
    const fh = await fsOpen(zip, 'r');
    const lh = Buffer.alloc(30);
    await fh.read(lh, 0, 30, 0);
    await fh.close();
    const start = 30 + lh.readUInt16LE(26) + lh.readUInt16LE(28);
    const csize = lh.readUInt32LE(18);
    stream = () => [createReadStream(zip, { start, end: start + csize - 1, highWaterMark: 64 * 1024 }), createInflateRaw()];
  }
  const base = await baseline();
  const s = sampler(SAMPLE_MS);
  const sink = countingSink();
  // Analysis aid: --gc-every N runs a full gc() every N chunks, to show how much
  // of the growth is garbage Buffers waiting for V8 to collect them.
  const gcEvery = Number(process.argv[process.argv.indexOf('--gc-every') + 1] ?? 0);
  if (process.argv.includes('--gc-every') && gcEvery > 0) {
    let chunks = 0;
    const write = sink._write.bind(sink);
    sink._write = (chunk, enc, cb) => {
      if (++chunks % gcEvery === 0) globalThis.gc();
      write(chunk, enc, cb);
    };
  }
  const t0 = performance.now();
  const src = stream();
  await (Array.isArray(src) ? pipeline(...src, sink) : pipeline(src, sink));
  const ms = performance.now() - t0;
  const samples = s.stop();
  await close();
  if (sink.bytes !== expected) throw new Error(`streamed ${sink.bytes} bytes, expected ${expected}`);
  // Boundedness: the max RSS of the second half of the run minus the max of the
  // first half. Memory proportional to the bytes streamed (a leak) shows here;
  // a bounded working set gives ~0.
  const half = (lo, hi) => samples.series.filter(([t]) => t >= ms * lo && t <= ms * hi).map(([, r]) => r);
  const first = half(0, 0.5);
  const second = half(0.5, 2);
  const steadyGrowth = first.length && second.length ? Math.max(...second) - Math.max(...first) : 0;
  emitResult({
    mode,
    bytes: sink.bytes,
    ms,
    mibPerSec: sink.bytes / MiB / (ms / 1000),
    baselineRssMB: toMB(base.rss),
    maxRssMB: toMB(samples.rssMax),
    growthMB: toMB(samples.rssMax - base.rss),
    growthBytes: samples.rssMax - base.rss,
    heapGrowthMB: toMB(samples.heapMax - base.heapUsed),
    externalGrowthMB: toMB(samples.extMax - base.ext),
    steadyGrowthMB: toMB(steadyGrowth),
    samples: samples.count,
    series: samples.series.filter((_, i) => i % 5 === 0).map(([t, r]) => [t, Math.round(toMB(r))]),
  });
}

export async function main() {
  log('inflate-mem: generating/reusing the 1 GiB fixture in bench/.data (first time: about a minute)');
  const t0 = performance.now();
  const { zip } = await bigInflateFixture();
  const dt = performance.now() - t0;
  if (dt > 100) log(`  fixture ready in ${fmt(dt / 1000)} s`);
  // Warm the page cache in small chunks (a whole-file read here would raise this
  // process's RSS, and ru_maxrss survives into children across fork+exec).
  let sizeBytes = 0;
  for await (const c of createReadStream(zip, { highWaterMark: MiB })) sizeBytes += c.length;
  const sizeMB = toMB(sizeBytes);
  const rows = [];
  const z = await runChild(SELF, ['--child', 'zipfops', zip], { timeoutMs: 300_000 });
  if (z.error) throw new Error(`inflate-mem: ${z.error}`);
  rows.push(z);
  let ref;
  let plainRef;
  if (!process.argv.includes('--no-ref')) {
    ref = await runChild(SELF, ['--child', 'zlib', zip], { timeoutMs: 300_000 });
    if (ref.error) throw new Error(`inflate-mem ref: ${ref.error}`);
    rows.push(ref);
    plainRef = await runChild(SELF, ['--child', 'plainfops', zip], { timeoutMs: 300_000 });
    if (plainRef.error) throw new Error(`inflate-mem plain ref: ${plainRef.error}`);
    rows.push(plainRef);
  }
  log('');
  log(`Streaming a 1 GiB deflated entry (archive ${fmt(sizeMB)} MiB) into a discarding Writable; RSS sampled every ${SAMPLE_MS} ms; fresh process each`);
  log(
    table(
      [
        'case',
        'MiB out',
        'baseline RSS MiB',
        'max RSS MiB',
        'RSS growth MiB',
        'max 2nd half - max 1st half MiB',
        'heap growth MiB',
        'external+AB growth MiB',
        'samples',
        'MiB/s out',
      ],
      rows.map((r) => [
        {
          zipfops: 'ZipFops InflateEntryHandle + createFopReadStream',
          zlib: 'ref: fs.createReadStream + zlib.createInflateRaw',
          plainfops: 'ref: archive as a plain file x5, PlatFops + createFopReadStream',
        }[r.mode],
        fmt(r.bytes / MiB, 0),
        fmt(r.baselineRssMB),
        fmt(r.maxRssMB),
        fmt(r.growthMB),
        fmt(r.steadyGrowthMB),
        fmt(r.heapGrowthMB),
        fmt(r.externalGrowthMB),
        String(r.samples),
        fmt(r.mibPerSec, 0),
      ]),
    ),
  );
  log(`RSS over time (ms, MiB), every 5th sample: ${z.series.map(([t, m]) => `${t}:${m}`).join(' ')}`);
  const goals = [
    {
      goal: 'inflate 1 GiB: RSS grows by less than 32 MB',
      value: z.growthMB,
      unit: 'MiB',
      limit: GOAL_GROWTH_BYTES / MiB,
      pass: z.growthBytes < GOAL_GROWTH_BYTES,
      note: `baseline ${fmt(z.baselineRssMB)} MiB, max ${fmt(z.maxRssMB)} MiB over ${z.samples} samples; ${fmt(z.mibPerSec, 0)} MiB/s${ref ? `; node zlib reference grows ${fmt(ref.growthMB)} MiB, plain-file stream ${fmt(plainRef.growthMB)} MiB` : ''}; max RSS of the 2nd half minus the 1st: ${fmt(z.steadyGrowthMB)} MiB`,
    },
  ];
  return { bench: 'inflate-mem', archiveMB: sizeMB, zipfops: z, ref, plainRef, goals };
}

if (isMain(import.meta.url)) {
  if (process.argv.includes('--child')) {
    const i = process.argv.indexOf('--child');
    await child(process.argv[i + 1], process.argv[i + 2]);
  } else {
    const r = await main();
    log('');
    for (const g of r.goals) log(`${g.pass ? 'PASS' : 'FAIL'}  ${g.goal}: ${fmt(g.value)} ${g.unit} (${g.note})`);
    emitResult(r);
  }
}
