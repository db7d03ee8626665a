import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SeededRandom } from '../../src/random.js';
import { EventHeap } from '../../src/sim/heap.js';

test('a seed gives the same stream on every run and Node version (pinned values), and seeds differ', () => {
  const a = new SeededRandom(42);
  const first = Array.from({ length: 4 }, () => a.nextUint32());
  // Pinned: a change here means every recorded failing seed stops replaying.
  assert.deepEqual(first, PINNED_42);
  const b = new SeededRandom(42);
  assert.deepEqual(
    Array.from({ length: 4 }, () => b.nextUint32()),
    first,
  );
  const c = new SeededRandom(43);
  assert.notDeepEqual(
    Array.from({ length: 4 }, () => c.nextUint32()),
    first,
  );
});

test('next() is in [0, 1), int(n) in [0, n) and roughly uniform; forks are independent of later draws', () => {
  const r = new SeededRandom(7);
  const counts = new Array(10).fill(0);
  for (let i = 0; i < 100_000; i++) {
    const x = r.next();
    assert.ok(x >= 0 && x < 1);
    counts[r.int(10)]++;
  }
  for (const c of counts) assert.ok(c > 9_500 && c < 10_500, `bucket count ${c}`);
  const f1 = new SeededRandom(9).fork();
  const f2 = new SeededRandom(9).fork();
  assert.equal(f1.nextUint32(), f2.nextUint32());
  assert.equal(new SeededRandom(1).bytes(16).length, 16);
});

test('the event heap orders by time, then by insertion order for ties', () => {
  const h = new EventHeap<{ at: number; seq: number; name: string }>();
  const items = [
    { at: 5, seq: 0, name: 'a' },
    { at: 1, seq: 1, name: 'b' },
    { at: 5, seq: 2, name: 'c' },
    { at: 0, seq: 3, name: 'd' },
    { at: 1, seq: 4, name: 'e' },
  ];
  for (const i of items) h.push(i);
  const out: string[] = [];
  for (let x = h.pop(); x; x = h.pop()) out.push(x.name);
  assert.deepEqual(out, ['d', 'b', 'e', 'a', 'c']);
});

const PINNED_42 = [1028872839, 2516511472, 400437680, 853279530];
