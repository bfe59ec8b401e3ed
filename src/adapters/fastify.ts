/**
 * Fastify adapter: the serving core behind a catch-all route of the plugin's
 * prefix. Only types come from 'fastify', so loading this module never
 * requires it.
 *
 * @module vfserve/fastify
 */
import type { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyPluginAsync, RawServerBase } from 'fastify';
import { coreRequest, createHandler, discardBody, once, safeOnError, sendResponse, type HandlerOptions, type NodeRequest } from './node.js';
import { canonicalizePath } from '../mounts/canonical.js';
import { isReadonlyArray } from '../mounts/options.js';
import { refuseUpgrade } from '../proxy/upgrade.js';

/** One plugin instance's share of its server's upgrade requests. */
interface UpgradeRoute {
  /** What the plugin's mounts make of the request: a proxy mount takes it, another mount only knows the path, or none. */
  readonly claim: (req: IncomingMessage) => 'proxy' | 'mount' | undefined;
  readonly upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
}

// One 'upgrade' listener per server, shared by every vfserve plugin registered on it (several
// prefixes, several instances): each alone could not tell whether another would answer a request.
const upgradeRoutes = new WeakMap<EventEmitter, Set<UpgradeRoute>>();
const upgradeListeners = new WeakMap<EventEmitter, (req: IncomingMessage, socket: Duplex, head: Buffer) => void>();

/**
 * Adds `route` to `server`'s vfserve upgrade listener, installing it with the first route.
 *
 * The listener takes a request only when some plugin's proxy mount matches it. Any other upgrade
 * request is left to the app's other `'upgrade'` listeners, if there are any: node hands every
 * upgrade request to all of them and to no request handler, so answering one that another listener
 * owns would put two answers on one socket. When vfserve's is the only listener, nobody else will
 * answer, and node destroys nothing by itself: the request would hang until the client gave up.
 * It is refused then, 403 under a vfserve mount that is not a proxy (as lws), 404 otherwise.
 */
function addUpgradeRoute(server: EventEmitter, route: UpgradeRoute): void {
  let routes = upgradeRoutes.get(server);
  if (routes === undefined) {
    const set = new Set<UpgradeRoute>();
    routes = set;
    const listener = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
      let known = false;
      for (const r of set) {
        const claim = r.claim(req);
        if (claim === 'proxy') {
          r.upgrade(req, socket, head);
          return;
        }
        if (claim === 'mount') known = true;
      }
      if (server.listenerCount('upgrade') === 1) refuseUpgrade(socket, known ? 403 : 404);
    };
    upgradeRoutes.set(server, set);
    upgradeListeners.set(server, listener);
    server.on('upgrade', listener);
  }
  routes.add(route);
}

/** Removes `route`; the listener goes with the last one, leaving the server as it found it. */
function removeUpgradeRoute(server: EventEmitter, route: UpgradeRoute): void {
  const routes = upgradeRoutes.get(server);
  if (routes === undefined || !routes.delete(route) || routes.size > 0) return;
  const listener = upgradeListeners.get(server);
  if (listener !== undefined) server.off('upgrade', listener);
  upgradeRoutes.delete(server);
  upgradeListeners.delete(server);
}

/**
 * {@link HandlerOptions}; mountpoints are relative to the register `prefix`.
 * `fallthrough` (default true): a path no mount or no file answers goes to
 * Fastify's not-found handler; false sends the core's 404 page.
 * `onError` defaults to `request.log.error`.
 */
export type VfservePluginOptions = HandlerOptions;

/**
 * `app.register(vfservePlugin, { mounts, prefix? })`. Not wrapped with
 * `skip-override`: encapsulation is what gives it the register `prefix` and
 * keeps its content-type parser to its own routes. Async, so a bad option
 * rejects `register()`/`ready()`.
 */
