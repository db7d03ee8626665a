/**
 * Test agent: a Cairn node serving the PING program (versions 1 and 2) over TCP and UDP on
 * 127.0.0.1, registered with the rpcbind at 127.0.0.1 through the given transport
 * ("tcp", "udp", or "local" for Linux rpcbind's Unix socket). Prints
 * `READY {"prog":P,"tcpPort":T,"udpPort":U}` once registered; on SIGTERM or SIGINT unregisters,
 * prints `UNREGISTERED`, closes and exits 0.
 * Usage: node ping-node.js [tcp|udp|local] [rpcbind-port]
 */
import { RpcServer, TcpServerTransport, UdpServerTransport } from '../../../src/rpc/index.js';
import { RpcbindClient, registerWithRpcbind } from '../../../src/rpc/rpcbind/index.js';
import {
  CAIRN_PING_PROG,
  type CAIRN_PING_V1_Handler,
  CAIRN_PING_V1_program,
  type CAIRN_PING_V2_Handler,
  CAIRN_PING_V2_program,
} from '../gen/ping.js';

const transport = (process.argv[2] ?? 'tcp') as 'tcp' | 'udp' | 'local';
const rpcbindPort = Number(process.argv[3] ?? '111');

const v1: CAIRN_PING_V1_Handler = {
  PING_NULL() {},
  PING_ECHO(s: string) {
    return s;
  },
  PING_NEGATE(n: number) {
    return -n;
  },
};
const v2: CAIRN_PING_V2_Handler = { PING2_NULL() {} };

const server = new RpcServer();
server.addProgram(CAIRN_PING_V1_program, v1);
server.addProgram(CAIRN_PING_V2_program, v2);
const tcp = new TcpServerTransport(server, { host: '127.0.0.1', port: 0 });
const udp = new UdpServerTransport(server, { host: '127.0.0.1', port: 0 });
const { port: tcpPort } = await tcp.listen();
const { port: udpPort } = await udp.listen();

const client = new RpcbindClient({ transport, port: rpcbindPort });
const registration = await registerWithRpcbind(client, server.registered(), {
  host: '127.0.0.1',
  tcpPort,
  udpPort,
});
console.log(`READY ${JSON.stringify({ prog: CAIRN_PING_PROG, tcpPort, udpPort })}`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await registration.unregister();
  console.log('UNREGISTERED');
  await client.close();
  await Promise.all([tcp.close(), udp.close()]);
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
