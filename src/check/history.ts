/**
 * The history model the checkers read: every operation a client ran, with when it was invoked,
 * when (and whether) it completed, and what it returned.
 *
 * Three outcomes, after Jepsen's ok / fail / info:
 * - `ok`: the operation completed and its output is known. It took effect exactly once, at some
 *   instant between its call and its return.
 * - `fail`: the operation is known not to have taken effect (the server said so before changing
 *   anything). Checkers drop it.
 * - `open`: the outcome is unknown (a timeout, the server crashed). It may have taken effect at any
 *   instant after its call, or never, so it stays open to the end of the history: neither done nor
 *   failed.
 */
import { CairnError } from '../errors.js';

export type ProcessId = number | string;
export type Outcome = 'ok' | 'fail' | 'open';

export interface Operation<I = unknown, O = unknown> {
  /** Unique within the history; explanations name operations by it. */
  readonly id: number;
  /** The client that ran it; only used to explain. */
  readonly process: ProcessId;
  /** Operations on different keys are checked independently. */
  readonly key: string;
  readonly input: I;
  /** Invocation time; any unit, only the order of times matters. */
  readonly call: number;
  /** Completion time, for `ok` and `fail`; absent for `open`. */
  readonly ret?: number;
  readonly outcome: Outcome;
  /** The result, for `ok` only. */
  readonly output?: O;
}

export type History<I = unknown, O = unknown> = readonly Operation<I, O>[];

/** A history that cannot be checked because it contradicts itself (not a consistency violation). */
export class HistoryError extends CairnError {
  constructor(message: string) {
    super('CHECK_BAD_HISTORY', message);
  }
}

/** Throws HistoryError on a malformed history: duplicate ids, missing or backwards times. */
export function validateHistory(history: History): void {
  const ids = new Set<number>();
  for (const op of history) {
    if (ids.has(op.id)) throw new HistoryError(`operation id ${op.id} appears twice`);
    ids.add(op.id);
    if (!Number.isFinite(op.call)) throw new HistoryError(`operation ${op.id} has no call time`);
    if (op.outcome === 'open') {
      if (op.ret !== undefined) throw new HistoryError(`open operation ${op.id} has a return time`);
      continue;
    }
    if (op.outcome !== 'ok' && op.outcome !== 'fail') {
      throw new HistoryError(`operation ${op.id} has unknown outcome ${String(op.outcome)}`);
    }
    if (op.ret === undefined || !Number.isFinite(op.ret)) {
      throw new HistoryError(`${op.outcome} operation ${op.id} has no return time`);
    }
    if (op.ret < op.call)
      throw new HistoryError(`operation ${op.id} returns (${op.ret}) before its call (${op.call})`);
  }
}

/**
 * The key of operations that concern every key: node crashes. The harness records a crash as an
 * operation on this key, with `call === ret` and outcome `ok`, its input a `CrashInput`.
 */
export const CRASH_KEY = '*';

/**
 * What a crash takes: `kill` is the process dying (kill -9) with the operating system and its
 * page cache surviving, so nothing written is lost; `power` is the machine stopping, so whatever
 * was not yet flushed to stable storage may be gone.
 */
export type CrashKind = 'power' | 'kill';
export interface CrashInput {
  readonly f: 'crash';
  readonly kind: CrashKind;
}

/** A crash of `kind` at time `at`, as the harness records it. */
export function crashOperation(id: number, at: number, kind: CrashKind): Operation<CrashInput> {
  return {
    id,
    process: 'nemesis',
    key: CRASH_KEY,
    input: { f: 'crash', kind },
    call: at,
    ret: at,
    outcome: 'ok',
  };
}

export function isCrash(op: Operation): op is Operation<CrashInput> {
  return op.key === CRASH_KEY && (op.input as { f?: unknown } | null)?.f === 'crash';
}

/**
 * Splits a history by key, keeping each part in the original order. Operations on `CRASH_KEY`
 * go into every part (a crash concerns every key), and are not a part of their own.
 */
export function partitionByKey<I, O>(history: History<I, O>): Map<string, Operation<I, O>[]> {
  const parts = new Map<string, Operation<I, O>[]>();
  const broadcast: Operation<I, O>[] = [];
  for (const op of history) {
    if (op.key === CRASH_KEY) {
      broadcast.push(op);
      for (const part of parts.values()) part.push(op);
      continue;
    }
    let part = parts.get(op.key);
    if (part === undefined) {
      part = [...broadcast];
      parts.set(op.key, part);
    }
    part.push(op);
  }
  return parts;
}

interface Pending<I> {
  id: number;
  process: ProcessId;
  key: string;
  input: I;
  call: number;
}

/**
 * Records a history as a workload runs. Times come from `clock`; the default is a logical clock
 * that ticks on every event, which orders events exactly as they were recorded in this process
 * (enough when every client reports to one recorder on one event loop).
 */
export class HistoryRecorder<I = unknown, O = unknown> {
  private readonly ops: Operation<I, O>[] = [];
  private readonly pending = new Map<number, Pending<I>>();
  private readonly busy = new Set<ProcessId>();
  private nextId = 0;
  private tick = 0;
  private readonly clock: () => number;

  constructor(clock?: () => number) {
    this.clock = clock ?? (() => this.tick++);
  }

  /** Records an invocation; returns the operation id to complete it with. */
  invoke(process: ProcessId, key: string, input: I): number {
    // One process runs one operation at a time; a client that gives up on an operation marks it
    // open and may then go on.
    if (this.busy.has(process))
      throw new HistoryError(`process ${process} invoked while an operation is pending`);
    const id = this.nextId++;
    this.busy.add(process);
    this.pending.set(id, { id, process, key, input, call: this.clock() });
    return id;
  }

  ok(id: number, output: O): void {
    const p = this.take(id);
    this.ops.push({ ...p, ret: this.clock(), outcome: 'ok', output });
  }

  fail(id: number): void {
    const p = this.take(id);
    this.ops.push({ ...p, ret: this.clock(), outcome: 'fail' });
  }

  /** The outcome is unknown: the operation stays open to the end of the history. */
  open(id: number): void {
    const p = this.take(id);
    this.ops.push({ ...p, outcome: 'open' });
  }

  /** The history so far; operations still pending are reported open. */
  history(): Operation<I, O>[] {
    const open: Operation<I, O>[] = [...this.pending.values()].map((p) => ({
      ...p,
      outcome: 'open' as const,
    }));
    return [...this.ops, ...open].sort((a, b) => a.id - b.id);
  }

  private take(id: number): Pending<I> {
    const p = this.pending.get(id);
    if (p === undefined) throw new HistoryError(`operation ${id} is not pending`);
    this.pending.delete(id);
    this.busy.delete(p.process);
    return p;
  }
}
