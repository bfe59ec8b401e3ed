/**
 * Response bodies: a whole representation, one range of it, or a
 * multipart/byteranges layout, from bytes in memory or from an open handle.
 */
import { Readable } from 'node:stream';
import { FopError } from '../fops/errors.js';
import { fopChanged } from '../fops/helpers.js';
import type { FopFd } from '../fops/types.js';

/** A body laid out as pieces: literal bytes (multipart heads, the tail) and inclusive byte ranges of the content. */
export type BodyPiece = Buffer | { readonly start: number; readonly end: number };

/** The pieces of a multipart/byteranges body (each part's head, its bytes; then the tail). */
export function multipartPieces(parts: readonly { readonly head: Buffer; readonly start: number; readonly end: number }[], tail: Buffer): BodyPiece[] {
  const pieces: BodyPiece[] = [];
  for (const p of parts) pieces.push(p.head, { start: p.start, end: p.end });
  pieces.push(tail);
  return pieces;
}

/** The body from bytes in memory: views for a single piece, one Buffer for several. */
export function bufferBody(data: Buffer, pieces: readonly BodyPiece[]): Buffer {
  if (pieces.length === 1) {
    const p = pieces[0]!;
    if (Buffer.isBuffer(p)) return p;
    // The whole content as it is: no new Buffer object per response.
    return p.start === 0 && p.end === data.length - 1 ? data : data.subarray(p.start, p.end + 1);
  }
  return Buffer.concat(pieces.map((p) => (Buffer.isBuffer(p) ? p : data.subarray(p.start, p.end + 1))));
}

// Larger reads than fs streams' 64 KiB: one read for a 100 KiB file, a quarter of the reads for big ones.
export const READ_CHUNK = 256 * 1024;
// Bytes one body reads before it lets the event loop turn: reads a cache answers at once would
// otherwise let one response write until its socket is full while every other waits.
const YIELD_BYTES = 1024 * 1024;

/**
 * A body read from an open handle, which it owns: the handle is closed once,
 * when the stream ends, fails or is destroyed, even if it never started (an
 * async generator under `Readable.from` would skip its `finally` then, leaking
 * the descriptor). Before the last byte is pushed the handle is asked whether
 * its file changed since it was opened; if so the stream fails, so the
 * response is cut and never complete with bytes of two versions.
 */
export class HandleBody extends Readable {
  readonly #fd: FopFd;
  readonly #pieces: readonly BodyPiece[];
  #index = 0;
  #offset = -1; // next byte of the current range piece; -1 before it starts
  #left: number; // bytes of every piece not pushed yet
  #sinceYield = 0; // bytes read since the body last let the event loop turn

  /** `path` names the file in errors (for the log, never the client). */
  constructor(
    fd: FopFd,
    pieces: readonly BodyPiece[],
    readonly path = '',
  ) {
    super({ highWaterMark: READ_CHUNK });
    this.#fd = fd;
    this.#pieces = pieces;
    this.#left = pieces.reduce((n, p) => n + (Buffer.isBuffer(p) ? p.length : p.end - p.start + 1), 0);
  }

  override _read(): void {
    this.#next().then(
      (chunk) => {
        if (chunk === null) {
          this.push(null);
          return;
        }
        this.#left -= chunk.length;
        this.push(chunk);
        if (this.#left === 0) this.push(null);
      },
      (err: unknown) => this.destroy(err instanceof Error ? err : new Error(String(err))),
    );
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.#fd.close().then(
      () => callback(err),
      (closeErr: unknown) => callback(err ?? (closeErr instanceof Error ? closeErr : null)),
    );
  }

  /** The next chunk; the last one only after the file is known unchanged. */
  async #next(): Promise<Buffer | null> {
    const piece = this.#pieces[this.#index];
    if (piece === undefined) return null;
    let chunk: Buffer;
    if (Buffer.isBuffer(piece)) {
      chunk = piece;
      this.#index++;
    } else {
      if (this.#offset < 0) this.#offset = piece.start;
      if (this.#sinceYield >= YIELD_BYTES) {
        this.#sinceYield = 0;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      chunk = await this.#readAt(this.#offset, Math.min(READ_CHUNK, piece.end - this.#offset + 1));
      this.#offset += chunk.length;
      this.#sinceYield += chunk.length;
      if (this.#offset > piece.end) {
        this.#index++;
        this.#offset = -1;
      }
    }
    if (chunk.length === this.#left && (await fopChanged(this.#fd))) {
      throw new FopError('IO', 'read', this.path, 'the file changed while it was being sent');
    }
    return chunk;
  }

  async #readAt(position: number, want: number): Promise<Buffer> {
    const fd = this.#fd;
    // Sequential reads keep an inflater's state; seeking is cheap and synchronous.
    if (fd.pos !== position && fd.seekCur(position - fd.pos) !== position) {
      throw new FopError('IO', 'read', this.path, 'the file is shorter than it was');
    }
    let chunk: Buffer;
    if (fd.readBuffer) chunk = await fd.readBuffer(want);
    else {
      const buf = Buffer.allocUnsafe(want);
      const n = await fd.read(buf);
      chunk = n === want ? buf : buf.subarray(0, n);
    }
    if (chunk.length === 0) throw new FopError('IO', 'read', this.path, 'the file is shorter than it was (truncated while being sent)');
    return chunk;
  }
}
