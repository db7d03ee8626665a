/**
 * The byte encoding of tuple keys. lmdb-js's own ordered-binary encoding writes a Uint8Array
 * element raw, with no type tag and no escaping, so a byte string holding 0x00 (its element
 * separator) or starting with a tag byte does not round-trip and does not sort as a unit. This
 * encoding tags every element and makes it self-delimiting, so that
 *   - decode(encode(k)) equals k, byte strings included;
 *   - byte order of encodings is the tuple order (numbers < strings < byte strings; numbers by
 *     value; strings by UTF-8 bytes; byte strings by bytes; a shorter tuple before its extensions);
 *   - tuple `p` is a prefix of tuple `k` exactly when encode(p) is a byte prefix of encode(k).
 */
import { StoreInvalidError } from './errors.js';
import type { Key } from './types.js';

const T_NUM = 0x10;
const T_STR = 0x20;
const T_BYTES = 0x30;
/** Greater than every element's first byte: encode(p) + [PAST] bounds p's prefix range from above. */
export const PAST = 0xff;

/** LMDB's limit for keys with the default 4 KiB page. */
export const MAX_KEY_BYTES = 1978;

const f64 = new Float64Array(1);
const f64bytes = new Uint8Array(f64.buffer);
const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function pushEscaped(out: number[], bytes: Uint8Array): void {
  // 0x00 inside the element becomes 00 FF; the element ends with 00 01. So an element sorts
  // before its extensions (00 01 < any byte but 00, and < 00 FF).
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    out.push(b);
    if (b === 0) out.push(0xff);
  }
  out.push(0, 1);
}

export function encodeKey(key: Key): Buffer {
  if (!Array.isArray(key))
    throw new StoreInvalidError('a key is an array of strings, numbers and byte strings');
  const out: number[] = [];
  for (const el of key) {
    if (typeof el === 'number') {
      if (Number.isNaN(el)) throw new StoreInvalidError('NaN cannot be part of a key');
      f64[0] = el === 0 ? 0 : el; // -0 and 0 are one key
      const be = new Array<number>(8);
      for (let i = 0; i < 8; i++) be[i] = f64bytes[littleEndian ? 7 - i : i];
      if (be[0] & 0x80) for (let i = 0; i < 8; i++) be[i] ^= 0xff;
      else be[0] ^= 0x80;
      out.push(T_NUM, ...be);
    } else if (typeof el === 'string') {
      out.push(T_STR);
      pushEscaped(out, Buffer.from(el, 'utf8'));
    } else if (el instanceof Uint8Array) {
      out.push(T_BYTES);
      pushEscaped(out, el);
    } else {
      throw new StoreInvalidError(`key element of type ${typeof el} (only strings, numbers and Uint8Array)`);
    }
  }
  if (out.length > MAX_KEY_BYTES)
    throw new StoreInvalidError(`key encodes to ${out.length} bytes (limit ${MAX_KEY_BYTES})`);
  return Buffer.from(out);
}

function readEscaped(buf: Uint8Array, pos: number): [Buffer, number] {
  const bytes: number[] = [];
  for (;;) {
    if (pos >= buf.length) throw new StoreInvalidError('truncated key');
    const b = buf[pos++];
    if (b !== 0) {
      bytes.push(b);
      continue;
    }
    const next = buf[pos++];
    if (next === 1) return [Buffer.from(bytes), pos];
    if (next === 0xff) bytes.push(0);
    else throw new StoreInvalidError('malformed key escape');
  }
}

export function decodeKey(buf: Uint8Array): (string | number | Uint8Array)[] {
  const key: (string | number | Uint8Array)[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const tag = buf[pos++];
    if (tag === T_NUM) {
      if (pos + 8 > buf.length) throw new StoreInvalidError('truncated key');
      const be = Array.from(buf.subarray(pos, pos + 8));
      pos += 8;
      if (be[0] & 0x80) be[0] ^= 0x80;
      else for (let i = 0; i < 8; i++) be[i] ^= 0xff;
      for (let i = 0; i < 8; i++) f64bytes[littleEndian ? 7 - i : i] = be[i];
      key.push(f64[0]);
    } else if (tag === T_STR) {
      const [bytes, p] = readEscaped(buf, pos);
      pos = p;
      key.push(bytes.toString('utf8'));
    } else if (tag === T_BYTES) {
      const [bytes, p] = readEscaped(buf, pos);
      pos = p;
      key.push(new Uint8Array(bytes));
    } else {
      throw new StoreInvalidError(`unknown key element tag 0x${tag.toString(16)}`);
    }
  }
  return key;
}

/** The smallest encoding greater than every key that starts with `prefix`. */
export function prefixEnd(encodedPrefix: Buffer): Buffer {
  return Buffer.concat([encodedPrefix, Buffer.from([PAST])]);
}
