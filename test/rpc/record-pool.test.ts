/**
 * Large records assembled in pooled buffers (src/rpc/record.ts, RecordPool) and reused once the
 * procedure that received them has answered and its reply is written: records stay intact
 * whatever the chunking, a reply that holds views of its record leaves before the memory is
 * reused, and a procedure not registered `transientArgs` keeps its arguments.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import {
  frameRecord,
  RecordDecoder,
  RpcServer,
  TcpRpcClient,
  TcpServerTransport,
} from '../../src/rpc/index.js';
import { RecordPool } from '../../src/rpc/record.js';
import { calcHandler } from './calc-handler.js';
import { CALC_V1_Client, CALC_V1_program } from './gen/calc.js';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

const ROOT = { flavor: 1, uid: 0, gid: 0, gids: [0], machinename: 'tester' } as const;

/** Bytes that differ from record to record and from position to position. */
function payload(seed: number, size: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

test('records decoded into pooled buffers survive any chunking, the buffers given back at once (property)', () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: 200_000 }), { minLength: 1, maxLength: 6 }),
      fc.array(fc.integer({ min: 1, max: 70_000 }), { minLength: 1, maxLength: 10 }),
      (sizes, cuts) => {
        const records = sizes.map((n, i) => payload(i + 1, n));
        const stream = Buffer.concat(
          records.flatMap((r) => frameRecord([Buffer.concat([Buffer.alloc(4), r])])),
        );
        const pool = new RecordPool();
        const got: Buffer[] = [];
        let pooledCount = 0;
        const d = new RecordDecoder(
          1 << 20,
          (rec, pooled) => {
            got.push(Buffer.from(rec));
            if (pooled) {
              pooledCount++;
              assert.ok(rec.length >= 64 << 10, 'only large records are pooled');
              // Scribbled over and given back at once: the next pooled record reuses it.
              pooled.fill(0xee);
              pool.give(pooled);
            }
          },
          pool,
        );
        let off = 0;
        for (let i = 0; off < stream.length; i++) {
          const n = cuts[i % cuts.length];
          d.push(stream.subarray(off, off + n));
          off += n;
        }
        assert.equal(got.length, records.length);
        for (let i = 0; i < records.length; i++) assert.ok(got[i].equals(records[i]), `record ${i}`);
        assert.equal(d.buffered, 0);
        assert.ok(pooledCount <= records.filter((r) => r.length >= 64 << 10).length);
      },
    ),
    { numRuns: 200 },
  );
});

test('a large record read in 64 KiB chunks comes in a pooled buffer; one read whole does not', () => {
  const pool = new RecordPool();
  const seen: (Buffer | undefined)[] = [];
  const d = new RecordDecoder(4 << 20, (_rec, pooled) => seen.push(pooled), pool);
  const record = Buffer.concat(frameRecord([Buffer.concat([Buffer.alloc(4), payload(1, 1 << 20)])]));
  for (let off = 0; off < record.length; off += 65536) d.push(record.subarray(off, off + 65536));
  d.push(record);
  assert.equal(seen.length, 2);
  assert.ok(seen[0] instanceof Buffer);
  assert.equal(seen[1], undefined, 'a record inside one chunk is a view of it, not copied');
});

test('a pool hands back what it was given, by size, and keeps no more than its limit', () => {
  const pool = new RecordPool(3 << 20);
  const a = pool.take(1_048_736);
  assert.equal(a.length, 17 * 65536, 'sizes round up to 64 KiB');
  pool.give(a);
  assert.equal(pool.take(1_048_700), a, 'a record of the same size class reuses it');
  assert.notEqual(pool.take(1_048_700), a, 'taken once only');
  const many = Array.from({ length: 4 }, () => pool.take(1 << 20));
  for (const b of many) pool.give(b);
  const back = Array.from({ length: 4 }, () => pool.take(1 << 20));
  assert.equal(back.filter((b) => many.includes(b)).length, 3, 'at most 3 MiB kept');
});

describe('record pooling over TCP', () => {
  const kept: { data: Buffer; digest: string }[] = [];
  const handler = calcHandler({
    CALC_NULL() {},
    CALC_ECHO(b) {
      // The reply is a view of the record: it must be written before the record is reused.
      return b;
    },
    CALC_HASH(b) {
      // Not transientArgs: keeps a view of its argument after answering.
      kept.push({ data: Buffer.from(b.buffer, b.byteOffset, b.length), digest: sha256(b) });
      return b.length;
    },
  });
  const rpc = new RpcServer();
  rpc.addProgram(CALC_V1_program, handler, {
    idempotent: ['CALC_ECHO', 'CALC_HASH'],
    transientArgs: ['CALC_ECHO'],
  });
  const tcp = new TcpServerTransport(rpc);
  let port = 0;
  const clients: TcpRpcClient[] = [];
  const client = () => {
    const c = new TcpRpcClient({ host: '127.0.0.1', port, credential: ROOT, timeoutMs: 60_000 });
    clients.push(c);
    return new CALC_V1_Client(c);
  };

  before(async () => {
    port = (await tcp.listen()).port;
  });
  after(async () => {
    for (const c of clients) await c.close();
    await tcp.close();
  });

  test('1 MiB echoes, 32 in flight on each of 2 connections: every reply is its own request', async () => {
    const calcs = [client(), client()];
    for (let round = 0; round < 4; round++) {
      await Promise.all(
        calcs.flatMap((calc, c) =>
          Array.from({ length: 32 }, async (_, i) => {
            const seed = round * 1000 + c * 100 + i + 1;
            const sent = payload(seed, (1 << 20) + i * 4);
            const back = Buffer.from(await calc.CALC_ECHO(sent));
            assert.ok(back.equals(sent), `echo ${seed}`);
          }),
        ),
      );
    }
  });

  test('arguments of a procedure not registered transientArgs stay intact after it answers', async () => {
    const calc = client();
    kept.length = 0;
    await Promise.all(Array.from({ length: 16 }, (_, i) => calc.CALC_HASH(payload(i + 7, 300_000))));
    // More large records through the same transport, which would reuse any buffer given back.
    await Promise.all(Array.from({ length: 16 }, (_, i) => calc.CALC_ECHO(payload(i + 99, 300_000))));
    assert.equal(kept.length, 16);
    for (const k of kept) assert.equal(sha256(k.data), k.digest);
  });
});
