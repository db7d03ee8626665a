/**
 * A small network for membership tests: one namespace holding a bridge, and one namespace per
 * node, each joined to the bridge by a veth pair created in place (never in the host's namespace,
 * so parallel tests cannot clash on interface names). Node i has 10.77.0.(i+1)/24 on its eth0 and
 * runs `cairn up` there with the cluster secret; iptables inside a node's namespace cuts its links.
 * Everything is removed when the function returns or throws.
 */

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StatusJson } from '../../src/cli/status.js';
import type { SwimConfig } from '../../src/cluster/membership/config.js';
import { type Netns, withNetns } from '../support/netns.js';
import type { SpawnedProcess } from '../support/process.js';
import { withTempDir } from '../support/tmp.js';
import { waitUntil } from '../support/wait.js';
import { CLI, type NodeInfo, nodeInfo, TEST_SWIM } from './net-support.js';

export const GOSSIP_PORT = 7946;

export interface LabNode {
  index: number;
  ns: Netns;
  ip: string;
  addr: string;
  proc?: SpawnedProcess;
  info?: NodeInfo;
}

export interface LabOptions {
  /** Environment of every node process, over the test's own (CAIRN_LOG_LEVEL=warn by default). */
  env?: NodeJS.ProcessEnv;
  /** SWIM settings of every node; default TEST_SWIM. */
  swim?: Partial<SwimConfig>;
  /** Called with each line a node process writes to stderr (its JSON log), as it arrives. */
  onLog?: (node: number, line: string) => void;
}

export interface StartOptions {
  /** Environment of this start, over the lab's. */
  env?: NodeJS.ProcessEnv;
  /** Membership addresses to join through; default node 1's (none for node 1 itself). */
  seeds?: readonly string[];
}

export interface Lab {
  bridge: Netns;
  nodes: LabNode[];
  dir: string;
  secretFile: string;
  /** Starts node i's process (again); resolves once it prints where it serves. */
  start(i: number, options?: StartOptions): Promise<NodeInfo>;
  /** `cairn status --json` run inside node i's namespace, against its loopback admin port. */
  status(i: number): Promise<StatusJson>;
  iptables(i: number, args: string[]): Promise<void>;
  /** Packets dropped so far by node i's INPUT rules. */
  dropped(i: number): Promise<number>;
}

/** Nests a `withNetns` for each label: `fn` has the namespaces in the order of `labels`. */
export async function nest<T>(labels: string[], acc: Netns[], fn: (all: Netns[]) => Promise<T>): Promise<T> {
  if (labels.length === 0) return fn(acc);
  return withNetns(labels[0], (ns) => nest(labels.slice(1), [...acc, ns], fn));
}

/** Creates the bridge br0 in `bridge` and sets it up. */
export async function makeBridge(bridge: Netns): Promise<void> {
  await bridge.execChecked(['ip', 'link', 'add', 'br0', 'type', 'bridge']);
  await bridge.execChecked(['ip', 'link', 'set', 'br0', 'up']);
}

/**
 * Joins `ns` to br0 in `bridge` by a veth pair made in `ns` (its end there is eth0 with `ip`/24,
 * the other end `port` in the bridge's namespace).
 */
