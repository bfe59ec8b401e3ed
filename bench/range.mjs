// 6. Range requests into large deflated zip entries, over HTTP: what a Range on a
// deflated entry served identity costs (today: an inflate from the entry's start),
// before and after a seek index (zran-style checkpoints built on the first deep
// seek) and a direct mapping of deflate streams made only of stored blocks.
//
//   npm run build && node bench/range.mjs --before /work/bench-before8/dist
//   node bench/range.mjs [--before <older dist/>] [--cases range,stored,nested] [--size 1g|64m|<bytes>]
//                        [--rounds 1] [--requests 5] [--duration 5] [--warmup 1] [--connections 8]
//                        [--quiet-budget 30] [--no-pin]
//   node bench/range.mjs --size 64m            # a quick check (~1 min, fixtures included)
//
// Fixtures, made once into bench/.data/range/ (git-ignored) and reused while their
// sidecar .json matches (generator version, size, CRC-32):
//   range-<size>.zip   big.txt: <size> (default 1 GiB) of log-like text from bench/lib/loggen.mjs,
//                      deflated by Info-ZIP zip (/usr/bin/zip, level 6, about 5.8:1); random.mp4:
//                      10 MiB of AES-CTR bytes, which zip keeps as method 8 made only of stored
//                      blocks (checked: the script walks the block headers). Both are streamed
//                      through a temporary file; the text is never whole in memory.
//   disk/random.mp4    the same 10 MiB on disk.
//   nested/            plain.zip (text10.txt: 10 MiB of log text, deflated), and inner.zip (the same
//                      archive) inside outer-stored.zip (zip -0) and outer-deflated.zip (zip -6 -n :,
//                      so zip deflates a .zip member; it comes out about 1:1, mostly stored blocks);
//                      and inner-stored.zip (text10.txt stored) inside outer-deflated-text.zip (zip
//                      -6), whose outer stream is really Huffman-coded (~5.6:1).
// The text is made of 64 KiB blocks each generated from its own number, so the 100 bytes
// expected at any offset are regenerated without the file: every ranged body is compared
// with them, every whole body with the generator's CRC-32, and a mismatch stops the run.
//
// Server: bench/lib/http-server.mjs, kind vfs-range, one child process per measurement,
// on 127.0.0.1 port 0: the archive mount /z of the zip (as http.mjs's vfs-zip mounts
// site.zip), /d the disk directory, /n the nested directory (archives entered by path,
// /n/outer-stored.zip/inner.zip/text10.txt). A line `stats` on its stdin prints
// process.memoryUsage() and the `stats` of the ZipFops the engine used; every numeric
// field is printed, so a counter the seek index adds (indexBytes or the like) shows
// up without changing this script. `--before <dist/>` runs the same server on an older
// build beside the current one (each copied to bench/.data/range-run/, as http.mjs does);
// build the baseline in its own worktree once:
//
//   git -C /work/main worktree add --detach /work/bench-before8 <commit>
//   (cd /work/bench-before8 && npm ci && npm run build)
//
// Method. The server child is pinned to CPU 1 and this process, and wrk, to CPU 0
// (taskset). Server CPU is the sum of sum_exec_runtime over the child's threads
// (/proc/<pid>/task/*/schedstat, nanoseconds; the libuv pool and GC threads included),
// cross-checked against utime+stime from /proc/<pid>/stat for the long requests; wall
// time is the client's, from sending the request to the last body byte. No request
// sends Accept-Encoding, so the identity form is served (every response is checked to
// have no Content-Encoding). Before each server start the script waits
// (up to 5 s, --quiet-budget s in all) for other processes to use < 10 % of a core, and
// every row gives the other processes' CPU during it.
//
//   range:  for each offset (10 %, 50 %, 99 % of big.txt) a fresh server, warmed with a
//           Range on random.mp4 (the central directory is parsed, the JIT warm), then the
//           first `Range: bytes=X-(X+99)` (on a build with a lazy seek index: the request
//           that builds it), then --requests more (median reported). One full GET of
//           big.txt in its own fresh server is "one plain streaming inflate", the unit of
//           the goals: steady deep Range CPU < 2 % of it, the first deep Range (index
//           build) <= 1.5x it. Memory: the child's VmRSS and the ZipFops stats before the
//           first Range, after it and after the rest; goal: the index < 1 % of big.txt.
//   stored: random.mp4 identity from the zip (method 8, stored blocks) and from disk, wrk -t1
//           with --connections for --duration s after --warmup s, fresh server each; req/s,
//           MB/s (body bytes, 1 MB = 10^6 B), server CPU per response; goal after: zip >= 0.9x
//           disk (best round of each).
//   nested: text10.txt whole and a 100-byte Range from its middle, through plain.zip,
//           outer-stored.zip/inner.zip, outer-deflated.zip/inner.zip and
//           outer-deflated-text.zip/inner-stored.zip: first request and
//           the median of --requests more, fresh server per row; a build that answers
//           404/500 there does not support nesting: "unsupported".
//
// --rounds repeats every measurement; the range and nested tables give each value's
// median over rounds, stored its best round. Results print as markdown tables, the
// command line first, and one BENCH_RESULT line last (bench/run.mjs's convention).
import { execFileSync, spawn } from 'node:child_process';
import {
  closeSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { request } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { crc32 } from 'node:zlib';
import yauzl from 'yauzl';
import { BENCH_DIR, cliArgs, DATA_DIR, distFingerprint, emitResult, fmt, log, MB, median, MiB, ROOT, table } from './lib/common.mjs';
import { git, lineProtocol, pinSelf, rssOf } from './lib/proc.mjs';
import { LOG_GEN_VERSION, logBytes, logChunks } from './lib/loggen.mjs';
import { randomChunks } from './lib/zipgen.mjs';

// ---------------------------------------------------------------------------
// Options.

const { argv, arg, flag } = cliArgs();

function parseSize(text) {
  const m = /^(\d+(?:\.\d+)?)([kmg]?)i?b?$/i.exec(String(text).trim());
  if (!m) throw new Error(`--size ${text}: expected e.g. 1g, 64m or a byte count`);
  return Math.round(Number(m[1]) * 1024 ** ' kmg'.indexOf(m[2].toLowerCase() || ' '));
}

const SIZE = parseSize(arg('size', '1g'));
if (!(SIZE >= MiB && SIZE < 4 * 1024 * MiB)) throw new Error('--size: between 1 MiB and 4 GiB (no Zip64 here)');
const ROUNDS = Number(arg('rounds', 1));
const REQUESTS = Number(arg('requests', 5));
const DURATION = Number(arg('duration', 5));
const WARMUP = Number(arg('warmup', 1));
const CONNECTIONS = Number(arg('connections', 8));
const QUIET_BUDGET = Number(arg('quiet-budget', 30));
const PIN = !flag('no-pin');
const BEFORE = arg('before', '');
const ALL_CASES = ['range', 'stored', 'nested'];
const CASES = arg('cases', ALL_CASES.join(',')).split(',');
for (const c of CASES) if (!ALL_CASES.includes(c)) throw new Error(`--cases: unknown ${c} (one of ${ALL_CASES.join(', ')})`);
if (!(ROUNDS >= 1 && REQUESTS >= 1 && DURATION >= 1 && CONNECTIONS >= 1)) throw new Error('--rounds, --requests, --duration, --connections: at least 1');

const OFFSETS = [0.1, 0.5, 0.99];
const RANGE_LEN = 100;
const RANDOM_SIZE = 10 * MiB;
const NESTED_SIZE = 10 * MiB;
const BIG_SEED = 1;
const NESTED_SEED = 2;
const FIXTURE_VERSION = 2; // bump when the fixtures' layout changes
const FIX_DIR = join(DATA_DIR, 'range');
const RUN_DIR = join(DATA_DIR, 'range-run');
const SERVER_SCRIPT = join(BENCH_DIR, 'lib', 'http-server.mjs');
const sizeTag = SIZE % MiB === 0 ? `${SIZE / MiB}m` : `${SIZE}b`;
const ZIP_NAME = `range-${sizeTag}.zip`;
const NESTED_ROWS = [
  { key: 'plain', label: '(a) plain.zip/text10.txt', path: '/n/plain.zip/text10.txt' },
  { key: 'stored', label: '(b) outer-stored.zip (zip -0)/inner.zip/text10.txt', path: '/n/outer-stored.zip/inner.zip/text10.txt' },
  { key: 'deflated', label: '(c) outer-deflated.zip (zip -6)/inner.zip/text10.txt', path: '/n/outer-deflated.zip/inner.zip/text10.txt' },
  // (c) deflates an archive of deflated data: about 1:1, mostly stored blocks. (d) deflates an
  // archive whose text is stored, so the outer stream is real Huffman-coded deflate (~5.6:1).
  {
    key: 'deflated-text',
    label: '(d) outer-deflated-text.zip (zip -6)/inner-stored.zip (zip -0)/text10.txt',
    path: '/n/outer-deflated-text.zip/inner-stored.zip/text10.txt',
  },
];

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const fail = (msg) => {
  throw new Error(`CHECK FAILED: ${msg}`);
};
const hex32 = (n) => (n >>> 0).toString(16).padStart(8, '0');

// ---------------------------------------------------------------------------
// Fixtures.

/** Runs fn(tmpPath) and renames tmpPath to path only when it succeeded. */
async function atomically(path, fn) {
  const tmp = `${path}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  try {
    await fn(tmp);
    renameSync(tmp, path);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Writes a generator's chunks to `path`; returns their CRC-32 and length. */
function writeChunks(path, chunks) {
  const fd = openSync(path, 'w');
  let crc = 0;
  let size = 0;
  try {
    for (const c of chunks) {
      crc = crc32(c, crc);
      size += c.length;
      let done = 0;
      while (done < c.length) done += writeSync(fd, c, done, c.length - done);
    }
  } finally {
    closeSync(fd);
  }
  return { crc: crc >>> 0, size };
}

const FIXED_TIME = new Date('2024-01-02T03:04:06Z');
/** Info-ZIP zip at `level`; `-n :` so that .zip members are deflated too (zip stores them by default). */
function zip(cwd, out, files, level = 6) {
  for (const f of files) utimesSync(join(cwd, f), FIXED_TIME, FIXED_TIME);
  execFileSync('zip', ['-q', '-X', `-${level}`, '-n', ':', out, ...files], { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** The entries of a zip (yauzl), with each one's data offset. */
function zipEntries(path) {
  return new Promise((resolvePromise, reject) => {
    yauzl.open(path, { lazyEntries: true, autoClose: false }, (err, zf) => {
      if (err) return reject(err);
      const out = {};
      zf.on('entry', (e) => {
        out[e.fileName] = {
          method: e.compressionMethod,
          csize: e.compressedSize,
          usize: e.uncompressedSize,
          crc: e.crc32 >>> 0,
          lfh: e.relativeOffsetOfLocalHeader,
        };
        zf.readEntry();
      });
      zf.on('end', () => {
        const fd = openSync(path, 'r');
        try {
          for (const e of Object.values(out)) {
            const h = Buffer.alloc(30);
            readSync(fd, h, 0, 30, e.lfh);
            if (h.readUInt32LE(0) !== 0x04034b50) return reject(new Error(`${path}: bad local header`));
            e.dataOffset = e.lfh + 30 + h.readUInt16LE(26) + h.readUInt16LE(28);
          }
        } finally {
          closeSync(fd);
        }
        zf.close();
        resolvePromise(out);
      });
      zf.on('error', reject);
      zf.readEntry();
    });
  });
}

/** Counts the blocks of a raw deflate stream if every one is stored (BTYPE 00); else undefined. */
function storedBlocksOnly(path, offset, csize) {
  const fd = openSync(path, 'r');
  try {
    const h = Buffer.alloc(5);
    let pos = 0;
    let blocks = 0;
    for (;;) {
      if (pos + 5 > csize) return undefined;
      readSync(fd, h, 0, 5, offset + pos);
      if (((h[0] >> 1) & 3) !== 0) return undefined; // fixed or dynamic Huffman block
      const len = h.readUInt16LE(1);
      if ((len ^ h.readUInt16LE(3)) !== 0xffff) return undefined;
      pos += 5 + len;
      blocks++;
      if (h[0] & 1) return pos === csize ? blocks : undefined;
    }
  } finally {
    closeSync(fd);
  }
}

function readJson(path) {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
}

async function fixtures() {
  mkdirSync(join(FIX_DIR, 'disk'), { recursive: true });
  mkdirSync(join(FIX_DIR, 'nested'), { recursive: true });
  const t0 = performance.now();
  // The 10 MiB random file on disk.
  const randomPath = join(FIX_DIR, 'disk', 'random.mp4');
  const randomMeta = join(FIX_DIR, 'disk', 'random.json');
  let random = readJson(randomMeta);
  if (!random || random.version !== FIXTURE_VERSION || !existsSync(randomPath)) {
    log(`making ${randomPath.slice(ROOT.length + 1)} (10 MiB, AES-CTR bytes)`);
    await atomically(randomPath, (tmp) => {
      random = { version: FIXTURE_VERSION, ...writeChunks(tmp, randomChunks(RANDOM_SIZE, 'range')) };
    });
    writeFileSync(randomMeta, JSON.stringify(random));
  }

  // The big zip: big.txt deflated by zip, and random.mp4.
  const zipPath = join(FIX_DIR, ZIP_NAME);
  const zipMetaPath = zipPath.replace(/\.zip$/, '.json');
  let big = readJson(zipMetaPath);
  const wantBig = (m) => m && m.version === FIXTURE_VERSION && m.logVersion === LOG_GEN_VERSION && m.size === SIZE && m.randomCrc === random.crc;
  if (!wantBig(big) || !existsSync(zipPath)) {
    log(
      `making ${zipPath.slice(ROOT.length + 1)}: big.txt ${fmt(SIZE / MiB, 0)} MiB of log text, deflated by zip, and random.mp4 (takes ~${fmt((SIZE / MiB) * 0.03 + 2, 0)} s)`,
    );
    const tmpDir = join(FIX_DIR, `tmp-${process.pid}`);
    rmSync(tmpDir, { recursive: true, force: true });
    mkdirSync(tmpDir);
    try {
      const text = writeChunks(join(tmpDir, 'big.txt'), logChunks(SIZE, BIG_SEED));
      copyFileSync(randomPath, join(tmpDir, 'random.mp4'));
      await atomically(zipPath, (tmp) => zip(tmpDir, tmp, ['big.txt', 'random.mp4']));
      big = { version: FIXTURE_VERSION, logVersion: LOG_GEN_VERSION, size: SIZE, crc: text.crc, randomCrc: random.crc };
    } finally {
      rmSync(tmpDir, { recursive: true, force: true });
    }
    writeFileSync(zipMetaPath, JSON.stringify(big));
  }
  const entries = await zipEntries(zipPath);
  const e = entries['big.txt'];
  const r = entries['random.mp4'];
  if (!e || e.method !== 8 || e.usize !== SIZE || e.crc !== big.crc)
    fail(`${ZIP_NAME}: big.txt is not the generator's text, deflated (${JSON.stringify(e)}, crc ${hex32(big.crc)})`);
  if (!r || r.usize !== RANDOM_SIZE || r.crc !== random.crc) fail(`${ZIP_NAME}: random.mp4 is not disk/random.mp4`);
  r.storedBlocks = r.method === 8 ? storedBlocksOnly(zipPath, r.dataOffset, r.csize) : undefined;
  if (r.method !== 8 || r.storedBlocks === undefined)
    log(`warning: random.mp4 is ${r.method === 8 ? 'deflated with Huffman blocks' : `method ${r.method}`}, not method 8 made only of stored blocks`);

  // Nested archives.
  const nestedDir = join(FIX_DIR, 'nested');
  const nestedMetaPath = join(nestedDir, 'nested.json');
  let nested = readJson(nestedMetaPath);
  const names = ['plain.zip', 'outer-stored.zip', 'outer-deflated.zip', 'outer-deflated-text.zip'];
  if (!nested || nested.version !== FIXTURE_VERSION || nested.logVersion !== LOG_GEN_VERSION || names.some((n) => !existsSync(join(nestedDir, n)))) {
    log('making bench/.data/range/nested/: plain.zip, outer-stored.zip, outer-deflated.zip');
    const tmpDir = join(nestedDir, `tmp-${process.pid}`);
    rmSync(tmpDir, { recursive: true, force: true });
    mkdirSync(tmpDir);
    try {
      const text = writeChunks(join(tmpDir, 'text10.txt'), logChunks(NESTED_SIZE, NESTED_SEED));
      zip(tmpDir, 'inner.zip', ['text10.txt']);
      for (const n of names) rmSync(join(nestedDir, n), { force: true });
      copyFileSync(join(tmpDir, 'inner.zip'), join(tmpDir, 'plain.zip'));
      zip(tmpDir, 'outer-stored.zip', ['inner.zip'], 0);
      zip(tmpDir, 'outer-deflated.zip', ['inner.zip'], 6);
      zip(tmpDir, 'inner-stored.zip', ['text10.txt'], 0);
      zip(tmpDir, 'outer-deflated-text.zip', ['inner-stored.zip'], 6);
      for (const n of names) renameSync(join(tmpDir, n), join(nestedDir, n));
      nested = { version: FIXTURE_VERSION, logVersion: LOG_GEN_VERSION, crc: text.crc };
    } finally {
      rmSync(tmpDir, { recursive: true, force: true });
    }
    writeFileSync(nestedMetaPath, JSON.stringify(nested));
  }
  const nestedEntries = {};
  for (const n of names) nestedEntries[n] = await zipEntries(join(nestedDir, n));
  const t = nestedEntries['plain.zip']['text10.txt'];
  if (!t || t.crc !== nested.crc || t.usize !== NESTED_SIZE) fail('nested/plain.zip: text10.txt is not the generator text');
  return { zipPath, big: e, random: r, randomPath, randomCrc: random.crc, nested, nestedEntries, seconds: (performance.now() - t0) / 1000 };
}

// ---------------------------------------------------------------------------
// Builds, processes, measurements.

/** A fingerprint of the .js files under `dir` (CRC-32 of names and contents). */
function dirFingerprint(dir) {
  let h = 0;
  const files = readdirSync(dir, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.js'))
    .sort();
  for (const f of files) h = crc32(readFileSync(join(dir, f)), crc32(f, h));
  return hex32(h);
}

function snapshotDist() {
  const dst = join(RUN_DIR, 'dist');
  for (let attempt = 0; attempt < 5; attempt++) {
    const fp = distFingerprint();
    rmSync(dst, { recursive: true, force: true });
    mkdirSync(RUN_DIR, { recursive: true });
    cpSync(join(ROOT, 'dist'), dst, { recursive: true, filter: (src) => !src.endsWith('.map') });
    if (distFingerprint() === fp) return { index: join(dst, 'index.js'), fingerprint: fp };
  }
  throw new Error('dist/ kept changing while it was copied');
}

/** A copy of the --before dist/; its bare imports resolve from this checkout's node_modules. */
function snapshotBefore(path) {
  const src = resolve(path);
  if (!existsSync(join(src, 'index.js'))) throw new Error(`--before ${path}: no index.js there (build the older commit first; see this file's header)`);
  const dst = join(RUN_DIR, 'before', 'dist');
  rmSync(dst, { recursive: true, force: true });
  cpSync(src, dst, { recursive: true, filter: (f) => !f.endsWith('.map') });
  const fingerprint = dirFingerprint(dst);
  if (fingerprint !== dirFingerprint(src)) throw new Error(`--before ${path}: it changed while it was copied`);
  return { index: join(dst, 'index.js'), fingerprint, commit: git(['-C', join(src, '..'), 'rev-parse', '--short', 'HEAD']), path: src };
}

/** utime + stime of a process, in clock ticks. */
function cpuTicks(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return undefined;
  }
}

/** CPU time of all a process's threads so far, in ns (sum of /proc/<pid>/task/<tid>/schedstat's first field). */
function cpuNs(pid) {
  let sum = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      sum += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread exited between the listing and the read
    }
  }
  return sum;
}

