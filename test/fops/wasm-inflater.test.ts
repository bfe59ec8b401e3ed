import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { constants as zc, crc32, deflateRawSync, inflateRawSync, type ZlibOptions } from 'node:zlib';
import {
  buildCheckpoints,
  createBoundaryInflater,
  createPakoInflater,
  type BoundaryInflater,
  type CheckpointIndex,
  type DeflateEntry,
} from '../../src/fops/zip/deflate-index.js';
import { createWasmInflater, wasmMemoryBytes } from '../../src/fops/zip/wasm-inflater.js';
import { sourceFromBytes } from '../../src/fops/zip/source.js';
import { logText } from '../helpers/fixtures.js';

const text = (length: number, seed = 11): Buffer => logText(length, seed);

interface Run {
  readonly output: Buffer;
  /** Per inflate call: status, produced, data_type, availIn, lastByte (or -1 before any input is taken). */
  readonly stops: string[];
  /** Output offsets of the block boundaries reported (data_type bit 128, not after the last block). */
  readonly boundaries: number[];
  readonly status: number;
  readonly message: string;
}

/** Drives an inflater the way the checkpoint pass does: input in `inChunk` pieces, output `outLen` at a time at an offset. */
function drive(inflater: BoundaryInflater, raw: Uint8Array, stopAtBlock: boolean, inChunk = 64 * 1024, outLen = 256 * 1024): Run {
  const out = new Uint8Array(32 * 1024 + outLen);
  const parts: Buffer[] = [];
  const stops: string[] = [];
  const boundaries: number[] = [];
  let total = 0;
  let off = 0;
  let status = 0;
  for (let guard = 0; guard < 1_000_000; guard++) {
    if (inflater.availIn === 0 && off < raw.length) {
      const n = Math.min(inChunk, raw.length - off);
      inflater.setInput(raw.subarray(off, off + n));
      off += n;
    }
    status = inflater.inflate(out, 32 * 1024, outLen, stopAtBlock);
    const produced = inflater.produced;
    parts.push(Buffer.from(out.subarray(32 * 1024, 32 * 1024 + produced)));
    total += produced;
    const dt = inflater.dataType;
    stops.push(`${status},${produced},${dt},${inflater.availIn},${inflater.tookInput ? inflater.lastByte : -1}`);
    if (status !== 0) break;
    if ((dt & 128) !== 0 && (dt & 64) === 0) boundaries.push(total);
    if (produced === 0 && inflater.availIn === 0 && off >= raw.length) break; // truncated: nothing more will come
  }
  const message = inflater.message;
  inflater.end();
  return { output: Buffer.concat(parts), stops, boundaries, status, message };
}

const data = text(2_500_000);
const streams: [string, ZlibOptions][] = [
  ['level 1', { level: 1 }],
  ['level 6', { level: 6 }],
  ['level 9', { level: 9 }],
  ['Z_HUFFMAN_ONLY, memLevel 1 (many small blocks)', { strategy: zc.Z_HUFFMAN_ONLY, memLevel: 1 }],
  ['level 0 (stored blocks only)', { level: 0 }],
];