// eslint-disable-next-line @typescript-eslint/require-await -- async so that a bad option rejects register() rather than throwing
export const vfservePlugin: FastifyPluginAsync<VfservePluginOptions, RawServerBase> = async (fastify, options) => {
  const prefix = fastify.prefix;
  // The core sees the whole request URL: prefixing the mountpoints keeps its redirects right.
  const mounts = isReadonlyArray(options.mounts)
    ? options.mounts.map((m) => ({ ...m, mountpoint: `${prefix}${m.mountpoint === '/' ? '' : m.mountpoint}` || '/' }))
    : options.mounts;
  const handler = createHandler({ ...options, mounts }); // checks the options and callback names
  const engine = handler.engine;
  // Proxy mounts keep connection pools: closed with the app, after their requests in flight.
  fastify.addHook('onClose', () => handler.close());
  if (engine.mounts.some((m) => m.kind === 'proxy')) {
    // WebSocket pass-through: upgrade requests never reach routes, so the plugin listens on the server.
    const server = fastify.server as EventEmitter;
    const tunnels = new Set<Duplex>();
    const route: UpgradeRoute = {
      claim: (req) => {
        const canon = canonicalizePath(req.url ?? '/');
        const mount = 'status' in canon ? undefined : engine.match(canon.path, true);
        return mount === undefined ? undefined : mount.kind === 'proxy' ? 'proxy' : 'mount';
      },
      upgrade: (req, socket, head) => {
        tunnels.add(socket);
        socket.once('close', () => tunnels.delete(socket));
        handler.upgrade(req, socket, head);
      },
    };
    addUpgradeRoute(server, route);
    // Before the server closes, which waits for every connection: a tunnel has no natural end, so
    // app.close() would wait for the clients to leave (@fastify/websocket closes its clients here too).
    fastify.addHook('preClose', (done) => {
      removeUpgradeRoute(server, route);
      for (const socket of tunnels) socket.destroy();
      done();
    });
  }
  const userOnError = options.onError;
  const onError = (err: unknown, req: NodeRequest, log: { error: (o: object, msg: string) => void }): void =>
    safeOnError(userOnError ?? ((e: unknown) => log.error({ err: e }, 'vfserve')))(err, req);
  const fallthrough = options.fallthrough ?? true;
  // Callback handlers, proxies and CGI programs read the raw request body themselves, and answer any method.
  const hasCallbacks = engine.mounts.some((m) => m.kind === 'callback' || m.kind === 'proxy' || m.kind === 'cgi');
  if (hasCallbacks) {
    // Fastify must leave the body unread.
    fastify.removeAllContentTypeParsers();
    fastify.addContentTypeParser('*', (_req, _body, done) => done(null));
  }
  // `/` as well: under a prefix, `/*` does not match the bare prefix, which the core redirects.
  for (const url of ['/', '/*']) {
    fastify.route({
      // Other methods only for callback mounts (file mounts answer them 405), so that a plain
      // static plugin does not claim OPTIONS /* from a CORS plugin.
      // A `cors` mount answers its own preflights, so it claims OPTIONS too.
      method: hasCallbacks ? fastify.supportedMethods : engine.mounts.some((m) => m.cors) ? ['GET', 'HEAD', 'OPTIONS'] : ['GET', 'HEAD'],
      url,
      handler(request, reply) {
        const req = request.raw;
        const res = reply.raw;
        const fail = once((err: unknown): void => onError(err, req, request.log));
        engine.handle(coreRequest(req)).then(
          (out) => {
            if (out.notFound === true && fallthrough) {
              discardBody(out);
              reply.callNotFound();
              return;
            }
            reply.hijack(); // from here on the raw response is ours
            if (handler.runOrigin(req, res, out, fail)) return;
            // Headers that hooks put on the reply (CORS, security headers) go out too; the core's win.
            for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) res.setHeader(name, value);
            sendResponse(res, out, fail);
          },
          (err: unknown) => {
            // A bug in the core: never echoed.
            reply.hijack();
            fail(err);
            if (res.headersSent) res.destroy();
            else {
              res.statusCode = 500;
              res.end();
            }
          },
        );
      },
    });
  }
};

export default vfservePlugin;
