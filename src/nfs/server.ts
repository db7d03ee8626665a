/**
 * NFS version 3 (RFC 1813) over Cairn's namespace: every procedure checks the handle (forged or
 * damaged: BADHANDLE; removed inode or unknown export: STALE), the client's network, the
 * export's access and squash rules, and maps namespace errors to NFS statuses. The server keeps
 * no per-client state: everything a reply depends on is in the handle and the store.
 */

import { failpoint } from '../failpoints.js';
import { access3 } from '../fs/access.js';
import type { FileSystem } from '../fs/filesystem.js';
import type { Attr, CreateMode, DirChange, DirEntry, Identity, SetAttrs, Time } from '../fs/types.js';
import { MAX_FILE_SIZE, NAME_MAX } from '../fs/types.js';
import type { Logger } from '../log.js';
import type { CallContext } from '../rpc/context.js';
import { RpcAuthError } from '../rpc/errors.js';
import type { Export, Exports } from './exports.js';
import {
  ACCESS3_DELETE,
  ACCESS3_EXTEND,
  ACCESS3_MODIFY,
  type ACCESS3args,
  type ACCESS3res,
  type COMMIT3args,
  type COMMIT3res,
  type CREATE3args,
  type CREATE3res,
  EXCLUSIVE,
  type entry3,
  type entryplus3,
  FILE_SYNC,
  type FSINFO3args,
  type FSINFO3res,
  type FSSTAT3args,
  type FSSTAT3res,
  type fattr3,
  type GETATTR3args,
  type GETATTR3res,
  GUARDED,
  type LINK3args,
  type LINK3res,
  type LOOKUP3args,
  type LOOKUP3res,
  type MKDIR3args,
  type MKDIR3res,
  type MKNOD3args,
  type MKNOD3res,
  NF3BLK,
  NF3CHR,
  NF3DIR,
  NF3FIFO,
  NF3LNK,
  NF3REG,
  NF3SOCK,
  type NFS_V3_Handler,
  NFS_V3_program,
  NFS3_OK,
  NFS3ERR_ACCES,
  NFS3ERR_BAD_COOKIE,
  NFS3ERR_BADHANDLE,
  NFS3ERR_BADTYPE,
  NFS3ERR_EXIST,
  NFS3ERR_FBIG,
  NFS3ERR_INVAL,
  NFS3ERR_IO,
  NFS3ERR_ISDIR,
  NFS3ERR_MLINK,
  NFS3ERR_NAMETOOLONG,
  NFS3ERR_NOENT,
  NFS3ERR_NOSPC,
  NFS3ERR_NOT_SYNC,
  NFS3ERR_NOTDIR,
  NFS3ERR_NOTEMPTY,
  NFS3ERR_NOTSUPP,
  NFS3ERR_PERM,
  NFS3ERR_ROFS,
  NFS3ERR_SERVERFAULT,
  NFS3ERR_STALE,
  NFS3ERR_TOOSMALL,
  NFS3ERR_XDEV,
  type nfs_fh3,
  type nfsstat3,
  type nfstime3,
  type PATHCONF3args,
  type PATHCONF3res,
  type post_op_attr,
  type pre_op_attr,
  type READ3args,
  type READ3res,
  type READDIR3args,
  type READDIR3res,
  type READDIRPLUS3args,
  type READDIRPLUS3res,
  type READLINK3args,
  type READLINK3res,
  type REMOVE3args,
  type REMOVE3res,
  type RENAME3args,
  type RENAME3res,
  type RMDIR3args,
  type RMDIR3res,
  type SETATTR3args,
  type SETATTR3res,
  type SYMLINK3args,
  type SYMLINK3res,
  type sattr3,
  UNSTABLE,
  type WRITE3args,
  type WRITE3res,
  type wcc_data,
} from './gen/nfs3.bytes.js';
import { BadHandleError, decodeHandle, encodeHandle, type HandleKey } from './handle.js';

/** Failpoint (src/failpoints.ts): a broken build the nemesis harness must catch. */
const DROP_WRITES = failpoint('nfs.write.drop');

/** The largest READ and WRITE, advertised in FSINFO: one RPC record holds it with room to spare. */
export const NFS_MAX_IO = 1 << 20;
/** fattr3.fsid of everything this node serves: one file system, whatever the export. */
const FSID = 0x4341_4952n;
const FSF3_LINK = 0x1;
const FSF3_SYMLINK = 0x2;
const FSF3_HOMOGENEOUS = 0x8;
const FSF3_CANSETTIME = 0x10;
const ZERO_VERF = new Uint8Array(8);

