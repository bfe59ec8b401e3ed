/**
 * A real S3 API for tests: s3rver (npm) on 127.0.0.1, storing in a temp directory, behind a thin
 * node:http front that checks SigV4 signatures itself (s3rver 3.7.1 checks only that the access key
 * id exists: "Signature version 4 calculation is unimplemented" in its authentication middleware)
 * and logs every request. The check is written here from the SigV4 specification with node:crypto,
 * independently of the aws4 library vfserve signs with, so that a signing mistake fails a test.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { request } from 'node:http';
import aws4 from 'aws4';
import { rmTree, tmpDir } from './fixtures.js';

/** The key pair the store knows (registered with s3rver's account model, and checked by the front). */
export const S3_ACCESS_KEY_ID = 'VFSERVETESTKEYID0001';
export const S3_SECRET_ACCESS_KEY = 'vfserve-test-secret/3xQp9Zr7Lk2Wm5Nb8Vc1';
export const S3_REGION = 'us-east-1';

interface S3rverModule {
  new (options: Record<string, unknown>): { callback(): RequestListener; logger?: { close(): void } };
}

const require = createRequire(import.meta.url);

/** Loads s3rver; a string says why it could not be. */
function loadS3rver(): S3rverModule | string {
  try {
    const S3rver = require('s3rver') as S3rverModule;
    const account = require('s3rver/lib/models/account.js') as { DUMMY_ACCOUNT: { createKeyPair(id: string, secret: string): void } };
    account.DUMMY_ACCOUNT.createKeyPair(S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY);
    return S3rver;
  } catch (err) {
    return `s3rver could not be loaded (npm install installs it as a devDependency): ${(err as Error).message.split('\n')[0] ?? ''}`;
  }
}

const loaded = loadS3rver();

/**
 * Why the s3rver tests cannot run here, or false: they run. Skipping is allowed only on a developer's
 * machine without s3rver; under CI they run and fail.
 */
export const s3Skip: string | false = typeof loaded === 'string' && process.env.CI === undefined ? loaded : false;

/** One request the store saw. */
export interface S3LogEntry {
  readonly method: string;
  /** Path without the query. */
  readonly path: string;
  readonly range: string | undefined;
  readonly ifMatch: string | undefined;
  readonly ifNoneMatch: string | undefined;
  /** How it was authorised: an `Authorization` header, a presigned query, or not at all. */
  readonly auth: 'header' | 'query' | 'none';
  /** The signed header names (header or query auth). */
  readonly signedHeaders: readonly string[];
  /** Status the front answered; undefined when s3rver answered. */
  readonly refused: number | undefined;
}

export interface S3Store {
  /** `http://127.0.0.1:port`. */
  readonly url: string;
  readonly log: S3LogEntry[];
  /** Creates a bucket (signed PUT). */
  createBucket(bucket: string): Promise<void>;
  /** Uploads an object (signed PUT) and returns its ETag. */
  put(bucket: string, key: string, body: Buffer): Promise<string>;
  /** A URL presigned for GET of `bucket/key`, valid for `seconds`. */
  presign(bucket: string, key: string, seconds?: number): string;
  close(): Promise<void>;
}

const sha256 = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');
const hmac = (key: Buffer | string, s: string): Buffer => createHmac('sha256', key).update(s).digest();
const rfc3986 = (s: string): string => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** Why `req` does not carry a valid SigV4 signature by the test key pair, or undefined when it does. */
function sigV4Defect(req: IncomingMessage, auth: 'header' | 'query', signedOut: string[]): string | undefined {
  const raw = req.url ?? '/';
  const q = raw.indexOf('?');
  const rawPath = q === -1 ? raw : raw.slice(0, q);
  const pairs = (q === -1 ? '' : raw.slice(q + 1))
    .split('&')
    .filter((p) => p !== '')
    .map((p) => {
      const eq = p.indexOf('=');
      const k = decodeURIComponent(eq === -1 ? p : p.slice(0, eq));
      const v = eq === -1 ? '' : decodeURIComponent(p.slice(eq + 1).replace(/\+/g, ' '));
      return [k, v] as const;
    });
  const query = new Map(pairs);
  let credential: string;
  let signedHeaders: string;
  let signature: string;
  let date: string;
  let payload: string;
  if (auth === 'header') {
    const m = /^AWS4-HMAC-SHA256 Credential=([^,]+), ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(String(req.headers.authorization));
    if (!m) return 'malformed Authorization';
    [, credential = '', signedHeaders = '', signature = ''] = m;
    date = String(req.headers['x-amz-date'] ?? '');
    payload = String(req.headers['x-amz-content-sha256'] ?? '');
  } else {
    credential = query.get('X-Amz-Credential') ?? '';
    signedHeaders = query.get('X-Amz-SignedHeaders') ?? '';
    signature = query.get('X-Amz-Signature') ?? '';
    date = query.get('X-Amz-Date') ?? '';
    payload = 'UNSIGNED-PAYLOAD';
    const expires = Number(query.get('X-Amz-Expires'));
    const t = Date.UTC(+date.slice(0, 4), +date.slice(4, 6) - 1, +date.slice(6, 8), +date.slice(9, 11), +date.slice(11, 13), +date.slice(13, 15));
    if (!(Date.now() <= t + expires * 1000)) return 'expired';
  }
  signedOut.push(...signedHeaders.split(';'));
  const [id, day, region, service, term] = credential.split('/');
  if (id !== S3_ACCESS_KEY_ID || service !== 's3' || term !== 'aws4_request' || day !== date.slice(0, 8) || region === undefined) return 'bad credential scope';
  const names = signedHeaders.split(';');
  if (!names.includes('host')) return 'host not signed';
  if (auth === 'header') {
    // What vfserve promises: every header that selects or conditions the bytes is signed too.
    for (const h of ['range', 'if-match', 'if-none-match', 'x-amz-date', 'x-amz-content-sha256', 'x-amz-security-token'])
      if (req.headers[h] !== undefined && !names.includes(h)) return `${h} not signed`;
  }
  const canonicalQuery = pairs
    .filter(([k]) => auth === 'header' || k !== 'X-Amz-Signature')
    .map(([k, v]) => `${rfc3986(k)}=${rfc3986(v)}`)
    .sort()
    .join('&');
  const canonicalPath = rawPath
    .split('/')
    .map((s) => rfc3986(decodeURIComponent(s)))
    .join('/');
  const canonicalHeaders = names
    .map(
      (n) =>
        `${n}:${String(req.headers[n] ?? '')
          .trim()
          .replace(/\s+/g, ' ')}\n`,
    )
    .join('');
  const canonical = [req.method, canonicalPath, canonicalQuery, canonicalHeaders, signedHeaders, payload].join('\n');
  const scope = `${day}/${region}/s3/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', date, scope, sha256(canonical)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${S3_SECRET_ACCESS_KEY}`, day), region), 's3'), 'aws4_request');
  const want = createHmac('sha256', key).update(toSign).digest();
  const got = Buffer.from(signature, 'hex');
  return got.length === want.length && timingSafeEqual(got, want) ? undefined : 'signature does not match';
}

