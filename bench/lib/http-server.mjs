// One static-file server for the HTTP load benchmark (bench/http.mjs), run in
// its own process so it never shares an event loop with the load generator.
//
//   node bench/lib/http-server.mjs <kind> <dataDir> <distIndexJs> [zipName]
//
// kind: vfs-disk | vfs-disk-noprecomp | vfs-disk-gz | vfs-zip | sirv | serve-static | express | node-limit
//       | vfs-range | vfs-compress
// vfs-compress: dataDir with `compress: true` and no precompressed siblings (bench/compress.mjs).
// (distIndexJs is only read by the vfs-* kinds; bench/http.mjs passes a second
// dist/ there for its vfs-*-before servers.)
//
// node-limit is Node's limit, not a static server: every regular file of dataDir
// is read into memory at start, with frozen, precomputed headers (content-type,
// content-length, ETag, Last-Modified; for files that gzip smaller, a gzip
// buffer with its own content-length, ETag, content-encoding and vary), and a
// request is one Map lookup and `res.writeHead(200, headers).end(buffer)`. No
// static server on node:http can do less per request, so its req/s is the
// ceiling every other row is divided by. It sends no cache-control or
// accept-ranges (vfserve does: about 50 more bytes of head per response).
// Listens on 127.0.0.1, port 0, and prints `PORT <n>` on stdout. SIGTERM (or a
// line `exit` on stdin) exits cleanly, so `--cpu-prof` can write its profile.
// With BENCH_COUNT_ASYNC=1 it counts async resources created per request by
// type (FSREQPROMISE, FSREQCALLBACK, ...) and prints `COUNTS {json}` on exit.
//
// vfs-range is bench/range.mjs's server: the archive mount /z of dataDir/<zipName>
// (as vfs-zip mounts site.zip), the directory mounts /d of dataDir/disk and /n of
// dataDir/nested (archives in it entered by path). A line `stats` on stdin prints
// `STATS {json}`: process.memoryUsage() and the `stats` of every ZipFops the
// engine used (found by wrapping ZipFops.prototype's open, stat, index, openMember
// and statMember in this process only), so the benchmark reads counters such as an index's bytes without
// a route in src/ or in the request path.
import { createServer } from 'node:http';
import { createHook } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';

const [kind, dataDir, distIndex, zipName] = process.argv.slice(2);
if (!kind || !dataDir) {
  console.error('usage: http-server.mjs <kind> <dataDir> <distIndexJs>');
  process.exit(2);
}

const counts = new Map();
let requests = 0;
if (process.env.BENCH_COUNT_ASYNC === '1') {
  createHook({
    init(_id, type) {
      counts.set(type, (counts.get(type) ?? 0) + 1);
    },
  }).enable();
}

const onError = (err) => console.error(`[${kind}] error:`, err);
// vfs-range: the ZipFops instances the engine's Vfs has used (for `stats` on stdin).
const zipFops = new Set();
const notFound = (_req, res) => {
  res.statusCode = 404;
  res.end();
};

/**
 * dataDir's files beside a sibling `<dir>-gz/` that also holds app.js.gz and small.html.gz, gzip
 * level 6 as the zip entries are deflated: what a build step that precompresses leaves on disk.
 */
function precompressedDir() {
  const dir = `${dataDir}-gz`;
  mkdirSync(dir, { recursive: true });
  for (const name of readdirSync(dataDir)) {
    const from = join(dataDir, name);
    if (!statSync(from).isFile() || name === 'site.zip') continue;
    const data = readFileSync(from);
    writeFileSync(join(dir, name), data);
    if (name.endsWith('.js') || name.endsWith('.html')) writeFileSync(join(dir, `${name}.gz`), gzipSync(data, { level: 6 }));
  }
  return dir;
}

