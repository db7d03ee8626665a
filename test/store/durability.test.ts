/**
 * Durability seen from outside the process: the order of the store's write and fsync calls
 * under strace, and what a kill -9 in the middle of durable writes leaves.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runCommand } from '../support/process.js';
import { makeTempDir, removeTempDir } from '../support/tmp.js';
import { killLoopAndCheck } from './helpers.js';

const child = join(dirname(fileURLToPath(import.meta.url)), 'child.js');

interface Call {
  pid: string;
  name: string;
  /** The call's text with its arguments (fd paths from strace -y). */
  args: string;
  result: string;
  /** Line indexes where the call entered and returned (strace interleaves threads). */
  start: number;
  end: number;
}

/** Parses `strace -f -y` output into calls, joining `<unfinished ...>` with `<... resumed>`. */
function parseTrace(text: string): Call[] {
  const calls: Call[] = [];
  const pending = new Map<string, Call>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const m = /^(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const [, pid, rest] = m;
    const resumed = /^<\.\.\. (\w+) resumed>(.*?)(?:= (.*))?$/.exec(rest);
    if (resumed) {
      const c = pending.get(`${pid}:${resumed[1]}`);
      if (c) {
        c.args += resumed[2];
        c.result = resumed[3] ?? '';
        c.end = i;
        pending.delete(`${pid}:${resumed[1]}`);
      }
      continue;
    }
    const call = /^(\w+)\((.*?)(?: <unfinished \.\.\.>|\) = (.*))$/.exec(rest);
    if (!call) continue;
    const c: Call = { pid, name: call[1], args: call[2], result: call[3] ?? '', start: i, end: i };
    if (rest.endsWith('<unfinished ...>')) pending.set(`${pid}:${c.name}`, c);
    calls.push(c);
  }
  return calls;
}

/** The fd path strace -y printed for a call's first argument. */
function fdPath(c: Call): string {
  return /^\d+<([^>]*)>/.exec(c.args)?.[1] ?? '';
}

const isWrite = (c: Call) => ['write', 'pwrite64', 'pwritev', 'pwritev2', 'writev'].includes(c.name);
const isSync = (c: Call) => c.name === 'fsync' || c.name === 'fdatasync';

/** Runs the child under `strace -f -y` (writes, syncs, opens) and parses what it did. */
async function traceChild(
  dir: string,
  args: string[],
): Promise<{ calls: Call[]; say: (text: string) => Call }> {
  const traceFile = join(dir, 'trace.txt');
  const r = await runCommand(
    'strace',
    [
      '-f',
      '-y',
      '-s',
      '64',
      '-o',
      traceFile,
      '-e',
      'trace=write,pwrite64,pwritev,pwritev2,writev,fsync,fdatasync,msync,sync_file_range,rename,openat',
      process.execPath,
      child,
      ...args,
    ],
    { timeoutMs: 60_000 },
  );
  assert.equal(r.code, 0, `child failed:\n${r.stdout}\n${r.stderr}`);
  const calls = parseTrace(readFileSync(traceFile, 'utf8'));
  // The child's announcements: writes to its stdout, made by its main thread.
  const say = (text: string) => {
    const c = calls.find((x) => x.name === 'write' && x.args.startsWith('1<') && x.args.includes(text));
    assert.ok(c, `the child's "${text}" line is in the trace`);
    return c;
  };
  return { calls, say };
}

