/**
 * SWIM membership wired into the simulator: N nodes, each a `Swim` core driven by one timer, with
 * an observer that records what every node concludes about every other — the ground for the
 * membership tests and `npm run bench -- membership`. The driver here is the whole of what a real
 * node's driver does too: call `receive`, call `tick` at `nextDeadline()`, re-arm.
 */

import type { ClockSkew } from '../clock.js';
import type { swim_packet } from '../cluster/gen/membership.js';
import type { SwimConfig } from '../cluster/membership/config.js';
import { idKey, type MembershipEvent, Swim } from '../cluster/membership/swim.js';
import { decodePacket, encodePacket } from '../cluster/membership/wire.js';
import { SeededRandom } from '../random.js';
import type { NetworkOptions } from './network.js';
import { type SimEnv, type SimProcess, Simulator } from './simulator.js';

/** Where a node's incarnation lives on its simulated disk. */
export const INCARNATION_KEY = 'incarnation';

/** Drives one core from the simulator's timers: one timer, armed at the core's next deadline. */
export class SwimDriver implements SimProcess<swim_packet> {
  private armedAt = Number.POSITIVE_INFINITY;
  private timer = 0;

  constructor(
    private readonly env: SimEnv<swim_packet>,
    readonly swim: Swim,
  ) {}

  receive(from: string, message: swim_packet): void {
    this.swim.receive(from, message);
    this.arm();
  }

  arm(): void {
    const due = this.swim.nextDeadline();
    if (due >= this.armedAt) return;
    if (this.timer) this.env.clearTimer(this.timer);
    this.armedAt = due;
    if (!Number.isFinite(due)) return;
    this.timer = this.env.setTimer(due, () => {
      this.timer = 0;
      this.armedAt = Number.POSITIVE_INFINITY;
      this.swim.tick();
      this.arm();
    });
  }
}

export interface SwimClusterOptions {
  n: number;
  seed: number;
  config?: Partial<SwimConfig>;
  network?: NetworkOptions;
  /** Encode and decode every packet with the generated XDR codec (exact bytes; slower). */
  wire?: boolean;
  /**
   * Nodes keep their incarnation on their simulated disk across restarts: written and synced
   * before it is gossiped, as a real node's file is (fsync). 'unsynced' writes without syncing:
   * a broken store, which a power loss (`crash(i, { powerLoss: true })`) takes back.
   */
  persistIncarnation?: boolean | 'unsynced';
  /**
   * 'join': every node joins through node 0 (and the two after it), as a fresh cluster does.
   * 'converged': every node starts knowing every other as alive (for large N, where N joins
   * cost N² updates before the measurement even starts).
   */
  start?: 'join' | 'converged';
  recordTrace?: boolean;
  /** Called with each event of each node (node index, virtual time, event). */
  onEvent?: (node: number, at: number, e: MembershipEvent) => void;
}

export class SwimCluster {
  readonly sim: Simulator<swim_packet>;
  readonly ids: Uint8Array[] = [];
  readonly addrs: string[] = [];
  private readonly index = new Map<string, number>();

