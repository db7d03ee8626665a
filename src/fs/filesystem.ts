/**
 * The namespace: inodes, directories, symbolic and hard links, permissions and attributes, over
 * the store's versioned records and file content. Every operation that changes something is one
 * store transaction, checked against the state inside it (so concurrent callers cannot race
 * between a check and a change) and durable before it resolves.
 *
 * Records: ['sb'] the superblock (next inode number, latest timestamp handed out);
 * ['i', ino] an inode; ['d', dir, name] a directory entry; ['c', dir, cookie] the name at a
 * READDIR position, so listings resume where they stopped even as entries come and go.
 */
import type { Store, StoreStats, WriteTx } from '../store/types.js';
import {
  deleteDenial,
  mayCreate,
  mayLookup,
  mayRead,
  mayReadData,
  maySetattr,
  mayWrite,
  mayWriteData,
  modeAfterWrite,
  newObjectOwnership,
} from './access.js';
import { MonotonicClock } from './clock.js';
import { FsError } from './errors.js';
import {
  type Attr,
  type CreateMode,
  type DirChange,
  type DirEntry,
  type FileType,
  type Identity,
  type Inode,
  MAX_FILE_SIZE,
  NAME_MAX,
  PATH_MAX,
  ROOT_INO,
  type SetAttrs,
  type Time,
} from './types.js';

interface Superblock {
  nextIno: number;
  lastTime: Time;
}

const SB = ['sb'] as const;
const inodeKey = (ino: number) => ['i', ino] as const;
const entryKey = (dir: number, name: Uint8Array) => ['d', dir, name] as const;
const cookieKey = (dir: number, cookie: number) => ['c', dir, cookie] as const;

interface EntryRecord {
  ino: number;
  cookie: number;
}

/** READDIR positions 1 and 2 are '.' and '..'; stored entries start after them. */
const FIRST_COOKIE = 3;
const DOT = new Uint8Array([0x2e]);
const DOTDOT = new Uint8Array([0x2e, 0x2e]);

export interface FileSystemOptions {
  /** Wall clock in milliseconds; injected so the simulator can drive time. */
  clock?: () => number;
  /** Random 32-bit generation numbers; injected for determinism in the simulator. */
  random?: () => number;
}

export interface CreateResult {
  readonly attr: Attr;
  readonly dir: DirChange;
}

export interface ReadResult {
  readonly data: Uint8Array;
  readonly eof: boolean;
  readonly attr: Attr;
}

function isDotName(name: Uint8Array): 'dot' | 'dotdot' | null {
  if (name.length === 1 && name[0] === 0x2e) return 'dot';
  if (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e) return 'dotdot';
  return null;
}

function checkName(name: Uint8Array): void {
  if (name.length === 0) throw new FsError('EINVAL', 'empty name');
  if (name.length > NAME_MAX)
    throw new FsError('ENAMETOOLONG', `name of ${name.length} bytes exceeds ${NAME_MAX}`);
  if (name.includes(0x2f) || name.includes(0)) throw new FsError('EINVAL', 'name contains / or NUL');
}

const withIno = (ino: number, inode: Inode): Attr => ({ ...inode, ino });

export class FileSystem {
  private readonly clock: MonotonicClock;
  private readonly random: () => number;

  private constructor(
    readonly store: Store,
    options: FileSystemOptions,
  ) {
    this.clock = new MonotonicClock(options.clock);
    this.random = options.random ?? (() => (Math.random() * 0x1_0000_0000) >>> 0);
  }

