/**
 * NFS version 3 conformance, part 1: every procedure of NFS and MOUNT against a real Cairn node
 * through NfsClient, and what a successful reply must carry (RFC 1813): attributes, weak cache
 * consistency data whose "before" is what the client saw last and whose "after" is what it sees
 * next, directory nlink as POSIX has it, times that move forward, transfer sizes, real FSSTAT
 * figures, and write verifiers. Errors, exports and READDIR paging have files of their own.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { statfsSync } from 'node:fs';
import { test } from 'node:test';
import { mount3, type NfsClient, nameText, nfs3 } from '../../src/nfs/index.js';
import { UdpRpcClient } from '../../src/rpc/index.js';
import { RpcbindClient } from '../../src/rpc/rpcbind/index.js';
import { ALICE, rejectsWith, type TestNode, withNode } from './support.js';

type Time = nfs3.nfstime3;
const cmp = (a: Time, b: Time) => (a.seconds - b.seconds) * 1e9 + (a.nseconds - b.nseconds);

/** Asserts that wcc data's "before" matches `seen` and returns "after". */
function checkWcc(w: nfs3.wcc_data, seen: nfs3.fattr3, what: string): nfs3.fattr3 {
  assert.ok(w.before.attributes_follow, `${what}: pre-operation attributes`);
  assert.ok(w.after.attributes_follow, `${what}: post-operation attributes`);
  const b = w.before.attributes;
  assert.equal(b.size, seen.size, `${what}: before.size`);
  assert.deepEqual(b.mtime, seen.mtime, `${what}: before.mtime`);
  assert.deepEqual(b.ctime, seen.ctime, `${what}: before.ctime`);
  return w.after.attributes;
}

/** Asserts that mtime and ctime advanced from `before` to `after` (Cairn's clock never repeats). */
function advanced(before: { mtime: Time; ctime: Time }, after: { mtime: Time; ctime: Time }, what: string) {
  assert.ok(cmp(after.mtime, before.mtime) > 0, `${what}: mtime advances`);
  assert.ok(cmp(after.ctime, before.ctime) > 0, `${what}: ctime advances`);
}

function entries(list: { name: Uint8Array }[]): string[] {
  return list.map((e) => nameText(e.name)).sort();
}

test('NFSv3 and MOUNT v3 procedures against a Cairn node', { timeout: 120_000 }, async (t) => {
  await withNode(
    [
      { path: '/export', id: 1 },
      { path: '/other', id: 2, clients: ['127.0.0.0/8', '192.0.2.0/24'] },
    ],
    async (n) => {
      const c = await n.connect();
      const root = await c.mount('/export');
      await procedures(t, n, c, root);
    },
  );
});

