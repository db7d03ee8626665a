/**
 * One storage nemesis run: a cluster (cluster.ts), the workload runner in the client namespace
 * (runner.ts), the seeded fault schedule (schedule.ts, faults.ts) while the workloads run, then
 * every fault healed, every node serving, the final reads, and each workload's check on each
 * node's part of the history.
 */
import { setMaxListeners } from 'node:events';
import { join } from 'node:path';
import type { SpawnedProcess } from '../support/process.js';
import { historyNow, NemesisError } from './base.js';
import { type Cluster, withCluster } from './cluster.js';
import { type FaultRecord, runSchedule } from './faults.js';
import { checkHistories, HistoryCollector, type RunnerMessage, saveHistories } from './history.js';
import type { RunnerConfig } from './runner.js';
import { type FaultKind, type PlannedFault, planSchedule } from './schedule.js';
import type { CheckReport } from './workload.js';
import { loadWorkload } from './workloads/index.js';

export interface NemesisOptions {
  readonly seed: number;
  readonly durationMs: number;
  /** Default 3. */
  readonly nodes?: number;
  /** Default registers and sets. */
  readonly workloads?: readonly string[];
  /** Default every kind the node count allows. */
  readonly faults?: readonly FaultKind[];
  /** Nodes started broken on purpose (src/failpoints.ts). */
  readonly failpoints?: readonly string[];
  /** How long an operation may take before it is recorded open. Default 3000 ms. */
  readonly opTimeoutMs?: number;
  readonly meanGapMs?: number;
  /** Where to save the history (histories.ts's format), to check it again without a run. */
  readonly historyFile?: string;
  readonly log?: (line: string) => void;
}

export interface NemesisReport {
  readonly seed: number;
  readonly durationMs: number;
  readonly nodes: number;
  readonly workloads: readonly string[];
  readonly failpoints: readonly string[];
  readonly plan: readonly PlannedFault[];
  readonly faults: readonly FaultRecord[];
  /** One per workload, merged over the nodes. */
  readonly checks: readonly CheckReport[];
  /** What went wrong with Cairn beyond the checks: a node that died on its own, or did not restart. */
  readonly findings: readonly string[];
  readonly operations: Readonly<Record<string, number>>;
  /** Every check valid and no finding. */
  readonly valid: boolean;
}

const RUNNER = join(import.meta.dirname, 'runner.js');
/** How long a healed node has to answer again. */
const SERVING_MS = 30_000;
/**
 * How long the runner may take to set up (a guest boots), to stop its workloads (each finishes the
 * operation under way), and to make its final reads (retried while a node recovers).
 */
const PHASE_MS = { ready: 300_000, ran: 120_000, done: 600_000 };

/** The runner's messages, parsed line by line as they come; `on` sees each. */
function listen(runner: SpawnedProcess, on: (m: RunnerMessage) => void): void {
  let partial = '';
  runner.child.stdout?.on('data', (chunk: string) => {
    partial += chunk;
    for (let nl = partial.indexOf('\n'); nl >= 0; nl = partial.indexOf('\n')) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      if (line.trim() !== '') on(JSON.parse(line) as RunnerMessage);
    }
  });
}

/** Restores every node to health: no rules, no ballast, no pause, no skew, running and serving. */
async function healAll(cluster: Cluster, onCrash: (node: string, t: number) => void, findings: string[]) {
  for (const node of cluster.nodes) {
    if (node.paused && node.running) cluster.resume(node);
    for (const chain of ['INPUT', 'OUTPUT']) await cluster.iptables(node, ['-F', chain]);
    await cluster.freeDisk(node);
    if (Object.keys(node.env).length > 0 && node.running) {
      const killedAt = await cluster.stop(node);
      if (killedAt !== undefined) {
        onCrash(node.name, killedAt);
        findings.push(`${node.name} did not stop on SIGTERM and was killed`);
      }
    }
    node.env = {};
    if (!node.running) {
      try {
        await cluster.start(node);
      } catch (e) {
        findings.push(`${node.name} did not start after the faults were healed: ${(e as Error).message}`);
      }
    }
  }
  for (const node of cluster.nodes) {
    if (!(await cluster.serving(node, SERVING_MS)))
      findings.push(
        `${node.name} did not answer NFS ${SERVING_MS / 1000} s after every fault was healed ` +
          `(its process is ${node.running ? 'running' : 'gone'})\n${node.proc?.describeOutput() ?? ''}`,
      );
  }
}

