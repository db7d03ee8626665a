/**
 * The node's durable store: records in one LMDB environment (DIR/meta), file content in
 * immutable, checksummed block files (DIR/blocks/xx/yy/<id>) referenced from chunk records.
 * docs/STORAGE.md describes the layout, the write paths and what a crash leaves at each point.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { type Database, open as openLmdb, type RootDatabase } from 'lmdb';
import { failpoint } from '../failpoints.js';
import { componentLogger, type Logger } from '../log.js';
import { BlockBufferPool, type HeldBlock, LoadedBlock, unpooled } from './block-buffers.js';
import { type BlockFileHandle, type BlockIO, NodeBlockIO } from './block-io.js';
import { blockChecksum, checksumMatches } from './checksum.js';
import {
  isNoSpace,
  StoreClosedError,
  StoreConflictError,
  StoreCorruptError,
  StoreError,
  StoreFullError,
  StoreInvalidError,
} from './errors.js';
import {
  decodeJournal,
  encodeEntry,
  entryOf,
  type JournalEntry,
  JournalFile,
  type RecordOp,
} from './journal.js';
import { decodeKey, encodeKey, prefixEnd } from './keys.js';
import type {
  FileId,
  FileWrite,
  Key,
  RangeOptions,
  Store,
  StoreStats,
  Versioned,
  WriteOptions,
  WriteTx,
} from './types.js';

/** Bytes of file content per chunk (and so the largest block). Fixed when a store is created. */
export const DEFAULT_CHUNK_SIZE = 1 << 20;
/** A chunk whose content is at most this long lives in its record, not in a block file. */
export const DEFAULT_INLINE_MAX = 4096;
/** LMDB's map is address space, not disk: generous by default. */
export const DEFAULT_MAP_SIZE = 256 * 2 ** 30;
/** Largest file size (and offset + length of a write) the store accepts. */
export const MAX_FILE_SIZE = Number.MAX_SAFE_INTEGER;
/** Verified block contents kept in memory (blocks are immutable, so the cache is never stale). */
export const DEFAULT_BLOCK_CACHE_BYTES = 32 << 20;

/** Free space kept for metadata commits: block writes fail with StoreFullError below it. */
export const DEFAULT_HEADROOM_BYTES = 1 << 20;
/** Space written ahead of LMDB's last page at every open (at most a sixteenth of the file system). */
export const METADATA_RESERVE_BYTES = 8 << 20;
/** Journal size past which UNSTABLE writes wait until it is applied and emptied. */
export const DEFAULT_JOURNAL_BYTES = 64 << 20;
/** Journal bytes not yet applied to LMDB (the in-memory overlay) past which UNSTABLE writes wait. */
export const DEFAULT_OVERLAY_BYTES = 8 << 20;
/**
 * Journal size at which it is emptied once applied and flushed in LMDB (at most half the
 * journal's limit). Metadata changes go to the journal too, so it is kept small: on a small disk
 * a journal of tens of MiB would take the space the data needs.
 */
export const JOURNAL_RESET_BYTES = 4 << 20;
/** Journal space preallocated past the reset size: the entries appended while an apply empties it. */
const JOURNAL_SLACK_BYTES = 1 << 20;

const FORMAT_VERSION = 1;
/**
 * The background apply of the journal waits until UNSTABLE writes pause this long, or until this
 * many entries are pending: each LMDB commit costs two device flushes and four thread hand-offs,
 * and a commit after every write of a sequential copy competes with the copy for the disk and
 * the thread pool (COMMIT applies the whole journal anyway).
 */
const APPLY_IDLE_MS = 25;
/** How old the free-space figure may be for the choice of the journaled path. */
const SPACE_CHECK_MS = 500;
const APPLY_BATCH = 128;
/**
 * Chunks a sequential read loads ahead. One was not enough: a block's load (open, read, and the
 * checksum) took longer than a client's turn from one 1 MiB READ to the next on a busy machine,
 * so the READ waited for the end of it.
 */
const READ_AHEAD_CHUNKS = 2;
/** Background syncs of UNSTABLE blocks remembered for COMMIT; past this, the oldest are forgotten. */
const SYNC_BEHIND_MAX = 4096;
/** A block file created ahead for the next UNSTABLE write is removed after this long unused. */
export const DEFAULT_SPARE_IDLE_MS = 1000;
/** Failpoint (src/failpoints.ts): a broken build that acknowledges durable writes before they are. */
const ACK_BEFORE_SYNC = failpoint('store.ack-before-sync');
const EVENT_LOOP_SYNC_MAX_MS = 1;

export interface StoreOptions {
  /** The data directory: DIR/meta holds LMDB, DIR/blocks the block files. Created if missing. */
  dir: string;
  /** LMDB map size in bytes (virtual address space; the file grows only as needed). */
  mapSize?: number;
  /** Chunk size for a new store; an existing store keeps the one it was created with. */
  chunkSize?: number;
  /** Largest chunk content kept inline in its record, for a new store. */
  inlineMax?: number;
  blockCacheBytes?: number;
  /** Free space that block writes leave for LMDB, so deletes can still commit on a full disk. */
  headroomBytes?: number;
  /**
   * Space written ahead of LMDB's last page at open (reserveMetadataSpace); default
   * METADATA_RESERVE_BYTES, at most a sixteenth of the file system.
   */
  metadataReserveBytes?: number;
  /** The block file I/O layer (the seam for the power-loss crash mode). */
  io?: BlockIO;
  /** Journal size at which UNSTABLE writes wait for it to be applied and emptied. */
  journalBytes?: number;
  /** Unapplied journal bytes (held in memory as the overlay) at which UNSTABLE writes wait for the apply. */
  overlayBytes?: number;
  /**
   * Durable writes (metadata, FILE_SYNC) go to the journal and wait for its fdatasync, one device
   * flush shared by every write in flight, instead of an LMDB commit and its two flushes. Default
   * true; false keeps them on the LMDB path (for comparison and for tests of that path).
   */
  durableJournal?: boolean;
  /**
   * A journal sync that took longer (ms) sends the next one to the thread pool even when a lone
   * write waits for it (see `syncOnEventLoop`); default EVENT_LOOP_SYNC_MAX_MS, 0 for never.
   */
  eventLoopSyncMaxMs?: number;
  /** How long a block file created ahead of a sequential UNSTABLE copy's next write is kept unused. */
  spareIdleMs?: number;
  /**
   * Open LMDB at its last flushed transaction even when the machine did not reboot (lmdb-js's
   * safeRestore): what a power loss leaves, for the crash mode of later issues.
   */
  safeRestore?: boolean;
  logger?: Logger;
}

/** A chunk's record. Either a block (`b`, `n`, `h`) or inline bytes (`i`); `s` is the valid length. */
interface ChunkRec {
  /** Block id. */
  b?: string;
  /** The block file's length. */
  n?: number;
  /** The block file's checksum (src/store/checksum.ts: CRC-32, or a legacy truncated SHA-256). */
  h?: Uint8Array;
  /** Inline content (exactly `s` bytes). */
  i?: Uint8Array;
  /** Valid length: bytes at and past it read as zeros (a truncate needs no I/O). */
  s: number;
}

/** A chunk whose current block was written UNSTABLE; `keep` is the last stable record it replaced. */
interface DirtyRec {
  keep: ChunkRec | null;
}

interface FormatRec {
  version: number;
  chunkSize: number;
  inlineMax: number;
}

/** The chunk record changed between planning a write and linking it: plan again. */
class ChunkChanged extends Error {}
/** A block file was not there; the caller re-reads the record (it may have been replaced). */
class BlockMissing extends Error {}

function noop(): void {}

/** Runs a write callback in `tx`, which ends with it; the callback must not return a promise. */
function runTx<T>(fn: (tx: WriteTx) => T, tx: Tx | JournalTx): T {
  try {
    const r = fn(tx);
    if (r && typeof (r as { then?: unknown }).then === 'function') {
      throw new StoreInvalidError('a write transaction callback must be synchronous');
    }
    return r;
  } finally {
    tx.active = false;
  }
}

function sameRec(a: ChunkRec | undefined, b: ChunkRec | undefined): boolean {
  if (!a || !b) return a === b;
  if (a.s !== b.s || a.b !== b.b || a.n !== b.n) return false;
  if (a.i || b.i) return !!a.i && !!b.i && Buffer.compare(a.i, b.i) === 0;
  return true;
}

function chunkKey(file: FileId, chunk: number): Buffer {
  return encodeKey([file, chunk]);
}

function checkFileId(file: FileId): void {
  if (!Number.isSafeInteger(file) || file < 0) throw new StoreInvalidError(`bad file id ${file}`);
}

function checkRange(what: string, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new StoreInvalidError(`${what}: bad offset ${offset} or length ${length}`);
  }
  if (offset + length > MAX_FILE_SIZE) throw new StoreInvalidError(`${what}: past the largest file size`);
}

/** Verified blocks by id, least recently used first; a block leaving it may go back to the pool. */
class BlockCache {
  private readonly map = new Map<string, LoadedBlock>();
  private bytes = 0;
  constructor(private readonly limit: number) {}
  has(id: string): boolean {
    return this.map.has(id);
  }
  get(id: string): LoadedBlock | undefined {
    const v = this.map.get(id);
    if (v) {
      this.map.delete(id);
      this.map.set(id, v);
    }
    return v;
  }
  set(id: string, block: LoadedBlock): void {
    if (block.data.length > this.limit || this.map.has(id)) return;
    this.map.set(id, block);
    block.setCached(true);
    this.bytes += block.data.length;
    for (const [k, v] of this.map) {
      if (this.bytes <= this.limit) break;
      this.drop(k, v);
    }
  }
  delete(id: string): void {
    const v = this.map.get(id);
    if (v) this.drop(id, v);
  }
  private drop(id: string, block: LoadedBlock): void {
    this.map.delete(id);
    this.bytes -= block.data.length;
    block.setCached(false);
  }
}

/** A record changed by a journaled write and not yet in LMDB (`deleted`: removed). */
interface OvRecord {
  seq: number;
  key: Buffer;
  version: number;
  value: unknown;
  deleted: boolean;
}

interface OvEntry<T> {
  seq: number;
  key: Buffer;
  value: T | null;
}

/** A journal entry not yet committed in LMDB. */
interface Pending {
  entry: JournalEntry<ChunkRec, DirtyRec>;
  bytes: number;
}

/** Map key of an encoded key: latin1 maps bytes to characters one to one. */
const mk = (key: Buffer): string => key.toString('latin1');

interface ChunkPlan {
  chunk: number;
  key: Buffer;
  old: ChunkRec | undefined;
  rec: ChunkRec;
}

