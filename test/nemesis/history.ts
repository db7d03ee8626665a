/**
 * The history of a run, assembled in the parent: operations streamed by the workload runner (one
 * JSON line per event, on its stdout) and the node crashes the parent injected, both timed with
 * `historyNow`. Each workload's check gets one node's part at a time: that workload's operations
 * on the node's keys (`n1/...`) and that node's crashes.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { CrashKind, Operation } from '../../src/check/index.js';
import { crashOperation } from '../../src/check/index.js';
import { NemesisError } from './base.js';
import type { CheckReport } from './workload.js';
import { loadWorkload } from './workloads/index.js';

/** One line of the runner's stdout. */
export type RunnerMessage =
  | {
      type: 'invoke';
      w: string;
      id: number;
      process: string;
      key: string;
      input: unknown;
      t: number;
    }
  | { type: 'ok'; id: number; output?: unknown; t: number }
  | { type: 'fail'; id: number; t: number }
  | { type: 'open'; id: number }
  | { type: 'log'; w: string; line: string }
  | { type: 'ready' }
  | { type: 'ran' }
  | { type: 'done' }
  | { type: 'error'; message: string };

/** Crash operations' ids start here, far above any the runner gives. */
const CRASH_IDS = 1_000_000_000;

interface Pending {
  readonly w: string;
  readonly op: Omit<Operation, 'outcome'>;
}

export class HistoryCollector {
  /**
   * History times are kept as milliseconds since `origin` (a `historyNow` time), so that
   * explanations read as times into the run.
   */
  constructor(private readonly origin: number) {}

  private readonly done = new Map<string, Operation[]>();
  private readonly pending = new Map<number, Pending>();
  private readonly crashes: { node: string; op: Operation }[] = [];

  /** Takes one runner event; the others (log, ready...) are the caller's. */
  take(m: RunnerMessage): void {
    if (m.type === 'invoke') {
      if (this.pending.has(m.id)) throw new NemesisError(`runner invoked operation ${m.id} twice`);
      this.pending.set(m.id, {
        w: m.w,
        op: { id: m.id, process: m.process, key: m.key, input: m.input, call: this.since(m.t) },
      });
      return;
    }
    if (m.type !== 'ok' && m.type !== 'fail' && m.type !== 'open') return;
    const p = this.pending.get(m.id);
    if (p === undefined) throw new NemesisError(`runner completed operation ${m.id}, never invoked`);
    this.pending.delete(m.id);
    let op: Operation;
    if (m.type === 'ok') op = { ...p.op, outcome: 'ok', ret: this.since(m.t), output: m.output };
    else if (m.type === 'fail') op = { ...p.op, outcome: 'fail', ret: this.since(m.t) };
    else op = { ...p.op, outcome: 'open' };
    this.list(p.w).push(op);
  }

  /** A node crash at history time `t`, as the checker reads it. */
  crash(node: string, kind: CrashKind, t: number): void {
    const at = this.since(t);
    this.crashes.push({ node, op: crashOperation(CRASH_IDS + this.crashes.length, at, kind) });
  }

  /** Operations still pending (the runner died, or never answered) end open. */
  closePending(): void {
    for (const [id, p] of this.pending) {
      this.list(p.w).push({ ...p.op, outcome: 'open' });
      this.pending.delete(id);
    }
  }

  /** Workload `w`'s operations on `node` and that node's crashes. */
  part(w: string, node: string): Operation[] {
    return [
      ...(this.done.get(w) ?? []).filter((op) => op.key.startsWith(`${node}/`)),
      ...this.crashes.filter((c) => c.node === node).map((c) => c.op),
    ].sort((a, b) => a.call - b.call || a.id - b.id);
  }

  /** How many operations each workload recorded. */
  counts(): Record<string, number> {
    return Object.fromEntries([...this.done].map(([w, ops]) => [w, ops.length]));
  }

  /** Microseconds are all the precision a history needs; rounding keeps explanations short. */
  private since(t: number): number {
    return Math.round((t - this.origin) * 1000) / 1000;
  }

  private list(w: string): Operation[] {
    let l = this.done.get(w);
    if (l === undefined) {
      l = [];
      this.done.set(w, l);
    }
    return l;
  }
}

/** One workload's operations on one node, with that node's crashes: what its check reads. */
export interface HistoryPart {
  readonly workload: string;
  readonly node: string;
  readonly history: readonly Operation[];
}

/** Saves a run's histories, one part per line of JSON. */
export function saveHistories(file: string, parts: readonly HistoryPart[]): void {
  writeFileSync(file, parts.map((p) => `${JSON.stringify(p)}\n`).join(''));
}

export function loadHistories(file: string): HistoryPart[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as HistoryPart);
}

/** Merges one workload's per-node reports: invalid if any is, unknown if any is and none invalid. */
export function mergeReports(workload: string, parts: readonly CheckReport[]): CheckReport {
  const stats: Record<string, number> = {};
  for (const p of parts) for (const [k, v] of Object.entries(p.stats)) stats[k] = (stats[k] ?? 0) + v;
  const valid = parts.some((p) => p.valid === false)
    ? false
    : parts.some((p) => p.valid === 'unknown')
      ? 'unknown'
      : true;
  return { workload, valid, stats, violations: parts.flatMap((p) => p.violations) };
}

/** Each workload's check on each of its parts, merged into one report per workload. */
export async function checkHistories(parts: readonly HistoryPart[]): Promise<CheckReport[]> {
  const names = [...new Set(parts.map((p) => p.workload))];
  const reports: CheckReport[] = [];
  for (const name of names) {
    const w = await loadWorkload(name);
    reports.push(
      mergeReports(
        name,
        parts.filter((p) => p.workload === name).map((p) => w.check(p.history)),
      ),
    );
  }
  return reports;
}