  constructor(readonly options: SwimClusterOptions) {
    this.sim = new Simulator<swim_packet>({
      seed: options.seed,
      network: options.network,
      wire: options.wire ? { encode: encodePacket, decode: decodePacket } : undefined,
      recordTrace: options.recordTrace,
    });
    // Ids come from their own stream so that they do not depend on the network's draws.
    const idRandom = new SeededRandom(options.seed ^ 0x5eed1d5);
    for (let i = 0; i < options.n; i++) {
      const id = idRandom.bytes(16);
      this.ids.push(id);
      this.addrs.push(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:7946`);
      this.index.set(idKey(id), i);
    }
    const converged = options.start === 'converged';
    for (let i = 0; i < options.n; i++) {
      this.sim.addNode(this.addrs[i], (env) => this.makeProcess(i, env, converged && env.generation === 1));
    }
  }

  /** The index of the node with this id. */
  indexOf(id: Uint8Array): number | undefined {
    return this.index.get(idKey(id));
  }

  swim(i: number): Swim | undefined {
    return this.sim.process<SwimDriver>(this.addrs[i])?.swim;
  }

  running(i: number): boolean {
    return this.sim.node(this.addrs[i]).status === 'running';
  }

  up(i: number): boolean {
    return this.sim.node(this.addrs[i]).status !== 'crashed';
  }

  /** Kills node i's process; with `powerLoss`, its disk also loses every write it had not synced. */
  crash(i: number, opts: { powerLoss?: boolean } = {}): void {
    this.sim.crash(this.addrs[i], opts);
  }

  /** Starts node i again; with `skew`, its clocks run off from then on (undefined: as before). */
  restart(i: number, opts: { skew?: ClockSkew } = {}): void {
    if (opts.skew) this.sim.setSkew(this.addrs[i], opts.skew);
    this.sim.restart(this.addrs[i]);
  }

  pause(i: number): void {
    this.sim.pause(this.addrs[i]);
  }

  resume(i: number): void {
    this.sim.resume(this.addrs[i]);
  }

  /** Nodes whose process exists (running or paused). */
  liveNodes(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.options.n; i++) if (this.up(i)) out.push(i);
    return out;
  }

  /** What node `observer` thinks of node `subject`, or undefined if it does not know it / is down. */
  stateSeenBy(observer: number, subject: number): string | undefined {
    return this.swim(observer)?.stateOf(this.ids[subject]);
  }

  /** Whether every up node in `observers` (default: all up nodes but the subject) sees `subject` in one of `states`. */
  allSee(subject: number, states: readonly string[], observers?: readonly number[]): boolean {
    for (const o of observers ?? this.liveNodes()) {
      if (o === subject || !this.up(o)) continue;
      const st = this.stateSeenBy(o, subject);
      if (st === undefined || !states.includes(st)) return false;
    }
    return true;
  }

  /** Whether no up node sees `subject` in one of `states`. */
  noneSee(subject: number, states: readonly string[]): boolean {
    for (const o of this.liveNodes()) {
      if (o === subject) continue;
      const st = this.stateSeenBy(o, subject);
      if (st !== undefined && states.includes(st)) return false;
    }
    return true;
  }

  /** Every up node sees every up node alive and every crashed node dead (or not at all). */
  converged(): boolean {
    const live = this.liveNodes();
    for (const o of live) {
      for (let s = 0; s < this.options.n; s++) {
        if (s === o) continue;
        const st = this.stateSeenBy(o, s);
        if (this.up(s) ? st !== 'alive' : st === 'alive' || st === 'suspect') return false;
      }
    }
    return true;
  }

  private makeProcess(i: number, env: SimEnv<swim_packet>, bootstrap: boolean): SwimDriver {
    const o = this.options;
    const store = o.persistIncarnation
      ? {
          load: () => env.disk.get(INCARNATION_KEY) as number | undefined,
          save: (n: number) => {
            env.disk.set(INCARNATION_KEY, n);
            // The core gossips the new incarnation as soon as this returns: it must be durable by then.
            if (o.persistIncarnation !== 'unsynced') env.disk.sync(INCARNATION_KEY);
          },
        }
      : undefined;
    const swim = new Swim({
      id: this.ids[i],
      addr: this.addrs[i],
      clock: env.clock,
      random: env.random,
      transport: env.transport,
      config: o.config,
      store,
    });
    if (o.onEvent) {
      const cb = o.onEvent;
      // Virtual time, not the node's clock, which may be skewed.
      swim.on((e) => cb(i, this.sim.now(), e));
    }
    const driver = new SwimDriver(env, swim);
    if (bootstrap) {
      const all: { id: Uint8Array; addr: string }[] = [];
      for (let j = 0; j < o.n; j++) if (j !== i) all.push({ id: this.ids[j], addr: this.addrs[j] });
      swim.bootstrap(all);
      swim.start();
    } else {
      // Joining through the first three nodes; node 0 of a fresh cluster has nobody to join.
      const seeds = i === 0 && env.generation === 1 ? [] : this.addrs.slice(0, Math.min(3, o.n));
      swim.start(seeds);
    }
    driver.arm();
    return driver;
  }
}
