// SWIM packets through the codec generated from membership.x, and what it does with bad bytes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  SWIM_ACK,
  SWIM_PUSH_PULL,
  SWIM_SUSPECT,
  type swim_packet,
} from '../../src/cluster/gen/membership.js';
import { decodePacket, encodePacket } from '../../src/cluster/membership/wire.js';
import { XdrError } from '../../src/xdr/index.js';

const id = (b: number) => new Uint8Array(16).fill(b);

test('a packet with a body and piggybacked updates survives encoding unchanged', () => {
  const p: swim_packet = {
    from: id(1),
    body: { kind: SWIM_ACK, ack: { seq: 77, health: 3 } },
    gossip: [
      {
        id: id(2),
        addr: '10.0.0.2:7946',
        incarnation: 4_000_000_000,
        state: SWIM_SUSPECT,
        from: id(1),
        meta: new Uint8Array([1, 2, 3]),
      },
    ],
  };
  const bytes = encodePacket(p);
  const back = decodePacket(bytes);
  assert.deepEqual(
    {
      ...back,
      from: [...back.from],
      gossip: back.gossip.map((u) => ({ ...u, id: [...u.id], from: [...u.from], meta: [...u.meta] })),
    },
    {
      ...p,
      from: [...p.from],
      gossip: p.gossip.map((u) => ({ ...u, id: [...u.id], from: [...u.from], meta: [...u.meta] })),
    },
  );
  const pp = decodePacket(
    encodePacket({
      from: id(1),
      body: { kind: SWIM_PUSH_PULL, push_pull: { reply: true, join: false, states: [] } },
      gossip: [],
    }),
  );
  assert.equal(pp.body.kind, SWIM_PUSH_PULL);
});

test('truncated, padded-out and garbage packets are refused with an XdrError, not half-decoded', () => {
  const bytes = encodePacket({
    from: id(1),
    body: { kind: SWIM_ACK, ack: { seq: 1, health: 0 } },
    gossip: [],
  });
  assert.throws(() => decodePacket(bytes.subarray(0, bytes.length - 4)), XdrError);
  assert.throws(() => decodePacket(Buffer.concat([bytes, Buffer.alloc(4)])), XdrError);
  const bad = Buffer.from(bytes);
  bad.writeUInt32BE(99, 16); // an unknown body kind
  assert.throws(() => decodePacket(bad), XdrError);
});
