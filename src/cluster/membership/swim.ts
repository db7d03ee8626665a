/**
 * SWIM membership as a sans-IO state machine (Das, Gupta, Motivala 2002) with the Lifeguard
 * refinements (Dadgar et al. 2018): no timers, sockets or clocks inside. A driver calls
 * `receive(from, packet)` for each packet and `tick()` when `nextDeadline()` comes; the core sends
 * through the injected Transport and reads the injected Clock and Random. The same object runs in
 * the simulator and in a real node.
 *
 * Per-member state lives in parallel typed arrays indexed by a small slot number (slot 0 is this
 * node), with one Map from the 16-byte id to the slot, and there are no per-member timers: the few
 * deadlines (the current probe, suspicions, relayed probes) are scanned on tick. That keeps 2,000
 * full views of 2,000 members in one simulator process.
 */

import { CairnError } from '../../errors.js';
import { failpoint } from '../../failpoints.js';
import {
  SWIM_ACK,
  SWIM_ALIVE,
  SWIM_DEAD,
  SWIM_GOSSIP,
  SWIM_ID_SIZE,
  SWIM_LEFT,
  SWIM_NACK,
  SWIM_PIGGYBACK_MAX,
  SWIM_PING,
  SWIM_PING_REQ,
  SWIM_PUSH_PULL,
  SWIM_SUSPECT,
  type swim_body,
  type swim_packet,
  type swim_state,
  type swim_update,
} from '../gen/membership.js';
import {
  pushPullPeriod,
  retransmitLimit,
  type SwimConfig,
  suspicionConfirmations,
  suspicionMinTimeout,
  suspicionTimeout,
  swimConfig,
} from './config.js';
import type { Address, Clock, IncarnationStore, Random, Transport } from './env.js';

export type MemberState = 'alive' | 'suspect' | 'dead' | 'left';
/** Failpoint (src/failpoints.ts): a broken build that skips suspicion. */
const DEAD_ON_FIRST_MISS = failpoint('membership.dead-on-first-miss');
const STATE_NAMES: readonly MemberState[] = ['alive', 'suspect', 'dead', 'left'];

export interface MemberView {
  id: Uint8Array;
  addr: Address;
  incarnation: number;
  state: MemberState;
  meta: Uint8Array;
  /** The member's own local-health score, as it last reported in an ACK (0 = healthy). */
  health: number;
  /** When (on the injected clock) the state last changed. */
  since: number;
}

export type MembershipEvent =
  | { type: 'join' | 'alive' | 'suspect' | 'dead' | 'leave' | 'update'; member: MemberView }
  /** This node's own local-health score changed (Lifeguard's LHM; 0 = healthy). */
  | { type: 'health'; score: number };

export type MembershipListener = (event: MembershipEvent) => void;

export interface SwimOptions {
  id: Uint8Array;
  addr: Address;
  clock: Clock;
  random: Random;
  transport: Transport;
  config?: Partial<SwimConfig>;
  meta?: Uint8Array;
  /** Keeps this node's incarnation across restarts; see IncarnationStore. */
  store?: IncarnationStore;
}

export class SwimError extends CairnError {}

/** Counters for benchmarks and the dashboard. */
export interface SwimCounters {
  probes: number;
  probesFailed: number;
  indirectProbes: number;
  suspicions: number;
  refutations: number;
  deathsDeclared: number;
  packetsSent: number;
  packetsReceived: number;
  updatesApplied: number;
}

interface Suspicion {
  incarnation: number;
  start: number;
  /** Keys of the independent accusers counted so far (the first one included). */
  accusers: string[];
  k: number;
  min: number;
  max: number;
  deadline: number;
}

interface Probe {
  slot: number;
  id: Uint8Array;
  seq: number;
  start: number;
  directDeadline: number;
  end: number;
  acked: boolean;
  indirect: boolean;
  expectedNacks: number;
  nacks: number;
}

/** A probe this node makes for another (the intermediary of a PING-REQ). */
interface Relay {
  requester: Address;
  requesterSeq: number;
  nackAt: number;
  nacked: boolean;
  expires: number;
}

interface Broadcast {
  update: swim_update;
  size: number;
  transmits: number;
  order: number;
}

const ZERO_META = new Uint8Array(0);
const keyCache = new WeakMap<Uint8Array, string>();

