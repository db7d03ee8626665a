import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseFailpoints, UnknownFailpointError } from '../src/failpoints.js';

test('failpoints: a list of known names parses, blanks ignored', () => {
  assert.deepEqual(
    [...parseFailpoints(' store.ack-before-sync,,nfs.write.drop ')],
    ['store.ack-before-sync', 'nfs.write.drop'],
  );
  assert.equal(parseFailpoints(undefined).size, 0);
});

test('failpoints: an unknown name is refused, naming the known ones', () => {
  assert.throws(
    () => parseFailpoints('store.ack-before-sync,store.ack-befor-sync'),
    (e: unknown) =>
      e instanceof UnknownFailpointError &&
      e.code === 'UNKNOWN_FAILPOINT' &&
      /store\.ack-befor-sync/.test(e.message),
  );
});

test('failpoints: a node process started with a typo refuses to start', () => {
  const cli = join(import.meta.dirname, '..', 'src', 'cli', 'main.js');
  const r = spawnSync(process.execPath, [cli, 'status'], {
    env: { ...process.env, CAIRN_FAILPOINTS: 'nfs.write.dorp' },
    encoding: 'utf8',
    timeout: 20_000,
  });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /unknown failpoint 'nfs\.write\.dorp'/);
});