/** Busy and total jiffies of the whole machine (/proc/stat `cpu` line). */
function machineTicks() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return { busy: f.slice(0, 8).reduce((a, b) => a + b, 0) - f[3] - f[4] };
}

let quietSpent = 0;
/** Waits (up to 5 s, QUIET_BUDGET s in all) until other processes use < 10 % of a core. */
async function waitQuiet() {
  const t0 = performance.now();
  while (quietSpent + (performance.now() - t0) / 1000 < QUIET_BUDGET) {
    const m0 = machineTicks();
    const s0 = cpuTicks(process.pid);
    await sleep(300);
    const foreign = ((machineTicks().busy - m0.busy - (cpuTicks(process.pid) - s0)) / CLK_TCK / 0.3) * 100;
    if (foreign < 10 || performance.now() - t0 > 5000) break;
  }
  quietSpent += (performance.now() - t0) / 1000;
}

/**
 * A measurement window over the server child: its CPU (ns from schedstat, ticks from stat), the
 * wall time, and the CPU of everything else on the machine (other processes) in % of one core.
 */
function window(srv) {
  const ns0 = cpuNs(srv.pid);
  const t0 = cpuTicks(srv.pid);
  const m0 = machineTicks().busy;
  const self0 = cpuTicks(process.pid);
  const w0 = performance.now();
  return () => {
    const wallMs = performance.now() - w0;
    const ns = cpuNs(srv.pid) - ns0;
    const ticks = cpuTicks(srv.pid) - t0;
    const other = machineTicks().busy - m0 - ticks - (cpuTicks(process.pid) - self0);
    return { wallMs, cpuMs: ns / 1e6, cpuTicksMs: (ticks * 1000) / CLK_TCK, otherPct: Math.max(0, ((other / CLK_TCK) * 1000 * 100) / Math.max(wallMs, 1)) };
  };
}

