import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  ACCESS3_ALL,
  ACCESS3_DELETE,
  ACCESS3_EXECUTE,
  ACCESS3_EXTEND,
  ACCESS3_LOOKUP,
  ACCESS3_MODIFY,
  ACCESS3_READ,
  type AttrChange,
  access3,
  deleteDenial,
  type FileType,
  type Identity,
  mayCreate,
  mayDelete,
  mayExecute,
  mayLookup,
  mayRead,
  mayReadData,
  maySetattr,
  mayWrite,
  mayWriteData,
  modeAfterWrite,
  newObjectOwnership,
  type PermAttrs,
} from '../../src/fs/access.js';
import type { Attr as FsAttr, Identity as FsIdentity } from '../../src/fs/types.js';

// The namespace's attributes and identities can be passed to these checks as they are.
const fromNamespace = (a: FsAttr, who: FsIdentity): [PermAttrs, Identity] => [a, who];
void fromNamespace;

const ROOT: Identity = { uid: 0, gid: 0, gids: [0] };
const ALICE: Identity = { uid: 1001, gid: 1001, gids: [1001] };
/** In group 2000 through a supplementary gid only. */
const BOB: Identity = { uid: 1002, gid: 1002, gids: [1002, 2000] };
/** In group 2000 as the primary gid, with no supplementary list. */
const CAROL: Identity = { uid: 1003, gid: 2000, gids: [] };
const NOBODY: Identity = { uid: 65534, gid: 65534, gids: [] };

const file = (mode: number, uid = 1001, gid = 2000): PermAttrs => ({ type: 'reg', mode, uid, gid });
const dir = (mode: number, uid = 1001, gid = 2000): PermAttrs => ({ type: 'dir', mode, uid, gid });

test('read, write and execute pick the owner, group or other bits', () => {
  // [caller, attrs, r, w, x]
  const table: [string, Identity, PermAttrs, boolean, boolean, boolean][] = [
    ['owner rwx', ALICE, file(0o700), true, true, true],
    ['owner r only', ALICE, file(0o400), true, false, false],
    // The owner class applies even when it grants less than the group or other class.
    ['owner denied though group and other may', ALICE, file(0o077), false, false, false],
    ['supplementary group', BOB, file(0o050), true, false, true],
    ['primary group', CAROL, file(0o020), false, true, false],
    ['group denied though other may', BOB, file(0o707), false, false, false],
    ['other', NOBODY, file(0o004), true, false, false],
    ['other x', NOBODY, file(0o001), false, false, true],
    ['other nothing', NOBODY, file(0o770), false, false, false],
    ['setuid bits do not grant', NOBODY, file(0o7000), false, false, false],
    ['root reads and writes mode 000', ROOT, file(0o000), true, true, false],
    ['root executes if any x bit is set', ROOT, file(0o001), true, true, true],
    ['root executes if any x bit is set (group)', ROOT, file(0o010), true, true, true],
    ['root searches any directory', ROOT, dir(0o000), true, true, true],
    ['root owning a file is still root', { uid: 0, gid: 0, gids: [] }, file(0o000, 0, 0), true, true, false],
    ['uid 0 decides, not gid 0', { uid: 5, gid: 0, gids: [0] }, file(0o000, 1, 0), false, false, false],
    ['directory search bit', NOBODY, dir(0o001), false, false, true],
  ];
  for (const [name, who, attrs, r, w, x] of table) {
    assert.equal(mayRead(who, attrs), r, `${name}: read`);
    assert.equal(mayWrite(who, attrs), w, `${name}: write`);
    assert.equal(mayExecute(who, attrs), x, `${name}: execute`);
  }
});

test('READ and WRITE let the owner through whatever the mode (nfsd owner override); others follow the mode', () => {
  assert.equal(mayReadData(ALICE, file(0o000)), true);
  assert.equal(mayWriteData(ALICE, file(0o444)), true);
  assert.equal(mayReadData(BOB, file(0o000)), false);
  assert.equal(mayWriteData(BOB, file(0o040)), false);
  assert.equal(mayWriteData(BOB, file(0o020)), true);
  assert.equal(mayReadData(ROOT, file(0o000)), true);
  assert.equal(mayWriteData(NOBODY, file(0o002)), true);
});

