// Builders for hand-made histories in the checker's tests: each call makes one operation with the
// next id, so a test reads as the history it describes.
import { type CrashKind, crashOperation, type Operation } from '../../src/check/index.js';

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
