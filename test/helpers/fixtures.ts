import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

/** The repository root (tests run from it; compiled tests live in .build-test/). */
export const root = resolve(process.cwd());

/** A path under test/fixtures. */
export function fixture(...parts: string[]): string {
  return join(root, 'test', 'fixtures', ...parts);
}

/** Deterministic pseudo-random bytes (xorshift), for incompressible content. */
export function noise(length: number, seed = 1): Buffer {
  const out = Buffer.alloc(length);
  let x = seed | 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Compressible, text-like content of `length` bytes. */
export function prose(length: number): Buffer {
  const words = ['candide', 'pangloss', 'garden', 'best', 'of', 'all', 'possible', 'worlds', 'cultivate', 'our'];
  let s = '';
  for (let i = 0; s.length < length; i++) s += words[(i * 7 + (i >> 3)) % words.length]! + (i % 13 === 12 ? '.\n' : ' ');
  return Buffer.from(s.slice(0, length));
}

/** Log-like text with enough variety that zlib emits many blocks of every kind (deterministic per seed). */
export function logText(length: number, seed = 7): Buffer {
  const words = ['alpha', 'beta', 'gamma', 'delta', '/api/v1/users', 'GET', 'POST', '200', '404', 'Mozilla/5.0'];
  let s = seed;
  const next = (): number => (s = (s * 1103515245 + 12345) & 0x7fffffff);
  const parts: string[] = [];
  let len = 0;
  while (len < length) {
    const line = `${words[next() % words.length]!} ${next() % 100000} ${words[next() % words.length]!}\n`;
    parts.push(line);
    len += line.length;
  }
  return Buffer.from(parts.join('')).subarray(0, length);
}

/** The sample tree every backend serves in the conformance runs (relative names). */
export function sampleTree(): Record<string, Buffer> {
  return {
    'hello.txt': Buffer.from('hello, world\n'),
    'empty.txt': Buffer.alloc(0),
    no_ext: Buffer.from('no extension here'),
    'snow ☃/flake.txt': Buffer.from('a unicode directory ☃\n'),
    'sub/deeper/page.html': prose(5000),
    'big-prose.txt': prose(300_000),
    'noise.bin': noise(70_000),
  };
}

/** A fresh temporary directory; remove it with `rmTree`. */
export function tmpDir(prefix = 'vfserve-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function rmTree(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Writes `files` (relative names) under `dir`. */
export function writeTree(dir: string, files: Record<string, Uint8Array>): void {
  for (const [name, data] of Object.entries(files)) {
    const p = join(dir, name);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, data);
  }
}

/** Prefixes every key of `files` with `prefix` + '/'. */
export function under<T>(prefix: string, files: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(files).map(([k, v]) => [`${prefix}/${k}`, v]));
}
