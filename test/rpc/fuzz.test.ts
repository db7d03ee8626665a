/**
 * Hostile input, seeded so any failure replays: random and mutated bytes (a) into the generated
 * decoders of the RPC message and rpcbind types, where only XdrError may come out, and (b) into
 * a live RpcServer over TCP and UDP, which must stay up, keep its memory and connection count
 * bounded, answer malformed calls with GARBAGE_ARGS, silence or a closed connection, and keep
 * answering a well-behaved client throughout.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { pino } from 'pino';
import * as rpcMsg from '../../src/rpc/gen/rpc_msg.js';
import { RpcServer, TcpServerTransport, UdpServerTransport } from '../../src/rpc/index.js';
import * as rpcbindGen from '../../src/rpc/rpcbind/gen/rpcbind.js';
import {
  RpcbindClient,
  RpcbindRegistry,
  type RpcbindService,
  registerRpcbind,
} from '../../src/rpc/rpcbind/index.js';
import { type Decoder, type Encoder, XdrError, XdrReader, XdrWriter } from '../../src/xdr/index.js';
import { waitUntil } from '../support/wait.js';

const SEED = 0x5eed_2024;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

// --------------------------------------------------------------------------- decoders ---

type AnyDecoder = Decoder<unknown>;

/** Every decoder under test, by type name. */
const decoders: Record<string, AnyDecoder> = {
  opaque_auth: rpcMsg.decode_opaque_auth,
  authsys_parms: rpcMsg.decode_authsys_parms,
  call_body: rpcMsg.decode_call_body,
  mismatch_info: rpcMsg.decode_mismatch_info,
  accepted_reply: rpcMsg.decode_accepted_reply,
  rejected_reply: rpcMsg.decode_rejected_reply,
  reply_body: rpcMsg.decode_reply_body,
  rpc_msg: rpcMsg.decode_rpc_msg,
  pmap_mapping: rpcbindGen.decode_pmap_mapping,
  pmap_list: rpcbindGen.decode_pmap_list,
  pmap_dump_result: rpcbindGen.decode_pmap_dump_result,
  pmap_call_args: rpcbindGen.decode_pmap_call_args,
  pmap_call_result: rpcbindGen.decode_pmap_call_result,
  rpcb: rpcbindGen.decode_rpcb,
  rpcb_list: rpcbindGen.decode_rpcb_list,
  rpcb_dump_result: rpcbindGen.decode_rpcb_dump_result,
  rpcb_rmtcallargs: rpcbindGen.decode_rpcb_rmtcallargs,
  rpcb_rmtcallres: rpcbindGen.decode_rpcb_rmtcallres,
  rpcb_entry: rpcbindGen.decode_rpcb_entry,
  rpcb_entry_list: rpcbindGen.decode_rpcb_entry_list,
  rpcb_addrlist_result: rpcbindGen.decode_rpcb_addrlist_result,
  netbuf: rpcbindGen.decode_netbuf,
  rpcbs_addr: rpcbindGen.decode_rpcbs_addr,
  rpcbs_rmtcall: rpcbindGen.decode_rpcbs_rmtcall,
  rpcb_stat: rpcbindGen.decode_rpcb_stat,
  rpcb_stat_byvers: rpcbindGen.decode_rpcb_stat_byvers,
};

function encode<T>(enc: Encoder<T>, v: T): Buffer {
  const w = new XdrWriter();
  enc(w, v);
  return Buffer.from(w.finish());
}

