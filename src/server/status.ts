/**
 * The server-status page, after lws-server-status: the handler behind a
 * `callback://server-status` mount, shipped with vfserve. A plugin that
 * exports a handler of that name (`export { mine as 'server-status' }`)
 * replaces it.
 *
 * - `<mountpoint>` and `<mountpoint>/`: JSON;
 * - `<mountpoint>/metrics`: the Prometheus text exposition format (0.0.4).
 *
 * What it shows never includes a disk path: vhosts by name, archives by the
 * URL path they are served under (mountpoint plus the path below it), never
 * by origin. Put the mount on a vhost that only the operator can reach (an
 * `interface` of 127.0.0.1), as lws advises for its own status page.
 */
import type { ServerResponse } from 'node:http';
import type { CallbackHandler, CallbackTarget, NodeRequest, NodeResponse } from '../adapters/node.js';

/** The `callback://` name of the shipped status handler. */
export const STATUS_HANDLER = 'server-status';

/** One vhost's counters since the server started (vhosts of the same name add up). */
export interface VhostStatus {
  readonly name: string;
  readonly requests: number;
  /** Body bytes sent. */
  readonly bytes: number;
  /** Responses by status code. */
  readonly statuses: Readonly<Record<string, number>>;
  readonly caches: {
    readonly resolutions: { readonly entries: number; readonly hits: number; readonly misses: number; readonly hitRate: number | null };
    readonly smallContents: {
      readonly entries: number;
      readonly bytes: number;
      readonly hits: number;
      readonly misses: number;
      readonly hitRate: number | null;
    };
  };
}

/** What the status page reports; built afresh per request. */
export interface ServerStatus {
  readonly server: 'vfserve';
  readonly version: string;
  readonly startedAt: string;
  readonly uptimeSeconds: number;
  readonly connections: { readonly open: number; readonly total: number };
  readonly requests: number;
  readonly vhosts: readonly VhostStatus[];
  readonly archives: {
    readonly indexBuilds: number;
    readonly cached: number;
    readonly open: number;
    readonly openEntries: number;
    readonly accessIndexes: number;
    readonly accessIndexBytes: number;
    /** Indexed archives held now, by the URL path they are served under. */
    readonly indexes: readonly { readonly url: string; readonly entries: number; readonly bytes: number }[];
  };
}

/** A hit rate from 0 to 1, or null before the first lookup. */
export function hitRate(hits: number, misses: number): number | null {
  return hits + misses === 0 ? null : Math.round((hits / (hits + misses)) * 10_000) / 10_000;
}

/**
 * The handler for `callback://server-status`, reporting what `status()` gives.
 * Only GET and HEAD; anything below the mountpoint other than `/metrics` is 404.
 * The answer is never cached.
 */
export function createStatusHandler(status: () => ServerStatus): CallbackHandler {
  return (req: NodeRequest, res: NodeResponse, target: CallbackTarget) => {
    const send = (code: number, type: string, body: string, extra: Record<string, string> = {}): void => {
      const buf = Buffer.from(body);
      (res as ServerResponse).writeHead(code, { 'content-type': type, 'content-length': String(buf.length), 'cache-control': 'no-store', ...extra });
      if (req.method === 'HEAD') res.end();
      else res.end(buf);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(405, 'text/plain; charset=utf-8', 'Method Not Allowed\n', { allow: 'GET, HEAD' });
      return;
    }
    if (target.remainder === '' || target.remainder === '/') send(200, 'application/json; charset=utf-8', `${JSON.stringify(status(), null, 2)}\n`);
    else if (target.remainder === '/metrics') send(200, 'text/plain; version=0.0.4; charset=utf-8', prometheusText(status()));
    else send(404, 'text/plain; charset=utf-8', 'Not Found\n');
  };
}

function label(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/** The status in the Prometheus text exposition format 0.0.4: HELP and TYPE once per family, then its samples. */
export function prometheusText(s: ServerStatus): string {
  const out: string[] = [];
  const family = (name: string, type: 'counter' | 'gauge', help: string, samples: readonly (readonly [Record<string, string>, number])[]): void => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) {
      const l = Object.entries(labels)
        .map(([k, v]) => `${k}="${label(v)}"`)
        .join(',');
      out.push(`${name}${l === '' ? '' : `{${l}}`} ${Number.isFinite(value) ? value : 0}`);
    }
  };
  family('vfserve_uptime_seconds', 'gauge', 'Seconds since the server started.', [[{}, s.uptimeSeconds]]);
  family('vfserve_connections_open', 'gauge', 'Client connections open now.', [[{}, s.connections.open]]);
  family('vfserve_connections_total', 'counter', 'Client connections accepted.', [[{}, s.connections.total]]);
  family(
    'vfserve_responses_total',
    'counter',
    'Responses by vhost and status.',
    s.vhosts.flatMap((v) => Object.entries(v.statuses).map(([code, n]) => [{ vhost: v.name, status: code }, n] as const)),
  );
  family(
    'vfserve_response_bytes_total',
    'counter',
    'Body bytes sent, by vhost.',
    s.vhosts.map((v) => [{ vhost: v.name }, v.bytes] as const),
  );
  const caches = (pick: (v: VhostStatus, cache: 'resolutions' | 'smallContents') => number): (readonly [Record<string, string>, number])[] =>
    s.vhosts.flatMap((v) => [
      [{ vhost: v.name, cache: 'resolutions' }, pick(v, 'resolutions')] as const,
      [{ vhost: v.name, cache: 'small-contents' }, pick(v, 'smallContents')] as const,
    ]);
  family(
    'vfserve_cache_hits_total',
    'counter',
    'Cache lookups answered from memory.',
    caches((v, c) => v.caches[c].hits),
  );
  family(
    'vfserve_cache_misses_total',
    'counter',
    'Cache lookups that went to the filesystem.',
    caches((v, c) => v.caches[c].misses),
  );
  family(
    'vfserve_cache_entries',
    'gauge',
    'Entries held in a cache now.',
    caches((v, c) => v.caches[c].entries),
  );
  family(
    'vfserve_cache_bytes',
    'gauge',
    'Bytes held in the small-content cache now.',
    s.vhosts.map((v) => [{ vhost: v.name, cache: 'small-contents' }, v.caches.smallContents.bytes] as const),
  );
  const a = s.archives;
  family('vfserve_archive_index_builds_total', 'counter', 'Archive central directories parsed.', [[{}, a.indexBuilds]]);
  family('vfserve_archives_open', 'gauge', 'Archive files open now.', [[{}, a.open]]);
  family('vfserve_archive_entries_open', 'gauge', 'Archive entry handles open now.', [[{}, a.openEntries]]);
  family('vfserve_archive_access_index_bytes', 'gauge', 'Bytes of random-access indexes into deflated entries.', [[{}, a.accessIndexBytes]]);
  family(
    'vfserve_archive_index_entries',
    'gauge',
    'Entries of each indexed archive, by URL path.',
    a.indexes.map((x) => [{ archive: x.url }, x.entries] as const),
  );
  family(
    'vfserve_archive_index_bytes',
    'gauge',
    'Approximate memory of each archive index, by URL path.',
    a.indexes.map((x) => [{ archive: x.url }, x.bytes] as const),
  );
  return `${out.join('\n')}\n`;
}
