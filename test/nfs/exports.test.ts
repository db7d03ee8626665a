import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  DEFAULT_ANON_ID,
  defaultExports,
  ExportsConfigError,
  loadExports,
  parseAddress,
  parseExports,
} from '../../src/nfs/exports.js';
import { withTempDir } from '../support/tmp.js';

const EXAMPLE = {
  exports: [
    {
      path: '/data',
      id: 1,
      access: 'rw',
      clients: ['127.0.0.0/8', '10.0.2.0/24', '::1/128'],
      squash: 'root',
      anonuid: 65534,
      anongid: 65534,
    },
    { path: '/pub/', id: 7, clients: ['*'] },
  ],
};

function parse(doc: unknown) {
  return parseExports(JSON.stringify(doc), 'exports.json');
}

function one(fields: Record<string, unknown>) {
  return parse({ exports: [{ path: '/x', id: 1, clients: ['*'], ...fields }] }).list()[0];
}

function rejects(doc: unknown, message: string, field?: string): void {
  assert.throws(
    () => parseExports(typeof doc === 'string' ? doc : JSON.stringify(doc), 'exports.json'),
    (e: unknown) => {
      assert.ok(e instanceof ExportsConfigError, `expected ExportsConfigError, got ${e}`);
      assert.equal(e.code, 'EXPORTS_INVALID');
      assert.equal(e.message, message);
      if (field !== undefined) assert.equal(e.field, field);
      assert.equal(e.source, 'exports.json');
      return true;
    },
    message,
  );
}

test('a full example parses, with defaults filled in', () => {
  const ex = parse(EXAMPLE);
  const [data, pub] = ex.list();
  assert.deepEqual(data.toJSON(), EXAMPLE.exports[0]);
  assert.equal(data.readOnly, false);
  assert.deepEqual(pub.toJSON(), {
    path: '/pub',
    id: 7,
    access: 'ro',
    clients: ['*'],
    squash: 'root',
    anonuid: DEFAULT_ANON_ID,
    anongid: DEFAULT_ANON_ID,
  });
  assert.equal(pub.readOnly, true);
  assert.equal(ex.find('/data'), data);
  assert.equal(ex.find('/data/'), data);
  assert.equal(ex.find('//data'), data);
  assert.equal(ex.find('/pub'), pub);
  assert.equal(ex.find('/nope'), undefined);
  assert.equal(ex.find('data'), undefined);
  assert.equal(ex.find('/data/..'), undefined);
  assert.equal(ex.find(''), undefined);
  assert.equal(ex.byId(1), data);
  assert.equal(ex.byId(7), pub);
  assert.equal(ex.byId(2), undefined);
  assert.equal(ex.byId(0), undefined);
});

test('resolve finds the innermost export containing a path', () => {
  const ex = parse({
    exports: [
      { path: '/', id: 1, clients: ['*'] },
      { path: '/a/b', id: 2, clients: ['*'] },
    ],
  });
  const r = (p: string) => {
    const got = ex.resolve(p);
    return got && { id: got.export.id, rest: got.rest };
  };
  assert.deepEqual(r('/'), { id: 1, rest: [] });
  assert.deepEqual(r('/a'), { id: 1, rest: ['a'] });
  assert.deepEqual(r('/a/b'), { id: 2, rest: [] });
  assert.deepEqual(r('/a/b/c/d/'), { id: 2, rest: ['c', 'd'] });
  assert.deepEqual(r('/a/bc'), { id: 1, rest: ['a', 'bc'] });
  assert.equal(r('/a/../etc'), undefined);
  assert.equal(r('relative'), undefined);
  const noRoot = parse({ exports: [{ path: '/srv', id: 3, clients: ['*'] }] });
  assert.equal(noRoot.resolve('/etc'), undefined);
  assert.equal(noRoot.resolve('/srvx'), undefined);
  assert.equal(noRoot.resolve('/srv/x')?.export.id, 3);
});

