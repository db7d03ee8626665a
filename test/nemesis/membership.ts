/**
 * The membership nemesis on real processes: N `cairn up` nodes, each in its own network namespace
 * on a bridge (test/cluster/net-lab.ts), driven through a seeded schedule of faults
 * (membership-schedule.ts) — partitions, a bridge node, one-way cuts and random loss with
 * iptables; SIGSTOP/SIGCONT; kill -9 and restart; restarts with a skewed clock — while every
 * node's view is recorded from its own event stream: each node logs every membership event
 * (`member join|alive|suspect|dead|leave`, with the member's id) as a JSON line on stderr, read
 * here as it is written. After the final heal it waits for the views to converge, cross-checks
 * them against `cairn status --json` on every node, and judges the timeline with
 * membership-check.ts. docs/MEMBERSHIP.md, "Under faults", describes the whole.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatClockSkew } from '../../src/clock.js';
import { type Lab, withLab } from '../cluster/net-lab.js';
import {
  type CheckVerdict,
  checkMembership,
  type Down,
  disagreement,
  type FaultRecord,
  formatMembershipReport,
  type MemberState,
  type MembershipReport,
  nemesisBounds,
  nodeName,
  type ViewEvent,
  ViewFollower,
  type Views,
} from './membership-check.js';
import {
  describeFault,
  type Fault,
  type FaultKind,
  faultCuts,
  isNetworkFault,
  membershipSchedule,
  NEMESIS_SWIM,
} from './membership-schedule.js';

export { formatMembershipReport, type MembershipReport } from './membership-check.js';
export { FAULT_KINDS, type FaultKind } from './membership-schedule.js';

export interface MembershipNemesisOptions {
  seed: number;
  /** How long faults are injected; convergence is awaited after. */
  durationMs: number;
  /** Default 5. */
  nodes?: number;
  /** CAIRN_FAILPOINTS of every node (src/failpoints.ts), e.g. 'membership.dead-on-first-miss'. */
  failpoints?: string;
  log?: (line: string) => void;
  /** Fault kinds to draw from; default all (membership-schedule.ts). */
  kinds?: readonly FaultKind[];
  /** The range of a loss fault's probability; default LOSS_RANGE (membership-schedule.ts). */
  loss?: readonly [number, number];
}

const EVENT_STATES = new Map<string | undefined, MemberState>([
  ['member join', 'alive'],
  ['member alive', 'alive'],
  ['member suspect', 'suspect'],
  ['member dead', 'dead'],
  ['member leave', 'left'],
]);

/** How long views must stay converged before the run ends. */
const SETTLE_MS = 3000;

