/**
 * Malformed .x inputs: each problem is reported as `file:line:column: message` with a stable
 * code, several at once where they are independent, and the CLI exits 1 (2 for usage errors).
 * Also the preprocessor subset: conditionals, arithmetic, macros, includes, line markers.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, test } from 'node:test';
import { rpcgenMain } from '../../src/cli/rpcgen.js';
import { type CompileOptions, compile, compileFile, RpcgenError } from '../../src/rpcgen/index.js';
import { ROOT, scratchDir } from './helpers.js';

/** Writes `files` into a scratch dir; returns the path of the first, relative to the repository root. */
function sources(files: Record<string, string>): { main: string; dir: string } {
  const dir = scratchDir('diag');
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return { main: relative(ROOT, join(dir, Object.keys(files)[0])), dir: relative(ROOT, dir) };
}

function errors(
  files: Record<string, string>,
  options: CompileOptions = {},
): { lines: string[]; codes: string[]; main: string } {
  const { main } = sources(files);
  const cwd = process.cwd();
  process.chdir(ROOT);
  try {
    const r = compile([main], options);
    assert.equal(r.ok, r.diagnostics.length === 0);
    return {
      lines: r.diagnostics.map((d) => `${d.pos.file}:${d.pos.line}:${d.pos.column}: ${d.message}`),
      codes: r.diagnostics.map((d) => d.code),
      main,
    };
  } finally {
    process.chdir(cwd);
  }
}

