/**
 * The `vfserve` command line: a small table-driven parser (so a bad flag is
 * one line naming the flag, and `--help` is generated, grouped, with
 * defaults), and the mapping of zero-config flags onto the lwsws JSON
 * configuration they stand for. Flags are never interpreted any other way:
 * the server runs the JSON they build, which `--print-config` prints, so a
 * user can grow from flags to a configuration file with the same behaviour.
 */
import { isAbsolute, resolve } from 'node:path';
import { lookup as mimeLookup } from 'mime-types';
import { createMimeLookup } from '../mounts/mime.js';

/** A bad command line: one line for the user, exit status 2. */
export class FlagError extends Error {
  override readonly name = 'FlagError';
}

interface FlagSpec {
  readonly long: string;
  readonly short?: string;
  /** Placeholder of the value; absent for a switch. `optional`: only as `--flag=value`. */
  readonly value?: string;
  readonly optional?: boolean;
  readonly repeatable?: boolean;
  readonly group: string;
  readonly help: string;
  readonly default?: string;
  /** Maps into the zero-config configuration, so it cannot be combined with --config. */
  readonly zeroConfig?: boolean;
}

const GROUPS = ['Serving', 'Caching and headers', 'TLS', 'Logging', 'Configuration', 'Other'] as const;

const SPECS: readonly FlagSpec[] = [
  { long: 'port', short: 'p', value: 'N', group: 'Serving', help: 'port to listen on (0: any free port)', default: '7681', zeroConfig: true },
  { long: 'host', short: 'H', value: 'ADDR', group: 'Serving', help: 'interface to listen on (:: or 0.0.0.0 for all)', default: '127.0.0.1', zeroConfig: true },
  {
    long: 'single',
    short: 's',
    value: 'FILE',
    optional: true,
    group: 'Serving',
    help: 'single-page app: paths that match no file get FILE (--single=FILE) → "spa-fallback"',
    default: 'index.html when given',
    zeroConfig: true,
  },
  { long: 'listing', group: 'Serving', help: 'list directories that have no index file → "listing"', default: 'off', zeroConfig: true },
  { long: 'cors', short: 'C', group: 'Serving', help: 'allow cross-origin requests from anywhere → "cors"', default: 'off', zeroConfig: true },
  { long: 'compress', group: 'Serving', help: 'compress compressible responses on the fly → "compress"', default: 'off', zeroConfig: true },
  {
    long: 'allow',
    value: 'SUFFIX[=TYPE]',
    repeatable: true,
    group: 'Serving',
    help: 'also serve files ending in SUFFIX (.pdf, .zip=application/zip, * for every file), or the preset "downloads" → "extra-mimetypes"',
    default: 'the built-in whitelist',
    zeroConfig: true,
  },
  {
    long: 'cache',
    value: 'SECONDS',
    group: 'Caching and headers',
    help: 'clients may reuse responses this long → "cache-max-age" + "cache-reuse"',
    default: 'no-store',
    zeroConfig: true,
  },
  {
    long: 'immutable',
    group: 'Caching and headers',
    help: 'add "immutable" (content-hashed assets; --cache defaults to a year) → "cache-immutable"',
    default: 'off',
    zeroConfig: true,
  },
  {
    long: 'header',
    value: "'NAME: VALUE'",
    repeatable: true,
    group: 'Caching and headers',
    help: 'add a header to every response → "headers"',
    default: 'none',
    zeroConfig: true,
  },
  {
    long: 'ssl-cert',
    value: 'FILE',
    group: 'TLS',
    help: 'PEM certificate: serve https (with --ssl-key) → "host-ssl-cert"',
    default: 'plain http',
    zeroConfig: true,
  },
  { long: 'ssl-key', value: 'FILE', group: 'TLS', help: 'PEM private key → "host-ssl-key"', zeroConfig: true },
  { long: 'access-log', value: 'FILE', group: 'Logging', help: 'append Apache combined log lines to FILE → "access-log"', default: 'none', zeroConfig: true },
  { long: 'quiet', short: 'q', group: 'Logging', help: 'no request or indexing lines on the terminal (start-up lines stay)', default: 'off' },
  {
    long: 'config',
    short: 'c',
    value: 'PATH',
    group: 'Configuration',
    help: 'lwsws-style JSON configuration: a file, or a directory holding conf and conf.d/',
  },
  { long: 'print-config', group: 'Configuration', help: 'print the configuration file equivalent to the other flags, and exit' },
  { long: 'check', group: 'Configuration', help: 'load and check the configuration (or flags), print where it would listen, exit 0 or 2' },
  { long: 'help', short: 'h', group: 'Other', help: 'this text' },
  { long: 'version', short: 'v', group: 'Other', help: 'the version' },
];