/**
 * A Map key for a 16-byte id. Cached per id object: in the simulator, where every node sees the
 * same id objects, the views of 2,000 nodes then share 2,000 strings.
 */
export function idKey(id: Uint8Array): string {
  let k = keyCache.get(id);
  if (k === undefined) {
    k = String.fromCharCode(...id);
    keyCache.set(id, k);
  }
  return k;
}

export function idHex(id: Uint8Array): string {
  return Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('hex');
}

function pad4(n: number): number {
  return (n + 3) & ~3;
}

/** The XDR size of one update, to fill a datagram's piggyback budget without encoding. */
function updateSize(u: swim_update): number {
  return SWIM_ID_SIZE * 2 + 4 + pad4(u.addr.length) + 4 + 4 + 4 + pad4(u.meta.length);
}

export class Swim {
  readonly id: Uint8Array;
  readonly addr: Address;
  readonly config: SwimConfig;
  readonly counters: SwimCounters = {
    probes: 0,
    probesFailed: 0,
    indirectProbes: 0,
    suspicions: 0,
    refutations: 0,
    deathsDeclared: 0,
    packetsSent: 0,
    packetsReceived: 0,
    updatesApplied: 0,
  };

  private readonly clock: Clock;
  private readonly random: Random;
  private readonly transport: Transport;
  private readonly store: IncarnationStore | undefined;
  private readonly listeners: MembershipListener[] = [];
  private readonly selfKey: string;

  // Members, struct-of-arrays by slot.
  private readonly slots = new Map<string, number>();
  private ids: Uint8Array[] = [];
  private addrs: Address[] = [];
  private metas: Uint8Array[] = [];
  private inc = new Uint32Array(16);
  private state = new Uint8Array(16);
  private health = new Uint8Array(16);
  private since = new Float64Array(16);
  private freeSlots: number[] = [];
  private used = 0;
  /** Members in state alive or suspect, excluding this node: probe targets and helpers. */
  private live: number[] = [];
  private livePos = new Int32Array(16).fill(-1);
  /** Alive + suspect + this node: N for the timing formulas. */
  private liveCount = 1;
  private failedCount = 0;

  private incarnation = 0;
  private awareness = 0;
  private leaving = false;
  private started = false;

  private probeOrder: number[] = [];
  private probeIndex = 0;
  private probe: Probe | undefined;
  private nextProbeAt = 0;
  private seq = 0;
  private readonly relays = new Map<number, Relay>();
  private readonly suspicions = new Map<number, Suspicion>();
  private readonly broadcasts = new Map<number, Broadcast>();
  private broadcastOrder = 0;
  private nextGossipAt = 0;
  private nextPushPullAt = 0;
  private nextReconnectAt = 0;
  private nextReclaimAt = 0;
  private joinSeeds: Address[] = [];
  private joined = false;
  private nextJoinAt = Number.POSITIVE_INFINITY;
  private readonly hintedAt = new Map<number, number>();

  constructor(opts: SwimOptions) {
    if (opts.id.length !== SWIM_ID_SIZE) throw new SwimError('SWIM_ID', `node ids are ${SWIM_ID_SIZE} bytes`);
    this.id = opts.id;
    this.addr = opts.addr;
    this.clock = opts.clock;
    this.random = opts.random;
    this.transport = opts.transport;
    this.store = opts.store;
    this.config = swimConfig(opts.config);
    this.selfKey = idKey(opts.id);
    const persisted = this.store?.load();
    // A restarted process starts above anything its previous life may have said about itself.
    if (persisted !== undefined) this.incarnation = (persisted + 1) >>> 0;
    const self = this.allocate(opts.id);
    this.addrs[self] = opts.addr;
    this.metas[self] = opts.meta ?? ZERO_META;
    this.inc[self] = this.incarnation;
    this.state[self] = SWIM_ALIVE;
    this.since[self] = this.clock.now();
    this.store?.save(this.incarnation);
  }

  on(listener: MembershipListener): void {
    this.listeners.push(listener);
  }

