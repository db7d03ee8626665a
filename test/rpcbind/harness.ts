/**
 * Shared by the rpcbind namespace tests: where the compiled agents are, how to run them, and
 * what Debian's rpcinfo prints, parsed.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';

/** Absolute path of a compiled agent script (dist/test/rpcbind/agents/NAME). */
export function agent(name: string): string {
  return fileURLToPath(new URL(`./agents/${name}`, import.meta.url));
}

/** Environment for agents: quiet logs. */
export const agentEnv: NodeJS.ProcessEnv = { ...process.env, CAIRN_LOG_LEVEL: 'warn' };

/** `rpcinfo -p` rows: program, version, protocol, port. */
export function parsePmapTable(out: string): { prog: number; vers: number; proto: string; port: number }[] {
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 4 && /^\d+$/.test(f[0]))
    .map((f) => ({ prog: Number(f[0]), vers: Number(f[1]), proto: f[2], port: Number(f[3]) }));
}

/** `rpcinfo HOST` (version 3/4 dump) rows: program, version, netid, address, owner. */
export function parseRpcbTable(
  out: string,
): { prog: number; vers: number; netid: string; addr: string; owner: string }[] {
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 5 && /^\d+$/.test(f[0]))
    .map((f) => ({
      prog: Number(f[0]),
      vers: Number(f[1]),
      netid: f[2],
      addr: f[3],
      owner: f[f.length - 1],
    }));
}

/** The `RESULT {json}` line an agent prints. */
export function parseResult(stdout: string): Record<string, unknown> {
  const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
  assert.ok(line, `no RESULT line in agent output:\n${stdout}`);
  return JSON.parse(line.slice('RESULT '.length)) as Record<string, unknown>;
}

/**
 * What the rpcbind-client agent's scenario must observe from any conforming rpcbind (Cairn's
 * and Debian's alike): the same answers to the same questions.
 */
export function assertScenario(r: Record<string, unknown>): void {
  assert.equal(r.selfTcpPort, 111);
  assert.equal(r.selfUdpPort, 111);
  assert.ok((r.selfEntries as number) >= 6, 'rpcbind lists itself');
  assert.equal(r.setOverTcp, true, 'SET over TCP from loopback is accepted');
  assert.equal(r.ownerOverTcp, 'unknown', 'no credential: owner unknown');
  assert.equal(r.unsetOverTcp, true);
  assert.equal(r.set, true);
  assert.equal(r.setAgain, true, 'the same registration again is accepted (nothing changes)');
  assert.equal(r.setElsewhere, false, 'SET never overwrites a registration with another address');
  assert.equal(r.setUdp, true);
  assert.equal(r.getportTcp, 1234);
  assert.equal(r.getportUdp, 1235);
  assert.equal(r.getportMissing, 0);
  assert.equal(r.getportOtherVersion, 1234, 'GETPORT falls back to another version of the program');
  assert.equal(r.getaddrTcp, '127.0.0.1.4.210');
  assert.equal(r.getaddrUdp, '127.0.0.1.4.211');
  assert.equal(r.getversaddr, '127.0.0.1.4.210');
  assert.equal(r.getversaddrMissing, null);
  assert.deepEqual(r.addrlist, ['tcp=127.0.0.1.4.210', 'udp=127.0.0.1.4.211']);
  assert.equal(r.lookupUdp, '127.0.0.1.4.211');
  const dump = r.dump as string[];
  assert.deepEqual(
    dump.map((d) => d.split('/').slice(0, 3).join('/')),
    ['1/tcp/127.0.0.1.4.210', '1/udp/127.0.0.1.4.211'],
  );
  assert.deepEqual(r.pmapDump, ['1/17/1235', '1/6/1234']);
  assert.equal(r.gettime, true);
  assert.equal(r.uaddr2taddr, '020004d27f0000010000000000000000');
  assert.equal(r.taddr2uaddr, '127.0.0.1.4.210');
  assert.equal(r.unset, true);
  assert.equal(r.getportAfter, 0);
  assert.equal(r.dumpAfter, 0);
  assert.equal(r.pmapSet, true);
  assert.equal(r.pmapGetport, 4321);
  assert.equal(r.pmapUnset, true);
  assert.equal(r.pmapGetportAfter, 0);
  assert.equal(r.statVersions, 3);
  assert.ok((r.statV4Calls as number) > 0);
}
