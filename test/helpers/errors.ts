import assert from 'node:assert/strict';
import { FopError } from '../../src/index.js';

/** What `p` settles to, as a FopError code or `'ok'`; anything but a FopError fails the test. */
export async function fopErrorCode(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    assert.ok(FopError.is(err), String(err));
    return err.code;
  }
}
