/**
 * vfserve: a virtual-filesystem and static-file serving engine.
 *
 * The fops layer (`src/fops`) is the foundation: backends that open a path
 * and return a handle, chained by path signature as in libwebsockets.
 *
 * @module vfserve
 */
export * from './fops/index.js';
export { LruCache, type LruOptions } from './cache/lru.js';
export * from './mounts/index.js';
export * from './cache/http.js';
export { CgiError, KILL_GRACE_MS, MAX_BUFFERED_BODY } from './cgi/run.js';
export { MAX_HEADER_BLOCK } from './cgi/output.js';
export { CGI_PATH } from './cgi/env.js';
export {
  coreRequest,
  createHandler,
  logError,
  sendResponse,
  type CallbackHandler,
  type HandlerOptions,
  type NodeHandler,
  type NodeHandlerWithEngine,
  type NodeRequest,
  type NodeResponse,
} from './adapters/node.js';
export type { UpgradeOutcome } from './proxy/upgrade.js';