  /** Opens the namespace in `store`, creating the root directory the first time. */
  static async open(store: Store, options: FileSystemOptions = {}): Promise<FileSystem> {
    const fs = new FileSystem(store, options);
    const sb = store.get<Superblock>(SB);
    if (sb) fs.clock.advancePast(sb.value.lastTime);
    await store.write(
      (tx) => {
        if (tx.get(inodeKey(ROOT_INO))) return;
        const now = fs.clock.now();
        tx.put<Inode>(inodeKey(ROOT_INO), {
          type: 'dir',
          mode: 0o755,
          nlink: 2,
          uid: 0,
          gid: 0,
          size: 0,
          atime: now,
          mtime: now,
          ctime: now,
          gen: fs.random(),
          parent: ROOT_INO,
          nextCookie: FIRST_COOKIE,
        });
        tx.put<Superblock>(SB, { nextIno: ROOT_INO + 1, lastTime: now });
      },
      { durable: true },
    );
    return fs;
  }

  // ------------------------------------------------------------------ reading ---

  /** Attributes of an inode; ESTALE when it no longer exists. */
  getattr(ino: number): Attr {
    const r = this.store.get<Inode>(inodeKey(ino));
    if (!r) throw new FsError('ESTALE', `inode ${ino} does not exist`);
    return withIno(ino, r.value);
  }

  /** Whether the inode exists and carries this generation. */
  exists(ino: number, gen: number): boolean {
    const r = this.store.get<Inode>(inodeKey(ino));
    return r !== undefined && r.value.gen === gen;
  }

  lookup(who: Identity, dirIno: number, name: Uint8Array): Attr {
    const dir = this.getattr(dirIno);
    if (dir.type !== 'dir') throw new FsError('ENOTDIR', `inode ${dirIno} is not a directory`);
    if (!mayLookup(who, dir)) throw new FsError('EACCES', 'no search permission on the directory');
    const dot = isDotName(name);
    if (dot === 'dot') return dir;
    if (dot === 'dotdot') return this.getattr(dir.parent ?? ROOT_INO);
    if (name.length > NAME_MAX)
      throw new FsError('ENAMETOOLONG', `name of ${name.length} bytes exceeds ${NAME_MAX}`);
    // No entry can have such a name; say why rather than ENOENT, as every other procedure does.
    if (name.includes(0x2f) || name.includes(0)) throw new FsError('EINVAL', 'name contains / or NUL');
    const e = name.length === 0 ? undefined : this.store.get<EntryRecord>(entryKey(dirIno, name));
    if (!e) throw new FsError('ENOENT', 'no such entry');
    return this.getattr(e.value.ino);
  }

  /** Follows a slash-separated path from `from` without following symbolic links. */
  lookupPath(who: Identity, from: number, path: string): Attr {
    let at = this.getattr(from);
    for (const part of path.split('/')) {
      if (part === '') continue;
      at = this.lookup(who, at.ino, Buffer.from(part));
    }
    return at;
  }

  readlink(ino: number): Uint8Array {
    const a = this.getattr(ino);
    if (a.type !== 'lnk' || !a.target) throw new FsError('EINVAL', `inode ${ino} is not a symbolic link`);
    return a.target;
  }

  /** `lend`: as the store's readFile has it (the data may be lent until released). */
  async read(
    who: Identity,
    ino: number,
    offset: number,
    count: number,
    lend?: (release: () => void) => void,
  ): Promise<ReadResult> {
    const a = this.getattr(ino);
    if (a.type === 'dir') throw new FsError('EISDIR', 'read of a directory');
    if (a.type !== 'reg') throw new FsError('EINVAL', 'read of a file that is not regular');
    if (!mayReadData(who, a)) throw new FsError('EACCES', 'no read permission');
    if (offset >= a.size) return { data: new Uint8Array(0), eof: true, attr: a };
    const n = Math.min(count, a.size - offset);
    const data = await this.store.readFile(ino, offset, n, a.size, lend);
    return { data, eof: offset + data.length >= a.size, attr: a };
  }