/** A status to answer with, thrown from anywhere in a procedure. */
class NfsStatus extends Error {
  constructor(
    readonly status: Exclude<nfsstat3, typeof NFS3_OK>,
    message: string,
  ) {
    super(message);
  }
}

const FS_STATUS: Record<string, Exclude<nfsstat3, typeof NFS3_OK>> = {
  ENOENT: NFS3ERR_NOENT,
  EEXIST: NFS3ERR_EXIST,
  ENOTDIR: NFS3ERR_NOTDIR,
  EISDIR: NFS3ERR_ISDIR,
  ENOTEMPTY: NFS3ERR_NOTEMPTY,
  EACCES: NFS3ERR_ACCES,
  EPERM: NFS3ERR_PERM,
  EROFS: NFS3ERR_ROFS,
  ENAMETOOLONG: NFS3ERR_NAMETOOLONG,
  ESTALE: NFS3ERR_STALE,
  EINVAL: NFS3ERR_INVAL,
  EFBIG: NFS3ERR_FBIG,
  ENOSPC: NFS3ERR_NOSPC,
  EXDEV: NFS3ERR_XDEV,
  ENOTSUP: NFS3ERR_NOTSUPP,
  EMLINK: NFS3ERR_MLINK,
  ENOTSYNC: NFS3ERR_NOT_SYNC,
  EIO: NFS3ERR_IO,
  // Store errors, by their codes.
  STORE_FULL: NFS3ERR_NOSPC,
  STORE_CORRUPT: NFS3ERR_IO,
  // A commit the store could not make (LMDB or its journal failed for a reason other than space).
  STORE_IO: NFS3ERR_IO,
};

const TYPE: Record<Attr['type'], fattr3['type']> = {
  reg: NF3REG,
  dir: NF3DIR,
  lnk: NF3LNK,
  blk: NF3BLK,
  chr: NF3CHR,
  sock: NF3SOCK,
  fifo: NF3FIFO,
};

const nfsTime = (t: Time): nfstime3 => ({ seconds: t.s >>> 0, nseconds: t.ns });

export function fattr(a: Attr): fattr3 {
  return {
    type: TYPE[a.type],
    mode: a.mode,
    nlink: a.nlink,
    uid: a.uid,
    gid: a.gid,
    size: BigInt(a.size),
    used: BigInt(a.type === 'reg' ? Math.ceil(a.size / 4096) * 4096 : 4096),
    rdev: { specdata1: a.rdev?.[0] ?? 0, specdata2: a.rdev?.[1] ?? 0 },
    fsid: FSID,
    fileid: BigInt(a.ino),
    atime: nfsTime(a.atime),
    mtime: nfsTime(a.mtime),
    ctime: nfsTime(a.ctime),
  };
}

const postOp = (a: Attr | undefined): post_op_attr =>
  a ? { attributes_follow: true, attributes: fattr(a) } : { attributes_follow: false };
const preOp = (a: Attr | undefined): pre_op_attr =>
  a
    ? {
        attributes_follow: true,
        attributes: { size: BigInt(a.size), mtime: nfsTime(a.mtime), ctime: nfsTime(a.ctime) },
      }
    : { attributes_follow: false };
const wcc = (before?: Attr, after?: Attr): wcc_data => ({ before: preOp(before), after: postOp(after) });
const dirWcc = (c: DirChange): wcc_data => wcc(c.before, c.after);

/** Reply bytes of READDIR and READDIRPLUS besides the entries: status, post_op_attr, verifier, list end, eof. */
const LISTING_OVERHEAD = 4 + 4 + 84 + 8 + 4 + 4;

/** An entry's fileid, name and cookie as XDR encodes them. */
const entryBytes = (e: DirEntry) => 8 + 4 + ((e.name.length + 3) & ~3) + 8;

type Listing<E> =
  | {
      status: typeof NFS3_OK;
      resok: {
        dir_attributes: post_op_attr;
        cookieverf: Uint8Array;
        reply: { entries: E | null; eof: boolean };
      };
    }
  | { status: Exclude<nfsstat3, typeof NFS3_OK>; resfail: { dir_attributes: post_op_attr } };

/** A resolved handle: the export it was issued under, the inode, and the caller as that export sees them. */
interface Target {
  readonly exp: Export;
  readonly ino: number;
  readonly who: Identity;
}

