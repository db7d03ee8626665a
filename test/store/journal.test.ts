/**
 * The journal of UNSTABLE writes: acknowledged with no LMDB commit, visible at once, replayed
 * after kill -9, a torn tail discarded, bounded, interleaved correctly with every other kind of
 * transaction, and a COMMIT that fails while the journal cannot be applied.
 */
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { openStore, StoreFullError } from '../../src/store/index.js';
import {
  decodeFrame,
  decodeJournal,
  encodeEntry,
  entryOf,
  FRAME_HEADER,
  type RecordOp,
} from '../../src/store/journal.js';
import type { LmdbStore } from '../../src/store/store.js';
import type { Store } from '../../src/store/types.js';
import { spawnProcess } from '../support/process.js';
import { makeTempDir, removeTempDir } from '../support/tmp.js';
import { withTmpfs } from '../support/tmpfs.js';
import { waitUntil } from '../support/wait.js';
import { killLoopAndCheck, loopSize, pattern } from './helpers.js';

const child = join(dirname(fileURLToPath(import.meta.url)), 'child.js');
const journalPath = (dir: string) => join(dir, 'meta', 'journal');

async function openLmdb(dir: string, options: Record<string, unknown> = {}): Promise<LmdbStore> {
  return (await openStore({ dir, ...options })) as LmdbStore;
}

/** Runs the child's unstable-hold mode and kills it (-9) once its last writes are journaled only. */
async function holdAndKill(dir: string, count: number): Promise<void> {
  const p = spawnProcess(process.execPath, [child, 'unstable-hold', dir, String(count)], {
    name: 'store-hold',
  });
  try {
    await p.waitForLine('held', 60_000);
  } finally {
    p.signal('SIGKILL');
    await p.exited;
  }
}

/** What file N of the hold child holds, with the overwrite of file 1 or without it. */
function expected(n: number, overwritten: boolean): Buffer {
  const b = pattern(n, loopSize(n));
  if (n !== 1 || !overwritten) return b;
  const over = pattern(1000, 5000);
  const out = Buffer.alloc(Math.max(b.length, over.length));
  b.copy(out);
  over.copy(out);
  return out;
}

async function checkHeld(store: Store, count: number, overwritten: boolean): Promise<void> {
  for (let n = 1; n <= count; n++) {
    const want = expected(n, overwritten);
    const inode = store.get<{ size: number; over?: boolean }>(['inode', n])?.value;
    assert.equal(inode?.size, want.length, `inode of file ${n}`);
    if (n === 1) assert.equal(inode?.over === true, overwritten, 'the overwrite of file 1');
    const got = Buffer.from(await store.readFile(n, 0, want.length, want.length));
    assert.ok(got.equals(want), `content of file ${n}`);
  }
}

