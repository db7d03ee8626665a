import type { Module } from './model.js';

/**
 * Words that cannot name a top-level TypeScript declaration (a const, a type, a function), or
 * that the generated code itself relies on. A .x identifier spelled like one gets a `_` suffix.
 */
const RESERVED = new Set([
  // ECMAScript reserved words, strict mode included.
  'break',
  'case',
  'catch',
  'class',
  'const',
  'continue',
  'debugger',
  'default',
  'delete',
  'do',
  'else',
  'enum',
  'export',
  'extends',
  'false',
  'finally',
  'for',
  'function',
  'if',
  'import',
  'in',
  'instanceof',
  'new',
  'null',
  'return',
  'super',
  'switch',
  'this',
  'throw',
  'true',
  'try',
  'typeof',
  'var',
  'void',
  'while',
  'with',
  'yield',
  'let',
  'static',
  'implements',
  'interface',
  'package',
  'private',
  'protected',
  'public',
  'await',
  'arguments',
  'eval',
  // Names TypeScript reserves for its own types.
  'any',
  'unknown',
  'number',
  'bigint',
  'boolean',
  'string',
  'symbol',
  'never',
  'object',
  'undefined',
  'type',
  // Globals the generated code uses.
  'Set',
  'ReadonlySet',
  'Exclude',
  'Uint8Array',
  'Promise',
  'Array',
  'String',
  'Error',
  'NaN',
  'Infinity',
  'globalThis',
]);

/** What the generated files import; a .x name may not take these either. */
export const RUNTIME_NAMES = [
  'XdrReader',
  'XdrWriter',
  'XdrError',
  'xdrErrorAt',
  'CallContext',
  'CallOptions',
  'MaybePromise',
  'ProcedureDefinition',
  'ProgramDefinition',
  'RpcCaller',
] as const;

export function isReserved(name: string): boolean {
  return RESERVED.has(name);
}

/**
 * The TypeScript spelling of each top-level .x name of a module: the name itself, or with `_`
 * appended when it is reserved or would clash with a name the emitter generates (`encode_T`,
 * `E_values`, `V_Client`...). Generated names are derived from the .x spelling, never renamed.
 */
export function topLevelNames(module: Module): Map<string, string> {
  const generated = new Set<string>(RUNTIME_NAMES);
  const declared: string[] = [];
  for (const item of module.items) {
    if (item.k === 'const') {
      declared.push(item.def.name);
    } else if (item.k === 'type') {
      const d = item.def;
      declared.push(d.name);
      generated.add(`encode_${d.name}`);
      generated.add(`decode_${d.name}`);
      if (d.k === 'enum') {
        generated.add(`${d.name}_values`);
        for (const v of d.values) declared.push(v.name);
      }
    } else {
      declared.push(item.def.name);
      for (const v of item.def.versions) {
        declared.push(v.name);
        for (const suffix of ['_Handler', '_program', '_Client', '_procedures'])
          generated.add(v.name + suffix);
        for (const p of v.procedures) declared.push(p.name);
      }
    }
  }
  const taken = new Set<string>([...generated, ...declared]);
  const out = new Map<string, string>();
  for (const name of declared) {
    if (out.has(name)) continue;
    let ts = name;
    if (RESERVED.has(name) || generated.has(name)) {
      ts = `${name}_`;
      while (taken.has(ts) || RESERVED.has(ts)) ts += '_';
      taken.add(ts);
    }
    out.set(name, ts);
  }
  return out;
}
