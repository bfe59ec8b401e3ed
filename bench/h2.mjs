// 9. HTTP/2: the vfserve CLI over TLS answering h2 (many streams on one connection) against
// HTTP/1.1 (one connection, one request at a time; 32 connections) on the same files, with h2load.
//
//   npm run build && node bench/h2.mjs
//   node bench/h2.mjs [--rounds 3] [--duration 8] [--warmup 2] [--no-pin] [--quiet-wait 600]
//   node bench/h2.mjs --quick          # smoke test: one round of 2 s (+1 s warm-up) per row
//
// Needs h2load (Debian: apt-get install -y nghttp2-client).
//
// Fixtures (bench/.data/h2/www, made once, deterministic): 100 small files s000.html … s099.html
// of 1 to 4 KiB, and big.js of 100 KiB. Two URI sets: "100 small" (every small file, h2load
// cycling through them) and "100 KiB" (big.js). Served by the real CLI (dist/cli/main.js --config,
// --quiet) with one TLS vhost (test/fixtures/tls/localhost.*), a plain directory mount.
//
// Modes, one h2load client thread (-t 1) each:
//   h2 -c 1 -m 32     one TLS connection, ALPN h2, up to 32 concurrent streams
//   h1 -c 1 -m 1      one TLS connection, http/1.1 (--h1), one request at a time (no pipelining)
//   h1 -c 32          32 TLS connections, http/1.1, one request at a time on each
//
// CPU layout (2 cores; --no-pin leaves it to the scheduler): the server child on core 1, this
// script and h2load on core 0 (taskset), as bench/http.mjs and bench/proxy.mjs do.
//
// Method: a fresh server per measurement; one GET of a small file and of big.js over h2 and over
// HTTP/1.1 must return 200 and the file's bytes, or the run stops. Then h2load with --warm-up-time
// and -D (timing-based), --log-file for per-request latency. Rounds rotate the row order. Reported
// per row: the median round's req/s (and every round's), h2load's "time for request" mean, and p50
// and p99 of the per-request times in h2load's log (time from request start to end of response,
// so with 32 streams or connections it includes queueing at the server), failed/errored requests
// and the server's RSS at the end.
//
// Before the first measurement the script waits for a quiet machine (1-minute load average below
// 1.5) for up to --quiet-wait seconds, then runs anyway and says so with the load it saw.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as h2connect } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { dataPath, distFingerprint, emitResult, fmt, log, median, ROOT, table } from './lib/common.mjs';
import { git, pinSelf, rssOf } from './lib/proc.mjs';

const argv = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i === -1 ? dflt : argv[i + 1];
};
const QUICK = argv.includes('--quick');
const ROUNDS = Number(arg('rounds', QUICK ? 1 : 3));
const DURATION = Number(arg('duration', QUICK ? 2 : 8));
const WARMUP = Number(arg('warmup', QUICK ? 1 : 2));
const PIN = !argv.includes('--no-pin') && cpus().length >= 2;
const QUIET_WAIT = Number(arg('quiet-wait', QUICK ? 0 : 600));

const SMALL_COUNT = 100;
const BIG_SIZE = 100 * 1024;
const DIR = dataPath('h2');
const WWW = join(DIR, 'www');
const CLI = join(ROOT, 'dist', 'cli', 'main.js');

const MODES = [
  { key: 'h2-c1-m32', label: 'h2, 1 connection, 32 streams', args: ['-c', '1', '-m', '32'], h1: false },
  { key: 'h1-c1', label: 'HTTP/1.1, 1 connection', args: ['-c', '1', '-m', '1', '--h1'], h1: true },
  { key: 'h1-c32', label: 'HTTP/1.1, 32 connections', args: ['-c', '32', '-m', '1', '--h1'], h1: true },
];

/** Deterministic text of `size` bytes, different per `seed`. */
function text(size, seed) {
  const words = ['alpha', 'beta', 'gamma', 'delta', 'stream', 'frame', 'header', 'vhost', 'mount', 'range'];
  let out = `<!-- ${seed} -->\n`;
  let x = seed * 2654435761;
  while (out.length < size) {
    x = (x * 1103515245 + 12345) >>> 0;
    out += `${words[x % words.length]}${x % 7 === 0 ? '\n' : ' '}`;
  }
  return Buffer.from(out.slice(0, size));
}

function fixtures() {
  const files = new Map();
  for (let i = 0; i < SMALL_COUNT; i++) files.set(`s${String(i).padStart(3, '0')}.html`, text(1024 + ((i * 977) % 3073), i + 1));
  files.set('big.js', text(BIG_SIZE, 1000));
  mkdirSync(WWW, { recursive: true });
  for (const [name, body] of files) {
    const path = join(WWW, name);
    if (!existsSync(path) || !readFileSync(path).equals(body)) writeFileSync(path, body);
  }
  const conf = join(DIR, 'conf.json');
  writeFileSync(
    conf,
    JSON.stringify({
      vhosts: [
        {
          name: 'localhost',
          port: 0,
          interface: '127.0.0.1',
          'host-ssl-key': join(ROOT, 'test', 'fixtures', 'tls', 'localhost.key'),
          'host-ssl-cert': join(ROOT, 'test', 'fixtures', 'tls', 'localhost.crt'),
          mounts: [{ mountpoint: '/', origin: `file://${WWW}` }],
        },
      ],
    }),
  );
  return { files, conf };
}

