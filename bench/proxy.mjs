// 7. Reverse proxy: requests per second and added latency through vfserve's proxy mount, against
// the same trivial upstream reached directly and through @fastify/http-proxy and http-proxy-3, in
// one run. The goal (the proxy issue): vfserve at least as fast as the fastest of them, with the
// upstream's own cost subtracted, i.e. its added CPU per request no higher than theirs.
//
//   npm run build && node bench/proxy.mjs
//   node bench/proxy.mjs [--rounds 3] [--duration 10] [--warmup 2] [--connections 32] [--sizes 1k,64k]
//                        [--targets direct,vfserve,fastify-http-proxy,http-proxy-3] [--no-pin]
//                        [--loadgen wrk|autocannon] [--quiet-budget 120] [--retry-budget 120]
//   node bench/proxy.mjs --quick       # smoke test: 1 round of 2 s (+1 s warm-up) per row, ~30 s
//   node bench/proxy.mjs --help
//
// Processes (bench/lib/proxy-server.mjs, each on 127.0.0.1 port 0):
//   upstream            node:http, `GET /bytes/<n>` answers n bytes from a Buffer (keep-alive,
//                       keepAliveTimeout 30 s); one process for the whole run.
//   vfserve             createHandler({ mounts: [{ mountpoint: '/', origin: <upstream> }] }) on node:http;
//                       upstream connections: its own per-origin pool, defaults.
//   fastify-http-proxy  fastify (no logger) + @fastify/http-proxy { upstream }; upstream connections:
//                       @fastify/reply-from's undici Agent, defaults (keep-alive, pipelining 1, <= 128).
//   http-proxy-3        createProxyServer({ target, agent: new http.Agent({ keepAlive: true }) }) on
//                       node:http with an `error` handler (502); without the agent it would send
//                       Connection: close upstream and connect once per request.
// A proxy process is started fresh for each measurement; direct is wrk against the upstream.
//
// CPU layout (2 cores; --no-pin leaves everything to the scheduler). Core 1, "the server core":
// the upstream and the proxy under test. Core 0: this process and the load generator (wrk -t1,
// or autocannon inside this process). Why: when the server core is the bottleneck, a direct run
// costs it the upstream's time per request and a proxied run the upstream's plus the proxy's, so
// 1/rps(proxy) - 1/rps(direct) approximates the proxy's own time per request, the figure the goal
// is about; with the proxy on a core of its own the proxied rate would be set by whichever core
// is busier, and the difference would mean nothing. The approximation also carries the extra
// context switches between the two processes on one core and their cache contention, and it
// holds only while the server core is saturated: the diagnostics table gives its busy %, and the
// proxy's CPU per request measured directly (utime + stime from /proc/<pid>/stat, all its threads)
// as a cross-check.
//
// Shared machine: before each measurement the script waits (up to 10 s, --quiet-budget s in all)
// for other processes to use < 10 % of a core, and repeats once a measurement during which they
// used > 15 % (while --retry-budget s of repeats remain); rows that stayed noisy are listed.
//
// Method. First every target is checked once per size: one GET of /bytes/<n> must answer 200
// with exactly the upstream's bytes, and a second GET on the same keep-alive agent must reuse the
// client connection (reported, not required). A target that fails is reported FAILED with the
// reason and not measured; the run exits non-zero only if the direct check fails. Then
// `--rounds` rounds; in each round, for each size, every target once, the order rotated by one
// place each round (machine drift hits all alike): start the proxy, check again, `--warmup`
// seconds of load, then `--duration` seconds measured with `--connections` connections
// (pipelining 1). Reported: the median over rounds of req/s, p50 and p99 (wrk's latency
// histogram), and per proxy "added cost": p99 minus direct's p99, and 1/rps - 1/rps(direct) in
// µs per request (an approximation, above). Diagnostics per row: the upstream's CPU per request,
// the server core's busy %, wrk's CPU %, interrupt CPU % (/proc/stat irq + softirq: with IRQ time
// accounting, loopback TCP's receive work is counted there, in no process), other processes' CPU %
// (machine busy time, interrupts excluded, not used by the upstream, the proxy, this process or
// wrk), upstream connections opened after the first second of the measured run (a pool that keeps
// its connections opens none; the first second is left out because the warm-up's wrk closed its
// connections with requests in flight, and a proxy that aborts those upstream replaces their
// connections; for direct, the column is empty: they would be wrk's own) and upstream requests per response (1.00: every request was
// forwarded once).
import autocannon from 'autocannon';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { BENCH_DIR, cliArgs, DIST, distFingerprint, emitResult, fmt, log, median, MiB, ROOT, table } from './lib/common.mjs';
import { CLK_TCK, cpuTicks, lineProtocol, machineTicks, pinSelf, trackChildren, machineInfo } from './lib/proc.mjs';
import { hasWrk, runWrk } from './lib/wrk.mjs';