/** A block file just created, empty, open for writing. */
interface NewBlock {
  id: string;
  file: BlockFileHandle;
}

/** The background fdatasync of an UNSTABLE block: under way or done, and its error if it failed. */
interface SyncBehind {
  done: Promise<void>;
  error?: unknown;
}

export async function openStore(options: StoreOptions): Promise<Store> {
  const store = new LmdbStore(options);
  try {
    await store.init();
  } catch (e) {
    await store.abandon();
    throw e;
  }
  return store;
}

export class LmdbStore implements Store {
  readonly bootVerifier: Uint8Array = randomBytes(8);
  readonly dir: string;
  readonly blocksDir: string;
  private readonly io: BlockIO;
  private readonly log: Logger;
  private readonly env: RootDatabase;
  private readonly records: Database<unknown, Buffer>;
  private readonly chunks: Database<ChunkRec, Buffer>;
  private readonly dirty: Database<DirtyRec, Buffer>;
  private readonly free: Database<number, string>;
  private readonly meta: Database<unknown, string>;
  private chunkSize = DEFAULT_CHUNK_SIZE;
  private inlineMax = DEFAULT_INLINE_MAX;
  private epoch = 0;
  private seq = 0;
  private closed = false;
  private closing: Promise<void> | undefined;
  private readonly cache: BlockCache;
  /** Memory for block loads (sized once the chunk size is known). */
  private buffers: BlockBufferPool | undefined;
  /**
   * Block reads under way, by id: a read-ahead and the READ that wants the same block share one.
   * `waiters` counts the readers, each of which gets a hold on the block when it is loaded.
   */
  private readonly loading = new Map<string, { waiters: number; block: Promise<LoadedBlock> }>();
  /** Where the last read of each recently read file ended, to recognise sequential reads. */
  private readonly lastReadEnd = new Map<FileId, number>();
  private readonly dirs = new Map<string, Promise<void>>();
  /** The first directory the constructor created on the way to DIR/meta, if any. */
  private readonly createdFrom: string | undefined;
  private readonly fileQueues = new Map<FileId, Promise<unknown>>();
  private readonly inflight = new Set<Promise<unknown>>();
  private toFree: string[] = [];
  private readonly headroom: number;
  private space: { at: number; avail: number } | undefined;
  private spaceRefresh: Promise<void> | undefined;
  /** Free space below which durable writes take the LMDB path (journalTakesDurable). */
  private readonly journalMinFree: number;
  private reaping: Promise<void> | undefined;
  private readonly journal: JournalFile;
  private readonly journalLimit: number;
  private readonly overlayLimit: number;
  /** Sequence number of the next journal entry. */
  private nextSeq = 1;
  /** Journal entries appended and not yet committed in LMDB, in sequence order. */
  private pending: Pending[] = [];
  private pendingBytes = 0;
  /** The overlay: the latest state, from `pending`, of every key it touched, in front of LMDB. */
  private readonly ovRecords = new Map<string, OvRecord>();
  private readonly ovChunks = new Map<string, OvEntry<ChunkRec>>();
  private readonly ovDirty = new Map<string, OvEntry<DirtyRec> & { file: FileId }>();
  /**
   * Transactions that may change what a journaled write reads (records, chunks) and have run
   * in LMDB but are not committed yet: while there are any, the overlay plus LMDB's committed
   * state is not the latest state, and UNSTABLE writes take the LMDB path instead.
   */
  private unsafeOpen = 0;
  private applying: Promise<void> | undefined;
  private applyScheduled = false;
  private applyError: unknown;
  /** Background applies that failed, so a waiting writer can tell that the one it waited for did. */
  private applyFailures = 0;
  /** Starts the background apply once UNSTABLE writes pause (re-armed by every append). */
  private applyTimer: NodeJS.Timeout | undefined;
  /**
   * An empty block file created for the next block write while UNSTABLE writes stream in, so
   * that the write's open (a thread-pool round trip and a directory update, up to milliseconds
   * on a busy disk) is off its path. Unused, it is removed after `spareIdleMs` or at close; after
   * a crash it is an orphan of an earlier epoch, which the sweep removes.
   */
  private spare: Promise<NewBlock | undefined> | undefined;
  /**
   * UNSTABLE blocks being (or already) fdatasynced in the background, by id: each starts once
   * its write's reply has left, so that COMMIT, which must make them all durable, mostly finds
   * the work done (one fdatasync per block file, each a journal commit of the file system, is
   * most of what a COMMIT of a large file costs). Forgotten blocks are synced by COMMIT itself.
   */
  private readonly behind = new Map<string, SyncBehind>();
  private spareTimer: NodeJS.Timeout | undefined;
  private readonly spareIdleMs: number;
  /**
   * Inside one of this store's transaction callbacks, where LMDB already holds the overlay (and
   * the transaction's own changes over it): reads go to LMDB alone.
   */
  private inTxn = false;
  /** Woken whenever the overlay shrinks, the journal is emptied, or an apply fails. */
  private roomWaiters: (() => void)[] = [];
  /** Journal size at which the apply empties it (and durable writes take the LMDB path until then). */
  private readonly journalResetBytes: number;
  /** Every journal entry up to this one is on stable storage (fdatasynced, or flushed in LMDB). */
  private syncedSeq = 0;
  /** The journal's fdatasync under way (group commit: it covers every entry appended before it began). */
  private journalSyncing: Promise<void> | undefined;
  /** Durable writes waiting for the journal to be synced up to their entry. */
  private syncWaiters: { seq: number; resolve: () => void; reject: (e: unknown) => void }[] = [];
  /**
   * An fdatasync of the journal failed: what the page cache held may never reach the disk, and a
   * later fdatasync of the same file may report success all the same. From then on durability
   * comes from LMDB alone (which rewrites the overlay's changes from memory).
   */
  private journalSyncFailed = false;
  /** How long the last journal sync took, in milliseconds (see `syncOnEventLoop`). */
  private lastSyncMs = 0;
  /** Operations begun through `track` and not yet settled, counted from before they start. */
  private active = 0;

  constructor(private readonly options: StoreOptions) {
    this.dir = options.dir;
    this.blocksDir = join(options.dir, 'blocks');
    this.io = options.io ?? new NodeBlockIO();
    this.log = options.logger ?? componentLogger('store');
    this.cache = new BlockCache(options.blockCacheBytes ?? DEFAULT_BLOCK_CACHE_BYTES);
    this.headroom = options.headroomBytes ?? DEFAULT_HEADROOM_BYTES;
    this.journalLimit = options.journalBytes ?? DEFAULT_JOURNAL_BYTES;
    this.overlayLimit = options.overlayBytes ?? DEFAULT_OVERLAY_BYTES;
    this.journalResetBytes = Math.min(JOURNAL_RESET_BYTES, this.journalLimit / 2);
    this.journalMinFree = 2 * (this.overlayLimit + this.journalResetBytes + this.headroom);
    this.spareIdleMs = options.spareIdleMs ?? DEFAULT_SPARE_IDLE_MS;
    this.createdFrom = mkdirSync(join(options.dir, 'meta'), { recursive: true });
    mkdirSync(this.blocksDir, { recursive: true });
    this.journal = new JournalFile(join(options.dir, 'meta', 'journal'));
    this.env = openLmdb({
      path: join(options.dir, 'meta', 'data.mdb'),
      mapSize: options.mapSize ?? DEFAULT_MAP_SIZE,
      maxDbs: 8,
      // Explicit, so no default change in lmdb-js can weaken what sync() and durable mean here.
      noSync: false,
      noMetaSync: false,
      overlappingSync: true,
      // lmdb-js's event-turn batches each start with a write whose promise nothing holds; when
      // their commit fails (a full disk) it rejects unhandled and kills the node. Transactions
      // queued while one is pending still share its commit.
      eventTurnBatching: false,
      // Not in lmdb-js's typings, but read by its open().
      ...({ safeRestore: options.safeRestore ?? false } as object),
    });
    this.records = this.env.openDB<unknown, Buffer>('records', { useVersions: true, keyEncoding: 'binary' });
    this.chunks = this.env.openDB<ChunkRec, Buffer>('chunks', { keyEncoding: 'binary' });
    this.dirty = this.env.openDB<DirtyRec, Buffer>('dirty', { keyEncoding: 'binary' });
    this.free = this.env.openDB<number, string>('free', {});
    this.meta = this.env.openDB<unknown, string>('meta', {});
  }

  /** Opening: format, a new epoch, recovery of unstable chunks, freeing, and the orphan sweep after a crash. */
  async init(): Promise<void> {
    const format = this.meta.get('format') as FormatRec | undefined;
    if (format) {
      if (format.version !== FORMAT_VERSION) {
        throw new StoreError(
          'STORE_FORMAT',
          `store format ${format.version}, this build reads ${FORMAT_VERSION}`,
        );
      }
      this.chunkSize = format.chunkSize;
      this.inlineMax = format.inlineMax;
    } else {
      this.chunkSize = this.options.chunkSize ?? DEFAULT_CHUNK_SIZE;
      this.inlineMax = Math.min(this.options.inlineMax ?? DEFAULT_INLINE_MAX, this.chunkSize);
      if (!Number.isSafeInteger(this.chunkSize) || this.chunkSize < 512) {
        throw new StoreInvalidError(`chunk size ${this.chunkSize}`);
      }
    }
    // Free buffers kept: as many as the cache holds blocks, and a few for loads under way.
    const cacheBytes = this.options.blockCacheBytes ?? DEFAULT_BLOCK_CACHE_BYTES;
    this.buffers = new BlockBufferPool(this.chunkSize + 1, Math.ceil(cacheBytes / this.chunkSize) + 8);
    const wasClean = (this.meta.get('clean') as boolean | undefined) ?? true;
    this.epoch = ((this.meta.get('epoch') as number | undefined) ?? 0) + 1;
    // The epoch is durable before any block of it is written, so block ids never repeat.
    await this.reserveMetadataSpace();
    await this.txn(() => {
      if (!format) {
        this.meta.putSync('format', {
          version: FORMAT_VERSION,
          chunkSize: this.chunkSize,
          inlineMax: this.inlineMax,
        } satisfies FormatRec);
      }
      this.meta.putSync('epoch', this.epoch);
      this.meta.putSync('clean', false);
    });
    await this.env.flushed;
    await this.syncOwnNames();
    const fsys = await statfs(this.dir);
    this.space = { at: Date.now(), avail: fsys.bavail * fsys.bsize };
    await this.replayJournal(fsys.blocks * fsys.bsize);
    await this.recoverDirty();
    if (!wasClean) await this.sweepOrphans();
    const pending: string[] = [];
    for (const { key } of this.free.getRange({})) pending.push(String(key));
    if (pending.length > 0) this.reap(pending);
  }

