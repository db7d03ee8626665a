import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { type Binding, Checker, type ExternalScope } from './check.js';
import { type Diagnostic, DiagnosticBag, RpcgenError } from './diagnostics.js';
import { emitModule } from './emit.js';
import type { Module } from './model.js';
import { topLevelNames } from './names.js';
import { parse } from './parser.js';
import { preprocess } from './preprocessor.js';

export interface CompileOptions {
  /** `-I` directories searched by #include. */
  readonly includeDirs?: readonly string[];
  /** `-D NAME[=VALUE]` macros; a value of '' or undefined means 1, as with cpp. */
  readonly defines?: Readonly<Record<string, string | undefined>>;
  /** `string` as UTF-8 text (default) or as raw bytes (`Uint8Array`). */
  readonly strings?: 'utf8' | 'bytes';
  /** Module specifier of the XDR runtime in generated imports (default `cairn/xdr`). */
  readonly xdrImport?: string;
  /** Module specifier of the RPC stub contract in generated imports (default `cairn/rpc`). */
  readonly rpcImport?: string;
  /** Reads a source file; undefined when it does not exist. Defaults to the file system. */
  readonly readFile?: (path: string) => string | undefined;
}

export interface CompiledFile {
  /** The input file as given. */
  readonly input: string;
  /** `<basename>.ts`, to be written into the output directory. */
  readonly fileName: string;
  readonly contents: string;
}

export interface CompileResult {
  readonly ok: boolean;
  /** Empty unless `ok`. */
  readonly files: readonly CompiledFile[];
  readonly diagnostics: readonly Diagnostic[];
}

export const DEFAULT_XDR_IMPORT = 'cairn/xdr';
export const DEFAULT_RPC_IMPORT = 'cairn/rpc';

function readFromDisk(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR') return undefined;
    throw e;
  }
}

/** The output name of an input: `nfs.x` gives `nfs`. */
export function moduleNameOf(file: string): string {
  return basename(file).replace(/\.x$/, '');
}

/**
 * Compiles .x files to TypeScript, one output per input. Files given together may use each
 * other's types (the output imports them from the sibling module); names are looked up in the
 * file itself first, then in the other inputs in command-line order.
 */
export function compile(files: readonly string[], options: CompileOptions = {}): CompileResult {
  const diags = new DiagnosticBag();
  const readFile = options.readFile ?? readFromDisk;
  // RPC_HDR guards the C header's `%` lines, whose `%#define`s may hold bounds (preprocessor.ts).
  const defines = new Map<string, string>([['RPC_HDR', '1']]);
  for (const [k, v] of Object.entries(options.defines ?? {}))
    defines.set(k, v === undefined || v === '' ? '1' : v);

  const checkers: Checker[] = [];
  const byModule = new Map<string, Checker>();
  const scope: ExternalScope = {
    lookup(name: string, from: Checker): { checker: Checker; symbol: Binding } | undefined {
      for (const c of checkers) {
        if (c === from) continue;
        const symbol = c.localSymbol(name);
        if (
          symbol !== undefined &&
          (symbol.k === 'type' || symbol.k === 'const' || symbol.k === 'enumValue')
        ) {
          return { checker: c, symbol };
        }
      }
      return undefined;
    },
    checkerFor: (module: string) => byModule.get(module),
  };

  for (const file of files) {
    const name = moduleNameOf(file);
    const tokens = preprocess(file, diags, { includeDirs: options.includeDirs ?? [], defines, readFile });
    const spec = parse(file, tokens, diags);
    if (byModule.has(name)) {
      diags.error(
        'RPCGEN_DUPLICATE',
        { file, line: 1, column: 1 },
        `another input also produces '${name}.ts'`,
      );
      continue;
    }
    const checker = new Checker(spec, name, diags, scope);
    checkers.push(checker);
    byModule.set(name, checker);
  }
  for (const c of checkers) c.declare();
  const modules: Module[] = checkers.map((c) => c.resolve());

  const diagnostics = sortDiagnostics(diags.items, files);
  if (diagnostics.length > 0) return { ok: false, files: [], diagnostics };

  const names = new Map(modules.map((m) => [m.name, topLevelNames(m)]));
  const nameIn = (module: string, name: string): string => names.get(module)?.get(name) ?? name;
  const out: CompiledFile[] = modules.map((m) => ({
    input: m.file,
    fileName: `${m.name}.ts`,
    contents: emitModule(m, {
      strings: options.strings ?? 'utf8',
      xdrImport: options.xdrImport ?? DEFAULT_XDR_IMPORT,
      rpcImport: options.rpcImport ?? DEFAULT_RPC_IMPORT,
      sourceName: m.file,
      nameIn,
    }),
  }));
  return { ok: true, files: out, diagnostics: [] };
}

/** Compiles one file and returns its TypeScript, or throws RpcgenError with every diagnostic. */
export function compileFile(file: string, options: CompileOptions = {}): string {
  const result = compile([file], options);
  if (!result.ok) throw new RpcgenError(result.diagnostics);
  return result.files[0].contents;
}

/** Input files in the order given, each file's diagnostics by position. */
function sortDiagnostics(items: readonly Diagnostic[], files: readonly string[]): Diagnostic[] {
  const fileOrder = new Map<string, number>();
  for (const [k, f] of files.entries()) fileOrder.set(f, k);
  for (const d of items) if (!fileOrder.has(d.pos.file)) fileOrder.set(d.pos.file, fileOrder.size);
  return items
    .map((d, k) => ({ d, k }))
    .sort(
      (a, b) =>
        (fileOrder.get(a.d.pos.file) ?? 0) - (fileOrder.get(b.d.pos.file) ?? 0) ||
        a.d.pos.line - b.d.pos.line ||
        a.d.pos.column - b.d.pos.column ||
        a.k - b.k,
    )
    .map((x) => x.d);
}