// ---------------------------------------------------------------------------
// Options.

const { argv, arg, flag } = cliArgs(import.meta.url);

const QUICK = flag('quick');
const ROUNDS = Number(arg('rounds', QUICK ? 1 : 3));
const DURATION = Number(arg('duration', QUICK ? 2 : 10));
const WARMUP = Number(arg('warmup', QUICK ? 1 : 2));
const CONNECTIONS = Number(arg('connections', 32));
const PIN = !flag('no-pin');
const SERVER_CPU = 1;
const LOAD_CPU = 0;
// This VM is shared with builds and tests. Before each measurement, wait (up to 10 s, at most
// QUIET_BUDGET s over the whole run) until other processes use less than 10 % of a core; a
// measurement during which they used more than NOISY_PCT % of a core is repeated once while
// RETRY_BUDGET s of repeats remain. Every row reports the other processes' CPU it ran with.
const NOISY_PCT = 15;
const QUIET_BUDGET = Number(arg('quiet-budget', QUICK ? 0 : 120));
const RETRY_BUDGET = Number(arg('retry-budget', QUICK ? 0 : 120));

/** `1k`, `64k`, `1m` or a byte count. */
const parseSize = (s) => {
  const m = /^(\d+)([kKmM]?)$/.exec(s.trim());
  if (!m) throw new Error(`--sizes: bad size ${s}`);
  return Number(m[1]) * { '': 1, k: 1024, m: MiB }[m[2].toLowerCase()];
};
const SIZES = arg('sizes', '1k,64k').split(',').map(parseSize);
const sizeLabel = (n) => (n % MiB === 0 ? `${n / MiB} MiB` : n % 1024 === 0 ? `${n / 1024} KiB` : `${n} B`);

for (const [name, v] of Object.entries({ rounds: ROUNDS, duration: DURATION, connections: CONNECTIONS }))
  if (!(Number.isInteger(v) && v > 0)) throw new Error(`--${name}: a positive integer`);
if (DURATION < 2) throw new Error('--duration: at least 2 s (upstream connections are counted after the first second)');
if (!(WARMUP >= 0)) throw new Error('--warmup: seconds, 0 for none');

const LOADGEN_ARG = arg('loadgen', '');
if (LOADGEN_ARG && LOADGEN_ARG !== 'wrk' && LOADGEN_ARG !== 'autocannon') throw new Error('--loadgen: wrk or autocannon');
const WRK = hasWrk();
if (LOADGEN_ARG === 'wrk' && !WRK) throw new Error('--loadgen wrk: wrk is not installed (apt-get install -y wrk)');
const LOADGEN = LOADGEN_ARG || (WRK ? 'wrk' : 'autocannon');

