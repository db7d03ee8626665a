/**
 * Chord routing (Stoica et al., 2001) for memberships too large for every node to hold the whole
 * layout. Ids live in the ring's 64-bit identifier space; node n is responsible for the keys in
 * (predecessor(n), n]. Each node knows a successor list of r nodes and a finger table whose
 * entry i is successor(n + 2^i); a lookup moves greedily to the closest finger preceding the key,
 * halving the remaining distance per hop, so it takes O(log N) hops, ½·log2 N on average.
 *
 * This is a sans-IO model: ChordNetwork holds every node's routing state and the steps of the
 * protocol (join, stabilize, notify, fix-fingers, check-predecessor) are functions over it. A
 * message to a crashed node is modelled as a timeout the sender notices, counted but never
 * waited for. With a seed, every run is the same run. The ring (ring.ts) remains the placement
 * used for data: this is the routing experiment the notes ask for and the answer for views too
 * large to hold.
 */
import { CairnError } from '../errors.js';
import { Prng } from './ring-prng.js';

export const CHORD_BITS = 64;
const SPACE = 1n << 64n;
export const MASK = SPACE - 1n;
/** 2^i for every finger, computed once. */
const POW2: readonly bigint[] = Array.from({ length: CHORD_BITS }, (_, i) => 1n << BigInt(i));
/** Any lookup longer than this is a routing loop (stale pointers): it is reported, not followed. */
const MAX_HOPS = 4 * CHORD_BITS;

export class ChordError extends CairnError {}

export interface ChordNode {
  readonly id: bigint;
  predecessor: bigint | undefined;
  /** The next r nodes clockwise, nearest first; never empty (a lone node lists itself). */
  successors: bigint[];
  /** fingers[i] is this node's belief of successor(id + 2^i), or undefined before it is fixed. */
  readonly fingers: (bigint | undefined)[];
}

export interface LookupResult {
  /** The node the lookup ended at as responsible for the key; undefined when routing failed. */
  readonly owner: bigint | undefined;
  /** Messages forwarded from node to node before the answer was known. */
  readonly hops: number;
  /** Messages sent to crashed nodes (each one a timeout for a real sender). */
  readonly timeouts: number;
}

/** d(a, b): clockwise distance from a to b in [0, 2^64). */
export function dist(a: bigint, b: bigint): bigint {
  return (b - a) & MASK;
}

/** x in the half-open interval (a, b]; a === b is the whole ring. */
export function between(x: bigint, a: bigint, b: bigint): boolean {
  const db = dist(a, b);
  const dx = dist(a, x);
  return db === 0n ? true : dx !== 0n && dx <= db;
}

export interface ChordOptions {
  /** Successor list length r; Chord's paper suggests 2·log2 N for a failure probability of ½. */
  readonly successors?: number;
  /**
   * Also route through the successor list when it gets closer to the key than any finger (as
   * later Chord implementations do). Off by default, to measure the paper's algorithm.
   */
  readonly successorShortcut?: boolean;
}

export class ChordNetwork {
  readonly r: number;
  private readonly shortcut: boolean;
  private readonly nodes = new Map<bigint, ChordNode>();
  private readonly alive = new Set<bigint>();
  /** Live ids ascending, rebuilt on demand: the ground truth that lookups are checked against. */
  private sorted: BigUint64Array | undefined;

  constructor(options: ChordOptions = {}) {
    this.r = options.successors ?? 16;
    this.shortcut = options.successorShortcut ?? false;
    if (!Number.isInteger(this.r) || this.r < 1 || this.r > 256) {
      throw new ChordError('CHORD_BAD_OPTIONS', `successor list length ${this.r} is not in 1..256`);
    }
  }

