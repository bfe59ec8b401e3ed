/**
 * A private nginx for tests: a generated configuration in a temp dir that also holds the pid file,
 * the logs, every temp path and any cache, listening on 127.0.0.1 on a free port, run in the
 * foreground as a child process. Never the system configuration, never a daemon.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { rmTree, tmpDir } from './fixtures.js';

/** The nginx binary: `$NGINX`, or `nginx` on the PATH, or Debian's /usr/sbin/nginx (not on a user's PATH). */
export const nginxBinary: string = process.env.NGINX ?? (spawnSync('nginx', ['-v'], { stdio: 'ignore' }).status === 0 ? 'nginx' : '/usr/sbin/nginx');

const present = spawnSync(nginxBinary, ['-v'], { stdio: 'ignore' }).status === 0;

/**
 * The `skip` option for tests that need nginx: false when it is installed, or under CI (.ci/run
 * installs Debian's nginx-light or stops, so a missing nginx fails there); otherwise the reason.
 */
export const nginxSkip: string | false =
  present || process.env.CI !== undefined ? false : `${nginxBinary} is not installed (apt-get install nginx-light); the tests against a real nginx did not run`;

/** A started nginx. */
export interface RunningNginx {
  readonly port: number;
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** The private directory: configuration, logs, temp paths, cache. */
  readonly dir: string;
  /** The configuration as generated. */
  readonly config: string;
  /** The access log's lines so far (the format is the caller's `log_format plain`, or nginx's default). */
  accessLog(): string[];
  /** The error log so far. */
  errorLog(): string;
  /** Stops nginx (SIGTERM, then SIGKILL after 5 s) and removes its directory; safe to call twice. */
  stop(): Promise<void>;
}

/** What goes into the configuration; `{{port}}` and `{{dir}}` in `http` are replaced. */
export interface NginxConfig {
  /**
   * The body of the `http { … }` block after the common part (temp paths, logs, mime types). It
   * holds the `server` blocks; each must `listen 127.0.0.1:{{port}}`.
   */
  readonly http: string;
}

/** A port free on 127.0.0.1 now (nginx binds it a moment later; a lost race is retried by {@link startNginx}). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1');
    sock.setTimeout(1000, () => sock.destroy());
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
    sock.once('close', () => resolve(false));
  });
}

/** The whole nginx.conf for `http` in `dir` on `port`. */
export function nginxConf(dir: string, port: number, http: string): string {
  const body = http.replaceAll('{{port}}', String(port)).replaceAll('{{dir}}', dir);
  return [
    // As root, workers would switch to `nobody`, who cannot read the private 0700 directory.
    ...(process.getuid?.() === 0 ? ['user root;'] : []),
    'worker_processes 1;',
    `pid ${dir}/nginx.pid;`,
    `error_log ${dir}/error.log warn;`,
    'events { worker_connections 256; }',
    'http {',
    `  client_body_temp_path ${dir}/client_body;`,
    `  proxy_temp_path ${dir}/proxy;`,
    `  fastcgi_temp_path ${dir}/fastcgi;`,
    `  uwsgi_temp_path ${dir}/uwsgi;`,
    `  scgi_temp_path ${dir}/scgi;`,
    `  log_format plain '$request_method $request_uri "$http_range" "$http_if_match" "$http_if_none_match" $status $body_bytes_sent';`,
    `  access_log ${dir}/access.log plain;`,
    '  types { application/zip zip; text/html html; text/css css; }',
    '  default_type application/octet-stream;',
    '  server_tokens off;',
    ...body.split('\n').map((l) => (l === '' ? l : `  ${l}`)),
    '}',
    '',
  ].join('\n');
}

/** Starts nginx with `config` on a free port and waits (at most 10 s) until it accepts connections. */
export async function startNginx(config: NginxConfig): Promise<RunningNginx> {
  let lastError = '';
  // A port taken between freePort() and nginx's bind: another port, at most three times.
  for (let attempt = 0; attempt < 3; attempt++) {
    const dir = tmpDir('vfserve-nginx-');
    const port = await freePort();
    const conf = nginxConf(dir, port, config.http);
    writeFileSync(join(dir, 'nginx.conf'), conf);
    const child = spawn(nginxBinary, ['-p', dir, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    // A binary that cannot be run: its reason, in the failure below.
    child.on('error', (err) => (output += `${err.message}\n`));
    const running = handle(child, dir, port, conf);
    const deadline = Date.now() + 10_000;
    let ready = false;
    while (child.exitCode === null && child.signalCode === null && Date.now() < deadline) {
      if (await canConnect(port)) {
        ready = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    if (ready) return running;
    lastError = `${output}\n${running.errorLog()}`;
    await running.stop();
    if (!/Address already in use/.test(lastError)) break;
  }
  assert.fail(`nginx did not start: ${lastError}`);
}

function handle(child: ChildProcess, dir: string, port: number, config: string): RunningNginx {
  const read = (name: string): string => {
    const file = join(dir, name);
    return existsSync(file) ? readFileSync(file, 'utf8') : '';
  };
  let stopped: Promise<void> | undefined;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    dir,
    config,
    accessLog: () =>
      read('access.log')
        .split('\n')
        .filter((l) => l !== ''),
    errorLog: () => read('error.log'),
    stop: () =>
      (stopped ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
          // SIGTERM is nginx's fast shutdown: the master stops its workers and exits.
          child.kill('SIGTERM');
          const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
          await exited;
          clearTimeout(killer);
        }
        rmTree(dir);
      })()),
  };
}