/** The command line, parsed: each flag's values in order (a switch has `''`), and the positionals. */
export interface ParsedArgs {
  readonly values: ReadonlyMap<string, readonly string[]>;
  readonly positionals: readonly string[];
}

const SEE_HELP = '(see vfserve --help)';

/** Parses `argv` against the flag table. Throws a {@link FlagError} naming the flag for anything unknown, missing or repeated. */
export function parseFlags(argv: readonly string[]): ParsedArgs {
  const values = new Map<string, string[]>();
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    let name: string;
    let inline: string | undefined;
    let spec: FlagSpec | undefined;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      name = eq === -1 ? arg : arg.slice(0, eq);
      inline = eq === -1 ? undefined : arg.slice(eq + 1);
      spec = SPECS.find((s) => `--${s.long}` === name);
    } else {
      name = arg.slice(0, 2);
      inline = arg.length > 2 ? arg.slice(2) : undefined;
      spec = SPECS.find((s) => s.short !== undefined && `-${s.short}` === name);
      if (spec && spec.value === undefined && inline !== undefined) throw new FlagError(`unknown option ${arg}: give short switches one at a time ${SEE_HELP}`);
    }
    if (!spec) throw new FlagError(`unknown option ${name} ${SEE_HELP}`);
    const flag = `--${spec.long}`;
    let value = '';
    if (spec.value === undefined) {
      if (inline !== undefined) throw new FlagError(`${flag} takes no value ${SEE_HELP}`);
    } else if (inline !== undefined) value = inline;
    else if (!spec.optional) {
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith('-') && next !== '-' && !/^-\d/.test(next)))
        throw new FlagError(`${flag} needs a value: ${flag} ${spec.value} ${SEE_HELP}`);
      value = next;
      i++;
    }
    const seen = values.get(spec.long) ?? [];
    if (seen.length > 0 && !spec.repeatable) throw new FlagError(`${flag} is given twice`);
    seen.push(value);
    values.set(spec.long, seen);
  }
  return { values, positionals };
}

/** The grouped `--help` text, with each flag's default and the configuration key it maps to. */
export function helpText(): string {
  const rows = (group: string): string =>
    SPECS.filter((s) => s.group === group)
      .map((s) => {
        const left = `  ${s.short ? `-${s.short}, ` : '    '}--${s.long}${s.value ? (s.optional ? `[=${s.value}]` : ` ${s.value}`) : ''}`;
        const def = s.default ? ` (default: ${s.default})` : '';
        return `${left.padEnd(34)}${s.help}${def}${s.repeatable ? '; repeatable' : ''}`;
      })
      .join('\n');
  return `Usage:
  vfserve <dir-or-archive> [flags]      serve a directory or a .zip/.jar/.war at /
  vfserve --config <file-or-dir>        lwsws-style JSON configuration (conf + conf.d/*)
  vfserve <dir-or-archive> [flags] --print-config > conf
                                        the flags as a configuration file: vfserve --config conf does the same

${GROUPS.map((g) => `${g}:\n${rows(g)}`).join('\n\n')}

The words after → are the configuration keys the flags set. Request lines go to the terminal unless --quiet.
SIGTERM and SIGINT stop accepting and let in-flight responses finish; SIGHUP reloads a --config.
`;
}

/** Whether any flag that builds the zero-config configuration was given (they cannot be combined with --config). */
export function zeroConfigFlags(args: ParsedArgs): string[] {
  return SPECS.filter((s) => s.zeroConfig === true && args.values.has(s.long)).map((s) => `--${s.long}`);
}

