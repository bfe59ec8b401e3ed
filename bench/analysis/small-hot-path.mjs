// Analysis only (not part of `npm run bench`): where a 1 KiB response from disk spends its
// JavaScript time once everything is cached (resolution and small-content caches warm), in
// process, without sockets: the engine (canonicalisation, the two LRU lookups, validators,
// preconditions, header object), the adapter's request object, and the cost of handing the
// headers to node:http (setHeader per header then the implicit writeHead, as write() does,
// against writeHead(status, object) and writeHead(status, flat array)). Each stage is timed
// alone, best of --rounds rounds of --n iterations, in ns per request. Compare with the server's
// CPU per request under load (bench/http.mjs, "server µs/req") to see what is left for node:http
// parsing, the socket write and GC.
//
//   npm run build && taskset -c 1 node bench/analysis/small-hot-path.mjs [--n 200000] [--rounds 7] [--dist path/to/dist]
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { fmt, log, ROOT, table } from '../lib/common.mjs';
import { httpFixtures } from '../lib/httpgen.mjs';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const N = Number(arg('n', 200_000));
const ROUNDS = Number(arg('rounds', 7));
const DIST = resolve(arg('dist', join(ROOT, 'dist')));
const imp = (p) => import(pathToFileURL(join(DIST, p)).href);

const { createHandler, coreRequest } = await imp('mounts/handler.js');
const { canonicalizePath } = await imp('mounts/canonical.js');
const { makeEtag, httpDate, evaluatePreconditions } = await imp('cache/http.js');

const fixture = await httpFixtures();
const handler = createHandler({ mounts: [{ mountpoint: '/', origin: fixture.dir }], onError: (e) => console.error(e) });
const engine = handler.engine;

function fakeReq(url) {
  const req = new IncomingMessage(new Socket());
  req.method = 'GET';
  req.url = url;
  req.httpVersionMajor = 1;
  req.httpVersionMinor = 1;
  req.headers = { host: '127.0.0.1:8080', 'user-agent': 'wrk' };
  return req;
}
const req = fakeReq('/small.html');
const core = coreRequest(req);
const out = await engine.handle(core);
if (out.status !== 200 || !Buffer.isBuffer(out.body)) throw new Error(`unexpected response ${out.status}`);
const headers = { ...out.headers };
const frozen = Object.freeze({ ...headers });
const flat = Object.freeze(Object.entries(headers).flat());
log(`headers of the response (${Object.keys(headers).length}): ${JSON.stringify(headers)}`);

let sink = 0;
async function time(name, fn, { async = false } = {}) {
  let best = Infinity;
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.hrtime.bigint();
    if (async) for (let i = 0; i < N; i++) sink ^= (await fn()) ? 1 : 0;
    else for (let i = 0; i < N; i++) sink ^= fn() ? 1 : 0;
    const ns = Number(process.hrtime.bigint() - t0) / N;
    if (ns < best) best = ns;
  }
  return [name, best];
}

const rows = [];

// The engine, whole: the part the restructure owns.
rows.push(await time('engine.handle(core) awaited (cached resolution, cached 1 KiB)', () => engine.handle(core), { async: true }));
rows.push(await time('an empty async function awaited (promise floor)', async () => 1, { async: true }));
rows.push(await time('coreRequest(req) (adapter request object + closure)', () => coreRequest(req)));
rows.push(await time('canonicalizePath("/small.html")', () => canonicalizePath('/small.html')));
rows.push(await time('makeEtag({ size, mtime }) (spread argument as #send builds it)', () => makeEtag({ size: 1024, ...{ mtime: 1764445319123.4 } })));
rows.push(await time('httpDate(mtime)', () => httpDate(1764445319123)));
rows.push(
  await time('evaluatePreconditions (no If-* headers, 4 opt() spreads as #send)', () =>
    evaluatePreconditions(
      {
        method: 'GET',
        ...opt('ifMatch', core.header('if-match')),
        ...opt('ifNoneMatch', core.header('if-none-match')),
        ...opt('ifModifiedSince', core.header('if-modified-since')),
        ...opt('ifUnmodifiedSince', core.header('if-unmodified-since')),
      },
      { etag: '"400-19acc1f6b13"', lastModified: 1764445319123 },
    ),
  ),
);
rows.push(
  await time(
    'a template key like #key/#content build',
    () => `${'/'}\0${core.url}\0${''}`.length + `${fixture.dir}/small.html\0\0${1024}\0${1764445319123.4}\0`.length,
  ),
);
// Handing headers to node:http. Each creates a ServerResponse (node does that per request anyway; the
// first row is that floor) and builds the head string, without a socket.
rows.push(await time('new ServerResponse(req) (floor for the rows below)', () => new ServerResponse(req)));
rows.push(
  await time('  + statusCode, Object.entries + setHeader each, implicit writeHead (write() today)', () => {
    const res = new ServerResponse(req);
    res.statusCode = 200;
    for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
    res.writeHead(res.statusCode); // what end() does through _implicitHeader
    return res._header;
  }),
);
rows.push(
  await time('  + writeHead(200, headers object)', () => {
    const res = new ServerResponse(req);
    res.writeHead(200, headers);
    return res._header;
  }),
);
rows.push(
  await time('  + writeHead(200, frozen precomputed object) (node-limit)', () => {
    const res = new ServerResponse(req);
    res.writeHead(200, frozen);
    return res._header;
  }),
);
rows.push(
  await time('  + writeHead(200, frozen flat array [k, v, k, v])', () => {
    const res = new ServerResponse(req);
    res.writeHead(200, flat);
    return res._header;
  }),
);

log('');
log(`${N} iterations, best of ${ROUNDS} rounds, dist ${DIST}`);
log(
  table(
    ['stage', 'ns/request'],
    rows.map(([n, ns]) => [n, fmt(ns, 0)]),
    'lr',
  ),
);
if (sink === 42) log('');

function opt(key, value) {
  return value === undefined ? {} : { [key]: value };
}