  /** Starts probing and gossiping; `seeds` are addresses to join through (none for the first node). */
  start(seeds: readonly Address[] = []): void {
    const now = this.clock.now();
    this.started = true;
    // Spread the first probe, push-pull and gossip of nodes started together.
    this.nextProbeAt = now + this.random.next() * this.config.probeInterval;
    this.nextGossipAt = now + this.random.next() * this.config.gossipInterval;
    this.nextPushPullAt = now + this.pushPullDelay();
    this.nextReconnectAt = now + this.config.reconnectInterval * (0.5 + this.random.next());
    this.nextReclaimAt = now + this.config.deadRetention / 4;
    this.joinSeeds = seeds.filter((s) => s !== this.addr);
    if (this.joinSeeds.length > 0) {
      this.joined = false;
      this.sendJoin();
    } else this.joined = true;
  }

  /**
   * Adds members known from elsewhere as alive, without a round of joins: a converged view for
   * large simulations, or a view restored from disk by a real node.
   */
  bootstrap(
    members: readonly { id: Uint8Array; addr: Address; incarnation?: number; meta?: Uint8Array }[],
  ): void {
    const now = this.clock.now();
    for (const m of members) {
      if (idKey(m.id) === this.selfKey || this.slots.has(idKey(m.id))) continue;
      const s = this.allocate(m.id);
      this.addrs[s] = m.addr;
      this.metas[s] = m.meta ?? ZERO_META;
      this.inc[s] = m.incarnation ?? 0;
      this.state[s] = SWIM_ALIVE;
      this.since[s] = now;
      this.addLive(s);
    }
    this.joined = true;
  }

  /** Announces a graceful leave. Keep driving the core until `leaveSent()`, then stop it. */
  leave(): void {
    if (this.leaving) return;
    this.leaving = true;
    this.state[0] = SWIM_LEFT;
    this.since[0] = this.clock.now();
    const u = this.updateOf(0, this.id);
    this.enqueue(0, u);
    // Tell a few members at once rather than wait for the next probe to carry it.
    for (const s of this.randomLive(Math.max(3, this.config.gossipFanout), -1)) {
      this.sendPacket(this.addrs[s], { kind: SWIM_GOSSIP }, [u]);
    }
  }

  /** Whether the leave announcement has been piggybacked as often as any update would be. */
  leaveSent(): boolean {
    return this.leaving && !this.broadcasts.has(0);
  }

  /** Changes this node's metadata and spreads it (a new incarnation, as any change of self). */
  setMeta(meta: Uint8Array): void {
    this.metas[0] = meta;
    this.bumpIncarnation(this.incarnation + 1);
  }

  get localHealth(): number {
    return this.awareness;
  }

  get selfIncarnation(): number {
    return this.incarnation;
  }

  /** Members in state alive or suspect, this node included. */
  get size(): number {
    return this.liveCount;
  }

  member(id: Uint8Array): MemberView | undefined {
    const s = this.slots.get(idKey(id));
    return s === undefined ? undefined : this.view(s);
  }

  /** State of a member by id, without building a view (for large simulations). */
  stateOf(id: Uint8Array): MemberState | undefined {
    const s = this.slots.get(idKey(id));
    return s === undefined ? undefined : STATE_NAMES[this.state[s]];
  }

  incarnationOf(id: Uint8Array): number | undefined {
    const s = this.slots.get(idKey(id));
    return s === undefined ? undefined : this.inc[s];
  }

  members(): MemberView[] {
    const out: MemberView[] = [];
    for (const s of this.slots.values()) out.push(this.view(s));
    return out;
  }

  /** The earliest time at which `tick()` has something to do. */
  nextDeadline(): number {
    if (!this.started) return Number.POSITIVE_INFINITY;
    let t = Math.min(this.nextProbeAt, this.nextPushPullAt, this.nextReconnectAt, this.nextReclaimAt);
    const p = this.probe;
    if (p && !p.acked && !p.indirect && p.directDeadline < t) t = p.directDeadline;
    if (this.config.gossipInterval > 0 && this.broadcasts.size > 0 && this.nextGossipAt < t)
      t = this.nextGossipAt;
    if (!this.joined && this.nextJoinAt < t) t = this.nextJoinAt;
    for (const sus of this.suspicions.values()) if (sus.deadline < t) t = sus.deadline;
    for (const r of this.relays.values()) {
      const due = r.nacked ? r.expires : r.nackAt;
      if (due < t) t = due;
    }
    return t;
  }

