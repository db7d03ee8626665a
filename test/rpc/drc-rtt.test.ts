import assert from 'node:assert/strict';
import { test } from 'node:test';
import { argumentDigest, DuplicateRequestCache } from '../../src/rpc/drc.js';
import { RttEstimator } from '../../src/rpc/rtt.js';

test('the DRC runs a call once, replays it, and hands waiters the reply', () => {
  const drc = new DuplicateRequestCache({ maxEntries: 10, maxBytes: 1000, maxReplyBytes: 100 });
  assert.deepEqual(
    drc.begin('a', () => {}),
    { kind: 'new' },
  );
  const waited: (Buffer | null)[] = [];
  assert.deepEqual(
    drc.begin('a', (r) => waited.push(r)),
    { kind: 'waiting' },
  );
  const reply = Buffer.from('reply');
  drc.complete('a', reply);
  assert.deepEqual(waited, [reply]);
  const again = drc.begin('a', () => {});
  assert.equal(again.kind, 'replay');
  assert.equal(again.kind === 'replay' && again.reply?.toString(), 'reply');
  reply.write('XXXXX');
  const third = drc.begin('a', () => {});
  assert.equal(third.kind === 'replay' && third.reply?.toString(), 'reply', 'the cache owns a copy');
  assert.equal(drc.hits, 3);
});

test('the DRC stays within its entry and byte bounds, evicting oldest first', () => {
  const drc = new DuplicateRequestCache({ maxEntries: 3, maxBytes: 25, maxReplyBytes: 20 });
  for (const k of ['a', 'b', 'c', 'd']) {
    drc.begin(k, () => {});
    drc.complete(k, Buffer.alloc(10));
  }
  assert.ok(drc.size <= 3);
  assert.ok(drc.sizeBytes <= 25);
  assert.equal(drc.begin('a', () => {}).kind, 'new', 'the oldest entry was evicted');
  assert.equal(drc.begin('d', () => {}).kind, 'replay', 'the newest entry stayed');
});

test('oversized replies are not cached, so a retransmission runs again instead of hanging', () => {
  const drc = new DuplicateRequestCache({ maxEntries: 3, maxBytes: 1000, maxReplyBytes: 4 });
  drc.begin('x', () => {});
  drc.complete('x', Buffer.alloc(5));
  assert.equal(drc.begin('x', () => {}).kind, 'new');
  assert.equal(drc.sizeBytes, 0);
});

test('calls in progress are never evicted', () => {
  const drc = new DuplicateRequestCache({ maxEntries: 1, maxBytes: 1000, maxReplyBytes: 100 });
  drc.begin('running', () => {});
  drc.begin('other', () => {});
  assert.equal(drc.begin('running', () => {}).kind, 'waiting');
});

test('the argument digest separates a reused XID with different arguments', () => {
  const a = Buffer.from('0123456789abcdef');
  const b = Buffer.from('0123456789abcdeg');
  assert.notEqual(argumentDigest(a, 0, a.length), argumentDigest(b, 0, b.length));
  assert.equal(argumentDigest(a, 0, a.length), argumentDigest(Buffer.from(a), 0, a.length));
});

test('RTO follows Jacobson/Karels: first sample, smoothing, backoff, clamps', () => {
  const e = new RttEstimator(500, 20, 4000);
  assert.equal(e.rto(), 500, 'initial RTO before any sample');
  e.sample(100);
  assert.equal(e.smoothedRtt, 100);
  assert.equal(e.rto(), 100 + 4 * 50);
  e.sample(100);
  // rttvar = 0.75*50 + 0.25*0 = 37.5; srtt stays 100.
  assert.equal(e.rto(), 100 + 4 * 37.5);
  assert.equal(e.rto(1), 2 * 250);
  assert.equal(e.rto(10), 4000, 'backoff is capped');
  const fast = new RttEstimator(500, 20, 4000);
  for (let i = 0; i < 50; i++) fast.sample(0.05);
  assert.equal(fast.rto(), 20, 'clamped to the minimum');
});
