/**
 * Generated code at work: everything.x is compiled, loaded, and every type round-trips random
 * values (fast-check); malformed input and bad values fail with the right XdrError code and
 * field path; linked lists of 100,000 entries neither recurse nor overflow; programs give typed
 * handlers and clients.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import fc from 'fast-check';
import { decodeAll, encodeToBuffer, XdrError, XdrReader, XdrWriter } from '../../src/xdr/index.js';
import { generate, load, scratchDir, typeCheck } from './helpers.js';

type Mod = Record<string, unknown>;
type Enc = (w: XdrWriter, v: unknown) => void;
type Dec = (r: XdrReader) => unknown;

let mod: Mod;
let bytesMod: Mod;
let dir: string;

const enc = (m: Mod, name: string): Enc => {
  const f = m[`encode_${name}`];
  assert.equal(typeof f, 'function', `encode_${name} exists`);
  return f as Enc;
};
const dec = (m: Mod, name: string): Dec => {
  const f = m[`decode_${name}`];
  assert.equal(typeof f, 'function', `decode_${name} exists`);
  return f as Dec;
};

/** Buffers and Uint8Arrays compare by content. */
function normalize(v: unknown): unknown {
  if (v instanceof Uint8Array) return { bytes: [...v] };
  if (Array.isArray(v)) return v.map(normalize);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normalize(x)]));
  }
  return v;
}

function roundTrip(m: Mod, name: string, value: unknown): void {
  const bytes = encodeToBuffer(enc(m, name), value);
  assert.equal(bytes.length % 4, 0, 'XDR output is a whole number of 4-byte units');
  const back = decodeAll(dec(m, name), bytes);
  assert.deepStrictEqual(normalize(back), normalize(value));
  assert.deepEqual(
    encodeToBuffer(enc(m, name), back),
    bytes,
    're-encoding the decoded value gives the same bytes',
  );
}

function expectXdrError(fn: () => unknown, code: string, path: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof XdrError, `an XdrError, got ${String(e)}`);
    assert.equal(e.code, code);
    assert.equal(e.path, path);
    return true;
  });
}

const int32 = fc.integer({ min: -0x80000000, max: 0x7fffffff });
const uint32 = fc.integer({ min: 0, max: 0xffffffff });
const hyper = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
const uhyper = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
const ascii = (maxLength: number) => fc.string({ maxLength });
const bytes = (minLength: number, maxLength: number) => fc.uint8Array({ minLength, maxLength });
const color = fc.constantFrom(0, 1, 2, 16);
const point = fc.record({ x: int32, y: int32 });
const scalars = fc.record({
  i: int32,
  u: uint32,
  plain_u: uint32,
  h: hyper,
  uh: uhyper,
  f: fc.float(),
  d: fc.double(),
  b: fc.boolean(),
  c: color,
  s: int32,
  us: uint32,
  ch: int32,
  uch: uint32,
  l: int32,
  ul: uint32,
  ui: uint32,
  ulo: uint32,
  i32: int32,
  u64: uhyper,
});
const blobs = fc.record({
  fixed5: bytes(5, 5),
  fixed8: bytes(8, 8),
  bounded: bytes(0, 3),
  unbounded: bytes(0, 40),
  name: ascii(32),
  anything: fc.string({ unit: 'grapheme', maxLength: 20 }),
  limited: ascii(12),
});
const arrays = fc.record({
  three: fc.array(int32, { minLength: 3, maxLength: 3 }),
  corners: fc.array(point, { minLength: 2, maxLength: 2 }),
  path: fc.array(point, { maxLength: 16 }),
  counts: fc.array(uint32, { maxLength: 10 }),
  bigs: fc.array(hyper, { maxLength: 4 }),
  colors: fc.array(color, { maxLength: 5 }),
});
const optionals = fc.record({
  where: fc.option(point, { nil: null }),
  maybe: fc.option(int32, { nil: null }),
  label: ascii(8),
});
interface Linked {
  [k: string]: unknown;
}
function chain(items: Linked[], tail: string): Linked | null {
  let head: Linked | null = null;
  for (let k = items.length - 1; k >= 0; k--) head = { ...items[k], [tail]: head };
  return head;
}
const entryList = fc
  .array(fc.record({ fileid: uhyper, name: ascii(20) }), { minLength: 1, maxLength: 6 })
  .map((items) => chain(items, 'nextentry'));