  tick(): void {
    if (!this.started) return;
    const now = this.clock.now();
    const c = this.config;

    const p = this.probe;
    if (p && !p.acked && !p.indirect && now >= p.directDeadline && now < p.end) this.sendIndirect(p);
    if (now >= this.nextProbeAt) {
      if (p && !p.acked) this.probeFailed(p);
      this.probe = undefined;
      this.startProbe(now);
    }

    for (const [slot, sus] of this.suspicions) {
      if (now >= sus.deadline) this.declareDead(slot, sus.incarnation);
    }

    for (const [seq, r] of this.relays) {
      if (now >= r.expires) this.relays.delete(seq);
      else if (!r.nacked && now >= r.nackAt) {
        r.nacked = true;
        if (c.nacks) this.sendPacket(r.requester, { kind: SWIM_NACK, nack: { seq: r.requesterSeq } });
      }
    }

    if (c.gossipInterval > 0 && now >= this.nextGossipAt) {
      this.nextGossipAt = now + c.gossipInterval;
      if (this.broadcasts.size > 0) {
        for (const s of this.randomLive(c.gossipFanout, -1))
          this.sendPacket(this.addrs[s], { kind: SWIM_GOSSIP });
      }
    }

    if (now >= this.nextPushPullAt) {
      this.nextPushPullAt = now + this.pushPullDelay();
      const [s] = this.randomLive(1, -1);
      if (s !== undefined) this.sendPushPull(this.addrs[s], false, false);
    }

    if (now >= this.nextReconnectAt) {
      this.nextReconnectAt = now + c.reconnectInterval;
      // A partition that healed leaves both sides believing the other dead; nobody probes the
      // dead, so one side must reach out for the views to merge.
      const s = this.randomFailed();
      if (s !== undefined) this.sendPushPull(this.addrs[s], false, false);
      else if (this.liveCount === 1 && this.joinSeeds.length > 0) this.sendJoin();
    }

    if (!this.joined && now >= this.nextJoinAt) this.sendJoin();

    if (now >= this.nextReclaimAt) {
      this.nextReclaimAt = now + c.deadRetention / 4;
      this.reclaim(now);
    }
  }

  receive(from: Address, packet: swim_packet): void {
    if (!this.started) return;
    this.counters.packetsReceived++;
    const now = this.clock.now();
    // Updates first: an ACK's piggyback may carry the refutation its sender wants us to see.
    for (const u of packet.gossip) this.apply(u, false);
    const body = packet.body;
    switch (body.kind) {
      case SWIM_PING:
        if (idKey(body.ping.target) !== this.selfKey) return; // meant for an earlier node at this address
        this.sendPacket(from, { kind: SWIM_ACK, ack: { seq: body.ping.seq, health: this.awareness } });
        break;
      case SWIM_ACK:
        this.onAck(body.ack.seq, body.ack.health, now);
        break;
      case SWIM_NACK: {
        const p = this.probe;
        if (p && body.nack.seq === p.seq) p.nacks++;
        break;
      }
      case SWIM_PING_REQ: {
        const seq = this.nextSeq();
        this.relays.set(seq, {
          requester: from,
          requesterSeq: body.ping_req.seq,
          // Lifeguard: NACK before the requester's own deadline, so it can still count it.
          nackAt: now + this.config.probeTimeout * 0.8,
          nacked: false,
          expires: now + this.config.probeInterval * (this.config.maxLocalHealth + 1),
        });
        this.sendPacket(body.ping_req.target_addr, {
          kind: SWIM_PING,
          ping: { seq, target: body.ping_req.target },
        });
        break;
      }
      case SWIM_PUSH_PULL: {
        const pp = body.push_pull;
        for (const u of pp.states) this.apply(u, true);
        if (!pp.reply) this.sendPushPull(from, true, false);
        else if (!this.joined) {
          this.joined = true;
          this.nextJoinAt = Number.POSITIVE_INFINITY;
        }
        break;
      }
      case SWIM_GOSSIP:
        break;
    }
    this.hintSender(packet.from, from, now);
  }

  // ---- probing ----

  private startProbe(now: number): void {
    const c = this.config;
    const scale = this.awareness + 1;
    this.nextProbeAt = now + c.probeInterval * scale;
    if (this.leaving) return;
    const slot = this.nextTarget();
    if (slot === undefined) return;
    const seq = this.nextSeq();
    this.counters.probes++;
    this.probe = {
      slot,
      id: this.ids[slot],
      seq,
      start: now,
      directDeadline: now + c.probeTimeout * scale,
      end: this.nextProbeAt,
      acked: false,
      indirect: false,
      expectedNacks: 0,
      nacks: 0,
    };
    this.sendPacket(this.addrs[slot], { kind: SWIM_PING, ping: { seq, target: this.ids[slot] } });
  }

