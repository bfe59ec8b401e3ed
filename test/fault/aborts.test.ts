/**
 * Fault suite A: clients that go away. Every kind of response (whole 200,
 * single range, multipart/byteranges; identity and gzip passthrough; disk,
 * stored and deflated zip entries; big streamed bodies and small cached ones)
 * is aborted by the client right after the request is sent and again in the
 * middle of the body. After each bounded batch the server must hold exactly
 * the descriptors it held before, and the zip layer exactly the entry
 * handles and archives it held before; an archive replaced on disk must not
 * stay open as "(deleted)".
 */
import assert from 'node:assert/strict';
import { renameSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createHandler, Vfs, type ZipFops } from '../../src/index.js';
import { rmTree, tmpDir, writeTree } from '../helpers/fixtures.js';
import {
  abortedGet,
  collectProcessErrors,
  describeErrors,
  extraFds,
  fileFds,
  haveProcFds,
  pollUntil,
  sleep,
  tryGet,
  versionNoise,
  versionText,
  type AbortMoment,
} from '../helpers/fault.js';
import { makeZip } from '../helpers/zip-writer.js';

const MiB = 1024 * 1024;
const dir = tmpDir('vfserve-fault-aborts-');
const zipPath = join(dir, 'site.zip');
const replacePath = join(dir, 'replace.zip');
const BATCH = 12;
const SETTLE_MS = 100;

const bigDisk = versionText(8 * MiB, 11, 'disk');
const smallDisk = versionText(100 * 1024, 12, 'small');
const bigDeflated = versionText(6 * MiB, 13, 'deflated');
const bigStored = versionNoise(8 * MiB, 14);
const smallDeflated = versionText(100 * 1024, 15, 'zsmall');

function site(): Buffer {
  return makeZip({
    entries: [
      { name: 'big.txt', data: bigDeflated, method: 8 },
      { name: 'big.png', data: bigStored, method: 0 },
      { name: 'small.txt', data: smallDeflated, method: 8 },
    ],
  });
}

function replaceArchive(generation: number): Buffer {
  return makeZip({
    entries: [
      { name: 'big.png', data: versionNoise(3 * MiB, 100 + generation), method: 0 },
      { name: 'small.txt', data: versionText(10_000, 200 + generation, `gen${generation}`), method: 8 },
    ],
  });
}

/** Replaces `path` atomically: a temp file renamed over it. */
function renameOver(path: string, data: Buffer): void {
  writeFileSync(`${path}.tmp`, data);
  renameSync(`${path}.tmp`, path);
}

let server: Server;
let port = 0;
let vfs: Vfs;
let zip: ZipFops;
let requests = 0;
let closes = 0;
const onErrors: unknown[] = [];
let proc: ReturnType<typeof collectProcessErrors>;
const lengths = new Map<string, number>();

function zipCounter(name: 'openEntries' | 'openArchives'): unknown {
  return (zip.stats as unknown as Record<string, unknown>)[name];
}

before(async () => {
  proc = collectProcessErrors();
  writeTree(dir, { 'big.txt': bigDisk, 'small.txt': smallDisk });
  writeFileSync(zipPath, site());
  writeFileSync(replacePath, replaceArchive(0));
  vfs = new Vfs();
  zip = vfs.containers[0] as ZipFops;
  const handler = createHandler({
    mounts: [
      { mountpoint: '/', origin: dir },
      { mountpoint: '/z', origin: zipPath },
      { mountpoint: '/r', origin: replacePath },
    ],
    vfs,
    onError: (err) => onErrors.push(err),
  });
  server = createServer((req, res) => {
    requests++;
    res.on('close', () => closes++);
    // The 'gone' moment: the app hands the request over only once the client has left (as a slow
    // middleware before it would), so the response is planned for a connection already closed.
    if (req.headers['x-fault-defer'] === 'until-close') res.on('close', () => handler(req, res));
    else handler(req, res);
  });
  server.keepAliveTimeout = 100;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  // Representation lengths, for ranges inside every representation (the gzip form's is the archive's).
  for (const [key, path, headers] of [
    ['/big.txt', '/big.txt', {}],
    ['/small.txt', '/small.txt', {}],
    ['/z/big.txt', '/z/big.txt', {}],
    ['/z/big.txt gzip', '/z/big.txt', { 'accept-encoding': 'gzip' }],
    ['/z/big.png', '/z/big.png', {}],
    ['/z/small.txt', '/z/small.txt', {}],
    ['/z/small.txt gzip', '/z/small.txt', { 'accept-encoding': 'gzip' }],
  ] as const) {
    const r = await tryGet(port, path, headers, 10_000, 'HEAD');
    assert.equal(r.status, 200, `HEAD ${key}`);
    lengths.set(key, Number(r.headers['content-length']));
  }
  assert.equal(lengths.get('/z/big.txt'), bigDeflated.length);
  assert.ok(lengths.get('/z/big.txt gzip')! < bigDeflated.length, 'the gzip form is the deflated entry');
});