  /**
   * The network that stabilization converges to, built directly: every pointer correct. Used
   * for the large experiments (100,000 nodes), where simulating every join would only repeat
   * what the join tests show on smaller networks.
   */
  static stabilized(ids: Iterable<bigint>, options: ChordOptions = {}): ChordNetwork {
    const net = new ChordNetwork(options);
    const sorted = BigUint64Array.from(new Set(ids)).sort();
    // Reading a BigUint64Array allocates a new bigint each time; one shared object per id keeps
    // 100,000 nodes' successor lists and fingers to pointers.
    const shared: bigint[] = Array.from(sorted);
    const n = sorted.length;
    for (let i = 0; i < n; i++) {
      const id = shared[i];
      const successors: bigint[] = [];
      for (let k = 1; k <= Math.min(net.r, n - 1); k++) successors.push(shared[(i + k) % n]);
      if (successors.length === 0) successors.push(id);
      const node: ChordNode = {
        id,
        predecessor: n > 1 ? shared[(i + n - 1) % n] : id,
        successors,
        fingers: new Array(CHORD_BITS),
      };
      const succ = successors[0];
      const gap = n > 1 ? dist(id, succ) : SPACE;
      for (let f = 0; f < CHORD_BITS; f++) {
        // Small fingers all land on the successor; only about log2 N need a search.
        node.fingers[f] = POW2[f] <= gap ? succ : shared[successorIndex(sorted, (id + POW2[f]) & MASK)];
      }
      net.nodes.set(id, node);
      net.alive.add(id);
    }
    net.sorted = sorted;
    return net;
  }

  get size(): number {
    return this.alive.size;
  }

  liveIds(): BigUint64Array {
    this.sorted ??= BigUint64Array.from(this.alive).sort();
    return this.sorted;
  }

  isAlive(id: bigint): boolean {
    return this.alive.has(id);
  }

  node(id: bigint): ChordNode {
    const n = this.nodes.get(id);
    if (!n) throw new ChordError('CHORD_UNKNOWN_NODE', `no node ${id.toString(16)}`);
    return n;
  }

  /** The live node truly responsible for `key`: what a correct lookup must return. */
  responsible(key: bigint): bigint | undefined {
    const s = this.liveIds();
    if (s.length === 0) return undefined;
    return s[successorIndex(s, key)];
  }

  /** The first node of a new ring. */
  create(id: bigint): void {
    this.add({ id, predecessor: undefined, successors: [id], fingers: new Array(CHORD_BITS) });
  }

  /**
   * Chord's join: the new node asks `via` for its successor and knows nothing else; stabilize
   * and fix-fingers rounds then splice it in and fill its fingers.
   */
  join(id: bigint, via: bigint): void {
    if (this.nodes.has(id)) throw new ChordError('CHORD_DUPLICATE_ID', `node ${id.toString(16)} exists`);
    if (!this.alive.has(via)) throw new ChordError('CHORD_UNKNOWN_NODE', 'the join contact is not alive');
    const found = this.lookup(via, id);
    if (found.owner === undefined) throw new ChordError('CHORD_LOOKUP_FAILED', 'join lookup failed');
    this.add({ id, predecessor: undefined, successors: [found.owner], fingers: new Array(CHORD_BITS) });
  }

  /** A crash: the node stops answering; others notice only when they send to it. */
  fail(id: bigint): void {
    if (this.alive.delete(id)) this.sorted = undefined;
  }

  private add(node: ChordNode): void {
    this.nodes.set(node.id, node);
    this.alive.add(node.id);
    this.sorted = undefined;
  }

  /** The first live entry of a node's successor list (the node itself when it has none). */
  private liveSuccessor(n: ChordNode, counter?: { timeouts: number }): bigint {
    for (const s of n.successors) {
      if (this.alive.has(s)) return s;
      if (counter) counter.timeouts++;
    }
    return n.id;
  }

  /**
   * Greedy routing from `from`: while the key is not between the current node and its
   * successor, forward to the closest live node preceding the key among the current node's
   * fingers and successors. A crashed candidate costs a timeout and is skipped.
   */
  lookup(from: bigint, key: bigint): LookupResult {
    const counter = { timeouts: 0 };
    let cur = this.node(from);
    if (!this.alive.has(from)) return { owner: undefined, hops: 0, timeouts: 0 };
    let hops = 0;
    for (;;) {
      if (key === cur.id) return { owner: cur.id, hops, timeouts: counter.timeouts };
      const succ = this.liveSuccessor(cur, counter);
      if (between(key, cur.id, succ)) return { owner: succ, hops, timeouts: counter.timeouts };
      const next = this.closestPreceding(cur, key, counter);
      if (next === cur.id || hops >= MAX_HOPS) {
        // No pointer gets closer: in a stale ring the successor is the best remaining guess.
        if (next === cur.id && succ !== cur.id) {
          cur = this.node(succ);
          hops++;
          if (hops < MAX_HOPS) continue;
        }
        return { owner: undefined, hops, timeouts: counter.timeouts };
      }
      cur = this.node(next);
      hops++;
    }
  }

