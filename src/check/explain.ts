/**
 * Turns a failed check into text a person can act on. A full history can hold thousands of
 * operations; the part that shows a violation is small: where the search got furthest (the
 * longest prefix it could linearize, and the state it left the model in), the completed operation
 * it then could not place, and the operations concurrent with that one, each with why it does not
 * help.
 */
import type { CollectionResult } from './anomalies.js';
import { isCrash, type Operation } from './history.js';
import { type CheckResult, type PartitionResult, successorsOf } from './linearizability.js';
import type { Model } from './models.js';

export interface ExplainOptions {
  /** How many of the prefix's last operations to show. Default 8. */
  tail?: number;
}

export interface Explanation<I, O> {
  readonly key: string;
  /** Length of the longest linearizable prefix found. */
  readonly prefixLength: number;
  /** Its last operations, the ones that set the state the blocked operation met. */
  readonly prefixTail: readonly Operation<I, O>[];
  readonly blocked: Operation<I, O>;
  /** Operations whose intervals overlap the blocked one's, in or out of the prefix. */
  readonly concurrent: readonly Operation<I, O>[];
  readonly text: string;
}

const interval = (op: Operation): string => `[${op.call}, ${op.outcome === 'open' ? '∞)' : `${op.ret}]`}`;

/** `1 value`, `2 values`. */
export const count = (n: number, noun: string): string => `${n} ${noun}${n === 1 ? '' : 's'}`;

/** One line for an operation, given what it did: `#id process P what [call, ret]`. */
export function operationLine(op: Operation, what: string): string {
  const status = op.outcome === 'ok' ? '' : ` ${op.outcome}`;
  return `#${op.id} process ${op.process} ${isCrash(op) ? `crash (${op.input.kind})` : what} ${interval(op)}${status}`;
}

export function describeOperation<S, I, O>(model: Model<S, I, O>, op: Operation<I, O>): string {
  return operationLine(
    op,
    isCrash(op) ? '' : model.describeOp(op.input, op.outcome === 'ok' ? op.output : undefined),
  );
}

/** Explains one partition that is not linearizable; undefined for any other verdict. */
export function explainPartition<S, I, O>(
  model: Model<S, I, O>,
  partition: PartitionResult<S, I, O>,
  options: ExplainOptions = {},
): Explanation<I, O> | undefined {
  const failure = partition.failure;
  if (partition.verdict !== 'not-linearizable' || failure === undefined) return undefined;
  const tailLength = options.tail ?? 8;
  const { prefix, state, blocked } = failure;
  const inPrefix = new Set(prefix.map((op) => op.id));
  const by = blocked.ret!;
  const concurrent = partition.operations
    .filter((op) => op.id !== blocked.id && op.call <= by && (op.ret === undefined || op.ret >= blocked.call))
    .sort((a, b) => a.call - b.call || a.id - b.id);
  const prefixTail = prefix.slice(Math.max(0, prefix.length - tailLength));

  const lines: string[] = [];
  lines.push(`key ${JSON.stringify(partition.key)}: not linearizable against the ${model.name} model`);
  if (prefix.length === 0) {
    lines.push(
      `no operation can come first; the ${model.name} starts as ${model.describeState(model.init())}`,
    );
  } else {
    lines.push(
      `the furthest linearizable prefix has ${prefix.length} operation${prefix.length === 1 ? '' : 's'}` +
        (prefix.length > prefixTail.length ? `; its last ${prefixTail.length}:` : ':'),
    );
    for (const op of prefixTail) lines.push(`  ${describeOperation(model, op)}`);
    lines.push(`after it the ${model.name} holds ${model.describeState(state)}`);
  }
  const why = (op: Operation<I, O>): string => {
    const after = successorsOf(model, state, op);
    return after.length === 0
      ? `impossible from ${model.describeState(state)}`
      : `possible (→ ${after.map((s) => model.describeState(s)).join(' or ')}) but leads to no linearization`;
  };
  lines.push(`then this operation must take effect by ${by} and cannot:`);
  lines.push(`  ${describeOperation(model, blocked)}: ${why(blocked)}`);
  if (concurrent.length === 0) {
    lines.push('no other operation is concurrent with it');
  } else {
    lines.push(`operations concurrent with it (${concurrent.length}):`);
    for (const op of concurrent) {
      const note = inPrefix.has(op.id) ? 'in the prefix' : why(op);
      lines.push(`  ${describeOperation(model, op)}: ${note}`);
    }
  }
  return {
    key: partition.key,
    prefixLength: prefix.length,
    prefixTail,
    blocked,
    concurrent,
    text: lines.join('\n'),
  };
}

/** Explains every partition of a result that is not linearizable. */
export function explain<S, I, O>(
  result: CheckResult<S, I, O>,
  options: ExplainOptions = {},
): Explanation<I, O>[] {
  const out: Explanation<I, O>[] = [];
  for (const p of result.partitions) {
    const e = explainPartition(result.model, p, options);
    if (e !== undefined) out.push(e);
  }
  return out;
}

/** One text for a whole result: the verdict, and an explanation per failing key. */
export function formatResult<S, I, O>(result: CheckResult<S, I, O>, options: ExplainOptions = {}): string {
  const head =
    `${result.verdict}: ${result.partitions.length} key${result.partitions.length === 1 ? '' : 's'}, ` +
    `${result.steps} search steps, ${result.elapsedMs} ms`;
  const unknown = result.partitions.filter((p) => p.verdict === 'unknown').map((p) => JSON.stringify(p.key));
  const parts = [head];
  if (unknown.length > 0) parts.push(`search limit reached on ${unknown.join(', ')}`);
  for (const e of explain(result, options)) parts.push(e.text);
  return parts.join('\n\n');
}

/** An operation in an anomaly's explanation: what it did, and its part in the anomaly. */
export interface Witness {
  readonly op: Operation;
  /** What it did, as it concerns the element (ignored for a crash). */
  readonly what: string;
  readonly role: string;
}

/** An anomaly's text: the headline, then one line per operation that shows it. */
export function anomalyText(headline: string, witnesses: readonly Witness[]): string {
  return [headline, ...witnesses.map((w) => `  ${operationLine(w.op, w.what)}: ${w.role}`)].join('\n');
}

/** One text for a set or append check: the verdict, counts, and each anomaly. */
export function formatCollectionResult(name: string, result: CollectionResult): string {
  const counts = Object.entries(result.stats)
    .map(([k, v]) => `${k}: ${v}`)
    .join(', ');
  const n = result.anomalies.length;
  const parts = [
    `${name}: ${result.valid ? 'valid' : `${n} ${n === 1 ? 'anomaly' : 'anomalies'}`} (${counts})`,
  ];
  for (const a of result.anomalies) {
    parts.push(
      a.more === 0 ? a.text : `${a.text}\n  (and ${a.more} more read${a.more === 1 ? '' : 's'} like it)`,
    );
  }
  return parts.join('\n\n');
}
