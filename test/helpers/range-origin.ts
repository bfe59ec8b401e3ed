import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Faults the origin can be told to inject; each applies to every request until changed. */
export interface OriginFaults {
  /** Answers range requests with 200 and the whole body. */
  ignoreRange?: boolean;
  /** Answers suffix ranges (`bytes=-N`) with 416. */
  refuseSuffix?: boolean;
  /** Reads `bytes=-N` as `0-N`, as s3rver does. */
  misparseSuffix?: boolean;
  /** A new ETag on every response (the bytes stay the same). */
  flipEtag?: boolean;
  /** Answers every GET with this status (412 or 416). */
  forceStatus?: number;
  /** Sends half of a range body under the full Content-Length, then cuts the connection. */
  truncate?: boolean;
  /** Sends the headers and part of a range body, then stalls (never ends). */
  stall?: boolean;
  /** Answers ranges with chunked transfer encoding (no Content-Length); `extra` appends bytes not asked. */
  chunked?: boolean | 'extra';
  /** Answers explicit ranges one byte later than asked (a correct Content-Range for the wrong bytes). */
  shiftRange?: boolean;
  /** A weak ETag. */
  weakEtag?: boolean;
  /** Sends the second half of each range body this many milliseconds after the first (a slow body that does end). */
  slowBodyMs?: number;
}

/** An in-repo HTTP origin serving objects from memory with Range, ETags and If-Match, and fault knobs. */
export interface RangeOrigin {
  readonly url: string;
  readonly objects: Map<string, Buffer>;
  faults: OriginFaults;
  /** Every request: method, path and Range header. */
  readonly log: { method: string; path: string; range: string | undefined }[];
  /** Client connections open now. */
  connections(): Promise<number>;
  /** The most responses in progress at once so far. */
  readonly maxActive: number;
  close(): Promise<void>;
}

function etagOf(body: Buffer): string {
  return `"${createHash('sha1').update(body).digest('hex').slice(0, 16)}"`;
}

export async function startRangeOrigin(objects: Record<string, Buffer> = {}): Promise<RangeOrigin> {
  const store = new Map(Object.entries(objects));
  let flips = 0;
  let active = 0;
  let maxActive = 0;
  const origin: RangeOrigin = {
    url: '',
    objects: store,
    faults: {},
    log: [],
    get maxActive() {
      return maxActive;
    },
    close: () => Promise.resolve(),
    connections: () => Promise.resolve(0),
  };
  const stalled = new Set<ServerResponse>();
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const f = origin.faults;
    const path = decodeURIComponent((req.url ?? '/').split('?')[0]!);
    origin.log.push({ method: req.method ?? '', path, range: req.headers.range });
    maxActive = Math.max(maxActive, ++active);
    res.on('close', () => active--);
    const body = store.get(path);
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    let etag = f.flipEtag ? `"flip-${++flips}"` : etagOf(body);
    if (f.weakEtag) etag = `W/${etag}`;
    const common = { etag, 'last-modified': new Date(1_700_000_000_000).toUTCString(), 'accept-ranges': 'bytes' };
    if (f.forceStatus !== undefined && req.method === 'GET') {
      res.writeHead(f.forceStatus, f.forceStatus === 416 ? { 'content-range': `bytes */${body.length}` } : {}).end();
      return;
    }
    const ifMatch = req.headers['if-match'];
    if (ifMatch !== undefined && ifMatch !== etag) {
      res.writeHead(412).end();
      return;
    }
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, common).end();
      return;
    }
    const range = req.headers.range;
    if (req.method === 'HEAD' || range === undefined || f.ignoreRange) {
      res.writeHead(200, { ...common, 'content-length': body.length });
      // Ignoring Range: the whole object, which a careful client never reads.
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    const m = /^bytes=(\d*)-(\d*)$/.exec(range);
    if (!m) {
      res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
      return;
    }
    let start: number;
    let end: number;
    if (m[1] === '') {
      if (f.refuseSuffix) {
        res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
        return;
      }
      const n = Number(m[2]);
      if (f.misparseSuffix) [start, end] = [0, Math.min(n, body.length - 1)];
      else [start, end] = [Math.max(0, body.length - n), body.length - 1];
    } else {
      start = Number(m[1]) + (f.shiftRange ? 1 : 0);
      end = m[2] === '' ? body.length - 1 : Math.min(Number(m[2]) + (f.shiftRange ? 1 : 0), body.length - 1);
    }
    if (start > end || start >= body.length) {
      res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
      return;
    }
    const slice = body.subarray(start, end + 1);
    const headers = { ...common, 'content-range': `bytes ${start}-${end}/${body.length}` };
    if (f.chunked) {
      res.writeHead(206, headers);
      res.write(slice.subarray(0, slice.length >> 1));
      res.write(slice.subarray(slice.length >> 1));
      res.end(f.chunked === 'extra' ? Buffer.from('EXTRA BYTES') : undefined);
      return;
    }
    res.writeHead(206, { ...headers, 'content-length': slice.length });
    if (f.truncate) {
      res.write(slice.subarray(0, slice.length >> 1), () => res.destroy());
      return;
    }
    if (f.stall) {
      stalled.add(res);
      res.write(slice.subarray(0, slice.length >> 1));
      return;
    }
    if (f.slowBodyMs !== undefined) {
      res.write(slice.subarray(0, slice.length >> 1));
      setTimeout(() => res.end(slice.subarray(slice.length >> 1)), f.slowBodyMs);
      return;
    }
    res.end(slice);
  };
  const server: Server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  Object.defineProperty(origin, 'url', { value: `http://127.0.0.1:${port}` });
  origin.connections = () => new Promise((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
  origin.close = async () => {
    for (const r of stalled) r.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return origin;
}