  /** Randomized round-robin: every member once per pass, in a fresh random order each pass. */
  private nextTarget(): number | undefined {
    for (let tries = 0; tries < 2; tries++) {
      while (this.probeIndex < this.probeOrder.length) {
        const s = this.probeOrder[this.probeIndex++];
        if (this.livePos[s] >= 0) return s;
      }
      this.probeOrder = this.live.slice();
      this.shuffle(this.probeOrder);
      this.probeIndex = 0;
    }
    return undefined;
  }

  private sendIndirect(p: Probe): void {
    p.indirect = true;
    const k = this.config.indirectChecks;
    if (k === 0) return;
    const helpers = this.randomLive(k, p.slot, true);
    this.counters.indirectProbes += helpers.length;
    p.expectedNacks = this.config.nacks ? helpers.length : 0;
    for (const h of helpers) {
      this.sendPacket(this.addrs[h], {
        kind: SWIM_PING_REQ,
        ping_req: { seq: p.seq, target: p.id, target_addr: this.addrs[p.slot] },
      });
    }
  }

  private onAck(seq: number, health: number, _now: number): void {
    const relay = this.relays.get(seq);
    if (relay) {
      this.relays.delete(seq);
      this.sendPacket(relay.requester, { kind: SWIM_ACK, ack: { seq: relay.requesterSeq, health } });
      return;
    }
    const p = this.probe;
    if (!p || p.seq !== seq || p.acked) return;
    p.acked = true;
    const s = this.slots.get(idKey(p.id));
    if (s !== undefined) this.health[s] = Math.min(255, health);
    this.adjustAwareness(-1);
  }

  private probeFailed(p: Probe): void {
    this.counters.probesFailed++;
    // Lifeguard: helpers that did not even NACK point at our own network or CPU, not the target.
    const missing = p.expectedNacks > 0 ? p.expectedNacks - p.nacks : 1;
    if (missing > 0) this.adjustAwareness(missing);
    const s = this.slots.get(idKey(p.id));
    if (s === undefined || s !== p.slot) return;
    const st = this.state[s];
    if (st !== SWIM_ALIVE && st !== SWIM_SUSPECT) return;
    if (this.config.suspicionMult === 0 || DEAD_ON_FIRST_MISS) {
      this.declareDead(s, this.inc[s]);
      return;
    }
    this.apply(
      {
        id: p.id,
        addr: this.addrs[s],
        incarnation: this.inc[s],
        state: SWIM_SUSPECT,
        from: this.id,
        meta: ZERO_META,
      },
      false,
    );
  }

  private adjustAwareness(delta: number): void {
    const next = Math.max(0, Math.min(this.config.maxLocalHealth - 1, this.awareness + delta));
    if (next === this.awareness) return;
    this.awareness = next;
    this.emit({ type: 'health', score: next });
  }

  // ---- the rules of incarnation numbers ----

