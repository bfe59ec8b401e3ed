// Runs every compiled *.test.js under .build-test with node's own test runner.
// `node --test <dir>` is avoided on purpose: Node 20 takes paths, Node 21+ takes globs.
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { run } from 'node:test';
import { spec } from 'node:test/reporters';

const root = resolve('.build-test', 'test');
const only = process.argv.slice(2);
const files = readdirSync(root, { recursive: true })
  .map(String)
  .filter((f) => f.endsWith('.test.js'))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort()
  .map((f) => join(root, f));

if (files.length === 0) {
  console.error('no test files found under', root);
  process.exit(1);
}

const stream = run({ files, concurrency: 2, timeout: 240_000 });
stream.on('test:fail', () => {
  process.exitCode = 1;
});
stream.compose(spec).pipe(process.stdout);
