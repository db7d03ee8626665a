// The simulator's own promises, checked with tiny processes: what the network does to messages,
// what pause, crash and restart do to a node, and that a run replays exactly from its seed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SwimCluster } from '../../src/sim/membership.js';
import { delays } from '../../src/sim/network.js';
import { type SimEnv, Simulator } from '../../src/sim/simulator.js';

type Msg = { n: number };

/** A process that records what it receives and, if told to, sends a message every `every` ms. */
function recorder(log: string[], opts: { to?: string; every?: number } = {}) {
  return (env: SimEnv<Msg>) => {
    let n = 0;
    if (opts.to && opts.every) {
      const tick = () => {
        env.transport.send(opts.to!, { n: n++ });
        env.setTimer(env.clock.now() + opts.every!, tick);
      };
      env.setTimer(env.clock.now() + opts.every, tick);
    }
    return {
      receive: (from: string, m: Msg) => {
        log.push(`${env.clock.now()} ${env.address}<${from} ${m.n}`);
      },
    };
  };
}

test('messages arrive after their delay; loss 1 drops everything; duplication delivers twice', () => {
  const log: string[] = [];
  const sim = new Simulator<Msg>({ seed: 1, network: { delay: delays.constant(3) } });
  sim.addNode('b', recorder(log));
  sim.addNode('a', recorder(log, { to: 'b', every: 10 }));
  sim.runUntil(35);
  assert.deepEqual(log, ['13 b<a 0', '23 b<a 1', '33 b<a 2']);

  sim.network.loss = 1;
  sim.runFor(100);
  assert.equal(log.length, 3);
  assert.ok(sim.stats.dropped >= 10);

  sim.network.loss = 0;
  sim.network.duplicate = 1;
  log.length = 0;
  sim.runFor(10);
  assert.equal(log.length, 2);
  assert.equal(log[0], log[1]);
});

test('variable delay and reordering let later messages overtake earlier ones', () => {
  const log: string[] = [];
  const sim = new Simulator<Msg>({
    seed: 3,
    network: { delay: delays.uniform(1, 2), reorder: 0.3, reorderDelay: 50 },
  });
  sim.addNode('b', recorder(log));
  sim.addNode('a', recorder(log, { to: 'b', every: 5 }));
  sim.runUntil(2000);
  const order = log.map((l) => Number(l.split(' ')[2]));
  assert.ok(order.length > 300);
  let inversions = 0;
  for (let i = 1; i < order.length; i++) if (order[i] < order[i - 1]) inversions++;
  assert.ok(inversions > 10, `${inversions} inversions`);
});

test('a one-way cut drops one direction only; a symmetric one both; heal restores both', () => {
  const log: string[] = [];
  const sim = new Simulator<Msg>({ seed: 1, network: { delay: delays.constant(1) } });
  sim.addNode('a', recorder(log, { to: 'b', every: 10 }));
  sim.addNode('b', recorder(log, { to: 'a', every: 10 }));
  const cut = sim.partition(['a'], ['b'], { oneWay: true });
  sim.runUntil(100);
  assert.ok(log.length > 0 && log.every((l) => l.includes('a<b')));
  sim.heal(cut);
  sim.partition(['a'], ['b']);
  log.length = 0;
  sim.runFor(100);
  assert.equal(log.length, 0);
  sim.heal();
  sim.runFor(100);
  assert.ok(log.some((l) => l.includes('a<b')) && log.some((l) => l.includes('b<a')));
});

test('a paused node neither ticks nor receives; on resume its due timers run first, then its queued messages', () => {
  const events: string[] = [];
  const sim = new Simulator<Msg>({ seed: 1, network: { delay: delays.constant(1) } });
  sim.addNode('b', (env) => {
    const tick = () => {
      events.push(`tick ${env.clock.now()}`);
      env.setTimer(env.clock.now() + 100, tick);
    };
    env.setTimer(100, tick);
    return { receive: (_f, m) => events.push(`recv ${m.n} at ${env.clock.now()}`) };
  });
  sim.addNode('a', recorder([], { to: 'b', every: 30 }));
  sim.runUntil(150);
  sim.pause('b');
  const before = events.length;
  sim.runUntil(1000);
  assert.equal(events.length, before, 'nothing ran while paused');
  sim.at(1000, () => sim.resume('b'));
  sim.runUntil(1000);
  const after = events.slice(before);
  assert.equal(after[0], 'tick 1000', 'the due timer runs first');
  assert.ok(after.slice(1).every((e) => e.startsWith('recv ')));
  // a sent every 30 ms from 150 (delivered at 151) to 990: 29 messages waited for b.
  assert.equal(after.length, 1 + 29);
});

test('a crash loses the process, its timers and messages to it; a restart keeps the disk and counts generations', () => {
  const log: string[] = [];
  let ticks = 0;
  const sim = new Simulator<Msg>({ seed: 1, network: { delay: delays.constant(1) } });
  sim.addNode('b', (env) => {
    env.disk.set('starts', ((env.disk.get('starts') as number | undefined) ?? 0) + 1);
    const tick = () => {
      ticks++;
      env.setTimer(env.clock.now() + 10, tick);
    };
    env.setTimer(env.clock.now() + 10, tick);
    return recorder(log)(env);
  });
  sim.addNode('a', recorder([], { to: 'b', every: 10 }));
  sim.runUntil(50);
  sim.crash('b');
  const [t, l] = [ticks, log.length];
  sim.runUntil(200);
  assert.equal(ticks, t);
  assert.equal(log.length, l);
  sim.restart('b');
  assert.equal(sim.node('b').generation, 2);
  assert.equal(sim.node('b').disk.get('starts'), 2);
  sim.runUntil(300);
  assert.ok(ticks > t && log.length > l);
});

test('a SWIM run under loss, delay, duplication, reordering and a crash replays exactly from its seed; another seed differs', () => {
  const run = (seed: number) => {
    const c = new SwimCluster({
      n: 12,
      seed,
      wire: true,
      recordTrace: true,
      network: { loss: 0.05, duplicate: 0.02, reorder: 0.05, delay: delays.exponential(0.5, 2) },
    });
    c.sim.runUntil(5_000);
    c.crash(3);
    c.pause(7);
    c.sim.runUntil(12_000);
    c.resume(7);
    c.sim.runUntil(30_000);
    return { hash: c.sim.traceHash, trace: c.sim.trace, stats: { ...c.sim.stats } };
  };
  const a = run(11);
  const b = run(11);
  assert.ok(a.trace.length > 1000);
  assert.equal(a.hash, b.hash);
  assert.deepEqual(a.stats, b.stats);
  const firstDiff = a.trace.findIndex((line, i) => line !== b.trace[i]);
  assert.equal(
    firstDiff,
    -1,
    `runs part at event ${firstDiff}: ${a.trace[firstDiff]} / ${b.trace[firstDiff]}`,
  );
  assert.equal(a.trace.length, b.trace.length);
  const c = run(12);
  assert.notEqual(c.hash, a.hash);
  assert.notDeepEqual(c.trace.slice(0, 500), a.trace.slice(0, 500));
});
