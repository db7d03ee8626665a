import type { Reservoir } from './stats.js';

export interface LoopResult {
  /** Calls completed. */
  calls: number;
  /** Calls that failed or returned the wrong size. */
  errors: number;
  /** Wall time from the first call to the last reply, in seconds. */
  seconds: number;
}

/** One call; resolves to the reply (whose length is checked when `expectLength` >= 0). */
export type Call = () => Promise<unknown>;

const MAX_ERRORS = 100;

/**
 * A closed loop: `inFlight` workers each issue a call, wait for its reply, and issue the next,
 * until `durationMs` has passed. Every call's latency goes into `latencies` (in ms). Stops early
 * after too many errors, so a broken system fails the round instead of hanging it.
 */
export async function closedLoop(
  call: Call,
  inFlight: number,
  durationMs: number,
  expectLength: number,
  latencies: Reservoir,
): Promise<LoopResult> {
  let calls = 0;
  let errors = 0;
  let firstError: unknown;
  const start = performance.now();
  const deadline = start + durationMs;
  const worker = async (): Promise<void> => {
    for (;;) {
      const t0 = performance.now();
      if (t0 >= deadline || errors >= MAX_ERRORS) return;
      let ok = true;
      try {
        const reply = await call();
        if (expectLength >= 0 && (reply as { length: number } | undefined)?.length !== expectLength) {
          ok = false;
          firstError ??= new Error(
            `reply of ${(reply as { length: number } | undefined)?.length} bytes, expected ${expectLength}`,
          );
        }
      } catch (e) {
        ok = false;
        firstError ??= e;
      }
      if (!ok) {
        errors++;
        continue;
      }
      latencies.add(performance.now() - t0);
      calls++;
    }
  };
  const workers: Promise<void>[] = [];
  for (let i = 0; i < inFlight; i++) workers.push(worker());
  await Promise.all(workers);
  const seconds = (performance.now() - start) / 1000;
  if (errors >= MAX_ERRORS) {
    throw new Error(`${errors} failed calls; first: ${String(firstError)}`, { cause: firstError });
  }
  return { calls, errors, seconds };
}
