import type { Socket } from 'node:net';
import { RpcProtocolError, RpcRecordTooLargeError } from './errors.js';

const LAST_FRAGMENT = 0x80000000;
const MAX_FRAGMENT = 0x7fffffff;
/** Records at least this large that span socket reads are assembled in a RecordPool's buffers. */
const POOLED_RECORD = 64 << 10;

/**
 * Buffers for large records, handed back once nothing refers to the record any more, so that a
 * stream of 1 MiB WRITEs does not allocate (and page-fault, and later collect) 1 MiB per call.
 * Sizes are rounded up to 64 KiB, so records of one size share buffers; at most `maxBytes` are
 * kept.
 */
export class RecordPool {
  private readonly free = new Map<number, Buffer[]>();
  private bytes = 0;

  constructor(private readonly maxBytes = 8 << 20) {}

  /** A buffer of at least `size` bytes (its content is whatever it held before). */
  take(size: number): Buffer {
    const cap = Math.ceil(size / POOLED_RECORD) * POOLED_RECORD;
    const b = this.free.get(cap)?.pop();
    if (!b) return Buffer.allocUnsafeSlow(cap);
    this.bytes -= cap;
    return b;
  }

  /** Gives back a buffer from take(); the caller must hold no view of it any more. */
  give(buf: Buffer): void {
    if (this.bytes + buf.length > this.maxBytes) return;
    let list = this.free.get(buf.length);
    if (!list) {
      list = [];
      this.free.set(buf.length, list);
    }
    list.push(buf);
    this.bytes += buf.length;
  }
}

/**
 * Splits a TCP byte stream into RPC records (RFC 5531 section 11, record marking). Records that
 * arrive whole inside one chunk are handed out as views of it; only records split across chunks
 * or fragments are copied. The declared size is checked before any byte is buffered, so a peer
 * announcing a huge record costs nothing but the connection. With a pool, a large one-fragment
 * record that spans chunks is copied into a pooled buffer as its chunks arrive, and `onRecord`
 * gets that buffer as `pooled`: the receiver gives it back to the pool when it is done with it.
 */
export class RecordDecoder {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Fragments of the record being assembled. */
  private fragments: Buffer[] = [];
  private recordBytes = 0;
  /** Bytes `pending` must reach before parsing is worth retrying (avoids quadratic copying). */
  private need = 0;
  /** The pooled record being filled, its pool buffer, and the bytes filled so far. */
  private body: Buffer | null = null;
  private bodyOwner: Buffer | null = null;
  private bodyFill = 0;

  constructor(
    private readonly maxRecordSize: number,
    private readonly onRecord: (record: Buffer, pooled?: Buffer) => void,
    private readonly pool?: RecordPool,
  ) {}

  /** Feeds bytes; calls onRecord for each complete record. Throws on a framing violation. */
  push(chunk: Buffer): void {
    let buf = chunk;
    const body = this.body;
    if (body !== null) {
      const take = Math.min(body.length - this.bodyFill, chunk.length);
      body.set(take === chunk.length ? chunk : chunk.subarray(0, take), this.bodyFill);
      this.bodyFill += take;
      if (this.bodyFill < body.length) return;
      const owner = this.bodyOwner as Buffer;
      this.body = null;
      this.bodyOwner = null;
      this.bodyFill = 0;
      this.onRecord(body, owner);
      if (take === chunk.length) return;
      buf = chunk.subarray(take);
    } else if (this.pendingBytes > 0) {
      this.pending.push(chunk);
      if (this.pendingBytes + chunk.length < this.need) {
        this.pendingBytes += chunk.length;
        return;
      }
      buf = Buffer.concat(this.pending, this.pendingBytes + chunk.length);
      this.pending = [];
      this.pendingBytes = 0;
    }
    let off = 0;
    const len = buf.length;
    while (len - off >= 4) {
      const header = buf.readUInt32BE(off);
      const size = header & MAX_FRAGMENT;
      const last = (header & LAST_FRAGMENT) !== 0;
      if (this.recordBytes + size > this.maxRecordSize) {
        throw new RpcRecordTooLargeError(this.recordBytes + size, this.maxRecordSize);
      }
      if (size === 0 && !last) throw new RpcProtocolError('empty non-final fragment');
      if (len - off - 4 < size) {
        if (this.pool && last && this.fragments.length === 0 && size >= POOLED_RECORD) {
          const owner = this.pool.take(size);
          const have = buf.subarray(off + 4);
          owner.set(have, 0);
          this.body = owner.subarray(0, size);
          this.bodyOwner = owner;
          this.bodyFill = have.length;
          off = len;
          break;
        }
        this.need = 4 + size;
        break;
      }
      const body = buf.subarray(off + 4, off + 4 + size);
      off += 4 + size;
      if (last && this.fragments.length === 0) {
        this.onRecord(body);
        continue;
      }
      this.fragments.push(body);
      this.recordBytes += size;
      if (last) {
        const record = Buffer.concat(this.fragments, this.recordBytes);
        this.fragments = [];
        this.recordBytes = 0;
        this.onRecord(record);
      }
    }
    if (len - off < 4) this.need = 4;
    if (off < len) {
      // Keep the partial tail. A view would pin the whole chunk; copy when the tail is small.
      const tail = buf.subarray(off);
      this.pending.push(tail.length < 4096 ? Buffer.from(tail) : tail);
      this.pendingBytes = tail.length;
    }
  }

