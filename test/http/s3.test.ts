// s3:// mounts and presigned range+https:// URLs: the mount keys, and serving through createHandler and
// the CLI from a real S3 API (s3rver behind a SigV4-checking front: test/helpers/s3.ts). Credentials
// and signatures must never reach a log line, an error or a response.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { after, afterEach, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { CONTAINER_SIGNATURES, REMOTE_PREFIX, createHandler, mountFromConfig, resolveMount, type MountOptions } from '../../src/index.js';
import { describeOrigin } from '../../src/cli/describe.js';
import { startCli } from '../helpers/cli.js';
import { rmTree, tmpDir } from '../helpers/fixtures.js';
import { get, listen } from '../helpers/http.js';
import { S3_ACCESS_KEY_ID, S3_REGION, S3_SECRET_ACCESS_KEY, s3Skip, startS3Store, type S3Store } from '../helpers/s3.js';
import { assertReplacedWithin, siteV1, siteV2, zipOf } from '../helpers/remote-site.js';

const v1 = siteV1;
const v2 = siteV2;
const AWS_VARS = ['AWS_REGION', 'AWS_DEFAULT_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'] as const;
const WRONG_SECRET = 'Wr0ng-Secret-Must-Never-Show-9d1c';

/** This process's environment without any AWS_* variable, plus `extra`. */
function envWith(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const kept = Object.entries(process.env).filter(([name]) => !(AWS_VARS as readonly string[]).includes(name));
  return { ...Object.fromEntries(kept), ...extra };
}