  /**
   * Applies one claim about a member. `viaPushPull`: a DEAD in a full-state exchange counts only as
   * a suspicion (memberlist's rule), so that one stale view cannot kill members that are fine;
   * they get the chance to refute.
   */
  private apply(u: swim_update, viaPushPull: boolean): void {
    const key = idKey(u.id);
    if (key === this.selfKey) {
      this.applyAboutSelf(u);
      return;
    }
    const slot = this.slots.get(key);
    if (slot === undefined) {
      // News of the death of a stranger is not worth remembering; a suspect stranger is alive.
      if (u.state === SWIM_DEAD || u.state === SWIM_LEFT) return;
      const s = this.allocate(u.id);
      this.addrs[s] = u.addr;
      this.metas[s] = u.meta;
      this.inc[s] = u.incarnation;
      this.state[s] = SWIM_ALIVE;
      this.since[s] = this.clock.now();
      this.addLive(s);
      this.insertIntoProbeOrder(s);
      this.counters.updatesApplied++;
      const alive = u.state === SWIM_ALIVE ? u : { ...u, state: SWIM_ALIVE as swim_state };
      this.enqueue(s, alive);
      this.emit({ type: 'join', member: this.view(s) });
      if (u.state === SWIM_SUSPECT) this.apply(u, viaPushPull);
      return;
    }
    const cur = this.state[slot];
    const curInc = this.inc[slot];
    switch (u.state) {
      case SWIM_ALIVE: {
        if (u.incarnation <= curInc) return;
        this.inc[slot] = u.incarnation;
        const addrChanged = this.addrs[slot] !== u.addr;
        this.addrs[slot] = u.addr;
        this.metas[slot] = u.meta;
        this.suspicions.delete(slot);
        this.enqueue(slot, u);
        this.counters.updatesApplied++;
        if (cur === SWIM_ALIVE) {
          this.emit({ type: 'update', member: this.view(slot) });
          return;
        }
        this.setState(slot, SWIM_ALIVE);
        if (addrChanged) this.insertIntoProbeOrder(slot);
        this.emit({ type: cur === SWIM_SUSPECT ? 'alive' : 'join', member: this.view(slot) });
        return;
      }
      case SWIM_SUSPECT:
        this.applySuspect(slot, u);
        return;
      case SWIM_DEAD:
      case SWIM_LEFT: {
        if (viaPushPull && u.state === SWIM_DEAD) {
          this.applySuspect(slot, { ...u, state: SWIM_SUSPECT });
          return;
        }
        if (u.incarnation < curInc) return;
        if (cur === SWIM_LEFT || (cur === SWIM_DEAD && u.state === SWIM_DEAD)) return;
        this.inc[slot] = u.incarnation;
        this.suspicions.delete(slot);
        this.setState(slot, u.state);
        this.enqueue(slot, u);
        this.counters.updatesApplied++;
        this.emit({ type: u.state === SWIM_LEFT ? 'leave' : 'dead', member: this.view(slot) });
        return;
      }
    }
  }

  private applySuspect(slot: number, u: swim_update): void {
    const cur = this.state[slot];
    const curInc = this.inc[slot];
    if (cur === SWIM_DEAD || cur === SWIM_LEFT) return;
    if (u.incarnation < curInc) return;
    const accuser = idKey(u.from);
    const sus = this.suspicions.get(slot);
    if (cur === SWIM_SUSPECT && sus && u.incarnation === sus.incarnation) {
      // Another accuser of the same incarnation: an independent confirmation, which shortens the
      // wait and is itself spread so that others can count it too.
      if (sus.accusers.includes(accuser) || sus.accusers.length > sus.k) return;
      sus.accusers.push(accuser);
      sus.deadline = sus.start + suspicionTimeout(sus.accusers.length - 1, sus.k, sus.min, sus.max);
      this.enqueue(slot, u);
      return;
    }
    if (cur === SWIM_SUSPECT && u.incarnation === curInc && !sus) return;
    const now = this.clock.now();
    const c = this.config;
    const n = this.liveCount;
    const min = suspicionMinTimeout(c.suspicionMult, n, c.probeInterval);
    const max = min * c.suspicionMaxMult;
    const k = suspicionConfirmations(c.suspicionMult, n);
    this.inc[slot] = u.incarnation;
    this.suspicions.set(slot, {
      incarnation: u.incarnation,
      start: now,
      accusers: [accuser],
      k,
      min,
      max,
      deadline: now + suspicionTimeout(0, k, min, max),
    });
    this.counters.suspicions++;
    this.counters.updatesApplied++;
    this.enqueue(slot, u);
    if (cur !== SWIM_SUSPECT) {
      this.setState(slot, SWIM_SUSPECT);
      this.emit({ type: 'suspect', member: this.view(slot) });
    }
  }

  private applyAboutSelf(u: swim_update): void {
    if (this.leaving) return;
    if (u.state === SWIM_ALIVE) {
      // Someone remembers a later incarnation of us than we have: our own, before a restart.
      if (u.incarnation > this.incarnation) this.bumpIncarnation(u.incarnation + 1);
      return;
    }
    if (u.incarnation < this.incarnation) return;
    // Refutation: a suspicion (or death, or a leave we never made) at our current incarnation is
    // answered by a higher one, which overrides it everywhere.
    this.counters.refutations++;
    this.adjustAwareness(1);
    this.bumpIncarnation(u.incarnation + 1);
    // Also straight to the accuser: its suspicion timer is the one running, and gossip alone may
    // reach it only after the timer under heavy loss.
    const accuser = this.slots.get(idKey(u.from));
    if (accuser !== undefined && accuser !== 0 && this.livePos[accuser] >= 0) {
      this.sendPacket(this.addrs[accuser], { kind: SWIM_GOSSIP }, [this.updateOf(0, this.id)]);
    }
  }

