// The membership incarnation survives a power cut: a real GossipNode, under strace, writes it to a
// temporary file, fsyncs it, renames it over cluster-incarnation, then fsyncs the data directory
// (without that last step the rename may be lost, and the node restart below what it announced:
// test/sim/disk.test.ts shows what that costs).
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runCommand } from '../support/process.js';
import { withTempDir } from '../support/tmp.js';

test('strace: the incarnation is written, fsynced, renamed into place, then its directory fsynced', async () => {
  await withTempDir('incarnation-strace', async (dir) => {
    const data = join(dir, 'data');
    mkdirSync(data);
    const trace = join(dir, 'trace.txt');
    const mod = fileURLToPath(new URL('../../src/cluster/gossip.js', import.meta.url));
    const script =
      `const { GossipNode } = await import(${JSON.stringify(mod)});` +
      `const g = new GossipNode({ dataDir: ${JSON.stringify(data)}, host: '127.0.0.1', port: 0 });` +
      'await g.start(); await g.kill();';
    const r = await runCommand(
      'strace',
      [
        ...['-f', '-y', '-o', trace, '-e', 'trace=openat,write,fsync,rename,renameat,renameat2'],
        ...[process.execPath, '--input-type=module', '-e', script],
      ],
      { timeoutMs: 60_000, env: { ...process.env, CAIRN_LOG_LEVEL: 'silent' } },
    );
    assert.equal(r.code, 0, r.stderr);
    const lines = readFileSync(trace, 'utf8').split('\n');
    const find = (from: number, re: RegExp, what: string): number => {
      for (let i = from; i < lines.length; i++) if (re.test(lines[i])) return i;
      assert.fail(
        `no ${what} after line ${from} in the trace:\n${lines.filter((l) => l.includes('incarnation')).join('\n')}`,
      );
    };
    const write = find(0, /write\(\d+<[^>]*cluster-incarnation\.tmp>/, 'write of the temporary incarnation');
    const fsync = find(write, /fsync\(\d+<[^>]*cluster-incarnation\.tmp>\) = 0/, 'fsync of it');
    const rename = find(
      fsync,
      /rename(at2?)?\(.*cluster-incarnation\.tmp.*cluster-incarnation"/,
      'rename into place',
    );
    find(rename, new RegExp(`fsync\\(\\d+<${data}>\\) = 0`), 'fsync of the data directory');
  });
});
