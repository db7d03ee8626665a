// Messages carved from a shared slab stay intact whatever is encoded after them, and records that
// lie back to back reach the peer whole and in order when joined into one write.
import assert from 'node:assert/strict';
import { connect, createServer, type Socket } from 'node:net';
import { test } from 'node:test';
import { RecordDecoder, RecordWriter } from '../../src/rpc/record.js';
import { SlabWriter } from '../../src/rpc/slab.js';
import type { XdrWriter } from '../../src/xdr/index.js';

function encode(slab: SlabWriter, fn: (w: XdrWriter) => void): Buffer[] {
  const w = slab.begin();
  try {
    fn(w);
  } catch (e) {
    slab.abort(w);
    throw e;
  }
  return slab.finish(w);
}

test('slab messages are never overwritten by later ones, across slabs, growth and large opaques', () => {
  const slab = new SlabWriter();
  const first = encode(slab, (w) => {
    w.writeUint(0xdeadbeef);
    w.writeString('first');
  });
  const snapshot = Buffer.concat(first);
  const kept: [Buffer[], Buffer][] = [[first, snapshot]];
  for (let i = 0; i < 300; i++) {
    const m = encode(slab, (w) => w.writeOpaque(Buffer.alloc(1000 + i, i & 0xff)));
    kept.push([m, Buffer.concat(m)]);
  }
  // Larger than what is left of any slab, written without references: the writer grows.
  const big = encode(slab, (w) => {
    for (let i = 0; i < 30_000; i++) w.writeUint(i);
  });
  kept.push([big, Buffer.concat(big)]);
  // A large opaque is referenced, not copied: the message is several chunks.
  const payload = Buffer.alloc(100_000, 7);
  const withOpaque = encode(slab, (w) => {
    w.writeUint(1);
    w.writeOpaque(payload);
    w.writeUint(2);
  });
  assert.ok(withOpaque.length > 1 && withOpaque.includes(payload), 'the payload is its own chunk');
  kept.push([withOpaque, Buffer.concat(withOpaque)]);
  for (let i = 0; i < 100; i++) encode(slab, (w) => w.writeOpaque(Buffer.alloc(2000, 0xee)));
  for (const [m, copy] of kept) assert.deepEqual(Buffer.concat(m), copy);
  assert.equal(snapshot.readUInt32BE(0), 0xdeadbeef);
});

test('an encoder that throws leaves the slab usable, and a nested encoding gets a writer of its own', () => {
  const slab = new SlabWriter();
  assert.throws(() =>
    encode(slab, (w) => {
      w.writeUint(1);
      w.writeInt(2 ** 40);
    }),
  );
  const outer = slab.begin();
  outer.writeUint(10);
  const inner = encode(slab, (w) => w.writeUint(20));
  outer.writeUint(11);
  const outerMsg = slab.finish(outer);
  assert.deepEqual(Buffer.concat(inner), Buffer.from([0, 0, 0, 20]));
  assert.deepEqual(Buffer.concat(outerMsg), Buffer.from([0, 0, 0, 10, 0, 0, 0, 11]));
  const after = encode(slab, (w) => w.writeUint(30));
  assert.deepEqual(Buffer.concat(after), Buffer.from([0, 0, 0, 30]));
  assert.deepEqual(Buffer.concat(outerMsg), Buffer.from([0, 0, 0, 10, 0, 0, 0, 11]));
});

test('records joined by the RecordWriter arrive whole and in order', async () => {
  const received: string[] = [];
  let done!: () => void;
  const all = new Promise<void>((r) => {
    done = r;
  });
  const expected = 2 + 50 + 1;
  let peer: Socket | undefined;
  const server = createServer((s) => {
    peer = s;
    const decoder = new RecordDecoder(1 << 20, (rec) => {
      received.push(rec.toString('latin1'));
      if (received.length === expected) done();
    });
    s.on('data', (c: Buffer) => decoder.push(c));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const socket = connect({ port: (server.address() as { port: number }).port, host: '127.0.0.1' });
  await new Promise<void>((r) => socket.once('connect', r));
  try {
    const slab = new SlabWriter();
    const out = new RecordWriter(socket, 64);
    const sent: string[] = [];
    const send = (text: string, own = false) => {
      const body = Buffer.from(text, 'latin1');
      // Either carved from the slab (back to back with its neighbours) or a buffer of its own.
      const message = own
        ? [Buffer.concat([Buffer.alloc(4), body])]
        : encode(slab, (w) => {
            w.skip(4);
            w.writeFixedOpaque(body, body.length);
          });
      out.write(message);
      sent.push(text);
    };
    send('aaaa');
    send('bbbbbbbb', true);
    // Fifty records in one tick, back to back in the slab, one of them split into fragments.
    for (let i = 0; i < 50; i++) send(i === 25 ? 'x'.repeat(200) : `call${String(i).padStart(4, '0')}`);
    send('last');
    await all;
    assert.deepEqual(received, sent);
  } finally {
    socket.destroy();
    peer?.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  }
});