test('ACCESS bits for files and directories', () => {
  const R = ACCESS3_READ;
  const L = ACCESS3_LOOKUP;
  const M = ACCESS3_MODIFY;
  const E = ACCESS3_EXTEND;
  const D = ACCESS3_DELETE;
  const X = ACCESS3_EXECUTE;
  const table: [string, Identity, PermAttrs, number, number][] = [
    ['file rwx', ALICE, file(0o700), ACCESS3_ALL, R | M | E | X],
    ['file r--', ALICE, file(0o400), ACCESS3_ALL, R],
    ['file -w-', ALICE, file(0o200), ACCESS3_ALL, M | E],
    ['file --x', ALICE, file(0o100), ACCESS3_ALL, X],
    ['file, only what was asked', ALICE, file(0o700), R | X, R | X],
    ['file, nothing asked', ALICE, file(0o700), 0, 0],
    ['unknown bits dropped', ALICE, file(0o700), 0xffffffff, R | M | E | X],
    ['dir rwx', BOB, dir(0o070), ACCESS3_ALL, R | L | M | E | D],
    ['dir r-x', BOB, dir(0o050), ACCESS3_ALL, R | L],
    // Writing a directory's entries needs search as well as write.
    ['dir -w-', BOB, dir(0o020), ACCESS3_ALL, 0],
    ['dir -wx', BOB, dir(0o030), ACCESS3_ALL, L | M | E | D],
    ['dir r--', BOB, dir(0o040), ACCESS3_ALL, R],
    ['root, file 000', ROOT, file(0o000), ACCESS3_ALL, R | M | E],
    ['root, file 001', ROOT, file(0o001), ACCESS3_ALL, R | M | E | X],
    ['root, dir 000', ROOT, dir(0o000), ACCESS3_ALL, R | L | M | E | D],
    [
      'symlink treated as a non-directory',
      NOBODY,
      { type: 'lnk', mode: 0o777, uid: 0, gid: 0 },
      ACCESS3_ALL,
      R | M | E | X,
    ],
  ];
  for (const [name, who, attrs, asked, want] of table) assert.equal(access3(who, attrs, asked), want, name);
});

test('ACCESS never grants more than was asked, nor more than root gets (property)', () => {
  const who = fc.record({
    uid: fc.constantFrom(0, 1001, 1002, 1003),
    gid: fc.constantFrom(0, 1001, 2000),
    gids: fc.array(fc.constantFrom(0, 1001, 2000, 3000), { maxLength: 3 }),
  });
  const attrs = fc.record({
    type: fc.constantFrom('reg', 'dir', 'lnk'),
    mode: fc.nat({ max: 0o7777 }),
    uid: fc.constantFrom(0, 1001, 1002),
    gid: fc.constantFrom(0, 1001, 2000),
  });
  fc.assert(
    fc.property(who, attrs, fc.nat({ max: 0xffffffff }), (c, a, asked) => {
      const got = access3(c, a, asked);
      assert.equal(got & ~asked, 0);
      assert.equal(got & ~ACCESS3_ALL, 0);
      assert.equal(got & ~access3(ROOT, a, asked), 0);
      // The bits that mean nothing for the type are never granted.
      if (a.type === 'dir') assert.equal(got & ACCESS3_EXECUTE, 0);
      else assert.equal(got & (ACCESS3_LOOKUP | ACCESS3_DELETE), 0);
    }),
  );
});

test('lookup and create need search (and write) on a directory, and a directory', () => {
  assert.equal(mayLookup(NOBODY, dir(0o001)), true);
  assert.equal(mayLookup(NOBODY, dir(0o004)), false);
  assert.equal(mayLookup(ROOT, file(0o777)), false);
  assert.equal(mayCreate(NOBODY, dir(0o003)), true);
  assert.equal(mayCreate(NOBODY, dir(0o002)), false);
  assert.equal(mayCreate(NOBODY, dir(0o001)), false);
  assert.equal(mayCreate(ROOT, dir(0o000)), true);
  assert.equal(mayCreate(ROOT, file(0o777)), false);
});