describe('s3:// mount options', () => {
  const saved = Object.fromEntries(AWS_VARS.map((v) => [v, process.env[v]]));
  const setEnv = (vars: Partial<Record<(typeof AWS_VARS)[number], string>>) => {
    for (const v of AWS_VARS) Reflect.deleteProperty(process.env, v);
    Object.assign(process.env, vars);
  };
  afterEach(() => {
    for (const v of AWS_VARS) {
      if (saved[v] === undefined) Reflect.deleteProperty(process.env, v);
      else process.env[v] = saved[v];
    }
  });
  const resolve = (m: Omit<MountOptions, 'mountpoint'>) => resolveMount({ mountpoint: '/', ...m }, [], 'm', CONTAINER_SIGNATURES);

  it('addresses AWS virtual-hosted style, and an endpoint path style; the fops path names bucket and key', () => {
    setEnv({});
    const aws = resolve({ origin: 's3://my-bucket/sites/a b/site.zip', s3Region: 'eu-west-1' });
    assert.equal(aws.kind, 'file');
    assert.equal(aws.archive, true);
    assert.equal(aws.root, `${REMOTE_PREFIX}/s3/my-bucket/sites/a b/site.zip`);
    assert.equal(aws.remote?.origin, 'https://my-bucket.s3.eu-west-1.amazonaws.com');
    assert.equal(aws.remote.path, '/sites/a b/site.zip');
    assert.equal(aws.remote.sign, undefined, 'no credentials anywhere: unsigned requests');
    const dotted = resolve({ origin: 's3://my.bucket/site.zip', s3Region: 'eu-west-1' });
    assert.deepEqual([dotted.remote?.origin, dotted.remote?.path], ['https://s3.eu-west-1.amazonaws.com', '/my.bucket/site.zip']);
    const local = resolve({ origin: 's3://my-bucket/site.jar', s3Endpoint: 'http://127.0.0.1:9000' });
    assert.deepEqual([local.remote?.origin, local.remote?.path], ['http://127.0.0.1:9000', '/my-bucket/site.jar']);
    assert.equal(local.root, `${REMOTE_PREFIX}/s3/my-bucket/site.jar`);
  });

  it('takes the region from AWS_REGION, then AWS_DEFAULT_REGION, then us-east-1', () => {
    setEnv({ AWS_REGION: 'ap-south-1', AWS_DEFAULT_REGION: 'sa-east-1' });
    assert.equal(resolve({ origin: 's3://bkt/site.zip' }).remote?.origin, 'https://bkt.s3.ap-south-1.amazonaws.com');
    setEnv({ AWS_DEFAULT_REGION: 'sa-east-1' });
    assert.equal(resolve({ origin: 's3://bkt/site.zip' }).remote?.origin, 'https://bkt.s3.sa-east-1.amazonaws.com');
    setEnv({});
    assert.equal(resolve({ origin: 's3://bkt/site.zip' }).remote?.origin, 'https://bkt.s3.us-east-1.amazonaws.com');
  });

  it('signs with the mount keys or the environment; half a key pair is an error naming the missing key, never a value', () => {
    setEnv({ AWS_ACCESS_KEY_ID: 'AKIDENV', AWS_SECRET_ACCESS_KEY: WRONG_SECRET });
    assert.equal(typeof resolve({ origin: 's3://bkt/site.zip' }).remote?.sign, 'function');
    const own = resolve({ origin: 's3://bkt/site.zip', s3AccessKeyId: 'AKIDMOUNT', s3SecretAccessKey: WRONG_SECRET });
    assert.equal(typeof own.remote?.sign, 'function');
    assert.ok(!inspect(own, { depth: 10 }).includes(WRONG_SECRET), 'a resolved mount, inspected, shows no secret');
    assert.ok(!JSON.stringify(own).includes(WRONG_SECRET));
    setEnv({ AWS_ACCESS_KEY_ID: 'AKIDENV' });
    assert.throws(() => resolve({ origin: 's3://bkt/site.zip' }), /AWS_SECRET_ACCESS_KEY/);
    setEnv({});
    const halves: [Omit<MountOptions, 'mountpoint'>, RegExp][] = [
      [{ origin: 's3://bkt/site.zip', s3AccessKeyId: 'AKID' }, /m\.s3SecretAccessKey/],
      [{ origin: 's3://bkt/site.zip', s3SecretAccessKey: WRONG_SECRET }, /m\.s3AccessKeyId/],
    ];
    for (const [m, re] of halves) {
      assert.throws(
        () => resolve(m),
        (err: Error) => re.test(err.message) && !err.message.includes(WRONG_SECRET),
      );
    }
  });

  it('refuses bad values naming the key, and s3 keys on other mounts', () => {
    setEnv({});
    const bad: [Omit<MountOptions, 'mountpoint'>, RegExp][] = [
      [{ origin: 's3://Bad_Bucket/site.zip' }, /m\.origin: .*bucket name/],
      [{ origin: 's3://user:pa55@bkt/site.zip' }, /^(?!.*pa55)m\.origin: .*bucket name/],
      [{ origin: 's3://bkt/site.txt' }, /m\.origin: s3:\/\/ origins name an archive/],
      [{ origin: 's3://bkt/a//site.zip' }, /m\.origin: .*canonical/],
      [{ origin: 's3://bkt/site.zip?versionId=1' }, /m\.origin: s3:\/\/ origins take no query/],
      [{ origin: 's3://bkt/site.zip', s3Region: 'Not A Region' }, /m\.s3Region/],
      [{ origin: 's3://bkt/site.zip', s3Endpoint: 'ftp://127.0.0.1/' }, /m\.s3Endpoint/],
      [{ origin: 's3://bkt/site.zip', s3Endpoint: 'http://u:p@127.0.0.1/' }, /m\.s3Endpoint/],
      [{ origin: 'file:///srv/www', s3Region: 'eu-west-1' }, /m\.s3Region applies only to s3:\/\/ origins/],
      [{ origin: 'range+http://127.0.0.1/site.zip', s3Endpoint: 'http://127.0.0.1/' }, /m\.s3Endpoint applies only to s3:\/\/ origins/],
      [{ origin: 'http://127.0.0.1:8080/', s3SecretAccessKey: WRONG_SECRET }, /m\.s3SecretAccessKey applies only to s3:\/\/ origins/],
      [{ origin: 's3://bkt/site.zip', proxyReadTimeout: 5 }, /m\.proxyReadTimeout applies only to reverse-proxy origins/],
    ];
    for (const [m, re] of bad)
      assert.throws(
        () => resolve(m),
        (err: Error) => err instanceof TypeError && re.test(err.message),
        m.origin,
      );
  });

  it('maps the kebab-case keys of a configuration file', () => {
    const m = mountFromConfig({
      mountpoint: '/',
      origin: 's3://bkt/site.zip',
      's3-endpoint': 'http://127.0.0.1:9000',
      's3-region': 'eu-west-1',
      's3-access-key-id': 'AKID',
      's3-secret-access-key': WRONG_SECRET,
    });
    assert.deepEqual([m.s3Endpoint, m.s3Region, m.s3AccessKeyId, m.s3SecretAccessKey], ['http://127.0.0.1:9000', 'eu-west-1', 'AKID', WRONG_SECRET]);
  });

  it('accepts a presigned URL (X-Amz-Signature) and shows it nowhere without its query; other queries are refused', () => {
    const signature = 'f00dfeedf00dfeedf00dfeedf00dfeedf00dfeedf00dfeedf00dfeedf00dfeed';
    const query = `X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDPRESIGN%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20260101T000000Z&X-Amz-Expires=600&X-Amz-SignedHeaders=host&X-Amz-Signature=${signature}`;
    const m = resolve({ origin: `range+https://files.example.com/b/site.zip?${query}` });
    assert.equal(m.remote?.query, query);
    assert.equal(m.root, `${REMOTE_PREFIX}/https/files.example.com/b/site.zip`);
    assert.equal(describeOrigin(`range+https://files.example.com/b/site.zip?${query}`), 'remote archive https://files.example.com/b/site.zip?…');
    assert.equal(describeOrigin('s3://bkt/site.zip'), 'remote archive s3://bkt/site.zip');
    for (const origin of [
      `range+https://files.example.com/b/site.txt?${query}`,
      `range+https://files.example.com/a//site.zip?${query}`,
      `range+https://files.example.com/b/?${query}`,
    ]) {
      assert.throws(
        () => resolve({ origin }),
        (err: Error) => !err.message.includes(signature) && !err.message.includes('AKIDPRESIGN'),
        origin,
      );
    }
    assert.throws(() => resolve({ origin: 'range+https://files.example.com/site.zip?token=1' }), /no query, except a presigned/);
    // Written without range+, it is a reverse-proxy origin, refused without showing the query or a password.
    for (const origin of [`https://files.example.com/b/site.zip?${query}`, 'http://user:pa55-NEVER-SHOWN@127.0.0.1:8080/app']) {
      assert.throws(
        () => resolve({ origin }),
        (err: Error) =>
          err instanceof TypeError && !err.message.includes(signature) && !err.message.includes('pa55-NEVER-SHOWN') && /m\.origin/.test(err.message),
        origin,
      );
    }
  });
});

