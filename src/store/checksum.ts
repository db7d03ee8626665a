/**
 * Block checksums. A chunk record keeps its block's checksum in `h`, and the length of `h` says
 * which one it is:
 *
 * - 4 bytes: CRC-32 (zlib's polynomial, big-endian), what the store writes. It is there to
 *   catch what a disk does to a block — a write torn by a power loss, a block the file system
 *   lost or zeroed, bit rot — not what an attacker with write access to the data directory does
 *   (who could rewrite the records as easily). CRC-32 detects every error burst of up to 32 bits
 *   and misses a random corruption with probability 2^-32; btrfs (CRC-32C) and ZFS (Fletcher-4)
 *   make the same choice for data. A block's checksum is on the path of every WRITE and of every
 *   block read, on the event loop: @node-rs/crc32 (carry-less multiply, the same CRC as zlib's)
 *   takes 80 µs a MiB here, node:zlib's 190 µs, SHA-256 with SHA-NI 650 µs (what each was worth
 *   through NFS is in docs/BENCHMARKS.md).
 * - 16 bytes: SHA-256 truncated, what stores written before the change hold; still verified.
 */
import { createHash } from 'node:crypto';
import { crc32 } from '@node-rs/crc32';

export const CHECKSUM_BYTES = 4;
const SHA256_BYTES = 16;

/** The checksum a new block's record keeps. */
export function blockChecksum(data: Uint8Array): Buffer {
  const h = Buffer.allocUnsafe(CHECKSUM_BYTES);
  h.writeUInt32BE(crc32(data));
  return h;
}

/** Whether `data` has checksum `h`, of either kind. */
export function checksumMatches(data: Uint8Array, h: Uint8Array | undefined): boolean {
  if (!h) return false;
  if (h.length === CHECKSUM_BYTES) return blockChecksum(data).equals(h);
  return (
    h.length === SHA256_BYTES &&
    createHash('sha256').update(data).digest().subarray(0, SHA256_BYTES).equals(h)
  );
}
