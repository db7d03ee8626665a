/**
 * Cairn's NfsClient against nfs-ganesha (FSAL_VFS), the reference server: proves the client (its
 * encodings, paging, chunking, error mapping) and the ganesha harness together. Ganesha and its
 * rpcbind run in a fresh network namespace; the test process reaches them over a veth pair, and
 * checks what the server did by reading the exported directory on disk. Needs root.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { isNfsError, MountError, NfsClient, type NfsError, nameText, nfs3 } from '../../src/nfs/index.js';
import { linkToHost, startGanesha } from '../support/ganesha.js';
import { requireRoot, withNetns } from '../support/netns.js';
import { runCommand } from '../support/process.js';
import { withTempDir } from '../support/tmp.js';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Asserts that `p` rejects with the NFS status `code` (e.g. 'NFS3ERR_NOENT'). */
async function rejectsWith(p: Promise<unknown>, code: string, status: number): Promise<NfsError> {
  try {
    await p;
  } catch (e) {
    assert.ok(isNfsError(e, code), `expected ${code}, got ${(e as Error).stack}`);
    assert.equal(e.status, status);
    return e;
  }
  assert.fail(`expected ${code}, but the call succeeded`);
}

test('NfsClient against nfs-ganesha', { timeout: 180_000 }, async (t) => {
  requireRoot('the ganesha client test');
  await withNetns('ganesha-client', (ns) =>
    withTempDir('ganesha-export', async (dir) => {
      const g = await startGanesha(ns, { dir });
      try {
        const link = await linkToHost(ns);
        const c = await NfsClient.connect({ host: link.nsAddress, credential: { uid: 0, gid: 0 } });
        try {
          assert.equal(c.nfsPort, g.nfsPort, 'rpcbind over the veth gives the port ganesha registered');
          assert.equal(c.mountPort, g.mountPort);
          await run(t, c, dir, g.exportPath, link.nsAddress);
        } finally {
          await c.close();
        }
      } finally {
        await g.stop();
      }
    }),
  );
});

test("startGanesha fails at once, with ganesha's own words, when it cannot serve the export", async () => {
  requireRoot('the ganesha harness test');
  await withNetns('ganesha-bad', (ns) =>
    withTempDir('ganesha-bad', async (dir) => {
      writeFileSync(join(dir, 'file'), 'not a directory');
      const started = Date.now();
      await assert.rejects(startGanesha(ns, { dir: join(dir, 'file') }), /not a directory/);
      assert.ok(Date.now() - started < 20_000, 'no waiting for a readiness timeout');
    }),
  );
});

