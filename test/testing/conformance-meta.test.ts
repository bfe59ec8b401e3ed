/**
 * The conformance suite must be able to fail: each broken backend below, run
 * through it in a child process, must make it fail at the check it breaks.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { root } from '../helpers/fixtures.js';

const run = promisify(execFile);

const prelude = `
import { FopError, FopFlags, FopHandle, MemFops, assertFopPath } from 'vfserve';
import { describeFopsConformance } from 'vfserve/testing';
const data = Buffer.from('0123456789'.repeat(300));
class Broken extends FopHandle {
  constructor(fops, path, bug) { super(fops, path, { length: data.length, flags: FopFlags.VIRTUAL }); this.bug = bug; this.cursor = 0; }
  async readImpl(buf) {
    const at = this.bug === 'ignores-seek' ? this.cursor : this.pos; // lws's stored-entry bug
    const n = Math.min(buf.length, data.length - at);
    buf.set(data.subarray(at, at + n));
    this.cursor += n;
    return n;
  }
}
class BrokenFops {
  constructor(bug) { this.bug = bug; }
  async open(path) {
    if (this.bug === 'plain-errors') { if (path !== '/f.txt') throw new Error('nope'); }
    else { assertFopPath(path, 'open'); if (path !== '/f.txt') throw new FopError('NOT_FOUND', 'open', path); }
    return new Broken(this, path, this.bug);
  }
}
`;

const cases: Record<string, { code: string; failing: RegExp }> = {
  'seeks that are ignored (lws stored entries)': {
    code: `describeFopsConformance('x', () => ({ fops: new BrokenFops('ignores-seek'), files: { '/f.txt': data } }));`,
    failing: /seek/,
  },
  'plain Errors instead of FopError': {
    code: `describeFopsConformance('x', () => ({ fops: new BrokenFops('plain-errors'), files: { '/f.txt': data } }));`,
    failing: /NOT_FOUND|INVALID_PATH/,
  },
  'content that differs from what it claims': {
    code: `describeFopsConformance('x', () => ({ fops: new BrokenFops('none'), files: { '/f.txt': Buffer.concat([data.subarray(0, 5), Buffer.from('!'), data.subarray(6)]) } }));`,
    failing: /reads every file exactly/,
  },
  'a directory that opens': {
    code: `describeFopsConformance('x', () => ({ fops: new MemFops({ '/d': 'x', '/f.txt': data }), files: { '/f.txt': data }, dirs: ['/d'] }));`,
    failing: /directories/,
  },
};

describe('the conformance suite fails on broken backends', () => {
  const dir = join(root, '.build-test', 'meta');
  for (const [label, { code, failing }] of Object.entries(cases)) {
    it(label, async () => {
      mkdirSync(dir, { recursive: true });
      const file = join(dir, `${label.replace(/\W+/g, '-')}.mjs`);
      writeFileSync(file, prelude + code);
      const env = { ...process.env };
      delete env.NODE_TEST_CONTEXT;
      const result = await run(process.execPath, [file], { cwd: root, env, timeout: 60_000 }).then(
        ({ stdout }) => ({ failed: false, stdout }),
        (err: unknown) => ({ failed: true, stdout: (err as { stdout?: string }).stdout ?? '' }),
      );
      assert.equal(result.failed, true, `the suite passed a backend with ${label}`);
      const failures = result.stdout
        .split('\n')
        .filter((l) => /not ok/.test(l))
        .join('\n');
      assert.match(failures, failing, result.stdout);
    });
  }
});
