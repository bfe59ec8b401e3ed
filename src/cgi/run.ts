/**
 * Carries out a CGI plan: runs the program for one request (RFC 3875) and relays its answer.
 * SKELETON: replaced by the CGI implementation.
 */
import type { NodeRequest, NodeResponse } from '../adapters/node.js';
import type { CgiTarget, CoreResponse } from '../mounts/content.js';

/** What a CGI request needs from its adapter. */
export interface CgiContext {
  /** Reports the request's failure, once. */
  readonly fail: (err: unknown) => void;
  /** The server's log, for the program's stderr (one call per line) and for malformed output. */
  readonly log: (line: string) => void;
  /** Serves `url` (a path and query) internally as a GET on the same response: RFC 3875 local redirects. */
  readonly localRedirect: (url: string) => void;
}

/** Runs `out.cgi`'s program for `req` and sends its response on `res`, with `out.headers` (the configured headers) over it. */
export function runCgi(_req: NodeRequest, res: NodeResponse, _out: CoreResponse & { readonly cgi: CgiTarget }, _ctx: CgiContext): void {
  res.statusCode = 501;
  res.end();
}
