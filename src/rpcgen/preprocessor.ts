import { dirname, join } from 'node:path';
import type { DiagnosticBag, SourcePos } from './diagnostics.js';
import { ExprEvalError, ExprSyntaxError, evaluate, parseExpr, type TokenCursor } from './expr.js';
import { lex, type Token } from './lexer.js';

/**
 * The subset of the C preprocessor that .x files rely on (the classic rpcgen runs them through
 * cpp): #include, object-like #define/#undef, the conditionals with `defined` and integer
 * arithmetic, #pragma, and cpp line markers.
 *
 * The classic rpcgen defines one of RPC_HDR, RPC_XDR, RPC_SVC, RPC_CLNT or RPC_TBL for each
 * output it makes. Every real file guards only `%` pass-through lines (C code) with them, so
 * the choice changes no RPC definition. compile() defines RPC_HDR (as for the C header) and
 * leaves the others undefined: the header's `%#define`s then stay visible, and some files use
 * them as bounds (nlm_prot.x's LM_MAXSTRLEN).
 */
export interface PreprocessOptions {
  readonly includeDirs: readonly string[];
  /** From `-D NAME[=VALUE]`: the value is lexed as the macro's body ("1" when absent). */
  readonly defines: ReadonlyMap<string, string>;
  readonly readFile: (path: string) => string | undefined;
}

interface Macro {
  readonly body: readonly Token[];
}

interface Conditional {
  readonly pos: SourcePos;
  /** Whether the enclosing text is active; if not, no branch of this one is. */
  readonly parentActive: boolean;
  /** Whether some branch so far has been taken. */
  taken: boolean;
  active: boolean;
  sawElse: boolean;
}

const MAX_INCLUDE_DEPTH = 64;
const COMMAND_LINE = '<command line>';

export function preprocess(file: string, diags: DiagnosticBag, options: PreprocessOptions): Token[] {
  return new Preprocessor(diags, options).run(file);
}

class Preprocessor {
  private readonly macros = new Map<string, Macro>();
  private readonly out: Token[] = [];

  constructor(
    private readonly diags: DiagnosticBag,
    private readonly options: PreprocessOptions,
  ) {
    for (const [name, value] of options.defines) {
      const body = lex(COMMAND_LINE, value, diags).filter((t) => t.kind !== 'eof');
      this.macros.set(name, { body });
    }
  }

  run(file: string): Token[] {
    const text = this.options.readFile(file);
    if (text === undefined) {
      this.diags.error('RPCGEN_IO', { file, line: 1, column: 1 }, `cannot read '${file}'`);
    } else {
      this.processFile(file, text, 0);
    }
    const last = this.out.at(-1);
    const eofPos = last?.pos ?? { file, line: 1, column: 1 };
    this.out.push({ kind: 'eof', text: '', pos: eofPos, lline: 0 });
    return this.out;
  }