/** Starts s3rver behind the checking front; throws when s3rver could not be loaded (the CI case). */
export async function startS3Store(): Promise<S3Store> {
  if (typeof loaded === 'string') throw new Error(loaded);
  const dir = tmpDir('vfserve-s3rver-');
  const s3 = new loaded({ directory: dir, silent: true, allowMismatchedSignatures: false });
  const handle = s3.callback();
  const log: S3LogEntry[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const auth = req.headers.authorization !== undefined ? 'header' : /[?&]X-Amz-Signature=/.test(req.url ?? '') ? 'query' : 'none';
    const signed: string[] = [];
    const defect = auth === 'none' ? undefined : sigV4Defect(req, auth, signed);
    const h = (n: string) => {
      const v = req.headers[n];
      return typeof v === 'string' ? v : undefined;
    };
    log.push({
      method: req.method ?? '',
      path: (req.url ?? '').replace(/\?.*$/, ''),
      range: h('range'),
      ifMatch: h('if-match'),
      ifNoneMatch: h('if-none-match'),
      auth,
      signedHeaders: signed,
      refused: defect === undefined ? undefined : 403,
    });
    if (defect !== undefined) {
      // As S3 answers a bad signature (without echoing the string to sign here).
      res.writeHead(403, { 'content-type': 'application/xml' });
      res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SignatureDoesNotMatch</Code><Message>${defect}</Message></Error>`);
      req.resume();
      return;
    }
    handle(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const host = `127.0.0.1:${port}`;
  const credentials = { accessKeyId: S3_ACCESS_KEY_ID, secretAccessKey: S3_SECRET_ACCESS_KEY };
  const keyPath = (bucket: string, key: string) => `/${bucket}/${key.split('/').map(rfc3986).join('/')}`;

  const send = (method: string, path: string, body: Buffer): Promise<{ status: number; etag: string; text: string }> => {
    const signed = aws4.sign(
      { host, path, method, service: 's3', region: S3_REGION, body, headers: { 'content-type': 'application/octet-stream' } },
      credentials,
    );
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method, path, headers: signed.headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, etag: res.headers.etag ?? '', text: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      });
      req.setTimeout(10_000, () => req.destroy(new Error(`${method} ${path}: no answer in 10 s`)));
      req.on('error', reject);
      req.end(body);
    });
  };

  return {
    url: `http://${host}`,
    log,
    async createBucket(bucket) {
      const r = await send('PUT', `/${bucket}`, Buffer.alloc(0));
      if (r.status !== 200) throw new Error(`creating bucket ${bucket}: ${r.status} ${r.text}`);
    },
    async put(bucket, key, body) {
      const r = await send('PUT', keyPath(bucket, key), body);
      if (r.status !== 200) throw new Error(`PUT ${bucket}/${key}: ${r.status} ${r.text}`);
      return r.etag;
    },
    presign(bucket, key, seconds = 600) {
      const signed = aws4.sign(
        { host, path: `${keyPath(bucket, key)}?X-Amz-Expires=${seconds}`, method: 'GET', service: 's3', region: S3_REGION, signQuery: true },
        credentials,
      );
      return `http://${host}${signed.path ?? ''}`;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      s3.logger?.close();
      rmTree(dir);
    },
  };
}
