/**
 * Measurements of the ring that docs/PLACEMENT.md reports and the tests bound: how evenly load
 * spreads at a given number of virtual nodes, and how much moves when the layout changes.
 */

import { type Layout, type LayoutNode, movedRanges, RING_SIZE, type Ring, ringDistance } from './ring.js';
import { Prng } from './ring-prng.js';

export interface BalanceFigures {
  /** The most loaded node's share over its fair share (weight / total weight, times R). */
  readonly maxOverFair: number;
  /** The least loaded node's share over its fair share. */
  readonly minOverFair: number;
}

/** A layout of `n` nodes with random 16-byte hex ids (as identity.ts makes them). */
export function randomLayout(n: number, seed: number, weight: (i: number) => number = () => 1): Layout {
  const rng = new Prng(seed);
  const nodes: LayoutNode[] = [];
  for (let i = 0; i < n; i++) nodes.push({ id: rng.hex(16), weight: weight(i) });
  return { version: 1, nodes };
}

/** Exact shares (not sampled keys) of the ring per node, relative to weight. */
export function balance(ring: Ring, r = 1): BalanceFigures {
  const shares = ring.ownership(r);
  let total = 0;
  for (const n of ring.layout.nodes) total += n.weight;
  const replicas = Math.min(r, ring.nodeIds.length);
  let max = 0;
  let min = Number.POSITIVE_INFINITY;
  for (const n of ring.layout.nodes) {
    if (n.weight === 0) continue;
    const fair = (replicas * n.weight) / total;
    const rel = (shares.get(n.id) ?? 0) / fair;
    max = Math.max(max, rel);
    min = Math.min(min, rel);
  }
  return { maxOverFair: max, minOverFair: min };
}

/** The fraction of the key space whose list changed between two rings. */
export function movedFraction(before: Ring, after: Ring, r: number): number {
  let sum = 0n;
  for (const m of movedRanges(before, after, r)) {
    sum += m.start === m.end ? RING_SIZE : ringDistance(m.start, m.end);
  }
  return Number(sum) / Number(RING_SIZE);
}
