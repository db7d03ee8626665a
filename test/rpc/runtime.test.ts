import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { CALL, decode_rpc_msg, encode_rpc_msg } from '../../src/rpc/gen/rpc_msg.js';
import {
  type CallContext,
  type ClientInterceptor,
  frameRecord,
  type ProcedureDefinition,
  RecordDecoder,
  RpcAuthError,
  RpcServer,
  type ServerInterceptor,
  TcpRpcClient,
  TcpServerTransport,
  UdpRpcClient,
  UdpServerTransport,
  WorkerPool,
} from '../../src/rpc/index.js';
import { XdrReader, XdrWriter } from '../../src/xdr/index.js';
import {
  CALC_PROG,
  CALC_V1_Client,
  type CALC_V1_Handler,
  CALC_V1_program,
  CALC_V3_program,
  decode_pair,
  encode_pair,
} from './gen/calc.js';

const ROOT = { flavor: 1, uid: 0, gid: 0, gids: [0, 1], machinename: 'tester' } as const;

class Deferred<T = void> {
  resolve!: (v: T) => void;
  readonly promise = new Promise<T>((r) => {
    this.resolve = r;
  });
}

/** A CALC server with hooks the tests steer. */
function calcHandler(
  state: {
    count: bigint;
    notes: string[];
    onCount?: () => void;
    noteSeen?: Deferred;
    active: number;
    maxActive: number;
  },
  pool: WorkerPool,
): CALC_V1_Handler {
  return {
    CALC_NULL() {},
    CALC_ADD(p) {
      return p.a + p.b;
    },
    CALC_ECHO(b) {
      return b;
    },
    CALC_COUNT() {
      state.count++;
      state.onCount?.();
      return state.count;
    },
    async CALC_SLEEP(ms) {
      state.active++;
      state.maxActive = Math.max(state.maxActive, state.active);
      await new Promise((r) => setTimeout(r, ms));
      state.active--;
      return ms;
    },
    CALC_FAIL(code) {
      if (code === 1) throw new RpcAuthError(5);
      throw new Error('handler failure requested by the test');
    },
    CALC_WHOAMI(_args: void, ctx: CallContext) {
      const c = ctx.credential;
      if (c.flavor === 1 && 'uid' in c) {
        return { flavor: 1, uid: c.uid, gid: c.gid, gids: [...c.gids], machine: c.machinename };
      }
      return { flavor: c.flavor, uid: 0, gid: 0, gids: [], machine: '' };
    },
    CALC_NOTE(s) {
      state.notes.push(s);
      state.noteSeen?.resolve();
    },
    CALC_HASH(b) {
      return pool.run<number>('hash', { data: b, rounds: 200_000 });
    },
  };
}