const pkgVersion = (name) => {
  try {
    return JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return '?';
  }
};
const TARGETS = [
  { key: 'direct', label: 'direct (upstream, no proxy)' },
  { key: 'vfserve', label: 'vfserve proxy mount', proxy: true },
  { key: 'fastify-http-proxy', label: `@fastify/http-proxy ${pkgVersion('@fastify/http-proxy')} (fastify ${pkgVersion('fastify')})`, proxy: true },
  { key: 'http-proxy-3', label: `http-proxy-3 ${pkgVersion('http-proxy-3')}`, proxy: true },
];
const targets = (() => {
  const want = arg('targets', '');
  if (!want) return TARGETS;
  const keys = want.split(',');
  for (const k of keys) if (!TARGETS.some((t) => t.key === k)) throw new Error(`--targets: unknown ${k} (one of ${TARGETS.map((t) => t.key).join(', ')})`);
  // direct is always measured: every added cost is relative to it.
  return TARGETS.filter((t) => t.key === 'direct' || keys.includes(t.key));
})();

const SERVER_SCRIPT = join(BENCH_DIR, 'lib', 'proxy-server.mjs');

// Child processes: every one is tracked and killed on exit, Ctrl-C or SIGTERM.
const track = trackChildren(log);

/** Starts one bench/lib/proxy-server.mjs process on the server core; resolves to { pid, port, stats(), stderr(), stop() }. */
function startProcess(kind, origin) {
  const nodeArgs = [SERVER_SCRIPT, kind, ...(origin ? [origin, DIST] : [])];
  const [cmd, args] = PIN ? ['taskset', ['-c', String(SERVER_CPU), process.execPath, ...nodeArgs]] : [process.execPath, nodeArgs];
  const child = track(spawn(cmd, args, { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] }));
  const { exited, nextLine, stderr, stats } = lineProtocol(child, kind);
  const port = nextLine('PORT ', 15_000);
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  };
  return port.then(
    (p) => ({
      pid: child.pid,
      port: Number(p),
      stderr,
      stats,
      stop,
    }),
    async (e) => {
      await stop();
      throw e;
    },
  );
}

// ---------------------------------------------------------------------------
// The check: status 200, exactly the upstream's bytes, and the client connection kept alive.

/** What the upstream sends for /bytes/n. */
const expected = new Map(
  SIZES.map((n) => {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = i % 251;
    return [n, b];
  }),
);

function get(port, path, agent) {
  return new Promise((resolvePromise, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolvePromise({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), reused: req.reusedSocket }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('no answer within 10 s')));
    req.end();
  });
}

/** Resolves to { ok: true, keepAlive } or { ok: false, reason }. */
async function check(port, n) {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const want = expected.get(n);
    let keepAlive;
    for (let i = 0; i < 2; i++) {
      let r;
      try {
        r = await get(port, `/bytes/${n}`, agent);
      } catch (err) {
        return { ok: false, reason: `request failed: ${err.code ?? err.message}` };
      }
      if (r.status !== 200) return { ok: false, reason: `status ${r.status} (want 200)${r.body.length ? `: ${r.body.toString('utf8', 0, 120)}` : ''}` };
      if (!r.body.equals(want)) {
        let at = 0;
        while (at < Math.min(r.body.length, want.length) && r.body[at] === want[at]) at++;
        return { ok: false, reason: `body differs: ${r.body.length} bytes (want ${n}), first difference at byte ${at}` };
      }
      if (i === 1) keepAlive = r.reused;
    }
    return { ok: true, keepAlive };
  } finally {
    agent.destroy();
  }
}

// ---------------------------------------------------------------------------
// Load.

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let quietSpent = 0;
let retrySpent = 0;

/** CPU of processes other than `pids`, in % of one core, between two machineTicks() readings (interrupt time excluded). */
const foreignPct = (m0, m1, ticks, wallS) => Math.max(0, ((m1.busy - m1.irq - (m0.busy - m0.irq) - ticks) / CLK_TCK / wallS) * 100);

/** Waits until other processes use < 10 % of a core over 0.5 s, at most 10 s, within QUIET_BUDGET. */
async function waitQuiet(pids) {
  const t0 = performance.now();
  for (;;) {
    if (quietSpent + (performance.now() - t0) / 1000 >= QUIET_BUDGET) break;
    const m0 = machineTicks();
    const p0 = pids.reduce((a, p) => a + (cpuTicks(p) ?? 0), 0);
    await sleep(500);
    const m1 = machineTicks();
    const p1 = pids.reduce((a, p) => a + (cpuTicks(p) ?? 0), 0);
    if (foreignPct(m0, m1, p1 - p0, 0.5) < 10 || (performance.now() - t0) / 1000 >= 10) break;
  }
  quietSpent += (performance.now() - t0) / 1000;
}

