/**
 * Chord (Stoica et al., 2001) as message-passing nodes in the deterministic simulator. Where
 * src/cluster/chord.ts steps every node's routing state in one process and reads liveness from an
 * oracle, here each node knows only its own successor list, predecessor and fingers, learns about
 * others only from messages, and learns that a node is gone only when requests to it go
 * unanswered. Messages cross the simulator's network, so they are delayed, lost and reordered, and
 * nodes crash and restart as the scenario says.
 *
 * Lookups are iterative: the node that starts one asks each hop in turn for its answer, so it
 * alone holds the timer for every request and can route around a hop that does not reply. A reply
 * either names the key's owner (the key lies between the hop and its successor) or lists the hop's
 * best candidates for the next step, farthest first, every one strictly closer to the key. A
 * request that times out is a failed hop: the lookup moves on to the next candidate of the last
 * list, and a list that runs out is tried again a bounded number of times (loss, not death, is the
 * usual reason a request goes unanswered).
 *
 * Maintenance runs on each node's own timers, as the paper's periodic tasks: stabilize
 * (GET_PREDECESSOR to the successor, adopt a closer one, refresh the successor list, NOTIFY),
 * fix-fingers (one pass over the 64 fingers, a lookup only where the previous finger does not
 * already cover the start) and check-predecessor (PING).
 */
import {
  between,
  CHORD_BITS,
  ChordNetwork,
  dist,
  type HopFigures,
  type LookupResult,
  MASK,
} from '../cluster/chord.js';
import { SeededRandom } from '../random.js';
import type { NetworkOptions } from './network.js';
import { type SimEnv, type SimProcess, Simulator } from './simulator.js';

const POW2: readonly bigint[] = Array.from({ length: CHORD_BITS }, (_, i) => 1n << BigInt(i));

export type ChordMsg =
  | { t: 'find'; rid: number; key: bigint }
  /** `owner` when the key lies between the hop and its successor; otherwise `next`, best first. */
  | { t: 'found'; rid: number; owner?: bigint; next?: bigint[] }
  | { t: 'getpred'; rid: number }
  | { t: 'pred'; rid: number; pred: bigint | undefined; succs: bigint[] }
  | { t: 'notify'; id: bigint }
  | { t: 'ping'; rid: number }
  | { t: 'pong'; rid: number };

export interface ChordPeerConfig {
  /** Successor list length r. */
  successors: number;
  stabilizeMs: number;
  fixFingersMs: number;
  checkPredecessorMs: number;
  /** A request unanswered after this long is a failed hop. */
  timeoutMs: number;
  /**
   * Consecutive unanswered requests before a successor or predecessor is taken for dead. One lost
   * request must not drop a live successor: that would hand its keys to the next node.
   */
  failuresToDrop: number;
  /** How many times a lookup walks one candidate list before giving up. */
  lookupPasses: number;
  /** Candidates a hop returns: its farthest useful fingers, then its successors. */
  candidates: number;
  /** Route through a successor when it gets closer than any finger (off: the paper's algorithm). */
  successorShortcut: boolean;
}

export const DEFAULT_CHORD_PEER: ChordPeerConfig = {
  successors: 16,
  stabilizeMs: 50,
  fixFingersMs: 200,
  checkPredecessorMs: 100,
  timeoutMs: 20,
  failuresToDrop: 5,
  lookupPasses: 5,
  candidates: 8,
  successorShortcut: false,
};

/** A lookup's outcome, counted as the model counts it (the origin's own step is free). */
export type SimLookupResult = LookupResult;

export function chordAddress(id: bigint): string {
  return id.toString(16).padStart(16, '0');
}

function idOf(address: string): bigint {
  return BigInt(`0x${address}`);
}

interface Pending {
  timer: number;
  onReply: (m: ChordMsg) => void;
  onTimeout: () => void;
}

/** The routing state a node starts with when it is not joining (a stabilized network). */
export interface ChordInitialState {
  predecessor: bigint | undefined;
  successors: bigint[];
  fingers: (bigint | undefined)[];
}