after(async () => {
  proc.stop();
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await zip.close();
  rmTree(dir);
});

type Shape = 'whole' | 'single' | 'multi';

/** The Range header for `shape` over a representation of `length` bytes (none for 'whole'). */
function rangeFor(shape: Shape, length: number): Record<string, string> {
  if (shape === 'whole') return {};
  const q = Math.floor(length / 4);
  if (shape === 'single') return { range: `bytes=100-${length - 100}` };
  // Disjoint parts far enough apart not to be merged: multipart/byteranges.
  return { range: `bytes=0-99,${q}-${q + 99},${2 * q}-${3 * q},${length - 100}-${length - 1}` };
}

interface Kind {
  readonly name: string;
  readonly path: string;
  readonly lengthKey: string;
  readonly gzip: boolean;
  readonly shape: Shape;
  readonly zip: boolean;
}

const kinds: Kind[] = [];
for (const shape of ['whole', 'single', 'multi'] as const) {
  kinds.push({ name: `disk 8 MiB, ${shape}`, path: '/big.txt', lengthKey: '/big.txt', gzip: false, shape, zip: false });
  kinds.push({ name: `zip deflated 6 MiB, identity, ${shape}`, path: '/z/big.txt', lengthKey: '/z/big.txt', gzip: false, shape, zip: true });
  kinds.push({ name: `zip deflated 6 MiB, gzip passthrough, ${shape}`, path: '/z/big.txt', lengthKey: '/z/big.txt gzip', gzip: true, shape, zip: true });
  kinds.push({ name: `zip stored 8 MiB, ${shape}`, path: '/z/big.png', lengthKey: '/z/big.png', gzip: false, shape, zip: true });
}
for (const shape of ['whole', 'multi'] as const) {
  kinds.push({ name: `disk 100 KiB (cached), ${shape}`, path: '/small.txt', lengthKey: '/small.txt', gzip: false, shape, zip: false });
  kinds.push({ name: `zip deflated 100 KiB (cached), identity, ${shape}`, path: '/z/small.txt', lengthKey: '/z/small.txt', gzip: false, shape, zip: true });
  kinds.push({
    name: `zip deflated 100 KiB (cached), gzip passthrough, ${shape}`,
    path: '/z/small.txt',
    lengthKey: '/z/small.txt gzip',
    gzip: true,
    shape,
    zip: true,
  });
}

function headersOf(kind: Kind): Record<string, string> {
  return { ...(kind.gzip ? { 'accept-encoding': 'gzip' } : {}), ...rangeFor(kind.shape, lengths.get(kind.lengthKey)!) };
}

/** Waits (bounded) until the server has seen 'close' on every response it was given. */
async function serverQuiet(): Promise<boolean> {
  const r = await pollUntil(
    () => closes >= requests,
    (ok) => ok,
    5000,
  );
  return r;
}

/**
 * Fires `count` aborted requests at once, waits for the server to close them all, and
 * lists what did not return to the baseline: descriptors, and for zip kinds the zip counters.
 */
async function abortBatch(
  path: string,
  headers: Record<string, string>,
  moment: AbortMoment,
  checkZip: boolean,
  notes: string[],
  defer = false,
  count = BATCH,
): Promise<string[]> {
  const problems: string[] = [];
  // Warm up: the resolution, the small-content cache and the archive are open before the baseline.
  const warm = await tryGet(port, path, headers, 10_000);
  if (warm.status !== 200 && warm.status !== 206) problems.push(`warm-up request answered ${warm.status}`);
  assert.ok(await serverQuiet(), 'the warm-up request closed');
  const baseFds = fileFds();
  const baseEntries = checkZip ? zipCounter('openEntries') : undefined;
  const baseArchives = checkZip ? zipCounter('openArchives') : undefined;
  const before = requests;
  const sent = defer ? { ...headers, 'x-fault-defer': 'until-close' } : headers;
  const results = await Promise.all(Array.from({ length: count }, () => abortedGet(port, path, sent, moment)));
  const late = results.filter((r) => r.received > 0).length;
  // Not a server fault (the abort came late for some clients); said so the counts can be read right.
  if (moment === 'sent' && late > 0) notes.push(`${late} of ${count} clients received bytes before aborting`);
  const seen = await pollUntil(
    () => requests - before,
    (n) => n >= count,
    5000,
  );
  if (seen < count) problems.push(`server saw only ${seen} of ${count} requests`);
  if (!(await serverQuiet())) problems.push(`server saw 'close' on only ${closes} of ${requests} responses`);
  // Let the handlers still planning responses for the closed connections open what they open
  // (the 'gone' moment starts them only now), so a leak is there to be seen, not yet to come.
  await sleep(SETTLE_MS);
  const extra = await pollUntil(
    () => extraFds(baseFds, fileFds()),
    (e) => e.length === 0,
    2000,
  );
  if (extra.length > 0) problems.push(`${extra.length} descriptor(s) leaked after ${count} aborted requests: ${[...new Set(extra)].join(', ')}`);
  if (checkZip) {
    // A counter that is missing altogether is not waited for.
    const entries = await pollUntil(
      () => zipCounter('openEntries'),
      (v) => v === baseEntries || typeof v !== 'number',
      2000,
    );
    if (typeof entries !== 'number') problems.push(`zip.stats.openEntries is not a number (${String(entries)})`);
    else if (entries !== baseEntries) problems.push(`zip.stats.openEntries ${entries}, baseline ${String(baseEntries)}`);
    const archives = await pollUntil(
      () => zipCounter('openArchives'),
      (v) => v === baseArchives || typeof v !== 'number',
      500,
    );
    if (typeof archives !== 'number') problems.push(`zip.stats.openArchives is not a number (${String(archives)})`);
    else if (archives !== baseArchives) problems.push(`zip.stats.openArchives ${archives}, baseline ${String(baseArchives)}`);
  }
  return problems;
}

