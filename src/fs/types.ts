/** The namespace's vocabulary: inodes, attributes, callers. Protocol gateways translate to and from it. */

export type FileType = 'reg' | 'dir' | 'lnk' | 'blk' | 'chr' | 'sock' | 'fifo';

/** A timestamp: seconds and nanoseconds since the epoch. */
export interface Time {
  readonly s: number;
  readonly ns: number;
}

/** An inode as stored; its key holds the inode number. */
export interface Inode {
  type: FileType;
  /** Permission bits with setuid, setgid and sticky (07777). */
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  size: number;
  atime: Time;
  mtime: Time;
  ctime: Time;
  /** Set once at creation; handles carry it so a handle never names a later inode. */
  gen: number;
  /** Device numbers of block and character devices. */
  rdev?: readonly [number, number];
  /** Directories: the parent's inode number (the root is its own parent). */
  parent?: number;
  /** Directories: the next READDIR cookie to hand out; cookies are never reused. */
  nextCookie?: number;
  /** Symbolic links: the target, as bytes. */
  target?: Uint8Array;
  /** Files made by an exclusive create: the client's verifier, so a retry is recognised. */
  verf?: Uint8Array;
}

export interface Attr extends Readonly<Inode> {
  readonly ino: number;
}

/** Who is asking, after any squashing: POSIX credentials. */
export interface Identity {
  readonly uid: number;
  readonly gid: number;
  readonly gids: readonly number[];
}

/** Attribute changes: absent fields stay as they are; 'now' is the server's time. */
export interface SetAttrs {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  atime?: Time | 'now';
  mtime?: Time | 'now';
}

/** Attributes of a directory before and after a change to it (NFS's weak cache consistency). */
export interface DirChange {
  readonly before: Attr;
  readonly after: Attr;
}

export interface DirEntry {
  readonly name: Uint8Array;
  readonly ino: number;
  /** Position after this entry: pass it back to continue listing. */
  readonly cookie: number;
}

export type CreateMode =
  | { kind: 'unchecked'; attrs?: SetAttrs }
  | { kind: 'guarded'; attrs?: SetAttrs }
  | { kind: 'exclusive'; verf: Uint8Array };

export const S_ISUID = 0o4000;
export const S_ISGID = 0o2000;
export const S_ISVTX = 0o1000;

/** Longest name in a directory, and longest symbolic link target, in bytes. */
export const NAME_MAX = 255;
export const PATH_MAX = 4096;
/** Largest file size: every offset stays an exact JavaScript number. */
export const MAX_FILE_SIZE = Number.MAX_SAFE_INTEGER;
export const ROOT_INO = 1;
