// Shared helpers for the benchmark scripts: paths, formatting, child processes,
// RSS sampling and the machine-readable result line.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';

export const BENCH_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const ROOT = resolve(BENCH_DIR, '..');
export const DATA_DIR = join(BENCH_DIR, '.data');
export const DIST = join(ROOT, 'dist', 'index.js');
export const MiB = 1024 * 1024;
export const MB = 1e6;

/** Prefix of the one JSON line each script prints last; bench/run.mjs collects it. */
export const RESULT_TAG = 'BENCH_RESULT ';

export function dataPath(name) {
  mkdirSync(DATA_DIR, { recursive: true });
  return join(DATA_DIR, name);
}

/**
 * A short fingerprint of the compiled library (every .js file under dist/), to
 * tell which build a result came from: src/ may change, and dist/ be rebuilt,
 * by someone else while benchmarks run.
 */
export function distFingerprint() {
  const h = createHash('sha256');
  const root = join(ROOT, 'dist');
  const files = readdirSync(root, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.js'))
    .sort();
  for (const f of files) h.update(f).update(readFileSync(join(root, f)));
  return h.digest('hex').slice(0, 12);
}

export function log(...args) {
  console.log(...args);
}

export function emitResult(obj) {
  process.stdout.write(`${RESULT_TAG}${JSON.stringify(obj)}\n`);
}

/**
 * Re-executes the current script with `--expose-gc` when `gc` is not available,
 * so every script can be started as plain `node bench/x.mjs`. Returns true in the
 * parent (which should then stop).
 */
export function ensureGc(scriptUrl) {
  if (typeof globalThis.gc === 'function') return false;
  const r = spawnSync(process.execPath, ['--expose-gc', ...process.execArgv, fileURLToPath(scriptUrl), ...process.argv.slice(2)], {
    stdio: 'inherit',
  });
  process.exitCode = r.status ?? 1;
  return true;
}

export function fullGc() {
  for (let i = 0; i < 3; i++) globalThis.gc();
}

export function mem() {
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, heapTotal: m.heapTotal };
}

/** Peak RSS of this process so far, in bytes (getrusage ru_maxrss). */
export function maxRss() {
  return process.resourceUsage().maxRSS * 1024;
}

export const toMB = (bytes) => bytes / MiB;
export const fmt = (x, digits = 1) => (x === undefined || x === null || Number.isNaN(x) ? '-' : Number(x).toFixed(digits));

/**
 * Formats an aligned text table (Markdown-compatible). `rows` are arrays of
 * cells; `align` is one letter per column, 'l' or 'r' (default: first column
 * left, the rest right).
 */
export function table(headers, rows, align) {
  const cells = [headers, ...rows].map((r) => r.map((c) => String(c)));
  const al = headers.map((_, i) => (align ? align[i] : i === 0 ? 'l' : 'r'));
  const widths = headers.map((_, i) => Math.max(3, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (r) => '| ' + r.map((c, i) => (al[i] === 'l' ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ') + ' |';
  const rule = '|' + widths.map((w, i) => (al[i] === 'l' ? ':' + '-'.repeat(w + 1) : '-'.repeat(w + 1) + ':')).join('|') + '|';
  return [line(cells[0]), rule, ...cells.slice(1).map(line)].join('\n');
}

/** A Writable that counts bytes and discards them; optionally feeds a hash. */
export function countingSink(hash) {
  const sink = new Writable({
    highWaterMark: 64 * 1024,
    write(chunk, _enc, cb) {
      sink.bytes += chunk.length;
      if (hash) hash.update(chunk);
      cb();
    },
  });
  sink.bytes = 0;
  return sink;
}

/** Samples RSS every `ms` milliseconds; `stop()` returns the samples' max and count. */
export function rssSampler(ms = 100) {
  let max = process.memoryUsage.rss();
  let count = 1;
  const samples = [];
  const t0 = performance.now();
  const take = () => {
    const r = process.memoryUsage.rss();
    samples.push([Math.round(performance.now() - t0), r]);
    count++;
    if (r > max) max = r;
  };
  const timer = setInterval(take, ms);
  return {
    stop() {
      clearInterval(timer);
      take();
      return { max, count, samples };
    },
  };
}

/**
 * Runs `node [execArgv] script [args]` and resolves to the parsed BENCH_RESULT
 * object (or { error }) with a hard timeout. Child stdout lines other than the
 * result are echoed with `prefix` when `echo` is set.
 */
export function runChild(script, args = [], { execArgv = ['--expose-gc'], timeoutMs = 120_000, echo = true, prefix = '  ' } = {}) {
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, [...execArgv, script, ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT });
    let result;
    let buf = '';
    let stderr = '';
    const onLine = (lineText) => {
      if (lineText.startsWith(RESULT_TAG)) {
        try {
          result = JSON.parse(lineText.slice(RESULT_TAG.length));
        } catch (err) {
          result = { error: `bad result line: ${err.message}` };
        }
      } else if (echo) {
        console.log(prefix + lineText);
      }
    };
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        onLine(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d) => {
      stderr += d;
      if (echo) process.stderr.write(d);
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (buf) onLine(buf);
      if (timedOut) resolvePromise({ error: `timed out after ${timeoutMs} ms`, timedOut: true });
      else if (result) resolvePromise(result);
      else resolvePromise({ error: `exited with ${code ?? signal}: ${stderr.trim().split('\n').slice(-3).join(' / ')}` });
    });
  });
}

/**
 * Times several cases in interleaved rounds (one warm-up round, then `runs`
 * timed rounds, each running every case once in order), so that slow drift in
 * machine speed hits all cases alike. Returns, per case key, the best (minimum)
 * and median times, all times, and the last result.
 */
export async function timeRounds(cases, { runs = 5, warmup = 1 } = {}) {
  const out = Object.fromEntries(cases.map((c) => [c.key, { times: [], last: undefined }]));
  for (let round = 0; round < warmup + runs; round++) {
    for (const c of cases) {
      const t0 = performance.now();
      const last = await c.fn();
      const dt = performance.now() - t0;
      out[c.key].last = last;
      if (round >= warmup) out[c.key].times.push(dt);
    }
  }
  for (const r of Object.values(out)) {
    r.best = Math.min(...r.times);
    r.median = median(r.times);
  }
  return out;
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

export function isMain(metaUrl) {
  return process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(metaUrl);
}

/**
 * The command line of a bench script: `arg(name, dflt)` is the value after `--name`, `flag(name)`
 * whether `--name` is there. With `helpOf` (the script's `import.meta.url`), `--help` or `-h` prints
 * the script's header comment and exits.
 */
export function cliArgs(helpOf) {
  const argv = process.argv.slice(2);
  const arg = (name, dflt) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 && i + 1 < argv.length ? argv[i + 1] : dflt;
  };
  const flag = (name) => argv.includes(`--${name}`);
  if (helpOf !== undefined && (flag('help') || argv.includes('-h'))) {
    const text = readFileSync(new URL(helpOf), 'utf8');
    const header = text.slice(0, text.indexOf('\nimport ')).split('\n');
    process.stdout.write(`${header.map((l) => l.replace(/^\/\/ ?/, '')).join('\n')}\n`);
    process.exit(0);
  }
  return { argv, arg, flag };
}
