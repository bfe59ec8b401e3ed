// Checks that bench/lib/zipgen.mjs's streaming many-entry writer produces exactly
// the bytes of test/helpers/zip-writer.ts makeManyEntryZip (compiled with
// `npx tsc -p tsconfig.test.json`), below and above the zip64 threshold, and
// that ZipFops indexes the result. Usage: node bench/verify-gen.mjs [--no-compile]
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { dataPath, DIST, emitResult, isMain, log, ROOT } from './lib/common.mjs';
import { writeManyEntryZipTo } from './lib/zipgen.mjs';

export async function verifyGenerator({ compile = true } = {}) {
  if (compile) {
    execFileSync(process.platform === 'win32' ? 'npx.cmd' : 'npx', ['tsc', '-p', 'tsconfig.test.json'], { cwd: ROOT, stdio: 'inherit' });
  }
  const helpers = await import(pathToFileURL(join(ROOT, '.build-test', 'test', 'helpers', 'zip-writer.js')).href);
  const { ZipFops } = await import(pathToFileURL(DIST).href);
  const results = [];
  for (const count of [0, 1, 1000, 65535, 70000]) {
    const path = dataPath(`verify-${count}.zip`);
    writeManyEntryZipTo(path, count);
    const ours = readFileSync(path);
    const ref = helpers.makeManyEntryZip(count);
    const same = ours.equals(ref);
    let indexed = -1;
    if (count > 0) {
      const zf = new ZipFops();
      indexed = (await zf.index(path)).count;
      zf.clear(); // closes the archive handle
    }
    rmSync(path, { force: true });
    results.push({ count, bytes: ours.length, identical: same, indexed });
    log(
      `  ${String(count).padStart(6)} entries: ${ours.length} bytes, identical to makeManyEntryZip: ${same}${count > 0 ? `, ZipFops indexed ${indexed}` : ''}`,
    );
    if (!same || (count > 0 && indexed !== count)) throw new Error(`generator mismatch at ${count} entries`);
  }
  return results;
}

if (isMain(import.meta.url)) {
  log('verify-gen: streaming many-entry writer vs test/helpers/zip-writer.ts makeManyEntryZip');
  const results = await verifyGenerator({ compile: !process.argv.includes('--no-compile') });
  emitResult({ bench: 'verify-gen', ok: true, results });
}
