// 10. Remote archives: what serving an archive in place from an HTTP store (a `range+http://`
// mount, src/fops/remote/) costs. Three parts, each against a real store on 127.0.0.1:
//   cost        store requests and bytes per client request, cold and warm (the issue's goals:
//               opening costs 1 request when the directory fits in 64 KiB; a warm small entry
//               costs 0), counted from the store's own access log, not from vfserve's counters;
//   throughput  req/s and MiB/s for small entries (random among 1,000) and a 10 MiB entry: vfserve
//               over the remote archive (block cache warm, and one smaller than the working set)
//               against the same vfserve serving the same archive from local disk, same run;
//   memory      the server's memory with the block cache filled to its limit (default and smaller),
//               and the indexes of the archives opened, against HttpRangeFops' `stats.cachedBytes`.
//
//   npm run build && node bench/remote.mjs                 # defaults: ~3 min
//   node bench/remote.mjs --quick                          # one 2 s round per throughput row, ~1 min
//   node bench/remote.mjs [--rounds 2] [--duration 5] [--warmup 1] [--connections 32]
//                         [--cold-cache 2m] [--small-cache 16m] [--only cost,throughput,memory]
//                         [--store nginx|origin] [--loadgen wrk|autocannon] [--no-pin]
//   node bench/remote.mjs --help
//
// The store. nginx (Debian's /usr/sbin/nginx, or `nginx` on the PATH) run privately from
// bench/.data/remote-run/nginx/ with its own config, pid, logs and temp paths (`daemon off`,
// `master_process off`: one process, this script's child, killed at the end), serving the archive
// directory with Range and its default strong ETags (If-Match honoured). Its access log, one line
// per request (`$request_method $uri "$http_range" $status $body_bytes_sent`), is what the cost
// and the store figures are counted from. Without nginx (or with --store origin) the in-repo
// origin of the tests (test/helpers/range-origin.ts, compiled with `npx tsc -p tsconfig.test.json`)
// is the store, in a child process (bench/lib/range-origin-server.mjs); its bytes are derived
// from each request's Range. The first lines of the output say which store was used.
//
// The archive (bench/lib/remotegen.mjs, generated once into bench/.data/remote/): 1,000 small
// entries of 1–16 KiB (60 % text, deflated; 40 % random, stored), big.mp4 (10 MiB random,
// stored), big.txt (10 MiB text, deflated), a central directory of under 64 KiB. many.zip (5,000
// entries, a directory larger than the suffix read on open) and fill.zip (10 × 10 MiB stored, to
// fill a 64 MiB cache) serve the cost and memory parts.
//
// vfserve servers (bench/lib/remote-server.mjs) are child processes: createHandler with
// `range+http://<store>/<archive>` mounts (or the archive's local path, for the disk rows) and
// the `remote` options under test, on node:http. With pinning (the default on 2+ cores) the
// vfserve server and the store share core 1, the load generator and this script core 0, so the
// remote rows pay the store's CPU on the server core, as a store on the same machine costs.
//
// Cost: for each kind of client request a fresh server, its priming requests (not counted), then
// the one request measured; its body is checked against the archive's bytes; then the store
// requests logged meanwhile (after 300 ms for anything the server does after answering) are
// classified: open (a suffix range, or HEAD), directory (a range starting at the central
// directory), data, revalidation (HEAD with If-None-Match shows as HEAD). "Warm (block cache)"
// waits 1.2 s first, past the engine's 1 s small-content cache, so the block cache answers.
// "After a replacement": swap.zip is replaced on the store (rename over it, a new size so a new
// ETag), then the script waits 5 s (the issue's bound at default settings) and asks again.
import autocannon from 'autocannon';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { Agent, request } from 'node:http';
import { createServer } from 'node:net';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { gunzipSync } from 'node:zlib';
import { BENCH_DIR, cliArgs, DATA_DIR, DIST, distFingerprint, emitResult, fmt, log, median, MiB, ROOT, table } from './lib/common.mjs';
import { CLK_TCK, cpuTicks, lineProtocol, pinSelf, trackChildren, machineInfo } from './lib/proc.mjs';
import { entryBytes, remoteFixtures, SMALL_COUNT } from './lib/remotegen.mjs';
import { hasWrk, runWrk } from './lib/wrk.mjs';

// ---------------------------------------------------------------------------
// Options.

const { argv, arg, flag } = cliArgs(import.meta.url);

/** `64k`, `2m` or a byte count. */
const parseSize = (s) => {
  const m = /^(\d+)([kKmM]?)$/.exec(String(s).trim());
  if (!m) throw new Error(`bad size ${s}`);
  return Number(m[1]) * { '': 1, k: 1024, m: MiB }[m[2].toLowerCase()];
};
const QUICK = flag('quick');
const ROUNDS = Number(arg('rounds', QUICK ? 1 : 2));
const DURATION = Number(arg('duration', QUICK ? 2 : 5));
const WARMUP = Number(arg('warmup', 1));
const CONNECTIONS = Number(arg('connections', 32));
const COLD_CACHE = parseSize(arg('cold-cache', '2m'));
const SMALL_CACHE = parseSize(arg('small-cache', '16m'));
const DEFAULT_CACHE = 64 * MiB; // HttpRangeFops' documented default cacheBytes
const PARTS = arg('only', 'cost,throughput,memory').split(',');
for (const p of PARTS) if (!['cost', 'throughput', 'memory'].includes(p)) throw new Error(`--only: unknown part ${p}`);
for (const [name, v] of Object.entries({ rounds: ROUNDS, duration: DURATION, connections: CONNECTIONS }))
  if (!(Number.isInteger(v) && v > 0)) throw new Error(`--${name}: a positive integer`);
const PIN = !flag('no-pin');
const SERVER_CPU = 1;
const LOAD_CPU = 0;

