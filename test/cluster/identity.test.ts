import assert from 'node:assert/strict';
import { sign, verify } from 'node:crypto';
import { chmodSync, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  BOOT_FILE,
  decodeIdentity,
  ed25519PublicKeyFromRaw,
  encodeIdentity,
  generateIdentity,
  IDENTITY_FILE,
  IdentityError,
  loadIdentity,
  loadOrCreateIdentity,
  nextBootEpoch,
} from '../../src/cluster/identity.js';
import { hasCommand, runCommand } from '../support/process.js';
import { makeTempDir, removeTempDir } from '../support/tmp.js';

const isCode = (code: string) => (e: unknown) => e instanceof IdentityError && e.code === code;

test('an identity is created once, kept 0600, and the same id and key come back on later starts', () => {
  const dir = makeTempDir('identity');
  try {
    const first = loadOrCreateIdentity(dir);
    assert.equal(first.nodeId.length, 16);
    assert.match(first.nodeIdHex, /^[0-9a-f]{32}$/);
    assert.equal(statSync(join(dir, IDENTITY_FILE)).mode & 0o777, 0o600);
    const again = loadOrCreateIdentity(dir);
    assert.equal(again.nodeIdHex, first.nodeIdHex);
    assert.ok(again.publicKeyRaw.equals(first.publicKeyRaw));
    // The reloaded private key signs what the first public key accepts.
    const msg = Buffer.from('refute incarnation 7');
    assert.ok(verify(null, msg, first.publicKey, sign(null, msg, again.privateKey)));
    assert.ok(
      verify(null, msg, ed25519PublicKeyFromRaw(first.publicKeyRaw), sign(null, msg, again.privateKey)),
    );
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.includes('tmp')),
      [],
      'no temporary files left',
    );
    // Two nodes never share an identity.
    const other = makeTempDir('identity2');
    assert.notEqual(loadOrCreateIdentity(other).nodeIdHex, first.nodeIdHex);
    removeTempDir(other);
  } finally {
    removeTempDir(dir);
  }
});

test('every start gets a higher boot epoch, persisted', () => {
  const dir = makeTempDir('boot');
  try {
    loadOrCreateIdentity(dir);
    assert.equal(nextBootEpoch(dir), 1);
    assert.equal(nextBootEpoch(dir), 2);
    assert.equal(loadOrCreateIdentity(dir).nodeIdHex, loadIdentity(dir)!.nodeIdHex);
    assert.equal(nextBootEpoch(dir), 3);
  } finally {
    removeTempDir(dir);
  }
});

test('a damaged identity file is an error and is never replaced (any bit flip, truncation, extension)', () => {
  const dir = makeTempDir('identity-damage');
  try {
    loadOrCreateIdentity(dir);
    const path = join(dir, IDENTITY_FILE);
    const good = readFileSync(path);
    const damaged: Buffer[] = [
      good.subarray(0, 50),
      Buffer.concat([good, Buffer.from([0])]),
      Buffer.alloc(0),
    ];
    for (let bit = 0; bit < good.length * 8; bit++) {
      const b = Buffer.from(good);
      b[bit >> 3] ^= 1 << (bit & 7);
      damaged.push(b);
    }
    for (const bytes of damaged) {
      assert.throws(() => decodeIdentity(bytes), isCode('IDENTITY_DAMAGED'));
    }
    // Through the file: the error, and the file still holds exactly the damaged bytes.
    for (const bytes of [damaged[0], damaged[7], damaged[500]]) {
      writeFileSync(path, bytes, { mode: 0o600 });
      assert.throws(() => loadOrCreateIdentity(dir), isCode('IDENTITY_DAMAGED'));
      assert.ok(readFileSync(path).equals(bytes));
    }
  } finally {
    removeTempDir(dir);
  }
});

test('an identity readable by others is refused, as ssh refuses such keys', () => {
  const dir = makeTempDir('identity-mode');
  try {
    loadOrCreateIdentity(dir);
    chmodSync(join(dir, IDENTITY_FILE), 0o644);
    assert.throws(() => loadOrCreateIdentity(dir), isCode('IDENTITY_INSECURE'));
  } finally {
    removeTempDir(dir);
  }
});

