/**
 * The topology of README "Running at scale", on 127.0.0.1: a store (nginx serving a directory of
 * archives), two vfserve processes started by the CLI with the same configuration file and no disk in
 * common, and nginx in front as load balancer and cache (proxy_cache with slice). The vfserve
 * configuration and the front nginx's configuration are read from the README, so the documented setup
 * is the tested one. All at the default remote settings (revalidateMs, resolveCacheMs not set).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, utimesSync, writeFileSync } from 'node:fs';
import { request, type IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { startCli, type RunningCli } from '../helpers/cli.js';
import { logText, noise, prose, root, rmTree, tmpDir } from '../helpers/fixtures.js';
import { nginxSkip, startNginx, type RunningNginx } from '../helpers/nginx.js';
import { makeZip } from '../helpers/zip-writer.js';

const SLICE = 1024 * 1024;
/**
 * The front's freshness lifetime: the mount's cache-max-age in the README's configuration (2 s), plus
 * 1 s because nginx keeps expiry times in whole seconds.
 */
const CACHE_LIFETIME_MS = 3000;
/** The bound for every vfserve process at the default settings. */
const PROCESS_BOUND_MS = 5000;
/** Latency of one request on a loaded machine: between sending it and the server acting on it. */
const REQUEST_SLACK_MS = 750;

type Version = Record<string, Buffer>;
// photo.jpg is stored and spans three slices; data.txt deflates to more than one slice (gzip across slices).
const common = { 'data.txt': logText(5_300_000, 5) };
const v1: Version = { 'index.html': prose(5000), 'app.css': prose(40_000), 'photo.jpg': noise(2_500_000, 4), ...common };
const v2: Version = {
  'index.html': Buffer.from('<h1>version two</h1>\n'.repeat(300)),
  'app.css': prose(17_000).reverse(),
  'photo.jpg': noise(2_500_000, 21),
  ...common,
};
const zipOf = (files: Version): Buffer =>
  makeZip({ entries: Object.entries(files).map(([name, data]) => ({ name, data, ...(name.endsWith('.jpg') ? { method: 0 } : {}) })) });

/** The README's "Running at scale" section, and its code block of `lang`. */
function readmeBlock(lang: string): string {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Running at scale\n');
  assert.ok(start >= 0, 'README has a "Running at scale" section');
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const m = new RegExp(`\`\`\`${lang}\\n([\\s\\S]*?)\`\`\``).exec(section);
  assert.ok(m, `README "Running at scale" has a \`\`\`${lang} block`);
  return m[1]!;
}

/** `text` with `from` (which must occur exactly once: the README and the test stay in step) replaced. */
function replaceOnce(text: string, from: string, to: string): string {
  assert.equal(text.split(from).length, 2, `${JSON.stringify(from)} occurs once in the README's configuration`);
  return text.replace(from, () => to);
}

interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  /** The body arrived whole (a response cut by a server is not complete). */
  readonly complete: boolean;
  readonly sentAt: number;
}

/** One request with a raw path; a connection cut before or during the response resolves as incomplete. */
function send(port: number, path: string, headers: Record<string, string> = {}): Promise<Reply> {
  const sentAt = Date.now();
  return new Promise((resolve) => {
    const fail = (): void => resolve({ status: 0, headers: {}, body: Buffer.alloc(0), complete: false, sentAt });
    const req = request({ host: '127.0.0.1', port, path, headers: { connection: 'close', ...headers }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', () => undefined);
      res.on('close', () => {
        const body = Buffer.concat(chunks);
        const declared = res.headers['content-length'];
        const complete = res.complete && (declared === undefined || Number(declared) === body.length);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, complete, sentAt });
      });
    });
    req.setTimeout(10_000, () => req.destroy(new Error('request timed out')));
    req.on('error', fail);
    req.end();
  });
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** What a response should hold: an entry of one version, whole or a range, in identity or gzip. */
interface Want {
  readonly entry: string;
  readonly gzip?: boolean;
  readonly range?: readonly [number, number];
}

/**
 * The consistency every complete 200/206 response must show: its body is exactly one version's
 * bytes for what was asked, and each ETag always names the same version of the same representation
 * (and the same bytes for the same range).
 */
