// 5. HTTP load: vfserve against sirv, serve-static, express.static +
// compression and Node's limit, over loopback, with wrk (or autocannon).
//
//   npm run build && node bench/http.mjs
//   node bench/http.mjs [--rounds 2] [--duration 5] [--warmup 1] [--connections 32]
//                       [--servers vfs-disk,vfs-zip,...] [--cases small,js,js-gzip,big] [--no-pin]
//                       [--loadgen wrk|autocannon] [--before <older dist/>]
//                       [--quiet-budget 20] [--retry-budget 40] [--keep-bodies]
//   node bench/http.mjs --profile vfs-disk:js[,sirv:js]   # --cpu-prof of the server child, summarised
//   node bench/http.mjs --profile vfs-disk:small,vfs-disk@hot+writehead:small,node-limit:small
//                                                         # where 1 KiB goes, against a prototype fast path and the limit
//   node bench/http.mjs --count [--cases small]           # async resources (fs requests, promises) per request
//   node bench/http.mjs --servers vfs-disk,vfs-disk@fd-cache,sirv --cases js --rounds 5
//                                                         # a patched copy of dist/ (VARIANTS below) beside the rest
//
// Servers: vfs-disk, vfs-disk-noprecomp, vfs-zip, sirv, serve-static, express and
// node-limit, "Node's limit": a bare node:http server holding every file in memory
// with frozen headers, answering with writeHead(200, headers).end(buffer) (gzip
// buffer when Accept-Encoding has gzip). No static server on node:http can beat
// it; every table gives each row's "x Node's limit".
//
// Before and after in one run. `--before <path to an older build's dist/>` adds
// vfs-disk-before and vfs-zip-before: the same servers on that build, each run
// right after its current twin in every round, so both see the same machine
// drift; the info table gives "after / before" per file. The baseline for the
// serving-core restructure is commit ff8e477, built in its own worktree (never
// inside another checkout), once:
//
//   git worktree add --detach /work/bench-before ff8e477
//   (cd /work/bench-before && npm ci && npm run build)
//   npm run build && node bench/http.mjs --before /work/bench-before/dist
//
// The older dist/ is copied (bench/.data/http-run/before/dist) like dist/ is;
// its bare imports (mime-types, fast-glob) resolve from this checkout's
// node_modules. `--servers vfs-disk,vfs-disk-before,node-limit` picks some.
//
// Load generator: wrk when installed (Debian: apt-get install -y wrk), else
// autocannon, and the first output line says which (--loadgen forces one).
// autocannon runs in Node: on one core it saturates before a fast server does
// (about 40,000 req/s of 1 KiB). wrk runs with one thread (-t1) and a Lua
// done() hook only (bench/.data/http-run/wrk-done.lua), so requests stay wrk's
// prebuilt ones and no response reaches Lua; the script reads Requests/sec,
// Transfer/sec (headers included), socket errors, timeouts and "Non-2xx or 3xx"
// (wrk counts statuses > 399 there) from its output, and p50/p99 and wrk's own
// CPU time from the hook's line. --count always uses autocannon (a fixed
// number of requests).
//
// Every server runs in its own child process (bench/lib/http-server.mjs), started
// fresh for each measurement, listening on 127.0.0.1 port 0. By default the
// server child is pinned to CPU 1 and this process and the load generator (wrk,
// or autocannon inside this process) to CPU 0 with taskset, so on a 2-core
// machine each side has one core, the server's libuv threadpool included. Each
// measurement: start the server, verify one response (status 200, body or
// gunzipped body equal to the file), `--warmup` s of load, then `--duration`
// seconds of measured load while the child's VmRSS (/proc/<pid>/status) is
// sampled every 100 ms and its CPU time read from /proc/<pid>/stat (also given
// per response, "server µs/req", which other processes sway less than req/s). Rounds
// interleave the servers for each file (the order is reversed every other
// round), so machine drift hits all alike; each row reports its best round.
//
// The servers import a snapshot of dist/ (bench/.data/http-run/dist), taken at
// the start, so a rebuild during the run cannot mix builds.
import autocannon from 'autocannon';
import { spawn, execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { loadavg, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { BENCH_DIR, cliArgs, DATA_DIR, distFingerprint, emitResult, fmt, log, median, MiB, ROOT, table } from './lib/common.mjs';
import { CLK_TCK, cpuTicks, machineTicks, pinSelf, rssOf, machineInfo } from './lib/proc.mjs';
import { hasWrk as wrkInstalled, runWrk as runWrkLib } from './lib/wrk.mjs';

export { parseWrk } from './lib/wrk.mjs';
import { httpFixtures } from './lib/httpgen.mjs';
import { summarizeProfile } from './lib/profile.mjs';

// ---------------------------------------------------------------------------
// Options.

const { arg, flag } = cliArgs();

const ROUNDS = Number(arg('rounds', 2));
const DURATION = Number(arg('duration', 5));
const WARMUP = Number(arg('warmup', 1));
const CONNECTIONS = Number(arg('connections', 32));
const PIN = !flag('no-pin');
// This VM is shared with builds and tests. Before each measurement, wait (up to 10 s, at most
// QUIET_BUDGET s over the whole run) until other processes use less than 10 % of a core; a
// measurement during which they used more than NOISY_PCT % of a core is repeated once, while
// RETRY_BUDGET s of repeats remain. Every row reports the other processes' CPU it ran with.
const QUIET_BUDGET = Number(arg('quiet-budget', 20));
const RETRY_BUDGET = Number(arg('retry-budget', 40));
const NOISY_PCT = 15;
const PROFILE = arg('profile', '');
const COUNT = flag('count');
// The load generator: wrk when it is installed (apt-get install wrk), else autocannon. autocannon
// runs in Node and, on one core, tops out before a fast server does; wrk (C, one thread) does not.
const hasWrk = wrkInstalled();
const LOADGEN_ARG = arg('loadgen', '');
if (LOADGEN_ARG && LOADGEN_ARG !== 'wrk' && LOADGEN_ARG !== 'autocannon') throw new Error('--loadgen: wrk or autocannon');
if (LOADGEN_ARG === 'wrk' && !hasWrk) throw new Error('--loadgen wrk: wrk is not installed (apt-get install -y wrk)');
const LOADGEN = LOADGEN_ARG || (hasWrk ? 'wrk' : 'autocannon');
const LOADGEN_NOTE = LOADGEN_ARG
  ? `${LOADGEN} (--loadgen)`
  : hasWrk
    ? 'wrk'
    : 'autocannon (wrk is not installed: apt-get install -y wrk; autocannon saturates its core before fast servers do)';

export const SERVERS = [
  { key: 'vfs-disk', label: 'vfserve, disk (default: precompressed on)' },
  { key: 'vfs-disk-noprecomp', label: 'vfserve, disk, precompressed: false' },
  { key: 'vfs-disk-gz', label: "vfserve, disk with app.js.gz beside app.js (gzip -6, the zip entry's level)" },
  { key: 'vfs-zip', label: 'vfserve, site.zip' },
  { key: 'sirv', label: 'sirv (dev: false, etag)' },
  { key: 'serve-static', label: 'serve-static' },
  { key: 'express', label: 'express.static + compression' },
  { key: 'node-limit', label: "Node's limit: files in memory, frozen headers, writeHead().end(buffer)" },
];
// With --before <dist>: the same vfserve servers on an older build, run beside the current ones.
const BEFORE_SERVERS = [
  { key: 'vfs-disk-before', kind: 'vfs-disk', before: true },
  { key: 'vfs-disk-gz-before', kind: 'vfs-disk-gz', before: true },
  { key: 'vfs-zip-before', kind: 'vfs-zip', before: true },
];
const LIMIT = 'node-limit';
export const CASES = [
  { key: 'small', file: 'small.html', path: '/small.html', headers: {}, label: 'small.html, 1 KiB' },
  { key: 'js', file: 'app.js', path: '/app.js', headers: {}, label: 'app.js, 100 KiB, no Accept-Encoding' },
  { key: 'js-gzip', file: 'app.js', path: '/app.js', headers: { 'accept-encoding': 'gzip' }, label: 'app.js, 100 KiB, Accept-Encoding: gzip' },
  { key: 'big', file: 'big.mp4', path: '/big.mp4', headers: {}, label: 'big.mp4, 10 MiB' },
];
// Responses that must be gzip for a goal to mean anything.
const MUST_GZIP = new Set([
  'js-gzip/vfs-disk-gz',
  'js-gzip/vfs-disk-gz-before',
  'js-gzip/vfs-zip',
  'js-gzip/vfs-zip-before',
  'js-gzip/express',
  'js-gzip/node-limit',
]);

// Analysis only: patched copies of the dist/ snapshot, to measure a proposed change before
// anyone writes it in src/ (the bench/analysis/*-variants.mjs approach). A server
// `vfs-zip@a+b` is vfs-zip on a copy with patches a and b; a patch that no longer applies
// is an error naming it. These are prototypes that skip edge cases, not proposals as written.
export const VARIANTS = {
  writehead: {
    desc: 'write(): res.writeHead(status, headers) (one call; no per-header setHeader, no kOutHeaders map) instead of statusCode + setHeader per header, on HTTP/1',
    file: 'mounts/handler.js',
    patches: [
      [
        '    res.statusCode = out.status;\n    const isH2 = res instanceof Http2ServerResponse;',
        '    const isH2 = res instanceof Http2ServerResponse;\n    if (!isH2) {\n        res.writeHead(out.status, out.headers);\n        const b = out.body;\n        if (b === null) { res.end(); return; }\n        if (Buffer.isBuffer(b)) { res.end(b); return; }\n        streamTo(b, res, onStreamError);\n        return;\n    }\n    res.statusCode = out.status;',
      ],
    ],
  },
  hot: {
    desc: 'the ceiling of a synchronous fast path: a GET without If-*/Range whose last answer (same URL and Accept-Encoding, < 1 s old) was a 200 with an in-memory body is answered with writeHead(200, flat header array).end(body) before the engine, no promise, no per-request objects',
    file: 'mounts/handler.js',
    patches: [
      [
        '    const handler = (req, res, next) => {\n        const core = coreRequest(req);',
        "    const hot = new Map();\n    let hotNow = Date.now();\n    setInterval(() => { hotNow = Date.now(); }, 50).unref();\n    const handler = (req, res, next) => {\n        const rh = req.headers;\n        const plain = req.method === 'GET' && rh.range === undefined && rh['if-none-match'] === undefined && rh['if-modified-since'] === undefined && rh['if-match'] === undefined && rh['if-unmodified-since'] === undefined && rh['if-range'] === undefined && req.baseUrl === undefined;\n        const hotKey = plain ? `${req.url}\\0${rh['accept-encoding'] ?? ''}` : undefined;\n        if (hotKey !== undefined) {\n            const e = hot.get(hotKey);\n            if (e !== undefined && e.until > hotNow) { res.writeHead(200, e.headers).end(e.body); return; }\n        }\n        const core = coreRequest(req);",
      ],
      [
        '        engine.handle(core).then((out) => {\n',
        '        engine.handle(core).then((out) => {\n            if (hotKey !== undefined && out.status === 200 && Buffer.isBuffer(out.body) && !out.callback) { if (hot.size > 10000) hot.clear(); hot.set(hotKey, { headers: Object.freeze(Object.entries(out.headers).flat()), body: out.body, until: hotNow + 1000 }); }\n',
      ],
    ],
  },
  'fd-cache': {
    desc: "PlatFops open: a plain read-only open reuses an fd (and its fstat) opened less than 1 s ago, refcounted, as nginx's open_file_cache; per request only the reads remain",
    file: 'fops/plat.js',
    patches: [
      [
        '    closeImpl() {\n        return closeFd(this.#fd);\n    }',
        '    closeImpl() {\n        const c = this.__cached;\n        if (c) { c.refs--; return c.dead && c.refs === 0 ? closeFd(this.#fd) : Promise.resolve(); }\n        return closeFd(this.#fd);\n    }',
      ],
      [
        "        assertFopPath(path, 'open');\n        let fd;",
        "        assertFopPath(path, 'open');\n        if (flags === 0) {\n            const cache = (globalThis.__benchFds ??= new Map());\n            const now = Date.now();\n            let e = cache.get(path);\n            if (e && e.until <= now) { cache.delete(path); e.dead = true; if (e.refs === 0) closeFd(e.fd).catch(() => undefined); e = undefined; }\n            if (!e) {\n                let nfd;\n                try { nfd = await openFd(path, NONBLOCK); } catch (err) { throw fromSystemError(err, 'open', path); }\n                let st;\n                try { st = await fstatFd(nfd); } catch (err) { await closeFd(nfd).catch(() => undefined); throw fromSystemError(err, 'open', path); }\n                if (!st.isFile()) { await closeFd(nfd).catch(() => undefined); throw new FopError('NOT_A_FILE', 'open', path, 'not a regular file'); }\n                const again = cache.get(path);\n                if (again && again.until > now) { closeFd(nfd).catch(() => undefined); e = again; }\n                else { e = { fd: nfd, size: st.size, mtime: st.mtimeMs, refs: 0, until: now + 1000, dead: false }; cache.set(path, e); }\n            }\n            e.refs++;\n            const h = new PlatHandle(this, path, e.fd, e.size, FopFlags.MOD_TIME_VALID, e.mtime);\n            h.__cached = e;\n            return h;\n        }\n        let fd;",
      ],
    ],
  },
};

function serverSpec(key) {
  const b = BEFORE_SERVERS.find((x) => x.key === key);
  if (b) {
    if (!BEFORE) throw new Error(`--servers ${key}: needs --before <path to an older dist/>`);
    return { ...b, label: `${SERVERS.find((x) => x.key === b.kind).label}, BEFORE build (${BEFORE})` };
  }
  const [base, variants] = key.split('@');
  const s = SERVERS.find((x) => x.key === base);
  if (!s) throw new Error(`--servers: unknown ${base} (one of ${SERVERS.map((x) => x.key).join(', ')})`);
  if (!variants) return s;
  if (!base.startsWith('vfs-')) throw new Error(`--servers ${key}: variants apply to vfserve servers only`);
  const names = variants.split('+');
  for (const v of names) if (!VARIANTS[v]) throw new Error(`--servers ${key}: unknown variant ${v} (one of ${Object.keys(VARIANTS).join(', ')})`);
  return { key, kind: base, label: `${s.label}, patched: ${names.join(' + ')}`, variants: names };
}

const pick = (list, name) => {
  const want = arg(name, '');
  if (!want) return list;
  const keys = want.split(',');
  for (const k of keys) if (!list.some((x) => x.key === k)) throw new Error(`--${name}: unknown ${k} (one of ${list.map((x) => x.key).join(', ')})`);
  return list.filter((x) => keys.includes(x.key));
};
const BEFORE = arg('before', '');
/** The default list: every server, each -before one right after its current twin. */
const defaultServers = () => SERVERS.flatMap((s) => [s, ...(BEFORE ? BEFORE_SERVERS.filter((b) => b.kind === s.key).map((b) => serverSpec(b.key)) : [])]);
const servers = arg('servers', '') ? arg('servers', '').split(',').map(serverSpec) : defaultServers();
const cases = pick(CASES, 'cases');

const SERVER_SCRIPT = join(BENCH_DIR, 'lib', 'http-server.mjs');
const RUN_DIR = join(DATA_DIR, 'http-run');
const PROF_DIR = join(RUN_DIR, 'prof');

// autocannon 9 appends every response body to a string (PipelinedRequestsQueue
// addBody: `req.body += data`, a UTF-8 decode plus a concatenation per chunk).
// For the 10 MiB file that alone held the load generator at 100 % CPU: sirv gave
// 2 req/s (17 MiB/s) instead of 139 (1387 MiB/s); at 100 KiB it made no
// measurable difference. Nothing here uses the bodies (no expectBody, verifyBody
// or onResponse; each server's body is checked once by verify()), so in this
// process addBody is a no-op (--keep-bodies restores it). Nothing under
// node_modules is changed.
const PipelinedRequestsQueue = createRequire(import.meta.url)('autocannon/lib/pipelinedRequestsQueue.js');
if (typeof PipelinedRequestsQueue?.prototype?.addBody !== 'function')
  throw new Error('autocannon internals changed: PipelinedRequestsQueue.prototype.addBody not found');
if (!flag('keep-bodies')) PipelinedRequestsQueue.prototype.addBody = function addBody() {};

// ---------------------------------------------------------------------------
// Helpers.

function snapshotDist() {
  const dst = join(RUN_DIR, 'dist');
  for (let attempt = 0; attempt < 5; attempt++) {
    const before = distFingerprint();
    rmSync(dst, { recursive: true, force: true });
    mkdirSync(RUN_DIR, { recursive: true });
    cpSync(join(ROOT, 'dist'), dst, { recursive: true, filter: (src) => !src.endsWith('.map') });
    if (distFingerprint() === before) return { index: join(dst, 'index.js'), fingerprint: before };
  }
  throw new Error('dist/ kept changing while it was copied');
}

/** A patched copy of the dist/ snapshot for `variants` (bench/.data/http-run/variants/<names>/dist); returns its index.js. */
function variantDist(snapshotIndex, variants) {
  const src = join(snapshotIndex, '..');
  const dir = join(RUN_DIR, 'variants', variants.join('+'), 'dist');
  rmSync(dir, { recursive: true, force: true });
  cpSync(src, dir, { recursive: true });
  for (const v of variants) {
    const { file, patches } = VARIANTS[v];
    const path = join(dir, file);
    let text = readFileSync(path, 'utf8');
    for (const [from, to] of patches) {
      if (!text.includes(from)) throw new Error(`variant ${v}: patch no longer applies to ${file} (the library changed): ${from.slice(0, 80)}`);
      text = text.replace(from, to);
    }
    writeFileSync(path, text);
  }
  return join(dir, 'index.js');
}

/** A fingerprint of the .js files under `dir`, as distFingerprint() gives for dist/. */
function dirFingerprint(dir) {
  const h = createHash('sha256');
  const files = readdirSync(dir, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.js'))
    .sort();
  for (const f of files) h.update(f).update(readFileSync(join(dir, f)));
  return h.digest('hex').slice(0, 12);
}

/**
 * A copy of the --before dist/ (bench/.data/http-run/before/dist), like the snapshot of dist/. Its
 * bare imports (mime-types, fast-glob) resolve from this checkout's node_modules.
 */
function snapshotBefore(path) {
  const src = resolve(path);
  if (!existsSync(join(src, 'index.js')))
    throw new Error(`--before ${path}: no index.js there (build the older commit first; see the header of bench/http.mjs)`);
  const dst = join(RUN_DIR, 'before', 'dist');
  rmSync(dst, { recursive: true, force: true });
  cpSync(src, dst, { recursive: true, filter: (f) => !f.endsWith('.map') });
  const fingerprint = dirFingerprint(dst);
  if (fingerprint !== dirFingerprint(src)) throw new Error(`--before ${path}: it changed while it was copied`);
  let commit;
  try {
    commit = execFileSync('git', ['-C', join(src, '..'), 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    commit = undefined;
  }
  return { index: join(dst, 'index.js'), fingerprint, commit, path: src };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let quietSpent = 0;
let retrySpent = 0;

/** Waits until the machine is quiet (other processes < 10 % of a core over 0.5 s); returns the seconds waited and the last reading. */
async function waitQuiet() {
  if (quietSpent >= QUIET_BUDGET) return { waitedS: 0, foreignBeforePct: undefined };
  const t0 = performance.now();
  let foreign;
  for (;;) {
    const m0 = machineTicks();
    const s0 = cpuTicks(process.pid);
    await sleep(500);
    const m1 = machineTicks();
    const s1 = cpuTicks(process.pid);
    foreign = Math.max(0, ((m1.busy - m0.busy - (s1 - s0)) / CLK_TCK / 0.5) * 100);
    const waited = (performance.now() - t0) / 1000;
    if (foreign < 10 || waited >= 10 || quietSpent + waited >= QUIET_BUDGET) {
      quietSpent += waited;
      return { waitedS: waited, foreignBeforePct: foreign };
    }
  }
}

/** Starts one server child; resolves to { pid, port, stop(), stderr(), stdout() }. */
function startServer(kind, dataDir, distIndex, { execArgv = [], env = {} } = {}) {
  const nodeArgs = [...execArgv, SERVER_SCRIPT, kind, dataDir, distIndex];
  const [cmd, args] = PIN ? ['taskset', ['-c', '1', process.execPath, ...nodeArgs]] : [process.execPath, nodeArgs];
  const child = spawn(cmd, args, { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise((r) => child.on('close', (code, signal) => r({ code, signal })));
  let listening = false;
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${kind}: no port within 15 s; stderr: ${err.trim()}`));
    }, 15_000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = /PORT (\d+)/.exec(out);
      if (m && !listening) {
        listening = true;
        clearTimeout(timer);
        resolvePromise({
          pid: child.pid,
          port: Number(m[1]),
          stderr: () => err,
          stdout: () => out,
          signal: (sig) => child.kill(sig),
          async stop() {
            child.kill('SIGTERM');
            const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
            const r = await exited;
            clearTimeout(t);
            return r;
          },
        });
      }
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    exited.then(({ code, signal }) => {
      if (listening) return;
      clearTimeout(timer);
      reject(new Error(`${kind} exited (${code ?? signal}) before listening: ${err.trim()}`));
    });
  });
}

/** One GET with node:http; resolves to { status, headers, body }. */
function get(port, path, headers) {
  return new Promise((resolvePromise, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolvePromise({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.end();
  });
}

/** Checks one response before any load: 200, and the body (gunzipped if gzip) equals the file. */
async function verify(port, c, server, fileData) {
  const r = await get(port, c.path, c.headers);
  if (r.status !== 200) throw new Error(`${server}/${c.key}: status ${r.status}`);
  const enc = r.headers['content-encoding'] ?? 'identity';
  let body = r.body;
  if (enc === 'gzip') body = gunzipSync(body);
  else if (enc !== 'identity') throw new Error(`${server}/${c.key}: unexpected content-encoding ${enc}`);
  if (!body.equals(fileData)) throw new Error(`${server}/${c.key}: body differs from the file (${body.length} vs ${fileData.length} bytes, ${enc})`);
  if (MUST_GZIP.has(`${c.key}/${server}`) && enc !== 'gzip') throw new Error(`${server}/${c.key}: expected a gzip response, got ${enc}`);
  return { encoding: enc, wireBytes: r.body.length, headerCount: Object.keys(r.headers).length };
}

function cannon(opts, onResponse) {
  return new Promise((resolvePromise, reject) => {
    const inst = autocannon({ pipelining: 1, ...opts }, (err, res) => (err ? reject(err) : resolvePromise(res)));
    if (onResponse) inst.on('response', onResponse);
  });
}

function percentile(sorted, p) {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** wrk (bench/lib/wrk.mjs), its Lua hook in this run's directory; pinned to CPU 0 (this process is already, with taskset -a -p; taskset again names it in `ps`). */
function runWrk(opts) {
  mkdirSync(RUN_DIR, { recursive: true });
  return runWrkLib({ ...opts, cpu: PIN ? 0 : undefined, luaPath: join(RUN_DIR, 'wrk-done.lua') });
}

/** One load run with the chosen generator, normalised: req/s, latency (ms), bytes/s, errors, the generator's CPU seconds. */
async function loadRun(opts) {
  if (LOADGEN === 'wrk') {
    const r = await runWrk(opts);
    return {
      reqPerSec: r.reqPerSec,
      total2xx: r.requests - r.non2xx,
      p50: r.p50,
      p99: r.p99,
      mibPerSec: r.bytesPerSec / MiB,
      errors: r.errors,
      timeouts: r.timeouts,
      non2xx: r.non2xx,
      resets: 0,
      loadGenCpuS: r.cpuS,
    };
  }
  let lat = new Float64Array(1 << 16);
  let n = 0;
  const cpu0 = process.cpuUsage();
  const res = await cannon(opts, (_client, _status, _bytes, ms) => {
    if (n === lat.length) {
      const bigger = new Float64Array(lat.length * 2);
      bigger.set(lat);
      lat = bigger;
    }
    lat[n++] = ms;
  });
  const cpu1 = process.cpuUsage(cpu0);
  const sorted = lat.subarray(0, n).sort();
  return {
    reqPerSec: res.requests.mean,
    total2xx: res['2xx'],
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    acP50: res.latency.p50,
    acP99: res.latency.p99,
    mibPerSec: res.throughput.mean / MiB,
    errors: res.errors,
    timeouts: res.timeouts,
    non2xx: res.non2xx,
    resets: res.resets,
    loadGenCpuS: (cpu1.user + cpu1.system) / 1e6,
  };
}

/** Starts a server, verifies, warms up, measures. */
async function measure(server, c, fixture, distIndex, fileData, { execArgv = [], duration = DURATION } = {}) {
  const quiet = QUIET_BUDGET > 0 ? await waitQuiet() : undefined;
  const kind = server.kind ?? server.key;
  const srv = await startServer(kind, fixture.dir, server.dist ?? distIndex, { execArgv });
  try {
    const rssStart = rssOf(srv.pid);
    const check = await verify(srv.port, c, kind, fileData);
    const url = `http://127.0.0.1:${srv.port}${c.path}`;
    if (WARMUP > 0) await loadRun({ url, connections: CONNECTIONS, duration: WARMUP, headers: c.headers });
    const rssAfterWarmup = rssOf(srv.pid);
    // Measured run.
    let maxRss = rssOf(srv.pid) ?? 0;
    let samples = 1;
    const sampler = setInterval(() => {
      const r = rssOf(srv.pid);
      samples++;
      if (r !== undefined && r > maxRss) maxRss = r;
    }, 100);
    const ticks0 = cpuTicks(srv.pid);
    const self0 = cpuTicks(process.pid);
    const mach0 = machineTicks();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const res = await loadRun({ url, connections: CONNECTIONS, duration, headers: c.headers });
    const wallS = (performance.now() - t0) / 1000;
    const cpu1 = process.cpuUsage(cpu0);
    const ticks1 = cpuTicks(srv.pid);
    const self1 = cpuTicks(process.pid);
    const mach1 = machineTicks();
    clearInterval(sampler);
    const rssEnd = rssOf(srv.pid);
    if (rssEnd !== undefined && rssEnd > maxRss) maxRss = rssEnd;
    // Server stderr: onError lines are errors. Node's "Closing file descriptor N on garbage
    // collection" warnings (a FileHandle nobody closed) are counted, not treated as errors.
    const stderrLines = srv.stderr().split('\n').filter(Boolean);
    const fdGcWarnings = stderrLines.filter((l) => l.includes('on garbage collection')).length;
    const errLines = stderrLines.filter((l) => l.startsWith(`[${kind}] error:`));
    const errText = errLines.join('\n');
    // The load generator's CPU: this process's (autocannon runs in it), or wrk's own plus this process's.
    const genTicks = LOADGEN === 'wrk' ? Math.round(res.loadGenCpuS * CLK_TCK) : 0;
    // CPU used by anything other than the server, this process and wrk (other jobs on the machine), in % of one core.
    const foreignTicks = mach1.busy - mach0.busy - (ticks1 - ticks0) - (self1 - self0) - genTicks;
    const { loadGenCpuS, ...stats } = res;
    return {
      server: server.key,
      case: c.key,
      ...check,
      ...stats,
      reqPerSecTotal: res.total2xx / wallS,
      serverCpuPct: ticks0 !== undefined && ticks1 !== undefined ? ((ticks1 - ticks0) / CLK_TCK / wallS) * 100 : undefined,
      // Server CPU per response: less sensitive than req/s to other processes taking the server's core.
      serverUsPerReq: ticks0 !== undefined && ticks1 !== undefined && res.total2xx > 0 ? ((ticks1 - ticks0) / CLK_TCK / res.total2xx) * 1e6 : undefined,
      loadGenCpuPct: (((LOADGEN === 'wrk' ? loadGenCpuS : 0) + (cpu1.user + cpu1.system) / 1e6) / wallS) * 100,
      foreignCpuPct: Math.max(0, (foreignTicks / CLK_TCK / wallS) * 100),
      fdGcWarnings,
      quietWaitS: quiet?.waitedS,
      foreignBeforePct: quiet?.foreignBeforePct,
      rssStartMiB: rssStart / MiB,
      rssAfterWarmupMiB: rssAfterWarmup / MiB,
      maxRssMiB: maxRss / MiB,
      rssSamples: samples,
      serverStderr: errText ? errText.slice(0, 500) : undefined,
      valid: res.errors === 0 && res.timeouts === 0 && res.non2xx === 0 && res.total2xx > 0 && !errText,
    };
  } finally {
    await srv.stop();
  }
}

const machine = () => ({ ...machineInfo(), totalMemGiB: totalmem() / 2 ** 30 });

// ---------------------------------------------------------------------------
// Modes.

/** Self time per script file (the basename of the URL; native entry points and V8 pseudo-frames by name). */
function selfByFile(prof, fromUs) {
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const acc = new Map();
  let t = 0;
  let total = 0;
  for (let i = 0; i < prof.samples.length; i++) {
    t += prof.timeDeltas[i] ?? 0;
    if (t < fromUs) continue;
    const cf = byId.get(prof.samples[i]).callFrame;
    if (cf.functionName === '(idle)') continue;
    const us = prof.timeDeltas[i + 1] ?? prof.timeDeltas[i] ?? 0;
    const key = cf.url
      ? cf.url.startsWith('node:')
        ? `node:${cf.url.slice(5).split('/')[0]}`
        : cf.url.split('/').slice(-2).join('/')
      : cf.functionName.startsWith('(')
        ? cf.functionName
        : `(native) ${cf.functionName}`;
    acc.set(key, (acc.get(key) ?? 0) + us);
    total += us;
  }
  return [...acc.entries()].sort((a, b) => b[1] - a[1]).map(([file, us]) => ({ file, ms: us / 1000, pct: (100 * us) / total }));
}

async function profileMode(fixture, dist, fileData) {
  const out = [];
  for (const spec of PROFILE.split(',')) {
    const [sKey, cKey] = spec.split(':');
    const server = serverSpec(sKey);
    if (server.variants) server.dist = variantDist(dist.index, server.variants);
    if (server.before) server.dist = before.index;
    const c = CASES.find((x) => x.key === cKey);
    if (!c) throw new Error(`--profile ${spec}: expected server:case`);
    const dir = join(PROF_DIR, `${sKey.replace(/[@+]/g, '_')}-${cKey}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    log(`profiling ${sKey} / ${c.label}: ${DURATION} s of load, --cpu-prof in the server child`);
    const r = await measure(server, c, fixture, dist.index, fileData[c.file], {
      execArgv: ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-interval', '200'],
    });
    const file = join(
      dir,
      readdirSync(dir).find((f) => f.endsWith('.cpuprofile')),
    );
    // Only the measured window: the last DURATION seconds before exit (startup, verification and warm-up excluded).
    const prof = JSON.parse(readFileSync(file, 'utf8'));
    const totalUs = prof.endTime - prof.startTime;
    const s = summarizeProfile(file, { top: 25, fromUs: Math.max(0, totalUs - DURATION * 1e6 - 100_000) });
    log(
      `  ${fmt(r.reqPerSec, 0)} req/s under the profiler (server CPU ${fmt(r.serverCpuPct, 0)} %); profile ${file.slice(ROOT.length + 1)}, ${fmt(s.totalMs, 0)} ms of non-idle samples in the window (${fmt((s.totalMs * 1000) / r.total2xx, 1)} µs per response)`,
    );
    log('  self time:');
    log(
      table(
        ['function', 'ms', '%'],
        s.self.map((x) => [x.fn, fmt(x.ms, 0), fmt(x.pct, 1)]),
        'lrr',
      ),
    );
    log('  inclusive time:');
    log(
      table(
        ['function', 'ms', '%'],
        s.inclusive.map((x) => [x.fn, fmt(x.ms, 0), fmt(x.pct, 1)]),
        'lrr',
      ),
    );
    const files = selfByFile(prof, Math.max(0, totalUs - DURATION * 1e6 - 100_000));
    log('  self time by script (node: = node internals; (native) = C++ entry points such as the fs bindings):');
    log(
      table(
        ['script', 'ms', '%'],
        files.slice(0, 20).map((x) => [x.file, fmt(x.ms, 0), fmt(x.pct, 1)]),
        'lrr',
      ),
    );
    out.push({ spec, file, reqPerSec: r.reqPerSec, summary: s, byFile: files });
  }
  return out;
}

async function countMode(fixture, dist, fileData) {
  const AMOUNT = 2000;
  const rows = [];
  const all = {};
  for (const c of cases) {
    for (const server of servers) {
      const srv = await startServer(server.kind ?? server.key, fixture.dir, server.dist ?? dist.index, { env: { BENCH_COUNT_ASYNC: '1' } });
      try {
        await verify(srv.port, c, server.kind ?? server.key, fileData[c.file]);
        await cannon({ url: `http://127.0.0.1:${srv.port}${c.path}`, connections: 8, amount: 200, headers: c.headers });
        srv.signal('SIGUSR2');
        await new Promise((r) => setTimeout(r, 100));
        await cannon({ url: `http://127.0.0.1:${srv.port}${c.path}`, connections: 8, amount: AMOUNT, headers: c.headers });
      } finally {
        await srv.stop();
      }
      const line = srv
        .stdout()
        .split('\n')
        .find((l) => l.startsWith('COUNTS '));
      const { requests, counts } = JSON.parse(line.slice(7));
      const per = (k) => (counts[k] ?? 0) / requests;
      const fs = per('FSREQPROMISE') + per('FSREQCALLBACK') + per('FILEHANDLE') * 0; // FILEHANDLE is the handle object, not an operation
      all[`${c.key}/${server.key}`] = { requests, counts };
      rows.push([
        c.key,
        server.key,
        fmt(fs, 1),
        fmt(per('FSREQPROMISE'), 1),
        fmt(per('FSREQCALLBACK'), 1),
        fmt(per('FILEHANDLE'), 1),
        fmt(per('PROMISE'), 1),
        fmt(per('Timeout') + per('Immediate') + per('TickObject'), 1),
        fmt(per('ZLIB'), 1),
      ]);
      log(`  ${c.key} ${server.key}: ${requests} requests counted`);
    }
  }
  log('');
  log('async resources created per request (async_hooks init, after 200 warm-up requests; 8 connections):');
  log(table(['case', 'server', 'fs ops', 'FSREQPROMISE', 'FSREQCALLBACK', 'FILEHANDLE', 'PROMISE', 'tick/timer/immediate', 'ZLIB'], rows, 'llrrrrrrr'));
  return all;
}

async function loadMode(fixture, dist, fileData) {
  const perRow = {}; // `${case}/${server}` -> [results per round]
  const total = ROUNDS * cases.length * servers.length;
  let done = 0;
  const t0 = performance.now();
  for (let round = 0; round < ROUNDS; round++) {
    for (const c of cases) {
      const order = round % 2 === 0 ? servers : [...servers].reverse();
      for (const server of order) {
        let r;
        let repeated = 0;
        for (;;) {
          const ts = performance.now();
          try {
            r = await measure(server, c, fixture, dist.index, fileData[c.file]);
          } catch (err) {
            r = { server: server.key, case: c.key, error: err.message, valid: false };
          }
          const spent = (performance.now() - ts) / 1000;
          if (r.error || !(r.foreignCpuPct > NOISY_PCT) || retrySpent + spent > RETRY_BUDGET || repeated >= 1) break;
          log(`  (repeating ${c.key} ${server.key}: other processes used ${fmt(r.foreignCpuPct, 0)} % of a core; ${fmt(r.reqPerSec, 0)} req/s discarded)`);
          retrySpent += spent;
          repeated++;
        }
        r.repeated = repeated;
        r.round = round + 1;
        (perRow[`${c.key}/${server.key}`] ??= []).push(r);
        done++;
        const el = (performance.now() - t0) / 1000;
        if (r.error) log(`[${done}/${total} ${fmt(el, 0)} s] round ${round + 1} ${c.key.padEnd(7)} ${server.key.padEnd(18)} ERROR ${r.error}`);
        else
          log(
            `[${done}/${total} ${fmt(el, 0)} s] round ${round + 1} ${c.key.padEnd(7)} ${server.key.padEnd(18)} ${fmt(r.reqPerSec, 0).padStart(6)} req/s  p50 ${fmt(r.p50, 2)} ms  p99 ${fmt(r.p99, 2)} ms  ${fmt(r.mibPerSec, 0)} MiB/s  server CPU ${fmt(r.serverCpuPct, 0)} % (${fmt(r.serverUsPerReq, 1)} µs/req)  ${LOADGEN} CPU ${fmt(r.loadGenCpuPct, 0)} %  max RSS ${fmt(r.maxRssMiB, 0)} MiB  other CPU ${fmt(r.foreignCpuPct, 0)} %  ${r.encoding}${r.fdGcWarnings ? `  (${r.fdGcWarnings} fd GC warnings)` : ''}${r.valid ? '' : `  INVALID (errors ${r.errors}, timeouts ${r.timeouts}, non-2xx ${r.non2xx}${r.serverStderr ? `, stderr: ${r.serverStderr}` : ''})`}`,
          );
      }
    }
  }
  // Best valid round per row.
  const best = {};
  for (const [k, rs] of Object.entries(perRow)) {
    const ok = rs.filter((r) => r.valid);
    best[k] = ok.length ? ok.reduce((a, b) => (b.reqPerSec > a.reqPerSec ? b : a)) : rs[rs.length - 1];
    best[k].rounds = rs.map((r) => (r.valid ? r.reqPerSec : null));
  }

  // Goals.
  const goals = [];
  const ratioGoal = (goal, caseKey, num, den, limit, note) => {
    const a = best[`${caseKey}/${num}`];
    const b = best[`${caseKey}/${den}`];
    if (!a || !b) return;
    const valid = a.valid && b.valid;
    const value = valid ? a.reqPerSec / b.reqPerSec : null;
    // Ratio within each round (the two servers ran a minute or less apart); null when either ran
    // beside other processes using more than NOISY_PCT % of a core, or was invalid.
    const clean = (r) => r?.valid && !(r.foreignCpuPct > NOISY_PCT);
    const perRound = perRow[`${caseKey}/${num}`].map((ra, i) => {
      const rb = perRow[`${caseKey}/${den}`][i];
      return clean(ra) && clean(rb) ? ra.reqPerSec / rb.reqPerSec : null;
    });
    goals.push({ goal, case: caseKey, num, den, value, limit, cmp: '>=', unit: 'x', perRound, pass: valid ? value >= limit : false, note });
  };
  for (const c of cases) {
    ratioGoal(`disk at least as fast as sirv: ${c.label}`, c.key, 'vfs-disk', 'sirv', 1.0);
  }
  for (const c of cases) {
    ratioGoal(
      `zip within 10% of disk: ${c.label}`,
      c.key,
      'vfs-zip',
      'vfs-disk',
      0.9,
      c.key === 'js-gzip' ? 'zip sends the 30 KiB gzip member, disk the 100 KiB identity body' : undefined,
    );
  }
  ratioGoal('gzip passthrough >= 5x express.static + compression (app.js, Accept-Encoding: gzip)', 'js-gzip', 'vfs-zip', 'express', 5.0);
  ratioGoal("1 KiB from disk >= 0.85x Node's limit (after the serving-core restructure)", 'small', 'vfs-disk', LIMIT, 0.85);
  ratioGoal('precompressed .gz sibling >= 0.9x zip gzip passthrough (app.js, Accept-Encoding: gzip)', 'js-gzip', 'vfs-disk-gz', 'vfs-zip', 0.9);
  // Every other disk and zip row within 5 % of the build before the restructure.
  for (const c of cases) for (const s of BEFORE_SERVERS) ratioGoal(`${s.kind} within 5% of before (or faster): ${c.label}`, c.key, s.kind, s.key, 0.95);
  // Informative: the precompressed-sibling stats.
  const info = [];
  const infoRatio = (what, k1, k2) => {
    const a = best[k1];
    const b = best[k2];
    if (a && b && a.valid && b.valid) info.push({ what, value: a.reqPerSec / b.reqPerSec });
  };
  for (const c of cases) {
    for (const s of BEFORE_SERVERS) infoRatio(`${s.kind} after / before: ${c.label}`, `${c.key}/${s.kind}`, `${c.key}/${s.key}`);
    for (const s of servers) if (s.key !== LIMIT) infoRatio(`${s.key} / Node's limit: ${c.label}`, `${c.key}/${s.key}`, `${c.key}/${LIMIT}`);
  }
  for (const c of cases) {
    const a = best[`${c.key}/vfs-disk-noprecomp`];
    const b = best[`${c.key}/sirv`];
    const d = best[`${c.key}/vfs-disk`];
    if (a && b && a.valid && b.valid) info.push({ what: `vfs-disk-noprecomp / sirv: ${c.label}`, value: a.reqPerSec / b.reqPerSec });
    if (a && d && a.valid && d.valid) info.push({ what: `vfs-disk-noprecomp / vfs-disk: ${c.label}`, value: a.reqPerSec / d.reqPerSec });
  }

  // Tables.
  for (const c of cases) {
    log('');
    log(`=== ${c.label} (${c.path}; best of ${ROUNDS} round${ROUNDS > 1 ? 's' : ''}; ${LOADGEN}, ${CONNECTIONS} connections, ${DURATION} s)`);
    const lim = best[`${c.key}/${LIMIT}`];
    const xLimit = (r) => (lim?.valid && r.valid ? `${fmt(r.reqPerSec / lim.reqPerSec, 2)} x` : '-');
    const rows = servers
      .map((s) => best[`${c.key}/${s.key}`])
      .filter(Boolean)
      .map((r) =>
        r.error
          ? [r.server, '-', '-', 'ERROR', '-', '-', '-', '-', '-', '-', '-', '-', '-', r.error]
          : [
              r.server,
              r.encoding,
              r.wireBytes,
              fmt(r.reqPerSec, 0),
              xLimit(r),
              r.rounds.map((x) => (x === null ? 'invalid' : fmt(x, 0))).join(' / '),
              fmt(r.p50, 2),
              fmt(r.p99, 2),
              fmt(r.mibPerSec, 1),
              fmt(r.serverCpuPct, 0),
              fmt(r.serverUsPerReq, 1),
              fmt(r.maxRssMiB, 1),
              fmt(r.foreignCpuPct, 0),
              `${r.errors}/${r.non2xx}${r.valid ? '' : ' INVALID'}`,
            ],
      );
    log(
      table(
        [
          'server',
          'encoding',
          'body bytes',
          'req/s',
          "x Node's limit",
          'req/s by round',
          'p50 ms',
          'p99 ms',
          'MiB/s',
          'server CPU %',
          'server µs/req',
          'max RSS MiB',
          'other CPU %',
          'errors/non-2xx',
        ],
        rows,
        'llrrrrrrrrrrrr',
      ),
    );
  }
  log('');
  log(`=== goals (req/s ratios of the best rounds; per round: the ratio within each round, "noisy" when other processes used > ${NOISY_PCT} % of a core)`);
  log(
    table(
      ['goal', 'measured', 'per round', 'median per round', 'target', 'result'],
      goals.map((g) => {
        const ok = g.perRound.filter((x) => x !== null);
        return [
          g.goal,
          g.value === null ? 'invalid' : `${fmt(g.value, 2)} x`,
          g.perRound.map((x) => (x === null ? 'noisy' : fmt(x, 2))).join(' / '),
          ok.length ? `${fmt(median(ok), 2)} x` : '-',
          `>= ${fmt(g.limit, 2)} x`,
          g.pass ? 'PASS' : 'FAIL',
        ];
      }),
      'lrrrrl',
    ),
  );
  if (info.length) {
    log('');
    log(
      table(
        ['ratio (info)', 'req/s ratio'],
        info.map((x) => [x.what, `${fmt(x.value, 2)} x`]),
        'lr',
      ),
    );
  }
  const noisy = Object.values(best)
    .filter((r) => r.foreignCpuPct > NOISY_PCT)
    .map((r) => `${r.case}/${r.server} (${fmt(r.foreignCpuPct, 0)} %)`);
  log(
    `waited ${fmt(quietSpent, 1)} s in all for a quiet machine (budget ${QUIET_BUDGET} s); ${fmt(retrySpent, 0)} s of repeated measurements (budget ${RETRY_BUDGET} s)`,
  );
  log(
    noisy.length
      ? `rows whose best round still ran beside other processes using > ${NOISY_PCT} % of a core: ${noisy.join(', ')}`
      : `every row's best round ran with other processes under ${NOISY_PCT} % of a core`,
  );
  return { perRow, best, goals, info, quietSpentS: quietSpent, retrySpentS: retrySpent, noisyRows: noisy, wallS: (performance.now() - t0) / 1000 };
}

// ---------------------------------------------------------------------------
// Main.

const t0 = performance.now();
const m = machine();
const pinned = PIN && pinSelf();
if (PIN && !pinned) log('warning: taskset failed; running unpinned');
const fixture = await httpFixtures();
const fileData = Object.fromEntries(fixture.files.map((f) => [f.name, readFileSync(join(fixture.dir, f.name))]));
const dist = snapshotDist();
const zipSize = statSync(fixture.zip).size;
for (const s of servers) if (s.variants) s.dist = variantDist(dist.index, s.variants);
const before = BEFORE ? snapshotBefore(BEFORE) : undefined;
for (const s of servers) if (s.before) s.dist = before.index;
log(
  `HTTP load: commit ${m.commit ?? '?'}${m.srcDirty ? ' (src has uncommitted changes)' : ''}, node ${m.node}, ${m.nproc} CPUs, loadavg ${m.loadavg.map((x) => x.toFixed(2)).join(' ')}, dist ${dist.fingerprint}${before ? `, before: ${before.path} (commit ${before.commit ?? '?'}, dist ${before.fingerprint})` : ''}; load generator ${LOADGEN_NOTE}; ${PIN && pinned ? `server on CPU 1, ${LOADGEN} on CPU 0` : 'unpinned'}; ${CONNECTIONS} connections, pipelining 1, ${WARMUP} s warm-up + ${DURATION} s, ${ROUNDS} round(s)`,
);
log(
  `fixtures in ${fixture.dir.slice(ROOT.length + 1)}: ${fixture.files.map((f) => `${f.name} ${f.size} B (zip: ${f.zip.method === 8 ? `deflated to ${f.zip.csize} B, ${fmt(f.size / f.zip.csize, 2)}:1` : 'stored'})`).join('; ')}; site.zip ${zipSize} B`,
);

let result;
if (PROFILE) result = { mode: 'profile', profiles: await profileMode(fixture, dist, fileData) };
else if (COUNT) result = { mode: 'count', counts: await countMode(fixture, dist, fileData) };
else result = { mode: 'load', ...(await loadMode(fixture, dist, fileData)) };

m.loadavgEnd = loadavg();
const totalS = (performance.now() - t0) / 1000;
log('');
log(`done in ${fmt(totalS, 0)} s; loadavg at the end ${m.loadavgEnd.map((x) => x.toFixed(2)).join(' ')}`);
emitResult({
  machine: m,
  dist: dist.fingerprint,
  before: before ? { path: before.path, commit: before.commit, dist: before.fingerprint } : undefined,
  pinned,
  settings: { rounds: ROUNDS, duration: DURATION, warmup: WARMUP, connections: CONNECTIONS, pipelining: 1, loadgen: LOADGEN },
  fixtures: fixture.files,
  totalS,
  ...result,
});