  private bumpIncarnation(to: number): void {
    this.incarnation = to >>> 0;
    this.inc[0] = this.incarnation;
    this.store?.save(this.incarnation);
    this.enqueue(0, this.updateOf(0, this.id));
  }

  private declareDead(slot: number, incarnation: number): void {
    this.suspicions.delete(slot);
    const st = this.state[slot];
    if (st === SWIM_DEAD || st === SWIM_LEFT || this.inc[slot] !== incarnation) return;
    this.counters.deathsDeclared++;
    this.setState(slot, SWIM_DEAD);
    this.enqueue(slot, this.updateOf(slot, this.id));
    this.emit({ type: 'dead', member: this.view(slot) });
  }

  // ---- dissemination ----

  private enqueue(slot: number, u: swim_update): void {
    // A newer claim about a member replaces the older one still in the queue.
    this.broadcasts.delete(slot);
    this.broadcasts.set(slot, { update: u, size: updateSize(u), transmits: 0, order: this.broadcastOrder++ });
  }

  /** The updates to piggyback on one packet: least-transmitted first, within the byte budget. */
  private piggyback(): swim_update[] {
    const q = this.broadcasts;
    if (q.size === 0) return [];
    const limit = retransmitLimit(this.config.retransmitMult, this.liveCount);
    let entries: [number, Broadcast][] = [...q];
    if (entries.length > SWIM_PIGGYBACK_MAX || entries.length * 80 > this.config.piggybackBytes) {
      entries = entries.sort((a, b) => a[1].transmits - b[1].transmits || b[1].order - a[1].order);
    }
    const out: swim_update[] = [];
    let budget = this.config.piggybackBytes;
    for (const [slot, b] of entries) {
      if (out.length >= SWIM_PIGGYBACK_MAX) break;
      if (b.size > budget) continue;
      budget -= b.size;
      out.push(b.update);
      if (++b.transmits >= limit) q.delete(slot);
    }
    return out;
  }

  private sendPacket(to: Address, body: swim_body, gossip?: swim_update[]): void {
    this.counters.packetsSent++;
    this.transport.send(to, { from: this.id, body, gossip: gossip ?? this.piggyback() });
  }

  private sendPushPull(to: Address, reply: boolean, join: boolean): void {
    const states: swim_update[] = [];
    for (const s of this.slots.values()) states.push(this.updateOf(s, this.id));
    this.sendPacket(to, { kind: SWIM_PUSH_PULL, push_pull: { reply, join, states } }, []);
  }

  private sendJoin(): void {
    this.nextJoinAt = this.clock.now() + this.config.joinRetryInterval;
    for (const seed of this.joinSeeds) this.sendPushPull(seed, false, true);
  }

  /**
   * A packet from a member we hold as suspect, dead or left: tell it directly, so that it can
   * refute now rather than when gossip happens to reach it (at most once per probe interval).
   */
  private hintSender(fromId: Uint8Array, fromAddr: Address, now: number): void {
    const s = this.slots.get(idKey(fromId));
    if (s === undefined || s === 0) return;
    const st = this.state[s];
    if (st === SWIM_ALIVE || st === SWIM_LEFT) return;
    const last = this.hintedAt.get(s);
    if (last !== undefined && now - last < this.config.probeInterval) return;
    this.hintedAt.set(s, now);
    this.sendPacket(fromAddr, { kind: SWIM_GOSSIP }, [this.updateOf(s, this.id)]);
  }

  // ---- members ----

  private updateOf(slot: number, from: Uint8Array): swim_update {
    return {
      id: this.ids[slot],
      addr: this.addrs[slot],
      incarnation: this.inc[slot],
      state: this.state[slot] as swim_state,
      from,
      meta: this.metas[slot],
    };
  }

  private view(s: number): MemberView {
    return {
      id: this.ids[s],
      addr: this.addrs[s],
      incarnation: this.inc[s],
      state: STATE_NAMES[this.state[s]],
      meta: this.metas[s],
      health: s === 0 ? this.awareness : this.health[s],
      since: this.since[s],
    };
  }

