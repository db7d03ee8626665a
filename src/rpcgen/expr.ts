import type { SourcePos } from './diagnostics.js';
import { parseIntegerLiteral, type Token } from './lexer.js';

/**
 * Integer constant expressions, shared by `#if` and by the values of the RPC language (array
 * bounds, case labels, enum values, constants). The RPC grammar allows only a literal or a name
 * there, but macros expand to expressions such as `(4 * 1024)`, so the full C set is accepted.
 */
export type Expr =
  | { readonly k: 'num'; readonly value: bigint; readonly text: string; readonly pos: SourcePos }
  | { readonly k: 'name'; readonly name: string; readonly pos: SourcePos }
  | { readonly k: 'unary'; readonly op: string; readonly e: Expr; readonly pos: SourcePos }
  | { readonly k: 'binary'; readonly op: string; readonly l: Expr; readonly r: Expr; readonly pos: SourcePos }
  | { readonly k: 'cond'; readonly c: Expr; readonly t: Expr; readonly f: Expr; readonly pos: SourcePos };

export interface TokenCursor {
  peek(): Token;
  next(): Token;
}

export class ExprSyntaxError extends Error {
  constructor(
    readonly pos: SourcePos,
    message: string,
  ) {
    super(message);
  }
}

const BINARY_LEVELS: readonly (readonly string[])[] = [
  ['||'],
  ['&&'],
  ['|'],
  ['^'],
  ['&'],
  ['==', '!='],
  ['<', '>', '<=', '>='],
  ['<<', '>>'],
  ['+', '-'],
  ['*', '/', '%'],
];

/** Index into BINARY_LEVELS of `+ -`: bounds inside `<...>` parse from here so `>` closes them. */
export const ADDITIVE_LEVEL = 8;

function isPunct(t: Token, text: string): boolean {
  return t.kind === 'punct' && t.text === text;
}

/** Parses a conditional expression; `fromLevel` skips the looser binary operators. */
export function parseExpr(c: TokenCursor, fromLevel = 0): Expr {
  if (fromLevel > 0) return parseBinary(c, fromLevel);
  const cond = parseBinary(c, 0);
  if (!isPunct(c.peek(), '?')) return cond;
  c.next();
  const t = parseExpr(c);
  const colon = c.next();
  if (!isPunct(colon, ':')) throw new ExprSyntaxError(colon.pos, `expected ':' in conditional expression`);
  const f = parseExpr(c);
  return { k: 'cond', c: cond, t, f, pos: cond.pos };
}

function parseBinary(c: TokenCursor, level: number): Expr {
  if (level >= BINARY_LEVELS.length) return parseUnary(c);
  let left = parseBinary(c, level + 1);
  for (;;) {
    const t = c.peek();
    if (t.kind !== 'punct' || !BINARY_LEVELS[level].includes(t.text)) return left;
    c.next();
    const right = parseBinary(c, level + 1);
    left = { k: 'binary', op: t.text, l: left, r: right, pos: t.pos };
  }
}

function parseUnary(c: TokenCursor): Expr {
  const t = c.peek();
  if (t.kind === 'punct' && (t.text === '-' || t.text === '+' || t.text === '~' || t.text === '!')) {
    c.next();
    return { k: 'unary', op: t.text, e: parseUnary(c), pos: t.pos };
  }
  if (isPunct(t, '(')) {
    c.next();
    const e = parseExpr(c);
    const close = c.next();
    if (!isPunct(close, ')')) throw new ExprSyntaxError(close.pos, `expected ')'`);
    return e;
  }
  if (t.kind === 'number') {
    c.next();
    return { k: 'num', value: parseIntegerLiteral(t.text) ?? 0n, text: t.text, pos: t.pos };
  }
  if (t.kind === 'ident') {
    c.next();
    return { k: 'name', name: t.text, pos: t.pos };
  }
  throw new ExprSyntaxError(
    t.pos,
    t.kind === 'eof' ? 'expected a value' : `expected a value, found '${t.text}'`,
  );
}

export class ExprEvalError extends Error {
  constructor(
    readonly pos: SourcePos,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Evaluates with arbitrary precision; `resolve` gives a name's value or throws ExprEvalError.
 * Callers range-check the result for their context (a 32-bit enum, an unsigned bound).
 */
export function evaluate(e: Expr, resolve: (name: string, pos: SourcePos) => bigint): bigint {
  switch (e.k) {
    case 'num':
      return e.value;
    case 'name':
      return resolve(e.name, e.pos);
    case 'unary': {
      const v = evaluate(e.e, resolve);
      if (e.op === '-') return -v;
      if (e.op === '+') return v;
      if (e.op === '~') return ~v;
      return v === 0n ? 1n : 0n;
    }
    case 'cond':
      return evaluate(e.c, resolve) !== 0n ? evaluate(e.t, resolve) : evaluate(e.f, resolve);
    case 'binary': {
      if (e.op === '&&') return evaluate(e.l, resolve) !== 0n && evaluate(e.r, resolve) !== 0n ? 1n : 0n;
      if (e.op === '||') return evaluate(e.l, resolve) !== 0n || evaluate(e.r, resolve) !== 0n ? 1n : 0n;
      const l = evaluate(e.l, resolve);
      const r = evaluate(e.r, resolve);
      switch (e.op) {
        case '|':
          return l | r;
        case '^':
          return l ^ r;
        case '&':
          return l & r;
        case '==':
          return l === r ? 1n : 0n;
        case '!=':
          return l !== r ? 1n : 0n;
        case '<':
          return l < r ? 1n : 0n;
        case '>':
          return l > r ? 1n : 0n;
        case '<=':
          return l <= r ? 1n : 0n;
        case '>=':
          return l >= r ? 1n : 0n;
        case '<<':
          if (r < 0n || r > 64n) throw new ExprEvalError(e.pos, `shift count ${r} out of range`);
          return l << r;
        case '>>':
          if (r < 0n || r > 64n) throw new ExprEvalError(e.pos, `shift count ${r} out of range`);
          return l >> r;
        case '+':
          return l + r;
        case '-':
          return l - r;
        case '*':
          return l * r;
        case '/':
        case '%':
          if (r === 0n) throw new ExprEvalError(e.pos, 'division by zero');
          return e.op === '/' ? l / r : l % r;
      }
      throw new ExprEvalError(e.pos, `unknown operator '${e.op}'`);
    }
  }
}