describe('WASM zlib inflater against pako and native zlib', () => {
  for (const [name, options] of streams) {
    it(`${name}: same output, same stops, same boundaries and data_type bits`, () => {
      const raw = deflateRawSync(data, options);
      assert.ok(inflateRawSync(raw).equals(data));
      for (const stop of [true, false]) {
        const wasm = drive(createWasmInflater(), raw, stop);
        const pako = drive(createPakoInflater(), raw, stop);
        assert.equal(wasm.status, zc.Z_STREAM_END, name);
        assert.ok(wasm.output.equals(data), `${name}: output`);
        assert.ok(pako.output.equals(data), `${name}: pako output`);
        assert.deepEqual(wasm.stops, pako.stops, `${name}, stopAtBlock ${stop}`);
        assert.deepEqual(wasm.boundaries, pako.boundaries);
        if (stop && options.level !== 0) assert.ok(wasm.boundaries.length > 1, `${name}: several blocks`);
      }
      if (options.strategy === zc.Z_HUFFMAN_ONLY) {
        const { boundaries } = drive(createWasmInflater(), raw, true);
        assert.ok(boundaries.length > 100, `many small blocks: ${boundaries.length}`);
      }
    });
  }

  it('matches pako with input and output larger than its WASM buffers, and with tiny pieces', () => {
    const raw = deflateRawSync(data, { level: 6 });
    for (const [inChunk, outLen] of [
      [1_000_000, 1_000_000],
      [300_000, 100],
      [777, 5000],
    ] as const) {
      for (const stop of [true, false]) {
        const wasm = drive(createWasmInflater(), raw, stop, inChunk, outLen);
        const pako = drive(createPakoInflater(), raw, stop, inChunk, outLen);
        assert.ok(wasm.output.equals(data), `in ${inChunk} out ${outLen}`);
        assert.deepEqual(wasm.stops, pako.stops, `in ${inChunk} out ${outLen} stop ${stop}`);
      }
    }
  });

  it('reports corrupt data with a negative status and zlib’s message', () => {
    const raw = Buffer.from(deflateRawSync(data));
    for (let i = 2000; i < 2100; i++) raw[i] = raw[i]! ^ 0xa5;
    for (const bad of [raw, Buffer.from([0xff, 0xff, 0xff, 0xff])]) {
      const wasm = drive(createWasmInflater(), bad, false);
      const pako = drive(createPakoInflater(), bad, false);
      assert.ok(wasm.status < 0 && wasm.status !== zc.Z_BUF_ERROR, `status ${wasm.status}`);
      assert.equal(wasm.status, pako.status);
      assert.ok(wasm.message.length > 0);
      assert.equal(wasm.message, pako.message);
      assert.deepEqual(wasm.stops, pako.stops);
    }
  });

  it('never ends a truncated stream', () => {
    const raw = deflateRawSync(data);
    for (const cut of [1, 1000, raw.length - 1]) {
      for (const stop of [true, false]) {
        const wasm = drive(createWasmInflater(), raw.subarray(0, cut), stop);
        const pako = drive(createPakoInflater(), raw.subarray(0, cut), stop);
        assert.notEqual(wasm.status, zc.Z_STREAM_END);
        assert.ok(wasm.output.length <= data.length);
        assert.ok(wasm.output.equals(data.subarray(0, wasm.output.length)));
        assert.deepEqual(wasm.stops, pako.stops, `cut ${cut} stop ${stop}`);
      }
    }
  });

  it('keeps interleaved inflaters apart', () => {
    const a = deflateRawSync(data, { level: 1 });
    const other = text(1_000_000, 99);
    const b = deflateRawSync(other, { level: 9 });
    const ia = createWasmInflater();
    const ib = createWasmInflater();
    const outA: Buffer[] = [];
    const outB: Buffer[] = [];
    const buf = new Uint8Array(10_000);
    let offA = 0;
    let offB = 0;
    let doneA = false;
    let doneB = false;
    const step = (inf: BoundaryInflater, raw: Uint8Array, off: number, parts: Buffer[]): [number, boolean] => {
      if (inf.availIn === 0 && off < raw.length) {
        inf.setInput(raw.subarray(off, off + 5000));
        off += Math.min(5000, raw.length - off);
      }
      const status = inf.inflate(buf, 0, buf.length, true);
      assert.ok(status >= 0, `status ${status}`);
      parts.push(Buffer.from(buf.subarray(0, inf.produced)));
      return [off, status === zc.Z_STREAM_END];
    };
    while (!doneA || !doneB) {
      if (!doneA) [offA, doneA] = step(ia, a, offA, outA);
      if (!doneB) [offB, doneB] = step(ib, b, offB, outB);
    }
    ia.end();
    ib.end();
    assert.ok(Buffer.concat(outA).equals(data));
    assert.ok(Buffer.concat(outB).equals(other));
  });

  it('reuses the memory of ended inflaters', () => {
    const raw = deflateRawSync(data.subarray(0, 100_000));
    drive(createWasmInflater(), raw, false);
    const before = wasmMemoryBytes();
    for (let i = 0; i < 200; i++) {
      const inflater = createWasmInflater();
      if (i % 2 === 0) drive(inflater, raw, true);
      else inflater.end();
    }
    assert.equal(wasmMemoryBytes(), before);
  });

  it('is what createBoundaryInflater gives, and pako stands in without WebAssembly', () => {
    const raw = deflateRawSync(data.subarray(0, 50_000));
    assert.ok(drive(createBoundaryInflater(), raw, true).output.equals(data.subarray(0, 50_000)));
    const module = fileURLToPath(new URL('../../src/fops/zip/deflate-index.js', import.meta.url));
    const script = `delete globalThis.WebAssembly;
      const { createBoundaryInflater } = await import(${JSON.stringify(module)});
      const { deflateRawSync } = await import('node:zlib');
      const inf = createBoundaryInflater();
      inf.setInput(deflateRawSync(Buffer.from('hello hello hello')));
      const out = new Uint8Array(100);
      const status = inf.inflate(out, 0, 100, false);
      process.stdout.write(status + ' ' + Buffer.from(out.subarray(0, inf.produced)).toString());`;
    assert.equal(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }), '1 hello hello hello');
  });
});

