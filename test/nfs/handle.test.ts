import assert from 'node:assert/strict';
import { chmodSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  BadHandleError,
  decodeHandle,
  encodeHandle,
  HANDLE_KEY_BYTES,
  HANDLE_KEY_FILE,
  HANDLE_LENGTH,
  HandleKey,
  HandleKeyError,
  NFS3_FHSIZE,
} from '../../src/nfs/handle.js';
import { withTempDir } from '../support/tmp.js';

const fields = fc.record({
  exportId: fc.integer({ min: 1, max: 0xffff }),
  ino: fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.maxSafeNat()),
  gen: fc.integer({ min: 0, max: 0xffffffff }),
});

function badHandle(fn: () => unknown, reason: BadHandleError['reason']): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof BadHandleError, `expected BadHandleError, got ${e}`);
    assert.equal(e.code, 'NFS3ERR_BADHANDLE');
    assert.equal(e.reason, reason);
    return true;
  });
}

test('a handle fits NFSv3 and round-trips (property)', () => {
  const key = HandleKey.generate();
  assert.ok(HANDLE_LENGTH <= NFS3_FHSIZE);
  fc.assert(
    fc.property(fields, (f) => {
      const h = encodeHandle(key, f);
      assert.equal(h.length, HANDLE_LENGTH);
      assert.deepEqual(decodeHandle(key, h), { ...f });
    }),
  );
});

test('the layout is version, export id, inode, generation, tag', () => {
  const key = HandleKey.fromBytes(Buffer.alloc(HANDLE_KEY_BYTES, 7));
  const h = encodeHandle(key, { exportId: 0x0102, ino: 0x030405060708, gen: 0x090a0b0c });
  assert.equal(h.subarray(0, 15).toString('hex'), '01' + '0102' + '0000030405060708' + '090a0b0c');
  // The tag depends on the key alone, not on anything random: the same inode gets the same
  // handle after a restart, as clients expect.
  const again = HandleKey.fromBytes(Buffer.alloc(HANDLE_KEY_BYTES, 7));
  assert.deepEqual(encodeHandle(again, { exportId: 0x0102, ino: 0x030405060708, gen: 0x090a0b0c }), h);
});

test('every single-bit flip of a valid handle is rejected (property)', () => {
  const key = HandleKey.generate();
  fc.assert(
    fc.property(fields, fc.nat({ max: HANDLE_LENGTH * 8 - 1 }), (f, bit) => {
      const h = encodeHandle(key, f);
      h[bit >> 3] ^= 1 << (bit & 7);
      // A flip in the version byte is caught before the tag is even computed.
      badHandle(() => decodeHandle(key, h), bit < 8 ? 'version' : 'tag');
    }),
  );
});

test('every single-bit flip, exhaustively, for one handle', () => {
  const key = HandleKey.generate();
  const good = encodeHandle(key, { exportId: 1, ino: 2, gen: 3 });
  for (let bit = 0; bit < HANDLE_LENGTH * 8; bit++) {
    const h = Buffer.from(good);
    h[bit >> 3] ^= 1 << (bit & 7);
    assert.throws(() => decodeHandle(key, h), BadHandleError, `bit ${bit}`);
  }
});

test('handles made with another key are rejected (property)', () => {
  const mine = HandleKey.generate();
  const theirs = HandleKey.generate();
  fc.assert(
    fc.property(fields, (f) => {
      badHandle(() => decodeHandle(mine, encodeHandle(theirs, f)), 'tag');
    }),
  );
});

test('empty, truncated and extended handles are rejected', () => {
  const key = HandleKey.generate();
  const h = encodeHandle(key, { exportId: 3, ino: 42, gen: 1 });
  badHandle(() => decodeHandle(key, Buffer.alloc(0)), 'length');
  for (let n = 1; n < HANDLE_LENGTH; n++) badHandle(() => decodeHandle(key, h.subarray(0, n)), 'length');
  badHandle(() => decodeHandle(key, Buffer.concat([h, Buffer.from([0])])), 'length');
  badHandle(() => decodeHandle(key, Buffer.concat([h, h])), 'length');
  badHandle(() => decodeHandle(key, Buffer.alloc(NFS3_FHSIZE)), 'length');
});

