import type {
  BuiltinName,
  Declaration,
  Definition,
  EnumMember,
  PassThroughDefine,
  Procedure,
  Shape,
  Specification,
  TypeSpec,
  UnionArm,
  Version,
} from './ast.js';
import { DiagnosticBag, type SourcePos } from './diagnostics.js';
import { ADDITIVE_LEVEL, type Expr, ExprSyntaxError, parseExpr, type TokenCursor } from './expr.js';
import { lex, type Token } from './lexer.js';

/** RFC 4506 section 6.4 keywords: never identifiers. */
const KEYWORDS = new Set([
  'bool',
  'case',
  'const',
  'default',
  'double',
  'quadruple',
  'enum',
  'float',
  'hyper',
  'int',
  'opaque',
  'program',
  'string',
  'struct',
  'switch',
  'typedef',
  'union',
  'unsigned',
  'version',
  'void',
]);

const DEFINITION_STARTS = new Set(['const', 'enum', 'struct', 'union', 'typedef', 'program']);

class ParseError extends Error {
  constructor(
    readonly pos: SourcePos,
    message: string,
  ) {
    super(message);
  }
}

function describe(t: Token): string {
  if (t.kind === 'eof') return 'end of file';
  if (t.kind === 'string') return `"${t.text}"`;
  return `'${t.text}'`;
}

/**
 * A hand-written recursive-descent parser for the RPC language (RFC 5531 section 12, RFC 4506
 * section 6) with the classic rpcgen's extensions. On a syntax error it reports, skips to the end
 * of the current definition and carries on, so one run shows every independent error.
 */
export function parse(file: string, tokens: readonly Token[], diags: DiagnosticBag): Specification {
  return new Parser(file, tokens, diags).parseSpecification();
}

class Parser implements TokenCursor {
  private i = 0;
  private depth = 0;
  private readonly defs: Definition[] = [];

  constructor(
    private readonly file: string,
    private readonly tokens: readonly Token[],
    private readonly diags: DiagnosticBag,
  ) {
    // `%` lines are C for the classic rpcgen's outputs; only their #defines matter here.
    this.tokens = tokens.filter((t) => t.kind !== 'pass');
    for (const t of tokens) if (t.kind === 'pass') this.passThrough(t);
  }

  private readonly passDefines: PassThroughDefine[] = [];

  /**
   * Some files define a bound only for C, as `%#define LM_MAXSTRLEN 1024`, and then use it in a
   * declaration (nlm_prot.x); classic rpcgen's output compiles because cpp sees the #define.
   * Such values are kept as a fallback for names the RPC definitions leave undefined.
   */
  private passThrough(t: Token): void {
    const m = /^\s*#\s*define\s+([A-Za-z_][A-Za-z0-9_]*)(\s+.*)?$/.exec(t.text);
    if (m === null || m[2] === undefined) return;
    const scratch = new DiagnosticBag();
    const toks = lex(t.pos.file, m[2], scratch).map((x) => ({ ...x, pos: t.pos }));
    if (scratch.hasErrors || toks.length < 2) return;
    let p = 0;
    const cursor: TokenCursor = { peek: () => toks[p], next: () => toks[Math.min(p++, toks.length - 1)] };
    try {
      const value = parseExpr(cursor);
      if (cursor.peek().kind === 'eof') this.passDefines.push({ name: m[1], value, pos: t.pos });
    } catch (e) {
      if (!(e instanceof ExprSyntaxError)) throw e;
    }
  }

  peek(): Token {
    return this.tokens[this.i];
  }

  private peekAt(offset: number): Token {
    return this.tokens[Math.min(this.i + offset, this.tokens.length - 1)];
  }

  next(): Token {
    const t = this.tokens[this.i];
    if (t.kind !== 'eof') this.i++;
    if (t.kind === 'punct') {
      if (t.text === '{') this.depth++;
      else if (t.text === '}') this.depth--;
    }
    return t;
  }

  private isPunct(text: string): boolean {
    const t = this.peek();
    return t.kind === 'punct' && t.text === text;
  }

