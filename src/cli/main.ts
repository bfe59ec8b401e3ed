#!/usr/bin/env node
/**
 * The `vfserve` command: zero-config (`vfserve <dir-or-zip>`) or configured
 * the way lwsws is (`vfserve --config <file-or-dir>`).
 */
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type ServerConfig } from '../server/config.js';
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
      config = loadConfig(values.config);
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
    const port = Number(values.port ?? 7681);
    if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port must be 0-65535, got ${values.port ?? ''}`);
    config = {
      global: { countThreads: 1, pluginDirs: [], rejectServiceKeywords: [] },
      vhosts: [{ name: 'localhost', port, interface: values.host ?? '127.0.0.1', unixSocket: false, sts: false, headers: {}, mounts: [{ mountpoint: '/', origin: `file://${target}` }], source: 'command line' }],
    };
  }
  const quiet = values.quiet === true;
  let server;
  try {
    server = await startServer(config, quiet ? {} : { requestLog: (line) => process.stdout.write(`${line}\n`) });
  } catch (err) {
    fail((err as Error).message, 1);
  }
  for (const l of server.listeners) {
    const host = l.host === '0.0.0.0' ? '127.0.0.1' : l.host;
    process.stdout.write(`vfserve: serving ${l.vhosts.join(', ')} at ${l.tls ? 'https' : 'http'}://${host}:${l.port}/\n`);
  }
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`vfserve: ${signal}, finishing in-flight requests\n`);
    server.close(10_000).then(() => process.exit(0));
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
      .then(() => server.reload(loadConfig(configPath)))
      .then(
        () => process.stdout.write(`vfserve: configuration reloaded from ${configPath}\n`),
        (err: unknown) => process.stderr.write(`vfserve: reload failed, still serving the previous configuration: ${(err as Error).message}\n`),
      );
  });
}

main(process.argv.slice(2)).catch((err: unknown) => fail(err instanceof Error ? (err.stack ?? err.message) : String(err), 1));