  /**
   * Makes the store's own names durable — meta/, blocks/, data.mdb and the journal, and the
   * directories this open created on the way to them — before anything is acknowledged. Without
   * it a power loss could take the whole store, however much it had acknowledged: nothing else
   * fsyncs those directories.
   */
  /**
   * LMDB grows its file with pwrite, and when that fails (a disk another process filled) the
   * error path of lmdb-js 3.5.6 formats its message into a 100-byte heap buffer that is too small
   * (mdb.c, "Attempting to write page ...") and the process aborts. So at every open, before any
   * write transaction can be writing pages, the store writes zeros past LMDB's last page: LMDB's
   * next growth overwrites space that is already allocated. On a full disk this fails; it is
   * logged, and the node runs with whatever it got.
   */
  private async reserveMetadataSpace(): Promise<void> {
    const fsys = await statfs(this.dir);
    const reserve =
      this.options.metadataReserveBytes ??
      Math.min(METADATA_RESERVE_BYTES, Math.floor((fsys.blocks * fsys.bsize) / 16));
    const { lastPageNumber, pageSize } = this.env.getStats() as { lastPageNumber: number; pageSize: number };
    const want = (lastPageNumber + 1) * pageSize + reserve;
    const fd = openSync(join(this.dir, 'meta', 'data.mdb'), 'r+');
    try {
      const zeros = Buffer.alloc(Math.min(1 << 20, reserve));
      for (let at = fstatSync(fd).size; at < want; ) {
        at += writeSync(fd, zeros, 0, Math.min(zeros.length, want - at), at);
      }
    } catch (e) {
      this.log.warn({ err: e }, 'cannot reserve space for metadata growth');
    } finally {
      closeSync(fd);
    }
  }

  private async syncOwnNames(): Promise<void> {
    const dir = resolve(this.dir);
    const dirs = [join(dir, 'meta'), dir];
    const first = this.createdFrom === undefined ? undefined : resolve(this.createdFrom);
    if (first !== undefined && (dir === first || dir.startsWith(`${first}/`))) {
      for (let d = dirname(dir); ; d = dirname(d)) {
        dirs.push(d);
        if (d === dirname(first)) break;
      }
    }
    for (const d of dirs) await this.io.syncDir(d);
  }

  /** Closes LMDB after a failed init. */
  async abandon(): Promise<void> {
    this.closed = true;
    this.journal.close();
    try {
      await this.env.close();
    } catch {}
  }

  // ---- records

  get<T>(key: Key): Versioned<T> | undefined {
    this.checkOpen();
    return this.getEntry<T>(key);
  }

  range<T>(prefix: Key, options?: RangeOptions): Iterable<Versioned<T>> {
    this.checkOpen();
    return this.rangeOf<T>(prefix, options);
  }

  /** A record as LMDB's committed state plus the overlay have it (outside transactions). */
  private getEntry<T>(key: Key): Versioned<T> | undefined {
    const k = encodeKey(key);
    if (this.ovRecords.size > 0 && !this.inTxn) {
      const o = this.ovRecords.get(mk(k));
      if (o) return o.deleted ? undefined : { key: [...key], version: o.version, value: o.value as T };
    }
    return this.lmdbEntry<T>(key, k);
  }

  private lmdbEntry<T>(key: Key, k: Buffer): Versioned<T> | undefined {
    const e = this.records.getEntry(k);
    if (!e) return undefined;
    return { key: [...key], version: e.version ?? 0, value: e.value as T };
  }

  /** Overlay records in [lo, hi), `local` ones over the store's, in the range's order. */
  private overlayIn(lo: Buffer, hi: Buffer, reverse: boolean, local?: Map<string, OvRecord>): OvRecord[] {
    const found = new Map<string, OvRecord>();
    for (const src of local ? [this.ovRecords, local] : [this.ovRecords]) {
      for (const [s, o] of src) {
        if (Buffer.compare(o.key, lo) >= 0 && Buffer.compare(o.key, hi) < 0) found.set(s, o);
      }
    }
    const out = [...found.values()].sort((a, b) => Buffer.compare(a.key, b.key));
    return reverse ? out.reverse() : out;
  }

  /**
   * Records with the prefix, in key order. `overlay`: merge the overlay (and `local`, a
   * journaled write's own changes) over LMDB's committed state; inside a transaction LMDB
   * already holds the overlay.
   */
  private *rangeOf<T>(
    prefix: Key,
    options: RangeOptions = {},
    overlay = true,
    local?: Map<string, OvRecord>,
  ): Generator<Versioned<T>> {
    const p = encodeKey(prefix);
    const pEnd = prefixEnd(p);
    let lo = p;
    let hi = pEnd;
    if (options.start) {
      const s = encodeKey(options.start);
      if (Buffer.compare(s, lo) > 0) lo = s;
    }
    if (options.end) {
      const e = encodeKey(options.end);
      if (Buffer.compare(e, hi) < 0) hi = e;
    }
    const limit = options.limit ?? Number.POSITIVE_INFINITY;
    if (limit <= 0 || Buffer.compare(lo, hi) >= 0) return;
    let n = 0;
    const reverse = options.reverse ?? false;
    const extra =
      overlay && !this.inTxn && (this.ovRecords.size > 0 || (local && local.size > 0))
        ? this.overlayIn(lo, hi, reverse, local)
        : [];
    let i = 0;
    // Whether overlay key `a` comes before LMDB key `b` in this range's direction.
    const before = (a: Buffer, b: Buffer) => (reverse ? Buffer.compare(a, b) > 0 : Buffer.compare(a, b) < 0);
    // Reverse: walk down from `hi` and stop below `lo`, so both ends keep the same meaning
    // (start inclusive, end exclusive) whatever lmdb-js does with its own bounds in reverse.
    const it = reverse
      ? this.records.getRange({ start: hi, reverse: true, versions: true })
      : this.records.getRange({ start: lo, end: hi, versions: true });
    for (const { key, value, version } of it) {
      const k = key as Buffer;
      if (reverse) {
        if (Buffer.compare(k, hi) >= 0) continue;
        if (Buffer.compare(k, lo) < 0) break;
      }
      for (; i < extra.length && before(extra[i].key, k); i++) {
        const o = extra[i];
        if (o.deleted) continue;
        yield { key: decodeKey(o.key), version: o.version, value: o.value as T };
        if (++n >= limit) return;
      }
      if (i < extra.length && extra[i].key.equals(k)) {
        const o = extra[i++];
        if (o.deleted) continue;
        yield { key: decodeKey(o.key), version: o.version, value: o.value as T };
      } else {
        yield { key: decodeKey(k), version: version ?? 0, value: value as T };
      }
      if (++n >= limit) return;
    }
    for (; i < extra.length; i++) {
      const o = extra[i];
      if (o.deleted) continue;
      yield { key: decodeKey(o.key), version: o.version, value: o.value as T };
      if (++n >= limit) return;
    }
  }

  write<T>(fn: (tx: WriteTx) => T, options: WriteOptions = {}): Promise<T> {
    return this.track(async () => {
      const journaled = this.writeJournaled(fn);
      if (journaled) {
        if (options.durable && !ACK_BEFORE_SYNC) await this.journalDurable(journaled.seq);
        return journaled.result;
      }
      const freed: string[] = [];
      const result = await this.txn(() => {
        return runTx(fn, new Tx(this, freed));
      }, options.durable);
      this.reap(freed);
      return result;
    });
  }

  async sync(): Promise<void> {
    this.checkOpen();
    await this.track(async () => {
      await this.journalDurable(this.nextSeq - 1);
      await this.env.flushed;
    });
  }

  /**
   * The journaled path of `write`: runs `fn` at once over the latest state (the overlay over
   * LMDB's committed state), appends what it changed to the journal, and puts that in the
   * overlay, where every later read and write sees it. Returns undefined when the write must
   * take the LMDB path instead: a transaction that may change what it reads is running in LMDB,
   * the journal is due to be emptied or the overlay is full, the journal cannot be synced, or
   * appending failed (a full disk: LMDB keeps room for deletes). A write that changed nothing
   * still waits for the entries it read to be durable: its answer may rest on them.
   */
  private writeJournaled<T>(fn: (tx: WriteTx) => T): { result: T; seq: number } | undefined {
    if (!this.journalTakesDurable()) return undefined;
    const tx = new JournalTx(this);
    const result = runTx(fn, tx);
    if (tx.empty()) return { result, seq: this.nextSeq - 1 };
    try {
      return { result, seq: this.appendEntry(tx) };
    } catch (e) {
      this.log.debug({ err: e }, 'journal append failed; the write takes the LMDB path');
      return undefined;
    }
  }

  /** Appends a journaled write's changes and puts them in the overlay; returns its sequence number. */
  private appendEntry(tx: JournalTx): number {
    const seq = this.nextSeq;
    const ops = { r: tx.ops, c: tx.c, d: tx.d, f: tx.f, e: this.epoch };
    const frame = encodeEntry(seq, ops);
    this.journal.append(frame);
    this.nextSeq++;
    // The overlay holds its own copy of the values, as a replay would read them.
    this.addPending(entryOf<ChunkRec, DirtyRec>(seq, ops), frame.length);
    this.scheduleApply();
    return seq;
  }

