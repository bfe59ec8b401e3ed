// 6b. The checkpoint index in process, without HTTP: what building it costs against one
// plain streaming inflate of the same entry, what a read anywhere costs once it exists,
// what it holds, and what each inflater that can find block boundaries (pako, zlib in WASM) costs.
//
//   npm run build && node bench/deflate-index.mjs [--zip <archive>] [--entry big.txt] [--reads 5]
//
// Default archive: bench/.data/range/range-1024m.zip, made by `node bench/range.mjs` (1 GiB of
// log-like text deflated by Info-ZIP zip, about 5.7:1). Each figure runs in a fresh child
// process (`node --expose-gc`), so JIT warm-up and caches of one never help another:
//   plain:   an inflated handle read start to end with readBuffer (native zlib streaming, CRC
//            checked): "one plain streaming inflate", the unit of the goals;
//   build:   a fresh ZipFops, one readAt of 100 bytes at 50 %: the request that builds the index;
//   steady:  after the build, readAt of 100 bytes at 10 %, 50 % and 99 %, --reads each (median);
//   raw:     the entry's deflate bytes, in memory, inflated by native zlib (createInflateRaw) and
//            by pako's inflate(Z_BLOCK) loop, and by the WASM zlib's BoundaryInflater (the index
//            pass's default) without stopping at blocks, as the pass runs between points: the
//            inflater cost alone, with the copy out of WASM memory timed on its own; then the
//            whole checkpoint pass over those bytes with each inflater (no file reads).
// CPU is process.cpuUsage() (user + system, all threads) around each step.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createInflateRaw } from 'node:zlib';

const SELF = fileURLToPath(import.meta.url);
const ROOT = join(SELF, '..', '..');
const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const ZIP = arg('--zip', join(ROOT, 'bench', '.data', 'range', 'range-1024m.zip'));
const ENTRY = arg('--entry', 'big.txt');
const READS = Number(arg('--reads', '5'));
const MiB = 1024 * 1024;

