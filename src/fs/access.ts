/**
 * POSIX permission checks for the namespace, over attributes alone (no I/O), with the
 * semantics Linux gives them: the caller is checked against the owner bits if it owns the file,
 * else the group bits if it is in the file's group, else the other bits; root (uid 0, after
 * squashing) may read and write anything and execute anything with an x bit or that is a
 * directory. Read-only exports are the server's business (NFS3ERR_ROFS), not this module's.
 */
import type { FileType, Identity } from './types.js';
import { S_ISGID, S_ISUID, S_ISVTX } from './types.js';

export type { FileType, Identity } from './types.js';

/** The attributes permission checks need. `mode` holds the permission bits (only 0o7777 matters). */
export interface PermAttrs {
  readonly type: FileType;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
}

/** Access bits, as NFSv3's ACCESS procedure numbers them (RFC 1813). */
export const ACCESS3_READ = 0x1;
export const ACCESS3_LOOKUP = 0x2;
export const ACCESS3_MODIFY = 0x4;
export const ACCESS3_EXTEND = 0x8;
export const ACCESS3_DELETE = 0x10;
export const ACCESS3_EXECUTE = 0x20;
export const ACCESS3_ALL = 0x3f;

export { S_ISGID, S_ISUID, S_ISVTX } from './types.js';

const S_IXGRP = 0o010;
const ANY_X = 0o111;

/** Answers to a refused check, named as RFC 1813's nfsstat3 names them. */
export type DenyStatus = 'NFS3ERR_PERM' | 'NFS3ERR_ACCES';

export function isRoot(caller: Identity): boolean {
  return caller.uid === 0;
}

export function inGroup(caller: Identity, gid: number): boolean {
  return caller.gid === gid || caller.gids.includes(gid);
}

/** The rwx bits (0..7) that apply to `caller` for a file: owner's, else group's, else other's. */
function classBits(caller: Identity, attrs: PermAttrs): number {
  if (caller.uid === attrs.uid) return (attrs.mode >> 6) & 7;
  if (inGroup(caller, attrs.gid)) return (attrs.mode >> 3) & 7;
  return attrs.mode & 7;
}

export function mayRead(caller: Identity, attrs: PermAttrs): boolean {
  return isRoot(caller) || (classBits(caller, attrs) & 4) !== 0;
}

export function mayWrite(caller: Identity, attrs: PermAttrs): boolean {
  return isRoot(caller) || (classBits(caller, attrs) & 2) !== 0;
}

/** Execute for files, search for directories. */
export function mayExecute(caller: Identity, attrs: PermAttrs): boolean {
  if (isRoot(caller)) return attrs.type === 'dir' || (attrs.mode & ANY_X) !== 0;
  return (classBits(caller, attrs) & 1) !== 0;
}

/**
 * READ and WRITE procedures (and SETATTR of the size) let the owner through whatever the mode
 * says, as Linux's nfsd does: a stateless server never saw the open that a local process would
 * have made before chmod, so `cp -p`, tar and install, which create a file 0444 and then write
 * it, would fail otherwise. ACCESS does not get this override: it answers from the mode bits.
 */
export function mayReadData(caller: Identity, attrs: PermAttrs): boolean {
  return caller.uid === attrs.uid || mayRead(caller, attrs);
}

export function mayWriteData(caller: Identity, attrs: PermAttrs): boolean {
  return caller.uid === attrs.uid || mayWrite(caller, attrs);
}

/** Search permission on a directory: needed for LOOKUP and every name operation in it. */
export function mayLookup(caller: Identity, dir: PermAttrs): boolean {
  return dir.type === 'dir' && mayExecute(caller, dir);
}

/** Adding a name to a directory (CREATE, MKDIR, SYMLINK, MKNOD, LINK, RENAME's target): write and search. */
export function mayCreate(caller: Identity, dir: PermAttrs): boolean {
  return dir.type === 'dir' && mayWrite(caller, dir) && mayExecute(caller, dir);
}

/**
 * Removing `victim`'s name from `dir` (REMOVE, RMDIR, RENAME's source, and a RENAME target that
 * is replaced): write and search on the directory and, if the directory is sticky (like /tmp),
 * the caller must own the victim or the directory, or be root.
 */