export interface NfsServiceOptions {
  fs: FileSystem;
  exports: Exports;
  key: HandleKey;
  /** Inode of each export's root directory, by export id. */
  roots: ReadonlyMap<number, number>;
  /** NFS's write verifier: changes whenever unstable writes may have been lost. */
  writeVerifier: Uint8Array;
  logger: Logger;
}

function toSetAttrs(s: sattr3): SetAttrs {
  const out: SetAttrs = {};
  if (s.mode.set_it === true) out.mode = s.mode.mode;
  if (s.uid.set_it === true) out.uid = s.uid.uid;
  if (s.gid.set_it === true) out.gid = s.gid.gid;
  if (s.size.set_it === true) {
    if (s.size.size > BigInt(MAX_FILE_SIZE))
      throw new NfsStatus(NFS3ERR_FBIG, 'size beyond the largest file');
    out.size = Number(s.size.size);
  }
  if (s.atime.set_it === 2) out.atime = { s: s.atime.atime.seconds, ns: s.atime.atime.nseconds };
  else if (s.atime.set_it === 1) out.atime = 'now';
  if (s.mtime.set_it === 2) out.mtime = { s: s.mtime.mtime.seconds, ns: s.mtime.mtime.nseconds };
  else if (s.mtime.set_it === 1) out.mtime = 'now';
  for (const t of [out.atime, out.mtime]) {
    if (t !== undefined && t !== 'now' && t.ns >= 1e9)
      throw new NfsStatus(NFS3ERR_INVAL, 'nanoseconds out of range');
  }
  return out;
}

/**
 * Serves NFS version 3. Procedures that change something are written so that the failure reply
 * carries what the protocol asks for (wcc data of the directory) wherever it is known.
 */
export class NfsService implements NFS_V3_Handler {
  private readonly fs: FileSystem;
  private readonly exports: Exports;
  private readonly key: HandleKey;
  private readonly roots: ReadonlyMap<number, number>;
  private readonly verf: Uint8Array;
  private readonly log: Logger;
  /** WRITEs seen, for the nfs.write.drop failpoint. */
  private writesSeen = 0;

  constructor(o: NfsServiceOptions) {
    this.fs = o.fs;
    this.exports = o.exports;
    this.key = o.key;
    this.roots = o.roots;
    this.verf = o.writeVerifier;
    this.log = o.logger;
  }

  /** Procedures that are safe to execute twice; the others go through the duplicate-request cache. */
  static readonly idempotent = [
    'NFSPROC3_NULL',
    'NFSPROC3_GETATTR',
    'NFSPROC3_LOOKUP',
    'NFSPROC3_ACCESS',
    'NFSPROC3_READLINK',
    'NFSPROC3_READ',
    'NFSPROC3_WRITE',
    'NFSPROC3_READDIR',
    'NFSPROC3_READDIRPLUS',
    'NFSPROC3_FSSTAT',
    'NFSPROC3_FSINFO',
    'NFSPROC3_PATHCONF',
    'NFSPROC3_COMMIT',
  ];

  /**
   * Procedures that keep nothing of their arguments once they have answered, so the RPC
   * transport may reuse a record's memory (RegisterOptions.transientArgs): WRITE's data is in a
   * block file, or copied inline, before the store's writeFile settles.
   */
  static readonly transientArgs = ['NFSPROC3_WRITE'];

  static readonly program = NFS_V3_program;

  handle(exportId: number, a: Attr): nfs_fh3 {
    return { data: encodeHandle(this.key, { exportId, ino: a.ino, gen: a.gen }) };
  }

  /** The caller's identity under an export's squash rules; flavors other than AUTH_SYS and AUTH_NONE are refused. */
  identity(exp: Export, ctx: CallContext): Identity {
    const c = ctx.credential;
    if (c.flavor === 1 && 'uid' in c) return exp.identity(c);
    if (c.flavor === 0) return exp.anonymous();
    throw new RpcAuthError(2 /* AUTH_REJECTEDCRED */);
  }

  private target(fh: nfs_fh3, ctx: CallContext): Target {
    let fields: { exportId: number; ino: number; gen: number };
    try {
      fields = decodeHandle(this.key, fh.data);
    } catch (e) {
      if (e instanceof BadHandleError) throw new NfsStatus(NFS3ERR_BADHANDLE, e.message);
      throw e;
    }
    const exp = this.exports.byId(fields.exportId);
    if (!exp) throw new NfsStatus(NFS3ERR_STALE, `export ${fields.exportId} is no longer served`);
    if (!exp.allows(ctx.remoteAddress)) {
      throw new NfsStatus(NFS3ERR_ACCES, `client ${ctx.remoteAddress} may not use export ${exp.path}`);
    }
    if (!this.fs.exists(fields.ino, fields.gen))
      throw new NfsStatus(NFS3ERR_STALE, `inode ${fields.ino} is gone`);
    return { exp, ino: fields.ino, who: this.identity(exp, ctx) };
  }

