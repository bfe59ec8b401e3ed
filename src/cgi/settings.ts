/** A `cgi://` mount's settings, checked once when the mount is resolved. */

/** What a CGI mount runs and how. Times are in milliseconds. */
export interface CgiSettings {
  /** The program's absolute path; it is spawned directly, never through a shell. */
  readonly program: string;
  /** The mount's `cgi-env`, applied last, over every other variable. */
  readonly env: readonly (readonly [string, string])[];
  /** Wall time a program may run before it is killed (SIGTERM, then SIGKILL); 0: no limit. Default 5 s (lws). */
  readonly timeoutMs: number;
  /** The working directory (default: the program's directory). */
  readonly chdir: string;
  /** Programs of this mount running at once; over it, 503 with Retry-After (default 16). */
  readonly maxConcurrent: number;
  /** Variables of the server's own environment passed on (default `LANG`, `LC_ALL`, `LC_CTYPE`, `TZ`). */
  readonly inheritEnv: readonly string[];
}

/** The inherited variables when a mount names none: locale and time zone only, never secrets or PATH. */
export const DEFAULT_INHERIT_ENV: readonly string[] = Object.freeze(['LANG', 'LC_ALL', 'LC_CTYPE', 'TZ']);

/** A CGI environment variable name: what a shell can export. */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
