// One process of the reverse-proxy benchmark (bench/proxy.mjs): the upstream, or one proxy in
// front of it, each in its own process so none shares an event loop with another or with wrk.
//
//   node bench/lib/proxy-server.mjs upstream
//   node bench/lib/proxy-server.mjs <vfserve|fastify-http-proxy|http-proxy-3> <upstream origin> <distIndexJs>
//
// upstream: node:http answering `GET /bytes/<n>` (0 < n <= 16 MiB) with n bytes (byte i is
// i % 251, so a shifted or truncated body never compares equal), content-type
// application/octet-stream and content-length, from a Buffer built once per n;
// anything else is 404. Keep-alive: server.keepAliveTimeout 30 s (Node's default, 5 s, could
// close a pooled connection a proxy is about to reuse between the check and the load; no
// proxy here idles that long under load). A line `stats` on stdin prints
// `STATS {"connections":n,"requests":m}` (counted since the start).
//
// The proxies forward every path, unchanged, to the upstream origin:
//   vfserve             createHandler({ mounts: [{ mountpoint: '/', origin }] }) on node:http: its own
//                       per-origin pool (ProxyPools), defaults.
//   fastify-http-proxy  fastify({ logger: false }) + @fastify/http-proxy { upstream }: @fastify/reply-from's
//                       undici Agent, defaults (keep-alive, pipelining 1, up to 128 connections per origin).
//   http-proxy-3        createProxyServer({ target, agent: new http.Agent({ keepAlive: true }) }) on node:http,
//                       with an `error` handler answering 502 (without an agent it sends Connection: close
//                       upstream and opens a connection per request).
//
// Every process listens on 127.0.0.1 port 0 and prints `PORT <n>`. It exits on SIGTERM or
// SIGINT, and when its stdin ends (the benchmark died without killing it: no orphans).
// Errors are printed on stderr as `[<kind>] error: ...`.
import { Agent, createServer } from 'node:http';
import { pathToFileURL } from 'node:url';
import { answerLineProtocol } from './proc.mjs';

const [kind, origin, distIndex] = process.argv.slice(2);
const onError = (err) => console.error(`[${kind}] error:`, err?.message ?? err);

let connections = 0;
let requests = 0;
let closeHook = () => undefined;

answerLineProtocol({ stats: () => ({ connections, requests }), close: () => closeHook() });

const listening = (server) => process.stdout.write(`PORT ${server.address().port}\n`);

function upstream() {
  const bodies = new Map();
  const notFound = Object.freeze({ 'content-length': '0' });
  const server = createServer((req, res) => {
    requests++;
    const m = /^\/bytes\/(\d+)$/.exec(req.url);
    const n = m ? Number(m[1]) : 0;
    if (req.method !== 'GET' || !(n > 0 && n <= 16 * 1024 * 1024)) {
      res.writeHead(404, notFound).end();
      return;
    }
    let b = bodies.get(n);
    if (b === undefined) {
      const body = Buffer.allocUnsafe(n);
      for (let i = 0; i < n; i++) body[i] = i % 251;
      b = { body, headers: Object.freeze({ 'content-type': 'application/octet-stream', 'content-length': String(n) }) };
      bodies.set(n, b);
    }
    res.writeHead(200, b.headers).end(b.body);
  });
  server.keepAliveTimeout = 30_000;
  server.headersTimeout = 31_000;
  server.on('connection', () => connections++);
  server.listen(0, '127.0.0.1', () => listening(server));
}

async function vfserve() {
  const { createHandler } = await import(pathToFileURL(distIndex).href);
  const handler = createHandler({ mounts: [{ mountpoint: '/', origin }], onError });
  const server = createServer((req, res) => {
    requests++;
    handler(req, res);
  });
  closeHook = () => void handler.close?.();
  server.listen(0, '127.0.0.1', () => listening(server));
}

async function fastifyHttpProxy() {
  const { default: Fastify } = await import('fastify');
  const { default: proxy } = await import('@fastify/http-proxy');
  const app = Fastify({ logger: false });
  app.addHook('onRequest', (_req, _reply, done) => {
    requests++;
    done();
  });
  await app.register(proxy, { upstream: origin, http2: false });
  await app.listen({ host: '127.0.0.1', port: 0 });
  closeHook = () => void app.close();
  listening(app.server);
}

async function httpProxy3() {
  const { createProxyServer } = await import('http-proxy-3');
  const agent = new Agent({ keepAlive: true });
  const proxy = createProxyServer({ target: origin, agent });
  proxy.on('error', (err, _req, res) => {
    onError(err);
    // res is a ServerResponse for web requests (a Socket only for upgrades, which this bench makes none of).
    if (res && typeof res.writeHead === 'function' && !res.headersSent) res.writeHead(502, { 'content-length': '0' }).end();
    else res?.destroy?.();
  });
  const server = createServer((req, res) => {
    requests++;
    proxy.web(req, res);
  });
  closeHook = () => agent.destroy();
  server.listen(0, '127.0.0.1', () => listening(server));
}

const KINDS = { upstream, vfserve, 'fastify-http-proxy': fastifyHttpProxy, 'http-proxy-3': httpProxy3 };
const start = KINDS[kind];
if (!start || (kind !== 'upstream' && !origin)) {
  console.error(`usage: proxy-server.mjs upstream | <${Object.keys(KINDS).slice(1).join('|')}> <upstream origin> <distIndexJs>`);
  process.exit(2);
}
await start();
