import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { XdrError, XdrReader, XdrWriter, xdrErrorAt } from '../../src/xdr/index.js';

function roundTrip<T>(
  write: (w: XdrWriter, v: T) => void,
  read: (r: XdrReader) => T,
  v: T,
): { bytes: Buffer; back: T } {
  const w = new XdrWriter(8);
  write(w, v);
  const bytes = w.finish();
  assert.equal(bytes.length % 4, 0, 'XDR output is a multiple of 4 bytes');
  const r = new XdrReader(bytes);
  const back = read(r);
  r.assertEnd();
  return { bytes, back };
}

test('integers encode big-endian as RFC 4506 specifies', () => {
  const w = new XdrWriter();
  w.writeInt(-2);
  w.writeUint(0xdeadbeef);
  w.writeHyper(-3n);
  w.writeUhyper(0x0102030405060708n);
  w.writeBool(true);
  assert.equal(
    w.finish().toString('hex'),
    'fffffffe' + 'deadbeef' + 'fffffffffffffffd' + '0102030405060708' + '00000001',
  );
});

test('every primitive round-trips (property)', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: -2147483648, max: 2147483647 }),
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
      fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
      fc.double({ noNaN: true }),
      fc.float({ noNaN: true }),
      fc.boolean(),
      (i, u, h, uh, d, f, b) => {
        assert.equal(
          roundTrip(
            (w, v) => w.writeInt(v),
            (r) => r.readInt(),
            i,
          ).back,
          i,
        );
        assert.equal(
          roundTrip(
            (w, v) => w.writeUint(v),
            (r) => r.readUint(),
            u,
          ).back,
          u,
        );
        assert.equal(
          roundTrip(
            (w, v) => w.writeHyper(v),
            (r) => r.readHyper(),
            h,
          ).back,
          h,
        );
        assert.equal(
          roundTrip(
            (w, v) => w.writeUhyper(v),
            (r) => r.readUhyper(),
            uh,
          ).back,
          uh,
        );
        assert.equal(
          roundTrip(
            (w, v) => w.writeDouble(v),
            (r) => r.readDouble(),
            d,
          ).back,
          d,
        );
        assert.equal(
          roundTrip(
            (w, v) => w.writeFloat(v),
            (r) => r.readFloat(),
            f,
          ).back,
          f,
        );
        assert.equal(
          roundTrip(
            (w, v) => w.writeBool(v),
            (r) => r.readBool(),
            b,
          ).back,
          b,
        );
      },
    ),
  );
});

test('opaque and strings round-trip with zero padding (property)', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 70_000 }),
      fc.string({ unit: 'grapheme', maxLength: 300 }),
      (data, s) => {
        const o = roundTrip<Uint8Array>(
          (w, v) => w.writeOpaque(v),
          (r) => r.readOpaque(),
          data,
        );
        assert.deepEqual(new Uint8Array(o.back), data);
        const padded = (data.length + 3) & ~3;
        assert.equal(o.bytes.length, 4 + padded);
        for (let i = 4 + data.length; i < o.bytes.length; i++) assert.equal(o.bytes[i], 0);
        assert.equal(
          roundTrip(
            (w, v) => w.writeString(v),
            (r) => r.readString(),
            s,
          ).back,
          s,
        );
        const f = roundTrip<Uint8Array>(
          (w, v) => w.writeFixedOpaque(v, data.length),
          (r) => r.readFixedOpaque(data.length),
          data,
        );
        assert.deepEqual(new Uint8Array(f.back), data);
      },
    ),
    { numRuns: 200 },
  );
});

test('decoded opaque views the input instead of copying it', () => {
  const w = new XdrWriter();
  w.writeOpaque(Buffer.from('hello'));
  const bytes = w.finish();
  const view = new XdrReader(bytes).readOpaque();
  bytes[4] = 0x4a;
  assert.equal(view.toString(), 'Jello');
});