  private emit(e: MembershipEvent): void {
    for (const l of this.listeners) l(e);
  }

  private setState(slot: number, st: number): void {
    const wasLive = this.state[slot] === SWIM_ALIVE || this.state[slot] === SWIM_SUSPECT;
    const isLive = st === SWIM_ALIVE || st === SWIM_SUSPECT;
    this.state[slot] = st;
    this.since[slot] = this.clock.now();
    if (wasLive && !isLive) {
      this.removeLive(slot);
      if (st === SWIM_DEAD) this.failedCount++;
    } else if (!wasLive && isLive) {
      this.addLive(slot);
      this.failedCount = Math.max(0, this.failedCount - 1);
    }
  }

  private allocate(id: Uint8Array): number {
    let s = this.freeSlots.pop();
    if (s === undefined) {
      s = this.used++;
      if (s >= this.inc.length) this.grow();
    }
    this.slots.set(idKey(id), s);
    this.ids[s] = id;
    this.health[s] = 0;
    this.livePos[s] = -1;
    return s;
  }

  private grow(): void {
    const cap = this.inc.length * 2;
    const g = <T extends Uint32Array | Uint8Array | Float64Array | Int32Array>(
      a: T,
      make: (n: number) => T,
    ): T => {
      const b = make(cap);
      b.set(a);
      return b;
    };
    this.inc = g(this.inc, (n) => new Uint32Array(n));
    this.state = g(this.state, (n) => new Uint8Array(n));
    this.health = g(this.health, (n) => new Uint8Array(n));
    this.since = g(this.since, (n) => new Float64Array(n));
    const lp = new Int32Array(cap).fill(-1);
    lp.set(this.livePos);
    this.livePos = lp;
  }

  private addLive(s: number): void {
    if (s === 0 || this.livePos[s] >= 0) return;
    this.livePos[s] = this.live.length;
    this.live.push(s);
    this.liveCount++;
  }

  private removeLive(s: number): void {
    const i = this.livePos[s];
    if (i < 0) return;
    const last = this.live.pop()!;
    if (last !== s) {
      this.live[i] = last;
      this.livePos[last] = i;
    }
    this.livePos[s] = -1;
    this.liveCount--;
  }

  /** A newcomer goes at a random place in the rest of this pass, so it is probed soon but fairly. */
  private insertIntoProbeOrder(s: number): void {
    const lo = this.probeIndex;
    const at = lo + this.random.int(this.probeOrder.length - lo + 1);
    this.probeOrder.splice(at, 0, s);
  }

  /** Up to `n` distinct live members other than `exclude`; `aliveOnly` skips suspects. */
  private randomLive(n: number, exclude: number, aliveOnly = false): number[] {
    const out: number[] = [];
    const len = this.live.length;
    if (len === 0 || n <= 0) return out;
    for (let tries = 0; tries < 3 * n + 3 && out.length < n; tries++) {
      const s = this.live[this.random.int(len)];
      if (s === exclude || out.includes(s)) continue;
      if (aliveOnly && this.state[s] !== SWIM_ALIVE) continue;
      out.push(s);
    }
    return out;
  }

  private randomFailed(): number | undefined {
    if (this.failedCount === 0) return undefined;
    const dead: number[] = [];
    for (const s of this.slots.values()) if (this.state[s] === SWIM_DEAD) dead.push(s);
    return dead.length === 0 ? undefined : dead[this.random.int(dead.length)];
  }

  private reclaim(now: number): void {
    for (const [key, s] of this.slots) {
      const st = this.state[s];
      if ((st === SWIM_DEAD || st === SWIM_LEFT) && now - this.since[s] > this.config.deadRetention) {
        if (st === SWIM_DEAD) this.failedCount = Math.max(0, this.failedCount - 1);
        this.slots.delete(key);
        this.broadcasts.delete(s);
        this.hintedAt.delete(s);
        this.freeSlots.push(s);
      }
    }
  }

  private shuffle(a: number[]): void {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.random.int(i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
  }

  private nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0;
    return this.seq;
  }

  private pushPullDelay(): number {
    const base = pushPullPeriod(this.config.pushPullInterval, this.liveCount);
    return base * (0.5 + this.random.next());
  }
}
