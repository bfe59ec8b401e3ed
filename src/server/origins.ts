/**
 * Start-up checks of file origins: a server refuses to start (or to reload)
 * with an origin that does not exist or an archive that cannot be read,
 * rather than answer 404 or 500 for everything under it.
 */
import { constants as fsConstants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { CONTAINER_SIGNATURES } from '../fops/container.js';
import { FopError } from '../fops/errors.js';
import { fopStat } from '../fops/helpers.js';
import { PlatFops } from '../fops/plat.js';
import { Vfs } from '../fops/vfs.js';
import { ZipFops, type ZipIndexEvent } from '../fops/zip/zip-fops.js';

/**
 * Why the file origin at `path` (an absolute path) cannot be served, or
 * undefined when it can: it does not exist, or it is (or lies in) an archive
 * whose index cannot be read (corrupt, unsupported, over a limit), an archive
 * inside an archive included (`/srv/app.war/WEB-INF/lib/lib.jar`, nested no
 * deeper than `maxDepth`). Read with the default zip limits, as the engine reads it.
 * `onIndex` hears about the archives indexed on the way (see `ZipFopsOptions.onIndex`).
 */
export async function originDefect(path: string, onIndex?: (event: ZipIndexEvent) => void): Promise<string | undefined> {
  const base = new PlatFops();
  const zip = new ZipFops({ source: base, ...(onIndex ? { onIndex } : {}) });
  const vfs = new Vfs({ base, containers: [zip] });
  try {
    const st = await fopStat(vfs, path); // an archive on the way is indexed here
    const lower = `${path.toLowerCase()}/`;
    // The origin is the archive itself (a file, or an entry of an outer archive): stat saw only that, so index it.
    if (st.type === 'file' && CONTAINER_SIGNATURES.some((sig) => lower.endsWith(sig))) await zip.index(path);
    return undefined;
  } catch (err) {
    if (FopError.is(err, 'NOT_FOUND')) return `${path} does not exist`;
    if (FopError.is(err)) return `${path} cannot be served: ${err.code} ${err.message}`;
    return `${path} cannot be served: ${err instanceof Error ? err.message : String(err)}`;
  } finally {
    await zip.close();
  }
}

/**
 * Why the CGI program at `program` (an absolute path) cannot be run, or undefined when it can: it
 * does not exist, is not a regular file, or is not executable by this process. `chdir`, the
 * working directory it would run in, must be a directory.
 */
export async function cgiDefect(program: string, chdir?: string): Promise<string | undefined> {
  try {
    const st = await stat(program);
    if (!st.isFile()) return `${program} is not a file`;
    await access(program, fsConstants.X_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return `${program} does not exist`;
    if (code === 'EACCES') return `${program} is not executable (chmod +x)`;
    return `${program} cannot be run (${code ?? 'error'})`;
  }
  if (chdir !== undefined) {
    const st = await stat(chdir).catch(() => undefined);
    if (st?.isDirectory() !== true) return `the working directory ${chdir} does not exist`;
  }
  return undefined;
}
