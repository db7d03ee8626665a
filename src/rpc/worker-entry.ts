import { parentPort, workerData } from 'node:worker_threads';

// Runs inside a pool worker: loads the task module once, then runs named exports on request.
const mod = (await import(workerData.module as string)) as Record<string, (arg: unknown) => unknown>;

parentPort!.on('message', async (m: { fn: string; arg: unknown }) => {
  const fn = mod[m.fn];
  if (typeof fn !== 'function') {
    parentPort!.postMessage({
      ok: false,
      code: 'WORKER_NO_SUCH_FUNCTION',
      error: `no exported function ${m.fn}`,
    });
    return;
  }
  try {
    const value = await fn(m.arg);
    parentPort!.postMessage({ ok: true, value });
  } catch (e) {
    parentPort!.postMessage({
      ok: false,
      code: 'WORKER_TASK_FAILED',
      error: e instanceof Error ? e.message : String(e),
    });
  }
});