export function mayDelete(caller: Identity, dir: PermAttrs, victim: PermAttrs): boolean {
  return deleteDenial(caller, dir, victim) === undefined;
}

/**
 * Why `mayDelete` refuses, as Linux answers: NFS3ERR_ACCES without write and search on the
 * directory, NFS3ERR_PERM when only the sticky bit stands in the way. Undefined when allowed.
 */
export function deleteDenial(caller: Identity, dir: PermAttrs, victim: PermAttrs): DenyStatus | undefined {
  if (!mayCreate(caller, dir)) return 'NFS3ERR_ACCES';
  if ((dir.mode & S_ISVTX) === 0) return undefined;
  if (isRoot(caller) || caller.uid === victim.uid || caller.uid === dir.uid) return undefined;
  return 'NFS3ERR_PERM';
}

/**
 * The ACCESS3 bits of `requested` that `caller` has on a file, answered as Linux's nfsd does:
 * for a directory READ is r, LOOKUP is x, MODIFY and EXTEND are w and x, and DELETE is w and x
 * (whether a particular entry may go also depends on the sticky bit, which only REMOVE can
 * know); EXECUTE means nothing for a directory. For anything else READ is r, MODIFY and EXTEND
 * are w, EXECUTE is x, and LOOKUP and DELETE mean nothing. Bits outside ACCESS3_ALL are dropped.
 */
export function access3(caller: Identity, attrs: PermAttrs, requested: number): number {
  const r = mayRead(caller, attrs);
  const w = mayWrite(caller, attrs);
  const x = mayExecute(caller, attrs);
  let granted = 0;
  if (attrs.type === 'dir') {
    if (r) granted |= ACCESS3_READ;
    if (x) granted |= ACCESS3_LOOKUP;
    if (w && x) granted |= ACCESS3_MODIFY | ACCESS3_EXTEND | ACCESS3_DELETE;
  } else {
    if (r) granted |= ACCESS3_READ;
    if (w) granted |= ACCESS3_MODIFY | ACCESS3_EXTEND;
    if (x) granted |= ACCESS3_EXECUTE;
  }
  return granted & requested & ACCESS3_ALL;
}

/** How a SETATTR sets a time: to the server's clock, or to a time the client gives. */
export type TimeChange = 'server' | 'client';

/** The parts of a SETATTR that were asked for; absent means "don't change". */
export interface AttrChange {
  readonly mode?: number;
  readonly uid?: number;
  readonly gid?: number;
  readonly size?: number;
  readonly atime?: TimeChange;
  readonly mtime?: TimeChange;
}

export type SetattrDecision =
  | {
      readonly ok: true;
      /** The mode to store: the requested one with bits the caller may not set removed, and set-id bits a chown clears. Undefined when the mode does not change. */
      readonly mode: number | undefined;
    }
  | { readonly ok: false; readonly status: DenyStatus; readonly reason: string };

/**
 * Whether `caller` may make `change` to a file with `attrs`, and the mode to store, by Linux's
 * rules:
 * - chown (a uid different from the owner's, or any uid from a non-owner): root only (PERM);
 * - chgrp: root, or the owner to a group it is in or the current group (PERM);
 * - chmod: root or the owner (PERM); a non-root caller not in the file's group (the new group if
 *   this call also changes it) loses the setgid bit from the requested mode;
 * - times set to the client's value: root or the owner (PERM); set to the server's time: also
 *   anyone who may write the file (ACCES);
 * - size: write permission, the owner always (see mayWriteData) (ACCES);
 * - naming an owner or group of a non-directory clears its setuid bit, and its setgid bit if
 *   group-executable (even for root) or if a non-root caller is not in the file's group.
 */