/** Starts the vfs-range server child; resolves to { pid, port, stats(), stop(), stderr() }. */
function startServer(distIndex) {
  const nodeArgs = [SERVER_SCRIPT, 'vfs-range', FIX_DIR, distIndex, ZIP_NAME];
  const [cmd, args] = PIN ? ['taskset', ['-c', '1', process.execPath, ...nodeArgs]] : [process.execPath, nodeArgs];
  const child = spawn(cmd, args, { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  const { exited, nextLine, stderr, stats } = lineProtocol(child, 'server');
  const port = nextLine('PORT ', 15_000);
  return port.then((p) => ({
    pid: child.pid,
    port: Number(p),
    stderr,
    async stats() {
      return { ...(await stats()), vmRss: rssOf(child.pid) };
    },
    async stop() {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const r = await exited;
      clearTimeout(t);
      return r;
    },
  }));
}

/**
 * One GET without Accept-Encoding. The body is kept when `keep` (ranges), else counted and its
 * CRC-32 computed on the fly, then dropped.
 */
function get(port, path, headers = {}, { keep = true, timeoutMs = 300_000 } = {}) {
  return new Promise((resolvePromise, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      const chunks = [];
      let bytes = 0;
      let crc = 0;
      res.on('data', (c) => {
        bytes += c.length;
        if (keep) chunks.push(c);
        else crc = crc32(c, crc);
      });
      res.on('end', () =>
        resolvePromise({ status: res.statusCode, headers: res.headers, bytes, crc: crc >>> 0, body: keep ? Buffer.concat(chunks) : undefined }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`timeout after ${timeoutMs} ms: ${path}`)));
    req.end();
  });
}

/** A 100-byte Range of `path`, checked against the generator (seed) and the total size. */
async function rangeChecked(srv, path, offset, total, seed) {
  const w = window(srv);
  const r = await get(srv.port, path, { range: `bytes=${offset}-${offset + RANGE_LEN - 1}` });
  const m = w();
  if (r.status !== 206) return { ...m, status: r.status };
  if (r.headers['content-encoding']) fail(`${path} ${offset}: content-encoding ${r.headers['content-encoding']} without Accept-Encoding`);
  const cr = `bytes ${offset}-${offset + RANGE_LEN - 1}/${total}`;
  if (r.headers['content-range'] !== cr) fail(`${path}: Content-Range ${r.headers['content-range']}, expected ${cr}`);
  const want = logBytes(offset, RANGE_LEN, seed);
  if (!r.body.equals(want))
    fail(
      `${path} bytes ${offset}-${offset + RANGE_LEN - 1}: body differs from the generator's\n  got  ${JSON.stringify(r.body.toString('latin1'))}\n  want ${JSON.stringify(want.toString('latin1'))}`,
    );
  return { ...m, status: 206 };
}

/** A whole GET of `path`, counted and its CRC-32 checked. */
async function fullChecked(srv, path, size, crc) {
  const w = window(srv);
  const r = await get(srv.port, path, {}, { keep: false });
  const m = w();
  if (r.status !== 200) return { ...m, status: r.status };
  if (r.headers['content-encoding']) fail(`${path}: content-encoding ${r.headers['content-encoding']} without Accept-Encoding`);
  if (r.bytes !== size || r.crc !== crc) fail(`${path}: ${r.bytes} bytes, CRC-32 ${hex32(r.crc)}; expected ${size} bytes, ${hex32(crc)}`);
  return { ...m, status: 200, bytes: r.bytes };
}

/** The warm-up every fresh server gets: a Range on random.mp4 (archive indexed, JIT warm); big.txt untouched. */
async function warm(srv) {
  const r = await get(srv.port, '/z/random.mp4', { range: 'bytes=0-99' });
  if (r.status !== 206) fail(`warm-up /z/random.mp4: status ${r.status}; stderr: ${srv.stderr().trim().slice(0, 500)}`);
}

/** Numeric fields of a stats object, nested objects flattened with dots. */
function numericFields(obj, prefix = '') {
  const out = {};
  for (const [k, v] of Object.entries(obj ?? {})) {
    if (typeof v === 'number') out[prefix + k] = v;
    else if (v && typeof v === 'object' && !Array.isArray(v)) Object.assign(out, numericFields(v, `${prefix}${k}.`));
  }
  return out;
}

/** The stats of the (first) ZipFops, numeric fields only, plus VmRSS and the JS heap and buffers. */
function memSnapshot(s) {
  const zipStats = s.zip.length ? numericFields(s.zip[0]) : {};
  return {
    vmRss: s.vmRss,
    heapUsed: s.memory.heapUsed,
    external: s.memory.external,
    arrayBuffers: s.memory.arrayBuffers,
    zip: zipStats,
    zipInstances: s.zip.length,
  };
}

function serverStderrCheck(srv, what) {
  const e = srv
    .stderr()
    .split('\n')
    .filter((l) => l.includes('error:'));
  if (e.length) fail(`${what}: the server reported errors: ${e.join(' / ').slice(0, 500)}`);
}

// ---------------------------------------------------------------------------
// wrk (stored case): -t1, pinned to CPU 0, plain text output parsed.

const wrkBytes = (text) => {
  const m = /^([\d.]+)([KMGT]?)B$/.exec(text);
  return m ? Number(m[1]) * 1024 ** ' KMGT'.indexOf(m[2] || ' ') : undefined;
};

function runWrk(url, duration) {
  const args = ['-t1', `-c${CONNECTIONS}`, `-d${Math.max(1, Math.round(duration))}s`, url];
  const [cmd, argv2] = PIN ? ['taskset', ['-c', '0', 'wrk', ...args]] : ['wrk', args];
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, argv2, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const n = /(\d+) requests in ([\d.]+)(m?s|m),\s+(\S+) read/.exec(out);
      if (code !== 0 || !n) return reject(new Error(`wrk exited ${code}: ${out.trim().slice(0, 500)}`));
      const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
      const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
      const unit = { ms: 1e-3, s: 1, m: 60 }[n[3]];
      resolvePromise({
        requests: Number(n[1]),
        seconds: Number(n[2]) * unit,
        bytes: wrkBytes(n[4]),
        errors: sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
        non2xx: non2xx ? Number(non2xx[1]) : 0,
        wrkPid: child.pid,
      });
    });
  });
}

