/**
 * The cluster the storage nemesis runs against: N Cairn node processes, each in its own network
 * namespace joined to a bridge namespace by a veth pair (made inside the namespaces, never in the
 * host's), each with its data directory alone on a small tmpfs so that a full disk is a real one,
 * and a client namespace on the same bridge for the workload runner. Nodes restart on the same
 * data. With `powerLoss`, every node process is started under the power-loss layer, so that any
 * crash can be turned into a power loss after the fact.
 */
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { attachToBridge, makeBridge, nest } from '../cluster/net-lab.js';
import type { Netns } from '../support/netns.js';
import { type CutReport, type PowerLossLayer, powerLossLayer } from '../support/powerloss/index.js';
import type { ExitStatus, SpawnedProcess } from '../support/process.js';
import { withTempDir } from '../support/tmp.js';
import { withTmpfs } from '../support/tmpfs.js';
import { historyNow, NemesisError } from './base.js';
import type { NodeTarget } from './workload.js';

const CLI = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.js');
const PROBE = join(import.meta.dirname, 'probe.js');
const SUBNET = '10.78.0';
export const CLIENT_IP = `${SUBNET}.100`;
export const EXPORT_PATH = '/nemesis';
const RPCBIND_PORT = 111;
const NFS_PORT = 2049;
const GOSSIP_PORT = 7946;
/** Membership settles within seconds of a heal, so that partitions come and go many times a run. */
const SWIM = { probeInterval: 500, probeTimeout: 250, gossipInterval: 100, reconnectInterval: 1000 };

/**
 * The layer of one node. Its limbo (hard links to unlinked files) must be on the node's file
 * system, but its undo log, which holds the old bytes of every write since the last cut, lives on
 * the host's disk, behind a symbolic link: on the node's small tmpfs it would fill the disk, and an
 * append that fails aborts the node.
 */
async function powerLossFor(node: ClusterNode, dir: string): Promise<PowerLossLayer> {
  const stateDir = join(node.disk, 'powerloss');
  mkdirSync(stateDir);
  const log = join(dir, `powerloss-${node.name}.log`);
  writeFileSync(log, '');
  symlinkSync(log, join(stateDir, 'log'));
  return powerLossLayer(node.dataDir, stateDir);
}

export interface ClusterOptions {
  /** Default 3. */
  nodes?: number;
  /** Start every node under the power-loss layer, so that any crash can be made a power loss. */
  powerLoss?: boolean;
  /** Size of each node's tmpfs. Default 64 MiB. */
  diskMiB?: number;
  /** CAIRN_FAILPOINTS of every node (a broken build on purpose). */
  failpoints?: readonly string[];
  /** A node process exited without the harness stopping it: a finding, not a fault. */
  onUnexpectedExit?: (node: ClusterNode, status: ExitStatus, output: string) => void;
}

export class ClusterNode {
  proc: SpawnedProcess | undefined;
  /** Extra environment of the next starts (a clock skew). */
  env: Record<string, string> = {};
  /** True while the harness itself ends the process, so that its exit is no finding. */
  stopping = false;
  paused = false;
  powerLoss: PowerLossLayer | undefined;

  constructor(
    readonly index: number,
    readonly name: string,
    readonly ip: string,
    readonly ns: Netns,
    /** The node's tmpfs: its data directory, the power-loss layer's limbo, a ballast when full. */
    readonly disk: string,
  ) {}

  get dataDir(): string {
    return join(this.disk, 'data');
  }

  get running(): boolean {
    return this.proc?.running ?? false;
  }
}

export class Cluster {
  constructor(
    readonly nodes: readonly ClusterNode[],
    readonly client: Netns,
    private readonly options: ClusterOptions,
    private readonly args: (node: ClusterNode) => string[],
  ) {}

  targets(): NodeTarget[] {
    return this.nodes.map((n) => ({
      name: n.name,
      host: n.ip,
      rpcbindPort: RPCBIND_PORT,
      nfsPort: NFS_PORT,
      exportPath: EXPORT_PATH,
    }));
  }

