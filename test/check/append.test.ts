// The append check: hand-made histories for each rule (never written, wrong place, lost,
// disappeared), with kill -9 and power-loss crashes; histories of a simulated file that loses
// unflushed appends are accepted, and the same with a read tampered with are not.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  type AppendInput,
  type AppendOutput,
  checkAppend,
  formatCollectionResult,
  HistoryError,
  type Operation,
} from '../../src/check/index.js';
import { Builder } from './histories.js';

type Op = Operation<AppendInput, AppendOutput>;
const append = (value: string): AppendInput => ({ f: 'append', value });
const read: AppendInput = { f: 'read' };

function kinds(h: readonly Op[], acksFlushEarlier = false): string[] {
  return checkAppend(h, { acksFlushEarlier }).anomalies.map((a) => `${a.kind} ${a.element}`);
}

test('a good history: acknowledged appends read back in their slots, holes where appends did not land', () => {
  const b = new Builder<AppendInput, AppendOutput>('f');
  const h = [
    b.ok('w', append('t0'), 0, 1),
    b.ok('r', read, 2, 3, ['t0']),
    b.ok('w', append('t1'), 4, 10),
    b.ok('r', read, 5, 6, ['t0']),
    b.ok('r2', read, 7, 8, ['t0', 't1']),
    b.open('w', append('t2'), 11),
    b.failed('w', append('t3'), 12, 13),
    b.ok('w', append('t4'), 14, 15),
    b.ok('r', read, 16, 17, ['t0', 't1', null, null, 't4']),
    b.ok('r', read, 18, 19, ['t0', 't1', 't2', null, 't4']),
  ];
  const res = checkAppend(h);
  assert.equal(res.valid, true, formatCollectionResult('append', res));
  assert.deepEqual(res.stats, {
    keys: 1,
    'appends ok': 3,
    'appends failed': 1,
    'appends open': 1,
    reads: 5,
    crashes: 0,
  });
});

