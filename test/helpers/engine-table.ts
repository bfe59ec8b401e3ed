/**
 * Table-driven checks of ServeEngine through its public API only (`new ServeEngine(...)`, `handle`), no
 * socket: a row is a request and the observable response it must produce (status, selected headers, body).
 * Modelled on Go's net/http fs_test.go tables.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import type { CallbackTarget, CoreResponse, ServeEngine } from '../../src/index.js';

/** A request header map (lower-case names), or a thunk for values only known at run time (ETags). */
export type RowHeaders = Readonly<Record<string, string>> | (() => Readonly<Record<string, string>>);

/** Expected header value: exact string, pattern, or null for "absent". */
export type HeaderWant = string | RegExp | null;

export interface Want {
  readonly status: number;
  /** Only the headers listed are checked; null means the header must be absent. */
  readonly headers?: Readonly<Record<string, HeaderWant>>;
  /** The exact body (a string is compared as UTF-8). `null`: body must be null. */
  readonly body?: Buffer | string | null;
  /** The body gunzips (or un-brotlis) to this. */
  readonly gunzip?: Buffer | string;
  readonly unbrotli?: Buffer | string;
  /** multipart/byteranges: the parts, in order, as inclusive [start, end] of `of`. */
  readonly parts?: readonly (readonly [number, number])[];
  /** The representation the parts (and their Content-Range `/N`) come from. */
  readonly of?: Buffer;
  /** The Content-Type line each part must carry (null: none). */
  readonly partType?: string | null;
  /** `notFound` must be exactly this (absent counts as false). */
  readonly notFound?: boolean;
  /** A status page: text/html with charset, nosniff, a non-empty body whose length is Content-Length. */
  readonly page?: boolean;
  /** `error` must be set (true) or unset (false). */
  readonly error?: boolean;
  readonly callback?: CallbackTarget;
}

export interface Row {
  readonly name: string;
  readonly method?: string;
  readonly url: string;
  readonly headers?: RowHeaders;
  /** A thunk when the expectation needs values known only at run time (an earlier response's ETag). */
  readonly want: Want | (() => Want);
  /** Also send the request as HEAD and check it has the same status and headers and no body. */
  readonly head?: boolean;
}

export interface Collected {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer | null;
  readonly streamed: boolean;
  readonly res: CoreResponse;
}

export async function drain(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks);
}

/** Runs one request through the engine and collects the body (null stays null). */
export async function exchange(engine: ServeEngine, method: string, url: string, headers: Readonly<Record<string, string>> = {}): Promise<Collected> {
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  const res = await engine.handle({ method, url, header: (name) => lower[name] });
  const streamed = res.body instanceof Readable;
  const body = res.body === null ? null : Buffer.isBuffer(res.body) ? res.body : await drain(res.body);
  return { status: res.status, headers: res.headers, body, streamed, res };
}

/** GET shorthand returning one header. */
export async function headerOf(engine: ServeEngine, url: string, name: string, headers: Readonly<Record<string, string>> = {}): Promise<string | undefined> {
  return (await exchange(engine, 'GET', url, headers)).headers[name];
}

export function boundaryOf(contentType: string | undefined): string {
  const m = /^multipart\/byteranges; boundary=("?)([^"]+)\1$/.exec(contentType ?? '');
  assert.ok(m, `not multipart/byteranges: ${String(contentType)}`);
  return m[2]!;
}

/** Splits a multipart/byteranges body into parts: their header lines and data. */
export function parseMultipart(body: Buffer, boundary: string): { headers: Record<string, string>; data: Buffer }[] {
  const s = body.toString('latin1');
  const delim = `--${boundary}`;
  assert.ok(s.startsWith(`${delim}\r\n`), 'the body starts with the first delimiter');
  assert.ok(s.endsWith(`\r\n${delim}--\r\n`), 'the body ends with the close delimiter');
  const inner = s.slice(0, -`\r\n${delim}--\r\n`.length);
  const chunks = inner.split(`\r\n${delim}\r\n`);
  chunks[0] = chunks[0]!.slice(`${delim}\r\n`.length);
  return chunks.map((chunk) => {
    const end = chunk.indexOf('\r\n\r\n');
    assert.ok(end >= 0, 'each part has a header block');
    const headers: Record<string, string> = {};
    for (const line of chunk.slice(0, end).split('\r\n')) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    return { headers, data: Buffer.from(chunk.slice(end + 4), 'latin1') };
  });
}

const asBuf = (b: Buffer | string): Buffer => (typeof b === 'string' ? Buffer.from(b) : b);

