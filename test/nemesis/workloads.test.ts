/**
 * The append, namespace and nfs-cp workloads on their own against one real node, without the
 * harness: the node is a `cairn up` child process that the test kills with SIGKILL and starts
 * again on the same data and ports while the workloads run. Each check passes on a healthy node
 * across the restarts, and the append and copy checks fail on a node started with
 * CAIRN_FAILPOINTS=nfs.write.drop (every fifth WRITE acknowledged and never applied). The kernel
 * workload gets one short guest run, with one restart of its node.
 */
import assert from 'node:assert/strict';
import { setMaxListeners } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { CRASH_KEY, HistoryRecorder, type Operation } from '../../src/check/index.js';
import { NfsClient, nameText } from '../../src/nfs/client.js';
import { SeededRandom } from '../../src/random.js';
import { type SpawnedProcess, spawnProcess } from '../support/process.js';
import { withTempDir } from '../support/tmp.js';
import { waitUntil } from '../support/wait.js';
import type { CheckReport, NodeTarget, Workload, WorkloadContext } from './workload.js';
import { create as appends } from './workloads/appends.js';
import { create as kernel } from './workloads/kernel.js';
import { create as namespace } from './workloads/namespace.js';
import { create as nfsCp } from './workloads/nfs-cp.js';

const CLI = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.js');

/** A Cairn node as a child process, so that it can die by SIGKILL and start again on its data. */
class ChildNode {
  private proc: SpawnedProcess | undefined;
  rpcbindPort = 0;
  nfsPort = 0;

  constructor(
    private readonly dir: string,
    private readonly failpoints: string,
  ) {
    writeFileSync(
      join(dir, 'exports.json'),
      JSON.stringify({
        exports: [{ path: '/export', id: 1, access: 'rw', clients: ['127.0.0.0/8'], squash: 'none' }],
      }),
    );
  }

  target(): NodeTarget {
    return {
      name: 'n1',
      host: '127.0.0.1',
      rpcbindPort: this.rpcbindPort,
      nfsPort: this.nfsPort,
      exportPath: '/export',
    };
  }

  /** Starts the node; again on the ports it had, after the first start. */
  async start(): Promise<void> {
    const env = { ...process.env, CAIRN_LOG_LEVEL: 'warn', CAIRN_FAILPOINTS: this.failpoints };
    const p = spawnProcess(
      process.execPath,
      [
        CLI,
        'up',
        '--data',
        join(this.dir, 'data'),
        '--exports',
        join(this.dir, 'exports.json'),
        '--host',
        '127.0.0.1',
        '--rpcbind-port',
        String(this.rpcbindPort),
        '--nfs-port',
        String(this.nfsPort),
        '--gossip-port',
        '0',
      ],
      { env, name: 'cairn up' },
    );
    this.proc = p;
    const rpcbind = await p.waitForLine(/^\s+rpcbind\s+127\.0\.0\.1:\d+/, 30_000);
    const nfs = await p.waitForLine(/^\s+nfs\s+127\.0\.0\.1:\d+/, 30_000);
    this.rpcbindPort = Number(/:(\d+)/.exec(rpcbind)![1]);
    this.nfsPort = Number(/:(\d+)/.exec(nfs)![1]);
  }

  async kill(): Promise<void> {
    this.proc?.killSync();
    await this.proc?.exited;
  }

  async stop(): Promise<void> {
    await this.proc?.stop('SIGKILL');
  }
}

/** A recorder on the test's clock, with the node's crashes added to the history on the same clock. */
class TestRecorder extends HistoryRecorder {
  private readonly crashes: Operation[] = [];

  constructor() {
    super(() => performance.now());
  }

  crash(): void {
    const t = performance.now();
    const input = { f: 'crash', kind: 'kill' };
    const id = 1e9 + this.crashes.length;
    this.crashes.push({ id, process: 'test', key: CRASH_KEY, input, call: t, ret: t, outcome: 'ok' });
  }

  all(): Operation[] {
    return [...this.history(), ...this.crashes].sort((a, b) => a.call - b.call || a.id - b.id);
  }

  /** Operations of workload `w` completed ok so far. */
  oks(w: Workload): number {
    return this.history().filter((op) => op.outcome === 'ok' && ownedBy(w, op)).length;
  }
}

function context(node: ChildNode, recorder: TestRecorder, signal: AbortSignal): WorkloadContext {
  // Every client process waits on it.
  setMaxListeners(100, signal);
  return {
    nodes: [node.target()],
    recorder,
    random: new SeededRandom(5),
    signal,
    opTimeoutMs: 3000,
    log: () => {},
  };
}

interface RunOptions {
  failpoints?: string;
  /** SIGKILL and restart the node this many times during the run. */
  restarts: number;
  /** Resolves when the workloads have made enough progress: before each restart and before the end. */
  progress: (node: ChildNode, recorder: TestRecorder, workloads: readonly Workload[]) => Promise<void>;
}