describe('diagnostics', () => {
  test('unknown type', () => {
    const { lines, codes, main } = errors({ 'a.x': 'struct s {\n\tfoo x;\n};\n' });
    assert.deepEqual(lines, [`${main}:2:2: unknown type 'foo'`]);
    assert.deepEqual(codes, ['RPCGEN_UNKNOWN_TYPE']);
  });

  test('duplicate name', () => {
    const { lines, codes, main } = errors({ 'a.x': 'const A = 1;\nenum e { B = 0, A = 1 };\n' });
    assert.deepEqual(lines, [`${main}:2:17: duplicate definition of 'A' (first defined at ${main}:1:7)`]);
    assert.deepEqual(codes, ['RPCGEN_DUPLICATE']);
  });

  test('bad token', () => {
    const { lines, codes, main } = errors({ 'a.x': 'const A = 1;\nconst B = 2 $;\n' });
    assert.deepEqual(lines, [`${main}:2:13: unexpected character '$'`]);
    assert.deepEqual(codes, ['RPCGEN_BAD_TOKEN']);
  });

  test('unterminated comment', () => {
    const { lines, codes, main } = errors({ 'a.x': 'const A = 1;\n  /* never closed\nconst B = 2;\n' });
    assert.deepEqual(lines, [`${main}:2:3: unterminated comment`]);
    assert.deepEqual(codes, ['RPCGEN_UNTERMINATED_COMMENT']);
  });

  test('missing semicolon', () => {
    const { lines, codes, main } = errors({ 'a.x': 'struct s {\n\tint x\n};\n' });
    assert.deepEqual(lines, [`${main}:3:1: expected ';' after the field, found '}'`]);
    assert.deepEqual(codes, ['RPCGEN_SYNTAX']);
  });

  test('undefined constant in a bound', () => {
    const { lines, codes, main } = errors({ 'a.x': 'typedef opaque fh<FHSIZE>;\n' });
    assert.deepEqual(lines, [`${main}:1:19: undefined constant 'FHSIZE'`]);
    assert.deepEqual(codes, ['RPCGEN_UNDEFINED_CONSTANT']);
  });

  test('#include of a missing file', () => {
    const { lines, codes, main } = errors({ 'a.x': 'const A = 1;\n#include "missing.x"\n' });
    assert.deepEqual(lines, [`${main}:2:2: cannot find include file 'missing.x'`]);
    assert.deepEqual(codes, ['RPCGEN_INCLUDE_NOT_FOUND']);
  });

  test('unbalanced #if', () => {
    const open = errors({ 'a.x': '#ifdef X\nconst A = 1;\n' });
    assert.deepEqual(open.lines, [`${open.main}:1:2: unterminated conditional: missing #endif`]);
    const close = errors({ 'a.x': 'const A = 1;\n#endif\n#else\n' });
    assert.deepEqual(close.lines, [
      `${close.main}:2:2: #endif without #if`,
      `${close.main}:3:2: #else without #if`,
    ]);
    assert.deepEqual(close.codes, ['RPCGEN_UNBALANCED_CONDITIONAL', 'RPCGEN_UNBALANCED_CONDITIONAL']);
  });

  test('quadruple is refused clearly', () => {
    const { lines, codes, main } = errors({ 'a.x': 'struct q { quadruple x; };\n' });
    assert.deepEqual(lines, [
      `${main}:1:12: quadruple (128-bit floating point) is not supported: JavaScript has no such number type`,
    ]);
    assert.deepEqual(codes, ['RPCGEN_UNSUPPORTED']);
  });

  test('a type that contains itself with no way out', () => {
    const { lines, codes, main } = errors({ 'a.x': 'struct a {\n\tint n;\n\ta inner;\n};\n' });
    assert.deepEqual(lines, [
      `${main}:1:8: 'a' contains itself with no way to end (use an optional '*' or a variable-length array)`,
    ]);
    assert.deepEqual(codes, ['RPCGEN_INFINITE_TYPE']);
  });

  test('several independent errors in one run, in source order', () => {
    const { lines, main } = errors({
      'a.x': [
        'struct s { bar y; };',
        'const C = 1;',
        'const C = 2;',
        'union u switch (int d) { case 1: int a; case 1: int b; };',
        'struct t { int x };',
        'typedef string name;',
        'union v switch (hyper d) { case 1: void; };',
        'const D = C + E;',
        '',
      ].join('\n'),
    });
    assert.deepEqual(lines, [
      `${main}:1:12: unknown type 'bar'`,
      `${main}:3:7: duplicate definition of 'C' (first defined at ${main}:2:7)`,
      `${main}:4:46: duplicate case value 1 in union 'u' (first at ${main}:4:31)`,
      `${main}:5:18: expected ';' after the field, found '}'`,
      `${main}:6:9: string 'name' needs a maximum: <N> or <>`,
      `${main}:7:17: the discriminant of union 'v' must be int, unsigned int, bool or an enum`,
      `${main}:8:15: undefined constant 'E'`,
    ]);
  });

  test('errors in an included file carry that file’s path, and line markers re-map positions', () => {
    const { lines, main } = errors({
      'a.x': '#include "sub/b.x"\n# 40 "orig.x"\nstruct s { nope x; };\n',
      'sub/b.x': 'const OK = 1;\nstruct t { missing y; };\n',
    });
    const b = join(main, '..', 'sub/b.x');
    assert.deepEqual(lines, [`${b}:2:12: unknown type 'missing'`, `orig.x:40:12: unknown type 'nope'`]);
  });

  test('compileFile throws an RpcgenError carrying every diagnostic', () => {
    const { main } = sources({ 'a.x': 'struct s { foo x; bar y; };\n' });
    assert.throws(
      () => compileFile(join(ROOT, main)),
      (e: unknown) =>
        e instanceof RpcgenError && e.code === 'RPCGEN_COMPILE_FAILED' && e.diagnostics.length === 2,
    );
  });
});

describe('preprocessor', () => {
  test('conditionals, arithmetic, defined(), #undef and -D', () => {
    const { main } = sources({
      'a.x': [
        '#define TWO 2',
        '#define FOUR (TWO * TWO)',
        '#if FOUR == 4 && defined(TWO) && !defined NOPE && (7 % 4) == 3 && (1 << 3) == 8 && -1 < 0',
        'const PICKED = FOUR;',
        '#else',
        'const PICKED = -1;',
        '#endif',
        '#undef TWO',
        '#ifdef TWO',
        'const GONE = 1;',
        '#elif FROM_CLI + 1 == 43',
        'const CLI = FROM_CLI;',
        '#endif',
        '#if 0',
        '#bogus directives in skipped groups are ignored',
        '#endif',
        '#define LONG 1 + \\',
        '  2',
        'const JOINED = LONG;',
        '',
      ].join('\n'),
    });
    const out = compileFile(join(ROOT, main), { defines: { FROM_CLI: '42' } });
    assert.match(out, /export const PICKED = 4;/);
    assert.match(out, /export const CLI = 42;/);
    assert.match(out, /export const JOINED = 3;/);
    assert.doesNotMatch(out, /GONE/);
  });

  test('#include looks beside the including file, then in -I directories', () => {
    const { main, dir } = sources({
      'a.x': '#include "b.x"\n#include "c.x"\nstruct s { from_b b; from_c c; };\n',
      'b.x': 'typedef int from_b;\n',
      'inc/c.x': 'typedef unsigned int from_c;\n',
    });
    const out = compileFile(join(ROOT, main), { includeDirs: [join(ROOT, dir, 'inc')] });
    assert.match(out, /export type from_b = number;/);
    assert.match(out, /export type from_c = number;/);
  });
});

