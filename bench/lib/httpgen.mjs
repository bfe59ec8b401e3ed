// Fixtures for the HTTP load benchmark (bench/http.mjs), generated once into
// bench/.data/http/ and reused: three plain files and the same three inside
// site.zip. Everything is deterministic; fixtures.json records the version and
// SHA-256 of every file, and a mismatch (or a missing file) regenerates them.
//
//   small.html  1 KiB of HTML                       zip: deflated
//   app.js      100 KiB of JavaScript-like text     zip: deflated (level 6), ~4:1
//   big.mp4     10 MiB of pseudo-random bytes       zip: stored
//
// The suffixes are on vfserve's mimetype whitelist (an unknown suffix such as
// .bin is refused with 403), and every server serves the same names.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DATA_DIR, MiB } from './common.mjs';
import { randomChunks, ZipWriter } from './zipgen.mjs';

export const HTTP_GEN_VERSION = 1;
export const HTTP_DIR = join(DATA_DIR, 'http');
export const SMALL_SIZE = 1024;
export const JS_SIZE = 100 * 1024;
export const BIG_SIZE = 10 * MiB;

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Exactly 1 KiB of HTML. */
export function smallHtml() {
  const head =
    '<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8"><title>vfserve bench</title>\n<link rel="stylesheet" href="/app.css"></head>\n<body>\n<main>\n<h1>Small page</h1>\n';
  const tail = '</main>\n<script type="module" src="/app.js"></script>\n</body>\n</html>\n';
  const rnd = mulberry32(1);
  let body = '';
  while (head.length + body.length + tail.length < SMALL_SIZE) {
    const n = 3 + Math.floor(rnd() * 9);
    body += `<p>Paragraph ${Math.floor(rnd() * 1000)} with ${n} words of filler text.</p>\n`;
  }
  const s = (head + body).slice(0, SMALL_SIZE - tail.length) + tail;
  const buf = Buffer.from(s, 'latin1');
  if (buf.length !== SMALL_SIZE) throw new Error('smallHtml: wrong size');
  return buf;
}

/**
 * Exactly 100 KiB of JavaScript-like text: functions built from a vocabulary of
 * identifiers, string literals and numbers, so deflate gets the ~4:1 that
 * real, unminified bundles get.
 */
export function appJs(size = JS_SIZE) {
  const rnd = mulberry32(42);
  const pick = (arr) => arr[Math.floor(rnd() * rnd() * arr.length)];
  const syll = ['ba', 'ce', 'di', 'fo', 'gu', 'ha', 'je', 'ki', 'lo', 'mu', 'na', 'pe', 'qi', 'ro', 'su', 'ta', 've', 'wi', 'xo', 'yu', 'ze'];
  const word = () => {
    let w = '';
    const n = 1 + Math.floor(rnd() * 3);
    for (let i = 0; i < n; i++) w += syll[Math.floor(rnd() * syll.length)];
    return w;
  };
  const camel = (a, b) => a + b[0].toUpperCase() + b.slice(1);
  const ids = Array.from({ length: 400 }, () => camel(word(), word()));
  const props = ['length', 'map', 'filter', 'reduce', 'push', 'id', 'name', 'value', 'items', 'children', 'state', 'props', 'then', 'catch', 'key', 'type'];
  const strs = Array.from({ length: 120 }, () => `${word()}-${word()}`);
  const num = () => String(Math.floor(rnd() * 10000));
  const stmt = (ind) => {
    const r = rnd();
    const a = pick(ids);
    const b = pick(ids);
    if (r < 0.2)
      return `${ind}const ${a} = ${b}.${pick(props)}((${pick(['x', 'item', 'el', 'v'])}) => ${pick(ids)}(${pick(['x', 'item', 'el', 'v'])}, ${num()}));\n`;
    if (r < 0.35) return `${ind}if (${a}.${pick(props)} > ${num()}) return ${b}(${a}, '${pick(strs)}');\n`;
    if (r < 0.5) return `${ind}${a}.${pick(props)} = { id: ${num()}, name: '${pick(strs)}', ${pick(props)}: ${b} };\n`;
    if (r < 0.62) return `${ind}for (let i = 0; i < ${a}.length; i++) ${b}.push(${a}[i] * ${num()} + ${num()});\n`;
    if (r < 0.74) return `${ind}let ${a} = await ${b}.${pick(props)}('${pick(strs)}', ${num()});\n`;
    if (r < 0.84) return `${ind}// ${word()} ${word()} ${pick(ids)} ${word()} ${num()}\n`;
    return `${ind}${a}(${b}, ${pick(ids)}, '${pick(strs)}');\n`;
  };
  let out = "'use strict';\n";
  while (out.length < size) {
    const name = pick(ids);
    const args = [pick(ids), pick(ids)].join(', ');
    out += `${rnd() < 0.3 ? 'export ' : ''}${rnd() < 0.4 ? 'async ' : ''}function ${name}${Math.floor(rnd() * 100)}(${args}) {\n`;
    const n = 3 + Math.floor(rnd() * 8);
    for (let i = 0; i < n; i++) out += stmt('  ');
    out += `  return ${pick(ids)};\n}\n\n`;
  }
  out = out.slice(0, size - 1) + '\n';
  const buf = Buffer.from(out, 'latin1');
  if (buf.length !== size) throw new Error('appJs: wrong size');
  return buf;
}

