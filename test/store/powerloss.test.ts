/**
 * The power-loss crash mode (test/support/powerloss) on real processes and real files: what it
 * undoes and keeps, that the store's system calls really pass through it, and the store under
 * power cuts — including a broken build that the cuts catch and kill -9 alone does not.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { appendFileSync, lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SeededRandom } from '../../src/random.js';
import { type CutReport, type PowerLossLayer, parseLog, powerLossLayer } from '../support/powerloss/index.js';
import type { StoreReport } from '../support/powerloss/store-report.js';
import { runChecked, runCommand, type SpawnedProcess, spawnProcess } from '../support/process.js';
import { makeTempDir, removeTempDir } from '../support/tmp.js';
import { waitUntil } from '../support/wait.js';
import { loopSize, pattern } from './helpers.js';

const here = dirname(fileURLToPath(import.meta.url));
const storeChild = join(here, 'child.js');
const storeReport = join(here, '..', 'support', 'powerloss', 'store-report.js');
const layerModule = join(here, '..', 'support', 'powerloss', 'index.js');

/** A layer over DIR/root with its state in DIR/state; everything removed afterwards. */
async function withLayer<T>(
  label: string,
  fn: (layer: PowerLossLayer, root: string) => Promise<T>,
): Promise<T> {
  const dir = makeTempDir(`powerloss-${label}`);
  try {
    const root = join(dir, 'root');
    mkdirSync(root);
    const layer = await powerLossLayer(root, join(dir, 'state'));
    return await fn(layer, layer.root);
  } finally {
    removeTempDir(dir);
  }
}

/**
 * Runs `body` (ES module code; `fs` and `R`, the root, are in scope) in a node child under the
 * layer; the child kills itself with SIGKILL at the end, as the power goes.
 */
async function runAndDie(
  layer: PowerLossLayer,
  body: string,
  env: Record<string, string> = {},
): Promise<void> {
  const code = `import fs from 'node:fs';\nconst R = ${JSON.stringify(layer.root)};\n${body}\nprocess.kill(process.pid, 'SIGKILL');`;
  const r = await runCommand(process.execPath, ['--input-type=module', '-e', code], {
    env: { ...process.env, ...layer.env, ...env },
    timeoutMs: 60_000,
  });
  assert.equal(r.signal, 'SIGKILL', `the child died of SIGKILL\n${r.stdout}\n${r.stderr}`);
}

/** A fifo the layer holds the call named by CAIRN_POWERLOSS_GATE_AT at, until the child writes to it. */
async function makeGate(layer: PowerLossLayer): Promise<string> {
  const gate = join(layer.stateDir, 'gate');
  await runChecked('mkfifo', [gate]);
  return gate;
}

/** Child code for runAndDie (with parseLog imported) that waits, up to 30 s, for a record of `type` in the layer's log. */
function untilLogged(type: string, never: string): string {
  return `const deadline = Date.now() + 30000;
        while (!parseLog(fs.readFileSync(process.env.CAIRN_POWERLOSS_LOG)).records.some((r) => r.type === ${JSON.stringify(type)})) {
          if (Date.now() > deadline) throw new Error(${JSON.stringify(never)});
          await new Promise((r) => setTimeout(r, 5));
        }`;
}

const read = (path: string) => readFileSync(path, 'utf8');
const names = (path: string) => readdirSync(path).sort();