  private isWord(text: string): boolean {
    const t = this.peek();
    return t.kind === 'ident' && t.text === text;
  }

  private expectPunct(text: string, context?: string): Token {
    const t = this.peek();
    if (t.kind !== 'punct' || t.text !== text) {
      throw new ParseError(t.pos, `expected '${text}'${context ? ` ${context}` : ''}, found ${describe(t)}`);
    }
    return this.next();
  }

  private expectWord(text: string): Token {
    const t = this.peek();
    if (t.kind !== 'ident' || t.text !== text)
      throw new ParseError(t.pos, `expected '${text}', found ${describe(t)}`);
    return this.next();
  }

  private identifier(what: string): Token {
    const t = this.peek();
    if (t.kind !== 'ident') throw new ParseError(t.pos, `expected ${what}, found ${describe(t)}`);
    if (KEYWORDS.has(t.text))
      throw new ParseError(t.pos, `'${t.text}' is a keyword and cannot be used as ${what}`);
    return this.next();
  }

  private value(level = 0): Expr {
    try {
      return parseExpr(this, level);
    } catch (e) {
      if (e instanceof ExprSyntaxError) throw new ParseError(e.pos, e.message);
      throw e;
    }
  }

  parseSpecification(): Specification {
    while (this.peek().kind !== 'eof') {
      const start = this.i;
      try {
        this.definition();
      } catch (e) {
        if (!(e instanceof ParseError)) throw e;
        this.diags.error('RPCGEN_SYNTAX', e.pos, e.message);
        this.recover(start);
      }
    }
    return { file: this.file, definitions: this.defs, passThroughDefines: this.passDefines };
  }

  /** Skips to just after the `;` that ends the definition in which the error happened. */
  private recover(start: number): void {
    if (this.i === start) this.next();
    for (;;) {
      const t = this.peek();
      if (t.kind === 'eof') break;
      if (this.depth <= 0 && t.kind === 'ident' && DEFINITION_STARTS.has(t.text) && this.i > start) {
        const prev = this.tokens[this.i - 1];
        if (prev.kind === 'punct' && (prev.text === ';' || prev.text === '}')) break;
      }
      this.next();
      if (t.kind === 'punct' && t.text === ';' && this.depth <= 0) break;
    }
    this.depth = 0;
  }

  private definition(): void {
    const t = this.peek();
    if (t.kind !== 'ident') throw new ParseError(t.pos, `expected a definition, found ${describe(t)}`);
    switch (t.text) {
      case 'const': {
        this.next();
        const name = this.identifier('a constant name');
        this.expectPunct('=', 'after the constant name');
        const str = this.peek();
        if (str.kind === 'string') {
          this.next();
          this.expectPunct(';', 'after the constant');
          const value: Expr = { k: 'num', value: 0n, text: '0', pos: str.pos };
          this.defs.push({ k: 'const', name: name.text, value, str: str.text, pos: name.pos });
          return;
        }
        const value = this.value();
        this.expectPunct(';', 'after the constant');
        this.defs.push({ k: 'const', name: name.text, value, pos: name.pos });
        return;
      }
      case 'enum': {
        this.next();
        const name = this.identifier('an enum name');
        const members = this.enumBody();
        this.expectPunct(';', 'after the enum');
        this.defs.push({ k: 'enum', name: name.text, members, pos: name.pos, synthesized: false });
        return;
      }
      case 'struct': {
        this.next();
        const name = this.identifier('a struct name');
        const fields = this.structBody(name.text);
        this.expectPunct(';', 'after the struct');
        this.defs.push({ k: 'struct', name: name.text, fields, pos: name.pos, synthesized: false });
        return;
      }
      case 'union': {
        this.next();
        const name = this.identifier('a union name');
        const body = this.unionBody(name.text);
        this.expectPunct(';', 'after the union');
        this.defs.push({ k: 'union', name: name.text, ...body, pos: name.pos, synthesized: false });
        return;
      }
      case 'typedef':
        this.typedef();
        return;
      case 'program':
        this.program();
        return;
      default:
        throw new ParseError(t.pos, `expected a definition, found ${describe(t)}`);
    }
  }