// ---------------------------------------------------------------------------
// Cases.

const pct = (p) => `${fmt(p * 100, 0)} %`;

/** Case 1: the Range rows and the full GET, for each server, in fresh children. */
async function rangeCase(servers, fix) {
  const size = fix.big.usize;
  const out = {}; // server -> { full: [...], offsets: { p: [{ first, steady: [...], mem }] } }
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? servers : [...servers].reverse();
    for (const s of order) {
      const o = (out[s.key] ??= { full: [], offsets: {} });
      // The full GET: one plain streaming inflate of big.txt.
      await waitQuiet();
      let srv = await startServer(s.index);
      try {
        await warm(srv);
        const r = await fullChecked(srv, '/z/big.txt', size, fix.big.crc);
        if (r.status !== 200) fail(`${s.key}: GET /z/big.txt: status ${r.status}`);
        serverStderrCheck(srv, `${s.key} full GET`);
        o.full.push(r);
        log(
          `  round ${round + 1} ${s.key.padEnd(6)} full GET ${fmt(size / MiB, 0)} MiB: server CPU ${fmt(r.cpuMs, 0)} ms (stat ${fmt(r.cpuTicksMs, 0)} ms), wall ${fmt(r.wallMs, 0)} ms, ${fmt(size / MB / (r.wallMs / 1000), 0)} MB/s, other CPU ${fmt(r.otherPct, 0)} %`,
        );
      } finally {
        await srv.stop();
      }
      for (const p of OFFSETS) {
        const offset = Math.floor(size * p);
        await waitQuiet();
        srv = await startServer(s.index);
        try {
          await warm(srv);
          const m0 = memSnapshot(await srv.stats());
          const first = await rangeChecked(srv, '/z/big.txt', offset, size, BIG_SEED);
          if (first.status !== 206) fail(`${s.key}: Range at ${offset}: status ${first.status}`);
          const m1 = memSnapshot(await srv.stats());
          const steady = [];
          for (let i = 0; i < REQUESTS; i++) steady.push(await rangeChecked(srv, '/z/big.txt', offset, size, BIG_SEED));
          const m2 = memSnapshot(await srv.stats());
          serverStderrCheck(srv, `${s.key} Range at ${pct(p)}`);
          (o.offsets[p] ??= []).push({ first, steady, mem: [m0, m1, m2] });
          log(
            `  round ${round + 1} ${s.key.padEnd(6)} Range ${pct(p).padStart(4)} (bytes=${offset}-${offset + RANGE_LEN - 1}): first CPU ${fmt(first.cpuMs, 1)} ms wall ${fmt(first.wallMs, 1)} ms; then median CPU ${fmt(median(steady.map((x) => x.cpuMs)), 1)} ms wall ${fmt(median(steady.map((x) => x.wallMs)), 1)} ms; VmRSS ${fmt(m0.vmRss / MiB, 0)} -> ${fmt(m1.vmRss / MiB, 0)} -> ${fmt(m2.vmRss / MiB, 0)} MiB`,
          );
        } finally {
          await srv.stop();
        }
      }
    }
  }

  // Tables.
  const rows = [];
  const goals = [];
  const summary = {};
  for (const s of servers) {
    const o = out[s.key];
    const fullCpu = median(o.full.map((r) => r.cpuMs));
    const fullWall = median(o.full.map((r) => r.wallMs));
    summary[s.key] = { fullCpuMs: fullCpu, fullWallMs: fullWall, offsets: {} };
    rows.push([
      s.key,
      `full GET (${fmt(size / MiB, 0)} MiB)`,
      '-',
      fmt(fullCpu, 1),
      fmt(fullWall, 1),
      '-',
      '-',
      '100 %',
      fmt(median(o.full.map((r) => r.otherPct)), 0),
    ]);
    for (const p of OFFSETS) {
      const runs = o.offsets[p];
      const firstCpu = median(runs.map((r) => r.first.cpuMs));
      const firstWall = median(runs.map((r) => r.first.wallMs));
      const steadyCpu = median(runs.flatMap((r) => r.steady.map((x) => x.cpuMs)));
      const steadyWall = median(runs.flatMap((r) => r.steady.map((x) => x.wallMs)));
      const other = median(runs.flatMap((r) => [r.first.otherPct, ...r.steady.map((x) => x.otherPct)]));
      summary[s.key].offsets[p] = { firstCpuMs: firstCpu, firstWallMs: firstWall, steadyCpuMs: steadyCpu, steadyWallMs: steadyWall };
      rows.push([
        s.key,
        `Range ${pct(p)}`,
        String(Math.floor(size * p)),
        fmt(firstCpu, 1),
        fmt(firstWall, 1),
        fmt(steadyCpu, 2),
        fmt(steadyWall, 2),
        `${fmt((100 * steadyCpu) / fullCpu, 2)} %`,
        fmt(other, 0),
      ]);
      goals.push([
        s.key,
        `steady Range at ${pct(p)}: CPU / full-GET CPU`,
        `${fmt((100 * steadyCpu) / fullCpu, 2)} %`,
        '< 2 %',
        (100 * steadyCpu) / fullCpu < 2 ? 'PASS' : 'FAIL',
      ]);
      goals.push([
        s.key,
        `first Range at ${pct(p)} (index build): CPU / full-GET CPU`,
        `${fmt(firstCpu / fullCpu, 2)} x`,
        '<= 1.5 x',
        firstCpu / fullCpu <= 1.5 ? 'PASS' : 'FAIL',
      ]);
    }
  }
  log('');
  log(
    `### Range into a ${fmt(size / MiB, 0)} MiB deflated entry (big.txt, ${fmt(size / fix.big.csize, 2)}:1), no Accept-Encoding, ${RANGE_LEN}-byte ranges; fresh server per row, first request then median of ${REQUESTS}${ROUNDS > 1 ? `, medians over ${ROUNDS} rounds` : ''}`,
  );
  log('');
  log(
    table(
      [
        'server',
        'request',
        'offset',
        'first: CPU ms',
        'first: wall ms',
        `median of ${REQUESTS}: CPU ms`,
        `median of ${REQUESTS}: wall ms`,
        'steady CPU / full-GET CPU',
        'other CPU %',
      ],
      rows,
      'llrrrrrrr',
    ),
  );
  log('');
  log('### Range goals (the deep ones: 50 % and 99 %; 10 % for information)');
  log('');
  log(table(['server', 'goal', 'measured', 'target', 'result'], goals, 'llrrl'));

  // Memory: the 99 % server's snapshots (first round).
  const memRows = [];
  const memGoals = [];
  for (const s of servers) {
    for (const p of OFFSETS) {
      const [m0, m1, m2] = out[s.key].offsets[p][0].mem;
      const keys = [...new Set([...Object.keys(m0.zip), ...Object.keys(m1.zip), ...Object.keys(m2.zip)])];
      const zipText = (m) => keys.map((k) => `${k}=${m.zip[k] ?? '-'}`).join(' ') || '(no ZipFops seen)';
      memRows.push([s.key, pct(p), 'before the first Range', fmt(m0.vmRss / MiB, 1), fmt(m0.external / MiB, 1), fmt(m0.heapUsed / MiB, 1), zipText(m0)]);
      memRows.push([s.key, pct(p), 'after it', fmt(m1.vmRss / MiB, 1), fmt(m1.external / MiB, 1), fmt(m1.heapUsed / MiB, 1), zipText(m1)]);
      memRows.push([s.key, pct(p), `after ${REQUESTS} more`, fmt(m2.vmRss / MiB, 1), fmt(m2.external / MiB, 1), fmt(m2.heapUsed / MiB, 1), zipText(m2)]);
      if (p === OFFSETS[OFFSETS.length - 1]) {
        const idxKey = keys.find((k) => /index/i.test(k) && /bytes/i.test(k) && !/^indexBuilds$/.test(k));
        const rssDelta = m2.vmRss - m0.vmRss;
        memGoals.push([
          s.key,
          `VmRSS growth over the Ranges at 99 % / ${fmt(size / MiB, 0)} MiB`,
          `${fmt(rssDelta / MiB, 1)} MiB = ${fmt((100 * rssDelta) / size, 2)} %`,
          '(information)',
          '',
        ]);
        memGoals.push(
          idxKey
            ? [
                s.key,
                `ZipFopsStats.${idxKey} / entry size`,
                `${m2.zip[idxKey]} B = ${fmt((100 * m2.zip[idxKey]) / size, 3)} %`,
                '< 1 %',
                (100 * m2.zip[idxKey]) / size < 1 ? 'PASS' : 'FAIL',
              ]
            : [s.key, 'index bytes / entry size', 'no index byte counter in ZipFopsStats', '< 1 %', 'n/a'],
        );
        summary[s.key].mem99 = { before: m0, afterFirst: m1, afterSteady: m2, indexKey: idxKey };
      }
    }
  }
  log('');
  log('### Index memory (server child; VmRSS from /proc, external and heap from process.memoryUsage(), every numeric ZipFopsStats field; round 1)');
  log('');
  log(table(['server', 'offset', 'when', 'VmRSS MiB', 'external MiB', 'heap MiB', 'ZipFopsStats'], memRows, 'lllrrrl'));
  log('');
  log(table(['server', 'what', 'measured', 'target', 'result'], memGoals, 'llrrl'));
  return { raw: out, summary };
}