describe('power-loss layer', () => {
  it('reverts unsynced writes and size changes of existing files, keeps synced ones', async () => {
    await withLayer('content', async (layer, root) => {
      writeFileSync(join(root, 'a'), 'A'.repeat(100));
      writeFileSync(join(root, 'b'), 'b'.repeat(50));
      await runAndDie(
        layer,
        `const a = fs.openSync(R + '/a', 'r+');
        fs.writeSync(a, 'S'.repeat(20), 10);
        fs.writeSync(a, 'E'.repeat(30), 90);
        fs.fsyncSync(a);
        fs.writeSync(a, 'U'.repeat(10), 0);
        fs.writeSync(a, 'V'.repeat(50), 110);
        const b = fs.openSync(R + '/b', 'r+');
        fs.writeSync(b, 'x'.repeat(10), 45);
        fs.ftruncateSync(b, 20);`,
      );
      assert.equal(read(join(root, 'a')).length, 160, 'the process changed the file');
      assert.equal(read(join(root, 'b')), 'b'.repeat(20));
      const report = await layer.cut();
      assert.equal(read(join(root, 'a')), 'A'.repeat(10) + 'S'.repeat(20) + 'A'.repeat(60) + 'E'.repeat(30));
      assert.equal(read(join(root, 'b')), 'b'.repeat(50));
      assert.equal(report.writesReverted, 4);
      assert.equal(report.bytesReverted, 10 + 10 + 5 + 35);
      assert.equal(report.tornBytes, 0);
    });
  });

  it('removes names created in a directory that was not fsynced, even with their data synced', async () => {
    await withLayer('create', async (layer, root) => {
      mkdirSync(join(root, 'd'));
      await runAndDie(
        layer,
        `let fd = fs.openSync(R + '/f1', 'w');
        fs.writeSync(fd, 'one');
        fs.fsyncSync(fd);
        fd = fs.openSync(R + '/d/f2', 'w');
        fs.writeSync(fd, 'two');
        fs.fdatasyncSync(fd);
        fd = fs.openSync(R + '/d/f3', 'w');
        fs.writeSync(fd, 'three');
        fs.mkdirSync(R + '/d/sub');
        fs.writeFileSync(R + '/d/sub/g', 'gee');
        fs.fsyncSync(fs.openSync(R + '/d', 'r'));
        fs.mkdirSync(R + '/e');
        fd = fs.openSync(R + '/e/h', 'w');
        fs.writeSync(fd, 'aitch');
        fs.fsyncSync(fd);
        fs.fsyncSync(fs.openSync(R + '/e', 'r'));`,
      );
      const report = await layer.cut();
      assert.deepEqual(
        names(root),
        ['d'],
        'f1 (its directory never synced) and e (its entry never synced) are gone',
      );
      assert.deepEqual(names(join(root, 'd')), ['f2', 'f3', 'sub']);
      assert.equal(read(join(root, 'd', 'f2')), 'two', 'data and directory synced: kept');
      assert.equal(read(join(root, 'd', 'f3')), '', 'directory synced, data not: an empty file');
      assert.deepEqual(names(join(root, 'd', 'sub')), [], 'sub itself was never synced');
      assert.equal(report.filesRemoved, 2);
      assert.equal(report.dirsRemoved, 1);
    });
  });

  it('undoes unlinks and renames whose directory was not fsynced', async () => {
    await withLayer('names', async (layer, root) => {
      for (const d of ['A', 'B', 'B/sub']) mkdirSync(join(root, d));
      const files = { 'A/s': 's', 'A/r': 'r', 'B/u': 'u', 'B/r1': 'r1', 'B/t': 't-old', 'B/x': 'x-new' };
      for (const [p, content] of Object.entries(files)) writeFileSync(join(root, p), content);
      await runAndDie(
        layer,
        `fs.unlinkSync(R + '/A/s');
        fs.renameSync(R + '/A/r', R + '/A/r2');
        fs.fsyncSync(fs.openSync(R + '/A', 'r'));
        fs.unlinkSync(R + '/B/u');
        fs.renameSync(R + '/B/r1', R + '/B/r2');
        fs.renameSync(R + '/B/x', R + '/B/t');
        fs.rmdirSync(R + '/B/sub');`,
      );
      assert.deepEqual(names(join(root, 'B')), ['r2', 't']);
      const report = await layer.cut();
      assert.deepEqual(names(join(root, 'A')), ['r2'], 'synced directory: unlink and rename stay');
      assert.deepEqual(names(join(root, 'B')), ['r1', 'sub', 't', 'u', 'x']);
      for (const p of ['B/u', 'B/r1', 'B/t', 'B/x'])
        assert.equal(read(join(root, p)), files[p as keyof typeof files]);
      assert.ok(lstatSync(join(root, 'B', 'sub')).isDirectory());
      assert.equal(report.entriesRestored, 2);
      assert.equal(report.renamesUndone, 2);
      assert.deepEqual(readdirSync(join(layer.stateDir, 'limbo')), [], 'limbo is emptied');
    });
  });

  it('reverts a write logged after a sync began, though the sync ended after it', async () => {
    await withLayer('sync-began', async (layer, root) => {
      writeFileSync(join(root, 'f'), 'o'.repeat(32));
      const gate = await makeGate(layer);
      // The child's fsync waits at the gate after its begin record; meanwhile the child sees the
      // begin in the log, writes LATE, then opens the gate; the fsync completes, and the power goes.
      await runAndDie(
        layer,
        `const { parseLog } = await import(${JSON.stringify(layerModule)});
        const fd = fs.openSync(R + '/f', 'r+');
        fs.writeSync(fd, 'early', 0);
        const synced = new Promise((resolve, reject) => fs.fsync(fd, (e) => (e ? reject(e) : resolve())));
        ${untilLogged('sync-begin', 'the sync never began')}
        fs.writeSync(fd, 'LATE', 20);
        fs.writeFileSync(${JSON.stringify(gate)}, 'x');
        await synced;`,
        { CAIRN_POWERLOSS_GATE: gate, CAIRN_POWERLOSS_GATE_AT: 'sync' },
      );
      const types = parseLog(readFileSync(layer.logPath))
        .records.filter((r) => r.type !== 'write' || r.off === 20 || r.off === 0)
        .map((r) => (r.type === 'write' ? `write@${r.off}` : r.type));
      assert.deepEqual(types, ['write@0', 'sync-begin', 'write@20', 'sync-end']);
      assert.equal(read(join(root, 'f')), `early${'o'.repeat(15)}LATE${'o'.repeat(8)}`);
      await layer.cut();
      assert.equal(read(join(root, 'f')), `early${'o'.repeat(27)}`);
    });
  });

  it('reverts a write that was in flight when a sync began, though logged before it', async () => {
    await withLayer('in-flight', async (layer, root) => {
      writeFileSync(join(root, 'f'), 'o'.repeat(32));
      const gate = await makeGate(layer);
      // The write waits at the gate in libuv's pool once its record is logged; the main thread
      // fsyncs meanwhile, then opens the gate: the write lands after the sync that followed its record.
      await runAndDie(
        layer,
        `const { parseLog } = await import(${JSON.stringify(layerModule)});
        const fd = fs.openSync(R + '/f', 'r+');
        const written = new Promise((resolve, reject) => fs.write(fd, 'INFLIGHT', 4, (e) => (e ? reject(e) : resolve())));
        ${untilLogged('write', 'the write was never logged')}
        fs.fsyncSync(fd);
        fs.writeFileSync(${JSON.stringify(gate)}, 'x');
        await written;`,
        { CAIRN_POWERLOSS_GATE: gate, CAIRN_POWERLOSS_GATE_AT: 'write' },
      );
      const { records } = parseLog(readFileSync(layer.logPath));
      const begin = records.find((r) => r.type === 'sync-begin');
      const write = records.find((r) => r.type === 'write');
      assert.ok(
        begin?.type === 'sync-begin' && write !== undefined && begin.exceptions.has(write.id),
        'the sync names the write in flight',
      );
      assert.equal(read(join(root, 'f')), `oooo${'INFLIGHT'}${'o'.repeat(20)}`);
      await layer.cut();
      assert.equal(read(join(root, 'f')), 'o'.repeat(32));
    });
  });

  it('follows descriptors inherited across fork and exec', async () => {
    await withLayer('exec', async (layer, root) => {
      writeFileSync(join(root, 'f'), 'o'.repeat(16));
      await runAndDie(
        layer,
        `const { spawnSync } = await import('node:child_process');
        const fd = fs.openSync(R + '/f', 'r+');
        const r = spawnSync(process.execPath, ['-e', "require('fs').writeSync(3, 'inherited')"], { stdio: ['ignore', 'inherit', 'inherit', fd] });
        if (r.status !== 0) throw new Error('the grandchild failed');`,
      );
      const { records } = parseLog(readFileSync(layer.logPath));
      assert.deepEqual(
        records.filter((r) => r.type === 'write').map((r) => r.type === 'write' && r.path),
        [join(root, 'f')],
        "the grandchild's write through the inherited descriptor is logged",
      );
      assert.equal(read(join(root, 'f')), `inherited${'o'.repeat(7)}`);
      await layer.cut();
      assert.equal(read(join(root, 'f')), 'o'.repeat(16));
    });
  });

  it('keeps writes through an O_DSYNC descriptor, over and beyond unsynced ones', async () => {
    await withLayer('dsync', async (layer, root) => {
      writeFileSync(join(root, 'f'), 'z'.repeat(40));
      await runAndDie(
        layer,
        `const d = fs.openSync(R + '/f', fs.constants.O_RDWR | fs.constants.O_DSYNC);
        const p = fs.openSync(R + '/f', 'r+');
        fs.writeSync(d, 'DSYNC', 0);
        fs.writeSync(p, 'plain', 10);
        fs.writeSync(d, 'QQ', 12);
        fs.writeSync(d, 'END', 40);
        fs.writeSync(p, 'tail', 43);`,
      );
      const report = await layer.cut();
      assert.equal(read(join(root, 'f')), `DSYNC${'z'.repeat(7)}QQ${'z'.repeat(26)}END`);
      assert.equal(report.writesReverted, 2);
    });
  });

  it('ignores a torn last record: the change it announced had not happened', async () => {
    await withLayer('torn', async (layer, root) => {
      writeFileSync(join(root, 'f'), 'old');
      await runAndDie(layer, `fs.writeFileSync(R + '/f', 'new!');`);
      const whole = readFileSync(layer.logPath);
      // The start of a record header, as a kill in the middle of an append leaves it.
      appendFileSync(layer.logPath, whole.subarray(0, 20));
      const report: CutReport = await layer.cut();
      assert.equal(report.tornBytes, 20);
      assert.equal(report.records, parseLog(whole).records.length);
      assert.equal(read(join(root, 'f')), 'old');
      assert.equal(readFileSync(layer.logPath).length, 0, 'the log is emptied');
    });
  });

  it('serves a boot id of its own, new after each cut, so LMDB sees a reboot', async () => {
    await withLayer('boot-id', async (layer) => {
      const bootId = async () => {
        const r = await runChecked(
          process.execPath,
          [
            '-e',
            "process.stdout.write(require('fs').readFileSync('/proc/sys/kernel/random/boot_id', 'utf8'))",
          ],
          {
            env: { ...process.env, ...layer.env },
          },
        );
        return r.stdout.trim();
      };
      const real = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
      const before = await bootId();
      assert.match(before, /^[0-9a-f]{8}-/);
      await layer.cut();
      const after = await bootId();
      assert.notEqual(before, real);
      // lmdb-js parses the hex digits before the first '-'.
      assert.notEqual(after.split('-')[0], before.split('-')[0]);
    });
  });

  it("sees every write and sync the store makes: strace's calls on the root match the log, no io_uring", async () => {
    await withLayer('strace', async (layer, root) => {
      const trace = join(layer.stateDir, 'trace');
      const r = await runCommand(
        'strace',
        [
          '-f',
          '-y',
          '-qq',
          '-s',
          '0',
          '-o',
          trace,
          '-e',
          'trace=write,pwrite64,writev,pwritev,pwritev2,fsync,fdatasync,io_uring_setup',
          ...Object.entries(layer.env).flatMap(([k, v]) => ['-E', `${k}=${v}`]),
          process.execPath,
          storeChild,
          'strace',
          root,
        ],
        { timeoutMs: 90_000 },
      );
      assert.equal(r.code, 0, `child failed:\n${r.stdout}\n${r.stderr}`);
      const calls: string[] = [];
      for (const line of readFileSync(trace, 'utf8').split('\n')) {
        const m = /^\d+\s+(\w+)\(\d+<([^>]*)>/.exec(line);
        if (m && (m[2] === root || m[2].startsWith(`${root}/`)) && !m[2].endsWith('-lock')) calls.push(m[1]);
      }
      const traceWrites = calls.filter((c) => !c.includes('sync')).length;
      const traceSyncs = calls.filter((c) => c.includes('sync')).length;
      const { records } = parseLog(readFileSync(layer.logPath));
      assert.ok(
        traceWrites > 10 && traceSyncs > 3,
        `the store wrote and synced (${traceWrites}, ${traceSyncs})`,
      );
      assert.equal(
        records.filter((x) => x.type === 'write').length,
        traceWrites,
        'one write record per write',
      );
      assert.equal(
        records.filter((x) => x.type === 'sync-begin').length,
        traceSyncs,
        'one sync record per sync',
      );
      assert.doesNotMatch(readFileSync(trace, 'utf8'), /io_uring_setup/);
      await layer.cut();
    });
  });
});

interface LoopResult {
  /** Acknowledged writes missing or wrong after a restart. */
  lost: string[];
  /** How many cycles lost at least one acknowledged write. */
  cyclesWithLoss: number;
  /** Files present that were never written, or whose content is not what was written. */
  anomalies: string[];
  reports: CutReport[];
}

const logRecords = (layer: PowerLossLayer) => parseLog(readFileSync(layer.logPath)).records.length;

/** Whether every thread of `pid` is stopped: a thread in a system call stops only when it returns. */
function allStopped(pid: number): boolean {
  return readdirSync(`/proc/${pid}/task`).every((t) => {
    const stat = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
    return /^[tT]$/.test(stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3));
  });
}

