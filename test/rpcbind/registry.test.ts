/**
 * The rpcbind endpoint table, address helpers and service, without namespaces or root: the
 * registry and statistics as pure state, the service's handlers with made-up call contexts, and
 * client and service over real sockets on ephemeral ports.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import {
  type CallContext,
  RpcAuthError,
  RpcProgramUnavailableError,
  RpcServer,
  RpcTimeoutError,
  TcpServerTransport,
  UdpServerTransport,
} from '../../src/rpc/index.js';
import {
  IPPROTO_TCP,
  IPPROTO_UDP,
  isLoopbackAddress,
  mergeAddress,
  parseUniversalAddress,
  RpcbindClient,
  RpcbindRegistry,
  RpcbindService,
  RpcbindStats,
  type RunningRpcbind,
  registerRpcbind,
  registerWithRpcbind,
  SUPERUSER,
  startRpcbind,
  taddrToUaddr,
  toUniversalAddress,
  uaddrToTaddr,
} from '../../src/rpc/rpcbind/index.js';
import { XdrReader, XdrWriter } from '../../src/xdr/index.js';
import { CAIRN_PING_PROG, type CAIRN_PING_V1_Handler, CAIRN_PING_V1_program, PING_ECHO } from './gen/ping.js';

const P = 0x20001234;
/** The refusals these tests provoke are logged as warnings; keep the test output clean. */
const logger = pino({ level: 'silent' });

function ctx(over: Partial<CallContext> = {}): CallContext {
  return {
    xid: 1,
    program: 100000,
    version: 4,
    procedure: 1,
    credential: { flavor: 0 },
    transport: 'tcp',
    remoteAddress: '127.0.0.1',
    remotePort: 1000,
    localPort: 111,
    signal: new AbortController().signal,
    ...over,
  };
}

describe('universal addresses', () => {
  test('format and parse IPv4 and IPv6', () => {
    assert.equal(toUniversalAddress('127.0.0.1', 2049), '127.0.0.1.8.1');
    assert.equal(toUniversalAddress('0.0.0.0', 111), '0.0.0.0.0.111');
    assert.equal(toUniversalAddress('::1', 65535), '::1.255.255');
    assert.deepEqual(parseUniversalAddress('127.0.0.1.8.1'), { host: '127.0.0.1', port: 2049, family: 4 });
    assert.deepEqual(parseUniversalAddress('fe80::1.0.111'), { host: 'fe80::1', port: 111, family: 6 });
    for (const bad of [
      '',
      '127.0.0.1',
      '127.0.0.1.256.1',
      '1.2.3.4.5',
      'host.0.1',
      '1.2.3.4.-1.0',
      'x'.repeat(100),
    ]) {
      assert.equal(parseUniversalAddress(bad), null, bad);
    }
    assert.throws(() => toUniversalAddress('example.com', 1), RangeError);
    assert.throws(() => toUniversalAddress('127.0.0.1', 70000), RangeError);
  });

  test('loopback detection', () => {
    for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1', '0:0:0:0:0:0:0:1'])
      assert.ok(isLoopbackAddress(a), a);
    for (const a of ['10.0.0.1', '::', '::2', '::ffff:10.0.0.1', '', 'localhost', '128.0.0.1'])
      assert.ok(!isLoopbackAddress(a), a);
  });

  test('merging a wildcard registration with the address the caller reached', () => {
    assert.equal(mergeAddress('0.0.0.0.8.1', '10.1.2.3'), '10.1.2.3.8.1');
    assert.equal(mergeAddress('0.0.0.0.8.1', '::ffff:10.1.2.3'), '10.1.2.3.8.1');
    assert.equal(mergeAddress('10.9.9.9.8.1', '10.1.2.3'), '10.9.9.9.8.1');
    assert.equal(mergeAddress('0.0.0.0.8.1', undefined), '0.0.0.0.8.1');
    assert.equal(mergeAddress('::.8.1', '::1'), '::1.8.1');
    assert.equal(mergeAddress('::.8.1', '127.0.0.1'), '::.8.1');
  });

  test('socket-address translation round-trips', () => {
    const t4 = uaddrToTaddr('127.0.0.1.8.1');
    assert.ok(t4);
    assert.equal(t4.length, 16);
    assert.equal(t4.readUInt16BE(2), 2049);
    assert.deepEqual([...t4.subarray(4, 8)], [127, 0, 0, 1]);
    assert.equal(taddrToUaddr(t4), '127.0.0.1.8.1');
    const t6 = uaddrToTaddr('fe80::1:2.0.111');
    assert.ok(t6);
    assert.equal(t6.length, 28);
    assert.equal(taddrToUaddr(t6), 'fe80::1:2.0.111');
    assert.equal(taddrToUaddr(uaddrToTaddr('::ffff:1.2.3.4.0.1')!), '::ffff:102:304.0.1');
    assert.equal(uaddrToTaddr('nonsense'), null);
    assert.equal(taddrToUaddr(new Uint8Array([9, 9, 9])), null);
  });
});

