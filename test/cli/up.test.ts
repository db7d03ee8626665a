// `cairn up` as a user runs it: a real process, its rpcbind queried over TCP, a clean stop.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { RPCBPROG, RpcbindClient } from '../../src/rpc/rpcbind/index.js';
import { withNetns } from '../support/netns.js';
import { runChecked, runCommand, spawnProcess } from '../support/process.js';
import { withTempDir } from '../support/tmp.js';

const CLI = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.js');

test('cairn up runs a node that answers on rpcbind and stops cleanly on SIGTERM', async () => {
  await withTempDir('cairn-up', async (dir) => {
    const data = join(dir, 'data');
    const node = spawnProcess(
      process.execPath,
      [CLI, 'up', '--nodes', '1', '--data', data, '--rpcbind-port', '0'],
      {
        env: { ...process.env, CAIRN_LOG_LEVEL: 'warn' },
      },
    );
    const line = await node.waitForLine(/rpcbind\s+127\.0\.0\.1:\d+/);
    const port = Number(/:(\d+)/.exec(line)?.[1]);
    assert.ok(existsSync(join(data, 'node.lock')), 'the data directory is locked while the node runs');

    const second = await runCommand(process.execPath, [CLI, 'up', '--data', data, '--rpcbind-port', '0']);
    assert.equal(second.code, 1, 'a second node on the same data directory is refused');
    assert.match(second.stderr, /in use by process \d+/);

    const rpcbind = new RpcbindClient({ port });
    try {
      const maps = await rpcbind.pmapDump();
      assert.ok(
        maps.some((m) => m.prog === RPCBPROG && m.port === port),
        'rpcbind lists itself',
      );
    } finally {
      rpcbind.close();
    }
    const status = await node.stop('SIGTERM');
    assert.equal(status.code, 0, node.describeOutput());
    assert.match(node.stdout, /SIGTERM, stopping/);
    assert.ok(!existsSync(join(data, 'node.lock')), 'the lock is released on stop');
  });
});

test('cairn up rejects bad arguments with a message and exit status 2', async () => {
  for (const args of [['up'], ['up', '--data', '/tmp/x', '--nodes', 'zero'], ['up', '--bogus']]) {
    const r = await runCommand(process.execPath, [CLI, ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /usage: cairn up|--nodes/);
  }
});

test('cairn up --host with a non-loopback address registers NFS and MOUNT with its rpcbind', async () => {
  await withNetns('up-host', async (ns) => {
    await runChecked('ip', ['-n', ns.name, 'addr', 'add', '10.99.0.1/32', 'dev', 'lo']);
    await withTempDir('cairn-up-host', async (dir) => {
      const node = ns.spawn(
        [process.execPath, CLI, 'up', '--data', join(dir, 'data'), '--host', '10.99.0.1'],
        {
          env: { ...process.env, CAIRN_LOG_LEVEL: 'warn' },
        },
      );
      try {
        await node.waitForLine(/nfs\s+10\.99\.0\.1:2049/);
        const listing = await ns.execChecked(['rpcinfo', '-p', '10.99.0.1']);
        for (const program of ['nfs', 'mountd']) {
          for (const proto of ['tcp', 'udp']) {
            assert.match(listing.stdout, new RegExp(`100\\d{3}\\s+3\\s+${proto}\\s+2049\\s+${program}`));
          }
        }
      } finally {
        assert.equal((await node.stop('SIGTERM')).code, 0, node.describeOutput());
      }
    });
  });
});

test('a node that meets an error nothing handles kills itself at once, saying why, and its data opens again', async () => {
  await withTempDir('cairn-up-fatal', async (dir) => {
    const data = join(dir, 'data');
    const args = [CLI, 'up', '--nodes', '1', '--data', data, '--rpcbind-port', '0', '--nfs-port', '0'];
    const node = spawnProcess(process.execPath, args, {
      env: { ...process.env, CAIRN_LOG_LEVEL: 'warn', CAIRN_FAILPOINTS: 'node.throw-after-start' },
    });
    const status = await node.exited;
    assert.equal(status.signal, 'SIGKILL', node.describeOutput());
    assert.match(
      node.stderr,
      /cairn: fatal uncaught exception, killing the node: Error: failpoint node\.throw-after-start/,
    );

    // The stale lock of the killed process does not keep the node from starting again.
    const again = spawnProcess(process.execPath, args, { env: { ...process.env, CAIRN_LOG_LEVEL: 'warn' } });
    await again.waitForLine(/nfs\s+127\.0\.0\.1:\d+/);
    assert.equal((await again.stop('SIGTERM')).code, 0, again.describeOutput());
  });
});
