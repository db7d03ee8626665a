/**
 * The journal of UNSTABLE writes (DIR/meta/journal): what each acknowledged UNSTABLE write
 * changed in the store's tables, appended with one positional write before the reply and
 * applied to LMDB in the background. A write to the page cache survives kill -9 with no fsync,
 * which is all an UNSTABLE write promises; docs/STORAGE.md ("The journal") has the design.
 *
 * Frame: magic (u32 BE), payload length (u32 BE), sequence number (f64 BE, a safe integer),
 * CRC-32 (u32 BE) of the length, the sequence number and the payload; then the payload, a V8
 * structured-clone serialisation of the entry's operations and the store's open epoch. Sequence
 * numbers are consecutive within a journal, and every entry of one was written by one open of
 * the store; reading stops at the first frame that is short, fails its checksum, does not follow
 * its predecessor or comes from another open, so a tail torn by a power loss, and the stale
 * frames the file keeps past its valid ones (it is preallocated and rewound, not truncated), are
 * discarded from the first bad frame on.
 */
import {
  closeSync,
  constants,
  fdatasync,
  fdatasyncSync,
  fstatSync,
  ftruncateSync,
  openSync,
  readSync,
  writeSync,
} from 'node:fs';
import { DefaultDeserializer, serialize } from 'node:v8';
import { crc32 } from '@node-rs/crc32';

const MAGIC = 0x434a524e; // "CJRN"
export const FRAME_HEADER = 20;

/** A record operation: `[key, version, value]` puts the value with that version; `[key]` deletes. */
export type RecordOp = [Buffer, number, unknown] | [Buffer];
/** A chunk or dirty-table operation: a value to put, or null to delete. */
export type TableOp<T> = [Buffer, T | null];

export interface JournalOps<C, D> {
  /** Records, in the order the write's update callback changed them. */
  r: RecordOp[];
  /** Chunk records. */
  c: TableOp<C>[];
  /** Dirty-table entries (the stable copy an UNSTABLE write replaced). */
  d: TableOp<D>[];
  /** Block ids no longer referenced: into the free table when applied. */
  f: string[];
  /**
   * The store's open epoch when the entry was written. A crash can leave frames of an earlier
   * open, whose sequence numbers the next open reuses, behind the valid ones: they must never
   * join its chain. Absent in journals written before it was added.
   */
  e?: number;
}

export interface JournalEntry<C, D> extends JournalOps<C, D> {
  seq: number;
}

/**
 * LMDB hands back every byte string as a Buffer (msgpack's bin type); a plain Uint8Array
 * decoded from the journal becomes one too, so a value reads the same before and after it is
 * applied.
 */
const readHostObject = (DefaultDeserializer.prototype as unknown as { _readHostObject(): unknown })
  ._readHostObject;

class BufferDeserializer extends DefaultDeserializer {
  // Node's hook for typed arrays (not in @types/node).
  _readHostObject(): unknown {
    const o = readHostObject.call(this);
    if (o instanceof Uint8Array && !Buffer.isBuffer(o))
      return Buffer.from(o.buffer, o.byteOffset, o.byteLength);
    return o;
  }
}

function deserialize(payload: Uint8Array): unknown {
  const d = new BufferDeserializer(payload);
  d.readHeader();
  return d.readValue();
}

/** One frame holding an entry's operations. */
export function encodeEntry<C, D>(seq: number, ops: JournalOps<C, D>): Buffer {
  const payload = serialize(ops);
  const frame = Buffer.allocUnsafe(FRAME_HEADER + payload.length);
  frame.writeUInt32BE(MAGIC, 0);
  frame.writeUInt32BE(payload.length, 4);
  frame.writeDoubleBE(seq, 8);
  payload.copy(frame, FRAME_HEADER);
  frame.writeUInt32BE(crc32(payload, crc32(frame.subarray(4, 16))), 16);
  return frame;
}

/** The entry in a frame known to be whole (one this process just encoded). */
export function decodeFrame<C, D>(frame: Buffer): JournalEntry<C, D> {
  const ops = deserialize(frame.subarray(FRAME_HEADER)) as JournalOps<C, D>;
  return { seq: frame.readDoubleBE(8), r: ops.r, c: ops.c, d: ops.d, f: ops.f, e: ops.e };
}

/**
 * The entry `ops` becomes, as a replay would read it back from its frame, without the cost of
 * decoding the frame: a deep copy, so that nothing the writer still holds (a request's buffer,
 * say) is shared with it, and byte arrays become Buffers. Values of other classes than plain
 * objects, arrays and byte arrays (none of the store's own) go through the serialiser.
 */
export function entryOf<C, D>(seq: number, ops: JournalOps<C, D>): JournalEntry<C, D> {
  return { seq, ...(copyValue(ops) as JournalOps<C, D>) };
}

function copyValue(v: unknown): unknown {
  if (typeof v !== 'object' || v === null) return v;
  if (v instanceof Uint8Array) return Buffer.from(v);
  if (Array.isArray(v)) return v.map(copyValue);
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return deserialize(serialize(v));
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v)) out[k] = copyValue((v as Record<string, unknown>)[k]);
  return out;
}