describe('registry', () => {
  test('SET refuses to overwrite with another address; UNSET removes', () => {
    const r = new RpcbindRegistry();
    const m = { prog: P, vers: 1, netid: 'tcp', addr: '127.0.0.1.8.1', owner: 'unknown' };
    assert.equal(r.set(m), true);
    assert.equal(r.trySet({ ...m, addr: '127.0.0.1.8.2' }), 'exists');
    assert.equal(r.trySet({ ...m, owner: 'someone else' }), null, 'the same registration again: accepted');
    assert.equal(r.get(P, 1, 'tcp')?.owner, 'unknown', '... and nothing changed');
    assert.equal(r.get(P, 1, 'tcp')?.addr, '127.0.0.1.8.1');
    assert.equal(r.set({ ...m, netid: 'udp', addr: '127.0.0.1.8.3' }), true);
    assert.equal(r.size, 2);
    assert.equal(r.unset(P, 1, 'tcp', 'unknown'), true);
    assert.equal(r.get(P, 1, 'tcp'), undefined);
    assert.equal(r.unset(P, 1, 'tcp', 'unknown'), false, 'nothing left to remove');
    assert.equal(r.set({ ...m, addr: '127.0.0.1.8.2' }), true, 'free again after UNSET');
  });

  test('UNSET with an empty netid removes every transport; only the owner or the superuser may', () => {
    const r = new RpcbindRegistry();
    r.set({ prog: P, vers: 1, netid: 'tcp', addr: '0.0.0.0.8.1', owner: '1000' });
    r.set({ prog: P, vers: 1, netid: 'udp', addr: '0.0.0.0.8.1', owner: '1000' });
    r.set({ prog: P, vers: 2, netid: 'udp', addr: '0.0.0.0.8.1', owner: '1000' });
    assert.equal(r.unset(P, 1, '', '1001'), false, 'another user');
    assert.equal(r.size, 3);
    assert.equal(r.unset(P, 1, '', '1000'), true);
    assert.deepEqual(
      r.dump().map((e) => `${e.vers}/${e.netid}`),
      ['2/udp'],
    );
    assert.equal(r.unset(P, 2, '', SUPERUSER), true);
    assert.equal(r.size, 0);
  });

  test('invalid mappings and a full table are refused', () => {
    const r = new RpcbindRegistry({ maxEntries: 2 });
    const ok = { prog: P, vers: 1, netid: 'tcp', addr: '127.0.0.1.8.1', owner: 'x' };
    assert.equal(r.trySet({ ...ok, netid: '' }), 'invalid');
    assert.equal(r.trySet({ ...ok, addr: '' }), 'invalid');
    assert.equal(r.trySet({ ...ok, addr: 'not-an-address' }), 'invalid');
    assert.equal(r.trySet({ ...ok, netid: 'tcp6' }), 'invalid', 'IPv4 address on an IPv6 netid');
    assert.equal(r.trySet({ ...ok, prog: -1 }), 'invalid');
    assert.equal(r.trySet({ ...ok, netid: 'x'.repeat(300) }), 'invalid');
    assert.equal(
      r.trySet({ ...ok, netid: 'local', addr: '/run/some.sock' }),
      null,
      'other netids are stored as given',
    );
    assert.equal(r.trySet(ok), null);
    assert.equal(r.trySet({ ...ok, vers: 2 }), 'full');
  });

  test('lookups: exact version, or any version of the program for GETADDR/GETPORT', () => {
    const r = new RpcbindRegistry();
    r.set({ prog: P, vers: 3, netid: 'tcp', addr: '127.0.0.1.8.1', owner: 'x' });
    r.set({ prog: P, vers: 3, netid: 'udp', addr: '127.0.0.1.8.2', owner: 'x' });
    assert.equal(r.lookup(P, 3, 'tcp', true)?.addr, '127.0.0.1.8.1');
    assert.equal(r.lookup(P, 2, 'tcp', true), undefined);
    assert.equal(r.lookup(P, 2, 'tcp', false)?.addr, '127.0.0.1.8.1');
    assert.equal(r.lookup(P + 1, 3, 'tcp', false), undefined);
    assert.equal(r.pmapGetPort(P, 3, IPPROTO_UDP), 0x802);
    assert.equal(r.pmapGetPort(P, 1, IPPROTO_TCP), 0x801);
    assert.equal(r.pmapGetPort(P, 3, 99), 0);
    assert.deepEqual(
      r.list(P, 3).map((e) => e.netid),
      ['tcp', 'udp'],
    );
  });

  test('portmapper view: SET maps protocols to netids, UNSET covers both, DUMP lists IPv4 only', () => {
    const r = new RpcbindRegistry();
    assert.equal(r.pmapSet({ prog: P, vers: 1, prot: IPPROTO_TCP, port: 2049 }, 'u'), true);
    assert.equal(r.pmapSet({ prog: P, vers: 1, prot: IPPROTO_UDP, port: 2050 }, 'u'), true);
    assert.equal(r.pmapSet({ prog: P, vers: 1, prot: IPPROTO_UDP, port: 2051 }, 'u'), false);
    assert.equal(r.pmapSet({ prog: P, vers: 1, prot: IPPROTO_UDP, port: 2050 }, 'u'), true, 'same again');
    assert.equal(
      r.pmapSet({ prog: P, vers: 1, prot: 132, port: 1 }, 'u'),
      false,
      'SCTP is not a portmapper protocol',
    );
    assert.equal(r.pmapSet({ prog: P, vers: 1, prot: IPPROTO_TCP, port: 70000 }, 'u'), false);
    r.set({ prog: P, vers: 1, netid: 'tcp6', addr: '::1.8.1', owner: 'u' });
    assert.equal(r.get(P, 1, 'tcp')?.addr, '0.0.0.0.8.1');
    assert.deepEqual(r.pmapDump(), [
      { prog: P, vers: 1, prot: IPPROTO_TCP, port: 2049 },
      { prog: P, vers: 1, prot: IPPROTO_UDP, port: 2050 },
    ]);
    assert.equal(r.pmapUnset(P, 1, 'u'), true);
    assert.deepEqual(
      r.dump().map((e) => e.netid),
      ['tcp6'],
    );
    assert.equal(r.pmapUnset(P, 1, 'u'), false);
  });
});

