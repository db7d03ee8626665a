/**
 * MOUNT version 3 (RFC 1813 appendix I): turns an export's path into the root handle clients
 * start from. The mount list that DUMP reports is informational only (the NFS server never
 * consults it), kept in memory and bounded.
 */
import type { FileSystem } from '../fs/filesystem.js';
import type { Attr } from '../fs/types.js';
import type { Logger } from '../log.js';
import type { CallContext } from '../rpc/context.js';
import type { Exports } from './exports.js';
import {
  type dirpath,
  type exports as exportList,
  type exportnode,
  type groupnode,
  MNT3_OK,
  MNT3ERR_ACCES,
  MNT3ERR_NAMETOOLONG,
  MNT3ERR_NOENT,
  MNT3ERR_NOTDIR,
  MNT3ERR_SERVERFAULT,
  MNTPATHLEN,
  type MOUNT_V3_Handler,
  MOUNT_V3_program,
  type mountbody,
  type mountlist,
  type mountres3,
} from './gen/mount3.bytes.js';
import type { NfsService } from './server.js';

const AUTH_NONE = 0;
const AUTH_SYS = 1;
const MAX_MOUNT_ENTRIES = 4096;

export interface MountServiceOptions {
  fs: FileSystem;
  exports: Exports;
  nfs: NfsService;
  roots: ReadonlyMap<number, number>;
  logger: Logger;
}

export class MountService implements MOUNT_V3_Handler {
  static readonly program = MOUNT_V3_program;
  static readonly idempotent = ['MOUNTPROC3_NULL', 'MOUNTPROC3_DUMP', 'MOUNTPROC3_EXPORT', 'MOUNTPROC3_MNT'];
  /** host and path of each MNT not yet UMNTed; insertion order, oldest dropped past the bound. */
  private readonly mounts = new Map<string, { host: string; path: string }>();

  constructor(private readonly o: MountServiceOptions) {}

  MOUNTPROC3_NULL(): void {}

  MOUNTPROC3_MNT(args: dirpath, ctx: CallContext): mountres3 {
    if (args.length > MNTPATHLEN) return { fhs_status: MNT3ERR_NAMETOOLONG };
    // libnfs asks for the root export as an empty path.
    const path = args.length === 0 ? '/' : Buffer.from(args).toString('utf8');
    const found = this.o.exports.resolve(path);
    if (!found) return { fhs_status: MNT3ERR_NOENT };
    const exp = found.export;
    if (!exp.allows(ctx.remoteAddress)) {
      this.o.logger.warn({ client: ctx.remoteAddress, path }, 'MNT refused: client not allowed');
      return { fhs_status: MNT3ERR_ACCES };
    }
    const root = this.o.roots.get(exp.id);
    if (root === undefined) return { fhs_status: MNT3ERR_SERVERFAULT };
    let at: Attr;
    try {
      const who = this.o.nfs.identity(exp, ctx);
      at = this.o.fs.lookupPath(who, root, found.rest.join('/'));
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'ENOENT') return { fhs_status: MNT3ERR_NOENT };
      if (code === 'ENOTDIR') return { fhs_status: MNT3ERR_NOTDIR };
      if (code === 'EACCES') return { fhs_status: MNT3ERR_ACCES };
      throw e;
    }
    if (at.type !== 'dir') return { fhs_status: MNT3ERR_NOTDIR };
    const key = `${ctx.remoteAddress}\0${path}`;
    this.mounts.delete(key);
    this.mounts.set(key, { host: ctx.remoteAddress, path });
    if (this.mounts.size > MAX_MOUNT_ENTRIES) this.mounts.delete(this.mounts.keys().next().value as string);
    return {
      fhs_status: MNT3_OK,
      mountinfo: { fhandle: this.o.nfs.handle(exp.id, at).data, auth_flavors: [AUTH_SYS, AUTH_NONE] },
    };
  }

  MOUNTPROC3_DUMP(): mountlist {
    let list: mountlist = null;
    for (const m of [...this.mounts.values()].reverse()) {
      const body: mountbody = {
        ml_hostname: Buffer.from(m.host),
        ml_directory: Buffer.from(m.path),
        ml_next: list,
      };
      list = body;
    }
    return list;
  }

  MOUNTPROC3_UMNT(args: dirpath, ctx: CallContext): void {
    this.mounts.delete(`${ctx.remoteAddress}\0${Buffer.from(args).toString('utf8')}`);
  }

  MOUNTPROC3_UMNTALL(_args: void, ctx: CallContext): void {
    for (const [k, m] of this.mounts) if (m.host === ctx.remoteAddress) this.mounts.delete(k);
  }

  MOUNTPROC3_EXPORT(): exportList {
    let list: exportList = null;
    for (const e of [...this.o.exports.list()].reverse()) {
      let groups: groupnode | null = null;
      for (const c of [...e.clients].reverse()) groups = { gr_name: Buffer.from(c), gr_next: groups };
      const node: exportnode = { ex_dir: Buffer.from(e.path), ex_groups: groups, ex_next: list };
      list = node;
    }
    return list;
  }
}
