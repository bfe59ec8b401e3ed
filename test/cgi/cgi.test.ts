/**
 * cgi:// mounts through createHandler on node:http, with the real fixture programs of
 * test/fixtures/cgi: the environment, the output grammar, bodies both ways, kills, the cap.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CGI_PATH, CgiError, createHandler, MAX_BUFFERED_BODY } from '../../src/index.js';
import { noise, rmTree, tmpDir, writeTree } from '../helpers/fixtures.js';
import { listen } from '../helpers/http.js';
import { alive, assertGone, parseEnv, pidsOf, program, rawSend, send, waitFor } from './util.js';

const dir = tmpDir('vfserve-cgi-');
const pidDir = join(dir, 'pids');
const files = join(dir, 'files');
const mark = join(dir, 'started.mark');
const noExec = join(dir, 'not-executable.sh');
const env = program('env.sh');
const app = program('app.sh');
const echo = program('echo.sh');
const hang = program('hang.sh');

const errors: unknown[] = [];
const logged: string[] = [];
const CANARY = 'VFSERVE_CGI_TEST_CANARY';

const handler = createHandler({
  headers: { 'x-vhost': 'on' },
  mounts: [
    { mountpoint: '/files', origin: files },
    { mountpoint: '/env', origin: `cgi://${env}`, cgiEnv: { SERVER_SOFTWARE: 'configured-last', MOUNT_VAR: 'mount value' } },
    { mountpoint: '/env2', origin: `cgi://${env}`, cgiInheritEnv: ['VFSERVE_CGI_TEST_INHERITED'] },
    { mountpoint: '/app', origin: `cgi://${app}`, headers: { 'x-configured': 'from-config' } },
    { mountpoint: '/echo', origin: `cgi://${echo}` },
    { mountpoint: '/echo-marked', origin: `cgi://${echo}`, cgiEnv: { STARTED_MARK: mark } },
    { mountpoint: '/hang', origin: `cgi://${hang}`, cgiTimeout: 0.3, cgiEnv: { PID_DIR: pidDir } },
    { mountpoint: '/hang-long', origin: `cgi://${hang}`, cgiTimeout: 0, cgiEnv: { PID_DIR: pidDir } },
    { mountpoint: '/one', origin: `cgi://${app}`, cgiMaxConcurrent: 1 },
    { mountpoint: '/in-pids', origin: `cgi://${app}`, cgiChdir: pidDir },
    { mountpoint: '/missing', origin: `cgi://${join(dir, 'no-such-program')}` },
    { mountpoint: '/noexec', origin: `cgi://${noExec}` },
  ],
  onError: (err) => errors.push(err),
  log: (line) => logged.push(line),
});

let port = 0;
let close: () => Promise<void> = () => Promise.resolve();

before(async () => {
  writeTree(files, { 'hello.txt': Buffer.from('hello from a file\n') });
  mkdirSync(pidDir);
  writeFileSync(noExec, '#!/bin/sh\necho never\n', { mode: 0o644 });
  const s = await listen(handler);
  port = s.port;
  close = s.close;
});
after(async () => {
  await close();
  rmTree(dir);
});

/** The errors reported since the last call. */
function takeErrors(): unknown[] {
  return errors.splice(0);
}

function cgiError(err: unknown): CgiError {
  assert.ok(err instanceof CgiError, `a CgiError, got ${String(err)}`);
  return err;
}

