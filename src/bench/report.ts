/**
 * The benchmark output contract (PRODUCT.md, "Interfaces other tools rely on"): human-readable
 * text first, then exactly one JSON object as the last line of stdout.
 */

export interface BenchResult {
  metric: string;
  unit: string;
  cairn: number;
  peer: number;
  peerName: string;
  /** Cairn relative to the peer; above 1 means Cairn is better. */
  ratio: number;
}

/** Whether a larger value of the metric is better (throughput) or worse (latency). */
export type Direction = 'higher' | 'lower';

export function result(
  metric: string,
  unit: string,
  cairn: number,
  peer: number,
  peerName: string,
  better: Direction,
): BenchResult {
  const ratio = better === 'higher' ? cairn / peer : peer / cairn;
  return {
    metric,
    unit,
    cairn: round(cairn),
    peer: round(peer),
    peerName,
    ratio: Number.isFinite(ratio) ? round(ratio, 3) : 0,
  };
}

/** Rounds to a few significant decimals so the JSON stays readable. */
export function round(v: number, decimals?: number): number {
  if (!Number.isFinite(v)) return 0;
  const d = decimals ?? (Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 1 ? 2 : 3);
  const f = 10 ** d;
  return Math.round(v * f) / f;
}

/** The last line of a benchmark's stdout. */
export function jsonLine(bench: string, results: readonly BenchResult[]): string {
  return JSON.stringify({ bench, results });
}

/** A plain-text table with right-aligned numeric columns. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** Formats a number for a table: thousands separated, a few decimals for small values. */
export function fmt(v: number): string {
  if (!Number.isFinite(v)) return '-';
  if (Math.abs(v) >= 100) return Math.round(v).toLocaleString('en-US');
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
}
