// libnfs's command-line clients (nfs-cp, nfs-cat, nfs-ls) against a Cairn node run as `cairn up`,
// including a kill -9 of the node in the middle of a 1 GiB copy.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { NfsClient } from '../../src/nfs/client.js';
import { runChecked, runCommand, type SpawnedProcess, spawnProcess } from '../support/process.js';
import { makeTempDir, removeTempDir } from '../support/tmp.js';
import { waitUntil } from '../support/wait.js';

const CLI = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.js');

let dir: string;
let data: string;
let node: SpawnedProcess;
let ports: { rpcbind: number; nfs: number };

async function startNode(rpcbindPort = 0, nfsPort = 0): Promise<SpawnedProcess> {
  const p = spawnProcess(
    process.execPath,
    [CLI, 'up', '--data', data, '--rpcbind-port', String(rpcbindPort), '--nfs-port', String(nfsPort)],
    { env: { ...process.env, CAIRN_LOG_LEVEL: 'warn' } },
  );
  const rpcbind = await p.waitForLine(/^\s+rpcbind\s+127\.0\.0\.1:\d+/);
  const nfs = await p.waitForLine(/^\s+nfs\s+127\.0\.0\.1:\d+/);
  ports = { rpcbind: Number(/:(\d+)/.exec(rpcbind)?.[1]), nfs: Number(/:(\d+)/.exec(nfs)?.[1]) };
  return p;
}

const url = (path: string) =>
  `nfs://127.0.0.1/export${path}?version=3&nfsport=${ports.nfs}&mountport=${ports.nfs}`;

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** A file of `size` random bytes (head of /dev/urandom: fast even for 1 GiB). */
async function randomFile(name: string, size: number): Promise<string> {
  const path = join(dir, name);
  if (size === 0) writeFileSync(path, '');
  else await runChecked('sh', ['-c', `head -c ${size} /dev/urandom > '${path}'`], { timeoutMs: 120_000 });
  return path;
}

before(async () => {
  dir = makeTempDir('libnfs');
  data = join(dir, 'data');
  node = await startNode();
});

after(async () => {
  await node?.stop();
  removeTempDir(dir);
});

for (const [label, size] of [
  ['0 B', 0],
  ['1 B', 1],
  ['1 MiB + 1 B', (1 << 20) + 1],
] as const) {
  test(`nfs-cp copies ${label} in and out unchanged, and nfs-cat reads it`, async () => {
    const name = `f${size}`;
    const src = await randomFile(name, size);
    await runChecked('nfs-cp', [src, url(`/${name}`)], { timeoutMs: 60_000 });
    const back = join(dir, `${name}.back`);
    await runChecked('nfs-cp', [url(`/${name}`), back], { timeoutMs: 60_000 });
    assert.equal(await sha256(back), await sha256(src));
    const cat = await runCommand('sh', ['-c', `nfs-cat '${url(`/${name}`)}' | sha256sum`], {
      timeoutMs: 60_000,
    });
    assert.equal(cat.code, 0, cat.stderr);
    assert.equal(cat.stdout.split(' ')[0], await sha256(src));
  });
}

test('nfs-ls lists a tree made through Cairn’s own client, recursively', async () => {
  const client = await NfsClient.connect({ host: '127.0.0.1', nfsPort: ports.nfs, mountPort: ports.nfs });
  try {
    const root = await client.mount('/export');
    const a = await client.mkdir(root, 'tree');
    const b = await client.mkdir(a.fh, 'sub');
    for (const n of ['one', 'two']) await client.create(a.fh, n);
    await client.create(b.fh, 'deep');
    await client.symlink(a.fh, 'link', 'sub/deep');
  } finally {
    await client.close();
  }
  const r = await runChecked('nfs-ls', ['-R', url('/tree')], { timeoutMs: 30_000 });
  const names = r.stdout
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/).at(-1))
    .sort();
  assert.deepEqual(names, ['link', 'one', 'sub', 'sub/deep', 'two']);
});

test('a 1 GiB nfs-cp into the node survives kill -9 and restart of the node, and one out of it too', async () => {
  const src = await randomFile('big', 1 << 30);
  const copy = spawnProcess('nfs-cp', [src, url('/big')]);
  // Kill the node once a good part of the file has reached it, then start it on the same data
  // and ports: the copy retries (a stateless server, idempotent WRITEs) and completes.
  await waitForGrowth(16 << 20);
  assert.ok(copy.running, 'the copy was still running when the node was killed');
  node.killSync();
  await node.exited;
  node = await startNode(ports.rpcbind, ports.nfs);
  const status = await copy.exited;
  assert.equal(status.code, 0, copy.describeOutput());

  // Now a read: kill the node while nfs-cp copies the file out of it.
  const back = join(dir, 'big.back');
  const out = spawnProcess('nfs-cp', [url('/big'), back]);
  await waitUntil(
    'the copy out to pass 16 MiB',
    async () => existsSync(back) && statSync(back).size >= 16 << 20,
    {
      timeoutMs: 120_000,
      intervalMs: 20,
    },
  );
  assert.ok(out.running, 'the copy out was still running when the node was killed');
  node.killSync();
  await node.exited;
  node = await startNode(ports.rpcbind, ports.nfs);
  const outStatus = await out.exited;
  assert.equal(outStatus.code, 0, out.describeOutput());
  assert.equal(await sha256(back), await sha256(src));
});

/** Resolves once the node reports the file at least `bytes` long (through Cairn's client). */
async function waitForGrowth(bytes: number): Promise<void> {
  const client = await NfsClient.connect({ host: '127.0.0.1', nfsPort: ports.nfs, mountPort: ports.nfs });
  try {
    const root = await client.mount('/export');
    await waitUntil(
      `the node to hold ${bytes} bytes of the copy`,
      async () => Number((await client.lookup(root, 'big')).attributes?.size ?? 0) >= bytes,
      { timeoutMs: 120_000, intervalMs: 20 },
    );
  } finally {
    await client.close();
  }
}
