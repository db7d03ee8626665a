/**
 * `node dist/src/rpcgen/bin.js FILE.x ... --out DIR`: the compiler on its own, so the build can run
 * it before anything else is compiled. Same arguments and exit codes as `cairn rpcgen`.
 */
import { rpcgenMain } from './cli.js';

process.exitCode = await rpcgenMain(process.argv.slice(2));
