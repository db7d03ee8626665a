/**
 * Placement: a consistent-hash ring in a Chord identifier space over a given, versioned layout.
 *
 * Identifiers are 64-bit unsigned integers: the first 8 bytes (big-endian) of SHA-256. A key at
 * position k belongs to the first token at or after k, wrapping at 2^64 (Chord's successor(k)), so
 * a token owns the half-open range (previous token, token]. 64 bits are enough: a ring holds at
 * most MAX_TOKENS = 2^20 tokens, and the chance that two of them collide is below 2^-24; positions
 * fit a BigUint64Array, which sorts natively and prints as 16 hex digits. The hash is plain, not
 * keyed: every node, `cairn status` and an operator's script must compute the same placement from
 * the layout alone (docs/PLACEMENT.md discusses keys chosen by an adversary).
 *
 * Each node with weight w gets round(w * vnodesPerWeight) virtual nodes (tokens), so its share of
 * the ring is proportional to its weight. A preference list walks clockwise from the key and takes
 * the first node of each zone not yet used; when the ring has fewer zones than R it tops the list
 * up with the first skipped nodes in ring order, so a list always has min(R, nodes) distinct
 * nodes in min(R, zones) distinct zones. A node without a zone counts as a zone of its own.
 *
 * Everything here is pure and deterministic: a Ring is a function of (layout, options).
 */
import { createHash } from 'node:crypto';
import { CairnError } from '../errors.js';

export const RING_BITS = 64;
export const RING_SIZE = 1n << 64n;
const MASK = RING_SIZE - 1n;

/**
 * Virtual nodes per unit of weight. Chosen from the measurements in docs/PLACEMENT.md: at 256
 * the most loaded of 3..100 equal nodes holds at most about 1.2 times the mean share, while
 * building a 100-node ring stays near 50 ms.
 */
export const DEFAULT_VNODES_PER_WEIGHT = 256;
/** Bounds memory and build time; a 100-node ring at the default weight uses 25,600. */
export const MAX_TOKENS = 1 << 20;
export const MAX_WEIGHT = 1000;
export const MAX_REPLICAS = 64;
const MAX_NAME = 256;

export interface LayoutNode {
  readonly id: string;
  /** Relative capacity; 1 is a standard node. 0 keeps the node in the layout but gives it no keys. */
  readonly weight: number;
  readonly zone?: string;
}

export interface Layout {
  readonly version: number;
  readonly nodes: readonly LayoutNode[];
}

export interface RingOptions {
  readonly vnodesPerWeight?: number;
}

/** A layout that cannot be placed: duplicate ids, bad weights, too many tokens. */
export class RingError extends CairnError {}

/** A key's position on the ring. Strings are hashed as UTF-8. */
export function keyPosition(key: string | Uint8Array): bigint {
  return createHash('sha256').update(key).digest().readBigUInt64BE(0);
}

/**
 * The position of a node's `index`th virtual node. One SHA-256 digest yields four positions
 * (hashing dominated building a ring); group g holds tokens 4g..4g+3.
 */
export function tokenPosition(nodeId: string, index: number): bigint {
  return tokenDigest(nodeId, Math.floor(index / 4)).readBigUInt64BE((index % 4) * 8);
}

function tokenDigest(nodeId: string, group: number): Buffer {
  return createHash('sha256').update(`cairn-ring-token\0${nodeId}\0${group}`).digest();
}

/** Clockwise distance from a to b on the ring, in [0, 2^64). */
export function ringDistance(a: bigint, b: bigint): bigint {
  return (b - a) & MASK;
}

/** True when x lies in the half-open clockwise range (start, end]; start === end is the whole ring. */
export function inRange(x: bigint, start: bigint, end: bigint): boolean {
  if (start === end) return true;
  return ringDistance(start, x) !== 0n && ringDistance(start, x) <= ringDistance(start, end);
}