  /** Resolves once journal entry `seq` (and every one before it) is on stable storage. */
  private journalDurable(seq: number): Promise<void> {
    if (seq <= this.syncedSeq) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.syncWaiters.push({ seq, resolve, reject });
      this.syncJournal();
    });
  }

  /**
   * Group commit: one fdatasync at a time, covering every entry appended before it began; the
   * writes that arrive meanwhile share the next one. After a failed sync, a flushed LMDB
   * transaction (which applies every pending entry) does the same job.
   */
  private syncJournal(): void {
    if (this.journalSyncing || this.syncWaiters.length === 0) return;
    const upto = this.nextSeq - 1;
    const began = performance.now();
    const synced = () => {
      this.lastSyncMs = performance.now() - began;
      this.settleSyncWaiters(upto);
    };
    if (this.syncOnEventLoop()) {
      try {
        this.journal.syncNow();
      } catch (e) {
        this.journalSyncFailure(upto, e);
        return;
      }
      synced();
      return;
    }
    const syncing = this.journalSyncFailed ? this.txn(noop, true, true) : this.journal.sync();
    this.journalSyncing = syncing
      .then(synced, (e) => this.journalSyncFailure(upto, e))
      .finally(() => {
        this.journalSyncing = undefined;
        this.syncJournal();
      });
  }

  /**
   * Whether the journal's fdatasync runs on the event loop rather than in the thread pool: when
   * the one operation under way in the store is the one write waiting for it, and the last sync
   * was quick. Handing the call to a pool thread and back costs two thread wake-ups, which on an
   * idle (virtual) machine are as slow as the flush itself, and with nothing else to do the event
   * loop has nothing to gain from staying free. With more operations under way, the pool lets
   * them run and join the next group commit while the flush goes on; after a slow flush (a busy
   * or slow disk) the pool keeps the event loop from stalling for as long again.
   */
  private syncOnEventLoop(): boolean {
    return (
      !this.journalSyncFailed &&
      this.active === 1 &&
      this.syncWaiters.length === 1 &&
      this.lastSyncMs < (this.options.eventLoopSyncMaxMs ?? EVENT_LOOP_SYNC_MAX_MS)
    );
  }

  private journalSyncFailure(upto: number, e: unknown): void {
    if (!this.journalSyncFailed) {
      this.journalSyncFailed = true;
      this.log.error(
        { err: e },
        'fdatasync of the journal failed; durable writes go through LMDB from now on',
      );
    }
    this.settleSyncWaiters(upto, new StoreError('STORE_IO', 'syncing the journal failed', { cause: e }));
  }

  private settleSyncWaiters(upto: number, error?: unknown): void {
    if (error === undefined) this.syncedSeq = Math.max(this.syncedSeq, upto);
    const waiting: typeof this.syncWaiters = [];
    for (const w of this.syncWaiters) {
      if (w.seq > upto) waiting.push(w);
      else if (error === undefined) w.resolve();
      else w.reject(error);
    }
    this.syncWaiters = waiting;
  }

  // ---- the parts of WriteTx that touch internal tables

  /** @internal */
  txGet<T>(key: Key): Versioned<T> | undefined {
    return this.lmdbEntry<T>(key, encodeKey(key));
  }

  /** @internal */
  txRange<T>(prefix: Key, options?: RangeOptions): Iterable<Versioned<T>> {
    return this.rangeOf<T>(prefix, options, false);
  }

  /** @internal A journaled write's view: its own changes, then the overlay, then LMDB. */
  jGet<T>(key: Key, local: Map<string, OvRecord>): Versioned<T> | undefined {
    const k = encodeKey(key);
    const o = local.get(mk(k));
    if (o) return o.deleted ? undefined : { key: [...key], version: o.version, value: o.value as T };
    return this.getEntry<T>(key);
  }

  /** @internal */
  jRange<T>(prefix: Key, options: RangeOptions | undefined, local: Map<string, OvRecord>): Versioned<T>[] {
    return [...this.rangeOf<T>(prefix, options, true, local)];
  }

  /** @internal */
  txPut<T>(key: Key, value: T, ifVersion: number | undefined): number {
    const k = encodeKey(key);
    const cur = this.records.getEntry(k);
    const version = cur ? (cur.version ?? 0) : 0;
    if (ifVersion !== undefined && ifVersion !== version) {
      throw new StoreConflictError(
        `version of ${JSON.stringify(key)} is ${version}, expected ${ifVersion}`,
        ifVersion,
        version,
      );
    }
    if (value === undefined) throw new StoreInvalidError('undefined cannot be stored; delete the key');
    this.records.putSync(k, value, version + 1);
    return version + 1;
  }

  /** @internal */
  txDelete(key: Key): boolean {
    return this.records.removeSync(encodeKey(key));
  }

  /** @internal */
  txTruncate(file: FileId, size: number, freed: string[]): void {
    checkFileId(file);
    checkRange('truncate', size, 0);
    const C = this.chunkSize;
    const keepChunks = Math.ceil(size / C);
    const prefix = encodeKey([file]);
    const doomed: Buffer[] = [];
    for (const { key } of this.chunks.getRange({
      start: chunkKey(file, keepChunks),
      end: prefixEnd(prefix),
    })) {
      doomed.push(Buffer.from(key as Buffer));
    }
    for (const { key } of this.dirty.getRange({
      start: chunkKey(file, keepChunks),
      end: prefixEnd(prefix),
    })) {
      const k = Buffer.from(key as Buffer);
      if (!doomed.some((d) => d.equals(k))) doomed.push(k);
    }
    for (const k of doomed) {
      const rec = this.chunks.get(k);
      const d = this.dirty.get(k);
      if (rec?.b) freed.push(rec.b);
      if (d?.keep?.b && d.keep.b !== rec?.b) freed.push(d.keep.b);
      this.chunks.removeSync(k);
      this.dirty.removeSync(k);
    }
    const within = size % C;
    if (within === 0) return;
    const k = chunkKey(file, keepChunks - 1);
    const rec = this.chunks.get(k);
    if (rec && rec.s > within) this.chunks.putSync(k, shorten(rec, within));
    const d = this.dirty.get(k);
    // The kept stable copy is cut too, so a recovery that falls back to it cannot bring back
    // bytes this truncate removed.
    if (d?.keep && d.keep.s > within) this.dirty.putSync(k, { keep: shorten(d.keep, within) });
  }

  /** @internal txTruncate on the journaled path: the same changes, over the transaction's view. */
  jTruncate(file: FileId, size: number, tx: JournalTx): void {
    checkFileId(file);
    checkRange('truncate', size, 0);
    const C = this.chunkSize;
    const keepChunks = Math.ceil(size / C);
    const lo = chunkKey(file, keepChunks);
    const hi = prefixEnd(encodeKey([file]));
    const doomed = new Map<string, Buffer>();
    for (const db of [this.chunks, this.dirty]) {
      for (const { key } of (db as Database<unknown, Buffer>).getRange({ start: lo, end: hi })) {
        const k = Buffer.from(key as Buffer);
        doomed.set(mk(k), k);
      }
    }
    for (const view of [this.ovChunks, this.ovDirty, tx.localChunks, tx.localDirty]) {
      for (const [s, o] of view as Map<string, OvEntry<unknown>>) {
        if (Buffer.compare(o.key, lo) >= 0 && Buffer.compare(o.key, hi) < 0) doomed.set(s, o.key);
      }
    }
    for (const k of doomed.values()) {
      const rec = tx.viewChunk(k);
      const d = tx.viewDirty(k);
      if (rec?.b) tx.f.push(rec.b);
      if (d?.keep?.b && d.keep.b !== rec?.b) tx.f.push(d.keep.b);
      if (rec) tx.setChunk(k, null);
      if (d) tx.setDirty(k, null);
    }
    const within = size % C;
    if (within === 0) return;
    const k = chunkKey(file, keepChunks - 1);
    const rec = tx.viewChunk(k);
    if (rec && rec.s > within) tx.setChunk(k, shorten(rec, within));
    const d = tx.viewDirty(k);
    // As in txTruncate: the kept stable copy is cut too.
    if (d?.keep && d.keep.s > within) tx.setDirty(k, { keep: shorten(d.keep, within) });
  }

  private freeInTxn(ids: readonly string[]): void {
    for (const id of ids) this.free.putSync(id, 1);
  }

  /** @internal Records in the free table the blocks pushed onto `freed` from index `from` on. */
  txFreeSince(freed: readonly string[], from: number): void {
    this.freeInTxn(freed.slice(from));
  }

  // ---- file content

  writeFile(w: FileWrite): Promise<void> {
    this.checkOpen();
    checkFileId(w.file);
    checkRange('writeFile', w.offset, w.data.length);
    return this.track(() => this.onFileQueue(w.file, () => this.doWriteFile(w)));
  }

  private async doWriteFile(w: FileWrite): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      if (!w.stable) await this.journalRoom();
      const plans = await this.planChunks(w);
      const written = plans.filter((p) => p.rec.b !== undefined).map((p) => p.rec.b as string);
      const freed: string[] = [];
      try {
        const seq = this.linkJournaled(w, plans);
        if (seq === undefined) await this.txn(() => this.linkChunks(w, plans, freed), w.stable);
        else if (w.stable && !ACK_BEFORE_SYNC) await this.journalDurable(seq);
      } catch (e) {
        await this.discard(written);
        if (e instanceof ChunkChanged && attempt < 8) {
          this.env.resetReadTxn();
          continue;
        }
        throw e;
      }
      this.reap(freed);
      return;
    }
  }

  /** Reads what each touched chunk holds, merges the new bytes in, and writes the new blocks. */
  private async planChunks(w: FileWrite): Promise<ChunkPlan[]> {
    const C = this.chunkSize;
    const end = w.offset + w.data.length;
    const plans: ChunkPlan[] = [];
    if (w.data.length === 0) return plans;
    for (let ci = Math.floor(w.offset / C); ci * C < end; ci++) {
      const key = chunkKey(w.file, ci);
      plans.push({ chunk: ci, key, old: this.viewChunk(key), rec: { s: 0 } });
    }
    const newBlocks: string[] = [];
    try {
      if (w.data.length > this.inlineMax)
        await this.checkHeadroom(w.data.length + plans.length * this.inlineMax);
      // Settled, not just failed fast: when this throws, no block write is still reading the
      // caller's data (the RPC layer may reuse it) or creating a block the discard below misses.
      const settled = await Promise.allSettled(
        plans.map(async (p) => {
          const base = p.chunk * C;
          const lo = Math.max(w.offset, base) - base;
          const hi = Math.min(end, base + C) - base;
          const part = w.data.subarray(
            Math.max(w.offset, base) - w.offset,
            Math.min(end, base + C) - w.offset,
          );
          const oldLen = p.old?.s ?? 0;
          const len = Math.max(oldLen, hi);
          let content: Uint8Array;
          if (lo === 0 && hi >= oldLen) {
            content = part;
          } else {
            const old = p.old ? await this.chunkContent(w.file, p.chunk, p.old) : unpooled(new Uint8Array(0));
            const merged = Buffer.alloc(len);
            merged.set(old.data.subarray(0, Math.min(old.data.length, len)), 0);
            old.release();
            merged.set(part, lo);
            content = merged;
          }
          if (len <= this.inlineMax) {
            p.rec = { i: Buffer.from(content), s: len };
            return;
          }
          const { id, file } = await this.newBlock();
          newBlocks.push(id);
          // A chunk written whole, UNSTABLE: a sequential copy. Its block is not about to be
          // replaced by the next write (worth syncing in the background), and its next write
          // will want a new block file.
          const streaming = !w.stable && content === part;
          const h = await this.writeBlock(id, file, content, w.stable, content !== part, streaming);
          p.rec = { b: id, n: content.length, h, s: len };
          if (streaming) this.prepareSpare();
        }),
      );
      for (const r of settled) if (r.status === 'rejected') throw r.reason;
      if (w.stable && !ACK_BEFORE_SYNC) {
        const dirs = new Set(plans.filter((p) => p.rec.b).map((p) => this.blockDir(p.rec.b as string)));
        await Promise.all([...dirs].map((d) => this.io.syncDir(d)));
      }
    } catch (e) {
      await this.discard(newBlocks);
      throw isNoSpace(e) ? new StoreFullError(`writing file ${w.file}: no space`, { cause: e }) : e;
    }
    return plans;
  }

  /** In the transaction: link the planned chunks, keep the stable copies an UNSTABLE write replaces, free the rest. */
  private linkChunks(w: FileWrite, plans: ChunkPlan[], freed: string[]): void {
    for (const p of plans) {
      const cur = this.chunks.get(p.key);
      if (!sameRec(cur, p.old)) throw new ChunkChanged();
      const d = this.dirty.get(p.key);
      this.chunks.putSync(p.key, p.rec);
      if (w.stable || p.rec.i) {
        // The new content is as durable as this transaction: no older copy is needed any more.
        if (cur?.b) freed.push(cur.b);
        if (d) {
          if (d.keep?.b && d.keep.b !== cur?.b) freed.push(d.keep.b);
          this.dirty.removeSync(p.key);
        }
      } else if (d) {
        // Already dirty: the stable copy stays kept; the unstable block this replaces goes.
        if (cur?.b && cur.b !== d.keep?.b) freed.push(cur.b);
      } else {
        this.dirty.putSync(p.key, { keep: cur ?? null });
      }
    }
    this.freeInTxn(freed);
    if (w.update) {
      const tx = new Tx(this, freed);
      try {
        w.update(tx);
      } finally {
        tx.active = false;
      }
    }
  }

  /**
   * The UNSTABLE write's fast path: its chunk records, dirty entries and the update callback's
   * record changes go to the journal (one `pwrite`, no fsync) and the overlay, and LMDB gets
   * them in the background. Returns false when the write must take the LMDB path: a
   * transaction that may change what this write reads is running, the journal or the overlay
   * is full, or the update callback needs a real transaction.
   */
  private linkJournaled(w: FileWrite, plans: ChunkPlan[]): number | undefined {
    if (w.stable ? !this.journalTakesDurable() : this.unsafeOpen > 0 || !this.journalHasRoom())
      return undefined;
    const tx = new JournalTx(this);
    try {
      for (const p of plans) {
        const cur = tx.viewChunk(p.key);
        if (!sameRec(cur, p.old)) throw new ChunkChanged();
        const dirty = tx.viewDirty(p.key);
        tx.setChunk(p.key, p.rec);
        if (w.stable || p.rec.i) {
          // The new content is as durable as the entry that carries it: no older copy is needed.
          if (cur?.b) tx.f.push(cur.b);
          if (dirty) {
            if (dirty.keep?.b && dirty.keep.b !== cur?.b) tx.f.push(dirty.keep.b);
            tx.setDirty(p.key, null);
          }
        } else if (dirty) {
          if (cur?.b && cur.b !== dirty.keep?.b) tx.f.push(cur.b);
        } else {
          tx.setDirty(p.key, { keep: cur ?? null });
        }
      }
      w.update?.(tx);
    } finally {
      tx.active = false;
    }
    try {
      return this.appendEntry(tx);
    } catch (e) {
      if (isNoSpace(e))
        throw new StoreFullError(`journaling a write to file ${w.file}: no space`, { cause: e });
      throw new StoreError('STORE_IO', `journaling a write to file ${w.file} failed`, { cause: e });
    }
  }

  /**
   * Whether a durable write may take the journaled path. Not while an LMDB transaction that may
   * change what it reads is running, once a journal sync has failed, or while the journal is due
   * to be emptied (the apply empties it only when no entry arrives meanwhile). Nor when free
   * space is short: everything the overlay holds must still fit in LMDB's file when it is
   * applied, or the changes that free space (queued behind it) could never commit.
   */
  private journalTakesDurable(): boolean {
    if (this.unsafeOpen > 0 || this.journalSyncFailed || this.options.durableJournal === false) return false;
    if (!this.journalHasRoom(this.journalResetBytes)) {
      if (this.pending.length === 0) this.scheduleApply(true);
      return false;
    }
    if (!this.space || Date.now() - this.space.at > SPACE_CHECK_MS) this.refreshSpace();
    return this.space !== undefined && this.space.avail > this.journalMinFree;
  }

  /** Reads the free space again, in the background (journalTakesDurable cannot wait for it). */
  private refreshSpace(): void {
    if (this.spaceRefresh) return;
    this.spaceRefresh = statfs(this.dir)
      .then((s) => {
        this.space = { at: Date.now(), avail: s.bavail * s.bsize };
      }, noop)
      .finally(() => {
        this.spaceRefresh = undefined;
      });
  }

  /** Room for another entry: below `limit` in the journal, and in the overlay. */
  private journalHasRoom(limit = this.journalLimit): boolean {
    return this.journal.size < limit && this.pendingBytes < this.overlayLimit;
  }

  /** Backpressure: waits while the journal or the overlay is full; fails if applying them fails. */
  private async journalRoom(): Promise<void> {
    while (!this.journalHasRoom()) {
      const failures = this.applyFailures;
      const woken = new Promise<void>((resolve) => this.roomWaiters.push(resolve));
      this.scheduleApply(true);
      await woken;
      if (!this.journalHasRoom() && this.applyFailures > failures) {
        const e = this.applyError;
        throw e instanceof StoreError
          ? e
          : new StoreError('STORE_IO', 'applying the journal failed', { cause: e });
      }
    }
  }

  private wakeRoomWaiters(): void {
    const w = this.roomWaiters;
    this.roomWaiters = [];
    for (const f of w) f();
  }

  private addPending(entry: JournalEntry<ChunkRec, DirtyRec>, bytes: number): void {
    const seq = entry.seq;
    this.pending.push({ entry, bytes });
    this.pendingBytes += bytes;
    for (const op of entry.r) {
      const key = op[0];
      this.ovRecords.set(mk(key), {
        seq,
        key,
        version: op.length === 3 ? op[1] : 0,
        value: op.length === 3 ? op[2] : undefined,
        deleted: op.length !== 3,
      });
    }
    for (const [key, value] of entry.c) this.ovChunks.set(mk(key), { seq, key, value });
    for (const [key, value] of entry.d) {
      this.ovDirty.set(mk(key), { seq, key, value, file: decodeKey(key)[0] as number });
    }
  }

  /** Inside a transaction: applies every pending entry LMDB does not have yet; returns the last sequence number applied. */
  private applyPending(): number {
    if (this.pending.length === 0) return 0;
    const had = (this.meta.get('jseq') as number | undefined) ?? 0;
    let last = had;
    for (const { entry } of this.pending) {
      if (entry.seq <= had) continue;
      this.applyEntry(entry);
      last = entry.seq;
    }
    if (last > had) this.meta.putSync('jseq', last);
    return last;
  }

  private applyEntry(e: JournalEntry<ChunkRec, DirtyRec>): void {
    for (const op of e.r) {
      if (op.length === 3) this.records.putSync(op[0], op[2], op[1]);
      else this.records.removeSync(op[0]);
    }
    for (const [k, v] of e.c) {
      if (v) this.chunks.putSync(k, v);
      else this.chunks.removeSync(k);
    }
    for (const [k, v] of e.d) {
      if (v) this.dirty.putSync(k, v);
      else this.dirty.removeSync(k);
    }
    this.freeInTxn(e.f);
  }

  /** After a transaction that applied entries up to `seq` committed: they leave the overlay. */
  private dropApplied(seq: number): void {
    let n = 0;
    while (n < this.pending.length && this.pending[n].entry.seq <= seq) n++;
    if (n === 0) return;
    const done = this.pending.splice(0, n);
    const freed: string[] = [];
    for (const { entry, bytes } of done) {
      this.pendingBytes -= bytes;
      for (const op of entry.r) {
        const s = mk(op[0]);
        if ((this.ovRecords.get(s)?.seq ?? Number.POSITIVE_INFINITY) <= seq) this.ovRecords.delete(s);
      }
      for (const [k] of entry.c) {
        const s = mk(k);
        if ((this.ovChunks.get(s)?.seq ?? Number.POSITIVE_INFINITY) <= seq) this.ovChunks.delete(s);
      }
      for (const [k] of entry.d) {
        const s = mk(k);
        if ((this.ovDirty.get(s)?.seq ?? Number.POSITIVE_INFINITY) <= seq) this.ovDirty.delete(s);
      }
      freed.push(...entry.f);
    }
    // The blocks these entries freed are in LMDB's free table now; the reaper deletes them once flushed.
    this.reap(freed);
    this.wakeRoomWaiters();
  }

  /**
   * Starts the background apply: one transaction at a time, each taking every entry pending
   * when it runs (lmdb-js batches whatever else is queued with it). Deferred to the next turn
   * so that the reply to the write that scheduled it leaves first, and until writes pause or a
   * batch is pending (APPLY_IDLE_MS). `now`: a writer is waiting for room.
   */
  private scheduleApply(now = false): void {
    if (this.applying || this.applyScheduled) return;
    if (this.pending.length === 0 && !(now && this.journal.size >= this.journalResetBytes)) return;
    if (!now && this.pending.length < APPLY_BATCH) {
      if (this.applyTimer) this.applyTimer.refresh();
      else {
        this.applyTimer = setTimeout(() => {
          this.applyTimer = undefined;
          this.scheduleApply(true);
        }, APPLY_IDLE_MS);
        // close() applies what is left; a process that exits without it replays the journal.
        this.applyTimer.unref();
      }
      return;
    }
    clearTimeout(this.applyTimer);
    this.applyTimer = undefined;
    this.applyScheduled = true;
    setImmediate(() => {
      this.applyScheduled = false;
      if (this.closed || this.applying) return;
      this.applying = this.applyLoop().finally(() => {
        this.applying = undefined;
        this.wakeRoomWaiters();
        // Entries appended during the apply wait for the next pause or batch (after a failure,
        // for the next write or waiting writer: a full disk is not retried in a loop).
        if (!this.closed && this.applyError === undefined) this.scheduleApply();
      });
    });
  }

  private async applyLoop(): Promise<void> {
    try {
      while (this.pending.length > 0 && !this.closed) {
        await this.txn(noop, false, true);
        this.applyError = undefined;
        if (this.pending.length < APPLY_BATCH && this.journalHasRoom()) break;
      }
      if (this.journal.size >= this.journalResetBytes && !this.closed) {
        // Empty the journal only when all it holds is flushed in LMDB: then a replay needs none
        // of it. An entry appended during the wait may be applied but not flushed yet: keep it.
        const next = this.nextSeq;
        await this.env.flushed;
        if (this.pending.length === 0 && this.nextSeq === next && !this.closed) this.resetJournal();
      }
    } catch (e) {
      this.applyError = e;
      this.applyFailures++;
      this.log.warn(
        { err: e, pending: this.pending.length },
        'applying the journal to LMDB failed; its entries stay in the journal and the overlay',
      );
    }
  }

  /** At open: applies the journal's valid entries that LMDB does not have, durably, then empties and preallocates it. */
  private async replayJournal(fsBytes: number): Promise<void> {
    const buf = this.journal.readAll();
    const { entries, validBytes, end } = decodeJournal<ChunkRec, DirtyRec>(buf);
    const had = (this.meta.get('jseq') as number | undefined) ?? 0;
    let todo = entries.filter((e) => e.seq > had);
    if (todo.length > 0 && todo[0].seq !== had + 1) {
      // Entries after a gap would apply on top of changes that are missing: none of them can be.
      this.log.warn(
        { applied: had, first: todo[0].seq },
        'journal does not follow what LMDB applied; ignored',
      );
      todo = [];
    }
    if (end === 'torn') {
      this.log.warn(
        { at: validBytes, entries: entries.length },
        'journal tail damaged (a power loss during writes); discarded from the first bad entry',
      );
    }
    if (todo.length > 0) {
      await this.txn(() => {
        for (const e of todo) this.applyEntry(e);
        this.meta.putSync('jseq', todo[todo.length - 1].seq);
      }, true);
      this.log.info({ entries: todo.length }, 'replayed the journal of unstable writes');
    }
    this.nextSeq = Math.max(had, todo.length > 0 ? todo[todo.length - 1].seq : 0) + 1;
    this.syncedSeq = this.nextSeq - 1;
    this.journal.reset();
    try {
      // At most a sixteenth of the file system, as for LMDB's reserve: on a small disk the space
      // is worth more than the cheaper sync (and durable writes take the LMDB path there anyway).
      this.journal.preallocate(
        Math.min(this.journalResetBytes + JOURNAL_SLACK_BYTES, Math.floor(fsBytes / 16)),
      );
    } catch (e) {
      this.log.warn({ err: e }, 'cannot preallocate the journal; its syncs will cost more');
    }
  }

  /** Empties the journal, all of whose entries are flushed in LMDB (so durable). */
  private resetJournal(): void {
    this.journal.reset();
    this.syncedSeq = Math.max(this.syncedSeq, this.nextSeq - 1);
  }

  /** A chunk record as LMDB's committed state plus the overlay have it (outside transactions). */
  viewChunk(key: Buffer): ChunkRec | undefined {
    if (this.ovChunks.size > 0 && !this.inTxn) {
      const o = this.ovChunks.get(mk(key));
      if (o) return o.value ?? undefined;
    }
    return this.chunks.get(key);
  }

  viewDirty(key: Buffer): DirtyRec | undefined {
    if (this.ovDirty.size > 0 && !this.inTxn) {
      const o = this.ovDirty.get(mk(key));
      if (o) return o.value ?? undefined;
    }
    return this.dirty.get(key);
  }

  /** Keys of a file's dirty chunks, committed and journaled. */
  private dirtyKeysOf(file: FileId): Buffer[] {
    const prefix = encodeKey([file]);
    const keys = new Map<string, Buffer>();
    for (const { key } of this.dirty.getRange({ start: prefix, end: prefixEnd(prefix) })) {
      const k = Buffer.from(key as Buffer);
      keys.set(mk(k), k);
    }
    for (const [s, o] of this.ovDirty) {
      if (o.file !== file) continue;
      if (o.value) keys.set(s, o.key);
      else keys.delete(s);
    }
    return [...keys.values()];
  }

  async readFile(
    file: FileId,
    offset: number,
    length: number,
    size: number,
    lend?: (release: () => void) => void,
  ): Promise<Uint8Array> {
    this.checkOpen();
    checkFileId(file);
    checkRange('readFile', offset, length);
    const end = Math.min(offset + length, size);
    if (end <= offset) return new Uint8Array(0);
    return this.track(async () => {
      const C = this.chunkSize;
      const first = Math.floor(offset / C);
      const last = Math.floor((end - 1) / C);
      this.readAhead(file, offset, end);
      if (first === last) {
        // Within one chunk: the verified (immutable) block itself when it covers the whole range,
        // with no new buffer and no copy; lent when the caller can give it back.
        const rec = this.viewChunk(chunkKey(file, first));
        if (!rec) return Buffer.alloc(end - offset);
        const base = first * C;
        const content = await this.chunkContent(file, first, rec);
        const to = base + Math.min(rec.s, content.data.length);
        if (to >= end) {
          if (lend) lend(content.release);
          else content.keep();
          return content.data.subarray(offset - base, end - base);
        }
        const out = Buffer.alloc(end - offset);
        if (to > offset) out.set(content.data.subarray(offset - base, to - base), 0);
        content.release();
        return out;
      }
      const out = Buffer.alloc(end - offset);
      const jobs: Promise<void>[] = [];
      for (let ci = first; ci <= last; ci++) {
        const rec = this.viewChunk(chunkKey(file, ci));
        if (!rec) continue;
        const base = ci * C;
        jobs.push(
          this.chunkContent(file, ci, rec).then((content) => {
            const from = Math.max(offset, base);
            const to = Math.min(end, base + Math.min(rec.s, content.data.length));
            if (to > from) out.set(content.data.subarray(from - base, to - base), from - offset);
            content.release();
          }),
        );
      }
      await Promise.all(jobs);
      return out;
    });
  }

  /**
   * Sequential reads: loads and verifies the chunks after this read's last one while the reply
   * travels and the client asks for them, so that its READ finds them in the cache (a client that
   * reads one chunk at a time otherwise waits for the disk and the checksum on every call).
   * Failures are ignored here; the read that needs the chunk reports them.
   */
  private readAhead(file: FileId, offset: number, end: number): void {
    // A read from the start counts as sequential: whole-file copies begin there.
    const sequential = offset === 0 || this.lastReadEnd.get(file) === offset;
    this.lastReadEnd.delete(file);
    this.lastReadEnd.set(file, end);
    if (this.lastReadEnd.size > 256) this.lastReadEnd.delete(this.lastReadEnd.keys().next().value as FileId);
    if (!sequential) return;
    const next = Math.floor((end - 1) / this.chunkSize) + 1;
    for (let ci = next; ci < next + READ_AHEAD_CHUNKS; ci++) {
      const rec = this.viewChunk(chunkKey(file, ci));
      if (!rec?.b || this.cache.has(rec.b) || this.loading.has(rec.b)) continue;
      this.readBlock(file, ci, rec).then((b) => b.release(), noop);
    }
  }

  commitFile(file: FileId): Promise<void> {
    this.checkOpen();
    checkFileId(file);
    return this.track(() => this.onFileQueue(file, () => this.doCommitFile(file)));
  }

  private async doCommitFile(file: FileId): Promise<void> {
    const synced = new Map<string, string | undefined>(); // dirty key (hex) -> block made durable
    const dirs = new Set<string>();
    const keys = this.dirtyKeysOf(file);
    await Promise.all(
      keys.map(async (k) => {
        const rec = this.viewChunk(k);
        if (rec?.b) {
          const behind = this.behind.get(rec.b);
          if (behind) {
            await behind.done;
            if (behind.error !== undefined) {
              throw new StoreError('STORE_IO', `file ${file}: syncing block ${rec.b} failed`, {
                cause: behind.error,
              });
            }
          } else await this.io.syncFile(this.blockPath(rec.b));
          dirs.add(this.blockDir(rec.b));
        }
        synced.set(k.toString('hex'), rec?.b);
      }),
    );
    await Promise.all([...dirs].map((d) => this.io.syncDir(d)));
    const freed: string[] = [];
    // The transaction also applies the journal (all of it, this file's entries included), so
    // the file's size and times are durable with its blocks.
    if (keys.length > 0 || this.pending.length > 0) {
      await this.txn(
        () => {
          for (const k of keys) {
            const rec = this.chunks.get(k);
            const d = this.dirty.get(k);
            if (!d) continue;
            // A chunk rewritten since (by a truncate) stays dirty: its block was not the one synced.
            if (rec?.b !== synced.get(k.toString('hex'))) continue;
            if (d.keep?.b && d.keep.b !== rec?.b) freed.push(d.keep.b);
            this.dirty.removeSync(k);
          }
          this.freeInTxn(freed);
        },
        true,
        true,
      );
    } else {
      // Nothing dirty, but the file's earlier unstable transactions may not be flushed yet.
      await this.env.flushed;
    }
    // Stable now: a later COMMIT has nothing to wait for.
    for (const id of synced.values()) if (id) this.behind.delete(id);
    this.reap(freed);
  }

  /** The journal of UNSTABLE writes: entries not yet committed in LMDB, their bytes, and the file's size. */
  journalStats(): { pendingEntries: number; pendingBytes: number; journalBytes: number } {
    return {
      pendingEntries: this.pending.length,
      pendingBytes: this.pendingBytes,
      journalBytes: this.journal.size,
    };
  }

  async stats(): Promise<StoreStats> {
    this.checkOpen();
    const s = await statfs(this.dir);
    return {
      totalBytes: s.blocks * s.bsize,
      freeBytes: s.bfree * s.bsize,
      availableBytes: s.bavail * s.bsize,
      totalFiles: s.files,
      freeFiles: s.ffree,
    };
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      clearTimeout(this.applyTimer);
      await Promise.allSettled([...this.inflight]);
      await this.dropSpare();
      await this.applying;
      await this.reaping;
      await this.spaceRefresh;
      try {
        // What is left of the journal goes to LMDB first (and the blocks it frees to the reaper).
        if (this.pending.length > 0) await this.txn(noop, false, true);
        await this.reaping;
        await this.txn(() => this.meta.putSync('clean', true));
        await this.env.flushed;
        await this.journalSyncing;
        if (this.pending.length === 0) this.resetJournal();
      } finally {
        this.journal.close();
        await this.env.close();
      }
    })();
    return this.closing;
  }

  // ---- internals

  private checkOpen(): void {
    if (this.closed) throw new StoreClosedError();
  }

  private track<T>(fn: () => Promise<T>): Promise<T> {
    this.checkOpen();
    this.active++;
    let p: Promise<T>;
    try {
      p = fn();
    } catch (e) {
      this.active--;
      throw e;
    }
    this.inflight.add(p);
    const done = () => {
      this.inflight.delete(p);
      this.active--;
    };
    p.then(done, done);
    return p;
  }

  /** Runs `fn` after every earlier operation queued for `file`; failures do not stop the queue. */
  private onFileQueue<T>(file: FileId, fn: () => Promise<T>): Promise<T> {
    const prev = this.fileQueues.get(file) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.then(
      () => {},
      () => {},
    );
    this.fileQueues.set(file, tail);
    void tail.then(() => {
      if (this.fileQueues.get(file) === tail) this.fileQueues.delete(file);
    });
    return next;
  }

  /**
   * One serialised, atomic LMDB transaction (a child transaction in lmdb-js's batch, so a throw
   * aborts just it). `durable`: resolves only once the batch it joined is flushed.
   */
  private async txn<T>(fn: () => T, durable = false, safe = false): Promise<T> {
    let ran = false;
    let applied = 0;
    try {
      const committed = this.records.childTransaction(() => {
        if (!ran && !safe) this.unsafeOpen++;
        ran = true;
        this.inTxn = true;
        try {
          // Every transaction starts from the latest state: LMDB plus every journaled write.
          applied = this.applyPending();
          return fn();
        } finally {
          this.inTxn = false;
        }
      });
      // lmdb-js's `flushed` names the batch being filled when its then() is called: right after
      // enqueueing, that is this transaction's batch. Read after the commit resolves, it often
      // names the next batch (other callers have queued into it meanwhile), which costs a durable
      // caller a whole extra commit and flush when many are in flight.
      const flushed = durable && !ACK_BEFORE_SYNC ? this.env.flushed.then(noop) : undefined;
      flushed?.catch(noop);
      let result: T;
      try {
        result = await committed;
      } finally {
        if (ran && !safe) this.unsafeOpen--;
      }
      if (applied > 0) this.dropApplied(applied);
      if (flushed) await flushed;
      return result;
    } catch (e) {
      if (e instanceof StoreError || e instanceof ChunkChanged) throw e;
      // When a commit fails (a full disk), lmdb-js may also reject the batch's commit promise:
      // handle it (still current in this microtask) so it is not an unhandled rejection. The
      // failure reaches the caller through this rejection.
      this.env.committed.then(noop, noop);
      // lmdb-js rejects every write of a failed commit with a generic error whose cause is a
      // separate promise; LMDB reports a short write on a full disk as EIO, so the disk is asked.
      const commitError = (e as { commitError?: Promise<unknown> }).commitError;
      if (commitError) {
        commitError.catch(() => {});
        if (await this.nearlyFull()) {
          throw new StoreFullError('metadata commit failed: no space left', { cause: e });
        }
        throw new StoreError('STORE_IO', 'metadata commit failed', { cause: e });
      }
      if (isNoSpace(e))
        throw new StoreFullError(`metadata commit failed: ${(e as Error).message}`, { cause: e });
      throw e;
    }
  }

  /** Whether the data directory's file system has (almost) no space left. */
  private async nearlyFull(): Promise<boolean> {
    try {
      const s = await statfs(this.dir);
      return s.bavail * s.bsize < Math.max(this.headroom, 2 * this.chunkSize);
    } catch {
      return false;
    }
  }

  /**
   * Refuses new blocks (StoreFullError) once free space falls below the headroom, so that the
   * metadata commits that free space (deletes, truncates) still find room in LMDB's file.
   */
  private async checkHeadroom(bytes: number): Promise<void> {
    const now = Date.now();
    if (!this.space || now - this.space.at > 1000 || this.space.avail - bytes < this.headroom * 2) {
      const s = await statfs(this.dir);
      this.space = { at: now, avail: s.bavail * s.bsize };
    }
    if (this.space.avail - bytes < this.headroom) {
      throw new StoreFullError(
        `no space for ${bytes} bytes of blocks (${this.space.avail} available, ${this.headroom} kept for metadata)`,
      );
    }
    this.space.avail -= bytes;
  }

  private nextBlockId(): string {
    const seq = this.seq++;
    return this.epoch.toString(16).padStart(16, '0') + seq.toString(16).padStart(16, '0');
  }

  private blockDir(id: string): string {
    return join(this.blocksDir, id.slice(26, 28), id.slice(28, 30));
  }

  blockPath(id: string): string {
    return join(this.blockDir(id), id);
  }

  /** Creates the block's directory if needed; its parent is fsynced once per process, so the entry is durable. */
  private ensureDir(id: string): Promise<void> {
    const xx = id.slice(26, 28);
    const leaf = `${xx}/${id.slice(28, 30)}`;
    let p = this.dirs.get(leaf);
    if (!p) {
      p = (async () => {
        const top = join(this.blocksDir, xx);
        await this.ensureTop(xx, top);
        await this.io.mkdir(join(top, id.slice(28, 30)));
        await this.io.syncDir(top);
      })();
      this.dirs.set(leaf, p);
      p.catch(() => this.dirs.delete(leaf));
    }
    return p;
  }

  private ensureTop(xx: string, top: string): Promise<void> {
    let p = this.dirs.get(xx);
    if (!p) {
      p = (async () => {
        await this.io.mkdir(top);
        await this.io.syncDir(this.blocksDir);
      })();
      this.dirs.set(xx, p);
      p.catch(() => this.dirs.delete(xx));
    }
    return p;
  }

  /** A new, empty block file: the spare if one is ready, else one created now. */
  private async newBlock(): Promise<NewBlock> {
    const spare = this.spare;
    if (spare) {
      this.spare = undefined;
      const ready = await spare;
      if (ready) return ready;
    }
    const id = this.nextBlockId();
    await this.ensureDir(id);
    return { id, file: await this.io.create(this.blockPath(id)) };
  }

  /** Creates the spare block file in the background, unless there is one. */
  private prepareSpare(): void {
    if (this.closed) return;
    if (this.spareTimer) this.spareTimer.refresh();
    else {
      this.spareTimer = setTimeout(() => {
        this.spareTimer = undefined;
        void this.dropSpare();
      }, this.spareIdleMs);
      this.spareTimer.unref();
    }
    if (this.spare) return;
    const id = this.nextBlockId();
    this.spare = (async () => {
      await this.ensureDir(id);
      return { id, file: await this.io.create(this.blockPath(id)) };
    })().catch((e) => {
      // The write that would have taken it creates its own and reports what fails.
      this.log.debug({ err: e, block: id }, 'creating a block file ahead failed');
      return undefined;
    });
  }

  /** Closes and removes the spare block file, if any. */
  private async dropSpare(): Promise<void> {
    clearTimeout(this.spareTimer);
    this.spareTimer = undefined;
    const spare = this.spare;
    this.spare = undefined;
    const s = await spare;
    if (!s) return;
    await s.file.close().catch(noop);
    await this.discard([s.id]);
  }

  /**
   * Writes a new block file and resolves with its checksum, computed while the write is in the
   * thread pool. `owned`: the content is the store's own buffer, kept in the block cache; the
   * caller's buffer is not (it may be reused), and copying 1 MiB into a fresh buffer costs more
   * than the write itself. `behind`: an UNSTABLE block to fdatasync in the background.
   */
  private async writeBlock(
    id: string,
    h: BlockFileHandle,
    content: Uint8Array,
    stable: boolean,
    owned: boolean,
    behind: boolean,
  ): Promise<Buffer> {
    let sum: Buffer;
    try {
      const written = h.write(content, 0);
      try {
        sum = blockChecksum(content);
      } finally {
        await written;
      }
      if (stable && !ACK_BEFORE_SYNC) await h.datasync();
    } catch (e) {
      await h.close().catch(noop);
      throw e;
    }
    if (stable) {
      await h.close();
    } else {
      // The data is in the OS once write() returned; an UNSTABLE reply waits for neither the
      // sync nor the close, which start on a later turn (the reply leaves on this one). The
      // store's close() waits for them.
      const closing = (behind ? this.syncBehind(id, h) : Promise.resolve())
        .then(() => h.close())
        .catch((e) => this.log.warn({ err: e, block: id }, 'closing a block file failed'));
      this.inflight.add(closing);
      void closing.then(() => this.inflight.delete(closing));
    }
    if (owned) this.cache.set(id, new LoadedBlock(content));
    return sum;
  }

  /** Starts the background fdatasync of an UNSTABLE block on a later turn; resolves when it is over. */
  private syncBehind(id: string, h: BlockFileHandle): Promise<void> {
    if (this.behind.size >= SYNC_BEHIND_MAX) {
      for (const [old, s] of this.behind) {
        if (s.error === undefined) {
          this.behind.delete(old);
          break;
        }
      }
    }
    const s: SyncBehind = {
      done: new Promise<void>((resolve) => setImmediate(resolve))
        .then(() => h.datasync())
        .catch((e) => {
          // Kept: after a failed fsync the kernel may have dropped the data and a second fsync
          // succeed, so every COMMIT of this block fails until the chunk is written again.
          s.error = e;
          this.log.error({ err: e, block: id }, 'syncing an unstable block failed; its data may be lost');
        }),
    };
    this.behind.set(id, s);
    return s.done;
  }

  /** Removes blocks that no committed record references (a failed or superseded write). */
  private async discard(ids: readonly string[]): Promise<void> {
    for (const id of ids) {
      this.cache.delete(id);
      this.behind.delete(id);
      try {
        await this.io.unlink(this.blockPath(id));
      } catch (e) {
        this.log.warn({ err: e, block: id }, 'could not remove an unlinked block; the next sweep will');
      }
    }
  }

  /** The valid bytes of a chunk (may be shorter than `s`: the rest reads as zeros), held. */
  private async chunkContent(file: FileId, chunk: number, rec: ChunkRec): Promise<HeldBlock> {
    if (rec.i) return unpooled(rec.i.subarray(0, rec.s));
    let r: ChunkRec | undefined = rec;
    for (let attempt = 0; r?.b; attempt++) {
      try {
        const held = await this.readBlock(file, chunk, r);
        const n = Math.min(r.s, held.data.length);
        return n === held.data.length ? held : { ...held, data: held.data.subarray(0, n) };
      } catch (e) {
        if (!(e instanceof BlockMissing)) throw e;
        // Freed after this read looked the record up: the record now names another block.
        this.env.resetReadTxn();
        const now = this.viewChunk(chunkKey(file, chunk));
        if (attempt >= 3 || sameRec(now, r)) {
          throw new StoreCorruptError(`file ${file} chunk ${chunk}: block ${r.b} is missing`, file, chunk);
        }
        r = now;
        if (r?.i) return unpooled(r.i.subarray(0, r.s));
      }
    }
    return unpooled(new Uint8Array(0));
  }

  /**
   * A block's verified content, held for the caller (who releases it): from the cache, or
   * joined to a read already under way, or from disk. The hold is taken before anything else
   * runs (counted in the load's waiters), so the buffer cannot be reused in between.
   */
  private readBlock(file: FileId, chunk: number, rec: ChunkRec): Promise<HeldBlock> {
    const id = rec.b as string;
    const cached = this.cache.get(id);
    if (cached) return Promise.resolve(cached.hold());
    let l = this.loading.get(id);
    if (!l) {
      const entry = { waiters: 0, block: this.loadBlock(file, chunk, rec) };
      const done = () => this.loading.delete(id);
      // Settled in the load's own continuation, so no reader joins a load already handed out.
      entry.block = entry.block.then(
        (b) => {
          done();
          b.reserve(entry.waiters);
          this.cache.set(id, b);
          return b;
        },
        (e) => {
          done();
          throw e;
        },
      );
      this.loading.set(id, entry);
      l = entry;
    }
    l.waiters++;
    return l.block.then((b) => b.held());
  }

  private async loadBlock(file: FileId, chunk: number, rec: ChunkRec): Promise<LoadedBlock> {
    const id = rec.b as string;
    const pool = this.buffers as BlockBufferPool;
    const buf = rec.n !== undefined && rec.n < pool.bufferBytes ? pool.take() : undefined;
    let data: Uint8Array;
    try {
      data = await this.io.read(this.blockPath(id), rec.n, buf);
    } catch (e) {
      if (buf) pool.give(buf);
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new BlockMissing();
      throw e;
    }
    // The I/O layer may have answered in a buffer of its own.
    const mine = buf !== undefined && data.buffer === buf.buffer ? buf : undefined;
    if (buf && !mine) pool.give(buf);
    const fail = (why: string) => {
      if (mine) pool.give(mine);
      return new StoreCorruptError(`file ${file} chunk ${chunk}: block ${id} ${why}`, file, chunk);
    };
    if (data.length !== rec.n) throw fail(`is ${data.length} bytes, recorded ${rec.n}`);
    if (!checksumMatches(data, rec.h)) throw fail('fails its checksum');
    return new LoadedBlock(data, mine, pool);
  }

  private async verifyBlock(rec: ChunkRec): Promise<boolean> {
    try {
      const data = await this.io.read(this.blockPath(rec.b as string));
      return data.length === rec.n && checksumMatches(data, rec.h);
    } catch {
      return false;
    }
  }

  /**
   * Hands blocks to the reaper, which deletes them once the transactions that stopped
   * referencing them are flushed (their ids are in the free table from that same transaction).
   */
  private reap(ids: readonly string[]): void {
    if (ids.length === 0) return;
    for (const id of ids) {
      this.cache.delete(id);
      this.behind.delete(id);
    }
    this.toFree.push(...ids);
    this.reaping ??= (async () => {
      try {
        while (this.toFree.length > 0) {
          const batch = this.toFree.splice(0, 1024);
          await this.env.flushed;
          for (const id of batch) {
            try {
              await this.io.unlink(this.blockPath(id));
            } catch (e) {
              this.log.warn(
                { err: e, block: id },
                'could not delete a freed block; will retry at the next open',
              );
            }
          }
          await this.txn(
            () => {
              for (const id of batch) this.free.removeSync(id);
            },
            false,
            true,
          );
        }
      } catch (e) {
        this.log.warn({ err: e }, 'freeing blocks stopped; the free list is retried at the next open');
        this.toFree = [];
      } finally {
        this.reaping = undefined;
      }
    })();
  }

  /**
   * At open: every chunk last written UNSTABLE must have a block that is whole; those that are
   * are made durable, those that are not go back to the stable copy kept for them.
   */
  private async recoverDirty(): Promise<void> {
    const entries: { key: Buffer; d: DirtyRec }[] = [];
    for (const { key, value } of this.dirty.getRange({})) {
      entries.push({ key: Buffer.from(key as Buffer), d: value });
    }
    if (entries.length === 0) return;
    const good: Buffer[] = [];
    const bad: Buffer[] = [];
    const dirs = new Set<string>();
    for (const { key } of entries) {
      const rec = this.chunks.get(key);
      if (rec?.b) {
        if (await this.verifyBlock(rec)) {
          await this.io.syncFile(this.blockPath(rec.b));
          dirs.add(this.blockDir(rec.b));
          good.push(key);
        } else {
          bad.push(key);
        }
      } else {
        good.push(key);
      }
    }
    for (const d of dirs) await this.io.syncDir(d);
    const freed: string[] = [];
    await this.txn(() => {
      for (const { key, d } of entries) {
        const rec = this.chunks.get(key);
        if (bad.some((b) => b.equals(key))) {
          if (rec?.b) freed.push(rec.b);
          if (d.keep) this.chunks.putSync(key, d.keep);
          else this.chunks.removeSync(key);
        } else if (d.keep?.b && d.keep.b !== rec?.b) {
          freed.push(d.keep.b);
        }
        this.dirty.removeSync(key);
      }
      this.freeInTxn(freed);
    });
    await this.env.flushed;
    if (bad.length > 0) {
      this.log.warn(
        { chunks: bad.length },
        'unstable chunks lost at a crash went back to their last stable content',
      );
    }
    this.reap(freed);
  }

  /** After an unclean shutdown: delete block files of earlier epochs that nothing references. */
  private async sweepOrphans(): Promise<void> {
    const referenced = new Set<string>();
    for (const { value } of this.chunks.getRange({})) if (value.b) referenced.add(value.b);
    for (const { value } of this.dirty.getRange({})) if (value.keep?.b) referenced.add(value.keep.b);
    for (const { key } of this.free.getRange({})) referenced.add(String(key));
    let removed = 0;
    for (const xx of await this.io.list(this.blocksDir)) {
      for (const yy of await this.io.list(join(this.blocksDir, xx))) {
        const leaf = join(this.blocksDir, xx, yy);
        for (const name of await this.io.list(leaf)) {
          if (!/^[0-9a-f]{32}$/.test(name) || referenced.has(name)) continue;
          if (Number.parseInt(name.slice(0, 16), 16) >= this.epoch) continue;
          await this.io.unlink(join(leaf, name));
          removed++;
        }
      }
    }
    if (removed > 0) this.log.info({ removed }, 'removed blocks orphaned by a crash');
  }
}