  /**
   * Entries after `cookie` (0 starts at the beginning, with '.' and '..'), in a stable order;
   * the caller stops iterating when its reply is full.
   */
  *list(who: Identity, dirIno: number, cookie: number): Generator<DirEntry> {
    const dir = this.getattr(dirIno);
    if (dir.type !== 'dir') throw new FsError('ENOTDIR', `inode ${dirIno} is not a directory`);
    if (!mayRead(who, dir)) throw new FsError('EACCES', 'no read permission on the directory');
    if (cookie < 1) yield { name: DOT, ino: dirIno, cookie: 1 };
    if (cookie < 2) yield { name: DOTDOT, ino: dir.parent ?? ROOT_INO, cookie: 2 };
    const start = cookieKey(dirIno, Math.max(cookie + 1, FIRST_COOKIE));
    for (const r of this.store.range<Uint8Array>(['c', dirIno], { start })) {
      const name = r.value;
      const e = this.store.get<EntryRecord>(entryKey(dirIno, name));
      if (e) yield { name, ino: e.value.ino, cookie: r.key[2] as number };
    }
  }

  /** Whether a READDIR cookie could have come from this directory (cookies are never reused). */
  validCookie(dirIno: number, cookie: number): boolean {
    return cookie === 0 || cookie < (this.getattr(dirIno).nextCookie ?? FIRST_COOKIE);
  }

  async statfs(): Promise<StoreStats> {
    return this.store.stats();
  }

  // ----------------------------------------------------------------- changing ---

  /** Runs a change in one durable transaction; the clock advance is stored with it. */
  private change<T>(fn: (tx: WriteTx, now: Time) => T): Promise<T> {
    return this.store.write(
      (tx) => {
        const now = this.clock.now();
        const result = fn(tx, now);
        const sb = tx.get<Superblock>(SB)?.value;
        if (sb) tx.put<Superblock>(SB, { ...sb, lastTime: now });
        return result;
      },
      { durable: true },
    );
  }

  private inode(tx: WriteTx, ino: number): Attr {
    const r = tx.get<Inode>(inodeKey(ino));
    if (!r) throw new FsError('ESTALE', `inode ${ino} does not exist`);
    return withIno(ino, r.value);
  }

  private save(tx: WriteTx, a: Attr): Attr {
    const { ino, ...inode } = a;
    tx.put<Inode>(inodeKey(ino), inode);
    return a;
  }

  /** A directory the caller may add entries to or remove them from. */
  private writableDir(tx: WriteTx, who: Identity, dirIno: number): Attr {
    const dir = this.inode(tx, dirIno);
    if (dir.type !== 'dir') throw new FsError('ENOTDIR', `inode ${dirIno} is not a directory`);
    if (!mayCreate(who, dir)) throw new FsError('EACCES', 'no write and search permission on the directory');
    return dir;
  }

  /** Whether `victim`'s entry may leave `dir`: write and search on it, and the sticky bit's rule. */
  private checkDelete(who: Identity, dir: Attr, victim: Attr): void {
    const denied = deleteDenial(who, dir, victim);
    if (denied === 'NFS3ERR_PERM')
      throw new FsError('EPERM', 'sticky directory: not the owner of the file or directory');
    if (denied) throw new FsError('EACCES', 'no write and search permission on the directory');
  }

  private entry(tx: WriteTx, dir: number, name: Uint8Array): EntryRecord | undefined {
    return tx.get<EntryRecord>(entryKey(dir, name))?.value;
  }

  private allocate(tx: WriteTx): number {
    const sb = tx.get<Superblock>(SB);
    if (!sb) throw new FsError('EIO', 'superblock missing');
    const ino = sb.value.nextIno;
    tx.put<Superblock>(SB, { ...sb.value, nextIno: ino + 1 });
    return ino;
  }

  private addEntry(tx: WriteTx, dir: Attr, name: Uint8Array, ino: number): Attr {
    const cookie = dir.nextCookie ?? FIRST_COOKIE;
    tx.put<EntryRecord>(entryKey(dir.ino, name), { ino, cookie });
    tx.put<Uint8Array>(cookieKey(dir.ino, cookie), name);
    return { ...dir, nextCookie: cookie + 1 };
  }

