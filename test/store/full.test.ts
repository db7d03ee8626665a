/**
 * A full disk: a small tmpfs mounted for the test. Writes fail with StoreFullError, nothing
 * already stored is damaged, and the store keeps working once space is freed.
 */
import assert from 'node:assert/strict';
import { closeSync, mkdirSync, openSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openStore, StoreFullError } from '../../src/store/index.js';
import type { Store } from '../../src/store/types.js';
import { withTmpfs } from '../support/tmpfs.js';
import { waitUntil } from '../support/wait.js';
import { pattern } from './helpers.js';

const FILE = 300_000;

async function checkAll(store: Store, files: number[], records: number[]): Promise<void> {
  for (const n of files) {
    assert.deepEqual(store.get(['inode', n])?.value, { size: FILE });
    assert.ok(
      Buffer.from(await store.readFile(n, 0, FILE, FILE)).equals(pattern(n, FILE)),
      `file ${n} intact`,
    );
  }
  for (const n of records) {
    assert.ok(
      Buffer.from(store.get<Uint8Array>(['rec', n])?.value ?? []).equals(pattern(-n, 40_000)),
      `record ${n}`,
    );
  }
}

describe('store on a full disk', () => {
  for (const headroomBytes of [undefined, 0]) {
    it(`fails writes with StoreFullError, keeps what is stored, and recovers when space is freed (headroom ${headroomBytes ?? 'default'})`, async () => {
      await withTmpfs('store-full', 8, async (mnt) => {
        const dir = join(mnt, 'data');
        mkdirSync(dir);
        let store = await openStore({ dir, headroomBytes });
        try {
          const files: number[] = [];
          let fileFull: unknown;
          for (let n = 1; n < 100 && !fileFull; n++) {
            try {
              await store.writeFile({
                file: n,
                offset: 0,
                data: pattern(n, FILE),
                stable: n % 2 === 0,
                update: (tx) => tx.put(['inode', n], { size: FILE }),
              });
              files.push(n);
            } catch (e) {
              fileFull = e;
            }
          }
          assert.ok(
            fileFull instanceof StoreFullError,
            `block writes end in StoreFullError, not ${fileFull}`,
          );
          assert.equal(fileFull.code, 'STORE_FULL');
          assert.ok(files.length > 5);
          // Records only: LMDB's own commit runs out of space.
          const records: number[] = [];
          let recordFull: unknown;
          for (let n = 1; n < 1000 && !recordFull; n++) {
            try {
              await store.write((tx) => tx.put(['rec', n], pattern(-n, 40_000)), { durable: true });
              records.push(n);
            } catch (e) {
              recordFull = e;
            }
          }
          assert.ok(
            recordFull instanceof StoreFullError,
            `record writes end in StoreFullError, not ${recordFull}`,
          );
          await checkAll(store, files, records);
          const stats = await store.stats();
          assert.ok(
            stats.availableBytes < 1 << 20,
            `the disk is full (${stats.availableBytes} bytes available)`,
          );

          // Free space: drop half the files; their blocks go once the drop is durable.
          const dropped = files.filter((n) => n % 2 === 1);
          await store.write(
            (tx) => {
              for (const n of dropped) {
                tx.dropContent(n);
                tx.delete(['inode', n]);
              }
            },
            { durable: true },
          );
          const kept = files.filter((n) => n % 2 === 0);
          await waitUntil(
            'freed blocks to give space back',
            async () => (await store.stats()).availableBytes > 1 << 20,
          );
          await store.writeFile({
            file: 500,
            offset: 0,
            data: pattern(500, FILE),
            stable: true,
            update: (tx) => tx.put(['inode', 500], { size: FILE }),
          });
          kept.push(500);
          await checkAll(store, kept, records);
          await store.close();
          store = await openStore({ dir });
          await checkAll(store, kept, records);
        } finally {
          await store.close();
        }
      });
    });
  }

  it('has room for metadata growth reserved at open, so that a disk another process fills does not reach LMDB', async () => {
    await withTmpfs('store-reserve', 16, async (mnt) => {
      const dir = join(mnt, 'data');
      mkdirSync(dir);
      const store = await openStore({ dir });
      const ballast = openSync(join(mnt, 'ballast'), 'w');
      try {
        // A sixteenth of the 16 MiB file system past LMDB's last page.
        assert.ok(statSync(join(dir, 'meta', 'data.mdb')).size >= 1 << 20);
        const chunk = Buffer.alloc(1 << 16, 1);
        for (;;) {
          try {
            writeSync(ballast, chunk);
          } catch (e) {
            assert.equal((e as NodeJS.ErrnoException).code, 'ENOSPC');
            break;
          }
        }
        // 400 KiB of records on a disk with no byte free: LMDB grows into the reserved pages.
        for (let n = 1; n <= 100; n++) {
          await store.write((tx) => tx.put(['rec', n], pattern(-n, 4000)), { durable: true });
        }
        for (let n = 1; n <= 100; n++) {
          assert.ok(Buffer.from(store.get<Uint8Array>(['rec', n])?.value ?? []).equals(pattern(-n, 4000)));
        }
      } finally {
        closeSync(ballast);
        await store.close();
      }
    });
  });
});
