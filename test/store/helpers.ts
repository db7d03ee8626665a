/** Shared helpers for the store tests: a store in a temp dir, closed and removed afterwards. */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { openStore, type StoreOptions } from '../../src/store/index.js';
import type { Store } from '../../src/store/types.js';
import { spawnProcess } from '../support/process.js';
import { makeTempDir, removeTempDir } from '../support/tmp.js';

export async function withStore<T>(
  label: string,
  fn: (store: Store, dir: string) => Promise<T>,
  options: Partial<StoreOptions> = {},
): Promise<T> {
  const dir = makeTempDir(`store-${label}`);
  const store = await openStore({ dir, ...options });
  try {
    return await fn(store, dir);
  } finally {
    await store.close().catch(() => {});
    removeTempDir(dir);
  }
}

/** Deterministic bytes for (seed, length): what was written can be recomputed to check a read. */
export function pattern(seed: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

/** Every block file under DIR/blocks, as paths. */
export function listBlocks(dir: string): string[] {
  const out: string[] = [];
  const root = join(dir, 'blocks');
  for (const xx of readdirSync(root)) {
    for (const yy of readdirSync(join(root, xx))) {
      for (const name of readdirSync(join(root, xx, yy))) out.push(join(root, xx, yy, name));
    }
  }
  return out.sort();
}

/** File N's size in the child's durable loop: inline, one block, and several chunks, in turn. */
export function loopSize(n: number): number {
  return [700, 150_000, 2_500_000, 4096, 1_048_577][n % 5];
}

/**
 * Three rounds of: run the child store process in `mode` (a write loop), kill -9 it once it has
 * acknowledged `ackAt(round)` writes, reopen the store and check every acknowledged write —
 * inode record and content — is there.
 */
export async function killLoopAndCheck(
  child: string,
  mode: 'durable-loop' | 'unstable-loop',
  label: string,
  ackAt: (round: number) => number,
): Promise<void> {
  const dir = makeTempDir(label);
  try {
    for (let round = 0; round < 3; round++) {
      const p = spawnProcess(process.execPath, [child, mode, dir], { name: `store-${mode}` });
      try {
        await p.waitForLine('ready', 30_000);
        await p.waitForLine(`ack ${ackAt(round)}`, 60_000);
      } finally {
        p.signal('SIGKILL');
        await p.exited;
      }
      const acked = p.stdout
        .split('\n')
        .map((l) => /^ack (\d+)$/.exec(l)?.[1])
        .filter((x): x is string => x !== undefined)
        .map(Number);
      assert.ok(acked.length >= ackAt(round));
      const store = await openStore({ dir });
      try {
        for (const n of acked) {
          const size = loopSize(n);
          assert.deepEqual(store.get(['inode', n])?.value, { size }, `inode of acknowledged file ${n}`);
          const got = Buffer.from(await store.readFile(n, 0, size, size));
          assert.ok(got.equals(pattern(n, size)), `content of acknowledged file ${n}`);
        }
      } finally {
        await store.close();
      }
    }
  } finally {
    removeTempDir(dir);
  }
}