  private writable(t: Target): void {
    if (t.exp.readOnly) throw new NfsStatus(NFS3ERR_ROFS, `export ${t.exp.path} is read-only`);
  }

  private attrOrUndefined(ino: number): Attr | undefined {
    try {
      return this.fs.getattr(ino);
    } catch {
      return undefined;
    }
  }

  /**
   * Runs a procedure, turning thrown statuses and namespace errors into the failure arm built
   * by `fail`. Anything unexpected is logged and answered with SERVERFAULT.
   */
  private async run<R>(
    proc: string,
    body: () => R | Promise<R>,
    fail: (status: Exclude<nfsstat3, typeof NFS3_OK>) => R,
  ): Promise<R> {
    try {
      return await body();
    } catch (e) {
      if (e instanceof NfsStatus) return fail(e.status);
      if (e instanceof RpcAuthError) throw e;
      const code = (e as { code?: unknown }).code;
      const status = typeof code === 'string' ? FS_STATUS[code] : undefined;
      if (status !== undefined) return fail(status);
      this.log.error({ err: e, proc }, 'NFS procedure failed unexpectedly');
      return fail(NFS3ERR_SERVERFAULT);
    }
  }

  /** A procedure on one object, whose failure reply carries that object's attributes when it has them. */
  private onObject<R>(
    proc: string,
    fh: nfs_fh3,
    ctx: CallContext,
    body: (t: Target) => R | Promise<R>,
    fail: (status: Exclude<nfsstat3, typeof NFS3_OK>, attrs: Attr | undefined) => R,
  ): Promise<R> {
    let ino = 0;
    return this.run<R>(
      proc,
      () => {
        const t = this.target(fh, ctx);
        ino = t.ino;
        return body(t);
      },
      (status) => fail(status, ino ? this.attrOrUndefined(ino) : undefined),
    );
  }

  NFSPROC3_NULL(): void {}

  NFSPROC3_GETATTR(args: GETATTR3args, ctx: CallContext): Promise<GETATTR3res> {
    return this.run<GETATTR3res>(
      'GETATTR',
      () => {
        const t = this.target(args.object, ctx);
        return { status: NFS3_OK, resok: { obj_attributes: fattr(this.fs.getattr(t.ino)) } };
      },
      (status) => ({ status }),
    );
  }

  NFSPROC3_SETATTR(args: SETATTR3args, ctx: CallContext): Promise<SETATTR3res> {
    return this.onObject<SETATTR3res>(
      'SETATTR',
      args.object,
      ctx,
      async (t) => {
        this.writable(t);
        const guard = args.guard.check
          ? { s: args.guard.obj_ctime.seconds, ns: args.guard.obj_ctime.nseconds }
          : undefined;
        const r = await this.fs.setattr(t.who, t.ino, toSetAttrs(args.new_attributes), guard);
        return { status: NFS3_OK, resok: { obj_wcc: wcc(r.before, r.after) } };
      },
      (status, a) => ({ status, resfail: { obj_wcc: wcc(undefined, a) } }),
    );
  }

  NFSPROC3_LOOKUP(args: LOOKUP3args, ctx: CallContext): Promise<LOOKUP3res> {
    let dir = 0;
    return this.run<LOOKUP3res>(
      'LOOKUP',
      () => {
        const t = this.target(args.what.dir, ctx);
        dir = t.ino;
        const name = args.what.name;
        const root = this.roots.get(t.exp.id);
        // '..' at an export's root stays there: no name leads out of an export.
        const found =
          t.ino === root && name.length === 2 && name[0] === 0x2e && name[1] === 0x2e
            ? this.fs.lookup(t.who, t.ino, Uint8Array.of(0x2e))
            : this.fs.lookup(t.who, t.ino, name);
        return {
          status: NFS3_OK,
          resok: {
            object: this.handle(t.exp.id, found),
            obj_attributes: postOp(found),
            dir_attributes: postOp(this.attrOrUndefined(t.ino)),
          },
        };
      },
      (status) => ({
        status,
        resfail: { dir_attributes: postOp(dir ? this.attrOrUndefined(dir) : undefined) },
      }),
    );
  }

