/**
 * Injecting and healing the faults of a schedule (schedule.ts) on a running cluster, in real time.
 * Each fault is injected at its planned time once what it holds is free, held, and healed; a crash
 * (kill -9 or power loss) is handed to `onCrash` with its history time, for the checker. When
 * `stop` aborts, no further fault starts and those held are healed at once.
 *
 * Partitions and loss are iptables rules inside the nodes' namespaces, each removed exactly on
 * heal, so faults on different nodes never touch each other's rules.
 */
import type { CrashKind } from '../../src/check/index.js';
import { CLIENT_IP, type Cluster, type ClusterNode } from './cluster.js';
import { CLIENT, describeFault, type Endpoint, type FaultKind, type PlannedFault } from './schedule.js';
import { pause } from './workloads/session.js';

export interface FaultRecord {
  readonly n: number;
  readonly kind: FaultKind;
  readonly description: string;
  /** Milliseconds after the schedule started, as planned. */
  readonly plannedAt: number;
  /** On the run's clock (ScheduleHooks.now). */
  injectedAt?: number;
  healedAt?: number;
  /** What the injection found worth telling (what a power cut undid). */
  detail?: string;
  /** What went wrong injecting or healing it. */
  error?: string;
}

export interface ScheduleHooks {
  /** The run's clock, in milliseconds: fault records and log lines are stamped with it. */
  now(): number;
  onCrash(node: ClusterNode, kind: CrashKind, t: number): void;
  /** Something Cairn got wrong that no check sees (a node that did not restart, or stop). */
  onFinding(text: string): void;
  log(line: string): void;
}

/** A log line's time: seconds on the run's clock. */
const stamp = (ms: number) => `+${(ms / 1000).toFixed(1)}s`;

type Heal = () => Promise<void>;
/** A fault injected: how to heal it, and what the injection found worth telling. */
interface Injected {
  heal: Heal;
  detail?: string;
}

/** An iptables rule in one node's namespace, deleted as it was added. */
interface Rule {
  readonly node: ClusterNode;
  readonly spec: readonly string[];
}

async function addRules(cluster: Cluster, rules: readonly Rule[]): Promise<Injected> {
  const added: Rule[] = [];
  const heal = async () => {
    for (const r of added.splice(0)) await cluster.iptables(r.node, ['-D', ...r.spec]);
  };
  try {
    for (const r of rules) {
      await cluster.iptables(r.node, ['-A', ...r.spec]);
      added.push(r);
    }
  } catch (e) {
    await heal().catch(() => {});
    throw e;
  }
  return { heal };
}

/** The rule that drops packets from `from` to `to`: at the receiving node, or leaving for the client. */
function drop(cluster: Cluster, from: Endpoint, to: Endpoint): Rule {
  const ip = (e: Endpoint) => (e === CLIENT ? CLIENT_IP : cluster.nodes[e].ip);
  if (to !== CLIENT) return { node: cluster.nodes[to], spec: ['INPUT', '-s', ip(from), '-j', 'DROP'] };
  return { node: cluster.nodes[from], spec: ['OUTPUT', '-d', CLIENT_IP, '-j', 'DROP'] };
}

function cutBetween(cluster: Cluster, a: readonly number[], b: readonly number[]): Rule[] {
  return a.flatMap((x) => b.flatMap((y) => [drop(cluster, x, y), drop(cluster, y, x)]));
}

/** Starts the node; a node that does not come back is a finding (and the error of its fault). */
async function restart(cluster: Cluster, node: ClusterNode, hooks: ScheduleHooks): Promise<void> {
  try {
    await cluster.start(node);
  } catch (e) {
    hooks.onFinding(`${node.name} did not restart: ${(e as Error).message}`);
    throw e;
  }
}

/**
 * A fault that holds the node's process finds it down only if it died on its own (a finding
 * already): it is started again, so that the rest of the run still has the node to break.
 */
async function revive(cluster: Cluster, node: ClusterNode, hooks: ScheduleHooks): Promise<void> {
  if (node.running) return;
  hooks.log(`${stamp(hooks.now())} ${node.name} is down after it died on its own; starting it again`);
  await restart(cluster, node, hooks);
}

/** Stops the node cleanly; if it had to be killed, that is a crash the history must hold. */
async function stopClean(cluster: Cluster, node: ClusterNode, hooks: ScheduleHooks): Promise<void> {
  const output = node.proc?.describeOutput() ?? '';
  const killedAt = await cluster.stop(node);
  if (killedAt !== undefined) {
    hooks.onCrash(node, 'kill', killedAt);
    hooks.onFinding(`${node.name} did not stop on SIGTERM and was killed\n${output}`);
  }
}

