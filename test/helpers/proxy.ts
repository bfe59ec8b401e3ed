/**
 * Test helpers for the reverse proxy: a recording upstream, a front server running createHandler,
 * a client that sees raw headers and trailers, and a raw-socket exchange.
 */
import { createHash } from 'node:crypto';
import { createServer, request, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { createHandler, type HandlerOptions, type NodeHandlerWithEngine } from '../../src/index.js';

/** One request as the upstream received it. */
export interface Seen {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: string[];
  readonly body: Buffer;
  readonly sha256: string;
}

export interface Upstream {
  readonly server: Server;
  readonly port: number;
  readonly seen: Seen[];
  close(): Promise<void>;
}

/** Answers a recorded request; the default sends 200 with the request as JSON. */
export type Respond = (req: IncomingMessage, res: ServerResponse, seen: Seen) => void;

export const echo: Respond = (_req, res, seen) => {
  const body = Buffer.from(JSON.stringify({ method: seen.method, url: seen.url, headers: seen.headers, length: seen.body.length, sha256: seen.sha256 }));
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
};

/** A node:http upstream on 127.0.0.1 (or `path`, a unix socket) that records every request, body read whole. */
export async function upstream(respond: Respond = echo, path?: string): Promise<Upstream> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const s: Seen = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body,
        sha256: createHash('sha256').update(body).digest('hex'),
      };
      seen.push(s);
      respond(req, res, s);
    });
  });
  await new Promise<void>((resolve) => (path === undefined ? server.listen(0, '127.0.0.1', resolve) : server.listen(path, resolve)));
  const port = path === undefined ? (server.address() as AddressInfo).port : 0;
  return { server, port, seen, close: () => closeServer(server) };
}

export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}

export interface Front {
  readonly port: number;
  readonly handler: NodeHandlerWithEngine;
  readonly errors: unknown[];
  close(): Promise<void>;
}

/**
 * createHandler behind node:http on 127.0.0.1; errors reported through onError are collected.
 * `options` may be a function of the front's own port (a mount pointing back at the front).
 */
export async function front(
  options: HandlerOptions | ((port: number) => HandlerOptions),
  wrap?: (h: NodeHandlerWithEngine) => (req: IncomingMessage, res: ServerResponse) => void,
): Promise<Front> {
  const errors: unknown[] = [];
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const handler = createHandler({ onError: (e) => errors.push(e), ...(typeof options === 'function' ? options(port) : options) });
  server.on('request', wrap ? wrap(handler) : handler);
  return {
    port,
    handler,
    errors,
    close: async () => {
      await closeServer(server);
      await handler.close();
    },
  };
}

export interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: string[];
  readonly body: Buffer;
  readonly trailers: NodeJS.Dict<string>;
}

export interface SendOptions {
  readonly method?: string;
  readonly headers?: Record<string, string | string[]>;
  /** Sent with Content-Length unless `chunked`. */
  readonly body?: Buffer;
  readonly chunked?: boolean;
}

/** One request over a fresh connection (raw path, never fetch); rejects on a cut connection. */
export function send(port: number, path: string, o: SendOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | string[]> = { ...o.headers };
    if (o.body !== undefined && o.chunked !== true) headers['content-length'] = String(o.body.length);
    const req = request({ host: '127.0.0.1', port, path, method: o.method ?? 'GET', headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks), trailers: res.trailers });
      });
      res.on('error', reject);
      res.on('aborted', () => reject(new Error('response aborted')));
    });
    req.setTimeout(10_000, () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    if (o.body !== undefined) {
      if (o.chunked === true) {
        // Several writes, so the body really goes chunked.
        const half = Math.floor(o.body.length / 2);
        req.write(o.body.subarray(0, half));
        req.end(o.body.subarray(half));
      } else req.end(o.body);
    } else req.end();
  });
}

/**
 * Writes `bytes` on a fresh socket (parts 30 ms apart, so each is its own packet) and resolves with
 * everything read until the server closes it.
 */
export function raw(port: number, bytes: string | readonly string[], timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    sock.setTimeout(timeoutMs, () => sock.destroy(new Error('raw exchange timed out')));
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', (err: NodeJS.ErrnoException) => {
      // A reset after the answer still leaves the answer to look at.
      if (err.code === 'ECONNRESET' && chunks.length > 0) resolve(Buffer.concat(chunks).toString('latin1'));
      else reject(err);
    });
    sock.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    const parts = typeof bytes === 'string' ? [bytes] : bytes;
    parts.forEach((part, i) => setTimeout(() => sock.write(part, 'latin1'), i * 30));
  });
}

/** The status of a raw HTTP/1.x answer, 0 for none. */
export function statusOf(text: string): number {
  return Number(/^HTTP\/1\.[01] (\d{3}) /.exec(text)?.[1] ?? 0);
}

/** Rejects after `ms`, so a test that hangs fails with a reason instead of the runner's timeout. */
export function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
