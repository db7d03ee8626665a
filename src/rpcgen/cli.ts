import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { compile, DEFAULT_RPC_IMPORT, DEFAULT_XDR_IMPORT } from './compile.js';
import { formatDiagnostic, RpcgenUsageError } from './diagnostics.js';

export const USAGE = `usage: cairn rpcgen FILE.x [FILE.x ...] --out DIR [options]

Compiles ONC RPC .x files to TypeScript, one DIR/<name>.ts per input.

options:
  --out DIR, -o DIR     output directory (created if missing)
  -I DIR                add DIR to the #include search path
  -D NAME[=VALUE]       define a preprocessor macro (VALUE defaults to 1)
  --strings utf8|bytes  map 'string' to a JS string (default) or to raw bytes (Uint8Array)
  --xdr-import SPEC     module the generated code imports the XDR runtime from (default ${DEFAULT_XDR_IMPORT})
  --rpc-import SPEC     module the generated code imports the RPC stub types from (default ${DEFAULT_RPC_IMPORT})
  -h, --help            show this help
`;

export interface RpcgenArgs {
  readonly files: string[];
  readonly out: string;
  readonly includeDirs: string[];
  readonly defines: Record<string, string>;
  readonly strings: 'utf8' | 'bytes';
  readonly xdrImport: string;
  readonly rpcImport: string;
}

/** Parses the command line; throws RpcgenUsageError. Returns 'help' for -h. */
export function parseArgs(argv: readonly string[]): RpcgenArgs | 'help' {
  const files: string[] = [];
  const includeDirs: string[] = [];
  const defines: Record<string, string> = {};
  let out: string | undefined;
  let strings: 'utf8' | 'bytes' = 'utf8';
  let xdrImport = DEFAULT_XDR_IMPORT;
  let rpcImport = DEFAULT_RPC_IMPORT;
  let k = 0;
  const value = (flag: string, inline: string | undefined): string => {
    if (inline !== undefined) return inline;
    const v = argv[++k];
    if (v === undefined) throw new RpcgenUsageError(`${flag} needs a value`);
    return v;
  };
  for (; k < argv.length; k++) {
    const arg = argv[k];
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const flag = eq >= 0 ? arg.slice(0, eq) : arg;
    const inline = eq >= 0 ? arg.slice(eq + 1) : undefined;
    if (flag === '-h' || flag === '--help') return 'help';
    if (flag === '--out' || flag === '-o') out = value(flag, inline);
    else if (flag === '--strings') {
      const s = value(flag, inline);
      if (s !== 'utf8' && s !== 'bytes')
        throw new RpcgenUsageError(`--strings must be utf8 or bytes, not '${s}'`);
      strings = s;
    } else if (flag === '--xdr-import') xdrImport = value(flag, inline);
    else if (flag === '--rpc-import') rpcImport = value(flag, inline);
    else if (arg.startsWith('-I')) includeDirs.push(arg.length > 2 ? arg.slice(2) : value('-I', undefined));
    else if (arg.startsWith('-D')) {
      const def = arg.length > 2 ? arg.slice(2) : value('-D', undefined);
      const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?$/s.exec(def);
      if (m === null) throw new RpcgenUsageError(`-D expects NAME or NAME=VALUE, not '${def}'`);
      defines[m[1]] = m[2] ?? '1';
    } else if (arg.startsWith('-') && arg !== '-') throw new RpcgenUsageError(`unknown option '${arg}'`);
    else files.push(arg);
  }
  if (files.length === 0) throw new RpcgenUsageError('no input .x files');
  if (out === undefined) throw new RpcgenUsageError('--out DIR is required');
  return { files, out, includeDirs, defines, strings, xdrImport, rpcImport };
}

export interface RpcgenIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

const processIo: RpcgenIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
};

/**
 * `cairn rpcgen`: 0 when every output was written, 1 with `file:line:column: message` lines on
 * stderr when the sources have errors, 2 for a command line it cannot act on.
 */
export async function rpcgenMain(argv: string[], io: RpcgenIo = processIo): Promise<number> {
  let args: RpcgenArgs | 'help';
  try {
    args = parseArgs(argv);
  } catch (e) {
    if (e instanceof RpcgenUsageError) {
      io.stderr(`cairn rpcgen: ${e.message}\n\n${USAGE}`);
      return 2;
    }
    throw e;
  }
  if (args === 'help') {
    io.stdout(USAGE);
    return 0;
  }
  const result = compile(args.files, {
    includeDirs: args.includeDirs,
    defines: args.defines,
    strings: args.strings,
    xdrImport: args.xdrImport,
    rpcImport: args.rpcImport,
  });
  if (!result.ok) {
    io.stderr(result.diagnostics.map((d) => `${formatDiagnostic(d)}\n`).join(''));
    const n = result.diagnostics.length;
    io.stderr(`cairn rpcgen: ${n} error${n === 1 ? '' : 's'}\n`);
    return 1;
  }
  try {
    mkdirSync(args.out, { recursive: true });
    for (const f of result.files) {
      const path = join(args.out, f.fileName);
      // Leave an unchanged output untouched so incremental builds see nothing new.
      let previous: string | undefined;
      try {
        previous = readFileSync(path, 'utf8');
      } catch {
        previous = undefined;
      }
      if (previous !== f.contents) writeFileSync(path, f.contents);
    }
  } catch (e) {
    io.stderr(`cairn rpcgen: cannot write output: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
  return 0;
}
