import type { DiagnosticBag, SourcePos } from './diagnostics.js';

export type TokenKind =
  /** An identifier or keyword; the grammar decides which. */
  | 'ident'
  | 'number'
  /** A double-quoted string; only #include uses one. `text` holds the contents without quotes. */
  | 'string'
  | 'punct'
  /** A `%` line, passed through to C by the classic rpcgen; `text` is the rest of the line. */
  | 'pass'
  /** A `#` that starts a line: the tokens of the same logical line form a directive. */
  | 'hash'
  | 'eof';

export interface Token {
  readonly kind: TokenKind;
  readonly text: string;
  readonly pos: SourcePos;
  /**
   * The logical line: it does not advance over a backslash-newline, so a directive is every
   * token that shares the `hash` token's logical line.
   */
  readonly lline: number;
}

const PUNCT2 = new Set(['==', '!=', '<=', '>=', '<<', '>>', '&&', '||', '##']);
const PUNCT1 = new Set([...'{}()[]<>;,=*:-+/%&|^~!?.#']);

function isIdentStart(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_';
}

function isIdentPart(c: string): boolean {
  return isIdentStart(c) || (c >= '0' && c <= '9');
}

/**
 * Splits one file into tokens. Comments vanish; `%` lines and directive starts are recognised
 * only at the start of a line, as the classic rpcgen (and cpp) do. Problems are reported to
 * `diags` and lexing carries on, so one run shows every bad token.
 */
export function lex(file: string, text: string, diags: DiagnosticBag): Token[] {
  const out: Token[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  let lline = 1;
  let atLineStart = true;
  const n = text.length;
  const pos = (at: number): SourcePos => ({ file, line, column: at - lineStart + 1 });
  const push = (kind: TokenKind, tokenText: string, at: SourcePos): void => {
    out.push({ kind, text: tokenText, pos: at, lline });
    atLineStart = false;
  };
  const newline = (at: number): void => {
    line++;
    lineStart = at + 1;
  };

  while (i < n) {
    const c = text[i];
    if (c === '\n') {
      newline(i);
      lline++;
      atLineStart = true;
      i++;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r' || c === '\f' || c === '\v') {
      i++;
      continue;
    }
    // A backslash-newline joins lines (long #define bodies use it).
    if (c === '\\' && (text[i + 1] === '\n' || (text[i + 1] === '\r' && text[i + 2] === '\n'))) {
      i += text[i + 1] === '\n' ? 1 : 2;
      newline(i);
      i++;
      continue;
    }
    if (c === '/' && text[i + 1] === '*') {
      const start = pos(i);
      i += 2;
      let closed = false;
      while (i < n) {
        if (text[i] === '*' && text[i + 1] === '/') {
          i += 2;
          closed = true;
          break;
        }
        if (text[i] === '\n') newline(i);
        i++;
      }
      if (!closed) diags.error('RPCGEN_UNTERMINATED_COMMENT', start, 'unterminated comment');
      continue;
    }
    if (c === '/' && text[i + 1] === '/') {
      while (i < n && text[i] !== '\n') i++;
      continue;
    }
    if (atLineStart && c === '%') {
      const start = pos(i);
      let j = i + 1;
      let body = '';
      // cpp runs before the classic rpcgen sees `%` lines, so a trailing backslash joins lines.
      for (;;) {
        const from = j;
        while (j < n && text[j] !== '\n') j++;
        const piece = text.slice(from, j).replace(/\r$/, '');
        if (piece.endsWith('\\') && j < n) {
          body += piece.slice(0, -1);
          newline(j);
          j++;
          continue;
        }
        body += piece;
        break;
      }
      push('pass', body, start);
      i = j;
      continue;
    }
    if (atLineStart && c === '#') {
      push('hash', '#', pos(i));
      i++;
      continue;
    }
    if (isIdentStart(c)) {
      let j = i + 1;
      while (j < n && isIdentPart(text[j])) j++;
      push('ident', text.slice(i, j), pos(i));
      i = j;
      continue;
    }
    if (c >= '0' && c <= '9') {
      let j = i + 1;
      while (j < n && isIdentPart(text[j])) j++;
      const word = text.slice(i, j);
      const at = pos(i);
      if (parseIntegerLiteral(word) === undefined) {
        diags.error('RPCGEN_BAD_NUMBER', at, `malformed number '${word}'`);
        push('number', '0', at);
      } else {
        push('number', word, at);
      }
      i = j;
      continue;
    }
    if (c === '"') {
      const start = pos(i);
      let j = i + 1;
      while (j < n && text[j] !== '"' && text[j] !== '\n') j++;
      if (text[j] !== '"') {
        diags.error('RPCGEN_UNTERMINATED_STRING', start, 'unterminated string');
        i = j;
        continue;
      }
      push('string', text.slice(i + 1, j), start);
      i = j + 1;
      continue;
    }
    const two = text.slice(i, i + 2);
    if (PUNCT2.has(two)) {
      push('punct', two, pos(i));
      i += 2;
      continue;
    }
    if (PUNCT1.has(c)) {
      push('punct', c, pos(i));
      i++;
      continue;
    }
    const at = pos(i);
    const shown =
      c.charCodeAt(0) < 32 || c.charCodeAt(0) > 126
        ? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`
        : c;
    diags.error('RPCGEN_BAD_TOKEN', at, `unexpected character '${shown}'`);
    atLineStart = false;
    i++;
  }
  out.push({ kind: 'eof', text: '', pos: pos(i), lline: lline + 1 });
  return out;
}

/**
 * The value of a C integer literal: decimal, `0x` hex or leading-zero octal, with the `u`/`l`
 * suffixes C headers sometimes carry in #define values. Undefined if malformed.
 */
export function parseIntegerLiteral(word: string): bigint | undefined {
  const body = word.replace(/[uUlL]+$/, '');
  if (/^0[xX][0-9a-fA-F]+$/.test(body)) return BigInt(body);
  if (/^0[0-7]*$/.test(body)) return body.length === 1 ? 0n : BigInt(`0o${body.slice(1)}`);
  if (/^[1-9][0-9]*$/.test(body)) return BigInt(body);
  return undefined;
}
