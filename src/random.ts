/**
 * Cairn's seeded random source, for the simulator and for every experiment that must repeat
 * (placement, Chord): sfc32 (Chris Doty-Humphrey's small fast chaotic
 * generator, 128 bits of state), seeded through splitmix32. Integer arithmetic only, via
 * Math.imul and `>>> 0`, so a seed yields the same stream on every Node version and machine —
 * which is what lets a failing run replay from its seed.
 */

/** A source of randomness as the protocol cores see it (structurally the cores' own `Random`). */
export interface Random {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [0, n). */
  int(n: number): number;
}

function splitmix32(state: number): [number, number] {
  const s = (state + 0x9e3779b9) >>> 0;
  let z = s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return [s, (z ^ (z >>> 16)) >>> 0];
}

export class SeededRandom implements Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    let s = seed >>> 0;
    let v: number;
    [s, v] = splitmix32(s);
    this.a = v;
    [s, v] = splitmix32(s);
    this.b = v;
    [s, v] = splitmix32(s);
    this.c = v;
    [s, v] = splitmix32(s);
    this.d = v;
    // The first outputs of a fresh sfc32 are poorly mixed; its author discards a dozen.
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  nextUint32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  next(): number {
    return this.nextUint32() / 0x1_0000_0000;
  }

  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return p > 0 && this.next() < p;
  }

  /** An exponentially distributed value with the given mean. */
  exponential(mean: number): number {
    return -Math.log(1 - this.next()) * mean;
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      let v = this.nextUint32();
      for (let j = i; j < Math.min(n, i + 4); j++) {
        out[j] = v & 0xff;
        v >>>= 8;
      }
    }
    return out;
  }

  /**
   * An independent stream derived from this one, so that giving each node its own stream keeps
   * one node's draws from shifting every other node's (a change in one core perturbs less).
   */
  fork(): SeededRandom {
    return new SeededRandom(this.nextUint32() ^ Math.imul(this.nextUint32(), 0x9e3779b1));
  }
}
