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
  type Cut,
  checkMembership,
  type Down,
  disagreement,
  type FaultRecord,
  formatMembershipReport,
  type MemberState,
  type MembershipReport,
  nemesisBounds,
  nodeName,
  Views,
} from './membership-check.js';
import {
  describeFault,
  type Fault,
  type FaultKind,
  membershipSchedule,
  NEMESIS_SWIM,
  NETWORK_FAULTS,
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

const EVENT_STATES: Record<string, MemberState> = {
  'member join': 'alive',
  'member alive': 'alive',
  'member suspect': 'suspect',
  'member dead': 'dead',
  'member leave': 'left',
};

/** How long views must stay converged before the run ends. */
const SETTLE_MS = 3000;

interface RawEvent {
  at: number;
  observer: number;
  member: string;
  state: MemberState;
}

/** The cuts a network fault makes: packets from each `from` node to each `to` node are dropped. */
function cutsOf(f: Fault, n: number): { from: number[]; to: number[] }[] {
  const all = Array.from({ length: n }, (_, i) => i);
  switch (f.kind) {
    case 'partition':
    case 'bridge': {
      const [a, b] = f.sides!;
      return [
        { from: [...a], to: [...b] },
        { from: [...b], to: [...a] },
      ];
    }
    case 'isolate': {
      const others = all.filter((i) => i !== f.node);
      return [
        { from: [f.node!], to: others },
        { from: others, to: [f.node!] },
      ];
    }
    case 'one-way':
      return [{ from: [...f.sides![0]], to: [...f.sides![1]] }];
    default:
      return [];
  }
}

/** Runs one seeded schedule against real node processes and judges what their views did. */
export async function runMembershipNemesis(opts: MembershipNemesisOptions): Promise<MembershipReport> {
  const n = opts.nodes ?? 5;
  const log = opts.log ?? (() => {});
  const schedule = membershipSchedule({ ...opts, nodes: n });
  const bounds = nemesisBounds(NEMESIS_SWIM, n);
  const raw: RawEvent[] = [];
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
    const state = j.msg === undefined ? undefined : EVENT_STATES[j.msg];
    // Before the schedule starts the clock reads NaN: those events are stamped at time 0.
    if (state && j.member) raw.push({ at: Number.isNaN(t0) ? 0 : now(), observer, member: j.member, state });
  };

  return withLab(
    n,
    'mnem',
    async (lab) => {
      t0 = performance.now();
      for (const e of raw) e.at = -1;
      log(`membership nemesis: seed ${opts.seed}, ${n} nodes, ${schedule.length} faults planned`);
      const index = new Map<string, number>();
      const refreshIds = () => {
        lab.nodes.forEach((node, i) => {
          if (node.info) index.set(node.info.id, i);
        });
      };
      refreshIds();
      const restarts: { node: number; at: number }[] = [];
      const records: FaultRecord[] = [];
      const gone = new Set<number>();
      const allAddrs = lab.nodes.map((x) => x.addr);

      const start = async (i: number, env: NodeJS.ProcessEnv = {}) => {
        restarts.push({ node: i, at: now() });
        await lab.start(i, { env, seeds: allAddrs.filter((_, j) => j !== i) });
        return now();
      };
      const stopProcess = async (i: number, sig: 'SIGKILL' | 'SIGTERM') => {
        await lab.nodes[i].proc?.stop(sig, 10_000);
      };

      const inject = async (f: Fault): Promise<FaultRecord> => {
        log(`${(now() / 1000).toFixed(1)} s: #${f.id} ${describeFault(f)}`);
        const begin = now();
        const cuts: Cut[] = [];
        const downs: Down[] = [];
        let end: number;
        if (NETWORK_FAULTS.includes(f.kind as (typeof NETWORK_FAULTS)[number])) {
          const made = cutsOf(f, n);
          await Promise.all(
            lab.nodes.map((node, i) => {
              const from = made.filter((c) => c.to.includes(i)).flatMap((c) => c.from);
              if (f.kind === 'loss') {
                return lab.iptables(i, [
                  ...['-A', 'INPUT', '-i', 'eth0', '-m', 'statistic', '--mode', 'random'],
                  ...['--probability', String(f.loss), '-j', 'DROP'],
                ]);
              }
              if (from.length === 0) return undefined;
              const src = from.map((j) => lab.nodes[j].ip).join(',');
              return lab.iptables(node.index, ['-A', 'INPUT', '-s', src, '-j', 'DROP']);
            }),
          );
          await sleep(Math.max(0, t0 + f.at + f.duration - performance.now()));
          await Promise.all(lab.nodes.map((_, i) => lab.iptables(i, ['-F', 'INPUT'])));
          end = now();
          for (const c of made) cuts.push({ ...c, start: begin, end });
        } else if (f.kind === 'pause') {
          const p = lab.nodes[f.node!].proc!;
          p.signal('SIGSTOP');
          try {
            await sleep(Math.max(0, t0 + f.at + f.duration - performance.now()));
          } finally {
            p.signal('SIGCONT');
          }
          end = now();
          downs.push({ node: f.node!, kind: 'pause', start: begin, end });
        } else if (f.kind === 'kill') {
          await stopProcess(f.node!, 'SIGKILL');
          if (f.restart === false) {
            gone.add(f.node!);
            end = Number.POSITIVE_INFINITY;
          } else {
            await sleep(Math.max(0, t0 + f.at + f.duration - performance.now()));
            end = await start(f.node!);
          }
          downs.push({ node: f.node!, kind: 'kill', start: begin, end });
        } else {
          await stopProcess(f.node!, 'SIGTERM');
          const up = await start(f.node!, { CAIRN_CLOCK_SKEW: formatClockSkew(f.skew!) });
          downs.push({ node: f.node!, kind: 'stop', start: begin, end: up });
          await sleep(Math.max(0, t0 + f.at + f.duration - performance.now()));
          const back = now();
          await stopProcess(f.node!, 'SIGTERM');
          end = await start(f.node!);
          downs.push({ node: f.node!, kind: 'stop', start: back, end });
        }
        return { ...f, start: begin, end, cuts, downs };
      };

      const lane = async (faults: Fault[]) => {
        for (const f of faults) {
          await sleep(Math.max(0, t0 + f.at - performance.now()));
          records.push(await inject(f));
        }
      };
      const isNet = (f: Fault) => (NETWORK_FAULTS as readonly string[]).includes(f.kind);
      try {
        await Promise.all([lane(schedule.filter(isNet)), lane(schedule.filter((f) => !isNet(f)))]);
      } finally {
        // Whatever failed, no process is left stopped and no rule left in place.
        for (const node of lab.nodes) node.proc?.signal('SIGCONT');
        await Promise.all(lab.nodes.map((_, i) => lab.iptables(i, ['-F', 'INPUT'])));
      }
      records.sort((a, b) => a.id - b.id);
      const finalHeal = Math.max(
        0,
        ...records.map((r) => (r.kind === 'kill' && r.restart === false ? r.start : r.end)),
      );
      refreshIds();

      // Wait for the views to converge, and stay so, within the bound.
      const live = new Views(n);
      const up = lab.nodes.map((_, i) => i).filter((i) => !gone.has(i));
      let applied = 0;
      let restartsApplied = 0;
      const catchUp = () => {
        const rs = [...restarts].sort((a, b) => a.at - b.at);
        while (applied < raw.length) {
          const e = raw[applied];
          while (restartsApplied < rs.length && rs[restartsApplied].at <= e.at)
            live.restart(rs[restartsApplied].node, rs[restartsApplied++].at);
          const subject = index.get(e.member);
          if (subject !== undefined) live.apply({ at: e.at, observer: e.observer, subject, state: e.state });
          applied++;
        }
      };
      const deadline = finalHeal + bounds.convergenceMs + SETTLE_MS;
      let since: number | undefined;
      while (now() < deadline) {
        catchUp();
        const wrong = disagreement(live, up, [...gone]);
        if (wrong === undefined) {
          since ??= now();
          if (now() - since >= SETTLE_MS) break;
        } else since = undefined;
        await sleep(100);
      }
      const observedUntil = now();
      log(`${(observedUntil / 1000).toFixed(1)} s: observation ends`);

      // The event stream against what each node says when asked.
      const statusMismatch = await crossCheck(lab, up, index, () => {
        catchUp();
        return live;
      });

      const events = raw.flatMap((e) => {
        const subject = index.get(e.member);
        return subject === undefined || e.at > observedUntil
          ? []
          : [{ at: e.at, observer: e.observer, subject, state: e.state }];
      });
      const verdict = checkMembership(
        { nodes: n, events, restarts, faults: records, finalHeal, end: observedUntil },
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
        events: events.length,
      };
    },
    {
      env: { CAIRN_LOG_LEVEL: 'info', CAIRN_FAILPOINTS: opts.failpoints ?? '' },
      swim: NEMESIS_SWIM,
      onLog,
    },
  );
}

/** Every running node's `cairn status --json` compared with the view its events gave. */
async function crossCheck(
  lab: Lab,
  up: number[],
  index: Map<string, number>,
  views: () => Views,
): Promise<string[]> {
  const out: string[] = [];
  const statuses = await Promise.all(up.map((i) => lab.status(i)));
  const v = views();
  statuses.forEach((s, k) => {
    const o = up[k];
    for (const m of s.members) {
      const subject = index.get(m.id);
      if (subject === undefined || subject === o) continue;
      const seen = v.now(o, subject);
      if (seen !== m.state)
        out.push(
          `${nodeName(o)}'s status holds ${nodeName(subject)} ${m.state}; its events said ${seen ?? 'nothing'}`,
        );
    }
  });
  return out;
}

/** Prints the report and fails, with the report, unless every check passed and faults were injected. */
export function assertHealthy(r: MembershipReport): void {
  const text = formatMembershipReport(r);
  console.log(text);
  assert.ok(r.faults.length >= 8, `only ${r.faults.length} faults injected\n${text}`);
  assert.ok(r.ok, text);
}