describe('store journal of unstable writes', () => {
  it('reads see an unstable write at once, from the overlay, before LMDB has it; then LMDB does', async () => {
    const dir = makeTempDir('store-journal-read');
    try {
      const store = await openLmdb(dir);
      try {
        await store.write((tx) => tx.put(['inode', 7], { size: 0 }));
        // That write is journaled too: wait until it is in LMDB, so the next entry is alone.
        await waitUntil(
          'the first write to be applied',
          async () => store.journalStats().pendingEntries === 0,
        );
        await store.writeFile({
          file: 7,
          offset: 0,
          data: pattern(7, 300_000),
          stable: false,
          update: (tx) => {
            const cur = tx.get<{ size: number }>(['inode', 7]);
            tx.put(['inode', 7], { size: 300_000, was: cur?.value.size });
          },
        });
        // Same turn as the acknowledgement: the background apply has not started.
        const j = store.journalStats();
        assert.equal(j.pendingEntries, 1, 'the write is in the overlay, not yet in LMDB');
        assert.ok(j.journalBytes > FRAME_HEADER, 'and in the journal');
        assert.equal(
          decodeJournal(readFileSync(journalPath(dir))).validBytes,
          j.journalBytes,
          'written to the file before the ack',
        );
        const r = store.get<{ size: number; was: number }>(['inode', 7]);
        assert.deepEqual(r?.value, { size: 300_000, was: 0 });
        assert.equal(r?.version, 2, 'versions continue from what the write read');
        assert.deepEqual(
          [...store.range(['inode'])].map((e) => e.value),
          [{ size: 300_000, was: 0 }],
          'range merges the overlay',
        );
        const got = Buffer.from(await store.readFile(7, 0, 300_000, 300_000));
        assert.ok(got.equals(pattern(7, 300_000)));
        await waitUntil('the journal to be applied', async () => store.journalStats().pendingEntries === 0);
        assert.equal(store.get(['inode', 7])?.version, 2);
        assert.ok(Buffer.from(await store.readFile(7, 0, 300_000, 300_000)).equals(pattern(7, 300_000)));
        // A transaction sees the applied write, and a later unstable write sees that transaction.
        await store.write((tx) => tx.put(['inode', 7], { ...tx.get<object>(['inode', 7])?.value, mode: 1 }));
        await store.writeFile({
          file: 7,
          offset: 300_000,
          data: pattern(8, 10),
          stable: false,
          update: (tx) => tx.put(['inode', 7], { ...tx.get<object>(['inode', 7])?.value, size: 300_010 }),
        });
        assert.deepEqual(store.get(['inode', 7])?.value, { size: 300_010, was: 0, mode: 1 });
      } finally {
        await store.close();
      }
      assert.equal(
        decodeJournal(readFileSync(journalPath(dir))).entries.length,
        0,
        'a clean close leaves the journal empty',
      );
    } finally {
      removeTempDir(dir);
    }
  });

  it('kill -9 right after acknowledged unstable writes: the journal is replayed at open', async () => {
    const dir = makeTempDir('store-journal-kill');
    try {
      await holdAndKill(dir, 6);
      const entries = decodeJournal(readFileSync(journalPath(dir))).entries;
      assert.ok(entries.length > 0, 'the killed child left journal entries');
      const store = await openStore({ dir });
      try {
        assert.equal(
          decodeJournal(readFileSync(journalPath(dir))).entries.length,
          0,
          'replayed and emptied at open',
        );
        await checkHeld(store, 6, true);
        assert.notDeepEqual(store.bootVerifier, new Uint8Array(8));
      } finally {
        await store.close();
      }
      // Once more: what the replay applied is in LMDB now, with nothing left to replay.
      const again = await openStore({ dir });
      try {
        await checkHeld(again, 6, true);
      } finally {
        await again.close();
      }
    } finally {
      removeTempDir(dir);
    }
  });

  it('kill -9 during a stream of unstable writes, three times: every acknowledged write is there', async () => {
    // Kill while writing, at a point that differs per round.
    await killLoopAndCheck(child, 'unstable-loop', 'store-journal-loop', (round) => 5 + round * 4);
  });

  it("the overlay's copy of an entry equals what a replay decodes from its frame, and shares nothing with the writer's values", () => {
    const { value } = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small' },
        fc.oneof(
          fc.integer(),
          fc.double(),
          fc.string(),
          fc.boolean(),
          fc.constant(null),
          fc.constant(undefined),
        ),
        fc.uint8Array({ maxLength: 40 }),
        fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)),
        fc.date({ noInvalidDate: true }),
        fc.array(tie('value'), { maxLength: 4 }),
        fc.dictionary(fc.string({ maxLength: 6 }), tie('value'), { maxKeys: 4 }),
      ),
    }));
    const op = fc.oneof(
      fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 12 }), fc.nat(), value),
      fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 12 })),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 6 }), fc.array(fc.tuple(fc.uint8Array(), value)), (r, c) => {
        const ops = {
          r: r.map((o) => o.map((x) => (x instanceof Uint8Array ? Buffer.from(x) : x)) as RecordOp),
          c: c.map(([k, v]) => [Buffer.from(k), v] as [Buffer, unknown]),
          d: [],
          f: ['b1'],
          e: 7,
        };
        const frame = encodeEntry(3, ops);
        const entry = entryOf(3, ops);
        assert.deepStrictEqual(entry, decodeFrame(frame));
        // Scribbling over every byte array the writer holds leaves the copy as the frame has it.
        const scribble = (v: unknown): void => {
          if (v instanceof Uint8Array) v.fill(0xee);
          else if (v !== null && typeof v === 'object' && !(v instanceof Date))
            for (const x of Object.values(v)) scribble(x);
        };
        scribble(ops);
        assert.deepStrictEqual(entry, decodeFrame(frame));
      }),
      { numRuns: 300 },
    );
  });

  it('a chain stops at a frame that does not follow it or that an earlier open wrote', () => {
    const ops = (e: number) => ({ r: [], c: [], d: [], f: [], e });
    /** Frames `seqs[i]` written by open `epochs[i]`, back to back. */
    const chain = (seqs: number[], epochs: number[]) =>
      Buffer.concat(seqs.map((seq, i) => encodeEntry(seq, ops(epochs[i]))));
    /** The sequence numbers such a chain decodes to, and why reading stopped. */
    const read = (seqs: number[], epochs: number[]) => {
      const { entries, end } = decodeJournal(chain(seqs, epochs));
      return [entries.map((x) => x.seq), end];
    };
    assert.deepEqual(read([5, 6, 7], [2, 2, 2]), [[5, 6, 7], 'end']);
    // Left from before a rewind: an older sequence number behind the valid frames.
    assert.deepEqual(read([5, 6, 3], [2, 2, 2]), [[5, 6], 'stale']);
    // Left by an earlier open, whose lost entries' sequence numbers this open reused.
    assert.deepEqual(read([5, 6, 7], [2, 2, 1]), [[5, 6], 'stale']);
    const zeros = decodeJournal(Buffer.concat([chain([5], [2]), Buffer.alloc(100)]));
    assert.deepEqual([zeros.entries.length, zeros.end], [1, 'end']);
  });

  for (const damage of ['torn', 'flipped', 'garbage'] as const) {
    it(`a ${damage} journal tail is discarded from the first bad entry: the store opens, nothing is corrupt`, async () => {
      const dir = makeTempDir('store-journal-torn');
      try {
        await holdAndKill(dir, 4);
        const path = journalPath(dir);
        const buf = readFileSync(path);
        const { entries, validBytes, end } = decodeJournal(buf);
        assert.equal(end, 'end', 'the valid frames are followed by the zeros of the preallocated space');
        const lastLen = validBytes - frameStart(buf, entries.length - 1);
        const b = Buffer.from(buf);
        if (damage === 'torn') {
          // The last entry (the overwrite of file 1) only partly reached the disk.
          b.fill(0, validBytes - Math.floor(lastLen / 2), validBytes);
        } else if (damage === 'flipped') {
          b[validBytes - 3] ^= 0x10;
        } else {
          b.write('CJRN\0\0\0\x10 not a frame at all', validBytes, 'latin1');
        }
        writeFileSync(path, b);
        assert.equal(decodeJournal(b).end, 'torn', 'the damage is seen as such');
        const store = await openStore({ dir });
        try {
          const overwritten = damage === 'garbage';
          await checkHeld(store, 4, overwritten);
        } finally {
          await store.close();
        }
        const again = await openStore({ dir });
        try {
          await checkHeld(again, 4, damage === 'garbage');
        } finally {
          await again.close();
        }
      } finally {
        removeTempDir(dir);
      }
    });
  }

  it('stays within its bounds: writers wait for the apply, the journal is emptied, contents are right', async () => {
    const dir = makeTempDir('store-journal-bounds');
    try {
      const store = await openLmdb(dir, {
        journalBytes: 8192,
        overlayBytes: 2048,
        chunkSize: 4096,
        inlineMax: 256,
      });
      let maxPending = 0;
      let maxJournal = 0;
      const sizes = new Map<number, number>();
      try {
        const writes: Promise<void>[] = [];
        for (let i = 0; i < 300; i++) {
          const file = 1 + (i % 5);
          const offset = (i * 1531) % 20_000;
          const size = Math.max(sizes.get(file) ?? 0, offset + 700);
          sizes.set(file, size);
          writes.push(
            store
              .writeFile({
                file,
                offset,
                data: pattern(i, 700),
                stable: false,
                update: (tx) => tx.put(['inode', file], { size }),
              })
              .then(() => {
                const j = store.journalStats();
                maxPending = Math.max(maxPending, j.pendingBytes);
                maxJournal = Math.max(maxJournal, j.journalBytes);
              }),
          );
        }
        await Promise.all(writes);
        assert.ok(maxPending <= 2048 + 2048, `overlay stayed near its bound (max ${maxPending})`);
        assert.ok(maxJournal <= 8192 + 2048, `journal stayed near its bound (max ${maxJournal})`);
        const model = new Map<number, Buffer>();
        for (let i = 0; i < 300; i++) {
          const file = 1 + (i % 5);
          const offset = (i * 1531) % 20_000;
          let b = model.get(file) ?? Buffer.alloc(0);
          if (b.length < offset + 700) b = Buffer.concat([b, Buffer.alloc(offset + 700 - b.length)]);
          pattern(i, 700).copy(b, offset);
          model.set(file, b);
        }
        for (const [file, want] of model) {
          assert.equal(store.get<{ size: number }>(['inode', file])?.value.size, want.length);
          assert.ok(Buffer.from(await store.readFile(file, 0, want.length, want.length)).equals(want));
        }
      } finally {
        await store.close();
      }
    } finally {
      removeTempDir(dir);
    }
  });

  for (const durableJournal of [true, false]) {
    it(`truncates, removals and renames interleaved with pending unstable and stable writes match a model (and after reopen), durable writes ${durableJournal ? 'journaled' : 'on the LMDB path'}`, async () => {
      const dir = makeTempDir('store-journal-model');
      type Step =
        | { op: 'write'; name: number; offset: number; length: number; seed: number; stable: boolean }
        | { op: 'truncate'; name: number; size: number }
        | { op: 'remove'; name: number }
        | { op: 'rename'; from: number; to: number }
        | { op: 'commit'; name: number };
      const nameArb = fc.integer({ min: 0, max: 3 });
      const stepArb: fc.Arbitrary<Step> = fc.oneof(
        {
          weight: 6,
          arbitrary: fc.record({
            op: fc.constant('write' as const),
            name: nameArb,
            offset: fc.integer({ min: 0, max: 9000 }),
            length: fc.integer({ min: 1, max: 5000 }),
            seed: fc.integer({ min: 1, max: 1 << 30 }),
            stable: fc.boolean(),
          }),
        },
        {
          weight: 2,
          arbitrary: fc.record({
            op: fc.constant('truncate' as const),
            name: nameArb,
            size: fc.integer({ min: 0, max: 12_000 }),
          }),
        },
        { weight: 1, arbitrary: fc.record({ op: fc.constant('remove' as const), name: nameArb }) },
        {
          weight: 1,
          arbitrary: fc.record({ op: fc.constant('rename' as const), from: nameArb, to: nameArb }),
        },
        { weight: 1, arbitrary: fc.record({ op: fc.constant('commit' as const), name: nameArb }) },
      );
      let store = await openLmdb(dir, { chunkSize: 2048, inlineMax: 512, durableJournal });
      let run = 0;
      try {
        await fc.assert(
          fc.asyncProperty(
            fc.array(fc.array(stepArb, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 12 }),
            async (groups) => {
              const base = ++run * 100;
              // The model: names (n) -> file ids, and each file's bytes.
              const names = new Map<number, number>();
              const files = new Map<number, Buffer>();
              let nextFile = base;
              /** One step against the store; its model change happens in the same order as its transaction. */
              const perform = (s: Step): Promise<unknown> => {
                if (s.op === 'write') {
                  const data = pattern(s.seed, s.length);
                  return store
                    .writeFile({
                      file: names.get(s.name) ?? -1,
                      offset: s.offset,
                      data,
                      stable: s.stable,
                      update: (tx) => {
                        const file = tx.get<number>(['name', base, s.name])?.value;
                        const inode =
                          file === undefined ? undefined : tx.get<{ size: number }>(['inode', file]);
                        if (!inode) throw new Error('gone');
                        tx.put(['inode', file as number], {
                          size: Math.max(inode.value.size, s.offset + s.length),
                        });
                      },
                    })
                    .then(() => {
                      const file = names.get(s.name) as number;
                      let b = files.get(file) as Buffer;
                      if (b.length < s.offset + s.length) {
                        b = Buffer.concat([b, Buffer.alloc(s.offset + s.length - b.length)]);
                      }
                      data.copy(b, s.offset);
                      files.set(file, b);
                    });
                }
                if (s.op === 'truncate') {
                  return store.write((tx) => {
                    const file = tx.get<number>(['name', base, s.name])?.value as number;
                    tx.truncate(file, s.size);
                    tx.put(['inode', file], { size: s.size });
                    const b = files.get(file) as Buffer;
                    const next = Buffer.alloc(s.size);
                    b.copy(next, 0, 0, Math.min(s.size, b.length));
                    files.set(file, next);
                  });
                }
                if (s.op === 'remove') {
                  return store.write((tx) => {
                    const file = tx.get<number>(['name', base, s.name])?.value as number;
                    tx.dropContent(file);
                    tx.delete(['inode', file]);
                    tx.delete(['name', base, s.name]);
                    names.delete(s.name);
                    files.delete(file);
                  });
                }
                if (s.op === 'rename') {
                  return store.write((tx) => {
                    const file = tx.get<number>(['name', base, s.from])?.value as number;
                    const victim = tx.get<number>(['name', base, s.to])?.value;
                    if (victim !== undefined && victim !== file) {
                      tx.dropContent(victim);
                      tx.delete(['inode', victim]);
                      files.delete(victim);
                    }
                    tx.delete(['name', base, s.from]);
                    tx.put(['name', base, s.to], file);
                    names.delete(s.from);
                    names.set(s.to, file);
                  });
                }
                return store.commitFile(names.get(s.name) ?? 0);
              };
              for (const group of groups) {
                // Steps of a group touch distinct names and run concurrently; a write, truncate,
                // remove or rename of a name that does not exist creates it first.
                const used = new Set<number>();
                const steps = group.filter((s) => {
                  const ns = s.op === 'rename' ? [s.from, s.to] : [s.name];
                  if (ns.some((n) => used.has(n))) return false;
                  for (const n of ns) used.add(n);
                  return true;
                });
                for (const s of steps) {
                  const n = s.op === 'rename' ? s.from : s.name;
                  if (names.has(n)) continue;
                  const file = nextFile++;
                  await store.write((tx) => {
                    tx.put(['name', base, n], file);
                    tx.put(['inode', file], { size: 0 });
                  });
                  names.set(n, file);
                  files.set(file, Buffer.alloc(0));
                }
                await Promise.all(steps.map(perform));
                await check();
              }
              async function check(): Promise<void> {
                const listed = [...store.range<number>(['name', base])].map((e) => [e.key[2], e.value]);
                assert.deepEqual(
                  listed,
                  [...names].sort((a, b) => a[0] - b[0]),
                  'names',
                );
                for (const [file, want] of files) {
                  assert.equal(
                    store.get<{ size: number }>(['inode', file])?.value.size,
                    want.length,
                    `size of ${file}`,
                  );
                  const got = Buffer.from(await store.readFile(file, 0, want.length + 10, want.length));
                  assert.ok(got.equals(want), `content of file ${file}`);
                }
              }
              if (run % 8 === 0) {
                await store.close();
                store = await openLmdb(dir, { durableJournal });
                await check();
              }
            },
          ),
          { numRuns: 60 },
        );
      } finally {
        await store.close();
        removeTempDir(dir);
      }
    });
  }

  it('a journal that cannot be applied (full disk) fails COMMIT with STORE_FULL; reads see the write; COMMIT succeeds once space is freed', async () => {
    await withTmpfs('store-journal-full', 8, async (mnt) => {
      const dir = join(mnt, 'data');
      mkdirSync(dir);
      // No space reserved for LMDB's growth: its commit is what must run out.
      const store = await openLmdb(dir, { headroomBytes: 0, metadataReserveBytes: 0 });
      try {
        await store.write((tx) => tx.put(['inode', 1], { size: 0 }), { durable: true });
        // Fill the disk, then free a little: not enough for LMDB's commit of the 60 KB record
        // the journal entry carries (the entry itself goes into the journal's preallocated space).
        const filler = join(mnt, 'filler');
        const chunk = Buffer.alloc(64 * 1024, 1);
        try {
          for (;;) appendFileSync(filler, chunk);
        } catch (e) {
          assert.equal((e as NodeJS.ErrnoException).code, 'ENOSPC');
        }
        truncateSync(filler, statSync(filler).size - 32 * 1024);
        const big = pattern(5, 60_000);
        await store.writeFile({
          file: 1,
          offset: 0,
          data: pattern(1, 100),
          stable: false,
          update: (tx) => {
            tx.put(['inode', 1], { size: 100 });
            tx.put(['big', 1], big);
          },
        });
        assert.deepEqual(store.get(['inode', 1])?.value, { size: 100 }, 'the write is visible');
        await assert.rejects(
          store.commitFile(1),
          (e: unknown) => e instanceof StoreFullError && e.code === 'STORE_FULL',
        );
        assert.deepEqual(
          store.get(['inode', 1])?.value,
          { size: 100 },
          'still visible after the failed COMMIT',
        );
        assert.ok(Buffer.from(store.get<Uint8Array>(['big', 1])?.value ?? []).equals(big));
        assert.ok(store.journalStats().pendingEntries > 0, 'kept in the overlay and the journal');
        truncateSync(filler, 0);
        await store.commitFile(1);
        assert.equal(store.journalStats().pendingEntries, 0);
        assert.ok(Buffer.from(await store.readFile(1, 0, 100, 100)).equals(pattern(1, 100)));
      } finally {
        await store.close();
      }
      const again = await openStore({ dir });
      try {
        assert.deepEqual(again.get(['inode', 1])?.value, { size: 100 });
        assert.ok(Buffer.from(await again.readFile(1, 0, 100, 100)).equals(pattern(1, 100)));
      } finally {
        await again.close();
      }
    });
  });
});

/** Byte offset where entry `i` of a valid journal starts. */
function frameStart(buf: Buffer, i: number): number {
  let at = 0;
  for (let k = 0; k < i; k++) at += FRAME_HEADER + buf.readUInt32BE(at + 4);
  return at;
}
