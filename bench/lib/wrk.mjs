// wrk as the load generator of the HTTP benchmarks (bench/http.mjs, bench/proxy.mjs): one thread
// (-t1), a Lua done() hook only, its text output and the hook's line parsed.
import { execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dataPath } from './common.mjs';
import { CLK_TCK } from './proc.mjs';

/** True when `wrk` is on the PATH (Debian: apt-get install -y wrk). */
export function hasWrk() {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
    return true;
  } catch (err) {
    return err.code !== 'ENOENT'; // `wrk --version` prints its usage and exits 1
  }
}

/**
 * wrk's Lua hook: only done(), so every request is still wrk's prebuilt one and no response is
 * handed to Lua (a response() function would parse every head and body in Lua). It prints one
 * line the script reads: the summary and latency histogram in microseconds, and wrk's own CPU
 * time from /proc/self/stat (utime, stime in clock ticks) so the load generator's CPU is known.
 */
export const WRK_LUA = `
done = function(summary, latency, requests)
  local f = io.open("/proc/self/stat", "r")
  local stat = f and f:read("*a") or ""
  if f then f:close() end
  local rest = stat:match("%) (.*)$") or ""
  local fields = {}
  for w in rest:gmatch("%S+") do fields[#fields + 1] = w end
  local e = summary.errors
  io.write(string.format(
    "WRK_JSON {\\"durationUs\\":%.0f,\\"requests\\":%.0f,\\"bytes\\":%.0f,\\"connect\\":%.0f,\\"read\\":%.0f,\\"write\\":%.0f,\\"status\\":%.0f,\\"timeout\\":%.0f,\\"latMeanUs\\":%.3f,\\"latMaxUs\\":%.0f,\\"p50Us\\":%.0f,\\"p99Us\\":%.0f,\\"utime\\":%s,\\"stime\\":%s}\\n",
    summary.duration, summary.requests, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max, latency:percentile(50), latency:percentile(99),
    fields[12] or "0", fields[13] or "0"))
end
`;

/** Sizes such as `12.34MB` in wrk's text output, in bytes (wrk's units are powers of 1024). */
export function wrkBytes(text) {
  const m = /^([\d.]+)([KMGT]?)B$/.exec(text);
  return m ? Number(m[1]) * 1024 ** ' KMGT'.indexOf(m[2] || ' ') : undefined;
}

/** Parses wrk's text output (Requests/sec, Transfer/sec, socket errors, non-2xx) and the WRK_JSON line. */
export function parseWrk(out) {
  const line = out.split('\n').find((l) => l.startsWith('WRK_JSON '));
  if (!line) throw new Error(`wrk printed no summary: ${out.trim().slice(0, 500)}`);
  const j = JSON.parse(line.slice(9));
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const transfer = /Transfer\/sec:\s+(\S+)/.exec(out);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  const wallS = j.durationUs / 1e6;
  return {
    reqPerSec: rps ? Number(rps[1]) : j.requests / wallS,
    requests: j.requests,
    bytesPerSec: (transfer && wrkBytes(transfer[1])) ?? j.bytes / wallS,
    bytes: j.bytes,
    // wrk counts read/write/connect failures, timeouts (no answer within 2 s) and statuses > 399.
    errors: sock ? Number(sock[1]) + Number(sock[2]) + Number(sock[3]) : j.connect + j.read + j.write,
    timeouts: sock ? Number(sock[4]) : j.timeout,
    non2xx: non2xx ? Number(non2xx[1]) : j.status,
    p50: j.p50Us / 1000,
    p99: j.p99Us / 1000,
    latMean: j.latMeanUs / 1000,
    cpuS: (Number(j.utime) + Number(j.stime)) / CLK_TCK,
    wallS,
  };
}

/**
 * One wrk run (-t1, --latency, the done() hook), pinned to `cpu` with taskset when given.
 * `onChild(child)` sees the process as soon as it is spawned (so a caller can kill it on exit).
 * `script` is Lua put before the hook (a request() that varies the path, say); `timeoutS` replaces
 * wrk's 2 s response timeout.
 * Resolves to parseWrk's fields plus `text`, wrk's output.
 */
export function runWrk({ url, connections, duration, headers, cpu, luaPath = dataPath('wrk-done.lua'), onChild, script = '', timeoutS }) {
  writeFileSync(luaPath, script + WRK_LUA);
  const args = ['-t1', `-c${connections}`, `-d${Math.max(1, Math.round(duration))}s`, '--latency', '-s', luaPath];
  // wrk counts a response slower than its timeout (2 s by default) as an error.
  if (timeoutS !== undefined) args.push('--timeout', `${timeoutS}s`);
  for (const [k, v] of Object.entries(headers ?? {})) args.push('-H', `${k}: ${v}`);
  args.push(url);
  const [cmd, argv] = cpu === undefined ? ['wrk', args] : ['taskset', ['-c', String(cpu), 'wrk', ...args]];
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    onChild?.(child);
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code !== 0) return reject(new Error(`wrk exited ${code ?? signal}: ${(err || out).trim().slice(0, 500)}`));
      try {
        resolvePromise({ ...parseWrk(out), text: out });
      } catch (e) {
        reject(e);
      }
    });
  });
}
