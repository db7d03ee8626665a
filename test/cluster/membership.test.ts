// SWIM in the deterministic simulator: the failures of issue 4 staged on small clusters, each run
// from a fixed seed (a failure names the seed; rerunning it replays the same run). Packets go
// through the generated XDR codec, as they will on a real wire.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CAIRN_DEFAULTS, type SwimConfig, suspicionMinTimeout } from '../../src/cluster/membership/config.js';
import type { MembershipEvent } from '../../src/cluster/membership/swim.js';
import { SwimCluster, type SwimClusterOptions } from '../../src/sim/membership.js';

interface Seen {
  at: number;
  observer: number;
  type: MembershipEvent['type'];
  subject: number;
}

/** A cluster that records every node's events about every other node. */
function cluster(opts: Omit<SwimClusterOptions, 'onEvent'>) {
  const events: Seen[] = [];
  const holder: { c?: SwimCluster } = {};
  const c = new SwimCluster({
    wire: true,
    ...opts,
    onEvent: (observer, at, e) => {
      if (e.type === 'health') return;
      const subject = holder.c?.indexOf(e.member.id) ?? -1;
      events.push({ at, observer, type: e.type, subject });
    },
  });
  holder.c = c;
  return { c, events };
}

function config(): SwimConfig {
  return { ...CAIRN_DEFAULTS };
}

/** Worst case from a crash to every node holding it dead: a pass to probe it, the longest suspicion, dissemination. */
function detectionBound(n: number, cfg: SwimConfig): number {
  const max = suspicionMinTimeout(cfg.suspicionMult, n, cfg.probeInterval) * cfg.suspicionMaxMult;
  return 3 * cfg.probeInterval + max + 10 * cfg.probeInterval;
}

function settle(c: SwimCluster): void {
  const at = c.sim.runUntilTrue(() => c.converged(), 30_000);
  assert.ok(at !== undefined, 'the cluster forms');
}

test('a crashed node is declared dead by every other node within the bound, and nobody else is', () => {
  const n = 16;
  const { c, events } = cluster({ n, seed: 101 });
  settle(c);
  c.crash(9);
  const crashedAt = c.sim.now();
  const at = c.sim.runUntilTrue(() => c.allSee(9, ['dead']), detectionBound(n, config()));
  assert.ok(at !== undefined, 'all see node 9 dead');
  const deaths = events.filter((e) => e.type === 'dead');
  assert.ok(deaths.every((e) => e.subject === 9));
  const first = Math.min(...deaths.map((e) => e.at));
  // Dead only after a suspicion of at least the minimum timeout: no shortcut around refutation.
  assert.ok(
    first - crashedAt >= suspicionMinTimeout(4, n, 1000),
    `first death after ${first - crashedAt} ms`,
  );
  c.sim.runFor(30_000);
  assert.ok(c.converged());
});

test('a node cut off from one peer, one way or both, is not suspected to death: indirect probes reach it', () => {
  const { c, events } = cluster({ n: 10, seed: 202 });
  settle(c);
  const [a, b] = [c.addrs[2], c.addrs[5]];
  c.sim.partition([a], [b], { oneWay: true });
  c.sim.runFor(120_000);
  c.sim.heal();
  c.sim.partition([a], [b]);
  c.sim.runFor(120_000);
  assert.deepEqual(
    events.filter((e) => e.type === 'dead'),
    [],
  );
  assert.ok(c.converged());
});

test('with indirect probes off, the same one-way cut gets a live node suspected (the check can fail)', () => {
  const { c, events } = cluster({ n: 10, seed: 202, config: { indirectChecks: 0 } });
  settle(c);
  c.sim.partition([c.addrs[2]], [c.addrs[5]], { oneWay: true });
  c.sim.runFor(120_000);
  assert.ok(events.some((e) => e.type === 'suspect' && (e.subject === 2 || e.subject === 5)));
});

test('a node partitioned from all is declared dead; after healing it refutes, rejoins and views converge', () => {
  const n = 12;
  const { c, events } = cluster({ n, seed: 303 });
  settle(c);
  const cuts = c.sim.isolate(c.addrs[4]);
  const at = c.sim.runUntilTrue(() => c.allSee(4, ['dead']), detectionBound(n, config()));
  assert.ok(at !== undefined, 'the majority declares the isolated node dead');
  // The isolated node, for its part, declares everyone else dead — slowly: every probe it makes
  // fails with no NACK, so its local-health multiplier stretches its own probe interval (Lifeguard).
  const alone = c.sim.runUntilTrue(
    () => c.liveNodes().every((s) => s === 4 || c.stateSeenBy(4, s) === 'dead'),
    300_000,
  );
  assert.ok(alone !== undefined);
  assert.equal(c.swim(4)!.localHealth, CAIRN_DEFAULTS.maxLocalHealth - 1);
  const incBefore = c.swim(4)!.selfIncarnation;
  c.sim.heal(cuts);
  const healed = c.sim.now();
  const merged = c.sim.runUntilTrue(() => c.converged(), 120_000);
  assert.ok(merged !== undefined, 'views converge after the heal');
  assert.ok(c.swim(4)!.selfIncarnation > incBefore);
  assert.ok(events.some((e) => e.type === 'join' && e.subject === 4 && e.at >= healed));
});

