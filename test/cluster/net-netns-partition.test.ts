// Four Cairn nodes, each in its own network namespace on a bridge, with iptables cutting links:
// a node cut off from one peer is not declared dead (indirect probes through the others carry its
// acks); a node cut off from all is declared dead within the bound; after healing, every view
// converges and the isolated node is back at a higher incarnation (it refuted).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { waitUntil } from '../support/wait.js';
import { everyoneSees, incarnationOf, nobodyDiesFor, withLab } from './net-lab.js';
import { boundFor, TEST_SWIM } from './net-support.js';

const N = 4;

test('netns: a one-link cut is bridged by indirect probes; isolation is detected; healing converges', async () => {
  await withLab(N, 'swim-cut', async (lab) => {
    const [a, b] = lab.nodes;
    const bound = boundFor(N);

    // A and B cannot hear each other; both still hear C and D.
    await lab.iptables(a.index, ['-A', 'INPUT', '-s', b.ip, '-j', 'DROP']);
    await lab.iptables(b.index, ['-A', 'INPUT', '-s', a.ip, '-j', 'DROP']);
    const rounds = await nobodyDiesFor(lab, bound);
    const cut = (await lab.dropped(a.index)) + (await lab.dropped(b.index));
    assert.ok(cut > 10, `the cut dropped traffic between A and B (${cut} packets)`);
    console.log(
      `one-link cut: ${cut} packets dropped over ${bound} ms (${rounds} status rounds), nobody declared dead`,
    );
    await lab.iptables(a.index, ['-F', 'INPUT']);
    await lab.iptables(b.index, ['-F', 'INPUT']);

    // A cut off from everyone: the others declare it dead.
    const before = incarnationOf(await lab.status(b.index), a);
    await lab.iptables(a.index, ['-A', 'INPUT', '-s', '10.77.0.0/24', '-j', 'DROP']);
    const cutAt = performance.now();
    const others = lab.nodes.filter((n) => n !== a);
    await waitUntil(
      'the others declare the isolated node dead',
      async () => everyoneSees(lab, [a], 'dead', others),
      {
        timeoutMs: bound,
        intervalMs: 100,
      },
    );
    const detected = performance.now() - cutAt;
    console.log(
      `isolated node declared dead by all ${N - 1} others after ${Math.round(detected)} ms (bound ${bound} ms)`,
    );
    // The others still hold each other alive.
    assert.ok(await everyoneSees(lab, others, 'alive', others));

    // Healed: the views merge (push-pull with a dead member every reconnect interval) and A refutes.
    await lab.iptables(a.index, ['-F', 'INPUT']);
    const healedAt = performance.now();
    await waitUntil('every view converges after healing', async () => everyoneSees(lab, lab.nodes, 'alive'), {
      timeoutMs: bound + 4 * (TEST_SWIM.reconnectInterval ?? 2000),
      intervalMs: 100,
    });
    console.log(`after healing, all views converged in ${Math.round(performance.now() - healedAt)} ms`);
    for (const n of others) {
      const inc = incarnationOf(await lab.status(n.index), a);
      assert.ok(inc > before, `node ${n.index + 1} holds A at incarnation ${inc} > ${before}: A refuted`);
    }
  });
});
