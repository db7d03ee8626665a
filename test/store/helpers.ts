/** Shared helpers for the store tests: a store in a temp dir, closed and removed afterwards. */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { openStore, type StoreOptions } from '../../src/store/index.js';
import type { Store } from '../../src/store/types.js';
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
