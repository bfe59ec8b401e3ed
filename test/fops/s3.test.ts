// HttpRangeFops against a real S3 API (s3rver, behind a SigV4-checking front: test/helpers/s3.ts),
// with requests signed by s3Signer or authorised by a presigned URL.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { describeFopsConformance } from '../../src/testing/conformance.js';
import { createHash } from 'node:crypto';
import { inspect } from 'node:util';
import { FopError, HttpRangeFops, ZipFops, readAll, s3Signer, type FopFd, type OutgoingRequest } from '../../src/index.js';
import { noise, sampleTree, under } from '../helpers/fixtures.js';
import { makeZip } from '../helpers/zip-writer.js';
import { startRangeOrigin, type RangeOrigin } from '../helpers/range-origin.js';
import { S3_ACCESS_KEY_ID, S3_REGION, S3_SECRET_ACCESS_KEY, s3Skip, startS3Store, type S3Store } from '../helpers/s3.js';

const tree = sampleTree();
const signer = s3Signer({ accessKeyId: S3_ACCESS_KEY_ID, secretAccessKey: S3_SECRET_ACCESS_KEY }, S3_REGION);

async function storeWith(bucket: string, objects: Record<string, Buffer>): Promise<S3Store> {
  const store = await startS3Store();
  await store.createBucket(bucket);
  for (const [key, body] of Object.entries(objects)) await store.put(bucket, key, body);
  store.log.length = 0;
  return store;
}

async function whole(fd: FopFd): Promise<Buffer> {
  try {
    return await readAll(fd);
  } finally {
    await fd.close();
  }
}

if (s3Skip) {
  it('fops conformance over s3rver', { skip: s3Skip }, () => undefined);
} else {
  describeFopsConformance('HttpRangeFops over s3rver (SigV4-signed requests)', async () => {
    const store = await storeWith('conformance', Object.fromEntries(Object.entries(tree).map(([k, v]) => [`site/${k}`, v])));
    // A tail smaller than most objects: s3rver's misread suffix (0-N) sends every open down the HEAD path.
    const fops = new HttpRangeFops({ baseUrl: `${store.url}/conformance`, blockSize: 4096, tailBytes: 1000, sign: signer });
    return {
      fops,
      files: under('/site', tree),
      virtual: true,
      teardown: async () => {
        await fops.close();
        await store.close();
      },
    };
  });

  describeFopsConformance('ZipFops over HttpRangeFops over s3rver (a remote archive in a bucket)', async () => {
    const store = await storeWith('zips', { 'site.zip': makeZip({ entries: Object.entries(tree).map(([name, data]) => ({ name, data })) }) });
    const remote = new HttpRangeFops({ baseUrl: `${store.url}/zips`, blockSize: 8192, sign: signer });
    return {
      fops: new ZipFops({ source: remote }),
      files: under('/site.zip', tree),
      dirs: ['/site.zip/snow ☃', '/site.zip/sub', '/site.zip/sub/deeper'],
      virtual: true,
      teardown: async () => {
        await remote.close();
        await store.close();
      },
    };
  });
}