test('arbitrary bytes are rejected (property)', () => {
  const key = HandleKey.generate();
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: NFS3_FHSIZE }), (bytes) => {
      assert.throws(() => decodeHandle(key, bytes), BadHandleError);
    }),
  );
});

test('a handle inside a larger buffer (as a decoder hands it over) decodes', () => {
  const key = HandleKey.generate();
  const h = encodeHandle(key, { exportId: 9, ino: 1234567, gen: 5 });
  const packet = Buffer.concat([Buffer.alloc(13, 0xee), h, Buffer.alloc(7, 0xee)]);
  const view = new Uint8Array(packet.buffer, packet.byteOffset + 13, HANDLE_LENGTH);
  assert.deepEqual(decodeHandle(key, view), { exportId: 9, ino: 1234567, gen: 5 });
});

test('fields out of range are refused when encoding', () => {
  const key = HandleKey.generate();
  for (const bad of [
    { exportId: 0, ino: 1, gen: 0 },
    { exportId: 0x10000, ino: 1, gen: 0 },
    { exportId: 1.5, ino: 1, gen: 0 },
    { exportId: 1, ino: -1, gen: 0 },
    { exportId: 1, ino: 2 ** 53, gen: 0 },
    { exportId: 1, ino: 0.5, gen: 0 },
    { exportId: 1, ino: 1, gen: -1 },
    { exportId: 1, ino: 1, gen: 2 ** 32 },
  ]) {
    assert.throws(() => encodeHandle(key, bad), RangeError, JSON.stringify(bad));
  }
});

test('the key is created 0600 and survives reload; a handle made before decodes after', async () => {
  await withTempDir('handle-key', async (dir) => {
    const first = HandleKey.loadOrCreate(dir);
    const path = join(dir, HANDLE_KEY_FILE);
    const st = statSync(path);
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal(st.size, HANDLE_KEY_BYTES);
    // No temporary file is left behind.
    assert.deepEqual(readdirSync(dir), [HANDLE_KEY_FILE]);
    const h = encodeHandle(first, { exportId: 1, ino: 77, gen: 2 });
    const bytes = readFileSync(path);

    const second = HandleKey.loadOrCreate(dir);
    assert.deepEqual(readFileSync(path), bytes, 'loading does not rewrite the key');
    assert.deepEqual(decodeHandle(second, h), { exportId: 1, ino: 77, gen: 2 });
  });
});

test('separate data directories get different keys', async () => {
  await withTempDir('handle-key-a', async (a) => {
    await withTempDir('handle-key-b', async (b) => {
      const h = encodeHandle(HandleKey.loadOrCreate(a), { exportId: 1, ino: 1, gen: 0 });
      assert.throws(() => decodeHandle(HandleKey.loadOrCreate(b), h), BadHandleError);
    });
  });
});

test('a truncated, oversized or empty key file is an error and is left as it was', async () => {
  await withTempDir('handle-key-bad', async (dir) => {
    const path = join(dir, HANDLE_KEY_FILE);
    for (const size of [0, 1, HANDLE_KEY_BYTES - 1, HANDLE_KEY_BYTES + 1, 4096]) {
      const content = Buffer.alloc(size, 0x5a);
      writeFileSync(path, content);
      assert.throws(
        () => HandleKey.loadOrCreate(dir),
        (e: unknown) =>
          e instanceof HandleKeyError &&
          e.code === 'NFS_HANDLE_KEY_INVALID' &&
          e.message.includes(path) &&
          e.message.includes(`${size} bytes`),
        `size ${size}`,
      );
      assert.deepEqual(readFileSync(path), content, 'the bad key file is not replaced');
    }
  });
});

test('a key path that is a directory is an error', async () => {
  await withTempDir('handle-key-dir', async (dir) => {
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(dir, HANDLE_KEY_FILE));
    assert.throws(
      () => HandleKey.loadOrCreate(dir),
      (e: unknown) => e instanceof HandleKeyError && e.code === 'NFS_HANDLE_KEY_INVALID',
    );
  });
});

