// The set check: hand-made histories for each rule (never written, lost, disappeared, duplicate),
// with kill -9 and power-loss crashes; histories of a simulated node that loses unflushed adds are
// accepted, and the same with a read tampered with are not; and a history of tens of thousands of
// operations checks quickly.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  checkSet,
  formatCollectionResult,
  HistoryError,
  type Operation,
  type SetInput,
  type SetOutput,
} from '../../src/check/index.js';
import { SeededRandom } from '../../src/random.js';
import { Builder } from './histories.js';

type Op = Operation<SetInput, SetOutput>;
const add = (value: string): SetInput => ({ f: 'add', value });
const read: SetInput = { f: 'read' };

function kinds(h: readonly Op[]): string[] {
  return checkSet(h).anomalies.map((a) => `${a.kind} ${a.element}`);
}

test('a good history: acknowledged adds read back, concurrent ones either way, open ones or not', () => {
  const b = new Builder<SetInput, SetOutput>('s');
  const h = [
    b.ok(1, add('a'), 0, 1),
    b.ok(2, read, 2, 3, ['a']),
    b.ok(1, add('b'), 4, 10),
    b.ok(2, read, 5, 6, ['a', 'b']),
    b.ok(3, read, 5, 6, ['a']),
    b.open(1, add('c'), 11),
    b.failed(1, add('d'), 12, 13),
    b.ok(2, read, 14, 15, ['b', 'a']),
    b.ok(2, read, 16, 17, ['c', 'a', 'b']),
    b.open(2, read, 18),
  ];
  const res = checkSet(h);
  assert.equal(res.valid, true, formatCollectionResult('set', res));
  assert.deepEqual(res.stats, {
    keys: 1,
    'adds ok': 2,
    'adds failed': 1,
    'adds open': 1,
    reads: 5,
    values: 4,
    crashes: 0,
  });
  assert.match(formatCollectionResult('set', res), /^set: valid \(keys: 1, adds ok: 2, adds failed: 1/);
});

test('never written: a value nobody added, one whose add failed, one read before its add began', () => {
  const b = new Builder<SetInput, SetOutput>('s');
  assert.deepEqual(kinds([b.ok(1, add('a'), 0, 1), b.ok(2, read, 2, 3, ['a', 'z'])]), [
    'never-written value "z"',
  ]);
  const failed = [b.failed(1, add('a'), 0, 1), b.ok(2, read, 2, 3, ['a'])];
  const res = checkSet(failed);
  assert.equal(res.valid, false);
  const [a] = res.anomalies;
  assert.equal(a.kind, 'never-written');
  assert.deepEqual(
    a.ops.map((o) => o.id),
    [failed[0].id, failed[1].id],
  );
  assert.equal(
    a.text,
    [
      'never-written: key "s", value "a": a read shows it although its write failed',
      '  #2 process 1 add "a" [0, 1] fail: failed: it never took effect',
      '  #3 process 2 read → 1 value, with "a" [2, 3]: shows it',
    ].join('\n'),
  );
  assert.deepEqual(kinds([b.ok(2, read, 0, 1, ['a']), b.ok(1, add('a'), 2, 3)]), ['never-written value "a"']);
  // An add invoked before the read returned may have taken effect in time.
  assert.deepEqual(kinds([b.ok(2, read, 0, 2, ['a']), b.open(1, add('a'), 1)]), []);
});

test('lost: an acknowledged add missing from a read invoked after, even across a power loss', () => {
  const b = new Builder<SetInput, SetOutput>('s');
  assert.deepEqual(kinds([b.ok(1, add('a'), 0, 1), b.ok(2, read, 2, 3, [])]), ['lost value "a"']);
  // Concurrent with the add: either way.
  assert.deepEqual(kinds([b.ok(1, add('a'), 0, 3), b.ok(2, read, 2, 4, [])]), []);
  const h = [b.ok(1, add('a'), 0, 1), b.crash(2), b.ok(2, read, 3, 4, []), b.ok(2, read, 5, 6, [])];
  const res = checkSet(h);
  assert.deepEqual(
    res.anomalies.map((a) => [a.kind, a.ops.map((o) => o.id), a.more]),
    [['lost', [h[0].id, h[1].id, h[2].id], 1]],
  );
  assert.match(res.anomalies[0].text, /crash \(power\) \[2, 2\]: after the acknowledgement/);
  assert.match(formatCollectionResult('set', res), /\(and 1 more read like it\)/);
});

test('disappeared: an open add seen may vanish across a power loss only', () => {
  const b = new Builder<SetInput, SetOutput>('s');
  const seenThenGone = (between: Op[]): Op[] => [
    b.open(1, add('a'), 0),
    b.ok(2, read, 1, 2, ['a']),
    ...between,
    b.ok(2, read, 5, 6, []),
  ];
  assert.deepEqual(kinds(seenThenGone([])), ['disappeared value "a"']);
  assert.deepEqual(kinds(seenThenGone([b.crash(3)])), []);
  const killed = checkSet(seenThenGone([b.crash(3, 'kill')]));
  assert.deepEqual(
    killed.anomalies.map((a) => a.kind),
    ['disappeared'],
  );
  assert.match(killed.anomalies[0].text, /only a kill -9 lies between/);
  assert.match(killed.anomalies[0].text, /crash \(kill\) \[3, 3\]: a kill -9 loses nothing/);
  // A power loss before the value was seen does not excuse it.
  assert.deepEqual(
    kinds([b.open(1, add('a'), 0), b.crash(1), b.ok(2, read, 2, 3, ['a']), b.ok(2, read, 5, 6, [])]),
    ['disappeared value "a"'],
  );
  // A crash during the first read may come after it read.
  assert.deepEqual(
    kinds([b.open(1, add('a'), 0), b.ok(2, read, 1, 4, ['a']), b.crash(3), b.ok(2, read, 5, 6, [])]),
    [],
  );
});

test('disappeared: a value made durable by an acknowledgement does not vanish across a power loss', () => {
  const b = new Builder<SetInput, SetOutput>('s');
  // b's add began after a was seen, so the flush that acknowledged it flushed a first.
  const h = [
    b.open(1, add('a'), 0),
    b.ok(2, read, 1, 2, ['a']),
    b.ok(3, add('b'), 3, 4),
    b.crash(5),
    b.ok(2, read, 6, 7, ['b']),
  ];
  const res = checkSet(h);
  assert.deepEqual(
    res.anomalies.map((a) => [a.kind, a.ops.map((o) => o.id)]),
    [['disappeared', h.map((o) => o.id)]],
  );
  assert.match(res.anomalies[0].text, /it was durable, yet a power loss took it/);
  assert.match(res.anomalies[0].text, /add "b" \[3, 4\]: acknowledged after it was seen: made it durable/);
  // An acknowledgement of an add that began before a was seen proves nothing about a.
  assert.deepEqual(
    kinds([
      b.open(1, add('a'), 0),
      b.ok(3, add('b'), 1, 4),
      b.ok(2, read, 2, 3, ['a']),
      b.crash(5),
      b.ok(2, read, 6, 7, ['b']),
    ]),
    [],
  );
  // An add acknowledged after the loss may have been lost and then done again; missing after its
  // acknowledgement it is lost.
  const redone = (): Op[] => [
    b.ok(1, add('a'), 0, 8),
    b.ok(2, read, 1, 2, ['a']),
    b.crash(3),
    b.ok(2, read, 5, 6, []),
  ];
  assert.deepEqual(kinds(redone()), []);
  assert.deepEqual(kinds([...redone(), b.ok(2, read, 9, 10, [])]), ['lost value "a"']);
});

test('a read listing a value twice, and every key checked on its own with the crashes', () => {
  const b = new Builder<SetInput, SetOutput>('s');
  assert.deepEqual(kinds([b.ok(1, add('a'), 0, 1), b.ok(2, read, 2, 3, ['a', 'a'])]), [
    'duplicate value "a"',
  ]);
  const h = [
    b.open(1, add('a'), 0, 's1'),
    b.open(1, add('a'), 0, 's2'),
    b.ok(2, read, 1, 2, ['a'], 's1'),
    b.ok(2, read, 1, 2, ['a'], 's2'),
    b.crash(3),
    b.ok(2, read, 4, 5, [], 's1'),
    b.ok(2, read, 4, 5, ['a'], 's2'),
    b.ok(2, read, 6, 7, ['a', 'z'], 's2'),
  ];
  const res = checkSet(h);
  assert.deepEqual(
    res.anomalies.map((a) => [a.kind, a.key, a.element]),
    [['never-written', 's2', 'value "z"']],
  );
  assert.equal(res.stats.keys, 2);
  assert.equal(res.stats.crashes, 1);
  // A bound on the anomalies collected keeps the verdict.
  const many = [b.ok(2, read, 0, 1, ['x', 'y', 'z'])];
  const capped = checkSet(many, { maxAnomalies: 2 });
  assert.equal(capped.valid, false);
  assert.equal(capped.anomalies.length, 2);
});

test('operations that are not set operations are refused', () => {
  const b = new Builder<unknown, unknown>('s');
  for (const h of [[b.ok(1, { f: 'write', value: 'a' }, 0, 1)], [b.ok(1, { f: 'read' }, 0, 1, 'a')]]) {
    assert.throws(
      () => checkSet(h),
      (e: unknown) => e instanceof HistoryError && e.code === 'CHECK_BAD_HISTORY',
    );
  }
});

/**
 * A simulated node: sets that clients see at once and a flushed copy that every acknowledged add
 * brings up to date; a power loss goes back to the flushed copy, a kill -9 changes nothing. Each
 * operation takes effect at its own instant (10 apart) inside a random interval; an open add may
 * take effect or not; a failed add does not.
 */
interface SimOp {
  key: number;
  kind: number;
  before: number;
  after: number;
  outcome: number;
  applied: boolean;
}
const simOpArb = fc.record({
  key: fc.integer({ min: 0, max: 1 }),
  kind: fc.integer({ min: 0, max: 5 }),
  before: fc.integer({ min: 0, max: 30 }),
  after: fc.integer({ min: 0, max: 30 }),
  outcome: fc.integer({ min: 0, max: 5 }),
  applied: fc.boolean(),
});

function simulate(plan: readonly SimOp[]): Op[] {
  const b = new Builder<SetInput, SetOutput>();
  let seen = new Map<string, string[]>();
  let flushed = new Map<string, string[]>();
  return plan.map((p, i) => {
    const at = 10 * i + 5;
    if (p.kind >= 4) {
      if (p.kind === 4) seen = new Map(flushed);
      return b.crash(at, p.kind === 4 ? 'power' : 'kill');
    }
    const key = `s${p.key}`;
    const call = at - p.before;
    const values = seen.get(key) ?? [];
    if (p.kind <= 1) return b.ok(i, read, call, at + p.after, [...values].reverse(), key);
    const value = `v${i}`;
    if (p.outcome === 0) return b.failed(i, add(value), call, at + p.after, key);
    const open = p.outcome <= 2;
    if (!open || p.applied) seen = new Map(seen).set(key, [...values, value]);
    if (open) return b.open(i, add(value), call, key);
    flushed = new Map(seen);
    return b.ok(i, add(value), call, at + p.after, undefined, key);
  });
}

test('property: histories of a simulated node that loses unflushed adds are accepted', () => {
  fc.assert(
    fc.property(fc.array(simOpArb, { minLength: 1, maxLength: 80 }), (plan) => {
      const res = checkSet(simulate(plan));
      assert.equal(res.valid, true, formatCollectionResult('set', res));
    }),
    { numRuns: 500 },
  );
});

test('property: a read given a value never added, or missing an acknowledged one, is rejected', () => {
  fc.assert(
    fc.property(fc.array(simOpArb, { minLength: 1, maxLength: 80 }), fc.nat(), (plan, pick) => {
      const h = simulate(plan);
      const reads = h.filter((o) => o.input.f === 'read' && o.outcome === 'ok' && o.key !== '*');
      fc.pre(reads.length > 0);
      const victim = reads[pick % reads.length];
      const values = victim.output as string[];
      const invented = checkSet(h.map((o) => (o === victim ? { ...o, output: [...values, 'never'] } : o)));
      assert.deepEqual(
        invented.anomalies.map((a) => [a.kind, a.key, a.element]),
        [['never-written', victim.key, 'value "never"']],
      );
      const acked = h.find(
        (o) => o.input.f === 'add' && o.outcome === 'ok' && o.key === victim.key && o.ret! < victim.call,
      );
      if (acked !== undefined) {
        const value = (acked.input as { value: string }).value;
        const dropped = checkSet(
          h.map((o) => (o === victim ? { ...o, output: values.filter((v) => v !== value) } : o)),
        );
        assert.deepEqual(
          dropped.anomalies.map((a) => [a.kind, a.element]),
          [['lost', `value ${JSON.stringify(value)}`]],
        );
      }
    }),
    { numRuns: 500 },
  );
});

test('scale: 40,000 operations on 200 sets check in seconds (time linear in what the reads returned)', () => {
  const rng = new SeededRandom(7);
  const b = new Builder<SetInput, SetOutput>();
  const sets = Array.from({ length: 200 }, () => [] as string[]);
  const h: Op[] = [];
  let listed = 0;
  for (let i = 0; i < 40_000; i++) {
    const k = rng.int(sets.length);
    const at = 10 * i;
    const call = at - rng.int(100);
    const ret = at + rng.int(100);
    if (rng.int(3) === 0) {
      h.push(b.ok(i % 50, read, call, ret, [...sets[k]], `s${k}`));
      listed += sets[k].length;
    } else {
      const value = `v${i}`;
      sets[k].push(value);
      h.push(
        rng.int(10) === 0
          ? b.open(i % 50, add(value), call, `s${k}`)
          : b.ok(i % 50, add(value), call, ret, undefined, `s${k}`),
      );
    }
  }
  const started = performance.now();
  const res = checkSet(h);
  const ms = performance.now() - started;
  assert.equal(res.valid, true, formatCollectionResult('set', res));
  console.log(`set scale: ${h.length} ops, ${listed} values listed by reads, checked in ${ms.toFixed(0)} ms`);
  // 1.3 s measured on a 2-CPU machine several times oversubscribed; the bound only catches a blow-up.
  assert.ok(ms < 15_000, `took ${ms} ms`);
});