const NGINX = ['/usr/sbin/nginx', 'nginx'].find((cmd) => {
  try {
    execFileSync(cmd, ['-v'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
});
const STORE_ARG = arg('store', '');
if (STORE_ARG && STORE_ARG !== 'nginx' && STORE_ARG !== 'origin') throw new Error('--store: nginx or origin');
if (STORE_ARG === 'nginx' && !NGINX) throw new Error('--store nginx: nginx is not installed (apt-get install -y nginx-light)');
const STORE_KIND = STORE_ARG || (NGINX ? 'nginx' : 'origin');

const LOADGEN_ARG = arg('loadgen', '');
if (LOADGEN_ARG && LOADGEN_ARG !== 'wrk' && LOADGEN_ARG !== 'autocannon') throw new Error('--loadgen: wrk or autocannon');
const WRK = hasWrk();
if (LOADGEN_ARG === 'wrk' && !WRK) throw new Error('--loadgen wrk: wrk is not installed (apt-get install -y wrk)');
const LOADGEN = LOADGEN_ARG || (WRK ? 'wrk' : 'autocannon');
// autocannon 9 decodes every response body into a string (see bench/http.mjs); nothing here reads them.
const PipelinedRequestsQueue = createRequire(import.meta.url)('autocannon/lib/pipelinedRequestsQueue.js');
if (typeof PipelinedRequestsQueue?.prototype?.addBody === 'function') PipelinedRequestsQueue.prototype.addBody = function addBody() {};

const RUN_DIR = join(DATA_DIR, 'remote-run');
const STORE_DIR = join(RUN_DIR, 'store');
const SERVER_SCRIPT = join(BENCH_DIR, 'lib', 'remote-server.mjs');

// Child processes: every one is tracked and killed on exit, Ctrl-C or SIGTERM.
const track = trackChildren(log);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const onServerCore = (cmd, args) => (PIN ? ['taskset', ['-c', String(SERVER_CPU), cmd, ...args]] : [cmd, args]);

async function stopChild(child, exited, signal = 'SIGTERM') {
  if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  const t = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(t);
}

/** A free TCP port on 127.0.0.1 (for nginx, which cannot report the port it got). */
function freePort() {
  return new Promise((resolvePromise, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolvePromise(port));
    });
  });
}

// ---------------------------------------------------------------------------
// The store: nginx, or the in-repo origin. Both give { kind, label, url, pid, mark(), since(mark), replaced(name), stop() };
// since() resolves to the requests logged after mark(): [{ method, uri, range, status, bytes }].

async function startNginx() {
  const dir = join(RUN_DIR, 'nginx');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  // `nginx -v` prints on stderr.
  const v = spawnSync(NGINX, ['-v'], { encoding: 'utf8' });
  const version = `${v.stderr ?? ''}${v.stdout ?? ''}`.trim() || 'nginx';
  const accessLog = join(dir, 'access.log');
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const conf = `daemon off;
master_process off;
worker_processes 1;
${process.getuid?.() === 0 ? 'user root;\n' : ''}pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 4096; }
http {
  log_format store '$request_method $uri "$http_range" $status $body_bytes_sent';
  access_log ${accessLog} store;
  client_body_temp_path ${join(dir, 'tmp', 'body')};
  proxy_temp_path ${join(dir, 'tmp', 'proxy')};
  fastcgi_temp_path ${join(dir, 'tmp', 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'tmp', 'uwsgi')};
  scgi_temp_path ${join(dir, 'tmp', 'scgi')};
  types { application/zip zip; }
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 65s;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:${port};
    root ${STORE_DIR};
    location / { }
  }
}
`;
    const confPath = join(dir, 'nginx.conf');
    writeFileSync(confPath, conf);
    writeFileSync(accessLog, '');
    const [cmd, args] = onServerCore(NGINX, ['-p', dir, '-c', confPath, '-e', join(dir, 'error.log')]);
    const child = track(spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (d) => (err += d));
    const exited = new Promise((r) => child.on('close', (code, signal) => r({ code, signal })));
    // Ready when it answers; a port taken meanwhile makes it exit: try another.
    const deadline = Date.now() + 10_000;
    let up = false;
    let gone = false;
    void exited.then(() => (gone = true));
    while (!up && !gone && Date.now() < deadline) {
      up = await httpGet(port, '/', {}, undefined, 2000).then(
        () => true,
        () => false,
      );
      if (!up) await sleep(50);
    }
    if (!up) {
      await stopChild(child, exited);
      let elog = '';
      try {
        elog = readFileSync(join(dir, 'error.log'), 'utf8');
      } catch {
        // none written
      }
      if (attempt < 2 && /Address already in use/.test(err + elog)) continue;
      throw new Error(`nginx did not start: ${(err + elog).trim().slice(0, 500)}`);
    }
    return {
      kind: 'nginx',
      label: `${version.replace(/^nginx version: /, '')} (${NGINX}, private instance: master_process off, its own config, logs and temp paths)`,
      url: `http://127.0.0.1:${port}`,
      pid: child.pid,
      mark: () => statSync(accessLog).size,
      async since(mark) {
        const fd = openSync(accessLog, 'r');
        try {
          const size = statSync(accessLog).size;
          const b = Buffer.alloc(Math.max(0, size - mark));
          if (b.length) readSync(fd, b, 0, b.length, mark);
          return b
            .toString('utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => {
              const m = /^(\S+) (\S+) "([^"]*)" (\d+) (\d+)$/.exec(l);
              if (!m) return { method: '?', uri: l, range: '-', status: 0, bytes: 0 };
              return { method: m[1], uri: m[2], range: m[3], status: Number(m[4]), bytes: Number(m[5]) };
            });
        } finally {
          closeSync(fd);
        }
      },
      replaced: async () => undefined, // nginx opens the file per request: a rename is seen at once
      stop: () => stopChild(child, exited, 'SIGQUIT'),
    };
  }
}