describe('statistics', () => {
  test('counts per version, bounded keys', () => {
    const s = new RpcbindStats(2);
    s.call(4, 3);
    s.call(4, 3);
    s.call(2, 0);
    s.call(4, 99);
    s.set(4, true);
    s.set(4, false);
    s.lookup(4, P, 1, 'tcp', true);
    s.lookup(4, P, 1, 'tcp', false);
    s.lookup(4, P, 2, 'tcp', false);
    s.lookup(4, P, 3, 'tcp', false);
    s.forward(3, { prog: P, vers: 1, proc: 2 }, 'udp', false, true);
    const [v2, v3, v4] = s.snapshot();
    assert.equal(v2.info[0], 1);
    assert.equal(v4.info[3], 2);
    assert.equal(v4.setinfo, 1);
    assert.equal(v4.lookups.length, 2, 'third key dropped');
    assert.deepEqual(
      v4.lookups.map((l) => [l.vers, l.success, l.failure]),
      [
        [1, 1, 1],
        [2, 0, 1],
      ],
    );
    assert.equal(v3.forwards[0].success, 1);
  });
});

describe('service handlers', () => {
  test('SET and UNSET from a remote host are refused with AUTH_TOOWEAK; loopback is accepted', () => {
    const service = new RpcbindService(new RpcbindRegistry(), { forward: false, logger });
    const args = { r_prog: P, r_vers: 1, r_netid: 'tcp', r_addr: '127.0.0.1.8.1', r_owner: '' };
    for (const remote of ['10.0.0.7', '192.168.1.1', '::2', '::ffff:10.0.0.7']) {
      assert.throws(
        () => service.v4.RPCB4_SET(args, ctx({ remoteAddress: remote })),
        (e: unknown) => e instanceof RpcAuthError && e.stat === 5,
        remote,
      );
      assert.throws(
        () => service.v3.RPCB3_UNSET(args, ctx({ remoteAddress: remote, version: 3 })),
        RpcAuthError,
      );
      assert.throws(
        () =>
          service.v2.PMAPPROC_SET(
            { prog: P, vers: 1, prot: 6, port: 1 },
            ctx({ remoteAddress: remote, version: 2 }),
          ),
        RpcAuthError,
      );
    }
    assert.equal(service.registry.size, 0);
    assert.equal(service.v4.RPCB4_SET(args, ctx({ remoteAddress: '::ffff:127.0.0.1' })), true);
    assert.equal(
      service.v4.RPCB4_SET({ ...args, r_addr: '127.0.0.1.8.9' }, ctx()),
      false,
      'already registered',
    );
    // Lookups are open to everyone.
    assert.equal(
      service.v4.RPCB4_GETADDR(args, ctx({ remoteAddress: '10.0.0.7', procedure: 3 })),
      '127.0.0.1.8.1',
    );
    const insecure = new RpcbindService(new RpcbindRegistry(), { forward: false, insecure: true, logger });
    assert.equal(insecure.v4.RPCB4_SET(args, ctx({ remoteAddress: '10.0.0.7' })), true);
  });

  test('owners come from AUTH_SYS; the superuser may remove anything', () => {
    const service = new RpcbindService(new RpcbindRegistry(), { forward: false, logger });
    const args = { r_prog: P, r_vers: 1, r_netid: 'udp', r_addr: '127.0.0.1.8.1', r_owner: 'ignored' };
    const user = ctx({
      credential: { flavor: 1, uid: 1000, gid: 1000, gids: [], machinename: 'h', stamp: 0 },
    });
    const other = ctx({
      credential: { flavor: 1, uid: 1001, gid: 1001, gids: [], machinename: 'h', stamp: 0 },
    });
    const root = ctx({ credential: { flavor: 1, uid: 0, gid: 0, gids: [], machinename: 'h', stamp: 0 } });
    assert.equal(service.v4.RPCB4_SET(args, user), true);
    assert.equal(service.registry.get(P, 1, 'udp')?.owner, '1000');
    assert.equal(service.v4.RPCB4_UNSET(args, other), false);
    assert.equal(service.v4.RPCB4_UNSET(args, root), true);
  });

  test('GETADDR answers for the transport the call came in on and merges wildcard addresses', () => {
    const registry = new RpcbindRegistry();
    const service = new RpcbindService(registry, { forward: false, logger });
    registry.set({ prog: P, vers: 1, netid: 'tcp', addr: '0.0.0.0.8.1', owner: 'x' });
    registry.set({ prog: P, vers: 1, netid: 'udp', addr: '127.0.0.1.8.2', owner: 'x' });
    const args = { r_prog: P, r_vers: 1, r_netid: 'udp', r_addr: '', r_owner: '' };
    assert.equal(
      service.v4.RPCB4_GETADDR(args, ctx()),
      '127.0.0.1.8.1',
      'netid from the transport, wildcard merged',
    );
    assert.equal(service.v4.RPCB4_GETADDR(args, ctx({ transport: 'udp' })), '127.0.0.1.8.2');
    assert.equal(
      service.v4.RPCB4_GETADDR(args, ctx({ remoteAddress: '10.0.0.9' })),
      '0.0.0.0.8.1',
      'no local address known',
    );
    assert.equal(service.v4.RPCB4_GETADDR(args, ctx({ remoteAddress: '::1' })), '', 'nothing on tcp6');
    assert.equal(service.v4.RPCB4_GETADDR({ ...args, r_vers: 5 }, ctx()), '127.0.0.1.8.1', 'any version');
    assert.equal(service.v4.RPCB4_GETVERSADDR({ ...args, r_vers: 5 }, ctx()), '', 'exact version');
  });

  test('INDIRECT to an unregistered program answers PROG_UNAVAIL; CALLIT over UDP stays silent', async () => {
    const service = new RpcbindService(new RpcbindRegistry(), { forward: { timeoutMs: 200 }, logger });
    try {
      const call = { prog: P, vers: 1, proc: 1, args: new Uint8Array(4) };
      await assert.rejects(
        Promise.resolve(service.v4.RPCB4_INDIRECT(call, ctx())),
        RpcProgramUnavailableError,
      );
      await assert.rejects(
        Promise.resolve(service.v3.RPCB3_CALLIT(call, ctx())),
        RpcProgramUnavailableError,
        'TCP answers',
      );
      const silent = Promise.resolve(service.v3.RPCB3_CALLIT(call, ctx({ transport: 'udp' })));
      const outcome = await Promise.race([
        silent.then(
          () => 'settled',
          () => 'settled',
        ),
        new Promise((r) => setImmediate(r, 'pending')),
      ]);
      assert.equal(outcome, 'pending');
      await assert.rejects(
        Promise.resolve(service.v4.RPCB4_INDIRECT({ ...call, prog: 100000 }, ctx())),
        RpcProgramUnavailableError,
        'never forwards to itself',
      );
    } finally {
      await service.close();
    }
  });
});

