/**
 * Keeps an authenticated response relayed from an origin (callback, proxy, CGI) out of shared
 * caches: its Cache-Control is known only when its head is written, so the rule is applied there.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import { privateCacheControl } from '../cache/policy.js';
import type { NodeResponse } from './node.js';

type HeaderValue = OutgoingHttpHeaders[string];

function joined(v: HeaderValue): string | undefined {
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(', ') : String(v);
}

/**
 * Wraps `res.writeHead` so that the Cache-Control it sends, from its headers argument or set
 * earlier with setHeader, goes through {@link privateCacheControl}. node:http and node:http2's
 * compatibility API both call writeHead for implicit heads too (a bare `write()` or `end()`).
 */
export function keepPrivate(res: NodeResponse): void {
  // Bound: called below as a plain function, always for this response.
  const writeHead = res.writeHead.bind(res) as (...a: unknown[]) => NodeResponse;
  const wrapped = (status: number, ...rest: unknown[]): NodeResponse => {
    const last = rest[rest.length - 1];
    let done = false;
    if (Array.isArray(last)) {
      // Raw header lists: name, value, name, value… or [name, value] pairs.
      const list = [...(last as unknown[])];
      const pairs = list.length > 0 && Array.isArray(list[0]);
      for (let i = 0; i < list.length; i += pairs ? 1 : 2) {
        const name: unknown = pairs ? (list[i] as unknown[])[0] : list[i];
        if (typeof name !== 'string' || name.toLowerCase() !== 'cache-control') continue;
        const value = privateCacheControl(joined((pairs ? (list[i] as unknown[])[1] : list[i + 1]) as HeaderValue), false)!;
        if (pairs) list[i] = [name, value];
        else list[i + 1] = value;
        done = true;
      }
      if (!done) list.push(...(pairs ? [['cache-control', 'private']] : ['cache-control', 'private']));
      rest[rest.length - 1] = list;
      done = true;
    } else if (typeof last === 'object' && last !== null) {
      const headers: Record<string, HeaderValue> = { ...(last as Record<string, HeaderValue>) };
      for (const name of Object.keys(headers)) {
        if (name.toLowerCase() !== 'cache-control') continue;
        headers[name] = privateCacheControl(joined(headers[name]), false);
        done = true;
      }
      if (done) rest[rest.length - 1] = headers;
    }
    if (!done) {
      const value = privateCacheControl(joined(res.getHeader('cache-control')), false)!;
      res.setHeader('cache-control', value);
    }
    return writeHead(status, ...rest);
  };
  res.writeHead = wrapped as NodeResponse['writeHead'];
}