test('a damaged or missing boot file beside an identity is an error, not a restart from 1', () => {
  const dir = makeTempDir('boot-damage');
  try {
    loadOrCreateIdentity(dir);
    nextBootEpoch(dir);
    const path = join(dir, BOOT_FILE);
    const good = readFileSync(path);
    const flipped = Buffer.from(good);
    flipped[15] ^= 1;
    writeFileSync(path, flipped);
    assert.throws(() => nextBootEpoch(dir), isCode('IDENTITY_DAMAGED'));
    unlinkSync(path);
    assert.throws(() => nextBootEpoch(dir), isCode('IDENTITY_DAMAGED'));
    writeFileSync(path, good);
    assert.equal(nextBootEpoch(dir), 2);
  } finally {
    removeTempDir(dir);
  }
});

test('encode and decode are inverse', () => {
  const id = generateIdentity();
  const back = decodeIdentity(encodeIdentity(id));
  assert.equal(back.nodeIdHex, id.nodeIdHex);
  assert.ok(back.publicKeyRaw.equals(id.publicKeyRaw));
});

test('strace: the identity is written to a temporary file, fsynced, linked, then its directory fsynced', {
  skip: !hasCommand('strace') && 'strace is not installed',
}, async () => {
  const dir = makeTempDir('identity-strace');
  try {
    const data = join(dir, 'data');
    const trace = join(dir, 'trace.txt');
    const mod = fileURLToPath(new URL('../../src/cluster/identity.js', import.meta.url));
    const script =
      `const m = await import(${JSON.stringify(mod)}); const fs = await import('node:fs');` +
      `fs.mkdirSync(${JSON.stringify(data)}); m.loadOrCreateIdentity(${JSON.stringify(data)}); m.nextBootEpoch(${JSON.stringify(data)});`;
    const r = await runCommand(
      'strace',
      [
        '-f',
        '-y',
        '-o',
        trace,
        '-e',
        'trace=openat,write,fsync,link,linkat,rename,renameat,renameat2',
        process.execPath,
        '--input-type=module',
        '-e',
        script,
      ],
      { timeoutMs: 60_000 },
    );
    assert.equal(r.code, 0, r.stderr);
    const lines = readFileSync(trace, 'utf8').split('\n');
    const find = (from: number, re: RegExp, what: string): number => {
      for (let i = from; i < lines.length; i++) if (re.test(lines[i])) return i;
      assert.fail(`no ${what} after line ${from} in the trace`);
    };
    const id = IDENTITY_FILE.replace('-', '\\-');
    const write = find(
      0,
      new RegExp(`write\\(\\d+<[^>]*\\.${id}\\.tmp-[^>]*>`),
      'write of the temporary identity',
    );
    const fsync = find(write, new RegExp(`fsync\\(\\d+<[^>]*\\.${id}\\.tmp-[^>]*>\\) = 0`), 'fsync of it');
    const link = find(fsync, new RegExp(`link(at)?\\(.*\\.${id}\\.tmp-.*${id}"`), 'link to the final name');
    find(link, new RegExp(`fsync\\(\\d+<${data}>\\) = 0`), 'fsync of the data directory');
    // The boot epoch's replacement follows the same order, through rename.
    const bootWrite = find(link, /write\(\d+<[^>]*\.cluster-boot\.tmp-[^>]*>/, 'write of the boot file');
    const bootFsync = find(bootWrite, /fsync\(\d+<[^>]*\.cluster-boot\.tmp-[^>]*>\) = 0/, 'fsync of it');
    const rename = find(
      bootFsync,
      /rename(at2?)?\(.*\.cluster-boot\.tmp-.*cluster-boot"/,
      'rename over the boot file',
    );
    find(rename, new RegExp(`fsync\\(\\d+<${data}>\\) = 0`), 'fsync of the data directory');
  } finally {
    removeTempDir(dir);
  }
});
