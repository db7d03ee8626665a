/** Block checksums: CRC-32 for new blocks, legacy truncated SHA-256 still verified. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { blockChecksum, CHECKSUM_BYTES, checksumMatches } from '../../src/store/checksum.js';
import { pattern } from './helpers.js';

const sha16 = (data: Uint8Array) => createHash('sha256').update(data).digest().subarray(0, 16);

describe('block checksums', () => {
  it('a new block gets a 4-byte CRC-32 that its content matches', () => {
    const data = pattern(3, 1 << 20);
    const h = blockChecksum(data);
    assert.equal(h.length, CHECKSUM_BYTES);
    assert.equal(checksumMatches(data, h), true);
  });

  it('any flipped bit, and a block torn to zeros from any point, fail the CRC-32', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 70_000 }),
        fc.nat(),
        fc.integer({ min: 0, max: 7 }),
        (n, at, bit) => {
          const data = pattern(n, n);
          const h = blockChecksum(data);
          const flipped = Buffer.from(data);
          flipped[at % n] ^= 1 << bit;
          assert.equal(checksumMatches(flipped, h), false);
          const torn = Buffer.from(data);
          torn.fill(0, at % n);
          if (!torn.equals(data)) assert.equal(checksumMatches(torn, h), false);
        },
      ),
      { numRuns: 200 },
    );
  });

  for (const size of [1000, 1 << 20]) {
    it(`a legacy SHA-256 of ${size} bytes (16 bytes kept) still verifies, and a changed block fails it`, () => {
      const data = pattern(7, size);
      assert.equal(checksumMatches(data, sha16(data)), true);
      const changed = Buffer.from(data);
      changed[size - 1] ^= 0x80;
      assert.equal(checksumMatches(changed, sha16(data)), false);
    });
  }

  it('a missing checksum, or one of another length, matches nothing', () => {
    const data = pattern(1, 100);
    assert.equal(checksumMatches(data, undefined), false);
    assert.equal(checksumMatches(data, sha16(data).subarray(0, 8)), false);
  });
});
