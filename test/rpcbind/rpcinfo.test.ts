/**
 * Cairn's rpcbind on port 111 in a fresh network namespace, a Cairn node registered with it,
 * and Debian's rpcinfo run in the same namespace: it must list the node's program (portmapper
 * and rpcbind dumps), reach it over TCP and UDP, and stop listing it once the node has shut
 * down. Both Cairn processes and rpcinfo share a private /run, so nothing here can reach a
 * system rpcbind through its Unix socket. Needs root (CI runs as root).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { requireRoot, withNetns } from '../support/netns.js';
import { agent, agentEnv, assertScenario, parsePmapTable, parseResult, parseRpcbTable } from './harness.js';

const PING_PROG = 0x2000c0de;

test('Debian rpcinfo lists and reaches a Cairn program through Cairn rpcbind on port 111', async () => {
  requireRoot('the rpcinfo interoperability test');
  await withNetns('cairn-rpcbind', async (ns) => {
    const rpcbind = ns.spawn([process.execPath, agent('cairn-rpcbind.js'), '111'], {
      privateRun: true,
      env: agentEnv,
      name: 'cairn rpcbind',
    });
    await rpcbind.waitForLine(/^READY /);
    const rpcinfo = (...args: string[]) =>
      ns.execInChecked(rpcbind, ['rpcinfo', ...args], { timeoutMs: 30_000 });

    const node = ns.spawnIn(rpcbind, [process.execPath, agent('ping-node.js'), 'tcp', '111'], {
      env: agentEnv,
      name: 'ping node',
    });
    const ready = JSON.parse((await node.waitForLine(/^READY /)).slice('READY '.length)) as {
      prog: number;
      tcpPort: number;
      udpPort: number;
    };
    assert.equal(ready.prog, PING_PROG);

    // Version 2 dump (portmapper): rpcbind itself and both versions of the program on both protocols.
    const pmap = parsePmapTable((await rpcinfo('-p', '127.0.0.1')).stdout);
    assert.ok(
      pmap.some((r) => r.prog === 100000 && r.vers === 2 && r.proto === 'tcp' && r.port === 111),
      'portmapper listed',
    );
    const mine = pmap
      .filter((r) => r.prog === PING_PROG)
      .map((r) => `${r.vers}/${r.proto}/${r.port}`)
      .sort();
    assert.deepEqual(mine, [
      `1/tcp/${ready.tcpPort}`,
      `1/udp/${ready.udpPort}`,
      `2/tcp/${ready.tcpPort}`,
      `2/udp/${ready.udpPort}`,
    ]);

    // Versions 3/4 dump: netids and universal addresses.
    const rpcb = parseRpcbTable((await rpcinfo('127.0.0.1')).stdout);
    const mineRpcb = rpcb
      .filter((r) => r.prog === PING_PROG)
      .map((r) => `${r.vers}/${r.netid}/${r.addr}`)
      .sort();
    const ua = (port: number) => `127.0.0.1.${port >> 8}.${port & 0xff}`;
    assert.deepEqual(mineRpcb, [
      `1/tcp/${ua(ready.tcpPort)}`,
      `1/udp/${ua(ready.udpPort)}`,
      `2/tcp/${ua(ready.tcpPort)}`,
      `2/udp/${ua(ready.udpPort)}`,
    ]);
    assert.ok(rpcb.some((r) => r.prog === 100000 && r.vers === 4 && r.netid === 'udp'));

    // rpcinfo looks the program up through rpcbind and calls its NULL procedure.
    for (const vers of ['1', '2']) {
      const t = await rpcinfo('-t', '127.0.0.1', String(PING_PROG), vers);
      assert.match(t.stdout, new RegExp(`program ${PING_PROG} version ${vers} ready and waiting`));
      const u = await rpcinfo('-u', '127.0.0.1', String(PING_PROG), vers);
      assert.match(u.stdout, new RegExp(`program ${PING_PROG} version ${vers} ready and waiting`));
    }
    // Every registered version, probed through rpcbind's version-3/4 lookup.
    const all = await rpcinfo('-T', 'tcp', '127.0.0.1', String(PING_PROG));
    assert.match(all.stdout, /version 1 ready and waiting/);
    assert.match(all.stdout, /version 2 ready and waiting/);
    // Summary and statistics (GETSTAT) decode in Debian's rpcinfo.
    assert.match(
      (await rpcinfo('-s', '127.0.0.1')).stdout,
      new RegExp(`${PING_PROG}\\s+2,1\\s+udp,tcp|${PING_PROG}\\s+2,1\\s+tcp,udp`),
    );
    const stats = await rpcinfo('-m', '127.0.0.1');
    assert.match(stats.stdout, /PORTMAP \(version 2\) statistics/);
    assert.match(stats.stdout, /RPCBIND \(version 4\) statistics/);

    // Shutdown: the node removes its registrations before it exits.
    const status = await node.stop('SIGTERM');
    assert.equal(status.code, 0, node.describeOutput());
    assert.match(node.stdout, /UNREGISTERED/);
    const after = parsePmapTable((await rpcinfo('-p', '127.0.0.1')).stdout);
    assert.deepEqual(
      after.filter((r) => r.prog === PING_PROG),
      [],
    );
    const gone = await ns.execIn(rpcbind, ['rpcinfo', '-t', '127.0.0.1', String(PING_PROG), '1'], {
      timeoutMs: 30_000,
    });
    assert.notEqual(gone.code, 0, 'rpcinfo no longer finds the program');
    assert.match(gone.stdout + gone.stderr, /not registered|Program not registered|unavailable/i);

    // The same client scenario that runs against Debian's rpcbind, against Cairn's.
    assertScenario(
      parseResult(
        (
          await ns.execInChecked(rpcbind, [process.execPath, agent('rpcbind-client.js'), 'scenario'], {
            env: agentEnv,
            timeoutMs: 60_000,
          })
        ).stdout,
      ),
    );

    const status2 = await rpcbind.stop('SIGTERM');
    assert.equal(status2.code, 0, rpcbind.describeOutput());
  });
});

test('Cairn rpcbind refuses SET and UNSET from a non-loopback address', async () => {
  requireRoot('the remote registration test');
  await withNetns('cairn-rpcbind-remote', async (ns) => {
    // A second address on the namespace's loopback device: calls to it come from it, and it
    // is not a loopback address.
    await ns.execChecked(['ip', 'addr', 'add', '10.99.0.1/32', 'dev', 'lo']);
    const rpcbind = ns.spawn([process.execPath, agent('cairn-rpcbind.js'), '111'], {
      privateRun: true,
      env: agentEnv,
      name: 'cairn rpcbind',
    });
    await rpcbind.waitForLine(/^READY /);
    const r = parseResult(
      (
        await ns.execInChecked(
          rpcbind,
          [process.execPath, agent('rpcbind-client.js'), 'remote-set', '10.99.0.1'],
          { env: agentEnv, timeoutMs: 60_000 },
        )
      ).stdout,
    );
    assert.equal(r.tcpLookup, 111, 'lookups are open to remote callers');
    assert.equal(r.udpLookup, 111);
    for (const key of ['tcpSet', 'tcpPmapSet', 'tcpUnset', 'udpSet', 'udpPmapSet', 'udpUnset']) {
      assert.equal(r[key], 'error:RPC_AUTH_ERROR', `${key}: ${JSON.stringify(r)}`);
    }
    const pmap = parsePmapTable((await ns.execInChecked(rpcbind, ['rpcinfo', '-p', '127.0.0.1'])).stdout);
    assert.equal(pmap.filter((e) => e.prog === 0x2000beef).length, 0, 'nothing was registered');
    assert.equal(pmap.filter((e) => e.prog === 100000 && e.vers === 4).length, 2, 'nothing was removed');
  });
});
