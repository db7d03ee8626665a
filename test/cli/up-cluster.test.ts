// `cairn up --nodes 3` and `cairn status` as a user runs them: three node processes that form a
// cluster, a view from `cairn status` (text and JSON), a child killed behind the supervisor's back
// reported and declared dead by the others, and a clean stop of the rest on SIGTERM.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { boundFor, statusOf, TEST_SWIM } from '../cluster/net-support.js';
import { runCommand, spawnProcess } from '../support/process.js';
import { withTempDir } from '../support/tmp.js';
import { waitUntil } from '../support/wait.js';

const CLI = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.js');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('cairn up --nodes 3 runs a cluster that cairn status shows; a dead child is reported; SIGTERM stops the rest', async () => {
  await withTempDir('cairn-up-cluster', async (dir) => {
    const data = join(dir, 'data');
    const up = spawnProcess(
      process.execPath,
      [
        CLI,
        'up',
        '--nodes',
        '3',
        '--data',
        data,
        '--rpcbind-port',
        '0',
        '--nfs-port',
        '0',
        '--gossip-port',
        '0',
        '--swim',
        JSON.stringify(TEST_SWIM),
      ],
      { env: { ...process.env, CAIRN_LOG_LEVEL: 'warn' } },
    );
    try {
      const viewLine = await up.waitForLine(/cairn status --node \S+/, 60_000);
      const seed = /--node (\S+)/.exec(viewLine)?.[1] as string;
      const pids = [...up.stdout.matchAll(/node (\d) \(pid (\d+)\), data (\S+)/g)].map((m) => ({
        k: Number(m[1]),
        pid: Number(m[2]),
        data: m[3],
      }));
      assert.deepEqual(
        pids.map((p) => p.k),
        [1, 2, 3],
        up.stdout,
      );
      for (const p of pids) assert.equal(p.data, join(data, `node-${p.k}`));
      assert.equal(
        [...up.stdout.matchAll(/^\s+members\s+127\.0\.0\.1:\d+/gm)].length,
        3,
        'three membership ports',
      );
      assert.equal([...up.stdout.matchAll(/^\s+nfs\s+127\.0\.0\.1:\d+/gm)].length, 3, 'three NFS ports');

      await waitUntil(
        'three members alive in node 1s view',
        async () => {
          const v = await statusOf(seed);
          return v.members.length === 3 && v.members.every((m) => m.state === 'alive');
        },
        { timeoutMs: boundFor(3) },
      );
      const text = await runCommand(process.execPath, [CLI, 'status', '--node', seed]);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /members: 3 alive, 0 suspect, 0 dead, 0 left; ring of 3 live members, R = 3/);
      assert.equal([...text.stdout.matchAll(/ alive /g)].length, 3, text.stdout);
      const json = await runCommand(process.execPath, [CLI, 'status', '--json', '--node', seed]);
      assert.equal(json.code, 0, json.stderr);
      const view = JSON.parse(json.stdout);
      assert.equal(view.members.length, 3);
      assert.equal(json.stdout.trim().split('\n').length, 1, 'one JSON object on one line');

      // A node killed behind the supervisor's back: reported, and declared dead by the others.
      const victim = pids[1];
      process.kill(victim.pid, 'SIGKILL');
      await waitUntil('the supervisor reports the dead child', async () =>
        up.stderr.includes(`node 2 (pid ${victim.pid}) exited unexpectedly (signal SIGKILL)`),
      );
      await waitUntil(
        'node 1 declares node 2 dead',
        async () => (await statusOf(seed)).members.filter((m) => m.state === 'dead').length === 1,
        { timeoutMs: boundFor(3) },
      );

      const status = await up.stop('SIGTERM', 15_000);
      assert.equal(status.code, 0, up.describeOutput());
      assert.match(up.stdout, /SIGTERM, stopping 2 nodes/);
      for (const p of pids) assert.ok(!alive(p.pid), `node ${p.k} (pid ${p.pid}) is gone`);
      // The killed node's lock stays (a stale lock, taken over at its next start); the others release theirs.
      for (const p of [pids[0], pids[2]]) {
        assert.ok(!existsSync(join(p.data, 'node.lock')), `node ${p.k}'s lock is released`);
      }
      // Each node keeps its identity for its next start.
      for (const p of pids) assert.ok(existsSync(join(p.data, 'cluster-identity')));

      const gone = await runCommand(process.execPath, [CLI, 'status', '--node', seed, '--timeout', '1000']);
      assert.equal(gone.code, 1);
      assert.match(gone.stderr, /no answer from a node at/);
    } finally {
      await up.stop('SIGKILL');
    }
  });
});

test('cairn up and cairn status reject bad arguments with exit status 2', async () => {
  for (const args of [
    ['up', '--data', '/tmp/x', '--nodes', '0'],
    ['up', '--data', '/tmp/x', '--swim', 'not json'],
    ['up', '--data', '/tmp/x', '--swim', '{"probeTimeout":5000,"probeInterval":1000}'],
    ['up', '--data', '/tmp/x', '--gossip-port', '70000'],
    ['up', '--data', '/tmp/x', '--nodes', '2', '--host', '10.0.0.1'],
    ['status', '--node', 'nowhere'],
    ['status', '--bogus'],
  ]) {
    const r = await runCommand(process.execPath, [CLI, ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /usage: cairn (up|status)/);
  }
});

test('a node that would gossip over the network without a secret refuses to start', async () => {
  await withTempDir('cairn-up-nosecret', async (dir) => {
    const r = await runCommand(
      process.execPath,
      [
        CLI,
        'up',
        '--data',
        join(dir, 'd'),
        '--rpcbind-port',
        '0',
        '--nfs-port',
        '0',
        '--join',
        '192.0.2.1:7946',
      ],
      { env: { ...process.env, CAIRN_LOG_LEVEL: 'warn', CAIRN_CLUSTER_SECRET: '' } },
    );
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /without a cluster secret/);
  });
});
