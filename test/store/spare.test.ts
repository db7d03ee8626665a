/**
 * The block file a sequential UNSTABLE copy creates ahead of its next write (src/store/store.ts,
 * `prepareSpare`): the next write takes it, and none is left behind, whether writes stop, the
 * store closes, or the process is killed.
 */
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openStore } from '../../src/store/index.js';
import { spawnProcess } from '../support/process.js';
import { makeTempDir, removeTempDir } from '../support/tmp.js';
import { waitUntil } from '../support/wait.js';
import { listBlocks, pattern } from './helpers.js';

const MiB = 1 << 20;
const child = join(dirname(fileURLToPath(import.meta.url)), 'spare-child.js');

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
});
