import type { Declaration, Definition, Specification, TypeSpec } from './ast.js';
import type { DiagnosticBag, SourcePos } from './diagnostics.js';
import { type Expr, ExprEvalError, evaluate } from './expr.js';
import type {
  Arm,
  CaseLabel,
  ConstDef,
  Decl,
  DiscriminantKind,
  EnumDef,
  Field,
  Item,
  Module,
  Prim,
  ProcedureDef,
  ProgramDef,
  StructDef,
  Ty,
  TypeDef,
  TypedefDef,
  UnionDef,
  VersionDef,
} from './model.js';

const UINT32_MAX = 0xffffffffn;
const INT32_MIN = -0x80000000n;
const INT32_MAX = 0x7fffffffn;

/**
 * Type names the classic rpcgen accepts without a definition because its C output maps them to
 * XDR routines of the same name (xdr_u_int, xdr_uint32_t...). Every one of them is 4 bytes on
 * the wire, except the 64-bit names. A file's own definition of such a name wins.
 */
const CLASSIC_TYPES: ReadonlyMap<string, Prim> = new Map([
  ['char', 'int'],
  ['short', 'int'],
  ['long', 'int'],
  ['int8_t', 'int'],
  ['int16_t', 'int'],
  ['int32_t', 'int'],
  ['u_char', 'uint'],
  ['u_short', 'uint'],
  ['u_int', 'uint'],
  ['u_long', 'uint'],
  ['uint8_t', 'uint'],
  ['u_int8_t', 'uint'],
  ['uint16_t', 'uint'],
  ['u_int16_t', 'uint'],
  ['uint32_t', 'uint'],
  ['u_int32_t', 'uint'],
  ['int64_t', 'hyper'],
  ['quad_t', 'hyper'],
  ['longlong_t', 'hyper'],
  ['uint64_t', 'uhyper'],
  ['u_int64_t', 'uhyper'],
  ['u_quad_t', 'uhyper'],
  ['u_longlong_t', 'uhyper'],
  ['bool_t', 'bool'],
]);

/**
 * Types and constants of the C ONC RPC library (rpc/xdr.h, rpc/auth.h) that classic .x files use
 * without defining, because classic rpcgen's C output links against that library.
 */
const LIBRARY_TYPES: ReadonlyMap<string, Decl> = new Map<string, Decl>([
  ['netobj', { k: 'varOpaque', max: 1024 }],
  ['des_block', { k: 'fixedOpaque', size: 8 }],
]);
const LIBRARY_CONSTANTS: ReadonlyMap<string, bigint> = new Map([
  ['MAXNETNAMELEN', 255n],
  ['MAX_NETOBJ_SZ', 1024n],
  ['MAX_AUTH_BYTES', 400n],
  // Authentication flavour numbers (RFC 5531 section 8.2, rpc/auth.h): NFSv4's secinfo4 union
  // (RFC 7531) switches on RPCSEC_GSS without defining it.
  ['AUTH_NONE', 0n],
  ['AUTH_NULL', 0n],
  ['AUTH_SYS', 1n],
  ['AUTH_UNIX', 1n],
  ['AUTH_SHORT', 2n],
  ['AUTH_DH', 3n],
  ['AUTH_DES', 3n],
  ['AUTH_KERB', 4n],
  ['RPCSEC_GSS', 6n],
]);

function isSelfTypedef(def: Extract<Definition, { k: 'typedef' }>): boolean {
  const d = def.decl;
  return (
    d.k === 'decl' &&
    d.shape.k === 'plain' &&
    d.type.k === 'ref' &&
    d.type.keyword !== undefined &&
    d.type.name === def.name
  );
}

export type Binding =
  | {
      readonly k: 'const';
      readonly pos: SourcePos;
      readonly expr: Expr;
      readonly str?: string;
      state: 'todo' | 'busy' | 'done';
      value?: bigint;
    }
  | { readonly k: 'enumValue'; readonly pos: SourcePos; readonly owner: EnumDef; readonly index: number }
  | { readonly k: 'type'; readonly pos: SourcePos; readonly def: TypeDef }
  | { readonly k: 'program' | 'version'; readonly pos: SourcePos; readonly value?: Expr }
  | { readonly k: 'procedure'; readonly pos: SourcePos };

/** Names the other input files of the same run define, for the cross-file references. */
export interface ExternalScope {
  lookup(name: string, from: Checker): { checker: Checker; symbol: Binding } | undefined;
  checkerFor(module: string): Checker | undefined;
}

