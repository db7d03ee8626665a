/**
 * Differential test against the classic toolchain: Debian's rpcgen generates C for wire.x, a C
 * driver fills known values and prints the XDR bytes libtirpc produces, and Cairn's generated
 * encoder must produce the same bytes for the same values; Cairn's decoder must read libtirpc's
 * bytes back to those values. Needs Debian's rpcsvc-proto (rpcgen), libtirpc-dev and gcc: a
 * missing tool fails the test, it is never skipped.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { decodeAll, encodeToBuffer, type XdrReader, type XdrWriter } from '../../src/xdr/index.js';
import { FIXTURES, generate, load, scratchDir } from './helpers.js';

const DRIVER = String.raw`
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <rpc/rpc.h>
#include "wire.h"

static void dump(const char *label, xdrproc_t proc, void *obj) {
	static char buf[65536];
	XDR x;
	xdrmem_create(&x, buf, sizeof buf, XDR_ENCODE);
	if (!proc(&x, obj)) {
		fprintf(stderr, "encoding %s failed\n", label);
		exit(1);
	}
	printf("%s ", label);
	for (unsigned i = 0; i < xdr_getpos(&x); i++) printf("%02x", (unsigned char)buf[i]);
	printf("\n");
}

int main(void) {
	sample s;
	memset(&s, 0, sizeof s);
	s.i = -123456;
	s.u = 4000000000u;
	s.h = -1234567890123LL;
	s.uh = 18000000000000000000ULL;
	s.f = 1.5f;
	s.d = -2.25;
	s.b = TRUE;
	s.c = BLUE;
	memcpy(s.fx, "abcde", 5);
	char var[3] = {1, 2, 3};
	s.var.var_len = 3;
	s.var.var_val = var;
	s.s = "hello, xdr";
	s.fixed_arr[0] = 7;
	s.fixed_arr[1] = -8;
	s.fixed_arr[2] = 9;
	point pts[2] = {{1, 2}, {-3, 4}};
	s.pts.pts_len = 2;
	s.pts.pts_val = pts;
	point o = {10, 20};
	s.opt = &o;
	s.none = NULL;
	s.sh1.kind = RED;
	s.sh1.shape_u.at.x = 5;
	s.sh1.shape_u.at.y = 6;
	s.sh2.kind = GREEN;
	s.sh2.shape_u.n = -7;
	s.sh3.kind = BLUE;
	s.fl.on = TRUE;
	s.fl.flag_u.stamp = 0x0102030405060708ULL;
	entry e2 = {2, "second", NULL};
	entry e1 = {1, "first", &e2};
	s.list = &e1;
	s.sh = -2;
	s.uc = 200;
	dump("full", (xdrproc_t)xdr_sample, &s);

	sample z;
	memset(&z, 0, sizeof z);
	z.s = "";
	z.c = RED;
	z.sh1.kind = BLUE;
	z.sh2.kind = BLUE;
	z.sh3.kind = GREEN;
	z.fl.on = FALSE;
	dump("empty", (xdrproc_t)xdr_sample, &z);

	entry chain[50];
	char names[50][8];
	for (int k = 0; k < 50; k++) {
		snprintf(names[k], sizeof names[k], "n%d", k);
		chain[k].id = (u_int)k;
		chain[k].name = names[k];
		chain[k].next = k + 1 < 50 ? &chain[k + 1] : NULL;
	}
	dump("list", (xdrproc_t)xdr_entry, &chain[0]);
	return 0;
}
`;

function entryChain(n: number): unknown {
  let head: unknown = null;
  for (let k = n - 1; k >= 0; k--) head = { id: k, name: `n${k}`, next: head };
  return head;
}

const VALUES: Record<string, { type: string; value: unknown }> = {
  full: {
    type: 'sample',
    value: {
      i: -123456,
      u: 4000000000,
      h: -1234567890123n,
      uh: 18000000000000000000n,
      f: 1.5,
      d: -2.25,
      b: true,
      c: 2,
      fx: Buffer.from('abcde'),
      var: Buffer.from([1, 2, 3]),
      s: 'hello, xdr',
      fixed_arr: [7, -8, 9],
      pts: [
        { x: 1, y: 2 },
        { x: -3, y: 4 },
      ],
      opt: { x: 10, y: 20 },
      none: null,
      sh1: { kind: 0, at: { x: 5, y: 6 } },
      sh2: { kind: 1, n: -7 },
      sh3: { kind: 2 },
      fl: { on: true, stamp: 0x0102030405060708n },
      list: { id: 1, name: 'first', next: { id: 2, name: 'second', next: null } },
      sh: -2,
      uc: 200,
    },
  },
  empty: {
    type: 'sample',
    value: {
      i: 0,
      u: 0,
      h: 0n,
      uh: 0n,
      f: 0,
      d: 0,
      b: false,
      c: 0,
      fx: Buffer.alloc(5),
      var: Buffer.alloc(0),
      s: '',
      fixed_arr: [0, 0, 0],
      pts: [],
      opt: null,
      none: null,
      sh1: { kind: 2 },
      sh2: { kind: 2 },
      sh3: { kind: 1, n: 0 },
      fl: { on: false },
      list: null,
      sh: 0,
      uc: 0,
    },
  },
  list: { type: 'entry', value: entryChain(50) },
};

function run(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8' });
  if (r.error !== undefined) {
    assert.fail(
      `${cmd} could not run (${r.error.message}); the differential test needs Debian's rpcsvc-proto, libtirpc-dev and gcc (apt-get install rpcsvc-proto libtirpc-dev gcc)`,
    );
  }
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}

function normalize(v: unknown): unknown {
  if (v instanceof Uint8Array) return { bytes: [...v] };
  if (Array.isArray(v)) return v.map(normalize);
  if (v !== null && typeof v === 'object')
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normalize(x)]));
  return v;
}

test('Cairn and classic rpcgen + libtirpc agree on every byte', async () => {
  for (const tool of ['/usr/bin/rpcgen', '/usr/include/tirpc/rpc/rpc.h']) {
    assert.ok(
      existsSync(tool),
      `${tool} is missing: the differential test needs Debian's rpcsvc-proto, libtirpc-dev and gcc (apt-get install rpcsvc-proto libtirpc-dev gcc)`,
    );
  }
  const cdir = scratchDir('classic');
  copyFileSync(join(FIXTURES, 'cairn/wire.x'), join(cdir, 'wire.x'));
  run('rpcgen', ['-h', '-o', 'wire.h', 'wire.x'], cdir);
  run('rpcgen', ['-c', '-o', 'wire_xdr.c', 'wire.x'], cdir);
  writeFileSync(join(cdir, 'driver.c'), DRIVER);
  run('cc', ['-O0', '-w', '-I/usr/include/tirpc', '-o', 'driver', 'driver.c', 'wire_xdr.c', '-ltirpc'], cdir);
  const lines = run(join(cdir, 'driver'), [], cdir).trim().split('\n');
  const classic = new Map(lines.map((l) => l.split(' ') as [string, string]));
  assert.deepEqual([...classic.keys()], Object.keys(VALUES));

  const tdir = scratchDir('wire');
  assert.ok(generate(['test/fixtures/x/cairn/wire.x'], tdir).ok);
  const mod = await load(tdir, 'wire');
  for (const [label, { type, value }] of Object.entries(VALUES)) {
    const encode = mod[`encode_${type}`] as (w: XdrWriter, v: unknown) => void;
    const decode = mod[`decode_${type}`] as (r: XdrReader) => unknown;
    const cHex = classic.get(label) ?? '';
    assert.equal(
      encodeToBuffer(encode, value).toString('hex'),
      cHex,
      `${label}: Cairn's bytes equal libtirpc's`,
    );
    assert.deepStrictEqual(
      normalize(decodeAll(decode, Buffer.from(cHex, 'hex'))),
      normalize(value),
      `${label}: Cairn decodes libtirpc's bytes`,
    );
  }
});
