/**
 * A thin NFS version 3 client over the generated stubs: one TCP connection to NFS and one to
 * MOUNT, ports found through rpcbind unless given, AUTH_SYS credentials. Each method makes one
 * call (the `*All` and path helpers a loop of them), returns the successful arm of the result and
 * throws NfsError for any other status. Nothing is cached: what a test asserts on is what the
 * server said. `raw` and `mountRaw` are the generated stubs, for checking exact replies.
 */
import type { CallOptions, ClientCredential } from '../rpc/index.js';
import { TcpRpcClient } from '../rpc/index.js';
import { RpcbindClient } from '../rpc/rpcbind/index.js';
import { MNT3_OK, MOUNT_PROGRAM, MOUNT_V3, MOUNT_V3_Client } from './gen/mount3.bytes.js';
import {
  type ACCESS3res,
  type COMMIT3resok,
  type CREATE3res,
  type createhow3,
  DONT_CHANGE,
  EXCLUSIVE,
  FILE_SYNC,
  type FSINFO3resok,
  type FSSTAT3resok,
  type fattr3,
  type ftype3,
  GUARDED,
  type LINK3resok,
  type MKDIR3res,
  type MKNOD3res,
  type mknoddata3,
  NF3BLK,
  NF3CHR,
  NF3FIFO,
  NF3SOCK,
  NFS_PROGRAM,
  NFS_V3,
  NFS_V3_Client,
  NFS3_OK,
  type nfs_fh3,
  type nfstime3,
  type PATHCONF3resok,
  type post_op_attr,
  type post_op_fh3,
  type RENAME3resok,
  SET_TO_CLIENT_TIME,
  SET_TO_SERVER_TIME,
  type SYMLINK3res,
  type sattr3,
  type specdata3,
  type stable_how,
  UNCHECKED,
  UNSTABLE,
  type WRITE3resok,
  type wcc_data,
} from './gen/nfs3.bytes.js';
import { MountError, NfsClientError, NfsError } from './status.js';

/** AUTH_SYS identity (what a Unix client sends), or 'none' for AUTH_NONE. */
export type NfsCredential =
  | { uid: number; gid: number; gids?: readonly number[]; machinename?: string }
  | 'none';

export interface NfsConnectOptions {
  host: string;
  /** NFS port; looked up with rpcbind (GETPORT, TCP) when absent. */
  nfsPort?: number;
  /** MOUNT port; looked up with rpcbind when absent. */
  mountPort?: number;
  /** Port of rpcbind itself. Default 111. */
  rpcbindPort?: number;
  /** Default: AUTH_SYS with this process's uid and gid. */
  credential?: NfsCredential;
  /** Per-call deadline. Default 30 s. */
  timeoutMs?: number;
  /**
   * Send calls in flight again after a reconnection (default true). A history recorder turns it
   * off: a WRITE resent after the server restarted would take effect twice.
   */
  resendOnReconnect?: boolean;
}

/** Names and paths are bytes on the wire; strings are sent as UTF-8. */
export type NameLike = string | Uint8Array;
export type OffsetLike = number | bigint;

/** Attributes to set, each optional. Times: a value, or 'server' for the server's clock. */
export interface SetAttributes {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: OffsetLike;
  atime?: nfstime3 | 'server';
  mtime?: nfstime3 | 'server';
}

/** The object a creating procedure (or LOOKUP) answered with. */
export interface NewObject {
  fh: nfs_fh3;
  /** Absent when the server did not send them (post_op_attr is optional). */
  attributes?: fattr3;
  dirWcc: wcc_data;
}

export interface LookupResult {
  fh: nfs_fh3;
  attributes?: fattr3;
  dirAttributes?: fattr3;
}

export interface ReadResult {
  data: Uint8Array;
  eof: boolean;
  attributes?: fattr3;
}

export interface DirEntry {
  fileid: bigint;
  name: Uint8Array;
  cookie: bigint;
}