test('never written and wrong place: bytes no append wrote, a failed or later append, a token in the wrong slot', () => {
  const b = new Builder<AppendInput, AppendOutput>('f');
  const base = (): Op[] => [b.ok('w', append('t0'), 0, 1), b.failed('w', append('t1'), 2, 3)];
  assert.deepEqual(kinds([...base(), b.ok('r', read, 4, 5, ['t0', 'garbage'])]), ['never-written slot 1']);
  assert.deepEqual(kinds([...base(), b.ok('r', read, 4, 5, ['t0', 't1'])]), ['never-written slot 1']);
  assert.deepEqual(kinds([b.ok('r', read, 0, 1, ['t0']), b.ok('w', append('t0'), 2, 3)]), [
    'never-written slot 0',
  ]);
  const res = checkAppend([
    ...base(),
    b.ok('w', append('t2'), 4, 5),
    b.ok('r', read, 6, 7, ['t0', null, 't0']),
  ]);
  assert.deepEqual(
    res.anomalies.map((a) => `${a.kind} ${a.element}`),
    ['wrong-place slot 2'],
  );
  assert.match(res.anomalies[0].text, /^wrong-place: key "f", slot 2: a read shows slot 0's token there/);
  assert.match(res.anomalies[0].text, /read → 3 slots, slot 2: "t0" \[6, 7\]: shows it in slot 2/);
  // Longer than every append invoked: the file grew by itself.
  assert.deepEqual(kinds([b.ok('w', append('t0'), 0, 1), b.ok('r', read, 2, 3, ['t0', null])]), [
    'never-written length',
  ]);
});

test('lost: an acknowledged append reads as a hole, or the read ends before it, even after a power loss', () => {
  const b = new Builder<AppendInput, AppendOutput>('f');
  const base = (): Op[] => [b.ok('w', append('t0'), 0, 1), b.ok('w', append('t1'), 2, 3)];
  assert.deepEqual(kinds([...base(), b.ok('r', read, 4, 5, ['t0', null])]), ['lost slot 1']);
  assert.deepEqual(kinds([...base(), b.ok('r', read, 4, 5, ['t0'])]), ['lost slot 1']);
  const res = checkAppend([...base(), b.crash(4), b.ok('r', read, 5, 6, [])]);
  assert.deepEqual(
    res.anomalies.map((a) => `${a.kind} ${a.element} ${a.ops.length}`),
    ['lost slot 0 3', 'lost slot 1 3'],
  );
  assert.match(res.anomalies[1].text, /read → 0 slots, slot 1: beyond the end \[5, 6\]: misses it/);
  // A read concurrent with the append may miss it.
  assert.deepEqual(kinds([b.ok('w', append('t0'), 0, 3), b.ok('r', read, 2, 4, [])]), []);
});

test('disappeared: an open append seen may vanish across a power loss only', () => {
  const b = new Builder<AppendInput, AppendOutput>('f');
  const seenThenGone = (between: Op[]): Op[] => [
    b.ok('w', append('t0'), 0, 1),
    b.open('w', append('t1'), 2),
    b.ok('r', read, 3, 4, ['t0', 't1']),
    ...between,
    b.ok('r', read, 6, 7, ['t0', null]),
  ];
  assert.deepEqual(kinds(seenThenGone([])), ['disappeared slot 1']);
  assert.deepEqual(kinds(seenThenGone([b.crash(5)])), []);
  assert.deepEqual(kinds(seenThenGone([b.crash(5, 'kill')])), ['disappeared slot 1']);
  // The file may also come back shorter.
  assert.deepEqual(
    kinds([
      b.ok('w', append('t0'), 0, 1),
      b.open('w', append('t1'), 2),
      b.ok('r', read, 3, 4, ['t0', 't1']),
      b.crash(5),
      b.ok('r', read, 6, 7, ['t0']),
    ]),
    [],
  );
});

test('acksFlushEarlier: an acknowledgement after a slot was seen makes that slot durable, when asked', () => {
  const b = new Builder<AppendInput, AppendOutput>('f');
  const h = [
    b.open('w', append('t0'), 0),
    b.ok('r', read, 1, 2, ['t0']),
    b.ok('w', append('t1'), 3, 4),
    b.crash(5),
    b.ok('r', read, 6, 7, [null, 't1']),
  ];
  assert.deepEqual(kinds(h), []);
  assert.deepEqual(kinds(h, true), ['disappeared slot 0']);
  const [a] = checkAppend(h, { acksFlushEarlier: true }).anomalies;
  assert.match(a.text, /it was durable, yet a power loss took it/);
  assert.match(a.text, /append "t1" \(slot 1\) \[3, 4\]: acknowledged after it was seen: made it durable/);
});

test('one writer per file, one token per append: anything else is refused', () => {
  const b = new Builder<AppendInput, AppendOutput>('f');
  assert.throws(
    () => checkAppend([b.ok('w1', append('t0'), 0, 1), b.ok('w2', append('t1'), 2, 3)]),
    (e: unknown) =>
      e instanceof HistoryError && e.code === 'CHECK_BAD_HISTORY' && /processes w1, w2/.test(e.message),
  );
  assert.throws(
    () => checkAppend([b.ok('w', append('t0'), 0, 1), b.ok('w', append('t0'), 2, 3)]),
    /two appends of "t0"/,
  );
  assert.throws(() => checkAppend([b.ok('r', read, 0, 1, [1] as unknown as AppendOutput)]), HistoryError);
});

/**
 * A simulated file with one writer and FILE_SYNC-like acknowledgements: every append lands at
 * once in the page cache; an acknowledged one is on disk too. A power loss keeps what is on disk,
 * with the file's length anywhere between the disk's and the cache's; a kill -9 keeps the cache.
 * The writer's calls come in order; readers' intervals are random.
 */
interface SimOp {
  kind: number;
  before: number;
  after: number;
  outcome: number;
  applied: boolean;
  keep: number;
}
const simOpArb = fc.record({
  kind: fc.integer({ min: 0, max: 5 }),
  before: fc.integer({ min: 0, max: 30 }),
  after: fc.integer({ min: 0, max: 30 }),
  outcome: fc.integer({ min: 0, max: 5 }),
  applied: fc.boolean(),
  keep: fc.nat(),
});

function simulate(plan: readonly SimOp[]): Op[] {
  const b = new Builder<AppendInput, AppendOutput>('f');
  let cache: (string | null)[] = [];
  let disk: (string | null)[] = [];
  let slot = 0;
  return plan.map((p, i) => {
    const at = 10 * i + 5;
    if (p.kind >= 4) {
      if (p.kind === 4) {
        const length = disk.length + (p.keep % (Math.max(cache.length, disk.length) - disk.length + 1));
        cache = Array.from({ length }, (_, k) => disk[k] ?? null);
      }
      return b.crash(at, p.kind === 4 ? 'power' : 'kill');
    }
    if (p.kind <= 1) return b.ok('r', read, at - p.before, at + p.after, [...cache]);
    const k = slot++;
    const token = `t${k}`;
    const call = at - (p.before % 5);
    if (p.outcome === 0) return b.failed('w', append(token), call, at + (p.after % 5));
    const open = p.outcome <= 2;
    const write = (file: (string | null)[]): (string | null)[] => {
      const out = [...file];
      while (out.length < k) out.push(null);
      out[k] = token;
      return out;
    };
    if (!open || p.applied) cache = write(cache);
    if (open) return b.open('w', append(token), call);
    disk = write(disk);
    return b.ok('w', append(token), call, at + (p.after % 5));
  });
}

test('property: histories of a simulated file that loses unflushed appends are accepted', () => {
  fc.assert(
    fc.property(fc.array(simOpArb, { minLength: 1, maxLength: 80 }), (plan) => {
      const res = checkAppend(simulate(plan));
      assert.equal(res.valid, true, formatCollectionResult('append', res));
    }),
    { numRuns: 500 },
  );
});

test('property: a read given bytes no append wrote, or a hole for an acknowledged append, is rejected', () => {
  fc.assert(
    fc.property(fc.array(simOpArb, { minLength: 1, maxLength: 80 }), fc.nat(), fc.nat(), (plan, pick, at) => {
      const h = simulate(plan);
      const reads = h.filter(
        (o) => o.input.f === 'read' && o.outcome === 'ok' && (o.output as unknown[]).length > 0,
      );
      fc.pre(reads.length > 0);
      const victim = reads[pick % reads.length];
      const slots = victim.output as (string | null)[];
      const k = at % slots.length;
      const garbled = checkAppend(
        h.map((o) => (o === victim ? { ...o, output: slots.map((v, j) => (j === k ? 'garbage' : v)) } : o)),
      );
      assert.deepEqual(
        garbled.anomalies.map((a) => `${a.kind} ${a.element}`),
        [`never-written slot ${k}`],
      );
      const appends = h.filter((o) => o.input.f === 'append');
      const acked = appends.findIndex((o) => o.outcome === 'ok' && o.ret! < victim.call);
      if (acked >= 0 && acked < slots.length) {
        const holed = checkAppend(
          h.map((o) => (o === victim ? { ...o, output: slots.map((v, j) => (j === acked ? null : v)) } : o)),
        );
        assert.deepEqual(
          holed.anomalies.map((a) => `${a.kind} ${a.element}`),
          [`lost slot ${acked}`],
        );
      }
    }),
    { numRuns: 500 },
  );
});
