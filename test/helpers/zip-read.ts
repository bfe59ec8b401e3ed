import { readAll, type ZipFops } from '../../src/index.js';

/** The whole of an archive entry as text, its handle closed whatever happens. */
export async function entryText(zip: ZipFops, path: string): Promise<string> {
  const fd = await zip.open(path);
  try {
    return (await readAll(fd)).toString();
  } finally {
    await fd.close();
  }
}