function checkHeaders(got: Readonly<Record<string, string>>, want: Readonly<Record<string, HeaderWant>>, label: string): void {
  for (const [name, w] of Object.entries(want)) {
    const v = got[name];
    if (w === null) assert.equal(v, undefined, `${label}: ${name} must be absent`);
    else if (typeof w === 'string') assert.equal(v, w, `${label}: ${name}`);
    else assert.match(v ?? '<absent>', w, `${label}: ${name}`);
  }
}

/** Checks a collected response against a row's expectations. */
export function check(got: Collected, want: Want, label: string, method = 'GET'): void {
  assert.equal(got.status, want.status, `${label}: status`);
  // Header names are lower-case, always.
  for (const name of Object.keys(got.headers)) assert.equal(name, name.toLowerCase(), `${label}: header name ${name}`);
  if (want.headers) checkHeaders(got.headers, want.headers, label);
  assert.equal(got.res.notFound === true, want.notFound === true, `${label}: notFound`);
  if (want.error !== undefined) assert.equal(got.res.error !== undefined, want.error, `${label}: error`);
  if (want.callback) assert.deepEqual(got.res.callback, want.callback, `${label}: callback`);
  else assert.equal(got.res.callback, undefined, `${label}: no callback`);
  if (want.page) {
    assert.equal(got.headers['content-type'], 'text/html; charset=utf-8', `${label}: page content-type`);
    assert.equal(got.headers['x-content-type-options'], 'nosniff', `${label}: page nosniff`);
    assert.ok(got.body !== null && got.body.length > 0, `${label}: page body`);
    assert.equal(got.headers['content-length'], String(got.body.length), `${label}: page content-length`);
  }
  if (want.body !== undefined) {
    if (want.body === null) assert.equal(got.body, null, `${label}: body must be null`);
    else {
      assert.ok(got.body !== null, `${label}: body must not be null`);
      assert.ok(got.body.equals(asBuf(want.body)), `${label}: body (${got.body.length} bytes, want ${asBuf(want.body).length})`);
    }
  }
  if (want.gunzip !== undefined) {
    assert.ok(got.body, `${label}: gzip body`);
    assert.ok(gunzipSync(got.body).equals(asBuf(want.gunzip)), `${label}: body gunzips to the entry`);
  }
  if (want.unbrotli !== undefined) {
    assert.ok(got.body, `${label}: br body`);
    assert.ok(brotliDecompressSync(got.body).equals(asBuf(want.unbrotli)), `${label}: body un-brotlis to the file`);
  }
  if (want.parts) {
    const of = want.of;
    assert.ok(of, 'parts need `of`');
    assert.ok(got.body, `${label}: multipart body`);
    const parts = parseMultipart(got.body, boundaryOf(got.headers['content-type']));
    assert.deepEqual(
      parts.map((p) => p.headers['content-range']),
      want.parts.map(([a, b]) => `bytes ${a}-${b}/${of.length}`),
      `${label}: part Content-Ranges`,
    );
    want.parts.forEach(([a, b], i) => {
      assert.ok(parts[i]!.data.equals(of.subarray(a, b + 1)), `${label}: part ${i} bytes`);
      if (want.partType !== undefined) assert.equal(parts[i]!.headers['content-type'], want.partType ?? undefined, `${label}: part ${i} content-type`);
    });
  }
  // Whenever a body is sent with a Content-Length, they agree.
  if (method !== 'HEAD' && got.body !== null && got.headers['content-length'] !== undefined) {
    assert.equal(got.headers['content-length'], String(got.body.length), `${label}: Content-Length is the body length`);
  }
}

function resolveHeaders(h: RowHeaders | undefined): Readonly<Record<string, string>> {
  return h === undefined ? {} : typeof h === 'function' ? h() : h;
}

/** Runs a row (and its HEAD twin when asked). */
export async function runRow(engine: ServeEngine, row: Row): Promise<void> {
  const method = row.method ?? 'GET';
  const headers = resolveHeaders(row.headers);
  const got = await exchange(engine, method, row.url, headers);
  check(got, typeof row.want === 'function' ? row.want() : row.want, row.name, method);
  if (row.head) {
    const head = await exchange(engine, 'HEAD', row.url, headers);
    assert.equal(head.status, got.status, `${row.name} (HEAD): status`);
    const norm = (h: Readonly<Record<string, string>>): Record<string, string> => {
      const out = { ...h };
      // multipart boundaries are random per response
      if (out['content-type']?.startsWith('multipart/byteranges')) out['content-type'] = out['content-type'].replace(/boundary=.*/, 'boundary=B');
      return out;
    };
    assert.deepEqual(norm(head.headers), norm(got.headers), `${row.name} (HEAD): same headers as GET`);
    assert.equal(head.body, null, `${row.name} (HEAD): no body, whatever the status`);
    assert.equal(head.res.notFound === true, got.res.notFound === true, `${row.name} (HEAD): notFound`);
  }
}
