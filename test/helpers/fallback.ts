/**
 * Raw-socket helpers for the HTTP fallback tests: onward servers that record what reaches them,
 * a client that collects bytes until a condition, and a relay that splits a TLS client's first
 * flight into several writes.
 */
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/** An onward server: records every byte it receives per connection and answers as `onConnection` says. */
export interface Onward {
  readonly server: Server;
  /** `ipv4:127.0.0.1:PORT` (or the unix path form when listening on a path). */
  readonly spec: string;
  readonly port: number;
  /** Bytes received, one Buffer per connection (in accept order, updated as they arrive). */
  readonly received: Buffer[];
  /** Resolves with the nth connection's socket once it is accepted. */
  connection(n?: number): Promise<Socket>;
  close(): Promise<void>;
}

/**
 * Starts an onward server on 127.0.0.1 (or the unix socket `path`). By default it echoes and, when
 * the client ends its side, writes `bye\n` and ends (a half-close answered). `banner` makes it speak
 * first, as SSH does.
 */
export async function onwardServer(opts: { banner?: string; path?: string; host?: string } = {}): Promise<Onward> {
  const received: Buffer[] = [];
  const sockets: Socket[] = [];
  const waiters: { n: number; resolve: (s: Socket) => void }[] = [];
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    const i = received.length;
    received.push(Buffer.alloc(0));
    sockets.push(socket);
    for (const w of waiters.filter((x) => x.n === i)) w.resolve(socket);
    socket.on('error', () => undefined);
    if (opts.banner !== undefined) socket.write(opts.banner);
    socket.on('data', (c: Buffer) => {
      received[i] = Buffer.concat([received[i]!, c]);
      socket.write(c);
    });
    socket.on('end', () => socket.end('bye\n'));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if (opts.path !== undefined) server.listen(opts.path, resolve);
    else server.listen(0, opts.host ?? '127.0.0.1', resolve);
  });
  const port = opts.path !== undefined ? 0 : (server.address() as AddressInfo).port;
  const spec = opts.path !== undefined ? `unix:${opts.path}` : opts.host === '::1' ? `ipv6:[::1]:${port}` : `ipv4:127.0.0.1:${port}`;
  return {
    server,
    spec,
    port,
    received,
    connection: (n = 0) => (sockets[n] ? Promise.resolve(sockets[n]) : new Promise((resolve) => waiters.push({ n, resolve }))),
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A client socket that keeps everything it receives and whether (and how) it ended. */
export interface RawClient {
  readonly socket: Socket;
  /** Everything received so far. */
  data(): Buffer;
  readonly ended: () => boolean;
  readonly closed: () => boolean;
  readonly error: () => Error | undefined;
  /** Resolves once `test(received)` holds; rejects after `ms`. */
  until(test: (received: Buffer) => boolean, ms?: number): Promise<Buffer>;
  /** Resolves once the socket has closed; rejects after `ms`. */
  whenClosed(ms?: number): Promise<void>;
}

/** Connects to 127.0.0.1:`port` with allowHalfOpen, so ending our side still lets us read. */
export async function rawClient(port: number, host = '127.0.0.1'): Promise<RawClient> {
  const socket = connect({ port, host, allowHalfOpen: true });
  let buf = Buffer.alloc(0);
  let ended = false;
  let closed = false;
  let error: Error | undefined;
  const check: (() => void)[] = [];
  const poke = (): void => {
    for (const c of [...check]) c();
  };
  socket.on('data', (c: Buffer) => {
    buf = Buffer.concat([buf, c]);
    poke();
  });
  socket.on('end', () => {
    ended = true;
    // As an ordinary client does once the other side is done (the test may have ended first).
    socket.end();
    poke();
  });
  socket.on('error', (err) => {
    error = err;
  });
  socket.on('close', () => {
    closed = true;
    poke();
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const wait = (ok: () => boolean, ms: number, what: string): Promise<void> =>
    new Promise((resolve, reject) => {
      const run = (): void => {
        if (!ok()) return;
        check.splice(check.indexOf(run), 1);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        check.splice(check.indexOf(run), 1);
        reject(new Error(`${what} not within ${ms} ms; received ${JSON.stringify(buf.toString('latin1'))}, ended ${ended}, closed ${closed}`));
      }, ms);
      check.push(run);
      run();
    });
  return {
    socket,
    data: () => buf,
    ended: () => ended,
    closed: () => closed,
    error: () => error,
    until: async (test, ms = 5000) => {
      await wait(() => test(buf), ms, 'the expected bytes');
      return buf;
    },
    whenClosed: (ms = 5000) => wait(() => closed, ms, 'close'),
  };
}

export const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A TCP relay in front of `targetPort` that collects the client's first TLS record (the
 * ClientHello, however many segments it came in), checks it is at least `minRecord` bytes, and
 * writes it onward in `pieces` writes `gapMs` apart; everything after is piped both ways. `sizes`
 * gets the record size of each relayed connection.
 */
export async function splittingRelay(
  targetPort: number,
  opts: { pieces: number; gapMs: number },
): Promise<{ port: number; sizes: number[]; close: () => Promise<void> }> {
  const sizes: number[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    sockets.add(client);
    client.on('error', () => undefined);
    const upstream = connect({ port: targetPort, host: '127.0.0.1', noDelay: true });
    sockets.add(upstream);
    upstream.on('error', () => client.destroy());
    let first = Buffer.alloc(0);
    const onData = (c: Buffer): void => {
      first = Buffer.concat([first, c]);
      if (first.length < 5) return;
      const total = 5 + first.readUInt16BE(3);
      if (first.length < total) return;
      client.off('data', onData);
      client.pause();
      sizes.push(total);
      void (async () => {
        const record = first.subarray(0, total);
        const step = Math.ceil(record.length / opts.pieces);
        for (let at = 0; at < record.length; at += step) {
          upstream.write(record.subarray(at, at + step));
          await delay(opts.gapMs);
        }
        if (first.length > total) upstream.write(first.subarray(total));
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      })();
    };
    client.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    sizes,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** ALPN names that pad a ClientHello to the 1.5–1.8 KB of a post-quantum one (X25519MLKEM768's key share alone is 1,216 bytes). */
export const PAD_ALPN = ['http/1.1', ...Array.from({ length: 110 }, (_, i) => `x-pad-${String(i).padStart(4, '0')}`)];