/**
 * Resolves and checks one file. Checking is split in two so files compiled together can refer
 * to each other: `declare` records every file's names first, then `resolve` fills in types and
 * evaluates values, following references into other files where a name is not defined locally.
 */
export class Checker {
  private readonly symbols = new Map<string, Binding>();
  private readonly enumAst = new Map<EnumDef, Extract<Definition, { k: 'enum' }>>();
  private enumState = new Map<EnumDef, 'busy' | 'done'>();
  private readonly items: Item[] = [];
  /** Types of the C RPC library a file used without defining, emitted once into its output. */
  private readonly libraryTypes = new Map<string, TypedefDef>();
  private readonly passThrough = new Map<
    string,
    { expr: Expr; state: 'todo' | 'busy' | 'done'; value?: bigint }
  >();
  private resolved = false;

  constructor(
    readonly spec: Specification,
    readonly moduleName: string,
    private readonly diags: DiagnosticBag,
    private readonly externals: ExternalScope,
  ) {}

  /** Phase one: every top-level name, with duplicates reported. */
  declare(): void {
    for (const d of this.spec.passThroughDefines)
      this.passThrough.set(d.name, { expr: d.value, state: 'todo' });
    for (const def of this.spec.definitions) {
      switch (def.k) {
        case 'const':
          this.define(def.name, { k: 'const', pos: def.pos, expr: def.value, str: def.str, state: 'todo' });
          break;
        case 'enum': {
          const e: EnumDef = {
            k: 'enum',
            name: def.name,
            pos: def.pos,
            module: this.moduleName,
            synthesized: def.synthesized,
            values: [],
          };
          this.enumAst.set(e, def);
          this.define(def.name, { k: 'type', pos: def.pos, def: e });
          def.members.forEach((m, index) => {
            this.define(m.name, { k: 'enumValue', pos: m.pos, owner: e, index });
          });
          break;
        }
        case 'struct':
          this.define(def.name, {
            k: 'type',
            pos: def.pos,
            def: {
              k: 'struct',
              name: def.name,
              pos: def.pos,
              module: this.moduleName,
              synthesized: def.synthesized,
              fields: [],
            },
          });
          break;
        case 'union':
          this.define(def.name, {
            k: 'type',
            pos: def.pos,
            def: {
              k: 'union',
              name: def.name,
              pos: def.pos,
              module: this.moduleName,
              synthesized: def.synthesized,
              discriminant: { name: '', ty: { k: 'prim', prim: 'int' }, kind: 'int' },
              arms: [],
            },
          });
          break;
        case 'typedef':
          // C's `typedef struct foo foo;` (nis.x) says nothing new about foo.
          if (isSelfTypedef(def)) break;
          this.define(def.name, {
            k: 'type',
            pos: def.pos,
            def: {
              k: 'typedef',
              name: def.name,
              pos: def.pos,
              module: this.moduleName,
              synthesized: false,
              decl: { k: 'void' },
            },
          });
          break;
        case 'program':
          this.define(def.name, { k: 'program', pos: def.pos, value: def.number });
          for (const v of def.versions) {
            // Versions and procedures keep one name per meaning; equal re-use (rstat.x names the
            // same procedure in three versions) is checked once numbers are known.
            if (!this.symbols.has(v.name) || this.symbols.get(v.name)?.k !== 'version') {
              this.define(v.name, { k: 'version', pos: v.pos, value: v.number });
            }
            for (const p of v.procedures) {
              if (this.symbols.get(p.name)?.k !== 'procedure')
                this.define(p.name, { k: 'procedure', pos: p.pos });
            }
          }
          break;
      }
    }
  }

  private define(name: string, sym: Binding): void {
    const prev = this.symbols.get(name);
    if (prev !== undefined) {
      this.diags.error(
        'RPCGEN_DUPLICATE',
        sym.pos,
        `duplicate definition of '${name}' (first defined at ${prev.pos.file}:${prev.pos.line}:${prev.pos.column})`,
      );
      return;
    }
    this.symbols.set(name, sym);
  }

  /** A name defined by this file, for other files' lookups. */
  localSymbol(name: string): Binding | undefined {
    return this.symbols.get(name);
  }

