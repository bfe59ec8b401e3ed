#!/usr/bin/env node
// Checks the directory listing in a real browser: starts a vfserve handler with `listing` on over a
// temporary tree (hostile names included), loads it in headless Chromium (--dump-dom) and checks the
// DOM holds the entries, escaped, and no script element or injected markup; then takes a light and a
// dark screenshot (--force-dark-mode makes Chromium report prefers-color-scheme: dark) and checks
// their background colours. Exit status 0 when every check passes, 1 otherwise, 2 without Chromium.
//
//   node scripts/check-listing.mjs [--out DIR]   # screenshots to DIR (default: a temporary directory)
//   node scripts/check-listing.mjs --out docs    # refreshes docs/listing.png and docs/listing-dark.png
//
// Needs dist/ (npm run build). The browser is $CHROMIUM, else `chromium` on the PATH.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inflateSync } from 'node:zlib';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { createHandler } = await import(join(repo, 'dist', 'index.js'));
const browser = process.env.CHROMIUM ?? 'chromium';
const outArg = process.argv.indexOf('--out');
const work = mkdtempSync(join(tmpdir(), 'vfserve-listing-check-'));
const out = outArg > 0 ? resolve(process.argv[outArg + 1] ?? '.') : work;

// An injection attempt that is a legal file name (no slash): it must show as text, never as markup.
const HOSTILE = `<img src=x onerror="document.title='pwned'">.txt`;
const names = {
  'README.md': '# Read me\n',
  'index.css': 'body{}',
  'photo.png': Buffer.alloc(180_000, 1),
  'notes & "quotes" ☃.txt': 'quoted\n',
  [HOSTILE]: 'hostile\n',
  'docs/guide.html': '<p>guide</p>',
  'src/app.js': 'export {}',
  '.env': 'SECRET=1',
  'deploy.sh': 'rm -rf /',
};

function run(args) {
  return new Promise((resolveRun) => {
    execFile(
      browser,
      ['--headless=new', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', ...args],
      { timeout: 60_000, maxBuffer: 8 << 20 },
      (err, stdout) => resolveRun({ err, stdout: String(stdout) }),
    );
  });
}

/** The RGB of pixel (x, y) of an 8-bit RGB or RGBA non-interlaced PNG (what Chromium writes). */
function pixel(png, x, y) {
  let pos = 8;
  let width = 0;
  let channels = 0;
  const idat = [];
  while (pos < png.length) {
    const len = png.readUInt32BE(pos);
    const type = png.toString('latin1', pos + 4, pos + 8);
    const data = png.subarray(pos + 8, pos + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      if (data[8] !== 8 || data[12] !== 0) throw new Error('unexpected PNG format');
      channels = data[9] === 6 ? 4 : data[9] === 2 ? 3 : 0;
      if (channels === 0) throw new Error('unexpected PNG colour type');
    } else if (type === 'IDAT') idat.push(data);
    pos += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  let prev = Buffer.alloc(stride);
  for (let row = 0; row <= y; row++) {
    const filter = raw[row * (stride + 1)];
    const line = Buffer.from(raw.subarray(row * (stride + 1) + 1, (row + 1) * (stride + 1)));
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? line[i - channels] : 0;
      const b = prev[i];
      const c = i >= channels ? prev[i - channels] : 0;
      const p = a + b - c;
      const pa = Math.abs(p - a);
      const pb = Math.abs(p - b);
      const pc = Math.abs(p - c);
      const pred = [0, a, b, (a + b) >> 1, pa <= pb && pa <= pc ? a : pb <= pc ? b : c][filter];
      line[i] = (line[i] + pred) & 0xff;
    }
    prev = line;
  }
  return [prev[x * channels], prev[x * channels + 1], prev[x * channels + 2]];
}

const failures = [];
function check(ok, what) {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures.push(what);
}

const root = join(work, 'www');
for (const [name, data] of Object.entries(names)) {
  mkdirSync(dirname(join(root, name)), { recursive: true });
  writeFileSync(join(root, name), data);
  // Fixed times, so the screenshots in docs/ change only when the page does.
  utimesSync(join(root, name), new Date('2026-01-02T03:04:05Z'), new Date('2026-01-02T03:04:05Z'));
}
for (const d of ['docs', 'src']) utimesSync(join(root, d), new Date('2026-01-02T03:04:05Z'), new Date('2026-01-02T03:04:05Z'));
symlinkSync('/etc/passwd', join(root, 'passwd-link'));
const handler = createHandler({ mounts: [{ mountpoint: '/', origin: `file://${root}`, listing: true }] });
const server = createServer(handler);
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${server.address().port}/`;

try {
  const probe = await run(['--version']);
  if (probe.err) {
    console.error(`check-listing: ${browser} cannot be run (${probe.err.code ?? probe.err.message})`);
    process.exitCode = 2;
  } else {
    const dom = await run(['--dump-dom', url]);
    check(!dom.err && dom.stdout.includes('<table>'), 'Chromium loaded the listing (--dump-dom)');
    for (const name of ['README.md', 'index.css', 'photo.png', 'docs/', 'src/']) check(dom.stdout.includes(`>${name}<`), `entry ${name} is listed`);
    check(dom.stdout.includes('notes &amp; "quotes" ☃.txt'), 'a name with &, quotes and unicode is shown as text');
    check(dom.stdout.includes('&lt;img src=x onerror="document.title=\'pwned\'"&gt;.txt'), 'a name that is markup is shown as text');
    check(!/<img/i.test(dom.stdout), 'no element was injected by a name');
    check(!/<script/i.test(dom.stdout), 'no script element exists');
    check(/<title>Index of \/<\/title>/.test(dom.stdout) && !dom.stdout.includes('pwned</title>'), 'no script ran (the title is untouched)');
    check(
      !dom.stdout.includes('.env') && !dom.stdout.includes('deploy.sh') && !dom.stdout.includes('passwd-link'),
      'dotfiles, refused types and escaping symlinks are hidden',
    );
    const order = ['docs/', 'src/', 'README.md', 'index.css'].map((n) => dom.stdout.indexOf(`>${n}<`));
    check(
      order.every((p, i) => p > 0 && (i === 0 || p > order[i - 1])),
      'directories first, then names in code-unit order',
    );

    mkdirSync(out, { recursive: true });
    const light = join(out, 'listing.png');
    const dark = join(out, 'listing-dark.png');
    const size = '--window-size=820,420';
    const shotLight = await run([size, `--screenshot=${light}`, url]);
    const shotDark = await run([size, '--force-dark-mode', `--screenshot=${dark}`, url]);
    check(!shotLight.err && !shotDark.err, `screenshots written (${light}, ${dark})`);
    if (!shotLight.err && !shotDark.err) {
      const bgLight = pixel(readFileSync(light), 2, 2);
      const bgDark = pixel(readFileSync(dark), 2, 2);
      check(
        bgLight.every((c) => c > 240),
        `light background is light (rgb ${bgLight.join(',')})`,
      );
      check(
        bgDark.every((c) => c < 40),
        `dark background follows prefers-color-scheme: dark (rgb ${bgDark.join(',')})`,
      );
    }
    if (failures.length > 0) process.exitCode = 1;
  }
} finally {
  server.close();
  server.closeAllConnections();
  if (out !== work) rmSync(work, { recursive: true, force: true });
  else if (failures.length === 0) rmSync(work, { recursive: true, force: true });
}