test('a data directory where the key cannot be created is an error, with nothing left behind', async () => {
  await withTempDir('handle-key-ro', async (dir) => {
    const missing = join(dir, 'does-not-exist');
    assert.throws(
      () => HandleKey.loadOrCreate(missing),
      (e: unknown) => e instanceof HandleKeyError && e.code === 'NFS_HANDLE_KEY_UNWRITABLE',
    );
    // A directory nobody may write. Root ignores mode bits, so this case only runs as non-root.
    if (process.getuid?.() !== 0) {
      chmodSync(dir, 0o500);
      try {
        assert.throws(() => HandleKey.loadOrCreate(dir), HandleKeyError);
      } finally {
        chmodSync(dir, 0o700);
      }
      assert.deepEqual(readdirSync(dir), []);
    }
  });
});

test('fromBytes insists on 32 bytes', () => {
  assert.throws(() => HandleKey.fromBytes(new Uint8Array(31)), HandleKeyError);
  assert.throws(() => HandleKey.fromBytes(new Uint8Array(33)), HandleKeyError);
  HandleKey.fromBytes(new Uint8Array(32));
});

test('processes creating the key at once all end up with the one key on disk', async () => {
  const { spawn } = await import('node:child_process');
  const moduleUrl = new URL('../../src/nfs/handle.js', import.meta.url).href;
  const script = `
    const { HandleKey, encodeHandle } = await import(${JSON.stringify(moduleUrl)});
    const key = HandleKey.loadOrCreate(process.argv[1]);
    process.stdout.write(encodeHandle(key, { exportId: 1, ino: 1, gen: 1 }).toString('hex'));
  `;
  await withTempDir('handle-key-race', async (dir) => {
    const runs = Array.from(
      { length: 8 },
      () =>
        new Promise<string>((resolve, reject) => {
          const child = spawn(process.execPath, ['--input-type=module', '-e', script, dir], {
            stdio: ['ignore', 'pipe', 'inherit'],
          });
          let out = '';
          child.stdout.on('data', (d: Buffer) => {
            out += d.toString();
          });
          child.on('error', reject);
          child.on('close', (code) =>
            code === 0 ? resolve(out) : reject(new Error(`child exited ${code}`)),
          );
        }),
    );
    const handles = await Promise.all(runs);
    const onDisk = encodeHandle(HandleKey.loadOrCreate(dir), { exportId: 1, ino: 1, gen: 1 }).toString('hex');
    for (const h of handles) assert.equal(h, onDisk);
    assert.deepEqual(readdirSync(dir), [HANDLE_KEY_FILE]);
  });
});

test('a key loaded afresh (nothing remembered) decodes what another instance encoded (property)', () => {
  const bytes = Buffer.alloc(HANDLE_KEY_BYTES);
  bytes.set([1, 2, 3, 4]);
  const writer = HandleKey.fromBytes(bytes);
  fc.assert(
    fc.property(fields, (f) => {
      const reader = HandleKey.fromBytes(bytes);
      assert.deepEqual({ ...decodeHandle(reader, encodeHandle(writer, f)) }, { ...f });
    }),
  );
});

test('remembered handles: results are immutable, and eviction only costs a recomputation', () => {
  const key = HandleKey.generate();
  const h = encodeHandle(key, { exportId: 2, ino: 10, gen: 1 });
  const got = decodeHandle(key, h);
  assert.throws(() => {
    (got as { ino: number }).ino = 11;
  }, TypeError);
  assert.deepEqual({ ...decodeHandle(key, h) }, { exportId: 2, ino: 10, gen: 1 });
  // Far more handles than are remembered: the first ones still decode.
  const many = Array.from({ length: 20_000 }, (_, i) => encodeHandle(key, { exportId: 1, ino: i, gen: 0 }));
  for (const i of [0, 1, 9999, 19_999]) assert.equal(decodeHandle(key, many[i]).ino, i);
  // A remembered handle with one bit changed is still checked, not matched loosely.
  const flipped = Buffer.from(many[19_999]);
  flipped[HANDLE_LENGTH - 1] ^= 1;
  assert.throws(() => decodeHandle(key, flipped), BadHandleError);
});
