import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { openStore, StoreCorruptError } from '../../src/store/index.js';
import type { Store } from '../../src/store/types.js';
import { makeTempDir, removeTempDir } from '../support/tmp.js';
import { waitUntil } from '../support/wait.js';
import { listBlocks, pattern, withStore } from './helpers.js';

const MiB = 1 << 20;

/** A file's content as the fs layer would keep it: bytes plus a size. */
class Model {
  bytes = Buffer.alloc(0);
  write(offset: number, data: Uint8Array): void {
    const end = offset + data.length;
    if (end > this.bytes.length) {
      const grown = Buffer.alloc(end);
      this.bytes.copy(grown);
      this.bytes = grown;
    }
    this.bytes.set(data, offset);
  }
  truncate(size: number): void {
    const next = Buffer.alloc(size);
    this.bytes.copy(next, 0, 0, Math.min(size, this.bytes.length));
    this.bytes = next;
  }
  read(offset: number, length: number): Buffer {
    const end = Math.min(offset + length, this.bytes.length);
    return end <= offset ? Buffer.alloc(0) : Buffer.from(this.bytes.subarray(offset, end));
  }
}

type Op =
  | { op: 'write'; offset: number; length: number; seed: number; stable: boolean }
  | { op: 'truncate'; size: number }
  | { op: 'read'; offset: number; length: number }
  | { op: 'commit' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant('write' as const),
      offset: fc.oneof(fc.integer({ min: 0, max: 12_000 }), fc.constantFrom(0, 2048, 4096, 6144)),
      length: fc.oneof(fc.integer({ min: 0, max: 5000 }), fc.constantFrom(1, 512, 2048, 4096)),
      seed: fc.integer({ min: 1, max: 1 << 30 }),
      stable: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant('truncate' as const), size: fc.integer({ min: 0, max: 14_000 }) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('read' as const),
      offset: fc.integer({ min: 0, max: 14_000 }),
      length: fc.integer({ min: 0, max: 9000 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ op: 'commit' as const }) },
);

async function applyOps(store: Store, file: number, ops: Op[], model: Model): Promise<void> {
  let size = 0;
  for (const o of ops) {
    if (o.op === 'write') {
      const data = pattern(o.seed, o.length);
      model.write(o.offset, data);
      const end = o.offset + o.length;
      await store.writeFile({
        file,
        offset: o.offset,
        data,
        stable: o.stable,
        update: (tx) => {
          if (end > size) size = end;
          tx.put(['size', file], size);
        },
      });
    } else if (o.op === 'truncate') {
      model.truncate(o.size);
      await store.write((tx) => {
        tx.truncate(file, o.size);
        size = o.size;
        tx.put(['size', file], size);
      });
    } else if (o.op === 'read') {
      const got = Buffer.from(await store.readFile(file, o.offset, o.length, size));
      assert.deepEqual(got, model.read(o.offset, o.length), `read ${o.offset}+${o.length}`);
    } else {
      await store.commitFile(file);
    }
    assert.equal(store.get<number>(['size', file])?.value ?? 0, model.bytes.length);
  }
  const all = Buffer.from(await store.readFile(file, 0, size + 100, size));
  assert.ok(all.equals(model.bytes), 'whole content matches the model');
}

