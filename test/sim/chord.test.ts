// Chord as message-passing nodes on the simulator: joins converge to the true ring and fingers,
// lookups return the true successor in about ½·log2 N hops, survive message loss by retrying,
// recover after crashes within a bounded time, and a run replays exactly from its seed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChordCluster } from '../../src/sim/chord.js';

const STABILIZE_MS = 50;

/** Runs until every live node's successor, predecessor and fingers are the true ones. */
function settle(c: ChordCluster, limitMs: number): number | undefined {
  return c.sim.runUntilTrue(() => c.isRingConsistent() && c.areFingersExact(), limitMs, STABILIZE_MS);
}

/** Joins all of the cluster's nodes (5 ms apart) and settles them; fails the test if they do not. */
function joined(n: number, seed: number, loss = 0): ChordCluster {
  const c = new ChordCluster({ n, seed, network: { loss }, config: { stabilizeMs: STABILIZE_MS } });
  c.sim.runUntil(n * 5);
  const at = settle(c, 30_000);
  assert.ok(at !== undefined, `${n} joined nodes never settled (seed ${seed})`);
  assert.equal(c.liveIds().length, n);
  return c;
}

test('200 nodes join and stabilize; every lookup finds the true successor in about ½·log2 N hops', () => {
  const c = joined(200, 1);
  const f = c.measure(2000);
  assert.equal(f.wrong, 0);
  assert.equal(f.failed, 0);
  assert.equal(f.timeoutsPerLookup, 0);
  // The model (src/cluster/chord.ts) lands within 0.15 hop of the reference at 1,000 to 100,000
  // nodes; the same algorithm over messages must too.
  assert.ok(Math.abs(f.mean - f.reference) <= 0.15 * f.reference, `mean ${f.mean}, ½·log2 N ${f.reference}`);
  assert.ok(f.p99 <= 2 * Math.ceil(Math.log2(200)), `p99 ${f.p99}`);
});

test('with 5% message loss the ring still settles and every lookup succeeds, by retrying', () => {
  const c = joined(200, 2, 0.05);
  const f = c.measure(2000);
  assert.equal(f.wrong, 0);
  assert.equal(f.failed, 0);
  // Lost requests did happen and were routed around: the retries were exercised, not skipped.
  assert.ok(f.timeoutsPerLookup > 0.1, `timeouts per lookup ${f.timeoutsPerLookup}`);
  assert.ok(c.sim.stats.dropped > 0);
  assert.ok(Math.abs(f.mean - f.reference) <= 0.2 * f.reference, `mean ${f.mean}, ½·log2 N ${f.reference}`);
});

test('after 20% of the nodes crash, a bounded number of stabilize rounds makes lookups correct again', () => {
  const c = joined(200, 3);
  const victims = new Set<number>();
  while (victims.size < 40) victims.add(c.random.int(200));
  for (const v of victims) c.crash(v);
  const t0 = c.sim.now();
  assert.equal(c.isRingConsistent(), false);

  // Detecting a dead successor takes failuresToDrop (5) timeouts of 20 ms; a node whose next
  // several successors died pays that for each. 20 rounds bound it with room to spare.
  const ring = c.sim.runUntilTrue(() => c.isRingConsistent(), 20 * STABILIZE_MS, 10);
  assert.ok(ring !== undefined, 'the ring did not repair within 20 stabilize rounds');
  const after = c.measure(1000);
  assert.equal(after.n, 160);
  assert.equal(after.wrong, 0);
  assert.equal(after.failed, 0);

  // Fingers still pointing at dead nodes cost timeouts until fix-fingers replaces them.
  const fingers = c.sim.runUntilTrue(() => c.areFingersExact(), 20 * STABILIZE_MS, 10);
  assert.ok(fingers !== undefined, `fingers not exact ${c.sim.now() - t0} ms after the crashes`);
  const clean = c.measure(1000);
  assert.equal(clean.wrong, 0);
  assert.equal(clean.timeoutsPerLookup, 0);
});

/** A scenario with loss, reordering, crashes and a restart; returns its trace hash and lookups. */
function scenario(seed: number): { hash: number; events: number; lookups: string } {
  const c = new ChordCluster({
    n: 60,
    seed,
    network: { loss: 0.03, reorder: 0.05 },
    config: { stabilizeMs: STABILIZE_MS },
  });
  c.sim.runUntil(60 * 5);
  settle(c, 10_000);
  for (const v of [3, 17, 29, 41]) c.crash(v);
  c.sim.runFor(300);
  c.restart(17);
  const ok = settle(c, 10_000);
  assert.ok(ok !== undefined, 'the cluster did not settle after the restart');
  assert.ok(c.peer(17)?.joined, 'the restarted node did not rejoin');
  assert.equal(c.liveIds().length, 57);
  const f = c.measure(300);
  assert.equal(f.wrong, 0);
  return { hash: c.sim.traceHash, events: c.sim.events, lookups: JSON.stringify(f) };
}

test('a run replays exactly from its seed, crashes and a restart included', () => {
  const a = scenario(7);
  const b = scenario(7);
  assert.equal(a.hash, b.hash);
  assert.equal(a.events, b.events);
  assert.equal(a.lookups, b.lookups);
  assert.notEqual(scenario(8).hash, a.hash);
});

test('a network started stabilized routes as the model does, at 1,000 nodes', () => {
  const c = new ChordCluster({ n: 1000, seed: 4, start: 'stabilized' });
  assert.ok(c.isRingConsistent() && c.areFingersExact());
  const f = c.measure(3000);
  assert.equal(f.wrong, 0);
  assert.ok(Math.abs(f.mean - f.reference) <= 0.15 * f.reference, `mean ${f.mean}, ½·log2 N ${f.reference}`);
});
