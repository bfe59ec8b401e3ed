// Deterministic log-like text with random access, for bench/range.mjs.
//
// The text is a sequence of 64 KiB blocks; block i is made only from (seed, i):
// log lines (ISO timestamp, level, component, a request line with a path, status,
// latency, user, trace id) from a xorshift generator seeded by the block number,
// the last line cut at the block end, whose last byte is always '\n'. So the bytes
// at any offset are regenerated from one or two blocks, never from the start, and
// a body fetched at offset X is checked without the whole file. Deflate level 6
// (Info-ZIP's default) compresses it about 6:1. Bump LOG_GEN_VERSION when the
// output changes (cached archives are keyed by it).

export const LOG_GEN_VERSION = 1;
export const LOG_BLOCK = 64 * 1024;

const LEVELS = ['INFO ', 'INFO ', 'INFO ', 'INFO ', 'DEBUG', 'DEBUG', 'WARN ', 'ERROR'];
const COMPONENTS = ['http.worker-1', 'http.worker-2', 'http.worker-3', 'http.worker-4', 'db.pool', 'cache.lru', 'auth.session', 'queue.consumer'];
const METHODS = ['GET', 'GET', 'GET', 'GET', 'POST', 'PUT', 'DELETE', 'HEAD'];
const PATHS = [
  '/api/v1/items',
  '/api/v1/items/search',
  '/api/v1/users',
  '/api/v1/orders',
  '/static/app.js',
  '/static/app.css',
  '/index.html',
  '/healthz',
  '/api/v2/reports/daily',
  '/api/v2/reports/monthly',
];
const STATUSES = [200, 200, 200, 200, 200, 200, 304, 304, 206, 404, 500, 302];
const USERS = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan', 'judy', 'mallory', 'oscar', 'peggy', 'trent', 'victor', 'walter'];
const MESSAGES = [
  'request completed',
  'request completed',
  'request completed',
  'cache miss, loading from origin',
  'slow query detected',
  'retrying after timeout',
  'connection reset by peer',
  'session refreshed',
];
const HEX = '0123456789abcdef';
const BASE_MS = Date.UTC(2024, 0, 2, 3, 4, 5);

/** Block `index` of the text for `seed`: exactly LOG_BLOCK bytes, the last one '\n'. */
export function logBlock(index, seed = 1) {
  // xorshift32, seeded from (seed, index); never zero.
  let s = (Math.imul(index + 1, 0x9e3779b1) ^ Math.imul(seed, 0x85ebca6b) ^ 0x2545f491) >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
  const pick = (arr) => arr[next() % arr.length];
  const buf = Buffer.allocUnsafe(LOG_BLOCK + 512);
  let len = 0;
  let ms = BASE_MS + index * 400;
  while (len < LOG_BLOCK) {
    ms += next() % 7;
    let trace = '';
    for (let k = 0; k < 12; k++) trace += HEX[next() & 15];
    const r = next();
    const line = `${new Date(ms).toISOString()} ${LEVELS[r & 7]} [${COMPONENTS[(r >>> 3) & 7]}] ${METHODS[(r >>> 6) & 7]} ${pick(PATHS)}${r & 0x200 ? `/${next() % 5000}` : ''} ${pick(STATUSES)} ${next() % 2500}ms user=${pick(USERS)} trace=${trace} ${pick(MESSAGES)}\n`;
    len += buf.latin1Write(line, len);
  }
  buf[LOG_BLOCK - 1] = 0x0a;
  return buf.subarray(0, LOG_BLOCK);
}

/** The first `size` bytes of the text, in chunks of about `chunkSize` (whole blocks, the last one cut). */
export function* logChunks(size, seed = 1, chunkSize = 4 * 1024 * 1024) {
  const per = Math.max(1, Math.floor(chunkSize / LOG_BLOCK));
  let block = 0;
  let left = size;
  while (left > 0) {
    const n = Math.min(per, Math.ceil(left / LOG_BLOCK));
    const chunk = Buffer.allocUnsafe(n * LOG_BLOCK);
    for (let k = 0; k < n; k++) logBlock(block + k, seed).copy(chunk, k * LOG_BLOCK);
    block += n;
    const take = Math.min(left, chunk.length);
    yield take === chunk.length ? chunk : chunk.subarray(0, take);
    left -= take;
  }
}

/** Bytes [offset, offset + length) of the text for `seed`, from the blocks that hold them only. */
export function logBytes(offset, length, seed = 1) {
  const out = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const pos = offset + done;
    const b = Math.floor(pos / LOG_BLOCK);
    const at = pos - b * LOG_BLOCK;
    done += logBlock(b, seed).copy(out, done, at, Math.min(LOG_BLOCK, at + length - done));
  }
  return out;
}