/**
 * Requests an entry of /r until the replacement archive `generation` is what is served: within
 * resolveCacheMs (1 s by default) the old resolution, and so the old content, may still be used.
 */
async function servedFrom(generation: number): Promise<boolean> {
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline) {
    const r = await tryGet(port, '/r/small.txt', {}, 5000);
    if (r.status === 200 && r.body.includes(`gen${generation}#0:`)) return true;
    await sleep(100);
  }
  return false;
}

describe('aborted downloads release every descriptor and handle', { concurrency: false }, () => {
  it('can count descriptors here (/proc/self/fd)', () => {
    assert.ok(haveProcFds(), 'needs Linux /proc/self/fd');
    assert.ok(fileFds().length > 0);
  });

  it('zip.stats reports openEntries and openArchives', () => {
    assert.equal(typeof zipCounter('openEntries'), 'number', 'zip.stats.openEntries');
    assert.equal(typeof zipCounter('openArchives'), 'number', 'zip.stats.openArchives');
  });

  for (const kind of kinds) {
    for (const moment of ['sent', 'gone', 'body'] as const) {
      const when = {
        sent: 'client gone right after sending, before any response byte',
        gone: 'client gone before the handler even ran',
        body: 'client gone mid-body',
      }[moment];
      it(`${kind.name}: ${when}`, async (t) => {
        const notes: string[] = [];
        const problems = await abortBatch(kind.path, headersOf(kind), moment === 'gone' ? 'sent' : moment, kind.zip, notes, moment === 'gone');
        for (const n of notes) t.diagnostic(n);
        assert.deepEqual(problems, [], problems.join('; '));
      });
    }
  }

  it('a replaced archive is closed once nothing uses it (no "(deleted)" descriptor)', async () => {
    const first = await tryGet(port, '/r/small.txt', {}, 10_000);
    assert.equal(first.status, 200);
    const big = await tryGet(port, '/r/big.png', { range: 'bytes=0-99' }, 10_000);
    assert.equal(big.status, 206);
    renameOver(replacePath, replaceArchive(1));
    assert.ok(await servedFrom(1), 'the new archive is served (within the resolution window)');
    const deleted = await pollUntil(
      () => fileFds().filter((t) => t.startsWith(replacePath) && t.endsWith(' (deleted)')),
      (d) => d.length === 0,
      2000,
    );
    assert.deepEqual(deleted, [], 'the old archive is still open');
  });

  it('a replaced archive is closed even after multi-range requests on its entries were aborted before the body', async () => {
    const headers = rangeFor('multi', 3 * MiB);
    const warm = await tryGet(port, '/r/big.png', headers, 10_000);
    assert.equal(warm.status, 206);
    // Deterministically before the body: the handler runs once the client has gone.
    await Promise.all(Array.from({ length: 5 }, () => abortedGet(port, '/r/big.png', { ...headers, 'x-fault-defer': 'until-close' }, 'sent')));
    assert.ok(await serverQuiet(), 'the server closed every aborted response');
    await sleep(4 * SETTLE_MS); // the deferred handlers open the old archive's entries before it is replaced
    renameOver(replacePath, replaceArchive(2));
    assert.ok(await servedFrom(2), 'the new archive is served (within the resolution window)');
    const deleted = await pollUntil(
      () => fileFds().filter((t) => t.startsWith(replacePath) && t.endsWith(' (deleted)')),
      (d) => d.length === 0,
      2000,
    );
    assert.deepEqual(deleted, [], `the old archive is still open ${deleted.length} time(s)`);
  });

  it('no unhandled rejection or uncaught exception while clients aborted', () => {
    assert.equal(proc.errors.length, 0, describeErrors(proc.errors));
  });
});
