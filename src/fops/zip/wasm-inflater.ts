import type { BoundaryInflater } from './deflate-index.js';
import { ZLIB_WASM_BASE64 } from './zlib-wasm.generated.js';

/**
 * A {@link BoundaryInflater} over zlib 1.3.1's own inflate compiled to
 * WebAssembly (scripts/zlib-wasm): the same `inflate(Z_BLOCK)` and
 * `data_type` as pako, at close to native speed.
 *
 * One module and one instance serve the process. Each inflater owns a slab of
 * its linear memory (its z_stream, zlib's state and window, a 64 KiB input
 * and a 288 KiB output buffer), so any number of index builds can run
 * interleaved; `end()` hands the slab back for the next inflater, so memory
 * grows with the inflaters alive at once, not with those ever made.
 */

// The little of the WebAssembly JS API used here (this project's lib has no DOM typings).
interface WebAssemblyApi {
  readonly Module: new (bytes: Uint8Array) => object;
  readonly Instance: new (module: object, imports: object) => { readonly exports: object };
}

interface ZlibExports {
  readonly memory: { readonly buffer: ArrayBuffer };
  zw_new(): number;
  zw_in_ptr(h: number): number;
  zw_out_ptr(h: number): number;
  zw_in_cap(): number;
  zw_out_cap(): number;
  zw_set_input(h: number, len: number): void;
  zw_inflate(h: number, len: number, flush: number): number;
  zw_avail_in(h: number): number;
  zw_produced(h: number): number;
  zw_data_type(h: number): number;
  zw_msg(h: number): number;
  zw_end(h: number): void;
}

const Z_OK = 0;
const Z_BUF_ERROR = -5;
const Z_NO_FLUSH = 0;
const Z_BLOCK = 5;

let shared: ZlibExports | undefined;

/** The process's instance, compiled and instantiated (synchronously) on first use. */
function zlib(): ZlibExports {
  if (!shared) {
    const wasm = (globalThis as { WebAssembly?: WebAssemblyApi }).WebAssembly;
    if (!wasm) throw new Error('WebAssembly is not available');
    const module = new wasm.Module(Buffer.from(ZLIB_WASM_BASE64, 'base64'));
    shared = new wasm.Instance(module, {}).exports as ZlibExports;
  }
  return shared;
}

/** The size of the shared instance's linear memory (0 before first use): for tests that memory stays bounded. */
export function wasmMemoryBytes(): number {
  return shared ? shared.memory.buffer.byteLength : 0;
}

/** A raw (windowBits -15) inflater over the WebAssembly zlib. Throws when WebAssembly is unavailable or out of memory. */
export function createWasmInflater(): BoundaryInflater {
  const z = zlib();
  let h = z.zw_new();
  if (h === 0) throw new Error('zlib (WebAssembly): out of memory');
  const inPtr = z.zw_in_ptr(h);
  const outPtr = z.zw_out_ptr(h);
  const inCap = z.zw_in_cap();
  const outCap = z.zw_out_cap();
  let heap = new Uint8Array(z.memory.buffer);
  const view = (): Uint8Array => {
    // Another inflater's zw_new() may have grown the memory, detaching the old buffer.
    if (heap.buffer !== z.memory.buffer) heap = new Uint8Array(z.memory.buffer);
    return heap;
  };
  let input: Uint8Array = new Uint8Array(0);
  let copied = 0; // bytes of `input` copied into the WASM input buffer so far
  let wasmAvail = 0; // of those, not yet consumed by zlib
  let produced = 0;

  const refill = (): void => {
    const n = Math.min(inCap, input.length - copied);
    view().set(input.subarray(copied, copied + n), inPtr);
    z.zw_set_input(h, n);
    copied += n;
    wasmAvail = n;
  };

  return {
    setInput(next) {
      input = next;
      copied = 0;
      wasmAvail = 0;
    },
    get availIn() {
      return input.length - copied + wasmAvail;
    },
    get lastByte() {
      return input[copied - wasmAvail - 1] ?? 0;
    },
    get tookInput() {
      return copied - wasmAvail > 0;
    },
    inflate(out, offset, length, stopAtBlock) {
      // Input beyond the WASM buffer goes in piece by piece, output beyond it comes out piece by
      // piece; where zlib would have stopped given everything at once, this stops too.
      let done = 0;
      let progress = false;
      let status: number;
      for (;;) {
        if (wasmAvail === 0 && copied < input.length) refill();
        const before = wasmAvail;
        status = z.zw_inflate(h, Math.min(length - done, outCap), stopAtBlock ? Z_BLOCK : Z_NO_FLUSH);
        const n = z.zw_produced(h);
        if (n > 0) out.set(view().subarray(outPtr, outPtr + n), offset + done);
        done += n;
        wasmAvail = z.zw_avail_in(h);
        if (n > 0 || wasmAvail !== before) progress = true;
        if (status !== Z_OK || done === length) break;
        if (stopAtBlock && (z.zw_data_type(h) & 128) !== 0) break;
        if (wasmAvail === 0 && copied >= input.length) break;
      }
      produced = done;
      // Z_BUF_ERROR means no progress at all; a later piece making none after an earlier one did is Z_OK.
      return status === Z_BUF_ERROR && progress ? Z_OK : status;
    },
    get produced() {
      return produced;
    },
    get dataType() {
      return z.zw_data_type(h);
    },
    get message() {
      const p = h === 0 ? 0 : z.zw_msg(h);
      if (p === 0) return '';
      const mem = view();
      let end = p;
      while (mem[end] !== 0 && end < mem.length) end++;
      return Buffer.from(mem.subarray(p, end)).toString('latin1');
    },
    end() {
      if (h !== 0) z.zw_end(h);
      h = 0;
    },
  };
}
