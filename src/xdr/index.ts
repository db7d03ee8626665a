export { XdrError, xdrErrorAt, type XdrErrorCode } from './errors.js';
export { XdrReader } from './reader.js';
export { XdrWriter } from './writer.js';
export type { Decoder, Encoder, XdrCodec } from './codec.js';
export { decodeAll, encodeToBuffer } from './codec.js';