describe('the command line', () => {
  const bin = join(ROOT, 'dist/src/rpcgen/bin.js');

  test('bin.js compiles a fixture: exit 0 and the output exists', () => {
    const out = scratchDir('cli');
    const r = spawnSync(process.execPath, [bin, 'test/fixtures/x/libnfs/mount.x', '--out', out], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    assert.equal(r.stderr, '');
    assert.equal(r.status, 0);
    const ts = readFileSync(join(out, 'mount.ts'), 'utf8');
    assert.match(
      ts,
      /^\/\/ Generated by cairn rpcgen from test\/fixtures\/x\/libnfs\/mount\.x; do not edit\./,
    );
    assert.match(ts, /from 'cairn\/xdr';/);
  });

  test('bin.js reports errors as file:line:column and exits 1', () => {
    const { main } = sources({ 'bad.x': 'struct s {\n\tint x\n};\nstruct t { foo y; };\n' });
    const out = scratchDir('cli-bad');
    const r = spawnSync(process.execPath, [bin, main, '--out', out], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.equal(
      r.stderr,
      `${main}:3:1: expected ';' after the field, found '}'\n${main}:4:12: unknown type 'foo'\ncairn rpcgen: 2 errors\n`,
    );
    assert.equal(existsSync(join(out, 'bad.ts')), false, 'nothing is written on error');
  });

  test('usage errors exit 2', async () => {
    let err = '';
    const io = { stdout: () => {}, stderr: (t: string) => (err += t) };
    assert.equal(await rpcgenMain(['test/fixtures/x/libnfs/mount.x'], io), 2);
    assert.match(err, /--out DIR is required/);
    assert.equal(await rpcgenMain(['--out', 'x'], io), 2);
    assert.equal(await rpcgenMain(['a.x', '--out', 'x', '--strings', 'latin1'], io), 2);
    assert.equal(await rpcgenMain(['a.x', '--out', 'x', '--frobnicate'], io), 2);
    let help = '';
    assert.equal(await rpcgenMain(['--help'], { stdout: (t) => (help += t), stderr: () => {} }), 0);
    assert.match(help, /usage: cairn rpcgen/);
  });

  test('options reach the output: -D, -I, --strings, import specifiers', async () => {
    const { main, dir } = sources({
      'opt.x': '#include "defs.x"\n#ifdef WANT\ntypedef string nm<LIMIT>;\n#endif\n',
      'inc/defs.x': 'const LIMIT = 7;\n',
    });
    const out = scratchDir('cli-opt');
    const io = { stdout: () => {}, stderr: (t: string) => assert.fail(t) };
    const cwd = process.cwd();
    process.chdir(ROOT);
    try {
      const code = await rpcgenMain(
        [
          main,
          '--out',
          out,
          '-I',
          join(dir, 'inc'),
          '-DWANT',
          '--strings=bytes',
          '--xdr-import',
          'x-spec',
          '--rpc-import=r-spec',
        ],
        io,
      );
      assert.equal(code, 0);
    } finally {
      process.chdir(cwd);
    }
    const ts = readFileSync(join(out, 'opt.ts'), 'utf8');
    assert.match(ts, /export type nm = Uint8Array;/);
    assert.match(ts, /r\.readOpaque\(7\)/);
    assert.match(ts, /from 'x-spec';/);
  });
});