  /** Phase two: the checked module. */
  resolve(): Module {
    if (!this.resolved) {
      this.resolved = true;
      for (const def of this.spec.definitions) this.resolveDefinition(def);
      this.checkFinite();
    }
    return { file: this.spec.file, name: this.moduleName, items: this.items };
  }

  private resolveDefinition(def: Definition): void {
    switch (def.k) {
      case 'const': {
        if (def.str !== undefined) {
          this.items.push({ k: 'const', def: { name: def.name, value: 0n, str: def.str } });
          return;
        }
        const value = this.constValue(def.name, def.pos);
        if (value !== undefined) {
          const literal = def.value.k === 'num' ? def.value.text : undefined;
          const c: ConstDef =
            literal === undefined ? { name: def.name, value } : { name: def.name, value, literal };
          this.items.push({ k: 'const', def: c });
        }
        return;
      }
      case 'enum': {
        const sym = this.symbols.get(def.name);
        if (sym?.k !== 'type' || sym.def.k !== 'enum' || sym.pos !== def.pos) return;
        this.enumValues(sym.def);
        this.items.push({ k: 'type', def: sym.def });
        return;
      }
      case 'struct': {
        const sym = this.symbols.get(def.name);
        if (sym?.k !== 'type' || sym.def.k !== 'struct' || sym.pos !== def.pos) return;
        const s: StructDef = sym.def;
        const seen = new Set<string>();
        for (const f of def.fields) {
          if (f.k === 'void') {
            this.diags.error('RPCGEN_BAD_VALUE', f.pos, `a struct field cannot be void (in '${def.name}')`);
            continue;
          }
          if (seen.has(f.name)) {
            this.diags.error(
              'RPCGEN_DUPLICATE',
              f.pos,
              `duplicate field '${f.name}' in struct '${def.name}'`,
            );
            continue;
          }
          seen.add(f.name);
          const decl = this.decl(f);
          if (decl !== undefined) s.fields.push({ name: f.name, decl, pos: f.pos });
        }
        this.items.push({ k: 'type', def: s });
        return;
      }
      case 'union': {
        const sym = this.symbols.get(def.name);
        if (sym?.k !== 'type' || sym.def.k !== 'union' || sym.pos !== def.pos) return;
        this.resolveUnion(sym.def, def);
        this.items.push({ k: 'type', def: sym.def });
        return;
      }
      case 'typedef': {
        if (isSelfTypedef(def)) return;
        const sym = this.symbols.get(def.name);
        if (sym?.k !== 'type' || sym.def.k !== 'typedef' || sym.pos !== def.pos) return;
        const decl = this.decl(def.decl);
        if (decl !== undefined) {
          sym.def.decl = decl;
          this.items.push({ k: 'type', def: sym.def });
        }
        return;
      }
      case 'program': {
        const p = this.resolveProgram(def);
        if (p !== undefined) this.items.push({ k: 'program', def: p });
        return;
      }
    }
  }