const nodeList = fc.array(fc.record({ value: int32 }), { maxLength: 6 }).map((items) => chain(items, 'next'));
const { tree } = fc.letrec((tie) => ({
  tree: fc.record({
    left: fc.option(tie('tree'), { nil: null, depthSize: 'small', maxDepth: 4 }),
    key: int32,
    right: fc.option(tie('tree'), { nil: null, depthSize: 'small', maxDepth: 4 }),
  }),
}));
const shape = fc.oneof(
  fc.record({ kind: fc.constantFrom(0, 1), at: point }),
  fc.constant({ kind: 2 }),
  fc.record({ kind: fc.constant(16), other: int32 }),
);
const strict = fc.oneof(
  fc.record({ lv: fc.constant(0), low_value: int32 }),
  fc.record({ lv: fc.constantFrom(1, 7), why: ascii(16) }),
  fc.constant({ lv: 8 }),
);
const maybeInt = fc.oneof(
  fc.record({ present: fc.constant(true), value: int32 }),
  fc.constant({ present: false }),
);
const byNumber = fc.oneof(
  fc.constant({ code: 0 }),
  fc.record({ code: fc.constant(3), p: point }),
  fc.record({ code: fc.constant(-5), negative: hyper }),
  fc.record({ code: int32.filter((c) => c !== 0 && c !== 3 && c !== -5), data: bytes(0, 10) }),
);
const byUnsigned = fc.oneof(
  fc.record({ tag: fc.constant(1), one: int32 }),
  fc.record({ tag: fc.constant(0xffffffff), all_ones: uint32 }),
);
const nested = fc.oneof(
  fc.record({ which: fc.constant(1), s: shape }),
  fc.record({ which: fc.constant(2), m: maybeInt }),
  fc.record({ which: fc.constant(3), many: fc.array(point, { maxLength: 3 }) }),
);
const holder = fc.record({
  mode: fc.constantFrom(1, 2),
  inner: fc.record({ a: int32, b: ascii(10) }),
  choice: fc.oneof(fc.constant({ sel: 0 }), fc.record({ sel: fc.constant(1), n: int32 })),
});
const everything = fc.record({
  sc: scalars,
  bl: blobs,
  ar: arrays,
  op: optionals,
  fh: bytes(0, 64),
  ck: bytes(8, 8),
  pp: fc.array(point, { minLength: 2, maxLength: 2 }),
  nums: fc.array(int32, { maxLength: 5 }),
  mp: fc.option(point, { nil: null }),
  t: color,
  dir: fc.option(entryList, { nil: null }),
  nodes: nodeList,
  root: fc.option(tree, { nil: null }),
  sh: shape,
  ne: nested,
  ho: holder,
  sp: fc.record({ left_x: int32, right_x: int32 }),
  fl: fc.constantFrom(0, 1),
  rs: fc.record({ class: int32, function: int32, at: int32, e: int32 }),
  del: int32,
});

before(async () => {
  dir = scratchDir('everything');
  const result = generate(['test/fixtures/x/cairn/everything.x'], dir);
  assert.deepEqual(result.diagnostics, []);
  mod = await load(dir, 'everything');
  const bytesDir = scratchDir('everything-bytes');
  assert.ok(generate(['test/fixtures/x/cairn/everything.x'], bytesDir, { strings: 'bytes' }).ok);
  bytesMod = await load(bytesDir, 'everything');
});

