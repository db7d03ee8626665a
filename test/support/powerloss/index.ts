/**
 * Power loss for real processes (issue 5). A process started with `layer.env` runs with
 * powerloss.c preloaded: every change it makes under `root` is preceded by an undo record in a log,
 * and every fsync-like call leaves a durability record. After the process is killed with SIGKILL,
 * `cut()` reads the log and undoes whatever no durability record covers, leaving the files as a
 * disk would after losing power at the moment of the kill. docs/STORAGE.md ("Power-loss
 * testing") describes what is modelled and what is not.
 *
 * What counts as durable (everything else is undone):
 * - a write, truncation or size change of a file: when an fsync/fdatasync (or sync_file_range
 *   with write and wait, or sync/syncfs) of that file began after it was logged and returned
 *   success, and the change was not still in flight when that sync began; a write through a
 *   descriptor opened O_SYNC/O_DSYNC (or pwritev2 with RWF_DSYNC) at once;
 * - a new, removed or renamed name: when its directory (both directories for a rename) was
 *   fsynced in the same way. A file whose data was synced but whose name was not is removed.
 *
 * With `cut({ seed })`, each write that is not durable is kept or dropped at random (seeded)
 * instead of always dropped: a disk that wrote back some of its cache before dying, in any order.
 * Dropping everything (the default) is the worst case for acknowledged durability — anything
 * acknowledged on the strength of a missing sync is gone; the seeded mode explores the states
 * in between, which matter for recovery code: torn journals, blocks present without the metadata
 * that names them, metadata pointing at blocks that are not there.
 */
import { createHash, randomUUID } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fstatSync,
  ftruncateSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CairnError } from '../../../src/errors.js';
import { SeededRandom } from '../../../src/random.js';
import { runChecked } from '../process.js';

export class PowerLossError extends CairnError {}

// ---- building the library

const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));
const source = join(repoRoot, 'test', 'support', 'powerloss', 'powerloss.c');
let built: Promise<string> | undefined;

/**
 * Compiles powerloss.c into dist/powerloss/HASH/powerloss.so (HASH of the source), once per source
 * version: parallel test processes each compile to a temporary name and rename, so none ever
 * loads a half-written library. Resolves with the library's path.
 */
export function buildPowerLoss(): Promise<string> {
  built ??= (async () => {
    const text = readFileSync(source);
    const hash = createHash('sha256').update(text).digest('hex').slice(0, 16);
    const dir = join(repoRoot, 'dist', 'powerloss', hash);
    const so = join(dir, 'powerloss.so');
    if (existsSync(so)) return so;
    mkdirSync(dir, { recursive: true });
    const tmp = `${so}.${process.pid}.${randomUUID()}.tmp`;
    try {
      await runChecked('gcc', ['-shared', '-fPIC', '-O2', '-Wall', '-o', tmp, source, '-ldl', '-pthread'], {
        timeoutMs: 120_000,
      });
      renameSync(tmp, so);
    } finally {
      rmSync(tmp, { force: true });
    }
    return so;
  })();
  built.catch(() => {
    built = undefined;
  });
  return built;
}

// ---- the log (layout: powerloss.c)

const MAGIC = 0x4c50524e;
const HEADER = 32;
const W_DSYNC = 1;
const K_DIR = 2;
const K_FILE = 1;
const SYNC_ALL = 3;

