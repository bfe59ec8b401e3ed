/**
 * Proxy and CGI mounts in lwsws configuration: the keys parse with errors naming the file and JSON
 * path, and a CGI program is checked at start-up and reload as file origins are.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { describeOrigin } from '../../src/cli/describe.js';
import { resolveMount } from '../../src/mounts/options.js';
import { checkOrigins, ConfigError, parseConfigObjects } from '../../src/server/config.js';
import { rmTree, tmpDir } from '../helpers/fixtures.js';

const dir = tmpDir('vfserve-config-origins-');
after(() => rmTree(dir));
const program = join(dir, 'app.cgi');
writeFileSync(program, '#!/bin/sh\necho "Content-Type: text/plain"\necho\necho hi\n');
chmodSync(program, 0o755);
const notExecutable = join(dir, 'plain.cgi');
writeFileSync(notExecutable, '#!/bin/sh\n');
chmodSync(notExecutable, 0o644);
mkdirSync(join(dir, 'work'));

function config(mount: Record<string, unknown>) {
  return parseConfigObjects([{ json: { vhosts: [{ name: 'v', port: 0, mounts: [{ mountpoint: '/m', ...mount }] }] }, file: join(dir, 'conf') }]);
}

describe('proxy and CGI mounts in configuration', () => {
  it('keeps a range+http origin as written (not a relative file path), and describes it as a remote archive', () => {
    const origin = 'range+http://127.0.0.1:9000/bucket/site.zip';
    const m = config({ origin }).vhosts[0]!.mounts[0]!;
    assert.equal(m.origin, origin);
    assert.equal(resolveMount(m, [], 'm', ['.zip/']).remote?.path, '/bucket/site.zip');
    assert.equal(describeOrigin(origin), 'remote archive http://127.0.0.1:9000/bucket/site.zip');
  });

  it('parses lwsws keys: cgi-env as [{...}], a relative cgi-chdir against the file, times as strings', () => {
    const c = config({ origin: `cgi://${program}`, 'cgi-env': [{ A: '1' }, { B: '2' }], 'cgi-timeout': '2.5', 'cgi-chdir': 'work' });
    const m = c.vhosts[0]!.mounts[0]!;
    assert.deepEqual(m.cgiEnv, { A: '1', B: '2' });
    assert.equal(m.cgiChdir, join(dir, 'work'));
    const resolved = resolveMount(m, [], 'm', []);
    assert.equal(resolved.kind, 'cgi');
    assert.ok(resolved.cgi);
    assert.equal(resolved.cgi.timeoutMs, 2500);
    assert.deepEqual(resolved.cgi.env, [
      ['A', '1'],
      ['B', '2'],
    ]);
    assert.equal(resolved.cgi.chdir, join(dir, 'work'));
  });
  it('parses proxy keys with their defaults and overrides', () => {
    const plain = resolveMount(config({ origin: 'http://127.0.0.1:9/app' }).vhosts[0]!.mounts[0]!, [], 'm', []);
    assert.equal(plain.kind, 'proxy');
    assert.deepEqual(
      { ...plain.proxy, origin: undefined },
      {
        origin: undefined,
        connectTimeoutMs: 10_000,
        readTimeoutMs: 60_000,
        trusted: [],
        preserveHost: false,
        tlsVerify: true,
        headerMode: 'standard',
        maxConcurrent: 1024,
      },
    );
    const set = resolveMount(
      config({
        origin: 'https://up.test/',
        'proxy-connect-timeout': '0.5',
        'proxy-read-timeout': 0,
        'proxy-trusted': ['10.0.0.1', '::FFFF:10.0.0.2'],
        'proxy-preserve-host': 'on',
        'proxy-tls-verify': '0',
        'proxy-headers': 'lws',
        'proxy-max-concurrent': '3',
        'no-ws-upgrades': 'yes',
      }).vhosts[0]!.mounts[0]!,
      [],
      'm',
      [],
    );
    assert.deepEqual(
      { ...set.proxy, origin: undefined },
      {
        origin: undefined,
        connectTimeoutMs: 500,
        readTimeoutMs: 0,
        trusted: ['10.0.0.1', '10.0.0.2'],
        preserveHost: true,
        tlsVerify: false,
        headerMode: 'lws',
        maxConcurrent: 3,
      },
    );
    assert.equal(set.noWsUpgrades, true);
  });
  it('refuses bad values with the key named', () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ origin: 'http://h/', 'proxy-connect-timeout': '0' }, /proxyConnectTimeout must be a number of seconds above 0/],
      [{ origin: 'http://h/', 'proxy-headers': 'nginx' }, /proxyHeaders must be "standard" or "lws"/],
      [{ origin: 'http://h/', 'proxy-max-concurrent': 0 }, /proxyMaxConcurrent must be a positive integer/],
      [{ origin: 'http://h/', 'proxy-tls-verify': 'maybe' }, /proxyTlsVerify must be a boolean/],
      [{ origin: `cgi://${program}`, 'cgi-env': [{ 'BAD-NAME': 'x' }] }, /cgiEnv: "BAD-NAME" is not a valid environment variable name/],
      [{ origin: `cgi://${program}`, 'cgi-inherit-env': ['HOME', '1X'] }, /cgiInheritEnv: "1X"/],
      [{ origin: 'file:///srv', 'cgi-timeout': '3' }, /cgiTimeout applies only to cgi:\/\/ origins/],
      [{ origin: 'ws://h/' }, /WebSocket origins are written http:\/\/ or https:\/\//],
    ];
    for (const [mount, message] of bad) assert.throws(() => resolveMount(config(mount).vhosts[0]!.mounts[0]!, [], 'm', []), message);
  });
  it('checks a CGI program at start-up: missing and not executable are errors naming the JSON path', async () => {
    await checkOrigins(config({ origin: `cgi://${program}` }));
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ['missing', { origin: `cgi://${join(dir, 'nope.cgi')}` }, /\["origin"\]: .*nope\.cgi does not exist$/],
      ['not executable', { origin: `cgi://${notExecutable}` }, /plain\.cgi is not executable/],
      ['a directory', { origin: `cgi://${join(dir, 'work')}` }, /work is not a file/],
      ['a missing working directory', { origin: `cgi://${program}`, 'cgi-chdir': 'gone' }, /the working directory .*gone does not exist/],
    ];
    for (const [what, mount, message] of cases) {
      await assert.rejects(checkOrigins(config(mount)), (err: unknown) => err instanceof ConfigError && message.test(err.message), what);
    }
  });
  it('does not check proxy origins at start-up: an origin that is down is a per-request 502', async () => {
    await checkOrigins(config({ origin: 'http://127.0.0.1:1/' }));
    await checkOrigins(config({ origin: `http://+${join(dir, 'no.sock')}:/` }));
  });
  it('describes proxy and CGI mounts for the start-up line', () => {
    assert.equal(describeOrigin('http://127.0.0.1:8080/app'), 'proxy http://127.0.0.1:8080/app');
    assert.equal(describeOrigin('cgi:///usr/lib/cgi-bin/app'), 'cgi /usr/lib/cgi-bin/app');
  });
});
