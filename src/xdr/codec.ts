import { XdrReader } from './reader.js';
import { XdrWriter } from './writer.js';

/** The shape of every generated encoder and decoder. */
export type Encoder<T> = (w: XdrWriter, v: T) => void;
export type Decoder<T> = (r: XdrReader) => T;
export interface XdrCodec<T> {
  readonly encode: Encoder<T>;
  readonly decode: Decoder<T>;
}

export function encodeToBuffer<T>(encode: Encoder<T>, value: T): Buffer {
  const w = new XdrWriter();
  encode(w, value);
  return w.finish();
}

/** Decodes a whole buffer, rejecting trailing bytes. */
export function decodeAll<T>(decode: Decoder<T>, bytes: Uint8Array): T {
  const r = new XdrReader(bytes);
  const v = decode(r);
  r.assertEnd();
  return v;
}
