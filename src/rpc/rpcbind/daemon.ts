/**
 * A complete rpcbind daemon: an RpcServer serving versions 2, 3 and 4 over TCP and UDP on the
 * same port, with rpcbind's own registrations in its table, as `rpcinfo -p` expects to see.
 */
import { componentLogger } from '../../log.js';
import { RpcServer, type RpcServerOptions } from '../server.js';
import { TcpServerTransport } from '../server-tcp.js';
import { UdpServerTransport } from '../server-udp.js';
import { PMAPVERS, RPCB_PORT, RPCBPROG, RPCBVERS, RPCBVERS4 } from './gen/rpcbind.js';
import { RpcbindRegistry, SUPERUSER } from './registry.js';
import { type RpcbindService, type RpcbindServiceOptions, registerRpcbind } from './service.js';
import { toUniversalAddress } from './uaddr.js';

export interface StartRpcbindOptions extends RpcbindServiceOptions {
  /** Address to listen on. Default "0.0.0.0". */
  host?: string;
  /**
   * Port for both TCP and UDP. When omitted, 111 is tried first and, if it cannot be bound
   * (not root, or another rpcbind holds it), `fallbackPort` is used.
   */
  port?: number;
  /** Port used when 111 is unavailable and no port was given. Default 0: any free port. */
  fallbackPort?: number;
  registry?: RpcbindRegistry;
  server?: RpcServerOptions;
}

export interface RunningRpcbind {
  readonly host: string;
  /** The port TCP and UDP both listen on. */
  readonly port: number;
  readonly registry: RpcbindRegistry;
  readonly service: RpcbindService;
  readonly server: RpcServer;
  readonly tcp: TcpServerTransport;
  readonly udp: UdpServerTransport;
  close(): Promise<void>;
}

async function listenBoth(
  server: RpcServer,
  host: string,
  port: number,
): Promise<[TcpServerTransport, UdpServerTransport, number]> {
  // With port 0 the kernel picks a TCP port that may be taken for UDP; try a few times.
  for (let attempt = 0; ; attempt++) {
    const tcp = new TcpServerTransport(server, { host, port });
    const { port: bound } = await tcp.listen();
    const udp = new UdpServerTransport(server, { host, port: bound });
    try {
      await udp.listen();
      return [tcp, udp, bound];
    } catch (e) {
      await tcp.close();
      if (port !== 0 || attempt >= 4 || (e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
    }
  }
}

/** Starts rpcbind on TCP and UDP. */
export async function startRpcbind(options: StartRpcbindOptions = {}): Promise<RunningRpcbind> {
  const log = options.logger ?? componentLogger('rpcbind');
  const host = options.host ?? '0.0.0.0';
  const registry = options.registry ?? new RpcbindRegistry();
  const server = new RpcServer({ logger: log, ...options.server });
  const service = registerRpcbind(server, registry, { ...options, logger: log });
  let bound: [TcpServerTransport, UdpServerTransport, number];
  try {
    if (options.port !== undefined) {
      bound = await listenBoth(server, host, options.port);
    } else {
      try {
        bound = await listenBoth(server, host, RPCB_PORT);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'EACCES' && code !== 'EADDRINUSE') throw e;
        log.info(
          { code, fallbackPort: options.fallbackPort ?? 0 },
          'cannot bind port 111; using the fallback port',
        );
        bound = await listenBoth(server, host, options.fallbackPort ?? 0);
      }
    }
  } catch (e) {
    await service.close();
    throw e;
  }
  const [tcp, udp, port] = bound;
  // rpcbind lists itself, as Linux rpcbind does.
  const netids = host.includes(':') ? (['tcp6', 'udp6'] as const) : (['tcp', 'udp'] as const);
  for (const netid of netids) {
    for (const vers of [RPCBVERS4, RPCBVERS, PMAPVERS]) {
      registry.set({ prog: RPCBPROG, vers, netid, addr: toUniversalAddress(host, port), owner: SUPERUSER });
    }
  }
  log.info({ host, port }, 'rpcbind listening on TCP and UDP');
  let closing: Promise<void> | null = null;
  return {
    host,
    port,
    registry,
    service,
    server,
    tcp,
    udp,
    close() {
      closing ??= Promise.all([tcp.close(), udp.close(), service.close()]).then(() => undefined);
      return closing;
    },
  };
}
