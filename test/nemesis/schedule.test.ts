// The fault schedule is a function of its seed, and never lets two faults hold one lock at once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FAULT_KINDS, parseFaultKinds, planSchedule } from './schedule.js';

test('schedule: the same seed plans the same faults; another seed, others', () => {
  const a = planSchedule({ seed: 7, durationMs: 60_000, nodes: 3 });
  assert.deepEqual(planSchedule({ seed: 7, durationMs: 60_000, nodes: 3 }), a);
  assert.notDeepEqual(planSchedule({ seed: 8, durationMs: 60_000, nodes: 3 }), a);
  assert.ok(a.length > 50, `${a.length} faults in a minute`);
  assert.deepEqual(new Set(a.map((f) => f.kind)), new Set(FAULT_KINDS), 'every kind appears');
});

test('schedule: faults are in time order, within the duration, and no lock is held by two at once', () => {
  for (const nodes of [1, 2, 3, 5]) {
    for (let seed = 1; seed <= 20; seed++) {
      const plan = planSchedule({ seed, durationMs: 30_000, nodes });
      const heldUntil = new Map<string, number>();
      plan.forEach((f, i) => {
        assert.equal(f.n, i + 1);
        if (i > 0) assert.ok(plan[i - 1].at <= f.at);
        assert.ok(f.at >= 0 && f.at < 30_000);
        assert.ok(f.nodes.every((n) => n >= 0 && n < nodes));
        for (const l of f.holds) {
          assert.ok((heldUntil.get(l) ?? 0) <= f.at, `seed ${seed}: ${l} held twice at ${f.at}`);
          heldUntil.set(l, f.at + f.holdMs);
        }
      });
      if (nodes < 3) assert.ok(!plan.some((f) => f.kind === 'partition-bridge'));
      if (nodes < 2) assert.ok(!plan.some((f) => f.kind === 'partition-halves'));
    }
  }
});

test('schedule: only the kinds asked for; an unknown kind is refused', () => {
  const plan = planSchedule({ seed: 1, durationMs: 20_000, nodes: 1, kinds: parseFaultKinds('power, kill') });
  assert.ok(plan.length > 0 && plan.every((f) => f.kind === 'power' || f.kind === 'kill'));
  assert.throws(() => parseFaultKinds('kill,explode'), /unknown fault kind 'explode'/);
  assert.throws(() => planSchedule({ seed: 1, durationMs: 1000, nodes: 1, kinds: ['partition-bridge'] }));
});
