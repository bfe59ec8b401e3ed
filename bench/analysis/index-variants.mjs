// Analysis only (not part of `npm run bench`): what would the 1M-entry index
// build cost with small changes to readZipIndex? Copies dist/ into
// bench/.data/variants/<name>/dist, applies a textual patch to the compiled
// JavaScript (src/ is never touched), and times `new ZipFops().index()` on the
// 1M-entry archive in fresh processes, round-robin, reporting the median.
// A variant whose patch no longer applies, or whose patched copy no longer
// loads (the library changed), is skipped. The patches were written against
// commit 5ae57e0; b5617fd adopted the first four in src, so at that commit and
// later only the Map variants still apply.
//
//   node bench/analysis/index-variants.mjs [--runs 5] [--entries 1000000]
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dataPath, emitResult, fmt, fullGc, isMain, log, ROOT, runChild, table, toMB } from '../lib/common.mjs';
import { manyEntryZip } from '../lib/zipgen.mjs';

const SELF = fileURLToPath(import.meta.url);

const SET_HAS = `if (files.has(name))
                throw corrupt(path, \`entry \${n}: duplicate name\`);
            files.set(name, row);`;

/** Each patch: [file under dist/, search, replace]. */
const PATCHES = {
  'sync window check': [
    [
      'fops/zip/central.js',
      'let o = await ensure(pos, pos + CENTRAL_SIZE);',
      'let o = pos >= winStart && pos + CENTRAL_SIZE <= winEnd ? pos - winStart : await ensure(pos, pos + CENTRAL_SIZE);',
    ],
    [
      'fops/zip/central.js',
      'o = await ensure(pos, pos + recLen);',
      'o = pos >= winStart && pos + recLen <= winEnd ? pos - winStart : await ensure(pos, pos + recLen);',
    ],
  ],
  'no Extras object without extra fields': [
    ['fops/zip/central.js', 'const extras = parseExtras(window, ', 'const extras = extraLen === 0 ? NO_EXTRAS : parseExtras(window, '],
    ['fops/zip/central.js', 'export async function readZipIndex(', 'const NO_EXTRAS = Object.freeze({ aes: false });\nexport async function readZipIndex('],
  ],
  'latin1Slice for ASCII names': [
    ['fops/zip/names.js', "Buffer.from(raw.buffer, raw.byteOffset, raw.length).toString('latin1')", 'Buffer.prototype.latin1Slice.call(raw, 0, raw.length)'],
  ],
  'parent-directory cache': [
    ['fops/zip/central.js', 'let pos = cdStart;', "let pos = cdStart;\n    let lastDir = '';"],
    [
      'fops/zip/central.js',
      "let slash = name.lastIndexOf('/');",
      "let slash = name.lastIndexOf('/');\n        if (slash > 0 && slash === lastDir.length && name.startsWith(lastDir)) slash = 0;\n        else if (slash > 0) lastDir = name.slice(0, slash);",
    ],
  ],
  'set + size check instead of has + set': [
    [
      'fops/zip/central.js',
      SET_HAS,
      'const before = files.size;\n            files.set(name, row);\n            if (files.size === before)\n                throw corrupt(path, `entry ${n}: duplicate name`);',
    ],
  ],
};
PATCHES['all of the above'] = Object.values(PATCHES).flat();
// An upper bound, not a proposal: no name Map at all (lookups would not work).
PATCHES['(bound) no files Map'] = [['fops/zip/central.js', SET_HAS, '']];
PATCHES['(bound) sync window check, no files Map'] = [...PATCHES['sync window check'], ['fops/zip/central.js', SET_HAS, '']];

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

function buildVariant(name, patches) {
  const dir = dataPath(join('variants', name.replace(/[^a-z0-9]+/gi, '-')));
  rmSync(dir, { recursive: true, force: true });
  cpSync(join(ROOT, 'dist'), join(dir, 'dist'), { recursive: true });
  for (const [file, search, replace] of patches) {
    const p = join(dir, 'dist', file);
    const text = readFileSync(p, 'utf8');
    if (!text.includes(search)) return { dir, skipped: `pattern not found in ${file}: ${search.slice(0, 60)}` };
    writeFileSync(p, text.replace(search, replace));
  }
  return { dir };
}

async function child() {
  const [dir, path] = process.argv.slice(process.argv.indexOf('--child') + 1);
  const { ZipFops } = await import(pathToFileURL(join(dir, 'dist', 'index.js')).href);
  fullGc();
  const h0 = process.memoryUsage();
  const t0 = performance.now();
  const fops = new ZipFops();
  const idx = await fops.index(path);
  const ms = performance.now() - t0;
  fullGc();
  const h1 = process.memoryUsage();
  emitResult({ ms, count: idx.count, heapMB: toMB(h1.heapUsed - h0.heapUsed) });
  fops.clear();
}

async function main() {
  const runs = Number(arg('--runs', '5'));
  const entries = Number(arg('--entries', '1000000'));
  const path = manyEntryZip(entries);
  const variants = [{ name: 'baseline (dist as built)', dir: dataPath('variants/baseline') }];
  rmSync(variants[0].dir, { recursive: true, force: true });
  cpSync(join(ROOT, 'dist'), join(variants[0].dir, 'dist'), { recursive: true });
  for (const [name, patches] of Object.entries(PATCHES)) {
    const v = buildVariant(name, patches);
    if (v.skipped) log(`  skipped "${name}": ${v.skipped}`);
    else if (name === 'parent-directory cache' && readFileSync(join(variants[0].dir, 'dist', 'fops', 'zip', 'central.js'), 'utf8').includes('lastDir')) {
      log(`  skipped "${name}": the library already has it`);
    } else variants.push({ name, dir: v.dir });
  }
  const times = new Map(variants.map((v) => [v.name, []]));
  const heaps = new Map(variants.map((v) => [v.name, []]));
  for (let i = 0; i < runs; i++) {
    for (const v of [...variants]) {
      const r = await runChild(SELF, ['--child', v.dir, path], { timeoutMs: 60_000, echo: false });
      if (r.error || r.count !== entries) {
        if (v === variants[0]) throw new Error(`${v.name}: ${r.error ?? `indexed ${r.count}`}`);
        log(`  skipped "${v.name}": ${r.error ?? `indexed ${r.count}`}`);
        variants.splice(variants.indexOf(v), 1);
        continue;
      }
      times.get(v.name).push(r.ms);
      heaps.get(v.name).push(r.heapMB);
    }
  }
  const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const base = med(times.get(variants[0].name));
  const rows = variants.map((v) => {
    const m = med(times.get(v.name));
    return { name: v.name, medianMs: m, runsMs: times.get(v.name), heapMB: med(heaps.get(v.name)), vsBaseline: m / base };
  });
  log(`index build of ${entries.toLocaleString('en-US')} entries, patched copies of dist/, median of ${runs} fresh processes (round-robin)`);
  log(
    table(
      ['variant', 'median ms', 'runs ms', 'heapUsed Δ MiB', 'vs baseline'],
      rows.map((r) => [r.name, fmt(r.medianMs, 0), r.runsMs.map((x) => fmt(x, 0)).join(' '), fmt(r.heapMB), `${fmt(100 * r.vsBaseline, 0)}%`]),
    ),
  );
  emitResult({ bench: 'index-variants', entries, runs, rows });
}

if (isMain(import.meta.url)) {
  if (process.argv.includes('--child')) await child();
  else await main();
}