  /** Bytes held while waiting for the rest of a record. */
  get buffered(): number {
    return this.pendingBytes + this.recordBytes + this.bodyFill;
  }
}

/**
 * Frames an encoded message as one record. `chunks[0]` must begin with 4 reserved bytes for the
 * first fragment header. Messages larger than `maxFragment` are split into several fragments
 * with views of the same bytes, never copies.
 */
export function frameRecord(chunks: Buffer[], maxFragment = MAX_FRAGMENT): Buffer[] {
  let total = -4;
  for (const c of chunks) total += c.length;
  if (total <= maxFragment) {
    chunks[0].writeUInt32BE((LAST_FRAGMENT | total) >>> 0, 0);
    return chunks;
  }
  const out: Buffer[] = [];
  let remaining = total;
  let first = true;
  let fragmentLeft = 0;
  const startFragment = (head?: Buffer) => {
    const size = Math.min(maxFragment, remaining);
    remaining -= size;
    fragmentLeft = size;
    const h = head ?? Buffer.allocUnsafe(4);
    h.writeUInt32BE(((remaining === 0 ? LAST_FRAGMENT : 0) | size) >>> 0, 0);
    out.push(h);
  };
  for (let c of chunks) {
    if (first) {
      startFragment(c.subarray(0, 4));
      c = c.subarray(4);
      first = false;
    }
    while (c.length > 0) {
      if (fragmentLeft === 0) startFragment();
      const take = Math.min(fragmentLeft, c.length);
      out.push(c.subarray(0, take));
      fragmentLeft -= take;
      c = c.subarray(take);
    }
  }
  return out;
}

/**
 * Writes records to a stream socket, batched per tick: the socket is corked from the first record
 * of a tick until the next, and records that lie back to back in memory (as messages encoded one
 * after another into a slab do) are joined into one buffer, so 64 replies leave as one buffer in
 * one write rather than as 64 entries of a writev.
 */
export class RecordWriter {
  private ab: ArrayBufferLike | null = null;
  private start = 0;
  private end = 0;
  private corked = false;
  /** Called once the messages written so far have been handed to the kernel. */
  private written: (() => void)[] = [];

  constructor(
    private readonly socket: Socket,
    private readonly maxFragment?: number,
  ) {}

  /** `onWritten`: called once the socket has written the message (not if it fails or closes first). */
  write(message: Buffer[], onWritten?: () => void): void {
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(this.endTick);
    }
    const chunks = frameRecord(message, this.maxFragment);
    for (let i = 0; i < chunks.length; i++) {
      const c = chunks[i];
      if (c.buffer === this.ab && c.byteOffset === this.end) {
        this.end += c.length;
      } else {
        this.flush();
        this.ab = c.buffer;
        this.start = c.byteOffset;
        this.end = c.byteOffset + c.length;
      }
    }
    // Attached to whichever later write carries the message's last bytes: writes complete in order.
    if (onWritten) this.written.push(onWritten);
  }

  /** Hands what was joined so far to the socket (still corked until the tick ends). */
  flush(): void {
    const ab = this.ab;
    if (ab === null) return;
    this.ab = null;
    const data = Buffer.from(ab, this.start, this.end - this.start);
    if (this.written.length === 0) {
      if (!this.socket.destroyed) this.socket.write(data);
      return;
    }
    const done = this.written;
    this.written = [];
    if (this.socket.destroyed) return;
    this.socket.write(data, (err) => {
      if (err) return;
      for (const f of done) f();
    });
  }

  private readonly endTick = () => {
    this.corked = false;
    this.flush();
    this.socket.uncork();
  };
}
