/**
 * A store in a child process, for tests that must watch it from outside (strace) or kill it
 * (kill -9). Not a test file itself. Usage: node child.js MODE DIR
 *   durable-loop: durable writes of files of varied sizes forever, printing `ack N` after each
 *   strace [lmdb]: one durable write of a new file (on the LMDB path with `lmdb`), the background
 *     apply of what it journaled, one unstable write, one commit, each announced
 *   strace-sync MAX_MS: (eventLoopSyncMaxMs MAX_MS) five durable writes one after another, then
 *     sixteen at once, each batch announced
 *   unstable-loop: unstable writes of files of varied sizes forever, printing `ack N` after each
 *   unstable-hold COUNT: COUNT unstable writes (file N gets loopSize(N) bytes and an inode
 *     record), then an unstable overwrite of the start of file 1 with pattern(1000, 5000); prints
 *     `held` and blocks its event loop, so the last entries are in the journal only and stay
 *     there until the parent kills it
 */
import { type LmdbStore, openStore } from '../../src/store/index.js';
import { loopSize, pattern } from './helpers.js';

const [mode, dir] = process.argv.slice(2);

function say(line: string): Promise<void> {
  return new Promise((resolve) => process.stdout.write(`${line}\n`, () => resolve()));
}

async function main(): Promise<void> {
  const durableJournal = !(mode === 'strace' && process.argv[4] === 'lmdb');
  const eventLoopSyncMaxMs = mode === 'strace-sync' ? Number(process.argv[4]) : undefined;
  const store = (await openStore({ dir, durableJournal, eventLoopSyncMaxMs })) as LmdbStore;
  if (mode === 'durable-loop' || mode === 'unstable-loop') {
    await say('ready');
    for (let n = 1; ; n++) {
      const size = loopSize(n);
      await store.writeFile({
        file: n,
        offset: 0,
        data: pattern(n, size),
        stable: mode === 'durable-loop',
        update: (tx) => tx.put(['inode', n], { size }),
      });
      await say(`ack ${n}`);
    }
  } else if (mode === 'unstable-hold') {
    const count = Number(process.argv[4]);
    for (let n = 1; n <= count; n++) {
      const size = loopSize(n);
      await store.writeFile({
        file: n,
        offset: 0,
        data: pattern(n, size),
        stable: false,
        update: (tx) => tx.put(['inode', n], { size }),
      });
    }
    await store.writeFile({
      file: 1,
      offset: 0,
      data: pattern(1000, 5000),
      stable: false,
      update: (tx) => tx.put(['inode', 1], { size: Math.max(loopSize(1), 5000), over: true }),
    });
    await say('held');
    // The background apply runs on a later turn of the event loop: block it, so that the
    // journal is the only place the last writes are (until the parent's kill -9).
    for (;;) {}
  } else if (mode === 'strace') {
    // Warm up (the first transactions and the block directories), so the traced writes stand alone.
    await store.writeFile({ file: 100, offset: 0, data: pattern(100, 200_000), stable: true });
    await say('begin durable');
    await store.writeFile({
      file: 1,
      offset: 0,
      data: pattern(1, 300_000),
      stable: true,
      update: (tx) => tx.put(['inode', 1], { size: 300_000 }),
    });
    await say('acknowledged durable');
    // Until the journaled durable write is in LMDB, so that the unstable write's trace has no
    // apply in it.
    while (store.journalStats().pendingEntries > 0) await new Promise((r) => setImmediate(r));
    await store.sync();
    await say('applied');
    await store.writeFile({
      file: 2,
      offset: 0,
      data: pattern(2, 300_000),
      stable: false,
      update: (tx) => tx.put(['inode', 2], { size: 300_000 }),
    });
    await say('acknowledged unstable');
    await store.commitFile(2);
    await say('acknowledged commit');
    await store.close();
  } else if (mode === 'strace-sync') {
    const put = (n: number) => store.write((tx) => tx.put(['n', n], { n }), { durable: true });
    await put(0);
    await say('begin alone');
    for (let n = 1; n <= 5; n++) await put(n);
    await say('end alone');
    await Promise.all(Array.from({ length: 16 }, (_, i) => put(100 + i)));
    await say('end together');
    await store.close();
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