  /** Starts the node on its data and resolves once it serves NFS (its banner is printed after). */
  async start(node: ClusterNode): Promise<void> {
    if (node.running) throw new NemesisError(`${node.name} is already running`);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      CAIRN_LOG_LEVEL: 'warn',
      ...node.powerLoss?.env,
      ...node.env,
    };
    if (this.options.failpoints?.length) env.CAIRN_FAILPOINTS = this.options.failpoints.join(',');
    else delete env.CAIRN_FAILPOINTS;
    node.stopping = false;
    node.paused = false;
    const proc = node.ns.spawn([process.execPath, CLI, 'up', ...this.args(node)], { env, name: node.name });
    node.proc = proc;
    void proc.exited.then((status) => {
      if (!node.stopping && node.proc === proc)
        this.options.onUnexpectedExit?.(node, status, proc.describeOutput());
    });
    await proc.waitForLine(/^\s+nfs\s+\S+:\d+/, 60_000);
  }

  /** kill -9, and waits for the process to be gone; returns the history time of the kill. */
  async kill(node: ClusterNode): Promise<number> {
    const proc = this.proc(node);
    node.stopping = true;
    const at = historyNow();
    proc.signal('SIGKILL');
    await proc.exited;
    node.paused = false;
    return at;
  }

  /**
   * kill -9, then every write the node made and did not fsync is thrown away (with `seed`, each
   * is kept or thrown away at random: a disk that wrote back part of its cache). Returns the
   * history time of the kill and what the cut undid.
   */
  async powerCut(node: ClusterNode, seed?: number): Promise<{ at: number; report: CutReport }> {
    if (node.powerLoss === undefined)
      throw new NemesisError(`${node.name} was not started under the power-loss layer`);
    const at = await this.kill(node);
    return { at, report: await node.powerLoss.cut({ seed }) };
  }

  /**
   * A clean stop (SIGTERM). Returns the history time of a kill -9 if the node had to be killed
   * after `graceMs`, so that the caller records that crash; undefined after a clean stop.
   */
  async stop(node: ClusterNode, graceMs = 15_000): Promise<number | undefined> {
    const proc = this.proc(node);
    node.stopping = true;
    if (node.paused) this.resume(node);
    proc.signal('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), graceMs);
    });
    const r = await Promise.race([proc.exited, late]);
    clearTimeout(timer);
    if (r === 'late') return this.kill(node);
    return undefined;
  }

  pause(node: ClusterNode): void {
    this.proc(node).signal('SIGSTOP');
    node.paused = true;
  }

  resume(node: ClusterNode): void {
    this.proc(node).signal('SIGCONT');
    node.paused = false;
  }

  /** Whether the node answers an NFS NULL call from the client namespace within `timeoutMs`. */
  async serving(node: ClusterNode, timeoutMs: number): Promise<boolean> {
    const r = await this.client.exec(
      [process.execPath, PROBE, node.ip, String(NFS_PORT), String(timeoutMs)],
      {
        timeoutMs: timeoutMs + 10_000,
      },
    );
    return r.code === 0;
  }

  /** Runs iptables inside the node's namespace (-w: the xtables lock is shared by every namespace). */
  async iptables(node: ClusterNode, args: readonly string[]): Promise<void> {
    await node.ns.execChecked(['iptables', '-w', ...args], { timeoutMs: 30_000 });
  }

  /**
   * Fills the node's tmpfs to the last page with a ballast file, written (not allocated) in ever
   * smaller pieces until even a page does not fit: the node may be writing meanwhile. Returns its
   * size.
   */
  async fillDisk(node: ClusterNode): Promise<number> {
    const f = await open(join(node.disk, 'ballast'), 'w');
    let size = 0;
    try {
      for (let piece = 1 << 20; piece >= 4096; piece >>= 4) {
        const zeros = Buffer.alloc(piece);
        for (;;) {
          try {
            size += (await f.write(zeros, 0, piece, size)).bytesWritten;
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
            break;
          }
        }
      }
    } finally {
      await f.close();
    }
    return size;
  }

  async freeDisk(node: ClusterNode): Promise<void> {
    await rm(join(node.disk, 'ballast'), { force: true });
  }

  private proc(node: ClusterNode): SpawnedProcess {
    if (node.proc === undefined || !node.proc.running) throw new NemesisError(`${node.name} is not running`);
    return node.proc;
  }
}

