import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BUILTIN_MIMETYPES, createMimeLookup, type MimeDecision } from '../../src/mounts/mime.js';

const ok = (contentType: string | undefined): MimeDecision => ({ allowed: true, contentType });
const DENIED: MimeDecision = { allowed: false, reason: 'file type not allowed' };
const utf8 = (type: string): MimeDecision => ok(`${type}; charset=utf-8`);

describe('BUILTIN_MIMETYPES', () => {
  it("holds all of lws's canned list, with today's types for it", () => {
    assert.deepEqual(
      {
        '.html': BUILTIN_MIMETYPES['.html'],
        '.htm': BUILTIN_MIMETYPES['.htm'],
        '.js': BUILTIN_MIMETYPES['.js'],
        '.css': BUILTIN_MIMETYPES['.css'],
        '.png': BUILTIN_MIMETYPES['.png'],
        '.jpg': BUILTIN_MIMETYPES['.jpg'],
        '.jpeg': BUILTIN_MIMETYPES['.jpeg'],
        '.ico': BUILTIN_MIMETYPES['.ico'],
        '.gif': BUILTIN_MIMETYPES['.gif'],
        '.svg': BUILTIN_MIMETYPES['.svg'],
        '.ttf': BUILTIN_MIMETYPES['.ttf'],
        '.otf': BUILTIN_MIMETYPES['.otf'],
        '.woff': BUILTIN_MIMETYPES['.woff'],
        '.woff2': BUILTIN_MIMETYPES['.woff2'],
        '.gz': BUILTIN_MIMETYPES['.gz'],
        '.txt': BUILTIN_MIMETYPES['.txt'],
        '.xml': BUILTIN_MIMETYPES['.xml'],
        '.json': BUILTIN_MIMETYPES['.json'],
        '.babylon': BUILTIN_MIMETYPES['.babylon'],
        '.mjs': BUILTIN_MIMETYPES['.mjs'],
        '.wasm': BUILTIN_MIMETYPES['.wasm'],
      },
      {
        '.html': 'text/html',
        '.htm': 'text/html',
        '.js': 'text/javascript',
        '.css': 'text/css',
        '.png': 'image/png',
        '.jpg': 'image/jpeg',
        '.jpeg': 'image/jpeg',
        '.ico': 'image/vnd.microsoft.icon',
        '.gif': 'image/gif',
        '.svg': 'image/svg+xml',
        '.ttf': 'font/ttf',
        '.otf': 'font/otf',
        '.woff': 'font/woff',
        '.woff2': 'font/woff2',
        '.gz': 'application/gzip',
        '.txt': 'text/plain',
        '.xml': 'application/xml',
        '.json': 'application/json',
        '.babylon': 'application/json',
        '.mjs': 'text/javascript',
        '.wasm': 'application/wasm',
      },
    );
  });

  it('holds the modern web types', () => {
    const want: Record<string, string> = {
      '.map': 'application/json',
      '.webp': 'image/webp',
      '.avif': 'image/avif',
      '.webmanifest': 'application/manifest+json',
      '.mp4': 'video/mp4',
      '.webm': 'video/webm',
      '.mp3': 'audio/mpeg',
      '.ogg': 'audio/ogg',
      '.pdf': 'application/pdf',
      '.csv': 'text/csv',
      '.md': 'text/markdown',
      '.xhtml': 'application/xhtml+xml',
      '.jsonld': 'application/ld+json',
      '.ics': 'text/calendar',
      '.vtt': 'text/vtt',
      '.apng': 'image/apng',
      '.jxl': 'image/jxl',
      '.opus': 'audio/ogg',
      '.m4a': 'audio/mp4',
      '.wav': 'audio/wav',
      '.flac': 'audio/flac',
      '.oga': 'audio/ogg',
      '.ogv': 'video/ogg',
    };
    for (const [suffix, type] of Object.entries(want)) assert.equal(BUILTIN_MIMETYPES[suffix], type, suffix);
  });

  it('leaves out executables, server-side sources, configuration and archives other than .gz', () => {
    for (const suffix of [
      '.php',
      '.exe',
      '.sh',
      '.bat',
      '.cgi',
      '.cjs',
      '.ts',
      '.py',
      '.pl',
      '.zip',
      '.tar',
      '.tgz',
      '.yml',
      '.ini',
      '.env',
      '.log',
      '.svgz',
    ]) {
      assert.equal(BUILTIN_MIMETYPES[suffix], undefined, suffix);
    }
  });

  it('has only lower-case keys with one leading dot, and bare types', () => {
    const keys = Object.keys(BUILTIN_MIMETYPES);
    assert.ok(keys.length >= 40, `${keys.length} suffixes`);
    for (const [suffix, type] of Object.entries(BUILTIN_MIMETYPES)) {
      assert.match(suffix, /^\.[a-z0-9]+$/, suffix);
      assert.match(type, /^[a-z0-9.+-]+\/[a-z0-9.+-]+$/, `${suffix}: ${type}`);
    }
  });

  it('is frozen, with no inherited keys', () => {
    assert.ok(Object.isFrozen(BUILTIN_MIMETYPES));
    assert.throws(() => {
      (BUILTIN_MIMETYPES as Record<string, string>)['.php'] = 'text/html';
    }, TypeError);
    assert.equal(BUILTIN_MIMETYPES['.php'], undefined);
    assert.equal('constructor' in BUILTIN_MIMETYPES, false);
  });
});

