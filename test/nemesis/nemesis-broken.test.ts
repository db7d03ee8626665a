// The storage nemesis must be able to fail: builds broken on purpose (src/failpoints.ts) are caught.
// - store.ack-before-sync acknowledges FILE_SYNC writes before their blocks are fdatasync'd and
//   before LMDB's flush; only a power loss shows it (kill -9 keeps the page cache), so the node is
//   cut again and again while the registers workload runs.
// - nfs.write.drop acknowledges every fifth WRITE and never applies it; reads show it at once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type NemesisReport, runNemesis } from './harness.js';

function registersCaught(r: NemesisReport, log: readonly string[]): string {
  const registers = r.checks.find((c) => c.workload === 'registers');
  assert.equal(registers?.valid, false, `the broken build passed\n${log.join('\n')}`);
  assert.ok(registers.violations.length > 0);
  assert.equal(r.valid, false);
  return registers.violations[0];
}

test('storage nemesis: a build that acknowledges FILE_SYNC writes before they are durable is caught under power loss', async () => {
  const log: string[] = [];
  const r = await runNemesis({
    seed: 1,
    durationMs: 20_000,
    nodes: 1,
    workloads: ['registers'],
    faults: ['power'],
    failpoints: ['store.ack-before-sync'],
    log: (l) => log.push(l),
  });
  const first = registersCaught(r, log);
  console.log(`${r.faults.length} power cuts; the first violation:\n${first}`);
});

test('storage nemesis: a build that acknowledges writes it never applied is caught', async () => {
  const log: string[] = [];
  const r = await runNemesis({
    seed: 1,
    durationMs: 10_000,
    nodes: 1,
    workloads: ['registers'],
    faults: ['kill'],
    failpoints: ['nfs.write.drop'],
    log: (l) => log.push(l),
  });
  const first = registersCaught(r, log);
  console.log(`${r.faults.length} kills; the first violation:\n${first}`);
});