async function startOrigin() {
  const helper = join(ROOT, '.build-test', 'test', 'helpers', 'range-origin.js');
  if (!existsSync(helper)) {
    log('compiling test/helpers/range-origin.ts (npx tsc -p tsconfig.test.json) …');
    execFileSync(process.platform === 'win32' ? 'npx.cmd' : 'npx', ['tsc', '-p', 'tsconfig.test.json'], { cwd: ROOT, stdio: 'inherit' });
  }
  const [cmd, args] = onServerCore(process.execPath, [join(BENCH_DIR, 'lib', 'range-origin-server.mjs'), STORE_DIR, helper]);
  const child = track(spawn(cmd, args, { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] }));
  const proto = lineProtocol(child, 'range-origin');
  const port = Number(await proto.nextLine('PORT ', 15_000));
  // The origin logs per request; the log is drained into `rows` so a mark is an index into it.
  const rows = [];
  const drain = async () => {
    const line = proto.nextLine('LOG ', 5000);
    child.stdin.write('log\n');
    for (const [method, uri, range, status, bytes] of JSON.parse(await line)) rows.push({ method, uri, range, status, bytes });
  };
  return {
    kind: 'origin',
    label: 'the in-repo origin, test/helpers/range-origin.ts (nginx not found or --store origin; bytes derived from each Range)',
    url: `http://127.0.0.1:${port}`,
    pid: child.pid,
    mark: () => {
      throw new Error('use markAsync');
    },
    markAsync: async () => {
      await drain();
      return rows.length;
    },
    async since(mark) {
      await drain();
      return rows.slice(mark);
    },
    async replaced(name) {
      const line = proto.nextLine('RELOADED ', 5000);
      child.stdin.write(`reload ${name}\n`);
      await line;
    },
    stop: () => stopChild(child, proto.exited),
  };
}

const storeMark = (store) => (store.markAsync ? store.markAsync() : Promise.resolve(store.mark()));

// ---------------------------------------------------------------------------
// vfserve servers.

/** Starts bench/lib/remote-server.mjs on the server core; resolves to { pid, port, stats(), stderr(), stop() }. */
async function startServer(mounts, remote) {
  const [cmd, args] = onServerCore(process.execPath, ['--expose-gc', SERVER_SCRIPT, DIST, JSON.stringify({ mounts, ...(remote ? { remote } : {}) })]);
  const child = track(spawn(cmd, args, { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] }));
  const proto = lineProtocol(child, 'remote-server');
  const stop = () => stopChild(child, proto.exited);
  try {
    const port = Number(await proto.nextLine('PORT ', 15_000));
    return { pid: child.pid, port, stats: proto.stats, stderr: proto.stderr, stop, agent: new Agent({ keepAlive: true, maxSockets: 4 }) };
  } catch (err) {
    await stop();
    throw err;
  }
}

