// Lifeguard's timing rules on their own, as pure functions (memberlist's suspicion tests do the same).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  pushPullPeriod,
  retransmitLimit,
  SwimConfigError,
  suspicionConfirmations,
  suspicionMinTimeout,
  suspicionTimeout,
  swimConfig,
} from '../../src/cluster/membership/config.js';

test('the suspicion timeout starts at its maximum and falls with confirmations to its minimum at k', () => {
  const [min, max, k] = [2000, 12_000, 3];
  const ts = [0, 1, 2, 3, 4].map((c) => suspicionTimeout(c, k, min, max));
  assert.equal(ts[0], max);
  assert.equal(ts[3], min);
  assert.equal(ts[4], min);
  for (let i = 1; i < ts.length; i++) assert.ok(ts[i] <= ts[i - 1]);
  // Logarithmic: the first confirmation takes off half of the range when k = 3.
  assert.equal(ts[1], max - 0.5 * (max - min));
  assert.equal(suspicionTimeout(0, 0, min, max), min, 'no confirmations expected: the minimum');
});

test('the minimum timeout grows with log10 N; confirmations expected are mult − 2, fewer in tiny clusters', () => {
  assert.equal(suspicionMinTimeout(4, 1, 1000), 4000);
  assert.equal(suspicionMinTimeout(4, 10, 1000), 4000);
  assert.equal(suspicionMinTimeout(4, 100, 1000), 8000);
  assert.equal(suspicionMinTimeout(4, 1000, 500), 6000);
  assert.equal(suspicionConfirmations(4, 100), 2);
  assert.equal(suspicionConfirmations(4, 3), 1);
  assert.equal(suspicionConfirmations(4, 2), 0);
});

test('retransmits grow with log N; push-pull slows beyond 32 members', () => {
  assert.equal(retransmitLimit(4, 1), 4);
  assert.equal(retransmitLimit(4, 9), 4);
  assert.equal(retransmitLimit(4, 10), 8);
  assert.equal(retransmitLimit(4, 2000), 16);
  assert.equal(pushPullPeriod(30_000, 32), 30_000);
  assert.equal(pushPullPeriod(30_000, 64), 60_000);
  assert.equal(pushPullPeriod(30_000, 2000), 210_000);
});

test('nonsense configurations are refused with a stable code', () => {
  assert.throws(
    () => swimConfig({ probeInterval: 0 }),
    (e: unknown) => e instanceof SwimConfigError && e.code === 'SWIM_CONFIG',
  );
  assert.throws(() => swimConfig({ probeTimeout: 2000, probeInterval: 1000 }), SwimConfigError);
  assert.throws(() => swimConfig({ suspicionMaxMult: 0.5 }), SwimConfigError);
  assert.ok(swimConfig().probeTimeout < swimConfig().probeInterval);
});
