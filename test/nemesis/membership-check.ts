/**
 * The membership nemesis's checks, pure: they read a timeline of every node's view (what each
 * node concluded about each other node, and when) and what the faults did to the network and to
 * the processes, and say whether membership behaved. The real harness (membership.ts) and the
 * simulator (membership-sim.ts) both build a Timeline and hand it here.
 *
 * The three checks, stated exactly (docs/MEMBERSHIP.md, "Under faults", says the same):
 *
 * 1. **Convergence.** After the final heal, every running node holds every running node alive and
 *    every node killed for good dead (or does not know it), from some moment on to the end of the
 *    observation, and that moment comes at most `convergenceMs` after the final heal.
 *
 * 2. **No live, reachable node declared dead.** A node o may come to hold s dead at time t only if
 *    o is *entitled* to that belief at t. Entitlement arises where s really could not be reached:
 *    - node x cannot complete a probe of s — neither directly (x→s and s→x) nor through one
 *      running helper h (x→h, h→s, s→h, h→x), which is what SWIM's indirect probe needs — because
 *      of the cuts in force or because s is paused or down. Such a stretch entitles x from its
 *      start until `graceMs` after its end, if it lasted at least minSuspicion − refute (a
 *      correct member cannot finish a suspicion sooner, and the victim gets `refuteMs` to answer
 *      once it is back), or if x already held s suspect when it began (a suspicion raised before,
 *      under loss, may run out during it);
 *    - o itself was paused: it is entitled, until `graceMs` after SIGCONT, to the deaths of the
 *      members it held suspect when it stopped (their timers run before their refutations);
 *    - entitlement spreads as news does: along every working link, from a running entitled node
 *      to any node whose process is there to receive (a paused one receives when it resumes),
 *      carrying the sender's expiry. So across a partition "dead" is legitimate; on one's own side
 *      it is legitimate only once the news can arrive (after the heal, or by a one-way link).
 *    Loss never entitles anyone: SWIM with indirect probes must ride it out. A member seen *left*
 *    must have been stopped gracefully (at most `graceMs` before).
 *
 * 3. **Detection.** For each kill and each isolation: among the other nodes that held the victim
 *    alive when it began and stayed up, the time until every one of them held it suspect, and
 *    until every one held it dead. Each must be within `detectionMs` (Cairn's detectionBound, for
 *    the slowest clock a skew fault makes); a fault that lasted longer than that without being
 *    detected by all is a violation too; one healed sooner is reported, not judged.
 */

import { detectionBound } from '../../src/cluster/gossip.js';
import { type SwimConfig, suspicionMinTimeout, swimConfig } from '../../src/cluster/membership/config.js';
import { describeFault, type Fault, SKEW_RATES } from './membership-schedule.js';

export type MemberState = 'alive' | 'suspect' | 'dead' | 'left';

/** Node `observer` came to hold `subject` in `state` at `at` (ms from the start of the schedule). */
export interface ViewEvent {
  readonly at: number;
  readonly observer: number;
  readonly subject: number;
  readonly state: MemberState;
}

/** Packets from any node of `from` to any node of `to` were dropped during [start, end). */
export interface Cut {
  readonly from: readonly number[];
  readonly to: readonly number[];
  readonly start: number;
  readonly end: number;
}

/**
 * A node's process was not running during [start, end): stopped by SIGSTOP ('pause', its view
 * kept), killed ('kill') or stopped gracefully ('stop') and started again at `end` with an empty
 * view (Infinity: never).
 */
export interface Down {
  readonly node: number;
  readonly kind: 'pause' | 'kill' | 'stop';
  readonly start: number;
  readonly end: number;
}

/** A fault as it was carried out: when it took effect and healed, and what it did. */
export interface FaultRecord extends Fault {
  readonly start: number;
  /** When it was healed (a kill: when the node was back; without restart, Infinity). */
  readonly end: number;
  readonly cuts: readonly Cut[];
  readonly downs: readonly Down[];
}

export interface Timeline {
  readonly nodes: number;
  /** Every node's view changes, in time order. */
  readonly events: readonly ViewEvent[];
  /** When a node's process started again (after a kill or a stop): its view began empty there. */
  readonly restarts: readonly { readonly node: number; readonly at: number }[];
  readonly faults: readonly FaultRecord[];
  /** When the last fault was healed (a kill without restart counts at its start). */
  readonly finalHeal: number;
  /** When observation ended. */
  readonly end: number;
}