/** One whole record of the log, as powerloss.c writes it. */
export type LogRecord =
  | {
      type: 'write';
      id: bigint;
      ino: bigint;
      off: number;
      len: number;
      oldSize: number;
      dsync: boolean;
      path: string;
      old: Buffer;
    }
  | { type: 'truncate'; id: bigint; ino: bigint; oldSize: number; newSize: number; path: string; old: Buffer }
  | { type: 'sync-begin'; id: bigint; kind: number; ino: bigint; exceptions: Set<bigint> }
  | { type: 'sync-end'; id: bigint; begin: bigint }
  | { type: 'create'; id: bigint; kind: number; mode: number; dir: bigint; dirPath: string; name: string }
  | { type: 'cancel'; id: bigint; of: bigint }
  | {
      type: 'unlink';
      id: bigint;
      kind: number;
      mode: number;
      dir: bigint;
      ino: bigint;
      dirPath: string;
      name: string;
      limbo: string;
    }
  | {
      type: 'rename';
      id: bigint;
      fromDir: bigint;
      toDir: bigint;
      ino: bigint;
      replaced: bigint;
      replacedKind: number;
      replacedMode: number;
      fromPath: string;
      fromName: string;
      toPath: string;
      toName: string;
      limbo: string;
    }
  | { type: 'unsupported'; id: bigint; what: string };

class Reader {
  pos: number;
  constructor(
    private readonly b: Buffer,
    start: number,
  ) {
    this.pos = start;
  }
  /** A (device, inode) pair, as the inode alone: the root is one file system. */
  inode(): bigint {
    this.pos += 8;
    return this.u64();
  }
  u32(): number {
    const v = this.b.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  u64(): bigint {
    const v = this.b.readBigUInt64LE(this.pos);
    this.pos += 8;
    return v;
  }
  num(): number {
    return Number(this.u64());
  }
  bytes(n: number): Buffer {
    const v = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  str(): string {
    return this.bytes(this.u32()).toString('utf8');
  }
}

function fnv1a(b: Buffer): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i], 0x01000193) >>> 0;
  return h;
}

/** The log's whole records, and how many bytes of a torn tail followed them. */
export function parseLog(log: Buffer): { records: LogRecord[]; tornBytes: number } {
  const records: LogRecord[] = [];
  let pos = 0;
  while (pos + HEADER <= log.length) {
    const len = log.readUInt32LE(pos + 4);
    if (log.readUInt32LE(pos) !== MAGIC || len < HEADER || pos + len > log.length) break;
    const body = log.subarray(pos + HEADER, pos + len);
    if (fnv1a(body) !== log.readUInt32LE(pos + 24)) break;
    const type = log.readUInt32LE(pos + 8);
    const id = log.readBigUInt64LE(pos + 16);
    const r = new Reader(log, pos + HEADER);
    switch (type) {
      case 1: {
        const ino = r.inode();
        const off = r.num();
        const len = r.num();
        const oldSize = r.num();
        const dsync = (r.u32() & W_DSYNC) !== 0;
        const path = r.str();
        const old = r.bytes(r.num());
        records.push({ type: 'write', id, ino, off, len, oldSize, dsync, path, old });
        break;
      }
      case 2: {
        const ino = r.inode();
        const oldSize = r.num();
        const newSize = r.num();
        const path = r.str();
        records.push({ type: 'truncate', id, ino, oldSize, newSize, path, old: r.bytes(r.num()) });
        break;
      }
      case 3: {
        const kind = r.u32();
        const ino = r.inode();
        const exceptions = new Set<bigint>();
        for (let n = r.u32(); n > 0; n--) exceptions.add(r.u64());
        records.push({ type: 'sync-begin', id, kind, ino, exceptions });
        break;
      }
      case 4:
        records.push({ type: 'sync-end', id, begin: r.u64() });
        break;
      case 5: {
        const kind = r.u32();
        const mode = r.u32();
        const dir = r.inode();
        records.push({ type: 'create', id, kind, mode, dir, dirPath: r.str(), name: r.str() });
        break;
      }
      case 6:
        records.push({ type: 'cancel', id, of: r.u64() });
        break;
      case 7: {
        const kind = r.u32();
        const mode = r.u32();
        const dir = r.inode();
        const ino = r.u64();
        records.push({
          type: 'unlink',
          id,
          kind,
          mode,
          dir,
          ino,
          dirPath: r.str(),
          name: r.str(),
          limbo: r.str(),
        });
        break;
      }
      case 8: {
        const fromDir = r.inode();
        const toDir = r.inode();
        const ino = r.u64();
        const replaced = r.u64();
        const replacedKind = r.u32();
        const replacedMode = r.u32();
        records.push({
          type: 'rename',
          id,
          fromDir,
          toDir,
          ino,
          replaced,
          replacedKind,
          replacedMode,
          fromPath: r.str(),
          fromName: r.str(),
          toPath: r.str(),
          toName: r.str(),
          limbo: r.str(),
        });
        break;
      }
      case 9:
        records.push({ type: 'unsupported', id, what: r.str() });
        break;
      default:
        throw new PowerLossError('POWERLOSS_LOG', `unknown record type ${type} at byte ${pos} of the log`);
    }
    pos += len;
  }
  return { records, tornBytes: log.length - pos };
}