  private resolveUnion(u: UnionDef, def: Extract<Definition, { k: 'union' }>): void {
    const d = def.discriminant;
    if (d.k === 'void' || d.shape.k !== 'plain') {
      this.diags.error(
        'RPCGEN_BAD_DISCRIMINANT',
        d.pos,
        'a union discriminant must be a single int, unsigned int, bool or enum',
      );
      return;
    }
    const ty = this.typeOf(d.type);
    if (ty === undefined) return;
    const kind = discriminantKind(ty);
    if (kind === undefined) {
      this.diags.error(
        'RPCGEN_BAD_DISCRIMINANT',
        d.type.pos,
        `the discriminant of union '${def.name}' must be int, unsigned int, bool or an enum`,
      );
      return;
    }
    u.discriminant = {
      name: d.name,
      ty,
      kind: kind.kind,
      ...(kind.enumDef ? { enumDef: kind.enumDef } : {}),
    };
    const seen = new Map<number, SourcePos>();
    const names = new Set<string>([d.name]);
    let sawDefault = false;
    for (const arm of def.arms) {
      const labels: CaseLabel[] = [];
      for (const label of arm.labels) {
        const v = this.value(label, kind.kind === 'uint' ? 'uint32' : 'int32');
        if (v === undefined) continue;
        let value = Number(v);
        if (kind.kind === 'bool' && value !== 0 && value !== 1) {
          this.diags.error('RPCGEN_BAD_VALUE', label.pos, `case ${value} is not a bool (TRUE or FALSE)`);
          continue;
        }
        if (kind.kind === 'enum' && kind.enumDef) this.ensureEnum(kind.enumDef);
        if (kind.kind === 'enum' && kind.enumDef && !kind.enumDef.values.some((ev) => ev.value === value)) {
          this.diags.error(
            'RPCGEN_BAD_VALUE',
            label.pos,
            `case ${value} is not a value of enum '${kind.enumDef.name}'`,
          );
          continue;
        }
        value = kind.kind === 'uint' ? value >>> 0 : value;
        const prev = seen.get(value);
        if (prev !== undefined) {
          this.diags.error(
            'RPCGEN_DUPLICATE',
            label.pos,
            `duplicate case value ${value} in union '${def.name}' (first at ${prev.file}:${prev.line}:${prev.column})`,
          );
          continue;
        }
        seen.set(value, label.pos);
        const localName = label.k === 'name' ? this.localValueName(label.name) : undefined;
        labels.push(localName === undefined ? { value } : { value, name: localName });
      }
      if (arm.isDefault) {
        if (sawDefault)
          this.diags.error('RPCGEN_DUPLICATE', arm.pos, `union '${def.name}' has more than one default`);
        sawDefault = true;
      }
      let field: Field | null = null;
      if (arm.decl.k === 'decl') {
        if (names.has(arm.decl.name) && arm.decl.name === d.name) {
          this.diags.error(
            'RPCGEN_DUPLICATE',
            arm.decl.pos,
            `arm '${arm.decl.name}' has the discriminant's name`,
          );
          continue;
        }
        names.add(arm.decl.name);
        const decl = this.decl(arm.decl);
        if (decl === undefined) continue;
        field = { name: arm.decl.name, decl, pos: arm.decl.pos };
      }
      const a: Arm = { labels, isDefault: arm.isDefault, field };
      u.arms.push(a);
    }
  }

  /** The name when `name` is a constant or enum value of this file, so it can be emitted as such. */
  private localValueName(name: string): string | undefined {
    const sym = this.symbols.get(name);
    return sym?.k === 'const' || sym?.k === 'enumValue' ? name : undefined;
  }

  private resolveProgram(def: Extract<Definition, { k: 'program' }>): ProgramDef | undefined {
    const number = this.value(def.number, 'uint32');
    const versions: VersionDef[] = [];
    const versionNumbers = new Map<number, string>();
    for (const v of def.versions) {
      const vn = this.value(v.number, 'uint32');
      if (vn === undefined) continue;
      const vnum = Number(vn);
      const clash = versionNumbers.get(vnum);
      if (clash !== undefined) {
        this.diags.error('RPCGEN_DUPLICATE', v.pos, `version number ${vnum} is already used by '${clash}'`);
        continue;
      }
      versionNumbers.set(vnum, v.name);
      this.sameNumberAsElsewhere(v.name, v.pos, vnum, 'version');
      const procedures: ProcedureDef[] = [];
      const procNumbers = new Map<number, string>();
      const procNames = new Set<string>();
      for (const p of v.procedures) {
        const pn = this.value(p.number, 'uint32');
        if (pn === undefined) continue;
        const pnum = Number(pn);
        const clashP = procNumbers.get(pnum);
        if (clashP !== undefined) {
          this.diags.error(
            'RPCGEN_DUPLICATE',
            p.pos,
            `procedure number ${pnum} is already used by '${clashP}'`,
          );
          continue;
        }
        if (procNames.has(p.name)) {
          this.diags.error(
            'RPCGEN_DUPLICATE',
            p.pos,
            `duplicate procedure '${p.name}' in version '${v.name}'`,
          );
          continue;
        }
        procNumbers.set(pnum, p.name);
        procNames.add(p.name);
        this.sameNumberAsElsewhere(p.name, p.pos, pnum, 'procedure');
        const args: Decl[] = [];
        let ok = true;
        if (p.args.length > 1 && p.args.some((a) => a.k === 'void')) {
          this.diags.error(
            'RPCGEN_BAD_VALUE',
            p.pos,
            `void cannot be one of several arguments of '${p.name}'`,
          );
          ok = false;
        }
        for (const a of p.args) {
          const d = this.decl(a);
          if (d === undefined) ok = false;
          else args.push(d);
        }
        const result = this.decl(p.result);
        if (!ok || result === undefined) continue;
        procedures.push({ name: p.name, number: pnum, args, result });
      }
      versions.push({ name: v.name, number: vnum, procedures });
    }
    if (number === undefined) return undefined;
    return { name: def.name, number: Number(number), versions };
  }