async function procedures(
  t: import('node:test').TestContext,
  n: TestNode,
  c: NfsClient,
  root: nfs3.nfs_fh3,
): Promise<void> {
  await t.test('NULL, and GETATTR of an export root', async () => {
    await c.null();
    const a = await c.getattr(root);
    assert.equal(a.type, nfs3.NF3DIR);
    assert.equal(a.nlink, 2, 'an empty directory has nlink 2');
    assert.equal(a.uid, 0);
  });

  await t.test('MKDIR: attributes, wcc of the parent, parent nlink = 2 + subdirectories', async () => {
    let seen = await c.getattr(root);
    for (let i = 0; i < 3; i++) {
      const d = await c.mkdir(root, `d${i}`, { mode: 0o750 });
      assert.equal(d.attributes?.type, nfs3.NF3DIR);
      assert.equal(d.attributes?.mode, 0o750);
      assert.equal(d.attributes?.nlink, 2);
      assert.equal(d.attributes?.uid, 0);
      const after = checkWcc(d.dirWcc, seen, 'MKDIR');
      assert.equal(after.nlink, 3 + i);
      advanced(seen, after, 'MKDIR parent');
      assert.deepEqual(await c.getattr(root), after, 'post-op attributes are the current ones');
      assert.deepEqual(await c.getattr(d.fh), d.attributes);
      seen = after;
    }
    // A file does not count towards nlink.
    await c.create(root, 'plain', { attributes: { mode: 0o644 } });
    assert.equal((await c.getattr(root)).nlink, 5);
    await c.rmdir(root, 'd2');
    assert.equal((await c.getattr(root)).nlink, 4);
  });

  await t.test('LOOKUP: handle, object and directory attributes; . and ..', async () => {
    const d0 = await c.lookup(root, 'd0');
    assert.equal(d0.attributes?.type, nfs3.NF3DIR);
    assert.deepEqual(d0.dirAttributes, await c.getattr(root));
    const sub = await c.mkdir(d0.fh, 'sub');
    const up = await c.lookup(sub.fh, '..');
    assert.equal(up.attributes?.fileid, d0.attributes?.fileid);
    const dot = await c.lookup(d0.fh, '.');
    assert.equal(dot.attributes?.fileid, d0.attributes?.fileid);
    assert.deepEqual((await c.lookupPath(root, 'd0/sub/../sub')).attributes?.fileid, sub.attributes?.fileid);
    // A handle is the same however the object was reached.
    assert.deepEqual((await c.lookup(d0.fh, 'sub')).fh.data, sub.fh.data);
    await rejectsWith(c.lookup(root, 'nothing'), 'NFS3ERR_NOENT');
  });

  await t.test("LOOKUP of '..' at an export's root stays at the root", async () => {
    const r = await c.getattr(root);
    const up = await c.lookup(root, '..');
    assert.equal(up.attributes?.fileid, r.fileid);
    assert.deepEqual(up.fh.data, root.data, 'the same handle: nothing above the export');
    let at = up.fh;
    for (let i = 0; i < 5; i++) at = (await c.lookup(at, '..')).fh;
    assert.deepEqual(entries(await c.readdirAll(at)), entries(await c.readdirAll(root)));
    // The other export is a sibling on the server; it is not reachable by name from here.
    await rejectsWith(c.lookup(at, 'other'), 'NFS3ERR_NOENT');
    // READDIR of the root gives '..' the root's own fileid.
    const dotdot = (await c.readdirAll(root)).find((e) => nameText(e.name) === '..');
    assert.equal(dotdot?.fileid, r.fileid);
  });

  await t.test(
    'CREATE UNCHECKED: attributes, wcc; again on an existing file truncates it only if asked',
    async () => {
      const d = await c.lookup(root, 'd1');
      const seen = await c.getattr(d.fh);
      const f = await c.create(d.fh, 'f', { mode: 'UNCHECKED', attributes: { mode: 0o640 } });
      assert.equal(f.attributes?.type, nfs3.NF3REG);
      assert.equal(f.attributes?.mode, 0o640);
      assert.equal(f.attributes?.size, 0n);
      assert.equal(f.attributes?.nlink, 1);
      assert.equal(f.attributes?.uid, 0);
      assert.equal(f.attributes?.gid, 0);
      const after = checkWcc(f.dirWcc, seen, 'CREATE');
      advanced(seen, after, 'CREATE parent');
      assert.equal(after.nlink, seen.nlink, 'a file does not change the parent nlink');
      await c.write(f.fh, 0, Buffer.from('twelve bytes'));
      const again = await c.create(d.fh, 'f', { mode: 'UNCHECKED', attributes: { mode: 0o600 } });
      assert.deepEqual(again.fh.data, f.fh.data, 'the same file');
      assert.equal((await c.getattr(f.fh)).size, 12n, 'no size given: content kept');
      const trunc = await c.create(d.fh, 'f', { mode: 'UNCHECKED', attributes: { size: 0 } });
      assert.deepEqual(trunc.fh.data, f.fh.data);
      assert.equal((await c.getattr(f.fh)).size, 0n, 'size 0 given: truncated');
    },
  );

  await t.test('CREATE GUARDED: made once, EXIST after', async () => {
    const d = await c.lookup(root, 'd1');
    const g = await c.create(d.fh, 'g', { mode: 'GUARDED', attributes: { mode: 0o600 } });
    assert.equal(g.attributes?.mode, 0o600);
    await rejectsWith(c.create(d.fh, 'g', { mode: 'GUARDED' }), 'NFS3ERR_EXIST');
    await rejectsWith(c.create(root, 'd0', { mode: 'GUARDED' }), 'NFS3ERR_EXIST');
    await rejectsWith(c.create(root, 'd0', { mode: 'UNCHECKED' }), 'NFS3ERR_EXIST');
  });

  await t.test(
    'CREATE EXCLUSIVE: a retry with the same verifier gets the same file, another fails',
    async () => {
      const d = await c.lookup(root, 'd1');
      const verf = randomBytes(8);
      const x = await c.create(d.fh, 'x', { mode: 'EXCLUSIVE', verifier: verf });
      const dirAfter = await c.getattr(d.fh);
      const retry = await c.create(d.fh, 'x', { mode: 'EXCLUSIVE', verifier: verf });
      assert.deepEqual(retry.fh.data, x.fh.data);
      assert.equal(retry.attributes?.fileid, x.attributes?.fileid);
      assert.deepEqual(await c.getattr(d.fh), dirAfter, 'a retry changes nothing');
      await rejectsWith(
        c.create(d.fh, 'x', { mode: 'EXCLUSIVE', verifier: randomBytes(8) }),
        'NFS3ERR_EXIST',
      );
      // As the RFC has clients do: set the real attributes after an exclusive create.
      await c.setattr(x.fh, { mode: 0o644 });
      assert.equal((await c.getattr(x.fh)).mode, 0o644);
      // Once written to, the file is no longer the one the create made: a late retry is EXIST.
      await c.write(x.fh, 0, Buffer.from('data'));
      await rejectsWith(c.create(d.fh, 'x', { mode: 'EXCLUSIVE', verifier: verf }), 'NFS3ERR_EXIST');
      // EXCLUSIVE over a file made otherwise is EXIST, whatever the verifier.
      await rejectsWith(
        c.create(d.fh, 'g', { mode: 'EXCLUSIVE', verifier: new Uint8Array(8) }),
        'NFS3ERR_EXIST',
      );
    },
  );

  await t.test('WRITE FILE_SYNC and READ: counts, eof, wcc, mtime and ctime advance', async () => {
    const f = await c.create(root, 'data', { attributes: { mode: 0o644 } });
    let seen = await c.getattr(f.fh);
    const w = await c.write(f.fh, 0, Buffer.from('hello world'), nfs3.FILE_SYNC);
    assert.equal(w.count, 11);
    assert.equal(w.committed, nfs3.FILE_SYNC);
    assert.equal(w.verf.length, 8);
    let after = checkWcc(w.file_wcc, seen, 'WRITE');
    assert.equal(after.size, 11n);
    advanced(seen, after, 'WRITE');
    seen = after;
    const w2 = await c.write(f.fh, 6, Buffer.from('cairn'), nfs3.DATA_SYNC);
    assert.ok(
      w2.committed === nfs3.DATA_SYNC || w2.committed === nfs3.FILE_SYNC,
      'at least as stable as asked',
    );
    after = checkWcc(w2.file_wcc, seen, 'WRITE');
    assert.equal(after.size, 11n, 'an overwrite inside the file keeps its size');
    advanced(seen, after, 'WRITE');
    const r = await c.read(f.fh, 0, 100);
    assert.equal(Buffer.from(r.data).toString(), 'hello cairn');
    assert.equal(r.eof, true);
    assert.equal(r.attributes?.size, 11n);
    const part = await c.read(f.fh, 2, 3);
    assert.equal(Buffer.from(part.data).toString(), 'llo');
    assert.equal(part.eof, false);
    const end = await c.read(f.fh, 11, 10);
    assert.equal(end.data.length, 0);
    assert.equal(end.eof, true);
    const past = await c.read(f.fh, 1_000_000, 10);
    assert.equal(past.data.length, 0);
    assert.equal(past.eof, true);
    // A WRITE of nothing, even past the end, changes nothing: not the size, not the times.
    const still = await c.getattr(f.fh);
    const empty = await c.write(f.fh, 4096, new Uint8Array(0));
    assert.equal(empty.count, 0);
    assert.deepEqual(await c.getattr(f.fh), still);
    // A WRITE may carry more data than count: only count bytes are written.
    const raw = await c.raw.NFSPROC3_WRITE({
      file: f.fh,
      offset: 11n,
      count: 1,
      stable: nfs3.FILE_SYNC,
      data: Buffer.from('!?'),
    });
    assert.equal(raw.status, nfs3.NFS3_OK);
    assert.equal(Buffer.from((await c.read(f.fh, 0, 100)).data).toString(), 'hello cairn!');
  });

  await t.test('a sparse file: a write at 10 MiB into an empty file; the hole reads as zeros', async () => {
    const f = await c.create(root, 'sparse', { attributes: { mode: 0o644 } });
    const at = 10 << 20;
    await c.write(f.fh, at, Buffer.from('tail'));
    const a = await c.getattr(f.fh);
    assert.equal(a.size, BigInt(at + 4));
    const hole = await c.read(f.fh, 0, 1 << 20);
    assert.equal(hole.data.length, 1 << 20);
    assert.ok(hole.data.every((b) => b === 0));
    const edge = await c.read(f.fh, at - 4, 8);
    assert.deepEqual(Buffer.from(edge.data), Buffer.concat([Buffer.alloc(4), Buffer.from('tail')]));
    assert.equal(edge.eof, true);
    const all = await c.readAll(f.fh);
    assert.equal(all.length, at + 4);
    assert.ok(all.subarray(0, at).every((b) => b === 0));
    // Extending with SETATTR makes a hole too, and truncating then re-extending reads zeros.
    await c.setattr(f.fh, { size: at + 2 });
    await c.setattr(f.fh, { size: at + 100 });
    const grown = await c.read(f.fh, at, 100);
    assert.deepEqual(Buffer.from(grown.data), Buffer.concat([Buffer.from('ta'), Buffer.alloc(98)]));
  });

  await t.test('WRITE UNSTABLE then COMMIT: the verifier is the same', async () => {
    const f = await c.create(root, 'unstable', { attributes: { mode: 0o644 } });
    const data = randomBytes(300_000);
    const w = await c.write(f.fh, 0, data, nfs3.UNSTABLE);
    assert.equal(w.count, data.length);
    const seen = await c.getattr(f.fh);
    const cm = await c.commit(f.fh, 0, 0);
    assert.deepEqual(cm.verf, w.verf);
    const after = checkWcc(cm.file_wcc, seen, 'COMMIT');
    assert.equal(after.size, BigInt(data.length));
    assert.deepEqual(Buffer.from(await c.readAll(f.fh)), data);
    const w2 = await c.write(f.fh, 0, Buffer.from('x'), nfs3.FILE_SYNC);
    assert.deepEqual(w2.verf, w.verf, 'one verifier per server instance');
    assert.deepEqual((await c.commit(f.fh, 100, 10)).verf, w.verf, 'COMMIT of a range');
  });

  await t.test('SETATTR: mode, size, times; wcc; ctime guard', async () => {
    const f = await c.lookup(root, 'data');
    let seen = await c.getattr(f.fh);
    let wcc = await c.setattr(f.fh, { mode: 0o600 });
    let after = checkWcc(wcc, seen, 'SETATTR mode');
    assert.equal(after.mode, 0o600);
    assert.ok(cmp(after.ctime, seen.ctime) > 0, 'a mode change moves ctime');
    assert.deepEqual(after.mtime, seen.mtime, 'a mode change leaves mtime');
    seen = after;
    wcc = await c.setattr(f.fh, { size: 5 });
    after = checkWcc(wcc, seen, 'SETATTR size');
    assert.equal(after.size, 5n);
    advanced(seen, after, 'truncate');
    assert.equal(Buffer.from((await c.read(f.fh, 0, 100)).data).toString(), 'hello');
    seen = after;
    const mtime = { seconds: 1_000_000_000, nseconds: 123_456_789 };
    const atime = { seconds: 999_999_999, nseconds: 5 };
    after = checkWcc(await c.setattr(f.fh, { mtime, atime }), seen, 'SETATTR times');
    assert.deepEqual(after.mtime, mtime);
    assert.deepEqual(after.atime, atime);
    assert.ok(cmp(after.ctime, seen.ctime) > 0, 'setting times moves ctime');
    seen = after;
    after = checkWcc(await c.setattr(f.fh, { mtime: 'server', atime: 'server' }), seen, 'SETATTR now');
    assert.ok(cmp(after.mtime, mtime) > 0);
    assert.ok(Math.abs(after.mtime.seconds - Date.now() / 1000) < 60, 'server time is now');
    seen = after;
    // Guard: applied when the ctime matches, NOT_SYNC with the object unchanged when it does not.
    after = checkWcc(await c.setattr(f.fh, { mode: 0o640 }, seen.ctime), seen, 'guarded SETATTR');
    assert.equal(after.mode, 0o640);
    const e = await rejectsWith(c.setattr(f.fh, { mode: 0o777 }, seen.ctime), 'NFS3ERR_NOT_SYNC');
    const res = e.result as { resfail: { obj_wcc: nfs3.wcc_data } };
    assert.ok(res.resfail.obj_wcc.after.attributes_follow, 'NOT_SYNC carries current attributes');
    assert.equal((await c.getattr(f.fh)).mode, 0o640);
    // Nothing to set: allowed, nothing changes.
    const before = await c.getattr(f.fh);
    checkWcc(await c.setattr(f.fh, {}), before, 'empty SETATTR');
    assert.deepEqual(await c.getattr(f.fh), before);
  });

  await t.test('ACCESS answers what the mode bits allow, for root and for another user', async () => {
    const all =
      nfs3.ACCESS3_READ |
      nfs3.ACCESS3_LOOKUP |
      nfs3.ACCESS3_MODIFY |
      nfs3.ACCESS3_EXTEND |
      nfs3.ACCESS3_DELETE |
      nfs3.ACCESS3_EXECUTE;
    const f = await c.create(root, 'acc', { attributes: { mode: 0o644 } });
    const rootFile = await c.access(f.fh, all);
    assert.equal(rootFile, nfs3.ACCESS3_READ | nfs3.ACCESS3_MODIFY | nfs3.ACCESS3_EXTEND);
    const rootDir = await c.access(root, all);
    const dirBits =
      nfs3.ACCESS3_READ |
      nfs3.ACCESS3_LOOKUP |
      nfs3.ACCESS3_MODIFY |
      nfs3.ACCESS3_EXTEND |
      nfs3.ACCESS3_DELETE;
    assert.equal(rootDir, dirBits);
    assert.equal(await c.access(f.fh, nfs3.ACCESS3_READ), nfs3.ACCESS3_READ, 'only asked bits are answered');
    const alice = await n.connect(ALICE);
    assert.equal(await alice.access(f.fh, all), nfs3.ACCESS3_READ);
    assert.equal(await alice.access(root, all), nfs3.ACCESS3_READ | nfs3.ACCESS3_LOOKUP);
    await c.setattr(f.fh, { mode: 0o755 });
    assert.equal(await alice.access(f.fh, all), nfs3.ACCESS3_READ | nfs3.ACCESS3_EXECUTE);
    await c.setattr(f.fh, { mode: 0o600 });
    assert.equal(await alice.access(f.fh, all), 0);
    const mine = await alice.create(
      await c.mkdir(root, 'alices', { mode: 0o777 }).then((d) => d.fh),
      'mine',
      {
        attributes: { mode: 0o600 },
      },
    );
    assert.equal(
      await alice.access(mine.fh, all),
      nfs3.ACCESS3_READ | nfs3.ACCESS3_MODIFY | nfs3.ACCESS3_EXTEND,
    );
    await alice.close();
  });

  await t.test('SYMLINK and READLINK: any bytes, stored and answered verbatim', async () => {
    const target = Buffer.concat([Buffer.from('../../etc/'), Buffer.from([0xff, 0xfe]), Buffer.from('//x')]);
    const seen = await c.getattr(root);
    const s = await c.symlink(root, 'ln', target);
    assert.equal(s.attributes?.type, nfs3.NF3LNK);
    assert.equal(s.attributes?.size, BigInt(target.length));
    advanced(seen, checkWcc(s.dirWcc, seen, 'SYMLINK'), 'SYMLINK parent');
    assert.deepEqual(Buffer.from(await c.readlink(s.fh)), target);
    const raw = await c.raw.NFSPROC3_READLINK({ symlink: s.fh });
    assert.equal(raw.status, nfs3.NFS3_OK);
    assert.ok(raw.status === nfs3.NFS3_OK && raw.resok.symlink_attributes.attributes_follow);
  });

  await t.test('lookups never resolve a symlink on the server', async () => {
    await c.symlink(root, 'up', '..');
    await c.symlink(root, 'abs', '/');
    for (const name of ['up', 'abs']) {
      const l = await c.lookup(root, name);
      assert.equal(l.attributes?.type, nfs3.NF3LNK, `${name} is the link itself`);
      await rejectsWith(c.lookup(l.fh, 'd0'), 'NFS3ERR_NOTDIR');
      await rejectsWith(c.lookup(l.fh, '..'), 'NFS3ERR_NOTDIR');
      await rejectsWith(c.readdir(l.fh), 'NFS3ERR_NOTDIR');
    }
  });

  await t.test('MKNOD: FIFO, socket, character and block devices', async () => {
    const seen = await c.getattr(root);
    const fifo = await c.mknod(root, 'fifo', nfs3.NF3FIFO, { attributes: { mode: 0o640 } });
    assert.equal(fifo.attributes?.type, nfs3.NF3FIFO);
    assert.equal(fifo.attributes?.mode, 0o640);
    advanced(seen, checkWcc(fifo.dirWcc, seen, 'MKNOD'), 'MKNOD parent');
    const sock = await c.mknod(root, 'sock', nfs3.NF3SOCK, { attributes: { mode: 0o600 } });
    assert.equal(sock.attributes?.type, nfs3.NF3SOCK);
    const chr = await c.mknod(root, 'null', nfs3.NF3CHR, {
      attributes: { mode: 0o666 },
      spec: { specdata1: 1, specdata2: 3 },
    });
    assert.equal(chr.attributes?.type, nfs3.NF3CHR);
    assert.deepEqual(chr.attributes?.rdev, { specdata1: 1, specdata2: 3 });
    const blk = await c.mknod(root, 'blk', nfs3.NF3BLK, { spec: { specdata1: 8, specdata2: 1 } });
    assert.equal(blk.attributes?.type, nfs3.NF3BLK);
    assert.deepEqual((await c.getattr(blk.fh)).rdev, { specdata1: 8, specdata2: 1 });
    // Neither is a regular file: READ and WRITE refuse, READLINK too.
    await rejectsWith(c.read(fifo.fh, 0, 10), 'NFS3ERR_INVAL');
    await rejectsWith(c.write(chr.fh, 0, Buffer.from('x')), 'NFS3ERR_INVAL');
    await rejectsWith(c.readlink(sock.fh), 'NFS3ERR_INVAL');
    // MKNOD of a regular file or directory is BADTYPE.
    const bad = await c.raw.NFSPROC3_MKNOD({
      where: { dir: root, name: Buffer.from('reg') },
      what: { type: nfs3.NF3REG },
    });
    assert.equal(bad.status, nfs3.NFS3ERR_BADTYPE);
    await rejectsWith(c.lookup(root, 'reg'), 'NFS3ERR_NOENT');
    for (const name of ['fifo', 'sock', 'null', 'blk']) await c.remove(root, name);
  });

  await t.test('LINK: nlink counts names; REMOVE of one keeps the other', async () => {
    const f = await c.create(root, 'orig', { attributes: { mode: 0o644 } });
    await c.write(f.fh, 0, Buffer.from('shared'));
    const d0 = await c.lookup(root, 'd0');
    const seenDir = await c.getattr(d0.fh);
    const seenFile = await c.getattr(f.fh);
    const l = await c.link(f.fh, d0.fh, 'alias');
    assert.ok(l.file_attributes.attributes_follow);
    assert.equal(l.file_attributes.attributes.nlink, 2);
    assert.ok(cmp(l.file_attributes.attributes.ctime, seenFile.ctime) > 0, 'LINK moves the file ctime');
    advanced(seenDir, checkWcc(l.linkdir_wcc, seenDir, 'LINK'), 'LINK directory');
    const alias = await c.lookup(d0.fh, 'alias');
    assert.deepEqual(alias.fh.data, f.fh.data, 'one inode, one handle');
    await c.link(f.fh, root, 'third');
    assert.equal((await c.getattr(f.fh)).nlink, 3);
    const seenRoot = await c.getattr(root);
    const wcc = await c.remove(root, 'orig');
    advanced(seenRoot, checkWcc(wcc, seenRoot, 'REMOVE'), 'REMOVE directory');
    assert.equal((await c.getattr(f.fh)).nlink, 2);
    assert.equal(Buffer.from((await c.read(alias.fh, 0, 10)).data).toString(), 'shared');
    await c.remove(root, 'third');
    await c.remove(d0.fh, 'alias');
    await rejectsWith(c.getattr(f.fh), 'NFS3ERR_STALE');
  });

  await t.test('RMDIR: wcc, parent nlink, the handle goes stale', async () => {
    const d = await c.mkdir(root, 'gone');
    const seen = await c.getattr(root);
    const wcc = await c.rmdir(root, 'gone');
    const after = checkWcc(wcc, seen, 'RMDIR');
    assert.equal(after.nlink, seen.nlink - 1);
    advanced(seen, after, 'RMDIR parent');
    await rejectsWith(c.getattr(d.fh), 'NFS3ERR_STALE');
    await rejectsWith(c.readdir(d.fh), 'NFS3ERR_STALE');
  });

  await t.test('RENAME within a directory, across directories, over an existing file', async () => {
    const a = await c.mkdir(root, 'ra');
    const b = await c.mkdir(root, 'rb');
    const f = await c.create(a.fh, 'one', { attributes: { mode: 0o644 } });
    await c.write(f.fh, 0, Buffer.from('1'));
    let seenA = await c.getattr(a.fh);
    const r1 = await c.rename(a.fh, 'one', a.fh, 'uno');
    const afterA = checkWcc(r1.fromdir_wcc, seenA, 'RENAME from');
    assert.deepEqual(checkWcc(r1.todir_wcc, seenA, 'RENAME to'), afterA);
    advanced(seenA, afterA, 'RENAME directory');
    await rejectsWith(c.lookup(a.fh, 'one'), 'NFS3ERR_NOENT');
    assert.deepEqual((await c.lookup(a.fh, 'uno')).fh.data, f.fh.data, 'the handle survives a rename');

    seenA = await c.getattr(a.fh);
    const seenB = await c.getattr(b.fh);
    const r2 = await c.rename(a.fh, 'uno', b.fh, 'eins');
    advanced(seenA, checkWcc(r2.fromdir_wcc, seenA, 'RENAME from'), 'RENAME source');
    advanced(seenB, checkWcc(r2.todir_wcc, seenB, 'RENAME to'), 'RENAME target');
    assert.deepEqual(entries(await c.readdirAll(a.fh)), ['.', '..']);
    assert.deepEqual(entries(await c.readdirAll(b.fh)), ['.', '..', 'eins']);

    // Over an existing file: the old one is gone (its only name), the moved one takes the name.
    const victim = await c.create(b.fh, 'victim', { attributes: { mode: 0o644 } });
    await c.rename(b.fh, 'eins', b.fh, 'victim');
    assert.deepEqual((await c.lookup(b.fh, 'victim')).fh.data, f.fh.data);
    await rejectsWith(c.getattr(victim.fh), 'NFS3ERR_STALE');
    assert.deepEqual(entries(await c.readdirAll(b.fh)), ['.', '..', 'victim']);

    // Over a file with another name: only the name goes.
    const kept = await c.create(b.fh, 'kept', { attributes: { mode: 0o644 } });
    await c.link(kept.fh, a.fh, 'kept-too');
    const other = await c.create(b.fh, 'other', { attributes: { mode: 0o644 } });
    await c.rename(b.fh, 'other', a.fh, 'kept-too');
    assert.equal((await c.getattr(kept.fh)).nlink, 1);
    assert.deepEqual((await c.lookup(a.fh, 'kept-too')).fh.data, other.fh.data);

    // Renaming a name to a hard link of the same file: nothing happens (POSIX).
    await c.link(kept.fh, b.fh, 'kept-2');
    await c.rename(b.fh, 'kept', b.fh, 'kept-2');
    assert.deepEqual(entries(await c.readdirAll(b.fh)), ['.', '..', 'kept', 'kept-2', 'victim']);
    // Renaming onto itself: nothing happens.
    await c.rename(b.fh, 'victim', b.fh, 'victim');
    assert.deepEqual((await c.lookup(b.fh, 'victim')).fh.data, f.fh.data);
  });

  await t.test(
    'RENAME of a directory: nlink of both parents, its "..", over an empty directory',
    async () => {
      const a = await c.lookup(root, 'ra');
      const b = await c.lookup(root, 'rb');
      const d = await c.mkdir(a.fh, 'moving');
      await c.create(d.fh, 'inside', { attributes: { mode: 0o644 } });
      const na = (await c.getattr(a.fh)).nlink;
      const nb = (await c.getattr(b.fh)).nlink;
      await c.rename(a.fh, 'moving', b.fh, 'moved');
      assert.equal((await c.getattr(a.fh)).nlink, na - 1);
      assert.equal((await c.getattr(b.fh)).nlink, nb + 1);
      assert.equal((await c.lookup(d.fh, '..')).attributes?.fileid, (await c.getattr(b.fh)).fileid);
      const dd = (await c.readdirAll(d.fh)).find((e) => nameText(e.name) === '..');
      assert.equal(dd?.fileid, (await c.getattr(b.fh)).fileid, "READDIR's '..' follows the move");
      // Over an empty directory: it is replaced; nlink of the parent stays.
      const empty = await c.mkdir(a.fh, 'empty');
      const na2 = (await c.getattr(a.fh)).nlink;
      const nb2 = (await c.getattr(b.fh)).nlink;
      await c.rename(b.fh, 'moved', a.fh, 'empty');
      await rejectsWith(c.getattr(empty.fh), 'NFS3ERR_STALE');
      assert.equal((await c.getattr(a.fh)).nlink, na2);
      assert.equal((await c.getattr(b.fh)).nlink, nb2 - 1);
      assert.deepEqual(entries(await c.readdirAll(d.fh)), ['.', '..', 'inside']);
      // Into its own subtree: INVAL, nothing moves.
      const deep = await c.mkdir(d.fh, 'deep');
      await rejectsWith(c.rename(a.fh, 'empty', deep.fh, 'loop'), 'NFS3ERR_INVAL');
      await rejectsWith(c.rename(a.fh, 'empty', d.fh, 'loop'), 'NFS3ERR_INVAL');
      assert.deepEqual((await c.lookup(a.fh, 'empty')).fh.data, d.fh.data);
    },
  );

  await t.test('READDIR and READDIRPLUS: every name once, fileids, handles and attributes', async () => {
    const d = await c.mkdir(root, 'list');
    const names = ['a', 'b', 'c', 'dir', 'ln'];
    for (const x of names.slice(0, 3)) await c.create(d.fh, x, { attributes: { mode: 0o644 } });
    await c.mkdir(d.fh, 'dir');
    await c.symlink(d.fh, 'ln', 'a');
    const page = await c.readdir(d.fh);
    assert.equal(page.eof, true);
    assert.equal(page.cookieverf.length, 8);
    assert.deepEqual(page.dirAttributes, await c.getattr(d.fh));
    assert.deepEqual(entries(page.entries), ['.', '..', ...names]);
    const plus = await c.readdirplusAll(d.fh);
    assert.deepEqual(entries(plus), ['.', '..', ...names]);
    for (const e of plus) {
      const name = nameText(e.name);
      assert.ok(e.fh && e.attributes, `${name}: handle and attributes`);
      const a = await c.getattr(e.fh);
      assert.equal(a.fileid, e.fileid, `${name}: fileid`);
      assert.equal(e.attributes.fileid, e.fileid);
      if (name !== '.' && name !== '..') assert.deepEqual(e.fh.data, (await c.lookup(d.fh, e.name)).fh.data);
    }
    assert.equal(plus.find((e) => nameText(e.name) === 'dir')?.attributes?.type, nfs3.NF3DIR);
    assert.equal(plus.find((e) => nameText(e.name) === 'ln')?.attributes?.type, nfs3.NF3LNK);
  });

  await t.test('FSINFO: 1 MiB transfers, properties; PATHCONF; FSSTAT with real figures', async () => {
    const info = await c.fsinfo(root);
    assert.ok(info.rtmax >= 1 << 20, `rtmax ${info.rtmax}`);
    assert.ok(info.wtmax >= 1 << 20, `wtmax ${info.wtmax}`);
    assert.ok(info.rtpref <= info.rtmax && info.wtpref <= info.wtmax);
    assert.ok(info.dtpref > 0);
    assert.ok(info.maxfilesize >= 1n << 40n);
    for (const p of [nfs3.FSF3_LINK, nfs3.FSF3_SYMLINK, nfs3.FSF3_HOMOGENEOUS, nfs3.FSF3_CANSETTIME])
      assert.ok(info.properties & p, `property ${p}`);
    assert.ok(info.time_delta.seconds === 0 && info.time_delta.nseconds <= 1_000_000);
    // A whole rtmax and wtmax in one call each.
    const f = await c.create(root, 'mib', { attributes: { mode: 0o644 } });
    const data = randomBytes(info.wtmax);
    assert.equal((await c.write(f.fh, 0, data)).count, data.length);
    const r = await c.read(f.fh, 0, info.rtmax);
    assert.equal(r.data.length, data.length);
    assert.deepEqual(Buffer.from(r.data), data);

    const pc = await c.pathconf(root);
    assert.equal(pc.name_max, 255);
    assert.equal(pc.no_trunc, true);
    assert.equal(pc.chown_restricted, true);
    assert.equal(pc.case_insensitive, false);
    assert.equal(pc.case_preserving, true);
    assert.ok(pc.linkmax >= 1000);

    const st = await c.fsstat(root);
    const host = statfsSync(n.dataDir);
    const total = BigInt(host.blocks) * BigInt(host.bsize);
    assert.equal(st.tbytes, total, 'total bytes of the file system holding the store');
    assert.ok(st.fbytes <= st.tbytes && st.abytes <= st.fbytes);
    const free = BigInt(host.bfree) * BigInt(host.bsize);
    const slack = 256n << 20n;
    assert.ok(st.fbytes > free - slack && st.fbytes < free + slack, `fbytes ${st.fbytes} vs ${free}`);
    assert.ok(st.tfiles > 0n && st.ffiles <= st.tfiles && st.afiles <= st.ffiles);
  });

  await t.test('MOUNT: NULL, EXPORT, MNT, DUMP, UMNT, UMNTALL', async () => {
    await c.mountRaw.MOUNTPROC3_NULL();
    const ex = await c.exports();
    assert.deepEqual(ex, [
      { dir: '/export', groups: ['127.0.0.0/8'] },
      { dir: '/other', groups: ['127.0.0.0/8', '192.0.2.0/24'] },
    ]);
    const m = await c.mountWithFlavors('/export');
    assert.deepEqual(m.fh.data, root.data, 'MNT gives the same root handle every time');
    assert.ok(m.authFlavors.includes(1));
    const other = await c.mount('/other/');
    assert.equal((await c.getattr(other)).type, nfs3.NF3DIR);
    assert.notDeepEqual(other.data, root.data);
    // A directory inside an export can be mounted; a file cannot.
    const sub = await c.mount('/export/d0/sub');
    assert.equal((await c.getattr(sub)).fileid, (await c.lookupPath(root, 'd0/sub')).attributes?.fileid);
    await c.create(root, 'afile', { attributes: { mode: 0o644 } });
    const notDir = await c.mountRaw.MOUNTPROC3_MNT(Buffer.from('/export/afile'));
    assert.equal(notDir.fhs_status, 20 /* MNT3ERR_NOTDIR */);
    const none = await c.mountRaw.MOUNTPROC3_MNT(Buffer.from('/nowhere'));
    assert.equal(none.fhs_status, 2 /* MNT3ERR_NOENT */);
    const missing = await c.mountRaw.MOUNTPROC3_MNT(Buffer.from('/export/no/such'));
    assert.equal(missing.fhs_status, 2);
    // MNTPATHLEN bytes is the longest path a client can send: no such export, not an error of length.
    const longest = await c.mountRaw.MOUNTPROC3_MNT(Buffer.from(`/${'a'.repeat(1023)}`));
    assert.equal(longest.fhs_status, 2);

    const dump = async () => {
      const out: string[] = [];
      for (let m = await c.mountRaw.MOUNTPROC3_DUMP(); m !== null; m = m.ml_next)
        out.push(`${nameText(m.ml_hostname)} ${nameText(m.ml_directory)}`);
      return out.sort();
    };
    const mounted = await dump();
    assert.ok(mounted.includes('127.0.0.1 /export'), JSON.stringify(mounted));
    assert.ok(
      mounted.some((x) => x.endsWith(' /other') || x.endsWith(' /other/')),
      JSON.stringify(mounted),
    );
    await c.umount('/export');
    assert.ok(!(await dump()).includes('127.0.0.1 /export'));
    await c.mountRaw.MOUNTPROC3_UMNTALL();
    assert.deepEqual(await dump(), []);
    // The NFS server keeps no mount state: a handle works after UMNT.
    assert.equal((await c.getattr(root)).type, nfs3.NF3DIR);
  });

  await t.test('MOUNT and NFS over UDP as well as TCP', async () => {
    const ep = n.node.endpoints();
    const rpcbind = new RpcbindClient({ host: ep.host, port: ep.rpcbind });
    try {
      assert.equal(await rpcbind.getport(mount3.MOUNT_PROGRAM, mount3.MOUNT_V3, 'udp'), ep.nfs);
      assert.equal(await rpcbind.getport(nfs3.NFS_PROGRAM, nfs3.NFS_V3, 'udp'), ep.nfs);
    } finally {
      await rpcbind.close();
    }
    const udp = new UdpRpcClient({ host: ep.host, port: ep.nfs, credential: { flavor: 1, uid: 0, gid: 0 } });
    try {
      const m = new mount3.MOUNT_V3_Client(udp);
      await m.MOUNTPROC3_NULL();
      const r = await m.MOUNTPROC3_MNT(Buffer.from('/export'));
      assert.equal(r.fhs_status, mount3.MNT3_OK);
      assert.ok(r.fhs_status === mount3.MNT3_OK && Buffer.from(r.mountinfo.fhandle).equals(root.data));
      const nfs = new nfs3.NFS_V3_Client(udp);
      const a = await nfs.NFSPROC3_GETATTR({ object: root });
      assert.equal(a.status, nfs3.NFS3_OK);
      const f = await c.lookup(root, 'data');
      const rd = await nfs.NFSPROC3_READ({ file: f.fh, offset: 0n, count: 100 });
      assert.ok(rd.status === nfs3.NFS3_OK && Buffer.from(rd.resok.data).toString().startsWith('hello'));
      assert.ok((await m.MOUNTPROC3_EXPORT()) !== null);
      await m.MOUNTPROC3_UMNT(Buffer.from('/export'));
    } finally {
      await udp.close();
    }
  });

  await t.test('mtime and ctime never go backwards, across many quick changes and a restart', async () => {
    // Many quick changes: each gets a later stamp than the one before, on one object and across objects.
    const f = await c.create(root, 'clock', { attributes: { mode: 0o644 } });
    let prev = await c.getattr(f.fh);
    for (let i = 0; i < 50; i++) {
      const w = await c.write(f.fh, i, Buffer.from([i]));
      const a = w.file_wcc.after.attributes_follow ? w.file_wcc.after.attributes : await c.getattr(f.fh);
      advanced(prev, a, `write ${i}`);
      prev = a;
    }
    // Across a restart: the first change after it is later than everything before.
    await n.restart();
    const c2 = await n.connect();
    const w = await c2.write(f.fh, 0, Buffer.from('z'));
    assert.ok(w.file_wcc.after.attributes_follow);
    advanced(prev, w.file_wcc.after.attributes, 'write after restart');
  });
}
