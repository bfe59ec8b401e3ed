// The README's table of contents, generated from its ## and ### headings (fenced code blocks skipped),
// between the <!-- toc --> and <!-- tocstop --> markers. Anchors are GitHub's: lower case, punctuation
// dropped, spaces to dashes, a repeated heading numbered -1, -2, …
//   node scripts/readme-toc.mjs           rewrite README.md in place
//   node scripts/readme-toc.mjs --check   exit 1 if it is stale or a [link](#anchor) names no heading
//                                         (test/readme.test.ts runs this)
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

const START = '<!-- toc -->';
const END = '<!-- tocstop -->';

/** GitHub's heading anchor (github-slugger): drop markup and punctuation, spaces become dashes. */
function slug(heading) {
  return heading
    .replace(/`([^`]*)`/g, '$1')
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/** Headings outside fenced code blocks: `{ level, text, anchor }`, anchors made unique as GitHub does. */
function headings(markdown) {
  const out = [];
  const seen = new Map();
  let fence = null;
  for (const line of markdown.split('\n')) {
    const f = /^(\s*)(`{3,}|~{3,})/.exec(line);
    if (f) {
      if (fence === null) fence = f[2];
      else if (f[2].startsWith(fence[0]) && f[2].length >= fence.length) fence = null;
      continue;
    }
    if (fence !== null) continue;
    const h = /^(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line);
    if (!h) continue;
    const base = slug(h[2]);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.push({ level: h[1].length, text: h[2], anchor: n === 0 ? base : `${base}-${n}` });
  }
  return out;
}

/** The README with its table of contents brought up to date. */
function withToc(markdown) {
  const start = markdown.indexOf(START);
  const end = markdown.indexOf(END);
  if (start < 0 || end < start) throw new Error(`README.md needs the markers ${START} and ${END}`);
  const lines = headings(markdown)
    .filter((h) => h.level === 2 || h.level === 3)
    .map((h) => `${h.level === 3 ? '  ' : ''}- [${h.text}](#${h.anchor})`);
  return `${markdown.slice(0, start + START.length)}\n\n${lines.join('\n')}\n\n${markdown.slice(end)}`;
}

const file = resolve('README.md');
const current = readFileSync(file, 'utf8');
const next = withToc(current);
if (process.argv.includes('--check')) {
  const anchors = new Set(headings(current).map((h) => h.anchor));
  const dangling = [...current.matchAll(/\]\(#([^)\s]+)\)/g)].map((m) => m[1]).filter((a) => !anchors.has(a));
  for (const a of new Set(dangling)) console.error(`README.md: the link to #${a} names no heading`);
  if (next !== current) console.error('README.md: the table of contents is stale; run `npm run readme:toc` and commit the result.');
  if (dangling.length > 0 || next !== current) process.exit(1);
} else if (next !== current) {
  writeFileSync(file, next);
  console.log('README.md: table of contents updated');
}
