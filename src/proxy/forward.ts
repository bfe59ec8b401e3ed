/**
 * Carries out a proxy plan: forwards one request to its origin and relays the answer.
 * SKELETON: replaced by the proxy implementation.
 */
import type { NodeRequest, NodeResponse } from '../adapters/node.js';
import type { CoreResponse, ProxyTarget } from '../mounts/content.js';

/** The connection pools of one handler: one per origin, closed with the handler. */
export class ProxyPools {
  /** Closes every pool, letting requests in flight finish. */
  async close(): Promise<void> {}
}

/** What a proxied request needs from its adapter. */
export interface ProxyContext {
  readonly pools: ProxyPools;
  /** Reports the request's failure, once. */
  readonly fail: (err: unknown) => void;
}

/** Forwards `req` as `out.proxy` says and relays the answer on `res`, with `out.headers` (the configured headers) over it. */
export function forward(_req: NodeRequest, res: NodeResponse, _out: CoreResponse & { readonly proxy: ProxyTarget }, _ctx: ProxyContext): void {
  res.statusCode = 501;
  res.end();
}
