/**
 * The Linux kernel's NFSv3 client (Debian's kernel under QEMU) runs the POSIX battery against
 * nfs-ganesha, the reference server. Its transcript is the expectation every other server's run
 * is compared with (test/nfs/kernel-battery.expected.txt): set CAIRN_UPDATE_FIXTURES=1 to record
 * it again after changing the battery.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { startGanesha } from '../support/ganesha.js';
import { withNetns } from '../support/netns.js';
import { BATTERY_EXPECTED, formatRpcFigures, runKernelBattery, transcriptDiff } from '../support/qemu.js';
import { withTempDir } from '../support/tmp.js';

test('the kernel NFSv3 client passes the POSIX battery against nfs-ganesha', {
  timeout: 480_000,
}, async () => {
  await withNetns('kganesha', (ns) =>
    withTempDir('kganesha', async (tmp) => {
      const dir = join(tmp, 'export');
      mkdirSync(dir);
      const ganesha = await startGanesha(ns, { dir });
      try {
        const r = await runKernelBattery(ns, {
          exportPath: ganesha.exportPath,
          nfsPort: ganesha.nfsPort,
          mountPort: ganesha.mountPort,
        });
        console.log(
          `kernel battery against ganesha: boot ${r.bootMs} ms (QEMU CPU ${r.bootCpuMs} ms), ` +
            `battery ${r.runMs} ms (QEMU CPU ${r.runCpuMs} ms); calls: ${formatRpcFigures(r.rpc)}`,
        );
        const context = `\n--- transcript\n${r.transcript}\n--- console (tail)\n${r.console.slice(-3000)}`;
        assert.deepEqual(r.failures, [], `battery steps failed${context}`);
        assert.equal(r.exitCode, 0, `battery exit status${context}`);
        // The battery's work reached the server: every one of the 3,000 files was created there.
        assert.ok((r.rpc.CREATE?.calls ?? 0) >= 3000, `CREATE calls: ${formatRpcFigures(r.rpc)}`);
        assert.equal(r.lines.at(-1), 'battery: ok', context);
        if (process.env.CAIRN_UPDATE_FIXTURES === '1') {
          writeFileSync(BATTERY_EXPECTED, `${r.lines.join('\n')}\n`);
        } else {
          const expected = readFileSync(BATTERY_EXPECTED, 'utf8').split('\n').filter(Boolean);
          const diff = transcriptDiff(expected, r.lines);
          assert.equal(diff, undefined, `ganesha's transcript differs from ${BATTERY_EXPECTED}:\n${diff}`);
        }
        // The guest removed what it made: nothing is left in the export.
        assert.deepEqual(readdirSync(dir), []);
      } finally {
        await ganesha.stop();
      }
    }),
  );
});
