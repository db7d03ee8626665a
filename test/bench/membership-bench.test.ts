// `npm run bench -- membership --quick` as a tool consumes it: the real benchmark (the simulator,
// small clusters), checked for the shape of its output and for figures that must hold whatever
// the defaults: every crash detected, nothing declared dead without loss.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { spawnProcess } from '../support/process.js';

const MAIN = join(import.meta.dirname, '..', '..', 'src', 'bench', 'main.js');

interface Result {
  metric: string;
  unit: string;
  cairn: number;
  peer: number;
  peerName: string;
  ratio: number;
}

test('the membership benchmark prints tables, then one JSON line with every figure of the issue', async () => {
  const bench = spawnProcess(process.execPath, [MAIN, 'membership', '--quick'], { name: 'bench membership' });
  try {
    const status = await bench.exited;
    assert.equal(status.code, 0, bench.describeOutput());
    const lines = bench.stdout.trimEnd().split('\n');
    const last = lines[lines.length - 1];
    for (const line of lines.slice(0, -1))
      assert.ok(!line.startsWith('{'), `only the last line is JSON: ${line}`);
    assert.match(lines[0], /^Membership benchmark: /);
    assert.ok(lines.some((l) => /^size\s+config\s+crashes\s+first p50/.test(l)));
    assert.ok(
      lines.some((l) => /piggyback only/.test(l)),
      'the pure SWIM dissemination row is there',
    );

    const report = JSON.parse(last) as { bench: string; results: Result[] };
    assert.deepEqual(Object.keys(report), ['bench', 'results']);
    assert.equal(report.bench, 'membership');
    const byMetric = new Map(report.results.map((r) => [r.metric, r]));
    assert.equal(byMetric.size, report.results.length, 'each metric once');
    for (const r of report.results) {
      assert.deepEqual(Object.keys(r), ['metric', 'unit', 'cairn', 'peer', 'peerName', 'ratio']);
      const chord = r.metric.startsWith('Chord lookup hops');
      assert.equal(r.peerName, chord ? 'Chord paper (½·log2 N)' : 'memberlist-lan');
      assert.ok(['s', 'per node-hour', 'B/s', 'hops'].includes(r.unit), `${r.metric}: ${r.unit}`);
      for (const k of ['cairn', 'peer', 'ratio'] as const) {
        assert.ok(Number.isFinite(r[k]) && r[k] >= 0, `${r.metric}: ${k} = ${r[k]}`);
      }
      assert.ok(r.ratio > 0, `${r.metric}: ratio ${r.ratio}`);
    }
    const sizes = [...byMetric.keys()].filter((m) => m.startsWith('detect crash, all nodes, p50 @N='));
    assert.equal(sizes.length, 3, 'three cluster sizes');
    for (const m of sizes) {
      const n = m.split('@')[1];
      for (const metric of [
        `detect crash, all nodes, p99 @${n}`,
        `detect crash, first node, p50 @${n}`,
        `dissemination to all @${n}`,
      ]) {
        assert.ok(byMetric.has(metric), `missing ${metric}`);
      }
      // A crash is always detected, and never before a suspicion has run its minimum course.
      assert.ok(byMetric.get(m)!.cairn >= 4);
    }
    for (const c of ['0% loss', '5% loss', '20% loss', 'slow node']) {
      assert.ok(byMetric.has(`false positives @${c}`), `missing false positives @${c}`);
    }
    assert.equal(byMetric.get('false positives @0% loss')!.cairn, 0);
    assert.ok([...byMetric.keys()].some((m) => m.startsWith('bytes per node per second @N=')));
    // Chord routes in about ½·log2 N hops (4.98 at N = 1,000): well under log2 N.
    const chord = byMetric.get('Chord lookup hops (mean) @N=1000');
    assert.ok(chord && chord.cairn > 2 && chord.cairn < Math.log2(1000), `Chord hops ${chord?.cairn}`);
    assert.match(bench.stderr, /bytes memberlist-lan/);
  } finally {
    await bench.stop('SIGKILL');
  }
});

test('the membership benchmark refuses a bad option with its usage and exit status 2', async () => {
  const bench = spawnProcess(process.execPath, [MAIN, 'membership', '--seed', 'x'], {
    name: 'bench membership',
  });
  try {
    const status = await bench.exited;
    assert.equal(status.code, 2, bench.describeOutput());
    assert.equal(bench.stdout, '');
    assert.match(bench.stderr, /usage: npm run bench -- membership/);
  } finally {
    await bench.stop('SIGKILL');
  }
});
