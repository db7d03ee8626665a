import type { SourcePos } from './diagnostics.js';
import type { Expr } from './expr.js';

/**
 * The syntax tree of one .x file (after preprocessing), as written: names are not resolved and
 * values not evaluated; check.ts does that. Inline `struct {...}`, `union switch ...` and
 * `enum {...}` declarations are hoisted by the parser into top-level definitions with a name
 * made from where they appear (`synthesized` says so), so the rest of the compiler sees only
 * named types.
 */

export type BuiltinName =
  | 'int'
  | 'uint'
  | 'hyper'
  | 'uhyper'
  | 'float'
  | 'double'
  | 'quadruple'
  | 'bool'
  | 'opaque'
  | 'string';

export type TypeSpec =
  | { readonly k: 'builtin'; readonly name: BuiltinName; readonly pos: SourcePos }
  /** A named type; `keyword` records `struct X`/`union X`/`enum X` spellings for checking. */
  | {
      readonly k: 'ref';
      readonly name: string;
      readonly keyword?: 'struct' | 'union' | 'enum';
      readonly pos: SourcePos;
    };

export type Shape =
  | { readonly k: 'plain' }
  /** `T x[N]` */
  | { readonly k: 'fixed'; readonly size: Expr }
  /** `T x<N>` or `T x<>` (no max: 2^32 - 1) */
  | { readonly k: 'var'; readonly max?: Expr }
  /** `T *x` */
  | { readonly k: 'optional' };

export type Declaration =
  | { readonly k: 'void'; readonly pos: SourcePos }
  | {
      readonly k: 'decl';
      readonly type: TypeSpec;
      /** Empty for the unnamed argument and result types of procedures. */
      readonly name: string;
      readonly shape: Shape;
      readonly pos: SourcePos;
    };

export interface EnumMember {
  readonly name: string;
  /** Absent: one more than the previous member (0 for the first), as classic rpcgen allows. */
  readonly value?: Expr;
  readonly pos: SourcePos;
}

export interface UnionArm {
  readonly labels: readonly Expr[];
  readonly isDefault: boolean;
  readonly decl: Declaration;
  readonly pos: SourcePos;
}

export interface Procedure {
  readonly name: string;
  readonly number: Expr;
  readonly result: Declaration;
  /** One element for the classic single argument (possibly void); several for rpcgen -N style. */
  readonly args: readonly Declaration[];
  readonly pos: SourcePos;
}

export interface Version {
  readonly name: string;
  readonly number: Expr;
  readonly procedures: readonly Procedure[];
  readonly pos: SourcePos;
}

export type Definition =
  /** `str` is set for the string constants some files declare (key_prot.x's HEXMODULUS). */
  | {
      readonly k: 'const';
      readonly name: string;
      readonly value: Expr;
      readonly str?: string;
      readonly pos: SourcePos;
    }
  | {
      readonly k: 'enum';
      readonly name: string;
      readonly members: readonly EnumMember[];
      readonly pos: SourcePos;
      readonly synthesized: boolean;
    }
  | {
      readonly k: 'struct';
      readonly name: string;
      readonly fields: readonly Declaration[];
      readonly pos: SourcePos;
      readonly synthesized: boolean;
    }
  | {
      readonly k: 'union';
      readonly name: string;
      readonly discriminant: Declaration;
      readonly arms: readonly UnionArm[];
      readonly pos: SourcePos;
      readonly synthesized: boolean;
    }
  | { readonly k: 'typedef'; readonly name: string; readonly decl: Declaration; readonly pos: SourcePos }
  | {
      readonly k: 'program';
      readonly name: string;
      readonly number: Expr;
      readonly versions: readonly Version[];
      readonly pos: SourcePos;
    };

/** A `%#define NAME value` pass-through line: C code, but its value may be used as a bound. */
export interface PassThroughDefine {
  readonly name: string;
  readonly value: Expr;
  readonly pos: SourcePos;
}

export interface Specification {
  readonly file: string;
  readonly definitions: readonly Definition[];
  readonly passThroughDefines: readonly PassThroughDefine[];
}
