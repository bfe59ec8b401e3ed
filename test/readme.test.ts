/**
 * The README's examples run as written: every ```js block is saved inside the
 * package (so `import 'vfserve'` resolves to the built package by its own
 * name), run with node from the repository root, and must exit 0 and print
 * each of its `// → ` lines, in order. The table of contents between the
 * <!-- toc --> markers must be what scripts/readme-toc.mjs makes of the headings.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { root } from './helpers/fixtures.js';

const run = promisify(execFile);
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const blocks = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]!);
const outDir = join(root, '.build-test', 'readme');

describe('README examples run as written', () => {
  it('has examples to run', () => {
    assert.ok(blocks.length >= 7, `${blocks.length} js blocks`);
  });

  blocks.forEach((code, i) => {
    const title =
      code
        .split('\n')
        .find((l) => l.startsWith('import {'))
        ?.slice(0, 70) ?? `block ${i}`;
    it(`example ${i + 1}: ${title}`, async () => {
      mkdirSync(outDir, { recursive: true });
      const file = join(outDir, `example-${i + 1}.mjs`);
      writeFileSync(file, code);
      // Without NODE_TEST_CONTEXT the example's own node:test output is plain text.
      const env = { ...process.env };
      delete env.NODE_TEST_CONTEXT;
      const { stdout } = await run(process.execPath, [file], { cwd: root, timeout: 60_000, env });
      const printed = stdout.split('\n').map((l) => l.trim());
      const expected = [...code.matchAll(/^\/\/ → (.*)$/gm)].map((m) => m[1]!.trim());
      let at = 0;
      for (const line of expected) {
        const found = printed.indexOf(line, at);
        assert.ok(found >= 0, `example ${i + 1} did not print ${JSON.stringify(line)}; it printed:\n${stdout}`);
        at = found + 1;
      }
    });
  });
});

describe('README table of contents', () => {
  it('is up to date, and every [link](#anchor) names a heading (npm run readme:toc rewrites it)', async () => {
    const check = run(process.execPath, [join(root, 'scripts', 'readme-toc.mjs'), '--check'], { cwd: root, timeout: 30_000 });
    await check.catch((err: unknown) => {
      const stderr = (err as { stderr?: string }).stderr ?? '';
      assert.fail(stderr === '' ? String(err) : stderr);
    });
  });
});
