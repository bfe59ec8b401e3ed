// Runs the compiled test suite (npm run pretest first) on the oldest Node that package.json's engines
// allows, not on the Node running this script. That Node comes from the npm registry, where each release
// is published as the package node-<platform>-<arch> (the binary the `node` package installs), and is
// kept under node_modules/.cache/vfserve-node-min/. Arguments filter test files, as for scripts/run-tests.mjs.
//   npm run test:node-min            the whole suite
//   npm run test:node-min -- readme  only the files whose path contains "readme"
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';

const engines = JSON.parse(readFileSync('package.json', 'utf8')).engines?.node ?? '';
const m = /^>=\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?$/.exec(engines.trim());
if (!m) {
  console.error(`test-node-min: engines.node is ${JSON.stringify(engines)}, expected ">=X.Y" or ">=X.Y.Z"`);
  process.exit(2);
}
const version = `${m[1]}.${m[2] ?? 0}.${m[3] ?? 0}`;
if (process.platform !== 'linux' && process.platform !== 'darwin') {
  console.error(`test-node-min: no registry package for ${process.platform}`);
  process.exit(2);
}
const pkg = `node-${process.platform}-${process.arch}`;
const dir = resolve('node_modules', '.cache', 'vfserve-node-min', version);
const bin = join(dir, 'package', 'bin');
const node = join(bin, 'node');

if (!existsSync(node)) {
  mkdirSync(dir, { recursive: true });
  console.log(`test-node-min: fetching ${pkg}@${version} from the npm registry`);
  const tgz = execFileSync('npm', ['pack', `${pkg}@${version}`, '--pack-destination', dir, '--silent'], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .pop();
  execFileSync('tar', ['xzf', join(dir, tgz), '-C', dir]);
}
const actual = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
if (actual !== `v${version}`) {
  console.error(`test-node-min: ${node} is ${actual}, not v${version}`);
  process.exit(2);
}
console.log(`test-node-min: running the suite on Node ${actual} (engines: ${engines})`);
try {
  // PATH first, so anything the tests start as `node` is this Node too.
  execFileSync(node, ['scripts/run-tests.mjs', ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, PATH: `${bin}${delimiter}${process.env.PATH ?? ''}` },
  });
} catch {
  process.exit(1);
}
