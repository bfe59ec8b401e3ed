// Compression levels for on-the-fly use: size and time of gzip and brotli (and zstd where
// Node has it) at several levels, on real JavaScript (the start of the installed
// typescript/lib/typescript.js, a devDependency) cut to 100 KiB, 1 MiB and 8 MiB.
// One-shot sync calls in this process, best of a few runs; figures in BENCHMARKS.md §7.
//
//   node bench/analysis/compress-levels.mjs
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import zlib from 'node:zlib';

const src = readFileSync(createRequire(import.meta.url).resolve('typescript/lib/typescript.js'));
const C = zlib.constants;
console.log(`node ${process.version}, zlib ${process.versions.zlib}, brotli ${process.versions.brotli}, input: typescript.js (${src.length} bytes)`);
console.log('| input | coding level | bytes | of input | ms | MiB/s |');
console.log('|---|---|---:|---:|---:|---:|');
for (const size of [100 * 1024, 1024 * 1024, 8 * 1024 * 1024]) {
  const buf = Buffer.alloc(size);
  for (let o = 0; o < size; o += src.length) src.copy(buf, o, 0, Math.min(src.length, size - o));
  const cases = [1, 6, 9].map((l) => [`gzip ${l}`, () => zlib.gzipSync(buf, { level: l })]);
  for (const q of [1, 4, 5, 6, 9, 11]) {
    cases.push([`br ${q}`, () => zlib.brotliCompressSync(buf, { params: { [C.BROTLI_PARAM_QUALITY]: q, [C.BROTLI_PARAM_SIZE_HINT]: size } })]);
  }
  if (typeof zlib.zstdCompressSync === 'function') {
    for (const l of [1, 3, 9]) cases.push([`zstd ${l}`, () => zlib.zstdCompressSync(buf, { params: { [C.ZSTD_c_compressionLevel]: l } })]);
  }
  for (const [name, f] of cases) {
    const slow = name === 'br 11' || (size > 2e6 && name === 'br 9');
    const n = slow ? 1 : size > 2e6 ? 2 : 10;
    let out = f();
    let best = Infinity;
    for (let i = 0; i < n; i++) {
      const t = process.hrtime.bigint();
      out = f();
      best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e6);
    }
    const pct = ((100 * out.length) / size).toFixed(1);
    console.log(`| ${size / 1024} KiB | ${name} | ${out.length} | ${pct}% | ${best.toFixed(2)} | ${(size / 1048576 / (best / 1000)).toFixed(0)} |`);
  }
}
