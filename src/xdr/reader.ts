import { XdrError } from './errors.js';

const TWO_32 = 4294967296;

/**
 * Reads XDR (RFC 4506) from a buffer. Every length read from the wire is checked against the
 * declared maximum and against the bytes that remain before anything is allocated, so a hostile
 * length can never make the decoder allocate or loop more than the input justifies.
 * Opaque data is returned as a view of the input, not a copy.
 */
export class XdrReader {
  readonly buf: Buffer;
  pos: number;
  readonly end: number;

  constructor(buf: Uint8Array, offset = 0, end = buf.length) {
    this.buf = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = offset;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private need(n: number): void {
    if (this.end - this.pos < n) {
      throw new XdrError('XDR_SHORT_BUFFER', `needs ${n} bytes, ${this.end - this.pos} remain`);
    }
  }

  readInt(): number {
    this.need(4);
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 4;
    return (b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3];
  }

  readUint(): number {
    this.need(4);
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 4;
    return b[p] * 0x1000000 + ((b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]);
  }

  readHyper(): bigint {
    const hi = this.readInt();
    const lo = this.readUint();
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  readUhyper(): bigint {
    const hi = this.readUint();
    const lo = this.readUint();
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  /** An unsigned hyper as a number when it fits in 2^53, for offsets and sizes on hot paths. */
  readUhyperAsNumber(): number {
    const hi = this.readUint();
    const lo = this.readUint();
    if (hi > 0x1fffff) throw new XdrError('XDR_BAD_VALUE', 'unsigned hyper exceeds 2^53');
    return hi * TWO_32 + lo;
  }

  readFloat(): number {
    this.need(4);
    const v = this.buf.readFloatBE(this.pos);
    this.pos += 4;
    return v;
  }

  readDouble(): number {
    this.need(8);
    const v = this.buf.readDoubleBE(this.pos);
    this.pos += 8;
    return v;
  }

  readBool(): boolean {
    const v = this.readInt();
    if (v === 0) return false;
    if (v === 1) return true;
    throw new XdrError('XDR_BAD_BOOL', `boolean must be 0 or 1, got ${v}`);
  }

  /** Reads an enum and checks it against the declared values (a set or a predicate). */
  readEnum<T extends number>(valid: ReadonlySet<number>): T {
    const v = this.readInt();
    if (!valid.has(v)) throw new XdrError('XDR_BAD_ENUM', `${v} is not a declared enum value`);
    return v as T;
  }

  private skipPadding(len: number): void {
    const pad = (4 - (len & 3)) & 3;
    if (pad === 0) return;
    this.need(pad);
    const b = this.buf;
    const p = this.pos;
    // RFC 4506 requires zero padding; rejecting other bytes keeps decoding canonical.
    for (let i = 0; i < pad; i++) {
      if (b[p + i] !== 0) throw new XdrError('XDR_BAD_PADDING', 'non-zero padding');
    }
    this.pos = p + pad;
  }

  readFixedOpaque(len: number): Buffer {
    this.need(len);
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    this.skipPadding(len);
    return out;
  }

  /** Reads a length prefix and checks it against `max` and the remaining input. */
  readLength(max: number, minElementSize: number): number {
    const len = this.readUint();
    if (len > max) throw new XdrError('XDR_LENGTH_EXCEEDED', `length ${len} exceeds maximum ${max}`);
    if (len * minElementSize > this.end - this.pos) {
      throw new XdrError(
        'XDR_SHORT_BUFFER',
        `length ${len} needs at least ${len * minElementSize} bytes, ${this.end - this.pos} remain`,
      );
    }
    return len;
  }

  readOpaque(max = 0xffffffff): Buffer {
    return this.readFixedOpaque(this.readLength(max, 1));
  }

  readString(max = 0xffffffff): string {
    const len = this.readLength(max, 1);
    const start = this.pos;
    this.pos += len;
    const s = this.buf.toString('utf8', start, start + len);
    this.skipPadding(len);
    return s;
  }

  /** Throws unless all input was consumed; used where trailing garbage means a bad message. */
  assertEnd(): void {
    if (this.pos !== this.end) {
      throw new XdrError('XDR_TRAILING_BYTES', `${this.end - this.pos} bytes left after decoding`);
    }
  }
}
