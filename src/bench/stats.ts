/** Small statistics for benchmarks: percentiles of latency samples, medians across rounds. */

/**
 * The p-th percentile (0 < p <= 100) of the first `n` samples, nearest-rank method. Sorts the
 * samples in place.
 */
export function percentile(samples: Float64Array, n: number, p: number): number {
  if (n === 0) return Number.NaN;
  const view = samples.subarray(0, n);
  view.sort();
  return view[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))];
}

/** Percentiles of the first `n` samples, sorting them once. */
export function percentiles(samples: Float64Array, n: number, ps: readonly number[]): number[] {
  if (n === 0) return ps.map(() => Number.NaN);
  const view = samples.subarray(0, n);
  view.sort();
  return ps.map((p) => view[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))]);
}

/** The median of some numbers (mean of the middle two for an even count); NaN when empty. */
export function median(values: readonly number[]): number {
  const v = values.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/**
 * A fixed-size reservoir of latency samples: keeps every sample until full, then a uniform
 * random subset (Vitter's algorithm R), so memory is bounded however long a round runs.
 */
export class Reservoir {
  readonly samples: Float64Array;
  /** Samples offered so far. */
  seen = 0;

  constructor(capacity: number) {
    this.samples = new Float64Array(capacity);
  }

  reset(): void {
    this.seen = 0;
  }

  add(v: number): void {
    const cap = this.samples.length;
    if (this.seen < cap) this.samples[this.seen] = v;
    else {
      const j = Math.floor(Math.random() * (this.seen + 1));
      if (j < cap) this.samples[j] = v;
    }
    this.seen++;
  }

  /** Samples held. */
  get size(): number {
    return Math.min(this.seen, this.samples.length);
  }

  percentiles(ps: readonly number[]): number[] {
    return percentiles(this.samples, this.size, ps);
  }
}
