/** Origins as they may be shown: without the credentials a URL can carry. */

/**
 * `origin` as it may be shown in a message or log line: a query (a presigned URL's signature and
 * credential) and URL credentials (`user:password@`) are replaced by `…`.
 */
export function redactOrigin(origin: string): string {
  const q = origin.search(/[?#]/);
  const bare = q === -1 ? origin : `${origin.slice(0, q)}?…`;
  return bare.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@?#]*@/i, '$1…@');
}