describe('round trips of random values', () => {
  const cases: [string, fc.Arbitrary<unknown>][] = [
    ['scalars', scalars],
    ['blobs', blobs],
    ['arrays', arrays],
    ['optionals', optionals],
    ['fhandle', bytes(0, 64)],
    ['cookie', bytes(8, 8)],
    ['numbers', fc.array(int32, { maxLength: 20 })],
    ['maybe_point', fc.option(point, { nil: null })],
    ['entry', entryList],
    ['nodelist', nodeList],
    ['tree', tree],
    ['shape', shape],
    ['strict', strict],
    ['maybe_int', maybeInt],
    ['by_number', byNumber],
    ['by_unsigned', byUnsigned],
    ['nested', nested],
    ['holder', holder],
    ['everything', everything],
  ];
  for (const [name, arb] of cases) {
    test(name, () => {
      fc.assert(
        fc.property(arb, (v) => roundTrip(mod, name, v)),
        { numRuns: name === 'everything' ? 60 : 150 },
      );
    });
  }

  test('--strings bytes keeps names as raw bytes, invalid UTF-8 included', () => {
    const value = {
      fixed5: new Uint8Array(5),
      fixed8: new Uint8Array(8),
      bounded: new Uint8Array(0),
      unbounded: new Uint8Array(0),
      name: Uint8Array.from([0xff, 0xfe, 0x2f, 0x00]),
      anything: Uint8Array.from([0xc3, 0x28]),
      limited: new Uint8Array(12),
    };
    roundTrip(bytesMod, 'blobs', value);
    expectXdrError(
      () => encodeToBuffer(enc(bytesMod, 'blobs'), { ...value, name: new Uint8Array(33) }),
      'XDR_LENGTH_EXCEEDED',
      'name',
    );
  });
});

describe('the generated module', () => {
  test('enums are constants, a frozen name table and a value set', () => {
    assert.equal(mod.RED, 0);
    assert.equal(mod.ULTRA, 16);
    assert.deepEqual(mod.color, { RED: 0, GREEN: 1, BLUE: 2, ULTRA: 16 });
    assert.deepEqual([...(mod.color_values as Set<number>)], [0, 1, 2, 16]);
    assert.deepEqual([mod.LOW, mod.MID, mod.HIGH, mod.TOP], [0, 1, 7, 8], 'classic enums count up');
    assert.deepEqual([mod.MODE_A, mod.MODE_B, mod.FLAG_OFF, mod.FLAG_ON], [1, 2, 0, 1], 'inline enums');
  });

  test('constants keep their values: hex, octal, negative, derived, from #define', () => {
    assert.deepEqual(
      [mod.SMALL, mod.HEXED, mod.OCTAL, mod.NEGATIVE, mod.BIGGER, mod.MAXNAME, mod.HAVE_EXTRAS],
      [3, 16, 8, -5, 16, 32, 1],
    );
  });

  test('names TypeScript reserves or the generator uses get a trailing underscore', () => {
    assert.equal(mod.encode_point_, 9);
    assert.equal(typeof mod.encode_point, 'function');
    assert.equal(typeof mod.encode_delete, 'function');
  });

  test('the generated code reads as intended', async () => {
    const { readFileSync } = await import('node:fs');
    const text = readFileSync(join(dir, 'everything.ts'), 'utf8');
    assert.match(text, /export type shape =\n {2}\| \{ kind: typeof RED \| typeof GREEN; at: point \}/);
    assert.match(
      text,
      /\| \{ kind: Exclude<color, typeof RED \| typeof GREEN \| typeof BLUE>; other: number \};/,
    );
    assert.match(text, /\| \{ present: true; value: number \}\n {2}\| \{ present: false \};/);
    assert.match(text, /\| \{ code: number; data: Uint8Array \};/);
    assert.match(text, /n = r\.readLength\(16, 8\);/, 'a point is at least 8 bytes');
    assert.match(text, /export type delete_ = number;/);
  });
});

