/**
 * The header block a CGI program writes before its body (RFC 3875 §6.2-6.3), read incrementally
 * from stdout with a size cap. Stricter than the RFC's grammar on purpose: anything a client could
 * not be sent as it is makes the whole block malformed, so the caller answers 502 instead of
 * relaying a guess.
 */

/** Bytes a header block may take, its blank line included; over it the output is malformed. */
export const MAX_HEADER_BLOCK = 16 * 1024;

/** A CGI program's header block, parsed. Names of `fields` are lower-case; values are latin1 strings as node writes them. */
export interface CgiHead {
  /** From `Status: NNN reason`; undefined when the program wrote none. */
  readonly status: number | undefined;
  /** The reason phrase after the status code ('' when none). */
  readonly reason: string;
  readonly contentType: string | undefined;
  readonly location: string | undefined;
  /** From `Content-Length`: the body's length in bytes, which the program must then write exactly. */
  readonly contentLength: number | undefined;
  /** Every other field, in order; a repeated name appears once per line (Set-Cookie). */
  readonly fields: readonly (readonly [string, string])[];
}

/** The program's output broke the CGI response grammar; `message` says how, for the operator's log. */
export class CgiOutputError extends Error {
  override readonly name = 'CgiOutputError';
}

// RFC 9110 §5.1 field-name (token); a space before the colon is refused too (RFC 9112 §5.1).
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// Field values: HTAB, visible ASCII, SP and obs-text (RFC 9110 §5.5); what node's setHeader accepts.
// eslint-disable-next-line no-control-regex
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
const STATUS = /^([2-5]\d\d)(?:[ \t]+(.*))?$/;

/**
 * Reads a header block from chunks of output. {@link push} returns the head and the body bytes
 * that came after it once the blank line is seen, undefined while more is needed, and throws a
 * {@link CgiOutputError} for a malformed block; {@link end} throws when output ends first.
 */
export class CgiHeadParser {
  #buf: Buffer = Buffer.alloc(0);
  #scanned = 0;
  #status: number | undefined;
  #reason = '';
  #contentType: string | undefined;
  #location: string | undefined;
  #contentLength: number | undefined;
  readonly #fields: [string, string][] = [];

  push(chunk: Buffer): { head: CgiHead; rest: Buffer } | undefined {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    for (;;) {
      const nl = this.#buf.indexOf(0x0a, this.#scanned);
      if (nl === -1 || nl >= MAX_HEADER_BLOCK) break;
      // Lines end in LF or CRLF (RFC 3875 §6.2: NL).
      const end = nl > this.#scanned && this.#buf[nl - 1] === 0x0d ? nl - 1 : nl;
      const line = this.#buf.toString('latin1', this.#scanned, end);
      this.#scanned = nl + 1;
      if (line === '') return { head: this.#head(), rest: this.#buf.subarray(nl + 1) };
      this.#field(line);
    }
    if (this.#buf.length >= MAX_HEADER_BLOCK) throw new CgiOutputError(`header block over ${MAX_HEADER_BLOCK} bytes`);
    return undefined;
  }

  /** The output ended: always malformed, since the blank line never came. */
  end(): never {
    throw new CgiOutputError(this.#buf.length === 0 ? 'no output' : 'output ended before the blank line ending the header block');
  }

  #field(line: string): void {
    const colon = line.indexOf(':');
    if (colon === -1) throw new CgiOutputError(`a header line without a colon: ${quote(line)}`);
    const rawName = line.slice(0, colon);
    if (!TOKEN.test(rawName)) throw new CgiOutputError(`an invalid header name: ${quote(rawName)}`);
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
    if (BAD_VALUE.test(value)) throw new CgiOutputError(`a control character in header ${rawName}`);
    const name = rawName.toLowerCase();
    if (name === 'status') {
      const m = STATUS.exec(value);
      if (this.#status !== undefined || m === null)
        throw new CgiOutputError(`${this.#status === undefined ? 'an invalid' : 'a second'} Status: ${quote(value)}`);
      this.#status = Number(m[1]);
      this.#reason = m[2] ?? '';
    } else if (name === 'content-type' || name === 'location') {
      const key = name === 'location' ? 'location' : 'contentType';
      if ((key === 'location' ? this.#location : this.#contentType) !== undefined) throw new CgiOutputError(`a second ${rawName}`);
      if (value === '') throw new CgiOutputError(`an empty ${rawName}`);
      if (key === 'location') this.#location = value;
      else this.#contentType = value;
    } else if (name === 'content-length') {
      // A wrong length would desynchronise the client's framing (RFC 9112 §6.3): one plain number only.
      if (this.#contentLength !== undefined || !/^\d{1,15}$/.test(value)) throw new CgiOutputError(`an invalid or repeated Content-Length: ${quote(value)}`);
      this.#contentLength = Number(value);
    } else this.#fields.push([name, value]);
  }

  #head(): CgiHead {
    // RFC 3875 §6.2: a response is a document (Content-Type), a redirect (Location) or carries a Status.
    if (this.#status === undefined && this.#contentType === undefined && this.#location === undefined)
      throw new CgiOutputError('a header block with none of Status, Content-Type and Location');
    return {
      status: this.#status,
      reason: this.#reason,
      contentType: this.#contentType,
      location: this.#location,
      contentLength: this.#contentLength,
      fields: this.#fields,
    };
  }
}

/** A short, printable excerpt of program output for a log line. */
function quote(s: string): string {
  const cut = s.length > 80 ? `${s.slice(0, 80)}…` : s;
  return JSON.stringify(cut);
}
