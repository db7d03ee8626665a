/**
 * The workload runner: a child process the harness starts inside the client network namespace.
 * It sets the workloads up, says `ready`, runs them until SIGUSR1 (the fault schedule is over),
 * says `ran`, waits for SIGUSR2 (every fault healed, every node serving), runs their final reads,
 * says `done` and exits. Every operation event goes to stdout as a JSON line (history.ts's
 * RunnerMessage), timed with `historyNow`, the parent's scale for crash times.
 *
 * Usage: node runner.js CONFIG-JSON (RunnerConfig).
 */
import { setMaxListeners } from 'node:events';
import { SeededRandom } from '../../src/random.js';
import { historyNow, NemesisError } from './base.js';
import type { RunnerMessage } from './history.js';
import type { NodeTarget, Recorder, Workload, WorkloadContext } from './workload.js';
import { loadWorkload } from './workloads/index.js';

export interface RunnerConfig {
  readonly nodes: readonly NodeTarget[];
  readonly workloads: readonly string[];
  readonly seed: number;
  readonly opTimeoutMs: number;
}

function send(m: RunnerMessage): void {
  // A pipe's writes are synchronous on Linux: events leave in the order they happen.
  process.stdout.write(`${JSON.stringify(m)}\n`);
}

let nextId = 0;

/** Streams one workload's operations; one operation at a time per process, as the checker assumes. */
class StreamRecorder implements Recorder {
  private readonly busy = new Set<string>();
  private readonly pending = new Map<number, string>();

  constructor(private readonly workload: string) {}

  invoke(process: string, key: string, input: unknown): number {
    if (this.busy.has(process))
      throw new NemesisError(`process ${process} invoked while an operation is pending`);
    const id = nextId++;
    this.busy.add(process);
    this.pending.set(id, process);
    send({ type: 'invoke', w: this.workload, id, process, key, input, t: historyNow() });
    return id;
  }

  ok(id: number, output?: unknown): void {
    const t = historyNow();
    this.take(id);
    send({ type: 'ok', id, output, t });
  }

  fail(id: number): void {
    const t = historyNow();
    this.take(id);
    send({ type: 'fail', id, t });
  }

  open(id: number): void {
    this.take(id);
    send({ type: 'open', id });
  }

  private take(id: number): void {
    const p = this.pending.get(id);
    if (p === undefined) throw new NemesisError(`operation ${id} is not pending`);
    this.pending.delete(id);
    this.busy.delete(p);
  }
}

async function main(config: RunnerConfig): Promise<void> {
  // Both handlers before anything else: a signal's default action would end the process.
  const stopRun = new AbortController();
  // Every client process waits on the signal; more than ten is no leak.
  setMaxListeners(0, stopRun.signal);
  process.on('SIGUSR1', () => stopRun.abort());
  const healed = new Promise<void>((resolve) => process.on('SIGUSR2', () => resolve()));

  const random = new SeededRandom(config.seed);
  const workloads: Workload[] = [];
  for (const name of config.workloads) workloads.push(await loadWorkload(name));
  const contexts = (signal: AbortSignal): WorkloadContext[] =>
    workloads.map((w) => ({
      nodes: config.nodes,
      recorder: new StreamRecorder(w.name),
      random: random.fork(),
      signal,
      opTimeoutMs: config.opTimeoutMs,
      log: (line: string) => send({ type: 'log', w: w.name, line }),
    }));

  const running = contexts(stopRun.signal);
  await Promise.all(workloads.map((w, i) => w.setup?.(running[i])));
  send({ type: 'ready' });
  await Promise.all(workloads.map((w, i) => w.run(running[i])));
  send({ type: 'ran' });
  // Nothing else may be pending while the parent heals: a signal handler alone keeps no process up.
  const keepAlive = setInterval(() => {}, 60_000);
  await healed;
  clearInterval(keepAlive);
  const never = new AbortController().signal;
  setMaxListeners(0, never);
  const finals = contexts(never);
  await Promise.all(workloads.map((w, i) => w.final(finals[i])));
  send({ type: 'done' });
}

main(JSON.parse(process.argv[2] ?? '{}') as RunnerConfig).then(
  // Sockets abandoned mid-connect (a partition) would keep the process alive for minutes.
  () => process.exit(0),
  (e: unknown) => {
    send({ type: 'error', message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
    process.exit(1);
  },
);