/** One Chord node: a state machine driven by messages and its own timers. */
export class ChordPeer implements SimProcess<ChordMsg> {
  readonly id: bigint;
  predecessor: bigint | undefined;
  /** Nearest first; empty until the join lookup has answered. */
  successors: bigint[] = [];
  readonly fingers: (bigint | undefined)[] = new Array(CHORD_BITS);
  private readonly pending = new Map<number, Pending>();
  private nextRid = 1;
  private succFailures = 0;
  private predFailures = 0;
  private stabilizing = false;
  private fixing = false;
  /** Lookups this node started and finished, for the cluster's figures. */
  lookupsDone = 0;

  constructor(
    private readonly env: SimEnv<ChordMsg>,
    private readonly cfg: ChordPeerConfig,
    start: { contact?: bigint; state?: ChordInitialState },
  ) {
    this.id = idOf(env.address);
    const now = env.clock.now();
    const jitter = (period: number) => period * env.random.next();
    if (start.state) {
      this.predecessor = start.state.predecessor;
      this.successors = [...start.state.successors];
      for (let i = 0; i < CHORD_BITS; i++) this.fingers[i] = start.state.fingers[i];
      // A network built stabilized needs no repair at once: the first passes come a period later,
      // spread out so that the nodes do not beat in step.
      this.every(now + this.cfg.stabilizeMs + jitter(this.cfg.stabilizeMs), this.cfg.stabilizeMs, () =>
        this.stabilize(),
      );
      this.every(now + this.cfg.fixFingersMs + jitter(this.cfg.fixFingersMs), this.cfg.fixFingersMs, () =>
        this.fixFingers(),
      );
    } else {
      if (start.contact === undefined) this.successors = [this.id];
      else this.join(start.contact);
      this.every(now + jitter(this.cfg.stabilizeMs), this.cfg.stabilizeMs, () => this.stabilize());
      this.every(now + jitter(this.cfg.fixFingersMs), this.cfg.fixFingersMs, () => this.fixFingers());
    }
    this.every(
      now + this.cfg.checkPredecessorMs + jitter(this.cfg.checkPredecessorMs),
      this.cfg.checkPredecessorMs,
      () => this.checkPredecessor(),
    );
  }

  get joined(): boolean {
    return this.successors.length > 0;
  }

  private every(first: number, period: number, fn: () => void): void {
    const run = () => {
      fn();
      this.env.setTimer(this.env.clock.now() + period, run);
    };
    this.env.setTimer(first, run);
  }

  private send(to: bigint, m: ChordMsg): void {
    this.env.transport.send(chordAddress(to), m);
  }

  /** Sends a request and calls exactly one of `onReply` or `onTimeout`. */
  private request(
    to: bigint,
    make: (rid: number) => ChordMsg,
    onReply: (m: ChordMsg) => void,
    onTimeout: () => void,
  ): void {
    const rid = this.nextRid++;
    const timer = this.env.setTimer(this.env.clock.now() + this.cfg.timeoutMs, () => {
      if (this.pending.delete(rid)) onTimeout();
    });
    this.pending.set(rid, { timer, onReply, onTimeout });
    this.send(to, make(rid));
  }

  receive(from: string, m: ChordMsg): void {
    switch (m.t) {
      case 'find': {
        // A node still joining (or just restarted) knows nothing yet; silence is a failed hop.
        if (!this.joined) return;
        const s = this.step(m.key);
        this.env.transport.send(from, { t: 'found', rid: m.rid, ...s });
        return;
      }
      case 'getpred':
        if (!this.joined) return;
        this.env.transport.send(from, {
          t: 'pred',
          rid: m.rid,
          pred: this.predecessor,
          succs: this.successors,
        });
        return;
      case 'notify':
        if (m.id === this.id) return;
        if (this.predecessor === undefined || between(m.id, this.predecessor, this.id)) {
          if (this.predecessor !== m.id) this.predFailures = 0;
          this.predecessor = m.id;
        }
        return;
      case 'ping':
        this.env.transport.send(from, { t: 'pong', rid: m.rid });
        return;
      default: {
        const p = this.pending.get(m.rid);
        if (!p) return; // late: its request already timed out
        this.pending.delete(m.rid);
        this.env.clearTimer(p.timer);
        p.onReply(m);
      }
    }
  }

