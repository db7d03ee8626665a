// The membership nemesis on real processes, a second seed (see membership.test.ts).
import { test } from 'node:test';
import { assertHealthy, runMembershipNemesis } from './membership.js';

test('membership nemesis, seed 2: 45 s of faults on 5 real nodes; views converge, nobody live is declared dead, detection within bounds', async () => {
  assertHealthy(await runMembershipNemesis({ seed: 2, durationMs: 45_000 }));
});