const cpuMs = (since) => {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1000;
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function child(kind) {
  const { ZipFops } = await import(pathToFileURL(join(ROOT, 'dist', 'index.js')).href);
  const zip = new ZipFops({ inflateCache: { maxBytes: 0 } });
  const path = `${ZIP}/${ENTRY}`;
  const st = await zip.stat(path);
  const out = { usize: st.size };
  if (kind === 'plain') {
    const fd = await zip.open(path);
    const t = process.cpuUsage();
    const w = performance.now();
    let n = 0;
    for (let b; (b = await fd.readBuffer(MiB)).length > 0;) n += b.length;
    out.cpuMs = cpuMs(t);
    out.wallMs = performance.now() - w;
    if (n !== st.size) throw new Error(`read ${n} of ${st.size}`);
    await fd.close();
  } else if (kind === 'build') {
    const fd = await zip.open(path);
    global.gc?.();
    const heap0 = process.memoryUsage();
    const t = process.cpuUsage();
    const w = performance.now();
    const buf = Buffer.alloc(100);
    await fd.readAt(buf, Math.floor(st.size / 2));
    out.cpuMs = cpuMs(t);
    out.wallMs = performance.now() - w;
    global.gc?.();
    const heap1 = process.memoryUsage();
    // external includes arrayBuffers (the windows).
    out.heapDeltaMB = (heap1.heapUsed + heap1.external - heap0.heapUsed - heap0.external) / MiB;
    out.stats = zip.stats;
    const steady = {};
    for (const frac of [0.1, 0.5, 0.99]) {
      const cpu = [];
      const wall = [];
      for (let i = 0; i < READS; i++) {
        const pos = Math.floor(st.size * frac) + i * 4099; // a little apart, so no read reuses the last one's stream
        const t2 = process.cpuUsage();
        const w2 = performance.now();
        const probe = await zip.open(path); // a fresh handle per read, as a request opens one
        await probe.readAt(buf, pos);
        await probe.close();
        cpu.push(cpuMs(t2));
        wall.push(performance.now() - w2);
      }
      steady[frac] = { cpuMs: median(cpu), wallMs: median(wall) };
    }
    out.steady = steady;
    await fd.close();
  } else if (kind === 'raw') {
    // The entry's raw deflate bytes: from the local header (name and extra lengths at 26 and 28).
    const { readZipIndex } = await import(pathToFileURL(join(ROOT, 'dist', 'fops', 'zip', 'central.js')).href);
    const { sourceFromBytes } = await import(pathToFileURL(join(ROOT, 'dist', 'fops', 'zip', 'source.js')).href);
    const { DEFAULT_ZIP_LIMITS } = await import(pathToFileURL(join(ROOT, 'dist', 'fops', 'zip', 'limits.js')).href);
    const archive = readFileSync(ZIP);
    const index = await readZipIndex(sourceFromBytes(archive), DEFAULT_ZIP_LIMITS, ZIP);
    const row = index.files.get(ENTRY);
    const lfh = index.lfhOffset[row];
    const start = lfh + 30 + archive.readUInt16LE(lfh + 26) + archive.readUInt16LE(lfh + 28);
    const raw = archive.subarray(start, start + index.csize[row]);
    let t = process.cpuUsage();
    await new Promise((resolve, reject) => {
      const z = createInflateRaw({ chunkSize: 64 * 1024 });
      let n = 0;
      z.on('data', (c) => (n += c.length));
      z.on('end', () => (n === st.size ? resolve() : reject(new Error(`native gave ${n}`))));
      z.on('error', reject);
      let off = 0;
      const feed = () => {
        while (off < raw.length) {
          const c = raw.subarray(off, off + 64 * 1024);
          off += c.length;
          if (!z.write(c)) return void z.once('drain', feed);
        }
        z.end();
      };
      feed();
    });
    out.nativeCpuMs = cpuMs(t);
    const pako = await import('pako');
    t = process.cpuUsage();
    const strm = new pako.ZStream();
    pako.zlibInflateInit2(strm, -15);
    const outBuf = new Uint8Array(256 * 1024);
    let total = 0;
    let inOff = 0;
    let boundaries = 0;
    for (;;) {
      if (strm.avail_in === 0 && inOff < raw.length) {
        const c = raw.subarray(inOff, inOff + 64 * 1024);
        inOff += c.length;
        strm.input = c;
        strm.next_in = 0;
        strm.avail_in = c.length;
      }
      strm.output = outBuf;
      strm.next_out = 0;
      strm.avail_out = outBuf.length;
      const status = pako.zlibInflate(strm, pako.Z_BLOCK);
      total += strm.next_out;
      if (status === pako.Z_STREAM_END) break;
      if (status < 0) throw new Error(`pako ${status}`);
      if ((strm.data_type & 128) !== 0) boundaries++;
    }
    if (total !== st.size) throw new Error(`pako gave ${total}`);
    out.pakoCpuMs = cpuMs(t);
    out.blocks = boundaries;
    // The WASM zlib through its BoundaryInflater, without stopping at blocks (as the pass runs
    // between points), into a caller's array at an offset as the pass does: once as is, and once
    // more to see what the copy out of WASM memory costs (measured by timing the same copies alone).
    const { createWasmInflater } = await import(pathToFileURL(join(ROOT, 'dist', 'fops', 'zip', 'wasm-inflater.js')).href);
    const wasmPass = (inflater) => {
      const dest = new Uint8Array(32 * 1024 + 256 * 1024);
      let n = 0;
      let off = 0;
      let calls = 0;
      for (;;) {
        if (inflater.availIn === 0 && off < raw.length) {
          inflater.setInput(raw.subarray(off, off + 64 * 1024));
          off += Math.min(64 * 1024, raw.length - off);
        }
        const status = inflater.inflate(dest, 32 * 1024, 256 * 1024, false);
        n += inflater.produced;
        calls++;
        if (status === 1) break;
        if (status < 0) throw new Error(`wasm ${status} ${inflater.message}`);
      }
      inflater.end();
      if (n !== st.size) throw new Error(`wasm gave ${n}`);
      return calls;
    };
    wasmPass(createWasmInflater()); // compile and warm up once, as a server would have
    t = process.cpuUsage();
    const calls = wasmPass(createWasmInflater());
    out.wasmCpuMs = cpuMs(t);
    // The copy alone: the same number of 256 KiB copies from one array into another at an offset.
    const a = new Uint8Array(256 * 1024);
    const b = new Uint8Array(32 * 1024 + 256 * 1024);
    t = process.cpuUsage();
    for (let left = st.size; left > 0; left -= a.length) b.set(left >= a.length ? a : a.subarray(0, left), 32 * 1024);
    out.copyCpuMs = cpuMs(t);
    out.wasmCalls = calls;
    // The whole checkpoint pass (1 MiB span, 0.8 % budget, as ZipFops runs it) over the bytes in
    // memory with each inflater: the pass cost without file reads, apples to apples.
    const di = await import(pathToFileURL(join(ROOT, 'dist', 'fops', 'zip', 'deflate-index.js')).href);
    const entry = { source: sourceFromBytes(raw), dataStart: 0, csize: raw.length, usize: st.size, crc: index.crc[row] };
    const opts = { span: MiB, maxBytes: di.INDEX_SHARE * st.size };
    for (const [name, make] of [
      ['passWasm', createWasmInflater],
      ['passPako', di.createPakoInflater],
    ]) {
      t = process.cpuUsage();
      const built = await di.buildCheckpoints(entry, '/bench', opts, make());
      out[`${name}CpuMs`] = cpuMs(t);
      out[`${name}Points`] = built.points.length;
    }
  }
  await zip.close();
  process.stdout.write(JSON.stringify(out));
}

function run(kind) {
  const text = execFileSync(process.execPath, ['--expose-gc', SELF, '--child', kind, '--zip', ZIP, '--entry', ENTRY, '--reads', String(READS)], {
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  return JSON.parse(text);
}

if (process.argv.includes('--child')) {
  await child(arg('--child'));
} else {
  if (!existsSync(ZIP)) throw new Error(`${ZIP} is missing: run node bench/range.mjs once to make it, or pass --zip`);
  console.log(`node bench/deflate-index.mjs --zip ${ZIP} --entry ${ENTRY} --reads ${READS}  (node ${process.version})\n`);
  const plain = run('plain');
  const build = run('build');
  const raw = run('raw');
  const pct = (x) => `${((100 * x) / plain.cpuMs).toFixed(2)} %`;
  const usizeMiB = (plain.usize / MiB).toFixed(0);
  console.log(`| step (${usizeMiB} MiB entry) | CPU ms | wall ms | of one plain inflate (CPU) |`);
  console.log('|:--|--:|--:|--:|');
  console.log(`| plain streaming inflate, whole entry | ${plain.cpuMs.toFixed(0)} | ${plain.wallMs.toFixed(0)} | 100 % |`);
  console.log(
    `| first deep read (builds the index) | ${build.cpuMs.toFixed(0)} | ${build.wallMs.toFixed(0)} | ${(build.cpuMs / plain.cpuMs).toFixed(2)}x (goal ≤ 1.5x) |`,
  );
  for (const [frac, s] of Object.entries(build.steady)) {
    console.log(
      `| read 100 B at ${Math.round(Number(frac) * 100)} %, index built (median of ${READS}) | ${s.cpuMs.toFixed(1)} | ${s.wallMs.toFixed(1)} | ${pct(s.cpuMs)} (goal < 2 %) |`,
    );
  }
  const st = build.stats;
  console.log(
    `\nindex: ${st.accessIndexBytes} bytes = ${((100 * st.accessIndexBytes) / plain.usize).toFixed(3)} % of the entry (goal < 1 %); ` +
      `heap + external retained after the build: ${build.heapDeltaMB.toFixed(1)} MiB; builds ${st.accessIndexBuilds}`,
  );
  console.log(
    `inflater alone over the raw bytes in memory: native zlib ${raw.nativeCpuMs.toFixed(0)} ms, pako inflate(Z_BLOCK) ${raw.pakoCpuMs.toFixed(0)} ms ` +
      `(${(raw.pakoCpuMs / raw.nativeCpuMs).toFixed(2)}x), WASM zlib ${raw.wasmCpuMs.toFixed(0)} ms (${(raw.wasmCpuMs / raw.nativeCpuMs).toFixed(2)}x, ` +
      `of which copying out of WASM memory about ${raw.copyCpuMs.toFixed(0)} ms), ${raw.blocks} block boundaries`,
  );
  console.log(
    `checkpoint pass over the raw bytes in memory: WASM ${raw.passWasmCpuMs.toFixed(0)} ms (${(raw.passWasmCpuMs / plain.cpuMs).toFixed(2)}x plain), ` +
      `pako ${raw.passPakoCpuMs.toFixed(0)} ms (${(raw.passPakoCpuMs / plain.cpuMs).toFixed(2)}x plain); ${raw.passWasmPoints} / ${raw.passPakoPoints} points`,
  );
}