export async function runNemesis(o: NemesisOptions): Promise<NemesisReport> {
  const log = o.log ?? (() => {});
  const nodes = o.nodes ?? 3;
  const workloadNames = o.workloads ?? ['registers', 'sets'];
  // Loaded here so that a name that does not exist fails before anything starts.
  const workloads = await Promise.all(workloadNames.map(loadWorkload));
  const plan = planSchedule({
    seed: o.seed,
    durationMs: o.durationMs,
    nodes,
    kinds: o.faults,
    meanGapMs: o.meanGapMs,
  });
  // One clock for the whole run: log lines, fault records and history times count from here.
  const origin = historyNow();
  const now = () => historyNow() - origin;
  const history = new HistoryCollector(origin);
  const findings: string[] = [];
  const stamp = () => `+${(now() / 1000).toFixed(1)}s`;

  const faults = await withCluster(
    {
      nodes,
      // The layer logs every write's old bytes: only when a power loss is planned.
      powerLoss: plan.some((f) => f.kind === 'power'),
      failpoints: o.failpoints,
      onUnexpectedExit: (node, status, output) => {
        // It died by itself: a crash like kill -9 as far as the data goes, and a bug.
        history.crash(node.name, 'kill', historyNow());
        findings.push(
          `${node.name} exited on its own (code ${status.code}, signal ${status.signal})\n${output}`,
        );
        log(`${stamp()} ${node.name} exited on its own (code ${status.code}, signal ${status.signal})`);
      },
    },
    async (cluster) => {
      const config: RunnerConfig = {
        nodes: cluster.targets(),
        workloads: workloadNames,
        seed: o.seed,
        opTimeoutMs: o.opTimeoutMs ?? 3000,
      };
      const runner = cluster.client.spawn([process.execPath, RUNNER, JSON.stringify(config)], {
        name: 'runner',
        env: { ...process.env, CAIRN_LOG_LEVEL: 'silent' },
      });
      const phases = new Map<string, () => void>();
      /** The runner's word that it reached `phase`, counted from when the parent starts waiting. */
      const reached = (phase: 'ready' | 'ran' | 'done') => {
        const said = new Promise<void>((resolve, reject) => {
          phases.set(phase, resolve);
          void runner.exited.then((s) => {
            reject(
              new NemesisError(
                `the workload runner exited (code ${s.code}) before '${phase}'\n${runner.describeOutput()}`,
              ),
            );
          });
        });
        // Unobserved until awaited: a runner that dies early must not make an unhandled rejection.
        said.catch(() => {});
        return async () => {
          let timer: NodeJS.Timeout | undefined;
          const late = new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(new NemesisError(`the workload runner did not reach '${phase}' in time`)),
              PHASE_MS[phase],
            );
          });
          try {
            await Promise.race([said, late]);
          } finally {
            clearTimeout(timer);
          }
        };
      };
      const ready = reached('ready');
      const ran = reached('ran');
      const done = reached('done');
      let runnerError: string | undefined;
      listen(runner, (m) => {
        if (m.type === 'log') log(`${stamp()} ${m.w}: ${m.line}`);
        else if (m.type === 'error') runnerError = m.message;
        else if (m.type === 'ready' || m.type === 'ran' || m.type === 'done') phases.get(m.type)?.();
        else history.take(m);
      });
      try {
        await ready();
        log(`${stamp()} workloads ready; ${plan.length} faults planned over ${o.durationMs} ms`);
        const stopper = new AbortController();
        const stop = stopper.signal;
        // Every fault waits on it.
        setMaxListeners(0, stop);
        const timer = setTimeout(() => stopper.abort(), o.durationMs);
        const [records] = await Promise.all([
          runSchedule(cluster, plan, stop, {
            now,
            onCrash: (node, kind, t) => history.crash(node.name, kind, t),
            onFinding: (text) => findings.push(text),
            log,
          }),
          // The workloads run for the whole duration, even past the last fault.
          new Promise((resolve) => stop.addEventListener('abort', resolve)),
        ]);
        clearTimeout(timer);
        runner.signal('SIGUSR1');
        await ran();
        await healAll(cluster, (node, t) => history.crash(node, 'kill', t), findings);
        log(`${stamp()} every fault healed; final reads`);
        runner.signal('SIGUSR2');
        await done();
        await runner.exited;
        return records;
      } catch (e) {
        if (runnerError) throw new NemesisError(`the workload runner failed: ${runnerError}`, { cause: e });
        throw e;
      } finally {
        await runner.stop('SIGKILL');
      }
    },
  );
  history.closePending();
  const parts = workloads.flatMap((w) =>
    Array.from({ length: nodes }, (_, i) => ({
      workload: w.name,
      node: `n${i + 1}`,
      history: history.part(w.name, `n${i + 1}`),
    })),
  );
  if (o.historyFile) saveHistories(o.historyFile, parts);
  const checks = await checkHistories(parts);
  return {
    seed: o.seed,
    durationMs: o.durationMs,
    nodes,
    workloads: workloadNames,
    failpoints: o.failpoints ?? [],
    plan,
    faults,
    checks,
    findings,
    operations: history.counts(),
    valid: findings.length === 0 && checks.every((c) => c.valid === true),
  };
}
