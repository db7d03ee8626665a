/**
 * `npm run test:nemesis -- --seed S --duration D [options]`: one storage nemesis run, then one
 * membership nemesis run (test/nemesis/membership.ts) with the same seed and duration. Prints
 * every fault as it is injected, each check's verdict with its statistics and violations, and, as
 * its last line, a JSON summary; exits 0 only when every check passed. docs/NEMESIS.md.
 */
import { parseArgs } from 'node:util';
import { type NemesisReport, runNemesis } from './harness.js';
import { checkHistories, loadHistories } from './history.js';
import { formatMembershipReport, type MembershipReport, runMembershipNemesis } from './membership.js';
import { FAULT_KINDS, parseFaultKinds } from './schedule.js';
import type { CheckReport } from './workload.js';
import { workloadNames } from './workloads/index.js';

const USAGE = `usage: npm run test:nemesis -- --seed S --duration D [--nodes N] [--workloads W,...]
         [--failpoints NAME,...] [--faults KIND,...] [--parts storage,membership]
         [--membership-nodes N] [--op-timeout MS] [--history FILE]
       npm run test:nemesis -- --recheck FILE

  --seed S            the schedule's seed (an integer); the same seed plans the same faults
  --duration D        seconds of faults (and of workloads) in each run
  --nodes N           storage nodes (default 3)
  --workloads W,...   of: ${workloadNames().join(', ')} (default registers,sets)
  --failpoints N,...  start every node broken on purpose (src/failpoints.ts)
  --faults K,...      storage fault kinds (default all): ${FAULT_KINDS.join(', ')}
  --parts P,...       which runs: storage, membership (default both)
  --membership-nodes  nodes of the membership run (default 5)
  --op-timeout MS     how long an operation may take before it is recorded open (default 3000)
  --history FILE      save the storage run's history (one JSON line per workload and node)
  --recheck FILE      check a saved history again, without running anything
`;

const MAX_VIOLATIONS_SHOWN = 20;

function integer(text: string, what: string, min: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min)
    throw new Error(`${what} must be an integer of at least ${min}, not '${text}'`);
  return n;
}

function list(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function printChecks(checks: readonly CheckReport[]): void {
  for (const c of checks) {
    const verdict = c.valid === true ? 'PASS' : c.valid === false ? 'FAIL' : 'UNKNOWN';
    const stats = Object.entries(c.stats)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    console.log(`  ${verdict} ${c.workload}: ${stats}`);
    for (const v of c.violations.slice(0, MAX_VIOLATIONS_SHOWN)) console.log(`\n${v.replace(/^/gm, '    ')}`);
    if (c.violations.length > MAX_VIOLATIONS_SHOWN)
      console.log(`    ... and ${c.violations.length - MAX_VIOLATIONS_SHOWN} more violations`);
  }
}

function printStorage(r: NemesisReport): void {
  const byKind = new Map<string, number>();
  for (const f of r.faults) byKind.set(f.kind, (byKind.get(f.kind) ?? 0) + 1);
  console.log(
    `\nstorage nemesis: seed ${r.seed}, ${r.durationMs / 1000} s, ${r.nodes} nodes, ` +
      `${r.faults.length} faults injected (${[...byKind].map(([k, n]) => `${k} ${n}`).join(', ')})`,
  );
  for (const f of r.faults.filter((f) => f.error))
    console.log(`  fault ${f.n} (${f.description}) went wrong: ${f.error}`);
  printChecks(r.checks);
  for (const f of r.findings) console.log(`  FINDING ${f.replace(/\n/g, '\n    ')}`);
}

/** The last line: everything a script needs to judge the run. */
function summary(seed: number, durationMs: number, s?: NemesisReport, m?: MembershipReport) {
  const storage = s && {
    nodes: s.nodes,
    workloads: s.workloads,
    failpoints: s.failpoints,
    faults: s.faults.length,
    faultErrors: s.faults.filter((f) => f.error).length,
    operations: s.operations,
    checks: s.checks.map((c) => ({
      workload: c.workload,
      valid: c.valid,
      stats: c.stats,
      violations: c.violations.length,
    })),
    findings: s.findings.length,
    ok: s.valid,
  };
  const membership = m && {
    nodes: m.nodes,
    faults: m.faults.length,
    checks: m.checks.map((c) => ({ name: c.name, ok: c.ok, violations: c.violations.length })),
    ok: m.ok,
  };
  return {
    nemesis: {
      seed,
      durationMs,
      storage: storage ?? null,
      membership: membership ?? null,
      ok: (s?.valid ?? true) && (m?.ok ?? true),
    },
  };
}

function parse() {
  return parseArgs({
    options: {
      seed: { type: 'string' },
      duration: { type: 'string' },
      nodes: { type: 'string', default: '3' },
      workloads: { type: 'string', default: 'registers,sets' },
      failpoints: { type: 'string', default: '' },
      faults: { type: 'string', default: 'all' },
      parts: { type: 'string', default: 'storage,membership' },
      'membership-nodes': { type: 'string', default: '5' },
      'op-timeout': { type: 'string', default: '3000' },
      history: { type: 'string' },
      recheck: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  }).values;
}

async function main(): Promise<number> {
  let values: ReturnType<typeof parse>;
  try {
    values = parse();
    if (values.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    if (values.recheck === undefined && (values.seed === undefined || values.duration === undefined))
      throw new Error('--seed and --duration are required');
  } catch (e) {
    process.stderr.write(`test:nemesis: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.recheck !== undefined) {
    const checks = await checkHistories(loadHistories(values.recheck));
    printChecks(checks);
    return checks.every((c) => c.valid === true) ? 0 : 1;
  }
  const seed = integer(values.seed!, '--seed', 0);
  const durationMs = integer(values.duration!, '--duration', 1) * 1000;
  const parts = new Set(list(values.parts));
  const failpoints = list(values.failpoints);
  const log = (line: string) => console.log(line);

  let storage: NemesisReport | undefined;
  if (parts.has('storage')) {
    storage = await runNemesis({
      seed,
      durationMs,
      nodes: integer(values.nodes, '--nodes', 1),
      workloads: list(values.workloads),
      faults: parseFaultKinds(values.faults),
      failpoints,
      opTimeoutMs: integer(values['op-timeout'], '--op-timeout', 100),
      historyFile: values.history,
      log,
    });
    printStorage(storage);
  }
  let membership: MembershipReport | undefined;
  if (parts.has('membership')) {
    console.log('\nmembership nemesis');
    membership = await runMembershipNemesis({
      seed,
      durationMs,
      nodes: integer(values['membership-nodes'], '--membership-nodes', 2),
      failpoints: failpoints.join(','),
      log,
    });
    console.log(formatMembershipReport(membership));
  }
  const s = summary(seed, durationMs, storage, membership);
  console.log(JSON.stringify(s));
  return s.nemesis.ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e);
    process.exit(2);
  },
);
