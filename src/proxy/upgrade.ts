/**
 * WebSocket (and other) upgrades through a proxy mount: the 101 is relayed and both directions piped.
 * SKELETON: replaced by the upgrade implementation.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { CoreResponse, ProxyTarget } from '../mounts/content.js';
import type { ProxyContext } from './forward.js';

/** Forwards an upgrade request as `out.proxy` says; the client socket is piped to the origin's after its 101. */
export function forwardUpgrade(
  _req: IncomingMessage,
  socket: Duplex,
  _head: Buffer,
  _out: CoreResponse & { readonly proxy: ProxyTarget },
  _ctx: ProxyContext,
): void {
  socket.end('HTTP/1.1 501 Not Implemented\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
}