describe('cgi: the environment', () => {
  it('has the RFC 3875 and lws variables, maps headers safely, and nothing of the server’s own environment', async () => {
    process.env[CANARY] = 'leaked-canary';
    try {
      const r = await rawSend(
        port,
        [
          'GET /env/a/b?x=1&y=%20 HTTP/1.1',
          'Host: example.test:8080',
          'Proxy: http://attacker.example:3128',
          'Authorization: Basic dXNlcjpwYXNz',
          'Proxy-Authorization: Basic cHJveHk6cGFzcw==',
          'X_Underscore: dropped',
          'X-Multi: one',
          'X-Multi: two',
          'Cookie: a=1',
          'Cookie: b=2',
          'User-Agent: cgi-test',
        ].join('\r\n'),
      );
      assert.equal(r.status, 200);
      const e = parseEnv(r.body);
      assert.equal(e.get('GATEWAY_INTERFACE'), 'CGI/1.1');
      assert.equal(e.get('REQUEST_METHOD'), 'GET');
      assert.equal(e.get('QUERY_STRING'), 'x=1&y=%20');
      assert.equal(e.get('PATH_INFO'), '/a/b');
      assert.equal(e.get('SCRIPT_NAME'), '/env');
      assert.equal(e.get('SERVER_NAME'), 'example.test');
      assert.equal(e.get('SERVER_PORT'), String(port));
      assert.equal(e.get('SERVER_PROTOCOL'), 'HTTP/1.1');
      assert.equal(e.get('REMOTE_ADDR'), '127.0.0.1');
      assert.match(e.get('REMOTE_PORT') ?? '', /^\d+$/);
      assert.equal(e.get('REQUEST_URI'), '/env/a/b?x=1&y=%20');
      assert.equal(e.get('SCRIPT_PATH'), env);
      assert.equal(e.get('SCRIPT_FILENAME'), env);
      assert.equal(e.get('PATH'), CGI_PATH);
      assert.equal(e.get('HTTP_HOST'), 'example.test:8080');
      assert.equal(e.get('HTTP_USER_AGENT'), 'cgi-test');
      // RFC 3875 §4.1.18: repeated fields joined; cookies with '; '.
      assert.equal(e.get('HTTP_X_MULTI'), 'one, two');
      assert.equal(e.get('HTTP_COOKIE'), 'a=1; b=2');
      // cgi-env is applied last, over a meta-variable.
      assert.equal(e.get('SERVER_SOFTWARE'), 'configured-last');
      assert.equal(e.get('MOUNT_VAR'), 'mount value');
      // httpoxy (CVE-2016-5385/5386/5387), credentials, underscore names, a plain GET's CONTENT_*, TLS.
      for (const name of [
        'HTTP_PROXY',
        'HTTP_AUTHORIZATION',
        'HTTP_PROXY_AUTHORIZATION',
        'HTTP_X_UNDERSCORE',
        'CONTENT_LENGTH',
        'CONTENT_TYPE',
        'HTTPS',
        CANARY,
      ])
        assert.equal(e.get(name), undefined, `${name} is not passed`);
      assert.doesNotMatch(r.body, /leaked-canary|attacker\.example|dXNlcjpwYXNz/);
      assert.deepEqual(takeErrors(), []);
    } finally {
      Reflect.deleteProperty(process.env, CANARY);
    }
  });

  it('passes CONTENT_LENGTH and CONTENT_TYPE for a body (never as HTTP_*), and the inherit allowlist; a program that never reads stdin is fine', async () => {
    process.env.VFSERVE_CGI_TEST_INHERITED = 'inherited value';
    try {
      const body = noise(1024 * 1024, 3); // more than a pipe holds: the unread rest gets EPIPE
      const r = await send(port, '/env2?q', { body, headers: { 'content-type': 'application/x-test' } });
      assert.equal(r.status, 200);
      const e = parseEnv(r.body.toString());
      assert.equal(e.get('REQUEST_METHOD'), 'POST');
      assert.equal(e.get('CONTENT_LENGTH'), String(body.length));
      assert.equal(e.get('CONTENT_TYPE'), 'application/x-test');
      assert.equal(e.get('HTTP_CONTENT_LENGTH'), undefined);
      assert.equal(e.get('HTTP_CONTENT_TYPE'), undefined);
      assert.equal(e.get('SERVER_SOFTWARE'), 'vfserve');
      assert.equal(e.get('SCRIPT_NAME'), '/env2');
      assert.equal(e.get('PATH_INFO'), '');
      assert.equal(e.get('QUERY_STRING'), 'q');
      assert.equal(e.get('VFSERVE_CGI_TEST_INHERITED'), 'inherited value');
      assert.deepEqual(takeErrors(), []);
    } finally {
      delete process.env.VFSERVE_CGI_TEST_INHERITED;
    }
  });
});

describe('cgi: the working directory', () => {
  it('is the program’s own directory by default, and cgi-chdir where the mount sets it', async () => {
    assert.equal((await send(port, '/app/pwd')).body.toString().trim(), realpathSync(dirname(app)));
    assert.equal((await send(port, '/in-pids/pwd')).body.toString().trim(), realpathSync(pidDir));
  });
});