export function bigBin() {
  return Buffer.concat([...randomChunks(BIG_SIZE, 'http-big')]);
}

const sha = (b) => createHash('sha256').update(b).digest('hex');

/** The files, with their zip method: small.html and app.js deflated, big.mp4 stored. */
export function httpFiles() {
  return [
    { name: 'small.html', data: smallHtml(), deflate: true },
    { name: 'app.js', data: appJs(), deflate: true },
    { name: 'big.mp4', data: bigBin(), deflate: false },
  ];
}

/**
 * Ensures bench/.data/http/ holds the three files and site.zip. Returns
 * { dir, zip, files: [{ name, size, sha256, zip: { method, csize } }] }.
 */
export async function httpFixtures() {
  const manifestPath = join(HTTP_DIR, 'fixtures.json');
  const files = httpFiles();
  if (existsSync(manifestPath)) {
    try {
      const m = JSON.parse(readFileSync(manifestPath, 'utf8'));
      const ok =
        m.version === HTTP_GEN_VERSION &&
        existsSync(join(HTTP_DIR, 'site.zip')) &&
        files.every((f) => {
          const e = m.files.find((x) => x.name === f.name);
          return e && e.sha256 === sha(f.data) && existsSync(join(HTTP_DIR, f.name)) && sha(readFileSync(join(HTTP_DIR, f.name))) === e.sha256;
        });
      if (ok) return { dir: HTTP_DIR, zip: join(HTTP_DIR, 'site.zip'), files: m.files };
    } catch {
      // regenerate below
    }
  }
  // Build into a temporary directory and swap it in, so an interrupted run never leaves a half set.
  const tmp = `${HTTP_DIR}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const z = new ZipWriter(join(tmp, 'site.zip'));
  const out = [];
  for (const f of files) {
    writeFileSync(join(tmp, f.name), f.data);
    let zipInfo;
    if (f.deflate) {
      const r = await z.addDeflated(f.name, [f.data], { level: 6 });
      zipInfo = { method: 8, csize: r.csize };
    } else {
      z.addStored(f.name, [f.data]);
      zipInfo = { method: 0, csize: f.data.length };
    }
    out.push({ name: f.name, size: f.data.length, sha256: sha(f.data), zip: zipInfo });
  }
  z.close();
  writeFileSync(join(tmp, 'fixtures.json'), JSON.stringify({ version: HTTP_GEN_VERSION, files: out }, null, 2));
  // Keep nothing else of an old directory (profiles, the dist snapshot): they are regenerated too.
  rmSync(HTTP_DIR, { recursive: true, force: true });
  renameSync(tmp, HTTP_DIR);
  return { dir: HTTP_DIR, zip: join(HTTP_DIR, 'site.zip'), files: out };
}
