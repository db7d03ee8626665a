// Five Cairn node processes on loopback (`cairn up --nodes 1 --join ...` each): kill -9 one, every
// other declares it dead within the configured bound; restart it: it rejoins at a higher
// incarnation and every view converges. Views are read over GOSSIP_STATUS, as `cairn status`.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCommand, type SpawnedProcess, spawnProcess } from '../support/process.js';
import { withTempDir } from '../support/tmp.js';
import { waitUntil } from '../support/wait.js';
import {
  boundFor,
  CLI,
  incarnationIn,
  type NodeInfo,
  nodeInfo,
  stateIn,
  statusOf,
  TEST_SWIM,
} from './net-support.js';

const N = 5;

function startNode(dir: string, k: number, gossipPort: number, seeds: string[]): SpawnedProcess {
  const args = [
    CLI,
    'up',
    '--data',
    join(dir, `node-${k}`),
    '--rpcbind-port',
    '0',
    '--nfs-port',
    '0',
    '--gossip-port',
    String(gossipPort),
    '--swim',
    JSON.stringify(TEST_SWIM),
  ];
  for (const s of seeds) args.push('--join', s);
  return spawnProcess(process.execPath, args, {
    name: `node-${k}`,
    env: { ...process.env, CAIRN_LOG_LEVEL: 'warn' },
  });
}

/** Every node in `live` sees every node in `live` alive, and each of `gone` as `goneState`. */
async function converged(live: NodeInfo[], gone: NodeInfo[] = [], goneState = 'dead'): Promise<boolean> {
  const views = await Promise.all(live.map((n) => statusOf(n.membership)));
  for (const v of views) {
    for (const n of live) if (stateIn(v, n.id) !== 'alive') return false;
    for (const n of gone) if (stateIn(v, n.id) !== goneState) return false;
  }
  return true;
}

test('five node processes: kill -9 of one is detected by all within the bound; restarted, it rejoins', async () => {
  await withTempDir('net-loopback', async (dir) => {
    const procs: SpawnedProcess[] = [];
    try {
      procs.push(startNode(dir, 1, 0, []));
      const infos: NodeInfo[] = [await nodeInfo(procs[0])];
      for (let k = 2; k <= N; k++) procs.push(startNode(dir, k, 0, [infos[0].membership]));
      for (let k = 2; k <= N; k++) infos.push(await nodeInfo(procs[k - 1]));
      await waitUntil('five nodes see each other alive', async () => converged(infos), {
        timeoutMs: boundFor(N),
      });

      // `cairn status --json`, the command itself, shows the same.
      const cli = await runCommand(process.execPath, [
        CLI,
        'status',
        '--json',
        '--node',
        infos[2].membership,
      ]);
      assert.equal(cli.code, 0, cli.stderr);
      const view = JSON.parse(cli.stdout);
      assert.equal(view.self, infos[2].id);
      assert.equal(view.members.length, N);
      assert.ok(view.members.every((m: { state: string }) => m.state === 'alive'));
      const shares = view.members.map((m: { primaryShare: number }) => m.primaryShare);
      assert.ok(
        Math.abs(shares.reduce((a: number, b: number) => a + b, 0) - 1) < 1e-9,
        'primary shares sum to 1',
      );
      assert.ok(
        shares.every((s: number) => s > 0.1 && s < 0.3),
        `each of 5 holds about a fifth: ${shares}`,
      );

      const victim = 3;
      const before = incarnationIn(await statusOf(infos[0].membership), infos[victim].id) ?? 0;
      const port = Number(infos[victim].membership.split(':')[1]);
      const killedAt = performance.now();
      procs[victim].signal('SIGKILL');
      await procs[victim].exited;
      const others = infos.filter((_, i) => i !== victim);
      const seenDeadAt = new Map<string, number>();
      const bound = boundFor(N);
      await waitUntil(
        'every other node declares the killed one dead',
        async () => {
          const views = await Promise.all(others.map((n) => statusOf(n.membership)));
          views.forEach((v, i) => {
            if (stateIn(v, infos[victim].id) === 'dead' && !seenDeadAt.has(others[i].id)) {
              seenDeadAt.set(others[i].id, performance.now() - killedAt);
            }
          });
          return seenDeadAt.size === others.length;
        },
        { timeoutMs: bound, intervalMs: 50 },
      );
      const times = [...seenDeadAt.values()].sort((a, b) => a - b);
      console.log(
        `kill -9 of 1 of ${N} nodes: declared dead after ${times.map((t) => Math.round(t)).join(', ')} ms ` +
          `(bound ${bound} ms; probe ${TEST_SWIM.probeInterval} ms)`,
      );
      // Nobody else was suspected into death meanwhile.
      for (const v of await Promise.all(others.map((n) => statusOf(n.membership)))) {
        for (const n of others) assert.equal(stateIn(v, n.id), 'alive', `${v.self} sees ${n.id}`);
      }

      // Restarted with its data directory and at its address: the same id, a higher incarnation.
      const restartedAt = performance.now();
      procs[victim] = startNode(dir, victim + 1, port, [infos[0].membership]);
      const again = await nodeInfo(procs[victim]);
      assert.equal(again.id, infos[victim].id, 'the identity survives the restart');
      assert.equal(again.membership, infos[victim].membership);
      await waitUntil('all views converge after the restart', async () => converged(infos), {
        timeoutMs: bound,
      });
      console.log(
        `restart: all ${N} views converged after ${Math.round(performance.now() - restartedAt)} ms`,
      );
      for (const v of await Promise.all(infos.map((n) => statusOf(n.membership)))) {
        const inc = incarnationIn(v, infos[victim].id) ?? -1;
        assert.ok(inc > before, `${v.self} holds the restarted node at incarnation ${inc} > ${before}`);
        assert.deepEqual(v.rejected, {}, `${v.self} rejected nothing: ${JSON.stringify(v.rejected)}`);
      }
    } finally {
      await Promise.all(procs.map((p) => p.stop('SIGTERM', 5000)));
    }
  });
});