  NFSPROC3_ACCESS(args: ACCESS3args, ctx: CallContext): Promise<ACCESS3res> {
    return this.onObject<ACCESS3res>(
      'ACCESS',
      args.object,
      ctx,
      (t) => {
        const a = this.fs.getattr(t.ino);
        let granted = access3(t.who, a, args.access);
        // A read-only export grants nothing that would change it.
        if (t.exp.readOnly) granted &= ~(ACCESS3_MODIFY | ACCESS3_EXTEND | ACCESS3_DELETE);
        return { status: NFS3_OK, resok: { obj_attributes: postOp(a), access: granted } };
      },
      (status, a) => ({ status, resfail: { obj_attributes: postOp(a) } }),
    );
  }

  NFSPROC3_READLINK(args: READLINK3args, ctx: CallContext): Promise<READLINK3res> {
    return this.onObject<READLINK3res>(
      'READLINK',
      args.symlink,
      ctx,
      (t) => {
        return {
          status: NFS3_OK,
          resok: { symlink_attributes: postOp(this.fs.getattr(t.ino)), data: this.fs.readlink(t.ino) },
        };
      },
      (status, a) => ({ status, resfail: { symlink_attributes: postOp(a) } }),
    );
  }

  NFSPROC3_READ(args: READ3args, ctx: CallContext): Promise<READ3res> {
    return this.onObject<READ3res>(
      'READ',
      args.file,
      ctx,
      async (t) => {
        const count = Math.min(args.count, NFS_MAX_IO);
        if (args.offset > BigInt(MAX_FILE_SIZE)) {
          const a = this.fs.getattr(t.ino);
          if (a.type !== 'reg')
            throw new NfsStatus(a.type === 'dir' ? NFS3ERR_ISDIR : NFS3ERR_INVAL, 'not a file');
          return {
            status: NFS3_OK,
            resok: { file_attributes: postOp(a), count: 0, eof: true, data: new Uint8Array(0) },
          };
        }
        const r = await this.fs.read(t.who, t.ino, Number(args.offset), count, ctx.lend);
        return {
          status: NFS3_OK,
          resok: { file_attributes: postOp(r.attr), count: r.data.length, eof: r.eof, data: r.data },
        };
      },
      (status, a) => ({ status, resfail: { file_attributes: postOp(a) } }),
    );
  }

  NFSPROC3_WRITE(args: WRITE3args, ctx: CallContext): Promise<WRITE3res> {
    return this.onObject<WRITE3res>(
      'WRITE',
      args.file,
      ctx,
      async (t) => {
        this.writable(t);
        if (args.count > args.data.length) throw new NfsStatus(NFS3ERR_INVAL, 'count exceeds the data sent');
        if (args.data.length > NFS_MAX_IO) throw new NfsStatus(NFS3ERR_INVAL, 'write larger than wtmax');
        const data = args.count < args.data.length ? args.data.subarray(0, args.count) : args.data;
        if (args.offset + BigInt(data.length) > BigInt(MAX_FILE_SIZE)) {
          throw new NfsStatus(NFS3ERR_FBIG, 'write beyond the largest file');
        }
        const stable = args.stable !== UNSTABLE;
        const r =
          DROP_WRITES && ++this.writesSeen % 5 === 0
            ? { before: this.fs.getattr(t.ino), after: this.fs.getattr(t.ino) }
            : await this.fs.write(t.who, t.ino, Number(args.offset), data, stable);
        return {
          status: NFS3_OK,
          resok: {
            file_wcc: wcc(r.before, r.after),
            count: data.length,
            committed: stable ? FILE_SYNC : UNSTABLE,
            verf: this.verf,
          },
        };
      },
      (status, a) => ({ status, resfail: { file_wcc: wcc(undefined, a) } }),
    );
  }

  /** Shared by CREATE, MKDIR, SYMLINK and MKNOD: the same reply shape and failure wcc. */
  private creating(
    proc: string,
    where: { dir: nfs_fh3; name: Uint8Array },
    ctx: CallContext,
    make: (t: Target) => Promise<{ attr: Attr; dir: DirChange }>,
  ): Promise<CREATE3res> {
    let dir = 0;
    return this.run<CREATE3res>(
      proc,
      async () => {
        const t = this.target(where.dir, ctx);
        dir = t.ino;
        this.writable(t);
        if (where.name.length > NAME_MAX) throw new NfsStatus(NFS3ERR_NAMETOOLONG, 'name too long');
        const r = await make(t);
        return {
          status: NFS3_OK,
          resok: {
            obj: { handle_follows: true, handle: this.handle(t.exp.id, r.attr) },
            obj_attributes: postOp(r.attr),
            dir_wcc: dirWcc(r.dir),
          },
        };
      },
      (status) => ({
        status,
        resfail: { dir_wcc: wcc(undefined, dir ? this.attrOrUndefined(dir) : undefined) },
      }),
    );
  }

