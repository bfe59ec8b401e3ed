#!/usr/bin/env node
/**
 * The `vfserve` command: zero-config (`vfserve <dir-or-zip>`) or configured
 * the way lwsws is (`vfserve --config <file-or-dir>`).
 */
import cluster from 'node:cluster';
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, loadCheckedConfig, type ServerConfig } from '../server/config.js';
import { originDefect } from '../server/origins.js';
import { startServer } from '../server/server.js';

const HELP = `Usage:
  vfserve <dir-or-archive> [--port N] [--host H]   serve a directory or a .zip/.jar/.war at /
  vfserve --config <file-or-dir>                    lwsws-style JSON configuration (conf + conf.d/*)

Options:
  -p, --port N      port for zero-config mode (default 7681)
  -H, --host H      interface for zero-config mode (default 127.0.0.1)
  -c, --config P    a configuration file, or a directory holding conf and conf.d/
  -q, --quiet       no per-request lines on the terminal
  -h, --help        this text
  -v, --version     the version

SIGTERM and SIGINT stop accepting and let in-flight responses finish.
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function fail(message: string, code = 2): never {
  process.stderr.write(`vfserve: ${message}\n`);
  process.exit(code);
}

async function main(argv: readonly string[]): Promise<void> {
  let args;
  try {
    args = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        port: { type: 'string', short: 'p' },
        host: { type: 'string', short: 'H' },
        config: { type: 'string', short: 'c' },
        quiet: { type: 'boolean', short: 'q' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (err) {
    fail(`${(err as Error).message}\n\n${HELP}`);
  }
  const { values, positionals } = args;
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  if (values.version) {
    process.stdout.write(`vfserve ${version()}\n`);
    return;
  }
  let config: ServerConfig;
  if (values.config !== undefined) {
    if (positionals.length > 0 || values.port !== undefined || values.host !== undefined) fail('--config cannot be combined with a path, --port or --host');
    try {
      config = await loadCheckedConfig(values.config);
    } catch (err) {
      if (err instanceof ConfigError) fail(err.message);
      throw err;
    }
  } else {
    if (positionals.length !== 1) fail(`give one directory or archive to serve, or --config\n\n${HELP}`);
    const target = resolve(positionals[0]!);
    let st;
    try {
      st = statSync(target);
    } catch {
      fail(`${target} does not exist`);
    }
    if (!st.isDirectory() && !/\.(zip|jar|war)$/i.test(target)) fail(`${target} is neither a directory nor a .zip, .jar or .war archive`);
    // An archive that cannot be read would answer 500 to everything: refuse to start instead.
    const defect = await originDefect(target);
    if (defect !== undefined) fail(defect);
    const port = Number(values.port ?? 7681);
    if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port must be 0-65535, got ${values.port ?? ''}`);
    config = {
      global: { countThreads: 1, pluginDirs: [], rejectServiceKeywords: [] },
      vhosts: [
        {
          name: 'localhost',
          port,
          interface: values.host ?? '127.0.0.1',
          unixSocket: false,
          sts: false,
          headers: {},
          mounts: [{ mountpoint: '/', origin: `file://${target}` }],
          source: 'command line',
        },
      ],
    };
  }
  const quiet = values.quiet === true;
  if (config.global.countThreads > 1 && cluster.isPrimary) {
    runPrimary(config.global.countThreads);
    return;
  }
  // A worker takes its orders from the primary from the start: a shutdown sent while it is still
  // starting must not be lost, and a worker whose primary is gone must not live on as an orphan.
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  if (cluster.isWorker) {
    const shutdown = (): void => {
      if (server) void server.close(10_000).then(() => process.exit(0));
      else process.exit(0);
    };
    process.on('message', (msg: { type?: string }) => {
      if (msg.type === 'shutdown') shutdown();
      if (msg.type === 'reload' && values.config !== undefined && server) {
        const running = server;
        const configPath = values.config;
        Promise.resolve()
          .then(() => loadCheckedConfig(configPath))
          .then((next) => running.reload(next))
          .then(
            () => process.send!({ type: 'reloaded' }),
            (err: unknown) => process.send!({ type: 'reload-failed', message: (err as Error).message }),
          );
      }
    });
    process.on('disconnect', shutdown);
    // Signals go to the primary, which coordinates the workers.
    process.on('SIGTERM', () => undefined);
    process.on('SIGINT', () => undefined);
    process.on('SIGHUP', () => undefined);
  }
  try {
    server = await startServer(config, {
      ...(quiet ? {} : { requestLog: (line: string) => process.stdout.write(`${line}\n`) }),
      clusterWorker: cluster.isWorker,
    });
  } catch (err) {
    fail((err as Error).message, 1);
  }
  const lines = server.listeners.map((l) =>
    l.unix
      ? `vfserve: serving ${l.vhosts.join(', ')} on unix socket ${l.host}`
      : `vfserve: serving ${l.vhosts.join(', ')} at ${l.tls ? 'https' : 'http'}://${l.host === '0.0.0.0' ? '127.0.0.1' : l.host}:${l.port}/`,
  );
  // A worker reports to the primary, which prints once all of them listen.
  if (cluster.isWorker) {
    process.send!({ type: 'listening', lines });
    return;
  }
  const running = server;
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`vfserve: ${signal}, finishing in-flight requests\n`);
    running.close(10_000).then(
      () => process.exit(0),
      (err: unknown) => fail(`closing failed: ${err instanceof Error ? err.message : String(err)}`, 1),
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  const configPath = values.config;
  // SIGHUP: reload the configuration on the same sockets; a bad one is logged and the old one keeps serving.
  process.on('SIGHUP', () => {
    if (configPath === undefined) {
      process.stdout.write('vfserve: SIGHUP ignored: there is no configuration to reload in zero-config mode\n');
      return;
    }
    Promise.resolve()
      .then(() => loadCheckedConfig(configPath))
      .then((next) => running.reload(next))
      .then(
        () => process.stdout.write(`vfserve: configuration reloaded from ${configPath}\n`),
        (err: unknown) => process.stderr.write(`vfserve: reload failed, still serving the previous configuration: ${(err as Error).message}\n`),
      );
  });
  // Only now: whoever waits for this line may signal at once, and a SIGHUP that came before
  // the handler above would kill the process (the default action).
  for (const line of lines) process.stdout.write(`${line}\n`);
}