test('large opaque values become separate chunks, not copies', () => {
  const big = Buffer.alloc(100_000, 7);
  const w = new XdrWriter();
  w.skip(4);
  w.writeUint(1);
  w.writeOpaque(big);
  w.writeUint(2);
  const chunks = w.finishChunks();
  assert.ok(chunks.includes(big), 'the caller buffer is referenced as a chunk');
  assert.equal(w.length, 4 + 4 + 4 + 100_000 + 4);
  const joined = Buffer.concat(chunks);
  const r = new XdrReader(joined, 4);
  assert.equal(r.readUint(), 1);
  assert.deepEqual(r.readOpaque(), big);
  assert.equal(r.readUint(), 2);
  w.setUintAt(0, 0xabcdef01);
  assert.equal(Buffer.concat(w.finishChunks()).readUInt32BE(0), 0xabcdef01);
});

function decodeError(bytes: number[] | Buffer, fn: (r: XdrReader) => unknown): XdrError {
  const r = new XdrReader(Buffer.from(bytes));
  try {
    fn(r);
  } catch (e) {
    assert.ok(e instanceof XdrError, `expected XdrError, got ${e}`);
    return e;
  }
  assert.fail('decoding should have failed');
}

test('hostile lengths fail before allocation, with a typed error', () => {
  assert.equal(decodeError([0xff, 0xff, 0xff, 0xff], (r) => r.readOpaque()).code, 'XDR_SHORT_BUFFER');
  assert.equal(
    decodeError([0, 0, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 0, 0], (r) => r.readOpaque(8)).code,
    'XDR_LENGTH_EXCEEDED',
  );
  assert.equal(decodeError([0, 0, 0x10, 0], (r) => r.readLength(1 << 20, 4)).code, 'XDR_SHORT_BUFFER');
  assert.equal(decodeError([0, 0, 0], (r) => r.readInt()).code, 'XDR_SHORT_BUFFER');
  assert.equal(decodeError([0, 0, 0, 2], (r) => r.readBool()).code, 'XDR_BAD_BOOL');
  assert.equal(decodeError([0, 0, 0, 7], (r) => r.readEnum(new Set([0, 1]))).code, 'XDR_BAD_ENUM');
  assert.equal(decodeError([0, 0, 0, 1, 0x41, 1, 0, 0], (r) => r.readString()).code, 'XDR_BAD_PADDING');
  assert.equal(decodeError([0, 0, 0, 1, 0], (r) => r.assertEnd()).code, 'XDR_TRAILING_BYTES');
});

test('encoders refuse values their type cannot hold', () => {
  const w = new XdrWriter();
  assert.throws(() => w.writeInt(2 ** 31), { code: 'XDR_BAD_VALUE' });
  assert.throws(() => w.writeUint(-1), { code: 'XDR_BAD_VALUE' });
  assert.throws(() => w.writeInt(1.5), { code: 'XDR_BAD_VALUE' });
  assert.throws(() => w.writeUhyper(-1n), { code: 'XDR_BAD_VALUE' });
  assert.throws(() => w.writeHyper(2n ** 63n), { code: 'XDR_BAD_VALUE' });
  assert.throws(() => w.writeOpaque(Buffer.alloc(5), 4), { code: 'XDR_LENGTH_EXCEEDED' });
  assert.throws(() => w.writeFixedOpaque(Buffer.alloc(5), 4), { code: 'XDR_BAD_VALUE' });
  assert.throws(() => w.writeEnum(3, new Set([1])), { code: 'XDR_BAD_ENUM' });
});

test('errors name the field path as they unwind', () => {
  const e = new XdrError('XDR_SHORT_BUFFER', 'needs 4 bytes');
  xdrErrorAt(xdrErrorAt(xdrErrorAt(e, 'data'), '[3]'), 'entries');
  xdrErrorAt(e, 'args');
  assert.equal(e.path, 'args.entries[3].data');
  assert.match(e.message, /^args\.entries\[3\]\.data: needs 4 bytes$/);
  const wrapped = xdrErrorAt(new RangeError('boom'), 'x');
  assert.equal(wrapped.code, 'XDR_BAD_VALUE');
  assert.equal(wrapped.path, 'x');
});

test('unsigned hypers convert to numbers only when exact', () => {
  const w = new XdrWriter();
  w.writeUhyperFromNumber(2 ** 53 - 1);
  w.writeUhyper(2n ** 53n);
  const r = new XdrReader(w.finish());
  assert.equal(r.readUhyperAsNumber(), 2 ** 53 - 1);
  assert.throws(() => r.readUhyperAsNumber(), { code: 'XDR_BAD_VALUE' });
});