let autocannonWarned = false;
/** One load run, normalised: req/s, requests, p50/p99 ms, errors, non-2xx, the generator's CPU seconds. */
async function loadRun(url, duration) {
  if (LOADGEN === 'wrk') {
    const r = await runWrk({ url, connections: CONNECTIONS, duration, cpu: PIN ? LOAD_CPU : undefined, onChild: track });
    return { reqPerSec: r.reqPerSec, requests: r.requests, p50: r.p50, p99: r.p99, errors: r.errors, timeouts: r.timeouts, non2xx: r.non2xx, genCpuS: r.cpuS };
  }
  if (!autocannonWarned) {
    autocannonWarned = true;
    log('note: autocannon runs in this process, on core 0 with it; it saturates near 40,000 req/s of 1 KiB (wrk does not)');
  }
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const res = await new Promise((resolvePromise, reject) =>
    autocannon({ url, connections: CONNECTIONS, duration, pipelining: 1 }, (err, r) => (err ? reject(err) : resolvePromise(r))),
  );
  const wallS = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return {
    reqPerSec: res.requests.total / wallS,
    requests: res.requests.total,
    p50: res.latency.p50,
    p99: res.latency.p99,
    errors: res.errors,
    timeouts: res.timeouts,
    non2xx: res.non2xx,
    genCpuS: 0, // in this process's own CPU, counted below
    selfCpuS: (cpu.user + cpu.system) / 1e6,
  };
}

/** One measurement of `target` at size n: (start the proxy, check,) warm up, measure. */
async function measure(target, n, upstream) {
  const proxy = target.proxy ? await startProcess(target.key, `http://127.0.0.1:${upstream.port}`) : undefined;
  try {
    const port = proxy ? proxy.port : upstream.port;
    const c = await check(port, n);
    if (!c.ok) return { error: `check failed: ${c.reason}` };
    const url = `http://127.0.0.1:${port}/bytes/${n}`;
    if (QUIET_BUDGET > 0) await waitQuiet([process.pid, upstream.pid, ...(proxy ? [proxy.pid] : [])]);
    if (WARMUP > 0) await loadRun(url, WARMUP);
    const up0 = await upstream.stats();
    const ticks = () => ({
      up: cpuTicks(upstream.pid),
      proxy: proxy ? cpuTicks(proxy.pid) : 0,
      self: cpuTicks(process.pid),
      machine: machineTicks(),
      core: machineTicks(SERVER_CPU),
    });
    const a = ticks();
    const t0 = performance.now();
    // Upstream counters 1 s into the run, once the connections of requests aborted with the warm-up are replaced.
    const upMid = sleep(1000).then(
      () => upstream.stats(),
      () => undefined,
    );
    const r = await loadRun(url, DURATION);
    const wallS = (performance.now() - t0) / 1000;
    const b = ticks();
    const up1 = await upstream.stats();
    const upTicks = b.up - a.up;
    const proxyTicks = b.proxy - a.proxy;
    const genTicks = Math.round(r.genCpuS * CLK_TCK);
    const known = upTicks + proxyTicks + (b.self - a.self) + genTicks;
    const pct = (t) => (t / CLK_TCK / wallS) * 100;
    const usPerReq = (t) => (r.requests > 0 ? (t / CLK_TCK / r.requests) * 1e6 : undefined);
    const errText = (proxy?.stderr() ?? '') + upstream.stderr();
    return {
      reqPerSec: r.reqPerSec,
      requests: r.requests,
      p50: r.p50,
      p99: r.p99,
      errors: r.errors,
      timeouts: r.timeouts,
      non2xx: r.non2xx,
      keepAlive: c.keepAlive,
      proxyUsPerReq: proxy ? usPerReq(proxyTicks) : undefined,
      upstreamUsPerReq: usPerReq(upTicks),
      proxyCpuPct: proxy ? pct(proxyTicks) : undefined,
      upstreamCpuPct: pct(upTicks),
      serverCoreBusyPct: b.core && a.core ? ((b.core.busy - a.core.busy) / Math.max(1, b.core.total - a.core.total)) * 100 : undefined,
      loadGenCpuPct: pct(genTicks) + (r.selfCpuS !== undefined ? (r.selfCpuS / wallS) * 100 : 0),
      otherCpuPct: foreignPct(a.machine, b.machine, known, wallS),
      irqCpuPct: pct(b.machine.irq - a.machine.irq),
      upstreamConnsOpened: proxy ? up1.connections - ((await upMid.catch(() => undefined))?.connections ?? NaN) : undefined,
      upstreamReqPerResponse: r.requests > 0 ? (up1.requests - up0.requests) / r.requests : undefined,
      stderr: errText ? errText.trim().slice(0, 300) : undefined,
      valid: r.errors === 0 && r.timeouts === 0 && r.non2xx === 0 && r.requests > 0,
    };
  } finally {
    await proxy?.stop();
  }
}