function shorten(rec: ChunkRec, s: number): ChunkRec {
  if (rec.i) return { i: Buffer.from(rec.i.subarray(0, s)), s };
  return { ...rec, s };
}

class Tx implements WriteTx {
  active = true;
  constructor(
    private readonly store: LmdbStore,
    private readonly freed: string[],
  ) {}

  private check(): void {
    if (!this.active) throw new StoreInvalidError('write transaction used after it ended');
  }

  get<T>(key: Key): Versioned<T> | undefined {
    this.check();
    return this.store.txGet<T>(key);
  }

  range<T>(prefix: Key, options?: RangeOptions): Iterable<Versioned<T>> {
    this.check();
    return [...this.store.txRange<T>(prefix, options)];
  }

  put<T>(key: Key, value: T, options?: { ifVersion?: number }): number {
    this.check();
    return this.store.txPut(key, value, options?.ifVersion);
  }

  delete(key: Key): boolean {
    this.check();
    return this.store.txDelete(key);
  }

  truncate(file: FileId, size: number): void {
    this.check();
    const before = this.freed.length;
    this.store.txTruncate(file, size, this.freed);
    this.store.txFreeSince(this.freed, before);
  }

  dropContent(file: FileId): void {
    this.truncate(file, 0);
  }
}

/**
 * A write transaction on the journaled path: reads see its own changes, then the overlay, then
 * LMDB; changes become the journal entry's operations (records, chunk and dirty-table entries,
 * freed blocks). Versions continue from what the reads see, exactly as in LMDB.
 */