test('client networks: IPv4, IPv6, single addresses, and IPv4-mapped IPv6 matching IPv4 rules', () => {
  const e = one({ clients: ['127.0.0.0/8', '10.0.2.0/24', '::1/128', '192.168.1.7', 'fd00:abcd::/32'] });
  const cases: [string, boolean][] = [
    ['127.0.0.1', true],
    ['127.255.255.254', true],
    ['128.0.0.1', false],
    ['10.0.2.2', true],
    ['10.0.2.255', true],
    ['10.0.3.2', false],
    ['10.0.1.255', false],
    ['::ffff:10.0.2.2', true],
    ['::FFFF:10.0.2.2', true],
    ['::ffff:a00:202', true],
    ['::ffff:10.0.3.2', false],
    ['::ffff:127.0.0.1', true],
    ['::1', true],
    ['0:0:0:0:0:0:0:1', true],
    ['::2', false],
    ['192.168.1.7', true],
    ['192.168.1.8', false],
    ['fd00:abcd:1::5', true],
    ['fd00:abce::5', false],
    // A link-local client with a zone: the zone is dropped before matching.
    ['fd00:abcd::1%eth0', true],
    // Not IPv4-compatible (::a.b.c.d, deprecated) nor other IPv6 forms of 10.0.2.2.
    ['::10.0.2.2', false],
    ['64:ff9b::10.0.2.2', false],
    // Garbage is refused, never matched.
    ['', false],
    ['localhost', false],
    ['10.0.2', false],
    ['10.0.2.2.2', false],
    ['010.0.2.2', false],
    ['10.0.2.256', false],
    [':::1', false],
    ['1::2::3', false],
  ];
  for (const [addr, allowed] of cases) assert.equal(e.allows(addr), allowed, addr);
});

test('"*" allows any address but still refuses garbage', () => {
  const e = one({ clients: ['*'] });
  for (const a of ['1.2.3.4', '::', '::ffff:1.2.3.4', 'fe80::1%lo', '255.255.255.255'])
    assert.ok(e.allows(a), a);
  assert.equal(e.allows('not an address'), false);
});

test('/0 networks match their whole family, and IPv4 /0 every IPv4-mapped address', () => {
  const v4 = one({ clients: ['0.0.0.0/0'] });
  assert.ok(v4.allows('203.0.113.9'));
  assert.ok(v4.allows('::ffff:203.0.113.9'));
  assert.equal(v4.allows('2001:db8::1'), false);
  const v6 = one({ clients: ['::/0'] });
  assert.ok(v6.allows('2001:db8::1'));
  assert.ok(v6.allows('203.0.113.9'));
});

test('IPv4 network membership agrees with integer arithmetic (property)', () => {
  const ip = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
  fc.assert(
    fc.property(
      fc.nat({ max: 0xffffffff }),
      fc.nat({ max: 32 }),
      fc.nat({ max: 0xffffffff }),
      (net, prefix, addr) => {
        const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
        const base = (net & mask) >>> 0;
        const e = one({ clients: [`${ip(base)}/${prefix}`] });
        const inside = (addr & mask) >>> 0 === base;
        assert.equal(e.allows(ip(addr)), inside);
        assert.equal(e.allows(`::ffff:${ip(addr)}`), inside);
        assert.ok(e.allows(ip(base)));
      },
    ),
  );
});

test('IPv6 addresses parse the same in full and compressed forms (property)', () => {
  fc.assert(
    fc.property(fc.array(fc.nat({ max: 0xffff }), { minLength: 8, maxLength: 8 }), (words) => {
      const full = words.map((w) => w.toString(16)).join(':');
      const value = words.reduce((v, w) => (v << 16n) | BigInt(w), 0n);
      assert.equal(parseAddress(full), value);
      assert.equal(parseAddress(full.toUpperCase()), value);
      // Compress the longest run of zero words, as RFC 5952 writes addresses.
      let bestAt = -1;
      let bestLen = 0;
      for (let i = 0; i < 8; ) {
        let j = i;
        while (j < 8 && words[j] === 0) j++;
        if (j - i > bestLen) {
          bestAt = i;
          bestLen = j - i;
        }
        i = j === i ? i + 1 : j;
      }
      if (bestLen > 0) {
        const head = words.slice(0, bestAt).map((w) => w.toString(16));
        const tail = words.slice(bestAt + bestLen).map((w) => w.toString(16));
        assert.equal(parseAddress(`${head.join(':')}::${tail.join(':')}`), value);
      }
    }),
  );
});

test('squash none passes identities through', () => {
  const e = one({ squash: 'none' });
  assert.deepEqual(e.identity({ uid: 0, gid: 0, gids: [0, 4, 27] }), { uid: 0, gid: 0, gids: [0, 4, 27] });
  assert.deepEqual(e.identity({ uid: 1000, gid: 100, gids: [] }), { uid: 1000, gid: 100, gids: [] });
});