  private removeEntry(tx: WriteTx, dir: number, name: Uint8Array, e: EntryRecord): void {
    tx.delete(entryKey(dir, name));
    tx.delete(cookieKey(dir, e.cookie));
  }

  /** Creates an inode and its entry in `dir`; shared by every kind of create. */
  private makeInode(
    tx: WriteTx,
    who: Identity,
    dirIno: number,
    name: Uint8Array,
    now: Time,
    fields: Pick<Inode, 'type' | 'mode'> & Partial<Inode>,
  ): CreateResult {
    checkName(name);
    const dir = this.writableDir(tx, who, dirIno);
    if (isDotName(name) || this.entry(tx, dirIno, name)) throw new FsError('EEXIST', 'name exists');
    const ino = this.allocate(tx);
    const { uid, gid, mode } = newObjectOwnership(who, dir, fields.type, fields.mode);
    const attr: Attr = {
      nlink: fields.type === 'dir' ? 2 : 1,
      uid,
      gid,
      size: 0,
      atime: now,
      mtime: now,
      ctime: now,
      gen: this.random(),
      ...fields,
      mode,
      ino,
    };
    this.save(tx, attr);
    const after = this.save(tx, {
      ...this.addEntry(tx, dir, name, ino),
      nlink: dir.nlink + (fields.type === 'dir' ? 1 : 0),
      mtime: now,
      ctime: now,
    });
    return { attr, dir: { before: dir, after } };
  }

  /** CREATE of a regular file, in any of NFS's three modes. */
  create(who: Identity, dirIno: number, name: Uint8Array, how: CreateMode): Promise<CreateResult> {
    return this.change((tx, now) => {
      checkName(name);
      const existing = isDotName(name) ? undefined : this.entry(tx, dirIno, name);
      if (existing) {
        const dir = this.writableDir(tx, who, dirIno);
        const a = this.inode(tx, existing.ino);
        if (how.kind === 'guarded') throw new FsError('EEXIST', 'name exists');
        if (how.kind === 'exclusive') {
          if (a.type === 'reg' && a.verf && Buffer.compare(a.verf, how.verf) === 0) {
            return { attr: a, dir: { before: dir, after: dir } };
          }
          throw new FsError('EEXIST', 'name exists with a different verifier');
        }
        if (a.type !== 'reg') throw new FsError('EEXIST', 'name exists and is not a regular file');
        // UNCHECKED on an existing file: only a size change applies (open with O_TRUNC).
        const attr =
          how.attrs?.size !== undefined ? this.applySetattr(tx, who, a, { size: how.attrs.size }, now) : a;
        return { attr, dir: { before: dir, after: dir } };
      }
      if (how.kind === 'exclusive') {
        return this.makeInode(tx, who, dirIno, name, now, { type: 'reg', mode: 0, verf: how.verf });
      }
      const attrs = how.attrs ?? {};
      const made = this.makeInode(tx, who, dirIno, name, now, { type: 'reg', mode: attrs.mode ?? 0o644 });
      const rest: SetAttrs = { ...attrs, mode: undefined };
      if (Object.values(rest).every((v) => v === undefined)) return made;
      return { ...made, attr: this.applySetattr(tx, who, made.attr, rest, now) };
    });
  }

  mkdir(who: Identity, dirIno: number, name: Uint8Array, attrs: SetAttrs = {}): Promise<CreateResult> {
    return this.change((tx, now) => {
      const made = this.makeInode(tx, who, dirIno, name, now, {
        type: 'dir',
        mode: attrs.mode ?? 0o755,
        parent: dirIno,
        nextCookie: FIRST_COOKIE,
      });
      return this.withOwner(tx, who, made, attrs, now);
    });
  }