describe('s3:// and presigned origins through createHandler, against s3rver', { skip: s3Skip }, () => {
  let store: S3Store;
  const servers: { close: () => Promise<void> }[] = [];
  const handlers: { close: () => Promise<void> }[] = [];
  const serve = async (mount: Omit<MountOptions, 'mountpoint'>, capture?: string[]) => {
    const handler = createHandler({
      mounts: [{ mountpoint: '/', ...mount }],
      remote: { revalidateMs: 100, retries: 0 },
      resolveCacheMs: 0,
      ...(capture
        ? {
            log: (line: string) => capture.push(line),
            onError: (err: unknown) => capture.push(`${String(err)}\n${(err as Error).stack ?? ''}\n${inspect(err)}`),
          }
        : {}),
    });
    handlers.push(handler);
    const s = await listen(handler);
    servers.push(s);
    return s.port;
  };
  const signedMount = (key = 'archives/site.zip', secret = S3_SECRET_ACCESS_KEY) => ({
    origin: `s3://sites/${key}`,
    s3Endpoint: store.url,
    s3Region: S3_REGION,
    s3AccessKeyId: S3_ACCESS_KEY_ID,
    s3SecretAccessKey: secret,
  });

  before(async () => {
    store = await startS3Store();
    await store.createBucket('sites');
    await store.put('sites', 'archives/site.zip', zipOf(v1));
    await store.put('sites', 'archives/replaced.zip', zipOf(v1));
  });
  after(async () => {
    for (const s of servers) await s.close();
    for (const h of handlers) await h.close();
    await store.close();
  });

  it('serves entries, a range and gzip passthrough from a signed s3:// mount (HEAD fallback, as s3rver misreads suffixes)', async () => {
    store.log.length = 0;
    const port = await serve(signedMount());
    const page = await get(port, '/');
    assert.equal(page.status, 200);
    assert.ok(page.body.equals(v1['index.html']));
    const part = await get(port, '/photo.jpg', { range: 'bytes=100000-100999' });
    assert.equal(part.status, 206);
    assert.ok(part.body.equals(v1['photo.jpg'].subarray(100000, 101000)));
    const gz = await get(port, '/app.css', { 'accept-encoding': 'gzip' });
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.ok(gunzipSync(gz.body).equals(v1['app.css']));
    assert.equal((await get(port, '/nothing.html')).status, 404);
    assert.ok(
      store.log.some((r) => r.method === 'HEAD'),
      'the HEAD + explicit range fallback ran',
    );
    assert.ok(store.log.every((r) => r.auth === 'header' && r.refused === undefined && r.path === '/sites/archives/site.zip'));
  });

  it('picks up a new version PUT over the object (new ETag) and never serves mixed bytes', async () => {
    const port = await serve(signedMount('archives/replaced.zip'));
    const etag1 = (await get(port, '/app.css')).headers.etag;
    assert.ok((await get(port, '/photo.jpg')).body.equals(v1['photo.jpg']));
    await store.put('sites', 'archives/replaced.zip', zipOf(v2));
    await assertReplacedWithin(port, etag1);
  });

  it('serves through a presigned URL (range+http origin with its query), with GETs only', async () => {
    store.log.length = 0;
    const port = await serve({ origin: `range+${store.presign('sites', 'archives/site.zip')}` });
    assert.ok((await get(port, '/')).body.equals(v1['index.html']));
    const part = await get(port, '/photo.jpg', { range: 'bytes=200000-200099' });
    assert.equal(part.status, 206);
    assert.ok(part.body.equals(v1['photo.jpg'].subarray(200000, 200100)));
    await new Promise((r) => setTimeout(r, 150));
    assert.ok((await get(port, '/app.css')).body.equals(v1['app.css']), 'after a revalidation');
    assert.ok(store.log.length >= 3);
    assert.ok(
      store.log.every((r) => r.method === 'GET' && r.auth === 'query' && r.refused === undefined),
      JSON.stringify(store.log.map((r) => [r.method, r.range, r.auth, r.refused])),
    );
  });

  it('a wrong secret or a tampered presigned URL: clean error responses, and no secret or signature in any log line, error or body', async () => {
    const captured: string[] = [];
    const presigned = new URL(store.presign('sites', 'archives/site.zip'));
    const signature = presigned.searchParams.get('X-Amz-Signature')!;
    presigned.searchParams.set(
      'X-Amz-Signature',
      signature.replace(/^./, (c) => (c === '0' ? '1' : '0')),
    );
    const tampered = presigned.searchParams.get('X-Amz-Signature')!;
    store.log.length = 0;
    const wrong = await serve(signedMount('archives/site.zip', WRONG_SECRET), captured);
    const pre = await serve({ origin: `range+${presigned.href}` }, captured);
    // A store that refuses the credentials, or cannot be reached: an I/O error, answered 500 and logged.
    const down = await serve({ ...signedMount('archives/site.zip', WRONG_SECRET), s3Endpoint: 'http://127.0.0.1:1' }, captured);
    const bodies: string[] = [];
    const statuses: number[] = [];
    for (const port of [wrong, pre, down]) {
      for (const path of ['/', '/app.css', '/photo.jpg']) {
        const r = await get(port, path, { range: 'bytes=0-99' });
        statuses.push(r.status);
        bodies.push(`${JSON.stringify(r.headers)}\n${r.body.toString()}`);
      }
    }
    assert.ok(
      statuses.every((s) => [403, 404, 500, 502, 503].includes(s)),
      statuses.join(),
    );
    assert.deepEqual(statuses.slice(0, 6), [500, 500, 500, 500, 500, 500], 'refused by the store: a server error, not a 403 the client could act on');
    assert.ok(store.log.length > 0 && store.log.every((r) => r.refused === 403), 'the store refused every request');
    assert.ok(
      captured.some((line) => /refused access \(403\)/.test(line)),
      'the refusal is reported to the operator',
    );
    assert.ok(captured.length > 0, 'the unreachable store was reported');
    const all = [...captured, ...bodies].join('\n');
    for (const secret of [WRONG_SECRET, S3_SECRET_ACCESS_KEY, signature, tampered, 'X-Amz-Signature', 'X-Amz-Credential', S3_ACCESS_KEY_ID])
      assert.ok(!all.includes(secret), `${secret} appeared in: ${all.slice(0, 2000)}`);
  });
});

