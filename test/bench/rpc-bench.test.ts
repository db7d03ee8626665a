// `npm run bench -- rpc` as a tool consumes it: a real run (real server processes, real sockets)
// on a tiny budget, checked for the shape of its output only. Speed is the benchmark's business,
// never a test's: this machine is shared and noisy.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { spawnProcess } from '../support/process.js';
import { waitUntil } from '../support/wait.js';

const MAIN = join(import.meta.dirname, '..', '..', 'src', 'bench', 'main.js');

interface Result {
  metric: string;
  unit: string;
  cairn: number;
  peer: number;
  peerName: string;
  ratio: number;
}

/** Whether any process is left in the process group `pgid` (the bench and the servers it forked). */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

test('the rpc benchmark prints tables, then one JSON line of finite positive results, and leaves nothing running', async () => {
  const bench = spawnProcess(
    process.execPath,
    [MAIN, 'rpc', '--rounds', '1', '--duration', '0.05', '--warmup', '0'],
    { name: 'bench rpc' },
  );
  try {
    const status = await bench.exited;
    assert.equal(status.code, 0, bench.describeOutput());

    const lines = bench.stdout.trimEnd().split('\n');
    assert.ok(lines.length > 2, 'human-readable lines come before the JSON line');
    const last = lines[lines.length - 1];
    for (const line of lines.slice(0, -1)) {
      assert.ok(!line.startsWith('{'), `only the last line is JSON, not: ${line}`);
    }
    assert.match(lines[0], /^RPC benchmark: /);
    assert.ok(
      lines.some((l) => /^case\s+system\s+calls\/s/.test(l)),
      'the per-case table has its header',
    );
    assert.ok(
      lines.some((l) => l.startsWith('Targets (issue 2):')),
      'the targets of the issue are listed',
    );

    const report = JSON.parse(last) as { bench: unknown; results: unknown };
    assert.deepEqual(Object.keys(report), ['bench', 'results']);
    assert.equal(report.bench, 'rpc');
    assert.ok(Array.isArray(report.results) && report.results.length > 0);
    const results = report.results as Result[];
    for (const r of results) {
      assert.deepEqual(
        Object.keys(r),
        ['metric', 'unit', 'cairn', 'peer', 'peerName', 'ratio'],
        JSON.stringify(r),
      );
      assert.equal(typeof r.metric, 'string');
      assert.ok(r.metric.length > 0);
      assert.ok(['calls/s', 'MiB/s', 'ms', 'µs'].includes(r.unit), `unit of ${r.metric}: ${r.unit}`);
      assert.ok(['grpc-js', 'raw-tcp-echo', 'raw-udp-echo'].includes(r.peerName), r.peerName);
      for (const k of ['cairn', 'peer', 'ratio'] as const) {
        assert.ok(Number.isFinite(r[k]) && r[k] > 0, `${r.metric}: ${k} is ${r[k]}`);
      }
    }
    const metrics = new Set(results.map((r) => `${r.metric} / ${r.peerName}`));
    assert.equal(metrics.size, results.length, 'each metric is reported once per peer');
    // Every case of the issue is there: null and 1 KiB at 1 and 64 in flight over TCP and UDP
    // against grpc-js and the ceiling, and 1 MiB over TCP.
    for (const transport of ['tcp', 'udp']) {
      for (const shape of ['null', '1KiB echo']) {
        for (const n of [1, 64]) {
          const peerMetric = `${transport} ${shape} calls/s @${n}${transport === 'udp' ? ' (grpc-js over tcp)' : ''}`;
          assert.ok(metrics.has(`${peerMetric} / grpc-js`), `missing ${peerMetric}`);
          assert.ok(
            metrics.has(
              `${transport} ${shape} p99 ms @${n}${transport === 'udp' ? ' (grpc-js over tcp)' : ''} / grpc-js`,
            ),
          );
          assert.ok(metrics.has(`${transport} ${shape} calls/s @${n} vs ceiling / raw-${transport}-echo`));
        }
      }
    }
    for (const n of [1, 64]) {
      assert.ok(metrics.has(`tcp 1MiB echo MiB/s @${n} / grpc-js`));
      assert.ok(metrics.has(`tcp 1MiB echo MiB/s @${n} vs ceiling / raw-tcp-echo`));
    }
    assert.ok(metrics.has('tcp 1KiB echo DRC on calls/s @64 / grpc-js'));

    // Progress went to stderr, and the server processes went away with the benchmark.
    assert.match(bench.stderr, /round 1\/1 done/);
    await waitUntil('the benchmark servers to exit', async () => !groupAlive(bench.pid), {
      timeoutMs: 10_000,
    });
  } finally {
    await bench.stop('SIGKILL');
  }
});

test('the rpc benchmark refuses a bad option with its usage and exit status 2, printing nothing on stdout', async () => {
  const bench = spawnProcess(process.execPath, [MAIN, 'rpc', '--rounds', '0'], { name: 'bench rpc' });
  try {
    const status = await bench.exited;
    assert.equal(status.code, 2, bench.describeOutput());
    assert.equal(bench.stdout, '');
    assert.match(bench.stderr, /--rounds needs a number/);
    assert.match(bench.stderr, /usage: npm run bench -- rpc/);
  } finally {
    await bench.stop('SIGKILL');
  }
});