test('root squash maps uid 0 and gid 0 to the anonymous ids and drops group 0', () => {
  const e = one({ squash: 'root', anonuid: 99, anongid: 98 });
  const table: [
    { uid: number; gid: number; gids: number[] },
    { uid: number; gid: number; gids: number[] },
  ][] = [
    [
      { uid: 0, gid: 0, gids: [0, 4, 27] },
      { uid: 99, gid: 98, gids: [4, 27] },
    ],
    [
      { uid: 0, gid: 100, gids: [100] },
      { uid: 99, gid: 100, gids: [100] },
    ],
    [
      { uid: 1000, gid: 0, gids: [0] },
      { uid: 1000, gid: 98, gids: [] },
    ],
    [
      { uid: 1000, gid: 100, gids: [100, 0, 5] },
      { uid: 1000, gid: 100, gids: [100, 5] },
    ],
    [
      { uid: 1000, gid: 100, gids: [] },
      { uid: 1000, gid: 100, gids: [] },
    ],
  ];
  for (const [cred, want] of table) assert.deepEqual(e.identity(cred), want, JSON.stringify(cred));
});

test('root squash is the default, with anonymous ids 65534', () => {
  const e = one({});
  assert.equal(e.squash, 'root');
  assert.deepEqual(e.identity({ uid: 0, gid: 0, gids: [0] }), { uid: 65534, gid: 65534, gids: [] });
});

test('all squash maps everyone to the anonymous ids with no supplementary groups (property)', () => {
  const e = one({ squash: 'all', anonuid: 1234, anongid: 5678 });
  fc.assert(
    fc.property(
      fc.nat({ max: 0xffffffff }),
      fc.nat({ max: 0xffffffff }),
      fc.array(fc.nat({ max: 0xffffffff }), { maxLength: 16 }),
      (uid, gid, gids) => {
        assert.deepEqual(e.identity({ uid, gid, gids }), { uid: 1234, gid: 5678, gids: [] });
      },
    ),
  );
  assert.deepEqual(e.anonymous(), { uid: 1234, gid: 5678, gids: [] });
});

test('root squash never yields uid 0 or group 0 unless the anonymous ids are 0 (property)', () => {
  const e = one({ squash: 'root' });
  fc.assert(
    fc.property(
      fc.nat({ max: 3 }),
      fc.nat({ max: 3 }),
      fc.array(fc.nat({ max: 3 }), { maxLength: 6 }),
      (uid, gid, gids) => {
        const id = e.identity({ uid, gid, gids });
        assert.notEqual(id.uid, 0);
        assert.notEqual(id.gid, 0);
        assert.ok(!id.gids.includes(0));
        if (uid !== 0) assert.equal(id.uid, uid);
        if (gid !== 0) assert.equal(id.gid, gid);
      },
    ),
  );
});

test("identity does not share the caller's gids array", () => {
  const e = one({ squash: 'none' });
  const gids = [1, 2];
  const id = e.identity({ uid: 5, gid: 5, gids });
  gids.push(3);
  assert.deepEqual(id.gids, [1, 2]);
});