export async function attachToBridge(bridge: Netns, ns: Netns, ip: string, port: string): Promise<void> {
  await ns.execChecked([
    'ip',
    'link',
    'add',
    'eth0',
    'type',
    'veth',
    'peer',
    'name',
    port,
    'netns',
    bridge.name,
  ]);
  await ns.execChecked(['ip', 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
  await ns.execChecked(['ip', 'link', 'set', 'eth0', 'up']);
  await bridge.execChecked(['ip', 'link', 'set', port, 'master', 'br0']);
  await bridge.execChecked(['ip', 'link', 'set', port, 'up']);
}

/** Hands each complete line of a stream to `fn`. */
function eachLine(stream: NodeJS.ReadableStream | null, fn: (line: string) => void): void {
  let partial = '';
  stream?.on('data', (chunk: string | Buffer) => {
    partial += chunk.toString();
    let nl = partial.indexOf('\n');
    while (nl >= 0) {
      fn(partial.slice(0, nl));
      partial = partial.slice(nl + 1);
      nl = partial.indexOf('\n');
    }
  });
}

export async function withLab<T>(
  n: number,
  label: string,
  fn: (lab: Lab) => Promise<T>,
  options: LabOptions = {},
): Promise<T> {
  return withTempDir(label, (dir) =>
    nest([`${label}-br`, ...Array.from({ length: n }, (_, i) => `${label}-${i + 1}`)], [], async (all) => {
      const [bridge, ...spaces] = all;
      await makeBridge(bridge);
      const nodes: LabNode[] = [];
      for (let i = 0; i < n; i++) {
        const ns = spaces[i];
        const ip = `10.77.0.${i + 1}`;
        await attachToBridge(bridge, ns, ip, `p${i}`);
        nodes.push({ index: i, ns, ip, addr: `${ip}:${GOSSIP_PORT}` });
      }
      const secretFile = join(dir, 'secret');
      writeFileSync(secretFile, `${'lab-secret-'.repeat(4)}\n`, { mode: 0o600 });
      const lab: Lab = {
        bridge,
        nodes,
        dir,
        secretFile,
        async start(i, o = {}) {
          const node = nodes[i];
          const args = [
            process.execPath,
            CLI,
            'up',
            '--data',
            join(dir, `node-${i + 1}`),
            // Every address, advertising the bridge one: with --host IP, the node's own
            // rpcbind refuses the NFS registration from that (non-loopback) address.
            '--host',
            '0.0.0.0',
            '--advertise',
            node.ip,
            '--gossip-port',
            String(GOSSIP_PORT),
            '--secret-file',
            secretFile,
            '--swim',
            JSON.stringify(options.swim ?? TEST_SWIM),
          ];
          for (const seed of o.seeds ?? (i > 0 ? [nodes[0].addr] : [])) args.push('--join', seed);
          node.proc = node.ns.spawn(args, {
            env: { ...process.env, CAIRN_LOG_LEVEL: 'warn', ...options.env, ...o.env },
          });
          const onLog = options.onLog;
          if (onLog) eachLine(node.proc.child.stderr, (line) => onLog(i, line));
          node.info = await nodeInfo(node.proc);
          return node.info;
        },
        async status(i) {
          const r = await nodes[i].ns.execChecked(
            [process.execPath, CLI, 'status', '--json', '--node', `127.0.0.1:${GOSSIP_PORT}`],
            { timeoutMs: 10_000 },
          );
          return JSON.parse(r.stdout) as StatusJson;
        },
        async iptables(i, args) {
          await nodes[i].ns.execChecked(['iptables', ...args], { timeoutMs: 10_000 });
        },
        async dropped(i) {
          const r = await nodes[i].ns.execChecked(['iptables', '-L', 'INPUT', '-v', '-n', '-x'], {
            timeoutMs: 10_000,
          });
          let sum = 0;
          for (const line of r.stdout.split('\n')) {
            const m = /^\s*(\d+)\s+\d+\s+DROP\b/.exec(line);
            if (m) sum += Number(m[1]);
          }
          return sum;
        },
      };
      // Bridge ports take a moment to forward; the first node's join retries until they do.
      for (let i = 0; i < n; i++) await lab.start(i);
      await waitUntil('the lab cluster forms', async () => everyoneSees(lab, lab.nodes, 'alive'), {
        timeoutMs: 30_000,
        intervalMs: 200,
      });
      return fn(lab);
    }),
  );
}

/** Whether every node in `observers` holds every node in `subjects` in `state` (itself aside). */
export async function everyoneSees(
  lab: Lab,
  subjects: LabNode[],
  state: string,
  observers: LabNode[] = lab.nodes,
): Promise<boolean> {
  const views = await Promise.all(observers.map((o) => lab.status(o.index)));
  return views.every((v) =>
    subjects.every(
      (s) => s.info?.id === v.self || v.members.find((m) => m.id === s.info?.id)?.state === state,
    ),
  );
}

/** Polls every node's status for `ms`, failing at once if any view shows a member dead or left. */
export async function nobodyDiesFor(lab: Lab, ms: number): Promise<number> {
  const end = performance.now() + ms;
  let rounds = 0;
  while (performance.now() < end) {
    const views = await Promise.all(lab.nodes.map((n) => lab.status(n.index)));
    for (const v of views) {
      const bad = v.members.filter((m) => m.state === 'dead' || m.state === 'left');
      assert.deepEqual(bad, [], `${v.self} declared members dead: ${JSON.stringify(bad)}`);
    }
    rounds++;
  }
  return rounds;
}

export function incarnationOf(v: StatusJson, n: LabNode): number {
  return v.members.find((m) => m.id === n.info?.id)?.incarnation ?? -1;
}