class VersionWitness {
  readonly #etagVersion = new Map<string, string>();
  readonly #etagBody = new Map<string, string>();

  /** 1 or 2 for a complete response of that version; undefined for a response cut short. */
  check(r: Reply, want: Want, label: string): 1 | 2 | undefined {
    if (!r.complete) return undefined;
    assert.ok(r.status === 200 || r.status === 206, `${label}: status ${r.status}`);
    const gzip = r.headers['content-encoding'] === 'gzip';
    assert.equal(gzip, want.gzip === true, `${label}: Content-Encoding ${String(r.headers['content-encoding'])}`);
    const identity = gzip ? gunzipSync(r.body) : r.body;
    const expect = (v: Version): Buffer => (want.range ? v[want.entry]!.subarray(want.range[0], want.range[1] + 1) : v[want.entry]!);
    const version = identity.equals(expect(v1)) ? 1 : identity.equals(expect(v2)) ? 2 : undefined;
    assert.ok(version !== undefined, `${label}: a complete response with the bytes of neither version`);
    const etag = r.headers.etag;
    assert.ok(etag !== undefined && /^"[^"]+"$/.test(etag), `${label}: a strong ETag, not ${String(etag)}`);
    const named = `${want.entry} ${gzip ? 'gzip' : 'identity'} v${version}`;
    const known = this.#etagVersion.get(etag) ?? named;
    assert.equal(known, named, `${label}: ETag ${etag} names two versions or representations`);
    this.#etagVersion.set(etag, named);
    const key = `${etag} ${r.headers['content-range'] ?? 'whole'}`;
    const body = this.#etagBody.get(key) ?? sha(r.body);
    assert.equal(body, sha(r.body), `${label}: ETag ${etag} names two bodies for ${key}`);
    this.#etagBody.set(key, body);
    return version;
  }
}