  NFSPROC3_CREATE(args: CREATE3args, ctx: CallContext): Promise<CREATE3res> {
    return this.creating('CREATE', args.where, ctx, (t) => {
      const how: CreateMode =
        args.how.mode === EXCLUSIVE
          ? { kind: 'exclusive', verf: args.how.verf }
          : {
              kind: args.how.mode === GUARDED ? 'guarded' : 'unchecked',
              attrs: toSetAttrs(args.how.obj_attributes),
            };
      return this.fs.create(t.who, t.ino, args.where.name, how);
    });
  }

  NFSPROC3_MKDIR(args: MKDIR3args, ctx: CallContext): Promise<MKDIR3res> {
    return this.creating('MKDIR', args.where, ctx, (t) =>
      this.fs.mkdir(t.who, t.ino, args.where.name, toSetAttrs(args.attributes)),
    );
  }

  NFSPROC3_SYMLINK(args: SYMLINK3args, ctx: CallContext): Promise<SYMLINK3res> {
    return this.creating('SYMLINK', args.where, ctx, (t) =>
      this.fs.symlink(
        t.who,
        t.ino,
        args.where.name,
        args.symlink.symlink_data,
        toSetAttrs(args.symlink.symlink_attributes),
      ),
    );
  }

  NFSPROC3_MKNOD(args: MKNOD3args, ctx: CallContext): Promise<MKNOD3res> {
    return this.creating('MKNOD', args.where, ctx, (t) => {
      const w = args.what;
      if (w.type === NF3CHR || w.type === NF3BLK) {
        return this.fs.mknod(
          t.who,
          t.ino,
          args.where.name,
          w.type === NF3CHR ? 'chr' : 'blk',
          toSetAttrs(w.device.dev_attributes),
          [w.device.spec.specdata1, w.device.spec.specdata2],
        );
      }
      if (w.type === NF3SOCK || w.type === NF3FIFO) {
        return this.fs.mknod(
          t.who,
          t.ino,
          args.where.name,
          w.type === NF3SOCK ? 'sock' : 'fifo',
          toSetAttrs(w.pipe_attributes),
        );
      }
      throw new NfsStatus(NFS3ERR_BADTYPE, 'MKNOD makes only devices, sockets and FIFOs');
    });
  }

  NFSPROC3_REMOVE(args: REMOVE3args, ctx: CallContext): Promise<REMOVE3res> {
    return this.removing('REMOVE', args.object, ctx, (t) => this.fs.remove(t.who, t.ino, args.object.name));
  }

  NFSPROC3_RMDIR(args: RMDIR3args, ctx: CallContext): Promise<RMDIR3res> {
    return this.removing('RMDIR', args.object, ctx, (t) => this.fs.rmdir(t.who, t.ino, args.object.name));
  }

  private removing(
    proc: string,
    where: { dir: nfs_fh3; name: Uint8Array },
    ctx: CallContext,
    remove: (t: Target) => Promise<DirChange>,
  ): Promise<REMOVE3res> {
    let dir = 0;
    return this.run<REMOVE3res>(
      proc,
      async () => {
        const t = this.target(where.dir, ctx);
        dir = t.ino;
        this.writable(t);
        if (where.name.length > NAME_MAX) throw new NfsStatus(NFS3ERR_NAMETOOLONG, 'name too long');
        return { status: NFS3_OK, resok: { dir_wcc: dirWcc(await remove(t)) } };
      },
      (status) => ({
        status,
        resfail: { dir_wcc: wcc(undefined, dir ? this.attrOrUndefined(dir) : undefined) },
      }),
    );
  }

  NFSPROC3_RENAME(args: RENAME3args, ctx: CallContext): Promise<RENAME3res> {
    let from = 0;
    let to = 0;
    return this.run<RENAME3res>(
      'RENAME',
      async () => {
        const f = this.target(args.from.dir, ctx);
        from = f.ino;
        const t = this.target(args.to.dir, ctx);
        to = t.ino;
        if (f.exp.id !== t.exp.id) throw new NfsStatus(NFS3ERR_XDEV, 'rename across exports');
        this.writable(f);
        for (const n of [args.from.name, args.to.name]) {
          if (n.length > NAME_MAX) throw new NfsStatus(NFS3ERR_NAMETOOLONG, 'name too long');
        }
        const r = await this.fs.rename(f.who, f.ino, args.from.name, t.ino, args.to.name);
        return { status: NFS3_OK, resok: { fromdir_wcc: dirWcc(r.from), todir_wcc: dirWcc(r.to) } };
      },
      (status) => ({
        status,
        resfail: {
          fromdir_wcc: wcc(undefined, from ? this.attrOrUndefined(from) : undefined),
          todir_wcc: wcc(undefined, to ? this.attrOrUndefined(to) : undefined),
        },
      }),
    );
  }

