// Builds Cairn in two stages: the rpcgen compiler first, then every `.x` file under src/ and test/
// compiled by it into `gen/NAME.ts` beside it, then the whole tree. Generated files are never committed.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

function findX(dir, out = []) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    // Fixtures are inputs to rpcgen's own tests, not part of the build.
    if (statSync(p).isDirectory()) {
      if (name !== 'fixtures' && name !== 'gen') findX(p, out);
    } else if (name.endsWith('.x')) out.push(p);
  }
  return out;
}

run(process.execPath, [tsc, '-p', 'tsconfig.rpcgen.json']);

const importFrom = (fromDir, target) => {
  const rel = relative(fromDir, join(root, target)).split('\\').join('/');
  return rel.startsWith('.') ? rel : `./${rel}`;
};
for (const file of [...findX(join(root, 'src')), ...findX(join(root, 'test'))]) {
  const outDir = join(dirname(file), 'gen');
  mkdirSync(outDir, { recursive: true });
  const opts = [];
  // NFS names are bytes, not text: its .x files opt in with a `.bytes.x` suffix.
  if (basename(file).endsWith('.bytes.x')) opts.push('--strings', 'bytes');
  run(process.execPath, [
    join(root, 'dist/src/rpcgen/bin.js'),
    relative(root, file),
    '--out',
    relative(root, outDir),
    '--xdr-import',
    importFrom(outDir, 'src/xdr/index.js'),
    '--rpc-import',
    importFrom(outDir, 'src/rpc/stub.js'),
    ...opts,
  ]);
}

run(process.execPath, [tsc, '-p', 'tsconfig.json']);