describe('store → two vfserve processes → nginx cache (README "Running at scale")', () => {
  let dir = '';
  let store: RunningNginx | undefined;
  let front: RunningNginx | undefined;
  const servers: RunningCli[] = [];
  const witness = new VersionWitness();
  const archive = (): string => join(dir, 'store', 'archives', 'site.zip');

  before(async () => {
    if (nginxSkip !== false) return;
    dir = tmpDir('vfserve-topology-');
    mkdirSync(join(dir, 'store', 'archives'), { recursive: true });
    writeFileSync(archive(), zipOf(v1));
    utimesSync(archive(), 1_700_000_000, 1_700_000_000);
    store = await startNginx({ http: ['server {', '  listen 127.0.0.1:{{port}};', `  root ${join(dir, 'store')};`, '}'].join('\n') });

    // Each process gets the README's configuration in a directory of its own: nothing on disk in common.
    const conf = JSON.parse(readmeBlock('json')) as { vhosts: { port: number; interface?: string; mounts: { origin: string }[] }[] };
    const vhost = conf.vhosts[0]!;
    // Here all on one machine: loopback only, and a free port each.
    vhost.port = 0;
    vhost.interface = '127.0.0.1';
    vhost.mounts[0]!.origin = replaceOnce(vhost.mounts[0]!.origin, 'store.internal:8080', `127.0.0.1:${store.port}`);
    const started = await Promise.allSettled(
      ['a', 'b'].map((name) => {
        mkdirSync(join(dir, name));
        writeFileSync(join(dir, name, 'vfserve.json'), JSON.stringify(conf));
        return startCli(['--config', join(dir, name, 'vfserve.json')]);
      }),
    );
    // Kept even when the other failed to start, so that `after` stops it.
    for (const s of started) if (s.status === 'fulfilled') servers.push(s.value);
    for (const s of started) if (s.status === 'rejected') throw s.reason;

    let http = readmeBlock('nginx');
    http = replaceOnce(http, 'listen 80;', 'listen 127.0.0.1:{{port}};');
    http = replaceOnce(http, '/var/cache/nginx/vfserve', '{{dir}}/cache');
    http = replaceOnce(http, 'server vfserve-1.internal:7681;', `server 127.0.0.1:${servers[0]!.port};`);
    http = replaceOnce(http, 'server vfserve-2.internal:7681;', `server 127.0.0.1:${servers[1]!.port};`);
    front = await startNginx({ http });
  });
  after(async () => {
    await Promise.allSettled([front?.stop(), store?.stop(), ...servers.map((s) => s.stop())]);
    if (dir !== '') rmTree(dir);
  });

  it('both processes give the same ETag for the same representation, and answer If-None-Match with 304', { skip: nginxSkip }, async () => {
    for (const [path, headers, want] of [
      ['/', {}, { entry: 'index.html' }],
      ['/app.css', {}, { entry: 'app.css' }],
      ['/app.css', { 'accept-encoding': 'gzip' }, { entry: 'app.css', gzip: true }],
      ['/photo.jpg', { range: 'bytes=0-1048575' }, { entry: 'photo.jpg', range: [0, SLICE - 1] }],
    ] as const) {
      const [a, b] = await Promise.all(servers.map((s) => send(s.port, path, headers)));
      assert.equal(witness.check(a!, want, `process a ${path}`), 1);
      assert.equal(witness.check(b!, want, `process b ${path}`), 1);
      assert.equal(a!.headers.etag, b!.headers.etag, `${path} ${JSON.stringify(headers)}: the same ETag from both processes`);
      for (const s of servers) {
        const again = await send(s.port, path, { ...headers, 'if-none-match': a!.headers.etag! });
        assert.equal(again.status, 304, `${path}: 304 from the process on port ${s.port}`);
        assert.equal(again.body.length, 0);
      }
    }
  });

  it('serves whole responses, ranges within and across slices, and gzip passthrough through the cache', { skip: nginxSkip }, async () => {
    const port = front!.port;
    const cacheStatus = (r: Reply): string => String(r.headers['x-cache-status']);
    // The stored response: a hit, or (on a machine slow enough for it to go stale meanwhile) revalidated by a 304.
    const FROM_CACHE = /^(HIT|REVALIDATED)$/;

    const page = await send(port, '/');
    assert.equal(witness.check(page, { entry: 'index.html' }, 'front /'), 1);
    assert.equal(cacheStatus(page), 'MISS');
    const pageAgain = await send(port, '/');
    assert.equal(witness.check(pageAgain, { entry: 'index.html' }, 'front / again'), 1);
    assert.match(cacheStatus(pageAgain), FROM_CACHE);

    const photo = await send(port, '/photo.jpg');
    assert.equal(photo.status, 200);
    assert.equal(witness.check(photo, { entry: 'photo.jpg' }, 'front /photo.jpg'), 1, 'three slices assembled');
    for (const [first, last] of [
      [100, 1099],
      [SLICE - 1000, SLICE + 999],
      [2 * SLICE - 10, 2 * SLICE + 10],
      [2_500_000 - 1000, 2_500_000 - 1],
    ] as const) {
      const part = await send(port, '/photo.jpg', { range: `bytes=${first}-${last}` });
      assert.equal(part.status, 206);
      assert.equal(part.headers['content-range'], `bytes ${first}-${last}/2500000`);
      assert.equal(witness.check(part, { entry: 'photo.jpg', range: [first, last] }, `front photo ${first}-${last}`), 1);
      assert.match(cacheStatus(part), FROM_CACHE, 'cut from the slices cached by the whole response');
    }

    const gz = await send(port, '/app.css', { 'accept-encoding': 'gzip' });
    assert.equal(witness.check(gz, { entry: 'app.css', gzip: true }, 'front gzip app.css'), 1);
    // A client that did not ask for gzip never gets the cached gzip body.
    const plain = await send(port, '/app.css');
    assert.equal(witness.check(plain, { entry: 'app.css' }, 'front identity app.css'), 1);
    assert.equal(cacheStatus(plain), 'MISS', 'identity has its own cache entry');
    for (const [ae, gzip] of [
      ['br, gzip', true],
      ['gzip;q=0', false],
      ['gzip;q=0.5, identity', true],
      ['deflate', false],
    ] as const) {
      const r = await send(port, '/app.css', { 'accept-encoding': ae });
      assert.equal(witness.check(r, { entry: 'app.css', gzip }, `front app.css, Accept-Encoding: ${ae}`), 1);
      assert.match(cacheStatus(r), FROM_CACHE, `Accept-Encoding: ${ae} maps to a cached coding`);
    }

    // A deflated entry whose gzip body spans two slices, and ranges of that gzip body.
    const big = await send(port, '/data.txt', { 'accept-encoding': 'gzip' });
    assert.ok(big.body.length > SLICE, `the gzip body (${big.body.length} bytes) spans two slices`);
    assert.equal(witness.check(big, { entry: 'data.txt', gzip: true }, 'front gzip data.txt'), 1);
    const gzPart = await send(port, '/data.txt', { 'accept-encoding': 'gzip', range: `bytes=${SLICE - 50}-${SLICE + 49}` });
    assert.equal(gzPart.status, 206);
    assert.equal(gzPart.headers['content-encoding'], 'gzip');
    assert.ok(gzPart.body.equals(big.body.subarray(SLICE - 50, SLICE + 50)), 'a range of the gzip body');
  });

  it('revalidates a stale entry by ETag: vfserve answers 304, the cache says REVALIDATED', { skip: nginxSkip }, async () => {
    const port = front!.port;
    const fresh = await send(port, '/app.css');
    assert.equal(witness.check(fresh, { entry: 'app.css' }, 'front app.css'), 1);
    const etag = fresh.headers.etag!;
    const count304 = (): number => servers.reduce((n, s) => n + (s.output().match(/GET \/app\.css 304 /g)?.length ?? 0), 0);
    const before304 = count304();
    // The request above left a fresh entry: hits until it is stale (bounded by its lifetime), then one revalidation.
    let stale: Reply;
    const until = Date.now() + CACHE_LIFETIME_MS + REQUEST_SLACK_MS;
    do {
      await new Promise((r) => setTimeout(r, 200));
      stale = await send(port, '/app.css');
    } while (stale.headers['x-cache-status'] === 'HIT' && Date.now() < until);
    assert.equal(stale.headers['x-cache-status'], 'REVALIDATED');
    assert.equal(witness.check(stale, { entry: 'app.css' }, 'front app.css revalidated'), 1);
    assert.equal(stale.headers.etag, etag);
    // The access line of the 304 is written after the response: wait for it (bounded).
    for (const t = Date.now(); count304() === before304 && Date.now() - t < 2000;) await new Promise((r) => setTimeout(r, 20));
    assert.ok(count304() > before304, 'a 304 from a vfserve process');
    // And the client's own conditional request is answered by the cache.
    const cond = await send(port, '/app.css', { 'if-none-match': etag });
    assert.equal(cond.status, 304);
  });

  it('a replaced archive reaches every process within 5 s and the cache within 5 s plus its lifetime, never mixed', { skip: nginxSkip }, async () => {
    const photoRange = [SLICE - 1000, SLICE + 999] as const;
    const asksOf = (round: number): [string, Record<string, string>, Want][] => [
      ['/', {}, { entry: 'index.html' }],
      ['/photo.jpg', { range: `bytes=${photoRange[0]}-${photoRange[1]}` }, { entry: 'photo.jpg', range: photoRange }],
      ['/app.css', { 'accept-encoding': 'gzip' }, { entry: 'app.css', gzip: true }],
      // Now and then the whole 2.5 MB entry, assembled at the front from slices that may be of two versions.
      ...(round % 4 === 3 ? [['/photo.jpg', {}, { entry: 'photo.jpg' }] as [string, Record<string, string>, Want]] : []),
    ];
    // Each process holds all it will be asked in its caches, so that only the revalidation of the pinned
    // ETag (not a 412 to a block read) can reveal the replacement: the slow path the 5 s bound is about.
    for (const s of servers) {
      for (const [path, headers, want] of asksOf(3)) assert.equal(witness.check(await send(s.port, path, headers), want, `warm ${path}`), 1);
    }
    // Replaced just after a process revalidated (a conditional HEAD on the store): its worst case.
    const heads = (): number => store!.accessLog().filter((l) => l.startsWith('HEAD /archives/site.zip ')).length;
    const headsBefore = heads();
    for (const until = Date.now() + PROCESS_BOUND_MS + REQUEST_SLACK_MS; heads() === headsBefore && Date.now() < until;) {
      await Promise.all(servers.map((s) => send(s.port, '/')));
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(heads() > headsBefore, 'a process revalidates the pinned ETag while it serves from its caches');

    const next = `${archive()}.next`;
    writeFileSync(next, zipOf(v2));
    // nginx's ETag is mtime-size, and the two archives may have the same size.
    utimesSync(next, 1_700_000_100, 1_700_000_100);
    renameSync(next, archive());
    const t0 = Date.now();

    const targets = [
      { name: 'process a', port: servers[0]!.port, bound: PROCESS_BOUND_MS },
      { name: 'process b', port: servers[1]!.port, bound: PROCESS_BOUND_MS },
      { name: 'the cache', port: front!.port, bound: PROCESS_BOUND_MS + CACHE_LIFETIME_MS },
    ].map((t) => ({ ...t, lastOld: -1, done: false, firstNewOf: new Map<string, number>() }));
    const deadline = t0 + PROCESS_BOUND_MS + CACHE_LIFETIME_MS + 3 * REQUEST_SLACK_MS;
    let cut = 0;
    for (let round = 0; targets.some((t) => !t.done) && Date.now() < deadline; round++) {
      await Promise.all(
        targets.map(async (t) => {
          const asks = asksOf(round);
          const replies = await Promise.all(asks.map(([path, headers]) => send(t.port, path, headers)));
          const versions = replies.map((r, i) => witness.check(r, asks[i]![2], `${t.name} ${asks[i]![0]} (round ${round})`));
          cut += versions.filter((v) => v === undefined).length;
          for (let i = 0; i < replies.length; i++) {
            const sent = replies[i]!.sentAt - t0;
            const ask = `${asks[i]![0]} ${JSON.stringify(asks[i]![1])}`;
            if (versions[i] === 1) {
              t.lastOld = Math.max(t.lastOld, sent);
              // A process pins one version at a time: once it served version 2 of a resource, never version 1 again.
              const firstNew = t.firstNewOf.get(ask);
              if (t.name !== 'the cache') assert.ok(firstNew === undefined, `${t.name} went back to version 1 for ${ask}`);
            }
            if (versions[i] === 2 && !t.firstNewOf.has(ask)) t.firstNewOf.set(ask, sent);
          }
          t.done = versions.length > 0 && versions.every((v) => v === 2);
        }),
      );
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const t of targets) {
      assert.ok(t.done, `${t.name} serves version 2 (last version 1 asked at ${t.lastOld} ms, cut responses ${cut})`);
      assert.ok(
        t.lastOld < t.bound + REQUEST_SLACK_MS,
        `${t.name}: version 1 still served to a request sent ${t.lastOld} ms after the replacement (bound ${t.bound} ms)`,
      );
    }
    const whole = await send(front!.port, '/photo.jpg');
    assert.equal(witness.check(whole, { entry: 'photo.jpg' }, 'front whole photo after'), 2);
  });

  it('while the store is down, the processes answer 500 and the cache serves what it holds (STALE)', { skip: nginxSkip }, async () => {
    const page = await send(front!.port, '/');
    assert.equal(witness.check(page, { entry: 'index.html' }, 'front / before the outage'), 2);
    await store!.stop();
    store = undefined;
    // Past the cache's lifetime, and past a process's revalidation of the pinned ETag (which now fails).
    await new Promise((r) => setTimeout(r, Math.max(CACHE_LIFETIME_MS, PROCESS_BOUND_MS) + REQUEST_SLACK_MS));
    for (const s of servers) {
      const direct = await send(s.port, '/');
      assert.equal(direct.status, 500, 'a process cannot check its version: it does not serve it as current');
      assert.doesNotMatch(direct.body.toString(), /127\.0\.0\.1|ECONNREFUSED|archives/, 'no internal detail in the page');
    }
    const stale = await send(front!.port, '/');
    assert.equal(stale.headers['x-cache-status'], 'STALE');
    assert.equal(witness.check(stale, { entry: 'index.html' }, 'front / during the outage'), 2);
  });
});