export function formatPosition(p: bigint): string {
  return p.toString(16).padStart(16, '0');
}

function tokenCount(weight: number, vnodesPerWeight: number): number {
  if (weight === 0) return 0;
  return Math.max(1, Math.round(weight * vnodesPerWeight));
}

function validate(layout: Layout, vnodesPerWeight: number): void {
  if (!Number.isSafeInteger(layout.version) || layout.version < 0) {
    throw new RingError('RING_BAD_LAYOUT', `layout version ${layout.version} is not a non-negative integer`);
  }
  if (!Number.isInteger(vnodesPerWeight) || vnodesPerWeight < 1 || vnodesPerWeight > MAX_TOKENS) {
    throw new RingError(
      'RING_BAD_OPTIONS',
      `vnodesPerWeight ${vnodesPerWeight} is not an integer in 1..2^20`,
    );
  }
  const seen = new Set<string>();
  let total = 0;
  for (const n of layout.nodes) {
    if (typeof n.id !== 'string' || n.id.length === 0 || n.id.length > MAX_NAME) {
      throw new RingError(
        'RING_BAD_LAYOUT',
        `node id ${JSON.stringify(n.id)} is not 1..${MAX_NAME} characters`,
      );
    }
    if (seen.has(n.id)) throw new RingError('RING_BAD_LAYOUT', `node ${n.id} appears twice in the layout`);
    seen.add(n.id);
    if (typeof n.weight !== 'number' || !Number.isFinite(n.weight) || n.weight < 0 || n.weight > MAX_WEIGHT) {
      throw new RingError('RING_BAD_LAYOUT', `node ${n.id} has weight ${n.weight}, not in 0..${MAX_WEIGHT}`);
    }
    if (n.zone !== undefined && (typeof n.zone !== 'string' || n.zone.length > MAX_NAME)) {
      throw new RingError('RING_BAD_LAYOUT', `node ${n.id} has a zone that is not a short string`);
    }
    total += tokenCount(n.weight, vnodesPerWeight);
  }
  if (total > MAX_TOKENS) {
    throw new RingError(
      'RING_TOO_MANY_TOKENS',
      `the layout needs ${total} virtual nodes, more than ${MAX_TOKENS}: lower the weights or vnodesPerWeight`,
    );
  }
}

function checkReplicas(r: number): void {
  if (!Number.isInteger(r) || r < 1 || r > MAX_REPLICAS) {
    throw new RingError('RING_BAD_REPLICAS', `replica count ${r} is not an integer in 1..${MAX_REPLICAS}`);
  }
}

export class Ring {
  readonly layout: Layout;
  readonly vnodesPerWeight: number;
  /** Token positions, ascending. */
  readonly tokens: BigUint64Array;
  /** owners[i] is the index in `nodeIds` of the node holding tokens[i]. */
  readonly owners: Int32Array;
  /** Ids of the nodes that hold tokens (weight > 0), in layout order. */
  readonly nodeIds: readonly string[];
  /** zoneOf[i] is a small integer naming node i's zone; zoneless nodes get one each. */
  private readonly zoneOf: Int32Array;
  readonly zoneCount: number;
  /** Preference lists per replica count, per token, computed on first use. */
  private readonly lists = new Map<number, (readonly string[])[]>();
  private readonly nodeMark: Int32Array;
  private readonly zoneMark: Int32Array;
  private stamp = 0;