describe('store file content', () => {
  it('matches an in-memory model under random writes, truncates, reads and commits (and after reopen)', async () => {
    const dir = makeTempDir('store-model');
    let run = 0;
    try {
      let store = await openStore({ dir, chunkSize: 2048, inlineMax: 512 });
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 25 }), async (ops) => {
          const file = ++run;
          const model = new Model();
          await applyOps(store, file, ops, model);
          if (run % 10 === 0) {
            await store.close();
            store = await openStore({ dir });
            const size = model.bytes.length;
            const all = Buffer.from(await store.readFile(file, 0, size, size));
            assert.ok(all.equals(model.bytes), 'content survives reopen');
          }
        }),
        { numRuns: 80 },
      );
      await store.close();
    } finally {
      removeTempDir(dir);
    }
  });

  it('concurrent writes to one file apply in call order', async () => {
    await withStore(
      'fileorder',
      async (store) => {
        const model = new Model();
        const writes: Promise<void>[] = [];
        for (let i = 0; i < 100; i++) {
          const offset = (i * 1237) % 9000;
          const data = pattern(i + 1, 100 + ((i * 31) % 3000));
          model.write(offset, data);
          writes.push(store.writeFile({ file: 7, offset, data, stable: i % 3 === 0 }));
        }
        await Promise.all(writes);
        const size = model.bytes.length;
        assert.ok(Buffer.from(await store.readFile(7, 0, size, size)).equals(model.bytes));
      },
      { chunkSize: 2048, inlineMax: 512 },
    );
  });

  it('sparse files store no holes and read zeros there; reads past size are clamped', async () => {
    await withStore('sparse', async (store, dir) => {
      const data = pattern(3, 10_000);
      await store.writeFile({ file: 1, offset: 5 * MiB + 17, data, stable: true });
      const size = 5 * MiB + 17 + data.length;
      assert.equal(listBlocks(dir).length, 1, 'one block for the one chunk written');
      const head = await store.readFile(1, 0, 5 * MiB, size);
      assert.equal(head.length, 5 * MiB);
      assert.ok(head.every((b) => b === 0));
      const tail = Buffer.from(await store.readFile(1, 5 * MiB, MiB, size));
      assert.equal(tail.length, 17 + data.length);
      assert.ok(tail.subarray(0, 17).every((b) => b === 0));
      assert.ok(tail.subarray(17).equals(data));
      assert.equal((await store.readFile(1, size, 100, size)).length, 0);
      assert.equal((await store.readFile(1, size + 5, 100, size)).length, 0);
      // A size larger than what is stored reads zeros (setattr grew the file).
      const grown = await store.readFile(1, size - 1, 10, size + 9);
      assert.equal(grown.length, 10);
      assert.equal(grown[0], data[data.length - 1]);
      assert.ok(grown.subarray(1).every((b) => b === 0));
    });
  });

  it('truncate then grow reads zeros, with no I/O at truncate', async () => {
    await withStore('trunc', async (store, dir) => {
      const data = pattern(9, 3 * MiB);
      await store.writeFile({ file: 2, offset: 0, data, stable: true });
      const blocksBefore = listBlocks(dir);
      await store.write((tx) => tx.truncate(2, MiB + 100));
      // Grow again by writing further on: what lay between is zeros, not the old bytes.
      await store.writeFile({ file: 2, offset: 2 * MiB + 50, data: Buffer.from('end'), stable: true });
      const size = 2 * MiB + 53;
      const all = Buffer.from(await store.readFile(2, 0, size, size));
      assert.ok(all.subarray(0, MiB + 100).equals(data.subarray(0, MiB + 100)));
      assert.ok(all.subarray(MiB + 100, 2 * MiB + 50).every((b) => b === 0));
      assert.equal(all.subarray(2 * MiB + 50).toString(), 'end');
      // The dropped chunk's block is freed once the truncate is durable.
      await store.sync();
      await waitUntil(
        'the truncated chunk block to be freed',
        async () => !listBlocks(dir).includes(blocksBefore[2]),
      );
      await store.write((tx) => tx.dropContent(2));
      await waitUntil(
        'every block of the dropped file to be freed',
        async () => listBlocks(dir).length === 0,
      );
      assert.equal(
        (await store.readFile(2, 0, 100, 100)).every((b) => b === 0),
        true,
      );
    });
  });

  it('keeps small files inline (no block files) and overwritten blocks are freed', async () => {
    await withStore('inline', async (store, dir) => {
      for (let f = 1; f <= 50; f++) {
        await store.writeFile({ file: f, offset: 0, data: pattern(f, 4096), stable: true });
      }
      assert.equal(listBlocks(dir).length, 0);
      for (let f = 1; f <= 50; f++) {
        assert.ok(Buffer.from(await store.readFile(f, 0, 4096, 4096)).equals(pattern(f, 4096)));
      }
      await store.writeFile({ file: 1, offset: 4096, data: Buffer.from('x'), stable: true });
      assert.equal(listBlocks(dir).length, 1, 'growing past the inline limit moves the chunk to a block');
      await store.writeFile({ file: 1, offset: 0, data: pattern(77, 5000), stable: true });
      await waitUntil('the replaced block to be freed', async () => listBlocks(dir).length === 1);
      assert.ok(Buffer.from(await store.readFile(1, 0, 5000, 5000)).equals(pattern(77, 5000)));
    });
  });

  it('writes and reads back a 64 MiB file', async () => {
    await withStore('big', async (store) => {
      const size = 64 * MiB;
      const piece = MiB;
      const want = createHash('sha256');
      const t0 = process.hrtime.bigint();
      for (let off = 0; off < size; off += piece) {
        const data = pattern(off / piece + 1, piece);
        want.update(data);
        await store.writeFile({ file: 5, offset: off, data, stable: false });
      }
      await store.commitFile(5);
      const t1 = process.hrtime.bigint();
      const got = createHash('sha256');
      for (let off = 0; off < size; off += 4 * MiB) got.update(await store.readFile(5, off, 4 * MiB, size));
      const t2 = process.hrtime.bigint();
      assert.equal(got.digest('hex'), want.digest('hex'));
      const mbps = (ns: bigint) => (64 / (Number(ns) / 1e9)).toFixed(0);
      console.log(`# 64 MiB: write+commit ${mbps(t1 - t0)} MiB/s, read ${mbps(t2 - t1)} MiB/s`);
    });
  });
});

