// The client's bookkeeping, over real sockets: the XID-indexed table of pending calls, the one
// deadline/retransmission timer per client, the fast path for accepted replies, and the order in
// which batched calls leave.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  RecordDecoder,
  RpcServer,
  type ServerInterceptor,
  TcpRpcClient,
  TcpServerTransport,
  UdpRpcClient,
  UdpServerTransport,
} from '../../src/rpc/index.js';
import { CALC_PROG, CALC_V1_Client, type CALC_V1_Handler, CALC_V1_program } from './gen/calc.js';

describe('RPC client bookkeeping', () => {
  const state = { count: 0n, active: 0, maxActive: 0 };
  const seen: string[] = [];
  const record: ServerInterceptor = (call, next) => {
    seen.push(call.procedure.name);
    return next(call);
  };
  const handler: CALC_V1_Handler = {
    CALC_NULL() {},
    CALC_ADD(p) {
      return p.a + p.b;
    },
    CALC_ECHO(b) {
      return b;
    },
    CALC_COUNT() {
      state.count++;
      return state.count;
    },
    async CALC_SLEEP(ms) {
      state.active++;
      state.maxActive = Math.max(state.maxActive, state.active);
      await new Promise((r) => setTimeout(r, ms));
      state.active--;
      return ms;
    },
    CALC_FAIL() {},
    CALC_WHOAMI() {
      return { flavor: 0, uid: 0, gid: 0, gids: [], machine: '' };
    },
    CALC_NOTE() {},
    CALC_HASH() {
      return 0;
    },
  };
  const rpc = new RpcServer({ interceptors: [record] });
  rpc.addProgram(CALC_V1_program, handler, { oneWay: ['CALC_NOTE'] });
  const tcp = new TcpServerTransport(rpc);
  const udp = new UdpServerTransport(rpc);
  let tcpPort = 0;
  let udpPort = 0;
  const closers: (() => Promise<void>)[] = [];
  const tcpClient = (extra: Partial<ConstructorParameters<typeof TcpRpcClient>[0]> = {}) => {
    const c = new TcpRpcClient({ host: '127.0.0.1', port: tcpPort, timeoutMs: 10_000, ...extra });
    closers.push(() => c.close());
    return c;
  };

  before(async () => {
    tcpPort = (await tcp.listen()).port;
    udpPort = (await udp.listen()).port;
  });
  after(async () => {
    for (const close of closers) await close();
    await tcp.close();
    await udp.close();
  });

  test('a short deadline set after long ones fails on time, and the long calls still complete', async () => {
    const calc = new CALC_V1_Client(tcpClient());
    const order: string[] = [];
    const long = calc.CALC_SLEEP(600).then((v) => {
      order.push('long');
      return v;
    });
    const short = calc.CALC_SLEEP(150, { timeoutMs: 40 }).catch((e: { code: string }) => {
      order.push('short');
      return e.code;
    });
    assert.equal(await short, 'RPC_TIMEOUT');
    assert.equal(await long, 600);
    assert.deepEqual(order, ['short', 'long'], 'the timer moved up for the shorter deadline');
    assert.equal(await calc.CALC_ADD({ a: 2, b: 2 }), 4);
  });

  test('calls beyond maxInFlight wait their turn, and every one completes', async () => {
    const client = tcpClient({ maxInFlight: 3 });
    const calc = new CALC_V1_Client(client);
    state.maxActive = 0;
    const sleeps = Array.from({ length: 12 }, () => calc.CALC_SLEEP(10));
    assert.ok(client.inFlight <= 3, `in flight at once: ${client.inFlight}`);
    assert.deepEqual(await Promise.all(sleeps), Array(12).fill(10));
    assert.ok(state.maxActive <= 3, `the server saw ${state.maxActive} at once`);
    const sums = await Promise.all(Array.from({ length: 200 }, (_, i) => calc.CALC_ADD({ a: i, b: 1 })));
    assert.deepEqual(
      sums,
      Array.from({ length: 200 }, (_, i) => i + 1),
    );
    assert.equal(client.inFlight, 0);
  });

  test('thousands of calls in flight grow the pending table, and each reply finds its call', async () => {
    const client = tcpClient({ maxInFlight: 4096 });
    const calc = new CALC_V1_Client(client);
    const n = 3000;
    const sums = Array.from({ length: n }, (_, i) => calc.CALC_ADD({ a: i, b: i }));
    assert.equal(client.inFlight, n);
    assert.deepEqual(
      await Promise.all(sums),
      Array.from({ length: n }, (_, i) => 2 * i),
    );
    assert.equal(client.inFlight, 0);
  });

  test('calls leave in the order they were made, one-way calls included', async () => {
    const client = tcpClient();
    await client.connect();
    const calc = new CALC_V1_Client(client);
    seen.length = 0;
    const add = calc.CALC_ADD({ a: 1, b: 2 });
    const note = client.oneWay(CALC_PROG, 1, CALC_V1_program.procedures.CALC_NOTE, 'after the add');
    const nul = calc.CALC_NULL();
    await Promise.all([add, note, nul]);
    assert.deepEqual(seen, ['CALC_ADD', 'CALC_NOTE', 'CALC_NULL']);
  });

  test('udp: many calls whose first replies are lost are retransmitted by the one timer, each run once', async () => {
    const relay = createSocket('udp4');
    const upstream = createSocket('udp4');
    await new Promise<void>((r) => relay.bind(0, '127.0.0.1', r));
    await new Promise<void>((r) => upstream.connect(udpPort, '127.0.0.1', r));
    let clientAddr: { port: number; address: string } | undefined;
    const answered = new Set<number>();
    relay.on('message', (m, rinfo) => {
      clientAddr = { port: rinfo.port, address: rinfo.address };
      upstream.send(m);
    });
    upstream.on('message', (m) => {
      const xid = m.readUInt32BE(0);
      // The first reply to every call is lost; retransmissions are answered from the DRC.
      if (!answered.has(xid)) {
        answered.add(xid);
        return;
      }
      if (clientAddr) relay.send(m, clientAddr.port, clientAddr.address);
    });
    const client = new UdpRpcClient({ host: '127.0.0.1', port: relay.address().port, initialRtoMs: 30 });
    closers.push(async () => {
      await client.close();
      relay.close();
      upstream.close();
    });
    const calc = new CALC_V1_Client(client);
    const before = state.count;
    const counts = await Promise.all(Array.from({ length: 20 }, () => calc.CALC_COUNT()));
    assert.equal(state.count, before + 20n, 'each call ran once');
    assert.deepEqual(
      counts.map((c) => Number(c - before)).sort((a, b) => a - b),
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    assert.ok(client.retransmissions >= 20, `retransmissions: ${client.retransmissions}`);
    assert.equal(client.inFlight, 0);
  });
});

/** A TCP server answering every call with the given replies (XID patched in), for odd replies. */
async function scriptedServer(
  replies: (xid: number) => Buffer[],
): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    const decoder = new RecordDecoder(1 << 20, (rec) => {
      for (const body of replies(rec.readUInt32BE(0))) {
        const mark = Buffer.alloc(4);
        mark.writeUInt32BE((0x80000000 | body.length) >>> 0);
        s.write(Buffer.concat([mark, body]));
      }
    });
    s.on('data', (c: Buffer) => decoder.push(c));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function words(...ws: number[]): Buffer {
  const b = Buffer.alloc(ws.length * 4);
  ws.forEach((w, i) => {
    b.writeUInt32BE(w >>> 0, i * 4);
  });
  return b;
}

test('replies outside the fast path decode in full: a verifier with a body, unknown XIDs, a short record', async () => {
  const server = await scriptedServer((xid) => [
    // Truncated and unknown-XID replies are ignored...
    words(xid, 1, 0),
    words(xid ^ 0x5555, 1, 0, 0, 0, 0, 7),
    // An XID that shares its low bits, and so its slot in the pending table, with the call's.
    words(xid ^ 0x40000000, 1, 0, 0, 0, 0, 7),
    // ...and the real one carries an AUTH_SHORT verifier with an 8-byte body, then the int 42.
    Buffer.concat([words(xid, 1, 0, 2, 8), Buffer.from('verifier'), words(0, 42)]),
  ]);
  const client = new TcpRpcClient({ host: '127.0.0.1', port: server.port, timeoutMs: 5_000 });
  try {
    const calc = new CALC_V1_Client(client);
    assert.equal(await calc.CALC_ADD({ a: 40, b: 2 }), 42);
    assert.equal(client.inFlight, 0);
  } finally {
    await client.close();
    await server.close();
  }
});

test('a reply on the fast path whose results do not decode fails that call with RPC_PROTOCOL', async () => {
  // Accepted, empty verifier, SUCCESS, but no int where CALC_ADD's result should be.
  const server = await scriptedServer((xid) => [words(xid, 1, 0, 0, 0, 0)]);
  const client = new TcpRpcClient({ host: '127.0.0.1', port: server.port, timeoutMs: 5_000 });
  try {
    await assert.rejects(new CALC_V1_Client(client).CALC_ADD({ a: 1, b: 1 }), { code: 'RPC_PROTOCOL' });
  } finally {
    await client.close();
    await server.close();
  }
});

test('a client whose calls have all ended does not hold the process open for their deadlines', async () => {
  // A child makes a call that fails at once (nothing listens) under a one-minute deadline, then
  // leaves the client open. It must exit by itself, long before that deadline.
  const clientModule = new URL('../../src/rpc/index.js', import.meta.url).href;
  const script = `
    import { createServer } from 'node:net';
    import { TcpRpcClient } from ${JSON.stringify(clientModule)};
    const probe = createServer().listen(0, '127.0.0.1', async () => {
      const port = probe.address().port;
      probe.close();
      const c = new TcpRpcClient({ host: '127.0.0.1', port, timeoutMs: 60_000, resendOnReconnect: false });
      const proc = { name: 'NULL', proc: 0, encodeArgs() {}, decodeArgs() {}, encodeResult() {}, decodeResult() {} };
      try { await c.call(1, 1, proc, undefined); } catch (e) { console.log('failed ' + e.code); }
    });`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    out += s;
  });
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    err += s;
  });
  const started = Date.now();
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  try {
    const code = await exited;
    assert.equal(code, 0, `exit ${code}: ${err}`);
    assert.match(out, /failed RPC_CONNECTION/);
    assert.ok(Date.now() - started < 30_000, 'exited before the deadline');
  } finally {
    clearTimeout(killer);
    child.kill('SIGKILL');
  }
});
