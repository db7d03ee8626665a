/**
 * NFS version 3 conformance, part 3: what the exports file decides, seen through NfsClient
 * against a real Cairn node, and what survives a restart. Read-only exports answer ROFS to every
 * change and ACCESS grants nothing that changes; clients outside an export's networks get ACCES
 * (MNT and every procedure, even with a handle obtained while they were allowed); root squash and
 * all squash act with anonuid/anongid; setgid directories hand on their group; nothing crosses
 * from one export to another (XDEV); handles stay valid across a restart on the same data, and a
 * handle of an export that is no longer configured is STALE; the write verifier changes on
 * restart so clients resend unstable data.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { MountError, type NfsClient, nfs3 } from '../../src/nfs/index.js';
import { ALICE, BOB, type ExportSpec, ROOT, rejectsWith, TestNode } from './support.js';

/** The first configuration: everything read-write for loopback, nothing squashed. */
const EXPORTS: ExportSpec[] = [
  { path: '/export', id: 1 },
  { path: '/ro', id: 2 },
  { path: '/far', id: 3 },
  { path: '/squash', id: 4 },
  { path: '/all', id: 5 },
  { path: '/gone', id: 9 },
];

/** After reconfiguration: /ro read-only, /far for other networks, squashing, /gone gone. */
const RECONFIGURED: ExportSpec[] = [
  { path: '/export', id: 1 },
  { path: '/ro', id: 2, access: 'ro' },
  { path: '/far', id: 3, clients: ['192.0.2.0/24', '2001:db8::/32'] },
  { path: '/squash', id: 4, squash: 'root', anonuid: 4242, anongid: 4343 },
  { path: '/all', id: 5, squash: 'all', anonuid: 5151, anongid: 5252 },
];

test('exports and restarts on a Cairn node', { timeout: 120_000 }, async (t) => {
  const n = await TestNode.start(EXPORTS);
  try {
    await run(t, n);
  } finally {
    await n.dispose();
  }
});