// ---- durability

/** Completed syncs by what they cover (an inode, or everything), in log order. */
class Coverage {
  private readonly byIno = new Map<bigint, { index: number; exceptions: Set<bigint> }[]>();
  private readonly all: { index: number; exceptions: Set<bigint> }[] = [];

  constructor(records: LogRecord[]) {
    const ended = new Set<bigint>();
    for (const r of records) if (r.type === 'sync-end') ended.add(r.begin);
    records.forEach((r, index) => {
      if (r.type !== 'sync-begin' || !ended.has(r.id)) return;
      const entry = { index, exceptions: r.exceptions };
      if (r.kind === SYNC_ALL) this.all.push(entry);
      else {
        const list = this.byIno.get(r.ino) ?? [];
        list.push(entry);
        this.byIno.set(r.ino, list);
      }
    });
  }

  /** Whether a sync of `ino` (or of everything) began after record `index` and did not exclude it. */
  covered(ino: bigint, index: number, id: bigint): boolean {
    return after(this.byIno.get(ino) ?? [], index, id) || after(this.all, index, id);
  }
}

function after(syncs: { index: number; exceptions: Set<bigint> }[], index: number, id: bigint): boolean {
  let lo = 0;
  let hi = syncs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (syncs[mid].index > index) hi = mid;
    else lo = mid + 1;
  }
  for (let i = lo; i < syncs.length; i++) if (!syncs[i].exceptions.has(id)) return true;
  return false;
}

/**
 * The changes in the log, newest first, each either undone, or not: durable, or (seeded mode)
 * kept by chance though it is a write that was not durable.
 */
function decide(
  records: LogRecord[],
  rng: SeededRandom | undefined,
  keep: number,
): { r: LogRecord; undo: boolean; kept: boolean }[] {
  const cancelled = new Set<bigint>();
  for (const r of records) if (r.type === 'cancel') cancelled.add(r.of);
  const cover = new Coverage(records);
  const out: { r: LogRecord; undo: boolean; kept: boolean }[] = [];
  for (let i = records.length - 1; i >= 0; i--) {
    const r = records[i];
    if (cancelled.has(r.id)) continue;
    let durable: boolean;
    switch (r.type) {
      case 'write':
        durable = r.dsync || cover.covered(r.ino, i, r.id);
        break;
      case 'truncate':
        durable = cover.covered(r.ino, i, r.id);
        break;
      case 'create':
      case 'unlink':
        durable = cover.covered(r.dir, i, r.id);
        break;
      case 'rename':
        durable = cover.covered(r.fromDir, i, r.id) && cover.covered(r.toDir, i, r.id);
        break;
      default:
        continue;
    }
    const kept = !durable && r.type === 'write' && rng?.chance(keep) === true;
    out.push({ r, undo: !durable && !kept, kept });
  }
  return out;
}

// ---- the files as they are now

/** Where each inode under the root (or in limbo) is, kept up to date while undoing. */
class Names {
  private readonly byIno = new Map<bigint, string>();
  private readonly byPath = new Map<string, bigint>();