  NFSPROC3_LINK(args: LINK3args, ctx: CallContext): Promise<LINK3res> {
    let file = 0;
    let dir = 0;
    return this.run<LINK3res>(
      'LINK',
      async () => {
        const f = this.target(args.file, ctx);
        file = f.ino;
        const d = this.target(args.link.dir, ctx);
        dir = d.ino;
        if (f.exp.id !== d.exp.id) throw new NfsStatus(NFS3ERR_XDEV, 'link across exports');
        this.writable(d);
        if (args.link.name.length > NAME_MAX) throw new NfsStatus(NFS3ERR_NAMETOOLONG, 'name too long');
        const r = await this.fs.link(d.who, f.ino, d.ino, args.link.name);
        return { status: NFS3_OK, resok: { file_attributes: postOp(r.attr), linkdir_wcc: dirWcc(r.dir) } };
      },
      (status) => ({
        status,
        resfail: {
          file_attributes: postOp(file ? this.attrOrUndefined(file) : undefined),
          linkdir_wcc: wcc(undefined, dir ? this.attrOrUndefined(dir) : undefined),
        },
      }),
    );
  }

  /** Checks a READDIR cookie and verifier; cookies stay valid for the life of the directory. */
  private startCookie(dir: number, cookie: bigint, verf: Uint8Array): number {
    if (cookie === 0n) return 0;
    if (cookie > BigInt(Number.MAX_SAFE_INTEGER) || !this.fs.validCookie(dir, Number(cookie))) {
      throw new NfsStatus(NFS3ERR_BAD_COOKIE, 'cookie was never issued');
    }
    if (Buffer.compare(verf, ZERO_VERF) !== 0)
      throw new NfsStatus(NFS3ERR_BAD_COOKIE, 'cookie verifier mismatch');
    return Number(cookie);
  }

  /**
   * READDIR and READDIRPLUS: entries after the cookie for as long as `take` finds room for them
   * (it returns undefined for the first entry that does not fit).
   */
  private listing<E extends { nextentry: E | null }>(
    proc: string,
    args: { dir: nfs_fh3; cookie: bigint; cookieverf: Uint8Array },
    ctx: CallContext,
    take: (t: Target, e: DirEntry, ino: number, first: boolean) => E | undefined,
  ): Promise<Listing<E>> {
    let dir = 0;
    return this.run<Listing<E>>(
      proc,
      () => {
        const t = this.target(args.dir, ctx);
        dir = t.ino;
        const start = this.startCookie(t.ino, args.cookie, args.cookieverf);
        const root = this.roots.get(t.exp.id);
        const list: E[] = [];
        let eof = true;
        for (const e of this.fs.list(t.who, t.ino, start)) {
          // '..' of an export's root is the root itself: no listing leads out of an export.
          const entry = take(t, e, t.ino === root && e.cookie === 2 ? t.ino : e.ino, list.length === 0);
          if (!entry) {
            eof = false;
            break;
          }
          list.push(entry);
        }
        if (list.length === 0 && !eof) throw new NfsStatus(NFS3ERR_TOOSMALL, 'reply too small for one entry');
        for (let i = list.length - 2; i >= 0; i--) list[i].nextentry = list[i + 1];
        return {
          status: NFS3_OK,
          resok: {
            dir_attributes: postOp(this.fs.getattr(t.ino)),
            cookieverf: ZERO_VERF,
            reply: { entries: list[0] ?? null, eof },
          },
        };
      },
      (status) => ({
        status,
        resfail: { dir_attributes: postOp(dir ? this.attrOrUndefined(dir) : undefined) },
      }),
    );
  }

  NFSPROC3_READDIR(args: READDIR3args, ctx: CallContext): Promise<READDIR3res> {
    let budget = args.count - LISTING_OVERHEAD;
    return this.listing<entry3>('READDIR', args, ctx, (_t, e, ino) => {
      const size = 4 + entryBytes(e);
      if (size > budget) return undefined;
      budget -= size;
      return { fileid: BigInt(ino), name: e.name, cookie: BigInt(e.cookie), nextentry: null };
    });
  }

