/** What the harness's processes share: one time scale for histories, and the harness's error. */
import { CairnError } from '../../src/errors.js';

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
