/**
 * The Linux kernel's NFSv3 client (Debian's kernel under QEMU) runs the POSIX battery against a
 * Cairn node, and its transcript must be the one nfs-ganesha produces
 * (test/nfs/kernel-battery.expected.txt, recorded by kernel-ganesha.test.ts).
 *
 * The node runs as `cairn up` inside a network namespace of its own, where it takes rpcbind's
 * port 111 and NFS's 2049 as a real deployment does, and where QEMU's user networking connects
 * the guest to it.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { withNetns } from '../support/netns.js';
import { BATTERY_EXPECTED, formatRpcFigures, runKernelBattery, transcriptDiff } from '../support/qemu.js';
import { withTempDir } from '../support/tmp.js';

const CLI = resolve(dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

test('the kernel NFSv3 client passes the POSIX battery against a Cairn node, as against ganesha', {
  timeout: 480_000,
}, async () => {
  await withNetns('kcairn', (ns) =>
    withTempDir('kcairn', async (tmp) => {
      const exportsFile = join(tmp, 'exports.json');
      // QEMU's user networking connects to the server from the namespace's loopback. The guest
      // is root and the battery checks ownership, so root is not squashed.
      writeFileSync(
        exportsFile,
        JSON.stringify({
          exports: [{ path: '/export', id: 1, access: 'rw', clients: ['127.0.0.0/8'], squash: 'none' }],
        }),
      );
      const node = ns.spawn(
        [
          process.execPath,
          CLI,
          'up',
          '--data',
          join(tmp, 'data'),
          '--exports',
          exportsFile,
          '--host',
          '127.0.0.1',
        ],
        { name: 'cairn up' },
      );
      try {
        const line = await node.waitForLine(/^\s+nfs\s+127\.0\.0\.1:\d+/, 30_000);
        const nfsPort = Number(/:(\d+)/.exec(line)?.[1]);
        assert.equal(nfsPort, 2049, 'alone in its namespace, the node serves NFS on 2049');
        // Without mountport, the kernel asks the node's rpcbind where MOUNT is.
        const r = await runKernelBattery(ns, { exportPath: '/export' });
        console.log(
          `kernel battery against Cairn: boot ${r.bootMs} ms (QEMU CPU ${r.bootCpuMs} ms), ` +
            `battery ${r.runMs} ms (QEMU CPU ${r.runCpuMs} ms); calls: ${formatRpcFigures(r.rpc)}`,
        );
        const context =
          `\n--- transcript\n${r.transcript}\n--- console (tail)\n${r.console.slice(-3000)}` +
          `\n${node.describeOutput()}`;
        const expected = readFileSync(BATTERY_EXPECTED, 'utf8').split('\n').filter(Boolean);
        const diff = transcriptDiff(expected, r.lines);
        assert.equal(
          diff,
          undefined,
          `Cairn's transcript differs from ganesha's (${BATTERY_EXPECTED}):\n${diff}${context}`,
        );
        assert.deepEqual(r.failures, [], `battery steps failed${context}`);
        assert.equal(r.exitCode, 0, `battery exit status${context}`);
        // The battery's work reached the server: every one of the 3,000 files was created there.
        assert.ok((r.rpc.CREATE?.calls ?? 0) >= 3000, `CREATE calls: ${formatRpcFigures(r.rpc)}`);
        assert.ok(node.running, `the node is still serving${context}`);
        const status = await node.stop('SIGTERM', 10_000);
        assert.equal(status.code, 0, `cairn up stops cleanly on SIGTERM\n${node.describeOutput()}`);
      } finally {
        await node.stop('SIGKILL');
      }
    }),
  );
});