test('bad configurations name the file, the export and the field', () => {
  const base = { path: '/x', id: 1, clients: ['*'] };
  const withField = (f: Record<string, unknown>, others: unknown[] = []) => ({
    exports: [...others, { ...base, ...f }],
  });
  const other = { path: '/o', id: 2, clients: ['*'] };
  const cases: [unknown, string, string][] = [
    ['{', '', 'not valid JSON'],
    ['[]', '', 'exports.json: must be a JSON object with an "exports" array, not an array'],
    [{}, 'exports', 'exports.json: exports: must be an array, not undefined'],
    [{ exports: [] }, 'exports', 'exports.json: exports: must list at least one export'],
    [{ exports: [], extra: 1 }, 'extra', 'exports.json: extra: is not a known field'],
    [{ exports: [5] }, 'exports[0]', 'exports.json: exports[0]: must be an object, not 5'],
    [
      withField({ clients: ['10.0.0.0/33'] }, [other]),
      'exports[1].clients[0]',
      "exports.json: exports[1].clients[0]: '10.0.0.0/33' is not an address or network",
    ],
    [
      withField({ clients: ['*', '::1/129'] }),
      'exports[0].clients[1]',
      "exports.json: exports[0].clients[1]: '::1/129' is not an address or network",
    ],
    [
      withField({ clients: ['10.0.2.1/24'] }),
      'exports[0].clients[0]',
      "exports.json: exports[0].clients[0]: '10.0.2.1/24' has bits set past its /24 prefix",
    ],
    [
      withField({ clients: ['10.0.0.0/08'] }),
      'exports[0].clients[0]',
      "exports.json: exports[0].clients[0]: '10.0.0.0/08' is not an address or network",
    ],
    [
      withField({ clients: ['10.0.0.0/'] }),
      'exports[0].clients[0]',
      "exports.json: exports[0].clients[0]: '10.0.0.0/' is not an address or network",
    ],
    [
      withField({ clients: ['host.example'] }),
      'exports[0].clients[0]',
      "exports.json: exports[0].clients[0]: 'host.example' is not an address or network",
    ],
    [
      withField({ clients: ['fe80::1%eth0'] }),
      'exports[0].clients[0]',
      "exports.json: exports[0].clients[0]: 'fe80::1%eth0' is not an address or network",
    ],
    [
      withField({ clients: [7] }),
      'exports[0].clients[0]',
      'exports.json: exports[0].clients[0]: must be a string, not 7',
    ],
    [
      withField({ clients: [] }),
      'exports[0].clients',
      'exports.json: exports[0].clients: must list at least one network (use ["*"] for any client)',
    ],
    [
      withField({ clients: '*' }),
      'exports[0].clients',
      "exports.json: exports[0].clients: must be an array, not '*'",
    ],
    [
      { exports: [{ path: '/x', id: 1 }] },
      'exports[0].clients',
      'exports.json: exports[0].clients: is required (use ["*"] for any client)',
    ],
    [
      { exports: [{ id: 1, clients: ['*'] }] },
      'exports[0].path',
      'exports.json: exports[0].path: is required',
    ],
    [
      withField({ path: 'data' }),
      'exports[0].path',
      "exports.json: exports[0].path: 'data' must start with '/'",
    ],
    [
      withField({ path: '/a/../b' }),
      'exports[0].path',
      "exports.json: exports[0].path: '/a/../b' contains '..'",
    ],
    [
      withField({ path: '/a/./b' }),
      'exports[0].path',
      "exports.json: exports[0].path: '/a/./b' contains '.'",
    ],
    [
      withField({ path: '/a\u0000b' }),
      'exports[0].path',
      'exports.json: exports[0].path: contains a NUL character',
    ],
    [
      withField({ path: `/${'a'.repeat(1024)}` }),
      'exports[0].path',
      'exports.json: exports[0].path: is longer than 1024 bytes',
    ],
    [withField({ path: 3 }), 'exports[0].path', 'exports.json: exports[0].path: must be a string, not 3'],
    [
      withField({ path: '/o/' }, [other]),
      'exports[1].path',
      "exports.json: exports[1].path: '/o' is already exported by exports[0]",
    ],
    [
      withField({ id: 2 }, [other]),
      'exports[1].id',
      'exports.json: exports[1].id: 2 is already used by exports[0]',
    ],
    [
      { exports: [{ path: '/x', clients: ['*'] }] },
      'exports[0].id',
      'exports.json: exports[0].id: is required',
    ],
    [
      withField({ id: 0 }),
      'exports[0].id',
      'exports.json: exports[0].id: must be an integer from 1 to 65535, not 0',
    ],
    [
      withField({ id: 65536 }),
      'exports[0].id',
      'exports.json: exports[0].id: must be an integer from 1 to 65535, not 65536',
    ],
    [
      withField({ id: 1.5 }),
      'exports[0].id',
      'exports.json: exports[0].id: must be an integer from 1 to 65535, not 1.5',
    ],
    [
      withField({ id: '1' }),
      'exports[0].id',
      "exports.json: exports[0].id: must be an integer from 1 to 65535, not '1'",
    ],
    [
      withField({ access: 'readwrite' }),
      'exports[0].access',
      'exports.json: exports[0].access: must be "ro" or "rw", not \'readwrite\'',
    ],
    [
      withField({ squash: 'no_root_squash' }),
      'exports[0].squash',
      'exports.json: exports[0].squash: must be "none", "root" or "all", not \'no_root_squash\'',
    ],
    [
      withField({ anonuid: -1 }),
      'exports[0].anonuid',
      'exports.json: exports[0].anonuid: must be an integer from 0 to 4294967295, not -1',
    ],
    [
      withField({ anongid: 2 ** 32 }),
      'exports[0].anongid',
      'exports.json: exports[0].anongid: must be an integer from 0 to 4294967295, not 4294967296',
    ],
    [
      withField({ anongid: null }),
      'exports[0].anongid',
      'exports.json: exports[0].anongid: must be an integer from 0 to 4294967295, not null',
    ],
    [
      withField({ sqaush: 'all' }),
      'exports[0].sqaush',
      'exports.json: exports[0].sqaush: is not a known field',
    ],
    [withField({ comment: 1 }), 'exports[0].comment', 'exports.json: exports[0].comment: must be a string'],
  ];
  for (const [doc, field, message] of cases) {
    if (field === '' && message === 'not valid JSON') {
      assert.throws(
        () => parseExports(doc as string, 'exports.json'),
        (e: unknown) =>
          e instanceof ExportsConfigError &&
          e.code === 'EXPORTS_INVALID' &&
          e.message.startsWith('exports.json: not valid JSON: '),
      );
      continue;
    }
    rejects(doc, message, field);
  }
});

