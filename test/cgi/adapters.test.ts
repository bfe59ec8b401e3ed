/**
 * cgi:// mounts through every way in: node:http2's compatibility API (TLS), Express (under a
 * path), the Fastify plugin, and the lwsws-style server from a JSON configuration.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect, constants, createSecureServer, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import express from 'express';
import Fastify from 'fastify';
import { vfservePlugin } from '../../src/adapters/fastify.js';
import { createHandler } from '../../src/index.js';
import { parseConfigObjects } from '../../src/server/config.js';
import { startServer } from '../../src/server/server.js';
import { fixture, noise, rmTree, tmpDir } from '../helpers/fixtures.js';
import { parseEnv, program, send } from './util.js';

const dir = tmpDir('vfserve-cgi-adapters-');
after(() => rmTree(dir));
const env = program('env.sh');
const app = program('app.sh');
const echo = program('echo.sh');
const hang = program('hang.sh');

interface H2Reply {
  readonly headers: IncomingHttpHeaders;
  readonly chunks: { readonly at: number; readonly data: Buffer }[];
  readonly endedAt: number;
  readonly body: Buffer;
}

function h2(session: ClientHttp2Session, path: string, method = 'GET', body: Buffer[] = []): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    // No content-length: a body is an unframed stream the server must buffer.
    const stream = session.request({ ':method': method, ':path': path }, { endStream: body.length === 0 });
    stream.setTimeout(10_000, () => {
      stream.close(constants.NGHTTP2_CANCEL);
      reject(new Error(`${path} timed out`));
    });
    let headers: IncomingHttpHeaders = {};
    const chunks: { at: number; data: Buffer }[] = [];
    stream.on('response', (h) => (headers = h));
    stream.on('data', (data: Buffer) => chunks.push({ at: Date.now(), data }));
    stream.on('end', () => resolve({ headers, chunks, endedAt: Date.now(), body: Buffer.concat(chunks.map((c) => c.data)) }));
    stream.on('error', reject);
    if (body.length > 0) {
      for (const b of body) stream.write(b);
      stream.end();
    }
  });
}

describe('cgi over HTTP/2 (TLS, compatibility API)', () => {
  it('streams the program’s output without connection-specific headers, buffers an unframed body, and sets HTTPS', async () => {
    const errors: unknown[] = [];
    const handler = createHandler({
      mounts: [
        { mountpoint: '/app', origin: `cgi://${app}` },
        { mountpoint: '/echo', origin: `cgi://${echo}` },
        { mountpoint: '/env', origin: `cgi://${env}` },
      ],
      onError: (err) => errors.push(err),
    });
    const tls = { key: readFileSync(fixture('tls', 'localhost.key')), cert: readFileSync(fixture('tls', 'localhost.crt')) };
    const server = createSecureServer({ ...tls, allowHTTP1: true }, handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const session = connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false });
    try {
      const r = await h2(session, '/app/stream');
      assert.equal(r.headers[':status'], 200);
      assert.equal(r.headers['x-program'], 'yes');
      for (const name of ['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'upgrade'])
        assert.equal(r.headers[name], undefined, `no ${name} on HTTP/2`);
      assert.equal(r.body.toString(), 'part one\npart two\n');
      // Streamed as it came: the first part arrived while the program slept before the second.
      assert.ok(r.chunks[0]!.data.toString().startsWith('part one'));
      assert.ok(r.endedAt - r.chunks[0]!.at >= 50, `the first part came ${r.endedAt - r.chunks[0]!.at} ms before the end`);

      const parts = [noise(50_000, 5), noise(30_000, 6)];
      const e = await h2(session, '/echo', 'POST', parts);
      assert.equal(e.headers[':status'], 200);
      assert.equal(e.headers['x-content-length'], '80000');
      assert.ok(e.body.equals(Buffer.concat(parts)));

      const v = parseEnv((await h2(session, '/env/x?y')).body.toString());
      assert.equal(v.get('HTTPS'), 'ON');
      assert.equal(v.get('SERVER_PROTOCOL'), 'HTTP/2.0');
      assert.equal(v.get('HTTP_HOST'), `127.0.0.1:${port}`);
      assert.equal(v.get('SERVER_NAME'), '127.0.0.1');
      assert.equal(v.get('PATH_INFO'), '/x');
      assert.equal(v.get('QUERY_STRING'), 'y');
      assert.deepEqual(errors, []);
    } finally {
      session.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('cgi through Express and Fastify', () => {
  it('Express, under app.use(path): SCRIPT_NAME and REQUEST_URI keep the path, and a POST body reaches stdin', async () => {
    const ex = express();
    ex.use(
      '/base',
      createHandler({
        mounts: [
          { mountpoint: '/env', origin: `cgi://${env}` },
          { mountpoint: '/echo', origin: `cgi://${echo}` },
        ],
      }),
    );
    const server: Server = await new Promise((resolve) => {
      const s = ex.listen(0, '127.0.0.1', () => resolve(s));
    });
    const port = (server.address() as AddressInfo).port;
    try {
      const v = parseEnv((await send(port, '/base/env/p?q=1')).body.toString());
      assert.equal(v.get('SCRIPT_NAME'), '/base/env');
      assert.equal(v.get('PATH_INFO'), '/p');
      assert.equal(v.get('REQUEST_URI'), '/base/env/p?q=1');
      const body = noise(200_000, 9);
      const r = await send(port, '/base/echo', { body });
      assert.equal(r.status, 200);
      assert.ok(r.body.equals(body));
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('Fastify: the plugin leaves the body to the program, whatever its type', async () => {
    const f = Fastify();
    await f.register(vfservePlugin, {
      mounts: [
        { mountpoint: '/echo', origin: `cgi://${echo}` },
        { mountpoint: '/app', origin: `cgi://${app}` },
      ],
    });
    await f.listen({ port: 0, host: '127.0.0.1' });
    const port = (f.server.address() as AddressInfo).port;
    try {
      const json = Buffer.from('{"not": "parsed by fastify"}');
      const r = await send(port, '/echo', { body: json, headers: { 'content-type': 'application/json' } });
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-content-length'], String(json.length));
      assert.ok(r.body.equals(json));
      const s = await send(port, '/app/status404');
      assert.equal(s.status, 404);
      assert.equal(s.body.toString(), 'missing\n');
    } finally {
      await f.close();
    }
  });
});

describe('cgi in the server (JSON configuration)', () => {
  it('takes cgi-env as [{ … }] and cgi-timeout as a string', async () => {
    const config = parseConfigObjects([
      {
        file: join(dir, 'conf'),
        json: {
          vhosts: [
            {
              name: 'localhost',
              port: 0,
              interface: '127.0.0.1',
              mounts: [
                { mountpoint: '/env', origin: `cgi://${env}`, 'cgi-env': [{ FROM_CONF: 'yes' }, { SECOND: 'two' }] },
                { mountpoint: '/hang', origin: `cgi://${hang}`, 'cgi-timeout': '0.2', 'cgi-env': [{ PID_DIR: dir }] },
                { mountpoint: '/app', origin: `cgi://${app}` },
              ],
            },
          ],
        },
      },
    ]);
    const errors: unknown[] = [];
    const lines: string[] = [];
    const server = await startServer(config, { onError: (e) => errors.push(e), log: (line) => lines.push(line) });
    try {
      const port = server.listeners[0]!.port;
      assert.equal((await send(port, '/app/stderr')).status, 200);
      // stderr is a separate pipe from the response: give its lines a bounded moment to land.
      for (let i = 0; i < 50 && !lines.some((l) => l.endsWith(']: first line')); i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(
        lines.some((l) => l.endsWith(']: first line')),
        `the program's stderr reaches the server's log option: ${JSON.stringify(lines)}`,
      );
      const v = parseEnv((await send(port, '/env')).body.toString());
      assert.equal(v.get('FROM_CONF'), 'yes');
      assert.equal(v.get('SECOND'), 'two');
      assert.equal(v.get('SCRIPT_NAME'), '/env');
      const started = Date.now();
      const r = await send(port, '/hang?server');
      assert.equal(r.status, 504);
      assert.ok(Date.now() - started < 1500, 'killed at the configured 0.2 s');
      assert.equal(errors.length, 1);
    } finally {
      await server.close(1000);
    }
  });
});