describe('malformed input fails with a code and a field path', () => {
  const encodeArrays = (v: unknown) => encodeToBuffer(enc(mod, 'arrays'), v);
  const goodArrays = {
    three: [1, 2, 3],
    corners: [
      { x: 1, y: 2 },
      { x: 3, y: 4 },
    ],
    path: [
      { x: 5, y: 6 },
      { x: 7, y: 8 },
    ],
    counts: [9],
    bigs: [10n],
    colors: [1],
  };
  const goodScalars = {
    i: 1,
    u: 2,
    plain_u: 3,
    h: 4n,
    uh: 5n,
    f: 1.5,
    d: 2.5,
    b: true,
    c: 2,
    s: -1,
    us: 7,
    ch: 8,
    uch: 9,
    l: 10,
    ul: 11,
    ui: 12,
    ulo: 13,
    i32: 14,
    u64: 15n,
  };

  test('truncated input names the array element and field', () => {
    const w = new XdrWriter();
    for (const x of [1, 2, 3, 1, 2, 3]) w.writeInt(x);
    const cut = Buffer.concat([w.finish(), Buffer.from([0, 0])]);
    expectXdrError(() => decodeAll(dec(mod, 'arrays'), cut), 'XDR_SHORT_BUFFER', 'corners[1].y');
    // A count the remaining bytes cannot hold fails on the count, before any element is read.
    const v = new XdrWriter();
    for (const x of [1, 2, 3, 1, 2, 3, 4]) v.writeInt(x);
    v.writeUint(2);
    for (const x of [5, 6, 7]) v.writeInt(x);
    const short = Buffer.concat([v.finish(), Buffer.from([0, 0])]);
    expectXdrError(() => decodeAll(dec(mod, 'arrays'), short), 'XDR_SHORT_BUFFER', 'path');
  });

  test('an undeclared enum value, a bad bool', () => {
    const good = encodeToBuffer(enc(mod, 'scalars'), goodScalars);
    const badEnum = Buffer.from(good);
    badEnum.writeInt32BE(7, 44);
    expectXdrError(() => decodeAll(dec(mod, 'scalars'), badEnum), 'XDR_BAD_ENUM', 'c');
    const badBool = Buffer.from(good);
    badBool.writeInt32BE(2, 40);
    expectXdrError(() => decodeAll(dec(mod, 'scalars'), badBool), 'XDR_BAD_BOOL', 'b');
  });

  test('a discriminant no arm declares, inside a struct', () => {
    const w = new XdrWriter();
    w.writeInt(1);
    w.writeInt(0);
    w.writeString('');
    w.writeInt(7);
    expectXdrError(() => decodeAll(dec(mod, 'holder'), w.finish()), 'XDR_BAD_DISCRIMINANT', 'choice.sel');
    const u = new XdrWriter();
    u.writeUint(5);
    expectXdrError(() => decodeAll(dec(mod, 'by_unsigned'), u.finish()), 'XDR_BAD_DISCRIMINANT', 'tag');
  });

  test('lengths over the declared maximum, and hostile lengths, fail before allocating', () => {
    const w = new XdrWriter();
    w.writeInt(0);
    w.writeInt(0);
    w.writeUint(9);
    expectXdrError(() => decodeAll(dec(mod, 'optionals'), w.finish()), 'XDR_LENGTH_EXCEEDED', 'label');
    const hostile = new XdrWriter();
    for (let k = 0; k < 7; k++) hostile.writeInt(0);
    hostile.writeUint(0);
    hostile.writeUint(0x7fffffff);
    expectXdrError(() => decodeAll(dec(mod, 'arrays'), hostile.finish()), 'XDR_SHORT_BUFFER', 'counts');
    const many = new XdrWriter();
    for (let k = 0; k < 7; k++) many.writeInt(0);
    many.writeUint(17);
    expectXdrError(() => decodeAll(dec(mod, 'arrays'), many.finish()), 'XDR_LENGTH_EXCEEDED', 'path');
  });

  test('encoders check values: ranges, fixed lengths, enums, discriminants', () => {
    expectXdrError(() => encodeArrays({ ...goodArrays, three: [1, 2] }), 'XDR_BAD_VALUE', 'three');
    expectXdrError(
      () =>
        encodeArrays({
          ...goodArrays,
          path: [
            { x: 1, y: 1 },
            { x: 2 ** 31, y: 0 },
          ],
        }),
      'XDR_BAD_VALUE',
      'path[1].x',
    );
    expectXdrError(() => encodeArrays({ ...goodArrays, colors: [1, 5] }), 'XDR_BAD_ENUM', 'colors[1]');
    expectXdrError(
      () => encodeToBuffer(enc(mod, 'by_unsigned'), { tag: 5, one: 1 }),
      'XDR_BAD_DISCRIMINANT',
      'tag',
    );
    expectXdrError(() => encodeToBuffer(enc(mod, 'strict'), { lv: 3 }), 'XDR_BAD_ENUM', 'lv');
    expectXdrError(
      () => encodeToBuffer(enc(mod, 'scalars'), { ...goodScalars, uh: -1n }),
      'XDR_BAD_VALUE',
      'uh',
    );
  });

  test('paths nest through structs, unions and arrays', () => {
    expectXdrError(
      () =>
        encodeToBuffer(enc(mod, 'nested'), {
          which: 3,
          many: [
            { x: 0, y: 0 },
            { x: 0, y: 1.5 },
          ],
        }),
      'XDR_BAD_VALUE',
      'many[1].y',
    );
    expectXdrError(
      () => encodeToBuffer(enc(mod, 'nested'), { which: 1, s: { kind: 0, at: { x: 'no', y: 0 } } }),
      'XDR_BAD_VALUE',
      's.at.x',
    );
  });
});