async function run(t: import('node:test').TestContext, n: TestNode): Promise<void> {
  let c = await n.connect();
  // Made before the restart, used after it.
  const ro = await c.mount('/ro');
  const roFile = await c.create(ro, 'file', { attributes: { mode: 0o644 } });
  await c.write(roFile.fh, 0, Buffer.from('read me'));
  const roDir = await c.mkdir(ro, 'dir', { mode: 0o777 });
  const roLink = await c.symlink(ro, 'link', 'file');
  const far = await c.mount('/far');
  const farFile = await c.create(far, 'file', { attributes: { mode: 0o666 } });
  const gone = await c.mount('/gone');
  const goneFile = await c.create(gone, 'file', { attributes: { mode: 0o644 } });
  const exp = await c.mount('/export');
  const kept = await c.create(exp, 'kept', { attributes: { mode: 0o644 } });
  await c.write(kept.fh, 0, Buffer.from('before the restart'));
  const keptDir = await c.mkdir(exp, 'kept-dir');
  const unstable = await c.create(exp, 'unstable', { attributes: { mode: 0o644 } });
  const w = await c.write(unstable.fh, 0, Buffer.from('unstable data'), nfs3.UNSTABLE);
  const verfBefore = w.verf;
  const cookiesBefore = await c.readdirAll(exp);
  // Squashed callers will need somewhere to write.
  await c.setattr(await c.mount('/squash'), { mode: 0o1777 });
  await c.setattr(await c.mount('/all'), { uid: 5151, gid: 5252 });

  await n.restart(RECONFIGURED);
  c = await n.connect();

  await t.test('handles, data and READDIR cookies survive a restart on the same data', async () => {
    assert.deepEqual((await c.mount('/export')).data, exp.data, 'the same root handle');
    assert.equal(Buffer.from(await c.readAll(kept.fh)).toString(), 'before the restart');
    assert.equal((await c.getattr(keptDir.fh)).type, nfs3.NF3DIR);
    assert.deepEqual((await c.lookup(exp, 'kept')).fh.data, kept.fh.data);
    const after = await c.readdirAll(exp);
    assert.deepEqual(
      after.map((e) => [Buffer.from(e.name).toString(), e.cookie, e.fileid]),
      cookiesBefore.map((e) => [Buffer.from(e.name).toString(), e.cookie, e.fileid]),
    );
    // A cookie from before the restart resumes where it left off.
    const resumed = await c.readdir(exp, cookiesBefore[2].cookie);
    assert.deepEqual(
      resumed.entries.map((e) => e.cookie),
      cookiesBefore.slice(3).map((e) => e.cookie),
    );
  });

  await t.test('the write verifier changes across a restart; COMMIT answers the new one', async () => {
    const cm = await c.commit(unstable.fh);
    assert.notDeepEqual(cm.verf, verfBefore, 'a client must resend what it wrote UNSTABLE');
    const w2 = await c.write(unstable.fh, 0, Buffer.from('unstable data'), nfs3.UNSTABLE);
    assert.deepEqual(w2.verf, cm.verf);
    assert.deepEqual((await c.commit(unstable.fh)).verf, cm.verf);
    // writeAll does exactly that: the data is whole after it.
    await c.writeAll(unstable.fh, Buffer.from('rewritten'));
    assert.equal(Buffer.from(await c.readAll(unstable.fh)).toString(), 'rewrittendata');
  });

  await t.test('STALE: a handle of an export no longer configured; MNT of it is NOENT', async () => {
    await rejectsWith(c.getattr(gone), 'NFS3ERR_STALE');
    await rejectsWith(c.getattr(goneFile.fh), 'NFS3ERR_STALE');
    await rejectsWith(c.read(goneFile.fh, 0, 1), 'NFS3ERR_STALE');
    await rejectsWith(c.create(gone, 'x'), 'NFS3ERR_STALE');
    await assert.rejects(
      c.mount('/gone'),
      (e: unknown) => e instanceof MountError && e.code === 'MNT3ERR_NOENT',
    );
    assert.ok(!(await c.exports()).some((e) => e.dir === '/gone'));
  });

  await t.test('ACCES: a client outside the networks of an export', async () => {
    await assert.rejects(
      c.mount('/far'),
      (e: unknown) => e instanceof MountError && e.code === 'MNT3ERR_ACCES',
    );
    const listed = (await c.exports()).find((e) => e.dir === '/far');
    assert.deepEqual(listed?.groups, ['192.0.2.0/24', '2001:db8::/32']);
    // A handle obtained while the client was allowed is refused by every procedure.
    await rejectsWith(c.getattr(far), 'NFS3ERR_ACCES');
    await rejectsWith(c.lookup(far, 'file'), 'NFS3ERR_ACCES');
    await rejectsWith(c.readdir(far), 'NFS3ERR_ACCES');
    await rejectsWith(c.read(farFile.fh, 0, 10), 'NFS3ERR_ACCES');
    await rejectsWith(c.write(farFile.fh, 0, Buffer.from('x')), 'NFS3ERR_ACCES');
    await rejectsWith(c.setattr(farFile.fh, { mode: 0o600 }), 'NFS3ERR_ACCES');
    await rejectsWith(c.create(far, 'x'), 'NFS3ERR_ACCES');
    await rejectsWith(c.remove(far, 'file'), 'NFS3ERR_ACCES');
    await rejectsWith(c.fsinfo(far), 'NFS3ERR_ACCES');
    await rejectsWith(c.access(far, 1), 'NFS3ERR_ACCES');
    // Whoever the client says it is.
    const alice = await n.connect(ALICE);
    await rejectsWith(alice.getattr(farFile.fh), 'NFS3ERR_ACCES');
    // Nothing the refused calls asked for happened.
    const root = await c.mount('/export');
    await rejectsWith(c.link(farFile.fh, root, 'smuggled'), 'NFS3ERR_ACCES');
    await rejectsWith(c.lookup(root, 'smuggled'), 'NFS3ERR_NOENT');
  });

  await t.test('ROFS: every change on a read-only export; reads work; ACCESS grants no change', async () => {
    assert.equal(Buffer.from(await c.readAll(roFile.fh)).toString(), 'read me');
    assert.equal((await c.lookup(ro, 'file')).attributes?.size, 7n);
    assert.equal(Buffer.from(await c.readlink(roLink.fh)).toString(), 'file');
    assert.equal((await c.readdirAll(ro)).length, 5);
    assert.ok((await c.readdirplusAll(ro)).length === 5);
    await c.fsstat(ro);
    await c.fsinfo(ro);
    await c.pathconf(ro);
    const all = 0x3f;
    const change = nfs3.ACCESS3_MODIFY | nfs3.ACCESS3_EXTEND | nfs3.ACCESS3_DELETE;
    assert.equal(await c.access(roFile.fh, all), nfs3.ACCESS3_READ);
    const dirAccess = await c.access(roDir.fh, all);
    assert.equal(dirAccess & change, 0, 'nothing that changes the 0777 directory');
    assert.equal(
      dirAccess & (nfs3.ACCESS3_READ | nfs3.ACCESS3_LOOKUP),
      nfs3.ACCESS3_READ | nfs3.ACCESS3_LOOKUP,
    );
    await rejectsWith(c.setattr(roFile.fh, { mode: 0o600 }), 'NFS3ERR_ROFS');
    await rejectsWith(c.write(roFile.fh, 0, Buffer.from('x')), 'NFS3ERR_ROFS');
    await rejectsWith(c.create(ro, 'new'), 'NFS3ERR_ROFS');
    await rejectsWith(c.create(ro, 'file', { mode: 'UNCHECKED', attributes: { size: 0 } }), 'NFS3ERR_ROFS');
    await rejectsWith(c.create(ro, 'x', { mode: 'EXCLUSIVE', verifier: randomBytes(8) }), 'NFS3ERR_ROFS');
    await rejectsWith(c.mkdir(ro, 'new'), 'NFS3ERR_ROFS');
    await rejectsWith(c.symlink(ro, 'new', 'x'), 'NFS3ERR_ROFS');
    await rejectsWith(c.mknod(ro, 'new', nfs3.NF3FIFO), 'NFS3ERR_ROFS');
    await rejectsWith(c.remove(ro, 'file'), 'NFS3ERR_ROFS');
    await rejectsWith(c.rmdir(ro, 'dir'), 'NFS3ERR_ROFS');
    await rejectsWith(c.rename(ro, 'file', ro, 'moved'), 'NFS3ERR_ROFS');
    await rejectsWith(c.link(roFile.fh, ro, 'again'), 'NFS3ERR_ROFS');
    // An ordinary user the mode bits would allow: the export still refuses.
    const alice = await n.connect(ALICE);
    await rejectsWith(alice.create(roDir.fh, 'mine'), 'NFS3ERR_ROFS');
    assert.equal(Buffer.from(await c.readAll(roFile.fh)).toString(), 'read me');
    assert.equal((await c.readdirAll(ro)).length, 5);
  });

  await t.test('XDEV: nothing renamed or linked from one export into another', async () => {
    const root = await c.mount('/export');
    const all = await c.mount('/all');
    await rejectsWith(c.rename(root, 'kept', all, 'kept'), 'NFS3ERR_XDEV');
    await rejectsWith(c.link(kept.fh, all, 'kept'), 'NFS3ERR_XDEV');
    await rejectsWith(c.lookup(all, 'kept'), 'NFS3ERR_NOENT');
    assert.deepEqual((await c.lookup(root, 'kept')).fh.data, kept.fh.data);
  });

  await t.test("LOOKUP '..' at the root of every export stays there", async () => {
    for (const path of ['/export', '/squash', '/all', '/ro']) {
      const r = await c.mount(path);
      const up = await c.lookup(r, '..');
      assert.deepEqual(up.fh.data, r.data, path);
      const upup = await c.lookup(up.fh, '..');
      assert.deepEqual(upup.fh.data, r.data, path);
    }
  });

  await t.test('root squash: root acts as anonuid/anongid; other users as themselves', async () => {
    const sq = await c.mount('/squash');
    // The export's root is root's: squashed root is not its owner and may not chmod it.
    await rejectsWith(c.setattr(sq, { mode: 0o777 }), 'NFS3ERR_PERM');
    const f = await c.create(sq, 'by-root', { attributes: { mode: 0o644 } });
    assert.equal(f.attributes?.uid, 4242);
    assert.equal(f.attributes?.gid, 4343);
    const d = await c.mkdir(sq, 'dir-by-root');
    assert.equal(d.attributes?.uid, 4242);
    const alice = await n.connect(ALICE);
    const af = await alice.create(sq, 'by-alice', { attributes: { mode: 0o600 } });
    assert.equal(af.attributes?.uid, 1001);
    assert.equal(af.attributes?.gid, 1001);
    // Squashed root has no privilege: not over ALICE's 0600 file, not to chown.
    await rejectsWith(c.read(af.fh, 0, 1), 'NFS3ERR_ACCES');
    await rejectsWith(c.setattr(af.fh, { uid: 0 }), 'NFS3ERR_PERM');
    await rejectsWith(c.setattr(f.fh, { uid: 0 }), 'NFS3ERR_PERM');
    assert.equal((await c.access(af.fh, 0x3f)) & nfs3.ACCESS3_READ, 0);
    // Sticky directory: squashed root is just another user.
    await rejectsWith(c.remove(sq, 'by-alice'), 'NFS3ERR_PERM');
    // AUTH_NONE is anonymous too.
    const none = await n.connect('none');
    const nf = await none.create(sq, 'by-nobody', { attributes: { mode: 0o644 } });
    assert.equal(nf.attributes?.uid, 4242);
  });

  await t.test('all squash: everyone acts as anonuid/anongid', async () => {
    const all = await c.mount('/all');
    const alice = await n.connect(ALICE);
    const bob = await n.connect(BOB);
    const af = await alice.create(all, 'by-alice', { attributes: { mode: 0o600 } });
    assert.equal(af.attributes?.uid, 5151);
    assert.equal(af.attributes?.gid, 5252);
    const rf = await c.create(all, 'by-root', { attributes: { mode: 0o600 } });
    assert.equal(rf.attributes?.uid, 5151);
    // BOB is the same anonymous user: ALICE's 0600 file is his too.
    await bob.write(af.fh, 0, Buffer.from('bob was here'));
    assert.equal(Buffer.from(await alice.readAll(af.fh)).toString(), 'bob was here');
    await rejectsWith(c.setattr(af.fh, { uid: 0 }), 'NFS3ERR_PERM');
  });

  await t.test('setgid directories: new entries take its group, subdirectories its setgid bit', async () => {
    const root = await c.mount('/export');
    const shared = await c.mkdir(root, 'shared', { mode: 0o777, gid: 50 });
    assert.equal(shared.attributes?.gid, 50);
    await c.setattr(shared.fh, { mode: 0o2777 });
    const member = await n.connect({ uid: 1001, gid: 1001, gids: [1001, 50] });
    const stranger = await n.connect(BOB);
    const f = await member.create(shared.fh, 'file', { attributes: { mode: 0o2755 } });
    assert.equal(f.attributes?.gid, 50);
    assert.equal(f.attributes?.mode, 0o2755, 'a member keeps setgid on her file');
    const d = await member.mkdir(shared.fh, 'sub', { mode: 0o755 });
    assert.equal(d.attributes?.gid, 50);
    assert.equal(d.attributes?.mode, 0o2755, 'a subdirectory inherits setgid');
    const deeper = await stranger.mkdir(d.fh, 'deeper', { mode: 0o777 }).catch(() => null);
    assert.equal(deeper, null, 'BOB may not write a 0755 directory of ALICE');
    const sf = await stranger.create(shared.fh, 'strangers', { attributes: { mode: 0o2755 } });
    assert.equal(sf.attributes?.gid, 50);
    assert.equal(sf.attributes?.mode, 0o755, 'no setgid-executable file in a group the creator is not in');
    const sd = await stranger.mkdir(shared.fh, 'strangers-dir', { mode: 0o700 });
    assert.equal(sd.attributes?.gid, 50);
    assert.equal(sd.attributes?.mode, 0o2700);
    // Outside a setgid directory the creator's own group, and mkdir ignores a requested setgid.
    const plain = await c.mkdir(root, 'plain', { mode: 0o2755 });
    assert.equal(plain.attributes?.mode, 0o755);
    assert.equal(plain.attributes?.gid, 0);
  });

  await t.test(
    'changing the exports needs no client to remount: the same handles follow the rules',
    async () => {
      await n.restart(EXPORTS);
      const again: NfsClient = await n.connect(ROOT);
      // /ro is writable again and /far reachable, with the handles from the first boot.
      await again.write(roFile.fh, 0, Buffer.from('READ'));
      assert.equal(Buffer.from(await again.readAll(roFile.fh)).toString(), 'READ me');
      assert.equal((await again.getattr(farFile.fh)).type, nfs3.NF3REG);
      // /gone was removed from the exports, not from the data: back in the file, it is back.
      assert.equal((await again.getattr(goneFile.fh)).type, nfs3.NF3REG);
      assert.deepEqual((await again.mount('/gone')).data, gone.data);
    },
  );
}