class JournalTx implements WriteTx {
  active = true;
  readonly ops: RecordOp[] = [];
  readonly c: [Buffer, ChunkRec | null][] = [];
  readonly d: [Buffer, DirtyRec | null][] = [];
  readonly f: string[] = [];
  private readonly local = new Map<string, OvRecord>();
  /** This transaction's chunk and dirty-table changes, by map key: null deletes. */
  readonly localChunks = new Map<string, OvEntry<ChunkRec>>();
  readonly localDirty = new Map<string, OvEntry<DirtyRec>>();
  constructor(private readonly store: LmdbStore) {}

  private check(): void {
    if (!this.active) throw new StoreInvalidError('write transaction used after it ended');
  }

  empty(): boolean {
    return this.ops.length === 0 && this.c.length === 0 && this.d.length === 0 && this.f.length === 0;
  }

  get<T>(key: Key): Versioned<T> | undefined {
    this.check();
    return this.store.jGet<T>(key, this.local);
  }

  range<T>(prefix: Key, options?: RangeOptions): Iterable<Versioned<T>> {
    this.check();
    return this.store.jRange<T>(prefix, options, this.local);
  }

  put<T>(key: Key, value: T, options?: { ifVersion?: number }): number {
    this.check();
    const k = encodeKey(key);
    const cur = this.store.jGet(key, this.local);
    const version = cur ? cur.version : 0;
    if (options?.ifVersion !== undefined && options.ifVersion !== version) {
      throw new StoreConflictError(
        `version of ${JSON.stringify(key)} is ${version}, expected ${options.ifVersion}`,
        options.ifVersion,
        version,
      );
    }
    if (value === undefined) throw new StoreInvalidError('undefined cannot be stored; delete the key');
    this.ops.push([k, version + 1, value]);
    this.local.set(mk(k), { seq: 0, key: k, version: version + 1, value, deleted: false });
    return version + 1;
  }

