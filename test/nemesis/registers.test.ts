// The registers workload's pieces that need no cluster: what a file holds for a value, and the
// open writes its check may leave out.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Operation } from '../../src/check/index.js';
import { decodeValue, encodeValue, withoutUnread } from './workloads/registers.js';

test('registers: a value fills the file exactly; zeros are never written; mixed content is no value', () => {
  for (const width of [64, 6000]) {
    const b = encodeValue('1.23', width);
    assert.equal(b.length, width);
    assert.equal(decodeValue(b, width), '1.23');
    assert.equal(decodeValue(new Uint8Array(width), width), null);
    const mixed = Buffer.concat([
      encodeValue('1.23', width).subarray(0, 32),
      encodeValue('0.7', width).subarray(32),
    ]);
    assert.match(decodeValue(mixed, width) ?? '', /^!/);
    assert.match(decodeValue(b.subarray(0, width - 1), width) ?? '', /^!/);
  }
});

test('registers: open writes that no read of their key returned are left out, the others kept', () => {
  const op = (
    id: number,
    key: string,
    input: unknown,
    outcome: 'ok' | 'open',
    output?: unknown,
  ): Operation => ({
    id,
    process: id,
    key,
    input,
    call: id,
    ret: outcome === 'ok' ? id + 0.5 : undefined,
    outcome,
    output,
  });
  const history = [
    op(1, 'a', { f: 'write', value: 'x' }, 'open'),
    op(2, 'a', { f: 'write', value: 'y' }, 'open'),
    op(3, 'b', { f: 'read' }, 'ok', 'y'),
    op(4, 'a', { f: 'read' }, 'ok', 'x'),
    op(5, 'a', { f: 'write', value: 'z' }, 'ok'),
  ];
  // 'y' was read, but on another key.
  assert.deepEqual(
    withoutUnread(history).map((o) => o.id),
    [1, 3, 4, 5],
  );
});
