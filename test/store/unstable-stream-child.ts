/**
 * For unstable-stream.test.ts: a store in a child process that writes CHUNKS whole 1 MiB chunks
 * of file 1 UNSTABLE (a sequential copy), prints `written`, and blocks its event loop until it
 * is killed. Not a test file itself. Usage: node unstable-stream-child.js DIR CHUNKS
 */
import { openStore } from '../../src/store/index.js';
import { pattern } from './helpers.js';

const [dir, chunks] = process.argv.slice(2);
const store = await openStore({ dir, spareIdleMs: 600_000 });
for (let i = 0; i < Number(chunks); i++) {
  await store.writeFile({ file: 1, offset: i << 20, data: pattern(i + 1, 1 << 20), stable: false });
}
await new Promise<void>((resolve) => process.stdout.write('written\n', () => resolve()));
// The thread pool still creates the next block file while the event loop is blocked.
for (;;) {}