test('deleting from sticky and ordinary directories', () => {
  // [name, caller, dir, victim, allowed]
  const table: [string, Identity, PermAttrs, PermAttrs, boolean][] = [
    ['plain dir, writable: anyone removes anything', NOBODY, dir(0o777, 0), file(0o600, 1001), true],
    ['plain dir, not writable', NOBODY, dir(0o755, 0), file(0o666, 65534), false],
    ['plain dir, writable but not searchable', NOBODY, dir(0o776, 0), file(0o666, 65534), false],
    ['sticky: owner of the file', ALICE, dir(0o1777, 0), file(0o600, 1001), true],
    ['sticky: someone else', BOB, dir(0o1777, 0), file(0o666, 1001), false],
    ['sticky: owner of the directory', BOB, dir(0o1777, 1002), file(0o600, 1001), true],
    ['sticky: root', ROOT, dir(0o1000, 1002), file(0o600, 1001), true],
    ['sticky: group member with group write', CAROL, dir(0o1770, 0, 2000), file(0o666, 1001), false],
    ['sticky: owner of the file without write on the dir', ALICE, dir(0o1755, 0), file(0o600, 1001), false],
  ];
  for (const [name, who, d, v, ok] of table) assert.equal(mayDelete(who, d, v), ok, name);
});

test('setattr: who may chown, chgrp, chmod, set times and truncate', () => {
  type Want = { ok: true; mode?: number } | { status: 'NFS3ERR_PERM' | 'NFS3ERR_ACCES' };
  const table: [string, Identity, PermAttrs, AttrChange, Want][] = [
    ['owner chmod', ALICE, file(0o644, 1001, 1001), { mode: 0o600 }, { ok: true, mode: 0o600 }],
    ['non-owner chmod', BOB, file(0o666), { mode: 0o600 }, { status: 'NFS3ERR_PERM' }],
    ['root chmod', ROOT, file(0o644), { mode: 0o7777 }, { ok: true, mode: 0o7777 }],
    [
      'chmod keeps only permission bits',
      ALICE,
      file(0o644, 1001, 1001),
      { mode: 0o100755 },
      { ok: true, mode: 0o755 },
    ],
    // Alice owns the file but is not in its group 2000: she cannot make it setgid.
    ['owner chmod g+s outside the group', ALICE, file(0o755), { mode: 0o2755 }, { ok: true, mode: 0o755 }],
    [
      'owner chmod g+s inside the group',
      CAROL,
      file(0o755, 1003),
      { mode: 0o2755 },
      { ok: true, mode: 0o2755 },
    ],
    ['owner chmod u+s', ALICE, file(0o755), { mode: 0o4755 }, { ok: true, mode: 0o4755 }],
    ['root chmod g+s outside the group', ROOT, file(0o755), { mode: 0o2755 }, { ok: true, mode: 0o2755 }],
    ['chown by root', ROOT, file(0o644), { uid: 1002 }, { ok: true }],
    ['chown by the owner to someone else', ALICE, file(0o644), { uid: 1002 }, { status: 'NFS3ERR_PERM' }],
    ['chown by the owner to itself', ALICE, file(0o644), { uid: 1001 }, { ok: true }],
    ['chown by another to the same owner', BOB, file(0o666), { uid: 1001 }, { status: 'NFS3ERR_PERM' }],
    ['chgrp by the owner to its own group', ALICE, file(0o644), { gid: 1001 }, { ok: true }],
    [
      'chgrp by the owner to a group it is not in',
      ALICE,
      file(0o644),
      { gid: 3000 },
      { status: 'NFS3ERR_PERM' },
    ],
    ['chgrp by the owner to the current group', ALICE, file(0o644), { gid: 2000 }, { ok: true }],
    [
      'chgrp by a group member who is not the owner',
      BOB,
      file(0o666),
      { gid: 1002 },
      { status: 'NFS3ERR_PERM' },
    ],
    ['chgrp by root', ROOT, file(0o644), { gid: 3000 }, { ok: true }],
    [
      'owner chgrp via supplementary group',
      { uid: 1001, gid: 1001, gids: [3000] },
      file(0o644),
      { gid: 3000 },
      { ok: true },
    ],
    // Changing owner or group of a non-directory revokes set-id bits, even for root.
    ['chown clears setuid', ROOT, file(0o4755), { uid: 1002 }, { ok: true, mode: 0o755 }],
    [
      'chown clears setgid when group-executable',
      ROOT,
      file(0o2755),
      { uid: 1002 },
      { ok: true, mode: 0o755 },
    ],
    ['root chown keeps setgid without group-execute', ROOT, file(0o2745), { uid: 1002 }, { ok: true }],
    [
      'chgrp by an owner outside the old group clears setgid',
      ALICE,
      file(0o2744),
      { gid: 1001 },
      { ok: true, mode: 0o744 },
    ],
    ['chown of a directory keeps its set-id bits', ROOT, dir(0o6755), { uid: 1002 }, { ok: true }],
    [
      'chown and chmod together: set-id bits go from the new mode',
      ROOT,
      file(0o644),
      { uid: 1002, mode: 0o6755 },
      { ok: true, mode: 0o755 },
    ],
    [
      'chown and chmod together: setgid without g+x stays',
      ROOT,
      file(0o644),
      { uid: 1002, mode: 0o6745 },
      { ok: true, mode: 0o2745 },
    ],
    ['owner sets times to a value', ALICE, file(0o444), { mtime: 'client', atime: 'client' }, { ok: true }],
    ['writer sets times to a value', BOB, file(0o666), { mtime: 'client' }, { status: 'NFS3ERR_PERM' }],
    ['writer sets times to now', BOB, file(0o666), { mtime: 'server', atime: 'server' }, { ok: true }],
    ['group writer sets times to now', CAROL, file(0o660), { atime: 'server' }, { ok: true }],
    ['reader sets times to now', BOB, file(0o644), { mtime: 'server' }, { status: 'NFS3ERR_ACCES' }],
    ['root sets times to a value', ROOT, file(0o000), { mtime: 'client' }, { ok: true }],
    ['owner truncates a read-only file (owner override)', ALICE, file(0o444), { size: 0 }, { ok: true }],
    ['writer truncates', CAROL, file(0o664), { size: 0 }, { ok: true }],
    ['reader truncates', NOBODY, file(0o664), { size: 0 }, { status: 'NFS3ERR_ACCES' }],
    ['nothing asked, by anyone', NOBODY, file(0o000), {}, { ok: true }],
    [
      'chmod of a symlink changes nothing',
      ALICE,
      { type: 'lnk', mode: 0o777, uid: 1001, gid: 1001 },
      { mode: 0o700 },
      { ok: true },
    ],
  ];
  for (const [name, who, attrs, change, want] of table) {
    const got = maySetattr(who, attrs, change);
    if ('status' in want) {
      assert.equal(got.ok, false, name);
      assert.equal(!got.ok && got.status, want.status, name);
    } else {
      assert.ok(got.ok, `${name}: ${!got.ok && got.reason}`);
      assert.equal(got.ok && got.mode, want.mode, name);
    }
  }
});

