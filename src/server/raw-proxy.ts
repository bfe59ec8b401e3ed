/**
 * lws's raw-proxy role: a client connection relayed byte for byte to an `onward` TCP or unix socket.
 */
import { connect, type Socket } from 'node:net';
import { formatOnward, type OnwardTarget } from './listen-accept.js';

/** How long connecting onward may take before the client is closed (nginx's proxy_connect_timeout is 60 s; a local service answers in far less). */
export const CONNECT_TIMEOUT_MS = 10_000;

/** TCP keepalive probes on both sockets: a peer that vanished is noticed even with no idle timeout. */
const KEEPALIVE_MS = 60_000;

/** What became of one proxied connection, reported once when both sockets are closed. */
export interface RawProxyRecord {
  /** The client's address, as the socket saw it (`-` when unknown). */
  readonly client: string;
  /** The target, as configured (`ipv4:127.0.0.1:22`). */
  readonly onward: string;
  /** Why the connection went to the proxy: the port's first bytes were not HTTP, `apply-listen-accept`, or the detection timeout. */
  readonly reason: 'fallback' | 'apply' | 'timeout';
  /** 200 once the onward connection was made, 502 if it could not be (nginx stream's `$status`). */
  readonly status: 200 | 502;
  /** Bytes relayed from the client onward, the peeked first bytes included. */
  readonly bytesUp: number;
  /** Bytes relayed from the onward side to the client (written to the client's socket). */
  readonly bytesDown: number;
  readonly startedAt: Date;
  readonly durationMs: number;
  /** Why the onward connection failed (status 502). */
  readonly error?: Error;
}

export interface RawProxyOptions {
  readonly onward: OnwardTarget;
  /** Bytes already read from the client (the detection's peek): sent onward first, unchanged. */
  readonly head: Buffer;
  readonly reason: RawProxyRecord['reason'];
  /** No byte either way for this long closes both sides; 0: never. */
  readonly idleTimeoutMs: number;
  /** Called once, after both sockets are closed. */
  readonly done: (record: RawProxyRecord) => void;
  /** Overrides {@link CONNECT_TIMEOUT_MS} (tests). */
  readonly connectTimeoutMs?: number;
}

/**
 * Relays `client` to `options.onward`. The head goes first; then both directions are piped with
 * backpressure, and an end from either side is passed on as a half-close (`client` must have been
 * accepted with `allowHalfOpen`, as the front door's sockets are). An error on either side closes
 * both. If the onward connection fails, the client is ended (its unread input discarded) and the
 * record says 502 with the error; nothing throws.
 */
export function rawProxy(client: Socket, options: RawProxyOptions): void {
  const startedAt = new Date();
  // Read now: a socket that has closed no longer knows its peer.
  const clientAddress = client.remoteAddress ?? '-';
  const target = options.onward;
  const onward =
    target.kind === 'unix'
      ? connect({ path: target.path, allowHalfOpen: true })
      : connect({ host: target.host, port: target.port, family: target.kind === 'ipv6' ? 6 : 4, allowHalfOpen: true });
  let connected = false;
  let failure: Error | undefined;
  let pending = 2;
  // Bytes are counted only for a connection made: an unconnected socket's bytesWritten counts what was queued.
  const closed = (): void => {
    if (--pending > 0) return;
    options.done({
      client: clientAddress,
      onward: formatOnward(target),
      reason: options.reason,
      status: connected ? 200 : 502,
      bytesUp: connected ? onward.bytesWritten : 0,
      bytesDown: connected ? client.bytesWritten : 0,
      startedAt,
      durationMs: Date.now() - startedAt.getTime(),
      ...(failure ? { error: failure } : {}),
    });
  };
  client.once('close', closed);
  onward.once('close', closed);
  // A side that closed before both of its directions finished (destroyed, reset) takes the other
  // with it; after an orderly exchange of ends the other side is closing by itself, its writes flushed.
  const cut = (from: Socket, to: Socket) => (): void => {
    if (connected && (!from.readableEnded || !from.writableFinished)) to.destroy();
  };
  client.once('close', cut(client, onward));
  onward.once('close', cut(onward, client));
  // Errors (a reset, a refused connect) close both sides; neither may reach the process as uncaught.
  client.on('error', () => onward.destroy());
  onward.on('error', (err) => {
    if (!connected) {
      failure ??= err;
      // The client did nothing wrong: it gets an orderly end, not a reset; what it still sends is dropped.
      client.resume();
      client.end();
      setTimeout(() => client.destroy(), 1000).unref();
    } else client.destroy();
  });
  onward.setTimeout(options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS, () => {
    if (!connected) onward.destroy(new Error(`connecting to ${formatOnward(target)} timed out`));
  });
  // The client may already have sent its end during detection (a one-shot `printf … | nc`).
  const clientEnded = client.readableEnded;
  onward.once('connect', () => {
    connected = true;
    onward.setTimeout(0);
    onward.setNoDelay(true);
    onward.setKeepAlive(true, KEEPALIVE_MS);
    client.setKeepAlive(true, KEEPALIVE_MS);
    if (options.idleTimeoutMs > 0) {
      // A socket's timer counts reads and writes alike, and every relayed byte crosses the client socket.
      client.setTimeout(options.idleTimeoutMs, () => {
        client.destroy();
        onward.destroy();
      });
    }
    if (options.head.length > 0) onward.write(options.head);
    if (clientEnded) onward.end();
    // pipe(): backpressure both ways, and each side's end becomes the other's end (half-close). Not
    // stream.pipeline, which destroys a duplex once one direction is done and so cuts the other.
    else client.pipe(onward);
    onward.pipe(client);
  });
}
