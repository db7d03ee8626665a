// Builders for hand-made histories in the checker's tests: each call makes one operation with the
// next id, so a test reads as the history it describes.
import {
  type CrashKind,
  crashOperation,
  type Operation,
  type RegisterInput,
  type RegisterOutput,
  type Value,
} from '../../src/check/index.js';

export const w = (value: Value): RegisterInput => ({ f: 'write', value });
export const r: RegisterInput = { f: 'read' };
export const cas = (from: Value, to: Value): RegisterInput => ({ f: 'cas', from, to });

type RegisterOp = Operation<RegisterInput, RegisterOutput>;

/**
 * `h` with one of its acknowledged reads (the `pick`-th, counting round) changed to return a value
 * never written, and that read; undefined when `h` has no acknowledged read.
 */
export function breakOneRead(
  h: readonly RegisterOp[],
  pick: number,
): { victim: RegisterOp; broken: RegisterOp[] } | undefined {
  const reads = h.filter((o) => o.input.f === 'read' && o.outcome === 'ok');
  if (reads.length === 0) return undefined;
  const victim = reads[pick % reads.length];
  return { victim, broken: h.map((o) => (o === victim ? { ...o, output: 'never' } : o)) };
}

export class Builder<I, O> {
  private nextId = 0;
  constructor(private readonly defaultKey = 'x') {}

  ok(process: number | string, input: I, call: number, ret: number, output?: O, key = this.defaultKey) {
    return { id: this.nextId++, process, key, input, call, ret, outcome: 'ok', output } as Operation<I, O>;
  }
  open(process: number | string, input: I, call: number, key = this.defaultKey) {
    return { id: this.nextId++, process, key, input, call, outcome: 'open' } as Operation<I, O>;
  }
  failed(process: number | string, input: I, call: number, ret: number, key = this.defaultKey) {
    return { id: this.nextId++, process, key, input, call, ret, outcome: 'fail' } as Operation<I, O>;
  }
  /** A node crash as the harness records it: on every key, at one instant. */
  crash(at: number, kind: CrashKind = 'power') {
    return crashOperation(this.nextId++, at, kind) as unknown as Operation<I, O>;
  }
}