test('a write by anyone but root clears setuid, and setgid if group-executable', () => {
  assert.equal(modeAfterWrite(ALICE, file(0o6755)), 0o755);
  assert.equal(modeAfterWrite(ALICE, file(0o6745)), 0o2745);
  assert.equal(modeAfterWrite(ALICE, file(0o1755)), 0o1755);
  assert.equal(modeAfterWrite(ROOT, file(0o6755)), 0o6755);
  assert.equal(modeAfterWrite(ALICE, dir(0o6755)), 0o6755);
});

test('new objects: owner is the caller; setgid directories pass on their group, and to directories the bit', () => {
  const sgid = dir(0o2775, 0, 2000);
  const plain = dir(0o775, 0, 2000);
  const table: [string, Identity, PermAttrs, FileType, number, { uid: number; gid: number; mode: number }][] =
    [
      ['file in a plain dir', ALICE, plain, 'reg', 0o644, { uid: 1001, gid: 1001, mode: 0o644 }],
      ['file in a setgid dir', ALICE, sgid, 'reg', 0o644, { uid: 1001, gid: 2000, mode: 0o644 }],
      ['dir in a setgid dir', ALICE, sgid, 'dir', 0o755, { uid: 1001, gid: 2000, mode: 0o2755 }],
      ['dir in a plain dir', ALICE, plain, 'dir', 0o755, { uid: 1001, gid: 1001, mode: 0o755 }],
      [
        'dir asking for set-id bits gets none',
        ALICE,
        plain,
        'dir',
        0o7755,
        { uid: 1001, gid: 1001, mode: 0o1755 },
      ],
      [
        'dir asking for set-id bits in a setgid dir',
        ROOT,
        sgid,
        'dir',
        0o6700,
        { uid: 0, gid: 2000, mode: 0o2700 },
      ],
      ['setgid program by an outsider', ALICE, sgid, 'reg', 0o2755, { uid: 1001, gid: 2000, mode: 0o755 }],
      ['setgid program by a member', BOB, sgid, 'reg', 0o2755, { uid: 1002, gid: 2000, mode: 0o2755 }],
      ['setgid program by root', ROOT, sgid, 'reg', 0o2755, { uid: 0, gid: 2000, mode: 0o2755 }],
      [
        'setgid without g+x by an outsider',
        ALICE,
        sgid,
        'reg',
        0o2745,
        { uid: 1001, gid: 2000, mode: 0o2745 },
      ],
      ['symlink in a setgid dir', ALICE, sgid, 'lnk', 0o777, { uid: 1001, gid: 2000, mode: 0o777 }],
    ];
  for (const [name, who, d, type, mode, want] of table) {
    assert.deepEqual(newObjectOwnership(who, d, type, mode), want, name);
  }
});

