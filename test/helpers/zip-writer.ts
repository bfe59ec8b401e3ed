/**
 * A zip generator for tests and benchmarks, written from APPNOTE.TXT. It
 * writes correct archives by default and lets a test make any field lie, so
 * each hostile case is one override away from a good archive.
 */
import { crc32, deflateRawSync } from 'node:zlib';

export interface EntrySpec {
  /** The name as a string (encoded UTF-8, or CP437-as-latin1 when `rawName` is used) or raw bytes. */
  readonly name: string | Uint8Array;
  readonly data?: Uint8Array | string;
  /** 0 stored, 8 deflate (default 8 when data is non-empty), or any number to lie. */
  readonly method?: number;
  /** Bytes to store instead of compressing `data` (for other methods or broken streams). */
  readonly stored?: Uint8Array;
  /** Extra general-purpose flag bits (bit 11 is added for non-ASCII string names unless `utf8: false`). */
  readonly flags?: number;
  readonly utf8?: boolean;
  /** Overrides of what the central directory says. */
  readonly cd?: { crc?: number; csize?: number; usize?: number; offset?: number; method?: number; name?: Uint8Array };
  /** Overrides of what the local header says. */
  readonly local?: { crc?: number; csize?: number; usize?: number; method?: number; name?: Uint8Array; flags?: number };
  /** Write a data descriptor after the data (sets bit 3; local CRC/sizes become 0 unless overridden). */
  readonly descriptor?: { signature?: boolean; crc?: number; csize?: number; usize?: number };
  readonly extraCd?: Uint8Array;
  readonly extraLocal?: Uint8Array;
  /** DOS date/time as a Date (read as UTC), default 2024-01-02T03:04:06Z. */
  readonly mtime?: Date;
  readonly externalAttr?: number;
  readonly madeBy?: number;
  /** Force zip64 extra fields for this entry. */
  readonly zip64?: boolean;
}

export interface ArchiveSpec {
  readonly entries: readonly EntrySpec[];
  readonly comment?: Uint8Array | string;
  /** Bytes before the first local header, offsets not adjusted (a self-extractor stub). */
  readonly prefix?: Uint8Array;
  /** Bytes after the end record. */
  readonly trailing?: Uint8Array;
  /** Write zip64 end records. */
  readonly zip64?: boolean;
  /** Overrides of the end record. */
  readonly eocd?: { count?: number; cdSize?: number; cdOffset?: number; disk?: number; commentLength?: number };
  readonly zip64Eocd?: { count?: number; offset?: number };
}

const enc = new TextEncoder();

export function bytes(x: Uint8Array | string): Uint8Array {
  return typeof x === 'string' ? enc.encode(x) : x;
}

function isAscii(s: string): boolean {
  // eslint-disable-next-line no-control-regex
  return /^[\x00-\x7f]*$/.test(s);
}

export function dosDateTime(d: Date): { date: number; time: number } {
  return {
    date: ((d.getUTCFullYear() - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate(),
    time: (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | (d.getUTCSeconds() >> 1),
  };
}

export function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
}
export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}
export function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(n % 0x100000000, 0);
  b.writeUInt32LE(Math.floor(n / 0x100000000), 4);
  return b;
}

/** An extra field record: id, length, data. */
export function extra(id: number, data: Uint8Array): Buffer {
  return Buffer.concat([u16(id), u16(data.length), data]);
}

/** The Info-ZIP extended timestamp extra (0x5455) with an mtime. */
export function extendedTimestamp(unixSeconds: number): Buffer {
  const b = Buffer.alloc(5);
  b[0] = 1;
  b.writeInt32LE(unixSeconds, 1);
  return extra(0x5455, b);
}

/** The Info-ZIP Unicode Path extra (0x7075) for a header name. */
export function unicodePath(headerName: Uint8Array, utf8Name: string): Buffer {
  return extra(0x7075, Buffer.concat([Buffer.of(1), u32(crc32(headerName)), bytes(utf8Name)]));
}