  private processFile(file: string, text: string, depth: number): void {
    const tokens = lex(file, text, this.diags);
    const stack: Conditional[] = [];
    // Line markers (`# 12 "orig.x"`) re-map positions of the lines that follow them.
    let lineDelta = 0;
    let fileName = file;
    const remap = (p: SourcePos): SourcePos =>
      lineDelta === 0 && fileName === file
        ? p
        : { file: fileName, line: p.line + lineDelta, column: p.column };
    let active = true;

    let i = 0;
    while (tokens[i].kind !== 'eof') {
      const t = tokens[i];
      if (t.kind === 'hash') {
        let j = i + 1;
        while (tokens[j].kind !== 'eof' && tokens[j].lline === t.lline) j++;
        const directive = tokens.slice(i + 1, j);
        i = j;
        const name = directive[0];
        if (name === undefined) continue; // A lone `#` is a null directive.
        const at = remap(name.pos);
        const rest = directive.slice(1);
        if (name.kind === 'number' || (name.kind === 'ident' && name.text === 'line')) {
          if (active) {
            const marker = this.lineMarker(name.kind === 'number' ? directive : rest, at);
            if (marker !== undefined) {
              lineDelta = marker.line - (t.pos.line + 1);
              if (marker.file !== undefined) fileName = marker.file;
            }
          }
          continue;
        }
        switch (name.text) {
          case 'if':
          case 'ifdef':
          case 'ifndef': {
            let cond = false;
            if (active) {
              if (name.text === 'if') cond = this.evalCondition(rest, at);
              else {
                const id = this.expectName(rest, at, name.text);
                cond = id !== undefined && this.macros.has(id) === (name.text === 'ifdef');
              }
            }
            stack.push({
              pos: at,
              parentActive: active,
              taken: cond,
              active: active && cond,
              sawElse: false,
            });
            break;
          }
          case 'elif':
          case 'else': {
            const top = stack.at(-1);
            if (top === undefined) {
              this.diags.error('RPCGEN_UNBALANCED_CONDITIONAL', at, `#${name.text} without #if`);
              break;
            }
            if (top.sawElse) {
              this.diags.error('RPCGEN_UNBALANCED_CONDITIONAL', at, `#${name.text} after #else`);
              break;
            }
            if (name.text === 'else') {
              top.sawElse = true;
              top.active = top.parentActive && !top.taken;
              top.taken = true;
            } else {
              const cond = top.parentActive && !top.taken && this.evalCondition(rest, at);
              top.active = cond;
              if (cond) top.taken = true;
            }
            break;
          }
          case 'endif':
            if (stack.pop() === undefined) {
              this.diags.error('RPCGEN_UNBALANCED_CONDITIONAL', at, '#endif without #if');
            }
            break;
          default:
            if (active) this.directive(name, rest, at, file, depth);
        }
        active = stack.length === 0 || stack[stack.length - 1].active;
        continue;
      }
      i++;
      if (!active) continue;
      if (t.kind === 'ident' && this.macros.has(t.text)) {
        this.expandInto(t.text, remap(t.pos), new Set(), this.out);
      } else {
        this.out.push(lineDelta === 0 && fileName === file ? t : { ...t, pos: remap(t.pos) });
      }
    }
    for (const open of stack) {
      this.diags.error('RPCGEN_UNBALANCED_CONDITIONAL', open.pos, 'unterminated conditional: missing #endif');
    }
  }

  private directive(name: Token, rest: Token[], at: SourcePos, file: string, depth: number): void {
    switch (name.text) {
      case 'include':
        this.include(rest, at, file, depth);
        return;
      case 'define': {
        const id = rest[0];
        if (id === undefined || id.kind !== 'ident') {
          this.diags.error('RPCGEN_PREPROCESSOR', at, '#define needs a macro name');
          return;
        }
        const paren = rest[1];
        if (
          paren !== undefined &&
          paren.kind === 'punct' &&
          paren.text === '(' &&
          paren.pos.line === id.pos.line &&
          paren.pos.column === id.pos.column + id.text.length
        ) {
          this.diags.error('RPCGEN_UNSUPPORTED', at, `function-like macro '${id.text}' is not supported`);
          return;
        }
        this.macros.set(id.text, { body: rest.slice(1) });
        return;
      }
      case 'undef': {
        const id = this.expectName(rest, at, 'undef');
        if (id !== undefined) this.macros.delete(id);
        return;
      }
      case 'pragma':
      case 'ident':
      case 'sccs':
      case 'warning':
        return;
      case 'error':
        this.diags.error('RPCGEN_PREPROCESSOR', at, `#error ${rest.map((t) => t.text).join(' ')}`.trim());
        return;
      default:
        this.diags.error('RPCGEN_PREPROCESSOR', at, `unknown directive '#${name.text}'`);
    }
  }

  private lineMarker(directive: Token[], at: SourcePos): { line: number; file?: string } | undefined {
    const line = directive[0]?.kind === 'number' ? Number(directive[0].text) : Number.NaN;
    if (!Number.isSafeInteger(line) || line < 1) {
      this.diags.error('RPCGEN_PREPROCESSOR', at, 'bad line marker: expected a line number');
      return undefined;
    }
    const f = directive[1];
    return f?.kind === 'string' ? { line, file: f.text } : { line };
  }

  private expectName(rest: Token[], at: SourcePos, directive: string): string | undefined {
    const id = rest[0];
    if (id === undefined || id.kind !== 'ident') {
      this.diags.error('RPCGEN_PREPROCESSOR', at, `#${directive} needs a macro name`);
      return undefined;
    }
    if (rest.length > 1)
      this.diags.error('RPCGEN_PREPROCESSOR', rest[1].pos, `extra tokens after #${directive}`);
    return id.text;
  }

