/**
 * The membership nemesis in the deterministic simulator: the same schedule as the real harness
 * (membership-schedule.ts), applied to SWIM cores in src/sim's SwimCluster — cuts and loss in the
 * simulated network, pauses, crashes and restarts of the simulated processes, restarts with a
 * skewed clock — and judged by the same checks (membership-check.ts). A run takes a fraction of a
 * second, so many seeds can run in every CI pass; a failing seed replays exactly.
 */
import { type ClockSkew, NO_SKEW } from '../../src/clock.js';
import type { SwimConfig } from '../../src/cluster/membership/config.js';
import { SwimCluster } from '../../src/sim/membership.js';
import type { Cut as SimCut } from '../../src/sim/network.js';
import {
  type Cut,
  checkMembership,
  type Down,
  disagreement,
  type FaultRecord,
  type MemberState,
  type MembershipReport,
  nemesisBounds,
  type ViewEvent,
  ViewFollower,
} from './membership-check.js';
import { type FaultKind, faultCuts, membershipSchedule, NEMESIS_SWIM } from './membership-schedule.js';

export interface SimNemesisOptions {
  seed: number;
  durationMs: number;
  nodes?: number;
  kinds?: readonly FaultKind[];
  /** The range of a loss fault's probability; default LOSS_RANGE (membership-schedule.ts). */
  loss?: readonly [number, number];
  /**
   * 'membership.dead-on-first-miss' runs the broken build as the real failpoint does (the
   * simulator runs in one process, so through the configuration: suspicionMult 0).
   */
  failpoints?: string;
}

const STATES: Partial<Record<string, MemberState>> = {
  join: 'alive',
  alive: 'alive',
  suspect: 'suspect',
  dead: 'dead',
  leave: 'left',
};

/** How long a gracefully stopped node takes to exit, and to be started again (virtual ms). */
const STOP_MS = 300;
const START_MS = 900;
const SETTLE_MS = 3000;

