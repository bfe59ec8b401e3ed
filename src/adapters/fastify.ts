/**
 * Fastify adapter: the serving core behind a catch-all route of the plugin's
 * prefix. Only types come from 'fastify', so loading this module never
 * requires it.
 *
 * @module vfserve/fastify
 */
import type { FastifyPluginAsync, RawServerBase } from 'fastify';
import { coreRequest, createHandler, discardBody, once, safeOnError, sendResponse, type HandlerOptions, type NodeRequest } from './node.js';
import { isReadonlyArray } from '../mounts/options.js';

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
