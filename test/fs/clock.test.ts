// File timestamps under clock skew: a namespace reopened on a clock an hour behind (a restart with
// CAIRN_CLOCK_SKEW, an NTP step) still hands out mtimes and ctimes later than every earlier one.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { skewedClock } from '../../src/clock.js';
import { FileSystem } from '../../src/fs/filesystem.js';
import { ROOT_INO, type Time } from '../../src/fs/types.js';
import { openStore } from '../../src/store/index.js';
import { withTempDir } from '../support/tmp.js';

const ROOT = { uid: 0, gid: 0, gids: [0] };
const later = (a: Time, b: Time) => a.s > b.s || (a.s === b.s && a.ns > b.ns);

test('mtime and ctime never go backwards when the node restarts on a clock an hour behind', async () => {
  await withTempDir('fs-clock', async (dir) => {
    const open = async (offsetMs: number) => {
      const store = await openStore({ dir });
      const fs = await FileSystem.open(store, { clock: skewedClock({ offsetMs, rate: 1 }).wallMs });
      return { store, fs };
    };
    let { store, fs } = await open(0);
    const first = (await fs.create(ROOT, ROOT_INO, Buffer.from('a'), { kind: 'guarded' })).attr;
    await store.close();

    ({ store, fs } = await open(-3_600_000));
    try {
      const second = (await fs.create(ROOT, ROOT_INO, Buffer.from('b'), { kind: 'guarded' })).attr;
      assert.ok(
        later(second.mtime, first.mtime),
        `mtime ${JSON.stringify(second.mtime)} after ${JSON.stringify(first.mtime)}`,
      );
      assert.ok(later(second.ctime, first.ctime));
      const dir = fs.getattr(ROOT_INO);
      assert.ok(!later(first.mtime, dir.mtime), 'the directory changed after the first create');
      // Every later change is later again, though the wall clock is still an hour behind.
      const third = (await fs.create(ROOT, ROOT_INO, Buffer.from('c'), { kind: 'guarded' })).attr;
      assert.ok(later(third.mtime, second.mtime));
    } finally {
      await store.close();
    }
  });
});