async function inject(cluster: Cluster, f: PlannedFault, hooks: ScheduleHooks): Promise<Injected> {
  const node = cluster.nodes[f.nodes[0]];
  switch (f.kind) {
    case 'kill':
      hooks.onCrash(node, 'kill', await cluster.kill(node));
      return { heal: () => restart(cluster, node, hooks) };
    case 'power': {
      const { at, report } = await cluster.powerCut(node, f.cutSeed);
      hooks.onCrash(node, 'power', at);
      return {
        heal: () => restart(cluster, node, hooks),
        detail:
          `${report.writesReverted} writes undone, ${report.writesKept} kept, ` +
          `${report.filesRemoved} files removed, ${report.entriesRestored} names restored`,
      };
    }
    case 'pause':
      cluster.pause(node);
      return { heal: async () => cluster.resume(node) };
    case 'partition-client':
      return addRules(cluster, [drop(cluster, CLIENT, node.index), drop(cluster, node.index, CLIENT)]);
    case 'partition-halves':
    case 'partition-bridge':
      return addRules(cluster, cutBetween(cluster, f.sides![0], f.sides![1]));
    case 'partition-oneway':
      return addRules(cluster, [drop(cluster, f.from!, f.to!)]);
    case 'loss': {
      const random = [
        '-m',
        'statistic',
        '--mode',
        'random',
        '--probability',
        String(f.probability),
        '-j',
        'DROP',
      ];
      return addRules(cluster, [
        { node, spec: ['INPUT', '-i', 'eth0', ...random] },
        { node, spec: ['OUTPUT', '-o', 'eth0', ...random] },
      ]);
    }
    case 'skew':
      await stopClean(cluster, node, hooks);
      node.env = { CAIRN_CLOCK_SKEW: f.skew! };
      await restart(cluster, node, hooks);
      return {
        heal: async () => {
          await stopClean(cluster, node, hooks);
          node.env = {};
          await restart(cluster, node, hooks);
        },
      };
    case 'disk-full':
      await cluster.fillDisk(node);
      return { heal: () => cluster.freeDisk(node) };
  }
}

/**
 * Runs the schedule until it ends or `stop` aborts, then heals what is held; resolves with the
 * record of every fault injected (in schedule order), once all are healed. Each lock passes from
 * fault to fault in schedule order, and a fault waiting for one lock holds up no fault that needs
 * others.
 */
export async function runSchedule(
  cluster: Cluster,
  plan: readonly PlannedFault[],
  stop: AbortSignal,
  hooks: ScheduleHooks,
): Promise<FaultRecord[]> {
  const start = performance.now();
  const name = (e: Endpoint) => (e === CLIENT ? 'client' : cluster.nodes[e].name);
  const stopped = new Promise<void>((resolve) => stop.addEventListener('abort', () => resolve()));
  const holding = new Map<string, Promise<void>>();
  const records: FaultRecord[] = [];

  const run = async (f: PlannedFault, before: readonly (Promise<void> | undefined)[]) => {
    await pause(f.at - (performance.now() - start), stop);
    await Promise.race([Promise.all(before), stopped]);
    if (stop.aborted) return;
    const rec: FaultRecord = { n: f.n, kind: f.kind, description: describeFault(f, name), plannedAt: f.at };
    records.push(rec);
    const node = cluster.nodes[f.nodes[0]];
    const holdsProcess = f.holds.some((l) => l.startsWith('proc:'));
    try {
      if (holdsProcess) await revive(cluster, node, hooks);
      const { heal, detail } = await inject(cluster, f, hooks);
      rec.detail = detail;
      rec.injectedAt = hooks.now();
      hooks.log(
        `${stamp(rec.injectedAt)} fault ${f.n} ${rec.description}${rec.detail ? `: ${rec.detail}` : ''}`,
      );
      await pause(f.holdMs, stop);
      await heal();
      if (holdsProcess) await revive(cluster, node, hooks);
      rec.healedAt = hooks.now();
      hooks.log(`${stamp(rec.healedAt)} healed ${f.n}`);
    } catch (e) {
      rec.error = (e as Error).message;
      hooks.log(`${stamp(hooks.now())} fault ${f.n} (${rec.description}) went wrong: ${rec.error}`);
    }
  };

  const tasks = plan.map((f) => {
    const task = run(
      f,
      f.holds.map((l) => holding.get(l)),
    );
    for (const l of f.holds) holding.set(l, task);
    return task;
  });
  await Promise.all(tasks);
  return records.sort((a, b) => a.n - b.n);
}