  delete(key: Key): boolean {
    this.check();
    const k = encodeKey(key);
    const existed = this.store.jGet(key, this.local) !== undefined;
    this.ops.push([k]);
    this.local.set(mk(k), { seq: 0, key: k, version: 0, value: undefined, deleted: true });
    return existed;
  }

  truncate(file: FileId, size: number): void {
    this.check();
    this.store.jTruncate(file, size, this);
  }

  dropContent(file: FileId): void {
    this.truncate(file, 0);
  }

  /** @internal A chunk record as this transaction sees it. */
  viewChunk(key: Buffer): ChunkRec | undefined {
    const o = this.localChunks.get(mk(key));
    return o ? (o.value ?? undefined) : this.store.viewChunk(key);
  }

  /** @internal */
  viewDirty(key: Buffer): DirtyRec | undefined {
    const o = this.localDirty.get(mk(key));
    return o ? (o.value ?? undefined) : this.store.viewDirty(key);
  }

  /** @internal */
  setChunk(key: Buffer, value: ChunkRec | null): void {
    this.c.push([key, value]);
    this.localChunks.set(mk(key), { seq: 0, key, value });
  }

  /** @internal */
  setDirty(key: Buffer, value: DirtyRec | null): void {
    this.d.push([key, value]);
    this.localDirty.set(mk(key), { seq: 0, key, value });
  }
}
