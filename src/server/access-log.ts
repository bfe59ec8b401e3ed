import { createWriteStream, openSync, type WriteStream } from 'node:fs';

/** One response's claim on an access log: call it once with the response's line; later calls do nothing. */
export type LogClaim = (line: string) => void;

/**
 * A vhost's access log, shared by the responses it serves and closed only
 * after the last of them has written its line.
 *
 * Contract: a response takes a claim with `begin()` when it starts and hands
 * in its one line through that claim when it ends. `retire()` says no claim
 * will be taken any more (the configuration that owns the log was replaced or
 * closed); the file is ended once the log is retired and no claim is
 * outstanding. So every claimed response is logged exactly once, and nothing
 * writes to an ended stream. A write error (disk full, EBADF) is reported
 * once through `onError`; later lines are dropped and serving goes on.
 */
export class AccessLog {
  readonly #stream: WriteStream;
  /** Claims taken and not yet handed in. */
  #pending = 0;
  #retired = false;
  #failed = false;
  /** Settles once the file is closed: every line written, or the stream failed. Never rejects. */
  readonly closed: Promise<void>;

  /**
   * Opens `path` for appending. The open is synchronous so that a log that
   * cannot be opened fails the start or reload that asked for it, instead of
   * surfacing later as a stream error.
   */
  constructor(path: string, onError: (err: unknown) => void) {
    // O_APPEND: the generations of one log (one per reload) share the file, and copytruncate is safe.
    this.#stream = createWriteStream(path, { fd: openSync(path, 'a') });
    this.closed = new Promise((resolve) => this.#stream.once('close', () => resolve()));
    // A WriteStream 'error' with no listener is an uncaught exception: it would take the server down.
    this.#stream.on('error', (err) => {
      if (this.#failed) return;
      this.#failed = true;
      onError(new Error(`access log ${path}: ${err.message}`, { cause: err }));
    });
  }

  /** A claim for one response. Calling it after `retire()` is a bug in the caller, and throws. */
  begin(): LogClaim {
    if (this.#retired) throw new Error('AccessLog.begin() after retire()');
    this.#pending++;
    let done = false;
    return (line) => {
      if (done) return;
      done = true;
      // After a failure the stream is destroyed; a write would only fail again.
      if (!this.#failed) this.#stream.write(line);
      this.#pending--;
      this.#endIfIdle();
    };
  }

  /** No more claims: the file ends when the outstanding ones are in. Idempotent; resolves as `closed` does. */
  retire(): Promise<void> {
    this.#retired = true;
    this.#endIfIdle();
    return this.closed;
  }

  #endIfIdle(): void {
    if (this.#retired && this.#pending === 0 && !this.#stream.writableEnded && !this.#stream.destroyed) this.#stream.end();
  }
}
