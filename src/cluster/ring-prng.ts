/**
 * The seeded source the placement and Chord experiments draw from, with the helpers they use: the
 * same seed gives the same node ids, keys and failures on every machine. Not for secrets:
 * identity and authentication take their randomness from node:crypto.
 */
import { SeededRandom } from '../random.js';

export class Prng extends SeededRandom {
  uint32(): number {
    return this.nextUint32();
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.next();
  }

  /** Uniform integer in [0, n) for n up to 2^32. */
  below(n: number): number {
    return this.int(n);
  }

  /** Uniform 64-bit value. */
  uint64(): bigint {
    return (BigInt(this.uint32()) << 32n) | BigInt(this.uint32());
  }

  /** A hex string of `bytes` random bytes (node ids for experiments). */
  hex(bytes: number): string {
    let s = '';
    for (let i = 0; i < bytes; i += 4) s += this.uint32().toString(16).padStart(8, '0');
    return s.slice(0, bytes * 2);
  }
}
