/**
 * What the simulated network does to a message between two addresses: loss, delay drawn from a
 * distribution, occasional extra delay (reordering), duplication, and cuts (partitions), which
 * may be symmetric or one-way and apply between sets of nodes.
 */
import type { SeededRandom } from '../random.js';

export type Address = string;

/** A delay distribution in virtual milliseconds. */
export type DelayModel = (random: SeededRandom) => number;

export const delays = {
  constant:
    (ms: number): DelayModel =>
    () =>
      ms,
  uniform:
    (min: number, max: number): DelayModel =>
    (r) =>
      min + r.next() * (max - min),
  /** A floor plus an exponential tail: most messages near `min`, a few much later. */
  exponential:
    (min: number, mean: number): DelayModel =>
    (r) =>
      min + r.exponential(mean),
};

export interface NetworkOptions {
  /** Probability that a message is lost. Default 0. */
  loss?: number;
  /** One-way delay. Default: 0.2 ms plus an exponential tail of mean 0.3 ms (a LAN). */
  delay?: DelayModel;
  /** Probability that a message is delivered twice (the copy with its own delay). Default 0. */
  duplicate?: number;
  /** Probability that a message is held back by `reorderDelay` more, overtaken by later ones. Default 0. */
  reorder?: number;
  /** Extra delay of a reordered message, in ms. Default 20. */
  reorderDelay?: number;
}

/** One cut: messages from any node of `from` to any node of `to` are dropped. */
export interface Cut {
  readonly from: ReadonlySet<Address>;
  readonly to: ReadonlySet<Address>;
}

export class NetworkModel {
  loss: number;
  delay: DelayModel;
  duplicate: number;
  reorder: number;
  reorderDelay: number;
  private readonly cuts = new Set<Cut>();
  private readonly linkLoss = new Map<string, number>();
  /** Extra delay on every message to or from a node (a slow host or a long cable). */
  private readonly nodeDelay = new Map<Address, number>();

  constructor(opts: NetworkOptions = {}) {
    this.loss = opts.loss ?? 0;
    this.delay = opts.delay ?? delays.exponential(0.2, 0.3);
    this.duplicate = opts.duplicate ?? 0;
    this.reorder = opts.reorder ?? 0;
    this.reorderDelay = opts.reorderDelay ?? 20;
  }

  /**
   * Cuts the links between two sets of nodes: both directions, or only from `a` to `b` when
   * `oneWay`. Returns the cut(s), to heal one without healing the others.
   */
  partition(a: Iterable<Address>, b: Iterable<Address>, opts: { oneWay?: boolean } = {}): Cut[] {
    const sa = new Set(a);
    const sb = new Set(b);
    const made: Cut[] = [{ from: sa, to: sb }];
    if (!opts.oneWay) made.push({ from: sb, to: sa });
    for (const c of made) this.cuts.add(c);
    return made;
  }

  /** Heals the given cuts, or every cut. */
  heal(cuts?: readonly Cut[]): void {
    if (!cuts) this.cuts.clear();
    else for (const c of cuts) this.cuts.delete(c);
  }

  /** Loss on one directed link, on top of the global loss. */
  setLinkLoss(from: Address, to: Address, p: number): void {
    if (p <= 0) this.linkLoss.delete(`${from}\n${to}`);
    else this.linkLoss.set(`${from}\n${to}`, p);
  }

  setNodeDelay(node: Address, ms: number): void {
    if (ms <= 0) this.nodeDelay.delete(node);
    else this.nodeDelay.set(node, ms);
  }

  blocked(from: Address, to: Address): boolean {
    for (const c of this.cuts) if (c.from.has(from) && c.to.has(to)) return true;
    return false;
  }

  /**
   * The delays at which copies of one message arrive: none when it is lost or cut, two when
   * duplicated. Draws from `random` in a fixed order, so the fate of a message is a function of
   * the seed and of what came before.
   */
  fate(from: Address, to: Address, random: SeededRandom): number[] {
    if (this.blocked(from, to)) return [];
    if (random.chance(this.loss)) return [];
    if (this.linkLoss.size > 0 && random.chance(this.linkLoss.get(`${from}\n${to}`) ?? 0)) return [];
    const extra = (this.nodeDelay.get(from) ?? 0) + (this.nodeDelay.get(to) ?? 0);
    const one = () =>
      Math.max(0, this.delay(random)) + extra + (random.chance(this.reorder) ? this.reorderDelay : 0);
    const first = one();
    return random.chance(this.duplicate) ? [first, one()] : [first];
  }
}
