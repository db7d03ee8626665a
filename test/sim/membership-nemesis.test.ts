// The membership nemesis in the simulator: the real harness's schedules of partitions, bridges,
// one-way cuts, loss, pauses, kills and skewed restarts, applied to SWIM cores and judged by the
// same checks (test/nemesis/membership-check.ts), over many seeds; and the broken build
// (dead on the first missed probe) caught by the no-false-death check on every seed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatMembershipReport, type MembershipReport } from '../nemesis/membership-check.js';
import { FAULT_KINDS } from '../nemesis/membership-schedule.js';
import { runSimMembershipNemesis } from '../nemesis/membership-sim.js';

const failed = (r: MembershipReport) => r.checks.filter((c) => !c.ok).map((c) => c.name);

test('sim nemesis: 50 seeds of 60 s of faults each, every check passes', () => {
  const kinds = new Map<string, number>();
  let faults = 0;
  let deaths = 0;
  const detected: number[] = [];
  for (let seed = 1; seed <= 50; seed++) {
    const r = runSimMembershipNemesis({ seed, durationMs: 60_000 });
    assert.ok(r.ok, formatMembershipReport(r));
    faults += r.faults.length;
    for (const f of r.faults) kinds.set(f.kind, (kinds.get(f.kind) ?? 0) + 1);
    deaths += Number(/^(\d+) deaths/.exec(r.checks.find((c) => c.name === 'no-false-death')!.summary)?.[1]);
    for (const s of r.detection.samples) if (s.deadMs !== undefined) detected.push(s.deadMs);
  }
  assert.deepEqual([...kinds.keys()].sort(), [...FAULT_KINDS].sort(), 'every kind of fault was injected');
  assert.ok(faults >= 50 * 10, `${faults} faults in 50 runs`);
  assert.ok(deaths > 500, `the faults made members legitimately dead ${deaths} times`);
  detected.sort((a, b) => a - b);
  const p = (q: number) => (detected[Math.floor(q * (detected.length - 1))] / 1000).toFixed(1);
  console.log(
    `50 seeds: ${faults} faults, ${deaths} legitimate deaths, none false; ${detected.length} kills/isolations ` +
      `held dead by all after p50 ${p(0.5)} s, p90 ${p(0.9)} s, max ${p(1)} s`,
  );
});

test('sim nemesis: the broken build (dead on first miss) is caught under loss on every seed; the real one passes', () => {
  const heavy = { durationMs: 30_000, kinds: ['loss', 'pause'] as const, loss: [0.15, 0.25] as const };
  for (let seed = 1; seed <= 20; seed++) {
    const broken = runSimMembershipNemesis({ seed, ...heavy, failpoints: 'membership.dead-on-first-miss' });
    assert.ok(failed(broken).includes('no-false-death'), formatMembershipReport(broken));
    const sound = runSimMembershipNemesis({ seed, ...heavy });
    assert.ok(sound.ok, formatMembershipReport(sound));
  }
});

test('sim nemesis: a seed replays exactly', () => {
  const a = runSimMembershipNemesis({ seed: 77, durationMs: 60_000 });
  const b = runSimMembershipNemesis({ seed: 77, durationMs: 60_000 });
  assert.deepEqual(a, b);
  assert.notDeepEqual(runSimMembershipNemesis({ seed: 78, durationMs: 60_000 }).faults, a.faults);
});
