/**
 * One Cairn node in one process: its data directory, its rpcbind, and the programs it serves,
 * registered with that rpcbind and unregistered on stop.
 */
import type { Logger } from '../log.js';
import { componentLogger } from '../log.js';
import { type RunningRpcbind, startRpcbind } from '../rpc/rpcbind/index.js';
import { type DataDirLock, lockDataDir } from './data-dir.js';

export interface NodeOptions {
  /** Directory holding everything the node keeps; created if missing, locked while running. */
  dataDir: string;
  /** Address every service listens on. Default 127.0.0.1. */
  host?: string;
  /** rpcbind's port; default 111 where it may be bound, any free port otherwise. */
  rpcbindPort?: number;
  logger?: Logger;
}

/** Where a running node can be reached, as `cairn up` prints it. */
export interface NodeEndpoints {
  dataDir: string;
  host: string;
  rpcbind: number;
}

export class CairnNode {
  private stopping: Promise<void> | null = null;

  private constructor(
    private readonly lock: DataDirLock,
    private readonly rpcbind: RunningRpcbind,
    private readonly log: Logger,
  ) {}

  static async start(options: NodeOptions): Promise<CairnNode> {
    const log = options.logger ?? componentLogger('node');
    const host = options.host ?? '127.0.0.1';
    const lock = lockDataDir(options.dataDir);
    try {
      const rpcbind = await startRpcbind({
        host,
        port: options.rpcbindPort,
        logger: log.child({ component: 'rpcbind' }),
      });
      return new CairnNode(lock, rpcbind, log);
    } catch (e) {
      lock.release();
      throw e;
    }
  }

  endpoints(): NodeEndpoints {
    return { dataDir: this.lock.path, host: this.rpcbind.host, rpcbind: this.rpcbind.port };
  }

  /** Stops serving, unregisters, and releases the data directory; safe to call more than once. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      try {
        await this.rpcbind.close();
      } finally {
        this.lock.release();
        this.log.info('node stopped');
      }
    })();
    return this.stopping;
  }
}
