/**
 * S3 for {@link HttpRangeFops}: where an object of a bucket is reached (AWS virtual-hosted style, or
 * path style on an S3-compatible endpoint), where credentials come from, and a SigV4 signer for
 * its `sign` hook. HttpRangeFops itself knows nothing of S3; signing is done by `aws4`.
 *
 * Credentials and signatures are secrets: nothing here puts them into a message, and the signer
 * keeps them in its closure (an inspected or logged mount shows a function, not a key).
 */
import aws4 from 'aws4';
import type { RequestSigner } from './http-range.js';

/** An access key pair, and the session token of temporary credentials. */
export interface S3Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

/** Where one object of a bucket is: the origin requests go to, and the object's path there (decoded). */
export interface S3ObjectLocation {
  /** `https://bucket.s3.region.amazonaws.com`, or the endpoint's origin. */
  readonly origin: string;
  /** `/key` (virtual-hosted style) or `/bucket/key` (path style); decoded, starting with `/`. */
  readonly path: string;
}

/** A bucket name S3 accepts (3 to 63 lower-case letters, digits, `.` and `-`, starting and ending with a letter or digit). */
export function validBucketName(name: string): boolean {
  return /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name) && !name.includes('..');
}

/** A region name such as `eu-west-1` (letters, digits and `-`). */
export function validRegion(region: string): boolean {
  return /^[a-z0-9][a-z0-9-]{0,62}$/.test(region);
}

/** The region when a mount names none: `AWS_REGION`, then `AWS_DEFAULT_REGION`, then `us-east-1`. */
export function defaultS3Region(env: NodeJS.ProcessEnv = process.env): string {
  return env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1';
}

/**
 * Credentials from `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (with `AWS_SESSION_TOKEN` if
 * set); undefined when neither is set. Only one of the two set is an error naming the missing one
 * (never a value).
 */
export function s3CredentialsFromEnv(env: NodeJS.ProcessEnv = process.env): S3Credentials | undefined {
  const id = env.AWS_ACCESS_KEY_ID ?? '';
  const secret = env.AWS_SECRET_ACCESS_KEY ?? '';
  if (id === '' && secret === '') return undefined;
  if (id === '') throw new TypeError('AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not');
  if (secret === '') throw new TypeError('AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not');
  const token = env.AWS_SESSION_TOKEN ?? '';
  return token === '' ? { accessKeyId: id, secretAccessKey: secret } : { accessKeyId: id, secretAccessKey: secret, sessionToken: token };
}

/**
 * Where `key` (a decoded path starting with `/`) of `bucket` is. With an `endpoint` (an S3-compatible
 * store: MinIO, s3rver, …): path style, `endpoint/bucket/key`. Without: AWS's virtual-hosted style,
 * `https://bucket.s3.region.amazonaws.com/key`, except for bucket names with dots, which a wildcard
 * certificate does not cover: those get path style on `https://s3.region.amazonaws.com`.
 */
export function s3ObjectLocation(bucket: string, key: string, region: string, endpoint?: URL): S3ObjectLocation {
  if (endpoint) {
    const base = endpoint.pathname.replace(/\/$/, '');
    return { origin: endpoint.origin, path: `${decodeURIComponent(base)}/${bucket}${key}` };
  }
  if (bucket.includes('.')) return { origin: `https://s3.${region}.amazonaws.com`, path: `/${bucket}${key}` };
  return { origin: `https://${bucket}.s3.${region}.amazonaws.com`, path: key };
}

/**
 * A SigV4 signer (service `s3`) for {@link HttpRangeFops}'s `sign` hook: each request gets a fresh
 * `x-amz-date`, `x-amz-content-sha256` of the empty body, the session token if any, and an
 * `Authorization` header over the method, path and query, host and every header sent (`range`
 * included, which aws4 leaves out by default).
 */
export function s3Signer(credentials: S3Credentials, region: string): RequestSigner {
  const creds = { ...credentials };
  return ({ method, host, path, headers }) => {
    const request: aws4.Request & { extraHeadersToInclude: Record<string, boolean> } = {
      host,
      path,
      method,
      service: 's3',
      region,
      headers: { ...headers },
      extraHeadersToInclude: { range: true },
    };
    const signed = aws4.sign(request, creds);
    const out: Record<string, string> = {};
    for (const [name, value] of Object.entries(signed.headers ?? {})) if (value !== undefined) out[name.toLowerCase()] = String(value);
    return out;
  };
}