  private typedef(): void {
    this.next();
    const inline = this.peek();
    const after = this.peekAt(1);
    const hasBody =
      inline.kind === 'ident' &&
      (inline.text === 'struct' || inline.text === 'union' || inline.text === 'enum') &&
      ((after.kind === 'punct' && after.text === '{') ||
        (inline.text === 'union' && after.text === 'switch'));
    const declared = hasBody ? this.fieldNameAfterType(this.i) : '';
    if (hasBody && this.plainNameFollowsBody()) {
      // `typedef struct {...} name;` defines the inline type under the typedef's own name.
      const kw = this.next().text;
      if (kw === 'enum') {
        const members = this.enumBody();
        const name = this.identifier('a type name');
        this.expectPunct(';', 'after the typedef');
        this.defs.push({ k: 'enum', name: name.text, members, pos: name.pos, synthesized: false });
      } else if (kw === 'struct') {
        const fields = this.structBody(declared);
        const name = this.identifier('a type name');
        this.expectPunct(';', 'after the typedef');
        this.defs.push({ k: 'struct', name: name.text, fields, pos: name.pos, synthesized: false });
      } else {
        const body = this.unionBody(declared);
        const name = this.identifier('a type name');
        this.expectPunct(';', 'after the typedef');
        this.defs.push({ k: 'union', name: name.text, ...body, pos: name.pos, synthesized: false });
      }
      return;
    }
    const decl = this.declaration(declared);
    this.expectPunct(';', 'after the typedef');
    if (decl.k === 'void') throw new ParseError(decl.pos, 'a typedef cannot declare void');
    this.defs.push({ k: 'typedef', name: decl.name, decl, pos: decl.pos });
  }

  /** True if the balanced body starting here is followed by `identifier ;`. */
  private plainNameFollowsBody(): boolean {
    let depth = 0;
    for (let j = this.i; j < this.tokens.length; j++) {
      const t = this.tokens[j];
      if (t.kind === 'eof') return false;
      if (t.kind === 'punct' && t.text === '{') depth++;
      else if (t.kind === 'punct' && t.text === '}') {
        depth--;
        if (depth === 0) {
          const n = this.tokens[j + 1];
          const semi = this.tokens[j + 2];
          return n?.kind === 'ident' && semi?.kind === 'punct' && semi.text === ';';
        }
      }
    }
    return false;
  }

  private enumBody(): EnumMember[] {
    this.expectPunct('{', 'to open the enum body');
    const members: EnumMember[] = [];
    for (;;) {
      const name = this.identifier('an enum value name');
      let value: Expr | undefined;
      if (this.isPunct('=')) {
        this.next();
        value = this.value();
      }
      members.push({ name: name.text, value, pos: name.pos });
      if (this.isPunct(',')) {
        this.next();
        // A trailing comma before `}` is a C habit some files carry.
        if (this.isPunct('}')) break;
        continue;
      }
      break;
    }
    this.expectPunct('}', 'to close the enum body');
    return members;
  }

  private structBody(owner: string): Declaration[] {
    this.expectPunct('{', 'to open the struct body');
    const fields: Declaration[] = [];
    do {
      fields.push(this.declaration(owner));
      this.expectPunct(';', 'after the field');
    } while (!this.isPunct('}'));
    this.expectPunct('}', 'to close the struct body');
    return fields;
  }

  private unionBody(owner: string): { discriminant: Declaration; arms: UnionArm[] } {
    this.expectWord('switch');
    this.expectPunct('(', "after 'switch'");
    const discriminant = this.declaration(owner);
    this.expectPunct(')', 'after the discriminant');
    this.expectPunct('{', 'to open the union body');
    const arms: UnionArm[] = [];
    while (!this.isPunct('}')) {
      const pos = this.peek().pos;
      const labels: Expr[] = [];
      let isDefault = false;
      while (this.isWord('case') || this.isWord('default')) {
        if (this.next().text === 'case') {
          labels.push(this.value());
        } else {
          isDefault = true;
        }
        this.expectPunct(':', 'after the case label');
      }
      if (labels.length === 0 && !isDefault) {
        throw new ParseError(this.peek().pos, `expected 'case' or 'default', found ${describe(this.peek())}`);
      }
      const decl = this.declaration(owner);
      this.expectPunct(';', 'after the arm');
      arms.push({ labels, isDefault, decl, pos });
    }
    this.expectPunct('}', 'to close the union body');
    return { discriminant, arms };
  }