  /** Versions and procedures may share a name across versions only with the same number. */
  private readonly numbered = new Map<string, { value: number; pos: SourcePos }>();
  private sameNumberAsElsewhere(name: string, pos: SourcePos, value: number, what: string): void {
    const prev = this.numbered.get(name);
    if (prev === undefined) {
      this.numbered.set(name, { value, pos });
    } else if (prev.value !== value) {
      this.diags.error(
        'RPCGEN_DUPLICATE',
        pos,
        `${what} '${name}' is ${value} here but ${prev.value} at ${prev.pos.file}:${prev.pos.line}:${prev.pos.column}`,
      );
    }
  }

  /** Resolves a declaration's type and shape; undefined (after a diagnostic) if it is wrong. */
  decl(d: Declaration): Decl | undefined {
    if (d.k === 'void') return { k: 'void' };
    const t = d.type;
    const what = d.name === '' ? 'this type' : `'${d.name}'`;
    if (t.k === 'builtin' && (t.name === 'opaque' || t.name === 'string')) {
      const shape = d.shape;
      if (shape.k === 'fixed') {
        if (t.name === 'string') {
          this.diags.error(
            'RPCGEN_BAD_VALUE',
            t.pos,
            `string ${what} must be variable-length: use <N> or <>`,
          );
          return undefined;
        }
        const size = this.value(shape.size, 'bound');
        return size === undefined ? undefined : { k: 'fixedOpaque', size: Number(size) };
      }
      if (shape.k === 'var') {
        const max = shape.max === undefined ? UINT32_MAX : this.value(shape.max, 'bound');
        if (max === undefined) return undefined;
        return t.name === 'string' ? { k: 'string', max: Number(max) } : { k: 'varOpaque', max: Number(max) };
      }
      this.diags.error(
        'RPCGEN_BAD_VALUE',
        t.pos,
        t.name === 'string'
          ? `string ${what} needs a maximum: <N> or <>`
          : `opaque ${what} needs a size: [N], <N> or <>`,
      );
      return undefined;
    }
    const ty = this.typeOf(t);
    if (ty === undefined) return undefined;
    switch (d.shape.k) {
      case 'plain':
        return { k: 'scalar', ty };
      case 'optional':
        return { k: 'optional', ty };
      case 'fixed': {
        const size = this.value(d.shape.size, 'bound');
        return size === undefined ? undefined : { k: 'fixedArray', ty, size: Number(size) };
      }
      case 'var': {
        const max = d.shape.max === undefined ? UINT32_MAX : this.value(d.shape.max, 'bound');
        return max === undefined ? undefined : { k: 'varArray', ty, max: Number(max) };
      }
    }
  }

  private typeOf(t: TypeSpec): Ty | undefined {
    if (t.k === 'builtin') {
      switch (t.name) {
        case 'quadruple':
          this.diags.error(
            'RPCGEN_UNSUPPORTED',
            t.pos,
            'quadruple (128-bit floating point) is not supported: JavaScript has no such number type',
          );
          return undefined;
        case 'opaque':
        case 'string':
          this.diags.error(
            'RPCGEN_BAD_VALUE',
            t.pos,
            `${t.name} needs a size here: declare a typedef for it`,
          );
          return undefined;
        default:
          return { k: 'prim', prim: t.name };
      }
    }
    const sym = this.symbols.get(t.name);
    if (sym !== undefined) {
      if (sym.k === 'type') return { k: 'named', def: sym.def };
      this.diags.error('RPCGEN_UNKNOWN_TYPE', t.pos, `'${t.name}' is ${describeSymbol(sym)}, not a type`);
      return undefined;
    }
    const classic = CLASSIC_TYPES.get(t.name);
    if (classic !== undefined) return { k: 'prim', prim: classic };
    const ext = this.externals.lookup(t.name, this);
    if (ext !== undefined && ext.symbol.k === 'type') return { k: 'named', def: ext.symbol.def };
    const lib = LIBRARY_TYPES.get(t.name);
    if (lib !== undefined) {
      let def = this.libraryTypes.get(t.name);
      if (def === undefined) {
        def = {
          k: 'typedef',
          name: t.name,
          pos: t.pos,
          module: this.moduleName,
          synthesized: true,
          decl: lib,
        };
        this.libraryTypes.set(t.name, def);
        this.items.push({ k: 'type', def });
      }
      return { k: 'named', def };
    }
    this.diags.error('RPCGEN_UNKNOWN_TYPE', t.pos, `unknown type '${t.name}'`);
    return undefined;
  }

