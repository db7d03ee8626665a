/**
 * The contract between the nemesis harness and its workloads. The harness starts Cairn nodes,
 * injects faults, and runs workloads in a client process (inside the client network namespace);
 * a workload drives clients against the nodes and records every operation it invokes and how it
 * completed. When the fault schedule ends and every fault is healed, the harness calls `final`
 * (reads that must see everything acknowledged), then hands the whole history, with the node
 * crashes in it, to the workload's `check`.
 *
 * Each workload is a module test/nemesis/workloads/NAME.ts exporting `create(): Workload`; the
 * harness loads it by NAME (`--workloads registers,sets`) in the runner, which runs it, and in the
 * parent, which checks it. State a workload keeps between setup, run and final lives in the object
 * `create` returns; `check` runs in another process and sees only the history.
 *
 * Histories use src/check's shapes (docs/CHECKER.md). Keys start with the node's name
 * (`n1/reg/3`): each node serves its own store, so each node's part of a history is checked on
 * its own, with that node's crashes (key '*', input { f: 'crash', kind }) in it.
 */
import {
  type CheckResult,
  type CollectionResult,
  explain,
  type History,
  isCrash,
} from '../../src/check/index.js';
import type { Random } from '../../src/random.js';

/** Where a workload reaches one node. */
export interface NodeTarget {
  /** 'n1', 'n2', ...: the prefix of every key on this node. */
  readonly name: string;
  readonly host: string;
  readonly rpcbindPort: number;
  readonly nfsPort: number;
  /** The export the workloads use (read-write, no squash, open to the client namespace). */
  readonly exportPath: string;
}

/** Records operations; one process runs one operation at a time. Times are taken by the recorder. */
export interface Recorder {
  invoke(process: string, key: string, input: unknown): number;
  ok(id: number, output?: unknown): void;
  /** Known not to have taken effect. */
  fail(id: number): void;
  /** Outcome unknown (a timeout, a lost connection): stays open to the end of the history. */
  open(id: number): void;
}

export interface WorkloadContext {
  readonly nodes: readonly NodeTarget[];
  readonly recorder: Recorder;
  /** Seeded: the same seed gives the same choices (not the same timing). */
  readonly random: Random;
  /** Aborted when the fault schedule ends; `run` must then return promptly. */
  readonly signal: AbortSignal;
  /** How long an operation may take before it is given up and recorded open. */
  readonly opTimeoutMs: number;
  /** A line for the run's log. */
  log(line: string): void;
}

export interface CheckReport {
  readonly workload: string;
  readonly valid: boolean | 'unknown';
  /** Counts for the summary: operations ok / fail / open, values checked, ... */
  readonly stats: Readonly<Record<string, number>>;
  /** One line per violation, each with the smallest part of the history that shows it. */
  readonly violations: readonly string[];
}

/** The report of a set or append check (anomalies.ts). */
export function collectionReport(workload: string, r: CollectionResult): CheckReport {
  return { workload, valid: r.valid, stats: r.stats, violations: r.anomalies.map((a) => a.text) };
}

/**
 * The report of a linearizability check of `history`: its verdict, the keys, `stats`, the search's
 * steps, and each violation explained.
 */
export function linearizabilityReport<S, I, O>(
  workload: string,
  history: History,
  result: CheckResult<S, I, O>,
  stats: Readonly<Record<string, number>>,
): CheckReport {
  const keys = new Set(history.filter((op) => !isCrash(op)).map((op) => op.key));
  return {
    workload,
    valid: result.verdict === 'linearizable' ? true : result.verdict === 'unknown' ? 'unknown' : false,
    stats: { keys: keys.size, ...stats, 'search steps': result.steps },
    violations: explain(result).map((e) => e.text),
  };
}

export interface Workload {
  readonly name: string;
  /**
   * Optional: before any fault, what `run` needs (directories, files). Nothing here is recorded;
   * the harness starts the faults once every workload's setup has resolved.
   */
  setup?(ctx: WorkloadContext): Promise<void>;
  /** Drives operations until ctx.signal aborts. Must record every operation it invokes. */
  run(ctx: WorkloadContext): Promise<void>;
  /** After every fault is healed and nodes are up: the reads that must see every acknowledged write. */
  final(ctx: WorkloadContext): Promise<void>;
  /**
   * Checks a history: this workload's operations on one node and that node's crashes. The harness
   * calls it once per node and merges the reports.
   */
  check(history: History): CheckReport;
}
