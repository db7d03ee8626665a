import type { Time } from './types.js';

/**
 * Timestamps for mtime and ctime that never go backwards, even when the wall clock does
 * (NTP steps, a restart on a machine whose clock is behind): each is later than every one handed
 * out before, including those persisted before a restart (`advancePast`).
 */
export class MonotonicClock {
  private lastS = 0;
  private lastNs = 0;

  constructor(private readonly wallMs: () => number = Date.now) {}

  advancePast(t: Time): void {
    if (t.s > this.lastS || (t.s === this.lastS && t.ns > this.lastNs)) {
      this.lastS = t.s;
      this.lastNs = t.ns;
    }
  }

  now(): Time {
    const ms = this.wallMs();
    let s = Math.floor(ms / 1000);
    let ns = Math.round((ms - s * 1000) * 1e6);
    if (s < this.lastS || (s === this.lastS && ns <= this.lastNs)) {
      s = this.lastS;
      ns = this.lastNs + 1;
      if (ns >= 1e9) {
        s++;
        ns = 0;
      }
    }
    this.lastS = s;
    this.lastNs = ns;
    return { s, ns };
  }
}
