/**
 * One Cairn node in one process: its data directory, its store and namespace, its rpcbind, NFS v3
 * with MOUNT v3 on one port over TCP and UDP, registered with that rpcbind and unregistered on
 * stop, and its cluster membership (SWIM over the membership port, src/cluster/gossip.ts), which
 * it leaves gracefully on stop.
 */
import { join } from 'node:path';
import { type NodeClock, systemClock } from '../clock.js';
import { isLoopbackAddress } from '../cluster/auth.js';
import { GossipNode } from '../cluster/gossip.js';
import type { SwimConfig } from '../cluster/membership/config.js';
import { activeFailpoints } from '../failpoints.js';
import { FileSystem } from '../fs/filesystem.js';
import type { Logger } from '../log.js';
import { componentLogger } from '../log.js';
import { defaultExports, type Exports, loadExports } from '../nfs/exports.js';
import { HandleKey } from '../nfs/handle.js';
import { MountService } from '../nfs/mount.js';
import { NfsService } from '../nfs/server.js';
import {
  localRegistrar,
  type RpcbindRegistration,
  type RunningRpcbind,
  registerWithRpcbind,
  startRpcbind,
} from '../rpc/rpcbind/index.js';
import { RpcServer } from '../rpc/server.js';
import { DEFAULT_MAX_RECORD, TcpServerTransport } from '../rpc/server-tcp.js';
import { UdpServerTransport } from '../rpc/server-udp.js';
import { openStore } from '../store/index.js';
import type { Store } from '../store/types.js';
import { type DataDirLock, lockDataDir } from './data-dir.js';

/** NFS's well-known port, tried first when no port is configured. */
const NFS_PORT = 2049;

export interface NodeOptions {
  /** Directory holding everything the node keeps; created if missing, locked while running. */
  dataDir: string;
  /** Address every service listens on. Default 127.0.0.1. */
  host?: string;
  /** rpcbind's port; default 111 where it may be bound, any free port otherwise. */
  rpcbindPort?: number;
  /** NFS and MOUNT's port; default 2049 where it may be bound, any free port otherwise. */
  nfsPort?: number;
  /** Exports configuration file (docs/EXPORTS.md); default: '/' read-write for loopback clients. */
  exportsFile?: string;
  /** Cluster membership; on by default (a node alone is a cluster of one). false: none. */
  cluster?: ClusterOptions | false;
  logger?: Logger;
  /** The node's clocks (src/clock.ts): file timestamps and membership timing. Default: real time. */
  clock?: NodeClock;
}

export interface ClusterOptions {
  /** Address the membership port binds; default the node's host (see `secret`). */
  host?: string;
  /** Default 7946 where it may be bound, any free port otherwise. */
  port?: number;
  /** Host peers reach this node at, when `host` is a wildcard. */
  advertiseHost?: string;
  /** HOST:PORT of members to join through. */
  seeds?: readonly string[];
  /**
   * The cluster secret. Without one, membership stays on loopback: a node whose services listen
   * on the network but that joins nobody keeps its membership port on 127.0.0.1; one that is
   * asked to join over the network refuses to start (CLUSTER_SECRET_REQUIRED).
   */
  secret?: string | Uint8Array;
  zone?: string;
  weight?: number;
  replicas?: number;
  /** Lets `cairn status` ask from elsewhere than loopback. */
  adminToken?: string;
  swim?: Partial<SwimConfig>;
}

/** Where a running node can be reached, as `cairn up` prints it. */
export interface NodeEndpoints {
  dataDir: string;
  host: string;
  rpcbind: number;
  nfs: number;
  exports: string[];
  /** This node's id (32 hex digits) and membership address, when membership runs. */
  nodeId?: string;
  membership?: string;
}

