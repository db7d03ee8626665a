import type { SourcePos } from './diagnostics.js';

/**
 * The checked form of a .x file that the emitter works from: every name resolved to its
 * definition, every value evaluated, every bound checked.
 */

export type Prim = 'int' | 'uint' | 'hyper' | 'uhyper' | 'float' | 'double' | 'bool';

export type Ty = { readonly k: 'prim'; readonly prim: Prim } | { readonly k: 'named'; readonly def: TypeDef };

export type Decl =
  | { readonly k: 'void' }
  | { readonly k: 'scalar'; readonly ty: Ty }
  | { readonly k: 'fixedOpaque'; readonly size: number }
  | { readonly k: 'varOpaque'; readonly max: number }
  | { readonly k: 'string'; readonly max: number }
  | { readonly k: 'fixedArray'; readonly ty: Ty; readonly size: number }
  | { readonly k: 'varArray'; readonly ty: Ty; readonly max: number }
  | { readonly k: 'optional'; readonly ty: Ty };

export interface Field {
  readonly name: string;
  readonly decl: Decl;
  readonly pos: SourcePos;
}

export interface EnumValue {
  readonly name: string;
  readonly value: number;
}

export interface CaseLabel {
  readonly value: number;
  /** Set when the label is a constant or enum value of the same file, to emit `typeof NAME`. */
  readonly name?: string;
}

export interface Arm {
  readonly labels: readonly CaseLabel[];
  readonly isDefault: boolean;
  /** Null for a void arm. */
  readonly field: Field | null;
}

export type DiscriminantKind = 'int' | 'uint' | 'bool' | 'enum';

interface TypeDefBase {
  readonly name: string;
  readonly pos: SourcePos;
  /** The output module (basename) that defines it, when it comes from another input file. */
  readonly module: string;
  readonly synthesized: boolean;
}

export interface EnumDef extends TypeDefBase {
  readonly k: 'enum';
  values: EnumValue[];
}

export interface StructDef extends TypeDefBase {
  readonly k: 'struct';
  fields: Field[];
}

export interface UnionDef extends TypeDefBase {
  readonly k: 'union';
  discriminant: { name: string; ty: Ty; kind: DiscriminantKind; enumDef?: EnumDef };
  arms: Arm[];
}

export interface TypedefDef extends TypeDefBase {
  readonly k: 'typedef';
  decl: Decl;
}

export type TypeDef = EnumDef | StructDef | UnionDef | TypedefDef;

export interface ConstDef {
  readonly name: string;
  readonly value: bigint;
  /** Set for a string constant; `value` is then meaningless. */
  readonly str?: string;
  /** The literal as written, when it was one (keeps hex constants readable). */
  readonly literal?: string;
}

export interface ProcedureDef {
  readonly name: string;
  readonly number: number;
  readonly args: readonly Decl[];
  readonly result: Decl;
}

export interface VersionDef {
  readonly name: string;
  readonly number: number;
  readonly procedures: readonly ProcedureDef[];
}

export interface ProgramDef {
  readonly name: string;
  readonly number: number;
  readonly versions: readonly VersionDef[];
}

export type Item =
  | { readonly k: 'const'; readonly def: ConstDef }
  | { readonly k: 'type'; readonly def: TypeDef }
  | { readonly k: 'program'; readonly def: ProgramDef };

export interface Module {
  /** The input file as given. */
  readonly file: string;
  /** Output basename: `nfs` for `nfs.x`. */
  readonly name: string;
  /** Definitions in source order (inline types just before the definition that holds them). */
  readonly items: readonly Item[];
}