describe('client and service over sockets', () => {
  let rpcbind: RunningRpcbind;
  let tcp: RpcbindClient;
  let udp: RpcbindClient;
  let ping: {
    server: RpcServer;
    tcp: TcpServerTransport;
    udp: UdpServerTransport;
    tcpPort: number;
    udpPort: number;
  };

  before(async () => {
    rpcbind = await startRpcbind({ host: '127.0.0.1', port: 0, forward: { timeoutMs: 500 }, logger });
    tcp = new RpcbindClient({ port: rpcbind.port, transport: 'tcp', timeoutMs: 3000 });
    udp = new RpcbindClient({ port: rpcbind.port, transport: 'udp', timeoutMs: 3000 });
    const server = new RpcServer();
    const handler: CAIRN_PING_V1_Handler = {
      PING_NULL() {},
      PING_ECHO: (s: string) => `echo:${s}`,
      PING_NEGATE: (n: number) => -n,
    };
    server.addProgram(CAIRN_PING_V1_program, handler);
    const t = new TcpServerTransport(server, { port: 0 });
    const u = new UdpServerTransport(server, { port: 0 });
    ping = { server, tcp: t, udp: u, tcpPort: (await t.listen()).port, udpPort: (await u.listen()).port };
  });

  after(async () => {
    await tcp?.close();
    await udp?.close();
    await ping?.tcp.close();
    await ping?.udp.close();
    await rpcbind?.close();
  });

  test('rpcbind lists itself on both transports and versions 2 to 4', async () => {
    const self = (await tcp.dump()).filter((e) => e.prog === 100000);
    assert.deepEqual(self.map((e) => `${e.vers}/${e.netid}`).sort(), [
      '2/tcp',
      '2/udp',
      '3/tcp',
      '3/udp',
      '4/tcp',
      '4/udp',
    ]);
    assert.equal(await tcp.getport(100000, 2, 'tcp'), rpcbind.port);
    assert.equal(await udp.getport(100000, 2, 'udp'), rpcbind.port);
  });

  test('registerWithRpcbind registers every version on both transports and unregisters', async () => {
    const reg = await registerWithRpcbind(tcp, ping.server.registered(), {
      host: '127.0.0.1',
      tcpPort: ping.tcpPort,
      udpPort: ping.udpPort,
    });
    assert.equal(await tcp.getport(CAIRN_PING_PROG, 1, 'tcp'), ping.tcpPort);
    assert.equal(await udp.getport(CAIRN_PING_PROG, 1, 'udp'), ping.udpPort);
    assert.equal(await tcp.getaddr(CAIRN_PING_PROG, 1), toUniversalAddress('127.0.0.1', ping.tcpPort));
    assert.equal(await udp.getaddr(CAIRN_PING_PROG, 1), toUniversalAddress('127.0.0.1', ping.udpPort));
    assert.equal(await tcp.lookup(CAIRN_PING_PROG, 1, 'udp'), toUniversalAddress('127.0.0.1', ping.udpPort));
    const list = await udp.getaddrlist(CAIRN_PING_PROG, 1);
    assert.deepEqual(
      list.map((e) => [e.r_nc_netid, e.r_nc_semantics, e.r_nc_protofmly, e.r_nc_proto]),
      [
        ['tcp', 3, 'inet', 'tcp'],
        ['udp', 1, 'inet', 'udp'],
      ],
    );
    // A second registration of the same program replaces the first (a restarted node).
    const again = await registerWithRpcbind(udp, ping.server.registered(), {
      host: '127.0.0.1',
      tcpPort: ping.tcpPort,
    });
    assert.equal(await tcp.getport(CAIRN_PING_PROG, 1, 'tcp'), ping.tcpPort);
    await again.unregister();
    await reg.unregister();
    await reg.unregister();
    assert.equal(await tcp.getport(CAIRN_PING_PROG, 1, 'tcp'), 0);
    assert.equal(await udp.getport(CAIRN_PING_PROG, 1, 'udp'), 0);
    assert.equal((await tcp.dump()).filter((e) => e.prog === CAIRN_PING_PROG).length, 0);
  });

  test('SET over the wire refuses duplicates; version 3 and 2 paths agree', async () => {
    const v3 = new RpcbindClient({ port: rpcbind.port, transport: 'udp', version: 3 });
    try {
      const m = { prog: P, vers: 7, netid: 'udp', addr: '127.0.0.1.1.1' };
      assert.equal(await v3.set(m), true);
      assert.equal(await udp.set({ ...m, addr: '127.0.0.1.1.9' }), false);
      assert.equal(await v3.getaddr(P, 7), '127.0.0.1.1.1');
      assert.equal(await udp.getport(P, 7, 'udp'), 257);
      assert.deepEqual(
        (await tcp.pmapDump()).filter((e) => e.prog === P),
        [{ prog: P, vers: 7, prot: 17, port: 257 }],
      );
      assert.equal(await v3.unset(P, 7), true);
      assert.equal(await tcp.pmapSet({ prog: P, vers: 8, prot: 6, port: 258 }), true);
      assert.equal(
        await tcp.getaddr(P, 8),
        '127.0.0.1.1.2',
        'portmapper registration merged with the loopback address',
      );
      assert.equal(await tcp.pmapUnset(P, 8), true);
      assert.equal(await tcp.getaddr(P, 8), null);
    } finally {
      await v3.close();
    }
  });

  test('INDIRECT and CALLIT forward to the program over UDP', async () => {
    const reg = await registerWithRpcbind(tcp, ping.server.registered(), {
      host: '127.0.0.1',
      udpPort: ping.udpPort,
    });
    try {
      const w = new XdrWriter();
      w.writeString('hello');
      const r = await tcp.indirect(CAIRN_PING_PROG, 1, PING_ECHO, w.finish());
      assert.equal(r.addr, toUniversalAddress('127.0.0.1', ping.udpPort));
      assert.equal(new XdrReader(r.results).readString(), 'echo:hello');
      const r3 = await udp.callit(CAIRN_PING_PROG, 1, PING_ECHO, w.finish());
      assert.equal(new XdrReader(r3.results).readString(), 'echo:hello');
      const r2 = await udp.v2.PMAPPROC_CALLIT({
        prog: CAIRN_PING_PROG,
        vers: 1,
        proc: PING_ECHO,
        args: w.finish(),
      });
      assert.equal(r2.port, ping.udpPort);
      assert.equal(new XdrReader(r2.res).readString(), 'echo:hello');
      // The program answers PROC_UNAVAIL: INDIRECT reports it, CALLIT over UDP says nothing.
      await assert.rejects(tcp.indirect(CAIRN_PING_PROG, 1, 77, new Uint8Array(0)), {
        code: 'RPC_PROC_UNAVAIL',
      });
      await assert.rejects(
        udp.callit(CAIRN_PING_PROG, 1, 77, new Uint8Array(0), { timeoutMs: 700 }),
        RpcTimeoutError,
      );
      const stats = await tcp.getstat();
      assert.ok((stats[2].rmtinfo?.success ?? 0) >= 1);
      assert.ok(stats[1].rmtinfo !== null);
    } finally {
      await reg.unregister();
    }
  });

  test('GETTIME, UADDR2TADDR, TADDR2UADDR and GETSTAT', async () => {
    assert.ok(Math.abs((await tcp.gettime()) - Date.now() / 1000) < 5);
    const taddr = await udp.uaddr2taddr('127.0.0.1.8.1');
    assert.equal(taddr.length, 16);
    assert.equal(await udp.taddr2uaddr(taddr), '127.0.0.1.8.1');
    assert.equal((await udp.uaddr2taddr('garbage')).length, 0);
    assert.equal(await udp.taddr2uaddr(new Uint8Array(3)), '');
    const stats = await tcp.getstat();
    assert.equal(stats.length, 3);
    assert.equal(stats[2].info.length, 13);
    assert.ok(stats[2].info[4] >= 1, 'DUMP counted');
    assert.ok(stats[2].setinfo >= 1);
  });

  test('registerRpcbind serves any RpcServer next to other programs', async () => {
    const server = new RpcServer();
    const service = registerRpcbind(server, new RpcbindRegistry());
    const t = new TcpServerTransport(server, { port: 0 });
    const { port } = await t.listen();
    const c = new RpcbindClient({ port });
    try {
      await c.ping();
      assert.equal(await c.set({ prog: P, vers: 1, netid: 'tcp', addr: '127.0.0.1.0.80' }), true);
      assert.equal(await c.getport(P, 1, 'tcp'), 80);
      assert.deepEqual(
        server
          .registered()
          .filter((r) => r.program === 100000)
          .map((r) => r.version)
          .sort(),
        [2, 3, 4],
      );
    } finally {
      await c.close();
      await t.close();
      await service.close();
    }
  });
});
