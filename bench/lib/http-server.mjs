// One static-file server for the HTTP load benchmark (bench/http.mjs), run in
// its own process so it never shares an event loop with the load generator.
//
//   node bench/lib/http-server.mjs <kind> <dataDir> <distIndexJs>
//
// kind: vfs-disk | vfs-disk-noprecomp | vfs-zip | sirv | serve-static | express
// Listens on 127.0.0.1, port 0, and prints `PORT <n>` on stdout. SIGTERM (or a
// line `exit` on stdin) exits cleanly, so `--cpu-prof` can write its profile.
// With BENCH_COUNT_ASYNC=1 it counts async resources created per request by
// type (FSREQPROMISE, FSREQCALLBACK, ...) and prints `COUNTS {json}` on exit.
import { createServer } from 'node:http';
import { createHook } from 'node:async_hooks';
import { pathToFileURL } from 'node:url';

const [kind, dataDir, distIndex] = process.argv.slice(2);
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
const notFound = (_req, res) => {
  res.statusCode = 404;
  res.end();
};

async function makeListener() {
  switch (kind) {
    case 'vfs-disk':
    case 'vfs-disk-noprecomp':
    case 'vfs-zip': {
      const { createHandler } = await import(pathToFileURL(distIndex).href);
      const mount =
        kind === 'vfs-zip'
          ? { mountpoint: '/', origin: `${dataDir}/site.zip` }
          : kind === 'vfs-disk-noprecomp'
            ? { mountpoint: '/', origin: dataDir, precompressed: false }
            : { mountpoint: '/', origin: dataDir };
      return createHandler({ mounts: [mount], onError });
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
    default:
      throw new Error(`unknown server kind ${kind}`);
  }
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