describe('cgi: the response the program writes', () => {
  it('Status: sets the status and reason; configured headers win over the program’s', async () => {
    const r = await send(port, '/app/status404');
    assert.equal(r.status, 404);
    assert.equal(r.message, 'Nope');
    assert.equal(r.headers['content-type'], 'text/plain');
    assert.equal(r.headers['x-configured'], 'from-config');
    assert.equal(r.headers['x-vhost'], 'on');
    assert.equal(r.body.toString(), 'missing\n');
    const s = await send(port, '/app/stream');
    assert.equal(s.status, 200);
    assert.equal(s.headers['x-configured'], 'from-config');
    assert.equal(s.headers['x-program'], 'yes');
    assert.equal(s.headers['keep-alive'], undefined);
    assert.equal(s.body.toString(), 'part one\npart two\n');
    assert.deepEqual(takeErrors(), []);
  });

  it('a local Location is served internally as a GET of that path; the program’s body is dropped', async () => {
    const r = await send(port, '/app/local', { method: 'POST', body: Buffer.from('ignored') });
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'hello from a file\n');
    assert.equal(r.headers.location, undefined);
    assert.deepEqual(takeErrors(), []);
  });

  it('an absolute Location without Status is a 302 to it', async () => {
    const r = await send(port, '/app/absolute');
    assert.equal(r.status, 302);
    assert.equal(r.headers.location, 'https://example.com/elsewhere');
    assert.equal(r.headers['x-program'], 'yes');
    assert.deepEqual(takeErrors(), []);
  });

  it('a Content-Length from the program is kept and held to', async () => {
    const r = await send(port, '/app/length');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-length'], '6');
    assert.equal(r.body.toString(), 'exact\n');
    assert.deepEqual(takeErrors(), []);
    // Fewer bytes than declared: the client sees a cut, never a complete short body.
    await assert.rejects(send(port, '/app/short'));
    await waitFor(() => errors.length > 0, 'the short body is reported');
    assert.equal(cgiError(takeErrors()[0]).code, 'CGI_OUTPUT');
  });

  for (const [path, why] of [
    ['/app/no-type', /none of Status, Content-Type and Location/],
    ['/app/no-colon', /without a colon: "not a header line"/],
    ['/app/bad-status', /invalid Status: "99 Strange"/],
    ['/app/big-head', /header block over 16384 bytes/],
    ['/app/eof', /output ended before the blank line/],
  ] as const) {
    it(`malformed output (${path}) is a 502, reported once with what was wrong`, async () => {
      const r = await send(port, path);
      assert.equal(r.status, 502);
      assert.match(r.body.toString(), /502 Bad Gateway/);
      assert.equal(r.headers['x-configured'], 'from-config');
      assert.doesNotMatch(r.body.toString(), /body|X-Never|Filler/);
      await new Promise((res) => setTimeout(res, 50)); // a second report would have come by now
      const errs = takeErrors();
      assert.equal(errs.length, 1, String(errs));
      const err = cgiError(errs[0]);
      assert.equal(err.code, 'CGI_OUTPUT');
      assert.match(err.message, why);
      assert.match(err.message, /^cgi \/.*app\.sh\[\d+\]: malformed output: /);
      assert.doesNotMatch(err.message, /\n/);
    });
  }

  it('a program that cannot be run (ENOENT, EACCES) is a 502, reported once; the server goes on', async () => {
    for (const [path, code] of [
      ['/missing', 'ENOENT'],
      ['/noexec', 'EACCES'],
    ] as const) {
      const r = await send(port, path);
      assert.equal(r.status, 502, path);
      const errs = takeErrors();
      assert.equal(errs.length, 1, path);
      assert.equal(cgiError(errs[0]).code, 'CGI_SPAWN');
      assert.match(cgiError(errs[0]).message, new RegExp(code));
    }
    assert.equal((await send(port, '/app/status404')).status, 404);
  });

  it('stderr reaches the log line by line, prefixed, escaped, and capped per line and per request', async () => {
    logged.length = 0;
    const r = await send(port, '/app/stderr');
    assert.equal(r.body.toString(), 'ok\n');
    await waitFor(() => logged.length >= 3, 'three stderr lines logged');
    const prefix = /^cgi \/.*app\.sh\[(\d+)\]: /;
    assert.match(logged[0]!, prefix);
    assert.equal(logged[0]!.replace(prefix, ''), 'first line');
    assert.equal(logged[1]!.replace(prefix, ''), 'second\\x1b[31m line');
    assert.equal(logged[2]!.replace(prefix, ''), `${'0'.repeat(1024)} […]`);
    assert.equal(logged.length, 3);

    logged.length = 0;
    assert.equal((await send(port, '/app/flood')).status, 200);
    await waitFor(() => logged.length >= 101, 'the flood is logged up to its cap');
    await new Promise((res) => setTimeout(res, 100));
    assert.equal(logged.length, 101);
    assert.match(logged[99]!, /: noise 99$/);
    assert.match(logged[100]!, /more than 100 lines on stderr; the rest is dropped$/);
    assert.deepEqual(takeErrors(), []);
  });
});