export interface Bounds {
  readonly minSuspicionMs: number;
  readonly maxSuspicionMs: number;
  /** What a member gets, once it can be reached again, to refute a suspicion of itself. */
  readonly refuteMs: number;
  /** How long after a cause ends a death may still be legitimately concluded or heard of. */
  readonly graceMs: number;
  readonly detectionMs: number;
  readonly convergenceMs: number;
}

/** The bounds the checks use, from the SWIM configuration and the cluster's size. */
export function nemesisBounds(config: Partial<SwimConfig>, nodes: number): Bounds {
  const c = swimConfig(config);
  const min = suspicionMinTimeout(c.suspicionMult, nodes, c.probeInterval);
  const max = min * c.suspicionMaxMult;
  // A node whose clock runs slow waits longer in real time for everything it times.
  const slow = 1 / SKEW_RATES[0];
  const detection = detectionBound(c, nodes);
  return {
    minSuspicionMs: min,
    maxSuspicionMs: max,
    refuteMs: 2 * c.probeInterval,
    graceMs: Math.round((max + 4 * c.probeInterval) * slow),
    detectionMs: Math.round(detection * slow),
    convergenceMs: Math.round((detection + 2 * c.reconnectInterval) * slow),
  };
}

export interface CheckVerdict {
  readonly name: 'convergence' | 'no-false-death' | 'detection';
  readonly ok: boolean;
  readonly summary: string;
  /** One line each, with the evidence. */
  readonly violations: readonly string[];
}

export interface DetectionSample {
  readonly fault: number;
  readonly kind: 'kill' | 'isolate';
  readonly victim: number;
  readonly observers: number;
  /** Until every observer held the victim suspect (or dead); undefined: not all did in time. */
  readonly suspectMs?: number;
  readonly deadMs?: number;
  /** Why there is no complete measurement. */
  readonly note?: string;
}

export interface Stat {
  readonly n: number;
  readonly median?: number;
  readonly max?: number;
}

export interface MembershipVerdict {
  readonly checks: readonly CheckVerdict[];
  readonly detection: {
    readonly samples: readonly DetectionSample[];
    readonly suspect: Stat;
    readonly dead: Stat;
  };
  /** When every view had converged for good (ms from the start), if it did. */
  readonly convergedAt?: number;
  readonly ok: boolean;
}

export const nodeName = (i: number) => `n${i + 1}`;
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** Every node's view over time, rebuilt from the events; also used live by the real harness. */
export class Views {
  private readonly hist: { at: number; state: MemberState | undefined }[][];
  private readonly current: (MemberState | undefined)[];

  constructor(readonly nodes: number) {
    this.hist = Array.from({ length: nodes * nodes }, () => []);
    this.current = new Array(nodes * nodes).fill(undefined);
  }

  /** Applies one event; returns the state the observer held before. */
  apply(e: ViewEvent): MemberState | undefined {
    const k = e.observer * this.nodes + e.subject;
    const before = this.current[k];
    if (before !== e.state) {
      this.current[k] = e.state;
      this.hist[k].push({ at: e.at, state: e.state });
    }
    return before;
  }

  /** The observer's process started again: it knows nobody. */
  restart(observer: number, at: number): void {
    for (let s = 0; s < this.nodes; s++) {
      const k = observer * this.nodes + s;
      if (this.current[k] === undefined) continue;
      this.current[k] = undefined;
      this.hist[k].push({ at, state: undefined });
    }
  }

  now(observer: number, subject: number): MemberState | undefined {
    return this.current[observer * this.nodes + subject];
  }

  at(observer: number, subject: number, t: number): MemberState | undefined {
    let s: MemberState | undefined;
    for (const h of this.hist[observer * this.nodes + subject]) {
      if (h.at > t) break;
      s = h.state;
    }
    return s;
  }

  /** The first time in [from, to] at which the observer held the subject in one of `states`. */
  firstIn(observer: number, subject: number, states: readonly MemberState[], from: number, to: number) {
    const at = this.at(observer, subject, from);
    if (at !== undefined && states.includes(at)) return from;
    for (const h of this.hist[observer * this.nodes + subject]) {
      if (h.at > to) break;
      if (h.at > from && h.state !== undefined && states.includes(h.state)) return h.at;
    }
    return undefined;
  }

  /** The last change of the observer's view of the subject. */
  lastChange(observer: number, subject: number): number | undefined {
    const h = this.hist[observer * this.nodes + subject];
    return h.length === 0 ? undefined : h[h.length - 1].at;
  }
}

