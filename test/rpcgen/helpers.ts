/**
 * Shared by the rpcgen tests: generate TypeScript from .x files into a scratch directory under
 * dist/, type-check it with the project's strict compiler options, and load it as a module.
 * Generated code imports the compiled runtime in dist/src, so the tests need the build that
 * `npx tsc -p tsconfig.json` (or `npm run build`) makes before they run.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import { type CompileOptions, type CompileResult, compile } from '../../src/rpcgen/index.js';

/** The repository root (this file runs as dist/test/rpcgen/helpers.js). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const FIXTURES = join(ROOT, 'test/fixtures/x');
const XDR_RUNTIME = join(ROOT, 'dist/src/xdr/index.js');
const RPC_STUB = join(ROOT, 'dist/src/rpc/stub.js');
const SCRATCH = join(ROOT, 'dist/rpcgen-test');

let counter = 0;

/** A fresh directory under dist/ (inside the package, so `"type": "module"` applies). */
export function scratchDir(name: string): string {
  const dir = join(SCRATCH, `${name}-${process.pid}-${counter++}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}

function importSpec(fromDir: string, target: string): string {
  const rel = relative(fromDir, target).split('\\').join('/');
  return rel.startsWith('.') ? rel : `./${rel}`;
}

/** Compiles .x files (paths relative to the repository root) and writes the outputs into `dir`. */
export function generate(files: readonly string[], dir: string, options: CompileOptions = {}): CompileResult {
  if (!existsSync(XDR_RUNTIME)) {
    throw new Error(
      `the compiled XDR runtime is missing at ${XDR_RUNTIME}: build first (npx tsc -p tsconfig.json)`,
    );
  }
  const cwd = process.cwd();
  process.chdir(ROOT);
  try {
    const result = compile(files, {
      xdrImport: importSpec(dir, XDR_RUNTIME),
      rpcImport: importSpec(dir, RPC_STUB),
      ...options,
    });
    for (const f of result.files) writeFileSync(join(dir, f.fileName), f.contents);
    return result;
  } finally {
    process.chdir(cwd);
  }
}

/** Type-checks TypeScript files with the project's tsconfig options; returns formatted errors. */
export function typeCheck(files: readonly string[]): string[] {
  const config = ts.readConfigFile(join(ROOT, 'tsconfig.json'), ts.sys.readFile);
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, ROOT);
  const options: ts.CompilerOptions = {
    ...parsed.options,
    noEmit: true,
    incremental: false,
    tsBuildInfoFile: undefined,
    declaration: false,
    sourceMap: false,
  };
  const program = ts.createProgram({ rootNames: [...files], options });
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const text = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    if (d.file === undefined || d.start === undefined) return text;
    const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
    return `${d.file.fileName}:${line + 1}:${character + 1}: ${text}`;
  });
}

/** Transpiles every generated .ts file in `dir` to .js beside it and imports `name`. */
export async function load<T = Record<string, unknown>>(dir: string, name: string): Promise<T> {
  for (const f of readdirSync(dir)) {
    if (!f.endsWith('.ts')) continue;
    const source = ts.sys.readFile(join(dir, f)) ?? '';
    const out = ts.transpileModule(source, {
      compilerOptions: {
        module: ts.ModuleKind.ESNext,
        target: ts.ScriptTarget.ES2022,
        verbatimModuleSyntax: true,
      },
      fileName: f,
    });
    writeFileSync(join(dir, f.replace(/\.ts$/, '.js')), out.outputText);
  }
  return (await import(pathToFileURL(join(dir, `${name}.js`)).href)) as T;
}

/** Lists the .x files of a fixture folder, as paths relative to the repository root. */
export function fixtures(sub: string): string[] {
  return readdirSync(join(FIXTURES, sub))
    .filter((f) => f.endsWith('.x'))
    .sort()
    .map((f) => `test/fixtures/x/${sub}/${f}`);
}