// ---------------------------------------------------------------------------------------------
// The same rules, checked against the Linux kernel on this machine: fixtures made as root with
// random modes and owners, then a child process that has become each caller (setgroups, setgid,
// setuid) tries the real system calls. (Truncation is left out: locally it is an open for
// writing, which the access checks cover, while NFS gives the owner an override.)

const PROBE = `
import * as fs from 'node:fs';
import { spawnSync } from 'node:child_process';
const spec = JSON.parse(fs.readFileSync(process.argv[1], 'utf8'));
const c = spec.caller;
process.setgroups(c.gids);
process.setgid(c.gid);
process.setuid(c.uid);
process.umask(0);
const attempt = (f) => { try { f(); return null; } catch (e) { return e.code ?? String(e); } };
const look = (p) => { const s = fs.statSync(p); return { uid: s.uid, gid: s.gid, mode: s.mode & 0o7777 }; };
// utimensat with NULL times ("now", which needs only write permission) has no Node API: one
// touch(1) for every such path, its complaints naming the paths it could not touch.
const touched = new Map();
const nowPaths = spec.checks.filter((ch) => ch.op === 'touch-now').map((ch) => ch.path);
if (nowPaths.length > 0) {
  const r = spawnSync('/usr/bin/touch', ['-c', '--', ...nowPaths], { encoding: 'utf8', env: { LC_ALL: 'C' } });
  for (const line of r.stderr.split('\\n')) {
    const m = /'(.*)': (.*)$/.exec(line);
    if (m) touched.set(m[1], /not permitted/.test(m[2]) ? 'EPERM' : /denied/.test(m[2]) ? 'EACCES' : m[2]);
  }
}
const out = spec.checks.map((ch) => {
  switch (ch.op) {
    case 'access':
      return ['R_OK', 'W_OK', 'X_OK'].map((k) => attempt(() => fs.accessSync(ch.path, fs.constants[k])) === null);
    case 'unlink':
      return { err: attempt(() => fs.unlinkSync(ch.path)) };
    case 'chmod':
      return { err: attempt(() => fs.chmodSync(ch.path, ch.mode)), ...look(ch.path) };
    case 'chown':
      return { err: attempt(() => fs.chownSync(ch.path, ch.uid, ch.gid)), ...look(ch.path) };
    case 'touch-now':
      return { err: touched.get(ch.path) ?? null };
    case 'utimes':
      return { err: attempt(() => fs.utimesSync(ch.path, 1000, 2000)) };
    case 'create': {
      const err = attempt(() => fs.closeSync(fs.openSync(ch.path, 'wx', ch.mode)));
      return err ? { err } : { err, ...look(ch.path) };
    }
    case 'mkdir': {
      const err = attempt(() => fs.mkdirSync(ch.path, ch.mode));
      return err ? { err } : { err, ...look(ch.path) };
    }
  }
});
process.stdout.write(JSON.stringify(out));
`;