/** The CLI on core 1: resolves with its child and port once it prints its URL. */
function startServer(conf) {
  const nodeArgs = [CLI, '--config', conf, '--quiet'];
  const [cmd, args] = PIN ? ['taskset', ['-c', '1', process.execPath, ...nodeArgs]] : [process.execPath, nodeArgs];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the server did not start: ${out}`));
    }, 15_000);
    const onData = (c) => {
      out += c.toString();
      const m = /at https:\/\/127\.0\.0\.1:(\d+)\/ \((.*)\)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      resolve({ child, port: Number(m[1]), protocols: m[2] });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${code}): ${out}`));
    });
  });
}

function stopServer(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('exit', () => {
      clearTimeout(killer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** One GET over h2 and one over HTTP/1.1; throws unless both return 200 and `body`. */
async function verify(port, path, body) {
  const viaH2 = await new Promise((resolve, reject) => {
    const s = h2connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false });
    s.on('error', reject);
    const req = s.request({ ':path': path });
    const chunks = [];
    let status = 0;
    req.on('response', (h) => (status = h[':status']));
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      s.close();
      resolve({ status, body: Buffer.concat(chunks), alpn: s.alpnProtocol });
    });
    req.on('error', reject);
    req.end();
  });
  const viaH1 = await new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path, rejectUnauthorized: false, agent: false, ALPNProtocols: ['http/1.1'] }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks), alpn: res.socket.alpnProtocol }));
    });
    req.on('error', reject);
    req.end();
  });
  for (const [name, r, alpn] of [
    ['h2', viaH2, 'h2'],
    ['HTTP/1.1', viaH1, 'http/1.1'],
  ]) {
    if (r.status !== 200 || !r.body.equals(body) || r.alpn !== alpn)
      throw new Error(`${path} over ${name}: status ${r.status}, ${r.body.length} bytes, ALPN ${r.alpn}; expected 200, ${body.length} bytes, ${alpn}`);
  }
}

/** Parses h2load's summary. */
export function parseH2load(out) {
  const num = (re) => {
    const m = re.exec(out);
    return m ? Number(m[1]) : undefined;
  };
  const req = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(out);
  const tfr = /time for request:\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)/.exec(out);
  const ms = (s) =>
    s === undefined ? undefined : s.endsWith('us') ? Number(s.slice(0, -2)) / 1000 : s.endsWith('ms') ? Number(s.slice(0, -2)) : Number(s.slice(0, -1)) * 1000;
  return {
    rps: num(/finished in [^,]+, ([\d.]+) req\/s/),
    done: req ? Number(req[3]) : undefined,
    succeeded: req ? Number(req[4]) : undefined,
    failed: req ? Number(req[5]) : undefined,
    errored: req ? Number(req[6]) : undefined,
    meanMs: ms(tfr?.[3]),
    protocol: /Application protocol: (\S+)/.exec(out)?.[1],
  };
}

/** p50 and p99 (ms) of the per-request times in an h2load --log-file (start µs, status, µs until the end of the response). */
function latencies(file) {
  const us = readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => Number(l.split('\t')[2]))
    .filter(Number.isFinite)
    .sort((a, b) => a - b);
  const at = (q) => (us.length === 0 ? undefined : us[Math.min(us.length - 1, Math.floor(q * us.length))] / 1000);
  return { p50: at(0.5), p99: at(0.99), count: us.length };
}

function h2load(mode, uriFile, logFile) {
  const args = ['-t', '1', ...mode.args, `--warm-up-time=${WARMUP}s`, '-D', `${DURATION}s`, `--log-file=${logFile}`, '-i', uriFile];
  const [cmd, full] = PIN ? ['taskset', ['-c', '0', 'h2load', ...args]] : ['h2load', args];
  const out = execFileSync(cmd, full, { encoding: 'utf8', timeout: (WARMUP + DURATION + 60) * 1000, maxBuffer: 16 * 1024 * 1024 });
  return { out, command: `h2load ${args.join(' ').replace(logFile, '<log>').replace(uriFile, '<uris>')}` };
}

async function waitQuiet() {
  const t0 = Date.now();
  while (loadavg()[0] >= 1.5 && (Date.now() - t0) / 1000 < QUIET_WAIT) {
    log(`  waiting for a quiet machine: load average ${loadavg()[0].toFixed(2)}`);
    await new Promise((r) => setTimeout(r, 30_000));
  }
  return { waitedS: (Date.now() - t0) / 1000, load: loadavg()[0] };
}

// ---------------------------------------------------------------------------