/**
 * `count-threads` > 1: the primary forks that many workers sharing the port (node:cluster), prints
 * the URL once, forwards SIGHUP to every worker, shuts them down gracefully on SIGTERM/SIGINT, and
 * replaces a worker that dies unexpectedly.
 */
function runPrimary(count: number): void {
  let stopping = false;
  let listening = 0;
  // Counted here: cluster.workers drops a worker only after both its 'disconnect' and 'exit',
  // so reading it in an 'exit' handler can still see the last worker and never exit.
  let alive = 0;
  const fork = (): void => {
    if (stopping) return;
    alive++;
    const worker = cluster.fork();
    worker.on('message', (msg: { type?: string; lines?: string[]; message?: string }) => {
      // The URL goes out once every worker listens, so the first requests already spread over all.
      if (msg.type === 'listening' && ++listening === count) {
        for (const line of msg.lines ?? []) process.stdout.write(`${line} (${count} workers)\n`);
      }
      if (msg.type === 'reloaded') process.stdout.write(`vfserve: worker ${worker.process.pid ?? ''}: configuration reloaded\n`);
      if (msg.type === 'reload-failed')
        process.stderr.write(`vfserve: worker ${worker.process.pid ?? ''}: reload failed, still serving the previous configuration: ${msg.message ?? ''}\n`);
    });
    // @types/node says number, but a worker killed by a signal exits with code null.
    worker.once('exit', (code: number | null) => {
      alive--;
      if (stopping) {
        if (alive === 0) process.exit(0);
        return;
      }
      process.stderr.write(`vfserve: worker ${worker.process.pid ?? ''} exited (${code ?? 'signal'}); starting another\n`);
      setTimeout(fork, 500); // bounded restart rate
    });
  };
  for (let i = 0; i < count; i++) fork();
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`vfserve: ${signal}, finishing in-flight requests\n`);
    for (const w of Object.values(cluster.workers ?? {})) w?.send({ type: 'shutdown' });
    // Workers close within their own 10 s; never outlive them by much.
    setTimeout(() => process.exit(0), 15_000).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.send({ type: 'reload' });
  });
}

main(process.argv.slice(2)).catch((err: unknown) => fail(err instanceof Error ? (err.stack ?? err.message) : String(err), 1));