  /**
   * This node's answer for `key`: the owner when the key lies between it and its successor, else
   * the candidates for the next hop, best (closest preceding the key) first. The farthest finger
   * first is the paper's closest_preceding_node; the successors behind it are fallbacks for when
   * that finger is dead or unreachable.
   */
  step(key: bigint): { owner?: bigint; next?: bigint[] } {
    if (key === this.id) return { owner: this.id };
    const succ = this.successors[0];
    if (between(key, this.id, succ)) return { owner: succ };
    const limit = dist(this.id, key);
    const next: bigint[] = [];
    const fingerSlots = Math.max(1, this.cfg.candidates >> 1);
    let prev: bigint | undefined;
    for (let i = CHORD_BITS - 1; i >= 0 && next.length < fingerSlots; i--) {
      const f = this.fingers[i];
      if (f === undefined || f === prev) continue;
      prev = f;
      const d = dist(this.id, f);
      if (d === 0n || d >= limit) continue;
      if (!next.includes(f)) next.push(f);
    }
    for (let i = this.successors.length - 1; i >= 0 && next.length < this.cfg.candidates; i--) {
      const s = this.successors[i];
      const d = dist(this.id, s);
      if (d === 0n || d >= limit || next.includes(s)) continue;
      next.push(s);
    }
    // The paper routes by fingers alone, so the fingers come first and the successors only behind
    // them as fallbacks; with the shortcut, whichever gets closer to the key goes first.
    if (this.cfg.successorShortcut) {
      next.sort((a, b) => {
        const da = dist(this.id, a);
        const db = dist(this.id, b);
        return da > db ? -1 : da < db ? 1 : 0;
      });
    }
    return { next };
  }

  /**
   * An iterative lookup of `key` from this node. `via` starts it at another node instead of this
   * one's own state (a joining node's contact).
   */
  lookup(key: bigint, done: (r: SimLookupResult) => void, via?: bigint): void {
    let hops = 0;
    let timeouts = 0;
    let list: bigint[];
    let at = 0;
    let passes = 1;
    const finish = (owner: bigint | undefined) => {
      this.lookupsDone++;
      done({ owner, hops, timeouts });
    };
    const next = () => {
      if (hops + timeouts > 4 * CHORD_BITS) return finish(undefined);
      if (at >= list.length) {
        if (passes >= this.cfg.lookupPasses || list.length === 0) return finish(undefined);
        passes++;
        at = 0;
      }
      const target = list[at++];
      this.request(
        target,
        (rid) => ({ t: 'find', rid, key }),
        (m) => {
          if (m.t !== 'found') return finish(undefined);
          hops++;
          if (m.owner !== undefined) return finish(m.owner);
          list = (m.next ?? []).filter((c) => c !== this.id);
          at = 0;
          passes = 1;
          next();
        },
        () => {
          timeouts++;
          next();
        },
      );
    };
    if (via !== undefined) {
      list = [via];
      next();
      return;
    }
    const s = this.step(key);
    if (s.owner !== undefined) {
      finish(s.owner);
      return;
    }
    list = s.next ?? [];
    next();
  }

  private join(contact: bigint): void {
    this.lookup(
      this.id,
      (r) => {
        // Owner is this very id: a stale pointer to this node's previous life; wait for the ring
        // to forget it and try again.
        if (r.owner === undefined || r.owner === this.id) {
          this.env.setTimer(this.env.clock.now() + this.cfg.stabilizeMs, () => this.join(contact));
          return;
        }
        this.successors = [r.owner];
        this.fingers[0] = r.owner;
      },
      contact,
    );
  }

