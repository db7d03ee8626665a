/**
 * A node's persistent identity: a random 16-byte node id and an Ed25519 key pair, created once in
 * the node's data directory and loaded on every later start. The id names the node in the
 * layout, in membership and on every cluster message; the key lets it sign what only it may say
 * (docs/SECURITY.md). An identity is never silently replaced: a new one would make the node a
 * stranger to the cluster while its old id still holds data, so a damaged file is an error.
 *
 * DATA/cluster-identity, 124 bytes, mode 0600:
 *
 *   offset  size  field
 *        0     8  magic "CAIRN-ID"
 *        8     4  format version (1), big-endian
 *       12    16  node id
 *       28    32  Ed25519 private key (the RFC 8032 seed)
 *       60    32  Ed25519 public key
 *       92    32  SHA-256 of bytes 0..91
 *
 * DATA/cluster-boot, 48 bytes: magic "CAIRN-BT", the boot epoch (unsigned 64-bit, big-endian)
 * and a SHA-256 of the first 16 bytes. Every start increments it before the node sends anything,
 * so (boot epoch, message counter) never repeats across restarts (auth.ts).
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  linkSync,
  lstatSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { CairnError } from '../errors.js';

export const NODE_ID_BYTES = 16;
export const IDENTITY_FILE = 'cluster-identity';
export const BOOT_FILE = 'cluster-boot';
export const IDENTITY_FILE_BYTES = 124;
const BOOT_FILE_BYTES = 48;
const IDENTITY_MAGIC = Buffer.from('CAIRN-ID', 'latin1');
const BOOT_MAGIC = Buffer.from('CAIRN-BT', 'latin1');
const IDENTITY_VERSION = 1;
/** Boot epochs travel as 32-bit values in every envelope (auth.x). */
export const MAX_BOOT_EPOCH = 0xffffffff;

/** DER prefixes that wrap a raw 32-byte Ed25519 seed (PKCS#8) and public key (SPKI), RFC 8410. */
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');

/** Codes: IDENTITY_DAMAGED, IDENTITY_INSECURE, IDENTITY_UNREADABLE, IDENTITY_UNWRITABLE, IDENTITY_BOOT_EXHAUSTED. */
export class IdentityError extends CairnError {}

export interface NodeIdentity {
  readonly nodeId: Buffer;
  /** The node id as 32 lowercase hex digits: how layouts, logs and `cairn status` name it. */
  readonly nodeIdHex: string;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** The 32-byte raw public key, as carried in join messages. */
  readonly publicKeyRaw: Buffer;
}

export function ed25519PublicKeyFromRaw(raw: Uint8Array): KeyObject {
  if (raw.length !== 32)
    throw new IdentityError('IDENTITY_BAD_KEY', `an Ed25519 public key is 32 bytes, not ${raw.length}`);
  return createPublicKey({ key: Buffer.concat([SPKI_ED25519, raw]), format: 'der', type: 'spki' });
}

function fromParts(nodeId: Buffer, seed: Buffer): NodeIdentity {
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519, seed]),
    format: 'der',
    type: 'pkcs8',
  });
  const publicKey = createPublicKey(privateKey);
  const publicKeyRaw = publicKey.export({ format: 'der', type: 'spki' }).subarray(SPKI_ED25519.length);
  return {
    nodeId,
    nodeIdHex: nodeId.toString('hex'),
    privateKey,
    publicKey,
    publicKeyRaw: Buffer.from(publicKeyRaw),
  };
}

/** A fresh identity held in memory only (tests, the simulator); `loadOrCreateIdentity` is for nodes. */
export function generateIdentity(): NodeIdentity {
  const { privateKey } = generateKeyPairSync('ed25519');
  const seed = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(PKCS8_ED25519.length);
  return fromParts(randomBytes(NODE_ID_BYTES), Buffer.from(seed));
}

export function encodeIdentity(id: NodeIdentity): Buffer {
  const out = Buffer.alloc(IDENTITY_FILE_BYTES);
  IDENTITY_MAGIC.copy(out, 0);
  out.writeUInt32BE(IDENTITY_VERSION, 8);
  id.nodeId.copy(out, 12);
  const seed = id.privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(PKCS8_ED25519.length);
  Buffer.from(seed).copy(out, 28);
  id.publicKeyRaw.copy(out, 60);
  createHash('sha256').update(out.subarray(0, 92)).digest().copy(out, 92);
  return out;
}

/** Parses an identity file's bytes; anything but a whole, self-consistent file is IDENTITY_DAMAGED. */
export function decodeIdentity(bytes: Uint8Array, where = 'identity'): NodeIdentity {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const damaged = (why: string) =>
    new IdentityError(
      'IDENTITY_DAMAGED',
      `${where} is damaged (${why}); restore it from a backup — a new identity would make this node a stranger to its cluster`,
    );
  if (b.length !== IDENTITY_FILE_BYTES) throw damaged(`${b.length} bytes, not ${IDENTITY_FILE_BYTES}`);
  if (!b.subarray(0, 8).equals(IDENTITY_MAGIC)) throw damaged('not an identity file');
  const version = b.readUInt32BE(8);
  if (version !== IDENTITY_VERSION) throw damaged(`format version ${version}`);
  if (!createHash('sha256').update(b.subarray(0, 92)).digest().equals(b.subarray(92)))
    throw damaged('checksum mismatch');
  const id = fromParts(Buffer.from(b.subarray(12, 28)), Buffer.from(b.subarray(28, 60)));
  // The checksum catches damage; this catches a file assembled from mismatched halves.
  if (!id.publicKeyRaw.equals(b.subarray(60, 92))) throw damaged('public key does not match private key');
  return id;
}