/** Applies what is new in growing, time-ordered lists of view changes and restarts: the live view of a run. */
export class ViewFollower {
  readonly views: Views;
  private events = 0;
  private restarts = 0;

  constructor(nodes: number) {
    this.views = new Views(nodes);
  }

  catchUp(events: readonly ViewEvent[], restarts: readonly { node: number; at: number }[]): Views {
    for (; this.events < events.length; this.events++) {
      const e = events[this.events];
      for (; this.restarts < restarts.length && restarts[this.restarts].at <= e.at; this.restarts++)
        this.views.restart(restarts[this.restarts].node, restarts[this.restarts].at);
      this.views.apply(e);
    }
    return this.views;
  }
}

/**
 * Whether the views are what they must be once everything is healed: each node in `running` holds
 * each other one alive, and each node in `gone` dead, left, or not at all. Returns the first
 * disagreement, or undefined when there is none.
 */
export function disagreement(
  views: Views,
  running: readonly number[],
  gone: readonly number[],
): string | undefined {
  for (const o of running) {
    for (const s of running) {
      if (s !== o && views.now(o, s) !== 'alive')
        return `${nodeName(o)} holds ${nodeName(s)} ${views.now(o, s) ?? 'unknown'}`;
    }
    for (const s of gone) {
      const st = views.now(o, s);
      if (st === 'alive' || st === 'suspect') return `${nodeName(o)} holds ${nodeName(s)} (killed) ${st}`;
    }
  }
  return undefined;
}

/** The processes and links at one moment, from the faults in force. */
class World {
  readonly running: boolean[];
  /** Running or paused: a process that will read what reaches it. */
  readonly present: boolean[];
  /**
   * Running, and back long enough (`rejoinMs`) for the others to hold it live again: only such a
   * node is picked to relay a probe (a restarted one has to rejoin first, a resumed one to refute).
   */
  readonly helper: boolean[];
  private readonly blocked: boolean[];

  constructor(
    readonly n: number,
    cuts: readonly Cut[],
    downs: readonly Down[],
    t: number,
    rejoinMs: number,
  ) {
    this.running = new Array(n).fill(true);
    this.present = new Array(n).fill(true);
    this.helper = new Array(n).fill(true);
    this.blocked = new Array(n * n).fill(false);
    for (const d of downs) {
      if (d.start > t || t >= d.end + rejoinMs) continue;
      this.helper[d.node] = false;
      if (t >= d.end) continue;
      this.running[d.node] = false;
      if (d.kind !== 'pause') this.present[d.node] = false;
    }
    for (const c of cuts) {
      if (c.start > t || t >= c.end) continue;
      for (const a of c.from) for (const b of c.to) this.blocked[a * n + b] = true;
    }
  }

  link(a: number, b: number): boolean {
    return !this.blocked[a * this.n + b];
  }

  /**
   * Whether a probe by x of s could complete: directly, or through one running helper. Whether
   * x itself runs is not asked: a pause of the prober does not make the target unreachable.
   */
  canProbe(x: number, s: number): boolean {
    if (!this.running[s]) return false;
    if (this.link(x, s) && this.link(s, x)) return true;
    for (let h = 0; h < this.n; h++) {
      if (h === x || h === s || !this.helper[h]) continue;
      if (this.link(x, h) && this.link(h, s) && this.link(s, h) && this.link(h, x)) return true;
    }
    return false;
  }
}

function faultsAt(t: number, faults: readonly FaultRecord[]): string {
  const active = faults.filter((f) => f.start <= t && t < f.end);
  return active.length === 0
    ? 'no fault in force'
    : active.map((f) => `#${f.id} ${describeFault(f)}`).join('; ');
}

