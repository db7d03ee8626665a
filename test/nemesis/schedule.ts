/**
 * The fault schedule of a run, planned from its seed alone (src/random.ts), before the run starts:
 * the same seed, node count and kinds give the same faults on the same targets in the same order
 * with the same parameters. Only when each is injected follows the run's timing: a fault waits
 * until its planned time and until the nodes it holds are free of the fault before.
 *
 * A fault holds what it acts on from injection to heal: a node's process (kill, power, pause,
 * skew, and a full disk, which a restart would meet) or a node's network rules (partitions, loss).
 * Two faults never hold the same thing at once, so a paused process is never killed and a full
 * disk never restarted on, while a partition may well cut a node that is being killed (rules and
 * processes do not touch). Single-node faults prefer a node that is free at their planned time,
 * so that faults on different nodes overlap.
 */
import { formatClockSkew } from '../../src/clock.js';
import { SeededRandom } from '../../src/random.js';
import { NemesisError, shuffled } from './base.js';

export const FAULT_KINDS = [
  /** kill -9, down for the hold, restarted on its data. */
  'kill',
  /** kill -9, then every write not fsynced is thrown away (the power-loss layer); restarted. */
  'power',
  /** SIGSTOP for the hold, then SIGCONT. */
  'pause',
  /** The client cut from one node, both ways. */
  'partition-client',
  /** The nodes in two halves that cannot reach each other (the client reaches all). */
  'partition-halves',
  /** Two halves joined only through one bridge node that reaches both. */
  'partition-bridge',
  /** Packets one way only, between the client and a node or between two nodes. */
  'partition-oneway',
  /** A share of one node's packets, in and out, dropped at random (iptables -m statistic). */
  'loss',
  /** The node restarted with its clock skewed (CAIRN_CLOCK_SKEW), then restarted without. */
  'skew',
  /** The node's disk (its own tmpfs) filled to the last block by a ballast file, then freed. */
  'disk-full',
] as const;

export type FaultKind = (typeof FAULT_KINDS)[number];

/** The client (-1) or a node, by index. */
export type Endpoint = number;
export const CLIENT = -1;

export interface PlannedFault {
  /** Its place in the schedule, from 1. */
  readonly n: number;
  /** Milliseconds after the schedule starts. */
  readonly at: number;
  readonly kind: FaultKind;
  /** The nodes it acts on (the first is the target of a single-node fault). */
  readonly nodes: readonly number[];
  /** What it holds from injection to heal: `proc:I` (node I's process) or `net:I` (its rules). */
  readonly holds: readonly string[];
  /** How long it lasts between injection and heal (a crashed node: how long it stays down). */
  readonly holdMs: number;
  /** Partitions: sides that cannot reach each other (halves: [A, B]; bridge: [A, B, [bridge]]). */
  readonly sides?: readonly (readonly number[])[];
  /** One-way partitions: packets from `from` to `to` are dropped. */
  readonly from?: Endpoint;
  readonly to?: Endpoint;
  readonly probability?: number;
  /** CAIRN_CLOCK_SKEW's value. */
  readonly skew?: string;
  /**
   * Power loss: undefined drops every write not fsynced; a seed keeps each at random (a disk that
   * wrote back part of its cache), the states recovery must handle.
   */
  readonly cutSeed?: number;
}

export interface PlanOptions {
  readonly seed: number;
  readonly durationMs: number;
  readonly nodes: number;
  /** Default: every kind the node count allows. */
  readonly kinds?: readonly FaultKind[];
  /** Mean time between planned faults. Default 300 ms: nodes are rarely without one. */
  readonly meanGapMs?: number;
}

/** The shortest and longest hold of each kind, in milliseconds. */
const HOLD: Record<FaultKind, [number, number]> = {
  kill: [0, 600],
  power: [0, 600],
  pause: [200, 1500],
  'partition-client': [300, 1500],
  'partition-halves': [300, 1500],
  'partition-bridge': [300, 1500],
  'partition-oneway': [300, 1500],
  loss: [500, 2000],
  skew: [1000, 3000],
  'disk-full': [300, 1500],
};

/** What injecting and healing cost besides the hold (restarts), for planning only. */
const OVERHEAD: Record<FaultKind, number> = {
  kill: 1000,
  power: 1000,
  pause: 100,
  'partition-client': 200,
  'partition-halves': 400,
  'partition-bridge': 400,
  'partition-oneway': 200,
  loss: 200,
  skew: 2000,
  'disk-full': 200,
};

/** The fewest nodes a kind needs. */
function minNodes(kind: FaultKind): number {
  if (kind === 'partition-halves') return 2;
  if (kind === 'partition-bridge') return 3;
  return 1;
}

/** The kinds named in a comma-separated list ('all' for every kind). */
export function parseFaultKinds(text: string): FaultKind[] {
  if (text.trim() === 'all') return [...FAULT_KINDS];
  const kinds: FaultKind[] = [];
  for (const raw of text.split(',')) {
    const k = raw.trim();
    if (k === '') continue;
    if (!(FAULT_KINDS as readonly string[]).includes(k))
      throw new NemesisError(`unknown fault kind '${k}' (known: ${FAULT_KINDS.join(', ')})`);
    kinds.push(k as FaultKind);
  }
  return kinds;
}

type Shape = Omit<PlannedFault, 'n' | 'at' | 'holds'>;

const NETWORK_KINDS: ReadonlySet<FaultKind> = new Set([
  'partition-client',
  'partition-halves',
  'partition-bridge',
  'partition-oneway',
  'loss',
]);