describe('linked lists', () => {
  test('100,000 entries encode and decode without recursion', () => {
    let head: Linked | null = null;
    for (let k = 100_000; k > 0; k--) head = { fileid: BigInt(k), name: `f${k}`, nextentry: head };
    const buf = encodeToBuffer(enc(mod, 'entry'), head);
    const back = decodeAll(dec(mod, 'entry'), buf) as Linked;
    let n = 0;
    let cur: Linked | null = back;
    while (cur !== null) {
      n++;
      assert.equal(cur.fileid, BigInt(n));
      cur = cur.nextentry as Linked | null;
    }
    assert.equal(n, 100_000);
    assert.deepEqual(encodeToBuffer(enc(mod, 'entry'), back), buf);
  });

  test('an error deep in a list names the hops to it', () => {
    const list = chain(
      [
        { fileid: 1n, name: 'a' },
        { fileid: 2n, name: 'b' },
        { fileid: 3n, name: 'x'.repeat(256) },
      ],
      'nextentry',
    );
    expectXdrError(
      () => encodeToBuffer(enc(mod, 'entry'), list),
      'XDR_LENGTH_EXCEEDED',
      'nextentry.nextentry.name',
    );
    const ok = encodeToBuffer(
      enc(mod, 'entry'),
      chain(
        [
          { fileid: 1n, name: 'a' },
          { fileid: 2n, name: 'b' },
        ],
        'nextentry',
      ),
    );
    const bad = Buffer.from(ok);
    // The second node's "another follows" flag: 8 + 8 bytes into it, after the first node (20 bytes).
    bad.writeInt32BE(2, 20 + 16);
    expectXdrError(() => decodeAll(dec(mod, 'entry'), bad), 'XDR_BAD_BOOL', 'nextentry.nextentry');
  });

  test('a list through a typedef (nodelist) is iterative too', () => {
    let head: Linked | null = null;
    for (let k = 0; k < 100_000; k++) head = { value: k, next: head };
    const back = decodeAll(dec(mod, 'nodelist'), encodeToBuffer(enc(mod, 'nodelist'), head)) as Linked;
    assert.equal(back.value, 99_999);
  });
});

