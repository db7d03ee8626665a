/**
 * A sequential UNSTABLE copy (src/store/store.ts): the block file created ahead of its next write
 * (`prepareSpare`) is taken by that write, and none is left behind whether writes stop, the store
 * closes, or the process is killed; each block is fdatasynced in the background after the reply
 * (`syncBehind`), and COMMIT waits for that sync, and fails, every time, if it failed.
 */
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type BlockIO, NodeBlockIO, openStore, StoreError } from '../../src/store/index.js';
import { spawnProcess } from '../support/process.js';
import { makeTempDir, removeTempDir } from '../support/tmp.js';
import { waitUntil } from '../support/wait.js';
import { listBlocks, pattern } from './helpers.js';

const MiB = 1 << 20;
const child = join(dirname(fileURLToPath(import.meta.url)), 'unstable-stream-child.js');

const emptyBlocks = (dir: string) => listBlocks(dir).filter((p) => statSync(p).size === 0);

describe('store: the block file created ahead of a sequential copy', () => {
  it('is taken by the next write, removed at close, and removed once writes stop', async () => {
    const dir = makeTempDir('store-spare');
    try {
      // Kept unused for a minute here, so that the test sees it before it goes.
      const store = await openStore({ dir, spareIdleMs: 60_000 });
      for (let i = 0; i < 3; i++) {
        await store.writeFile({ file: 1, offset: i * MiB, data: pattern(i + 1, MiB), stable: false });
      }
      await waitUntil('a block file to be created ahead', async () => emptyBlocks(dir).length === 1);
      const [spare] = emptyBlocks(dir);
      await store.writeFile({ file: 1, offset: 3 * MiB, data: pattern(4, MiB), stable: false });
      assert.equal(statSync(spare).size, MiB, 'the next write went into the file created ahead');
      await store.commitFile(1);
      await store.close();
      assert.deepEqual(emptyBlocks(dir), [], 'close removes the block file created ahead');
      assert.equal(listBlocks(dir).length, 4);

      const again = await openStore({ dir, spareIdleMs: 100 });
      try {
        await again.writeFile({ file: 1, offset: 4 * MiB, data: pattern(5, MiB), stable: false });
        await waitUntil('the unused block file to be removed', async () => emptyBlocks(dir).length === 0);
        assert.equal(listBlocks(dir).length, 5);
        for (let i = 0; i < 5; i++) {
          const got = Buffer.from(await again.readFile(1, i * MiB, MiB, 5 * MiB));
          assert.ok(got.equals(pattern(i + 1, MiB)), `chunk ${i}`);
        }
      } finally {
        await again.close();
      }
    } finally {
      removeTempDir(dir);
    }
  });

  it('left by a kill -9, is swept at the next open', async () => {
    const dir = makeTempDir('store-spare-kill');
    try {
      const chunks = 3;
      const p = spawnProcess(process.execPath, [child, dir, String(chunks)], { name: 'store-spare' });
      try {
        await p.waitForLine('written', 60_000);
        await waitUntil('a block file to be created ahead', async () => emptyBlocks(dir).length === 1);
      } finally {
        p.signal('SIGKILL');
        await p.exited;
      }
      const store = await openStore({ dir });
      try {
        assert.deepEqual(emptyBlocks(dir), [], 'the sweep after the crash removes it');
        assert.equal(listBlocks(dir).length, chunks);
        for (let i = 0; i < chunks; i++) {
          const got = Buffer.from(await store.readFile(1, i * MiB, MiB, chunks * MiB));
          assert.ok(got.equals(pattern(i + 1, MiB)), `chunk ${i}`);
        }
      } finally {
        await store.close();
      }
    } finally {
      removeTempDir(dir);
    }
  });

  it('each UNSTABLE block is synced once, after its reply; COMMIT waits for it and fails for good if it failed', async () => {
    const dir = makeTempDir('store-sync-behind');
    try {
      // The real file system, with the fdatasync of one chosen block failing as a disk would.
      const real = new NodeBlockIO();
      const syncs: string[] = [];
      let failing: string | undefined;
      const io: BlockIO = Object.assign(Object.create(real) as BlockIO, {
        async create(path: string) {
          const h = await real.create(path);
          return {
            write: h.write.bind(h),
            close: h.close.bind(h),
            async datasync() {
              syncs.push(path);
              if (path === failing) throw Object.assign(new Error('EIO (injected)'), { code: 'EIO' });
              await h.datasync();
            },
          };
        },
        async syncFile(path: string) {
          syncs.push(path);
          await real.syncFile(path);
        },
      });
      const store = await openStore({ dir, io, spareIdleMs: 60_000 });
      try {
        const write = (i: number, seed: number) =>
          store.writeFile({ file: 1, offset: i * MiB, data: pattern(seed, MiB), stable: false });
        await write(0, 1);
        assert.deepEqual(syncs, [], 'no sync before the reply');
        await write(1, 2);
        await waitUntil('both blocks to be synced in the background', async () => syncs.length === 2);
        await store.commitFile(1);
        assert.equal(syncs.length, 2, 'COMMIT found both blocks synced and synced neither again');

        // The next write goes into the block file created ahead: make its sync fail.
        failing = await waitUntil('a block file created ahead', async () => emptyBlocks(dir)[0]);
        await write(2, 3);
        const commitFails = async () =>
          assert.rejects(
            store.commitFile(1),
            (e: unknown) => e instanceof StoreError && e.code === 'STORE_IO',
          );
        await commitFails();
        await commitFails();
        // Written again, the chunk has a new block whose sync succeeds: COMMIT does too.
        failing = undefined;
        await write(2, 5);
        await store.commitFile(1);
      } finally {
        await store.close();
      }
      const again = await openStore({ dir });
      try {
        for (const [i, seed] of [
          [0, 1],
          [1, 2],
          [2, 5],
        ]) {
          const got = Buffer.from(await again.readFile(1, i * MiB, MiB, 3 * MiB));
          assert.ok(got.equals(pattern(seed, MiB)), `chunk ${i}`);
        }
      } finally {
        await again.close();
      }
    } finally {
      removeTempDir(dir);
    }
  });
});
