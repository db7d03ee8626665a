// A full disk under a Cairn node: NFS3ERR_NOSPC, nothing stored damaged, the node keeps serving,
// and space freed by a REMOVE is usable again.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { isNfsError, NfsClient } from '../../src/nfs/client.js';
import { CairnNode } from '../../src/node/node.js';
import { withTmpfs } from '../support/tmpfs.js';

const pattern = (seed: number, n: number) =>
  Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff));

test('a full disk answers NFS3ERR_NOSPC, keeps what was stored, and recovers after a remove', async () => {
  await withTmpfs('nfs-nospc', 48, async (mnt) => {
    const node = await CairnNode.start({ dataDir: join(mnt, 'data'), rpcbindPort: 0, nfsPort: 0 });
    const client = await NfsClient.connect({
      host: '127.0.0.1',
      nfsPort: node.endpoints().nfs,
      mountPort: node.endpoints().nfs,
    });
    try {
      const root = await client.mount('/export');
      const keep = await client.create(root, 'keep');
      const kept = pattern(7, 300_000);
      await client.writeAll(keep.fh, kept);

      const big = await client.create(root, 'big');
      const chunk = pattern(1, 1 << 20);
      let written = 0;
      let full: unknown;
      for (let i = 0; i < 200 && full === undefined; i++) {
        try {
          await client.write(big.fh, written, chunk);
          written += chunk.length;
        } catch (e) {
          full = e;
        }
      }
      assert.ok(isNfsError(full, 'NFS3ERR_NOSPC'), `the disk filled with NOSPC, not ${String(full)}`);
      assert.ok(written > 8 << 20, 'a good part of the disk was usable');

      // Everything acknowledged is intact, and the node still answers.
      assert.ok(Buffer.from(await client.readAll(keep.fh)).equals(kept), 'earlier file intact');
      const bigBack = Buffer.from(await client.readAll(big.fh));
      assert.equal(bigBack.length, written, 'the file holds exactly the acknowledged writes');
      for (let o = 0; o < written; o += chunk.length)
        assert.ok(bigBack.subarray(o, o + chunk.length).equals(chunk));
      const stat = await client.fsstat(root);
      assert.ok(
        stat.abytes < BigInt(4 << 20),
        `FSSTAT reports the disk nearly full (${stat.abytes} available)`,
      );

      await client.remove(root, 'big');
      const again = await client.create(root, 'again');
      const data = pattern(3, 4 << 20);
      await client.writeAll(again.fh, data);
      assert.ok(
        Buffer.from(await client.readAll(again.fh)).equals(data),
        'space freed by REMOVE is usable again',
      );
    } finally {
      await client.close();
      await node.stop();
    }
  });
});
