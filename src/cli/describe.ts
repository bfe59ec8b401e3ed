/**
 * What the CLI says about listeners and archives: one line per listener
 * (what is served, the URL, the protocol), and indexing progress.
 */
import { isIP } from 'node:net';
import { CONTAINER_SIGNATURES } from '../fops/container.js';
import type { ZipIndexEvent } from '../fops/zip/zip-fops.js';
import { redactOrigin } from '../mounts/redact.js';
import type { VhostConfig } from '../server/config.js';
import type { ListenerInfo } from '../server/server.js';

/**
 * What one mount serves: `directory /srv/www`, `archive /srv/site.zip`, `redirect https://…`,
 * `callback server-status`, `proxy http://127.0.0.1:8080/app`, `cgi /usr/lib/cgi-bin/app`.
 */
export function describeOrigin(origin: string): string {
  if (origin.startsWith('>')) return `redirect ${origin.slice(1)}`;
  if (origin.startsWith('callback://')) return `callback ${origin.slice('callback://'.length)}`;
  if (/^https?:\/\//.test(origin)) return `proxy ${origin}`;
  // A presigned URL's query is a credential: never printed.
  if (/^range\+https?:\/\//i.test(origin)) return `remote archive ${redactOrigin(origin.slice('range+'.length))}`;
  if (/^s3:\/\//i.test(origin)) return `remote archive ${redactOrigin(origin)}`;
  if (origin.startsWith('cgi://')) return `cgi ${origin.slice('cgi://'.length)}`;
  const path = origin.startsWith('file://') ? origin.slice('file://'.length) : origin;
  return `${CONTAINER_SIGNATURES.some((sig) => `${path.toLowerCase()}/`.endsWith(sig)) ? 'archive' : 'directory'} ${path}`;
}

function describeVhost(vc: VhostConfig): string {
  const mounts = vc.mounts.map((m) => (m.mountpoint === '/' ? describeOrigin(m.origin) : `${m.mountpoint} → ${describeOrigin(m.origin)}`));
  return mounts.length === 0 ? 'nothing' : mounts.join(', ');
}

/** The URL a client reaches `host`:`port` at: the wildcard addresses as loopback, IPv6 in brackets. */
export function listenerUrl(l: Pick<ListenerInfo, 'host' | 'port' | 'tls'>): string {
  const host = l.host === '0.0.0.0' ? '127.0.0.1' : l.host === '::' ? '::1' : l.host;
  return `${l.tls ? 'https' : 'http'}://${isIP(host) === 6 ? `[${host}]` : host}:${l.port}/`;
}

/**
 * One line per listener: `serving <what> at <url> (<protocol>)`, or `… on unix socket <path>`.
 * One vhost called `localhost` (zero-config) is described by its mounts alone; otherwise every
 * vhost is named with its mounts in brackets.
 */
export function listenerLine(l: ListenerInfo, verb = 'serving'): string {
  const only = l.configs.length === 1 && l.configs[0]!.name === 'localhost' ? l.configs[0] : undefined;
  const what = only ? describeVhost(only) : l.configs.map((vc) => `${vc.name} [${describeVhost(vc)}]`).join(', ');
  const proto = l.tls ? (l.h2 ? 'TLS, HTTP/2 and HTTP/1.1' : 'TLS, HTTP/1.1') : l.h2c ? 'HTTP/1.1, h2c' : 'HTTP/1.1';
  return l.unix ? `vfserve: ${verb} ${what} on unix socket ${l.host} (${proto})` : `vfserve: ${verb} ${what} at ${listenerUrl(l)} (${proto})`;
}

function mib(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

/**
 * An indexing line: nothing for a quick parse under a second, a progress line
 * each second of a slow one, and one line when an archive is indexed.
 */
export function indexLine(e: ZipIndexEvent): string {
  const what = e.kind === 'random-access' ? 'random-access index of' : '';
  if (e.phase === 'progress') return `vfserve: indexing ${what ? `${what} ` : ''}${e.path}: ${(e.ms / 1000).toFixed(0)} s so far`;
  if (what) return `vfserve: indexed ${what} ${e.path}: ${e.entries ?? 0} access points in ${e.ms} ms, index ${mib(e.bytes ?? 0)}`;
  return `vfserve: indexed ${e.path}: ${e.entries ?? 0} entries in ${e.ms} ms, index ${mib(e.bytes ?? 0)}`;
}
