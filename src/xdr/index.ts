export type { Decoder, Encoder, XdrCodec } from './codec.js';
export { decodeAll, encodeToBuffer } from './codec.js';
export { XdrError, type XdrErrorCode, xdrErrorAt } from './errors.js';
export { XdrReader } from './reader.js';
export { XdrWriter } from './writer.js';
