/**
 * The journal of UNSTABLE writes (DIR/meta/journal): what each acknowledged UNSTABLE write
 * changed in the store's tables, appended with one positional write before the reply and
 * applied to LMDB in the background. A write to the page cache survives kill -9 with no fsync,
 * which is all an UNSTABLE write promises; docs/STORAGE.md ("The journal") has the design.
 *
 * Frame: magic (u32 BE), payload length (u32 BE), sequence number (f64 BE, a safe integer),
 * CRC-32 (u32 BE) of the length, the sequence number and the payload; then the payload, a V8
 * structured-clone serialisation of the entry's operations. Sequence numbers are consecutive
 * within a journal; reading stops at the first frame that is short, fails its checksum, or
 * does not follow its predecessor, so a tail torn by a power loss (or stale bytes past the
 * end after a truncation) is discarded from the first bad frame on.
 */
import {
  closeSync,
  constants,
  fdatasync,
  fstatSync,
  ftruncateSync,
  openSync,
  readSync,
  writeSync,
} from 'node:fs';
import { DefaultDeserializer, serialize } from 'node:v8';
import { crc32 } from 'node:zlib';

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
  return { seq: frame.readDoubleBE(8), r: ops.r, c: ops.c, d: ops.d, f: ops.f };
}

/** The valid entries at the start of `buf`, and how many bytes they take. */
export function decodeJournal<C, D>(buf: Buffer): { entries: JournalEntry<C, D>[]; validBytes: number } {
  const entries: JournalEntry<C, D>[] = [];
  let at = 0;
  while (buf.length - at >= FRAME_HEADER) {
    if (buf.readUInt32BE(at) !== MAGIC) break;
    const len = buf.readUInt32BE(at + 4);
    const seq = buf.readDoubleBE(at + 8);
    if (buf.length - at - FRAME_HEADER < len) break;
    const payload = buf.subarray(at + FRAME_HEADER, at + FRAME_HEADER + len);
    if (crc32(payload, crc32(buf.subarray(at + 4, at + 16))) !== buf.readUInt32BE(at + 16)) break;
    if (!Number.isSafeInteger(seq) || seq < 1) break;
    if (entries.length > 0 && seq !== entries[entries.length - 1].seq + 1) break;
    let entry: JournalEntry<C, D>;
    try {
      entry = decodeFrame(buf.subarray(at, at + FRAME_HEADER + len));
    } catch {
      break;
    }
    entries.push(entry);
    at += FRAME_HEADER + len;
  }
  return { entries, validBytes: at };
}

/**
 * The journal file. Appends are synchronous `pwrite`s on the event loop: a few hundred bytes
 * into the page cache take microseconds, against two thread hand-offs for an asynchronous
 * write. `sync` (one `fdatasync`, in the thread pool) makes every frame appended before it
 * durable: durable writes wait for it; UNSTABLE ones become durable by being applied to LMDB.
 */
export class JournalFile {
  private fd: number;
  /** Where the next frame goes: the end of the valid frames. */
  private end = 0;

  constructor(readonly path: string) {
    this.fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o644);
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

  /** Makes every frame appended so far durable. */
  sync(): Promise<void> {
    return new Promise((resolve, reject) => fdatasync(this.fd, (e) => (e ? reject(e) : resolve())));
  }

  /**
   * Empties the file once everything in it is applied and flushed in LMDB. Not fsynced: if a
   * power loss brings old frames back, their sequence numbers are at or below what LMDB has
   * applied, and they are skipped.
   */
  reset(): void {
    ftruncateSync(this.fd, 0);
    this.end = 0;
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