describe('cgi: request bodies', () => {
  it('streams a large POST through stdin with backpressure and back', async () => {
    const body = noise(8 * 1024 * 1024, 11);
    const r = await send(port, '/echo', { body });
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-content-length'], String(body.length));
    assert.equal(r.body.length, body.length);
    assert.equal(createHash('sha256').update(r.body).digest('hex'), createHash('sha256').update(body).digest('hex'));
  });

  it('buffers a chunked body and gives it a CONTENT_LENGTH', async () => {
    const parts = [noise(100_000, 1), noise(70_000, 2), Buffer.from('tail')];
    const r = await send(port, '/echo', { body: parts });
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-content-length'], String(170_004));
    assert.ok(r.body.equals(Buffer.concat(parts)));
    // No body at all: no CONTENT_LENGTH, stdin closed at once (cat ends).
    const empty = await send(port, '/echo');
    assert.equal(empty.headers['x-content-length'], 'unset');
    assert.equal(empty.body.length, 0);
  });

  it('a chunked body over the cap is a 413 and the program never starts', async () => {
    const chunk = Buffer.alloc(1024 * 1024, 0x61);
    const parts = Array.from({ length: MAX_BUFFERED_BODY / chunk.length + 1 }, () => chunk);
    const r = await send(port, '/echo-marked', { body: parts });
    assert.equal(r.status, 413);
    assert.match(r.body.toString(), /413 Content Too Large/);
    await new Promise((res) => setTimeout(res, 100));
    assert.equal(existsSync(mark), false, 'the program was not started');
    // The same mount under the cap does start it: the mark proves it.
    const ok = await send(port, '/echo-marked', { body: [Buffer.from('small')] });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.toString(), 'small');
    assert.equal(existsSync(mark), true);
    assert.deepEqual(takeErrors(), []);
  });
});

describe('cgi: kills', () => {
  it('a timeout before any output: 504, and the program and its grandchild are killed', async () => {
    const started = Date.now();
    const r = await send(port, '/hang?timeout-before');
    assert.equal(r.status, 504);
    assert.ok(Date.now() - started < 2000, 'answered at the timeout');
    await assertGone(await pidsOf(join(pidDir, 'timeout-before')));
    const errs = takeErrors();
    assert.equal(errs.length, 1);
    assert.equal(cgiError(errs[0]).code, 'CGI_TIMEOUT');
  });

  it('a timeout after the head: the connection is cut, no error body appended', async () => {
    let got = '';
    await assert.rejects(
      new Promise((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path: '/hang/head?timeout-after', agent: false }, (res) => {
          assert.equal(res.statusCode, 200);
          res.on('data', (c: Buffer) => (got += c.toString()));
          res.on('end', resolve);
          res.on('error', reject);
          res.on('aborted', () => reject(new Error('aborted')));
        });
        req.on('error', reject);
        req.end();
      }),
    );
    assert.equal(got, 'started\n');
    await assertGone(await pidsOf(join(pidDir, 'timeout-after')));
    await waitFor(() => errors.length > 0, 'the timeout is reported');
    assert.equal(cgiError(takeErrors()[0]).code, 'CGI_TIMEOUT');
  });

  for (const [path, name] of [
    ['/hang-long/head?abort-after-head', 'after the head'],
    ['/hang-long?abort-before-head', 'before the head'],
  ] as const) {
    it(`a client that goes away ${name}: the program and its grandchild are killed`, async () => {
      const file = join(pidDir, path.slice(path.indexOf('?') + 1));
      const req = request({ host: '127.0.0.1', port, path, agent: false });
      req.on('error', () => undefined);
      req.end();
      const pids = await pidsOf(file);
      assert.ok(alive(pids[0]) && alive(pids[1]), 'running while the client waits');
      req.destroy();
      await assertGone(pids);
      assert.deepEqual(takeErrors(), []);
    });
  }
});

describe('cgi: the concurrency cap', () => {
  it('answers 503 with Retry-After over the mount’s cap, and frees the slot when the program exits', async () => {
    let release!: (r: { status: number; body: string }) => void;
    const first = new Promise<{ status: number; body: string }>((r) => (release = r));
    const headOut = new Promise<void>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/one/slow', agent: false, headers: { connection: 'close' } }, (res) => {
        resolve();
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => release({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
    await headOut;
    const busy = await send(port, '/one/status404');
    assert.equal(busy.status, 503);
    assert.equal(busy.headers['retry-after'], '1');
    const done = await first;
    assert.equal(done.status, 200);
    assert.equal(done.body, 'first\nsecond\n');
    // The slot is freed when the program's exit is seen, a moment after its output ends.
    let again = await send(port, '/one/status404');
    for (let i = 0; i < 20 && again.status === 503; i++) {
      await new Promise((res) => setTimeout(res, 25));
      again = await send(port, '/one/status404');
    }
    assert.equal(again.status, 404);
    assert.deepEqual(takeErrors(), []);
  });
});