export interface DirEntryPlus extends DirEntry {
  attributes?: fattr3;
  fh?: nfs_fh3;
}

export interface DirPage<E> {
  entries: E[];
  eof: boolean;
  cookieverf: Uint8Array;
  dirAttributes?: fattr3;
}

export type CreateHow =
  | { mode?: 'UNCHECKED' | 'GUARDED'; attributes?: SetAttributes }
  | { mode: 'EXCLUSIVE'; verifier: Uint8Array };

export interface ExportEntry {
  dir: string;
  groups: string[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function toName(name: NameLike): Uint8Array {
  return typeof name === 'string' ? encoder.encode(name) : name;
}

/** Decodes a name or path the server sent, for display and comparisons in tests. */
export function nameText(name: Uint8Array): string {
  return decoder.decode(name);
}

function big(v: OffsetLike): bigint {
  return typeof v === 'bigint' ? v : BigInt(v);
}

function attrs(p: post_op_attr): fattr3 | undefined {
  return p.attributes_follow ? p.attributes : undefined;
}

function setAtime(t: nfstime3 | 'server' | undefined): sattr3['atime'] {
  if (t === undefined) return { set_it: DONT_CHANGE };
  if (t === 'server') return { set_it: SET_TO_SERVER_TIME };
  return { set_it: SET_TO_CLIENT_TIME, atime: t };
}

function setMtime(t: nfstime3 | 'server' | undefined): sattr3['mtime'] {
  if (t === undefined) return { set_it: DONT_CHANGE };
  if (t === 'server') return { set_it: SET_TO_SERVER_TIME };
  return { set_it: SET_TO_CLIENT_TIME, mtime: t };
}

/** Builds the wire sattr3 from a SetAttributes: every field not given is left unchanged. */
export function toSattr3(a: SetAttributes = {}): sattr3 {
  return {
    mode: a.mode === undefined ? { set_it: false } : { set_it: true, mode: a.mode },
    uid: a.uid === undefined ? { set_it: false } : { set_it: true, uid: a.uid },
    gid: a.gid === undefined ? { set_it: false } : { set_it: true, gid: a.gid },
    size: a.size === undefined ? { set_it: false } : { set_it: true, size: big(a.size) },
    atime: setAtime(a.atime),
    mtime: setMtime(a.mtime),
  };
}

function toCredential(c: NfsCredential | undefined): ClientCredential {
  if (c === 'none') return { flavor: 0 };
  const id = c ?? { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
  return { flavor: 1, uid: id.uid, gid: id.gid, gids: id.gids, machinename: id.machinename };
}

/** Returns the success arm or throws NfsError carrying the whole reply. */
function ok<R extends { status: number }>(procedure: string, res: R): Extract<R, { status: typeof NFS3_OK }> {
  if (res.status !== NFS3_OK) throw new NfsError(procedure, res.status, res);
  return res as Extract<R, { status: typeof NFS3_OK }>;
}

const ZERO_VERF = new Uint8Array(8);

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class NfsClient {
  /** The generated NFS version 3 stub, for exact replies (wcc data, statuses). */
  readonly raw: NFS_V3_Client;
  /** The generated MOUNT version 3 stub. */
  readonly mountRaw: MOUNT_V3_Client;
  readonly host: string;
  readonly nfsPort: number;
  readonly mountPort: number;
  private readonly nfsRpc: TcpRpcClient;
  private readonly mountRpc: TcpRpcClient;

  private constructor(host: string, nfsPort: number, mountPort: number, opts: NfsConnectOptions) {
    this.host = host;
    this.nfsPort = nfsPort;
    this.mountPort = mountPort;
    const credential = toCredential(opts.credential);
    const timeoutMs = opts.timeoutMs ?? 30_000;
    const resendOnReconnect = opts.resendOnReconnect;
    this.nfsRpc = new TcpRpcClient({ host, port: nfsPort, credential, timeoutMs, resendOnReconnect });
    this.mountRpc = new TcpRpcClient({ host, port: mountPort, credential, timeoutMs, resendOnReconnect });
    this.raw = new NFS_V3_Client(this.nfsRpc);
    this.mountRaw = new MOUNT_V3_Client(this.mountRpc);
  }

  /** Resolves missing ports through rpcbind and connects to NFS (MOUNT connects on first use). */
  static async connect(opts: NfsConnectOptions): Promise<NfsClient> {
    let { nfsPort, mountPort } = opts;
    if (nfsPort === undefined || mountPort === undefined) {
      const rpcbind = new RpcbindClient({ host: opts.host, port: opts.rpcbindPort ?? 111 });
      try {
        nfsPort ??= await rpcbind.getport(NFS_PROGRAM, NFS_V3, 'tcp');
        mountPort ??= await rpcbind.getport(MOUNT_PROGRAM, MOUNT_V3, 'tcp');
      } finally {
        await rpcbind.close();
      }
      if (nfsPort === 0)
        throw new NfsClientError('NFS_NOT_REGISTERED', `NFS v3/tcp not registered at ${opts.host}`);
      if (mountPort === 0)
        throw new NfsClientError('NFS_NOT_REGISTERED', `MOUNT v3/tcp not registered at ${opts.host}`);
    }
    const client = new NfsClient(opts.host, nfsPort, mountPort, opts);
    try {
      await client.nfsRpc.connect();
    } catch (e) {
      await client.close();
      throw e;
    }
    return client;
  }

  async close(): Promise<void> {
    await Promise.all([this.nfsRpc.close(), this.mountRpc.close()]);
  }

  // ------------------------------------------------------------------------------- MOUNT ---

  /** MNT: the root handle of an export and the auth flavours it accepts. */
  async mountWithFlavors(path: NameLike, o?: CallOptions): Promise<{ fh: nfs_fh3; authFlavors: number[] }> {
    const res = await this.mountRaw.MOUNTPROC3_MNT(toName(path), o);
    if (res.fhs_status !== MNT3_OK)
      throw new MountError(typeof path === 'string' ? path : nameText(path), res.fhs_status);
    return { fh: { data: res.mountinfo.fhandle }, authFlavors: res.mountinfo.auth_flavors };
  }

  /** MNT: the root handle of an export. */
  async mount(path: NameLike, o?: CallOptions): Promise<nfs_fh3> {
    return (await this.mountWithFlavors(path, o)).fh;
  }

  umount(path: NameLike, o?: CallOptions): Promise<void> {
    return this.mountRaw.MOUNTPROC3_UMNT(toName(path), o);
  }

  async exports(o?: CallOptions): Promise<ExportEntry[]> {
    const out: ExportEntry[] = [];
    for (let e = await this.mountRaw.MOUNTPROC3_EXPORT(o); e !== null; e = e.ex_next) {
      const groups: string[] = [];
      for (let g = e.ex_groups; g !== null; g = g.gr_next) groups.push(nameText(g.gr_name));
      out.push({ dir: nameText(e.ex_dir), groups });
    }
    return out;
  }

  // --------------------------------------------------------------------------------- NFS ---

  null(o?: CallOptions): Promise<void> {
    return this.raw.NFSPROC3_NULL(o);
  }

  async getattr(fh: nfs_fh3, o?: CallOptions): Promise<fattr3> {
    return ok('GETATTR', await this.raw.NFSPROC3_GETATTR({ object: fh }, o)).resok.obj_attributes;
  }

  /** SETATTR; with `guardCtime` the server applies it only if the ctime still matches (else NOT_SYNC). */
  async setattr(fh: nfs_fh3, a: SetAttributes, guardCtime?: nfstime3, o?: CallOptions): Promise<wcc_data> {
    const res = await this.raw.NFSPROC3_SETATTR(
      {
        object: fh,
        new_attributes: toSattr3(a),
        guard: guardCtime ? { check: true, obj_ctime: guardCtime } : { check: false },
      },
      o,
    );
    return ok('SETATTR', res).resok.obj_wcc;
  }

  async lookup(dir: nfs_fh3, name: NameLike, o?: CallOptions): Promise<LookupResult> {
    const r = ok('LOOKUP', await this.raw.NFSPROC3_LOOKUP({ what: { dir, name: toName(name) } }, o)).resok;
    return { fh: r.object, attributes: attrs(r.obj_attributes), dirAttributes: attrs(r.dir_attributes) };
  }

  /** LOOKUP one component at a time ('a/b/c'; empty components are skipped). */
  async lookupPath(root: nfs_fh3, path: string, o?: CallOptions): Promise<LookupResult> {
    let cur: LookupResult = { fh: root };
    for (const part of path.split('/')) {
      if (part === '') continue;
      cur = await this.lookup(cur.fh, part, o);
    }
    if (cur.attributes === undefined && cur.fh === root)
      cur = { fh: root, attributes: await this.getattr(root, o) };
    return cur;
  }

  /** ACCESS: which of the asked ACCESS3_* bits the server grants. */
  async access(fh: nfs_fh3, mask: number, o?: CallOptions): Promise<number> {
    const res: ACCESS3res = await this.raw.NFSPROC3_ACCESS({ object: fh, access: mask }, o);
    return ok('ACCESS', res).resok.access;
  }

  async readlink(fh: nfs_fh3, o?: CallOptions): Promise<Uint8Array> {
    return ok('READLINK', await this.raw.NFSPROC3_READLINK({ symlink: fh }, o)).resok.data;
  }

  async read(fh: nfs_fh3, offset: OffsetLike, count: number, o?: CallOptions): Promise<ReadResult> {
    const r = ok('READ', await this.raw.NFSPROC3_READ({ file: fh, offset: big(offset), count }, o)).resok;
    if (r.data.length !== r.count)
      throw new NfsClientError('NFS_PROTOCOL', `READ: count ${r.count} but ${r.data.length} bytes of data`);
    return { data: r.data, eof: r.eof, attributes: attrs(r.file_attributes) };
  }

  /**
   * Reads a whole file in READs of the server's rtmax (at most 4 MiB), `depth` of them in flight,
   * until eof. A short read without eof is legal: reading goes on from where it ended.
   */
  async readAll(fh: nfs_fh3, { depth = 4 }: { depth?: number } = {}, o?: CallOptions): Promise<Uint8Array> {
    const { rtmax } = await this.fsinfo(fh, o);
    const chunk = Math.max(1, Math.min(rtmax, 4 << 20));
    const parts: Uint8Array[] = [];
    let offset = 0n;
    for (;;) {
      const batch = await Promise.all(
        Array.from({ length: Math.max(1, depth) }, (_, i) =>
          this.read(fh, offset + BigInt(i * chunk), chunk, o),
        ),
      );
      for (const r of batch) {
        parts.push(r.data);
        offset += BigInt(r.data.length);
        if (r.eof) return Buffer.concat(parts);
        // Later replies in the batch started at offsets this one did not reach.
        if (r.data.length < chunk) break;
      }
      if (batch[0].data.length === 0)
        throw new NfsClientError('NFS_PROTOCOL', 'READ returned no data and no eof');
    }
  }

  async write(
    fh: nfs_fh3,
    offset: OffsetLike,
    data: Uint8Array,
    stable: stable_how = FILE_SYNC,
    o?: CallOptions,
  ): Promise<WRITE3resok> {
    const res = await this.raw.NFSPROC3_WRITE(
      { file: fh, offset: big(offset), count: data.length, stable, data },
      o,
    );
    return ok('WRITE', res).resok;
  }

  /**
   * Writes `data` at `offset` in WRITEs of the server's wtmax (at most 4 MiB), `depth` of them in
   * flight, each piece until fully written (a server may write less than asked). Unstable writes
   * end with a COMMIT; if the write verifier changed meanwhile (the server lost unstable data),
   * the whole range is written again.
   */
  async writeAll(
    fh: nfs_fh3,
    data: Uint8Array,
    {
      offset = 0,
      stable = UNSTABLE,
      depth = 4,
    }: { offset?: OffsetLike; stable?: stable_how; depth?: number } = {},
    o?: CallOptions,
  ): Promise<void> {
    const { wtmax } = await this.fsinfo(fh, o);
    const chunk = Math.max(1, Math.min(wtmax, 4 << 20));
    const base = big(offset);
    const starts: number[] = [];
    // One WRITE even for no data, so an empty writeAll still reaches the server.
    for (let pos = 0; pos < data.length || starts.length === 0; pos += chunk) starts.push(pos);
    for (let attempt = 0; attempt < 3; attempt++) {
      const verfs: Uint8Array[] = [];
      let needCommit = false;
      const writePiece = async (start: number) => {
        const end = Math.min(start + chunk, data.length);
        let pos = start;
        do {
          const piece = data.subarray(pos, end);
          const r = await this.write(fh, base + BigInt(pos), piece, stable, o);
          if (r.count > piece.length || (r.count === 0 && piece.length > 0))
            throw new NfsClientError(
              'NFS_PROTOCOL',
              `WRITE of ${piece.length} bytes answered count ${r.count}`,
            );
          if (r.committed === UNSTABLE) needCommit = true;
          verfs.push(r.verf);
          pos += r.count;
        } while (pos < end);
      };
      const step = Math.max(1, depth);
      for (let i = 0; i < starts.length; i += step)
        await Promise.all(starts.slice(i, i + step).map(writePiece));
      if (!needCommit) return;
      const c = await this.commit(fh, base, data.length > 0xffffffff ? 0 : data.length, o);
      if (verfs.every((v) => sameBytes(v, c.verf))) return;
    }
    throw new NfsClientError(
      'NFS_WRITE_VERIFIER_CHANGED',
      'the write verifier kept changing: unstable data lost 3 times',
    );
  }

  /** After a creating procedure: the new object's handle, looked up if the server left it out. */
  private async created(
    procedure: string,
    dir: nfs_fh3,
    name: Uint8Array,
    r: { obj: post_op_fh3; obj_attributes: post_op_attr; dir_wcc: wcc_data },
    o?: CallOptions,
  ): Promise<NewObject> {
    if (r.obj.handle_follows)
      return { fh: r.obj.handle, attributes: attrs(r.obj_attributes), dirWcc: r.dir_wcc };
    const l = await this.lookup(dir, name, o).catch((e: unknown) => {
      throw new NfsClientError('NFS_PROTOCOL', `${procedure} sent no handle and LOOKUP failed`, { cause: e });
    });
    return { fh: l.fh, attributes: l.attributes ?? attrs(r.obj_attributes), dirWcc: r.dir_wcc };
  }

  /** CREATE a regular file: UNCHECKED (default), GUARDED (EXIST if present) or EXCLUSIVE with a verifier. */
  async create(dir: nfs_fh3, name: NameLike, how: CreateHow = {}, o?: CallOptions): Promise<NewObject> {
    const n = toName(name);
    let wire: createhow3;
    if (how.mode === 'EXCLUSIVE') {
      if (how.verifier.length !== 8) throw new RangeError('an EXCLUSIVE create verifier is 8 bytes');
      wire = { mode: EXCLUSIVE, verf: how.verifier };
    } else {
      wire = { mode: how.mode === 'GUARDED' ? GUARDED : UNCHECKED, obj_attributes: toSattr3(how.attributes) };
    }
    const res: CREATE3res = await this.raw.NFSPROC3_CREATE({ where: { dir, name: n }, how: wire }, o);
    return this.created('CREATE', dir, n, ok('CREATE', res).resok, o);
  }

  async mkdir(dir: nfs_fh3, name: NameLike, a: SetAttributes = {}, o?: CallOptions): Promise<NewObject> {
    const n = toName(name);
    const res: MKDIR3res = await this.raw.NFSPROC3_MKDIR(
      { where: { dir, name: n }, attributes: toSattr3(a) },
      o,
    );
    return this.created('MKDIR', dir, n, ok('MKDIR', res).resok, o);
  }

  async symlink(
    dir: nfs_fh3,
    name: NameLike,
    target: NameLike,
    a: SetAttributes = {},
    o?: CallOptions,
  ): Promise<NewObject> {
    const n = toName(name);
    const res: SYMLINK3res = await this.raw.NFSPROC3_SYMLINK(
      { where: { dir, name: n }, symlink: { symlink_attributes: toSattr3(a), symlink_data: toName(target) } },
      o,
    );
    return this.created('SYMLINK', dir, n, ok('SYMLINK', res).resok, o);
  }

  /** MKNOD: devices take `spec` (major, minor); sockets and FIFOs only attributes. */
  async mknod(
    dir: nfs_fh3,
    name: NameLike,
    type: ftype3,
    { attributes, spec }: { attributes?: SetAttributes; spec?: specdata3 } = {},
    o?: CallOptions,
  ): Promise<NewObject> {
    const n = toName(name);
    let what: mknoddata3;
    if (type === NF3CHR || type === NF3BLK)
      what = {
        type,
        device: { dev_attributes: toSattr3(attributes), spec: spec ?? { specdata1: 0, specdata2: 0 } },
      };
    else if (type === NF3SOCK || type === NF3FIFO) what = { type, pipe_attributes: toSattr3(attributes) };
    else what = { type } as mknoddata3;
    const res: MKNOD3res = await this.raw.NFSPROC3_MKNOD({ where: { dir, name: n }, what }, o);
    return this.created('MKNOD', dir, n, ok('MKNOD', res).resok, o);
  }

  async remove(dir: nfs_fh3, name: NameLike, o?: CallOptions): Promise<wcc_data> {
    return ok('REMOVE', await this.raw.NFSPROC3_REMOVE({ object: { dir, name: toName(name) } }, o)).resok
      .dir_wcc;
  }

  async rmdir(dir: nfs_fh3, name: NameLike, o?: CallOptions): Promise<wcc_data> {
    return ok('RMDIR', await this.raw.NFSPROC3_RMDIR({ object: { dir, name: toName(name) } }, o)).resok
      .dir_wcc;
  }

  async rename(
    fromDir: nfs_fh3,
    fromName: NameLike,
    toDir: nfs_fh3,
    toNameArg: NameLike,
    o?: CallOptions,
  ): Promise<RENAME3resok> {
    const res = await this.raw.NFSPROC3_RENAME(
      { from: { dir: fromDir, name: toName(fromName) }, to: { dir: toDir, name: toName(toNameArg) } },
      o,
    );
    return ok('RENAME', res).resok;
  }

  /** LINK: a new name `name` in `dir` for the existing file `fh`. */
  async link(fh: nfs_fh3, dir: nfs_fh3, name: NameLike, o?: CallOptions): Promise<LINK3resok> {
    const res = await this.raw.NFSPROC3_LINK({ file: fh, link: { dir, name: toName(name) } }, o);
    return ok('LINK', res).resok;
  }

  /** One READDIR page. Start with cookie 0 and a zero verifier; go on with the last entry's cookie. */
  async readdir(
    dir: nfs_fh3,
    cookie: OffsetLike = 0n,
    cookieverf: Uint8Array = ZERO_VERF,
    count = 8192,
    o?: CallOptions,
  ): Promise<DirPage<DirEntry>> {
    const r = ok(
      'READDIR',
      await this.raw.NFSPROC3_READDIR({ dir, cookie: big(cookie), cookieverf, count }, o),
    ).resok;
    const entries: DirEntry[] = [];
    for (let e = r.reply.entries; e !== null; e = e.nextentry)
      entries.push({ fileid: e.fileid, name: e.name, cookie: e.cookie });
    return { entries, eof: r.reply.eof, cookieverf: r.cookieverf, dirAttributes: attrs(r.dir_attributes) };
  }

  /** Every entry of a directory (as the server lists them, '.' and '..' included if it sends them). */
  async readdirAll(dir: nfs_fh3, count = 8192, o?: CallOptions): Promise<DirEntry[]> {
    return this.pages((c, v) => this.readdir(dir, c, v, count, o), 'READDIR');
  }

  /** One READDIRPLUS page: entries with attributes and handles where the server sends them. */
  async readdirplus(
    dir: nfs_fh3,
    cookie: OffsetLike = 0n,
    cookieverf: Uint8Array = ZERO_VERF,
    dircount = 8192,
    maxcount = 65536,
    o?: CallOptions,
  ): Promise<DirPage<DirEntryPlus>> {
    const r = ok(
      'READDIRPLUS',
      await this.raw.NFSPROC3_READDIRPLUS({ dir, cookie: big(cookie), cookieverf, dircount, maxcount }, o),
    ).resok;
    const entries: DirEntryPlus[] = [];
    for (let e = r.reply.entries; e !== null; e = e.nextentry)
      entries.push({
        fileid: e.fileid,
        name: e.name,
        cookie: e.cookie,
        attributes: attrs(e.name_attributes),
        fh: e.name_handle.handle_follows ? e.name_handle.handle : undefined,
      });
    return { entries, eof: r.reply.eof, cookieverf: r.cookieverf, dirAttributes: attrs(r.dir_attributes) };
  }

  async readdirplusAll(
    dir: nfs_fh3,
    dircount = 8192,
    maxcount = 65536,
    o?: CallOptions,
  ): Promise<DirEntryPlus[]> {
    return this.pages((c, v) => this.readdirplus(dir, c, v, dircount, maxcount, o), 'READDIRPLUS');
  }

  private async pages<E extends DirEntry>(
    page: (cookie: bigint, verf: Uint8Array) => Promise<DirPage<E>>,
    procedure: string,
  ): Promise<E[]> {
    const out: E[] = [];
    let cookie = 0n;
    let verf: Uint8Array = ZERO_VERF;
    for (;;) {
      const p = await page(cookie, verf);
      out.push(...p.entries);
      if (p.eof) return out;
      const last = p.entries.at(-1);
      // A page with no entries and no eof means the count was too small for even one entry.
      if (last === undefined)
        throw new NfsClientError('NFS_PROTOCOL', `${procedure} returned an empty page without eof`);
      cookie = last.cookie;
      verf = p.cookieverf;
    }
  }

  async fsstat(fh: nfs_fh3, o?: CallOptions): Promise<FSSTAT3resok> {
    return ok('FSSTAT', await this.raw.NFSPROC3_FSSTAT({ fsroot: fh }, o)).resok;
  }

  async fsinfo(fh: nfs_fh3, o?: CallOptions): Promise<FSINFO3resok> {
    return ok('FSINFO', await this.raw.NFSPROC3_FSINFO({ fsroot: fh }, o)).resok;
  }

  async pathconf(fh: nfs_fh3, o?: CallOptions): Promise<PATHCONF3resok> {
    return ok('PATHCONF', await this.raw.NFSPROC3_PATHCONF({ object: fh }, o)).resok;
  }

  /** COMMIT `count` bytes from `offset` (0 and 0: the whole file). */
  async commit(fh: nfs_fh3, offset: OffsetLike = 0, count = 0, o?: CallOptions): Promise<COMMIT3resok> {
    return ok('COMMIT', await this.raw.NFSPROC3_COMMIT({ file: fh, offset: big(offset), count }, o)).resok;
  }
}

/** True when `e` is an NfsError with the given status name (e.g. 'NFS3ERR_NOENT'). */
export function isNfsError(e: unknown, code?: string): e is NfsError {
  return e instanceof NfsError && (code === undefined || e.code === code);
}
