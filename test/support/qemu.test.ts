/**
 * The QEMU guest harness itself: its initramfs pieces checked against the real tools and the
 * installed kernel, and a real guest's exit status, transcript and timeout.
 */
import assert from 'node:assert/strict';
import { readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { withNetns } from './netns.js';
import { runCommand } from './process.js';
import {
  cpioNewc,
  findGuestKernel,
  GUEST_MODULES,
  GuestError,
  guestBaseImage,
  resolveModules,
  runGuest,
  transcriptDiff,
} from './qemu.js';
import { withTempDir } from './tmp.js';

test('cpioNewc writes an archive GNU cpio unpacks: directories, files, symlinks, padding', async () => {
  await withTempDir('cpio', async (dir) => {
    const odd = Buffer.from('x'.repeat(4097));
    const archive = cpioNewc([
      { path: 'a', mode: 0o040755 },
      { path: 'a/file', mode: 0o100640, data: odd },
      { path: 'a/empty', mode: 0o100600 },
      { path: 'a/link', mode: 0o120777, data: Buffer.from('file') },
      { path: 'b', mode: 0o100755, data: Buffer.from('#!/bin/sh\n') },
    ]);
    assert.equal(archive.length % 4, 0);
    writeFileSync(join(dir, 'archive.cpio'), archive);
    const r = await runCommand('cpio', ['-idm', '--quiet', '-D', dir, '-F', join(dir, 'archive.cpio')]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(readFileSync(join(dir, 'a/file')), odd);
    assert.equal(statSync(join(dir, 'a/file')).mode & 0o7777, 0o640);
    assert.equal(statSync(join(dir, 'a/empty')).size, 0);
    assert.equal(readlinkSync(join(dir, 'a/link')), 'file');
    assert.equal(statSync(join(dir, 'b')).mode & 0o7777, 0o755);
  });
});

test("resolveModules orders the NFS client's modules after everything they depend on", () => {
  const kernel = findGuestKernel();
  const order = resolveModules(kernel.moduleDir, GUEST_MODULES);
  const names = order.map((m) => m.name);
  // Debian builds every one of them as a module.
  for (const m of GUEST_MODULES) assert.ok(names.includes(m), `${m} is loaded`);
  const dep = readFileSync(join(kernel.moduleDir, 'modules.dep'), 'utf8');
  for (const [i, m] of order.entries()) {
    const line = dep.split('\n').find((l) => l.startsWith(`${m.path}:`));
    assert.ok(line, `${m.path} in modules.dep`);
    for (const d of line
      .slice(line.indexOf(':') + 1)
      .split(/\s+/)
      .filter(Boolean)) {
      const at = order.findIndex((o) => o.path === d);
      assert.ok(at >= 0 && at < i, `${d} is loaded before ${m.name}`);
    }
  }
  assert.equal(names.at(-1), 'nfsv3');
  assert.throws(() => resolveModules(kernel.moduleDir, ['no_such_module']), /no_such_module/);
});

test('transcriptDiff is silent on equal transcripts and shows a changed line once', () => {
  assert.equal(transcriptDiff(['a: ok', 'b: ok'], ['a: ok', 'b: ok']), undefined);
  const d = transcriptDiff(['a: ok', 'b: ok', 'c: ok'], ['a: ok', 'b: FAIL x', 'c: ok']);
  assert.match(d ?? '', /- b: ok\n\+ b: FAIL x$/);
  assert.match(
    transcriptDiff(['a: ok', 'c: ok'], ['a: ok', 'b: ok', 'c: ok']) ?? '',
    /\(1 lines\)\n\+ b: ok$/,
  );
});

test('a guest runs its script and reports its output and exit status, then powers off', {
  timeout: 180_000,
}, async () => {
  guestBaseImage();
  await withNetns('guest', async (ns) => {
    const r = await runGuest(ns, {
      script: 'echo "hello from $(uname -s)"; echo to-stderr >&2; cat /guest/extra; exit 7\n',
      files: { extra: 'extra file\n' },
      timeoutMs: 150_000,
    });
    assert.equal(r.transcript, 'hello from Linux\nto-stderr\nextra file\n');
    assert.equal(r.exitCode, 7);
    assert.match(r.console, /reboot: Power down/);
    assert.ok(r.bootMs > 0 && r.runMs >= 0);
    // Nothing of QEMU's is left in the namespace.
    const pids = await runCommand('ip', ['netns', 'pids', ns.name]);
    assert.equal(pids.stdout.trim(), '');
  });
});

test('a guest that does not finish in time is killed, and the error shows its console', {
  timeout: 60_000,
}, async () => {
  guestBaseImage();
  await withNetns('guest-timeout', async (ns) => {
    const started = Date.now();
    await assert.rejects(
      runGuest(ns, { script: 'exit 0\n', timeoutMs: 1500 }),
      (e: unknown) => e instanceof GuestError && /did not finish within 1500 ms/.test(e.message),
    );
    assert.ok(Date.now() - started < 15_000, 'the timeout ends the run promptly');
    const pids = await runCommand('ip', ['netns', 'pids', ns.name]);
    assert.equal(pids.stdout.trim(), '');
  });
});
