import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  decodeKey,
  encodeKey,
  openStore,
  StoreClosedError,
  StoreConflictError,
  StoreInvalidError,
} from '../../src/store/index.js';
import type { Key } from '../../src/store/types.js';
import { makeTempDir, removeTempDir } from '../support/tmp.js';
import { withStore } from './helpers.js';

const keyElement = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 8 }),
  fc.double({ noNaN: true }),
  fc.integer(),
  fc.uint8Array({ maxLength: 8 }),
);
const keyArb = fc.array(keyElement, { maxLength: 4 });

function normalise(k: Key): unknown[] {
  return k.map((e) => (e instanceof Uint8Array ? ['b', [...e]] : typeof e === 'number' && e === 0 ? 0 : e));
}

function compareElements(a: string | number | Uint8Array, b: string | number | Uint8Array): number {
  const rank = (e: unknown) => (typeof e === 'number' ? 0 : typeof e === 'string' ? 1 : 2);
  if (rank(a) !== rank(b)) return rank(a) - rank(b);
  if (typeof a === 'number') return a < (b as number) ? -1 : a > (b as number) ? 1 : 0;
  const ab = typeof a === 'string' ? Buffer.from(a) : Buffer.from(a);
  const bb = typeof b === 'string' ? Buffer.from(b as string) : Buffer.from(b as Uint8Array);
  return Buffer.compare(ab, bb);
}

function compareKeys(a: Key, b: Key): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const c = compareElements(a[i], b[i]);
    if (c !== 0) return c;
  }
  return a.length - b.length;
}

describe('store keys', () => {
  it('round-trip, byte strings with zeros and tag bytes included', () => {
    fc.assert(
      fc.property(keyArb, (k) => {
        assert.deepEqual(normalise(decodeKey(encodeKey(k))), normalise(k));
      }),
    );
    const k = ['x', new Uint8Array([0x41, 0, 0, 0xff, 1])];
    const back = decodeKey(encodeKey(k));
    assert.ok(back[1] instanceof Uint8Array);
    assert.deepEqual([...(back[1] as Uint8Array)], [0x41, 0, 0, 0xff, 1]);
  });

  it('sort as tuples, and a tuple prefix is a byte prefix', () => {
    fc.assert(
      fc.property(keyArb, keyArb, (a, b) => {
        const c = Buffer.compare(encodeKey(a), encodeKey(b));
        assert.equal(Math.sign(c), Math.sign(compareKeys(a, b)));
        const isPrefix = a.length <= b.length && a.every((e, i) => compareElements(e, b[i]) === 0);
        const ea = encodeKey(a);
        assert.equal(encodeKey(b).subarray(0, ea.length).equals(ea), isPrefix);
      }),
    );
  });

  it('refuse what cannot be a key', () => {
    assert.throws(() => encodeKey([Number.NaN]), StoreInvalidError);
    assert.throws(() => encodeKey([{} as unknown as string]), StoreInvalidError);
    assert.throws(() => encodeKey(['x'.repeat(3000)]), StoreInvalidError);
  });
});