// ---------------------------------------------------------------------------
// Main.

const proxy0 = (r) => (r.upstreamConnsOpened === undefined ? '' : `upstream conns +${r.upstreamConnsOpened} after 1 s  `);
const t0 = performance.now();
const cmdline = `node bench/proxy.mjs${argv.length ? ` ${argv.join(' ')}` : ''}`;
const machine = machineInfo();
const pinned = PIN && machine.nproc >= 2 && pinSelf();
if (PIN && !pinned) log('warning: taskset failed or fewer than 2 CPUs; running unpinned');
const distAtStart = existsSync(DIST) ? distFingerprint() : undefined;
const layout = pinned
  ? `upstream and proxy on core ${SERVER_CPU} (the server core), ${LOADGEN} and this script on core ${LOAD_CPU}: 1/rps(proxy) - 1/rps(direct) ≈ the proxy's time per request while core ${SERVER_CPU} is saturated`
  : 'unpinned (--no-pin): the added µs/req below is not the proxy’s cost alone';

log(`## Reverse proxy (\`bench/proxy.mjs\`)`);
log('');
log(`- command: \`${cmdline}\``);
log(
  `- commit ${machine.commit ?? '?'}${machine.srcDirty ? ' (src has uncommitted changes)' : ''}, dist ${distAtStart ?? 'missing (npm run build)'}; node ${machine.node}; ${machine.nproc} × ${machine.cpu}; kernel ${machine.kernel}; loadavg at start ${machine.loadavg.map((x) => x.toFixed(2)).join(' ')}`,
);
log(
  `- load generator: ${LOADGEN === 'wrk' ? 'wrk -t1' : 'autocannon (in-process)'}${LOADGEN_ARG ? ' (--loadgen)' : ''}, ${CONNECTIONS} connections, pipelining 1`,
);
log(`- ${ROUNDS} round(s), order rotated each round; ${WARMUP} s warm-up + ${DURATION} s measured per row; medians over rounds`);
log(`- CPU layout: ${layout}`);
log(`- targets: ${targets.map((t) => t.label).join('; ')}`);
log('');

const upstream = await startProcess('upstream');
const failed = new Map(); // target key -> reason
const keepAlive = new Map(); // `${key}/${n}` -> boolean

