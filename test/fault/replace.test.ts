/**
 * Fault suite B: files and archives replaced while they are being served.
 *
 * A few client loops (bounded in count and time) fetch a small (cached) and a
 * large disk file and small and large, stored and deflated zip entries (whole,
 * ranges, and the gzip passthrough form) while a mutator replaces the files
 * and the archive again and again, cycling through versions 1, 2, 3 (so a
 * version comes back): by rename, rewritten in place (same length, in
 * chunks), deleted and recreated, and replaced by a file of the same size and
 * the same mtime. Every version's bytes are derived from its number.
 *
 * The guarantee, on every COMPLETE 2xx response (a cut one is what the server
 * must do when a file changes under it, and is only counted):
 *   (i)   the body is exactly one version (206: the matching slice of one version);
 *   (ii)  an ETag never names two different versions (per target and encoding);
 *   (iii) Content-Length is the body's length.
 * And once the mutations stop, a fresh version 4 is written and, after the
 * resolution window (resolveCacheMs), every form serves version 4 exactly.
 *
 * Runs with the defaults (resolveCacheMs 1000, small-file cache on) and with resolveCacheMs 0.
 */
import assert from 'node:assert/strict';
import { closeSync, linkSync, openSync, renameSync, unlinkSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { createHandler, Vfs, type ZipFops } from '../../src/index.js';
import { rmTree, tmpDir } from '../helpers/fixtures.js';
import { collectProcessErrors, describeErrors, sha256, sleep, tryGet, versionText, type Outcome } from '../helpers/fault.js';
import { makeZip } from '../helpers/zip-writer.js';

const MiB = 1024 * 1024;
const SMALL = 120 * 1024; // under the 256 KiB small-file cache limit
const LARGE = 2 * MiB;
const LOOPS = 4;
const LOOP_MS = 1200;
const LOOP_MAX = 300;
const MAX_MUTATIONS = 60;
const CYCLE = [1, 2, 3];
const FINAL = 4;
const VERSIONS = [...CYCLE, FINAL];
// Mode 4's one mtime for every version (whole seconds, so every filesystem keeps it exactly).
const SAME_MTIME = Math.floor(Date.now() / 1000) - 3600;

type TargetName = 'disk-small' | 'disk-large' | 'zip-small-stored' | 'zip-small-deflated' | 'zip-large-stored' | 'zip-large-deflated';

interface Target {
  readonly name: TargetName;
  readonly url: string;
  readonly length: number;
  readonly versions: ReadonlyMap<number, Buffer>;
  readonly byHash: ReadonlyMap<string, number>;
}

function target(name: TargetName, url: string, length: number, seed: number): Target {
  const versions = new Map<number, Buffer>();
  const byHash = new Map<string, number>();
  for (const v of VERSIONS) {
    const data = versionText(length, seed * 1000 + v, `${name}-v${v}`);
    versions.set(v, data);
    byHash.set(sha256(data), v);
  }
  return { name, url, length, versions, byHash };
}

const targets: Record<TargetName, Target> = {
  'disk-small': target('disk-small', '/small.txt', SMALL, 1),
  'disk-large': target('disk-large', '/large.txt', LARGE, 2),
  'zip-small-stored': target('zip-small-stored', '/z/small.png', SMALL, 3),
  'zip-small-deflated': target('zip-small-deflated', '/z/small.txt', SMALL, 4),
  'zip-large-stored': target('zip-large-stored', '/z/large.png', LARGE, 5),
  'zip-large-deflated': target('zip-large-deflated', '/z/large.txt', LARGE, 6),
};

/** The archive of version v, padded (with its comment) to one length shared by every version. */
const archives: ReadonlyMap<number, Buffer> = (() => {
  const raw = new Map<number, Buffer>();
  const entries = (v: number): { name: string; data: Buffer; method: number }[] => [
    { name: 'small.png', data: targets['zip-small-stored'].versions.get(v)!, method: 0 },
    { name: 'small.txt', data: targets['zip-small-deflated'].versions.get(v)!, method: 8 },
    { name: 'large.png', data: targets['zip-large-stored'].versions.get(v)!, method: 0 },
    { name: 'large.txt', data: targets['zip-large-deflated'].versions.get(v)!, method: 8 },
  ];
  for (const v of VERSIONS) raw.set(v, makeZip({ entries: entries(v) }));
  const longest = Math.max(...[...raw.values()].map((b) => b.length));
  const out = new Map<number, Buffer>();
  for (const v of VERSIONS) {
    const pad = longest + 16 - raw.get(v)!.length;
    assert.ok(pad <= 0xffff, 'the comment can pad every version to one length');
    out.set(v, makeZip({ entries: entries(v), comment: Buffer.alloc(pad, 0x20) }));
  }
  assert.equal(new Set([...out.values()].map((b) => b.length)).size, 1, 'every archive version has the same length');
  return out;
})();

type Mode = 'rename' | 'in-place' | 'delete-recreate' | 'same-size-and-mtime';

/** Every file the mutator replaces: name in the served directory, and its bytes per version. */
const FILES: readonly (readonly [string, (v: number) => Buffer])[] = [
  ['small.txt', (v) => targets['disk-small'].versions.get(v)!],
  ['large.txt', (v) => targets['disk-large'].versions.get(v)!],
  ['site.zip', (v) => archives.get(v)!],
];

let tmpCounter = 0;

/** Puts version `v` of one file in place, the way `mode` says. */
async function replaceFile(mode: Mode, path: string, data: Buffer): Promise<void> {
  const tmp = `${path}.${process.pid}.${tmpCounter++}.tmp`;
  switch (mode) {
    case 'rename':
      writeFileSync(tmp, data);
      renameSync(tmp, path);
      return;
    case 'same-size-and-mtime':
      // The mtime is set before the rename, so the new file is never visible with another one.
      writeFileSync(tmp, data);
      utimesSync(tmp, SAME_MTIME, SAME_MTIME);
      renameSync(tmp, path);
      return;
    case 'delete-recreate':
      // Gone for a moment (requests may 404), then back whole: linked in complete, so a reader never
      // sees it half-written (that is mode 'in-place'). The inode number may well be reused.
      unlinkSync(path);
      await sleep(3);
      writeFileSync(tmp, data);
      linkSync(tmp, path);
      unlinkSync(tmp);
      return;
    case 'in-place': {
      // Same length, overwritten from offset 0 by one write: a version is a state the file holds between
      // writes. (A rewrite in several writes with pauses between them holds each intermediate state for a
      // while, and every reader, cp or nginx alike, sees those; no server can tell them from versions.)
      // The write races the readers; the server must never send two states in one complete response.
      const fd = openSync(path, 'r+');
      try {
        writeSync(fd, data, 0, data.length, 0);
      } finally {
        closeSync(fd);
      }
      await sleep(2);
      return;
    }
  }
}

function writeInitial(dir: string, mode: Mode, v: number): void {
  for (const [name, data] of FILES) {
    const p = join(dir, name);
    writeFileSync(p, data(v));
    if (mode === 'same-size-and-mtime') utimesSync(p, SAME_MTIME, SAME_MTIME);
  }
}

async function applyVersion(dir: string, mode: Mode, v: number): Promise<void> {
  await Promise.all(FILES.map(([name, data]) => replaceFile(mode, join(dir, name), data(v))));
}

interface Form {
  readonly target: Target;
  readonly gzip?: boolean;
  /** Inclusive byte range asked for, if any. */
  readonly range?: readonly [number, number];
}

const forms: readonly Form[] = [
  { target: targets['disk-small'] },
  { target: targets['disk-large'] },
  { target: targets['zip-small-stored'] },
  { target: targets['zip-small-deflated'] },
  { target: targets['zip-small-deflated'], gzip: true },
  { target: targets['zip-large-stored'] },
  { target: targets['zip-large-deflated'] },
  { target: targets['zip-large-deflated'], gzip: true },
  { target: targets['disk-small'], range: [10, 50_009] },
  { target: targets['disk-large'], range: [1000, 700_999] },
  { target: targets['zip-large-stored'], range: [5000, 900_000] },
  { target: targets['zip-large-deflated'], range: [100_000, 1_300_000] },
  { target: targets['zip-small-deflated'], range: [3, 40_000] },
];

function formName(f: Form): string {
  return `${f.target.url}${f.gzip ? ' (gzip)' : ''}${f.range ? ` [${f.range[0]}-${f.range[1]}]` : ''}`;
}

function headersOf(f: Form): Record<string, string> {
  return { ...(f.gzip ? { 'accept-encoding': 'gzip' } : {}), ...(f.range ? { range: `bytes=${f.range[0]}-${f.range[1]}` } : {}) };
}

/** For a body that is no version: which versions its bytes come from, and where they switch. */
function anatomy(body: Buffer, t: Target, offset = 0): string {
  const pieces: string[] = [];
  let pos = 0;
  for (let guard = 0; pos < body.length && guard < 6; guard++) {
    let best = 0;
    let bestV = -1;
    for (const [v, data] of t.versions) {
      let n = 0;
      while (pos + n < body.length && offset + pos + n < data.length && body[pos + n] === data[offset + pos + n]) n++;
      if (n > best) {
        best = n;
        bestV = v;
      }
    }
    if (best === 0) {
      pieces.push(`${pos}..: no version`);
      break;
    }
    pieces.push(`${pos}..${pos + best - 1}: v${bestV}`);
    pos += best;
  }
  return `${body.length} bytes (${t.length} expected${offset ? `, from offset ${offset}` : ''}): ${pieces.join(', ')}`;
}

interface Tally {
  requests: number;
  complete2xx: number;
  cut: number;
  timedOut: number;
  statuses: Map<number, number>;
  violations: string[];
  /** target|encoding|etag -> the version (or body hash) it was seen with. */
  etags: Map<string, string>;
}

/** Checks one outcome against the guarantee; returns the version it served (if complete 2xx and a version). */
function check(f: Form, out: Outcome, tally: Tally, phase: string): number | undefined {
  tally.requests++;
  if (out.timedOut) tally.timedOut++;
  if (!out.complete) {
    tally.cut++;
    return undefined;
  }
  tally.statuses.set(out.status, (tally.statuses.get(out.status) ?? 0) + 1);
  if (out.status < 200 || out.status > 299) return undefined;
  tally.complete2xx++;
  const t = f.target;
  const where = `${phase} ${formName(f)} ${out.status}`;
  const cl = out.headers['content-length'];
  if (cl !== undefined && Number(cl) !== out.body.length) tally.violations.push(`(iii) ${where}: Content-Length ${cl}, body ${out.body.length}`);
  const enc = out.headers['content-encoding'] ?? 'identity';
  let decoded = out.body;
  if (enc === 'gzip') {
    try {
      decoded = gunzipSync(out.body);
    } catch (err) {
      tally.violations.push(`(i) ${where}: complete gzip body does not gunzip (${(err as Error).message})`);
      decoded = Buffer.alloc(0);
    }
  } else if (enc !== 'identity') {
    tally.violations.push(`(i) ${where}: unexpected content-encoding ${enc}`);
  }
  let version: number | undefined;
  if (out.status === 200) {
    version = t.byHash.get(sha256(decoded));
    if (version === undefined && decoded.length > 0) tally.violations.push(`(i) ${where}: body is no single version: ${anatomy(decoded, t)}`);
    else if (version === undefined) tally.violations.push(`(i) ${where}: empty or undecodable body`);
  } else if (out.status === 206) {
    const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(out.headers['content-range'] ?? '');
    if (!m) {
      tally.violations.push(`(i) ${where}: 206 without a single-part Content-Range (${String(out.headers['content-range'])})`);
    } else {
      const [s, e, total] = [Number(m[1]), Number(m[2]), Number(m[3])];
      if (total !== t.length) tally.violations.push(`(i) ${where}: Content-Range total ${total}, every version is ${t.length}`);
      for (const [v, data] of t.versions) if (data.subarray(s, e + 1).equals(decoded)) version = v;
      if (version === undefined) tally.violations.push(`(i) ${where}: range body is no slice of a single version: ${anatomy(decoded, t, s)}`);
    }
  }
  const etag = out.headers.etag;
  if (etag !== undefined) {
    const key = `${t.name}|${enc}|${etag}`;
    const id = version !== undefined ? `v${version}` : `body ${sha256(decoded).slice(0, 12)}`;
    const prev = tally.etags.get(key);
    if (prev === undefined) tally.etags.set(key, id);
    else if (prev !== id) tally.violations.push(`(ii) ${where}: ETag ${etag} (${enc}) named ${prev}, now ${id}`);
  }
  return version;
}

interface Run {
  readonly tally: Tally;
  readonly mutations: number;
  readonly onErrors: number;
  readonly errorKinds: ReadonlyMap<string, number>;
}

async function scenario(mode: Mode, resolveCacheMs: number | undefined): Promise<Run> {
  const dir = tmpDir('vfserve-fault-replace-');
  const proc = collectProcessErrors();
  let server: Server | undefined;
  const vfs = new Vfs();
  let onErrors = 0;
  const errorKinds = new Map<string, number>();
  const tally: Tally = { requests: 0, complete2xx: 0, cut: 0, timedOut: 0, statuses: new Map(), violations: [], etags: new Map() };
  try {
    writeInitial(dir, mode, CYCLE[0]!);
    const handler = createHandler({
      mounts: [
        { mountpoint: '/', origin: dir },
        { mountpoint: '/z', origin: join(dir, 'site.zip') },
      ],
      vfs,
      ...(resolveCacheMs !== undefined ? { resolveCacheMs } : {}),
      onError: (err) => {
        onErrors++;
        const msg = err instanceof Error ? `${(err as { code?: string }).code ?? err.name}: ${err.message.replace(dir, '<dir>')}` : String(err);
        errorKinds.set(msg, (errorKinds.get(msg) ?? 0) + 1);
      },
    });
    const srv = createServer(handler);
    server = srv;
    srv.keepAliveTimeout = 100;
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    const port = (srv.address() as AddressInfo).port;

    // Every form answers version 1 before anything changes (and the caches hold version 1).
    for (const f of forms) {
      const v = check(f, await tryGet(port, f.target.url, headersOf(f), 10_000), tally, 'before');
      if (v !== CYCLE[0]) tally.violations.push(`before: ${formName(f)} did not serve version ${CYCLE[0]} (got ${String(v)})`);
    }

    let loading = true as boolean; // cleared once the load finishes
    let mutations = 0;
    const mutator = (async () => {
      for (let i = 1; loading && i <= MAX_MUTATIONS; i++) {
        await applyVersion(dir, mode, CYCLE[i % CYCLE.length]!);
        mutations++;
        await sleep(15);
      }
    })();
    const loop = async (k: number): Promise<void> => {
      const end = Date.now() + LOOP_MS;
      for (let n = 0; n < LOOP_MAX && Date.now() < end; n++) {
        const f = forms[(k * 5 + n) % forms.length]!;
        check(f, await tryGet(port, f.target.url, headersOf(f), 5000), tally, 'during');
      }
    };
    await Promise.all(Array.from({ length: LOOPS }, (_, k) => loop(k)));
    loading = false;
    await mutator;

    // Quiet now: a version never served before, and after the resolution window every form serves it.
    await applyVersion(dir, mode, FINAL);
    await sleep((resolveCacheMs ?? 1000) + 250);
    for (const f of forms) {
      const out = await tryGet(port, f.target.url, headersOf(f), 10_000);
      const v = check(f, out, tally, 'after');
      if (v !== FINAL) {
        const got = !out.complete
          ? `a cut response (${out.error ?? 'incomplete'})`
          : v === undefined
            ? `status ${out.status}, no single version`
            : `version ${v}`;
        tally.violations.push(`(iv) after: ${formName(f)} serves ${got}, not the final version ${FINAL}`);
      }
    }
    if (proc.errors.length > 0) tally.violations.push(`process errors: ${describeErrors(proc.errors)}`);
    return { tally, mutations, onErrors, errorKinds };
  } finally {
    proc.stop();
    if (server) {
      const s = server;
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
    await (vfs.containers[0] as ZipFops).close();
    rmTree(dir);
  }
}

function summary(run: Run): string {
  const t = run.tally;
  const statuses = [...t.statuses]
    .sort((a, b) => a[0] - b[0])
    .map(([s, n]) => `${s}x${n}`)
    .join(' ');
  return `${t.requests} requests, ${t.complete2xx} complete 2xx, ${t.cut} cut (${t.timedOut} timed out), statuses ${statuses}; ${run.mutations} mutations; onError ${run.onErrors}x`;
}

const MODES: readonly Mode[] = ['rename', 'in-place', 'delete-recreate', 'same-size-and-mtime'];

for (const [label, resolveCacheMs] of [
  ['default caches (resolveCacheMs 1000, small-file cache on)', undefined],
  ['resolveCacheMs 0', 0],
] as const) {
  describe(`replaced while served, ${label}`, { concurrency: false }, () => {
    for (const mode of MODES) {
      it(`${mode}: every complete 2xx body is one version, ETags never name two, and the final version is served`, async (t) => {
        const run = await scenario(mode, resolveCacheMs);
        t.diagnostic(summary(run));
        for (const [msg, n] of run.errorKinds) t.diagnostic(`onError ${n}x: ${msg}`);
        const v = run.tally.violations;
        const kinds = ['(i)', '(ii)', '(iii)', '(iv)'].map((k) => `${k}x${v.filter((x) => x.startsWith(k) || x.includes(` ${k} `)).length}`).join(' ');
        assert.equal(v.length, 0, `${v.length} violation(s) [${kinds}] in ${summary(run)}:\n  ${v.slice(0, 8).join('\n  ')}`);
        if (mode !== 'in-place') {
          // Replacing by rename leaves every open file intact: nothing may fail or be cut for it (an
          // in-place rewrite of an archive is truly inconsistent while it lasts, so there 500s and cuts are right).
          const failed = [...run.tally.statuses].filter(([status]) => status >= 500);
          assert.deepEqual(failed, [], `no 5xx for a ${mode} replacement: ${summary(run)}`);
          assert.equal(run.onErrors, 0, `nothing to report for a ${mode} replacement: ${[...run.errorKinds.keys()].join('; ')}`);
        }
      });
    }
  });
}
