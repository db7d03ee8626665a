import { cpus } from 'node:os';
import { Worker } from 'node:worker_threads';
import { CairnError } from '../errors.js';

export class WorkerPoolError extends CairnError {}

interface Task {
  fn: string;
  arg: unknown;
  transfer: readonly ArrayBuffer[];
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  task: Task | null;
}

export interface WorkerPoolOptions {
  /** A module whose named exports are the functions workers may run. */
  module: URL | string;
  size?: number;
  /** Tasks queued beyond the busy workers before `run` rejects. */
  maxQueue?: number;
}

/**
 * The notes' dispatcher/worker server for CPU-heavy procedures: the event loop stays the
 * dispatcher (decoding calls, serving other connections) while a fixed set of worker threads runs
 * the expensive functions. A worker that crashes fails its task and is replaced.
 */
export class WorkerPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Task[] = [];
  private closed = false;
  readonly size: number;
  private readonly maxQueue: number;
  private readonly moduleUrl: string;

  constructor(options: WorkerPoolOptions) {
    this.size = options.size ?? Math.max(1, cpus().length - 1);
    this.maxQueue = options.maxQueue ?? 10_000;
    this.moduleUrl = options.module.toString();
    for (let i = 0; i < this.size; i++) this.slots.push(this.spawn());
  }

  private spawn(): Slot {
    const worker = new Worker(new URL('./worker-entry.js', import.meta.url), {
      workerData: { module: this.moduleUrl },
    });
    worker.unref();
    const slot: Slot = { worker, task: null };
    worker.on('message', (m: { ok: boolean; value?: unknown; error?: string; code?: string }) => {
      const t = slot.task;
      slot.task = null;
      if (t) {
        if (m.ok) t.resolve(m.value);
        else t.reject(new WorkerPoolError(m.code ?? 'WORKER_TASK_FAILED', m.error ?? 'task failed'));
      }
      this.next(slot);
    });
    worker.on('error', (err) => {
      const t = slot.task;
      slot.task = null;
      t?.reject(new WorkerPoolError('WORKER_CRASHED', `worker crashed: ${err.message}`, { cause: err }));
    });
    worker.on('exit', () => {
      if (this.closed) return;
      const i = this.slots.indexOf(slot);
      if (i >= 0) {
        const fresh = this.spawn();
        this.slots[i] = fresh;
        this.next(fresh);
      }
    });
    return slot;
  }

  private next(slot: Slot): void {
    if (slot.task !== null) return;
    const t = this.queue.shift();
    if (t === undefined) return;
    slot.task = t;
    slot.worker.ref();
    slot.worker.postMessage({ fn: t.fn, arg: t.arg }, t.transfer);
  }

  /** Runs the named export of the pool's module on `arg` in a worker thread. */
  run<R = unknown>(fn: string, arg: unknown, transfer: readonly ArrayBuffer[] = []): Promise<R> {
    if (this.closed) return Promise.reject(new WorkerPoolError('WORKER_POOL_CLOSED', 'the pool is closed'));
    if (this.queue.length >= this.maxQueue) {
      return Promise.reject(
        new WorkerPoolError('WORKER_POOL_FULL', `more than ${this.maxQueue} tasks queued`),
      );
    }
    return new Promise<R>((resolve, reject) => {
      const wrapped = (v: unknown) => {
        this.unrefIdle();
        resolve(v as R);
      };
      const failed = (e: Error) => {
        this.unrefIdle();
        reject(e);
      };
      this.queue.push({ fn, arg, transfer, resolve: wrapped, reject: failed });
      const idle = this.slots.find((s) => s.task === null);
      if (idle) this.next(idle);
    });
  }

  /** Idle workers must not keep the process alive. */
  private unrefIdle(): void {
    for (const s of this.slots) if (s.task === null) s.worker.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.queue.splice(0))
      t.reject(new WorkerPoolError('WORKER_POOL_CLOSED', 'the pool is closed'));
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