describe('programs', () => {
  interface Proc {
    name: string;
    proc: number;
    encodeArgs: Enc;
    decodeArgs: Dec;
    encodeResult: Enc;
    decodeResult: Dec;
  }
  interface Program {
    program: number;
    version: number;
    programName: string;
    versionName: string;
    procedures: Record<string, Proc>;
  }

  test('program definitions carry numbers, names and codecs', () => {
    const v1 = mod.EVERY_V1_program as Program;
    const v2 = mod.EVERY_V2_program as Program;
    assert.deepEqual(
      [v1.program, v1.version, v1.programName, v1.versionName, v2.version],
      [0x20000100, 1, 'EVERY_PROG', 'EVERY_V1', 2],
    );
    assert.deepEqual(Object.keys(v1.procedures), [
      'EVERY_NULL',
      'EVERY_ECHO',
      'EVERY_ADD',
      'EVERY_GREET',
      'EVERY_LIST',
      'EVERY_MOVE',
    ]);
    assert.deepEqual(
      Object.values(v1.procedures).map((p) => p.proc),
      [0, 1, 2, 3, 4, 5],
    );
    assert.equal(mod.EVERY_MOVE, 5);
    const add = v1.procedures.EVERY_ADD;
    const w = new XdrWriter();
    add.encodeArgs(w, [40, 2]);
    assert.deepEqual([...w.finish()], [0, 0, 0, 40, 0, 0, 0, 2]);
    assert.deepEqual(add.decodeArgs(new XdrReader(Buffer.from([0, 0, 0, 1, 255, 255, 255, 255]))), [1, -1]);
    const greet = v1.procedures.EVERY_GREET;
    expectXdrError(() => greet.encodeArgs(new XdrWriter(), 'x'.repeat(33)), 'XDR_LENGTH_EXCEEDED', '');
  });

  test('a client calls through an RpcCaller with typed arguments and results', async () => {
    const v1 = mod.EVERY_V1_program as Program;
    const handler: Record<string, (args: unknown) => unknown> = {
      EVERY_NULL: () => undefined,
      EVERY_ADD: (args) => (args as number[])[0] + (args as number[])[1],
      EVERY_GREET: (name) => `hello ${String(name)}`,
      EVERY_LIST: (n) =>
        chain(
          Array.from({ length: n as number }, (_, k) => ({ fileid: BigInt(k), name: `e${k}` })),
          'nextentry',
        ),
      EVERY_MOVE: (args) => {
        const [p, d] = args as [{ x: number; y: number }, number, number];
        return { x: p.x + d, y: p.y - d };
      },
    };
    const calls: [number, number, string][] = [];
    const caller = {
      async call(program: number, version: number, proc: Proc, args: unknown): Promise<unknown> {
        calls.push([program, version, proc.name]);
        assert.equal(v1.procedures[proc.name], proc);
        const sent = decodeAll(proc.decodeArgs, encodeToBuffer(proc.encodeArgs, args));
        const result = handler[proc.name](sent);
        return decodeAll(proc.decodeResult, encodeToBuffer(proc.encodeResult, result));
      },
    };
    const Client = mod.EVERY_V1_Client as new (
      c: unknown,
    ) => Record<string, (...a: unknown[]) => Promise<unknown>>;
    const client = new Client(caller);
    assert.equal(await client.EVERY_NULL(), undefined);
    assert.equal(await client.EVERY_ADD([40, 2]), 42);
    assert.equal(await client.EVERY_GREET('cairn'), 'hello cairn');
    assert.deepEqual(await client.EVERY_MOVE([{ x: 1, y: 1 }, 2, 1]), { x: 3, y: -1 });
    const list = (await client.EVERY_LIST(3)) as Linked;
    assert.equal(((list.nextentry as Linked).nextentry as Linked).name, 'e2');
    assert.deepEqual(calls[1], [0x20000100, 1, 'EVERY_ADD']);
  });

  test('generated types are precise for the code that uses them', () => {
    const consumer = join(dir, 'consumer.ts');
    writeFileSync(
      consumer,
      `import {
  BLUE, EVERY_V1_Client, type EVERY_V1_Handler, EVERY_V1_program, GREEN, RED, type shape, type strict,
  type maybe_int, type entry, type by_number,
} from './everything.js';
import type { CallContext, RpcCaller } from '${join(dir, '..', '..', 'src/rpc/stub.js').split('\\').join('/')}';

export function x(v: shape): number {
  switch (v.kind) {
    case RED:
    case GREEN:
      return v.at.x;
    case BLUE:
      return 0;
    default:
      return v.other;
  }
}
export const s: shape = { kind: RED, at: { x: 1, y: 2 } };
// @ts-expect-error: BLUE's arm is void
export const bad: shape = { kind: BLUE, at: { x: 1, y: 2 } };
// @ts-expect-error: 3 is not a level
export const badStrict: strict = { lv: 3 };
export const m: maybe_int = { present: true, value: 1 };
// @ts-expect-error: FALSE carries nothing
export const badM: maybe_int = { present: false, value: 1 };
export const bn: by_number = { code: 99, data: new Uint8Array(1) };
export const e: entry = { fileid: 1n, name: 'a', nextentry: null };
export async function use(caller: RpcCaller): Promise<number> {
  const c = new EVERY_V1_Client(caller);
  await c.EVERY_NULL({ timeoutMs: 5 });
  const p = await c.EVERY_MOVE([{ x: 1, y: 2 }, 3, GREEN]);
  // @ts-expect-error: the second argument is an int
  await c.EVERY_ADD([1, 'two']);
  return (await c.EVERY_ADD([p.x, p.y])) + (await c.EVERY_GREET('x')).length;
}
export const handler: EVERY_V1_Handler = {
  EVERY_NULL() {},
  EVERY_ECHO: (v) => v,
  EVERY_ADD: ([a, b]) => a + b,
  EVERY_GREET: async (name: string, _ctx: CallContext) => name,
  EVERY_LIST: () => null,
  EVERY_MOVE: ([p]) => p,
};
export const program = EVERY_V1_program.programName;
`,
    );
    assert.deepEqual(typeCheck([join(dir, 'everything.ts'), consumer]), []);
  });
});
