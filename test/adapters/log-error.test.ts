// The default onError: one line per FopError, naming what lies under it (a remote store's refusal
// under an archive's I/O error), each cause once.
import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import { FopError, logError } from '../../src/index.js';

function logged(err: unknown): string[] {
  const lines: string[] = [];
  const spy = mock.method(console, 'error', (...args: unknown[]) => {
    lines.push(args.map(String).join(' '));
  });
  try {
    logError(err);
  } finally {
    spy.mock.restore();
  }
  return lines;
}

describe('logError', () => {
  it('prints a FopError in one line with the messages of its causes, each once', () => {
    const refused = new Error('connect ECONNREFUSED 127.0.0.1:1');
    const store = new FopError('IO', 'stat', '/a/site.zip', `request failed: ${refused.message}`, { cause: refused });
    const entry = new FopError('IO', 'stat', '/site.zip/index.html', undefined, { cause: store });
    const lines = logged(entry);
    assert.equal(lines.length, 1);
    assert.equal(lines[0], 'vfserve: IO stat "/site.zip/index.html": I/O error (stat "/a/site.zip": request failed: connect ECONNREFUSED 127.0.0.1:1)');
  });

  it('prints a FopError without a cause as it is', () => {
    assert.deepEqual(logged(new FopError('NOT_FOUND', 'open', '/x')), ['vfserve: NOT_FOUND open "/x": no such file']);
  });
});