  /**
   * A declaration: `void`, `T x`, `T x[N]`, `T x<N>`, `T x<>`, `T *x`. `owner` names the
   * definition it is in, for naming inline types declared here.
   */
  private declaration(owner: string): Declaration {
    const first = this.peek();
    if (first.kind === 'ident' && first.text === 'void') {
      this.next();
      return { k: 'void', pos: first.pos };
    }
    const start = this.i;
    // Inline types are named after the field, which follows them: look ahead for it.
    const type = this.typeSpec(owner, () => this.fieldNameAfterType(start));
    let shape: Shape;
    if (this.isPunct('*')) {
      this.next();
      const name = this.identifier('a name');
      return { k: 'decl', type, name: name.text, shape: { k: 'optional' }, pos: name.pos };
    }
    const name = this.identifier('a name');
    if (this.isPunct('[')) {
      this.next();
      const size = this.value();
      this.expectPunct(']', 'after the array size');
      shape = { k: 'fixed', size };
    } else if (this.isPunct('<')) {
      this.next();
      if (this.isPunct('>')) {
        shape = { k: 'var' };
      } else {
        shape = { k: 'var', max: this.value(ADDITIVE_LEVEL) };
      }
      this.expectPunct('>', 'after the maximum size');
    } else {
      shape = { k: 'plain' };
    }
    return { k: 'decl', type, name: name.text, shape, pos: name.pos };
  }

  /** Scans past a balanced inline body to the identifier that names the field. */
  private fieldNameAfterType(start: number): string {
    let depth = 0;
    for (let j = start; j < this.tokens.length; j++) {
      const t = this.tokens[j];
      if (t.kind === 'eof') break;
      if (t.kind === 'punct' && t.text === '{') depth++;
      else if (t.kind === 'punct' && t.text === '}') {
        depth--;
        if (depth === 0) {
          let k = j + 1;
          if (this.tokens[k]?.kind === 'punct' && this.tokens[k].text === '*') k++;
          const n = this.tokens[k];
          return n?.kind === 'ident' ? n.text : 'anon';
        }
      }
    }
    return 'anon';
  }

  private typeSpec(owner: string, fieldName?: () => string): TypeSpec {
    const t = this.peek();
    if (t.kind !== 'ident') throw new ParseError(t.pos, `expected a type, found ${describe(t)}`);
    const builtin = (name: BuiltinName): TypeSpec => ({ k: 'builtin', name, pos: t.pos });
    switch (t.text) {
      case 'unsigned': {
        this.next();
        const n = this.peek();
        if (n.kind === 'ident') {
          if (n.text === 'int' || n.text === 'char' || n.text === 'short') {
            this.next();
            return builtin('uint');
          }
          if (n.text === 'long') {
            this.next();
            return builtin('uint');
          }
          if (n.text === 'hyper') {
            this.next();
            return builtin('uhyper');
          }
        }
        return builtin('uint');
      }
      case 'int':
        this.next();
        return builtin('int');
      case 'hyper':
        this.next();
        return builtin('hyper');
      case 'float':
        this.next();
        return builtin('float');
      case 'double':
        this.next();
        return builtin('double');
      case 'quadruple':
        this.next();
        return builtin('quadruple');
      case 'bool':
        this.next();
        return builtin('bool');
      case 'opaque':
        this.next();
        return builtin('opaque');
      case 'string':
        this.next();
        return builtin('string');
      case 'enum':
      case 'struct':
      case 'union': {
        this.next();
        const after = this.peek();
        const hasBody =
          (after.kind === 'punct' && after.text === '{') ||
          (t.text === 'union' && after.kind === 'ident' && after.text === 'switch');
        if (!hasBody) {
          const name = this.identifier(`a ${t.text} name`);
          const next = this.peek();
          if (
            (next.kind === 'punct' && next.text === '{') ||
            (t.text === 'union' && next.text === 'switch')
          ) {
            throw new ParseError(name.pos, `a named ${t.text} cannot be defined inside another definition`);
          }
          return { k: 'ref', name: name.text, keyword: t.text, pos: name.pos };
        }
        const field = fieldName ? fieldName() : 'anon';
        const name = owner === '' ? field : owner === field ? `${field}_body` : `${owner}_${field}`;
        const pos = t.pos;
        if (t.text === 'enum') {
          const members = this.enumBody();
          this.defs.push({ k: 'enum', name, members, pos, synthesized: true });
        } else if (t.text === 'struct') {
          const fields = this.structBody(name);
          this.defs.push({ k: 'struct', name, fields, pos, synthesized: true });
        } else {
          const body = this.unionBody(name);
          this.defs.push({ k: 'union', name, ...body, pos, synthesized: true });
        }
        return { k: 'ref', name, pos };
      }
      default:
        if (KEYWORDS.has(t.text)) throw new ParseError(t.pos, `expected a type, found '${t.text}'`);
        this.next();
        return { k: 'ref', name: t.text, pos: t.pos };
    }
  }

