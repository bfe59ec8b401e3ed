#!/usr/bin/env node
/**
 * The `vfserve` command: zero-config (`vfserve <dir-or-zip>`) or configured
 * the way lwsws is (`vfserve --config <file-or-dir>`).
 */
import cluster from 'node:cluster';
import { closeSync, openSync, readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import type { ZipIndexEvent } from '../fops/zip/zip-fops.js';
import { ConfigError, loadCheckedConfig, parseConfigObjects, type ServerConfig } from '../server/config.js';
import { originDefect } from '../server/origins.js';
import { checkServer, startServer } from '../server/server.js';
import { indexLine, listenerLine } from './describe.js';
import { FlagError, flagsToConfig, helpText, parseFlags, zeroConfigFlags, type ParsedArgs } from './flags.js';

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function fail(message: string, code = 2): never {
  process.stderr.write(`vfserve: ${message}\n`);
  process.exit(code);
}

/** A file a flag names must be readable now: the message names the flag, not a vhost or a JSON path. */
function readFlagFile(flag: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    fail(`${flag} ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/**
 * The zero-config configuration for the flags and the one path given: checked the way the flags
 * are spelt (the path exists and can be served, TLS files load, the access log opens), then built
 * into lwsws JSON and parsed as a configuration file would be.
 */
async function zeroConfig(
  args: ParsedArgs,
  onIndex: ((e: ZipIndexEvent) => void) | undefined,
): Promise<{ json: Record<string, unknown>; config: ServerConfig }> {
  if (args.positionals.length !== 1) fail('give one directory or archive to serve, or --config (see vfserve --help)');
  const target = resolve(args.positionals[0]!);
  let st;
  try {
    st = statSync(target);
  } catch {
    fail(`${target} does not exist`);
  }
  if (!st.isDirectory() && !/\.(zip|jar|war)$/i.test(target)) fail(`${target} is neither a directory nor a .zip, .jar or .war archive`);
  let json: Record<string, unknown>;
  try {
    json = flagsToConfig(args, target, process.cwd());
  } catch (err) {
    if (err instanceof FlagError) fail(err.message);
    throw err;
  }
  const vhost = (json.vhosts as Record<string, unknown>[])[0]!;
  const cert = vhost['host-ssl-cert'];
  const key = vhost['host-ssl-key'];
  if (typeof cert === 'string' && typeof key === 'string') {
    const pem = { cert: readFlagFile('--ssl-cert', cert), key: readFlagFile('--ssl-key', key) };
    try {
      createSecureContext(pem);
    } catch (err) {
      fail(`--ssl-cert and --ssl-key cannot be used: ${(err as Error).message}`);
    }
  }
  const log = vhost['access-log'];
  if (typeof log === 'string') {
    try {
      closeSync(openSync(log, 'a'));
    } catch (err) {
      fail(`--access-log ${log} cannot be opened (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  // An archive that cannot be read would answer 500 to everything: refuse to start instead.
  const defect = await originDefect(target, onIndex);
  if (defect !== undefined) fail(defect);
  try {
    return { json, config: parseConfigObjects([{ json, file: 'command line' }]) };
  } catch (err) {
    // The flags were checked above; this is a flag the configuration refuses after all.
    if (err instanceof ConfigError) fail(`the flags give a configuration vfserve refuses: ${err.message.replace(/^command line: /, '')}`);
    throw err;
  }
}

async function main(argv: readonly string[]): Promise<void> {
  let args: ParsedArgs;
  try {
    args = parseFlags(argv);
  } catch (err) {
    if (err instanceof FlagError) fail(err.message);
    throw err;
  }
  const values = {
    help: args.values.has('help'),
    version: args.values.has('version'),
    quiet: args.values.has('quiet'),
    check: args.values.has('check'),
    printConfig: args.values.has('print-config'),
    config: args.values.get('config')?.[0],
  };
  if (values.help) {
    process.stdout.write(helpText());
    return;
  }
  if (values.version) {
    process.stdout.write(`vfserve ${version()}\n`);
    return;
  }
  const quiet = values.quiet;
  // Indexing lines: progress of a slow index and one line per archive indexed (none with --quiet, or --check, whose output is its verdict).
  const onIndex = quiet || values.check ? undefined : (e: ZipIndexEvent): void => void process.stdout.write(`${indexLine(e)}\n`);
  let config: ServerConfig;
  if (values.config !== undefined) {
    const extra = zeroConfigFlags(args);
    if (args.positionals.length > 0) fail('--config cannot be combined with a path to serve: mount it in the configuration');
    if (extra.length > 0)
      fail(
        `${extra.join(', ')} cannot be combined with --config: set ${extra.length > 1 ? 'them' : 'it'} in the configuration (vfserve --help names the keys)`,
      );
    if (values.printConfig) fail('--print-config prints the configuration the flags stand for; with --config the file is the configuration');
    try {
      config = await loadCheckedConfig(values.config, onIndex);
    } catch (err) {
      if (err instanceof ConfigError) fail(err.message);
      throw err;
    }
  } else {
    const built = await zeroConfig(args, onIndex);
    if (values.printConfig) {
      process.stdout.write(`${JSON.stringify(built.json, null, 2)}\n`);
      return;
    }
    config = built.config;
  }
  if (values.check) {
    try {
      const planned = await checkServer(config);
      for (const l of planned) process.stdout.write(`${listenerLine(l, 'would serve')}\n`);
      process.stdout.write('vfserve: configuration OK\n');
    } catch (err) {
      fail((err as Error).message);
    }
    return;
  }
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
          .then(() => loadCheckedConfig(configPath, onIndex))
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
      ...(onIndex ? { onIndex } : {}),
      version: version(),
      clusterWorker: cluster.isWorker,
    });
  } catch (err) {
    fail((err as Error).message, 1);
  }
  const lines = server.listeners.map((l) => listenerLine(l));
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
      .then(() => loadCheckedConfig(configPath, onIndex))
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