describe('HttpRangeFops against s3rver: signing, the HEAD fallback, presigned URLs', { skip: s3Skip }, () => {
  const big = noise(400_000, 5);
  let store: S3Store;
  const made: HttpRangeFops[] = [];
  const fops = (options: Omit<ConstructorParameters<typeof HttpRangeFops>[0], 'baseUrl'> & { baseUrl?: string }) => {
    const f = new HttpRangeFops({ baseUrl: store.url, blockSize: 16384, retries: 0, ...options });
    made.push(f);
    return f;
  };
  before(async () => {
    store = await storeWith('bkt', { 'big.bin': big, 'dir/with (parens)/x.bin': Buffer.from('parenthesised key') });
  });
  after(async () => {
    for (const f of made) await f.close();
    await store.close();
  });

  it('signs every request (Range and If-Match included) and falls back to HEAD when s3rver misreads the suffix range', async () => {
    store.log.length = 0;
    const f = fops({ sign: signer });
    const got = await whole(await f.open('/bkt/big.bin'));
    assert.ok(got.equals(big));
    const log = store.log.map((r) => [r.method, r.range, r.refused]);
    assert.deepEqual(log.slice(0, 3), [
      ['GET', 'bytes=-131093', undefined],
      ['HEAD', undefined, undefined],
      ['GET', `bytes=${big.length - 131093}-${big.length - 1}`, undefined],
    ]);
    assert.ok(
      store.log.every((r) => r.auth === 'header' && r.refused === undefined),
      'every request carried a valid signature',
    );
    const read = store.log.find((r) => r.ifMatch !== undefined);
    assert.ok(read, 'later reads send If-Match');
    assert.ok(read.signedHeaders.includes('range') && read.signedHeaders.includes('if-match'), read.signedHeaders.join(';'));
  });

  it('encodes keys as SigV4 canonicalises them (parentheses, spaces)', async () => {
    const f = fops({ sign: signer });
    assert.equal((await whole(await f.open('/bkt/dir/with (parens)/x.bin'))).toString(), 'parenthesised key');
  });

  it('is refused (an I/O error naming the refusal) with a wrong secret, and the error names neither the secret nor a signature', async () => {
    store.log.length = 0;
    const secret = 'wrong-secret-NEVER-SHOWN-7f3a';
    const f = fops({ sign: s3Signer({ accessKeyId: S3_ACCESS_KEY_ID, secretAccessKey: secret }, S3_REGION) });
    const err = await f.open('/bkt/big.bin').then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(FopError.is(err, 'IO') && /refused access \(403\)/.test(err.message), String(err));
    assert.ok(store.log.length > 0 && store.log.every((r) => r.refused === 403));
    const text = `${String(err)} ${JSON.stringify(err)} ${(err as Error).stack ?? ''}`;
    assert.ok(!text.includes(secret));
    assert.doesNotMatch(text, /Signature|X-Amz|AWS4/i);
  });

  it('reads through a presigned URL: the query on every request, never a HEAD (GET bytes=0-0 stands in)', async () => {
    store.log.length = 0;
    const url = new URL(store.presign('bkt', 'big.bin'));
    const f = fops({ query: url.search.slice(1), headAllowed: false, revalidateMs: 1 });
    const fd = await f.open('/bkt/big.bin');
    assert.ok((await readAll(fd)).equals(big));
    await new Promise((r) => setTimeout(r, 5));
    assert.equal(await fd.changed!(), false, 'revalidated: unchanged');
    await fd.close();
    assert.ok(store.log.length >= 4);
    assert.ok(
      store.log.every((r) => r.method === 'GET' && r.auth === 'query' && r.refused === undefined),
      JSON.stringify(store.log.map((r) => [r.method, r.auth, r.refused])),
    );
    assert.equal(store.log[1]!.range, 'bytes=0-0', 'the size probe');
    assert.ok(
      store.log.some((r) => r.range === 'bytes=0-0' && r.ifNoneMatch !== undefined),
      'revalidation is a conditional GET of one byte',
    );
  });

  it('a presigned URL for another object is refused by the store, and the error does not show the query', async () => {
    const url = new URL(store.presign('bkt', 'dir/with (parens)/x.bin'));
    const f = fops({ query: url.search.slice(1), headAllowed: false });
    const err = await f.open('/bkt/big.bin').then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(FopError.is(err, 'IO') && /refused access \(403\)/.test(err.message), String(err));
    const signature = url.searchParams.get('X-Amz-Signature')!;
    assert.ok(!`${String(err)} ${(err as Error).stack ?? ''}`.includes(signature));
  });

  it('notices a new version PUT over the object (new ETag) and never mixes the two', async () => {
    const f = fops({ sign: signer, revalidateMs: 1 });
    const fd = await f.open('/bkt/big.bin');
    const head = Buffer.alloc(1000);
    await fd.readAt!(head, 0);
    assert.ok(head.equals(big.subarray(0, 1000)));
    const next = noise(400_000, 6);
    await store.put('bkt', 'big.bin', next);
    await new Promise((r) => setTimeout(r, 5));
    // s3rver ignores If-Match: the replacement shows as another ETag on the range answer, or on revalidation.
    const buf = Buffer.alloc(1000);
    await assert.rejects(fd.readAt!(buf, 200_000), (e: unknown) => FopError.is(e, 'IO') && /replaced/.test(e.message));
    assert.equal(await fd.changed!(), true);
    await fd.close();
    assert.ok((await whole(await f.open('/bkt/big.bin'))).equals(next));
    await store.put('bkt', 'big.bin', big);
  });
});