async function nestTmpfs<T>(
  n: number,
  sizeMiB: number,
  acc: string[],
  fn: (all: string[]) => Promise<T>,
): Promise<T> {
  if (acc.length === n) return fn(acc);
  return withTmpfs(`nemesis-n${acc.length + 1}`, sizeMiB, (mnt) => nestTmpfs(n, sizeMiB, [...acc, mnt], fn));
}

/**
 * Builds the cluster, starts every node, runs `fn`, and removes everything whatever happens:
 * processes, namespaces, tmpfs mounts and files.
 */
export async function withCluster<T>(
  options: ClusterOptions,
  fn: (cluster: Cluster) => Promise<T>,
): Promise<T> {
  const n = options.nodes ?? 3;
  if (!Number.isInteger(n) || n < 1 || n > 32) throw new NemesisError('nodes must be from 1 to 32');
  return withTempDir('nemesis', (dir) =>
    nestTmpfs(n, options.diskMiB ?? 64, [], (disks) =>
      nest(['nem-br', 'nem-c', ...disks.map((_, i) => `nem-n${i + 1}`)], [], async (all) => {
        const [bridge, client, ...spaces] = all;
        await makeBridge(bridge);
        await attachToBridge(bridge, client, CLIENT_IP, 'pc');
        const nodes: ClusterNode[] = [];
        for (let i = 0; i < n; i++) {
          const node = new ClusterNode(i, `n${i + 1}`, `${SUBNET}.${i + 1}`, spaces[i], disks[i]);
          await attachToBridge(bridge, node.ns, node.ip, `p${i + 1}`);
          mkdirSync(node.dataDir);
          if (options.powerLoss) node.powerLoss = await powerLossFor(node, dir);
          nodes.push(node);
        }
        const secretFile = join(dir, 'secret');
        writeFileSync(secretFile, `nemesis-${'x'.repeat(24)}\n`, { mode: 0o600 });
        const exportsFile = join(dir, 'exports.json');
        writeFileSync(
          exportsFile,
          JSON.stringify({
            exports: [
              {
                path: EXPORT_PATH,
                id: 1,
                access: 'rw',
                clients: [`${SUBNET}.0/24`, '127.0.0.0/8'],
                squash: 'none',
              },
            ],
          }),
        );
        const args = (node: ClusterNode): string[] => [
          '--data',
          node.dataDir,
          // Every address, advertising the bridge one: with --host IP, the node's own rpcbind
          // refuses the NFS registration from that (non-loopback) address.
          '--host',
          '0.0.0.0',
          '--advertise',
          node.ip,
          '--rpcbind-port',
          String(RPCBIND_PORT),
          '--nfs-port',
          String(NFS_PORT),
          '--gossip-port',
          String(GOSSIP_PORT),
          '--secret-file',
          secretFile,
          '--exports',
          exportsFile,
          '--swim',
          JSON.stringify(SWIM),
          ...nodes.filter((o) => o !== node).flatMap((o) => ['--join', `${o.ip}:${GOSSIP_PORT}`]),
        ];
        const cluster = new Cluster(nodes, client, options, args);
        try {
          await Promise.all(nodes.map((node) => cluster.start(node)));
          return await fn(cluster);
        } finally {
          for (const node of nodes) {
            node.stopping = true;
            if (node.paused && node.running) cluster.resume(node);
          }
        }
      }),
    ),
  );
}
