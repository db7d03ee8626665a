/**
 * NFSv3 file handles. A handle names one inode of one export and must survive server restarts
 * with no per-client state, so it carries everything needed to find the inode again:
 *
 *   offset  size  field
 *        0     1  format version (1)
 *        1     2  export id, big-endian
 *        3     8  inode number, big-endian
 *       11     4  inode generation, big-endian
 *       15    16  HMAC-SHA256 over bytes 0..14 with the server's key, truncated
 *
 * 31 bytes, well under NFS3_FHSIZE (64). The tag makes handles unforgeable: a client cannot
 * reach an inode, or another export, by editing bytes, so a handle that fails here is
 * NFS3ERR_BADHANDLE. A handle that passes but names an inode that is gone, or whose generation
 * differs, is NFS3ERR_STALE — the server decides that, with the namespace.
 *
 * The key lives in DATA/nfs-handle.key and is never replaced behind the operator's back: a new
 * key would turn every handle clients hold into BADHANDLE.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  linkSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { CairnError } from '../errors.js';

export const HANDLE_VERSION = 1;
export const HANDLE_TAG_BYTES = 16;
export const HANDLE_LENGTH = 1 + 2 + 8 + 4 + HANDLE_TAG_BYTES;
/** RFC 1813's NFS3_FHSIZE: the largest handle a client will carry. */
export const NFS3_FHSIZE = 64;
export const HANDLE_KEY_BYTES = 32;
export const HANDLE_KEY_FILE = 'nfs-handle.key';

const BODY = HANDLE_LENGTH - HANDLE_TAG_BYTES;

/** What a handle names. `ino` is a safe integer (at most 2^53 - 1); `gen` a 32-bit unsigned. */
export interface HandleFields {
  readonly exportId: number;
  readonly ino: number;
  readonly gen: number;
}

export type BadHandleReason = 'length' | 'version' | 'tag';

/** A handle this server did not issue, or one damaged on the way: NFS3ERR_BADHANDLE. */
export class BadHandleError extends CairnError {
  readonly reason: BadHandleReason;
  constructor(reason: BadHandleReason, detail: string) {
    super('NFS3ERR_BADHANDLE', `bad file handle: ${detail}`);
    this.reason = reason;
  }
}

/** The handle key file is missing in a way that cannot be repaired, damaged, or unwritable. */
export class HandleKeyError extends CairnError {}

/** How many verified handles a key remembers (about 100 bytes each). */
const VERIFIED_CACHE = 8192;

/** The server's secret for authenticating handles. */
export class HandleKey {
  private readonly key: Buffer;
  /**
   * Handles already verified (or issued), by their exact bytes. Every NFS call carries at least
   * one handle and clients reuse a few of them heavily (the directory they work in), while an
   * HMAC costs a few microseconds: a hit needs all 31 bytes equal to a handle whose tag was
   * good, so it proves exactly what recomputing the tag would.
   */
  private readonly verified = new Map<string, HandleFields>();

  private constructor(key: Buffer) {
    this.key = key;
  }

  /** A key from its 32 bytes (tests, the simulator); `loadOrCreate` is for servers. */
  static fromBytes(bytes: Uint8Array): HandleKey {
    if (bytes.length !== HANDLE_KEY_BYTES) {
      throw new HandleKeyError(
        'NFS_HANDLE_KEY_INVALID',
        `a handle key is ${HANDLE_KEY_BYTES} bytes, not ${bytes.length}`,
      );
    }
    return new HandleKey(Buffer.from(bytes));
  }

  /** A fresh random key, held in memory only. */
  static generate(): HandleKey {
    return new HandleKey(randomBytes(HANDLE_KEY_BYTES));
  }