/** Case 3: random.mp4 from the zip (method 8, stored blocks) and from disk, with wrk. */
async function storedCase(servers, fix, randomData) {
  const targets = [
    { key: 'zip', path: '/z/random.mp4' },
    { key: 'disk', path: '/d/random.mp4' },
  ];
  const res = {};
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? servers : [...servers].reverse();
    for (const s of order) {
      for (const t of round % 2 === 0 ? targets : [...targets].reverse()) {
        await waitQuiet();
        const srv = await startServer(s.index);
        try {
          const v = await get(srv.port, t.path);
          if (v.status !== 200) fail(`${s.key} ${t.path}: status ${v.status}`);
          if (v.headers['content-encoding']) fail(`${s.key} ${t.path}: content-encoding ${v.headers['content-encoding']}`);
          if (!v.body.equals(randomData)) fail(`${s.key} ${t.path}: body differs from disk/random.mp4`);
          const url = `http://127.0.0.1:${srv.port}${t.path}`;
          if (WARMUP > 0) await runWrk(url, WARMUP);
          const w = window(srv);
          const r = await runWrk(url, DURATION);
          const m = w();
          serverStderrCheck(srv, `${s.key} ${t.path} under wrk`);
          const ok = r.errors === 0 && r.non2xx === 0 && r.requests > 0;
          const row = {
            reqPerSec: r.requests / r.seconds,
            mbPerSec: (r.requests * RANDOM_SIZE) / MB / r.seconds,
            serverCpuPct: (m.cpuMs / m.wallMs) * 100,
            serverMsPerReq: m.cpuMs / r.requests,
            // wrk's CPU is in "other": it is not the server's nor this process's. Reported as is.
            otherPct: m.otherPct,
            ok,
            errors: r.errors,
            non2xx: r.non2xx,
          };
          (res[`${s.key}/${t.key}`] ??= []).push(row);
          log(
            `  round ${round + 1} ${s.key.padEnd(6)} ${t.key.padEnd(4)} ${fmt(row.reqPerSec, 1)} req/s ${fmt(row.mbPerSec, 0)} MB/s server CPU ${fmt(row.serverCpuPct, 0)} % (${fmt(row.serverMsPerReq, 2)} ms/req)${ok ? '' : ` INVALID (errors ${r.errors}, non-2xx ${r.non2xx})`}`,
          );
        } finally {
          await srv.stop();
        }
      }
    }
  }
  const best = (k) => {
    const rs = (res[k] ?? []).filter((r) => r.ok);
    return rs.length ? rs.reduce((a, b) => (b.reqPerSec > a.reqPerSec ? b : a)) : undefined;
  };
  const rows = [];
  const ratios = [];
  for (const s of servers) {
    for (const t of targets) {
      const b = best(`${s.key}/${t.key}`);
      rows.push(
        b
          ? [
              s.key,
              t.key,
              fmt(b.reqPerSec, 1),
              fmt(b.mbPerSec, 0),
              fmt(b.serverCpuPct, 0),
              fmt(b.serverMsPerReq, 2),
              res[`${s.key}/${t.key}`].map((r) => fmt(r.reqPerSec, 1)).join(' / '),
              fmt(b.otherPct, 0),
            ]
          : [s.key, t.key, 'INVALID', '-', '-', '-', '-', '-'],
      );
    }
    const z = best(`${s.key}/zip`);
    const d = best(`${s.key}/disk`);
    const ratio = z && d ? z.reqPerSec / d.reqPerSec : undefined;
    ratios.push([
      s.key,
      ratio === undefined ? 'invalid' : `${fmt(ratio, 2)} x`,
      '>= 0.9 x (after)',
      ratio === undefined ? 'FAIL' : ratio >= 0.9 ? 'PASS' : 'FAIL',
    ]);
  }
  log('');
  log(
    `### Stored-block deflate entry: random.mp4 (10 MiB; zip: method ${fix.random.method}${fix.random.storedBlocks ? `, ${fix.random.storedBlocks} stored blocks only` : ''}, ${fix.random.csize} B) identity, zip vs disk; wrk -t1 -c${CONNECTIONS}, ${WARMUP} s warm-up + ${DURATION} s, best of ${ROUNDS}`,
  );
  log('');
  log(table(['server', 'from', 'req/s', 'MB/s', 'server CPU %', 'server ms/req', 'req/s by round', 'other CPU % (wrk included)'], rows, 'llrrrrrr'));
  log('');
  log(table(['server', 'zip / disk (req/s)', 'target', 'result'], ratios, 'lrrl'));
  return res;
}

