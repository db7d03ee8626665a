/** One SWIM packet to and from bytes, with the generated codec of membership.x. */

import { decodeAll, encodeToBuffer } from '../../xdr/index.js';
import { decode_swim_packet, encode_swim_packet, type swim_packet } from '../gen/membership.js';

export function encodePacket(p: swim_packet): Uint8Array {
  return encodeToBuffer(encode_swim_packet, p);
}

/** Throws an XdrError (with the field path) on malformed or truncated input, or trailing bytes. */
export function decodePacket(bytes: Uint8Array): swim_packet {
  return decodeAll(decode_swim_packet, bytes);
}
