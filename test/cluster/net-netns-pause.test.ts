// Four Cairn nodes in network namespaces on a bridge: a node stopped (SIGSTOP) for longer than
// the suspicion timeout is declared dead, and after SIGCONT refutes and is alive in every view
// again; with 5% of every node's incoming packets dropped at random (iptables' statistic match),
// no node is declared dead over many protocol periods.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { waitUntil } from '../support/wait.js';
import { everyoneSees, incarnationOf, nobodyDiesFor, withLab } from './net-lab.js';
import { boundFor, TEST_SWIM } from './net-support.js';

const N = 4;

test('netns: a paused node is declared dead, then refutes on SIGCONT; 5% loss declares nobody dead', async () => {
  await withLab(N, 'swim-pause', async (lab) => {
    const c = lab.nodes[2];
    const others = lab.nodes.filter((n) => n !== c);
    const bound = boundFor(N);
    const before = incarnationOf(await lab.status(0), c);

    // Stopped until the others declare it dead: necessarily longer than the suspicion timeout.
    c.proc?.signal('SIGSTOP');
    const stoppedAt = performance.now();
    try {
      await waitUntil(
        'the others declare the paused node dead',
        async () => everyoneSees(lab, [c], 'dead', others),
        {
          timeoutMs: bound,
          intervalMs: 100,
        },
      );
    } finally {
      c.proc?.signal('SIGCONT');
    }
    const pausedFor = performance.now() - stoppedAt;
    console.log(
      `paused node declared dead by all ${N - 1} others after ${Math.round(pausedFor)} ms (bound ${bound} ms)`,
    );
    const resumedAt = performance.now();
    await waitUntil('every view converges after SIGCONT', async () => everyoneSees(lab, lab.nodes, 'alive'), {
      timeoutMs: bound,
      intervalMs: 100,
    });
    console.log(`after SIGCONT, all views converged in ${Math.round(performance.now() - resumedAt)} ms`);
    for (const n of others) {
      const inc = incarnationOf(await lab.status(n.index), c);
      assert.ok(inc > before, `node ${n.index + 1} holds the resumed node at incarnation ${inc} > ${before}`);
    }

    // 5% random loss on every node's network interface (loopback, where status is asked, spared).
    for (const n of lab.nodes) {
      await lab.iptables(n.index, [
        '-A',
        'INPUT',
        '-i',
        'eth0',
        '-m',
        'statistic',
        '--mode',
        'random',
        '--probability',
        '0.05',
        '-j',
        'DROP',
      ]);
    }
    const periods = 40;
    const window = periods * (TEST_SWIM.probeInterval ?? 500);
    const suspicionsBefore = (await Promise.all(lab.nodes.map((n) => lab.status(n.index)))).reduce(
      (s, v) => s + v.counters.suspicions,
      0,
    );
    await nobodyDiesFor(lab, window);
    const views = await Promise.all(lab.nodes.map((n) => lab.status(n.index)));
    const suspicions = views.reduce((s, v) => s + v.counters.suspicions, 0) - suspicionsBefore;
    let dropped = 0;
    for (const n of lab.nodes) dropped += await lab.dropped(n.index);
    assert.ok(dropped > 0, 'the loss rule dropped packets');
    assert.ok(await everyoneSees(lab, lab.nodes, 'alive'));
    console.log(
      `5% loss for ${periods} probe periods (${window} ms): ${dropped} packets dropped, ` +
        `${suspicions} suspicions raised, nobody declared dead`,
    );
  });
});