/** Runs one seeded schedule against real node processes and judges what their views did. */
export async function runMembershipNemesis(opts: MembershipNemesisOptions): Promise<MembershipReport> {
  const n = opts.nodes ?? 5;
  const log = opts.log ?? (() => {});
  const schedule = membershipSchedule({ ...opts, nodes: n });
  const bounds = nemesisBounds(NEMESIS_SWIM, n);
  const early: { at: number; observer: number; member: string; state: MemberState }[] = [];
  const events: ViewEvent[] = [];
  const index = new Map<string, number>();
  let t0 = Number.NaN;
  const now = () => performance.now() - t0;

  const onLog = (observer: number, line: string) => {
    if (!line.startsWith('{')) return;
    let j: { msg?: string; member?: string };
    try {
      j = JSON.parse(line);
    } catch {
      return;
    }
    const state = EVENT_STATES.get(j.msg);
    if (!state || !j.member) return;
    // Until the cluster has formed, not every id is known yet: those are sorted out at the start.
    if (Number.isNaN(t0)) {
      early.push({ at: -1, observer, member: j.member, state });
      return;
    }
    const subject = index.get(j.member);
    if (subject !== undefined) events.push({ at: now(), observer, subject, state });
  };

  return withLab(
    n,
    'mnem',
    async (lab) => {
      for (const node of lab.nodes) index.set(node.info!.id, node.index);
      for (const e of early) {
        const subject = index.get(e.member);
        if (subject !== undefined) events.push({ at: e.at, observer: e.observer, subject, state: e.state });
      }
      t0 = performance.now();
      log(`membership nemesis: seed ${opts.seed}, ${n} nodes, ${schedule.length} faults planned`);
      const restarts: { node: number; at: number }[] = [];
      const records: FaultRecord[] = [];
      const gone = new Set<number>();
      const until = (at: number) => sleep(Math.max(0, t0 + at - performance.now()));
      const start = async (i: number, env: NodeJS.ProcessEnv = {}) => {
        restarts.push({ node: i, at: now() });
        await lab.start(i, { env, seeds: lab.nodes.filter((x) => x.index !== i).map((x) => x.addr) });
        return now();
      };
      const stop = (i: number, sig: 'SIGKILL' | 'SIGTERM') => lab.nodes[i].proc?.stop(sig, 10_000);

      const inject = async (f: Fault): Promise<FaultRecord> => {
        log(`${(now() / 1000).toFixed(1)} s: #${f.id} ${describeFault(f)}`);
        const begin = now();
        const heal = f.at + f.duration;
        const node = f.node!;
        const downs: Down[] = [];
        if (isNetworkFault(f.kind)) {
          const made = faultCuts(f, n);
          await Promise.all(
            lab.nodes.map((x) => {
              if (f.kind === 'loss') {
                return lab.iptables(x.index, [
                  ...['-A', 'INPUT', '-i', 'eth0', '-m', 'statistic', '--mode', 'random'],
                  ...['--probability', String(f.loss), '-j', 'DROP'],
                ]);
              }
              const from = made.filter((c) => c.to.includes(x.index)).flatMap((c) => c.from);
              if (from.length === 0) return undefined;
              const src = from.map((j) => lab.nodes[j].ip).join(',');
              return lab.iptables(x.index, ['-A', 'INPUT', '-s', src, '-j', 'DROP']);
            }),
          );
          await until(heal);
          await Promise.all(lab.nodes.map((x) => lab.iptables(x.index, ['-F', 'INPUT'])));
          const end = now();
          return { ...f, start: begin, end, cuts: made.map((c) => ({ ...c, start: begin, end })), downs };
        }
        let end: number;
        if (f.kind === 'pause') {
          const p = lab.nodes[node].proc!;
          p.signal('SIGSTOP');
          try {
            await until(heal);
          } finally {
            p.signal('SIGCONT');
          }
          end = now();
          downs.push({ node, kind: 'pause', start: begin, end });
        } else if (f.kind === 'kill') {
          await stop(node, 'SIGKILL');
          if (f.restart === false) {
            gone.add(node);
            end = Number.POSITIVE_INFINITY;
          } else {
            await until(heal);
            end = await start(node);
          }
          downs.push({ node, kind: 'kill', start: begin, end });
        } else {
          await stop(node, 'SIGTERM');
          const up = await start(node, { CAIRN_CLOCK_SKEW: formatClockSkew(f.skew!) });
          downs.push({ node, kind: 'stop', start: begin, end: up });
          await until(heal);
          const back = now();
          await stop(node, 'SIGTERM');
          end = await start(node);
          downs.push({ node, kind: 'stop', start: back, end });
        }
        return { ...f, start: begin, end, cuts: [], downs };
      };

      const lane = async (faults: Fault[]) => {
        for (const f of faults) {
          await until(f.at);
          records.push(await inject(f));
        }
      };
      try {
        await Promise.all([
          lane(schedule.filter((f) => isNetworkFault(f.kind))),
          lane(schedule.filter((f) => !isNetworkFault(f.kind))),
        ]);
      } finally {
        // Whatever failed, no process is left stopped and no rule left in place.
        for (const x of lab.nodes) x.proc?.signal('SIGCONT');
        await Promise.all(lab.nodes.map((x) => lab.iptables(x.index, ['-F', 'INPUT'])));
      }
      records.sort((a, b) => a.id - b.id);
      const finalHeal = Math.max(0, ...records.map((r) => (Number.isFinite(r.end) ? r.end : r.start)));

      // Wait for the views to converge, and stay so, within the bound.
      const live = new ViewFollower(n);
      const up = lab.nodes.map((x) => x.index).filter((i) => !gone.has(i));
      const deadline = finalHeal + bounds.convergenceMs + SETTLE_MS;
      let since: number | undefined;
      while (now() < deadline) {
        if (disagreement(live.catchUp(events, restarts), up, [...gone]) === undefined) {
          since ??= now();
          if (now() - since >= SETTLE_MS) break;
        } else since = undefined;
        await sleep(100);
      }
      const observedUntil = now();
      log(`${(observedUntil / 1000).toFixed(1)} s: observation ends`);

      // The event stream against what each node says when asked.
      const statusMismatch = await crossCheck(lab, up, index, () => live.catchUp(events, restarts));
      const observed = events.filter((e) => e.at <= observedUntil);
      const verdict = checkMembership(
        { nodes: n, events: observed, restarts, faults: records, finalHeal, end: observedUntil },
        bounds,
      );
      const checks = verdict.checks.map(
        (c): CheckVerdict =>
          c.name === 'convergence' && statusMismatch.length > 0
            ? { ...c, ok: false, violations: [...c.violations, ...statusMismatch] }
            : c,
      );
      return {
        ...verdict,
        checks,
        ok: checks.every((c) => c.ok),
        mode: 'real' as const,
        seed: opts.seed,
        durationMs: opts.durationMs,
        nodes: n,
        failpoints: opts.failpoints ?? '',
        bounds,
        faults: records,
        finalHeal,
        observedUntil,
        events: observed.length,
      };
    },
    {
      env: { CAIRN_LOG_LEVEL: 'info', CAIRN_FAILPOINTS: opts.failpoints ?? '' },
      swim: NEMESIS_SWIM,
      onLog,
    },
  );
}

/**
 * Every running node's `cairn status --json` compared with the view its events gave. A view may
 * change between the two readings, so a node that differs is asked again (three times at most).
 */
async function crossCheck(
  lab: Lab,
  up: number[],
  index: Map<string, number>,
  views: () => Views,
): Promise<string[]> {
  const out: string[] = [];
  for (const o of up) {
    let diff: string[] = [];
    for (let attempt = 0; attempt < 3; attempt++) {
      const status = await lab.status(o);
      const v = views();
      diff = status.members.flatMap((m) => {
        const subject = index.get(m.id);
        if (subject === undefined || subject === o || v.now(o, subject) === m.state) return [];
        const seen = v.now(o, subject) ?? 'nothing';
        return [`${nodeName(o)}'s status holds ${nodeName(subject)} ${m.state}; its events said ${seen}`];
      });
      if (diff.length === 0) break;
    }
    out.push(...diff);
  }
  return out;
}

/** Prints the report and fails, with the report, unless every check passed and faults were injected. */
export function assertHealthy(r: MembershipReport): void {
  const text = formatMembershipReport(r);
  console.log(text);
  assert.ok(r.faults.length >= 8, `only ${r.faults.length} faults injected\n${text}`);
  assert.ok(r.ok, text);
}