function readIfExists(path: string, expectPrivate: boolean): Buffer | undefined {
  try {
    const st = lstatSync(path);
    if (!st.isFile()) throw new IdentityError('IDENTITY_DAMAGED', `${path} is not a regular file`);
    // Like ssh with a private key: readable by others means it may already be someone else's.
    if (expectPrivate && (st.mode & 0o077) !== 0) {
      throw new IdentityError(
        'IDENTITY_INSECURE',
        `${path} is accessible by other users (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`,
      );
    }
    return readFileSync(path);
  } catch (e) {
    if (e instanceof IdentityError) throw e;
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new IdentityError('IDENTITY_UNREADABLE', `cannot read ${path}: ${(e as Error).message}`, {
      cause: e,
    });
  }
}

/** The identity in `dataDir`, or undefined when the node has none yet. */
export function loadIdentity(dataDir: string): NodeIdentity | undefined {
  const path = join(dataDir, IDENTITY_FILE);
  const bytes = readIfExists(path, true);
  return bytes === undefined ? undefined : decodeIdentity(bytes, path);
}

/**
 * The node's identity, created on its first start. The boot file is created before the identity,
 * so an identity on disk always has a boot epoch beside it.
 */
export function loadOrCreateIdentity(dataDir: string): NodeIdentity {
  const existing = loadIdentity(dataDir);
  if (existing) return existing;
  if (readIfExists(join(dataDir, BOOT_FILE), false) === undefined) writeBootFile(dataDir, 0, false);
  const created = generateIdentity();
  const won = writeAtomic(dataDir, IDENTITY_FILE, encodeIdentity(created), false);
  // Another process created it first (the data-dir lock normally prevents this): use theirs.
  return won ? created : (loadIdentity(dataDir) as NodeIdentity);
}

function readBootEpoch(dataDir: string): number | undefined {
  const path = join(dataDir, BOOT_FILE);
  const b = readIfExists(path, false);
  if (b === undefined) return undefined;
  const damaged = (why: string) =>
    new IdentityError(
      'IDENTITY_DAMAGED',
      `${path} is damaged (${why}); restoring an older copy is unsafe — see docs/SECURITY.md, "Boot epochs"`,
    );
  if (b.length !== BOOT_FILE_BYTES) throw damaged(`${b.length} bytes, not ${BOOT_FILE_BYTES}`);
  if (!b.subarray(0, 8).equals(BOOT_MAGIC)) throw damaged('not a boot file');
  if (!createHash('sha256').update(b.subarray(0, 16)).digest().equals(b.subarray(16)))
    throw damaged('checksum mismatch');
  const epoch = b.readBigUInt64BE(8);
  if (epoch > BigInt(MAX_BOOT_EPOCH)) throw damaged(`epoch ${epoch} out of range`);
  return Number(epoch);
}

function writeBootFile(dataDir: string, epoch: number, replace: boolean): void {
  const b = Buffer.alloc(BOOT_FILE_BYTES);
  BOOT_MAGIC.copy(b, 0);
  b.writeBigUInt64BE(BigInt(epoch), 8);
  createHash('sha256').update(b.subarray(0, 16)).digest().copy(b, 16);
  writeAtomic(dataDir, BOOT_FILE, b, replace);
}

/**
 * Starts a new boot: increments the persisted boot epoch, durably, and returns it (1 on the first
 * start). Call once per process start, after `loadOrCreateIdentity` and before sending anything.
 * A missing boot file beside an existing identity is an error: starting again from 1 could
 * reuse epochs that peers have seen.
 */
export function nextBootEpoch(dataDir: string): number {
  const current = readBootEpoch(dataDir);
  if (current === undefined) {
    if (loadIdentity(dataDir) !== undefined) {
      throw new IdentityError(
        'IDENTITY_DAMAGED',
        `${join(dataDir, BOOT_FILE)} is missing beside an existing identity; see docs/SECURITY.md, "Boot epochs"`,
      );
    }
    writeBootFile(dataDir, 1, false);
    return 1;
  }
  if (current >= MAX_BOOT_EPOCH) {
    throw new IdentityError(
      'IDENTITY_BOOT_EXHAUSTED',
      'the boot epoch is exhausted: give the node a new identity',
    );
  }
  writeBootFile(dataDir, current + 1, true);
  return current + 1;
}

/**
 * Writes `name` in `dir` so that it is either absent or complete after a crash: a temporary file,
 * fsync, link (no replace) or rename (replace), fsync of the directory. Returns false when
 * `replace` is off and the name already existed.
 */
function writeAtomic(dir: string, name: string, data: Buffer, replace: boolean): boolean {
  const path = join(dir, name);
  const tmp = join(dir, `.${name}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    const fd = openSync(tmp, 'wx', 0o600);
    try {
      let off = 0;
      while (off < data.length) off += writeSync(fd, data, off, data.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    let won = true;
    if (replace) renameSync(tmp, path);
    else {
      try {
        // link fails if the name exists, unlike rename: a first identity is never overwritten.
        linkSync(tmp, path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        won = false;
      }
      unlinkSync(tmp);
    }
    const dfd = openSync(dir, 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
    return won;
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      // Renamed, linked and removed, or never created.
    }
    throw new IdentityError('IDENTITY_UNWRITABLE', `cannot write ${path}: ${(e as Error).message}`, {
      cause: e,
    });
  }
}