async function makeListener() {
  switch (kind) {
    case 'vfs-disk':
    case 'vfs-disk-noprecomp':
    case 'vfs-disk-gz':
    case 'vfs-zip': {
      const { createHandler } = await import(pathToFileURL(distIndex).href);
      const mount =
        kind === 'vfs-zip'
          ? { mountpoint: '/', origin: `${dataDir}/site.zip` }
          : kind === 'vfs-disk-noprecomp'
            ? { mountpoint: '/', origin: dataDir, precompressed: false }
            : kind === 'vfs-disk-gz'
              ? { mountpoint: '/', origin: precompressedDir() }
              : { mountpoint: '/', origin: dataDir };
      return createHandler({ mounts: [mount], onError });
    }
    case 'vfs-compress': {
      const { createHandler } = await import(pathToFileURL(distIndex).href);
      return createHandler({ mounts: [{ mountpoint: '/', origin: dataDir, compress: true, precompressed: false }], onError });
    }
    case 'vfs-range': {
      const lib = await import(pathToFileURL(distIndex).href);
      const proto = lib.ZipFops?.prototype;
      for (const name of ['open', 'stat', 'index', 'openMember', 'statMember']) {
        const orig = proto?.[name];
        if (typeof orig !== 'function') continue;
        proto[name] = function (...args) {
          zipFops.add(this);
          return orig.apply(this, args);
        };
      }
      if (!zipName) throw new Error('vfs-range: needs a zipName (4th argument)');
      const mounts = [
        { mountpoint: '/z', origin: `${dataDir}/${zipName}` },
        { mountpoint: '/d', origin: `${dataDir}/disk`, precompressed: false },
        { mountpoint: '/n', origin: `${dataDir}/nested`, precompressed: false },
      ];
      return lib.createHandler({ mounts, onError });
    }
    case 'sirv': {
      const { default: sirv } = await import('sirv');
      const h = sirv(dataDir, { dev: false, etag: true });
      return (req, res) => h(req, res, () => notFound(req, res));
    }
    case 'serve-static': {
      const { default: serveStatic } = await import('serve-static');
      const h = serveStatic(dataDir);
      return (req, res) =>
        h(req, res, (err) => {
          if (err) onError(err);
          notFound(req, res);
        });
    }
    case 'express': {
      const { default: express } = await import('express');
      const { default: compression } = await import('compression');
      return express().use(compression()).use(express.static(dataDir));
    }
    case 'node-limit':
      return nodeLimit(dataDir);
    default:
      throw new Error(`unknown server kind ${kind}`);
  }
}

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mp4': 'video/mp4',
  '.zip': 'application/zip',
  '.json': 'application/json',
};

/** Node's limit: every file in memory, frozen headers, one lookup and writeHead(...).end(buffer) per request. */
function nodeLimit(dir) {
  const files = new Map();
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const st = statSync(path);
    if (!st.isFile()) continue;
    const data = readFileSync(path);
    const tag = createHash('sha1').update(data).digest('base64url').slice(0, 16);
    const type = TYPES[extname(name)] ?? 'application/octet-stream';
    const lastModified = st.mtime.toUTCString();
    const identity = {
      body: data,
      headers: Object.freeze({ 'content-type': type, 'content-length': String(data.length), etag: `"${tag}"`, 'last-modified': lastModified }),
    };
    let gzip;
    const gz = type.startsWith('text/') ? gzipSync(data, { level: 9 }) : undefined;
    if (gz && gz.length < data.length) {
      gzip = {
        body: gz,
        headers: Object.freeze({
          'content-type': type,
          'content-length': String(gz.length),
          'content-encoding': 'gzip',
          vary: 'Accept-Encoding',
          etag: `"${tag}-gz"`,
          'last-modified': lastModified,
        }),
      };
      // The identity response of a file that has a gzip form varies too.
      identity.headers = Object.freeze({ ...identity.headers, vary: 'Accept-Encoding' });
    }
    files.set(`/${name}`, Object.freeze({ identity, gzip }));
  }
  const missing = Object.freeze({ 'content-length': '0' });
  return (req, res) => {
    const f = files.get(req.url);
    if (f === undefined) {
      res.writeHead(404, missing).end();
      return;
    }
    const rep = f.gzip !== undefined && req.headers['accept-encoding']?.includes('gzip') ? f.gzip : f.identity;
    res.writeHead(200, rep.headers).end(rep.body);
  };
}

const listener = await makeListener();
const server = createServer((req, res) => {
  requests++;
  listener(req, res);
});

function exit() {
  if (counts.size) process.stdout.write(`COUNTS ${JSON.stringify({ requests, counts: Object.fromEntries(counts) })}\n`);
  process.exit(0);
}
process.on('SIGTERM', exit);
process.on('SIGINT', exit);
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  if (d.includes('stats')) {
    const zip = [...zipFops].map((z) => z.stats);
    process.stdout.write(`STATS ${JSON.stringify({ memory: process.memoryUsage(), zip })}\n`);
  }
  if (d.includes('exit')) exit();
});
// A count request resets the counters (after the verification request and warm-up).
process.on('SIGUSR2', () => {
  counts.clear();
  requests = 0;
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`PORT ${server.address().port}\n`);
});