  constructor(layout: Layout, options: RingOptions = {}) {
    const vnodesPerWeight = options.vnodesPerWeight ?? DEFAULT_VNODES_PER_WEIGHT;
    validate(layout, vnodesPerWeight);
    this.layout = layout;
    this.vnodesPerWeight = vnodesPerWeight;
    const ids: string[] = [];
    const zones = new Map<string, number>();
    const zoneOf: number[] = [];
    const entries: { pos: bigint; node: number }[] = [];
    for (const n of layout.nodes) {
      const count = tokenCount(n.weight, vnodesPerWeight);
      if (count === 0) continue;
      const idx = ids.length;
      ids.push(n.id);
      // A zoneless node is its own zone; the prefix keeps it apart from any named zone.
      const zoneKey = n.zone === undefined ? `\0node\0${n.id}` : `zone\0${n.zone}`;
      let z = zones.get(zoneKey);
      if (z === undefined) {
        z = zones.size;
        zones.set(zoneKey, z);
      }
      zoneOf.push(z);
      let digest: Buffer | undefined;
      for (let i = 0; i < count; i++) {
        if (i % 4 === 0) digest = tokenDigest(n.id, i / 4);
        entries.push({ pos: digest!.readBigUInt64BE((i % 4) * 8), node: idx });
      }
    }
    // Ties (practically impossible at 64 bits) are broken by node id so every node agrees.
    entries.sort((a, b) => (a.pos < b.pos ? -1 : a.pos > b.pos ? 1 : ids[a.node] < ids[b.node] ? -1 : 1));
    this.tokens = new BigUint64Array(entries.length);
    this.owners = new Int32Array(entries.length);
    for (let i = 0; i < entries.length; i++) {
      this.tokens[i] = entries[i].pos;
      this.owners[i] = entries[i].node;
    }
    this.nodeIds = ids;
    this.zoneOf = Int32Array.from(zoneOf);
    this.zoneCount = zones.size;
    this.nodeMark = new Int32Array(ids.length);
    this.zoneMark = new Int32Array(zones.size);
  }

  get version(): number {
    return this.layout.version;
  }

  /** The index of the first token at or after `pos`, wrapping to 0; -1 on an empty ring. */
  successorIndex(pos: bigint): number {
    const t = this.tokens;
    if (t.length === 0) return -1;
    let lo = 0;
    let hi = t.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (t[mid] < pos) lo = mid + 1;
      else hi = mid;
    }
    return lo === t.length ? 0 : lo;
  }

  /** The R nodes (fewer when the ring has fewer) that hold `key`, primary first. */
  preferenceList(key: string | Uint8Array, r: number): readonly string[] {
    return this.preferenceListAt(keyPosition(key), r);
  }

  preferenceListAt(pos: bigint, r: number): readonly string[] {
    checkReplicas(r);
    const i = this.successorIndex(pos);
    if (i < 0) return [];
    return this.listsFor(r)[i];
  }

  /** The list for every token; keys in (tokens[i-1], tokens[i]] share list i. */
  listsFor(r: number): (readonly string[])[] {
    checkReplicas(r);
    let lists = this.lists.get(r);
    if (!lists) {
      lists = new Array(this.tokens.length);
      for (let i = 0; i < this.tokens.length; i++) lists[i] = Object.freeze(this.walk(i, r));
      this.lists.set(r, lists);
    }
    return lists;
  }

  private walk(start: number, r: number): string[] {
    const n = this.tokens.length;
    const wantZones = Math.min(r, this.zoneCount);
    const wantNodes = Math.min(r, this.nodeIds.length);
    const picked: number[] = [];
    const skipped: number[] = [];
    // Stamps instead of fresh sets: one walk per token makes allocation the main cost.
    const stamp = ++this.stamp;
    for (let step = 0; step < n; step++) {
      if (picked.length === wantZones && picked.length + skipped.length >= wantNodes) break;
      const node = this.owners[(start + step) % n];
      if (this.nodeMark[node] === stamp) continue;
      this.nodeMark[node] = stamp;
      const zone = this.zoneOf[node];
      if (picked.length < wantZones && this.zoneMark[zone] !== stamp) {
        this.zoneMark[zone] = stamp;
        picked.push(node);
      } else {
        skipped.push(node);
      }
    }
    const out = picked.map((x) => this.nodeIds[x]);
    for (let j = 0; out.length < wantNodes && j < skipped.length; j++) out.push(this.nodeIds[skipped[j]]);
    return out;
  }

  /**
   * Each node's exact share of the key space over its R-replica lists (fractions of the ring;
   * they sum to min(R, nodes)). With R = 1 this is the primary share.
   */
  ownership(r: number): Map<string, number> {
    const lists = this.listsFor(r);
    const sums = new Map<string, bigint>(this.nodeIds.map((id) => [id, 0n]));
    const n = this.tokens.length;
    for (let i = 0; i < n; i++) {
      const prev = this.tokens[(i + n - 1) % n];
      // One token owns the whole ring (distance 0 means a full turn).
      const len = n === 1 ? RING_SIZE : ringDistance(prev, this.tokens[i]);
      for (const id of lists[i]) sums.set(id, (sums.get(id) ?? 0n) + len);
    }
    const out = new Map<string, number>();
    for (const [id, s] of sums) out.set(id, Number(s) / Number(RING_SIZE));
    return out;
  }
}

