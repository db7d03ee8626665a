/**
 * A Cairn node for NFS tests: started in a temp dir of its own with an exports file the test
 * writes (never the default export, which may change), its rpcbind and NFS on free ports, and
 * NfsClients connected with whatever AUTH_SYS identity a test needs. `restart` stops the node and
 * starts it again on the same data directory, optionally with a different exports file: what a
 * server crash and reboot, or an operator's reconfiguration, look like to clients. `dispose`
 * stops everything and removes the temp dir.
 */

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ExportAccess, Squash } from '../../src/nfs/exports.js';
import { isNfsError, NfsClient, type NfsCredential, type NfsError } from '../../src/nfs/index.js';
import { nfsStatusName } from '../../src/nfs/status.js';
import { CairnNode } from '../../src/node/node.js';
import { makeTempDir, removeTempDir } from '../support/tmp.js';

export interface ExportSpec {
  path: string;
  id: number;
  access?: ExportAccess;
  clients?: string[];
  squash?: Squash;
  anonuid?: number;
  anongid?: number;
}

/** AUTH_SYS identities the tests act as. */
export const ROOT: NfsCredential = { uid: 0, gid: 0 };
export const ALICE: NfsCredential = { uid: 1001, gid: 1001 };
export const BOB: NfsCredential = { uid: 1002, gid: 1002 };

export class TestNode {
  readonly dir: string;
  readonly dataDir: string;
  private exportsFile: string;
  private generation = 0;
  private clients = new Set<NfsClient>();
  private current: CairnNode | null = null;
  private exports: ExportSpec[] = [];

  private constructor(dir: string) {
    this.dir = dir;
    this.dataDir = join(dir, 'data');
    this.exportsFile = '';
  }

  /** Starts a node in a fresh temp dir serving `exports` (default: '/export', rw, loopback, no squash). */
  static async start(exports: ExportSpec[] = [{ path: '/export', id: 1, access: 'rw', squash: 'none' }]) {
    const n = new TestNode(makeTempDir('nfs-node'));
    try {
      await n.boot(exports);
    } catch (e) {
      removeTempDir(n.dir);
      throw e;
    }
    return n;
  }

  get node(): CairnNode {
    if (!this.current) throw new Error('the node is not running');
    return this.current;
  }

  private async boot(exports: ExportSpec[]): Promise<void> {
    this.exports = exports;
    // A new file per boot, so a restart with other exports cannot be confused with the old one.
    this.exportsFile = join(this.dir, `exports-${this.generation++}.json`);
    const full = exports.map((e) => ({ clients: ['127.0.0.0/8'], access: 'rw', squash: 'none', ...e }));
    writeFileSync(this.exportsFile, JSON.stringify({ exports: full }, null, 2));
    // Port 0 for both: test files run in parallel, each with its own node.
    for (let attempt = 0; ; attempt++) {
      try {
        this.current = await CairnNode.start({
          dataDir: this.dataDir,
          host: '127.0.0.1',
          rpcbindPort: 0,
          nfsPort: 0,
          exportsFile: this.exportsFile,
        });
        return;
      } catch (e) {
        // The UDP socket takes the TCP port's number, which another process may hold.
        if (attempt >= 4 || (e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
      }
    }
  }

  /** A client with AUTH_SYS `credential` (default root), found through the node's rpcbind. */
  async connect(credential: NfsCredential = ROOT): Promise<NfsClient> {
    const ep = this.node.endpoints();
    const c = await NfsClient.connect({
      host: ep.host,
      rpcbindPort: ep.rpcbind,
      credential,
      timeoutMs: 20_000,
    });
    this.clients.add(c);
    return c;
  }

  private async closeClients(): Promise<void> {
    await Promise.all([...this.clients].map((c) => c.close()));
    this.clients.clear();
  }

  /** Stops the node (clients are closed) and starts it on the same data, with `exports` if given. */
  async restart(exports?: ExportSpec[]): Promise<void> {
    await this.closeClients();
    await this.current?.stop();
    this.current = null;
    await this.boot(exports ?? this.exports);
  }

  async stop(): Promise<void> {
    await this.closeClients();
    await this.current?.stop();
    this.current = null;
  }

  async dispose(): Promise<void> {
    try {
      await this.stop();
    } finally {
      removeTempDir(this.dir);
    }
  }
}

/** Runs `fn` with a started TestNode, disposed of afterwards whatever happens. */
export async function withNode<T>(
  exports: ExportSpec[] | undefined,
  fn: (n: TestNode) => Promise<T>,
): Promise<T> {
  const n = await TestNode.start(exports);
  try {
    return await fn(n);
  } finally {
    await n.dispose();
  }
}

/** Asserts that `p` rejects with the NFS status named `code` ('NFS3ERR_NOENT'); returns the error. */
export async function rejectsWith(p: Promise<unknown>, code: string): Promise<NfsError> {
  let value: unknown;
  try {
    value = await p;
  } catch (e) {
    if (!isNfsError(e)) throw e;
    assert.equal(e.code, code, `expected ${code}, got ${e.message}`);
    assert.equal(nfsStatusName(e.status), code);
    return e;
  }
  assert.fail(`expected ${code}, but the call succeeded: ${String(value)}`);
}
