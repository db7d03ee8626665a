// The node's clocks (src/clock.ts): CAIRN_CLOCK_SKEW parsed or refused, skewed clocks against a
// base clock the test moves by hand, and the skew reaching what runs on it: file timestamps, and
// the membership protocol's timers in a real GossipNode.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  ClockSkewError,
  formatClockSkew,
  NO_SKEW,
  nodeClock,
  parseClockSkew,
  skewedClock,
} from '../src/clock.js';
import { GossipNode } from '../src/cluster/gossip.js';
import { CairnNode } from '../src/node/node.js';
import { runCommand } from './support/process.js';
import { withTempDir } from './support/tmp.js';
import { waitUntil } from './support/wait.js';

const CLI = join(import.meta.dirname, '..', 'src', 'cli', 'main.js');

test('clock skew: offset and rate parse, either alone, with signs and spaces; empty is no skew', () => {
  assert.deepEqual(parseClockSkew('offset=+30000,rate=1.05'), { offsetMs: 30000, rate: 1.05 });
  assert.deepEqual(parseClockSkew(' rate = 0.5 , offset=-1.5e3 '), { offsetMs: -1500, rate: 0.5 });
  assert.deepEqual(parseClockSkew('offset=250'), { offsetMs: 250, rate: 1 });
  assert.deepEqual(parseClockSkew('rate=2'), { offsetMs: 0, rate: 2 });
  assert.deepEqual(parseClockSkew(undefined), NO_SKEW);
  assert.deepEqual(parseClockSkew('  '), NO_SKEW);
  const s = { offsetMs: -42.5, rate: 0.9 };
  assert.deepEqual(parseClockSkew(formatClockSkew(s)), s);
});

test('clock skew: bad values are refused with CLOCK_SKEW and say what is wrong', () => {
  const bad: [string, RegExp][] = [
    ['offset', /not KEY=VALUE/],
    ['offset=', /not KEY=VALUE/],
    ['offset=1h', /decimal number/],
    ['offset=0x10', /decimal number/],
    ['rate=Infinity', /decimal number/],
    ['rate=NaN', /decimal number/],
    ['rate=0', /rate must be from 0.1 to 10/],
    ['rate=-1', /rate must be from/],
    ['rate=11', /rate must be from/],
    ['offset=1e13', /beyond/],
    ['offset=1,offset=2', /offset given twice/],
    ['rate=1,rate=1', /rate given twice/],
    ['drift=1', /unknown key 'drift'/],
    ['offset=1,,rate=1', /not KEY=VALUE/],
  ];
  for (const [text, why] of bad) {
    assert.throws(
      () => parseClockSkew(text),
      (e: unknown) => e instanceof ClockSkewError && e.code === 'CLOCK_SKEW' && why.test(e.message),
      text,
    );
  }
  assert.throws(() => nodeClock({ CAIRN_CLOCK_SKEW: 'rate=fast' }), ClockSkewError);
});

test('skewed clocks: the wall clock is offset and both run at the rate; timers scale by it', () => {
  const base = { wall: 1_700_000_000_000, mono: 5_000 };
  const clocks = { wallMs: () => base.wall, monoMs: () => base.mono };
  const c = skewedClock({ offsetMs: 30_000, rate: 1.5 }, clocks);
  assert.equal(c.wallMs(), 1_700_000_030_000);
  assert.equal(c.monoMs(), 5_000);
  base.wall += 1000;
  base.mono += 1000;
  assert.equal(c.wallMs(), 1_700_000_031_500);
  assert.equal(c.monoMs(), 6_500);
  assert.equal(c.realDelay(300), 200);
  // A step of the real wall clock shows through; the monotonic clock never sees it.
  base.wall -= 10_000;
  assert.equal(c.wallMs(), 1_700_000_031_500 - 15_000);
  assert.equal(c.monoMs(), 6_500);

  const slow = skewedClock({ offsetMs: 0, rate: 0.5 }, clocks);
  const m0 = base.mono;
  base.mono += 400;
  assert.equal(slow.monoMs(), m0 + 200);
  assert.equal(slow.realDelay(100), 200);

  const exact = skewedClock(NO_SKEW, clocks);
  assert.equal(exact.wallMs(), base.wall);
  assert.equal(exact.realDelay(123), 123);
});

test('cairn up with a bad CAIRN_CLOCK_SKEW refuses to start, naming the variable', async () => {
  await withTempDir('clock-skew-up', async (dir) => {
    const r = await runCommand(process.execPath, [CLI, 'up', '--data', dir], {
      env: { ...process.env, CAIRN_CLOCK_SKEW: 'offset=+30s' },
      timeoutMs: 20_000,
    });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /CAIRN_CLOCK_SKEW: offset must be a decimal number, not '\+30s'/);
  });
});

test('a node with a skewed clock stamps files with its own wall clock', async () => {
  await withTempDir('clock-skew-fs', async (dir) => {
    const hour = 3_600_000;
    const node = await CairnNode.start({
      dataDir: dir,
      rpcbindPort: 0,
      nfsPort: 0,
      cluster: false,
      clock: skewedClock({ offsetMs: hour, rate: 1 }),
    });
    try {
      const before = Date.now();
      const attr = await node.fs.ensureDir('/skewed');
      const mtimeMs = attr.mtime.s * 1000 + attr.mtime.ns / 1e6;
      assert.ok(
        mtimeMs >= before + hour - 1000 && mtimeMs <= Date.now() + hour + 1000,
        `mtime ${new Date(mtimeMs).toISOString()} is an hour ahead of ${new Date(before).toISOString()}`,
      );
    } finally {
      await node.stop();
    }
  });
});

test("membership timers run at the node's clock rate: a node at rate 3 probes about 3 times as often", async () => {
  await withTempDir('clock-skew-swim', async (dir) => {
    for (const d of ['fast', 'normal']) mkdirSync(join(dir, d));
    const config = { probeInterval: 200, probeTimeout: 100, gossipInterval: 100, pushPullInterval: 60_000 };
    const fast = new GossipNode({
      dataDir: join(dir, 'fast'),
      host: '127.0.0.1',
      port: 0,
      config,
      clock: skewedClock({ offsetMs: 0, rate: 3 }),
    });
    const nodes = [fast];
    try {
      await fast.start();
      const normal = new GossipNode({
        dataDir: join(dir, 'normal'),
        host: '127.0.0.1',
        port: 0,
        config,
        seeds: [fast.address],
      });
      nodes.push(normal);
      await normal.start();
      const sees = (a: GossipNode, b: GossipNode) => a.swim.stateOf(b.identity.nodeId) === 'alive';
      await waitUntil('the two nodes see each other', async () => sees(fast, normal) && sees(normal, fast));
      const probes = () => [fast.swim.counters.probes, normal.swim.counters.probes];
      const [f0, n0] = probes();
      await waitUntil('the normal node probes 15 times', async () => probes()[1] - n0 >= 15, {
        timeoutMs: 30_000,
      });
      const [f1, n1] = probes();
      const ratio = (f1 - f0) / (n1 - n0);
      // 3 exactly on an idle machine; a loaded one delays the fast node's timers more often.
      assert.ok(
        ratio > 2 && ratio < 4,
        `the fast node probed ${f1 - f0} times to the normal one's ${n1 - n0}`,
      );
    } finally {
      await Promise.all(nodes.map((n) => n.kill()));
    }
  });
});