  symlink(
    who: Identity,
    dirIno: number,
    name: Uint8Array,
    target: Uint8Array,
    attrs: SetAttrs = {},
  ): Promise<CreateResult> {
    // An empty target, or one with a NUL inside, is no path: INVAL before anything else, as
    // knfsd (nfsd3_proc_symlink, svc_fill_symlink_pathname) answers.
    if (target.length === 0 || target.includes(0)) {
      return Promise.reject(new FsError('EINVAL', 'a symbolic link target is non-empty and has no NUL'));
    }
    if (target.length > PATH_MAX) {
      return Promise.reject(
        new FsError('ENAMETOOLONG', `target of ${target.length} bytes exceeds ${PATH_MAX}`),
      );
    }
    return this.change((tx, now) => {
      const made = this.makeInode(tx, who, dirIno, name, now, {
        type: 'lnk',
        mode: 0o777,
        target: Uint8Array.from(target),
        size: target.length,
      });
      return this.withOwner(tx, who, made, attrs, now);
    });
  }

  mknod(
    who: Identity,
    dirIno: number,
    name: Uint8Array,
    type: Extract<FileType, 'blk' | 'chr' | 'sock' | 'fifo'>,
    attrs: SetAttrs = {},
    rdev: readonly [number, number] = [0, 0],
  ): Promise<CreateResult> {
    return this.change((tx, now) => {
      if ((type === 'blk' || type === 'chr') && who.uid !== 0)
        throw new FsError('EPERM', 'only root makes devices');
      const made = this.makeInode(tx, who, dirIno, name, now, {
        type,
        mode: attrs.mode ?? 0o644,
        ...(type === 'blk' || type === 'chr' ? { rdev } : {}),
      });
      return this.withOwner(tx, who, made, attrs, now);
    });
  }

  /** Owner and group given at creation (root may choose them, as with a chown right after). */
  private withOwner(
    tx: WriteTx,
    who: Identity,
    made: CreateResult,
    attrs: SetAttrs,
    now: Time,
  ): CreateResult {
    if (attrs.uid === undefined && attrs.gid === undefined) return made;
    return { ...made, attr: this.applySetattr(tx, who, made.attr, { uid: attrs.uid, gid: attrs.gid }, now) };
  }

  remove(who: Identity, dirIno: number, name: Uint8Array): Promise<DirChange> {
    return this.change((tx, now) => {
      const dir = this.writableDir(tx, who, dirIno);
      if (isDotName(name))
        throw new FsError('EISDIR', `cannot remove ${isDotName(name) === 'dot' ? '.' : '..'}`);
      checkName(name);
      const e = this.entry(tx, dirIno, name);
      if (!e) throw new FsError('ENOENT', 'no such entry');
      const victim = this.inode(tx, e.ino);
      if (victim.type === 'dir') throw new FsError('EISDIR', 'remove of a directory');
      this.checkDelete(who, dir, victim);
      this.removeEntry(tx, dirIno, name, e);
      this.unlinkInode(tx, victim, now);
      const after = this.save(tx, { ...dir, mtime: now, ctime: now });
      return { before: dir, after };
    });
  }

  private unlinkInode(tx: WriteTx, a: Attr, now: Time): void {
    if (a.nlink <= 1) {
      tx.delete(inodeKey(a.ino));
      if (a.type === 'reg') tx.dropContent(a.ino);
    } else {
      this.save(tx, { ...a, nlink: a.nlink - 1, ctime: now });
    }
  }

