/**
 * Test agent: exercises an rpcbind with Cairn's RpcbindClient from inside a namespace and
 * prints what it observed as one line, `RESULT {json}`, for the test to assert on.
 *
 *   node rpcbind-client.js scenario          set/getport/getaddr/dump/unset against the rpcbind
 *                                            at 127.0.0.1:111 (changes through its Unix socket
 *                                            when it has one, else over TCP)
 *   node rpcbind-client.js remote-set HOST   tries SET and UNSET at HOST:111 over TCP and UDP
 *                                            (refused unless HOST is loopback)
 */
import { existsSync } from 'node:fs';
import { RPCBIND_SOCKET_PATH, RpcbindClient } from '../../../src/rpc/rpcbind/index.js';

const [mode, arg] = process.argv.slice(2);

async function attempt<T>(fn: () => Promise<T>): Promise<T | string> {
  try {
    return await fn();
  } catch (e) {
    return `error:${(e as { code?: string }).code ?? (e as Error).message}`;
  }
}

async function scenario(): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const tcp = new RpcbindClient({ transport: 'tcp' });
  const udp = new RpcbindClient({ transport: 'udp' });
  const hasSocket = existsSync(RPCBIND_SOCKET_PATH);
  const admin = hasSocket ? RpcbindClient.local() : tcp;
  out.hasSocket = hasSocket;
  try {
    await tcp.ping();
    await udp.ping();
    await admin.ping();
    out.selfTcpPort = await tcp.getport(100000, 2, 'tcp');
    out.selfUdpPort = await udp.getport(100000, 2, 'udp');
    out.selfEntries = (await tcp.dump()).filter((e) => e.prog === 100000).length;
    const P = 0x2000beef;
    const tcpMapping = { prog: P, vers: 1, netid: 'tcp', addr: '127.0.0.1.4.210' };
    const udpMapping = { prog: P, vers: 1, netid: 'udp', addr: '127.0.0.1.4.211' };
    // Over TCP from loopback: Cairn's rpcbind and Debian's both accept it.
    out.setOverTcp = await attempt(() => tcp.set({ ...tcpMapping, vers: 5 }));
    out.ownerOverTcp = (await tcp.dump()).find((e) => e.prog === P && e.vers === 5)?.owner ?? null;
    out.unsetOverTcp = await attempt(() => tcp.unset(P, 5));
    out.set = await admin.set(tcpMapping);
    out.setAgain = await admin.set(tcpMapping);
    out.setElsewhere = await admin.set({ ...tcpMapping, addr: '127.0.0.1.4.212' });
    out.setUdp = await admin.set(udpMapping);
    out.getportTcp = await tcp.getport(P, 1, 'tcp');
    out.getportUdp = await udp.getport(P, 1, 'udp');
    out.getportOtherVersion = await tcp.getport(P, 9, 'tcp');
    out.getportMissing = await tcp.getport(P + 1, 1, 'tcp');
    out.getaddrTcp = await tcp.getaddr(P, 1);
    out.getaddrUdp = await udp.getaddr(P, 1);
    out.getversaddr = await tcp.getversaddr(P, 1);
    out.getversaddrMissing = await tcp.getversaddr(P, 9);
    out.addrlist = (await tcp.getaddrlist(P, 1)).map((e) => `${e.r_nc_netid}=${e.r_maddr}`).sort();
    out.lookupUdp = await tcp.lookup(P, 1, 'udp');
    out.dump = (await tcp.dump())
      .filter((e) => e.prog === P)
      .map((e) => `${e.vers}/${e.netid}/${e.addr}/${e.owner}`)
      .sort();
    out.pmapDump = (await tcp.pmapDump())
      .filter((e) => e.prog === P)
      .map((e) => `${e.vers}/${e.prot}/${e.port}`)
      .sort();
    out.gettime = Math.abs((await tcp.gettime()) - Math.floor(Date.now() / 1000)) <= 5;
    out.uaddr2taddr = Buffer.from(await tcp.uaddr2taddr('127.0.0.1.4.210')).toString('hex');
    out.taddr2uaddr = await tcp.taddr2uaddr(await tcp.uaddr2taddr('127.0.0.1.4.210'));
    out.unset = await admin.unset(P, 1);
    out.getportAfter = await tcp.getport(P, 1, 'tcp');
    out.dumpAfter = (await tcp.dump()).filter((e) => e.prog === P).length;
    out.pmapSet = await admin.pmapSet({ prog: P, vers: 2, prot: 17, port: 4321 });
    out.pmapGetport = await udp.getport(P, 2, 'udp');
    out.pmapUnset = await admin.pmapUnset(P, 2);
    out.pmapGetportAfter = await udp.getport(P, 2, 'udp');
    const stats = await tcp.getstat();
    out.statVersions = stats.length;
    out.statV4Calls = stats[2].info.reduce((a, b) => a + b, 0);
  } finally {
    await tcp.close();
    await udp.close();
    if (admin !== tcp) await admin.close();
  }
  return out;
}

async function remoteSet(host: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const transport of ['tcp', 'udp'] as const) {
    const c = new RpcbindClient({ host, transport, timeoutMs: 3000 });
    try {
      out[`${transport}Lookup`] = await attempt(() => c.getport(100000, 2, transport));
      out[`${transport}Set`] = await attempt(() =>
        c.set({ prog: 0x2000beef, vers: 1, netid: transport, addr: '127.0.0.1.4.210' }),
      );
      out[`${transport}PmapSet`] = await attempt(() =>
        c.pmapSet({ prog: 0x2000beef, vers: 1, prot: 6, port: 1234 }),
      );
      out[`${transport}Unset`] = await attempt(() => c.unset(100000, 4));
    } finally {
      await c.close();
    }
  }
  return out;
}

const result = mode === 'scenario' ? await scenario() : mode === 'remote-set' ? await remoteSet(arg) : null;
if (result === null) {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
console.log(`RESULT ${JSON.stringify(result)}`);
process.exit(0);