  /** Evaluates a value in a context; undefined (after a diagnostic) if it is wrong. */
  private value(e: Expr, context: 'bound' | 'uint32' | 'int32' | 'any'): bigint | undefined {
    let v: bigint;
    try {
      v = evaluate(e, (name, pos) => this.nameValue(name, pos));
    } catch (err) {
      if (err instanceof ExprEvalError) {
        if (err.message !== '') this.diags.error('RPCGEN_UNDEFINED_CONSTANT', err.pos, err.message);
        return undefined;
      }
      throw err;
    }
    if ((context === 'bound' || context === 'uint32') && (v < 0n || v > UINT32_MAX)) {
      this.diags.error(
        'RPCGEN_BAD_VALUE',
        e.pos,
        context === 'bound'
          ? `size ${v} is out of range (0 to 4294967295)`
          : `${v} is out of range (0 to 4294967295)`,
      );
      return undefined;
    }
    if (context === 'int32' && (v < INT32_MIN || v > UINT32_MAX)) {
      this.diags.error('RPCGEN_BAD_VALUE', e.pos, `${v} does not fit in 32 bits`);
      return undefined;
    }
    if (context === 'int32' && v > INT32_MAX) return v - 0x100000000n;
    return v;
  }

  /** The value of a name used in an expression (an ExprEvalError with '' means: already reported). */
  nameValue(name: string, pos: SourcePos): bigint {
    const sym = this.symbols.get(name);
    if (sym === undefined) {
      if (name === 'TRUE') return 1n;
      if (name === 'FALSE') return 0n;
      const pass = this.passThrough.get(name);
      if (pass !== undefined) {
        if (pass.state === 'busy') throw new ExprEvalError(pos, `'${name}' is defined in terms of itself`);
        if (pass.state === 'todo') {
          pass.state = 'busy';
          try {
            pass.value = evaluate(pass.expr, (n, p) => this.nameValue(n, p));
          } finally {
            pass.state = 'done';
          }
        }
        if (pass.value !== undefined) return pass.value;
        throw new ExprEvalError(pos, '');
      }
      const ext = this.externals.lookup(name, this);
      if (ext !== undefined && (ext.symbol.k === 'const' || ext.symbol.k === 'enumValue')) {
        return ext.checker.nameValue(name, pos);
      }
      const lib = LIBRARY_CONSTANTS.get(name);
      if (lib !== undefined) return lib;
      throw new ExprEvalError(pos, `undefined constant '${name}'`);
    }
    if (sym.k === 'const' && sym.str !== undefined) {
      throw new ExprEvalError(pos, `'${name}' is a string constant, not a number`);
    }
    if (sym.k === 'const') {
      const v = this.constValue(name, pos);
      if (v === undefined) throw new ExprEvalError(pos, '');
      return v;
    }
    if (sym.k === 'enumValue') {
      this.enumValues(sym.owner);
      const ev = sym.owner.values[sym.index];
      if (ev === undefined) throw new ExprEvalError(pos, '');
      return BigInt(ev.value);
    }
    throw new ExprEvalError(pos, `'${name}' is ${describeSymbol(sym)}, not a constant`);
  }

  private constValue(name: string, usePos: SourcePos): bigint | undefined {
    const sym = this.symbols.get(name);
    if (sym?.k !== 'const') return undefined;
    if (sym.state === 'done') return sym.value;
    if (sym.state === 'busy') {
      this.diags.error(
        'RPCGEN_UNDEFINED_CONSTANT',
        usePos,
        `constant '${name}' is defined in terms of itself`,
      );
      return undefined;
    }
    sym.state = 'busy';
    const v = this.value(sym.expr, 'any');
    sym.state = 'done';
    sym.value = v;
    return v;
  }

  /** Makes sure an enum's values are known, asking the file that defines it. */
  ensureEnum(e: EnumDef): void {
    if (e.module === this.moduleName) this.enumValues(e);
    else this.externals.checkerFor(e.module)?.ensureEnum(e);
  }