describe('store unstable writes and recovery', () => {
  it('unstable then commit survives reopen', async () => {
    const dir = makeTempDir('store-commit');
    try {
      const a = await openStore({ dir });
      await a.writeFile({ file: 3, offset: 0, data: pattern(1, 2 * MiB), stable: false });
      await a.commitFile(3);
      await a.close();
      const b = await openStore({ dir });
      assert.ok(Buffer.from(await b.readFile(3, 0, 2 * MiB, 2 * MiB)).equals(pattern(1, 2 * MiB)));
      await b.close();
    } finally {
      removeTempDir(dir);
    }
  });

  for (const damage of ['corrupt', 'truncated', 'missing'] as const) {
    it(`recovery: a ${damage} unstable block reverts the chunk to its last stable block`, async () => {
      const dir = makeTempDir('store-recover');
      try {
        const a = await openStore({ dir });
        const v1 = pattern(1, 1.5 * MiB);
        await a.writeFile({ file: 4, offset: 0, data: v1, stable: true });
        const stableBlocks = listBlocks(dir);
        // Unstable over part of chunk 0 (read-modify-write) and a new chunk 2 (no earlier copy).
        await a.writeFile({ file: 4, offset: 1000, data: pattern(2, 5000), stable: false });
        await a.writeFile({ file: 4, offset: 2 * MiB, data: pattern(3, 100_000), stable: false });
        await a.close();
        const fresh = listBlocks(dir).filter((p) => !stableBlocks.includes(p));
        assert.equal(fresh.length, 2);
        for (const p of fresh) {
          if (damage === 'missing') unlinkSync(p);
          else if (damage === 'truncated') writeFileSync(p, readFileSync(p).subarray(0, 1000));
          else {
            const b = readFileSync(p);
            b[b.length >> 1] ^= 0x40;
            writeFileSync(p, b);
          }
        }
        const b = await openStore({ dir });
        const size = 2 * MiB + 100_000;
        const all = Buffer.from(await b.readFile(4, 0, size, size));
        assert.ok(all.subarray(0, v1.length).equals(v1), 'chunk 0 and 1 are the stable version');
        assert.ok(
          all.subarray(v1.length).every((x) => x === 0),
          'chunk 2 had no stable copy: a hole',
        );
        await b.close();
        const c = await openStore({ dir });
        assert.ok(Buffer.from(await c.readFile(4, 0, v1.length, v1.length)).equals(v1));
        await c.close();
      } finally {
        removeTempDir(dir);
      }
    });
  }

  it('recovery keeps an unstable block that is whole, and frees the kept copy', async () => {
    const dir = makeTempDir('store-recover-ok');
    try {
      const a = await openStore({ dir });
      await a.writeFile({ file: 4, offset: 0, data: pattern(1, MiB), stable: true });
      await a.writeFile({ file: 4, offset: 0, data: pattern(2, MiB), stable: false });
      await a.close();
      assert.equal(listBlocks(dir).length, 2);
      const b = await openStore({ dir });
      assert.ok(Buffer.from(await b.readFile(4, 0, MiB, MiB)).equals(pattern(2, MiB)));
      await waitUntil('the kept stable copy to be freed', async () => listBlocks(dir).length === 1);
      await b.close();
    } finally {
      removeTempDir(dir);
    }
  });

  it('a damaged stable block reads as StoreCorruptError naming file and chunk', async () => {
    const dir = makeTempDir('store-corrupt');
    try {
      const a = await openStore({ dir });
      await a.writeFile({ file: 11, offset: MiB, data: pattern(5, 300_000), stable: true });
      await a.close();
      const [p] = listBlocks(dir);
      const bytes = readFileSync(p);
      bytes[12345] ^= 1;
      writeFileSync(p, bytes);
      const b = await openStore({ dir });
      await assert.rejects(
        b.readFile(11, MiB, 10, MiB + 300_000),
        (e: unknown) =>
          e instanceof StoreCorruptError &&
          e.code === 'STORE_CORRUPT' &&
          e.file === 11 &&
          e.chunk === 1 &&
          /file 11 chunk 1/.test(e.message),
      );
      // The hole before it still reads.
      assert.equal((await b.readFile(11, 0, 10, MiB + 300_000)).length, 10);
      unlinkSync(p);
      await assert.rejects(b.readFile(11, MiB, 10, MiB + 300_000), StoreCorruptError);
      await b.close();
    } finally {
      removeTempDir(dir);
    }
  });
});

