// Membership between real nodes in this process, on real sockets: status and ring ownership,
// refusal to run on the network without a secret, and bad input sent at a live node —
// malformed, truncated, unauthenticated and replayed datagrams, a node claiming another's
// identity, absurd incarnations, a flood of joins — each rejected with its reason while
// membership stays correct.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { pino } from 'pino';
import { ClusterKeys, LOOPBACK_DEV_SECRET, Sealer, signAssertion } from '../../src/cluster/auth.js';
import {
  encode_gossip_claim,
  encode_gossip_frame,
  type gossip_assertion,
  type gossip_claim,
} from '../../src/cluster/gen/gossip.js';
import {
  SWIM_ALIVE,
  SWIM_GOSSIP,
  SWIM_SUSPECT,
  type swim_packet,
  type swim_update,
} from '../../src/cluster/gen/membership.js';
import { GossipNode, type GossipOptions } from '../../src/cluster/gossip.js';
import { CLAIM_KIND, RejectLog } from '../../src/cluster/gossip-guard.js';
import { GossipTransport } from '../../src/cluster/gossip-transport.js';
import { generateIdentity, type NodeIdentity } from '../../src/cluster/identity.js';
import { encodePacket } from '../../src/cluster/membership/wire.js';
import { componentLogger } from '../../src/log.js';
import { RpcServer } from '../../src/rpc/server.js';
import { encodeToBuffer } from '../../src/xdr/index.js';
import { makeTempDir, removeTempDir } from '../support/tmp.js';
import { waitUntil } from '../support/wait.js';
import { boundFor, TEST_SWIM } from './net-support.js';

interface Cluster {
  nodes: GossipNode[];
  dirs: string[];
  stop(): Promise<void>;
}

async function cluster(
  n: number,
  extra: (i: number) => Partial<GossipOptions> = () => ({}),
): Promise<Cluster> {
  const nodes: GossipNode[] = [];
  const dirs: string[] = [];
  const c: Cluster = {
    nodes,
    dirs,
    async stop() {
      await Promise.all(nodes.map((g) => g.kill()));
      for (const d of dirs) removeTempDir(d);
    },
  };
  try {
    for (let i = 0; i < n; i++) {
      const dir = makeTempDir('net-gossip');
      dirs.push(dir);
      const g = new GossipNode({
        dataDir: dir,
        host: '127.0.0.1',
        port: 0,
        seeds: i === 0 ? [] : [nodes[0].address],
        config: TEST_SWIM,
        ...extra(i),
      });
      nodes.push(g);
      await g.start();
    }
    await waitUntil('the cluster forms', async () => allAlive(nodes), { timeoutMs: boundFor(n) });
  } catch (e) {
    await c.stop();
    throw e;
  }
  return c;
}

function allAlive(nodes: GossipNode[]): boolean {
  return nodes.every((g) => {
    const ms = g.status().members;
    return ms.length === nodes.length && ms.every((m) => m.state === 'alive');
  });
}

/** A process holding the cluster secret (an insider) or not, sending from a socket of its own. */
class Intruder {
  readonly transport: GossipTransport;
  readonly identity: NodeIdentity = generateIdentity();
  addr = '';
  private epoch = 1;

  constructor() {
    this.transport = new GossipTransport(new RpcServer({ drc: false }), {
      host: '127.0.0.1',
      port: 0,
      loopbackAdmin: false,
      log: componentLogger('intruder'),
    });
  }

  async start(): Promise<void> {
    this.addr = `127.0.0.1:${await this.transport.listen()}`;
  }

  sealer(opts: { secret?: Uint8Array | string; nodeId?: Uint8Array } = {}): Sealer {
    return new Sealer(new ClusterKeys(opts.secret ?? LOOPBACK_DEV_SECRET), {
      nodeId: opts.nodeId ?? this.identity.nodeId,
      epoch: this.epoch++,
    });
  }

  frame(packet: swim_packet, assertions: gossip_assertion[] = [], addr = this.addr): Buffer {
    return encodeToBuffer(encode_gossip_frame, { addr, packet: encodePacket(packet), assertions });
  }

  gossip(updates: swim_update[], from = this.identity.nodeId): swim_packet {
    return { from, body: { kind: SWIM_GOSSIP }, gossip: updates };
  }

  send(to: string, envelope: Uint8Array): void {
    this.transport.sendDatagram(to, envelope);
  }
}

function assertion(identity: NodeIdentity, claim: gossip_claim): gossip_assertion {
  return {
    claim,
    public_key: identity.publicKeyRaw,
    signature: signAssertion(identity.privateKey, CLAIM_KIND, encodeToBuffer(encode_gossip_claim, claim)),
  };
}

function update(
  id: Uint8Array,
  addr: string,
  incarnation: number,
  state: number,
  from: Uint8Array,
): swim_update {
  return { id, addr, incarnation, state: state as swim_update['state'], from, meta: new Uint8Array(0) };
}

