/**
 * The deterministic simulator: one process, virtual time, one seeded random source, a simulated
 * network, and nodes that can be paused (SIGSTOP-like), crashed and restarted. Protocol cores
 * run inside it unchanged, through the small environment each node is given (`SimEnv`): a clock,
 * timers, a random stream, a transport and a disk that survives restarts.
 *
 * Everything that happens is an event in one queue ordered by (virtual time, insertion order), and
 * every random draw comes from streams forked off the seed, so a run is a function of its seed and
 * its scenario: a failing seed replays exactly. `traceHash` folds every event into one number to
 * check that.
 */

import { type ClockSkew, NO_SKEW, skewedClock } from '../clock.js';
import { SeededRandom } from '../random.js';
import { SimDisk } from './disk.js';
import { EventHeap } from './heap.js';
import { type Address, type Cut, NetworkModel, type NetworkOptions } from './network.js';

/** The environment one node's process sees. Structurally what the protocol cores ask for. */
export interface SimEnv<M> {
  readonly address: Address;
  /**
   * The node's monotonic clock (`now`) and wall clock (`wallMs`), on virtual time, running at
   * the node's skew (`Simulator.setSkew`) as CAIRN_CLOCK_SKEW makes a real node's run.
   */
  readonly clock: { now(): number; wallMs(): number };
  readonly random: SeededRandom;
  readonly transport: { send(to: Address, message: M): void };
  /**
   * Runs `fn` when the node's clock reads `at` (not before the node is running again, if it is
   * paused). A node whose clock runs at rate r waits (at − now) / r of virtual time.
   */
  setTimer(at: number, fn: () => void): number;
  clearTimer(id: number): void;
  /** Survives crashes and restarts, as a data directory does; only what was synced survives a power loss. */
  readonly disk: SimDisk;
  /** How many times this node has been started (1 on the first start). */
  readonly generation: number;
}

/** A node's process: receives messages; everything else it arranges through its environment. */
export interface SimProcess<M> {
  receive(from: Address, message: M): void;
}

export type ProcessFactory<M> = (env: SimEnv<M>) => SimProcess<M>;

/** How messages cross the simulated wire. Without it, message objects are handed over as they are. */
export interface WireCodec<M> {
  encode(message: M): Uint8Array;
  decode(bytes: Uint8Array): M;
}

export interface SimulatorOptions<M> {
  seed: number;
  network?: NetworkOptions;
  /**
   * Encode every message at send and decode it at delivery: each receiver gets its own copy, as on
   * a real wire, and byte counts are exact. Costs time; off, messages must be treated as immutable.
   */
  wire?: WireCodec<M>;
  /** Sizes messages for the byte counters when `wire` is off. */
  sizeOf?: (message: M) => number;
  /** Keep a readable line per event (for small runs and for showing where two runs part). */
  recordTrace?: boolean;
  /** Messages queued for a paused node beyond this are dropped, as a full socket buffer does. Default 4096. */
  pausedInboxLimit?: number;
}

export type NodeStatus = 'running' | 'paused' | 'crashed';

/** The wall clock at virtual time 0 (2025-01-01T00:00:00Z): a fixed date, so runs repeat. */
export const SIM_EPOCH_MS = 1_735_689_600_000;

interface Timer {
  id: number;
  fn: () => void;
  epoch: number;
}

interface Inbound<M> {
  from: Address;
  payload: M | Uint8Array;
}

export class SimNode<M> {
  status: NodeStatus = 'running';
  process: SimProcess<M> | undefined;
  /** Bumped on every crash: timers and sends of a dead incarnation of the process are void. */
  epoch = 0;
  generation = 0;
  readonly disk = new SimDisk();
  /** The clock skew the process gets at its next start (a process's clock is set when it starts). */
  skew: ClockSkew = NO_SKEW;
  readonly random: SeededRandom;
  /** Timers that came due while paused, in due order; run first on resume (Node runs timers before I/O). */
  readonly dueWhilePaused: Timer[] = [];
  readonly inbox: Inbound<M>[] = [];
  readonly timers = new Map<number, Timer>();
  sentMessages = 0;
  sentBytes = 0;
  receivedMessages = 0;
  receivedBytes = 0;