  private closestPreceding(n: ChordNode, key: bigint, counter: { timeouts: number }): bigint {
    const limit = dist(n.id, key);
    let best = n.id;
    let bestD = 0n;
    // Fingers are in increasing distance: the first live one below the key is the farthest.
    let prev: bigint | undefined;
    for (let i = CHORD_BITS - 1; i >= 0; i--) {
      const f = n.fingers[i];
      if (f === undefined || f === prev) continue;
      prev = f;
      const d = dist(n.id, f);
      if (d === 0n || d >= limit) continue;
      if (!this.alive.has(f)) {
        counter.timeouts++;
        continue;
      }
      best = f;
      bestD = d;
      break;
    }
    // The paper routes by fingers alone; successors are the fallback when no finger helps (just
    // joined, after failures) or, with the shortcut, a way to skip the last few hops.
    if (!this.shortcut && best !== n.id) return best;
    for (const s of n.successors) {
      const d = dist(n.id, s);
      if (d <= bestD || d >= limit) continue;
      if (!this.alive.has(s)) continue;
      best = s;
      bestD = d;
    }
    return best;
  }

  /**
   * Chord's stabilize for one node: adopt the successor's predecessor when it lies between,
   * refresh the successor list from the successor's, and notify the successor.
   */
  stabilize(id: bigint): void {
    const n = this.node(id);
    if (!this.alive.has(id)) return;
    let succ = this.liveSuccessor(n);
    // A lone node is its own successor, so it learns of the first joiner as its own predecessor.
    const x = this.node(succ).predecessor;
    if (x !== undefined && this.alive.has(x) && x !== id && between(x, id, succ) && x !== succ) succ = x;
    const s = this.node(succ);
    const list = [succ];
    for (const t of s.successors) {
      if (list.length >= this.r) break;
      if (t === id || !this.alive.has(t) || list.includes(t)) continue;
      list.push(t);
    }
    n.successors = succ === id ? [id] : list;
    this.notify(succ, id);
  }

  /** `candidate` thinks it might be `id`'s predecessor. */
  notify(id: bigint, candidate: bigint): void {
    const n = this.node(id);
    if (candidate === id) return;
    const p = n.predecessor;
    if (p === undefined || !this.alive.has(p) || between(candidate, p, id)) {
      if (candidate !== id) n.predecessor = candidate;
    }
  }

  /**
   * Chord's fix-fingers for every finger of one node. A finger whose start still falls before the
   * previous finger's node reuses it instead of a lookup, so a round costs about log2 N lookups.
   */
  fixFingers(id: bigint): void {
    const n = this.node(id);
    if (!this.alive.has(id)) return;
    for (let i = 0; i < CHORD_BITS; i++) this.fixFinger(n, i);
  }

  /** One finger, by Chord's lookup of n + 2^i. */
  fixFinger(n: ChordNode, i: number): void {
    const start = (n.id + POW2[i]) & MASK;
    const prev = i > 0 ? n.fingers[i - 1] : undefined;
    if (prev !== undefined && this.alive.has(prev) && prev !== n.id && between(start, n.id, prev)) {
      n.fingers[i] = prev;
      return;
    }
    const r = this.lookup(n.id, start);
    n.fingers[i] = r.owner;
  }

  /** Forget a crashed predecessor so that notify can replace it. */
  checkPredecessor(id: bigint): void {
    const n = this.node(id);
    if (n.predecessor !== undefined && !this.alive.has(n.predecessor)) n.predecessor = undefined;
  }

