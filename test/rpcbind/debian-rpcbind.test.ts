/**
 * Cairn's RpcbindClient against Debian's real rpcbind daemon, started in its own network
 * namespace with a private /run (its lock file, Unix socket and state stay there). The Cairn
 * side runs inside the daemon's namespaces through nsenter. Needs root (CI runs as root).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { requireRoot, withNetns } from '../support/netns.js';
import { hasCommand } from '../support/process.js';
import { waitUntil } from '../support/wait.js';
import { agent, agentEnv, assertScenario, parsePmapTable, parseResult, parseRpcbTable } from './harness.js';

const PING_PROG = 0x2000c0de;

test("Cairn's RpcbindClient and node registration against Debian's rpcbind", async () => {
  requireRoot('the Debian rpcbind test');
  assert.ok(
    hasCommand('rpcbind') || hasCommand('/usr/sbin/rpcbind'),
    'rpcbind is not installed (Debian package rpcbind; .ci/run installs it)',
  );
  await withNetns('debian-rpcbind', async (ns) => {
    // -f: stay in the foreground, so the test owns the process and stops it.
    const daemon = ns.spawn(['rpcbind', '-f'], { privateRun: true, name: 'debian rpcbind' });
    // rpcbind prints nothing when ready: its port answering is the signal.
    await waitUntil(
      'Debian rpcbind to answer on 127.0.0.1:111',
      async () => {
        if (!daemon.running) throw new Error(`rpcbind exited\n${daemon.describeOutput()}`);
        return (await ns.execIn(daemon, ['rpcinfo', '-p', '127.0.0.1'], { timeoutMs: 10_000 })).code === 0;
      },
      { timeoutMs: 20_000 },
    );

    // The client: NULL, SET (through the Unix socket), GETPORT, GETADDR, DUMP, UNSET and more.
    const r = parseResult(
      (
        await ns.execInChecked(daemon, [process.execPath, agent('rpcbind-client.js'), 'scenario'], {
          env: agentEnv,
          timeoutMs: 60_000,
        })
      ).stdout,
    );
    assert.equal(r.hasSocket, true, 'rpcbind made its Unix socket in the private /run');
    assertScenario(r);
    // Registered through the Unix socket by root: rpcbind records the owner from the kernel.
    assert.ok(
      (r.dump as string[]).every((d) => d.endsWith('/superuser')),
      JSON.stringify(r.dump),
    );

    // A Cairn node registering its program with Debian's rpcbind, found by Debian's rpcinfo.
    const node = ns.spawnIn(daemon, [process.execPath, agent('ping-node.js'), 'local'], {
      env: agentEnv,
      name: 'ping node',
    });
    const ready = JSON.parse((await node.waitForLine(/^READY /)).slice('READY '.length)) as {
      tcpPort: number;
      udpPort: number;
    };
    const rpcinfo = (...args: string[]) =>
      ns.execInChecked(daemon, ['rpcinfo', ...args], { timeoutMs: 30_000 });
    const pmap = parsePmapTable((await rpcinfo('-p', '127.0.0.1')).stdout);
    assert.deepEqual(
      pmap
        .filter((e) => e.prog === PING_PROG)
        .map((e) => `${e.vers}/${e.proto}/${e.port}`)
        .sort(),
      [
        `1/tcp/${ready.tcpPort}`,
        `1/udp/${ready.udpPort}`,
        `2/tcp/${ready.tcpPort}`,
        `2/udp/${ready.udpPort}`,
      ],
    );
    const rpcb = parseRpcbTable((await rpcinfo('127.0.0.1')).stdout).filter((e) => e.prog === PING_PROG);
    assert.equal(rpcb.length, 4);
    assert.match((await rpcinfo('-t', '127.0.0.1', String(PING_PROG), '1')).stdout, /ready and waiting/);
    assert.match((await rpcinfo('-u', '127.0.0.1', String(PING_PROG), '2')).stdout, /ready and waiting/);

    const status = await node.stop('SIGTERM');
    assert.equal(status.code, 0, node.describeOutput());
    assert.match(node.stdout, /UNREGISTERED/);
    const after = parsePmapTable((await rpcinfo('-p', '127.0.0.1')).stdout);
    assert.equal(after.filter((e) => e.prog === PING_PROG).length, 0, 'unregistered on shutdown');

    await daemon.stop('SIGTERM');
  });
});
