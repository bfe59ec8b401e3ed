// The fallback store of bench/remote.mjs when nginx is missing: the in-repo origin of the tests
// (test/helpers/range-origin.ts, compiled by `npx tsc -p tsconfig.test.json` into .build-test/),
// serving every file of <dir> from memory as /<name>, with Range, ETags and If-Match, no faults.
//
//   node bench/lib/range-origin-server.mjs <dir> <rangeOriginJs>
//
// Prints `PORT <n>`. Lines on stdin: `reload <name>` re-reads <dir>/<name> (the archive was
// replaced) and prints `RELOADED <name>`; `log` prints `LOG [[method, path, range, status,
// bytes], …]`, the requests since the last `log` (status and bytes are derived from the request:
// this origin keeps no response log). Exits on SIGTERM or SIGINT and when stdin ends.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [dir, helperJs] = process.argv.slice(2);
if (!dir || !helperJs) {
  console.error('usage: range-origin-server.mjs <dir> <rangeOriginJs>');
  process.exit(2);
}
const { startRangeOrigin } = await import(pathToFileURL(helperJs).href);
const objects = {};
for (const name of readdirSync(dir)) if (statSync(join(dir, name)).isFile()) objects[`/${name}`] = readFileSync(join(dir, name));
const origin = await startRangeOrigin(objects);
let logged = 0;

/** What the origin sent for one logged request, from its method and Range (it answers every range it can). */
function answer({ method, path, range }) {
  const body = origin.objects.get(path);
  if (!body) return [404, 0];
  if (method === 'HEAD') return [200, 0];
  if (range === undefined) return [200, body.length];
  const m = /^bytes=(\d*)-(\d*)$/.exec(range);
  if (!m) return [416, 0];
  if (m[1] === '') return [206, Math.min(Number(m[2]), body.length)];
  const start = Number(m[1]);
  const end = m[2] === '' ? body.length - 1 : Math.min(Number(m[2]), body.length - 1);
  return start > end ? [416, 0] : [206, end - start + 1];
}

const exit = () => {
  void origin.close().finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
};
process.on('SIGTERM', exit);
process.on('SIGINT', exit);
process.stdin.setEncoding('utf8');
let buf = '';
process.stdin.on('data', (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf('\n')) >= 0) {
    const line = buf.slice(0, i).trim();
    buf = buf.slice(i + 1);
    if (line.startsWith('reload ')) {
      const name = line.slice(7);
      origin.objects.set(`/${name}`, readFileSync(join(dir, name)));
      process.stdout.write(`RELOADED ${name}\n`);
    } else if (line === 'log') {
      const rows = origin.log.slice(logged).map((r) => [r.method, r.path, r.range ?? '-', ...answer(r)]);
      logged = origin.log.length;
      process.stdout.write(`LOG ${JSON.stringify(rows)}\n`);
    }
  }
});
process.stdin.on('end', exit);
process.stdin.on('error', exit);
process.stdout.write(`PORT ${new URL(origin.url).port}\n`);