describe('store durability', () => {
  for (const path of ['journal', 'lmdb'] as const) {
    it(`strace (durable writes on the ${path} path): block data and its directory are fsynced before the ${path === 'journal' ? 'journal entry is written and fdatasynced' : 'LMDB transaction commits and flushes'}, and the ack comes after both`, async () => {
      const dir = makeTempDir('store-strace');
      const data = join(dir, 'data');
      try {
        const { calls, say } = await traceChild(dir, ['strace', data, path]);
        const mdb = join(data, 'meta', 'data.mdb');
        const blockOpen = (after: number) => {
          const c = calls.find(
            (x) =>
              x.name === 'openat' &&
              x.start > after &&
              x.args.includes('/blocks/') &&
              x.args.includes('O_CREAT'),
          );
          assert.ok(c, 'a new block file is created');
          return /= \d+<([^>]*)>/.exec(` = ${c.result}`)?.[1] as string;
        };
        // LMDB's commit writes pages through one descriptor and its meta page through one opened O_DSYNC.
        const dsyncFds = new Set(
          calls
            .filter((c) => c.name === 'openat' && c.args.includes(mdb) && c.args.includes('O_DSYNC'))
            .map((c) => /^(\d+)/.exec(c.result)?.[1]),
        );
        assert.ok(dsyncFds.size > 0, "LMDB's O_DSYNC descriptor for meta pages is opened");
        const isMetaSyncWrite = (c: Call) => isWrite(c) && dsyncFds.has(/^(\d+)</.exec(c.args)?.[1]);

        // 1. The durable (FILE_SYNC) write.
        const begin = say('begin durable');
        const ack = say('acknowledged durable');
        const block = blockOpen(begin.end);
        const blockWrites = calls.filter((c) => isWrite(c) && fdPath(c) === block);
        assert.ok(blockWrites.length > 0, 'the block data is written');
        const blockSync = calls.find((c) => c.name === 'fdatasync' && fdPath(c) === block);
        assert.ok(blockSync, 'the block file is fdatasynced');
        for (const w of blockWrites)
          assert.ok(w.end < blockSync.start, 'block writes end before its fdatasync');
        const dirSync = calls.find(
          (c) => c.name === 'fsync' && fdPath(c) === dirname(block) && c.start > begin.end,
        );
        assert.ok(dirSync, "the block's directory is fsynced (its new entry)");
        const journal = join(data, 'meta', 'journal');
        const lmdbWrites = calls.filter(
          (c) => isWrite(c) && fdPath(c) === mdb && c.start > begin.end && c.end < ack.start,
        );
        const jWrites = calls.filter(
          (c) => isWrite(c) && fdPath(c) === journal && c.start > begin.end && c.end < ack.start,
        );
        if (path === 'journal') {
          assert.equal(jWrites.length, 1, 'one journal entry carries the write');
          assert.ok(
            blockSync.end < jWrites[0].start,
            'block fdatasync returns before the entry that references it is written',
          );
          assert.ok(dirSync.end < jWrites[0].start, 'directory fsync returns before the entry is written');
          const jSync = calls.find(
            (c) =>
              c.name === 'fdatasync' &&
              fdPath(c) === journal &&
              c.start > jWrites[0].end &&
              c.end < ack.start,
          );
          assert.ok(jSync, 'the journal is fdatasynced after the entry and before the ack');
          assert.equal(
            lmdbWrites.length,
            0,
            'LMDB writes nothing before the ack: the journal carries the write',
          );
        } else {
          assert.equal(jWrites.length, 0, 'nothing is journaled on the LMDB path');
          assert.ok(lmdbWrites.length > 0, 'LMDB writes the transaction before the ack');
          const firstLmdb = Math.min(...lmdbWrites.map((c) => c.start));
          assert.ok(
            blockSync.end < firstLmdb,
            'block fdatasync returns before LMDB writes the transaction that references it',
          );
          assert.ok(dirSync.end < firstLmdb, 'directory fsync returns before LMDB writes the transaction');
          const lmdbSync = calls.find(
            (c) => isSync(c) && fdPath(c) === mdb && c.start > firstLmdb && c.end < ack.start,
          );
          assert.ok(lmdbSync, 'LMDB fdatasyncs its data file after the transaction and before the ack');
          const metaWrite = calls.find(
            (c) => isMetaSyncWrite(c) && c.start > lmdbSync.end && c.end < ack.start,
          );
          assert.ok(metaWrite, 'LMDB writes its meta page (O_DSYNC) after the data sync and before the ack');
        }

        // 2. The UNSTABLE write: acknowledged once its block is written to the OS and its entry
        // to the journal, with no fsync of anything and no LMDB transaction in between.
        const applied = say('applied');
        const ackUnstable = say('acknowledged unstable');
        const ublock = blockOpen(applied.end);
        const ublockWrite = calls.find(
          (c) => isWrite(c) && fdPath(c) === ublock && c.end < ackUnstable.start,
        );
        assert.ok(ublockWrite, 'the unstable block is written before the ack');
        assert.ok(
          !calls.some((c) => isSync(c) && fdPath(c) === ublock && c.start < ackUnstable.start),
          'no fsync of the unstable block before its ack (the test can tell the two apart)',
        );
        const jWrite = calls.find(
          (c) => isWrite(c) && fdPath(c) === journal && c.start > applied.end && c.end < ackUnstable.start,
        );
        assert.ok(jWrite, 'the journal entry is written before the ack');
        assert.ok(ublockWrite.end < jWrite.start, 'after the block it names');
        assert.ok(
          !calls.some((c) => isSync(c) && c.start > applied.end && c.start < ackUnstable.start),
          'nothing is fsynced between the durable write being applied and the unstable ack',
        );
        assert.ok(
          !calls.some(
            (c) => isWrite(c) && fdPath(c) === mdb && c.start > applied.end && c.start < ackUnstable.start,
          ),
          'LMDB writes nothing before the unstable ack: the journal carries the write',
        );
        assert.ok(
          !calls.some((c) => isSync(c) && fdPath(c) === journal && c.start > applied.end),
          'the journal is not fsynced for an unstable write or its commit (LMDB makes those entries durable)',
        );

        // 3. COMMIT: the block is synced, then LMDB flushes, then the ack.
        const ackCommit = say('acknowledged commit');
        const usync = calls.find(
          (c) => c.name === 'fdatasync' && fdPath(c) === ublock && c.start > ackUnstable.end,
        );
        assert.ok(
          usync && usync.end < ackCommit.start,
          'commit fdatasyncs the unstable block before its ack',
        );
        const udir = calls.find(
          (c) => c.name === 'fsync' && fdPath(c) === dirname(ublock) && c.start > ackUnstable.end,
        );
        assert.ok(udir && udir.end < ackCommit.start, "commit fsyncs the block's directory before its ack");
        const cLmdb = calls.find(
          (c) => isWrite(c) && fdPath(c) === mdb && c.start > usync.end && c.end < ackCommit.start,
        );
        assert.ok(
          cLmdb,
          'the commit transaction (with the journaled size and times) is written after the block sync',
        );
        const cSync = calls.find(
          (c) => isSync(c) && fdPath(c) === mdb && c.start > cLmdb.end && c.end < ackCommit.start,
        );
        assert.ok(cSync, 'and flushed before the ack');
      } finally {
        removeTempDir(dir);
      }
    });
  }

  for (const [maxMs, where] of [
    ['Infinity', 'on the event loop'],
    ['0', 'in the thread pool (eventLoopSyncMaxMs 0)'],
  ] as const) {
    it(`strace: a durable write alone in the store has the journal fdatasynced ${where}; sixteen at once share fewer fdatasyncs, in the thread pool`, async () => {
      const dir = makeTempDir('store-strace');
      try {
        const { calls, say } = await traceChild(dir, ['strace-sync', join(dir, 'data'), maxMs]);
        const journal = join(dir, 'data', 'meta', 'journal');
        const syncsBetween = (a: Call, b: Call) =>
          calls.filter(
            (c) => c.name === 'fdatasync' && fdPath(c) === journal && c.start > a.end && c.end < b.start,
          );
        const begin = say('begin alone');
        const mainThread = begin.pid;
        const endAlone = say('end alone');
        const alone = syncsBetween(begin, endAlone);
        assert.equal(alone.length, 5, 'one journal fdatasync per lone durable write');
        for (const c of alone)
          assert.equal(c.pid === mainThread, maxMs === 'Infinity', `fdatasync ${where} (thread ${c.pid})`);
        const together = syncsBetween(endAlone, say('end together'));
        assert.ok(
          together.length >= 1 && together.length < 16,
          `group commit: ${together.length} fdatasyncs for 16 writes`,
        );
        assert.ok(
          together.some((c) => c.pid !== mainThread),
          'with other writes under way the fdatasync goes to the thread pool',
        );
        if (maxMs === '0')
          assert.ok(
            together.every((c) => c.pid !== mainThread),
            'every one of them',
          );
      } finally {
        removeTempDir(dir);
      }
    });
  }

  it('kill -9 during durable writes: the store opens and every acknowledged write is there', async () => {
    // Kill while writing, at a point that differs per round.
    await killLoopAndCheck(child, 'durable-loop', 'store-kill', (round) => 4 + round * 3);
  });
});
