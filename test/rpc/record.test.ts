import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { frameRecord, RecordDecoder } from '../../src/rpc/record.js';

function withReserved(body: Buffer): Buffer[] {
  return [Buffer.concat([Buffer.alloc(4), body])];
}

test('records survive any split of the byte stream and any fragment size (property)', () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 3000 }), { minLength: 1, maxLength: 8 }),
      fc.integer({ min: 1, max: 4000 }),
      fc.array(fc.integer({ min: 1, max: 5000 }), { minLength: 1, maxLength: 20 }),
      (records, maxFragment, cuts) => {
        const stream = Buffer.concat(
          records.flatMap((r) => frameRecord(withReserved(Buffer.from(r)), maxFragment)),
        );
        const got: Buffer[] = [];
        const d = new RecordDecoder(1 << 20, (rec) => got.push(Buffer.from(rec)));
        let off = 0;
        let i = 0;
        while (off < stream.length) {
          const n = cuts[i++ % cuts.length];
          d.push(stream.subarray(off, off + n));
          off += n;
        }
        assert.deepEqual(
          got.map((b) => [...b]),
          records.map((r) => [...r]),
        );
        assert.equal(d.buffered, 0);
      },
    ),
  );
});

test('multi-fragment framing marks only the last fragment', () => {
  const chunks = frameRecord(withReserved(Buffer.from('abcdefghij')), 4);
  const wire = Buffer.concat(chunks);
  assert.equal(wire.readUInt32BE(0), 4);
  assert.equal(wire.subarray(4, 8).toString(), 'abcd');
  assert.equal(wire.readUInt32BE(8), 4);
  assert.equal(wire.readUInt32BE(16), 0x80000002);
  assert.equal(wire.subarray(20).toString(), 'ij');
});

test('a record larger than the limit is refused before it is buffered', () => {
  const d = new RecordDecoder(1000, () => assert.fail('no record expected'));
  const header = Buffer.alloc(4);
  header.writeUInt32BE((0x80000000 | 2000) >>> 0);
  assert.throws(() => d.push(header), { code: 'RPC_RECORD_TOO_LARGE' });
  const d2 = new RecordDecoder(1000, () => assert.fail('no record expected'));
  const frag = Buffer.alloc(604);
  frag.writeUInt32BE(600);
  d2.push(frag);
  assert.throws(() => d2.push(frag), { code: 'RPC_RECORD_TOO_LARGE' }, 'fragments add up against the limit');
});

test('a 2 GiB record mark costs nothing', () => {
  const d = new RecordDecoder(4 << 20, () => {});
  assert.throws(() => d.push(Buffer.from([0xff, 0xff, 0xff, 0xff])), { code: 'RPC_RECORD_TOO_LARGE' });
});

test('an empty non-final fragment is a protocol error', () => {
  const d = new RecordDecoder(1000, () => {});
  assert.throws(() => d.push(Buffer.alloc(4)), { code: 'RPC_PROTOCOL' });
});