function httpGet(port, path, headers = {}, agent = undefined, timeoutMs = 30_000) {
  return new Promise((resolvePromise, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolvePromise({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.end();
  });
}

const sha = (b) => createHash('sha256').update(b).digest('hex');

/**
 * One client request `c` ({ path, headers, expect: { bytes, gzip, range: [start, end] } }): throws
 * unless the status and the body (gunzipped for gzip) are what the archive holds.
 */
async function clientRequest(server, c) {
  const r = await httpGet(server.port, c.path, c.headers ?? {}, server.agent);
  const want = c.expect.bytes;
  const wantStatus = c.expect.range ? 206 : 200;
  if (r.status !== wantStatus) throw new Error(`${c.path}: status ${r.status} (want ${wantStatus}): ${r.body.toString('utf8', 0, 200)}`);
  let body = r.body;
  if (c.expect.gzip) {
    if (r.headers['content-encoding'] !== 'gzip') throw new Error(`${c.path}: no Content-Encoding: gzip (passthrough expected)`);
    body = gunzipSync(body);
  }
  const exp = c.expect.range ? want.subarray(c.expect.range[0], c.expect.range[1] + 1) : want;
  if (sha(body) !== sha(exp)) throw new Error(`${c.path}: body differs from the archive's (${body.length} bytes, want ${exp.length})`);
  return { status: r.status, bytes: r.body.length };
}

// ---------------------------------------------------------------------------
// Main: machine block, fixtures, store.

const t0 = performance.now();
const cmdline = `node bench/remote.mjs${argv.length ? ` ${argv.join(' ')}` : ''}`;
const machine = machineInfo();
if (!existsSync(DIST)) throw new Error(`${DIST.slice(ROOT.length + 1)} is missing: npm run build`);
const pinned = PIN && machine.nproc >= 2 && pinSelf();
if (PIN && !pinned) log('warning: taskset failed or fewer than 2 CPUs; running unpinned');
const distAtStart = distFingerprint();

log('## Remote archives (`bench/remote.mjs`)');
log('');
log(`- command: \`${cmdline}\``);
log(
  `- commit ${machine.commit ?? '?'}${machine.srcDirty ? ' (src has uncommitted changes)' : ''}, dist ${distAtStart}; node ${machine.node}; ${machine.nproc} × ${machine.cpu}; kernel ${machine.kernel}; loadavg at start ${machine.loadavg.map((x) => x.toFixed(2)).join(' ')}`,
);
log(
  `- CPU layout: ${pinned ? `vfserve server and store on core ${SERVER_CPU}, ${LOADGEN} and this script on core ${LOAD_CPU}` : 'unpinned (--no-pin or taskset failed)'}`,
);

const tg = performance.now();
const fx = await remoteFixtures();
const site = fx.archives['site.zip'];
const siteV2 = fx.archives['site-v2.zip'];
const many = fx.archives['many.zip'];
const fill = fx.archives['fill.zip'];
log(
  `- fixtures (bench/.data/remote/, ${fmt((performance.now() - tg) / 1000, 1)} s): site.zip ${fmt(site.size / MiB, 1)} MiB, ${site.entries.length} entries, directory ${fmt((site.size - site.cdOffset) / 1024, 1)} KiB; many.zip ${many.entries.length} entries, directory ${fmt((many.size - many.cdOffset) / 1024, 1)} KiB; fill.zip ${fmt(fill.size / MiB, 0)} MiB`,
);

// The store's directory: links to the fixtures, and swap.zip (a copy of site.zip) for the replacement.
rmSync(STORE_DIR, { recursive: true, force: true });
mkdirSync(STORE_DIR, { recursive: true });
for (const a of [site, many, fill]) {
  try {
    linkSync(a.path, join(STORE_DIR, a.file));
  } catch {
    copyFileSync(a.path, join(STORE_DIR, a.file));
  }
}
copyFileSync(site.path, join(STORE_DIR, 'swap.zip'));

const store = STORE_KIND === 'nginx' ? await startNginx() : await startOrigin();
log(`- store: ${store.label}, at ${store.url}`);
if (store.kind === 'origin')
  log(
    '- note: the in-repo origin hashes the whole object for its ETag on every request, so the remote throughput rows measure it more than vfserve, and the memory part takes about a minute',
  );
log(`- load generator: ${LOADGEN === 'wrk' ? 'wrk -t1' : 'autocannon (in-process)'}, ${CONNECTIONS} connections, pipelining 1`);
log('');
const remoteOrigin = (file) => `range+${store.url}/${file}`;

// Entry bytes as a client sees them, for the checks.
const smallNames = site.entries.filter((e) => e.name.startsWith('s/')).map((e) => e.name);
const bytesOf = new Map();
const want = async (archive, name) => {
  const key = `${archive.file}:${name}`;
  if (!bytesOf.has(key)) bytesOf.set(key, await entryBytes(archive, name));
  return bytesOf.get(key);
};
const entryOf = (archive, name) => archive.entries.find((e) => e.name === name);

const results = { cost: [], throughput: [], memory: [] };

/** Kinds of store request, from the access log line and the archive's layout. */
function classify(line, archive) {
  if (line.method === 'HEAD') return 'head';
  const m = /^bytes=(\d*)-(\d*)$/.exec(line.range);
  if (!m) return line.range === '-' ? 'whole' : 'other';
  if (m[1] === '') return 'open';
  // Reads are block-aligned, so a read of the directory may start a little before it.
  const end = m[2] === '' ? Infinity : Number(m[2]);
  if (archive && end >= archive.cdOffset) return 'directory';
  return 'data';
}

// ---------------------------------------------------------------------------
// Part 1: cost per client request.

const SMALL_A = smallNames[0]; // s/0000.html, deflated
const SMALL_COLD = smallNames[500];
const deflatedSmall = site.entries.find((e, i) => i > 600 && e.method === 8 && e.name.startsWith('s/')).name;
const BIG = 'big.mp4';
const BIG_TXT = 'big.txt';
const RANGE = [5 * MiB + 1000, 5 * MiB + 1000 + 64 * 1024 - 1];

async function costScenarios() {
  const req = async (archive, name, opts = {}) => ({
    path: `${opts.prefix ?? ''}/${name}`,
    headers: { ...(opts.gzip ? { 'accept-encoding': 'gzip' } : {}), ...(opts.range ? { range: `bytes=${opts.range[0]}-${opts.range[1]}` } : {}) },
    expect: { bytes: await want(archive, name), gzip: !!opts.gzip, range: opts.range },
    label: name,
  });
  const small = (name, o) => req(site, name, o);
  const e = (name) => entryOf(site, name);
  const kib = (n) => `${fmt(n / 1024, 1)} KiB`;
  return [
    {
      key: 'open',
      what: `open + first small entry (${SMALL_A}, ${kib(e(SMALL_A).csize)} deflated); directory ${kib(site.size - site.cdOffset)}`,
      prime: [],
      measure: await small(SMALL_A),
      goal: { open: 1, text: 'opening: 1 request (issue §4)' },
    },
    {
      key: 'open-many',
      what: `open + first entry of many.zip (directory ${kib(many.size - many.cdOffset)}, larger than the suffix read)`,
      mount: 'many.zip',
      archive: many,
      prime: [],
      measure: await req(many, many.entries[0].name),
      goal: { open: 2, text: 'opening: 2 requests (issue §1: one more fetches exactly the directory)' },
    },
    {
      key: 'cold-small',
      what: `cold small entry (${SMALL_COLD}, ${kib(e(SMALL_COLD).csize)} in the archive)`,
      prime: [await small(SMALL_A)],
      measure: await small(SMALL_COLD),
      goal: { total: 1, text: '1 request (issue §1: one GET per entry)' },
    },
    {
      key: 'warm-small',
      what: `warm small entry, at once (${SMALL_COLD}; the engine's 1 s content cache)`,
      prime: [await small(SMALL_A), await small(SMALL_COLD)],
      measure: await small(SMALL_COLD),
      goal: { total: 0, text: '0 requests (issue §4)' },
    },
    {
      key: 'warm-small-block',
      what: `warm small entry, 1.2 s later (${SMALL_COLD}; the block cache)`,
      prime: [await small(SMALL_A), await small(SMALL_COLD)],
      wait: 1200,
      measure: await small(SMALL_COLD),
      goal: { total: 0, text: '0 requests (issue §4)' },
    },
    {
      key: 'cold-big',
      what: `cold 10 MiB entry, whole (${BIG}, stored)`,
      prime: [await small(SMALL_A)],
      measure: await small(BIG),
      goal: windowsGoal(e(BIG).csize),
    },
    {
      key: 'range-cold',
      what: `Range of 64 KiB in ${BIG}, cold (bytes ${RANGE[0]}-${RANGE[1]})`,
      prime: [await small(SMALL_A)],
      measure: await small(BIG, { range: RANGE }),
    },
    {
      key: 'range-warm',
      what: `the same Range again, warm (1.2 s later)`,
      prime: [await small(SMALL_A), await small(BIG, { range: RANGE })],
      wait: 1200,
      measure: await small(BIG, { range: RANGE }),
      goal: { total: 0, text: '0 requests (warm, through the block cache)' },
    },
    {
      key: 'gzip-small',
      what: `gzip passthrough of a cold deflated entry (${deflatedSmall}, ${kib(e(deflatedSmall).csize)} raw deflate)`,
      prime: [await small(SMALL_A)],
      measure: await small(deflatedSmall, { gzip: true }),
      goal: { total: 1, text: '1 request (issue §1: one GET per entry)' },
    },
    {
      key: 'gzip-big',
      what: `gzip passthrough of ${BIG_TXT}, cold (${fmt(e(BIG_TXT).csize / MiB, 2)} MiB raw deflate)`,
      prime: [await small(SMALL_A)],
      measure: await small(BIG_TXT, { gzip: true }),
      goal: windowsGoal(e(BIG_TXT).csize),
    },
    {
      key: 'replaced',
      what: `first request after a replacement of the archive (${SMALL_A}, 5 s after swap.zip was replaced)`,
      mount: 'swap.zip',
      prime: [await small(SMALL_A)],
      replace: true,
      measure: await req(siteV2, SMALL_A),
    },
  ];
}

/**
 * The read-ahead contract for an entry larger than its first window: one GET per window, the
 * first 256 KiB and each next one twice the last up to 4 MiB (HttpRangeFops' defaults), over the
 * entry's bytes rounded out to 64 KiB blocks (its local header shares the first).
 */
function windowsGoal(csize) {
  let windows = 0;
  for (let covered = 0, w = 256 * 1024; covered < csize + 64 * 1024; covered += w, w = Math.min(4 * MiB, w * 2)) windows++;
  return { total: windows, text: `${windows} requests: one GET per read-ahead window (256 KiB, doubling to 4 MiB)` };
}

async function runCost() {
  log('### Cost per client request (store requests and bytes, from the store’s log)');
  log('');
  const scenarios = await costScenarios();
  for (const sc of scenarios) {
    const mountFile = sc.mount ?? 'site.zip';
    const archive = sc.archive ?? site;
    // The swap archive starts as site.zip's bytes, under a fresh mtime.
    if (sc.replace) {
      copyFileSync(site.path, join(STORE_DIR, 'swap.tmp'));
      renameSync(join(STORE_DIR, 'swap.tmp'), join(STORE_DIR, 'swap.zip'));
      await store.replaced('swap.zip');
    }
    const server = await startServer([{ mountpoint: '/', origin: remoteOrigin(mountFile) }]);
    let row;
    try {
      for (const p of sc.prime) await clientRequest(server, p);
      if (sc.replace) {
        copyFileSync(siteV2.path, join(STORE_DIR, 'swap.tmp'));
        const t = Date.now() / 1000 + 10; // another mtime as well as another size: another nginx ETag
        utimesSync(join(STORE_DIR, 'swap.tmp'), t, t);
        renameSync(join(STORE_DIR, 'swap.tmp'), join(STORE_DIR, 'swap.zip'));
        await store.replaced('swap.zip');
        await sleep(5000);
      }
      if (sc.wait) await sleep(sc.wait);
      await sleep(150); // anything the priming requests started
      const mark = await storeMark(store);
      const s0 = await server.stats();
      const tReq = performance.now();
      const resp = await clientRequest(server, sc.measure);
      const ms = performance.now() - tReq;
      await sleep(300);
      const lines = (await store.since(mark)).filter((l) => l.uri === `/${mountFile}`);
      const s1 = await server.stats();
      const kinds = {};
      for (const l of lines) {
        const k = classify(l, sc.replace ? siteV2 : archive);
        kinds[k] = (kinds[k] ?? 0) + 1;
      }
      const total = lines.length;
      const bytes = lines.reduce((a, l) => a + l.bytes, 0);
      const openReqs = (kinds.open ?? 0) + (kinds.directory ?? 0) + (kinds.head ?? 0);
      let pass = null;
      if (sc.goal?.open !== undefined) pass = openReqs === sc.goal.open;
      if (sc.goal?.total !== undefined) pass = total === sc.goal.total;
      row = {
        key: sc.key,
        what: sc.what,
        requests: total,
        kinds,
        bytes,
        responseBytes: resp.bytes,
        ms,
        vfserveCounted: s1.remote.instances
          ? { requests: s1.remote.requests - s0.remote.requests, bytes: s1.remote.bytesFetched - s0.remote.bytesFetched }
          : undefined,
        statuses: [...new Set(lines.map((l) => l.status))],
        lines: lines.map((l) => `${l.method} ${l.range} ${l.status} ${l.bytes}`),
        goal: sc.goal?.text,
        pass,
      };
    } catch (err) {
      row = { key: sc.key, what: sc.what, error: err.message, goal: sc.goal?.text, pass: sc.goal ? false : null };
    } finally {
      await server.stop();
    }
    results.cost.push(row);
    if (row.error) log(`  ${sc.key}: ERROR ${row.error}`);
    else
      log(
        `  ${sc.key.padEnd(17)} ${String(row.requests).padStart(3)} req ${fmt(row.bytes / 1024, 1).padStart(9)} KiB  [${row.lines.join('; ').slice(0, 300)}]${row.vfserveCounted ? `  vfserve counted ${row.vfserveCounted.requests} req ${fmt(row.vfserveCounted.bytes / 1024, 1)} KiB` : ''}`,
      );
  }
  log('');
  const kindText = (k) =>
    Object.entries(k)
      .map(([n, c]) => `${c} ${n}`)
      .join(', ') || '-';
  log(
    table(
      ['client request', 'store requests', 'of which', 'bytes fetched', 'response bytes', 'goal', 'result'],
      results.cost.map((r) =>
        r.error
          ? [r.what, 'ERROR', r.error.slice(0, 80), '-', '-', r.goal ?? '-', r.pass === false ? 'FAIL' : '-']
          : [
              r.what,
              r.requests,
              kindText(r.kinds),
              r.bytes >= MiB ? `${fmt(r.bytes / MiB, 2)} MiB` : `${fmt(r.bytes / 1024, 1)} KiB`,
              r.responseBytes >= MiB ? `${fmt(r.responseBytes / MiB, 2)} MiB` : `${fmt(r.responseBytes / 1024, 1)} KiB`,
              r.goal ?? '-',
              r.pass === null ? 'INFO' : r.pass ? 'PASS' : 'FAIL',
            ],
      ),
      'lrlrrll',
    ),
  );
  log('');
  log(
    'of which: open = suffix range, directory = a range reaching into the central directory, data = other ranges, head = HEAD (open fallback or revalidation). Goals on "opening" count open + directory + head only.',
  );
  log('');
}

// ---------------------------------------------------------------------------
// Part 2: throughput.

const sizeOfSmall = smallNames.reduce((a, n) => a + entryOf(site, n).csize, 0);

/** wrk's request() over `paths`, in a fixed pseudo-random order. */
const randomPathsLua = (paths) => `
local paths = { ${paths.map((p) => `"${p}"`).join(', ')} }
math.randomseed(12345)
request = function()
  return wrk.format(nil, paths[math.random(#paths)])
end
`;

async function loadRun(port, paths, duration) {
  if (LOADGEN === 'wrk') {
    const r = await runWrk({
      url: `http://127.0.0.1:${port}${paths[0]}`,
      connections: CONNECTIONS,
      duration,
      cpu: pinned ? LOAD_CPU : undefined,
      onChild: track,
      luaPath: join(RUN_DIR, 'wrk.lua'),
      script: paths.length > 1 ? randomPathsLua(paths) : '',
      // 32 concurrent 10 MiB responses on one core: the slowest take over wrk's 2 s default, which it
      // would count as errors; they are latency, and p99 shows them.
      timeoutS: 10,
    });
    return {
      reqPerSec: r.reqPerSec,
      requests: r.requests,
      bytes: r.bytes,
      p50: r.p50,
      p99: r.p99,
      errors: r.errors + r.timeouts,
      non2xx: r.non2xx,
      wallS: r.wallS,
    };
  }
  let seed = 12345;
  const next = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return paths[seed % paths.length];
  };
  const t = performance.now();
  const res = await new Promise((resolvePromise, reject) =>
    autocannon(
      {
        url: `http://127.0.0.1:${port}`,
        connections: CONNECTIONS,
        duration,
        pipelining: 1,
        requests: [{ setupRequest: (req) => ({ ...req, path: next() }) }],
      },
      (err, r) => (err ? reject(err) : resolvePromise(r)),
    ),
  );
  const wallS = (performance.now() - t) / 1000;
  return {
    reqPerSec: res.requests.total / wallS,
    requests: res.requests.total,
    bytes: res.throughput.total,
    p50: res.latency.p50,
    p99: res.latency.p99,
    errors: res.errors + res.timeouts,
    non2xx: res.non2xx,
    wallS,
  };
}

const SERVERS = [
  { key: 'local', label: 'vfserve, archive on local disk', mount: () => site.path },
  { key: 'remote-warm', label: 'vfserve, remote archive, block cache 64 MiB (default: warm)', mount: () => remoteOrigin('site.zip') },
  {
    key: 'remote-cold',
    label: `vfserve, remote archive, block cache ${fmt(COLD_CACHE / MiB, 0)} MiB (smaller than the working set: cold-ish)`,
    mount: () => remoteOrigin('site.zip'),
    remote: { cacheBytes: COLD_CACHE },
  },
];

async function measureThroughput(srv, c) {
  const server = await startServer([{ mountpoint: '/', origin: srv.mount() }], srv.remote);
  try {
    for (const p of c.check) await clientRequest(server, p);
    if (WARMUP > 0) await loadRun(server.port, c.paths, WARMUP);
    const mark = await storeMark(store);
    const a = { server: cpuTicks(server.pid), store: cpuTicks(store.pid) };
    const r = await loadRun(server.port, c.paths, DURATION);
    const b = { server: cpuTicks(server.pid), store: cpuTicks(store.pid) };
    const lines = await store.since(mark);
    const stats = await server.stats();
    const perReq = (ticks) => (r.requests > 0 ? (ticks / CLK_TCK / r.requests) * 1e6 : undefined);
    return {
      ...r,
      mibPerSec: r.bytes / r.wallS / MiB,
      serverUsPerReq: perReq(b.server - a.server),
      storeUsPerReq: perReq(b.store - a.store),
      storeReqPerResponse: r.requests > 0 ? lines.length / r.requests : undefined,
      storeBytesPerResponse: r.requests > 0 ? lines.reduce((x, l) => x + l.bytes, 0) / r.requests : undefined,
      rssMiB: stats.memory.rss / MiB,
      cachedMiB: stats.remote.cachedBytes / MiB,
      stderr: server.stderr().trim().slice(0, 300) || undefined,
      valid: r.errors === 0 && r.non2xx === 0 && r.requests > 0,
    };
  } finally {
    await server.stop();
  }
}

async function runThroughput() {
  const cases = [
    {
      key: 'small',
      label: `small entries, random among ${SMALL_COUNT} (1–16 KiB; ${fmt(sizeOfSmall / MiB, 1)} MiB in the archive)`,
      paths: smallNames.map((n) => `/${n}`),
      check: [
        { path: `/${SMALL_A}`, expect: { bytes: await want(site, SMALL_A) } },
        { path: `/${smallNames[1]}`, expect: { bytes: await want(site, smallNames[1]) } },
      ],
    },
    { key: 'big', label: '10 MiB entry (big.mp4, stored)', paths: [`/${BIG}`], check: [{ path: `/${BIG}`, expect: { bytes: await want(site, BIG) } }] },
  ];
  log(`### Throughput (${LOADGEN}, ${CONNECTIONS} connections, ${WARMUP} s warm-up + ${DURATION} s, ${ROUNDS} round(s), order rotated; medians)`);
  log('');
  const runs = {};
  for (let round = 0; round < ROUNDS; round++) {
    for (const c of cases) {
      const order = SERVERS.map((_, i) => SERVERS[(i + round) % SERVERS.length]);
      for (const s of order) {
        const r = await measureThroughput(s, c).catch((err) => ({ error: err.message }));
        (runs[`${c.key}/${s.key}`] ??= []).push(r);
        const tag = `  [${fmt((performance.now() - t0) / 1000, 0)} s] round ${round + 1} ${c.key.padEnd(5)} ${s.key.padEnd(11)}`;
        if (r.error) log(`${tag} ERROR ${r.error}`);
        else
          log(
            `${tag} ${fmt(r.reqPerSec, 0).padStart(6)} req/s ${fmt(r.mibPerSec, 1).padStart(7)} MiB/s  p99 ${fmt(r.p99, 2)} ms  server ${fmt(r.serverUsPerReq, 0)} µs/req  store ${fmt(r.storeReqPerResponse, 3)} req ${fmt(r.storeBytesPerResponse / 1024, 1)} KiB ${fmt(r.storeUsPerReq, 0)} µs per response  errors ${r.errors}/${r.non2xx}${r.valid ? '' : ' INVALID'}${r.stderr ? `  stderr: ${r.stderr}` : ''}`,
          );
      }
    }
  }
  const med = (rs, f) => {
    const xs = rs.map(f).filter((x) => x !== undefined && Number.isFinite(x));
    return xs.length ? median(xs) : undefined;
  };
  const rows = [];
  for (const c of cases) {
    const local = med(
      (runs[`${c.key}/local`] ?? []).filter((r) => !r.error && r.valid),
      (r) => r.reqPerSec,
    );
    for (const s of SERVERS) {
      const rs = runs[`${c.key}/${s.key}`] ?? [];
      const ok = rs.filter((r) => !r.error && r.valid);
      const row = {
        case: c.key,
        caseLabel: c.label,
        server: s.key,
        serverLabel: s.label,
        rounds: rs.map((r) => (r.error || !r.valid ? null : r.reqPerSec)),
        errors: rs.filter((r) => r.error || !r.valid).map((r) => r.error ?? `errors ${r.errors}, non-2xx ${r.non2xx}`),
        reqPerSec: med(ok, (r) => r.reqPerSec),
        mibPerSec: med(ok, (r) => r.mibPerSec),
        p50: med(ok, (r) => r.p50),
        p99: med(ok, (r) => r.p99),
        serverUsPerReq: med(ok, (r) => r.serverUsPerReq),
        storeReqPerResponse: med(ok, (r) => r.storeReqPerResponse),
        storeBytesPerResponse: med(ok, (r) => r.storeBytesPerResponse),
        storeUsPerReq: med(ok, (r) => r.storeUsPerReq),
        rssMiB: med(ok, (r) => r.rssMiB),
        cachedMiB: med(ok, (r) => r.cachedMiB),
      };
      row.vsLocal = row.reqPerSec !== undefined && local ? row.reqPerSec / local : undefined;
      rows.push(row);
    }
  }
  results.throughput = rows;
  log('');
  log(
    table(
      [
        'entries',
        'server',
        'req/s',
        'x local',
        'MiB/s',
        'req/s by round',
        'p50 ms',
        'p99 ms',
        'server µs/req',
        'store req / response',
        'store KiB / response',
        'store µs / response',
        'RSS MiB',
        'block cache MiB',
      ],
      rows.map((r) => [
        r.case,
        r.serverLabel,
        fmt(r.reqPerSec, 0),
        r.vsLocal === undefined ? '-' : `${fmt(r.vsLocal, 2)}x`,
        fmt(r.mibPerSec, 1),
        r.rounds.map((x) => (x === null ? 'invalid' : fmt(x, 0))).join(' / '),
        fmt(r.p50, 2),
        fmt(r.p99, 2),
        fmt(r.serverUsPerReq, 0),
        r.server === 'local' ? '-' : fmt(r.storeReqPerResponse, 3),
        r.server === 'local' ? '-' : fmt(r.storeBytesPerResponse / 1024, 1),
        r.server === 'local' ? '-' : fmt(r.storeUsPerReq, 1),
        fmt(r.rssMiB, 0),
        r.server === 'local' ? '-' : fmt(r.cachedMiB, 1),
      ]),
      'llrrrrrrrrrrrr',
    ),
  );
  log('');
  for (const c of cases) log(`${c.key}: ${c.label}`);
  log('server and store µs: utime + stime of the process over the responses of the measured run; store figures from its access log.');
  log('');
}

// ---------------------------------------------------------------------------
// Part 3: memory of the block cache and the indexes.

async function runMemory() {
  log('### Memory (server child, after a full GC)');
  log('');
  const mounts = [
    { mountpoint: '/', origin: remoteOrigin('site.zip') },
    { mountpoint: '/many', origin: remoteOrigin('many.zip') },
    { mountpoint: '/fill', origin: remoteOrigin('fill.zip') },
  ];
  const limits = [
    { label: `default (${fmt(DEFAULT_CACHE / MiB, 0)} MiB)`, cacheBytes: DEFAULT_CACHE, remote: undefined },
    { label: `${fmt(SMALL_CACHE / MiB, 0)} MiB`, cacheBytes: SMALL_CACHE, remote: { cacheBytes: SMALL_CACHE } },
  ];
  const rows = [];
  for (const lim of limits) {
    const server = await startServer(mounts, lim.remote);
    try {
      const m0 = await server.stats();
      await clientRequest(server, { path: `/${SMALL_A}`, expect: { bytes: await want(site, SMALL_A) } });
      await clientRequest(server, { path: `/many/${many.entries[0].name}`, expect: { bytes: await want(many, many.entries[0].name) } });
      const f0 = fill.entries[0].name;
      await clientRequest(server, { path: `/fill/${f0}`, headers: { range: 'bytes=0-0' }, expect: { bytes: await want(fill, f0), range: [0, 0] } });
      await sleep(1200); // past the engine's content cache: what stays is the indexes and the block cache
      const m1 = await server.stats();
      for (const e of fill.entries) {
        const r = await httpGet(server.port, `/fill/${e.name}`, {}, server.agent, 60_000);
        if (r.status !== 200 || sha(r.body) !== e.sha256) throw new Error(`/fill/${e.name}: status ${r.status}, ${r.body.length} bytes: not the entry`);
      }
      await sleep(1200);
      const m2 = await server.stats();
      const d = (a, b, k) => (b.memory[k] - a.memory[k]) / MiB;
      const ext = (m) => m.memory.external;
      const row = {
        limit: lim.label,
        cacheBytes: lim.cacheBytes,
        start: m0.memory,
        opened: m1.memory,
        filled: m2.memory,
        cachedOpened: m1.remote.cachedBytes,
        cachedFilled: m2.remote.cachedBytes,
        instances: m2.remote.instances,
        fetchedMiB: m2.remote.bytesFetched / MiB,
        indexHeapMiB: d(m0, m1, 'heapUsed'),
        indexExternalMiB: (ext(m1) - ext(m0)) / MiB,
        fillRssMiB: d(m1, m2, 'rss'),
        fillHeapMiB: d(m1, m2, 'heapUsed'),
        fillExternalMiB: (ext(m2) - ext(m1)) / MiB,
        fillArrayBuffersMiB: d(m1, m2, 'arrayBuffers'),
        withinBound: m2.remote.instances ? m2.remote.cachedBytes <= lim.cacheBytes : null,
        full: m2.remote.instances ? m2.remote.cachedBytes >= lim.cacheBytes * 0.9 : null,
      };
      rows.push(row);
    } catch (err) {
      rows.push({ limit: lim.label, cacheBytes: lim.cacheBytes, error: err.message });
    } finally {
      await server.stop();
    }
  }
  results.memory = rows;
  const mib = (b) => fmt(b / MiB, 1);
  log(
    table(
      ['block cache limit', 'stage', 'RSS MiB', 'heapUsed MiB', 'external MiB', 'arrayBuffers MiB', 'stats.cachedBytes MiB'],
      rows.flatMap((r) =>
        r.error
          ? [[r.limit, `ERROR ${r.error}`, '-', '-', '-', '-', '-']]
          : [
              [r.limit, 'started', mib(r.start.rss), mib(r.start.heapUsed), mib(r.start.external), mib(r.start.arrayBuffers), '-'],
              [
                r.limit,
                `3 archives opened (${site.entries.length + many.entries.length + fill.entries.length} entries)`,
                mib(r.opened.rss),
                mib(r.opened.heapUsed),
                mib(r.opened.external),
                mib(r.opened.arrayBuffers),
                mib(r.cachedOpened),
              ],
              [
                r.limit,
                `after ${fill.entries.length} × 10 MiB read whole`,
                mib(r.filled.rss),
                mib(r.filled.heapUsed),
                mib(r.filled.external),
                mib(r.filled.arrayBuffers),
                mib(r.cachedFilled),
              ],
            ],
      ),
      'llrrrrr',
    ),
  );
  log('');
  log(
    table(
      [
        'block cache limit',
        'indexes: heapUsed + external',
        'fill: RSS growth',
        'fill: external growth',
        'fill: arrayBuffers growth',
        'cachedBytes',
        'within the limit',
        'filled to ≥ 90 %',
      ],
      rows
        .filter((r) => !r.error)
        .map((r) => [
          r.limit,
          `${fmt(r.indexHeapMiB, 1)} + ${fmt(r.indexExternalMiB, 1)} MiB`,
          `${fmt(r.fillRssMiB, 1)} MiB`,
          `${fmt(r.fillExternalMiB, 1)} MiB`,
          `${fmt(r.fillArrayBuffersMiB, 1)} MiB`,
          `${mib(r.cachedFilled)} MiB`,
          r.withinBound === null ? 'n/a (no HttpRangeFops seen)' : r.withinBound ? 'PASS' : 'FAIL',
          r.full === null ? '-' : r.full ? 'yes' : 'no',
        ]),
      'lrrrrrll',
    ),
  );
  log('');
  log(
    '"indexes": growth from start to the three archives opened (one request each, 1.2 s later), which also holds the engine’s resolve caches; "fill": growth while fill.zip’s 100 MiB was read whole, one entry at a time.',
  );
  log('');
}

// ---------------------------------------------------------------------------

try {
  if (PARTS.includes('cost')) await runCost();
  if (PARTS.includes('throughput')) await runThroughput();
  if (PARTS.includes('memory')) await runMemory();
} finally {
  await store.stop();
}

const failedGoals = [
  ...results.cost.filter((r) => r.pass === false).map((r) => r.key),
  ...results.memory.filter((r) => r.error || r.withinBound === false).map((r) => `memory ${r.limit}`),
];
const distAtEnd = distFingerprint();
if (distAtEnd !== distAtStart) log(`WARNING: dist/ changed during the run (${distAtStart} -> ${distAtEnd}): rows may mix builds`);
machine.loadavgEnd = loadavg();
const totalS = (performance.now() - t0) / 1000;
log(`goals not met: ${failedGoals.length ? failedGoals.join(', ') : 'none'}`);
log(`done in ${fmt(totalS, 0)} s; loadavg at the end ${machine.loadavgEnd.map((x) => x.toFixed(2)).join(' ')}`);
emitResult({
  bench: 'remote',
  machine,
  command: cmdline,
  dist: distAtStart,
  store: { kind: store.kind, label: store.label },
  pinned,
  settings: { rounds: ROUNDS, duration: DURATION, warmup: WARMUP, connections: CONNECTIONS, coldCache: COLD_CACHE, smallCache: SMALL_CACHE, loadgen: LOADGEN },
  results,
  failedGoals,
  totalS,
});