  constructor(
    readonly root: string,
    limbo: string,
  ) {
    this.scan(limbo, lstatSync(limbo).dev);
    this.scan(root, lstatSync(root).dev);
  }

  private scan(dir: string, dev: number): void {
    this.set(lstatSync(dir, { bigint: true }).ino, dir);
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      const st = lstatSync(p, { bigint: true });
      if (Number(st.dev) !== dev) continue;
      if (st.isDirectory()) this.scan(p, dev);
      else this.set(st.ino, p);
    }
  }

  set(ino: bigint, path: string): void {
    const old = this.byIno.get(ino);
    if (old !== undefined) this.byPath.delete(old);
    this.byIno.set(ino, path);
    this.byPath.set(path, ino);
  }

  path(ino: bigint): string | undefined {
    return this.byIno.get(ino);
  }

  /** Forgets `path` and everything under it. */
  removed(path: string): void {
    for (const [p, ino] of this.byPath) {
      if (p === path || p.startsWith(`${path}/`)) {
        this.byPath.delete(p);
        if (this.byIno.get(ino) === p) this.byIno.delete(ino);
      }
    }
  }

  moved(from: string, to: string): void {
    for (const [p, ino] of [...this.byPath]) {
      if (p === from || p.startsWith(`${from}/`)) this.set(ino, to + p.slice(from.length));
    }
  }

  /** The current path of a directory known by inode, else the path logged for it if it is still that directory. */
  dir(ino: bigint, logged: string): string | undefined {
    const p = this.path(ino);
    if (p !== undefined) return p;
    return inoOf(logged) === ino ? logged : undefined;
  }
}

function inoOf(path: string): bigint | undefined {
  try {
    return lstatSync(path, { bigint: true }).ino;
  } catch {
    return undefined;
  }
}

/** Byte ranges [start, end) of one file that must keep their current content. */
class Mask {
  ranges: [number, number][] = [];
  /** The file is at least this long: it ends a write that is kept. */
  minSize = 0;

  add(start: number, end: number): void {
    this.ranges.push([start, end]);
    this.minSize = Math.max(this.minSize, end);
  }

  /** The parts of [start, end) outside every kept range. */
  free(start: number, end: number): [number, number][] {
    let parts: [number, number][] = [[start, end]];
    for (const [a, b] of this.ranges) {
      parts = parts.flatMap(([s, e]): [number, number][] => {
        if (b <= s || a >= e) return [[s, e]];
        const out: [number, number][] = [];
        if (s < a) out.push([s, a]);
        if (b < e) out.push([b, e]);
        return out;
      });
    }
    return parts;
  }
}

// ---- the layer

export interface CutOptions {
  /**
   * Keep each write that is not durable with probability `keep` (default 0.5), drawn from this
   * seed, instead of dropping them all.
   */
  seed?: number;
  keep?: number;
}

export interface CutReport {
  /** Whole records read from the log. */
  records: number;
  /** Bytes at the log's end that did not form a whole record (killed mid-append): ignored. */
  tornBytes: number;
  /** Writes and size changes undone. */
  writesReverted: number;
  /** Writes that were not durable but kept (seeded mode only). */
  writesKept: number;
  /** Bytes of old content written back. */
  bytesReverted: number;
  /** Files, links and directories whose creation was undone. */
  filesRemoved: number;
  dirsRemoved: number;
  /** Unlinked names brought back (files from limbo, directories recreated). */
  entriesRestored: number;
  renamesUndone: number;
}

export class PowerLossLayer {
  /** Merge into a child's environment to run it under the layer. */
  readonly env: Record<string, string>;
  readonly logPath: string;
  private readonly limbo: string;
  private readonly bootId: string;

