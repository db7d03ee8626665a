import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChordNetwork, chordHops, measureHops, randomIds } from '../../src/cluster/chord.js';
import { Prng } from '../../src/cluster/ring-prng.js';

function allCorrect(net: ChordNetwork, rng: Prng, n: number): { wrong: number; timeouts: number } {
  const live = net.liveIds();
  let wrong = 0;
  let timeouts = 0;
  for (let i = 0; i < n; i++) {
    const key = rng.uint64();
    const r = net.lookup(live[rng.below(live.length)], key);
    if (r.owner !== net.responsible(key)) wrong++;
    timeouts += r.timeouts;
  }
  return { wrong, timeouts };
}

/** Runs rounds until the ring is consistent; returns how many it took. */
function stabilize(net: ChordNetwork, rng: Prng, maxRounds: number): number {
  for (let round = 1; round <= maxRounds; round++) {
    net.round(rng);
    if (net.isRingConsistent()) return round;
  }
  assert.fail(`ring not consistent after ${maxRounds} rounds`);
}

test('in a stabilized network, lookups are correct and take about ½·log2 N hops (Chord’s figure)', () => {
  for (const n of [1000, 10_000]) {
    const f = chordHops(n, 42, 5000);
    assert.equal(f.wrong, 0);
    assert.ok(
      Math.abs(f.mean - f.reference) < 0.15 * f.reference,
      `N=${n}: mean ${f.mean} vs ${f.reference}`,
    );
    assert.ok(f.p99 <= Math.ceil(Math.log2(n)) + 1, `N=${n}: p99 ${f.p99}`);
  }
  // Routing through the successor list too saves hops without losing correctness.
  const short = chordHops(1000, 42, 5000, { successorShortcut: true });
  assert.equal(short.wrong, 0);
  assert.ok(short.mean < chordHops(1000, 42, 5000).mean);
});

test('chordHops is a function of its seed', () => {
  assert.deepEqual(chordHops(500, 9, 2000), chordHops(500, 9, 2000));
  assert.notDeepEqual(chordHops(500, 9, 2000), chordHops(500, 10, 2000));
});

test('a ring grown by joins through stabilize, notify and fix-fingers converges to exact pointers', () => {
  const rng = new Prng(7);
  const net = new ChordNetwork({ successors: 8 });
  const ids = randomIds(300, rng);
  net.create(ids[0]);
  for (let i = 1; i < ids.length; i++) {
    const live = net.liveIds();
    net.join(ids[i], live[rng.below(live.length)]);
    // Ten joins per round: stabilize splices one joiner per gap per round, so a burst of joins
    // into a small ring converges in rounds proportional to the burst (docs/PLACEMENT.md).
    if (i < 10 || i % 10 === 0) net.round(rng);
  }
  stabilize(net, rng, 5);
  net.round(rng);
  assert.ok(net.areFingersExact(), 'fingers equal successor(n + 2^i) for every node');
  for (const id of net.liveIds()) assert.equal(net.node(id).successors.length, 8);
  assert.deepEqual(allCorrect(net, rng, 3000), { wrong: 0, timeouts: 0 });
  const f = measureHops(net, rng, 3000);
  assert.ok(Math.abs(f.mean - f.reference) < 0.2 * f.reference, `mean ${f.mean} vs ${f.reference}`);
});

test('after a quarter of the nodes crash, lookups stay correct through successor lists, then stabilize', () => {
  const rng = new Prng(11);
  const net = ChordNetwork.stabilized(randomIds(1000, rng), { successors: 20 });
  const live = [...net.liveIds()];
  for (let i = 0; i < 250; i++) net.fail(live.splice(rng.below(live.length), 1)[0]);
  assert.equal(net.size, 750);
  const before = allCorrect(net, rng, 3000);
  assert.equal(before.wrong, 0, 'correct before any repair');
  assert.ok(before.timeouts > 0, 'but crashed fingers cost timeouts');
  const rounds = stabilize(net, rng, 5);
  assert.ok(rounds <= 2, `consistent after ${rounds} rounds`);
  net.round(rng);
  assert.ok(net.areFingersExact());
  assert.deepEqual(allCorrect(net, rng, 3000), { wrong: 0, timeouts: 0 });
});

test('under churn (crashes and joins every round) the ring recovers once churn stops', () => {
  const rng = new Prng(23);
  const net = ChordNetwork.stabilized(randomIds(400, rng), { successors: 12 });
  for (let round = 0; round < 10; round++) {
    const live = [...net.liveIds()];
    for (let k = 0; k < 10; k++) net.fail(live.splice(rng.below(live.length), 1)[0]);
    for (let k = 0; k < 10; k++) net.join(rng.uint64(), live[rng.below(live.length)]);
    net.round(rng);
  }
  stabilize(net, rng, 20);
  net.round(rng);
  assert.ok(net.areFingersExact());
  assert.deepEqual(allCorrect(net, rng, 2000), { wrong: 0, timeouts: 0 });
});

test('one and two nodes', () => {
  const rng = new Prng(1);
  const net = new ChordNetwork({ successors: 3 });
  net.create(100n);
  assert.equal(net.lookup(100n, 5n).owner, 100n);
  assert.equal(net.lookup(100n, 100n).owner, 100n);
  net.join(200n, 100n);
  stabilize(net, rng, 5);
  assert.equal(net.lookup(100n, 150n).owner, 200n);
  assert.equal(net.lookup(200n, 150n).owner, 200n);
  assert.equal(net.lookup(200n, 250n).owner, 100n);
  assert.equal(net.lookup(100n, 100n).owner, 100n);
  net.fail(200n);
  stabilize(net, rng, 5);
  assert.equal(net.lookup(100n, 150n).owner, 100n);
});
