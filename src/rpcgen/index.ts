/** The programmatic interface of `cairn rpcgen`. */
export { parseArgs, type RpcgenArgs, type RpcgenIo, rpcgenMain, USAGE } from './cli.js';
export {
  type CompiledFile,
  type CompileOptions,
  type CompileResult,
  compile,
  compileFile,
  DEFAULT_RPC_IMPORT,
  DEFAULT_XDR_IMPORT,
  moduleNameOf,
} from './compile.js';
export {
  type Diagnostic,
  type DiagnosticCode,
  formatDiagnostic,
  RpcgenError,
  RpcgenUsageError,
  type SourcePos,
} from './diagnostics.js';