/**
 * A temporary directory on tmpfs where there is one: the kernel test makes thousands of files,
 * several times faster there than on a disk, and permission checks belong to the VFS, not to
 * the file system underneath.
 */
async function withShmDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'cairn-access-'));
  try {
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const errnoOf = { NFS3ERR_PERM: 'EPERM', NFS3ERR_ACCES: 'EACCES' } as const;

type Check = { op: string; path: string; [k: string]: unknown };
type Result = { err: string | null; uid?: number; gid?: number; mode?: number } | boolean[];

function runProbe(specFile: string): Promise<Result[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', PROBE, specFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`probe exited ${code}: ${err}`)),
    );
  });
}

test('the rules agree with the Linux kernel for random modes, owners and callers', {
  skip: process.getuid?.() !== 0 ? 'needs root to create files owned by others' : false,
}, async () => {
  const seed = Number(process.env.CAIRN_SEED ?? 20261123);
  const owners = [0, 1001, 1002, 1003];
  const groups = [0, 1001, 2000, 3000];
  const attrsArb = (type: FileType, maxMode = 0o7777) =>
    fc.record({
      type: fc.constant(type),
      mode: fc.nat({ max: maxMode }),
      uid: fc.constantFrom(...owners),
      gid: fc.constantFrom(...groups),
    });
  const anyAttrs = fc.oneof(attrsArb('reg'), attrsArb('dir'));
  const sample = <T>(arb: fc.Arbitrary<T>, n: number, salt: number): T[] =>
    fc.sample(arb, { seed: seed + salt, numRuns: n });

  // The same fixtures for every caller, so each caller meets every combination.
  const accessCases = sample(anyAttrs, 150, 1);
  // Directories with their sticky bit set half the time, holding a victim file.
  const deleteCases = sample(fc.tuple(attrsArb('dir', 0o777), fc.boolean(), attrsArb('reg')), 150, 2).map(
    ([d, sticky, v]) => [{ ...d, mode: d.mode | (sticky ? 0o1000 : 0) | 0o100 }, v] as const,
  );
  const chmodCases = sample(fc.tuple(anyAttrs, fc.nat({ max: 0o7777 })), 150, 3);
  const chownCases = sample(
    fc
      .tuple(anyAttrs, fc.constantFrom(-1, ...owners), fc.constantFrom(-1, ...groups))
      .filter(([, u, g]) => u !== -1 || g !== -1),
    200,
    4,
  );
  const timeCases = sample(attrsArb('reg'), 80, 5);
  const createCases = sample(
    fc.tuple(attrsArb('dir'), fc.nat({ max: 0o7777 }), fc.nat({ max: 0o7777 })),
    150,
    6,
  );

  const callers: [string, Identity][] = [
    ['root', ROOT],
    ['alice', ALICE],
    ['bob', BOB],
    ['carol', CAROL],
    ['nobody', NOBODY],
  ];
  const make = (path: string, a: PermAttrs) => {
    if (a.type === 'dir') mkdirSync(path);
    else writeFileSync(path, 'x');
    chownSync(path, a.uid, a.gid);
    chmodSync(path, a.mode);
  };
  const fmt = (a: PermAttrs) =>
    `${a.type === 'dir' ? 'dir' : 'file'} ${a.mode.toString(8).padStart(4, '0')} ${a.uid}:${a.gid}`;

  await withShmDir(async (base) => {
    chmodSync(base, 0o755);
    const mismatches: string[] = [];
    await Promise.all(
      callers.map(async ([name, who], ci) => {
        const root = join(base, name);
        mkdirSync(root, { mode: 0o755 });
        const checks: Check[] = [];
        const expect: ((r: Result) => string | undefined)[] = [];
        const add = (check: Check, judge: (r: Result) => string | undefined) => {
          checks.push(check);
          expect.push(judge);
        };

        accessCases.forEach((a, i) => {
          const path = join(root, `a${i}`);
          make(path, a);
          add({ op: 'access', path }, (r) => {
            const want = [mayRead(who, a), mayWrite(who, a), mayExecute(who, a)];
            return JSON.stringify(r) === JSON.stringify(want)
              ? undefined
              : `access ${fmt(a)}: kernel rwx ${JSON.stringify(r)}, ours ${JSON.stringify(want)}`;
          });
        });
        deleteCases.forEach(([d, v], i) => {
          const dirPath = join(root, `u${i}`);
          mkdirSync(dirPath);
          make(join(dirPath, 'v'), v);
          chownSync(dirPath, d.uid, d.gid);
          chmodSync(dirPath, d.mode);
          add({ op: 'unlink', path: join(dirPath, 'v') }, (r) => {
            const denial = deleteDenial(who, d, v);
            const want = denial === undefined ? null : errnoOf[denial];
            const got = (r as { err: string | null }).err;
            return got === want ? undefined : `unlink in ${fmt(d)} of ${fmt(v)}: kernel ${got}, ours ${want}`;
          });
        });
        chmodCases.forEach(([a, mode], i) => {
          const path = join(root, `m${i}`);
          make(path, a);
          add({ op: 'chmod', path, mode }, (r) => {
            const got = r as { err: string | null; mode: number };
            const d = maySetattr(who, a, { mode });
            const want = d.ok
              ? { err: null, mode: d.mode ?? a.mode }
              : { err: errnoOf[d.status], mode: a.mode };
            return got.err === want.err && got.mode === want.mode
              ? undefined
              : `chmod ${mode.toString(8)} of ${fmt(a)}: kernel ${got.err} ${got.mode.toString(8)}, ours ${want.err} ${want.mode.toString(8)}`;
          });
        });
        chownCases.forEach(([a, uid, gid], i) => {
          const path = join(root, `o${i}`);
          make(path, a);
          add({ op: 'chown', path, uid, gid }, (r) => {
            const got = r as { err: string | null; uid: number; gid: number; mode: number };
            const change: AttrChange = { ...(uid >= 0 ? { uid } : {}), ...(gid >= 0 ? { gid } : {}) };
            const d = maySetattr(who, a, change);
            const want = d.ok
              ? { err: null, uid: change.uid ?? a.uid, gid: change.gid ?? a.gid, mode: d.mode ?? a.mode }
              : { err: errnoOf[d.status], uid: a.uid, gid: a.gid, mode: a.mode };
            return JSON.stringify(got) === JSON.stringify(want)
              ? undefined
              : `chown ${uid}:${gid} of ${fmt(a)}: kernel ${JSON.stringify(got)}, ours ${JSON.stringify(want)}`;
          });
        });
        timeCases.forEach((a, i) => {
          for (const [op, how] of [
            ['touch-now', 'server'],
            ['utimes', 'client'],
          ] as const) {
            const path = join(root, `t${i}-${op}`);
            make(path, a);
            add({ op, path }, (r) => {
              const d = maySetattr(who, a, { atime: how, mtime: how });
              const want = d.ok ? null : errnoOf[d.status];
              const got = (r as { err: string | null }).err;
              return got === want ? undefined : `${op} of ${fmt(a)}: kernel ${got}, ours ${want}`;
            });
          }
        });
        createCases.forEach(([d, fileMode, dirMode], i) => {
          const dirPath = join(root, `n${i}`);
          make(dirPath, d);
          for (const [op, type, mode] of [
            ['create', 'reg', fileMode],
            ['mkdir', 'dir', dirMode],
          ] as const) {
            add({ op, path: join(dirPath, op), mode }, (r) => {
              const got = r as { err: string | null; uid?: number; gid?: number; mode?: number };
              const want = mayCreate(who, d)
                ? { err: null, ...newObjectOwnership(who, d, type, mode) }
                : { err: 'EACCES' };
              return JSON.stringify(got) === JSON.stringify(want)
                ? undefined
                : `${op} ${mode.toString(8)} in ${fmt(d)}: kernel ${JSON.stringify(got)}, ours ${JSON.stringify(want)}`;
            });
          }
        });

        const specFile = join(base, `spec-${ci}.json`);
        writeFileSync(specFile, JSON.stringify({ caller: who, checks }));
        const results = await runProbe(specFile);
        assert.equal(results.length, checks.length);
        results.forEach((r, i) => {
          const m = expect[i](r);
          if (m) mismatches.push(`${name} ${JSON.stringify(who)}: ${m}`);
        });
      }),
    );
    assert.deepEqual(
      mismatches.slice(0, 40),
      [],
      `${mismatches.length} disagreements with the kernel (seed ${seed})`,
    );
  });
});