test('paths are normalised; comments are allowed', () => {
  const ex = parse({
    comment: 'lab exports',
    exports: [
      { path: '//srv///a/', id: 1, clients: ['*'], comment: 'scratch' },
      { path: '/', id: 2, clients: ['*'] },
    ],
  });
  assert.deepEqual(
    ex.list().map((e) => e.path),
    ['/srv/a', '/'],
  );
});

test('loadExports reads a file and names it in errors; a missing file is EXPORTS_UNREADABLE', async () => {
  await withTempDir('exports', async (dir) => {
    const good = join(dir, 'exports.json');
    writeFileSync(good, JSON.stringify(EXAMPLE, null, 2));
    assert.equal(loadExports(good).find('/data')?.id, 1);

    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ exports: [{ path: '/a', id: 1, clients: ['10.0.0.0/33'] }] }));
    assert.throws(
      () => loadExports(bad),
      (e: unknown) =>
        e instanceof ExportsConfigError &&
        e.message === `${bad}: exports[0].clients[0]: '10.0.0.0/33' is not an address or network`,
    );

    const missing = join(dir, 'missing.json');
    assert.throws(
      () => loadExports(missing),
      (e: unknown) =>
        e instanceof ExportsConfigError &&
        e.code === 'EXPORTS_UNREADABLE' &&
        e.message.startsWith(`${missing}: `),
    );
  });
});

test('the default export is "/export" with id 1, read-write, loopback only, no squash', () => {
  const ex = defaultExports();
  assert.equal(ex.list().length, 1);
  const e = ex.find('/export');
  assert.ok(e);
  assert.equal(ex.byId(1), e);
  assert.equal(e.access, 'rw');
  assert.equal(e.squash, 'none');
  for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) assert.ok(e.allows(a), a);
  for (const a of ['10.0.2.2', '192.168.1.1', '::2', 'fe80::1']) assert.equal(e.allows(a), false, a);
  assert.deepEqual(e.identity({ uid: 0, gid: 0, gids: [0] }), { uid: 0, gid: 0, gids: [0] });
});

test('the examples in docs/EXPORTS.md are valid, and the documented default is defaultExports()', () => {
  const doc = readFileSync(new URL('../../../docs/EXPORTS.md', import.meta.url), 'utf8');
  const blocks = [...doc.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1]);
  assert.equal(blocks.length, 2);
  const full = parseExports(blocks[0], 'EXPORTS.md');
  assert.deepEqual(
    full.list().map((e) => [e.path, e.id, e.access, e.squash]),
    [
      ['/data', 1, 'rw', 'root'],
      ['/pub', 2, 'ro', 'all'],
      ['/home', 3, 'rw', 'root'],
    ],
  );
  assert.deepEqual(
    parseExports(blocks[1], 'EXPORTS.md')
      .list()
      .map((e) => e.toJSON()),
    defaultExports()
      .list()
      .map((e) => e.toJSON()),
  );
});

test('answers stay right when many distinct clients ask (remembered answers are bounded)', () => {
  const e = one({ clients: ['10.0.0.0/16'] });
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < 10_000; i++) {
      const inside = i % 2 === 0;
      const addr = inside ? `10.0.${(i >> 8) & 255}.${i & 255}` : `10.1.${(i >> 8) & 255}.${i & 255}`;
      if (e.allows(addr) !== inside) assert.fail(`${addr} round ${round}`);
    }
  }
});