/**
 * Stops the writer once at least `more` records have joined the log and some change in it is
 * unsynced, so that the kill lands where there is something to lose: the writer is stopped
 * (every thread) before the log is judged, and killed stopped.
 */
async function killWhenUnsynced(writer: SpawnedProcess, layer: PowerLossLayer, more: number): Promise<void> {
  let target = logRecords(layer) + more;
  await waitUntil(
    'an unsynced change in the log',
    async () => {
      const n = logRecords(layer);
      if (n < target) return false;
      writer.signal('SIGSTOP');
      await waitUntil('the writer stopped', async () => allStopped(writer.pid), { intervalMs: 1 });
      if (layer.unsynced() > 0) return true;
      writer.signal('SIGCONT');
      target = n + 1;
      return false;
    },
    { timeoutMs: 90_000, intervalMs: 2 },
  );
  writer.signal('SIGKILL');
  await writer.exited;
}

/**
 * Cycles of: the durable write loop of test/store/child.ts under the layer (with `failpoints`),
 * killed with SIGKILL at a seeded moment after a seeded number of acknowledgements, then (when
 * `cut`) the power cut — dropping every unsynced change on even cycles, a seeded subset on odd
 * ones — then a fresh child that opens the store and reports every file. Every write
 * acknowledged in any cycle must be there, whole; nothing else may appear but whole files the
 * loop had begun.
 */
