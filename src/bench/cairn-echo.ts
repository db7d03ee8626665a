/** Cairn's side of the RPC benchmark: the BENCH program served and called over TCP and UDP. */
import {
  RpcServer,
  TcpRpcClient,
  TcpServerTransport,
  UdpRpcClient,
  UdpServerTransport,
} from '../rpc/index.js';
import type { EchoEndpoint } from './endpoint.js';
import { BENCH_V1_Client, type BENCH_V1_Handler, BENCH_V1_program } from './gen/bench.js';

export interface CairnServers {
  tcp: number;
  udp: number;
  stats(): Record<string, number>;
  close(): Promise<void>;
}

export async function serveCairn(host: string): Promise<CairnServers> {
  const rpc = new RpcServer();
  const handler: BENCH_V1_Handler = {
    BENCH_NULL() {},
    BENCH_ECHO(payload) {
      return payload;
    },
    BENCH_ECHO_CACHED(payload) {
      return payload;
    },
  };
  // The plain echo is idempotent: it bypasses the duplicate-request cache, as NFS READ would.
  rpc.addProgram(BENCH_V1_program, handler, { idempotent: ['BENCH_ECHO'] });
  const tcp = new TcpServerTransport(rpc, { host, port: 0 });
  const udp = new UdpServerTransport(rpc, { host, port: 0 });
  const tcpAddr = await tcp.listen();
  const udpAddr = await udp.listen();
  return {
    tcp: tcpAddr.port,
    udp: udpAddr.port,
    stats: () => ({ ...rpc.stats, drcSize: rpc.drcSize }),
    async close() {
      await tcp.close();
      await udp.close();
    },
  };
}

/** A Cairn client over one transport, as the benchmark loop sees it. */
export class CairnEchoClient implements EchoEndpoint {
  private readonly stub: BENCH_V1_Client;

  constructor(
    readonly transport: TcpRpcClient | UdpRpcClient,
    /** Call BENCH_ECHO_CACHED, whose calls go through the duplicate-request cache. */
    private readonly cached = false,
  ) {
    this.stub = new BENCH_V1_Client(transport);
  }

  static tcp(host: string, port: number, cached = false): CairnEchoClient {
    return new CairnEchoClient(new TcpRpcClient({ host, port }), cached);
  }

  static udp(host: string, port: number): CairnEchoClient {
    return new CairnEchoClient(new UdpRpcClient({ host, port }));
  }

  /** UDP retransmissions so far (0 over TCP). */
  get retransmissions(): number {
    return this.transport instanceof UdpRpcClient ? this.transport.retransmissions : 0;
  }

  null(): Promise<void> {
    return this.stub.BENCH_NULL();
  }

  echo(payload: Buffer): Promise<Uint8Array> {
    return this.cached ? this.stub.BENCH_ECHO_CACHED(payload) : this.stub.BENCH_ECHO(payload);
  }

  close(): Promise<void> {
    return this.transport.close();
  }
}