async function run(
  t: import('node:test').TestContext,
  c: NfsClient,
  dir: string,
  exportPath: string,
  address: string,
): Promise<void> {
  let root!: nfs3.nfs_fh3;

  await t.test('MOUNT: exports, MNT with AUTH_SYS, unknown path', async () => {
    const exports = await c.exports();
    assert.ok(
      exports.some((e) => e.dir === exportPath),
      JSON.stringify(exports),
    );
    const m = await c.mountWithFlavors(exportPath);
    assert.ok(m.authFlavors.includes(1), `AUTH_SYS offered: ${m.authFlavors}`);
    assert.ok(m.fh.data.length > 0 && m.fh.data.length <= nfs3.NFS3_FHSIZE);
    root = m.fh;
    const attrs = await c.getattr(root);
    assert.equal(attrs.type, nfs3.NF3DIR);
    await assert.rejects(c.mount('/no/such/export'), (e: unknown) => e instanceof MountError);

    // Ports given: no rpcbind involved.
    const direct = await NfsClient.connect({ host: address, nfsPort: c.nfsPort, mountPort: c.mountPort });
    try {
      assert.deepEqual((await direct.getattr(await direct.mount(exportPath))).fileid, attrs.fileid);
    } finally {
      await direct.close();
    }
  });

  await t.test('FSINFO, FSSTAT, PATHCONF', async () => {
    const info = await c.fsinfo(root);
    assert.ok(info.rtmax >= 4096 && info.wtmax >= 4096, `rtmax ${info.rtmax} wtmax ${info.wtmax}`);
    assert.ok(info.properties & nfs3.FSF3_LINK && info.properties & nfs3.FSF3_SYMLINK);
    t.diagnostic(`ganesha fsinfo: rtmax ${info.rtmax} wtmax ${info.wtmax} dtpref ${info.dtpref}`);
    const st = await c.fsstat(root);
    assert.ok(st.tbytes > 0n && st.fbytes <= st.tbytes && st.abytes <= st.fbytes, JSON.stringify(st, big));
    const pc = await c.pathconf(root);
    // Ganesha answers its own limit (1024), not the exported file system's 255.
    assert.ok(pc.name_max >= 255, `name_max ${pc.name_max}`);
    assert.ok(pc.linkmax > 1);
  });

  await t.test('CREATE, WRITE, READ back a small file', async () => {
    const f = await c.create(root, 'small.txt', { mode: 'UNCHECKED', attributes: { mode: 0o644 } });
    const w = await c.write(f.fh, 0, Buffer.from('hello, cairn\n'), nfs3.FILE_SYNC);
    assert.equal(w.count, 13);
    assert.equal(w.committed, nfs3.FILE_SYNC);
    assert.equal(Buffer.from(await c.readAll(f.fh)).toString(), 'hello, cairn\n');
    const a = await c.getattr(f.fh);
    assert.equal(a.size, 13n);
    assert.equal(a.mode & 0o7777, 0o644);
    assert.equal(readFileSync(join(dir, 'small.txt'), 'utf8'), 'hello, cairn\n');
    const r = await c.read(f.fh, 7, 100);
    assert.equal(Buffer.from(r.data).toString(), 'cairn\n');
    assert.equal(r.eof, true);
  });

  await t.test('writeAll (UNSTABLE + COMMIT) and readAll of 3 MiB', async () => {
    const data = randomBytes(3 << 20);
    const f = await c.create(root, 'big.bin');
    await c.writeAll(f.fh, data);
    const back = await c.readAll(f.fh);
    assert.equal(back.length, data.length);
    assert.equal(sha256(back), sha256(data));
    assert.equal(sha256(readFileSync(join(dir, 'big.bin'))), sha256(data));
    assert.equal((await c.getattr(f.fh)).size, BigInt(data.length));

    // Several 4 MiB pieces in flight, two batches, a 1-byte tail; FILE_SYNC needs no COMMIT.
    const more = randomBytes((9 << 20) + 1);
    const g = await c.create(root, 'bigger.bin');
    await c.writeAll(g.fh, more, { stable: nfs3.FILE_SYNC, depth: 2 });
    assert.equal(sha256(await c.readAll(g.fh, { depth: 2 })), sha256(more));
    assert.equal(sha256(readFileSync(join(dir, 'bigger.bin'))), sha256(more));
    await c.remove(root, 'bigger.bin');
  });

  await t.test('MKDIR and READDIR/READDIRPLUS over 300 entries in many pages', async () => {
    const d = await c.mkdir(root, 'many', { mode: 0o755 });
    assert.equal(d.attributes?.type, nfs3.NF3DIR);
    const names = Array.from({ length: 300 }, (_, i) => `entry-${String(i).padStart(4, '0')}`);
    for (let i = 0; i < names.length; i += 20)
      await Promise.all(names.slice(i, i + 20).map((n) => c.create(d.fh, n, { mode: 'GUARDED' })));
    const first = await c.readdir(d.fh, 0n, undefined, 1024);
    assert.equal(first.eof, false, 'a 1 KiB READDIR cannot hold 300 entries');
    const all = await c.readdirAll(d.fh, 1024);
    const listed = all.map((e) => nameText(e.name)).filter((n) => n !== '.' && n !== '..');
    assert.deepEqual(listed.sort(), names);
    assert.equal(new Set(all.map((e) => e.cookie)).size, all.length, 'cookies are distinct');
    const plus = (await c.readdirplusAll(d.fh, 1024, 8192)).filter(
      (e) => !['.', '..'].includes(nameText(e.name)),
    );
    assert.equal(plus.length, 300);
    const withHandle = plus.filter((e) => e.fh !== undefined && e.attributes?.type === nfs3.NF3REG);
    assert.equal(withHandle.length, 300, 'READDIRPLUS sends handles and attributes');
    assert.deepEqual((await c.getattr(withHandle[0].fh!)).fileid, withHandle[0].fileid);
    assert.equal(readdirSync(join(dir, 'many')).length, 300);
  });

  await t.test('RENAME across directories, LINK, SYMLINK + READLINK', async () => {
    const sub = await c.mkdir(root, 'sub');
    const r = await c.rename(root, 'small.txt', sub.fh, 'moved.txt');
    assert.ok(r.fromdir_wcc.after.attributes_follow && r.todir_wcc.after.attributes_follow);
    await rejectsWith(c.lookup(root, 'small.txt'), 'NFS3ERR_NOENT', nfs3.NFS3ERR_NOENT);
    const moved = await c.lookupPath(root, 'sub/moved.txt');
    assert.equal(Buffer.from(await c.readAll(moved.fh)).toString(), 'hello, cairn\n');

    const big = await c.lookup(root, 'big.bin');
    const l = await c.link(big.fh, sub.fh, 'hard.bin');
    assert.ok(l.file_attributes.attributes_follow);
    assert.equal(l.file_attributes.attributes.nlink, 2);
    assert.equal(statSync(join(dir, 'sub', 'hard.bin')).ino, statSync(join(dir, 'big.bin')).ino);

    const s = await c.symlink(sub.fh, 'ln', '../big.bin');
    assert.equal(s.attributes?.type ?? (await c.getattr(s.fh)).type, nfs3.NF3LNK);
    assert.equal(nameText(await c.readlink(s.fh)), '../big.bin');
    assert.equal(readlinkSync(join(dir, 'sub', 'ln')), '../big.bin');
    await rejectsWith(c.readlink(big.fh), 'NFS3ERR_INVAL', nfs3.NFS3ERR_INVAL);
  });

  await t.test('SETATTR: mode, truncate, times, ctime guard', async () => {
    const f = await c.lookupPath(root, 'sub/moved.txt');
    const before = await c.getattr(f.fh);
    const wcc = await c.setattr(f.fh, {
      mode: 0o600,
      size: 5,
      mtime: { seconds: 1_000_000_000, nseconds: 0 },
    });
    assert.ok(wcc.after.attributes_follow);
    const a = await c.getattr(f.fh);
    assert.equal(a.mode & 0o7777, 0o600);
    assert.equal(a.size, 5n);
    assert.equal(a.mtime.seconds, 1_000_000_000);
    assert.equal(Buffer.from(await c.readAll(f.fh)).toString(), 'hello');
    assert.equal(lstatSync(join(dir, 'sub', 'moved.txt')).mode & 0o7777, 0o600);
    // The guard names the ctime before the change above, so the server must refuse.
    await rejectsWith(
      c.setattr(f.fh, { mode: 0o644 }, before.ctime),
      'NFS3ERR_NOT_SYNC',
      nfs3.NFS3ERR_NOT_SYNC,
    );
    await c.setattr(f.fh, { mode: 0o640 }, a.ctime);
    assert.equal((await c.getattr(f.fh)).mode & 0o7777, 0o640);
  });

  await t.test('MKNOD of a FIFO, COMMIT', async () => {
    const f = await c.mknod(root, 'fifo', nfs3.NF3FIFO, { attributes: { mode: 0o600 } });
    assert.equal((await c.getattr(f.fh)).type, nfs3.NF3FIFO);
    assert.ok(lstatSync(join(dir, 'fifo')).isFIFO());
    await c.remove(root, 'fifo');
    const big = await c.lookup(root, 'big.bin');
    const w = await c.write(big.fh, 0, Buffer.from('x'), nfs3.UNSTABLE);
    const cm = await c.commit(big.fh);
    assert.equal(cm.verf.length, 8);
    if (w.committed === nfs3.UNSTABLE)
      assert.deepEqual(cm.verf, w.verf, 'no restart between WRITE and COMMIT');
  });

  await t.test('ACCESS for root', async () => {
    const f = await c.lookup(root, 'big.bin');
    const want = nfs3.ACCESS3_READ | nfs3.ACCESS3_MODIFY | nfs3.ACCESS3_EXTEND;
    assert.equal((await c.access(f.fh, want)) & want, want);
  });

  await t.test('errors: NOENT, EXIST (GUARDED and EXCLUSIVE), NOTEMPTY, NOTDIR', async () => {
    const e = await rejectsWith(c.lookup(root, 'missing'), 'NFS3ERR_NOENT', nfs3.NFS3ERR_NOENT);
    assert.equal(e.procedure, 'LOOKUP');
    await rejectsWith(c.create(root, 'big.bin', { mode: 'GUARDED' }), 'NFS3ERR_EXIST', nfs3.NFS3ERR_EXIST);
    await rejectsWith(c.rmdir(root, 'many'), 'NFS3ERR_NOTEMPTY', nfs3.NFS3ERR_NOTEMPTY);
    const big = await c.lookup(root, 'big.bin');
    await rejectsWith(c.lookup(big.fh, 'x'), 'NFS3ERR_NOTDIR', nfs3.NFS3ERR_NOTDIR);

    // EXCLUSIVE: a retry with the same verifier succeeds on the same file, another one fails.
    const verf = randomBytes(8);
    const x1 = await c.create(root, 'excl', { mode: 'EXCLUSIVE', verifier: verf });
    const x2 = await c.create(root, 'excl', { mode: 'EXCLUSIVE', verifier: verf });
    assert.deepEqual(x2.fh.data, x1.fh.data);
    await rejectsWith(
      c.create(root, 'excl', { mode: 'EXCLUSIVE', verifier: randomBytes(8) }),
      'NFS3ERR_EXIST',
      nfs3.NFS3ERR_EXIST,
    );
  });

  await t.test('REMOVE and RMDIR', async () => {
    const many = await c.lookup(root, 'many');
    const wcc = await c.remove(many.fh, 'entry-0000');
    assert.ok(wcc.after.attributes_follow);
    await rejectsWith(c.lookup(many.fh, 'entry-0000'), 'NFS3ERR_NOENT', nfs3.NFS3ERR_NOENT);
    for (const e of await c.readdirAll(many.fh)) {
      const n = nameText(e.name);
      if (n !== '.' && n !== '..') await c.remove(many.fh, e.name);
    }
    await c.rmdir(root, 'many');
    await rejectsWith(c.lookup(root, 'many'), 'NFS3ERR_NOENT', nfs3.NFS3ERR_NOENT);
    await rejectsWith(c.rmdir(root, 'big.bin'), 'NFS3ERR_NOTDIR', nfs3.NFS3ERR_NOTDIR);
  });

  await t.test('libnfs nfs-ls and nfs-cp reach the same export from the host', async () => {
    const url = `nfs://${address}${exportPath}?version=3`;
    const ls = await runCommand('nfs-ls', [url], { timeoutMs: 30_000 });
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, /big\.bin/);
    const cat = await runCommand('nfs-cat', [`nfs://${address}${exportPath}/sub/moved.txt?version=3`], {
      timeoutMs: 30_000,
    });
    assert.equal(cat.code, 0, cat.stderr);
    assert.equal(cat.stdout, 'hello');
  });

  await t.test('DUMP, UMNT, UMNTALL', async () => {
    // Ganesha keeps no mount list; what matters here is that the reply decodes.
    const dump = await c.mountRaw.MOUNTPROC3_DUMP();
    for (let m = dump; m !== null; m = m.ml_next) assert.ok(m.ml_directory.length > 0);
    await c.umount(exportPath);
    await c.mountRaw.MOUNTPROC3_UMNTALL();
    await c.mountRaw.MOUNTPROC3_NULL();
    await c.null();
  });
}

function big(_k: string, v: unknown): unknown {
  return typeof v === 'bigint' ? v.toString() : v;
}
