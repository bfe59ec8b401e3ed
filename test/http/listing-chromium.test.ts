/**
 * The listing in a real browser: scripts/check-listing.mjs serves a tree with hostile names on
 * 127.0.0.1, loads it in headless Chromium (DOM dump and light/dark screenshots) and checks the
 * entries, the escaping, that no script exists or ran, and that dark mode follows the system.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { it } from 'node:test';
import { root } from '../helpers/fixtures.js';

const browser = process.env.CHROMIUM ?? 'chromium';
const present = spawnSync(browser, ['--version'], { stdio: 'ignore' }).status === 0;
// Skipped only on a developer's machine without the browser, as the issue allows; under CI
// (.ci/run installs chromium or stops) it always runs, so a missing browser fails it there.
const skip = present || process.env.CI !== undefined ? false : `${browser} is not installed (apt-get install chromium); the browser check did not run`;

it('renders in headless Chromium: entries shown, names escaped, no script, dark mode followed', { skip }, async () => {
  const out = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [join(root, 'scripts', 'check-listing.mjs')], { timeout: 180_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    );
  });
  assert.equal(out.code, 0, `${out.stdout}\n${out.stderr}`);
  assert.match(out.stdout, /ok +no script ran/);
  assert.doesNotMatch(out.stdout, /FAIL/);
});
