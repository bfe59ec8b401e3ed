/**
 * Fallthrough in a real Express 5 app on 127.0.0.1: a file mount at `/` used as middleware before the
 * app's routes must not shadow them. Requests the mount cannot serve go to next(): other methods (POST
 * routes, OPTIONS handlers), missing files, and types the whitelist refuses.
 */
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, it } from 'node:test';
import express from 'express5';
import { createHandler } from '../../src/index.js';
import { rmTree, tmpDir, writeTree } from '../helpers/fixtures.js';
import { get } from '../helpers/http.js';

const dir = tmpDir('vfserve-express5-');
const logged: unknown[] = [];
let server: Server | undefined;
let port = 0;

before(async () => {
  writeTree(dir, { 'index.html': Buffer.from('<p>home</p>'), 'data.yaml': Buffer.from('a: 1\n'), 'api/readme.txt': Buffer.from('static readme') });
  const app = express();
  app.use(createHandler({ mounts: [{ mountpoint: '/', origin: dir }], onError: (err) => void logged.push(err) }));
  app.post('/api/items', (_req, res) => void res.status(201).send('created by the route'));
  app.options('/api/items', (_req, res) => void res.set('access-control-allow-origin', 'https://app.example').status(204).end());
  app.get('/data.yaml', (_req, res) => void res.type('text/plain').send('from a route'));
  app.get('/api/missing', (_req, res) => void res.send('route behind a missing file'));
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  port = (server.address() as AddressInfo).port;
});

after(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  rmTree(dir);
});

it('reaches a POST route registered after the static middleware', async () => {
  const r = await get(port, '/api/items', {}, 'POST');
  assert.equal(r.status, 201);
  assert.equal(r.body.toString(), 'created by the route');
});

it('reaches an OPTIONS route (a CORS preflight) registered after it', async () => {
  const r = await get(port, '/api/items', { origin: 'https://x.example', 'access-control-request-method': 'POST' }, 'OPTIONS');
  assert.equal(r.status, 204);
  assert.equal(r.headers['access-control-allow-origin'], 'https://app.example');
});

it('passes on missing files and refused types, still logging the refusal once', async () => {
  assert.equal((await get(port, '/api/missing')).body.toString(), 'route behind a missing file');
  const yaml = await get(port, '/data.yaml');
  assert.equal(yaml.status, 200);
  assert.equal(yaml.body.toString(), 'from a route');
  assert.equal(logged.length, 1);
  assert.match((logged[0] as Error).message, /\.yaml/);
});

it('still serves what it can', async () => {
  assert.equal((await get(port, '/')).body.toString(), '<p>home</p>');
  assert.equal((await get(port, '/api/readme.txt')).body.toString(), 'static readme');
  // Express 5's own 404 for a method nothing answers, not vfserve's 405.
  const put = await get(port, '/index.html', {}, 'PUT');
  assert.equal(put.status, 404);
});
