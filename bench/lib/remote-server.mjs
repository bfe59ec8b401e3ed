// One vfserve server of the remote-archive benchmark (bench/remote.mjs), in its own process so
// that it shares no event loop with the store, the load generator or the script.
//
//   node --expose-gc bench/lib/remote-server.mjs <distIndexJs> <json>
//
// json: { "mounts": [{ "mountpoint": "/", "origin": "range+http://127.0.0.1:8080/site.zip" }, …],
//         "remote": { "cacheBytes": 16777216, … } }: createHandler's `mounts` and `remote` options,
// unchanged (a local path as the origin serves the same archive from disk).
//
// Listens on 127.0.0.1 port 0 and prints `PORT <n>`. A line `stats` on stdin prints
// `STATS {json}` after a full GC (when --expose-gc is given): process.memoryUsage(), the client
// requests answered, and the sum of `stats` (requests, bytesFetched, cachedBytes) over the
// HttpRangeFops instances the engine used. Those are found by wrapping the prototype's open and
// stat in this process only, so no route or hook in src/ is needed; `remote.instances` is 0 when
// the class is not exported or never used (a disk-only server). Exits on SIGTERM or SIGINT, and
// when stdin ends (the benchmark died: no orphans). Errors go to stderr as `[remote-server] …`.
import { createServer } from 'node:http';
import { pathToFileURL } from 'node:url';
import { answerLineProtocol } from './proc.mjs';

const [distIndex, json] = process.argv.slice(2);
if (!distIndex || !json) {
  console.error('usage: remote-server.mjs <distIndexJs> <json>');
  process.exit(2);
}
const config = JSON.parse(json);
const lib = await import(pathToFileURL(distIndex).href);

const instances = new Set();
const proto = lib.HttpRangeFops?.prototype;
if (proto) {
  for (const name of ['open', 'stat']) {
    const orig = proto[name];
    if (typeof orig !== 'function') continue;
    proto[name] = function wrapped(...args) {
      instances.add(this);
      return orig.apply(this, args);
    };
  }
}

let requests = 0;
const handler = lib.createHandler({
  mounts: config.mounts,
  ...(config.remote ? { remote: config.remote } : {}),
  onError: (err) => console.error('[remote-server] error:', err?.message ?? err),
});
const server = createServer((req, res) => {
  requests++;
  handler(req, res);
});
server.keepAliveTimeout = 30_000;
server.headersTimeout = 31_000;

answerLineProtocol({
  stats: () => {
    if (typeof globalThis.gc === 'function') for (let i = 0; i < 3; i++) globalThis.gc();
    const remote = { instances: instances.size, requests: 0, bytesFetched: 0, cachedBytes: 0 };
    for (const f of instances) {
      const s = f.stats;
      remote.requests += s?.requests ?? 0;
      remote.bytesFetched += s?.bytesFetched ?? 0;
      remote.cachedBytes += s?.cachedBytes ?? 0;
    }
    return { memory: process.memoryUsage(), requests, remote };
  },
  close: () => void handler.close?.(),
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`PORT ${server.address().port}\n`));