function median(xs: number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function stat(xs: number[]): Stat {
  return { n: xs.length, median: median(xs), max: xs.length ? Math.max(...xs) : undefined };
}

export function checkMembership(t: Timeline, b: Bounds): MembershipVerdict {
  const downs = t.faults.flatMap((f) => f.downs);
  const { verdict: noFalseDeath, views } = judgeDeaths(t, b);
  const { verdict: detection, ...measured } = measureDetection(t, b, views, downs);
  const { verdict: convergence, convergedAt } = judgeConvergence(t, b, views, downs);
  const checks = [convergence, noFalseDeath, detection];
  return { checks, detection: measured, convergedAt, ok: checks.every((c) => c.ok) };
}

interface Run {
  start: number;
  end: number;
  qualifies?: boolean;
}

/** Check 2: replays every view change, judging each new death against the entitlements of its moment. */
function judgeDeaths(t: Timeline, b: Bounds): { verdict: CheckVerdict; views: Views } {
  const n = t.nodes;
  const cuts = t.faults.flatMap((f) => f.cuts);
  const downs = t.faults.flatMap((f) => f.downs);
  const views = new Views(n);

  // Epochs: stretches during which the same cuts and the same processes are in force.
  const times = new Set<number>([0]);
  for (const x of cuts) for (const v of [x.start, x.end]) times.add(v);
  for (const d of downs) for (const v of [d.start, d.end, d.end + b.refuteMs]) times.add(v);
  const starts = [...times].filter((v) => Number.isFinite(v) && v >= 0 && v < t.end).sort((x, y) => x - y);
  const epochs = starts.map((a, i) => ({
    a,
    b: starts[i + 1] ?? t.end,
    world: new World(n, cuts, downs, a, b.refuteMs),
  }));

  // Each stretch during which x cannot probe s, by epoch.
  const runAt: (Run | undefined)[][] = epochs.map(() => new Array(n * n).fill(undefined));
  for (let x = 0; x < n; x++) {
    for (let s = 0; s < n; s++) {
      if (x === s) continue;
      let run: Run | undefined;
      epochs.forEach((e, i) => {
        if (!e.world.present[x] || e.world.canProbe(x, s)) {
          run = undefined;
          return;
        }
        run ??= { start: e.a, end: e.b };
        run.end = e.b;
        runAt[i][x * n + s] = run;
      });
    }
  }

  const threshold = b.minSuspicionMs - b.refuteMs;
  /** Until when o may hold s dead: [s * n + o]. */
  const until = new Float64Array(n * n).fill(Number.NEGATIVE_INFINITY);
  const violations: string[] = [];
  const stopped = downs.filter((d) => d.kind === 'stop');
  const restarts = [...t.restarts].sort((x, y) => x.at - y.at);
  let ei = 0;
  let ri = 0;
  let deaths = 0;

  /** Why a death was not legitimate, with the evidence. */
  const unentitled = (e: ViewEvent, epoch: number): string => {
    const [o, s] = [nodeName(e.observer), nodeName(e.subject)];
    const held = views.at(e.observer, e.subject, e.at - 1e-6) ?? 'unknown';
    const run = runAt[epoch][e.observer * n + e.subject];
    let why: string;
    if (run) {
      const then = views.at(e.observer, e.subject, run.start) ?? 'unknown';
      why =
        `${o} could not probe ${s} only from ${secs(run.start)} to ${secs(run.end)}, shorter than ` +
        `${secs(threshold)} (minimum suspicion less the time to refute), and held it ${then} when that began`;
    } else if (!epochs[epoch].world.running[e.subject]) {
      why = `${s} was stopped, but nobody entitled to say so could have told ${o}`;
    } else {
      why = `${o} could probe ${s} (directly or through a helper), and no node that could not had told it`;
    }
    return `${secs(e.at)}: ${o} declared ${s} dead (it held it ${held}): ${why}. In force: ${faultsAt(e.at, t.faults)}`;
  };

  /** Applies the view changes (and restarts) before `limit` (up to it, if `inclusive`). */
  const replay = (limit: number, inclusive: boolean, epoch: number) => {
    const due = (at: number) => (inclusive ? at <= limit : at < limit);
    for (;;) {
      const e = t.events[ei];
      const r = restarts[ri];
      if (r && due(r.at) && (!e || r.at <= e.at)) {
        views.restart(r.node, r.at);
        ri++;
        continue;
      }
      if (!e || !due(e.at)) return;
      ei++;
      if (views.apply(e) === e.state) continue;
      if (e.state === 'dead') {
        deaths++;
        if (until[e.subject * n + e.observer] < e.at) violations.push(unentitled(e, epoch));
      } else if (e.state === 'left') {
        if (!stopped.some((d) => d.node === e.subject && d.start <= e.at && e.at <= d.end + b.graceMs))
          violations.push(
            `${secs(e.at)}: ${nodeName(e.observer)} holds ${nodeName(e.subject)} left, which never left`,
          );
      }
    }
  };

  epochs.forEach((e, i) => {
    // The views as this epoch begins: its causes come before the changes at its first instant.
    replay(e.a, false, Math.max(0, i - 1));
    const w = e.world;
    for (const d of downs) {
      // A restarted process's beliefs went with the old one.
      if (d.kind !== 'pause' && d.end === e.a) for (let s = 0; s < n; s++) until[s * n + d.node] = -Infinity;
      if (d.kind === 'pause' && d.start === e.a) {
        for (let s = 0; s < n; s++) {
          if (views.now(d.node, s) === 'suspect')
            until[s * n + d.node] = Math.max(until[s * n + d.node], d.end + b.graceMs);
        }
      }
    }
    for (let x = 0; x < n; x++) {
      for (let s = 0; s < n; s++) {
        const run = runAt[i][x * n + s];
        if (!run) continue;
        if (run.start === e.a)
          run.qualifies = run.end - run.start >= threshold || views.now(x, s) === 'suspect';
        if (run.qualifies) until[s * n + x] = Math.max(until[s * n + x], run.end + b.graceMs);
      }
    }
    // News travels along working links to whoever is there to read it.
    for (let s = 0; s < n; s++) {
      for (let changed = true; changed; ) {
        changed = false;
        for (let x = 0; x < n; x++) {
          const ux = until[s * n + x];
          if (!w.running[x] || ux < e.a) continue;
          for (let y = 0; y < n; y++) {
            if (y === x || !w.present[y] || !w.link(x, y) || until[s * n + y] >= ux) continue;
            until[s * n + y] = ux;
            changed = true;
          }
        }
      }
    }
    replay(e.b, i === epochs.length - 1, i);
  });
  const verdict: CheckVerdict = {
    name: 'no-false-death',
    ok: violations.length === 0,
    summary:
      violations.length === 0
        ? `${deaths} deaths concluded, every one while its observer was entitled to it`
        : `${violations.length} of ${deaths} deaths concluded of live, reachable members (or leaves never made)`,
    violations,
  };
  return { verdict, views };
}

/** Check 3: for each kill and isolation, how long until every observer held the victim suspect, and dead. */
function measureDetection(t: Timeline, b: Bounds, views: Views, downs: readonly Down[]) {
  const samples: DetectionSample[] = [];
  const slow: string[] = [];
  for (const f of t.faults) {
    if (f.kind !== 'kill' && f.kind !== 'isolate') continue;
    const victim = f.node!;
    const end = Math.min(f.end, t.end);
    // Observers must stay up while detection is due; what happens to them later is another fault's.
    const due = Math.min(end, f.start + b.detectionMs);
    const observers: number[] = [];
    for (let o = 0; o < t.nodes; o++) {
      if (o === victim || views.at(o, victim, f.start) !== 'alive') continue;
      if (downs.some((d) => d.node === o && d.start < due && d.end > f.start)) continue;
      observers.push(o);
    }
    const base = { fault: f.id, kind: f.kind, victim, observers: observers.length };
    if (observers.length === 0) {
      samples.push({ ...base, note: 'no other node held it alive and stayed up' });
      continue;
    }
    const allHeld = (states: MemberState[]) => {
      let worst = 0;
      for (const o of observers) {
        const at = views.firstIn(o, victim, states, f.start, end);
        if (at === undefined) return undefined;
        worst = Math.max(worst, at - f.start);
      }
      return worst;
    };
    const suspectMs = allHeld(['suspect', 'dead']);
    const deadMs = allHeld(['dead']);
    const lasted = end - f.start;
    let note: string | undefined;
    if (deadMs === undefined) {
      note = `healed after ${secs(lasted)}, before every observer held it dead`;
      if (lasted > b.detectionMs)
        slow.push(`#${f.id} ${describeFault(f)}: not held dead by all within ${secs(b.detectionMs)}`);
    } else if (deadMs > b.detectionMs) {
      slow.push(
        `#${f.id} ${describeFault(f)}: held dead by all after ${secs(deadMs)} > ${secs(b.detectionMs)}`,
      );
    }
    samples.push({ ...base, suspectMs, deadMs, note });
  }
  const suspect = stat(samples.flatMap((s) => (s.suspectMs === undefined ? [] : [s.suspectMs])));
  const dead = stat(samples.flatMap((s) => (s.deadMs === undefined ? [] : [s.deadMs])));
  const verdict: CheckVerdict = {
    name: 'detection',
    ok: slow.length === 0,
    summary:
      dead.n === 0
        ? `no kill or isolation was held dead by all before it healed (${samples.length} faults)`
        : `${dead.n} of ${samples.length} kills/isolations held dead by all: median ${secs(dead.median!)}, ` +
          `max ${secs(dead.max!)} (bound ${secs(b.detectionMs)}); suspect by all: median ${secs(suspect.median ?? 0)}`,
    violations: slow,
  };
  return { verdict, samples, suspect, dead };
}

/** Check 1: the views agree after the final heal, for good, soon enough. */
function judgeConvergence(t: Timeline, b: Bounds, views: Views, downs: readonly Down[]) {
  const gone = new Set(downs.filter((d) => d.end === Number.POSITIVE_INFINITY).map((d) => d.node));
  const up = Array.from({ length: t.nodes }, (_, i) => i).filter((i) => !gone.has(i));
  const wrong = disagreement(views, up, [...gone]);
  let convergedAt: number | undefined;
  const violations: string[] = [];
  if (wrong !== undefined) violations.push(`at the end of observation (${secs(t.end)}): ${wrong}`);
  else {
    convergedAt = t.finalHeal;
    for (const o of up)
      for (let s = 0; s < t.nodes; s++) convergedAt = Math.max(convergedAt, views.lastChange(o, s) ?? 0);
    if (convergedAt - t.finalHeal > b.convergenceMs)
      violations.push(
        `converged ${secs(convergedAt - t.finalHeal)} after the final heal, beyond ${secs(b.convergenceMs)}`,
      );
  }
  const verdict: CheckVerdict = {
    name: 'convergence',
    ok: violations.length === 0,
    summary:
      convergedAt === undefined
        ? 'views did not converge'
        : `all views converged ${secs(convergedAt - t.finalHeal)} after the final heal (bound ${secs(b.convergenceMs)})`,
    violations,
  };
  return { verdict, convergedAt };
}

/** What one run of the membership nemesis found, real or simulated. */
export interface MembershipReport extends MembershipVerdict {
  readonly mode: 'real' | 'sim';
  readonly seed: number;
  readonly durationMs: number;
  readonly nodes: number;
  readonly failpoints: string;
  readonly bounds: Bounds;
  readonly faults: readonly FaultRecord[];
  readonly finalHeal: number;
  /** When observation ended, ms from the start of the schedule. */
  readonly observedUntil: number;
  readonly events: number;
}

/** The report as text: the faults with their times, each check's verdict and evidence, detection times. */
export function formatMembershipReport(r: MembershipReport): string {
  const lines = [
    `membership nemesis (${r.mode}): seed ${r.seed}, ${secs(r.durationMs)} of faults, ${r.nodes} nodes` +
      (r.failpoints ? `, failpoints ${r.failpoints}` : ''),
    `  bounds: suspicion ${secs(r.bounds.minSuspicionMs)}..${secs(r.bounds.maxSuspicionMs)}, ` +
      `detection ${secs(r.bounds.detectionMs)}, convergence ${secs(r.bounds.convergenceMs)}, grace ${secs(r.bounds.graceMs)}`,
    `faults (${r.faults.length}):`,
    ...r.faults.map(
      (f) =>
        `  #${f.id} ${secs(f.start).padStart(7)} .. ${(Number.isFinite(f.end) ? secs(f.end) : 'end').padStart(7)}  ${describeFault(f)}`,
    ),
    `final heal at ${secs(r.finalHeal)}; ${r.events} view changes observed until ${secs(r.observedUntil)}`,
    'checks:',
  ];
  for (const c of r.checks) {
    lines.push(`  ${c.ok ? 'PASS' : 'FAIL'} ${c.name}: ${c.summary}`);
    for (const v of c.violations.slice(0, 20)) lines.push(`       ${v}`);
    if (c.violations.length > 20) lines.push(`       ... and ${c.violations.length - 20} more`);
  }
  lines.push('detection (until every other node that held the victim alive saw it suspect / dead):');
  for (const s of r.detection.samples) {
    const t = (ms: number | undefined) => (ms === undefined ? '-' : secs(ms));
    lines.push(
      `  #${s.fault} ${s.kind} ${nodeName(s.victim)}: ${s.observers} observers, suspect ${t(s.suspectMs)}, dead ${t(s.deadMs)}` +
        (s.note ? ` (${s.note})` : ''),
    );
  }
  lines.push(`verdict: ${r.ok ? 'PASS' : 'FAIL'}`);
  return lines.join('\n');
}