/** Case 4: nested archives. */
async function nestedCase(servers, fix) {
  const res = {};
  const mid = Math.floor(NESTED_SIZE / 2) + 12345;
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? servers : [...servers].reverse();
    for (const s of order) {
      for (const n of NESTED_ROWS) {
        await waitQuiet();
        const srv = await startServer(s.index);
        try {
          await warm(srv);
          const f1 = await fullChecked(srv, n.path, NESTED_SIZE, fix.nested.crc);
          let row;
          if (f1.status !== 200) {
            row = { unsupported: f1.status };
          } else {
            const full = [];
            for (let i = 0; i < REQUESTS; i++) full.push(await fullChecked(srv, n.path, NESTED_SIZE, fix.nested.crc));
            const r1 = await rangeChecked(srv, n.path, mid, NESTED_SIZE, NESTED_SEED);
            const ranges = [];
            for (let i = 0; i < REQUESTS && r1.status === 206; i++) ranges.push(await rangeChecked(srv, n.path, mid, NESTED_SIZE, NESTED_SEED));
            if (r1.status !== 206) fail(`${s.key} ${n.path}: a whole GET is 200 but a Range is ${r1.status}`);
            if (ranges.some((r) => r.status !== 206)) fail(`${s.key} ${n.path}: a Range answered other than 206`);
            serverStderrCheck(srv, `${s.key} ${n.path}`);
            row = { fullFirst: f1, full, rangeFirst: r1, ranges };
          }
          (res[`${s.key}/${n.key}`] ??= []).push(row);
          log(
            row.unsupported
              ? `  round ${round + 1} ${s.key.padEnd(6)} ${n.label}: unsupported (${row.unsupported})`
              : `  round ${round + 1} ${s.key.padEnd(6)} ${n.label}: GET first ${fmt(f1.wallMs, 1)} ms, median ${fmt(median(row.full.map((x) => x.wallMs)), 1)} ms; Range first ${fmt(row.rangeFirst.wallMs, 1)} ms, median ${fmt(median(row.ranges.map((x) => x.wallMs)), 1)} ms`,
          );
        } finally {
          await srv.stop();
        }
      }
    }
  }
  const rows = [];
  for (const s of servers) {
    for (const n of NESTED_ROWS) {
      const rs = res[`${s.key}/${n.key}`];
      const unsup = rs.find((r) => r.unsupported);
      if (unsup) {
        rows.push([s.key, n.label, `unsupported (${unsup.unsupported})`, '-', '-', '-', '-', '-', '-', '-']);
        continue;
      }
      const med = (f) => median(rs.map(f));
      rows.push([
        s.key,
        n.label,
        fmt(
          med((r) => r.fullFirst.wallMs),
          1,
        ),
        fmt(
          med((r) => r.fullFirst.cpuMs),
          1,
        ),
        fmt(
          med((r) => median(r.full.map((x) => x.wallMs))),
          1,
        ),
        fmt(
          med((r) => median(r.full.map((x) => x.cpuMs))),
          1,
        ),
        fmt(
          med((r) => r.rangeFirst.wallMs),
          2,
        ),
        fmt(
          med((r) => r.rangeFirst.cpuMs),
          2,
        ),
        fmt(
          med((r) => median(r.ranges.map((x) => x.wallMs))),
          2,
        ),
        fmt(
          med((r) => median(r.ranges.map((x) => x.cpuMs))),
          2,
        ),
      ]);
    }
  }
  const ne = fix.nestedEntries;
  const desc = (z, inner) => {
    const e = ne[z][inner];
    return `${z}: ${inner} ${e.usize} B, method ${e.method}, ${e.csize} B`;
  };
  log('');
  log(
    `### Nested archives: text10.txt (10 MiB of log text, deflated ${fmt(NESTED_SIZE / ne['plain.zip']['text10.txt'].csize, 2)}:1) whole, and bytes=${mid}-${mid + RANGE_LEN - 1}; ${desc('outer-stored.zip', 'inner.zip')}; ${desc('outer-deflated.zip', 'inner.zip')}; ${desc('outer-deflated-text.zip', 'inner-stored.zip')}; fresh server per row, first then median of ${REQUESTS}`,
  );
  log('');
  log(
    table(
      [
        'server',
        'path',
        'GET first wall ms',
        'GET first CPU ms',
        'GET wall ms',
        'GET CPU ms',
        'Range first wall ms',
        'Range first CPU ms',
        'Range wall ms',
        'Range CPU ms',
      ],
      rows,
      'llrrrrrrrr',
    ),
  );
  return res;
}

