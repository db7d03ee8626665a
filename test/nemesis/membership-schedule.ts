/**
 * The membership nemesis's fault schedule: a function of a seed (src/random.ts), so that the real
 * harness (membership.ts) and the simulator (membership-sim.ts) inject the same faults, and a
 * failing seed names its schedule exactly. Faults run in two lanes that overlap in time:
 *
 * - the network lane, one fault at a time: a partition into halves, one node isolated, a bridge
 *   (two halves that do not see each other, and one node that sees both), a one-way cut (packets
 *   from one side to the other dropped), or random loss on every node's incoming packets;
 * - the process lane, one at a time: a pause (SIGSTOP, SIGCONT; short or long), a kill -9 and a
 *   restart (or, once at most, no restart), or a restart with a skewed clock (CAIRN_CLOCK_SKEW)
 *   and, at the heal, a restart back to the real clock.
 *
 * Durations are sized for the SWIM timing the harness runs with (NEMESIS_SWIM: 500 ms probes),
 * so that most kills and isolations last long enough to be detected.
 */

import type { ClockSkew } from '../../src/clock.js';
import type { SwimConfig } from '../../src/cluster/membership/config.js';
import { SeededRandom } from '../../src/random.js';
import { shuffled } from './base.js';

export const NETWORK_FAULTS = ['partition', 'isolate', 'bridge', 'one-way', 'loss'] as const;
export const PROCESS_FAULTS = ['pause', 'kill', 'skew'] as const;
export const FAULT_KINDS = [...NETWORK_FAULTS, ...PROCESS_FAULTS] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** The SWIM settings of every nemesis node, real or simulated: the test settings of issue 4. */
export const NEMESIS_SWIM: Partial<SwimConfig> = Object.freeze({
  probeInterval: 500,
  probeTimeout: 250,
  gossipInterval: 100,
  pushPullInterval: 5000,
  reconnectInterval: 2000,
  joinRetryInterval: 500,
});

/** Clock rates a skew fault draws from (log-uniformly): a clock 20 % slow to 25 % fast. */
export const SKEW_RATES: readonly [number, number] = [0.8, 1.25];

export interface Fault {
  /** 1, 2, ... in order of planned start. */
  readonly id: number;
  readonly kind: FaultKind;
  /** Planned start and length, in ms from the start of the schedule. */
  readonly at: number;
  readonly duration: number;
  /** The node a process fault acts on; the isolated node; the bridge node. */
  readonly node?: number;
  /**
   * partition: the two halves; bridge: the halves the bridge node joins; one-way: packets from
   * sides[0] to sides[1] are dropped (the other way they pass).
   */
  readonly sides?: readonly [readonly number[], readonly number[]];
  /** loss: probability that each incoming packet on each node is dropped. */
  readonly loss?: number;
  /** kill: false when the node stays down to the end. */
  readonly restart?: boolean;
  /** skew: the clock the node is restarted with. */
  readonly skew?: ClockSkew;
}

export interface ScheduleOptions {
  seed: number;
  durationMs: number;
  nodes: number;
  /** Fault kinds to draw from; default all. */
  kinds?: readonly FaultKind[];
  /** The range a loss fault's probability is drawn from; default LOSS_RANGE. */
  loss?: readonly [number, number];
}

/** Loss SWIM with indirect probes must ride out without a single false death. */
export const LOSS_RANGE: readonly [number, number] = [0.04, 0.12];

const span = (r: SeededRandom, lo: number, hi: number) => lo + r.int(hi - lo + 1);

/** Splits `xs` into two non-empty halves at random (the first the smaller). */
function halves(r: SeededRandom, xs: readonly number[]): [number[], number[]] {
  const s = shuffled(r, xs);
  const k = Math.floor(s.length / 2);
  return [s.slice(0, k).sort((a, b) => a - b), s.slice(k).sort((a, b) => a - b)];
}