export interface LocalHeaderFields {
  readonly flags: number;
  readonly method: number;
  readonly time: number;
  readonly date: number;
  readonly crc: number;
  readonly csize: number;
  readonly usize: number;
  readonly name: Uint8Array;
  readonly extra: Uint8Array;
}

export function localHeader(f: LocalHeaderFields): Buffer {
  return Buffer.concat([
    u32(0x04034b50),
    u16(20),
    u16(f.flags),
    u16(f.method),
    u16(f.time),
    u16(f.date),
    u32(f.crc),
    u32(f.csize),
    u32(f.usize),
    u16(f.name.length),
    u16(f.extra.length),
    f.name,
    f.extra,
  ]);
}

export interface CentralHeaderFields extends LocalHeaderFields {
  readonly madeBy: number;
  readonly externalAttr: number;
  readonly offset: number;
  readonly comment?: Uint8Array;
}

export function centralHeader(f: CentralHeaderFields): Buffer {
  const comment = f.comment ?? new Uint8Array(0);
  return Buffer.concat([
    u32(0x02014b50),
    u16(f.madeBy),
    u16(20),
    u16(f.flags),
    u16(f.method),
    u16(f.time),
    u16(f.date),
    u32(f.crc),
    u32(f.csize),
    u32(f.usize),
    u16(f.name.length),
    u16(f.extra.length),
    u16(comment.length),
    u16(0),
    u16(0),
    u32(f.externalAttr),
    u32(f.offset),
    f.name,
    f.extra,
    comment,
  ]);
}

export function endRecord(o: { count: number; cdSize: number; cdOffset: number; comment?: Uint8Array; disk?: number; commentLength?: number }): Buffer {
  const comment = o.comment ?? new Uint8Array(0);
  const disk = o.disk ?? 0;
  return Buffer.concat([
    u32(0x06054b50),
    u16(disk),
    u16(disk),
    u16(Math.min(o.count, 0xffff)),
    u16(Math.min(o.count, 0xffff)),
    u32(Math.min(o.cdSize, 0xffffffff)),
    u32(Math.min(o.cdOffset, 0xffffffff)),
    u16(o.commentLength ?? comment.length),
    comment,
  ]);
}

export function zip64EndRecord(o: { count: number; cdSize: number; cdOffset: number }): Buffer {
  return Buffer.concat([u32(0x06064b50), u64(44), u16(45), u16(45), u32(0), u32(0), u64(o.count), u64(o.count), u64(o.cdSize), u64(o.cdOffset)]);
}

export function zip64Locator(recordOffset: number): Buffer {
  return Buffer.concat([u32(0x07064b50), u32(0), u64(recordOffset), u32(1)]);
}