  /**
   * One round of maintenance: every live node, in an order drawn from `rng`, runs stabilize and
   * check-predecessor; then every node fixes its fingers.
   */
  round(rng: Prng, fingers = true): void {
    const order = [...this.alive];
    for (let i = order.length - 1; i > 0; i--) {
      const j = rng.below(i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    for (const id of order) {
      this.checkPredecessor(id);
      this.stabilize(id);
    }
    if (fingers) for (const id of order) this.fixFingers(id);
  }

  /** Every live node's successor and predecessor are the true ones. */
  isRingConsistent(): boolean {
    const s = this.liveIds();
    const n = s.length;
    for (let i = 0; i < n; i++) {
      const node = this.node(s[i]);
      const succ = this.liveSuccessor(node);
      if (succ !== (n > 1 ? s[(i + 1) % n] : s[i])) return false;
      if (n > 1 && node.predecessor !== s[(i + n - 1) % n]) return false;
    }
    return true;
  }

  /** Every live node's fingers are the true successors of their starts. */
  areFingersExact(): boolean {
    const s = this.liveIds();
    for (const id of s) {
      const node = this.node(id);
      for (let i = 0; i < CHORD_BITS; i++) {
        if (node.fingers[i] !== s[successorIndex(s, (id + POW2[i]) & MASK)]) return false;
      }
    }
    return true;
  }
}

/** Index of the first id at or after `key`, wrapping. */
function successorIndex(sorted: BigUint64Array, key: bigint): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] < key) lo = mid + 1;
    else hi = mid;
  }
  return lo === sorted.length ? 0 : lo;
}

/** `n` distinct random ids from a seed. */
export function randomIds(n: number, rng: Prng): bigint[] {
  const ids = new Set<bigint>();
  while (ids.size < n) ids.add(rng.uint64());
  return [...ids];
}

export interface HopFigures {
  readonly n: number;
  readonly lookups: number;
  readonly mean: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  /** Chord's paper: ½·log2 N. */
  readonly reference: number;
  /** Lookups that did not end at the responsible node (0 in a stabilized network). */
  readonly wrong: number;
}

/**
 * Lookup hops in a stabilized Chord network of `n` nodes with random ids: `lookups` lookups of
 * random keys from random nodes. For `npm run bench -- membership`:
 * `chordHops(100_000, seed)` takes a few seconds and about 100 MB.
 */
export function chordHops(n: number, seed: number, lookups = 10_000, options: ChordOptions = {}): HopFigures {
  if (!Number.isInteger(n) || n < 1 || n > 1_000_000) {
    throw new ChordError('CHORD_BAD_OPTIONS', `network size ${n} is not in 1..1,000,000`);
  }
  const rng = new Prng(seed);
  const ids = randomIds(n, rng);
  const net = ChordNetwork.stabilized(ids, {
    successors: Math.max(1, Math.min(256, 2 * Math.ceil(Math.log2(n)))),
    ...options,
  });
  return measureHops(net, rng, lookups);
}

/** Hop figures for random lookups on an existing network (after failures, joins). */
export function measureHops(
  net: ChordNetwork,
  rng: Prng,
  lookups: number,
): HopFigures & { timeouts: number } {
  const live = net.liveIds();
  const hops = new Uint32Array(lookups);
  let wrong = 0;
  let sum = 0;
  let timeouts = 0;
  for (let i = 0; i < lookups; i++) {
    const from = live[rng.below(live.length)];
    const key = rng.uint64();
    const r = net.lookup(from, key);
    if (r.owner !== net.responsible(key)) wrong++;
    hops[i] = r.hops;
    sum += r.hops;
    timeouts += r.timeouts;
  }
  hops.sort();
  const at = (q: number) => (lookups ? hops[Math.min(lookups - 1, Math.ceil(q * lookups) - 1)] : 0);
  return {
    n: live.length,
    lookups,
    mean: lookups ? sum / lookups : 0,
    p50: at(0.5),
    p99: at(0.99),
    max: lookups ? hops[lookups - 1] : 0,
    reference: Math.log2(live.length) / 2,
    wrong,
    timeouts,
  };
}