/** The faults of one run, by planned start. Every fault heals by `durationMs` but a kill without restart. */
export function membershipSchedule(o: ScheduleOptions): Fault[] {
  if (o.nodes < 3) throw new Error('the membership nemesis needs at least 3 nodes');
  const kinds = new Set(o.kinds ?? FAULT_KINDS);
  const net = NETWORK_FAULTS.filter((k) => kinds.has(k));
  const proc = PROCESS_FAULTS.filter((k) => kinds.has(k));
  const root = new SeededRandom(o.seed);
  // One stream per lane: changing one lane's kinds leaves the other lane's draws alone.
  const rNet = root.fork();
  const rProc = root.fork();
  const all = Array.from({ length: o.nodes }, (_, i) => i);
  const planned: Omit<Fault, 'id'>[] = [];

  // Process lane first: a node killed for good is left out of the network lane's later choices.
  let gone: { node: number; at: number } | undefined;
  let t = span(rProc, 500, 2500);
  while (proc.length > 0) {
    const kind = proc[rProc.int(proc.length)];
    const candidates = all.filter((n) => n !== gone?.node);
    const node = candidates[rProc.int(candidates.length)];
    let f: Omit<Fault, 'id'>;
    if (kind === 'pause') {
      // Short pauses must end in no death at all; long ones outlast the suspicion timeout.
      const long = rProc.chance(0.5);
      f = { kind, at: t, duration: long ? span(rProc, 6000, 10_000) : span(rProc, 300, 900), node };
    } else if (kind === 'kill') {
      const stays = gone === undefined && o.nodes >= 4 && rProc.chance(0.2);
      f = { kind, at: t, duration: span(rProc, 6000, 10_000), node, restart: !stays };
    } else {
      const [lo, hi] = SKEW_RATES;
      const rate = Math.round(lo * (hi / lo) ** rProc.next() * 1000) / 1000;
      const offsetMs = (rProc.chance(0.5) ? 1 : -1) * span(rProc, 60_000, 86_400_000);
      f = { kind, at: t, duration: span(rProc, 8000, 14_000), node, skew: { offsetMs, rate } };
    }
    if (f.at + f.duration > o.durationMs) break;
    planned.push(f);
    if (f.kind === 'kill' && f.restart === false) gone = { node, at: f.at };
    t = f.at + f.duration + span(rProc, 1000, 3000);
  }

  t = span(rNet, 500, 2500);
  while (net.length > 0) {
    const kind = net[rNet.int(net.length)];
    // After a permanent kill, cuts are drawn among the nodes still there.
    const live = gone && gone.at < t ? all.filter((n) => n !== gone?.node) : all;
    let f: Omit<Fault, 'id'>;
    if (kind === 'partition') {
      f = { kind, at: t, duration: span(rNet, 5000, 9000), sides: halves(rNet, live) };
    } else if (kind === 'isolate') {
      f = { kind, at: t, duration: span(rNet, 6000, 10_000), node: live[rNet.int(live.length)] };
    } else if (kind === 'bridge') {
      const s = shuffled(rNet, live);
      const [a, b] = halves(rNet, s.slice(1));
      f = { kind, at: t, duration: span(rNet, 5000, 9000), node: s[0], sides: [a, b] };
    } else if (kind === 'one-way') {
      const [a, b] = halves(rNet, live);
      f = { kind, at: t, duration: span(rNet, 5000, 8000), sides: rNet.chance(0.5) ? [a, b] : [b, a] };
    } else {
      const [lo, hi] = o.loss ?? LOSS_RANGE;
      const loss = Math.round((lo + rNet.next() * (hi - lo)) * 1000) / 1000;
      f = { kind, at: t, duration: span(rNet, 5000, 9000), loss };
    }
    if (f.at + f.duration > o.durationMs) break;
    planned.push(f);
    t = f.at + f.duration + span(rNet, 1000, 3000);
  }

  return planned.sort((a, b) => a.at - b.at).map((f, i) => ({ id: i + 1, ...f }));
}

export function isNetworkFault(kind: FaultKind): boolean {
  return (NETWORK_FAULTS as readonly FaultKind[]).includes(kind);
}

/** The directed cuts a network fault makes: packets from each `from` node to each `to` node are dropped. */
export function faultCuts(f: Fault, nodes: number): { from: number[]; to: number[] }[] {
  const others = (x: number) => Array.from({ length: nodes }, (_, i) => i).filter((i) => i !== x);
  switch (f.kind) {
    case 'partition':
    case 'bridge': {
      const [a, b] = f.sides!;
      return [
        { from: [...a], to: [...b] },
        { from: [...b], to: [...a] },
      ];
    }
    case 'isolate':
      return [
        { from: [f.node!], to: others(f.node!) },
        { from: others(f.node!), to: [f.node!] },
      ];
    case 'one-way':
      return [{ from: [...f.sides![0]], to: [...f.sides![1]] }];
    default:
      return [];
  }
}

/** One line per fault, for logs and reports. */
export function describeFault(f: Fault, name: (i: number) => string = (i) => `n${i + 1}`): string {
  const set = (xs: readonly number[]) => `{${xs.map(name).join(',')}}`;
  switch (f.kind) {
    case 'partition':
      return `partition ${set(f.sides![0])} | ${set(f.sides![1])}`;
    case 'isolate':
      return `isolate ${name(f.node!)}`;
    case 'bridge':
      return `bridge ${name(f.node!)} between ${set(f.sides![0])} and ${set(f.sides![1])}`;
    case 'one-way':
      return `one-way cut: ${set(f.sides![0])} -/-> ${set(f.sides![1])}`;
    case 'loss':
      return `loss ${(f.loss! * 100).toFixed(1)}% on every node`;
    case 'pause':
      return `pause ${name(f.node!)} (SIGSTOP)`;
    case 'kill':
      return `kill -9 ${name(f.node!)}${f.restart === false ? ', no restart' : ''}`;
    case 'skew':
      return `restart ${name(f.node!)} with CAIRN_CLOCK_SKEW offset=${f.skew!.offsetMs},rate=${f.skew!.rate}`;
  }
}
