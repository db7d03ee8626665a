/**
 * `npm run test:nemesis -- --seed S --duration D [--nodes N] [--workloads registers,sets]
 * [--failpoints name,...] [--faults kinds]`: one storage nemesis run (and the membership nemesis,
 * when there is one). Prints every fault as it is injected, each workload's verdict with its
 * statistics and violations, and last a JSON summary line; exits 0 only when every check passed.
 */
import { parseArgs } from 'node:util';
import { runNemesis } from './harness.js';
import { parseFaultKinds } from './schedule.js';

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      seed: { type: 'string', default: '1' },
      duration: { type: 'string', default: '30' },
      nodes: { type: 'string', default: '3' },
      workloads: { type: 'string', default: 'registers' },
      failpoints: { type: 'string', default: '' },
      faults: { type: 'string', default: 'all' },
    },
  });
  const report = await runNemesis({
    seed: Number(values.seed),
    durationMs: Number(values.duration) * 1000,
    nodes: Number(values.nodes),
    workloads: values.workloads.split(','),
    failpoints: values.failpoints.split(',').filter(Boolean),
    faults: parseFaultKinds(values.faults),
    log: (line) => console.log(line),
  });
  for (const c of report.checks) {
    console.log(`${c.workload}: ${c.valid} ${JSON.stringify(c.stats)}`);
    for (const v of c.violations) console.log(v);
  }
  for (const f of report.findings) console.log(`finding: ${f}`);
  return report.valid ? 0 : 1;
}

main().then((code) => process.exit(code));