/** Builds an archive in memory. */
export function makeZip(spec: ArchiveSpec): Buffer {
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  const push = (b: Uint8Array): void => {
    parts.push(b);
    offset += b.length;
  };
  if (spec.prefix) push(spec.prefix);
  const base = offset;
  for (const e of spec.entries) {
    const name = bytes(e.name);
    const data = bytes(e.data ?? '');
    const method = e.method ?? (data.length > 0 ? 8 : 0);
    const stored = e.stored ?? (method === 8 ? deflateRawSync(data) : data);
    const utf8 = e.utf8 ?? (typeof e.name === 'string' && !isAscii(e.name));
    const flags = (e.flags ?? 0) | (utf8 ? 0x800 : 0) | (e.descriptor ? 0x8 : 0);
    const crc = crc32(data) >>> 0;
    const { date, time } = dosDateTime(e.mtime ?? new Date(Date.UTC(2024, 0, 2, 3, 4, 6)));
    const lfhOffset = offset - base;
    const zip64 = e.zip64 === true;
    const z64 = (vals: number[]): Buffer => (zip64 ? extra(0x0001, Buffer.concat(vals.map(u64))) : Buffer.alloc(0));
    const l = e.local ?? {};
    const dd = e.descriptor;
    push(
      localHeader({
        flags: l.flags ?? flags,
        method: l.method ?? method,
        time,
        date,
        crc: l.crc ?? (dd ? 0 : crc),
        csize: l.csize ?? (zip64 ? 0xffffffff : dd ? 0 : stored.length),
        usize: l.usize ?? (zip64 ? 0xffffffff : dd ? 0 : data.length),
        name: l.name ?? name,
        extra: Buffer.concat([z64(zip64 ? [data.length, stored.length] : []), e.extraLocal ?? new Uint8Array(0)]),
      }),
    );
    push(stored);
    if (dd) {
      push(
        Buffer.concat([
          dd.signature === false ? Buffer.alloc(0) : u32(0x08074b50),
          u32(dd.crc ?? crc),
          u32(dd.csize ?? stored.length),
          u32(dd.usize ?? data.length),
        ]),
      );
    }
    const c = e.cd ?? {};
    central.push(
      centralHeader({
        madeBy: e.madeBy ?? 0x031e,
        flags,
        method: c.method ?? method,
        time,
        date,
        crc: c.crc ?? crc,
        csize: zip64 ? 0xffffffff : (c.csize ?? stored.length),
        usize: zip64 ? 0xffffffff : (c.usize ?? data.length),
        name: c.name ?? name,
        extra: Buffer.concat([z64(zip64 ? [c.usize ?? data.length, c.csize ?? stored.length, c.offset ?? lfhOffset] : []), e.extraCd ?? new Uint8Array(0)]),
        externalAttr: e.externalAttr ?? 0o100644 * 0x10000,
        offset: zip64 ? 0xffffffff : (c.offset ?? lfhOffset),
      }),
    );
  }
  const cdOffset = offset - base;
  for (const c of central) push(c);
  const cdSize = offset - base - cdOffset;
  const count = spec.entries.length;
  if (spec.zip64) {
    const z64Offset = offset - base;
    push(zip64EndRecord({ count: spec.zip64Eocd?.count ?? count, cdSize, cdOffset }));
    push(zip64Locator(spec.zip64Eocd?.offset ?? z64Offset));
  }
  const comment = spec.comment === undefined ? undefined : bytes(spec.comment);
  const eo = spec.eocd ?? {};
  push(
    endRecord({
      count: eo.count ?? (spec.zip64 ? 0xffff : count),
      cdSize: eo.cdSize ?? (spec.zip64 ? 0xffffffff : cdSize),
      cdOffset: eo.cdOffset ?? (spec.zip64 ? 0xffffffff : cdOffset),
      ...(comment ? { comment } : {}),
      ...(eo.disk !== undefined ? { disk: eo.disk } : {}),
      ...(eo.commentLength !== undefined ? { commentLength: eo.commentLength } : {}),
    }),
  );
  if (spec.trailing) push(spec.trailing);
  return Buffer.concat(parts);
}

/**
 * Writes a central directory of `count` tiny stored entries (`f/0000001.txt`
 * and so on, each holding its own name) straight into chunks, for archives
 * with very many entries. Returns the whole archive.
 */
export function makeManyEntryZip(count: number, nameOf: (i: number) => string = (i) => `d${Math.floor(i / 1000)}/f${String(i).padStart(7, '0')}.txt`): Buffer {
  const { date, time } = dosDateTime(new Date(Date.UTC(2024, 0, 2, 3, 4, 6)));
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (let i = 0; i < count; i++) {
    const name = Buffer.from(nameOf(i), 'latin1');
    const crc = crc32(name) >>> 0;
    const f = { flags: 0, method: 0, time, date, crc, csize: name.length, usize: name.length, name, extra: Buffer.alloc(0) };
    const lh = localHeader(f);
    locals.push(lh, name);
    centrals.push(centralHeader({ ...f, madeBy: 0x031e, externalAttr: 0o100644 * 0x10000, offset }));
    offset += lh.length + name.length;
  }
  const cd = Buffer.concat(centrals);
  const zip64 = count > 0xffff;
  const tail: Buffer[] = [];
  if (zip64) {
    tail.push(zip64EndRecord({ count, cdSize: cd.length, cdOffset: offset }), zip64Locator(offset + cd.length));
  }
  tail.push(endRecord({ count: zip64 ? 0xffff : count, cdSize: cd.length, cdOffset: offset }));
  return Buffer.concat([...locals, cd, ...tail]);
}