// Checks.
for (const t of targets) {
  let proc;
  try {
    if (t.key === 'vfserve' && !existsSync(DIST)) throw new Error(`${DIST.slice(ROOT.length + 1)} is missing: npm run build`);
    proc = t.proxy ? await startProcess(t.key, `http://127.0.0.1:${upstream.port}`) : upstream;
    for (const n of SIZES) {
      const c = await check(proc.port, n);
      if (!c.ok) throw new Error(`/bytes/${n}: ${c.reason}`);
      keepAlive.set(`${t.key}/${n}`, c.keepAlive);
    }
    log(`check ${t.key}: OK (${SIZES.map((n) => `${sizeLabel(n)}${keepAlive.get(`${t.key}/${n}`) ? '' : ', client connection NOT kept alive'}`).join('; ')})`);
  } catch (err) {
    failed.set(t.key, err.message);
    log(`check ${t.key}: FAILED: ${err.message}${t.key === 'vfserve' ? ' (expected while src/proxy/forward.ts is the 501 skeleton)' : ''}`);
  } finally {
    if (t.proxy) await proc?.stop();
  }
}
if (failed.has('direct')) {
  log('the upstream itself fails its check: nothing to measure');
  await upstream.stop();
  process.exit(1);
}

// Rounds.
const live = targets.filter((t) => !failed.has(t.key));
const runs = {}; // `${key}/${n}` -> [result per round]
const total = ROUNDS * SIZES.length * live.length;
let done = 0;
for (let round = 0; round < ROUNDS; round++) {
  for (const n of SIZES) {
    const order = live.map((_, i) => live[(i + round) % live.length]);
    for (const t of order) {
      let r = await measure(t, n, upstream).catch((err) => ({ error: err.message }));
      if (!r.error && r.otherCpuPct > NOISY_PCT && retrySpent < RETRY_BUDGET) {
        log(`  (repeating ${sizeLabel(n)} ${t.key}: other processes used ${fmt(r.otherCpuPct, 0)} % of a core; ${fmt(r.reqPerSec, 0)} req/s discarded)`);
        const s0 = performance.now();
        r = await measure(t, n, upstream).catch((err) => ({ error: err.message }));
        retrySpent += (performance.now() - s0) / 1000;
      }
      (runs[`${t.key}/${n}`] ??= []).push(r);
      done++;
      const tag = `[${done}/${total} ${fmt((performance.now() - t0) / 1000, 0)} s] round ${round + 1} ${sizeLabel(n).padEnd(7)} ${t.key.padEnd(18)}`;
      if (r.error) log(`${tag} ERROR ${r.error}`);
      else
        log(
          `${tag} ${fmt(r.reqPerSec, 0).padStart(6)} req/s  p50 ${fmt(r.p50, 2)} ms  p99 ${fmt(r.p99, 2)} ms  ` +
            `${r.proxyUsPerReq !== undefined ? `proxy ${fmt(r.proxyUsPerReq, 1)} µs/req  ` : ''}upstream ${fmt(r.upstreamUsPerReq, 1)} µs/req  ` +
            `core ${SERVER_CPU} ${fmt(r.serverCoreBusyPct, 0)} %  ${LOADGEN} ${fmt(r.loadGenCpuPct, 0)} %  irq ${fmt(r.irqCpuPct, 0)} %  other ${fmt(r.otherCpuPct, 0)} %  ` +
            `${proxy0(r)}errors ${r.errors + r.timeouts}/${r.non2xx}${r.valid ? '' : ' INVALID'}${r.stderr ? `  stderr: ${r.stderr}` : ''}`,
        );
    }
  }
}
await upstream.stop();