describe('createMimeLookup: built-ins', () => {
  const lookup = createMimeLookup();

  it('gives text types a utf-8 charset, and binary types none', () => {
    assert.deepEqual(lookup('/index.html'), utf8('text/html'));
    assert.deepEqual(lookup('/app.js'), utf8('text/javascript'));
    assert.deepEqual(lookup('/app.mjs'), utf8('text/javascript'));
    assert.deepEqual(lookup('/site.css'), utf8('text/css'));
    assert.deepEqual(lookup('/data.csv'), utf8('text/csv'));
    assert.deepEqual(lookup('/readme.md'), utf8('text/markdown'));
    assert.deepEqual(lookup('/logo.png'), ok('image/png'));
    assert.deepEqual(lookup('/font.woff2'), ok('font/woff2'));
    assert.deepEqual(lookup('/app.wasm'), ok('application/wasm'));
    assert.deepEqual(lookup('/doc.pdf'), ok('application/pdf'));
    assert.deepEqual(lookup('/x.gz'), ok('application/gzip'));
  });

  it('gives application text types (json, xml, +json, +xml) a utf-8 charset', () => {
    assert.deepEqual(lookup('/a.json'), utf8('application/json'));
    assert.deepEqual(lookup('/a.map'), utf8('application/json'));
    assert.deepEqual(lookup('/a.babylon'), utf8('application/json'));
    assert.deepEqual(lookup('/a.xml'), utf8('application/xml'));
    assert.deepEqual(lookup('/a.svg'), utf8('image/svg+xml'));
    assert.deepEqual(lookup('/a.xhtml'), utf8('application/xhtml+xml'));
    assert.deepEqual(lookup('/site.webmanifest'), utf8('application/manifest+json'));
    assert.deepEqual(lookup('/a.jsonld'), utf8('application/ld+json'));
    assert.deepEqual(lookup('/feed.rss'), utf8('application/rss+xml'));
  });

  it('gives every built-in its table type, with the charset exactly when it is text', () => {
    const text = new Set([
      '.html',
      '.htm',
      '.js',
      '.mjs',
      '.css',
      '.txt',
      '.csv',
      '.md',
      '.ics',
      '.vtt',
      '.json',
      '.map',
      '.babylon',
      '.xml',
      '.svg',
      '.xhtml',
      '.webmanifest',
      '.jsonld',
      '.rss',
      '.atom',
      '.gltf',
    ]);
    for (const [suffix, type] of Object.entries(BUILTIN_MIMETYPES)) {
      assert.deepEqual(lookup(`/dir/file${suffix}`), text.has(suffix) ? utf8(type) : ok(type), suffix);
    }
  });

  it('matches suffixes case-insensitively', () => {
    assert.deepEqual(lookup('/UPPER.HTML'), utf8('text/html'));
    assert.deepEqual(lookup('/app.Js'), utf8('text/javascript'));
    assert.deepEqual(lookup('/Photo.JPEG'), ok('image/jpeg'));
  });

  it('refuses unknown suffixes with a short reason that does not echo the path', () => {
    for (const p of ['/etc/passwd.bak', '/index.php', '/setup.exe', '/site.zip', '/src/main.ts', '/x.secretword']) {
      const d = lookup(p);
      assert.deepEqual(d, DENIED, p);
      assert.ok(!d.reason.includes('secretword'));
    }
  });

  it('takes the suffix from the last segment only', () => {
    assert.deepEqual(lookup('/a.b/c'), DENIED);
    assert.deepEqual(lookup('/site.html/passwd'), DENIED);
    assert.deepEqual(lookup('/www.example.com/index.html'), utf8('text/html'));
    assert.deepEqual(lookup('/bundle.zip/css/app.css'), utf8('text/css'));
    assert.deepEqual(lookup('/dir.html/'), DENIED);
  });

  it('refuses names with no suffix: no dot, a trailing dot, or only leading dots', () => {
    for (const p of ['/etc/passwd', 'passwd', '', '/', '/Makefile', '/file.', '/.bashrc', '/..html', '/dir/.html', '/.env']) {
      assert.deepEqual(lookup(p), DENIED, JSON.stringify(p));
    }
  });

  it('reads a dotfile with a further dot by its last extension', () => {
    assert.deepEqual(lookup('/.eslintrc.json'), utf8('application/json'));
    assert.deepEqual(lookup('/..x.png'), ok('image/png'));
  });

  it('uses the last extension for built-ins', () => {
    assert.deepEqual(lookup('/dump.sql.gz'), ok('application/gzip'));
    assert.deepEqual(lookup('/page.html.bak'), DENIED);
    assert.deepEqual(lookup('/a..png'), ok('image/png'));
  });

  it('matches no key when the suffix has non-ASCII or space characters', () => {
    // U+212A KELVIN SIGN lower-cases to an ASCII "k"; lws's matching is ASCII-only.
    const kelvin = createMimeLookup({ '.kml': 'application/vnd.google-earth.kml+xml' });
    assert.deepEqual(kelvin('/a.kml'), utf8('application/vnd.google-earth.kml+xml'));
    assert.deepEqual(kelvin('/a.\u212Aml'), DENIED);
    assert.deepEqual(lookup('/a.ht ml'), DENIED);
    assert.deepEqual(lookup('/a.html\u0000'), DENIED);
    // A non-ASCII name is fine; only the suffix is looked at.
    assert.deepEqual(lookup('/caf\u00e9.html'), utf8('text/html'));
  });

  it('returns the same decision object each time (nothing allocated per call)', () => {
    assert.equal(lookup('/a.html'), lookup('/b/C.HTML'));
    assert.equal(lookup('/a.php'), lookup('/noext'));
    assert.ok(Object.isFrozen(lookup('/a.html')));
    assert.ok(Object.isFrozen(lookup('/a.php')));
  });
});