export function maySetattr(caller: Identity, attrs: PermAttrs, change: AttrChange): SetattrDecision {
  const root = isRoot(caller);
  const owner = caller.uid === attrs.uid;
  const deny = (status: DenyStatus, reason: string): SetattrDecision => ({ ok: false, status, reason });

  const chown = change.uid !== undefined && (change.uid !== attrs.uid || !owner);
  if (chown && !root) return deny('NFS3ERR_PERM', 'only root may change the owner');

  if (change.gid !== undefined && !root) {
    if (!owner) return deny('NFS3ERR_PERM', 'only the owner or root may change the group');
    if (change.gid !== attrs.gid && !inGroup(caller, change.gid)) {
      return deny('NFS3ERR_PERM', `the owner is not in group ${change.gid}`);
    }
  }

  let mode: number | undefined;
  // A symlink's mode means nothing and never changes (knfsd ignores it too).
  if (change.mode !== undefined && attrs.type !== 'lnk') {
    if (!root && !owner) return deny('NFS3ERR_PERM', 'only the owner or root may change the mode');
    mode = change.mode & 0o7777;
    const group = change.gid ?? attrs.gid;
    if (!root && !inGroup(caller, group)) mode &= ~S_ISGID;
  }

  for (const t of [change.atime, change.mtime]) {
    if (t === undefined || root || owner) continue;
    if (t === 'client')
      return deny('NFS3ERR_PERM', 'only the owner or root may set a time of their choosing');
    if (!mayWrite(caller, attrs)) return deny('NFS3ERR_ACCES', 'setting times to now needs write permission');
  }

  if (change.size !== undefined && !mayWriteData(caller, attrs)) {
    return deny('NFS3ERR_ACCES', 'changing the size needs write permission');
  }

  // As Linux (chown(2), and nfsd's SETATTR): naming an owner or group at all, even the current
  // one, revokes set-id bits of a non-directory.
  if ((change.uid !== undefined || change.gid !== undefined) && attrs.type !== 'dir') {
    if (mode !== undefined) {
      mode &= ~S_ISUID;
      if (mode & S_IXGRP) mode &= ~S_ISGID;
    } else {
      const before = attrs.mode & 0o7777;
      let m = before & ~S_ISUID;
      // Without group-execute, setgid is not a privilege, and stays unless the caller could not set it.
      if (m & S_ISGID && (m & S_IXGRP || (!root && !inGroup(caller, attrs.gid)))) m &= ~S_ISGID;
      if (m !== before) mode = m;
    }
  }
  return { ok: true, mode };
}

/**
 * The mode a regular file keeps after a non-root caller writes to it or changes its size: setuid
 * cleared, and setgid if the file is group-executable (without group-execute, setgid means
 * mandatory locking, not privilege). Root keeps them (Linux's CAP_FSETID).
 */
export function modeAfterWrite(caller: Identity, attrs: PermAttrs): number {
  let m = attrs.mode & 0o7777;
  if (isRoot(caller) || attrs.type !== 'reg') return m;
  m &= ~S_ISUID;
  if (m & S_IXGRP) m &= ~S_ISGID;
  return m;
}

/**
 * Owner, group and mode of a new object that `caller` creates in `dir` with the requested mode.
 * In a setgid directory the new object takes the directory's group, and a new directory also
 * inherits the setgid bit (set-id bits it asks for itself are ignored, as mkdir(2) does);
 * elsewhere it takes the caller's primary group. A new non-directory
 * that asks for setgid and group-execute loses setgid if the caller is not in its group and is
 * not root, as Linux does (otherwise anyone could make setgid programs for a shared group).
 */
export function newObjectOwnership(
  caller: Identity,
  dir: PermAttrs,
  type: FileType,
  requestedMode: number,
): { uid: number; gid: number; mode: number } {
  const sgidDir = (dir.mode & S_ISGID) !== 0;
  const gid = sgidDir ? dir.gid : caller.gid;
  let mode = requestedMode & 0o7777;
  if (type === 'dir') {
    // mkdir(2) ignores set-id bits in the mode it is given: a directory is setgid by inheritance
    // (or a later chmod), never by asking at creation.
    mode &= ~(S_ISUID | S_ISGID);
    if (sgidDir) mode |= S_ISGID;
  } else if (
    (mode & (S_ISGID | S_IXGRP)) === (S_ISGID | S_IXGRP) &&
    !isRoot(caller) &&
    !inGroup(caller, gid)
  ) {
    mode &= ~S_ISGID;
  }
  return { uid: caller.uid, gid, mode };
}
