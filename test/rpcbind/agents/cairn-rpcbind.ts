/**
 * Test agent: runs Cairn's rpcbind (TCP and UDP on one port, default 111) until SIGTERM or
 * SIGINT. Prints `READY {"port":N}` once both transports listen and `STOPPED` on the way out.
 * Usage: node cairn-rpcbind.js [port]
 */
import { startRpcbind } from '../../../src/rpc/rpcbind/index.js';

const port = Number(process.argv[2] ?? '111');
const rpcbind = await startRpcbind({ host: '0.0.0.0', port });
console.log(`READY ${JSON.stringify({ port: rpcbind.port })}`);

const stop = async () => {
  await rpcbind.close();
  console.log('STOPPED');
  process.exit(0);
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
