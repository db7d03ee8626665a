import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { openStore } from '../../src/store/index.js';
import type { Store } from '../../src/store/types.js';
import { makeTempDir, removeTempDir } from '../support/tmp.js';
import { pattern } from './helpers.js';

const CHUNK = 4096;
const FILES = 12;

/**
 * A store of FILES one-chunk files (file k holds pattern(k)), reopened with a cache of two
 * blocks, so that reads load blocks from disk into pooled memory and evict one another.
 */
async function withReopened(fn: (store: Store) => Promise<void>): Promise<void> {
  const dir = makeTempDir('store-lend');
  try {
    const first = await openStore({ dir, chunkSize: CHUNK, inlineMax: 64 });
    for (let k = 1; k <= FILES; k++) {
      await first.writeFile({ file: k, offset: 0, data: pattern(k, CHUNK), stable: true });
    }
    await first.close();
    const store = await openStore({ dir, blockCacheBytes: 2 * CHUNK });
    try {
      await fn(store);
    } finally {
      await store.close();
    }
  } finally {
    removeTempDir(dir);
  }
}

const read = (store: Store, k: number, lend?: (release: () => void) => void) =>
  store.readFile(k, 0, CHUNK, CHUNK, lend);

describe('store: block memory lent to reads', () => {
  it('keeps a lent block intact while other loads churn the cache, and reuses it once released', async () => {
    await withReopened(async (store) => {
      let release: (() => void) | undefined;
      const lent = await read(store, 1, (r) => {
        release = r;
      });
      assert.ok(release, 'a whole-chunk read lends the block');
      for (let k = 2; k <= FILES; k++) assert.deepEqual(Buffer.from(await read(store, k)), pattern(k, CHUNK));
      assert.deepEqual(Buffer.from(lent), pattern(1, CHUNK), 'held memory is not reused');
      release();
      release(); // a second release changes nothing
      const seen = new Set<ArrayBufferLike>();
      for (let round = 0; round < 3; round++) {
        for (let k = 2; k <= FILES; k++) {
          const got = await read(store, k, (r) => r());
          seen.add(got.buffer);
        }
      }
      assert.ok(seen.has(lent.buffer), 'the released buffer serves later loads');
    });
  });

  it('never reuses the memory of a read that did not ask to borrow it', async () => {
    await withReopened(async (store) => {
      const kept = await read(store, 3);
      for (let round = 0; round < 3; round++) {
        for (let k = 1; k <= FILES; k++) await read(store, k, (r) => r());
      }
      assert.deepEqual(Buffer.from(kept), pattern(3, CHUNK));
    });
  });

  it('every read sees its file while others borrow, release and race for the same blocks', async () => {
    await withReopened(async (store) => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(
            fc.record({ file: fc.integer({ min: 1, max: FILES }), hold: fc.nat(3), lend: fc.boolean() }),
            {
              minLength: 1,
              maxLength: 40,
            },
          ),
          async (reads) => {
            const releases: (() => void)[] = [];
            const got = await Promise.all(
              reads.map(async (r) => {
                let release: (() => void) | undefined;
                const data = await read(store, r.file, r.lend ? (f) => (release = f) : undefined);
                // Checked after every read of the batch has loaded: a buffer reused too early shows.
                return { ...r, data, release: () => release?.() };
              }),
            );
            for (const g of got) {
              assert.deepEqual(Buffer.from(g.data), pattern(g.file, CHUNK));
              if (g.hold === 0) g.release();
              else releases.push(g.release);
            }
            for (const g of got) assert.deepEqual(Buffer.from(g.data).subarray(0, 64), pattern(g.file, 64));
            for (const f of releases) f();
          },
        ),
        { numRuns: 60 },
      );
    });
  });
});