  /** Chord's stabilize: ask the successor for its predecessor and list, adopt, notify. */
  stabilize(): void {
    if (!this.joined || this.stabilizing) return;
    const succ = this.successors[0];
    if (succ === this.id) {
      // Alone: the first node learns of the first joiner as its predecessor (by notify).
      const p = this.predecessor;
      if (p !== undefined && p !== this.id) this.adopt(p, [], true);
      return;
    }
    this.stabilizing = true;
    this.request(
      succ,
      (rid) => ({ t: 'getpred', rid }),
      (m) => {
        this.stabilizing = false;
        if (m.t !== 'pred' || this.successors[0] !== succ) return;
        this.succFailures = 0;
        const x = m.pred;
        if (x !== undefined && x !== this.id && x !== succ && between(x, this.id, succ)) {
          this.adopt(x, [succ, ...m.succs], true);
        } else this.adopt(succ, m.succs, false);
      },
      () => {
        this.stabilizing = false;
        if (this.successors[0] !== succ) return;
        if (++this.succFailures < this.cfg.failuresToDrop) {
          // Ask again now rather than a period later: one lost message must not stall the ring.
          this.stabilize();
          return;
        }
        this.succFailures = 0;
        this.successors.shift();
        // With every successor gone the node is alone until someone notifies it.
        if (this.successors.length === 0) this.successors.push(this.id);
        this.fingers[0] = this.successors[0];
        this.stabilize();
      },
    );
  }

  private adopt(succ: bigint, theirs: readonly bigint[], changed: boolean): void {
    const list = [succ];
    for (const t of theirs) {
      if (list.length >= this.cfg.successors) break;
      if (t === this.id || list.includes(t)) continue;
      list.push(t);
    }
    this.successors = list;
    this.fingers[0] = succ;
    if (changed) this.succFailures = 0;
    this.send(succ, { t: 'notify', id: this.id });
  }

  /**
   * Chord's fix-fingers, all fingers in one pass: finger i is the previous finger when the
   * previous one already covers n + 2^i, else a lookup, one at a time, so a pass costs about
   * log2 N lookups.
   */
  fixFingers(): void {
    if (!this.joined || this.fixing) return;
    this.fixing = true;
    this.fingers[0] = this.successors[0];
    const fix = (i: number) => {
      for (; i < CHORD_BITS; i++) {
        const start = (this.id + POW2[i]) & MASK;
        const prev = this.fingers[i - 1];
        if (prev === undefined || prev === this.id || !between(start, this.id, prev)) break;
        this.fingers[i] = prev;
      }
      if (i >= CHORD_BITS) {
        this.fixing = false;
        return;
      }
      this.lookup((this.id + POW2[i]) & MASK, (r) => {
        if (r.owner !== undefined) this.fingers[i] = r.owner;
        fix(i + 1);
      });
    };
    fix(1);
  }

  /** Chord's check-predecessor: forget a predecessor that does not answer, so notify can replace it. */
  checkPredecessor(): void {
    const p = this.predecessor;
    if (p === undefined || p === this.id) return;
    this.request(
      p,
      (rid) => ({ t: 'ping', rid }),
      () => {
        if (this.predecessor === p) this.predFailures = 0;
      },
      () => {
        if (this.predecessor !== p) return;
        if (++this.predFailures >= this.cfg.failuresToDrop) {
          this.predFailures = 0;
          this.predecessor = undefined;
        } else this.checkPredecessor();
      },
    );
  }
}

export interface ChordClusterOptions {
  n: number;
  seed: number;
  network?: NetworkOptions;
  config?: Partial<ChordPeerConfig>;
  /**
   * 'join': node 0 creates the ring and the others join one by one through a node already in it,
   * `joinEveryMs` apart. 'stabilized': every node starts with the state stabilization converges to
   * (for large N, where N joins would cost more than the measurement).
   */
  start?: 'join' | 'stabilized';
  joinEveryMs?: number;
  recordTrace?: boolean;
}