describe('HttpRangeFops hooks against the in-repo origin: sign, query, headAllowed', () => {
  const big = noise(300_000, 8);
  let origin: RangeOrigin;
  const made: HttpRangeFops[] = [];
  const fops = (options: Omit<ConstructorParameters<typeof HttpRangeFops>[0], 'baseUrl'>) => {
    const f = new HttpRangeFops({ baseUrl: origin.url, blockSize: 16384, timeoutMs: 2000, ...options });
    made.push(f);
    return f;
  };
  before(async () => {
    origin = await startRangeOrigin({ '/big.bin': big });
  });
  after(async () => {
    for (const f of made) await f.close();
    await origin.close();
  });

  it('calls sign for every request and every retry, with the host, the path with its query, and the headers', async () => {
    origin.faults = {};
    const seen: OutgoingRequest[] = [];
    const f = fops({ query: 'X-Amz-Signature=abc&x=1', retries: 2, sign: (r) => (seen.push(r), { ...r.headers, 'x-signed': String(seen.length) }) });
    const fd = await f.open('/big.bin');
    await fd.readAt!(Buffer.alloc(10), 0);
    assert.equal(seen.length, origin.log.length);
    assert.equal(seen[0]!.host, new URL(origin.url).host);
    assert.equal(seen[0]!.path, '/big.bin?X-Amz-Signature=abc&x=1');
    assert.deepEqual(seen[0]!.headers, { range: 'bytes=-131093' });
    assert.equal(seen.at(-1)!.headers['if-match'] !== undefined, true, 'reads are signed with their If-Match');
    origin.faults = { forceStatus: 503 };
    const before = seen.length;
    await assert.rejects(fd.readAt!(Buffer.alloc(10), 100_000), (e: unknown) => FopError.is(e, 'IO'));
    assert.equal(seen.length - before, 3, 'one signature per attempt');
    origin.faults = {};
    await fd.close();
  });

  it('a signer that throws fails the request with IO, without its message', async () => {
    const f = fops({
      sign: () => {
        throw new Error('credential SECRET-IN-SIGNER-ERROR');
      },
    });
    const err = await f.open('/big.bin').then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(FopError.is(err, 'IO'), String(err));
    assert.ok(!`${String(err)} ${(err as Error).stack ?? ''} ${inspect(err)}`.includes('SECRET-IN-SIGNER-ERROR'));
  });

  it('with headAllowed false never sends HEAD: bytes=0-0 probes the size, and a conditional one revalidates', async () => {
    origin.log.length = 0;
    origin.faults = { refuseSuffix: true };
    const f = fops({ headAllowed: false, revalidateMs: 1 });
    const fd = await f.open('/big.bin');
    assert.equal(fd.length, big.length);
    assert.ok((await readAll(fd)).equals(big));
    await new Promise((r) => setTimeout(r, 5));
    assert.equal(await fd.changed!(), false);
    origin.objects.set('/big.bin', noise(300_000, 12));
    await new Promise((r) => setTimeout(r, 5));
    assert.equal(await fd.changed!(), true, 'a new ETag on the probe means replaced');
    await fd.close();
    origin.objects.set('/big.bin', big);
    assert.ok(
      origin.log.every((r) => r.method === 'GET'),
      JSON.stringify(origin.log),
    );
    assert.equal(origin.log[1]!.range, 'bytes=0-0');
    assert.equal(origin.log.filter((r) => r.range === 'bytes=0-0').length, 3, 'the probe and two revalidations');
    origin.faults = {};
  });

  it('s3Signer: x-amz-date, the empty body hash, the session token, and every header sent is signed', async () => {
    const sign = s3Signer({ accessKeyId: 'AKIDTEST', secretAccessKey: 'secret', sessionToken: 'TOKEN' }, 'eu-west-1');
    const h = await sign({ method: 'GET', host: 'b.s3.eu-west-1.amazonaws.com', path: '/k/site.zip', headers: { range: 'bytes=0-9', 'if-match': '"e"' } });
    assert.equal(h.range, 'bytes=0-9');
    assert.equal(h['x-amz-security-token'], 'TOKEN');
    assert.equal(h['x-amz-content-sha256'], createHash('sha256').update('').digest('hex'));
    assert.match(h['x-amz-date'] ?? '', /^\d{8}T\d{6}Z$/);
    assert.match(
      h.authorization ?? '',
      /^AWS4-HMAC-SHA256 Credential=AKIDTEST\/\d{8}\/eu-west-1\/s3\/aws4_request, SignedHeaders=host;if-match;range;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature=[0-9a-f]{64}$/,
    );
  });

  it('refuses a query with a fragment or spaces', () => {
    assert.throws(() => new HttpRangeFops({ baseUrl: origin.url, query: 'a=1#x' }), TypeError);
    assert.throws(() => new HttpRangeFops({ baseUrl: origin.url, query: '' }), TypeError);
  });
});