  rmdir(who: Identity, dirIno: number, name: Uint8Array): Promise<DirChange> {
    return this.change((tx, now) => {
      const dir = this.writableDir(tx, who, dirIno);
      const dot = isDotName(name);
      if (dot === 'dot') throw new FsError('EINVAL', 'cannot remove .');
      if (dot === 'dotdot') throw new FsError('ENOTEMPTY', 'cannot remove ..');
      checkName(name);
      const e = this.entry(tx, dirIno, name);
      if (!e) throw new FsError('ENOENT', 'no such entry');
      const victim = this.inode(tx, e.ino);
      if (victim.type !== 'dir') throw new FsError('ENOTDIR', 'rmdir of a file that is not a directory');
      this.checkDelete(who, dir, victim);
      for (const _ of tx.range(['d', victim.ino], { limit: 1 }))
        throw new FsError('ENOTEMPTY', 'directory not empty');
      this.removeEntry(tx, dirIno, name, e);
      tx.delete(inodeKey(victim.ino));
      const after = this.save(tx, { ...dir, nlink: dir.nlink - 1, mtime: now, ctime: now });
      return { before: dir, after };
    });
  }

  link(
    who: Identity,
    ino: number,
    dirIno: number,
    name: Uint8Array,
  ): Promise<{ attr: Attr; dir: DirChange }> {
    return this.change((tx, now) => {
      checkName(name);
      // The directory first, then the file, as knfsd's nfsd_link: NOTDIR or ACCES before ISDIR.
      const dir = this.writableDir(tx, who, dirIno);
      const a = this.inode(tx, ino);
      if (a.type === 'dir') throw new FsError('EISDIR', 'hard link to a directory');
      if (isDotName(name) || this.entry(tx, dirIno, name)) throw new FsError('EEXIST', 'name exists');
      if (a.nlink >= 0xffff_ffff) throw new FsError('EMLINK', 'too many links');
      const attr = this.save(tx, { ...a, nlink: a.nlink + 1, ctime: now });
      const after = this.save(tx, { ...this.addEntry(tx, dir, name, ino), mtime: now, ctime: now });
      return { attr, dir: { before: dir, after } };
    });
  }

  rename(
    who: Identity,
    fromDirIno: number,
    fromName: Uint8Array,
    toDirIno: number,
    toName: Uint8Array,
  ): Promise<{ from: DirChange; to: DirChange }> {
    return this.change((tx, now) => {
      if (isDotName(fromName) || isDotName(toName)) throw new FsError('EINVAL', 'rename of . or ..');
      checkName(fromName);
      checkName(toName);
      const fromDir = this.writableDir(tx, who, fromDirIno);
      const toDir = fromDirIno === toDirIno ? fromDir : this.writableDir(tx, who, toDirIno);
      const e = this.entry(tx, fromDirIno, fromName);
      if (!e) throw new FsError('ENOENT', 'no such entry');
      const moving = this.inode(tx, e.ino);
      const isDir = moving.type === 'dir';
      const target = this.entry(tx, toDirIno, toName);
      if (fromDirIno !== toDirIno) {
        // Before any check of the objects, as Linux (lock_rename's trap in knfsd and renameat):
        // a directory may not move into itself or its own subtree, and nothing may replace a
        // directory it is inside of (which is never empty).
        const above = (from: number, ino: number) => {
          for (let at = from; ; ) {
            if (at === ino) return true;
            if (at === ROOT_INO) return false;
            at = this.inode(tx, at).parent ?? ROOT_INO;
          }
        };
        if (isDir && above(toDirIno, moving.ino))
          throw new FsError('EINVAL', 'rename of a directory into its own subtree');
        if (target && above(fromDirIno, target.ino))
          throw new FsError('ENOTEMPTY', 'rename over a directory that contains the source');
      }
      this.checkDelete(who, fromDir, moving);
      if (target && target.ino === e.ino)
        return { from: { before: fromDir, after: fromDir }, to: { before: toDir, after: toDir } };
      const victim = target ? this.inode(tx, target.ino) : undefined;
      if (victim) {
        this.checkDelete(who, toDir, victim);
        if (isDir && victim.type !== 'dir') throw new FsError('ENOTDIR', 'rename of a directory over a file');
        if (!isDir && victim.type === 'dir') throw new FsError('EISDIR', 'rename of a file over a directory');
      }
      // After the target's checks and before its emptiness, as Linux's vfs_rename orders them.
      if (isDir && fromDirIno !== toDirIno && !mayWrite(who, moving))
        throw new FsError('EACCES', 'no write permission on the directory moved');
      let toNlinkDelta = 0;
      let fromNlinkDelta = 0;
      if (target && victim) {
        if (victim.type === 'dir') {
          for (const _ of tx.range(['d', victim.ino], { limit: 1 }))
            throw new FsError('ENOTEMPTY', 'target directory not empty');
          tx.delete(inodeKey(victim.ino));
          toNlinkDelta--;
        } else {
          this.unlinkInode(tx, victim, now);
        }
        this.removeEntry(tx, toDirIno, toName, target);
      }
      this.removeEntry(tx, fromDirIno, fromName, e);
      if (isDir && fromDirIno !== toDirIno) {
        fromNlinkDelta--;
        toNlinkDelta++;
        this.save(tx, { ...moving, parent: toDirIno, ctime: now });
      } else {
        this.save(tx, { ...moving, ctime: now });
      }
      if (fromDirIno === toDirIno) {
        const dir = this.inode(tx, fromDirIno);
        const after = this.save(tx, {
          ...this.addEntry(tx, dir, toName, e.ino),
          nlink: dir.nlink + fromNlinkDelta + toNlinkDelta,
          mtime: now,
          ctime: now,
        });
        return { from: { before: fromDir, after }, to: { before: toDir, after } };
      }
      const fromAfter = this.save(tx, {
        ...fromDir,
        nlink: fromDir.nlink + fromNlinkDelta,
        mtime: now,
        ctime: now,
      });
      const toCur = this.inode(tx, toDirIno);
      const toAfter = this.save(tx, {
        ...this.addEntry(tx, toCur, toName, e.ino),
        nlink: toCur.nlink + toNlinkDelta,
        mtime: now,
        ctime: now,
      });
      return { from: { before: fromDir, after: fromAfter }, to: { before: toDir, after: toAfter } };
    });
  }