/** Hop figures as the model reports them (`wrong`: lookups that did not end at the key's true successor), and what only message passing shows. */
export interface SimHopFigures extends HopFigures {
  /** Lookups that found no route at all (counted in `wrong` too). */
  readonly failed: number;
  /** Unanswered requests per lookup. */
  readonly timeoutsPerLookup: number;
  /** Virtual milliseconds from the first lookup's start to the last one's end. */
  readonly elapsedMs: number;
}

/** Bytes a message would take on a wire: a header, 8 per id. For the simulator's byte counters. */
function sizeOf(m: ChordMsg): number {
  switch (m.t) {
    case 'found':
      return 12 + 8 * (m.owner !== undefined ? 1 : (m.next?.length ?? 0));
    case 'pred':
      return 16 + 8 * m.succs.length;
    case 'find':
    case 'notify':
      return 16;
    default:
      return 8;
  }
}

/** N Chord nodes in the simulator, with the ground truth to check them against. */
export class ChordCluster {
  readonly sim: Simulator<ChordMsg>;
  readonly ids: bigint[] = [];
  readonly config: ChordPeerConfig;
  /** Draws for scenarios (keys, origins, which nodes crash): apart from the network's stream. */
  readonly random: SeededRandom;
  private readonly indexOf = new Map<bigint, number>();
  private sorted: BigUint64Array | undefined;
  /** Addresses of the nodes added so far (joins are spread over time). */
  private readonly added = new Set<string>();

  constructor(readonly options: ChordClusterOptions) {
    const r = Math.max(1, Math.min(256, 2 * Math.ceil(Math.log2(Math.max(2, options.n)))));
    this.config = { ...DEFAULT_CHORD_PEER, successors: r, ...options.config };
    this.sim = new Simulator<ChordMsg>({
      seed: options.seed,
      network: options.network,
      sizeOf,
      recordTrace: options.recordTrace,
    });
    this.random = new SeededRandom(options.seed ^ 0xc40d);
    const idRandom = new SeededRandom(options.seed ^ 0x1d5eed);
    while (this.ids.length < options.n) {
      const id = (BigInt(idRandom.nextUint32()) << 32n) | BigInt(idRandom.nextUint32());
      if (this.indexOf.has(id)) continue;
      this.indexOf.set(id, this.ids.length);
      this.ids.push(id);
    }
    if (options.start === 'stabilized') {
      const model = ChordNetwork.stabilized(this.ids, { successors: this.config.successors });
      for (const id of this.ids) {
        const m = model.node(id);
        const state = { predecessor: m.predecessor, successors: m.successors, fingers: m.fingers };
        this.add(id, (env) =>
          env.generation === 1 ? new ChordPeer(env, this.config, { state }) : this.rejoin(env),
        );
      }
    } else {
      const every = options.joinEveryMs ?? 5;
      this.add(this.ids[0], (env) =>
        env.generation === 1 ? new ChordPeer(env, this.config, {}) : this.rejoin(env),
      );
      for (let i = 1; i < options.n; i++) {
        const id = this.ids[i];
        this.sim.at(i * every, () => {
          const contact = this.ids[this.liveIndex(i)];
          this.add(id, (env) =>
            env.generation === 1 ? new ChordPeer(env, this.config, { contact }) : this.rejoin(env),
          );
        });
      }
    }
  }

  private add(id: bigint, factory: (env: SimEnv<ChordMsg>) => ChordPeer): void {
    const addr = chordAddress(id);
    this.sim.addNode(addr, factory);
    this.added.add(addr);
    this.sorted = undefined;
  }

  /** A restarted node has lost its routing state: it joins again through a live node. */
  private rejoin(env: SimEnv<ChordMsg>): ChordPeer {
    const self = this.indexOf.get(idOf(env.address))!;
    return new ChordPeer(env, this.config, { contact: this.ids[this.liveIndex(self)] });
  }

  /** A live node other than `except` (drawn from the scenario stream), as a bootstrap list gives one. */
  private liveIndex(except: number): number {
    const live = this.liveIds();
    for (;;) {
      const id = live[this.random.int(live.length)];
      const i = this.indexOf.get(id)!;
      if (i !== except || live.length === 1) return i;
    }
  }