  constructor(
    readonly root: string,
    readonly stateDir: string,
    library: string,
  ) {
    this.logPath = join(stateDir, 'log');
    this.limbo = join(stateDir, 'limbo');
    this.bootId = join(stateDir, 'boot_id');
    this.env = {
      LD_PRELOAD: library,
      CAIRN_POWERLOSS_ROOT: root,
      CAIRN_POWERLOSS_LOG: this.logPath,
      // libuv's io_uring path would bypass glibc, and with it the library.
      UV_USE_IO_URING: '0',
    };
    this.newBoot();
  }

  /**
   * After the process (and anything it started) was killed with SIGKILL and has exited: undoes
   * every change that was not durable, empties the log and limbo, and starts a new "boot".
   */
  async cut(opts: CutOptions = {}): Promise<CutReport> {
    const { records, tornBytes } = this.readLog();
    const bad = records.filter((r) => r.type === 'unsupported').map((r) => (r as { what: string }).what);
    if (bad.length > 0) {
      throw new PowerLossError(
        'POWERLOSS_UNSUPPORTED',
        `the log holds changes it cannot undo: ${bad.join('; ')}`,
      );
    }
    const report: CutReport = {
      records: records.length,
      tornBytes,
      writesReverted: 0,
      writesKept: 0,
      bytesReverted: 0,
      filesRemoved: 0,
      dirsRemoved: 0,
      entriesRestored: 0,
      renamesUndone: 0,
    };
    const rng = opts.seed === undefined ? undefined : new SeededRandom(opts.seed);
    const names = new Names(this.root, this.limbo);
    const masks = new Map<bigint, Mask>();
    const mask = (ino: bigint) => {
      let m = masks.get(ino);
      if (!m) {
        m = new Mask();
        masks.set(ino, m);
      }
      return m;
    };

    for (const { r, undo, kept } of decide(records, rng, opts.keep ?? 0.5)) {
      if (kept) report.writesKept++;
      if (!undo) {
        if (r.type === 'write') mask(r.ino).add(r.off, r.off + r.len);
        continue;
      }
      switch (r.type) {
        case 'write': {
          const path = names.path(r.ino);
          if (path === undefined) break;
          report.bytesReverted += restore(path, mask(r.ino), r.off, r.old, r.oldSize, r.off + r.len);
          report.writesReverted++;
          break;
        }
        case 'truncate': {
          const path = names.path(r.ino);
          if (path === undefined) break;
          report.bytesReverted += restore(path, mask(r.ino), r.newSize, r.old, r.oldSize, r.newSize);
          report.writesReverted++;
          break;
        }
        case 'create': {
          const dir = names.dir(r.dir, r.dirPath);
          if (dir === undefined) break;
          const path = join(dir, r.name);
          const st = lstatOrUndefined(path);
          if (!st) break;
          if (st.isDirectory()) {
            rmSync(path, { recursive: true, force: true });
            report.dirsRemoved++;
          } else {
            unlinkSync(path);
            report.filesRemoved++;
          }
          names.removed(path);
          break;
        }
        case 'unlink': {
          const dir = names.dir(r.dir, r.dirPath);
          if (dir === undefined) break;
          const path = join(dir, r.name);
          if (lstatOrUndefined(path)) break;
          this.bringBack(names, r.kind, r.mode, r.limbo, path);
          report.entriesRestored++;
          break;
        }
        case 'rename': {
          const fromDir = names.dir(r.fromDir, r.fromPath);
          const toDir = names.dir(r.toDir, r.toPath);
          if (fromDir === undefined || toDir === undefined) break;
          const from = join(fromDir, r.fromName);
          const to = join(toDir, r.toName);
          // Undone only if the name still holds what was moved, and its old name is free.
          if (inoOf(to) !== r.ino || lstatOrUndefined(from)) break;
          renameSync(to, from);
          names.moved(to, from);
          if (r.replacedKind !== 0) this.bringBack(names, r.replacedKind, r.replacedMode, r.limbo, to);
          report.renamesUndone++;
          break;
        }
      }
    }

    truncateSync(this.logPath, 0);
    for (const name of readdirSync(this.limbo)) unlinkSync(join(this.limbo, name));
    this.newBoot();
    return report;
  }