  private include(rest: Token[], at: SourcePos, file: string, depth: number): void {
    let target: string;
    let quoted: boolean;
    const first = rest[0];
    if (first?.kind === 'string') {
      target = first.text;
      quoted = true;
    } else if (first?.kind === 'punct' && first.text === '<') {
      const close = rest.findIndex((t) => t.kind === 'punct' && t.text === '>');
      if (close < 0) {
        this.diags.error('RPCGEN_PREPROCESSOR', at, "#include <...> is missing its '>'");
        return;
      }
      target = rest
        .slice(1, close)
        .map((t) => t.text)
        .join('');
      quoted = false;
    } else {
      this.diags.error('RPCGEN_PREPROCESSOR', at, '#include expects "file" or <file>');
      return;
    }
    if (depth + 1 > MAX_INCLUDE_DEPTH) {
      this.diags.error(
        'RPCGEN_PREPROCESSOR',
        at,
        `#include nested too deeply (an include cycle?) at '${target}'`,
      );
      return;
    }
    // Quoted includes look beside the including file first, then in -I directories, as cpp does.
    const candidates = [
      ...(quoted ? [join(dirname(file), target)] : []),
      ...this.options.includeDirs.map((d) => join(d, target)),
    ];
    for (const path of candidates) {
      const text = this.options.readFile(path);
      if (text !== undefined) {
        this.processFile(path, text, depth + 1);
        return;
      }
    }
    this.diags.error('RPCGEN_INCLUDE_NOT_FOUND', at, `cannot find include file '${target}'`);
  }

  /** Appends the expansion of `name` with every token placed at the use site `pos`. */
  private expandInto(name: string, pos: SourcePos, expanding: Set<string>, into: Token[]): void {
    const macro = this.macros.get(name);
    if (macro === undefined) return;
    expanding.add(name);
    for (const t of macro.body) {
      if (t.kind === 'ident' && this.macros.has(t.text) && !expanding.has(t.text)) {
        this.expandInto(t.text, pos, expanding, into);
      } else {
        into.push({ ...t, pos });
      }
    }
    expanding.delete(name);
  }

  private evalCondition(rest: Token[], at: SourcePos): boolean {
    // `defined` is resolved before macro expansion, as in C.
    const replaced: Token[] = [];
    for (let k = 0; k < rest.length; k++) {
      const t = rest[k];
      if (t.kind === 'ident' && t.text === 'defined') {
        let id = rest[k + 1];
        let skip = 1;
        if (id?.kind === 'punct' && id.text === '(') {
          id = rest[k + 2];
          skip = 3;
          const close = rest[k + 3];
          if (close === undefined || close.kind !== 'punct' || close.text !== ')') {
            this.diags.error('RPCGEN_PREPROCESSOR', t.pos, "expected ')' after defined(NAME");
            return false;
          }
        }
        if (id === undefined || id.kind !== 'ident') {
          this.diags.error('RPCGEN_PREPROCESSOR', t.pos, 'defined needs a macro name');
          return false;
        }
        replaced.push({ ...t, kind: 'number', text: this.macros.has(id.text) ? '1' : '0' });
        k += skip;
        continue;
      }
      if (t.kind === 'ident' && this.macros.has(t.text)) this.expandInto(t.text, t.pos, new Set(), replaced);
      else replaced.push(t);
    }
    if (replaced.length === 0) {
      this.diags.error('RPCGEN_PREPROCESSOR', at, '#if needs an expression');
      return false;
    }
    const end: Token = { kind: 'eof', text: '', pos: replaced[replaced.length - 1].pos, lline: 0 };
    let p = 0;
    const cursor: TokenCursor = {
      peek: () => replaced[p] ?? end,
      next: () => replaced[p++] ?? end,
    };
    try {
      const e = parseExpr(cursor);
      const extra = cursor.peek();
      if (extra.kind !== 'eof') {
        this.diags.error('RPCGEN_PREPROCESSOR', extra.pos, `unexpected '${extra.text}' in #if`);
        return false;
      }
      // Identifiers left after expansion are 0, as in C.
      return evaluate(e, () => 0n) !== 0n;
    } catch (err) {
      if (err instanceof ExprSyntaxError || err instanceof ExprEvalError) {
        this.diags.error('RPCGEN_PREPROCESSOR', err.pos, `in #if: ${err.message}`);
        return false;
      }
      throw err;
    }
  }
}
