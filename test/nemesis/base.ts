/**
 * What the harness's processes share: one time scale for histories, the harness's error, and the
 * seeded shuffle the fault schedules draw with.
 */
import { CairnError } from '../../src/errors.js';
import type { SeededRandom } from '../../src/random.js';

/**
 * History time in milliseconds: the wall clock at process start plus the monotonic time since.
 * The parent (crash times) and the workload runner (operation times) both use it, so their events
 * fall on one scale without either process reading a clock the other set.
 */
export function historyNow(): number {
  return performance.timeOrigin + performance.now();
}

/** The harness could not do what it was asked (not a finding about Cairn). */
export class NemesisError extends CairnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('NEMESIS', message, options);
  }
}

/** A copy of `xs` in an order drawn from `r` (every order alike). */
export function shuffled(r: SeededRandom, xs: readonly number[]): number[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = r.int(i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}
