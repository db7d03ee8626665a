/**
 * The node's durable store, as the layers above see it: versioned records in ordered keys, and
 * file contents made of immutable, checksummed blocks referenced from records. The replicated
 * store of later issues implements this same interface, so nothing above may depend on LMDB or
 * on block files.
 */

/** An ordered key: a tuple of strings, numbers and byte strings, compared element by element. */
export type Key = readonly (string | number | Uint8Array)[];

/** A record and its version; the version grows by one on every put of that key. */
export interface Versioned<T> {
  readonly key: Key;
  readonly version: number;
  readonly value: T;
}

export interface RangeOptions {
  /** Inclusive start; default the first key with the prefix. */
  start?: Key;
  /** Exclusive end; default the end of the prefix. */
  end?: Key;
  limit?: number;
  reverse?: boolean;
}

/**
 * A write transaction. Transactions run one at a time, in the order they were asked for, and
 * see everything committed before them; the callback is synchronous (no awaiting inside).
 */
export interface WriteTx {
  get<T>(key: Key): Versioned<T> | undefined;
  /** Every record whose key starts with `prefix`, in key order. */
  range<T>(prefix: Key, options?: RangeOptions): Iterable<Versioned<T>>;
  /** Stores `value`; returns the new version. With `ifVersion`, throws StoreConflictError unless the current version matches (0: absent). */
  put<T>(key: Key, value: T, options?: { ifVersion?: number }): number;
  /** Removes the record; returns whether it existed. */
  delete(key: Key): boolean;
  /** Sets the length of a file's content within this transaction: bytes past it are gone, and later growth reads zeros. */
  truncate(file: FileId, size: number): void;
  /** Drops a file's content entirely (its blocks are freed once this transaction is durable). */
  dropContent(file: FileId): void;
}

/** Identifies one file's content; the fs layer uses the inode number. */
export type FileId = number;

export interface WriteOptions {
  /** Resolve only once the transaction is on stable storage (fsynced). Default false: once committed, which survives kill -9 of this process but not power loss. */
  durable?: boolean;
}

export interface FileWrite {
  file: FileId;
  offset: number;
  data: Uint8Array;
  /** Data and metadata on stable storage before the promise resolves (NFS FILE_SYNC, DATA_SYNC). Otherwise the data is in the OS and `commitFile` makes it stable (NFS UNSTABLE). */
  stable: boolean;
  /** Runs inside the transaction that links the new blocks, to update attributes (size, mtime) atomically with them. */
  update?: (tx: WriteTx) => void;
}

export interface StoreStats {
  /** Bytes the store's file system has, and has free, for FSSTAT. */
  totalBytes: number;
  freeBytes: number;
  availableBytes: number;
  totalFiles: number;
  freeFiles: number;
}

export interface Store {
  get<T>(key: Key): Versioned<T> | undefined;
  range<T>(prefix: Key, options?: RangeOptions): Iterable<Versioned<T>>;
  /** Runs `fn` in a write transaction; resolves with its result once committed (or durable). A throw aborts it with nothing written. */
  write<T>(fn: (tx: WriteTx) => T, options?: WriteOptions): Promise<T>;
  /** Writes file content as new blocks (never over old ones) and links them in one transaction. Writes to one file are applied in call order. */
  writeFile(w: FileWrite): Promise<void>;
  /** Reads up to `length` bytes at `offset` of the content (holes and bytes past the stored ones read as zeros, up to `size`). Verifies checksums: a bad block throws StoreCorruptError. The bytes may be the store's cached copy of a block: read them, never modify them. With `lend`, they may be memory the store reuses once the release it passes to `lend` is called (never called: the memory is left to the garbage collector); without, they stay valid for good. */
  readFile(
    file: FileId,
    offset: number,
    length: number,
    size: number,
    lend?: (release: () => void) => void,
  ): Promise<Uint8Array>;
  /** Makes every earlier unstable write to `file` stable; resolves once it is. */
  commitFile(file: FileId): Promise<void>;
  /** Resolves once everything committed so far is on stable storage. */
  sync(): Promise<void>;
  /** Changes whenever unstable data may have been lost (each open): NFS's write verifier. */
  readonly bootVerifier: Uint8Array;
  stats(): Promise<StoreStats>;
  close(): Promise<void>;
}