describe('buildCheckpoints with each inflater', () => {
  const entryOf = (raw: Uint8Array): DeflateEntry => ({
    source: sourceFromBytes(raw),
    dataStart: 0,
    csize: raw.length,
    usize: data.length,
    crc: crc32(data) >>> 0,
  });
  const plain = (index: CheckpointIndex): unknown[] => index.points.map((p) => ({ ...p, window: Buffer.from(p.window).toString('base64') }));

  for (const [name, options] of streams.filter(([, o]) => o.level !== 0)) {
    it(`${name}: identical points from WASM, pako and the default`, async () => {
      const raw = deflateRawSync(data, options);
      // A point at every boundary (span 1) is the closest check; the many tiny Huffman-only blocks would make that slow.
      for (const span of options.strategy === zc.Z_HUFFMAN_ONLY ? [20_000, 100_000] : [1, 100_000]) {
        const opts = { span, maxBytes: Infinity };
        const wasm = await buildCheckpoints(entryOf(raw), '/t', opts, createWasmInflater());
        const pako = await buildCheckpoints(entryOf(raw), '/t', opts, createPakoInflater());
        const auto = await buildCheckpoints(entryOf(raw), '/t', opts);
        assert.ok(wasm.points.length > 1);
        assert.deepEqual(plain(wasm), plain(pako));
        assert.deepEqual(plain(auto), plain(pako));
        assert.equal(wasm.bytes, pako.bytes);
      }
    });
  }

  it('two builds interleaved across awaits give the same points as one alone', async () => {
    const raw = deflateRawSync(data, { level: 6 });
    const opts = { span: 50_000, maxBytes: Infinity };
    const alone = await buildCheckpoints(entryOf(raw), '/t', opts, createWasmInflater());
    const [x, y] = await Promise.all([
      buildCheckpoints(entryOf(raw), '/t', opts, createWasmInflater()),
      buildCheckpoints(entryOf(raw), '/t', opts, createWasmInflater()),
    ]);
    assert.deepEqual(plain(x), plain(alone));
    assert.deepEqual(plain(y), plain(alone));
  });

  it('rejects corrupt and truncated streams with the WASM inflater', async () => {
    const raw = deflateRawSync(data);
    const bad = Buffer.from(raw);
    for (let i = 2000; i < 2100; i++) bad[i] = bad[i]! ^ 0xa5;
    await assert.rejects(buildCheckpoints(entryOf(bad), '/t', { span: 1, maxBytes: Infinity }, createWasmInflater()), /invalid deflate data/);
    await assert.rejects(buildCheckpoints(entryOf(raw.subarray(0, raw.length - 50)), '/t', { span: 1, maxBytes: Infinity }, createWasmInflater()), /truncated/);
  });
});