/** A range of keys (start, end] whose preference list differs between two layouts. */
export interface MovedRange {
  /** Exclusive. */
  readonly start: bigint;
  /** Inclusive; start === end means the whole ring. */
  readonly end: bigint;
  readonly from: readonly string[];
  readonly to: readonly string[];
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The key ranges whose R-replica preference list changes from `before` to `after` (any change,
 * order included: the first node is the primary). Adjacent ranges with the same change are
 * merged. Both rings should be built with the same options; layouts are passed as rings so a
 * caller holding them does not rebuild them.
 */
export function movedRanges(
  before: Ring | Layout,
  after: Ring | Layout,
  r: number,
  options: RingOptions = {},
): MovedRange[] {
  const a = before instanceof Ring ? before : new Ring(before, options);
  const b = after instanceof Ring ? after : new Ring(after, options);
  checkReplicas(r);
  const bounds = mergeBounds(a.tokens, b.tokens);
  if (bounds.length === 0) return [];
  const la = a.tokens.length ? a.listsFor(r) : [];
  const lb = b.tokens.length ? b.listsFor(r) : [];
  const none: readonly string[] = [];
  // Two cursors walk both token arrays along the merged boundaries instead of a search per bound.
  let ia = 0;
  let ib = 0;
  const pieces: MovedRange[] = [];
  for (let k = 0; k < bounds.length; k++) {
    const end = bounds[k];
    const start = bounds[(k + bounds.length - 1) % bounds.length];
    while (ia < a.tokens.length && a.tokens[ia] < end) ia++;
    while (ib < b.tokens.length && b.tokens[ib] < end) ib++;
    const from = a.tokens.length ? la[ia === a.tokens.length ? 0 : ia] : none;
    const to = b.tokens.length ? lb[ib === b.tokens.length ? 0 : ib] : none;
    if (sameList(from, to)) continue;
    const last = pieces[pieces.length - 1];
    if (last && last.end === start && sameList(last.from, from) && sameList(last.to, to)) {
      pieces[pieces.length - 1] = { start: last.start, end, from, to };
    } else {
      pieces.push({ start, end, from, to });
    }
  }
  // The range that wraps past zero may be split into a last and a first piece.
  if (pieces.length > 1) {
    const first = pieces[0];
    const last = pieces[pieces.length - 1];
    if (last.end === first.start && sameList(last.from, first.from) && sameList(last.to, first.to)) {
      pieces[0] = { start: last.start, end: first.end, from: first.from, to: first.to };
      pieces.pop();
    }
  }
  return pieces;
}

function mergeBounds(x: BigUint64Array, y: BigUint64Array): bigint[] {
  const out: bigint[] = [];
  let i = 0;
  let j = 0;
  while (i < x.length || j < y.length) {
    let v: bigint;
    if (j >= y.length || (i < x.length && x[i] <= y[j])) v = x[i++];
    else v = y[j++];
    if (out.length === 0 || out[out.length - 1] !== v) out.push(v);
  }
  return out;
}