/** Runs one seeded schedule in the simulator and judges it. Deterministic in its options. */
export function runSimMembershipNemesis(o: SimNemesisOptions): MembershipReport {
  const n = o.nodes ?? 5;
  const broken = (o.failpoints ?? '').split(',').includes('membership.dead-on-first-miss');
  const config: Partial<SwimConfig> = broken ? { ...NEMESIS_SWIM, suspicionMult: 0 } : NEMESIS_SWIM;
  const schedule = membershipSchedule({ ...o, nodes: n });
  // The checks judge against the intended configuration, not the broken one.
  const bounds = nemesisBounds(NEMESIS_SWIM, n);
  let t0 = 0;
  const events: ViewEvent[] = [];
  const holder: { c?: SwimCluster } = {};
  const c = new SwimCluster({
    n,
    seed: o.seed,
    config,
    persistIncarnation: true,
    onEvent: (observer, at, e) => {
      if (e.type === 'health') return;
      const state = STATES[e.type];
      const subject = holder.c?.indexOf(e.member.id);
      if (state && subject !== undefined) events.push({ at: at - t0, observer, subject, state });
    },
  });
  holder.c = c;
  const sim = c.sim;
  if (sim.runUntilTrue(() => c.converged(), 30_000) === undefined)
    throw new Error(`seed ${o.seed}: the simulated cluster did not form`);
  t0 = sim.now();
  const rel = () => sim.now() - t0;

  const restarts: { node: number; at: number }[] = [];
  const records: FaultRecord[] = [];
  const gone = new Set<number>();
  const restart = (i: number, skew?: ClockSkew) => {
    restarts.push({ node: i, at: rel() });
    c.restart(i, { skew });
  };
  /** A graceful stop: leave, exit a little later, start again later still. */
  const bounce = (i: number, skew: ClockSkew, done: (up: number) => void) => {
    c.swim(i)?.leave();
    sim.at(sim.now() + STOP_MS, () => c.crash(i));
    sim.at(sim.now() + START_MS, () => {
      restart(i, skew);
      done(rel());
    });
  };
  const addr = (xs: readonly number[]) => xs.map((i) => c.addrs[i]);

  for (const f of schedule) {
    const begin = t0 + f.at;
    const heal = begin + f.duration;
    const record = (end: number, cuts: Cut[], downs: Down[]) =>
      records.push({ ...f, start: begin - t0, end, cuts, downs });
    switch (f.kind) {
      case 'partition':
      case 'bridge':
      case 'isolate':
      case 'one-way': {
        const made = faultCuts(f, n);
        let simCuts: SimCut[] = [];
        sim.at(begin, () => {
          simCuts = made.flatMap((x) => sim.partition(addr(x.from), addr(x.to), { oneWay: true }));
        });
        sim.at(heal, () => {
          sim.heal(simCuts);
          record(
            rel(),
            made.map((x) => ({ ...x, start: f.at, end: rel() })),
            [],
          );
        });
        break;
      }
      case 'loss':
        sim.at(begin, () => {
          sim.network.loss = f.loss!;
        });
        sim.at(heal, () => {
          sim.network.loss = 0;
          record(rel(), [], []);
        });
        break;
      case 'pause':
        sim.at(begin, () => c.pause(f.node!));
        sim.at(heal, () => {
          c.resume(f.node!);
          record(rel(), [], [{ node: f.node!, kind: 'pause', start: f.at, end: rel() }]);
        });
        break;
      case 'kill':
        sim.at(begin, () => c.crash(f.node!));
        if (f.restart === false) {
          gone.add(f.node!);
          record(
            Number.POSITIVE_INFINITY,
            [],
            [{ node: f.node!, kind: 'kill', start: f.at, end: Number.POSITIVE_INFINITY }],
          );
        } else {
          sim.at(heal, () => {
            restart(f.node!);
            record(rel(), [], [{ node: f.node!, kind: 'kill', start: f.at, end: rel() }]);
          });
        }
        break;
      case 'skew': {
        const downs: Down[] = [];
        sim.at(begin, () =>
          bounce(f.node!, f.skew!, (up) => downs.push({ node: f.node!, kind: 'stop', start: f.at, end: up })),
        );
        sim.at(heal, () => {
          const back = rel();
          bounce(f.node!, NO_SKEW, (up) => {
            downs.push({ node: f.node!, kind: 'stop', start: back, end: up });
            record(up, [], downs);
          });
        });
        break;
      }
    }
  }
  const lastHeal = Math.max(
    0,
    ...schedule.map((f) => (f.kind === 'kill' && f.restart === false ? f.at : f.at + f.duration + START_MS)),
  );
  sim.runUntil(t0 + lastHeal);
  const finalHeal = Math.max(0, ...records.map((r) => (Number.isFinite(r.end) ? r.end : r.start)));

  // Converged, and staying so, within the bound.
  const up = Array.from({ length: n }, (_, i) => i).filter((i) => !gone.has(i));
  const live = new ViewFollower(n);
  let since: number | undefined;
  const deadline = t0 + finalHeal + bounds.convergenceMs + SETTLE_MS;
  while (sim.now() < deadline) {
    if (disagreement(live.catchUp(events, restarts), up, [...gone]) === undefined) {
      since ??= sim.now();
      if (sim.now() - since >= SETTLE_MS) break;
    } else since = undefined;
    sim.runFor(100);
  }
  const observedUntil = rel();
  records.sort((a, b) => a.id - b.id);
  const verdict = checkMembership(
    { nodes: n, events, restarts, faults: records, finalHeal, end: observedUntil },
    bounds,
  );
  return {
    ...verdict,
    mode: 'sim',
    seed: o.seed,
    durationMs: o.durationMs,
    nodes: n,
    failpoints: o.failpoints ?? '',
    bounds,
    faults: records,
    finalHeal,
    observedUntil,
    events: events.length,
  };
}
