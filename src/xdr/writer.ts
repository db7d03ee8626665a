import { XdrError } from './errors.js';

const TWO_32 = 4294967296;
const ZEROES = Buffer.alloc(4);
/** Opaque data at least this large is referenced rather than copied into the output. */
const ZERO_COPY_THRESHOLD = 32 * 1024;

/**
 * Writes XDR (RFC 4506) into a growable buffer. Large opaque values are not copied: they become
 * separate chunks of the output, so a 1 MiB READ reply goes from the caller's buffer to the socket
 * with `writev` and no intermediate copy.
 */
export class XdrWriter {
  buf: Buffer;
  pos = 0;
  /** Completed chunks before `buf`; empty unless a large opaque was referenced. */
  private chunks: Buffer[] = [];
  private chunkBytes = 0;

  constructor(initialSize = 256) {
    this.buf = Buffer.allocUnsafe(initialSize);
  }

  /** Bytes written so far, over all chunks. */
  get length(): number {
    return this.chunkBytes + this.pos;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** Reserves `n` bytes to be filled later with `setUintAt` (a record mark, a length). */
  skip(n: number): number {
    this.ensure(n);
    const at = this.pos;
    this.pos += n;
    return at;
  }

  /** Overwrites a reserved word; `at` is an offset into the first chunk, as `skip` returned. */
  setUintAt(at: number, v: number): void {
    const target = this.chunks.length > 0 ? this.chunks[0] : this.buf;
    target.writeUInt32BE(v >>> 0, at);
  }

  writeInt(v: number): void {
    if (!Number.isInteger(v) || v < -2147483648 || v > 2147483647) {
      throw new XdrError('XDR_BAD_VALUE', `${v} is not a 32-bit signed integer`);
    }
    this.ensure(4);
    const b = this.buf;
    const p = this.pos;
    b[p] = v >>> 24;
    b[p + 1] = v >>> 16;
    b[p + 2] = v >>> 8;
    b[p + 3] = v;
    this.pos = p + 4;
  }

  writeUint(v: number): void {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
      throw new XdrError('XDR_BAD_VALUE', `${v} is not a 32-bit unsigned integer`);
    }
    this.ensure(4);
    const b = this.buf;
    const p = this.pos;
    b[p] = v >>> 24;
    b[p + 1] = v >>> 16;
    b[p + 2] = v >>> 8;
    b[p + 3] = v;
    this.pos = p + 4;
  }

  writeHyper(v: bigint): void {
    if (typeof v !== 'bigint' || v < -(2n ** 63n) || v >= 2n ** 63n) {
      throw new XdrError('XDR_BAD_VALUE', `${v} is not a 64-bit signed integer`);
    }
    this.writeInt(Number(v >> 32n));
    this.writeUint(Number(v & 0xffffffffn));
  }

  writeUhyper(v: bigint): void {
    if (typeof v !== 'bigint' || v < 0n || v >= 2n ** 64n) {
      throw new XdrError('XDR_BAD_VALUE', `${v} is not a 64-bit unsigned integer`);
    }
    this.writeUint(Number(v >> 32n));
    this.writeUint(Number(v & 0xffffffffn));
  }

  /** Counterpart of `XdrReader.readUhyperAsNumber`. */
  writeUhyperFromNumber(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) {
      throw new XdrError('XDR_BAD_VALUE', `${v} is not a non-negative safe integer`);
    }
    this.writeUint(Math.floor(v / TWO_32));
    this.writeUint(v % TWO_32);
  }

  writeFloat(v: number): void {
    this.ensure(4);
    this.buf.writeFloatBE(v, this.pos);
    this.pos += 4;
  }

  writeDouble(v: number): void {
    this.ensure(8);
    this.buf.writeDoubleBE(v, this.pos);
    this.pos += 8;
  }

  writeBool(v: boolean): void {
    this.writeInt(v ? 1 : 0);
  }

  /** Writes an enum after checking it is one of the declared values. */
  writeEnum(v: number, valid: ReadonlySet<number>): void {
    if (!valid.has(v)) throw new XdrError('XDR_BAD_ENUM', `${v} is not a declared enum value`);
    this.writeInt(v);
  }

  private writePadding(len: number): void {
    const pad = (4 - (len & 3)) & 3;
    if (pad === 0) return;
    this.ensure(pad);
    ZEROES.copy(this.buf, this.pos, 0, pad);
    this.pos += pad;
  }

  writeFixedOpaque(data: Uint8Array, len: number): void {
    if (!(data instanceof Uint8Array)) throw new XdrError('XDR_BAD_VALUE', 'opaque must be a Uint8Array');
    if (data.length !== len) {
      throw new XdrError('XDR_BAD_VALUE', `fixed opaque needs ${len} bytes, got ${data.length}`);
    }
    this.writeBytes(data);
    this.writePadding(len);
  }

  private writeBytes(data: Uint8Array): void {
    const len = data.length;
    if (len >= ZERO_COPY_THRESHOLD) {
      // Seal the current buffer as a chunk and reference the caller's bytes as the next one.
      this.chunks.push(this.buf.subarray(0, this.pos));
      this.chunkBytes += this.pos;
      const view = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, len);
      this.chunks.push(view);
      this.chunkBytes += len;
      this.buf = this.buf.subarray(this.pos);
      this.pos = 0;
      if (this.buf.length < 64) this.buf = Buffer.allocUnsafe(256);
      return;
    }
    this.ensure(len);
    // TypedArray.set, not Buffer#copy: in Node 20 the latter makes a throwaway view per call.
    this.buf.set(data, this.pos);
    this.pos += len;
  }

  writeOpaque(data: Uint8Array, max = 0xffffffff): void {
    if (!(data instanceof Uint8Array)) throw new XdrError('XDR_BAD_VALUE', 'opaque must be a Uint8Array');
    this.writeLength(data.length, max);
    this.writeBytes(data);
    this.writePadding(data.length);
  }

  writeString(s: string, max = 0xffffffff): void {
    if (typeof s !== 'string') throw new XdrError('XDR_BAD_VALUE', 'expected a string');
    const len = Buffer.byteLength(s, 'utf8');
    this.writeLength(len, max);
    this.ensure(len + 3);
    this.buf.write(s, this.pos, len, 'utf8');
    this.pos += len;
    this.writePadding(len);
  }

  /** Writes an array or opaque length after checking it against the declared maximum. */
  writeLength(len: number, max: number): void {
    if (len > max) throw new XdrError('XDR_LENGTH_EXCEEDED', `length ${len} exceeds maximum ${max}`);
    this.writeUint(len);
  }

  /** The encoded bytes as one buffer (copied only if large opaques were referenced). */
  finish(): Buffer {
    if (this.chunks.length === 0) return this.buf.subarray(0, this.pos);
    return Buffer.concat(this.finishChunks());
  }

  /** The encoded bytes as a list of buffers, for `writev`; no copy. */
  finishChunks(): Buffer[] {
    if (this.pos === 0 && this.chunks.length > 0) return this.chunks;
    return [...this.chunks, this.buf.subarray(0, this.pos)];
  }
}