/** The lock a fault of `kind` takes on node `i`. */
function lockOf(kind: FaultKind, i: number): string {
  return `${NETWORK_KINDS.has(kind) ? 'net' : 'proc'}:${i}`;
}

/** A fault of `kind`: its targets and parameters. `pick` chooses one node (a free one if it can). */
function shape(kind: FaultKind, r: SeededRandom, nodes: number, pick: (kind: FaultKind) => number): Shape {
  const [lo, hi] = HOLD[kind];
  const holdMs = lo + r.int(hi - lo + 1);
  const all = Array.from({ length: nodes }, (_, i) => i);
  switch (kind) {
    case 'partition-halves': {
      const order = shuffled(r, all);
      const cut = 1 + r.int(nodes - 1);
      return { kind, holdMs, nodes: all, sides: [order.slice(0, cut), order.slice(cut)] };
    }
    case 'partition-bridge': {
      const [bridge, ...rest] = shuffled(r, all);
      const cut = 1 + r.int(rest.length - 1);
      return { kind, holdMs, nodes: all, sides: [rest.slice(0, cut), rest.slice(cut), [bridge]] };
    }
    case 'partition-oneway': {
      const a = pick(kind);
      const others = [CLIENT, ...all.filter((i) => i !== a)];
      const b = others[r.int(others.length)];
      const [from, to] = r.chance(0.5) ? [a, b] : [b, a];
      return { kind, holdMs, nodes: b === CLIENT ? [a] : [a, b].sort((x, y) => x - y), from, to };
    }
    case 'loss':
      return { kind, holdMs, nodes: [pick(kind)], probability: [0.05, 0.2, 0.5][r.int(3)] };
    case 'skew': {
      const offset = (r.chance(0.5) ? -1 : 1) * (1000 + r.int(120_000));
      const rate = [1, 1, 0.9, 1.1][r.int(4)];
      return { kind, holdMs, nodes: [pick(kind)], skew: formatClockSkew({ offsetMs: offset, rate }) };
    }
    case 'power': {
      const node = pick(kind);
      return { kind, holdMs, nodes: [node], cutSeed: r.chance(0.5) ? r.nextUint32() : undefined };
    }
    default:
      return { kind, holdMs, nodes: [pick(kind)] };
  }
}

/** Plans the faults of one run: a pure function of its options. */
export function planSchedule(o: PlanOptions): PlannedFault[] {
  const kinds = (o.kinds ?? FAULT_KINDS).filter((k) => minNodes(k) <= o.nodes);
  if (kinds.length === 0)
    throw new NemesisError(`none of the fault kinds asked for works with ${o.nodes} node(s)`);
  const r = new SeededRandom(o.seed);
  const freeAt = new Map<string, number>();
  const free = (lock: string) => freeAt.get(lock) ?? 0;
  const meanGap = o.meanGapMs ?? 300;
  const out: PlannedFault[] = [];
  let t = 0;
  for (;;) {
    t += r.exponential(meanGap);
    if (t >= o.durationMs) break;
    const now = t;
    const pick = (kind: FaultKind): number => {
      const locks = Array.from({ length: o.nodes }, (_, i) => lockOf(kind, i));
      const idle = locks.flatMap((l, i) => (free(l) <= now ? [i] : []));
      if (idle.length > 0) return idle[r.int(idle.length)];
      const soonest = Math.min(...locks.map(free));
      return locks.findIndex((l) => free(l) === soonest);
    };
    const s = shape(kinds[r.int(kinds.length)], r, o.nodes, pick);
    const holds = s.nodes.map((i) => lockOf(s.kind, i));
    const at = Math.max(t, ...holds.map(free));
    if (at >= o.durationMs) continue;
    for (const l of holds) freeAt.set(l, at + s.holdMs + OVERHEAD[s.kind]);
    out.push({ n: 0, at: Math.round(at), ...s, holds });
  }
  // A fault that waited for its locks comes after others planned later: in time order, numbered.
  return out.sort((a, b) => a.at - b.at).map((f, i) => ({ ...f, n: i + 1 }));
}

/** One line for a fault: kind, targets and parameters, with node names from `name`. */
export function describeFault(f: PlannedFault, name: (i: Endpoint) => string): string {
  const names = (xs: readonly number[]) => xs.map(name).join(' ');
  switch (f.kind) {
    case 'partition-halves':
      return `${f.kind} ${names(f.sides![0])} | ${names(f.sides![1])}`;
    case 'partition-bridge':
      return `${f.kind} ${names(f.sides![0])} | ${names(f.sides![1])} (bridge ${names(f.sides![2])})`;
    case 'partition-oneway':
      return `${f.kind} ${name(f.from!)} -> ${name(f.to!)}`;
    case 'loss':
      return `${f.kind} ${names(f.nodes)} ${Math.round(f.probability! * 100)}%`;
    case 'skew':
      return `${f.kind} ${names(f.nodes)} ${f.skew}`;
    case 'kill':
      return `${f.kind} ${names(f.nodes)} (down ${f.holdMs} ms)`;
    case 'power':
      return `${f.kind} ${names(f.nodes)} (down ${f.holdMs} ms, ${f.cutSeed === undefined ? 'every unsynced write lost' : `unsynced writes kept at random, seed ${f.cutSeed}`})`;
    default:
      return `${f.kind} ${names(f.nodes)}`;
  }
}
