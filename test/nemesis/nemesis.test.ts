// The storage nemesis in CI: a bounded set of seeds, each a run of every fault kind (kill -9,
// power loss, pauses, partitions of every shape, loss, clock skew, a full disk) on three nodes
// while clients run the workloads; together they inject at least 100 faults, and every check must
// pass: no acknowledged write lost, no value that was never written, registers linearizable, no
// node that died on its own or did not come back. The builds broken on purpose are caught in
// nemesis-broken.test.ts (each file stays within about two minutes).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type NemesisReport, runNemesis } from './harness.js';

const SEEDS = [1, 2];
const DURATION_MS = 35_000;
const WORKLOADS = ['registers', 'sets', 'appends', 'namespace'];
const MIN_FAULTS = 100;

/** One line per seed for the test log; the whole run's log goes into a failure's message. */
function describe(r: NemesisReport): string {
  const checks = r.checks.map((c) => `${c.workload} ${c.valid === true ? 'pass' : 'FAIL'}`).join(', ');
  return `seed ${r.seed}: ${r.faults.length} faults, operations ${JSON.stringify(r.operations)}, ${checks}`;
}

test(`storage nemesis: seeds ${SEEDS.join(', ')}, ${DURATION_MS / 1000} s each of every fault kind on 3 nodes; at least ${MIN_FAULTS} faults, every check passes`, async () => {
  let faults = 0;
  for (const seed of SEEDS) {
    const log: string[] = [];
    const r = await runNemesis({
      seed,
      durationMs: DURATION_MS,
      workloads: WORKLOADS,
      log: (l) => log.push(l),
    });
    console.log(describe(r));
    const context = `seed ${seed}\n${log.join('\n')}`;
    assert.deepEqual(r.findings, [], context);
    for (const c of r.checks)
      assert.equal(c.valid, true, `${c.workload}: ${c.violations.join('\n\n')}\n${context}`);
    assert.deepEqual(
      r.faults.filter((f) => f.error !== undefined).map((f) => `${f.description}: ${f.error}`),
      [],
      context,
    );
    faults += r.faults.filter((f) => f.injectedAt !== undefined).length;
  }
  assert.ok(faults >= MIN_FAULTS, `${faults} faults injected, fewer than ${MIN_FAULTS}`);
});