// Medians and added costs.
const med = (rs, f) => {
  const xs = rs.map(f).filter((x) => x !== undefined && Number.isFinite(x));
  return xs.length ? median(xs) : undefined;
};
const rows = {};
for (const n of SIZES) {
  for (const t of targets) {
    const key = `${t.key}/${n}`;
    if (failed.has(t.key)) {
      rows[key] = { target: t.key, size: n, failed: failed.get(t.key) };
      continue;
    }
    const ok = runs[key].filter((r) => !r.error && r.valid);
    const bad = runs[key].filter((r) => r.error || !r.valid);
    rows[key] = {
      target: t.key,
      size: n,
      rounds: runs[key].map((r) => (r.error ? null : r.valid ? r.reqPerSec : null)),
      invalid: bad.map((r) => r.error ?? `errors ${r.errors + r.timeouts}, non-2xx ${r.non2xx}`),
      reqPerSec: med(ok, (r) => r.reqPerSec),
      p50: med(ok, (r) => r.p50),
      p99: med(ok, (r) => r.p99),
      proxyUsPerReq: med(ok, (r) => r.proxyUsPerReq),
      upstreamUsPerReq: med(ok, (r) => r.upstreamUsPerReq),
      serverCoreBusyPct: med(ok, (r) => r.serverCoreBusyPct),
      loadGenCpuPct: med(ok, (r) => r.loadGenCpuPct),
      otherCpuPct: med(ok, (r) => r.otherCpuPct),
      irqCpuPct: med(ok, (r) => r.irqCpuPct),
      upstreamConnsOpened: med(ok, (r) => r.upstreamConnsOpened),
      upstreamReqPerResponse: med(ok, (r) => r.upstreamReqPerResponse),
      keepAlive: keepAlive.get(key),
    };
  }
  const d = rows[`direct/${n}`];
  for (const t of targets) {
    const r = rows[`${t.key}/${n}`];
    if (!t.proxy || r.failed || r.reqPerSec === undefined || d.reqPerSec === undefined) continue;
    r.addedP99 = r.p99 - d.p99;
    r.addedUsPerReq = 1e6 / r.reqPerSec - 1e6 / d.reqPerSec;
  }
}

// Goal: vfserve's added µs/req no higher than the lowest of the other proxies'.
const goals = SIZES.map((n) => {
  const v = rows[`vfserve/${n}`];
  const peers = targets.filter((t) => t.proxy && t.key !== 'vfserve').map((t) => rows[`${t.key}/${n}`]);
  const best = peers.filter((p) => p.addedUsPerReq !== undefined).sort((a, b) => a.addedUsPerReq - b.addedUsPerReq)[0];
  const goal = `${sizeLabel(n)}: vfserve's added µs/req <= the fastest other proxy's`;
  if (!v) return { goal, size: n, pass: null, note: 'vfserve not in --targets' };
  if (v.failed) return { goal, size: n, pass: false, note: `vfserve FAILED its check (${v.failed})` };
  if (!best || v.addedUsPerReq === undefined) return { goal, size: n, pass: null, note: 'no valid figures to compare' };
  return {
    goal,
    size: n,
    value: v.addedUsPerReq,
    limit: best.addedUsPerReq,
    against: best.target,
    pass: v.addedUsPerReq <= best.addedUsPerReq,
  };
});

const signed = (x, d) => (x === undefined ? '-' : `${x >= 0 ? '+' : '−'}${fmt(Math.abs(x), d)}`);
const labelOf = (key) => TARGETS.find((t) => t.key === key).label;
log('');
log(
  `### Results (median of ${ROUNDS} round${ROUNDS > 1 ? 's' : ''}; ${LOADGEN === 'wrk' ? 'wrk -t1' : 'autocannon'}, ${CONNECTIONS} connections, ${DURATION} s; added = proxy − direct)`,
);
log('');
const mainRows = [];
for (const n of SIZES)
  for (const t of targets) {
    const r = rows[`${t.key}/${n}`];
    if (r.failed) {
      mainRows.push([sizeLabel(n), labelOf(t.key), 'FAILED', '-', '-', '-', '-', '-', '-', r.failed]);
      continue;
    }
    mainRows.push([
      sizeLabel(n),
      labelOf(t.key),
      fmt(r.reqPerSec, 0),
      r.rounds.map((x) => (x === null ? 'invalid' : fmt(x, 0))).join(' / '),
      fmt(r.p50, 2),
      fmt(r.p99, 2),
      t.proxy ? signed(r.addedP99, 2) : '-',
      t.proxy ? signed(r.addedUsPerReq, 1) : '-',
      t.proxy ? fmt(r.proxyUsPerReq, 1) : '-',
      r.invalid.length ? `invalid rounds: ${r.invalid.join('; ')}` : '',
    ]);
  }