describe('createMimeLookup: extra mimetypes', () => {
  it('adds suffixes, with the charset rule applied to bare text types', () => {
    const lookup = createMimeLookup({ '.zip': 'application/zip', '.doc': 'text/evil', '.geojson': 'application/geo+json' });
    assert.deepEqual(lookup('/site.zip'), ok('application/zip'));
    assert.deepEqual(lookup('/a.DOC'), utf8('text/evil'));
    assert.deepEqual(lookup('/a.geojson'), utf8('application/geo+json'));
    assert.deepEqual(lookup('/a.html'), utf8('text/html'));
    assert.deepEqual(lookup('/a.php'), DENIED);
    // Per mount: another lookup does not see them.
    assert.deepEqual(createMimeLookup()('/site.zip'), DENIED);
  });

  it('keeps a value that already has parameters exactly as given', () => {
    const lookup = createMimeLookup({ '.txt': 'text/plain; charset=ISO-8859-1', '.zz': 'application/x-zz;v="1; 2"' });
    assert.deepEqual(lookup('/a.txt'), ok('text/plain; charset=ISO-8859-1'));
    assert.deepEqual(lookup('/a.zz'), ok('application/x-zz;v="1; 2"'));
  });

  it('overrides built-ins, whatever the case of key or path', () => {
    const lookup = createMimeLookup({ '.HTML': 'application/octet-stream', '.js': 'application/javascript' });
    assert.deepEqual(lookup('/index.html'), ok('application/octet-stream'));
    assert.deepEqual(lookup('/INDEX.HTML'), ok('application/octet-stream'));
    assert.deepEqual(lookup('/a.js'), utf8('application/javascript'));
    assert.deepEqual(lookup('/a.htm'), utf8('text/html'));
  });

  it('gives text types only mime-db or the JavaScript list knows as text a utf-8 charset', () => {
    const lookup = createMimeLookup({
      '.a': 'application/javascript', // a charset in mime-db
      '.b': 'application/news-checkgroups', // US-ASCII in mime-db: still utf-8, its superset
      '.c': 'application/ecmascript',
      '.d': 'application/x-javascript',
      '.e': 'application/octet-stream',
    });
    assert.deepEqual(lookup('/x.a'), utf8('application/javascript'));
    assert.deepEqual(lookup('/x.b'), utf8('application/news-checkgroups'));
    assert.deepEqual(lookup('/x.c'), utf8('application/ecmascript'));
    assert.deepEqual(lookup('/x.d'), utf8('application/x-javascript'));
    assert.deepEqual(lookup('/x.e'), ok('application/octet-stream'));
  });

  it('accepts a key without its dot as the same suffix', () => {
    const lookup = createMimeLookup({ zip: 'application/zip', 'tar.gz': 'application/x-compressed-tar' });
    assert.deepEqual(lookup('/a.zip'), ok('application/zip'));
    assert.deepEqual(lookup('/a.tar.gz'), ok('application/x-compressed-tar'));
    // A dotless key is still a suffix after a dot, never a bare name ending.
    assert.deepEqual(lookup('/gzip'), DENIED);
    assert.deepEqual(lookup('/a.gzip'), DENIED);
  });

  it('lets the longest compound key win, and falls back to shorter ones', () => {
    const lookup = createMimeLookup({ '.tar.gz': 'application/x-compressed-tar', '.d.ts.map': 'application/x-dts-map' });
    assert.deepEqual(lookup('/dist/app-1.2.tar.gz'), ok('application/x-compressed-tar'));
    assert.deepEqual(lookup('/A.TAR.GZ'), ok('application/x-compressed-tar'));
    assert.deepEqual(lookup('/dump.sql.gz'), ok('application/gzip'));
    assert.deepEqual(lookup('/x.gz'), ok('application/gzip'));
    assert.deepEqual(lookup('/index.d.ts.map'), ok('application/x-dts-map'));
    assert.deepEqual(lookup('/index.ts.map'), utf8('application/json'));
    assert.deepEqual(lookup('/a.b.c.d.ts.map'), ok('application/x-dts-map'));
    // The compound key must sit inside the last segment, after the leading dots.
    assert.deepEqual(lookup('/x.tar/gz'), DENIED);
    assert.deepEqual(lookup('/.tar.gz'), ok('application/gzip'));
    assert.deepEqual(lookup('/.d.ts.map'), utf8('application/json'));
  });

  it('"*": type serves every otherwise unknown file with that type, known suffixes keep theirs', () => {
    const lookup = createMimeLookup({ '*': 'application/x-any' });
    assert.deepEqual(lookup('/data.bin'), ok('application/x-any'));
    assert.deepEqual(lookup('/noext'), ok('application/x-any'));
    assert.deepEqual(lookup('/.bashrc'), ok('application/x-any'));
    assert.deepEqual(lookup('/a.b/c'), ok('application/x-any'));
    assert.deepEqual(lookup('/index.html'), utf8('text/html'));
    assert.deepEqual(lookup('/logo.png'), ok('image/png'));
    assert.deepEqual(createMimeLookup({ '*': 'text/plain' })('/README'), utf8('text/plain'));
  });

  it('"*": "" serves every otherwise unknown file with no Content-Type', () => {
    const lookup = createMimeLookup({ '*': '' });
    const d = lookup('/data.bin');
    assert.deepEqual(d, ok(undefined));
    assert.ok(d.allowed && 'contentType' in d);
    assert.deepEqual(lookup('/etc/passwd'), ok(undefined));
    assert.deepEqual(lookup('/index.html'), utf8('text/html'));
  });

  it('treats an empty object as no extras', () => {
    const lookup = createMimeLookup({});
    assert.deepEqual(lookup('/a.html'), utf8('text/html'));
    assert.deepEqual(lookup('/a.zip'), DENIED);
  });

  it('throws a TypeError naming the bad key or value', () => {
    const bad = (extra: unknown, mention: string): void => {
      assert.throws(
        () => createMimeLookup(extra as Record<string, string>),
        (err: unknown) => err instanceof TypeError && err.message.includes(mention),
        `${JSON.stringify(extra)} should throw mentioning ${mention}`,
      );
    };
    bad({ '.zip': 42 }, 'value for key ".zip" must be a string, got number');
    bad({ '.zip': null }, 'value for key ".zip" must be a string, got null');
    bad({ '.zip': { toString: () => 'application/zip' } }, 'must be a string');
    bad({ '*': false }, 'value for key "*" must be a string');
    bad({ '': 'text/plain' }, '""');
    bad({ '.': 'text/plain' }, '"."');
    bad({ '..zip': 'application/zip' }, '"..zip"');
    bad({ '.tar.': 'application/x-tar' }, '".tar."');
    bad({ 'a/b': 'text/plain' }, '"a/b"');
    bad({ '*.zip': 'application/zip' }, '"*.zip"');
    bad({ '.z ip': 'application/zip' }, '".z ip"');
    bad({ '.caf\u00e9': 'text/plain' }, '".caf\u00e9"');
    bad({ '.zip': '' }, '".zip"');
    bad({ '.zip': 'zip' }, '"zip"');
    bad({ '.zip': 'application/' }, '"application/"');
    bad({ '.zip': 'application/zip ' }, '"application/zip "');
    bad({ '.zip': 'application/zip; charset' }, '"application/zip; charset"');
    bad({ '.zip': 'application/zip\r\nX-Evil: 1' }, '".zip"');
    bad({ '.zip': 'application/z\u00efp' }, '".zip"');
    bad({ '*': '*' }, '"*"');
    bad({ '*': 'text/plain;' }, '"text/plain;"');
    bad({ '.zip': 'application/zip', '.ZIP': 'application/x-zip' }, '".ZIP"');
    bad({ '.zip': 'application/zip', zip: 'application/zip' }, '"zip"');
    bad(null, 'object');
    bad(['.zip'], 'array');
    bad('.zip', 'object');
  });

  it('accepts every well-formed media type', () => {
    for (const type of [
      'application/vnd.ms-excel',
      'text/x-c++src',
      "application/x-a!#$%&'*+.^_`|~b",
      'audio/ogg; codecs=opus',
      'text/plain;charset="utf-8"',
      'a/b ; x=1 ;\ty="\\""',
    ]) {
      assert.equal(createMimeLookup({ '.q': type })('/a.q').allowed, true, type);
    }
  });
});