describe('store reads', () => {
  it('a block file longer or shorter than its record reads as StoreCorruptError', async () => {
    const dir = makeTempDir('store-length');
    try {
      const a = await openStore({ dir });
      await a.writeFile({ file: 3, offset: 0, data: pattern(1, 200_000), stable: true });
      await a.writeFile({ file: 4, offset: 0, data: pattern(2, 200_000), stable: true });
      await a.close();
      const blocks = listBlocks(dir);
      assert.equal(blocks.length, 2);
      const longer = readFileSync(blocks[0]);
      writeFileSync(blocks[0], Buffer.concat([longer, Buffer.from([0])]));
      writeFileSync(blocks[1], readFileSync(blocks[1]).subarray(0, 199_999));
      const b = await openStore({ dir });
      for (const file of [3, 4]) {
        await assert.rejects(
          b.readFile(file, 0, 10, 200_000),
          (e: unknown) => e instanceof StoreCorruptError && /bytes, recorded 200000/.test(e.message),
        );
      }
      await b.close();
    } finally {
      removeTempDir(dir);
    }
  });

  it('sequential chunk-sized reads (with read-ahead) see rewrites made between them', async () => {
    await withStore('readahead', async (store) => {
      const chunks = 6;
      for (let i = 0; i < chunks; i++) {
        await store.writeFile({ file: 8, offset: i * MiB, data: pattern(i + 1, MiB), stable: i % 2 === 0 });
      }
      const size = chunks * MiB;
      const first = await store.readFile(8, 0, MiB, size);
      const firstCopy = Buffer.from(first);
      assert.ok(firstCopy.equals(pattern(1, MiB)));
      // Chunk 1 may be loaded ahead by now: rewrite it, and chunk 0 too.
      await store.writeFile({ file: 8, offset: MiB + 10, data: pattern(99, 100), stable: false });
      await store.writeFile({ file: 8, offset: 0, data: pattern(98, MiB), stable: true });
      const want1 = pattern(2, MiB);
      want1.set(pattern(99, 100), 10);
      assert.ok(Buffer.from(await store.readFile(8, MiB, MiB, size)).equals(want1), 'chunk 1 as rewritten');
      for (let i = 2; i < chunks; i++) {
        const got = await store.readFile(8, i * MiB, MiB, size);
        assert.ok(Buffer.from(got).equals(pattern(i + 1, MiB)), `chunk ${i}`);
      }
      // Bytes handed out earlier are never changed by later writes (blocks are immutable).
      assert.ok(Buffer.from(first).equals(firstCopy));
      assert.ok(Buffer.from(await store.readFile(8, 0, MiB, size)).equals(pattern(98, MiB)));
      // Reads across chunk boundaries and past the stored bytes still assemble correctly.
      const across = await store.readFile(8, MiB - 5, 10, size);
      assert.ok(
        Buffer.from(across).equals(Buffer.concat([pattern(98, MiB).subarray(MiB - 5), want1.subarray(0, 5)])),
      );
      const tail = await store.readFile(8, size - 3, 10, size + 4);
      assert.ok(
        Buffer.from(tail).equals(Buffer.concat([pattern(chunks, MiB).subarray(MiB - 3), Buffer.alloc(4)])),
      );
    });
  });

  it('a damaged block read ahead fails only the read that needs it', async () => {
    const dir = makeTempDir('store-readahead-bad');
    try {
      const a = await openStore({ dir });
      for (let i = 0; i < 3; i++) {
        await a.writeFile({ file: 9, offset: i * MiB, data: pattern(i + 1, MiB), stable: true });
      }
      await a.close();
      const blocks = listBlocks(dir).sort();
      assert.equal(blocks.length, 3);
      const bytes = readFileSync(blocks[1]);
      bytes[777] ^= 0x10;
      writeFileSync(blocks[1], bytes);
      const b = await openStore({ dir });
      const size = 3 * MiB;
      assert.ok(Buffer.from(await b.readFile(9, 0, MiB, size)).equals(pattern(1, MiB)));
      // The sequential read above loads chunk 1 ahead; its failure belongs to this read alone.
      await assert.rejects(
        b.readFile(9, MiB, MiB, size),
        (e: unknown) => e instanceof StoreCorruptError && e.chunk === 1,
      );
      assert.ok(Buffer.from(await b.readFile(9, 2 * MiB, MiB, size)).equals(pattern(3, MiB)));
      await b.close();
    } finally {
      removeTempDir(dir);
    }
  });
});