  constructor(
    readonly address: Address,
    readonly factory: ProcessFactory<M>,
    random: SeededRandom,
  ) {
    this.random = random;
  }
}

enum Kind {
  Deliver = 0,
  Timer = 1,
  World = 2,
}

interface Ev<M> {
  at: number;
  seq: number;
  kind: Kind;
  node?: SimNode<M>;
  from?: Address;
  payload?: M | Uint8Array;
  size?: number;
  timer?: Timer;
  fn?: () => void;
}

export interface NetStats {
  sent: number;
  delivered: number;
  dropped: number;
  bytes: number;
}

export class Simulator<M> {
  readonly network: NetworkModel;
  /** The world's own stream: network fates and scenario draws. Nodes have their own. */
  readonly random: SeededRandom;
  readonly stats: NetStats = { sent: 0, delivered: 0, dropped: 0, bytes: 0 };
  /** Lines of the trace when `recordTrace` is on. */
  readonly trace: string[] = [];
  private readonly nodes = new Map<Address, SimNode<M>>();
  private readonly queue = new EventHeap<Ev<M>>();
  private readonly nodeSeeds: SeededRandom;
  private readonly wire: WireCodec<M> | undefined;
  private readonly sizeOf: ((m: M) => number) | undefined;
  private readonly record: boolean;
  private readonly inboxLimit: number;
  private seq = 0;
  private nextTimerId = 1;
  private time = 0;
  private hash = 0x811c9dc5;
  private eventsRun = 0;

  constructor(readonly options: SimulatorOptions<M>) {
    const root = new SeededRandom(options.seed);
    this.random = root.fork();
    this.nodeSeeds = root.fork();
    this.network = new NetworkModel(options.network);
    this.wire = options.wire;
    this.sizeOf = options.sizeOf;
    this.record = options.recordTrace ?? false;
    this.inboxLimit = options.pausedInboxLimit ?? 4096;
  }

  now(): number {
    return this.time;
  }

  /** A number summarizing every event so far: equal across two runs exactly when they did the same. */
  get traceHash(): number {
    return this.hash >>> 0;
  }

  get events(): number {
    return this.eventsRun;
  }

  addresses(): Address[] {
    return [...this.nodes.keys()];
  }

  node(address: Address): SimNode<M> {
    const n = this.nodes.get(address);
    if (!n) throw new Error(`sim: no node at ${address}`);
    return n;
  }

  /** The running process of a node (undefined while crashed). */
  process<P extends SimProcess<M>>(address: Address): P | undefined {
    return this.node(address).process as P | undefined;
  }

  /** Adds a node and starts its process now. */
  addNode(address: Address, factory: ProcessFactory<M>): SimNode<M> {
    if (this.nodes.has(address)) throw new Error(`sim: duplicate address ${address}`);
    const node = new SimNode<M>(address, factory, this.nodeSeeds.fork());
    this.nodes.set(address, node);
    this.start(node);
    return node;
  }

  /**
   * Kills a node's process at once: its timers die, messages to it are lost; its disk stays, all
   * of it after a crash of the process, only what was synced after a power loss.
   */
  crash(address: Address, opts: { powerLoss?: boolean } = {}): void {
    const n = this.node(address);
    if (opts.powerLoss) n.disk.powerLoss();
    if (n.status === 'crashed') return;
    this.note(`crash ${address}${opts.powerLoss ? ' (power loss)' : ''}`);
    n.status = 'crashed';
    n.epoch++;
    n.process = undefined;
    n.timers.clear();
    n.dueWhilePaused.length = 0;
    n.inbox.length = 0;
  }

  /** Starts a crashed node's process again from its factory, with the disk it had. */
  restart(address: Address): void {
    const n = this.node(address);
    if (n.status !== 'crashed') throw new Error(`sim: restart of ${address}, which is ${n.status}`);
    this.start(n);
  }