async function powerCutLoop(opts: {
  label: string;
  cycles: number;
  seed: number;
  cut: boolean;
  failpoints?: string;
}): Promise<LoopResult> {
  return withLayer(opts.label, async (layer, root) => {
    const rng = new SeededRandom(opts.seed);
    const result: LoopResult = { lost: [], cyclesWithLoss: 0, anomalies: [], reports: [] };
    const acked = new Set<number>();
    let begun = 0;
    for (let cycle = 0; cycle < opts.cycles; cycle++) {
      const writer = spawnProcess(process.execPath, [storeChild, 'durable-loop', root], {
        name: `durable-loop cycle ${cycle}`,
        env: { ...process.env, ...layer.env, CAIRN_FAILPOINTS: opts.failpoints ?? '' },
      });
      try {
        await writer.waitForLine('ready', 60_000);
        await writer.waitForLine(`ack ${1 + rng.int(5)}`, 90_000);
        await killWhenUnsynced(writer, layer, rng.int(30));
      } finally {
        writer.signal('SIGKILL');
        await writer.exited;
      }
      for (const line of writer.stdout.split('\n')) {
        const n = /^ack (\d+)$/.exec(line)?.[1];
        if (n !== undefined) acked.add(Number(n));
      }
      begun = Math.max(begun, ...acked) + 1;
      if (opts.cut)
        result.reports.push(await layer.cut(cycle % 2 === 1 ? { seed: opts.seed * 1000 + cycle } : {}));

      const r = await runCommand(process.execPath, [storeReport, root], {
        env: { ...process.env, ...layer.env },
        timeoutMs: 90_000,
      });
      assert.equal(r.code, 0, `cycle ${cycle}: the store opens\n${r.stderr}`);
      const report = JSON.parse(r.stdout) as StoreReport;
      const byN = new Map(report.files.map((f) => [f.n, f]));
      const expected = (n: number) =>
        createHash('sha256')
          .update(pattern(n, loopSize(n)))
          .digest('hex');
      const lostBefore = result.lost.length;
      for (const n of acked) {
        const f = byN.get(n);
        if (!f) result.lost.push(`cycle ${cycle}: acknowledged file ${n} has no record`);
        else if (f.error !== undefined)
          result.lost.push(`cycle ${cycle}: acknowledged file ${n}: ${f.error}`);
        else if (f.sha256 !== expected(n))
          result.lost.push(`cycle ${cycle}: acknowledged file ${n}: wrong content`);
      }
      if (result.lost.length > lostBefore) result.cyclesWithLoss++;
      for (const f of report.files) {
        if (acked.has(f.n)) continue;
        const whole =
          f.n <= begun &&
          f.sha256 === expected(f.n) &&
          JSON.stringify(f.value) === JSON.stringify({ size: loopSize(f.n) });
        if (!whole) result.anomalies.push(`cycle ${cycle}: unacknowledged file ${f.n}: ${JSON.stringify(f)}`);
      }
    }
    return result;
  });
}

