// Analysis only (not part of `npm run bench`): does RSS growth while inflating
// 1 GiB drop if the inflate path allocates fewer short-lived Buffers?
// Copies dist/ into bench/.data/variants/<name>/dist, patches the compiled
// JavaScript (src/ is never touched), and runs bench/inflate-mem.mjs's
// measuring child against each copy, round-robin, reporting medians.
// A variant whose patch no longer applies (the library changed) is skipped.
//
//   node bench/analysis/inflate-variants.mjs [--runs 3]
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dataPath, emitResult, fmt, isMain, log, ROOT, runChild, table } from '../lib/common.mjs';
import { bigInflateFixture } from '../lib/zipgen.mjs';

const INFLATE_MEM = join(ROOT, 'bench', 'inflate-mem.mjs');

const PATCHES = {
  // Inflater#feed allocates a fresh 64 KiB input Buffer per chunk; zlib has
  // consumed a chunk when its write callback runs, so one Buffer can be reused.
  'reuse the input chunk': [
    [
      'fops/zip/entry.js',
      'const chunk = Buffer.allocUnsafe(Math.min(INPUT_CHUNK, csize - off));',
      'const chunk = (this.__in ??= Buffer.allocUnsafe(INPUT_CHUNK)).subarray(0, Math.min(INPUT_CHUNK, csize - off));',
    ],
  ],
  // createFopReadStream allocates a 64 KiB Buffer per read and InflateEntryHandle
  // copies zlib's output chunk into it: every output byte is allocated twice.
  // A zero-copy pull (hand zlib's chunk to the stream) allocates it once.
  'zero-copy pull of zlib chunks': [
    [
      'fops/zip/entry.js',
      '    #restart() {',
      `    /** Zero-copy read for streams: a view of the inflater's current chunk. */
    async pullChunk(max) {
        this.assertOpen('read');
        const pos = this.pos;
        const left = this.length - pos;
        if (left <= 0) return null;
        if (!this.#inflater || pos < this.#chunkStart) this.#restart();
        for (;;) {
            const chunk = this.#chunk;
            if (chunk && pos >= this.#chunkStart && pos < this.#outPos) {
                const from = pos - this.#chunkStart;
                const n = Math.min(max, chunk.length - from, left);
                this.pos += n;
                return chunk.subarray(from, from + n);
            }
            await this.#pullNext();
        }
    }
    #restart() {`,
    ],
    [
      'fops/helpers.js',
      '            const buf = Buffer.allocUnsafe(Math.min(chunkSize, remaining));',
      `            if (typeof fd.pullChunk === 'function') {
                fd.pullChunk(Math.min(chunkSize, remaining)).then((chunk) => {
                    if (!chunk || chunk.length === 0) {
                        this.destroy(new FopError('IO', 'read', '', 'unexpected end of file'));
                        return;
                    }
                    remaining -= chunk.length;
                    this.push(chunk);
                    if (remaining === 0)
                        this.push(null);
                }, (err) => this.destroy(err instanceof Error ? err : new Error(String(err))));
                return;
            }
            const buf = Buffer.allocUnsafe(Math.min(chunkSize, remaining));`,
    ],
  ],
};
PATCHES['both'] = Object.values(PATCHES).flat();

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

function buildVariant(name, patches) {
  const dir = dataPath(join('variants', `inflate-${name.replace(/[^a-z0-9]+/gi, '-')}`));
  rmSync(dir, { recursive: true, force: true });
  cpSync(join(ROOT, 'dist'), join(dir, 'dist'), { recursive: true });
  for (const [file, search, replace] of patches) {
    const p = join(dir, 'dist', file);
    const text = readFileSync(p, 'utf8');
    if (!text.includes(search)) return { dir, skipped: `pattern not found in ${file}: ${search.trim().slice(0, 60)}` };
    writeFileSync(p, text.replace(search, replace));
  }
  return { dir };
}

async function main() {
  const runs = Number(arg('--runs', '3'));
  const { zip } = await bigInflateFixture();
  const variants = [{ name: 'baseline (dist as built)', ...buildVariant('baseline', []) }];
  for (const [name, patches] of Object.entries(PATCHES)) {
    const v = buildVariant(name, patches);
    if (v.skipped) log(`  skipped "${name}": ${v.skipped}`);
    else variants.push({ name, dir: v.dir });
  }
  const res = new Map(variants.map((v) => [v.name, []]));
  for (let i = 0; i < runs; i++) {
    for (const v of variants) {
      const r = await runChild(INFLATE_MEM, ['--child', 'zipfops', zip, '--dist', join(v.dir, 'dist', 'index.js')], { timeoutMs: 300_000 });
      if (r.error) throw new Error(`${v.name}: ${r.error}`);
      res.get(v.name).push(r);
    }
  }
  const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const rows = variants.map((v) => {
    const rs = res.get(v.name);
    return {
      name: v.name,
      growthMB: med(rs.map((r) => r.growthMB)),
      runsMB: rs.map((r) => r.growthMB),
      externalGrowthMB: med(rs.map((r) => r.externalGrowthMB)),
      mibPerSec: med(rs.map((r) => r.mibPerSec)),
    };
  });
  log(`1 GiB inflate through createFopReadStream, patched copies of dist/, median of ${runs} fresh processes (round-robin)`);
  log(
    table(
      ['variant', 'RSS growth MiB', 'runs', 'external+AB growth MiB', 'MiB/s out'],
      rows.map((r) => [r.name, fmt(r.growthMB), r.runsMB.map((x) => fmt(x)).join(' '), fmt(r.externalGrowthMB), fmt(r.mibPerSec, 0)]),
    ),
  );
  emitResult({ bench: 'inflate-variants', runs, rows });
}

if (isMain(import.meta.url)) await main();