  peer(i: number): ChordPeer | undefined {
    const addr = chordAddress(this.ids[i]);
    return this.added.has(addr) ? this.sim.process<ChordPeer>(addr) : undefined;
  }

  up(i: number): boolean {
    return this.peer(i) !== undefined;
  }

  crash(i: number): void {
    this.sim.crash(chordAddress(this.ids[i]));
    this.sorted = undefined;
  }

  restart(i: number): void {
    this.sim.restart(chordAddress(this.ids[i]));
    this.sorted = undefined;
  }

  /** Ids of the nodes whose process runs, ascending: the ring lookups must agree with. */
  liveIds(): BigUint64Array {
    if (!this.sorted) {
      const live: bigint[] = [];
      for (const a of this.added) if (this.sim.node(a).status !== 'crashed') live.push(idOf(a));
      this.sorted = BigUint64Array.from(live).sort();
    }
    return this.sorted;
  }

  /** The live node truly responsible for `key`. */
  responsible(key: bigint): bigint {
    const s = this.liveIds();
    return s[successorIndex(s, key)];
  }

  /** Every live node is joined and its successor and predecessor are the true ones. */
  isRingConsistent(): boolean {
    const s = this.liveIds();
    const n = s.length;
    for (let i = 0; i < n; i++) {
      const p = this.sim.process<ChordPeer>(chordAddress(s[i]));
      if (!p?.joined) return false;
      if (p.successors[0] !== s[(i + 1) % n]) return false;
      if (n > 1 && p.predecessor !== s[(i + n - 1) % n]) return false;
    }
    return true;
  }

  /** Every live node's fingers are the true successors of their starts. */
  areFingersExact(): boolean {
    const s = this.liveIds();
    for (const id of s) {
      const p = this.sim.process<ChordPeer>(chordAddress(id));
      if (!p) return false;
      for (let i = 0; i < CHORD_BITS; i++) {
        if (p.fingers[i] !== s[successorIndex(s, (id + POW2[i]) & MASK)]) return false;
      }
    }
    return true;
  }

  /**
   * Starts `count` lookups of random keys from random live nodes, `spacingMs` apart, runs the
   * simulator until every one has finished (maintenance keeps running meanwhile), and checks each
   * answer against the ring of live ids at the moment it finished.
   */
  measure(count: number, spacingMs = 0.05): SimHopFigures {
    const hops = new Uint32Array(count);
    let finished = 0;
    let wrong = 0;
    let failed = 0;
    let timeouts = 0;
    let sum = 0;
    let last = 0;
    const t0 = this.sim.now();
    for (let k = 0; k < count; k++) {
      this.sim.at(t0 + k * spacingMs, () => {
        const live = this.liveIds();
        const from = this.sim.process<ChordPeer>(chordAddress(live[this.random.int(live.length)]))!;
        const key = (BigInt(this.random.nextUint32()) << 32n) | BigInt(this.random.nextUint32());
        from.lookup(key, (r) => {
          if (r.owner === undefined) failed++;
          if (r.owner !== this.responsible(key)) wrong++;
          hops[k] = r.hops;
          sum += r.hops;
          timeouts += r.timeouts;
          finished++;
          last = this.sim.now();
        });
      });
    }
    const limit = t0 + count * spacingMs + 60_000;
    while (finished < count && this.sim.now() < limit) this.sim.runFor(10);
    hops.sort();
    const at = (q: number) => (count ? hops[Math.min(count - 1, Math.ceil(q * count) - 1)] : 0);
    return {
      n: this.liveIds().length,
      lookups: count,
      mean: count ? sum / count : 0,
      p50: at(0.5),
      p99: at(0.99),
      max: count ? hops[count - 1] : 0,
      reference: Math.log2(this.liveIds().length) / 2,
      wrong: wrong + (count - finished),
      failed: failed + (count - finished),
      timeoutsPerLookup: count ? timeouts / count : 0,
      elapsedMs: last - t0,
    };
  }
}

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
