/**
 * A child that opens the store at DIR, reports what it holds and closes it: for tests that
 * restart a store under the power-loss layer, as a node would be restarted after a power cut.
 * Usage: node store-report.js DIR. Prints one JSON line, a StoreReport, and exits 0; exits 1 with
 * the error on stderr if the store does not open.
 *
 * Files are those named by the records under ['inode', n] (value { size }), as
 * test/store/child.ts writes them; each file's content is read whole and hashed, or the code of
 * the error reading it is given.
 */
import { createHash } from 'node:crypto';
import { openStore } from '../../../src/store/index.js';

export interface StoreReport {
  files: { n: number; value: unknown; sha256?: string; error?: string }[];
}

async function main(): Promise<void> {
  const store = await openStore({ dir: process.argv[2] });
  const report: StoreReport = { files: [] };
  for (const { key, value } of store.range<{ size: number }>(['inode'])) {
    const n = key[1] as number;
    try {
      const data = await store.readFile(n, 0, value.size, value.size);
      report.files.push({ n, value, sha256: createHash('sha256').update(data).digest('hex') });
    } catch (e) {
      report.files.push({ n, value, error: (e as { code?: string }).code ?? String(e) });
    }
  }
  await store.close();
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
