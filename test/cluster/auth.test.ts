import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  ClusterAuthError,
  ClusterKeys,
  ENVELOPE_OVERHEAD,
  isLoopbackAddress,
  LOOPBACK_DEV_SECRET,
  MAX_COUNTER,
  MAX_ENVELOPE,
  Opener,
  type OpenResult,
  type PeerDirectory,
  requireSecretForNonLoopback,
  Sealer,
  signAssertion,
  verifyAssertion,
  verifyEnvelopeSignature,
} from '../../src/cluster/auth.js';
import { encode_cluster_envelope } from '../../src/cluster/gen/auth.js';
import { generateIdentity } from '../../src/cluster/identity.js';
import { XdrWriter } from '../../src/xdr/index.js';

const SECRET = 'a cluster secret of enough bytes';
const keys = new ClusterKeys(SECRET);
const alice = generateIdentity();
const bob = generateIdentity();
const carol = generateIdentity();

function sealer(id = alice, epoch = 1, signAll = false): Sealer {
  return new Sealer(keys, { nodeId: id.nodeId, epoch, privateKey: id.privateKey, signAll });
}

function rejected(r: OpenResult, reason: string): void {
  assert.equal(r.ok, false, `expected rejection (${reason})`);
  if (!r.ok) {
    assert.equal(r.reason, reason, r.error.message);
    assert.ok(r.error instanceof ClusterAuthError);
    assert.equal(r.error.code, 'CLUSTER_AUTH_REJECTED');
    assert.equal(r.error.reason, reason);
  }
}

/** What an insider holding the secret can build: any sender, epoch, counter, signature bytes. */
function forge(opts: {
  sender: Uint8Array;
  epoch: number;
  counter: bigint;
  payload?: Uint8Array;
  signature?: Uint8Array;
  k?: ClusterKeys;
}): Buffer {
  const w = new XdrWriter();
  encode_cluster_envelope(w, {
    body: {
      format: 1,
      sender: opts.sender,
      epoch: opts.epoch,
      counter: opts.counter,
      payload: opts.payload ?? Buffer.from('x'),
    },
    signature: opts.signature ?? Buffer.alloc(0),
    mac: Buffer.alloc(32),
  });
  const buf = w.finish();
  createHmac('sha256', (opts.k ?? keys).macKey(opts.sender))
    .update(buf.subarray(0, buf.length - 32))
    .digest()
    .copy(buf, buf.length - 32);
  return buf;
}

test('a sealed message opens to the same payload, sender, epoch and counter', () => {
  const s = sealer();
  const o = new Opener(keys, { self: bob.nodeId });
  for (const payload of [Buffer.alloc(0), Buffer.from('ping'), Buffer.alloc(70_000, 7)]) {
    const r = o.open(s.seal(payload));
    assert.ok(r.ok);
    assert.ok(r.payload.equals(payload));
    assert.equal(r.sender, alice.nodeIdHex);
    assert.equal(r.epoch, 1);
    assert.equal(r.signature, 'none');
  }
  assert.equal(s.sent, 3);
});

test('signed envelopes verify with the pinned key, or later with a key from the payload', () => {
  const pinned = new Opener(keys, {
    directory: { publicKeyOf: (id) => (id === alice.nodeIdHex ? alice.publicKey : undefined) },
  });
  const unknown = new Opener(keys);
  const s = sealer(alice, 1, true);
  const a = pinned.open(s.seal(Buffer.from('join')));
  assert.ok(a.ok && a.signature === 'verified');
  const b = unknown.open(s.seal(Buffer.from('join')));
  assert.ok(b.ok && b.signature === 'unverified');
  assert.ok(verifyEnvelopeSignature(b, alice.publicKey));
  assert.ok(!verifyEnvelopeSignature(b, bob.publicKey));
});

