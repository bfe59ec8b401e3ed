// Process helpers shared by bench/http.mjs and bench/range.mjs (Linux: taskset, /proc).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release } from 'node:os';
import { ROOT } from './common.mjs';

export function git(args) {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

export function pinSelf() {
  try {
    execFileSync('taskset', ['-a', '-pc', '0', String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function rssOf(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Clock ticks per second, the unit of /proc/<pid>/stat's CPU times. */
export const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of `pid` in clock ticks (all its threads), or undefined once it has exited. */
export function cpuTicks(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]); // utime + stime (fields 14, 15)
  } catch {
    return undefined;
  }
}

/**
 * Busy and total jiffies of the whole machine (/proc/stat `cpu` line), or of one CPU (`cpuN` line)
 * when `cpu` is given; `irq` is the part of busy spent in hard and soft interrupts (with IRQ time
 * accounting, loopback TCP's softirq work lands there rather than in any process's stime).
 */
export function machineTicks(cpu) {
  const name = cpu === undefined ? 'cpu' : `cpu${cpu}`;
  const line = readFileSync('/proc/stat', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name} `));
  if (!line) return undefined;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0); // user nice system idle iowait irq softirq steal
  return { busy: total - f[3] - f[4], total, irq: f[5] + f[6] };
}

/**
 * The stdout/stdin protocol of the bench server children (bench/lib/*-server.mjs): they print
 * `PORT n` when listening and `STATS {json}` after a `stats` line on stdin. `nextLine(prefix, ms)`
 * resolves to the rest of the next line with that prefix, or rejects after `ms` or when the child
 * exits first; `stats()` asks for and parses one STATS line; `exited` resolves to { code, signal }.
 */
export function lineProtocol(child, label) {
  let buf = '';
  let err = '';
  const waiters = [];
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => (err += d));
  child.stdin.on('error', () => undefined); // EPIPE if it died
  const exited = new Promise((r) => child.on('close', (code, signal) => r({ code, signal })));
  child.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      for (const w of waiters.splice(0)) if (!w(line)) waiters.push(w);
    }
  });
  const nextLine = (prefix, ms) =>
    new Promise((resolvePromise, reject) => {
      const timer = setTimeout(() => reject(new Error(`${label}: no ${prefix.trim()} line within ${ms} ms; stderr: ${err.trim().slice(0, 500)}`)), ms);
      waiters.push((line) => {
        if (line.startsWith('EXITED ')) {
          clearTimeout(timer);
          reject(new Error(`${label} exited (${line.slice(7)}): ${err.trim().slice(0, 500)}`));
          return true;
        }
        if (!line.startsWith(prefix)) return false;
        clearTimeout(timer);
        resolvePromise(line.slice(prefix.length));
        return true;
      });
    });
  exited.then(({ code, signal }) => {
    for (const w of waiters.splice(0)) w(`EXITED ${code ?? signal}`);
  });
  return {
    exited,
    nextLine,
    stderr: () => err,
    async stats() {
      const line = nextLine('STATS ', 5000);
      child.stdin.write('stats\n');
      return JSON.parse(await line);
    },
  };
}

/**
 * Tracks child processes so that none outlives the benchmark: on exit each still running is
 * SIGKILLed; on SIGINT, SIGTERM or SIGHUP each gets SIGTERM (`log` says how many), then the process
 * exits with 128 + the signal's number. Returns `track(child)`, which registers a child and returns it.
 */
export function trackChildren(log) {
  const children = new Set();
  process.on('exit', () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });
  for (const [sig, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ]) {
    process.on(sig, () => {
      log(`\n${sig}: stopping ${children.size} child process(es)`);
      for (const c of children) c.kill('SIGTERM');
      process.exit(code); // the exit handler SIGKILLs any that are still there
    });
  }
  return (child) => {
    children.add(child);
    child.on('close', () => children.delete(child));
    return child;
  };
}

/**
 * The child side of {@link lineProtocol}: a `stats` line on stdin is answered with `STATS {json}` of
 * what `stats()` returns; SIGTERM, SIGINT, or stdin ending (the benchmark died: no orphans) runs
 * `close()` (whose failure is ignored: the process is exiting) and exits.
 */
export function answerLineProtocol({ stats, close }) {
  const exit = () => {
    try {
      close();
    } catch {
      // exiting anyway
    }
    process.exit(0);
  };
  process.on('SIGTERM', exit);
  process.on('SIGINT', exit);
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (d) => {
    if (d.includes('stats')) process.stdout.write(`STATS ${JSON.stringify(stats())}\n`);
  });
  process.stdin.on('end', exit);
  process.stdin.on('error', exit);
}

/** The machine block of a benchmark's result: commit (and whether src/ has changes), date, node, CPUs, kernel, load. */
export function machineInfo() {
  return {
    commit: git(['rev-parse', '--short', 'HEAD']),
    srcDirty: (git(['status', '--porcelain', '--', 'src']) ?? '') !== '',
    date: new Date().toISOString(),
    node: process.version,
    nproc: availableParallelism(),
    cpu: cpus()[0]?.model,
    kernel: release(),
    loadavg: loadavg(),
  };
}
