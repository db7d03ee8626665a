/**
 * The fault schedule of a run, planned from its seed alone (src/random.ts), before the run starts:
 * the same seed, node count and kinds give the same faults on the same targets in the same order
 * with the same parameters. Only when each is injected follows the run's timing: a fault waits
 * until its planned time and until the nodes it holds are free of the fault before.
 *
 * A fault holds its nodes from injection to heal, so two faults never act on one node at once:
 * a paused node is never killed, a full disk is never restarted, a partition of every node waits
 * until each is free. Single-node faults prefer a node that is free at their planned time, so
 * that faults on different nodes overlap.
 */
import { SeededRandom } from '../../src/random.js';
import { NemesisError } from './base.js';

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
  /** The nodes it holds from injection to heal. */
  readonly nodes: readonly number[];
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
  /** Mean time between planned faults. Default 400 ms: nodes are rarely without one. */
  readonly meanGapMs?: number;
}

/** The shortest and longest hold of each kind, in milliseconds. */
const HOLD: Record<FaultKind, [number, number]> = {
  kill: [0, 1000],
  power: [0, 1000],
  pause: [300, 3000],
  'partition-client': [500, 3000],
  'partition-halves': [500, 3000],
  'partition-bridge': [500, 3000],
  'partition-oneway': [500, 3000],
  loss: [1000, 4000],
  skew: [2000, 5000],
  'disk-full': [500, 3000],
};

/** What injecting and healing cost besides the hold (restarts), for planning only. */
const OVERHEAD: Record<FaultKind, number> = {
  kill: 1500,
  power: 1500,
  pause: 100,
  'partition-client': 300,
  'partition-halves': 600,
  'partition-bridge': 600,
  'partition-oneway': 300,
  loss: 300,
  skew: 3000,
  'disk-full': 300,
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

function shuffled(r: SeededRandom, xs: readonly number[]): number[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = r.int(i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

type Shape = Omit<PlannedFault, 'n' | 'at'>;

/** A fault of `kind`: its targets and parameters. `pick` chooses one node (a free one if it can). */
function shape(kind: FaultKind, r: SeededRandom, nodes: number, pick: () => number): Shape {
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
      const a = pick();
      const others = [CLIENT, ...all.filter((i) => i !== a)];
      const b = others[r.int(others.length)];
      const [from, to] = r.chance(0.5) ? [a, b] : [b, a];
      return { kind, holdMs, nodes: b === CLIENT ? [a] : [a, b].sort((x, y) => x - y), from, to };
    }
    case 'loss':
      return { kind, holdMs, nodes: [pick()], probability: [0.05, 0.2, 0.5][r.int(3)] };
    case 'skew': {
      const offset = (r.chance(0.5) ? -1 : 1) * (1000 + r.int(120_000));
      const rate = [1, 1, 0.9, 1.1][r.int(4)];
      return { kind, holdMs, nodes: [pick()], skew: `offset=${offset},rate=${rate}` };
    }
    case 'power': {
      const node = pick();
      return { kind, holdMs, nodes: [node], cutSeed: r.chance(0.5) ? r.nextUint32() : undefined };
    }
    default:
      return { kind, holdMs, nodes: [pick()] };
  }
}

/** Plans the faults of one run: a pure function of its options. */
export function planSchedule(o: PlanOptions): PlannedFault[] {
  const kinds = (o.kinds ?? FAULT_KINDS).filter((k) => minNodes(k) <= o.nodes);
  if (kinds.length === 0)
    throw new NemesisError(`none of the fault kinds asked for works with ${o.nodes} node(s)`);
  const r = new SeededRandom(o.seed);
  const freeAt = new Array<number>(o.nodes).fill(0);
  const meanGap = o.meanGapMs ?? 400;
  const out: PlannedFault[] = [];
  let t = 0;
  for (;;) {
    t += r.exponential(meanGap);
    if (t >= o.durationMs) return out;
    const now = t;
    const pick = (): number => {
      const free = freeAt.map((f, i) => (f <= now ? i : -1)).filter((i) => i >= 0);
      if (free.length > 0) return free[r.int(free.length)];
      return freeAt.indexOf(Math.min(...freeAt));
    };
    const s = shape(kinds[r.int(kinds.length)], r, o.nodes, pick);
    const at = Math.max(t, ...s.nodes.map((i) => freeAt[i]));
    if (at >= o.durationMs) return out;
    for (const i of s.nodes) freeAt[i] = at + s.holdMs + OVERHEAD[s.kind];
    out.push({ n: out.length + 1, at: Math.round(at), ...s });
    t = at;
  }
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