// ---------------------------------------------------------------------------
// Main.

const t0 = performance.now();
log(`command: node bench/range.mjs ${argv.join(' ')}`.trimEnd());
const pinned = PIN && pinSelf();
if (PIN && !pinned) log('warning: taskset failed; running unpinned');
const fix = await fixtures();
const dist = snapshotDist();
const before = BEFORE ? snapshotBefore(BEFORE) : undefined;
const servers = [{ key: 'after', index: dist.index }, ...(before ? [{ key: 'before', index: before.index }] : [])];
log(
  `Range into deflated entries: commit ${git(['rev-parse', '--short', 'HEAD']) ?? '?'}, node ${process.version}, ${cpus().length} CPUs, loadavg ${loadavg()
    .map((x) => x.toFixed(2))
    .join(
      ' ',
    )}; after = dist ${dist.fingerprint}${before ? `; before = ${before.path} (commit ${before.commit ?? '?'}, dist ${before.fingerprint})` : ''}; ${pinned ? 'server on CPU 1, this process and wrk on CPU 0' : 'unpinned'}; cases ${CASES.join(',')}, ${ROUNDS} round(s), ${REQUESTS} requests`,
);
log(
  `fixtures (${fmt(fix.seconds, 1)} s): ${ZIP_NAME}: big.txt ${fix.big.usize} B deflated to ${fix.big.csize} B (${fmt(fix.big.usize / fix.big.csize, 2)}:1, CRC ${hex32(fix.big.crc)}); random.mp4 ${fix.random.usize} B, method ${fix.random.method}, ${fix.random.csize} B${fix.random.storedBlocks ? `, ${fix.random.storedBlocks} stored blocks only` : ''}`,
);
const result = {};
if (CASES.includes('range')) {
  log('');
  log('range: full GET and Ranges at 10 / 50 / 99 %');
  result.range = await rangeCase(servers, fix);
}
if (CASES.includes('stored')) {
  log('');
  log('stored: random.mp4, zip vs disk, wrk');
  result.stored = await storedCase(servers, fix, readFileSync(fix.randomPath));
}
if (CASES.includes('nested')) {
  log('');
  log('nested: plain, stored inside a zip, deflated inside a zip');
  result.nested = await nestedCase(servers, fix);
}
const totalS = (performance.now() - t0) / 1000;
log('');
log(`done in ${fmt(totalS, 0)} s (waited ${fmt(quietSpent, 1)} s for a quiet machine, budget ${QUIET_BUDGET} s)`);
emitResult({
  script: 'range',
  argv,
  size: SIZE,
  dist: dist.fingerprint,
  before: before ? { path: before.path, commit: before.commit, dist: before.fingerprint } : undefined,
  pinned,
  totalS,
  summary: result.range?.summary,
  stored: result.stored,
  nested: result.nested,
});