  /** Sets the clock skew a node's process gets from its next start (restart it to apply). */
  setSkew(address: Address, skew: ClockSkew): void {
    this.node(address).skew = skew;
  }

  /** Stops a node as SIGSTOP does: no timers run and nothing is received; messages queue. */
  pause(address: Address): void {
    const n = this.node(address);
    if (n.status !== 'running') return;
    this.note(`pause ${address}`);
    n.status = 'paused';
  }

  /** Resumes a paused node: the timers that came due run first, then the queued messages. */
  resume(address: Address): void {
    const n = this.node(address);
    if (n.status !== 'paused') return;
    this.note(`resume ${address}`);
    n.status = 'running';
    const epoch = n.epoch;
    const due = n.dueWhilePaused.splice(0);
    for (const t of due) {
      if (n.epoch !== epoch || n.status !== 'running') return;
      if (n.timers.delete(t.id)) this.runTimer(n, t);
    }
    const inbox = n.inbox.splice(0);
    for (const m of inbox) {
      if (n.epoch !== epoch || n.status !== 'running') return;
      this.handOver(n, m.from, m.payload);
    }
  }

  partition(a: Iterable<Address>, b: Iterable<Address>, opts: { oneWay?: boolean } = {}): Cut[] {
    const cuts = this.network.partition(a, b, opts);
    this.note(`partition ${cuts.length}`);
    return cuts;
  }

  /** Cuts one node off from every other node (both ways). */
  isolate(address: Address): Cut[] {
    return this.partition(
      [address],
      this.addresses().filter((a) => a !== address),
    );
  }

  heal(cuts?: readonly Cut[]): void {
    this.note('heal');
    this.network.heal(cuts);
  }

  /** Runs `fn` at virtual time `at` (a scenario step). */
  at(at: number, fn: () => void): void {
    this.queue.push({ at: Math.max(at, this.time), seq: this.seq++, kind: Kind.World, fn });
  }

  /** Runs events up to and including virtual time `t`, then sets the clock to `t`. */
  runUntil(t: number): void {
    for (;;) {
      const top = this.queue.peek();
      if (!top || top.at > t) break;
      this.queue.pop();
      this.time = top.at;
      this.dispatch(top);
    }
    if (t > this.time) this.time = t;
  }

  runFor(ms: number): void {
    this.runUntil(this.time + ms);
  }

  /**
   * Runs until `done()` holds (checked every `stepMs` of virtual time) or `limitMs` pass.
   * Returns the virtual time it held at, or undefined.
   */
  runUntilTrue(done: () => boolean, limitMs: number, stepMs = 100): number | undefined {
    const end = this.time + limitMs;
    while (this.time < end) {
      if (done()) return this.time;
      this.runUntil(Math.min(end, this.time + stepMs));
    }
    return done() ? this.time : undefined;
  }

  private start(n: SimNode<M>): void {
    n.status = 'running';
    n.generation++;
    const epoch = n.epoch;
    this.note(`start ${n.address} #${n.generation}`);
    const clock = skewedClock(n.skew, { wallMs: () => SIM_EPOCH_MS + this.time, monoMs: () => this.time });
    const env: SimEnv<M> = {
      address: n.address,
      clock: { now: clock.monoMs, wallMs: clock.wallMs },
      random: n.random,
      transport: { send: (to, message) => this.send(n, epoch, to, message) },
      setTimer: (at, fn) => {
        const timer: Timer = { id: this.nextTimerId++, fn, epoch };
        if (n.epoch !== epoch) return timer.id;
        n.timers.set(timer.id, timer);
        const due =
          n.skew.rate === 1
            ? Math.max(at, this.time)
            : this.time + Math.max(0, clock.realDelay(at - clock.monoMs()));
        this.queue.push({ at: due, seq: this.seq++, kind: Kind.Timer, node: n, timer });
        return timer.id;
      },
      clearTimer: (id) => {
        n.timers.delete(id);
      },
      disk: n.disk,
      generation: n.generation,
    };
    n.process = n.factory(env);
  }