/**
 * Why reading stopped: the end of the file or zeros (the preallocated space never written),
 * a whole frame that does not continue the chain (left from before a rewind, or from an earlier
 * open), or bytes that are no whole frame (a tail torn by a power loss, or damage).
 */
export type JournalEnd = 'end' | 'stale' | 'torn';

/** The valid entries at the start of `buf`, how many bytes they take, and why reading stopped. */
export function decodeJournal<C, D>(
  buf: Buffer,
): { entries: JournalEntry<C, D>[]; validBytes: number; end: JournalEnd } {
  const entries: JournalEntry<C, D>[] = [];
  let at = 0;
  let end: JournalEnd = 'end';
  while (buf.length - at >= FRAME_HEADER) {
    const magic = buf.readUInt32BE(at);
    if (magic !== MAGIC) {
      if (magic !== 0 || buf.subarray(at, at + FRAME_HEADER).some((b) => b !== 0)) end = 'torn';
      break;
    }
    end = 'torn';
    const len = buf.readUInt32BE(at + 4);
    const seq = buf.readDoubleBE(at + 8);
    if (buf.length - at - FRAME_HEADER < len) break;
    const payload = buf.subarray(at + FRAME_HEADER, at + FRAME_HEADER + len);
    if (crc32(payload, crc32(buf.subarray(at + 4, at + 16))) !== buf.readUInt32BE(at + 16)) break;
    if (!Number.isSafeInteger(seq) || seq < 1) break;
    let entry: JournalEntry<C, D>;
    try {
      entry = decodeFrame(buf.subarray(at, at + FRAME_HEADER + len));
    } catch {
      break;
    }
    const prev = entries[entries.length - 1];
    if (prev && (seq !== prev.seq + 1 || entry.e !== prev.e)) {
      end = 'stale';
      break;
    }
    entries.push(entry);
    at += FRAME_HEADER + len;
    end = 'end';
  }
  return { entries, validBytes: at, end };
}

/**
 * The journal file. Appends are synchronous `pwrite`s on the event loop: a few hundred bytes
 * into the page cache take microseconds, against two thread hand-offs for an asynchronous
 * write. `sync` and `syncNow` (one `fdatasync`, in the thread pool or on the caller's thread)
 * make every frame appended before them durable: durable writes wait for that; UNSTABLE ones
 * become durable by being applied to LMDB.
 */
export class JournalFile {
  private fd: number;
  /** Where the next frame goes: the end of the valid frames. */
  private end = 0;
  /** Bytes allocated and written (zeros) ahead at open; see `preallocate`. */
  private allocated = 0;

  constructor(readonly path: string) {
    this.fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o644);
  }

  /**
   * Writes zeros up to `bytes` (once, when the file is shorter) and makes them durable. Frames
   * then overwrite blocks the file system has already allocated and written, so an fdatasync
   * of the journal flushes the frames alone, with no change of size or extents to commit in the
   * file system's own journal (118 µs against 161 µs for an append here), and an append within
   * that space cannot fail for a full disk. A longer file (one that UNSTABLE writes grew) is cut
   * back to `bytes`. On a full disk this fails; the caller goes on with what it got.
   */
  preallocate(bytes: number): void {
    const size = fstatSync(this.fd).size;
    if (size > bytes) ftruncateSync(this.fd, bytes);
    else if (size < bytes) {
      const zeros = Buffer.alloc(Math.min(1 << 20, bytes - size));
      for (let at = size; at < bytes; )
        at += writeSync(this.fd, zeros, 0, Math.min(zeros.length, bytes - at), at);
      fdatasyncSync(this.fd);
    }
    this.allocated = bytes;
  }

  /** The whole file as it is on disk (read once at open, before any append). */
  readAll(): Buffer {
    const size = fstatSync(this.fd).size;
    const buf = Buffer.alloc(size);
    let done = 0;
    while (done < size) {
      const n = readSync(this.fd, buf, done, size - done, done);
      if (n === 0) break;
      done += n;
    }
    return buf.subarray(0, done);
  }

  get size(): number {
    return this.end;
  }

  /** Writes `frame` after the last one. On failure nothing counts as written: the next append overwrites it. */
  append(frame: Buffer): void {
    let done = 0;
    while (done < frame.length) {
      done += writeSync(this.fd, frame, done, frame.length - done, this.end + done);
    }
    this.end += frame.length;
  }

  /** Makes every frame appended so far durable, on the calling thread. */
  syncNow(): void {
    fdatasyncSync(this.fd);
  }

  /** Makes every frame appended so far durable, in the thread pool. */
  sync(): Promise<void> {
    return new Promise((resolve, reject) => fdatasync(this.fd, (e) => (e ? reject(e) : resolve())));
  }

  /**
   * Empties the journal once everything in it is applied and flushed in LMDB: the next frame
   * goes to the start again, over the old ones, which stay behind it until overwritten (and
   * carry sequence numbers at or below what LMDB has applied, so a replay skips them); the first
   * frame's header is zeroed, so that a journal emptied and not written since reads as empty.
   * The file is cut back to its preallocated size if it grew past it. Nothing is fsynced.
   */
  reset(): void {
    if (this.end > this.allocated) ftruncateSync(this.fd, this.allocated);
    writeSync(this.fd, Buffer.alloc(FRAME_HEADER), 0, FRAME_HEADER, 0);
    this.end = 0;
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