function one(args: ParsedArgs, name: string): string | undefined {
  return args.values.get(name)?.[0];
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const MIME = /^[a-z0-9][\w.+-]*\/[\w.+-]+(\s*;.*)?$/i;
/** Whitelist presets `--allow` knows (mount key "mimetype-preset"). */
const ALLOW_PRESETS = new Set(['downloads']);

/**
 * The lwsws JSON configuration the zero-config flags stand for: one vhost
 * `localhost` with one mount of `target` (an absolute path) at `/`. Paths are
 * made absolute against `cwd`, so the printed configuration can live anywhere.
 * Throws a {@link FlagError} naming the flag for a bad value.
 */
export function flagsToConfig(args: ParsedArgs, target: string, cwd: string): Record<string, unknown> {
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(cwd, p));
  const portText = one(args, 'port') ?? '7681';
  const port = /^\d+$/.test(portText) ? Number(portText) : NaN;
  if (!Number.isInteger(port) || port > 65535) throw new FlagError(`--port must be 0-65535, got ${portText}`);
  const host = one(args, 'host') ?? '127.0.0.1';
  if (host === '') throw new FlagError('--host must be an address or an interface name');
  const vhost: Record<string, unknown> = { name: 'localhost', port, interface: host };
  const cert = one(args, 'ssl-cert');
  const key = one(args, 'ssl-key');
  if ((cert === undefined) !== (key === undefined)) throw new FlagError('--ssl-cert and --ssl-key go together');
  if (cert !== undefined && key !== undefined) {
    vhost['host-ssl-cert'] = abs(cert);
    vhost['host-ssl-key'] = abs(key);
  }
  const log = one(args, 'access-log');
  if (log !== undefined) vhost['access-log'] = abs(log);
  const headers: Record<string, string> = {};
  for (const h of args.values.get('header') ?? []) {
    const colon = h.indexOf(':');
    const name = colon === -1 ? '' : h.slice(0, colon).trim();
    const value = colon === -1 ? '' : h.slice(colon + 1).trim();
    if (!TOKEN.test(name)) throw new FlagError(`--header must be 'Name: value', got ${JSON.stringify(h)}`);
    if (/[\r\n\0]/.test(value)) throw new FlagError(`--header ${name}: a value cannot contain CR, LF or NUL`);
    headers[name] = value;
  }
  if (Object.keys(headers).length > 0) vhost.headers = [headers];

  const mount: Record<string, unknown> = { mountpoint: '/', origin: `file://${target}` };
  const single = one(args, 'single');
  if (single !== undefined) {
    const file = single === '' ? 'index.html' : single.replace(/^\/+/, '');
    if (file === '' || file.split('/').some((s) => s === '' || s === '.' || s === '..'))
      throw new FlagError(`--single must name a file under the served root, got ${single}`);
    mount['spa-fallback'] = `/${file}`; // a path inside the mount, as the key takes it
  }
  if (args.values.has('listing')) mount.listing = 1;
  if (args.values.has('cors')) mount.cors = 1;
  if (args.values.has('compress')) mount.compress = 1;
  const cacheText = one(args, 'cache');
  const immutable = args.values.has('immutable');
  if (cacheText !== undefined || immutable) {
    const seconds = cacheText === undefined ? 31_536_000 : /^\d+$/.test(cacheText) ? Number(cacheText) : NaN;
    if (!Number.isSafeInteger(seconds)) throw new FlagError(`--cache must be a number of seconds, got ${cacheText ?? ''}`);
    mount['cache-max-age'] = seconds;
    mount['cache-reuse'] = 1;
    if (immutable) mount['cache-immutable'] = 1;
  }
  const types: Record<string, string> = {};
  for (const a of args.values.get('allow') ?? []) {
    if (ALLOW_PRESETS.has(a)) {
      mount['mimetype-preset'] = a;
      continue;
    }
    const eq = a.indexOf('=');
    const suffix = eq === -1 ? a : a.slice(0, eq);
    if (!(suffix === '*' || /^\.[\w.+-]+$/.test(suffix))) {
      throw new FlagError(
        `--allow takes a suffix such as .pdf, .pdf=application/pdf or *, or a preset (${[...ALLOW_PRESETS].join(', ')}), got ${JSON.stringify(a)}`,
      );
    }
    let type = eq === -1 ? undefined : a.slice(eq + 1);
    if (type === undefined) {
      const known = suffix === '*' ? 'application/octet-stream' : mimeLookup(suffix);
      if (known === false) throw new FlagError(`--allow ${suffix}: no type is known for it; give one, as in ${suffix}=application/octet-stream`);
      type = known;
    } else if (!(MIME.test(type) || (type === '' && suffix === '*'))) throw new FlagError(`--allow ${suffix}: ${JSON.stringify(type)} is not a media type`);
    if (types[suffix] !== undefined) throw new FlagError(`--allow ${suffix} is given twice`);
    types[suffix] = type;
  }
  if (Object.keys(types).length > 0) {
    try {
      createMimeLookup(types); // the mount's own rules, so the configuration cannot refuse what the flags let through
    } catch (err) {
      throw new FlagError(`--allow: ${(err as Error).message.replace(/^extra mimetypes: /, '')}`);
    }
    mount['extra-mimetypes'] = types;
  }
  vhost.mounts = [mount];
  return { vhosts: [vhost] };
}
