/**
 * Crash recovery with the Linux kernel's NFS client: the guest copies a file into a Cairn export
 * while the node is killed with SIGKILL and started again on the same data. The hard mount
 * retries, the changed write verifier makes the client send again what was not committed, and
 * the file read back after a remount is exactly what was written — the stateless server with
 * idempotent operations that the notes describe.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Netns, withNetns } from '../support/netns.js';
import type { SpawnedProcess } from '../support/process.js';
import { runGuest } from '../support/qemu.js';
import { withTempDir } from '../support/tmp.js';
import { waitUntil } from '../support/wait.js';

const CLI = resolve(dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');
const MIB = 48;

const GUEST_SCRIPT = `
set -u
opts=vers=3,nolock,proto=tcp,hard,addr=10.0.2.2
mkdir -p /mnt
mount -t nfs -o $opts 10.0.2.2:/export /mnt || { echo "mount: FAIL"; exit 10; }
dd if=/dev/urandom of=/tmp/src bs=1M count=${MIB} 2>/dev/null
src=$(md5sum /tmp/src | cut -d' ' -f1)
# O_DIRECT: every block goes to the server as it is written, so the node dies mid-copy.
dd if=/tmp/src of=/mnt/big bs=256k oflag=direct 2>/dev/null || { echo "copy: FAIL"; exit 11; }
sync
umount /mnt && mount -t nfs -o $opts 10.0.2.2:/export /mnt || { echo "remount: FAIL"; exit 12; }
dst=$(md5sum /mnt/big | cut -d' ' -f1)
[ "$src" = "$dst" ] && echo "crash-copy: ok" || echo "crash-copy: FAIL $src $dst"
`;

function startNode(ns: Netns, data: string, exportsFile: string): SpawnedProcess {
  return ns.spawn(
    [process.execPath, CLI, 'up', '--data', data, '--exports', exportsFile, '--host', '127.0.0.1'],
    {
      name: 'cairn up',
      env: { ...process.env, CAIRN_LOG_LEVEL: 'warn' },
    },
  );
}

/** The size of /export/big as the node reports it, asked with libnfs from inside the namespace. */
async function serverSize(ns: Netns): Promise<number> {
  const r = await ns.exec(['nfs-ls', 'nfs://127.0.0.1/export/?version=3'], { timeoutMs: 10_000 });
  const line = r.stdout.split('\n').find((l) => l.trim().endsWith(' big'));
  return line ? Number(line.trim().split(/\s+/).at(-2)) : 0;
}

test('a kernel-client copy into Cairn survives kill -9 and restart of the node', {
  timeout: 480_000,
}, async () => {
  await withNetns('kcrash', (ns) =>
    withTempDir('kcrash', async (tmp) => {
      const exportsFile = join(tmp, 'exports.json');
      writeFileSync(
        exportsFile,
        JSON.stringify({
          exports: [{ path: '/export', id: 1, access: 'rw', clients: ['127.0.0.0/8'], squash: 'none' }],
        }),
      );
      const data = join(tmp, 'data');
      let node = startNode(ns, data, exportsFile);
      try {
        await node.waitForLine(/^\s+nfs\s+127\.0\.0\.1:2049/, 30_000);
        const guest = runGuest(ns, { script: GUEST_SCRIPT, timeoutMs: 420_000 });
        let done = false;
        void guest.finally(() => {
          done = true;
        });
        // Kill the node once part of the file has reached it.
        const killedAt = await waitUntil(
          'the copy to reach the node',
          async () => {
            if (done) throw new Error('the guest ended before the copy reached the node');
            const size = await serverSize(ns);
            return size >= 4 << 20 ? size : undefined;
          },
          { timeoutMs: 300_000, intervalMs: 100 },
        );
        node.killSync();
        await node.exited;
        assert.ok(!done && killedAt < MIB << 20, `the node died mid-copy (at ${killedAt} bytes)`);
        node = startNode(ns, data, exportsFile);
        await node.waitForLine(/^\s+nfs\s+127\.0\.0\.1:2049/, 30_000);
        const r = await guest;
        const context = `\n--- transcript\n${r.transcript}\n--- console (tail)\n${r.console.slice(-2000)}\n${node.describeOutput()}`;
        assert.equal(r.exitCode, 0, `guest exit status${context}`);
        assert.match(r.transcript, /^crash-copy: ok$/m, `the file read back is the file written${context}`);
        assert.equal(await serverSize(ns), MIB << 20);
      } finally {
        await node.stop('SIGKILL');
      }
    }),
  );
});