async function listenBoth(rpc: RpcServer, host: string, port: number | undefined, log: Logger) {
  const attempt = async (p: number) => {
    // NFS WRITEs of wtmax bytes plus headers must fit one record.
    const tcp = new TcpServerTransport(rpc, { host, port: p, maxRecordSize: DEFAULT_MAX_RECORD });
    const bound = (await tcp.listen()).port;
    const udp = new UdpServerTransport(rpc, { host, port: bound });
    try {
      await udp.listen();
    } catch (e) {
      await tcp.close();
      throw e;
    }
    return { tcp, udp, port: bound };
  };
  if (port !== undefined) return attempt(port);
  try {
    return await attempt(NFS_PORT);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EACCES' && code !== 'EADDRINUSE') throw e;
    log.info({ code }, 'cannot bind port 2049; using any free port');
    for (let i = 0; ; i++) {
      try {
        return await attempt(0);
      } catch (e2) {
        if (i >= 4 || (e2 as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e2;
      }
    }
  }
}

interface NodeParts {
  lock: DataDirLock;
  store: Store;
  fs: FileSystem;
  exports: Exports;
  rpcbind: RunningRpcbind;
  nfs: { tcp: TcpServerTransport; udp: UdpServerTransport; port: number };
  registration: RpcbindRegistration;
  membership: GossipNode | undefined;
  log: Logger;
}

/** Where membership binds: see ClusterOptions.secret. */
function membershipHost(host: string, c: ClusterOptions, log: Logger): string {
  if (c.host !== undefined) return c.host;
  const hasSecret = c.secret !== undefined && toLength(c.secret) > 0;
  if (isLoopbackAddress(host) || hasSecret || (c.seeds?.length ?? 0) > 0) return host;
  log.warn(
    { host },
    'no cluster secret: membership listens on 127.0.0.1 only (give a secret to form a cluster over the network)',
  );
  return '127.0.0.1';
}

function toLength(s: string | Uint8Array): number {
  return typeof s === 'string' ? s.length : s.byteLength;
}

export class CairnNode {
  private stopping: Promise<void> | null = null;

  private constructor(private readonly parts: NodeParts) {}

  get fs(): FileSystem {
    return this.parts.fs;
  }

  static async start(options: NodeOptions): Promise<CairnNode> {
    const log = options.logger ?? componentLogger('node');
    const host = options.host ?? '127.0.0.1';
    const broken = activeFailpoints();
    if (broken.length > 0)
      log.warn({ failpoints: broken }, 'started with failpoints: this node breaks its contract');
    // A bad exports file is refused before anything starts.
    const exports = options.exportsFile ? loadExports(options.exportsFile) : defaultExports();
    const lock = lockDataDir(options.dataDir);
    const cleanup: (() => Promise<void> | void)[] = [() => lock.release()];
    const undo = async () => {
      for (const f of cleanup.reverse()) await f();
    };
    try {
      const key = HandleKey.loadOrCreate(lock.path);
      const store = await openStore({ dir: join(lock.path, 'store') });
      cleanup.push(() => store.close());
      const clock = options.clock ?? systemClock;
      if (clock.skew.offsetMs !== 0 || clock.skew.rate !== 1)
        log.warn({ skew: clock.skew }, 'clocks skewed on purpose (CAIRN_CLOCK_SKEW)');
      const fs = await FileSystem.open(store, { clock: clock.wallMs });
      const roots = new Map<number, number>();
      for (const e of exports.list()) roots.set(e.id, (await fs.ensureDir(e.path)).ino);

      const rpcbind = await startRpcbind({
        host,
        port: options.rpcbindPort,
        logger: log.child({ component: 'rpcbind' }),
      });
      cleanup.push(() => rpcbind.close());

      const rpc = new RpcServer({ logger: log.child({ component: 'nfs' }) });
      const nfs = new NfsService({
        fs,
        exports,
        key,
        roots,
        writeVerifier: store.bootVerifier,
        logger: log.child({ component: 'nfs' }),
      });
      rpc.addProgram(NfsService.program, nfs, {
        idempotent: NfsService.idempotent,
        transientArgs: NfsService.transientArgs,
      });
      rpc.addProgram(
        MountService.program,
        new MountService({ fs, exports, nfs, roots, logger: log.child({ component: 'mount' }) }),
        { idempotent: MountService.idempotent },
      );
      const transports = await listenBoth(rpc, host, options.nfsPort, log);
      cleanup.push(async () => {
        await Promise.all([transports.tcp.close(), transports.udp.close()]);
      });

      const registration = await registerWithRpcbind(localRegistrar(rpcbind.registry), rpc.registered(), {
        tcpPort: transports.port,
        udpPort: transports.port,
        host,
      });
      cleanup.push(() => registration.unregister().catch(() => {}));

      let membership: GossipNode | undefined;
      if (options.cluster !== false) {
        const c = options.cluster ?? {};
        membership = new GossipNode({
          dataDir: lock.path,
          host: membershipHost(host, c, log),
          port: c.port,
          advertiseHost: c.advertiseHost,
          seeds: c.seeds,
          secret: c.secret,
          meta: {
            rpcbindPort: rpcbind.port,
            nfsPort: transports.port,
            weight: c.weight ?? 1,
            zone: c.zone ?? '',
          },
          config: c.swim,
          replicas: c.replicas,
          adminToken: c.adminToken,
          logger: log.child({ component: 'membership' }),
          clock,
        });
        await membership.start();
      }
      return new CairnNode({
        lock,
        store,
        fs,
        exports,
        rpcbind,
        nfs: transports,
        registration,
        membership,
        log,
      });
    } catch (e) {
      await undo();
      throw e;
    }
  }

  endpoints(): NodeEndpoints {
    const p = this.parts;
    return {
      dataDir: p.lock.path,
      host: p.rpcbind.host,
      rpcbind: p.rpcbind.port,
      nfs: p.nfs.port,
      exports: p.exports.list().map((e) => e.path),
      nodeId: p.membership?.identity.nodeIdHex,
      membership: p.membership?.address,
    };
  }

  /** Cluster membership, unless the node was started without it. */
  get membership(): GossipNode | undefined {
    return this.parts.membership;
  }

  /** Stops serving, unregisters, closes the store, and releases the data directory; safe to call more than once. */
  stop(): Promise<void> {
    const p = this.parts;
    this.stopping ??= (async () => {
      try {
        // Leave first, while everything else still serves: the others stop counting on us.
        await p.membership?.stop().catch((err) => p.log.warn({ err }, 'leaving the cluster failed'));
        await p.registration.unregister().catch((err) => p.log.warn({ err }, 'unregistering failed'));
        await Promise.all([p.nfs.tcp.close(), p.nfs.udp.close()]);
        await p.rpcbind.close();
        await p.store.close();
      } finally {
        p.lock.release();
        p.log.info('node stopped');
      }
    })();
    return this.stopping;
  }
}
