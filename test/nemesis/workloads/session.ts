/**
 * What an NFS workload's client process needs: one connection of its own, made with a deadline
 * and given up after any call whose outcome is unknown, and the recording of one operation from
 * invocation to outcome.
 *
 * The connection never resends a call after it reconnects: a WRITE resent to a node that
 * restarted in between would take effect twice, once before and once after whatever other
 * clients did meanwhile, which no history of single effects can show.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { type History, isCrash } from '../../../src/check/index.js';
import { isNfsError, NfsClient } from '../../../src/nfs/client.js';
import type { nfs_fh3 } from '../../../src/nfs/gen/nfs3.bytes.js';
import type { CallOptions } from '../../../src/rpc/index.js';
import { NemesisError } from '../base.js';
import type { NodeTarget, WorkloadContext } from '../workload.js';

/** Resolves after `ms`, or at once when `signal` aborts. */
export async function pause(ms: number, signal?: AbortSignal): Promise<void> {
  await delay(ms, undefined, { signal }).catch(() => {});
}

async function connectWithin(target: NodeTarget, timeoutMs: number): Promise<NfsClient> {
  let abandoned = false;
  const attempt = NfsClient.connect({
    host: target.host,
    nfsPort: target.nfsPort,
    mountPort: target.nfsPort,
    timeoutMs,
    resendOnReconnect: false,
  });
  // A SYN dropped by a partition would keep connect() waiting for minutes.
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new NemesisError(`connecting to ${target.name} timed out`)), timeoutMs);
  });
  try {
    return await Promise.race([attempt, late]);
  } catch (e) {
    abandoned = true;
    throw e;
  } finally {
    clearTimeout(timer);
    attempt.then(
      (c) => {
        if (abandoned) void c.close();
      },
      () => {},
    );
  }
}

/** One client process's connection to one node. */
export class Session {
  private current: NfsClient | undefined;

  constructor(
    readonly target: NodeTarget,
    private readonly timeoutMs: number,
  ) {}

  /**
   * A connected client, connecting (again, spaced out) while the node cannot be reached;
   * undefined once `signal` aborts first.
   */
  async client(signal?: AbortSignal): Promise<NfsClient | undefined> {
    let wait = 50;
    while (this.current === undefined) {
      if (signal?.aborted) return undefined;
      try {
        this.current = await connectWithin(this.target, this.timeoutMs);
      } catch {
        await pause(wait, signal);
        wait = Math.min(wait * 2, 1000);
      }
    }
    return this.current;
  }

  /** Drops the connection: a call on it may still be in flight, or it may be stuck in a partition. */
  reset(): void {
    const c = this.current;
    this.current = undefined;
    void c?.close().catch(() => {});
  }

  async close(): Promise<void> {
    const c = this.current;
    this.current = undefined;
    await c?.close().catch(() => {});
  }
}

export type Ending = { outcome: 'ok'; output?: unknown } | { outcome: 'fail' } | { outcome: 'open' };

/**
 * Counts of a history's operations by kind and outcome ("write ok", "crash ok"), for a check
 * report; `kind` names an operation other than a crash (by default its input's `f`).
 */
export function countOperations(
  history: History,
  kind: (input: unknown) => string = (input) => String((input as { f?: unknown }).f),
): Record<string, number> {
  const stats: Record<string, number> = {};
  for (const op of history) {
    const name = `${isCrash(op) ? 'crash' : kind(op.input)} ${op.outcome}`;
    stats[name] = (stats[name] ?? 0) + 1;
  }
  return stats;
}

/** The NFS status an error carries, or undefined for anything else (a timeout, a lost connection). */
export function nfsStatus(e: unknown): string | undefined {
  return isNfsError(e) ? e.code : undefined;
}

/**
 * How a change that answered with an error ended. Only a full disk proves that nothing changed
 * (docs/CONSISTENCY.md: NFS3ERR_NOSPC "changes nothing"); any other error may have come after the
 * change was made (visible, then its flush failed), and no answer at all proves nothing.
 */
export function changeEnding(e: unknown): Ending {
  return nfsStatus(e) === 'NFS3ERR_NOSPC' ? { outcome: 'fail' } : { outcome: 'open' };
}

/** Makes directory `name` in `parent`, or finds it there (a MKDIR that timed out may have made it). */
export async function makeDirectory(
  c: NfsClient,
  parent: nfs_fh3,
  name: string,
  o?: CallOptions,
): Promise<nfs_fh3> {
  const made = await c.mkdir(parent, name, {}, o).catch(async (e: unknown) => {
    if (nfsStatus(e) !== 'NFS3ERR_EXIST') throw e;
    return c.lookup(parent, name, o);
  });
  return made.fh;
}

/**
 * Makes directory `name` in `parent` through `session`, retried until it exists: for a directory
 * that is no operation of the history. Undefined once the run is stopped.
 */
export async function makeDirectoryRetrying(
  ctx: WorkloadContext,
  session: Session,
  parent: nfs_fh3,
  name: string,
): Promise<nfs_fh3 | undefined> {
  while (!ctx.signal.aborted) {
    const c = await session.client(ctx.signal);
    if (c === undefined) return undefined;
    try {
      return await makeDirectory(c, parent, name, { timeoutMs: ctx.opTimeoutMs });
    } catch (e) {
      if (nfsStatus(e) === undefined) session.reset();
      await pause(200, ctx.signal);
    }
  }
  return undefined;
}

/**
 * A final operation, after the heal: tried until `attempt` says it succeeded, up to 20 times
 * 500 ms apart; `failure` is logged when none did.
 */
export async function finalAttempts(
  ctx: WorkloadContext,
  failure: string,
  attempt: () => Promise<boolean>,
): Promise<void> {
  for (let i = 0; i < 20; i++) {
    if (await attempt()) return;
    await pause(500);
  }
  ctx.log(failure);
}

/**
 * Records one operation: waits for a connection (nothing is invoked if `ctx.signal` aborts
 * first), invokes, runs `call` within the operation timeout, and records its output or what
 * `onError` makes of its error. A connection that gave no answer is dropped. Returns the ending,
 * or undefined if nothing was invoked.
 */
export async function operate(
  ctx: WorkloadContext,
  session: Session,
  process: string,
  key: string,
  input: unknown,
  call: (client: NfsClient, options: CallOptions) => Promise<unknown>,
  onError: (e: unknown) => Ending,
): Promise<Ending | undefined> {
  const client = await session.client(ctx.signal);
  if (client === undefined) return undefined;
  const id = ctx.recorder.invoke(process, key, input);
  let ending: Ending;
  try {
    ending = { outcome: 'ok', output: await call(client, { timeoutMs: ctx.opTimeoutMs }) };
  } catch (e) {
    ending = onError(e);
    if (!isNfsError(e)) session.reset();
  }
  if (ending.outcome === 'ok') ctx.recorder.ok(id, ending.output);
  else if (ending.outcome === 'fail') ctx.recorder.fail(id);
  else ctx.recorder.open(id);
  return ending;
}