describe('store under power loss', () => {
  it('keeps every acknowledged durable write through power cuts at seeded moments; LMDB opens every time', async () => {
    const r = await powerCutLoop({ label: 'store', cycles: 8, seed: 5, cut: true });
    assert.deepEqual(r.lost, []);
    assert.deepEqual(r.anomalies, []);
    for (const x of r.reports) {
      const touched =
        x.writesReverted +
        x.writesKept +
        x.filesRemoved +
        x.dirsRemoved +
        x.entriesRestored +
        x.renamesUndone;
      assert.ok(touched > 0, `every cut found unsynced changes: ${JSON.stringify(x)}`);
    }
  });

  it('catches a build that acknowledges before syncing, which kill -9 alone does not', async () => {
    const broken = 'store.ack-before-sync';
    const cut = await powerCutLoop({
      label: 'broken-cut',
      cycles: 3,
      seed: 7,
      cut: true,
      failpoints: broken,
    });
    // Each cycle acknowledges file 1 (a block) at least: the broken build never syncs its block or
    // the block's directory entry, so every cut takes it.
    assert.equal(cut.cyclesWithLoss, 3, `every power cut loses acknowledged writes: ${cut.lost.join('; ')}`);
    const kill = await powerCutLoop({
      label: 'broken-kill',
      cycles: 3,
      seed: 7,
      cut: false,
      failpoints: broken,
    });
    assert.deepEqual(kill.lost, [], 'kill -9 alone loses nothing: the page cache survives it');
    assert.deepEqual(kill.anomalies, []);
  });
});