  private program(): void {
    this.next();
    const name = this.identifier('a program name');
    this.expectPunct('{', 'to open the program body');
    const versions: Version[] = [];
    do {
      versions.push(this.version());
    } while (!this.isPunct('}'));
    this.expectPunct('}', 'to close the program body');
    this.expectPunct('=', 'before the program number');
    const number = this.value();
    this.expectPunct(';', 'after the program');
    this.defs.push({ k: 'program', name: name.text, number, versions, pos: name.pos });
  }

  private version(): Version {
    this.expectWord('version');
    const name = this.identifier('a version name');
    this.expectPunct('{', 'to open the version body');
    const procedures: Procedure[] = [];
    do {
      procedures.push(this.procedure());
    } while (!this.isPunct('}'));
    this.expectPunct('}', 'to close the version body');
    this.expectPunct('=', 'before the version number');
    const number = this.value();
    this.expectPunct(';', 'after the version');
    return { name: name.text, number, procedures, pos: name.pos };
  }

  private procedure(): Procedure {
    const result = this.procType();
    const name = this.identifier('a procedure name');
    this.expectPunct('(', 'after the procedure name');
    const args: Declaration[] = [this.procType()];
    while (this.isPunct(',')) {
      this.next();
      args.push(this.procType());
    }
    this.expectPunct(')', 'after the procedure arguments');
    this.expectPunct('=', 'before the procedure number');
    const number = this.value();
    this.expectPunct(';', 'after the procedure');
    return { name: name.text, number, result, args, pos: name.pos };
  }

  /** A procedure's argument or result: a type, with `<N>`/`[N]` for strings and opaques. */
  private procType(): Declaration {
    const first = this.peek();
    if (first.kind === 'ident' && first.text === 'void') {
      this.next();
      return { k: 'void', pos: first.pos };
    }
    const type = this.typeSpec('');
    let shape: Shape = { k: 'plain' };
    if (this.isPunct('<')) {
      this.next();
      shape = this.isPunct('>') ? { k: 'var' } : { k: 'var', max: this.value(ADDITIVE_LEVEL) };
      this.expectPunct('>', 'after the maximum size');
    } else if (this.isPunct('[')) {
      this.next();
      shape = { k: 'fixed', size: this.value() };
      this.expectPunct(']', 'after the array size');
    } else if (this.isPunct('*')) {
      this.next();
      shape = { k: 'optional' };
    } else if (type.k === 'builtin' && (type.name === 'string' || type.name === 'opaque')) {
      // `string` alone as an argument (rpcbind's uaddr2taddr) means an unbounded string.
      shape = { k: 'var' };
    }
    return { k: 'decl', type, name: '', shape, pos: first.pos };
  }
}
