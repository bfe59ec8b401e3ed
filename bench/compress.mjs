// Compression on the fly: vfserve (mount `compress: true`) against express +
// compression and `serve` (its CLI, which compresses by default), in the same
// run, for a 100 KiB JS file and a 1 KiB HTML file, with Accept-Encoding br and gzip.
//
//   npm run build && node bench/compress.mjs [--duration 5] [--warmup 1] [--connections 32] [--rounds 2] [--no-pin]
//
// Every measurement starts its server fresh in a child process (vfserve and express via
// bench/lib/http-server.mjs, serve as `serve -L -n -l tcp://127.0.0.1:<port>`), checks one
// response (status, Content-Encoding, the decoded body equal to the file), times the first
// request of each coding after start (vfserve compresses then, later requests come from its
// cache), then runs wrk (-t1) for `--warmup` and `--duration` seconds. As bench/http.mjs does,
// the server is pinned to CPU 1 and wrk to CPU 0. Rounds interleave the servers; each row is
// its best round by req/s. Needs wrk (apt-get install -y wrk).
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { BENCH_DIR, DATA_DIR, DIST, fmt, ROOT, table } from './lib/common.mjs';
import { httpFixtures } from './lib/httpgen.mjs';

const argv = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : dflt;
};
const DURATION = Number(arg('duration', 5));
const WARMUP = Number(arg('warmup', 1));
const CONNECTIONS = Number(arg('connections', 32));
const ROUNDS = Number(arg('rounds', 2));
const PIN = !argv.includes('--no-pin');
const SERVERS = ['vfs-compress', 'express', 'serve'];
const FILES = ['app.js', 'small.html'];
const CODINGS = ['br', 'gzip'];
const RUN_DIR = join(DATA_DIR, 'compress-run');

const pinned = (cpu, cmd, args) => (PIN ? ['taskset', ['-c', String(cpu), cmd, ...args]] : [cmd, args]);

function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Starts one server child; resolves { port, stop } once it answers. */
async function start(kind, dir) {
  let port;
  let child;
  if (kind === 'serve') {
    port = await freePort();
    // cleanUrls off: by default serve answers /small.html with a 301 to /small.
    const config = join(RUN_DIR, 'serve.json');
    mkdirSync(RUN_DIR, { recursive: true });
    writeFileSync(config, JSON.stringify({ cleanUrls: false }));
    const [cmd, args] = pinned(1, process.execPath, [
      join(ROOT, 'node_modules/serve/build/main.js'),
      '-L',
      '-n',
      '--no-port-switching',
      '-c',
      config,
      '-l',
      `tcp://127.0.0.1:${port}`,
      dir,
    ]);
    child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let up = false;
    for (let i = 0; i < 100 && !up; i++) {
      try {
        await get(port, '/small.html', {});
        up = true;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    // Say so, rather than measure nothing (serve missing from node_modules: run npm ci).
    if (!up) throw new Error(`serve did not answer on port ${port} within 10 s`);
  } else {
    const [cmd, args] = pinned(1, process.execPath, [join(BENCH_DIR, 'lib/http-server.mjs'), kind, dir, DIST]);
    child = spawn(cmd, args, { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    port = await new Promise((resolve, reject) => {
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (d) => {
        out += d;
        const m = /PORT (\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child.on('close', (code) => reject(new Error(`${kind} exited ${code}`)));
    });
  }
  return {
    port,
    stop: () =>
      new Promise((resolve) => {
        child.on('close', resolve);
        child.kill('SIGTERM');
      }),
  };
}

function get(port, path, headers) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const req = request({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), ms: Number(process.hrtime.bigint() - t0) / 1e6 }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

function decode(r) {
  const e = r.headers['content-encoding'];
  return e === 'br' ? brotliDecompressSync(r.body) : e === 'gzip' ? gunzipSync(r.body) : r.body;
}

function wrk(port, path, coding, seconds) {
  const args = ['-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', '-H', `Accept-Encoding: ${coding}`, `http://127.0.0.1:${port}${path}`];
  const [cmd, a] = pinned(0, 'wrk', args);
  const out = execFileSync(cmd, a, { encoding: 'utf8' });
  const num = (re) => Number(re.exec(out)?.[1] ?? NaN);
  const ms = (re) => {
    const m = re.exec(out);
    if (!m) return NaN;
    const v = Number(m[1]);
    return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
  };
  return {
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    p50: ms(/50%\s+([\d.]+)(us|ms|s)/),
    p99: ms(/99%\s+([\d.]+)(us|ms|s)/),
    errors: num(/Non-2xx or 3xx responses: (\d+)/) || 0,
  };
}

const fx = await httpFixtures();
const dir = fx.dir;
const originals = Object.fromEntries(FILES.map((f) => [f, readFileSync(join(dir, f))]));
console.log(`# compression on the fly: ${SERVERS.join(', ')}; ${CONNECTIONS} connections, ${DURATION} s, best of ${ROUNDS}; node ${process.version}`);
const best = new Map();
const first = new Map();
for (let round = 0; round < ROUNDS; round++) {
  const order = round % 2 === 0 ? SERVERS : [...SERVERS].reverse();
  for (const file of FILES) {
    for (const coding of CODINGS) {
      for (const kind of order) {
        const s = await start(kind, dir);
        try {
          const r = await get(s.port, `/${file}`, { 'accept-encoding': coding });
          if (r.status !== 200 || !decode(r).equals(originals[file])) throw new Error(`${kind} ${file} ${coding}: bad response ${r.status}`);
          const again = await get(s.port, `/${file}`, { 'accept-encoding': coding });
          const key = `${kind}|${file}|${coding}`;
          if (round === 0) first.set(key, { first: r.ms, second: again.ms });
          wrk(s.port, `/${file}`, coding, WARMUP);
          const m = wrk(s.port, `/${file}`, coding, DURATION);
          const row = { ...m, sent: r.headers['content-encoding'] ?? 'identity', bytes: r.body.length };
          if (!best.has(key) || best.get(key).rps < row.rps) best.set(key, row);
        } finally {
          await s.stop();
        }
      }
    }
  }
}
const rows = [];
for (const file of FILES)
  for (const coding of CODINGS)
    for (const kind of SERVERS) {
      const key = `${kind}|${file}|${coding}`;
      const b = best.get(key);
      const f = first.get(key);
      rows.push([
        file,
        coding,
        kind,
        b.sent,
        String(b.bytes),
        fmt(b.rps, 0),
        fmt(b.p50, 2),
        fmt(b.p99, 2),
        fmt(f.first, 1),
        fmt(f.second, 1),
        String(b.errors),
      ]);
    }
console.log(table(['file', 'Accept-Encoding', 'server', 'sent', 'body bytes', 'req/s', 'p50 ms', 'p99 ms', '1st req ms', '2nd req ms', 'non-2xx'], rows));
