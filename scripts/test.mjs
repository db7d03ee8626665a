// Runs every compiled test file with node's test runner. Arguments narrow the run to files whose
// path contains one of them (`npm test -- rpcgen xdr`).
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const filters = process.argv.slice(2);

function find(dir, out = []) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) find(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const files = find(join(root, 'dist', 'test'))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
// Servers under test log failures they handle on purpose; set CAIRN_LOG_LEVEL to see them.
const env = { ...process.env, CAIRN_LOG_LEVEL: process.env.CAIRN_LOG_LEVEL ?? 'silent' };
const r = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...files], {
  cwd: root,
  env,
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
