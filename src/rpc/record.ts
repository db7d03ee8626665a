import type { Socket } from 'node:net';
import { RpcProtocolError, RpcRecordTooLargeError } from './errors.js';

const LAST_FRAGMENT = 0x80000000;
const MAX_FRAGMENT = 0x7fffffff;

/**
 * Splits a TCP byte stream into RPC records (RFC 5531 section 11, record marking). Records that
 * arrive whole inside one chunk are handed out as views of it; only records split across chunks
 * or fragments are copied. The declared size is checked before any byte is buffered, so a peer
 * announcing a huge record costs nothing but the connection.
 */
export class RecordDecoder {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Fragments of the record being assembled. */
  private fragments: Buffer[] = [];
  private recordBytes = 0;
  /** Bytes `pending` must reach before parsing is worth retrying (avoids quadratic copying). */
  private need = 0;

  constructor(
    private readonly maxRecordSize: number,
    private readonly onRecord: (record: Buffer) => void,
  ) {}

  /** Feeds bytes; calls onRecord for each complete record. Throws on a framing violation. */
  push(chunk: Buffer): void {
    let buf = chunk;
    if (this.pendingBytes > 0) {
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
    return this.pendingBytes + this.recordBytes;
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

  constructor(
    private readonly socket: Socket,
    private readonly maxFragment?: number,
  ) {}

  write(message: Buffer[]): void {
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
  }

  /** Hands what was joined so far to the socket (still corked until the tick ends). */
  flush(): void {
    const ab = this.ab;
    if (ab === null) return;
    this.ab = null;
    if (!this.socket.destroyed) this.socket.write(Buffer.from(ab, this.start, this.end - this.start));
  }

  private readonly endTick = () => {
    this.corked = false;
    this.flush();
    this.socket.uncork();
  };
}
