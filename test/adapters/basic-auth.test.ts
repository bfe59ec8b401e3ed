/**
 * basic-auth is the engine's decision: Express and Fastify give the same 401s and logins as
 * node:http, and relayed (callback) responses are kept private in both.
 */
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import express from 'express';
import Fastify from 'fastify';
import { vfservePlugin } from '../../src/adapters/fastify.js';
import { createHandler, Credentials, type CallbackHandler, type MountOptions } from '../../src/index.js';
import { rmTree, tmpDir, writeTree } from '../helpers/fixtures.js';
import { get } from '../helpers/http.js';

const dir = tmpDir('vfserve-adapters-auth-');
after(() => rmTree(dir));
writeTree(dir, { 'a.txt': Buffer.from('guarded\n') });

const credentials = Credentials.parse('eve:apple\n');
const mounts: MountOptions[] = [
  { mountpoint: '/files', origin: dir, basicAuth: credentials, basicAuthRealm: 'adapters' },
  { mountpoint: '/cb', origin: 'callback://app', basicAuth: credentials },
];
const app: CallbackHandler = (_req, res, target) => {
  res.writeHead(200, { 'cache-control': 'public, max-age=60', 'content-type': 'text/plain' });
  res.end(`hello ${target.user ?? 'nobody'}`);
};
const login = { authorization: `Basic ${Buffer.from('eve:apple').toString('base64')}` };

async function expectGuarded(port: number, prefix: string): Promise<void> {
  const denied = await get(port, `${prefix}/files/a.txt`);
  assert.equal(denied.status, 401);
  assert.equal(denied.headers['www-authenticate'], 'Basic realm="adapters", charset="UTF-8"');
  assert.equal(denied.headers['cache-control'], 'no-store');
  assert.equal((await get(port, `${prefix}/files/a.txt`, { authorization: 'Basic ZXZlOnBlYXI=' })).status, 401, 'eve:pear');
  const ok = await get(port, `${prefix}/files/a.txt`, login);
  assert.equal(ok.status, 200);
  assert.equal(ok.body.toString(), 'guarded\n');
  assert.equal((await get(port, `${prefix}/cb/x`)).status, 401);
  const cb = await get(port, `${prefix}/cb/x`, login);
  assert.equal(cb.status, 200);
  assert.equal(cb.body.toString(), 'hello eve');
  assert.equal(cb.headers['cache-control'], 'private, max-age=60');
}

describe('basic-auth through the adapters', () => {
  it('Express: 401 and logins as node:http, also under an app.use prefix', async () => {
    const handler = createHandler({ mounts, callbacks: { app } });
    const server: Server = express().use('/site', handler).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      await expectGuarded((server.address() as AddressInfo).port, '/site');
    } finally {
      await new Promise((r) => server.close(r));
      await handler.close();
    }
  });

  it('Fastify: 401 and logins as node:http, under a register prefix', async () => {
    const fastify = Fastify();
    await fastify.register(vfservePlugin, { prefix: '/site', mounts, callbacks: { app } });
    await fastify.listen({ port: 0, host: '127.0.0.1' });
    try {
      await expectGuarded((fastify.server.address() as AddressInfo).port, '/site');
    } finally {
      await fastify.close();
    }
  });

  it('refuses a credentials path it cannot read when the handler is made', () => {
    assert.throws(
      () => createHandler({ mounts: [{ mountpoint: '/', origin: dir, basicAuth: join(dir, 'none') }] }),
      /mounts\[0\]\.basicAuth: .*none cannot be read/,
    );
  });
});