test('every single bit flip of an envelope is rejected, signed or not (property)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 40 }), fc.boolean(), (payload, signed) => {
      const env = sealer(alice, 1, signed).seal(payload);
      const o = new Opener(keys, { directory: { publicKeyOf: () => alice.publicKey } });
      for (let bit = 0; bit < env.length * 8; bit++) {
        const b = Buffer.from(env);
        b[bit >> 3] ^= 1 << (bit & 7);
        const r = o.open(b);
        assert.equal(r.ok, false, `bit ${bit} of ${env.length * 8}`);
      }
      assert.ok(o.open(env).ok, 'the original still opens: no flip touched the window');
    }),
    { numRuns: 25 },
  );
});

test('a replay is rejected; reordering within the window is accepted; below the window is too old', () => {
  const s = sealer();
  const o = new Opener(keys, { window: 64 });
  const envs = Array.from({ length: 200 }, (_, i) => s.seal(Buffer.from(`m${i}`)));
  // Deliver in blocks of 50, each block reversed: every message arrives out of order.
  for (let start = 0; start < 200; start += 50) {
    for (let i = start + 49; i >= start; i--) assert.ok(o.open(envs[i]).ok, `message ${i}`);
  }
  rejected(o.open(envs[199]), 'replay');
  rejected(o.open(envs[170]), 'replay');
  rejected(o.open(envs[100]), 'too-old');
  // Duplicates of every message, in any order, are all refused (property over orders).
  fc.assert(
    fc.property(fc.shuffledSubarray([...envs.keys()], { minLength: 1 }), (order) => {
      for (const i of order) assert.equal(o.open(envs[i]).ok, false);
    }),
    { numRuns: 20 },
  );
});

test('gaps in counters are normal and accepted; a far counter is accepted and moves the window; absurd ones are rejected', () => {
  const o = new Opener(keys, { window: 64 });
  assert.ok(o.open(forge({ sender: alice.nodeId, epoch: 1, counter: 5n })).ok);
  assert.ok(
    o.open(forge({ sender: alice.nodeId, epoch: 1, counter: 2n ** 40n })).ok,
    'far in the future: accepted',
  );
  rejected(o.open(forge({ sender: alice.nodeId, epoch: 1, counter: 6n })), 'too-old');
  assert.ok(o.open(forge({ sender: alice.nodeId, epoch: 1, counter: 2n ** 40n - 3n })).ok);
  assert.ok(o.open(forge({ sender: alice.nodeId, epoch: 1, counter: BigInt(MAX_COUNTER) })).ok);
  rejected(
    o.open(forge({ sender: alice.nodeId, epoch: 1, counter: BigInt(MAX_COUNTER) + 1n })),
    'counter-absurd',
  );
  rejected(o.open(forge({ sender: alice.nodeId, epoch: 1, counter: 2n ** 64n - 1n })), 'counter-absurd');
  rejected(o.open(forge({ sender: alice.nodeId, epoch: 1, counter: 0n })), 'counter-absurd');
  rejected(o.open(forge({ sender: alice.nodeId, epoch: 0, counter: 1n })), 'epoch-absurd');
});

test('a restarted sender (next boot epoch) starts its counter again; its earlier boot’s messages are stale', () => {
  const o = new Opener(keys);
  const boot1 = sealer(alice, 1);
  const old = [boot1.seal(Buffer.from('a')), boot1.seal(Buffer.from('b')), boot1.seal(Buffer.from('c'))];
  assert.ok(o.open(old[0]).ok);
  const boot2 = sealer(alice, 2);
  assert.ok(o.open(boot2.seal(Buffer.from('after restart'))).ok);
  rejected(o.open(old[1]), 'stale-epoch');
  rejected(o.open(old[2]), 'stale-epoch');
  assert.ok(o.open(boot2.seal(Buffer.from('more'))).ok);
});

test('the wrong secret is rejected; a too-short secret is refused', () => {
  const other = new ClusterKeys('another secret, also long enough');
  rejected(new Opener(other).open(sealer().seal(Buffer.from('hi'))), 'bad-mac');
  assert.throws(
    () => new ClusterKeys('short'),
    (e: unknown) => e instanceof ClusterAuthError && e.code === 'CLUSTER_SECRET_WEAK',
  );
});