  /**
   * SETATTR. With `guardCtime`, fails with ENOTSYNC unless the inode's ctime is exactly that
   * (NFS's guard against applying a retried or stale change).
   */
  setattr(
    who: Identity,
    ino: number,
    attrs: SetAttrs,
    guardCtime?: Time,
  ): Promise<{ before: Attr; after: Attr }> {
    return this.change((tx, now) => {
      const before = this.inode(tx, ino);
      if (guardCtime && (guardCtime.s !== before.ctime.s || guardCtime.ns !== before.ctime.ns)) {
        throw new FsError('ENOTSYNC', 'ctime guard does not match');
      }
      return { before, after: this.applySetattr(tx, who, before, attrs, now) };
    });
  }

  private applySetattr(tx: WriteTx, who: Identity, a: Attr, s: SetAttrs, now: Time): Attr {
    // The type checks hold even for the current size (truncate(2), knfsd).
    if (s.size !== undefined) {
      if (a.type === 'dir') throw new FsError('EISDIR', 'size change of a directory');
      if (a.type !== 'reg') throw new FsError('EINVAL', 'size change of a file that is not regular');
      if (s.size > MAX_FILE_SIZE) throw new FsError('EFBIG', 'size beyond the largest file');
    }
    const timeChange = (t: Time | 'now' | undefined) =>
      t === undefined ? undefined : t === 'now' ? 'server' : 'client';
    const decision = maySetattr(who, a, {
      mode: s.mode,
      uid: s.uid,
      gid: s.gid,
      size: s.size,
      atime: timeChange(s.atime),
      mtime: timeChange(s.mtime),
    });
    if (!decision.ok)
      throw new FsError(decision.status === 'NFS3ERR_PERM' ? 'EPERM' : 'EACCES', decision.reason);
    const next: Inode & { ino: number } = { ...a };
    if (s.size !== undefined && s.size !== a.size) {
      tx.truncate(a.ino, s.size);
      next.size = s.size;
      next.mtime = now;
      next.mode = modeAfterWrite(who, next);
    }
    if (s.uid !== undefined) next.uid = s.uid;
    if (s.gid !== undefined) next.gid = s.gid;
    if (decision.mode !== undefined) next.mode = decision.mode;
    if (s.atime !== undefined) next.atime = s.atime === 'now' ? now : s.atime;
    if (s.mtime !== undefined) next.mtime = s.mtime === 'now' ? now : s.mtime;
    // The EXCLUSIVE create verifier holds only while the file is as created: knfsd keeps it in
    // the times and wants size 0, so a size or time change ends it (a mode change does not).
    if (s.size !== undefined || s.atime !== undefined || s.mtime !== undefined) delete next.verf;
    const changed =
      s.size !== undefined ||
      s.uid !== undefined ||
      s.gid !== undefined ||
      decision.mode !== undefined ||
      s.atime !== undefined ||
      s.mtime !== undefined;
    if (!changed) return a;
    next.ctime = now;
    return this.save(tx, next);
  }