  NFSPROC3_READDIRPLUS(args: READDIRPLUS3args, ctx: CallContext): Promise<READDIRPLUS3res> {
    let budget = args.maxcount - LISTING_OVERHEAD;
    let dirBudget = args.dircount;
    return this.listing<entryplus3>('READDIRPLUS', args, ctx, (t, e, ino, first) => {
      const dirSize = entryBytes(e);
      // Beyond the entry: its post_op_attr and post_op_fh3 (a handle of at most 32 bytes).
      const size = 4 + dirSize + 4 + 84 + 4 + 4 + 32 + 4;
      if (size > budget || (dirSize > dirBudget && !first)) return undefined;
      budget -= size;
      dirBudget -= dirSize;
      const a = this.attrOrUndefined(ino);
      return {
        fileid: BigInt(ino),
        name: e.name,
        cookie: BigInt(e.cookie),
        name_attributes: postOp(a),
        name_handle: a
          ? { handle_follows: true, handle: this.handle(t.exp.id, a) }
          : { handle_follows: false },
        nextentry: null,
      };
    });
  }

  NFSPROC3_FSSTAT(args: FSSTAT3args, ctx: CallContext): Promise<FSSTAT3res> {
    return this.onObject<FSSTAT3res>(
      'FSSTAT',
      args.fsroot,
      ctx,
      async (t) => {
        const s = await this.fs.statfs();
        return {
          status: NFS3_OK,
          resok: {
            obj_attributes: postOp(this.fs.getattr(t.ino)),
            tbytes: BigInt(s.totalBytes),
            fbytes: BigInt(s.freeBytes),
            abytes: BigInt(s.availableBytes),
            tfiles: BigInt(s.totalFiles),
            ffiles: BigInt(s.freeFiles),
            afiles: BigInt(s.freeFiles),
            invarsec: 0,
          },
        };
      },
      (status, a) => ({ status, resfail: { obj_attributes: postOp(a) } }),
    );
  }

  NFSPROC3_FSINFO(args: FSINFO3args, ctx: CallContext): Promise<FSINFO3res> {
    return this.onObject<FSINFO3res>(
      'FSINFO',
      args.fsroot,
      ctx,
      (t) => {
        return {
          status: NFS3_OK,
          resok: {
            obj_attributes: postOp(this.fs.getattr(t.ino)),
            rtmax: NFS_MAX_IO,
            rtpref: NFS_MAX_IO,
            rtmult: 4096,
            wtmax: NFS_MAX_IO,
            wtpref: NFS_MAX_IO,
            wtmult: 4096,
            dtpref: 64 * 1024,
            maxfilesize: BigInt(MAX_FILE_SIZE),
            time_delta: { seconds: 0, nseconds: 1 },
            properties: FSF3_LINK | FSF3_SYMLINK | FSF3_HOMOGENEOUS | FSF3_CANSETTIME,
          },
        };
      },
      (status, a) => ({ status, resfail: { obj_attributes: postOp(a) } }),
    );
  }

  NFSPROC3_PATHCONF(args: PATHCONF3args, ctx: CallContext): Promise<PATHCONF3res> {
    return this.onObject<PATHCONF3res>(
      'PATHCONF',
      args.object,
      ctx,
      (t) => {
        return {
          status: NFS3_OK,
          resok: {
            obj_attributes: postOp(this.fs.getattr(t.ino)),
            linkmax: 0xffff_ffff,
            name_max: NAME_MAX,
            no_trunc: true,
            chown_restricted: true,
            case_insensitive: false,
            case_preserving: true,
          },
        };
      },
      (status, a) => ({ status, resfail: { obj_attributes: postOp(a) } }),
    );
  }

  NFSPROC3_COMMIT(args: COMMIT3args, ctx: CallContext): Promise<COMMIT3res> {
    return this.onObject<COMMIT3res>(
      'COMMIT',
      args.file,
      ctx,
      async (t) => {
        const before = this.fs.getattr(t.ino);
        if (before.type === 'dir') throw new NfsStatus(NFS3ERR_ISDIR, 'commit of a directory');
        if (before.type !== 'reg') throw new NfsStatus(NFS3ERR_INVAL, 'commit of a file that is not regular');
        const after = await this.fs.commit(t.ino);
        return { status: NFS3_OK, resok: { file_wcc: wcc(before, after), verf: this.verf } };
      },
      (status, a) => ({ status, resfail: { file_wcc: wcc(undefined, a) } }),
    );
  }
}