/** Valid encodings to mutate: every kind of message and the linked lists of rpcbind. */
function seeds(): Buffer[] {
  const cred = {
    flavor: 1,
    body: encode(rpcMsg.encode_authsys_parms, {
      stamp: 1,
      machinename: 'fuzz',
      uid: 0,
      gid: 0,
      gids: [1, 2],
    }),
  };
  const none = { flavor: 0, body: new Uint8Array(0) };
  const rpcb = { r_prog: 100003, r_vers: 3, r_netid: 'tcp', r_addr: '127.0.0.1.8.1', r_owner: 'superuser' };
  const stat = {
    info: Array.from({ length: 13 }, (_, i) => i),
    setinfo: 1,
    unsetinfo: 2,
    addrinfo: {
      prog: 1,
      vers: 2,
      success: 3,
      failure: 4,
      netid: 'udp',
      next: { prog: 5, vers: 6, success: 0, failure: 0, netid: 'tcp', next: null },
    },
    rmtinfo: { prog: 1, vers: 1, proc: 1, success: 1, failure: 0, indirect: 1, netid: 'udp', next: null },
  };
  return [
    encode(rpcMsg.encode_rpc_msg, {
      xid: 7,
      body: { mtype: rpcMsg.CALL, cbody: { rpcvers: 2, prog: 100000, vers: 4, proc: 3, cred, verf: none } },
    }),
    encode(rpcMsg.encode_rpc_msg, {
      xid: 8,
      body: {
        mtype: rpcMsg.REPLY,
        rbody: {
          stat: rpcMsg.MSG_ACCEPTED,
          areply: { verf: none, reply_data: { stat: rpcMsg.PROG_MISMATCH, mismatch: { low: 2, high: 4 } } },
        },
      },
    }),
    encode(rpcMsg.encode_rpc_msg, {
      xid: 9,
      body: {
        mtype: rpcMsg.REPLY,
        rbody: { stat: rpcMsg.MSG_DENIED, rreply: { stat: rpcMsg.AUTH_ERROR, auth: rpcMsg.AUTH_TOOWEAK } },
      },
    }),
    encode(rpcbindGen.encode_rpcb_dump_result, {
      rpcb_map: rpcb,
      rpcb_next: { rpcb_map: { ...rpcb, r_netid: 'udp' }, rpcb_next: null },
    }),
    encode(rpcbindGen.encode_pmap_dump_result, {
      map: { prog: 100000, vers: 2, prot: 6, port: 111 },
      next: { map: { prog: 100000, vers: 2, prot: 17, port: 111 }, next: null },
    }),
    encode(rpcbindGen.encode_rpcb_stat_byvers, [stat, stat, stat]),
    encode(rpcbindGen.encode_rpcb_rmtcallargs, { prog: 1, vers: 2, proc: 3, args: Buffer.from('abcdefgh') }),
    encode(rpcbindGen.encode_rpcb_addrlist_result, {
      rpcb_entry_map: {
        r_maddr: '127.0.0.1.0.111',
        r_nc_netid: 'tcp',
        r_nc_semantics: 3,
        r_nc_protofmly: 'inet',
        r_nc_proto: 'tcp',
      },
      rpcb_entry_next: null,
    }),
    encode(rpcbindGen.encode_netbuf, { maxlen: 16, buf: Buffer.alloc(16, 1) }),
  ];
}

/** Random bytes, and valid encodings with bytes flipped, words overwritten, cut or extended. */
function inputs(): fc.Arbitrary<Uint8Array> {
  const valid = fc.constantFrom(...seeds());
  const mutated = fc
    .tuple(
      valid,
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
      fc.array(fc.tuple(fc.nat(), fc.constantFrom(0, 1, 2, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffffe)), {
        maxLength: 3,
      }),
      fc.option(fc.nat(), { nil: undefined }),
      fc.uint8Array({ maxLength: 16 }),
    )
    .map(([seed, flips, words, cut, tail]) => {
      const b = Buffer.from(seed);
      for (const [at, v] of flips) if (b.length > 0) b[at % b.length] = v;
      for (const [at, v] of words) if (b.length >= 4) b.writeUInt32BE(v >>> 0, (at % (b.length >> 2)) * 4);
      const cutAt = cut === undefined ? b.length : cut % (b.length + 1);
      return Buffer.concat([b.subarray(0, cutAt), tail]);
    });
  return fc.oneof(fc.uint8Array({ maxLength: 512 }), mutated, mutated);
}

describe('generated decoders on hostile bytes', () => {
  for (const [name, decode] of Object.entries(decoders)) {
    test(`decode_${name} throws only XdrError`, () => {
      fc.assert(
        fc.property(inputs(), (bytes) => {
          try {
            decode(new XdrReader(bytes));
          } catch (e) {
            if (!(e instanceof XdrError)) {
              throw new Error(
                `decode_${name} threw ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`,
              );
            }
          }
        }),
        { seed: SEED, numRuns: 400 },
      );
    });
  }

  test('long rpcbind lists decode without deep recursion', () => {
    const n = 50_000;
    const w = new XdrWriter();
    for (let i = 0; i < n; i++) {
      w.writeBool(true);
      rpcbindGen.encode_pmap_mapping(w, { prog: i, vers: 1, prot: 6, port: i & 0xffff });
    }
    w.writeBool(false);
    let l = rpcbindGen.decode_pmap_dump_result(new XdrReader(w.finish()));
    let count = 0;
    while (l !== null) {
      count++;
      l = l.next;
    }
    assert.equal(count, n);
  });
});

// ------------------------------------------------------------------------ live server ---

function callRecord(xid: number, proc: number, args: Uint8Array, prog = 100000, vers = 4): Buffer {
  const w = new XdrWriter();
  w.skip(4);
  rpcMsg.encode_rpc_msg(w, {
    xid,
    body: {
      mtype: rpcMsg.CALL,
      cbody: {
        rpcvers: 2,
        prog,
        vers,
        proc,
        cred: { flavor: 0, body: new Uint8Array(0) },
        verf: { flavor: 0, body: new Uint8Array(0) },
      },
    },
  });
  w.writeFixedOpaque(args, args.length);
  const b = Buffer.from(w.finish());
  b.writeUInt32BE((0x80000000 | (b.length - 4)) >>> 0, 0);
  return b;
}

