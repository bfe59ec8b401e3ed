/**
 * Where a JSON text first goes wrong, as a line and column: V8's JSON.parse
 * messages give a character offset at best, and sometimes no position at all.
 */

/** The first syntax error of `text`: 1-based line and column, and what was expected there. */
export interface JsonSyntaxError {
  readonly line: number;
  readonly column: number;
  readonly message: string;
}

class Fail extends Error {
  constructor(
    readonly offset: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Scans `text` as JSON (RFC 8259) and returns its first syntax error, or
 * undefined when it is valid. Columns count UTF-16 code units, as editors
 * showing JavaScript strings do; a tab is one column.
 */
export function findJsonSyntaxError(text: string): JsonSyntaxError | undefined {
  let i = 0;
  const ws = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const what = (): string => (i >= text.length ? 'the end of the input' : JSON.stringify(text[i]));
  const fail = (expected: string): never => {
    throw new Fail(i, `expected ${expected}, found ${what()}`);
  };
  const string = (): void => {
    i++; // the opening quote
    for (;;) {
      if (i >= text.length) throw new Fail(i, 'unterminated string');
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return;
      }
      if (c < 0x20) throw new Fail(i, 'a control character (such as a line break) inside a string; write it as \\n, \\t, …');
      if (c === 0x5c) {
        const e = text[i + 1];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) throw new Fail(i, 'a \\u escape needs four hex digits');
          i += 6;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2;
        else throw new Fail(i, 'an unknown escape in a string');
      } else i++;
    }
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('a property name in double quotes');
        string();
        ws();
        if (text[i] !== ':') fail("':'");
        i++;
        value();
        ws();
        if (text[i] === ',') {
          const comma = i++;
          ws();
          if (text[i] === '}') throw new Fail(comma, "a trailing ',' before '}' (JSON has none)");
          continue;
        }
        if (text[i] === '}') {
          i++;
          return;
        }
        fail("',' or '}'");
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        value();
        ws();
        if (text[i] === ',') {
          const comma = i++;
          ws();
          if (text[i] === ']') throw new Fail(comma, "a trailing ',' before ']' (JSON has none)");
          continue;
        }
        if (text[i] === ']') {
          i++;
          return;
        }
        fail("',' or ']'");
      }
    }
    if (c === '"') {
      string();
      return;
    }
    const m = /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i, i + 400));
    if (m) {
      i += m[0].length;
      return;
    }
    fail('a value');
  };
  try {
    value();
    ws();
    if (i < text.length) fail('the end of the input');
    return undefined;
  } catch (err) {
    if (!(err instanceof Fail)) throw err;
    const before = text.slice(0, err.offset);
    const line = before.split('\n').length;
    const column = err.offset - (before.lastIndexOf('\n') + 1) + 1;
    return { line, column, message: err.message };
  }
}