  private send(n: SimNode<M>, epoch: number, to: Address, message: M): void {
    // A process that has crashed (or is paused) runs no code; a stale closure cannot send.
    if (n.epoch !== epoch || n.status !== 'running') return;
    let payload: M | Uint8Array = message;
    let size = 0;
    if (this.wire) {
      payload = this.wire.encode(message);
      size = payload.length;
    } else if (this.sizeOf) size = this.sizeOf(message);
    n.sentMessages++;
    n.sentBytes += size;
    this.stats.sent++;
    this.stats.bytes += size;
    const arrivals = this.network.fate(n.address, to, this.random);
    const dest = this.nodes.get(to);
    if (arrivals.length === 0 || !dest) {
      this.stats.dropped++;
      this.mix(3, n.address, to, size);
      if (this.record) this.trace.push(`${this.time.toFixed(3)} drop ${n.address}>${to} ${size}`);
      return;
    }
    for (const d of arrivals) {
      this.queue.push({
        at: this.time + d,
        seq: this.seq++,
        kind: Kind.Deliver,
        node: dest,
        from: n.address,
        payload,
        size,
      });
    }
  }

  private dispatch(ev: Ev<M>): void {
    this.eventsRun++;
    switch (ev.kind) {
      case Kind.World:
        this.mix(2, '', '', 0);
        ev.fn!();
        return;
      case Kind.Timer: {
        const n = ev.node!;
        const t = ev.timer!;
        if (t.epoch !== n.epoch || !n.timers.has(t.id)) return;
        if (n.status === 'paused') {
          n.dueWhilePaused.push(t);
          return;
        }
        n.timers.delete(t.id);
        this.runTimer(n, t);
        return;
      }
      case Kind.Deliver: {
        const n = ev.node!;
        // A cut made while a message is on the wire loses it too.
        if (n.status === 'crashed' || this.network.blocked(ev.from!, n.address)) {
          this.stats.dropped++;
          this.mix(4, ev.from!, n.address, ev.size!);
          return;
        }
        if (n.status === 'paused') {
          if (n.inbox.length >= this.inboxLimit) this.stats.dropped++;
          else n.inbox.push({ from: ev.from!, payload: ev.payload! });
          return;
        }
        this.mix(1, ev.from!, n.address, ev.size!);
        if (this.record) this.trace.push(`${this.time.toFixed(3)} recv ${ev.from}>${n.address} ${ev.size}`);
        this.handOver(n, ev.from!, ev.payload!);
        return;
      }
    }
  }

  private runTimer(n: SimNode<M>, t: Timer): void {
    this.mix(5, n.address, '', t.id);
    if (this.record) this.trace.push(`${this.time.toFixed(3)} timer ${n.address}`);
    t.fn();
  }

  private handOver(n: SimNode<M>, from: Address, payload: M | Uint8Array): void {
    const message = this.wire ? this.wire.decode(payload as Uint8Array) : (payload as M);
    n.receivedMessages++;
    this.stats.delivered++;
    if (this.wire) n.receivedBytes += (payload as Uint8Array).length;
    else if (this.sizeOf) n.receivedBytes += this.sizeOf(message);
    n.process!.receive(from, message);
  }

  private note(what: string): void {
    this.mix(6, what, '', 0);
    if (this.record) this.trace.push(`${this.time.toFixed(3)} ${what}`);
  }

  /** FNV-1a over the event's fields and the virtual time, in a 32-bit integer. */
  private mix(kind: number, a: string, b: string, n: number): void {
    let h = this.hash;
    const step = (x: number) => {
      h = Math.imul(h ^ (x & 0xff), 0x01000193);
    };
    step(kind);
    const t = Math.round(this.time * 1000);
    for (let i = 0; i < 6; i++) step(Math.floor(t / 256 ** i));
    for (let i = 0; i < a.length; i++) step(a.charCodeAt(i));
    step(0x1f);
    for (let i = 0; i < b.length; i++) step(b.charCodeAt(i));
    step(n);
    step(n >>> 8);
    this.hash = h;
  }
}
