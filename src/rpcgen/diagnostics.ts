import { CairnError } from '../errors.js';

/** A place in a source file: `file` is spelled as the user gave it (or as an #include resolved it). */
export interface SourcePos {
  readonly file: string;
  /** 1-based. */
  readonly line: number;
  /** 1-based, counted in characters; a tab counts as one. */
  readonly column: number;
}

/**
 * Stable codes for every kind of problem rpcgen reports. Tools and tests branch on these, never
 * on message text.
 */
export type DiagnosticCode =
  | 'RPCGEN_IO'
  | 'RPCGEN_BAD_TOKEN'
  | 'RPCGEN_UNTERMINATED_COMMENT'
  | 'RPCGEN_UNTERMINATED_STRING'
  | 'RPCGEN_BAD_NUMBER'
  | 'RPCGEN_PREPROCESSOR'
  | 'RPCGEN_INCLUDE_NOT_FOUND'
  | 'RPCGEN_UNBALANCED_CONDITIONAL'
  | 'RPCGEN_SYNTAX'
  | 'RPCGEN_UNKNOWN_TYPE'
  | 'RPCGEN_UNDEFINED_CONSTANT'
  | 'RPCGEN_DUPLICATE'
  | 'RPCGEN_BAD_VALUE'
  | 'RPCGEN_BAD_DISCRIMINANT'
  | 'RPCGEN_UNSUPPORTED'
  | 'RPCGEN_INFINITE_TYPE';

export interface Diagnostic {
  readonly code: DiagnosticCode;
  readonly pos: SourcePos;
  readonly message: string;
}

/** `file:line:column: message`, the format every tool that reads compiler output understands. */
export function formatDiagnostic(d: Diagnostic): string {
  return `${d.pos.file}:${d.pos.line}:${d.pos.column}: ${d.message}`;
}

/** Collects diagnostics so that one run reports as many independent problems as it can find. */
export class DiagnosticBag {
  readonly items: Diagnostic[] = [];

  error(code: DiagnosticCode, pos: SourcePos, message: string): void {
    this.items.push({ code, pos, message });
  }

  get hasErrors(): boolean {
    return this.items.length > 0;
  }
}

/** Thrown by the throwing entry points (`compileFile`) when compilation fails. */
export class RpcgenError extends CairnError {
  readonly diagnostics: readonly Diagnostic[];
  constructor(diagnostics: readonly Diagnostic[]) {
    super('RPCGEN_COMPILE_FAILED', diagnostics.map(formatDiagnostic).join('\n'));
    this.diagnostics = diagnostics;
  }
}

/** A command line rpcgen cannot act on; the CLI exits with status 2. */
export class RpcgenUsageError extends CairnError {
  constructor(message: string) {
    super('RPCGEN_USAGE', message);
  }
}