describe('store records', () => {
  it('get, put, delete with versions', async () => {
    await withStore('rec', async (store) => {
      assert.equal(store.get(['a']), undefined);
      assert.equal(await store.write((tx) => tx.put(['a'], { n: 1 })), 1);
      assert.deepEqual(store.get(['a']), { key: ['a'], version: 1, value: { n: 1 } });
      assert.equal(await store.write((tx) => tx.put(['a'], { n: 2 })), 2);
      assert.equal(store.get<{ n: number }>(['a'])?.value.n, 2);
      assert.equal(await store.write((tx) => tx.delete(['a'])), true);
      assert.equal(await store.write((tx) => tx.delete(['a'])), false);
      assert.equal(store.get(['a']), undefined);
      // A put after a delete starts again from version 1.
      assert.equal(await store.write((tx) => tx.put(['a'], 'again')), 1);
      const bytes = new Uint8Array([0, 1, 2, 255]);
      await store.write((tx) => tx.put(['bin', bytes], bytes));
      assert.deepEqual([...(store.get<Uint8Array>(['bin', bytes])?.value ?? [])], [0, 1, 2, 255]);
    });
  });

  it('ifVersion: conflict aborts the transaction, match succeeds, 0 means absent', async () => {
    await withStore('ifv', async (store) => {
      await store.write((tx) => tx.put(['k'], 1, { ifVersion: 0 }));
      await assert.rejects(
        store.write((tx) => {
          tx.put(['other'], 'x');
          tx.put(['k'], 2, { ifVersion: 0 });
        }),
        (e: unknown) => e instanceof StoreConflictError && e.code === 'STORE_CONFLICT' && e.actual === 1,
      );
      assert.equal(store.get(['other']), undefined, 'nothing of an aborted transaction is written');
      assert.equal(await store.write((tx) => tx.put(['k'], 2, { ifVersion: 1 })), 2);
    });
  });

  it('a throw aborts with nothing written and rejects with that error', async () => {
    await withStore('abort', async (store) => {
      const boom = new Error('boom');
      const before = store.write((tx) => tx.put(['before'], 1));
      const failed = store.write((tx) => {
        tx.put(['x'], 1);
        tx.truncate(1, 0);
        throw boom;
      });
      const after = store.write((tx) => [tx.get(['x']), tx.get(['before'])?.value]);
      await before;
      await assert.rejects(failed, (e) => e === boom);
      assert.deepEqual(await after, [undefined, 1]);
      assert.equal(store.get(['x']), undefined);
    });
  });

  it('range over prefixes (byte strings too), start/end/limit/reverse', async () => {
    await withStore('range', async (store) => {
      const d = (n: number) => new Uint8Array([n]);
      const keys: Key[] = [
        ['dir', 1, 'a'],
        ['dir', 1, 'b'],
        ['dir', 1, 'b\u0000'],
        ['dir', 1, 'c'],
        ['dir', 2, 'a'],
        ['dir', 10, 'a'],
        ['bin', d(0)],
        ['bin', d(0), 'child'],
        ['bin', new Uint8Array([0, 0])],
        ['bin', d(1)],
        ['bin', d(0x20)],
        ['bin', d(0xff)],
        ['dir'],
      ];
      await store.write((tx) => {
        for (const [i, k] of keys.entries()) tx.put(k, i);
      });
      const ks = (it: Iterable<{ key: Key }>) => [...it].map((e) => normalise(e.key));
      assert.deepEqual(ks(store.range(['dir', 1])), [
        ['dir', 1, 'a'],
        ['dir', 1, 'b'],
        ['dir', 1, 'b\u0000'],
        ['dir', 1, 'c'],
      ]);
      assert.deepEqual(
        ks(store.range(['bin', d(0)])),
        [
          ['bin', d(0)],
          ['bin', d(0), 'child'],
        ].map((k) => normalise(k)),
      );
      assert.deepEqual(
        ks(store.range(['bin'])),
        [
          ['bin', d(0)],
          ['bin', d(0), 'child'],
          ['bin', new Uint8Array([0, 0])],
          ['bin', d(1)],
          ['bin', d(0x20)],
          ['bin', d(0xff)],
        ].map((k) => normalise(k)),
      );
      assert.deepEqual(ks(store.range(['dir', 1], { start: ['dir', 1, 'b'], end: ['dir', 1, 'c'] })), [
        ['dir', 1, 'b'],
        ['dir', 1, 'b\u0000'],
      ]);
      assert.deepEqual(
        ks(store.range(['dir', 1], { start: ['dir', 1, 'b'], end: ['dir', 1, 'c'], reverse: true })),
        [
          ['dir', 1, 'b\u0000'],
          ['dir', 1, 'b'],
        ],
      );
      assert.deepEqual(ks(store.range(['dir', 1], { reverse: true, limit: 2 })), [
        ['dir', 1, 'c'],
        ['dir', 1, 'b\u0000'],
      ]);
      assert.deepEqual(ks(store.range(['dir'], { limit: 3 })), [['dir'], ['dir', 1, 'a'], ['dir', 1, 'b']]);
      assert.deepEqual(ks(store.range(['dir', 3])), []);
      // Inside a transaction, range sees the transaction's own writes.
      const seen = await store.write((tx) => {
        tx.put(['dir', 1, 'bb'], 0);
        tx.delete(['dir', 1, 'a']);
        return [...tx.range(['dir', 1])].map((e) => e.key[2]);
      });
      assert.deepEqual(seen, ['b', 'b\u0000', 'bb', 'c']);
    });
  });

  it('concurrent writes serialise in call order, each seeing the ones before', async () => {
    await withStore('order', async (store) => {
      await store.write((tx) => tx.put(['n'], 0));
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          store.write((tx) => {
            const cur = tx.get<number>(['n']);
            assert.equal(cur?.value, i, 'each transaction sees every earlier one');
            tx.put(['n'], i + 1, { ifVersion: cur?.version });
            return cur?.value;
          }),
        ),
      );
      assert.deepEqual(
        results,
        Array.from({ length: 200 }, (_, i) => i),
      );
      assert.deepEqual(store.get(['n']), { key: ['n'], version: 201, value: 200 });
    });
  });

  it('persists across reopen, and refuses use after close', async () => {
    const dir = makeTempDir('store-reopen');
    try {
      const a = await openStore({ dir });
      await a.write((tx) => tx.put(['p', new Uint8Array([0, 9])], { deep: [1, 'two'] }), { durable: true });
      const v1 = Buffer.from(a.bootVerifier).toString('hex');
      await a.close();
      assert.throws(() => a.get(['p']), StoreClosedError);
      await assert.rejects(async () => a.write((tx) => tx.put(['q'], 1)), StoreClosedError);
      const b = await openStore({ dir });
      assert.deepEqual(b.get(['p', new Uint8Array([0, 9])])?.value, { deep: [1, 'two'] });
      assert.notEqual(
        Buffer.from(b.bootVerifier).toString('hex'),
        v1,
        'the write verifier changes on every open',
      );
      await b.close();
    } finally {
      removeTempDir(dir);
    }
  });

  it('durable writes and sync resolve', async () => {
    await withStore('durable', async (store) => {
      await store.write((tx) => tx.put(['d'], 1), { durable: true });
      await store.write((tx) => tx.put(['e'], 1));
      await store.sync();
      const st = await store.stats();
      assert.ok(
        st.totalBytes > 0 && st.freeBytes > 0 && st.availableBytes <= st.freeBytes && st.totalFiles >= 0,
      );
    });
  });
});