  /**
   * The key in `dataDir`/nfs-handle.key, created if the file does not exist. A file of the wrong
   * size is an error (code NFS_HANDLE_KEY_INVALID), never silently replaced: it would make every
   * handle clients hold invalid, and it usually means the data directory itself is damaged.
   */
  static loadOrCreate(dataDir: string): HandleKey {
    const path = join(dataDir, HANDLE_KEY_FILE);
    const existing = readKeyFile(path);
    if (existing) return new HandleKey(existing);
    const created = randomBytes(HANDLE_KEY_BYTES);
    const tmp = join(dataDir, `${HANDLE_KEY_FILE}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      const fd = openSync(tmp, 'wx', 0o600);
      try {
        writeAll(fd, created);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      // link, unlike rename, fails if the name exists: of two processes creating the key at
      // once, exactly one wins and the other reads the winner's key instead of replacing it.
      let linked = false;
      try {
        linkSync(tmp, path);
        linked = true;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') {
          unlinkSync(tmp);
          const winner = readKeyFile(path);
          if (winner) return new HandleKey(winner);
          throw new HandleKeyError('NFS_HANDLE_KEY_INVALID', `${path} vanished while being created`);
        }
        // File systems without hard links: rename is still atomic, without the no-replace guard.
        if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw e;
      }
      if (linked) unlinkSync(tmp);
      else renameSync(tmp, path);
      fsyncDir(dataDir);
    } catch (e) {
      if (e instanceof HandleKeyError) throw e;
      try {
        unlinkSync(tmp);
      } catch {
        // Already linked and removed, or never created.
      }
      throw new HandleKeyError(
        'NFS_HANDLE_KEY_UNWRITABLE',
        `cannot create ${path}: ${(e as Error).message}`,
        {
          cause: e,
        },
      );
    }
    return new HandleKey(created);
  }

  /** @internal The tag over `body`; used by encodeHandle and decodeHandle. */
  tag(body: Uint8Array): Buffer {
    return createHmac('sha256', this.key).update(body).digest().subarray(0, HANDLE_TAG_BYTES);
  }

  /** @internal */
  recall(handle: string): HandleFields | undefined {
    return this.verified.get(handle);
  }

  /** @internal */
  remember(handle: string, fields: HandleFields): void {
    if (this.verified.size >= VERIFIED_CACHE) {
      // Oldest first: a handle still in use is soon verified and remembered again.
      this.verified.delete(this.verified.keys().next().value as string);
    }
    this.verified.set(handle, fields);
  }
}

function readKeyFile(path: string): Buffer | undefined {
  let bytes: Buffer;
  try {
    if (!statSync(path).isFile()) {
      throw new HandleKeyError('NFS_HANDLE_KEY_INVALID', `${path} is not a regular file`);
    }
    bytes = readFileSync(path);
  } catch (e) {
    if (e instanceof HandleKeyError) throw e;
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new HandleKeyError('NFS_HANDLE_KEY_UNREADABLE', `cannot read ${path}: ${(e as Error).message}`, {
      cause: e,
    });
  }
  if (bytes.length !== HANDLE_KEY_BYTES) {
    throw new HandleKeyError(
      'NFS_HANDLE_KEY_INVALID',
      `${path} holds ${bytes.length} bytes, not ${HANDLE_KEY_BYTES}: restore it from a backup; ` +
        'deleting it makes every file handle clients hold invalid (they must remount)',
    );
  }
  return bytes;
}

function writeAll(fd: number, data: Buffer): void {
  let off = 0;
  while (off < data.length) off += writeSync(fd, data, off, data.length - off);
}

/** Makes a new name in `dir` durable: the rename or link is in the directory, not the file. */
function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function checkFields(f: HandleFields): void {
  if (!Number.isInteger(f.exportId) || f.exportId < 1 || f.exportId > 0xffff) {
    throw new RangeError(`export id ${f.exportId} is not an integer from 1 to 65535`);
  }
  if (!Number.isSafeInteger(f.ino) || f.ino < 0) {
    throw new RangeError(`inode number ${f.ino} is not a non-negative safe integer`);
  }
  if (!Number.isInteger(f.gen) || f.gen < 0 || f.gen > 0xffffffff) {
    throw new RangeError(`generation ${f.gen} is not a 32-bit unsigned integer`);
  }
}

/** The handle for an inode of an export. Throws RangeError for fields out of range (a server bug). */
export function encodeHandle(key: HandleKey, fields: HandleFields): Buffer {
  checkFields(fields);
  const out = Buffer.allocUnsafe(HANDLE_LENGTH);
  out[0] = HANDLE_VERSION;
  out.writeUInt16BE(fields.exportId, 1);
  out.writeBigUInt64BE(BigInt(fields.ino), 3);
  out.writeUInt32BE(fields.gen, 11);
  key.tag(out.subarray(0, BODY)).copy(out, BODY);
  key.remember(
    out.toString('latin1'),
    Object.freeze({ exportId: fields.exportId, ino: fields.ino, gen: fields.gen }),
  );
  return out;
}

/**
 * What a handle names, after checking that this server's key made it. Throws BadHandleError
 * (NFS3ERR_BADHANDLE) for anything else.
 */
export function decodeHandle(key: HandleKey, bytes: Uint8Array): HandleFields {
  if (bytes.length !== HANDLE_LENGTH) {
    throw new BadHandleError('length', `${bytes.length} bytes, expected ${HANDLE_LENGTH}`);
  }
  if (bytes[0] !== HANDLE_VERSION) throw new BadHandleError('version', `unknown format version ${bytes[0]}`);
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const text = buf.toString('latin1');
  const known = key.recall(text);
  if (known) return known;
  const expected = key.tag(buf.subarray(0, BODY));
  if (!timingSafeEqual(expected, buf.subarray(BODY))) {
    throw new BadHandleError('tag', 'authentication tag does not match');
  }
  const ino = buf.readBigUInt64BE(3);
  // Only reachable with a key that signed such a handle, which encodeHandle never does.
  if (ino > BigInt(Number.MAX_SAFE_INTEGER))
    throw new BadHandleError('tag', `inode number ${ino} out of range`);
  const fields = Object.freeze({
    exportId: buf.readUInt16BE(1),
    ino: Number(ino),
    gen: buf.readUInt32BE(11),
  });
  key.remember(text, fields);
  return fields;
}