test('a node paused beyond the suspicion timeout is declared dead, then refutes with a higher incarnation on resume', () => {
  const n = 10;
  const { c } = cluster({ n, seed: 404 });
  settle(c);
  const inc = c.swim(6)!.selfIncarnation;
  c.pause(6);
  const dead = c.sim.runUntilTrue(() => c.allSee(6, ['dead']), detectionBound(n, config()));
  assert.ok(dead !== undefined);
  c.resume(6);
  const back = c.sim.runUntilTrue(() => c.converged(), 90_000);
  assert.ok(back !== undefined, 'the resumed node is alive in every view again');
  const after = c.swim(6)!.selfIncarnation;
  assert.ok(after > inc);
  for (const o of c.liveNodes()) if (o !== 6) assert.equal(c.swim(o)!.incarnationOf(c.ids[6]), after);
});

test('a short pause (below the suspicion timeout) is refuted without anyone declaring the node dead', () => {
  const { c, events } = cluster({ n: 10, seed: 405 });
  settle(c);
  c.pause(3);
  c.sim.runFor(3_000);
  c.resume(3);
  c.sim.runFor(60_000);
  assert.deepEqual(
    events.filter((e) => e.type === 'dead'),
    [],
  );
  assert.ok(c.converged());
});

test('5% loss over two simulated hours: no node is ever declared dead', () => {
  const { c, events } = cluster({ n: 16, seed: 505, wire: false, network: { loss: 0.05 } });
  settle(c);
  c.sim.runFor(2 * 3_600_000);
  assert.deepEqual(
    events.filter((e) => e.type === 'dead'),
    [],
  );
  assert.ok(
    events.some((e) => e.type === 'suspect'),
    'loss did cause suspicions, all refuted',
  );
});

test('a broken configuration (dead on the first missed probe, no indirect probes) does declare live nodes dead under 5% loss', () => {
  const { c, events } = cluster({
    n: 16,
    seed: 505,
    wire: false,
    network: { loss: 0.05 },
    config: { suspicionMult: 0, indirectChecks: 0 },
  });
  settle(c);
  c.sim.runFor(600_000);
  assert.ok(events.filter((e) => e.type === 'dead').length > 0);
});

test('a graceful leave is seen as a leave, never as a death', () => {
  const { c, events } = cluster({ n: 10, seed: 606 });
  settle(c);
  c.swim(8)!.leave();
  const sent = c.sim.runUntilTrue(() => c.swim(8)!.leaveSent(), 30_000);
  assert.ok(sent !== undefined);
  c.crash(8);
  c.sim.runFor(120_000);
  assert.ok(c.allSee(8, ['left']));
  assert.deepEqual(
    events.filter((e) => e.subject === 8 && (e.type === 'dead' || e.type === 'suspect')),
    [],
  );
});

test('a node restarted with its incarnation on disk comes back above it, before anyone declares it dead', () => {
  const { c, events } = cluster({ n: 10, seed: 707, persistIncarnation: true });
  settle(c);
  const inc = c.swim(2)!.selfIncarnation;
  c.crash(2);
  c.restart(2);
  assert.equal(c.swim(2)!.selfIncarnation, inc + 1);
  const ok = c.sim.runUntilTrue(
    () => c.liveNodes().every((o) => o === 2 || c.swim(o)!.incarnationOf(c.ids[2]) === inc + 1),
    30_000,
  );
  assert.ok(ok !== undefined);
  assert.deepEqual(
    events.filter((e) => e.subject === 2 && e.type === 'dead'),
    [],
  );
});

test('a node restarted without its incarnation learns the old one from gossip and rejoins above it', () => {
  const n = 10;
  const { c, events } = cluster({ n, seed: 808 });
  settle(c);
  c.swim(2)!.setMeta(new Uint8Array([1]));
  c.swim(2)!.setMeta(new Uint8Array([2]));
  c.sim.runFor(10_000);
  const old = c.swim(0)!.incarnationOf(c.ids[2])!;
  assert.ok(old >= 2);
  c.crash(2);
  assert.ok(c.sim.runUntilTrue(() => c.allSee(2, ['dead']), detectionBound(n, config())) !== undefined);
  c.restart(2);
  assert.equal(c.swim(2)!.selfIncarnation, 0);
  const back = c.sim.runUntilTrue(() => c.converged(), 60_000);
  assert.ok(back !== undefined);
  assert.ok(c.swim(2)!.selfIncarnation > old);
  assert.ok(events.some((e) => e.subject === 2 && e.type === 'join' && e.at >= back - 60_000));
});

function roundsToReachAll(n: number, seed: number, cfg: Partial<SwimConfig>): number {
  const c = new SwimCluster({ n, seed, start: 'converged', config: cfg });
  c.sim.runFor(5_000);
  const origin = 0;
  c.swim(origin)!.setMeta(new Uint8Array([7]));
  const want = c.swim(origin)!.selfIncarnation;
  const start = c.sim.now();
  const at = c.sim.runUntilTrue(
    () => c.liveNodes().every((o) => o === origin || c.swim(o)!.incarnationOf(c.ids[origin]) === want),
    60_000,
    50,
  );
  assert.ok(at !== undefined, `the update reached all ${n}`);
  return (at - start) / (cfg.probeInterval ?? CAIRN_DEFAULTS.probeInterval);
}

test('one update reaches all N within O(log N) protocol rounds, by piggybacking alone and with gossip rounds', () => {
  for (const n of [64, 256]) {
    const piggyOnly = roundsToReachAll(n, 909, { gossipInterval: 0 });
    const withGossip = roundsToReachAll(n, 909, {});
    const log2 = Math.log2(n);
    assert.ok(piggyOnly <= 2 * log2, `N=${n}: ${piggyOnly} rounds by piggyback, log2 N = ${log2}`);
    assert.ok(withGossip <= piggyOnly, `gossip rounds only speed it up (${withGossip} vs ${piggyOnly})`);
  }
});