  /**
   * How many changes a cut now would undo (dropping everything not durable). Reads the log and
   * changes nothing: with the process stopped (SIGSTOP), a caller can pick a moment to cut at
   * which something is at stake.
   */
  unsynced(): number {
    return decide(this.readLog().records, undefined, 0).filter((d) => d.undo).length;
  }

  private readLog(): { records: LogRecord[]; tornBytes: number } {
    return parseLog(existsSync(this.logPath) ? readFileSync(this.logPath) : Buffer.alloc(0));
  }

  private bringBack(names: Names, kind: number, mode: number, limboName: string, path: string): void {
    if (kind === K_DIR) {
      mkdirSync(path, { mode });
    } else {
      const kept = join(this.limbo, limboName);
      if (kind !== K_FILE || !existsSync(kept)) {
        throw new PowerLossError('POWERLOSS_LOG', `cannot bring back ${path}: ${kept} is not in limbo`);
      }
      linkSync(kept, path);
    }
    const ino = inoOf(path);
    if (ino !== undefined) names.set(ino, path);
  }

  /** A new boot id for LMDB to read (powerloss.c serves it): the next open is after a "reboot". */
  private newBoot(): void {
    const tmp = `${this.bootId}.tmp`;
    writeFileSync(tmp, `${randomUUID()}\n`);
    renameSync(tmp, this.bootId);
  }
}

function lstatOrUndefined(path: string) {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

/**
 * Undoes one change to the file at `path`: the bytes from `at` are put back to `old` and the
 * file to `oldSize`, except where later kept writes must stay; bytes the change added past the
 * old end (up to `end`) that must stay in the file because it is kept longer read as zeros.
 * Returns the bytes written back.
 */
function restore(path: string, m: Mask, at: number, old: Buffer, oldSize: number, end: number): number {
  const fd = openSync(path, 'r+');
  try {
    const size = Math.max(oldSize, m.minSize);
    if (fstatSync(fd).size !== size) ftruncateSync(fd, size);
    let written = 0;
    for (const [s, e] of m.free(at, at + old.length)) {
      writeAll(fd, old.subarray(s - at, e - at), s);
      written += e - s;
    }
    const zerosFrom = Math.max(at + old.length, oldSize);
    const zerosTo = Math.min(end, size);
    if (zerosFrom < zerosTo)
      for (const [s, e] of m.free(zerosFrom, zerosTo)) writeAll(fd, Buffer.alloc(e - s), s);
    return written;
  } finally {
    closeSync(fd);
  }
}

function writeAll(fd: number, data: Buffer, position: number): void {
  for (let done = 0; done < data.length; )
    done += writeSync(fd, data, done, data.length - done, position + done);
}

/**
 * A layer over `root` whose log, limbo and boot id live in `stateDir` (created if missing; it
 * must be on the root's file system, where limbo's hard links can reach, and outside the root).
 */
export async function powerLossLayer(root: string, stateDir: string): Promise<PowerLossLayer> {
  const library = await buildPowerLoss();
  mkdirSync(stateDir, { recursive: true });
  mkdirSync(join(stateDir, 'limbo'), { recursive: true });
  const realRoot = realpathSync(root);
  const realState = realpathSync(stateDir);
  if (statSync(realRoot).dev !== statSync(realState).dev) {
    throw new PowerLossError(
      'POWERLOSS_SETUP',
      `the state directory ${stateDir} must be on the same file system as ${root} (limbo keeps hard links)`,
    );
  }
  if (realState === realRoot || realState.startsWith(`${realRoot}/`)) {
    throw new PowerLossError('POWERLOSS_SETUP', `the state directory ${stateDir} must be outside ${root}`);
  }
  return new PowerLossLayer(realRoot, realState, library);
}