describe('ONC RPC runtime over real sockets', () => {
  const state = {
    count: 0n,
    notes: [] as string[],
    onCount: undefined as (() => void) | undefined,
    noteSeen: undefined as Deferred | undefined,
    active: 0,
    maxActive: 0,
  };
  const pool = new WorkerPool({ module: new URL('./hash-worker.js', import.meta.url), size: 1 });
  const order: string[] = [];
  const serverLog: ServerInterceptor = (call, next) => {
    order.push(`server:${call.procedure.name}`);
    return next(call);
  };
  const rpc = new RpcServer({ interceptors: [serverLog] });
  rpc.addProgram(CALC_V1_program, calcHandler(state, pool), {
    oneWay: ['CALC_NOTE'],
    idempotent: ['CALC_ECHO'],
  });
  rpc.addProgram(CALC_V3_program, { CALC3_NULL() {} });
  const tcp = new TcpServerTransport(rpc, { maxFragmentSize: 100_000, maxCallsInFlight: 4 });
  const udp = new UdpServerTransport(rpc);
  let tcpPort = 0;
  let udpPort = 0;
  const clients: { close(): Promise<void> }[] = [];
  const tcpClient = (extra: Partial<ConstructorParameters<typeof TcpRpcClient>[0]> = {}) => {
    const c = new TcpRpcClient({
      host: '127.0.0.1',
      port: tcpPort,
      credential: ROOT,
      timeoutMs: 10_000,
      ...extra,
    });
    clients.push(c);
    return c;
  };

  before(async () => {
    tcpPort = (await tcp.listen()).port;
    udpPort = (await udp.listen()).port;
  });
  after(async () => {
    for (const c of clients) await c.close();
    await tcp.close();
    await udp.close();
    await pool.close();
  });

  for (const transport of ['tcp', 'udp'] as const) {
    test(`${transport}: calls, results and many calls in flight`, async () => {
      const raw =
        transport === 'tcp'
          ? tcpClient()
          : new UdpRpcClient({ host: '127.0.0.1', port: udpPort, credential: ROOT });
      if (transport === 'udp') clients.push(raw);
      const calc = new CALC_V1_Client(raw);
      await calc.CALC_NULL();
      assert.equal(await calc.CALC_ADD({ a: 40, b: 2 }), 42);
      const sums = await Promise.all(Array.from({ length: 500 }, (_, i) => calc.CALC_ADD({ a: i, b: i })));
      assert.deepEqual(
        sums,
        Array.from({ length: 500 }, (_, i) => 2 * i),
      );
      const blob = Buffer.alloc(transport === 'tcp' ? 3 << 20 : 60_000, 0x5a);
      blob[17] = 1;
      assert.deepEqual(Buffer.from(await calc.CALC_ECHO(blob)), blob);
      const who = await calc.CALC_WHOAMI();
      assert.deepEqual(who, { flavor: 1, uid: 0, gid: 0, gids: [0, 1], machine: 'tester' });
      const other = await calc.CALC_WHOAMI({ credential: { flavor: 1, uid: 1000, gid: 100 } });
      assert.equal(other.uid, 1000);
      assert.equal(other.gid, 100);
      const none = await calc.CALC_WHOAMI({ credential: { flavor: 0 } });
      assert.equal(none.flavor, 0);
    });

    test(`${transport}: every error status reaches the caller as its class`, async () => {
      const raw =
        transport === 'tcp'
          ? tcpClient()
          : new UdpRpcClient({ host: '127.0.0.1', port: udpPort, credential: ROOT });
      if (transport === 'udp') clients.push(raw);
      const calc = new CALC_V1_Client(raw);
      await assert.rejects(
        calc.CALC_FAIL(1),
        (e: RpcAuthError) => e.code === 'RPC_AUTH_ERROR' && e.stat === 5,
      );
      await assert.rejects(calc.CALC_FAIL(2), { code: 'RPC_SYSTEM_ERR' });
      const add = CALC_V1_program.procedures.CALC_ADD as ProcedureDefinition<
        { a: number; b: number },
        number
      >;
      await assert.rejects(raw.call(0x20000002, 1, add, { a: 1, b: 2 }), { code: 'RPC_PROG_UNAVAIL' });
      await assert.rejects(raw.call(CALC_PROG, 2, add, { a: 1, b: 2 }), {
        code: 'RPC_PROG_MISMATCH',
        low: 1,
        high: 3,
      });
      await assert.rejects(raw.call(CALC_PROG, 1, { ...add, proc: 99 }, { a: 1, b: 2 }), {
        code: 'RPC_PROC_UNAVAIL',
      });
      const short: ProcedureDefinition<number, number> = {
        ...add,
        encodeArgs: (w, v) => w.writeInt(v),
        decodeArgs: (r) => r.readInt(),
      };
      await assert.rejects(raw.call(CALC_PROG, 1, short, 7), { code: 'RPC_GARBAGE_ARGS' });
      assert.equal(await calc.CALC_ADD({ a: 1, b: 1 }), 2, 'the client still works after errors');
    });
  }

  test('tcp: RPC version other than 2 is answered with RPC_MISMATCH', async () => {
    const w = new XdrWriter();
    w.skip(4);
    const nobody = { flavor: 0, body: new Uint8Array(0) };
    encode_rpc_msg(w, {
      xid: 77,
      body: {
        mtype: CALL,
        cbody: { rpcvers: 3, prog: CALC_PROG, vers: 1, proc: 0, cred: nobody, verf: nobody },
      },
    });
    const socket = connect(tcpPort, '127.0.0.1');
    const reply = await new Promise<Buffer>((resolve) => {
      const d = new RecordDecoder(1 << 20, resolve);
      socket.on('data', (c: Buffer) => d.push(c));
      for (const c of frameRecord(w.finishChunks())) socket.write(c);
    });
    socket.destroy();
    const msg = decode_rpc_msg(new XdrReader(reply));
    assert.equal(msg.xid, 77);
    assert.ok(msg.body.mtype === 1 && msg.body.rbody.stat === 1);
    const rr = msg.body.rbody.stat === 1 ? msg.body.rbody.rreply : undefined;
    assert.ok(rr && rr.stat === 0);
    assert.deepEqual(rr.stat === 0 ? rr.mismatch : undefined, { low: 2, high: 2 });
  });

  test('deadlines and aborts end one call without disturbing others', async () => {
    const calc = new CALC_V1_Client(tcpClient());
    const slow = calc.CALC_SLEEP(300, { timeoutMs: 30 });
    await assert.rejects(slow, { code: 'RPC_TIMEOUT' });
    const ac = new AbortController();
    const aborted = calc.CALC_SLEEP(300, { signal: ac.signal });
    ac.abort();
    await assert.rejects(aborted, { code: 'RPC_ABORTED' });
    assert.equal(await calc.CALC_ADD({ a: 2, b: 3 }), 5);
  });

  test('a slow handler on one connection does not stall another connection', async () => {
    const a = new CALC_V1_Client(tcpClient());
    const b = new CALC_V1_Client(tcpClient());
    const finished: string[] = [];
    const slow = a.CALC_SLEEP(400).then(() => finished.push('slow'));
    await b.CALC_NULL();
    finished.push('fast');
    await slow;
    assert.deepEqual(finished, ['fast', 'slow']);
  });

  test('reading pauses at the per-connection in-flight limit, and everything completes', async () => {
    const calc = new CALC_V1_Client(tcpClient());
    state.maxActive = 0;
    const results = await Promise.all(Array.from({ length: 12 }, () => calc.CALC_SLEEP(20)));
    assert.equal(results.length, 12);
    assert.ok(state.maxActive <= 4, `at most 4 calls ran at once, saw ${state.maxActive}`);
    assert.ok(state.maxActive >= 2, 'calls did run concurrently');
  });

  test('tcp: a call whose reply was lost with the connection is resent and executed once (DRC)', async () => {
    const calc = new CALC_V1_Client(tcpClient());
    const before = state.count;
    state.onCount = () => {
      state.onCount = undefined;
      tcp.destroyConnections();
    };
    const n = await calc.CALC_COUNT();
    assert.equal(n, before + 1n, 'the reply comes from the duplicate-request cache after reconnecting');
    assert.equal(state.count, before + 1n, 'the procedure ran once');
    assert.equal(await calc.CALC_COUNT(), before + 2n);
  });

  test('udp: lost datagrams are retransmitted under the same XID and executed once', async () => {
    // A relay that drops the first reply to every call and forwards everything else.
    const relay = createSocket('udp4');
    const upstream = createSocket('udp4');
    await new Promise<void>((r) => relay.bind(0, '127.0.0.1', r));
    await new Promise<void>((r) => upstream.connect(udpPort, '127.0.0.1', r));
    let clientAddr: { port: number; address: string } | undefined;
    const droppedXids = new Set<number>();
    let dropped = 0;
    relay.on('message', (m, rinfo) => {
      clientAddr = { port: rinfo.port, address: rinfo.address };
      upstream.send(m);
    });
    upstream.on('message', (m) => {
      const xid = m.readUInt32BE(0);
      if (!droppedXids.has(xid)) {
        droppedXids.add(xid);
        dropped++;
        return;
      }
      if (clientAddr) relay.send(m, clientAddr.port, clientAddr.address);
    });
    const client = new UdpRpcClient({
      host: '127.0.0.1',
      port: relay.address().port,
      initialRtoMs: 30,
      credential: ROOT,
    });
    clients.push(client);
    const calc = new CALC_V1_Client(client);
    const before = state.count;
    const n = await calc.CALC_COUNT();
    assert.equal(n, before + 1n);
    assert.equal(state.count, before + 1n, 'retransmissions were answered from the cache');
    assert.equal(await calc.CALC_ADD({ a: 1, b: 2 }), 3);
    assert.ok(client.retransmissions >= 2, 'each call needed a retransmission');
    assert.equal(dropped, 2);
    relay.close();
    upstream.close();
  });

  test('interceptors run in order on client and server', async () => {
    const seen: string[] = [];
    const outer: ClientInterceptor = async (call, next) => {
      seen.push(`outer>${call.procedure.name}`);
      const r = await next(call);
      seen.push('outer<');
      return r;
    };
    const inner: ClientInterceptor = async (call, next) => {
      seen.push('inner>');
      return next({ ...call, args: { a: 100, b: 1 } });
    };
    const calc = new CALC_V1_Client(tcpClient({ interceptors: [outer, inner] }));
    order.length = 0;
    assert.equal(await calc.CALC_ADD({ a: 1, b: 1 }), 101, 'an interceptor may rewrite the arguments');
    assert.deepEqual(seen, ['outer>CALC_ADD', 'inner>', 'outer<']);
    assert.deepEqual(order, ['server:CALC_ADD']);
  });

  test('one-way calls and batches are delivered without replies', async () => {
    const raw = tcpClient();
    state.notes.length = 0;
    state.noteSeen = new Deferred();
    await raw.oneWay(CALC_PROG, 1, CALC_V1_program.procedures.CALC_NOTE, 'first');
    await state.noteSeen.promise;
    assert.deepEqual(state.notes, ['first']);
    await raw.batch(() => {
      for (let i = 0; i < 10; i++)
        void raw.oneWay(CALC_PROG, 1, CALC_V1_program.procedures.CALC_NOTE, `b${i}`);
    });
    // A call on the same connection is dispatched after the batch: its reply orders them.
    await new CALC_V1_Client(raw).CALC_NULL();
    assert.equal(state.notes.length, 11);
    assert.equal(raw.inFlight, 0, 'one-way calls leave nothing pending');
  });

  test('CPU-heavy procedures run in the worker pool while the event loop keeps serving', async () => {
    const calc = new CALC_V1_Client(tcpClient());
    const finished: string[] = [];
    const heavy = calc.CALC_HASH(Buffer.from('seed')).then((h) => {
      finished.push('hash');
      return h;
    });
    for (let i = 0; i < 5; i++) await calc.CALC_NULL();
    finished.push('nulls');
    const h = await heavy;
    assert.equal(typeof h, 'number');
    assert.deepEqual(finished, ['nulls', 'hash']);
    await assert.rejects(pool.run('explode', null), { code: 'WORKER_TASK_FAILED' });
    await assert.rejects(pool.run('missing', null), { code: 'WORKER_NO_SUCH_FUNCTION' });
  });

  test('a record over the limit closes that connection only', async () => {
    const small = new TcpServerTransport(rpc, { maxRecordSize: 64 << 10 });
    const port = (await small.listen()).port;
    try {
      const big = new CALC_V1_Client(tcpClient({ port, resendOnReconnect: false }));
      const ok = new CALC_V1_Client(tcpClient({ port }));
      await ok.CALC_NULL();
      await assert.rejects(big.CALC_ECHO(Buffer.alloc(100 << 10)), { code: 'RPC_CONNECTION' });
      assert.equal(await ok.CALC_ADD({ a: 3, b: 4 }), 7);
    } finally {
      await small.close();
    }
  });

  test('codecs of the generated pair type are symmetric', () => {
    const w = new XdrWriter();
    encode_pair(w, { a: -1, b: 2 });
    assert.deepEqual(decode_pair(new XdrReader(w.finish())), { a: -1, b: 2 });
  });
});