  /** WRITE: new blocks for the data, linked with the size and mtime change in one transaction. */
  async write(
    who: Identity,
    ino: number,
    offset: number,
    data: Uint8Array,
    stable: boolean,
  ): Promise<{ before: Attr; after: Attr }> {
    const a = this.getattr(ino);
    if (a.type === 'dir') throw new FsError('EISDIR', 'write to a directory');
    if (a.type !== 'reg') throw new FsError('EINVAL', 'write to a file that is not regular');
    if (!mayWriteData(who, a)) throw new FsError('EACCES', 'no write permission');
    if (offset + data.length > MAX_FILE_SIZE) throw new FsError('EFBIG', 'write beyond the largest file');
    // Writing nothing changes nothing, wherever it is: not the size, not the times (POSIX
    // write(2); Linux and knfsd return before touching the inode).
    if (data.length === 0) return { before: a, after: a };
    let before: Attr = a;
    let after: Attr = a;
    await this.store.writeFile({
      file: ino,
      offset,
      data,
      stable,
      update: (tx) => {
        before = this.inode(tx, ino);
        const now = this.clock.now();
        // Written to, the file is no longer what an EXCLUSIVE create made: a retry is EXIST.
        const { verf: _createVerifier, ...inode } = before;
        after = this.save(tx, {
          ...inode,
          mode: modeAfterWrite(who, before),
          size: Math.max(before.size, offset + data.length),
          mtime: now,
          ctime: now,
        });
        const sb = tx.get<Superblock>(SB)?.value;
        if (sb) tx.put<Superblock>(SB, { ...sb, lastTime: now });
      },
    });
    return { before, after };
  }

  /** COMMIT: everything written to the file so far is on stable storage when this resolves. */
  async commit(ino: number): Promise<Attr> {
    const a = this.getattr(ino);
    if (a.type === 'reg') await this.store.commitFile(ino);
    return this.getattr(ino);
  }

  /** Makes sure a directory path exists under the root (for exports), creating what is missing. */
  async ensureDir(path: string): Promise<Attr> {
    const root: Identity = { uid: 0, gid: 0, gids: [] };
    let at = this.getattr(ROOT_INO);
    for (const part of path.split('/')) {
      if (part === '') continue;
      const name = Buffer.from(part);
      try {
        at = this.lookup(root, at.ino, name);
      } catch (e) {
        if (!(e instanceof FsError) || e.code !== 'ENOENT') throw e;
        at = (await this.mkdir(root, at.ino, name, { mode: 0o755 })).attr;
      }
      if (at.type !== 'dir') throw new FsError('ENOTDIR', `${path}: ${part} is not a directory`);
    }
    return at;
  }
}