log(
  table(
    [
      'size',
      'target',
      'req/s',
      'req/s by round',
      'p50 ms',
      'p99 ms',
      'added p99 ms',
      'added µs/req ≈ 1/rps − 1/rps direct',
      'proxy CPU µs/req (measured)',
      'note',
    ],
    mainRows,
    'llrrrrrrrl',
  ),
);
log('');
log(
  `Added µs/req is an approximation: the proxy's time per request on the server core, read off the rates, valid while core ${SERVER_CPU} is saturated (below); it includes the extra context switches and cache sharing of two processes on one core. "proxy CPU µs/req" is the proxy process's utime + stime over the requests answered.`,
);
log('');
log('### Diagnostics (medians)');
log('');
const diagRows = [];
for (const n of SIZES)
  for (const t of targets) {
    const r = rows[`${t.key}/${n}`];
    if (r.failed) continue;
    diagRows.push([
      sizeLabel(n),
      t.key,
      fmt(r.upstreamUsPerReq, 1),
      fmt(r.serverCoreBusyPct, 0),
      fmt(r.loadGenCpuPct, 0),
      fmt(r.irqCpuPct, 0),
      fmt(r.otherCpuPct, 0),
      fmt(r.upstreamConnsOpened, 0),
      fmt(r.upstreamReqPerResponse, 2),
      r.keepAlive === undefined ? '-' : r.keepAlive ? 'yes' : 'NO',
    ]);
  }
log(
  table(
    [
      'size',
      'target',
      'upstream CPU µs/req',
      `core ${SERVER_CPU} busy %`,
      `${LOADGEN} CPU %`,
      'irq+softirq CPU %',
      'other CPU %',
      'upstream conns opened after 1 s',
      'upstream req per response',
      'client keep-alive',
    ],
    diagRows,
    'llrrrrrrrl',
  ),
);
log('');
log('### Goal');
log('');
log(
  table(
    ['goal', 'vfserve', 'fastest other', 'result'],
    goals.map((g) => [
      g.goal,
      g.value === undefined ? '-' : `${fmt(g.value, 1)} µs`,
      g.limit === undefined ? '-' : `${fmt(g.limit, 1)} µs (${g.against})`,
      g.pass === null ? `n/a: ${g.note}` : g.pass ? 'PASS' : `FAIL${g.note ? `: ${g.note}` : ''}`,
    ]),
    'lrrl',
  ),
);
const noisy = Object.values(rows).filter((r) => r.otherCpuPct > NOISY_PCT);
if (noisy.length)
  log(
    `\nnoisy: other processes used > ${NOISY_PCT} % of a core during ${noisy.map((r) => `${sizeLabel(r.size)}/${r.target} (${fmt(r.otherCpuPct, 0)} %)`).join(', ')}`,
  );
const distAtEnd = existsSync(DIST) ? distFingerprint() : undefined;
if (distAtEnd !== distAtStart) log(`WARNING: dist/ changed during the run (${distAtStart} -> ${distAtEnd}): vfserve rows may mix builds`);
machine.loadavgEnd = loadavg();
const totalS = (performance.now() - t0) / 1000;
log(
  `waited ${fmt(quietSpent, 0)} s in all for a quiet machine (budget ${QUIET_BUDGET} s); ${fmt(retrySpent, 0)} s of repeated measurements (budget ${RETRY_BUDGET} s)`,
);
log(`\ndone in ${fmt(totalS, 0)} s; loadavg at the end ${machine.loadavgEnd.map((x) => x.toFixed(2)).join(' ')}`);
emitResult({
  machine,
  command: cmdline,
  dist: distAtStart,
  pinned,
  layout,
  settings: { rounds: ROUNDS, duration: DURATION, warmup: WARMUP, connections: CONNECTIONS, sizes: SIZES, loadgen: LOADGEN },
  quietSpentS: quietSpent,
  retrySpentS: retrySpent,
  failed: Object.fromEntries(failed),
  rows,
  goals,
  runs,
  totalS,
});