test('one node cannot speak for another', () => {
  // Relabelling Alice's envelope as Bob's breaks the MAC: keys are per sender id.
  const env = sealer().seal(Buffer.from('alive'));
  const relabelled = Buffer.from(env);
  bob.nodeId.copy(relabelled, 4);
  rejected(new Opener(keys).open(relabelled), 'bad-mac');

  // Carol holds the secret and can derive Bob's MAC key, so the MAC alone cannot stop her; the
  // source binding does when she sends from her own address...
  const bindings = new Map([
    [alice.nodeIdHex, '10.0.0.1:7946'],
    [bob.nodeIdHex, '10.0.0.2:7946'],
    [carol.nodeIdHex, '10.0.0.3:7946'],
  ]);
  const directory: PeerDirectory = {
    sourceOf: (id) => bindings.get(id),
    senderAt: (src) => [...bindings].find(([, a]) => a === src)?.[0],
    publicKeyOf: (id) => [alice, bob, carol].find((x) => x.nodeIdHex === id)?.publicKey,
  };
  const o = new Opener(keys, { directory, self: alice.nodeId });
  const asBob = forge({ sender: bob.nodeId, epoch: 1, counter: 1n });
  rejected(o.open(asBob, '10.0.0.3:7946'), 'source-mismatch');
  // ...and from an address bound to nobody, Bob's id is still bound elsewhere.
  rejected(o.open(asBob, '10.9.9.9:7946'), 'source-mismatch');
  // Bob from his own address is fine; Alice's own id coming back is a reflection.
  assert.ok(o.open(sealer(bob).seal(Buffer.from('ok')), '10.0.0.2:7946').ok);
  rejected(o.open(sealer(alice).seal(Buffer.from('me?')), '10.0.0.1:7946'), 'own-id');

  // If she spoofs Bob's address too, signatures are what is left: with requireSignatures, an
  // unsigned forgery is refused, and a signature by her own key does not verify as Bob's.
  const strict = new Opener(keys, { directory, requireSignatures: true });
  rejected(
    strict.open(forge({ sender: bob.nodeId, epoch: 1, counter: 9n }), '10.0.0.2:7946'),
    'signature-required',
  );
  const carolSigns = new Sealer(keys, {
    nodeId: carol.nodeId,
    epoch: 1,
    privateKey: carol.privateKey,
    signAll: true,
  }).seal(Buffer.from('x'));
  const asBobSigned = Buffer.from(carolSigns);
  bob.nodeId.copy(asBobSigned, 4);
  createHmac('sha256', keys.macKey(bob.nodeId))
    .update(asBobSigned.subarray(0, asBobSigned.length - 32))
    .digest()
    .copy(asBobSigned, asBobSigned.length - 32);
  rejected(strict.open(asBobSigned, '10.0.0.2:7946'), 'bad-signature');
  assert.ok(strict.open(sealer(bob, 1, true).seal(Buffer.from('real bob')), '10.0.0.2:7946').ok);
});

test('absurd lengths are rejected without being allocated; every truncation is rejected', () => {
  const o = new Opener(keys);
  const env = sealer().seal(Buffer.from('hello world'));
  // The payload length field sits after format, sender, epoch and counter.
  const at = 4 + 16 + 4 + 8;
  for (const claimed of [0xffffffff, 0x7fffffff, 2 ** 20 + 1]) {
    const b = Buffer.from(env);
    b.writeUInt32BE(claimed, at);
    rejected(o.open(b), 'malformed');
  }
  for (const claimed of [2 ** 20, 1000, 100]) {
    const b = Buffer.from(env);
    b.writeUInt32BE(claimed, at);
    rejected(o.open(b), 'truncated');
  }
  const before = process.memoryUsage().arrayBuffers;
  const b = Buffer.from(env);
  b.writeUInt32BE(2 ** 20, at);
  for (let i = 0; i < 2000; i++) o.open(b);
  assert.ok(process.memoryUsage().arrayBuffers - before < 64 * 2 ** 20, 'no megabyte per message');
  for (let len = 0; len < env.length; len++)
    assert.equal(o.open(env.subarray(0, len)).ok, false, `prefix of ${len}`);
  rejected(o.open(Buffer.alloc(MAX_ENVELOPE + 1)), 'too-large');
  rejected(new Opener(keys, { maxEnvelope: 1500 }).open(sealer().seal(Buffer.alloc(2000))), 'too-large');
  rejected(o.open(Buffer.alloc(ENVELOPE_OVERHEAD - 1)), 'truncated');
});

