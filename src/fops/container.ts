import { FopError } from './errors.js';
import { fopStat } from './helpers.js';
import { signatureSplits } from './path.js';
import type { FileOps, FopStat } from './types.js';

/** The container signatures entered by default: zip, jar and war archives (lower-case, each with its trailing `/`). */
export const CONTAINER_SIGNATURES: readonly string[] = Object.freeze(['.zip/', '.jar/', '.war/']);

/** Where a path enters a container: the container's path, the member inside it, and the container's stat. */
export interface ContainerLocation {
  readonly container: string;
  /** Relative and canonical; `''` for the container's root. */
  readonly member: string;
  readonly stat: FopStat;
}

/**
 * Finds the container a canonical `path` enters: the first segment ending in
 * one of `signatures` (ASCII-case-insensitive, see {@link signatureSplits})
 * whose prefix `base` stats as a file. A directory called `x.zip` is passed
 * over and the search goes on; anything else that is not a file rejects with
 * `NOT_FOUND`. Resolves undefined when no signature names a file (the path is
 * the base's). Stat errors are rethrown as FopErrors for `op` on `path`.
 * Paths without a signature cost no stat.
 */
export async function locateContainer(base: FileOps, path: string, signatures: readonly string[], op: string): Promise<ContainerLocation | undefined> {
  for (const split of signatureSplits(path, signatures)) {
    const container = path.slice(0, split);
    let stat: FopStat;
    try {
      stat = await fopStat(base, container);
    } catch (err) {
      if (FopError.is(err)) throw new FopError(err.code, op, path, undefined, { cause: err });
      throw err;
    }
    if (stat.type === 'directory') continue; // a directory called x.zip is a directory
    if (stat.type !== 'file') throw new FopError('NOT_FOUND', op, path, 'not a file where a container was named');
    return { container, member: path.slice(split + 1), stat };
  }
  return undefined;
}