  private enumValues(e: EnumDef): void {
    const state = this.enumState.get(e);
    if (state === 'done') return;
    const ast = this.enumAst.get(e);
    if (ast === undefined) return;
    if (state === 'busy') {
      this.diags.error(
        'RPCGEN_UNDEFINED_CONSTANT',
        ast.pos,
        `enum '${e.name}' is defined in terms of itself`,
      );
      return;
    }
    this.enumState.set(e, 'busy');
    let next = 0n;
    for (const m of ast.members) {
      let v: bigint | undefined = next;
      if (m.value !== undefined) v = this.value(m.value, 'int32');
      if (v === undefined) v = next;
      if (v < INT32_MIN || v > INT32_MAX) {
        this.diags.error('RPCGEN_BAD_VALUE', m.pos, `enum value ${v} does not fit in a 32-bit int`);
      }
      e.values.push({ name: m.name, value: Number(BigInt.asIntN(32, v)) });
      next = v + 1n;
    }
    this.enumState.set(e, 'done');
  }

  /**
   * A type that always contains itself (not through an optional or a variable-length array, and
   * with no union arm to escape through) has no finite encoding: reject it.
   */
  private checkFinite(): void {
    const defs: TypeDef[] = [];
    for (const item of this.items) if (item.k === 'type') defs.push(item.def);
    const finite = new Set<TypeDef>();
    const checked = new Set<TypeDef>(defs);
    // Definitions that failed to resolve were reported already; do not blame their users too.
    const done = (def: TypeDef): boolean => finite.has(def) || !checked.has(def);
    const endsOk = (d: Decl): boolean => {
      switch (d.k) {
        case 'void':
        case 'fixedOpaque':
        case 'varOpaque':
        case 'string':
        case 'optional':
        case 'varArray':
          return true;
        case 'scalar':
          return d.ty.k === 'prim' || done(d.ty.def);
        case 'fixedArray':
          return d.size === 0 || d.ty.k === 'prim' || done(d.ty.def);
      }
    };
    let changed = true;
    while (changed) {
      changed = false;
      for (const def of defs) {
        if (finite.has(def)) continue;
        let ok: boolean;
        switch (def.k) {
          case 'enum':
            ok = true;
            break;
          case 'struct':
            ok = def.fields.every((f) => endsOk(f.decl));
            break;
          case 'union':
            ok = def.arms.some((a) => a.field === null || endsOk(a.field.decl)) || def.arms.length === 0;
            break;
          case 'typedef':
            ok = endsOk(def.decl);
            break;
        }
        if (ok) {
          finite.add(def);
          changed = true;
        }
      }
    }
    for (const def of defs) {
      if (!finite.has(def)) {
        this.diags.error(
          'RPCGEN_INFINITE_TYPE',
          def.pos,
          `'${def.name}' contains itself with no way to end (use an optional '*' or a variable-length array)`,
        );
      }
    }
  }
}

function describeSymbol(sym: Binding): string {
  switch (sym.k) {
    case 'const':
      return 'a constant';
    case 'enumValue':
      return 'an enum value';
    case 'type':
      return 'a type';
    case 'program':
      return 'a program';
    case 'version':
      return 'a version';
    case 'procedure':
      return 'a procedure';
  }
}

/** Follows typedef aliases to the type a discriminant really has. */
function discriminantKind(ty: Ty): { kind: DiscriminantKind; enumDef?: EnumDef } | undefined {
  let t: Ty = ty;
  for (let guard = 0; guard < 100; guard++) {
    if (t.k === 'prim') {
      if (t.prim === 'int') return { kind: 'int' };
      if (t.prim === 'uint') return { kind: 'uint' };
      if (t.prim === 'bool') return { kind: 'bool' };
      return undefined;
    }
    const def = t.def;
    if (def.k === 'enum') return { kind: 'enum', enumDef: def };
    if (def.k === 'typedef' && def.decl.k === 'scalar') {
      t = def.decl.ty;
      continue;
    }
    return undefined;
  }
  return undefined;
}

/** Follows plain typedef aliases (`typedef foo bar;`) to the definition underneath. */
export function unalias(def: TypeDef): TypeDef {
  let d: TypeDef = def;
  for (
    let guard = 0;
    guard < 100 && d.k === 'typedef' && d.decl.k === 'scalar' && d.decl.ty.k === 'named';
    guard++
  ) {
    d = d.decl.ty.def;
  }
  return d;
}

export type { TypedefDef };