test('arbitrary bytes never throw and never open (property)', () => {
  const o = new Opener(keys);
  const env = sealer().seal(Buffer.from('seed'));
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 300 }),
        fc
          .tuple(fc.nat({ max: env.length }), fc.uint8Array({ minLength: 1, maxLength: 8 }))
          .map(([pos, junk]) => {
            const b = Buffer.from(env);
            Buffer.from(junk).copy(b, Math.min(pos, b.length - 1));
            return b;
          }),
      ),
      (bytes) => {
        const b = Buffer.from(bytes);
        if (b.equals(env)) return;
        const r = o.open(b);
        assert.equal(r.ok, false);
      },
    ),
    { numRuns: 2000 },
  );
});

test('a receiver tracks a bounded number of senders and refuses new ones rather than forgetting', () => {
  const o = new Opener(keys, { maxSenders: 2 });
  assert.ok(o.open(sealer(alice).seal(Buffer.from('1'))).ok);
  assert.ok(o.open(sealer(bob).seal(Buffer.from('2'))).ok);
  rejected(o.open(sealer(carol).seal(Buffer.from('3'))), 'too-many-senders');
  assert.equal(o.trackedSenders, 2);
  // Messages without the secret never take a slot.
  rejected(
    new Opener(keys, { maxSenders: 1 }).open(
      forge({ sender: carol.nodeId, epoch: 1, counter: 1n, k: new ClusterKeys('x'.repeat(16)) }),
    ),
    'bad-mac',
  );
});

test('signed assertions: only the node’s own key, only for the kind it was made for', () => {
  const bytes = Buffer.from('alice alive incarnation 8');
  const sig = signAssertion(alice.privateKey, 'alive', bytes);
  assert.ok(verifyAssertion(alice.publicKey, 'alive', bytes, sig));
  assert.ok(!verifyAssertion(alice.publicKey, 'leave', bytes, sig));
  assert.ok(!verifyAssertion(bob.publicKey, 'alive', bytes, sig));
  assert.ok(!verifyAssertion(alice.publicKey, 'alive', Buffer.from('alice alive incarnation 9'), sig));
  assert.ok(!verifyAssertion(alice.publicKey, 'alive', bytes, sig.subarray(1)));
});

test('a cluster reachable from the network needs a secret; a loopback one may use the development secret', () => {
  assert.equal(
    requireSecretForNonLoopback(['127.0.0.1:7946', '[::1]:7946', 'localhost:1', '127.3.4.5'], undefined),
    LOOPBACK_DEV_SECRET,
  );
  for (const exposed of [
    '0.0.0.0:7946',
    '10.0.0.1:7946',
    '::',
    '[fe80::1]:7946',
    'node1.example.com:7946',
    '::ffff:10.0.0.1',
  ]) {
    assert.throws(
      () => requireSecretForNonLoopback(['127.0.0.1:7946', exposed], undefined),
      (e: unknown) =>
        e instanceof ClusterAuthError && e.code === 'CLUSTER_SECRET_REQUIRED' && e.message.includes(exposed),
      exposed,
    );
    assert.throws(
      () => requireSecretForNonLoopback([exposed], ''),
      (e: unknown) => e instanceof ClusterAuthError && e.code === 'CLUSTER_SECRET_REQUIRED',
    );
  }
  assert.throws(
    () => requireSecretForNonLoopback(['10.0.0.1'], 'short'),
    (e: unknown) => e instanceof ClusterAuthError && e.code === 'CLUSTER_SECRET_WEAK',
  );
  assert.deepEqual(requireSecretForNonLoopback(['10.0.0.1'], SECRET), Buffer.from(SECRET));
  assert.ok(isLoopbackAddress('::ffff:127.0.0.1'));
  assert.ok(!isLoopbackAddress('128.0.0.1'));
});