let h2loadVersion;
try {
  h2loadVersion = execFileSync('h2load', ['--version'], { encoding: 'utf8' }).trim().split('\n')[0];
} catch {
  console.error('bench/h2.mjs needs h2load (Debian: apt-get install -y nghttp2-client)');
  process.exit(2);
}
if (!existsSync(CLI)) {
  console.error('dist/cli/main.js is missing: npm run build first');
  process.exit(2);
}
const pinned = PIN && pinSelf();
const { files, conf } = fixtures();
const smallNames = [...files.keys()].filter((n) => n.startsWith('s'));
const runDir = join(DIR, 'run');
rmSync(runDir, { recursive: true, force: true });
mkdirSync(runDir, { recursive: true });

const machine = {
  node: process.version,
  h2load: h2loadVersion,
  cpu: cpus()[0]?.model,
  nproc: cpus().length,
  commit: git(['rev-parse', '--short', 'HEAD']),
  srcDirty: (git(['status', '--porcelain', '--', 'src']) ?? '') !== '',
  dist: distFingerprint(),
  pinned,
};
log(`HTTP/2 against HTTP/1.1 over TLS, vfserve CLI; ${ROUNDS} round(s) of ${WARMUP} s warm-up + ${DURATION} s per row`);
log(
  `node ${machine.node}; ${machine.h2load}; commit ${machine.commit ?? '?'}${machine.srcDirty ? ' (src has uncommitted changes)' : ''}, dist ${machine.dist}; ${machine.nproc} × ${machine.cpu}; ${pinned ? 'server on core 1, h2load on core 0' : 'not pinned'}`,
);
const quiet = await waitQuiet();
machine.loadStart = quiet.load;
log(
  `load average at the start ${quiet.load.toFixed(2)}${quiet.waitedS > 1 ? ` after waiting ${fmt(quiet.waitedS, 0)} s` : ''}${quiet.load >= 1.5 ? ' (not quiet: ran anyway)' : ''}`,
);

const sets = [
  { key: 'small', label: `${SMALL_COUNT} small (1–4 KiB)`, paths: smallNames.map((n) => `/${n}`) },
  { key: 'big', label: '100 KiB', paths: ['/big.js'] },
];
const rows = [];
for (const set of sets) for (const mode of MODES) rows.push({ set, mode, rounds: [] });
let command = {};
for (let round = 0; round < ROUNDS; round++) {
  const order = rows.map((_, i) => rows[(i + round) % rows.length]);
  for (const row of order) {
    const server = await startServer(conf);
    try {
      if (!/HTTP\/2/.test(server.protocols)) throw new Error(`the server does not offer HTTP/2: (${server.protocols})`);
      await verify(server.port, '/s000.html', files.get('s000.html'));
      await verify(server.port, '/big.js', files.get('big.js'));
      const uriFile = join(runDir, `${row.set.key}.uris`);
      writeFileSync(uriFile, row.set.paths.map((p) => `https://127.0.0.1:${server.port}${p}`).join('\n') + '\n');
      const logFile = join(runDir, `${row.set.key}-${row.mode.key}-${round}.log`);
      const run = h2load(row.mode, uriFile, logFile);
      command[row.mode.key] = run.command;
      const r = { ...parseH2load(run.out), ...latencies(logFile), rssMiB: (rssOf(server.child.pid) ?? 0) / 2 ** 20 };
      if (r.protocol !== (row.mode.h1 ? 'http/1.1' : 'h2')) throw new Error(`h2load spoke ${r.protocol} in ${row.mode.key}`);
      row.rounds.push(r);
      log(
        `  round ${round + 1} ${row.set.key} ${row.mode.key}: ${fmt(r.rps, 0)} req/s, mean ${fmt(r.meanMs, 2)} ms, p99 ${fmt(r.p99, 2)} ms, failed ${r.failed}, errored ${r.errored}`,
      );
    } finally {
      await stopServer(server.child);
    }
  }
}
machine.loadEnd = loadavg()[0];

const out = rows.map((row) => {
  const med = median(row.rounds.map((r) => r.rps));
  const pick = row.rounds.find((r) => r.rps === med) ?? row.rounds[0];
  return { set: row.set.label, mode: row.mode.label, rps: med, byRound: row.rounds.map((r) => r.rps), ...pick };
});
log('');
log(
  table(
    ['files', 'protocol and concurrency', 'req/s', 'req/s by round', 'mean ms', 'p50 ms', 'p99 ms', 'failed + errored', 'server RSS MiB'],
    out.map((r) => [
      r.set,
      r.mode,
      fmt(r.rps, 0),
      r.byRound.map((x) => fmt(x, 0)).join(' / '),
      fmt(r.meanMs, 2),
      fmt(r.p50, 2),
      fmt(r.p99, 2),
      String((r.failed ?? 0) + (r.errored ?? 0)),
      fmt(r.rssMiB, 0),
    ]),
    ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
  ),
);
log('');
for (const mode of MODES) log(`${mode.key}: ${command[mode.key] ?? '-'}`);
log(`load average at the end ${machine.loadEnd.toFixed(2)}`);
emitResult({ bench: 'h2', machine, rounds: ROUNDS, durationS: DURATION, warmupS: WARMUP, rows: out });
