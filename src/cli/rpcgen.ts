/** `cairn rpcgen`: the compiler lives in src/rpcgen so the build can run it before the rest exists. */
export { rpcgenMain } from '../rpcgen/cli.js';