describe('an s3:// mount through the vfserve CLI (configuration file, credentials from the environment)', { skip: s3Skip }, () => {
  let store: S3Store;
  let dir = '';
  before(async () => {
    store = await startS3Store();
    await store.createBucket('cli-bucket');
    await store.put('cli-bucket', 'www/site.zip', zipOf(v1));
    dir = tmpDir('vfserve-s3-cli-');
  });
  after(async () => {
    await store.close();
    rmTree(dir);
  });

  const config = (name: string, mounts: Record<string, string>[]) => {
    const file = join(dir, name);
    writeFileSync(file, JSON.stringify({ vhosts: [{ name: 'localhost', port: 0, interface: '127.0.0.1', mounts }] }));
    return file;
  };

  it('serves the archive with the environment’s key pair, signed', async () => {
    store.log.length = 0;
    const file = config('env.conf', [{ mountpoint: '/', origin: 's3://cli-bucket/www/site.zip', 's3-endpoint': store.url }]);
    const s = await startCli(
      ['--config', file],
      1,
      envWith({ AWS_ACCESS_KEY_ID: S3_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: S3_SECRET_ACCESS_KEY, AWS_REGION: S3_REGION }),
    );
    try {
      assert.match(s.listeners[0]!.line, /remote archive s3:\/\/cli-bucket\/www\/site\.zip/);
      const page = await get(s.port, '/');
      assert.equal(page.status, 200);
      assert.ok(page.body.equals(v1['index.html']));
      const part = await get(s.port, '/photo.jpg', { range: 'bytes=1000-1999' });
      assert.equal(part.status, 206);
      assert.ok(part.body.equals(v1['photo.jpg'].subarray(1000, 2000)));
      assert.ok(store.log.length > 0 && store.log.every((r) => r.auth === 'header' && r.refused === undefined));
    } finally {
      assert.equal(await s.stop(), 0, s.output());
    }
    assert.ok(!s.output().includes(S3_SECRET_ACCESS_KEY));
  });

  it('with a wrong secret in the configuration and a presigned mount: no secret or signature in its output', async () => {
    const presigned = store.presign('cli-bucket', 'www/site.zip');
    const signature = new URL(presigned).searchParams.get('X-Amz-Signature')!;
    const file = config('wrong.conf', [
      {
        mountpoint: '/',
        origin: 's3://cli-bucket/www/site.zip',
        's3-endpoint': store.url,
        's3-access-key-id': S3_ACCESS_KEY_ID,
        's3-secret-access-key': WRONG_SECRET,
      },
      { mountpoint: '/presigned', origin: `range+${presigned}` },
    ]);
    const s = await startCli(['--config', file], 1, envWith());
    try {
      assert.match(s.listeners[0]!.line, /remote archive http:\/\/127\.0\.0\.1:\d+\/cli-bucket\/www\/site\.zip\?…/);
      const refused = await get(s.port, '/app.css');
      assert.ok([403, 404, 500, 502, 503].includes(refused.status), String(refused.status));
      const ok = await get(s.port, '/presigned/app.css');
      assert.equal(ok.status, 200);
      assert.ok(ok.body.equals(v1['app.css']));
      assert.equal((await get(s.port, '/presigned/photo.jpg', { range: 'bytes=0-9' })).status, 206);
      for (const [r, text] of [[refused, refused.body.toString()]] as const) assert.ok(!text.includes(WRONG_SECRET), String(r.status));
    } finally {
      assert.equal(await s.stop(), 0, s.output());
    }
    const out = s.output();
    assert.match(out, /GET \/app\.css/, 'the request log was on');
    for (const secret of [WRONG_SECRET, signature, 'X-Amz-Signature', 'X-Amz-Credential']) assert.ok(!out.includes(secret), `${secret} in: ${out}`);
  });
});