/** Runs `workloads` together against one node and returns each one's check. */
async function runWorkloads(
  workloads: readonly Workload[],
  { failpoints = '', restarts, progress }: RunOptions,
): Promise<CheckReport[]> {
  return withTempDir('workloads', async (dir) => {
    const node = new ChildNode(dir, failpoints);
    const recorder = new TestRecorder();
    const stop = new AbortController();
    try {
      await node.start();
      const ctx = context(node, recorder, stop.signal);
      await Promise.all(workloads.map((w) => w.setup?.(ctx)));
      const running = Promise.all(workloads.map((w) => w.run(ctx)));
      for (let i = 0; i < restarts; i++) {
        await progress(node, recorder, workloads);
        await node.kill();
        recorder.crash();
        await node.start();
      }
      await progress(node, recorder, workloads);
      stop.abort();
      await running;
      const finalCtx = context(node, recorder, new AbortController().signal);
      await Promise.all(workloads.map((w) => w.final(finalCtx)));
      const history = recorder.all();
      return workloads.map((w) => w.check(history.filter((op) => op.key === CRASH_KEY || ownedBy(w, op))));
    } finally {
      stop.abort();
      await node.stop();
    }
  });
}

/** Progress: `n` more operations of each workload acknowledged. */
function acknowledged(n: number): RunOptions['progress'] {
  return async (_node, recorder, workloads) => {
    const base = workloads.map((w) => recorder.oks(w));
    await waitUntil(
      `${n} acknowledged operations of each workload`,
      async () => workloads.every((w, i) => recorder.oks(w) - base[i] >= n),
      { timeoutMs: 60_000, intervalMs: 100 },
    );
  };
}

/** Which workload an operation belongs to, by the key's second part (n1/append/..., n1/ns/...). */
const KEY_PART: Record<string, string> = {
  appends: 'append',
  namespace: 'ns',
  'nfs-cp': 'cp',
  kernel: 'kernel',
};
function ownedBy(w: Workload, op: Operation): boolean {
  return op.key.split('/')[1] === KEY_PART[w.name];
}

function describe(r: CheckReport): string {
  return `${r.workload}: ${JSON.stringify(r.stats)}\n${r.violations.slice(0, 3).join('\n\n')}`;
}

test('the append, namespace and nfs-cp workloads check valid on a healthy node across kill -9 restarts', {
  timeout: 240_000,
}, async () => {
  const reports = await runWorkloads([appends(), namespace(), nfsCp()], {
    restarts: 2,
    progress: acknowledged(120),
  });
  for (const r of reports) assert.equal(r.valid, true, describe(r));
});

test('the append and nfs-cp checks fail on a node that acknowledges WRITEs it never applies', {
  timeout: 180_000,
}, async () => {
  const reports = await runWorkloads([appends(), nfsCp()], {
    failpoints: 'nfs.write.drop',
    restarts: 0,
    // Every fifth WRITE of the node is dropped, whoever sent it: enough of them for both workloads.
    progress: acknowledged(100),
  });
  for (const r of reports) assert.equal(r.valid, false, describe(r));
});

/** The kernel workload's files on the node, one line each: name, size and mtime. */
async function kernelFiles(node: ChildNode): Promise<Set<string>> {
  const c = await NfsClient.connect({ host: '127.0.0.1', nfsPort: node.nfsPort, mountPort: node.nfsPort });
  try {
    const top = await c.lookup(await c.mount('/export'), 'kernel');
    const out = new Set<string>();
    for (const run of await c.readdirplusAll(top.fh)) {
      if (!nameText(run.name).startsWith('r')) continue;
      for (const e of await c.readdirplusAll(run.fh!)) {
        const mtime = e.attributes?.mtime;
        if (nameText(e.name).startsWith('f'))
          out.add(`${nameText(e.name)} ${e.attributes?.size} ${mtime?.seconds}.${mtime?.nseconds}`);
      }
    }
    return out;
  } finally {
    await c.close();
  }
}

/** Progress of the guest, whose operations are recorded only at the end: three files written anew. */
const kernelWrites: RunOptions['progress'] = async (node) => {
  const before = await kernelFiles(node);
  await waitUntil(
    'three files written anew by the guest',
    async () => [...(await kernelFiles(node))].filter((f) => !before.has(f)).length >= 3,
    { timeoutMs: 180_000, intervalMs: 200 },
  );
};

test('the kernel workload checks valid across a kill -9 restart of its node mid-run', {
  timeout: 480_000,
}, async () => {
  // Setup returns once the guest has mounted the node and is about to write.
  const [report] = await runWorkloads([kernel()], { restarts: 1, progress: kernelWrites });
  assert.equal(report.valid, true, describe(report));
  assert.ok(report.stats['writes synced'] >= 6, describe(report));
});