test('three nodes form a cluster; status shows members, health and ring ownership by weight', async () => {
  const c = await cluster(3, (i) => ({ meta: { weight: i === 2 ? 2 : 1, zone: `z${i}` }, replicas: 2 }));
  try {
    const s = c.nodes[0].status();
    assert.equal(s.self, c.nodes[0].identity.nodeIdHex);
    assert.equal(s.layoutMembers, 3);
    assert.equal(s.replicas, 2);
    const sum = s.members.reduce((a, m) => a + m.primaryShare, 0);
    assert.ok(Math.abs(sum - 1) < 1e-9, `primary shares sum to 1, not ${sum}`);
    const replicas = s.members.reduce((a, m) => a + m.replicaShare, 0);
    assert.ok(Math.abs(replicas - 2) < 1e-9, `replica shares sum to R = 2, not ${replicas}`);
    const heavy = s.members.find((m) => m.id === c.nodes[2].identity.nodeIdHex);
    assert.ok(heavy && heavy.weight === 2 && heavy.zone === 'z2');
    assert.ok(heavy.primaryShare > 0.4, `the node of weight 2 holds about half: ${heavy.primaryShare}`);
    assert.ok(s.members.every((m) => m.health === 0 && m.incarnation === 0));
  } finally {
    await c.stop();
  }
});

test('a node refuses to run membership on the network without a secret, or on a wildcard without an advertised host', () => {
  const dir = makeTempDir('net-gossip-refuse');
  try {
    assert.throws(
      () => new GossipNode({ dataDir: dir, host: '10.11.12.13', port: 0 }),
      (e: Error & { code?: string }) => e.code === 'CLUSTER_SECRET_REQUIRED',
    );
    assert.throws(
      () => new GossipNode({ dataDir: dir, host: '127.0.0.1', port: 0, seeds: ['192.0.2.1:7946'] }),
      (e: Error & { code?: string }) => e.code === 'CLUSTER_SECRET_REQUIRED',
    );
    assert.throws(
      () => new GossipNode({ dataDir: dir, host: '0.0.0.0', port: 0, secret: 'a'.repeat(32) }),
      (e: Error & { code?: string }) => e.code === 'GOSSIP_CONFIG',
    );
    assert.throws(
      () => new GossipNode({ dataDir: dir, host: '10.11.12.13', port: 0, secret: 'short' }),
      (e: Error & { code?: string }) => e.code === 'CLUSTER_SECRET_WEAK',
    );
  } finally {
    removeTempDir(dir);
  }
});

test('bad input at a live node is rejected with its reason, and membership stays correct', async () => {
  const c = await cluster(3);
  const intruder = new Intruder();
  await intruder.start();
  try {
    const [a, b] = c.nodes;
    const aId = a.identity.nodeId;
    const bId = b.identity.nodeId;
    const bInc = a.swim.incarnationOf(bId);
    const me = intruder.identity.nodeId;
    const expect = new Map<string, number>();
    const sendTo = (why: string, envelope: Uint8Array) => {
      intruder.send(a.address, envelope);
      expect.set(why, (expect.get(why) ?? 0) + 1);
    };
    const insider = intruder.sealer();
    const good = insider.seal(intruder.frame(intruder.gossip([])));

    sendTo('truncated', Buffer.from('not a cluster message'));
    sendTo('truncated', good.subarray(0, good.length - 40));
    const flipped = Buffer.from(insider.seal(intruder.frame(intruder.gossip([]))));
    flipped[flipped.length - 1] ^= 1;
    sendTo('bad-mac', flipped);
    const outsider = intruder.sealer({ secret: 'not the cluster secret, at all' });
    sendTo('bad-mac', outsider.seal(intruder.frame(intruder.gossip([]))));
    sendTo('malformed', Buffer.concat([good, Buffer.alloc(4)]));
    // Authenticated, but the payload is not a frame.
    sendTo('malformed', insider.seal(Buffer.from('garbage inside a good envelope')));

    // A recorded message played again: accepted once (datagrams from one socket to another on
    // loopback arrive in order), then a replay.
    const once = insider.seal(intruder.frame(intruder.gossip([])));
    intruder.send(a.address, once);
    sendTo('replay', once);

    // Speaking as another node: its id from another address; the receiver's own id; a frame
    // naming another address; a packet of another node inside one's own envelope.
    sendTo(
      'source-mismatch',
      intruder.sealer({ nodeId: bId }).seal(intruder.frame(intruder.gossip([], bId))),
    );
    sendTo('own-id', intruder.sealer({ nodeId: aId }).seal(intruder.frame(intruder.gossip([], aId))));
    sendTo('source-mismatch', insider.seal(intruder.frame(intruder.gossip([]), [], b.address)));
    sendTo('sender-mismatch', insider.seal(intruder.frame(intruder.gossip([], bId))));

    // Claims about B only B may make: B alive at a new address and incarnation, unsigned and
    // signed with the intruder's key; B suspected at an absurd incarnation; A itself likewise.
    const hijack = update(bId, intruder.addr, (bInc ?? 0) + 5, SWIM_ALIVE, me);
    sendTo('unsigned-claim', insider.seal(intruder.frame(intruder.gossip([hijack]))));
    const forged = assertion(intruder.identity, { ...hijack });
    expect.set('unsigned-claim', (expect.get('unsigned-claim') ?? 0) + 1);
    sendTo('key-mismatch', insider.seal(intruder.frame(intruder.gossip([hijack]), [forged])));
    const absurd = update(bId, b.address, 0xffffffff, SWIM_SUSPECT, me);
    sendTo('absurd-incarnation', insider.seal(intruder.frame(intruder.gossip([absurd]))));
    const absurdSelf = update(aId, a.address, 0xfffffff0, SWIM_SUSPECT, me);
    sendTo('absurd-incarnation', insider.seal(intruder.frame(intruder.gossip([absurdSelf]))));
    const stranger = update(generateIdentity().nodeId, '127.0.0.1:9', 0, SWIM_SUSPECT, me);
    sendTo('unknown-member', insider.seal(intruder.frame(intruder.gossip([stranger]))));

    await waitUntil(
      `A rejects each message with its reason (${JSON.stringify(Object.fromEntries(expect))})`,
      async () => [...expect].every(([reason, n]) => a.rejects.count(reason) >= n),
      { timeoutMs: 10_000 },
    );
    for (const [reason, n] of expect) assert.equal(a.rejects.count(reason), n, `${reason}`);

    // Membership is as it was: everyone alive, B at its own incarnation and address, nobody
    // refuted anything, and the intruder is no member.
    assert.ok(allAlive(c.nodes), JSON.stringify(c.nodes.map((g) => g.status().members)));
    assert.equal(a.swim.incarnationOf(bId), bInc);
    assert.equal(a.swim.member(bId)?.addr, b.address);
    assert.equal(a.swim.stateOf(me), undefined);
    assert.equal(a.swim.selfIncarnation, 0);
    assert.equal(b.swim.selfIncarnation, 0);
    // Rejections were counted on the node that saw them, and `cairn status` reports them.
    assert.deepEqual(a.status().rejected, Object.fromEntries(a.rejects.counts));
  } finally {
    await intruder.transport.close();
    await c.stop();
  }
});

