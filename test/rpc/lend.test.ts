/**
 * Memory a handler lends its reply (CallContext.lend): released only once the transport has
 * written the reply, over TCP and UDP, so a handler may reuse it right after (the store's block
 * buffers rely on this for NFS READ).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  RpcServer,
  TcpRpcClient,
  TcpServerTransport,
  UdpRpcClient,
  UdpServerTransport,
} from '../../src/rpc/index.js';
import { waitUntil } from '../support/wait.js';
import { calcHandler } from './calc-handler.js';
import { CALC_V1_Client, CALC_V1_program } from './gen/calc.js';

const ROOT = { flavor: 1, uid: 0, gid: 0, gids: [0], machinename: 'tester' } as const;

describe('memory lent to a reply', () => {
  let releases = 0;
  const handler = calcHandler({
    CALC_NULL() {},
    CALC_ECHO(b, ctx) {
      // The reply is a view of memory scribbled over as soon as it is released: a release
      // before the reply is written would send the scribble.
      const lent = Buffer.from(b);
      ctx.lend?.(() => {
        releases++;
        lent.fill(0xee);
      });
      return lent;
    },
  });
  const rpc = new RpcServer();
  rpc.addProgram(CALC_V1_program, handler, { idempotent: ['CALC_ECHO'] });
  const tcp = new TcpServerTransport(rpc);
  const udp = new UdpServerTransport(rpc);
  let tcpPort = 0;
  let udpPort = 0;

  before(async () => {
    tcpPort = (await tcp.listen()).port;
    udpPort = (await udp.listen()).port;
  });
  after(async () => {
    await tcp.close();
    await udp.close();
  });

  const check = async (calc: CALC_V1_Client, sizes: number[]) => {
    releases = 0;
    const sent = sizes.map((n, i) => Buffer.alloc(n, (i % 200) + 1));
    const back = await Promise.all(sent.map((b) => calc.CALC_ECHO(b)));
    for (const [i, b] of back.entries())
      assert.ok(Buffer.from(b).equals(sent[i]), `reply ${i} is what was lent`);
    await waitUntil('every lent buffer released', async () => releases === sizes.length);
  };

  test('TCP: released after the write, large replies and many in flight', async () => {
    const c = new TcpRpcClient({ host: '127.0.0.1', port: tcpPort, credential: ROOT });
    try {
      await check(
        new CALC_V1_Client(c),
        Array.from({ length: 24 }, (_, i) => (i % 3 === 0 ? 2 << 20 : 1000 + i)),
      );
    } finally {
      await c.close();
    }
  });

  test('UDP: released after the send', async () => {
    const c = new UdpRpcClient({ host: '127.0.0.1', port: udpPort, credential: ROOT });
    try {
      await check(new CALC_V1_Client(c), [1, 500, 8000, 30_000]);
    } finally {
      await c.close();
    }
  });
});