function frame(body: Uint8Array): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt32BE((0x80000000 | body.length) >>> 0, 0);
  return Buffer.concat([h, body]);
}

/**
 * Opens a connection, writes `bytes`, then either waits for the reply to `expectXid` (and
 * returns the decoded replies seen) or half-closes and waits for the server to close.
 */
function exchange(
  port: number,
  bytes: Buffer,
  expectXid?: number,
): Promise<{ replies: rpcMsg.rpc_msg[]; closedByServer: boolean }> {
  return new Promise((resolve, reject) => {
    const s: Socket = connect({ host: '127.0.0.1', port });
    const replies: rpcMsg.rpc_msg[] = [];
    let buf = Buffer.alloc(0);
    let ended = false;
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no answer within 10 s (expected xid ${expectXid})`));
    }, 10_000);
    s.on('error', () => {});
    s.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 4) {
        const len = buf.readUInt32BE(0) & 0x7fffffff;
        if (buf.length < 4 + len) break;
        const rec = buf.subarray(4, 4 + len);
        buf = buf.subarray(4 + len);
        const msg = rpcMsg.decode_rpc_msg(new XdrReader(rec));
        replies.push(msg);
        if (expectXid !== undefined && msg.xid === expectXid) {
          clearTimeout(timer);
          s.destroy();
          resolve({ replies, closedByServer: false });
        }
      }
    });
    s.on('close', () => {
      clearTimeout(timer);
      if (expectXid !== undefined && !replies.some((r) => r.xid === expectXid) && !ended) {
        resolve({ replies, closedByServer: true });
        return;
      }
      resolve({ replies, closedByServer: !ended });
    });
    s.on('connect', () => {
      s.write(bytes);
      if (expectXid === undefined) {
        ended = true;
        s.end();
      }
    });
  });
}

function acceptStat(m: rpcMsg.rpc_msg): number | undefined {
  if (m.body.mtype !== rpcMsg.REPLY) return undefined;
  const rb = m.body.rbody;
  return rb.stat === rpcMsg.MSG_ACCEPTED ? rb.areply.reply_data.stat : undefined;
}

describe('live RpcServer under hostile input', () => {
  let server: RpcServer;
  let service: RpcbindService;
  let tcp: TcpServerTransport;
  let udp: UdpServerTransport;
  let tcpPort: number;
  let udpPort: number;
  let good: RpcbindClient;
  let goodUdp: RpcbindClient;

  before(async () => {
    // Every connection the fuzzer breaks is logged as a warning; keep the test output readable.
    const logger = pino({ level: 'silent' });
    server = new RpcServer({ logger });
    service = registerRpcbind(server, new RpcbindRegistry(), { forward: { timeoutMs: 100 }, logger });
    tcp = new TcpServerTransport(server, { port: 0, maxRecordSize: 256 << 10 });
    udp = new UdpServerTransport(server, { port: 0 });
    tcpPort = (await tcp.listen()).port;
    udpPort = (await udp.listen()).port;
    good = new RpcbindClient({ port: tcpPort, timeoutMs: 5000 });
    goodUdp = new RpcbindClient({ port: udpPort, transport: 'udp', timeoutMs: 5000 });
    assert.equal(await good.set({ prog: 0x20000001, vers: 1, netid: 'tcp', addr: '127.0.0.1.8.1' }), true);
  });

  after(async () => {
    await good?.close();
    await goodUdp?.close();
    await tcp?.close();
    await udp?.close();
    await service?.close();
  });

  /** Runs `work` while a well-behaved client keeps calling on its own connection. */
  async function withGoodClient(work: () => Promise<void>): Promise<number> {
    let done = false;
    let answered = 0;
    const loop = (async () => {
      while (!done) {
        assert.equal(await good.getport(0x20000001, 1, 'tcp'), 0x801);
        assert.equal(await goodUdp.getaddr(0x20000001, 1), null, 'nothing registered on udp');
        answered++;
      }
    })();
    try {
      await work();
    } finally {
      done = true;
      await loop;
    }
    return answered;
  }

  test('TCP: random records, garbage arguments, truncated records, huge record marks, unframed garbage', async () => {
    const baseline = tcp.connections;
    await exchange(tcpPort, callRecord(1, 0, new Uint8Array(0)), 1); // warm up
    const heapBefore = heapAfterGc();
    const rng = fc.sample(fc.uint8Array({ minLength: 0, maxLength: 2048 }), { seed: SEED, numRuns: 240 });
    let xid = 1000;
    let garbageReplies = 0;
    const answered = await withGoodClient(async () => {
      for (let i = 0; i < rng.length; i++) {
        const bytes = rng[i];
        switch (i % 6) {
          case 0: {
            // Several well-framed records of random content, then a valid call: the stream stays in sync.
            const id = xid++;
            const r = await exchange(
              tcpPort,
              Buffer.concat([
                frame(bytes),
                frame(bytes.subarray(bytes.length >> 1)),
                callRecord(id, 0, new Uint8Array(0)),
              ]),
              id,
            );
            assert.equal(r.closedByServer, false);
            assert.equal(acceptStat(r.replies.find((m) => m.xid === id)!), rpcMsg.SUCCESS);
            break;
          }
          case 1: {
            // A valid header for SET, GETADDR or CALLIT with arguments that do not decode.
            const id = xid++;
            const proc = [1, 3, 10][i % 3];
            const args = bytes.subarray(0, bytes.length % 7); // too short for an rpcb or rmtcallargs
            const r = await exchange(tcpPort, callRecord(id, proc, args), id);
            const reply = r.replies.find((m) => m.xid === id);
            assert.ok(reply, 'a reply to the malformed call');
            assert.equal(acceptStat(reply), rpcMsg.GARBAGE_ARGS);
            garbageReplies++;
            break;
          }
          case 2: {
            // A record mark announcing more than is sent, then the client goes away.
            const h = Buffer.alloc(4);
            h.writeUInt32BE((0x80000000 | (bytes.length + 1 + (i << 8))) >>> 0, 0);
            await exchange(tcpPort, Buffer.concat([h, bytes]));
            break;
          }
          case 3: {
            // A record mark announcing 2 GiB: the server must close without buffering.
            const h = Buffer.from([0xff, 0xff, 0xff, 0xff]);
            const r = await exchange(tcpPort, Buffer.concat([h, bytes]), xid++);
            assert.equal(r.closedByServer, true);
            break;
          }
          case 4: {
            // Bytes with no record marking at all.
            await exchange(tcpPort, Buffer.concat([Buffer.from('GET / HTTP/1.1\r\n\r\n'), bytes]));
            break;
          }
          default: {
            // Many non-final fragments adding up past the record limit.
            const frag = Buffer.alloc(4 + 60_000);
            frag.writeUInt32BE(60_000, 0);
            const r = await exchange(tcpPort, Buffer.concat([frag, frag, frag, frag, frag, bytes]), xid++);
            assert.equal(r.closedByServer, true);
          }
        }
      }
    });
    assert.ok(answered > 0, 'the good client got answers throughout');
    assert.ok(garbageReplies >= 40);
    await waitUntil('fuzz connections to close on the server', async () => tcp.connections === baseline, {
      timeoutMs: 10_000,
    });
    const grown = heapAfterGc() - heapBefore;
    assert.ok(grown < 16 << 20, `heap grew by ${grown} bytes`);
  });

  test('UDP: random and mutated datagrams', async () => {
    const heapBefore = heapAfterGc();
    const sock = createSocket('udp4');
    await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
    const replies: Buffer[] = [];
    sock.on('message', (m) => replies.push(m));
    const samples = fc.sample(inputs(), { seed: SEED, numRuns: 600 });
    try {
      const answered = await withGoodClient(async () => {
        for (let i = 0; i < samples.length; i++) {
          const payload =
            i % 3 === 0
              ? callRecord(5000 + i, [1, 2, 3, 11][i % 4], samples[i].subarray(0, 9)).subarray(4)
              : Buffer.from(samples[i]);
          await new Promise<void>((resolve) => sock.send(payload, udpPort, '127.0.0.1', () => resolve()));
        }
        // A valid call last: its reply shows the server worked through everything before it.
        await new Promise<void>((resolve) =>
          sock.send(callRecord(99_999, 0, new Uint8Array(0)).subarray(4), udpPort, '127.0.0.1', () =>
            resolve(),
          ),
        );
        await waitUntil(
          'the reply to the final valid datagram',
          async () => replies.some((r) => r.readUInt32BE(0) === 99_999),
          { timeoutMs: 10_000, intervalMs: 10 },
        );
      });
      assert.ok(answered > 0);
      for (const r of replies) {
        const m = rpcMsg.decode_rpc_msg(new XdrReader(r));
        assert.equal(m.body.mtype, rpcMsg.REPLY);
      }
      const garbage = replies.filter((r) => {
        const m = rpcMsg.decode_rpc_msg(new XdrReader(r));
        return acceptStat(m) === rpcMsg.GARBAGE_ARGS;
      });
      assert.ok(garbage.length >= 50, `GARBAGE_ARGS replies: ${garbage.length}`);
    } finally {
      sock.close();
    }
    const grown = heapAfterGc() - heapBefore;
    assert.ok(grown < 16 << 20, `heap grew by ${grown} bytes`);
    // Still serving.
    assert.equal(await goodUdp.getport(0x20000001, 1, 'tcp'), 0x801);
  });
});