test('a flood of joins is rate limited: the view grows by the burst and the rate, no more', async () => {
  const c = await cluster(2, (i) => (i === 0 ? { limits: { joinRate: 2, joinBurst: 5 } } : {}));
  const intruder = new Intruder();
  await intruder.start();
  try {
    const [a] = c.nodes;
    const start = performance.now();
    const flood = 200;
    for (let i = 0; i < flood; i++) {
      const fake = generateIdentity();
      const claim = {
        id: fake.nodeId,
        addr: `127.0.0.1:${20000 + i}`,
        incarnation: 0,
        state: SWIM_ALIVE,
        meta: new Uint8Array(0),
      };
      const packet: swim_packet = {
        from: fake.nodeId,
        body: { kind: SWIM_GOSSIP },
        gossip: [update(fake.nodeId, claim.addr, 0, SWIM_ALIVE, fake.nodeId)],
      };
      const sealer = new Sealer(new ClusterKeys(LOOPBACK_DEV_SECRET), { nodeId: fake.nodeId, epoch: 1 });
      intruder.send(a.address, sealer.seal(intruder.frame(packet, [assertion(fake, claim)])));
    }
    await waitUntil(
      'every join of the flood is admitted or refused',
      async () => a.rejects.count('join-rate-limited') + a.status().members.length - 2 >= flood,
      { timeoutMs: 20_000 },
    );
    const elapsed = (performance.now() - start) / 1000;
    const admitted = a.status().members.length - 2;
    // The real member's own join took one token of the burst of 5; the bucket may or may not
    // have refilled it (2 per second) before the flood, depending on how long startup took.
    assert.ok(admitted >= 4, `the burst is admitted: ${admitted}`);
    assert.ok(admitted <= 5 + Math.ceil(2 * elapsed) + 1, `${admitted} admitted in ${elapsed.toFixed(1)} s`);
    assert.ok(a.rejects.count('join-rate-limited') >= flood - admitted);
    // The real member is unaffected.
    assert.equal(a.swim.stateOf(c.nodes[1].identity.nodeId), 'alive');
  } finally {
    await intruder.transport.close();
    await c.stop();
  }
});

test('rejections are logged at most once a second per reason, with the number suppressed', () => {
  const lines: { reason: string; suppressed: number }[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      done();
    },
  });
  let now = 0;
  const log = new RejectLog(pino({ level: 'warn' }, sink), () => now);
  for (let i = 0; i < 1000; i++) log.note('bad-mac', 'x', 'here');
  log.note('replay', 'y', 'here');
  now = 1500;
  log.note('bad-mac', 'x', 'here');
  return new Promise<void>((resolve) =>
    setImmediate(() => {
      assert.equal(log.count('bad-mac'), 1001);
      assert.deepEqual(
        lines.map((l) => [l.reason, l.suppressed]),
        [
          ['bad-mac', 0],
          ['replay', 0],
          ['bad-mac', 999],
        ],
      );
      resolve();
    }),
  );
});
