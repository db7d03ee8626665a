/**
 * The sockets of membership in a real node: one UDP socket on the membership port that both
 * receives (each datagram an ONC RPC call dispatched into an RpcServer) and sends (one-way calls
 * encoded by the RPC client runtime), so every probe leaves from the address the node advertises
 * and a receiver can bind a sender id to its source address; and a TCP listener on the same port
 * for full-state exchanges, which go out as ordinary calls on short-lived TCP clients.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { Logger } from '../log.js';
import { type PendingCall, RpcClient } from '../rpc/client.js';
import { TcpRpcClient } from '../rpc/client-tcp.js';
import { RpcProtocolError } from '../rpc/errors.js';
import type { RpcServer, TransportInfo } from '../rpc/server.js';
import { TcpServerTransport } from '../rpc/server-tcp.js';
import {
  CAIRN_GOSSIP_PROG,
  CAIRN_GOSSIP_V1,
  CAIRN_GOSSIP_V1_Client,
  CAIRN_GOSSIP_V1_program,
  type gossip_exchange_args,
} from './gen/gossip.js';
import { GossipError } from './gossip-guard.js';

/** Records on the membership port: a push-pull of a few thousand members, with room. */
const MAX_RECORD = 2 << 20;
const MAX_UDP_PAYLOAD = 65507;

export interface HostPort {
  host: string;
  port: number;
}

/** "host:port", or "[v6]:port". */
export function formatAddr(host: string, port: number): string {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

export function parseAddr(addr: string): HostPort {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(addr) ?? /^([^:]+):(\d+)$/.exec(addr);
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new GossipError('GOSSIP_BAD_ADDRESS', `'${addr}' is not HOST:PORT`);
  }
  return { host: m[1], port };
}

/** An IPv4 address as a dual-stack socket reports it ("::ffff:10.0.0.1") in its plain form. */
export function plainHost(host: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(host);
  return m ? m[1] : host;
}

/**
 * Sends one-way calls from a socket it does not own, to any destination. The RPC client runtime
 * encodes the call (XID, header, arguments); this class only chooses where the bytes go.
 */
class DatagramCaller extends RpcClient {
  private dest: HostPort | null = null;
  sent = 0;
  dropped = 0;

  constructor(private readonly socket: Socket) {
    super({});
  }

  sendTo(to: HostPort, envelope: Uint8Array): void {
    this.dest = to;
    // oneWay encodes and calls transmitOneWay before its first await, so `dest` is still set.
    this.oneWay(
      CAIRN_GOSSIP_PROG,
      CAIRN_GOSSIP_V1,
      CAIRN_GOSSIP_V1_program.procedures.GOSSIP_DATAGRAM,
      envelope,
    ).catch(() => {
      this.dropped++;
    });
    this.dest = null;
  }

  protected transmit(p: PendingCall): void {
    this.fail(p, new RpcProtocolError('the membership socket sends one-way calls only'));
  }

  protected transmitOneWay(message: Buffer[]): Promise<void> {
    const to = this.dest;
    if (to === null) return Promise.reject(new RpcProtocolError('no destination'));
    const chunks = [message[0].subarray(4), ...message.slice(1)];
    let size = 0;
    for (const c of chunks) size += c.length;
    if (size > MAX_UDP_PAYLOAD) return Promise.reject(new RpcProtocolError(`datagram of ${size} bytes`));
    this.sent++;
    return new Promise<void>((resolve, reject) =>
      this.socket.send(chunks, to.port, to.host, (err) => (err ? reject(err) : resolve())),
    );
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

export interface GossipTransportOptions {
  host: string;
  /** 0: any free port. */
  port: number;
  /** Also serve TCP on 127.0.0.1 at the same port (the admin surface of a node bound elsewhere). */
  loopbackAdmin: boolean;
  log: Logger;
  /** Full-state exchanges in flight at once; more are dropped (the protocol retries). */
  maxExchanges?: number;
}

export class GossipTransport {
  private socket: Socket | null = null;
  private caller: DatagramCaller | null = null;
  private readonly tcp: TcpServerTransport[] = [];
  private readonly abort = new AbortController();
  private exchanges = 0;
  private readonly clients = new Set<TcpRpcClient>();
  port = 0;

  constructor(
    private readonly rpc: RpcServer,
    private readonly o: GossipTransportOptions,
  ) {}

  /** Binds UDP and TCP on one port number (retrying other free ports when any will do). */
  async listen(): Promise<number> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.bindOnce(this.o.port);
      } catch (e) {
        await this.closeSockets();
        if (this.o.port !== 0 || attempt >= 8 || (e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
      }
    }
  }

  private async bindOnce(port: number): Promise<number> {
    const host = this.o.host;
    const socket = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4', recvBufferSize: 1 << 20 });
    this.socket = socket;
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ port, address: host }, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    const bound = socket.address().port;
    socket.on('error', (err) => this.o.log.warn({ err }, 'membership UDP socket error'));
    socket.on('message', (msg: Buffer, rinfo: RemoteInfo) => this.onDatagram(msg, rinfo, bound));
    this.caller = new DatagramCaller(socket);
    const tcp = new TcpServerTransport(this.rpc, {
      host,
      port: bound,
      maxRecordSize: MAX_RECORD,
      maxConnections: 256,
    });
    this.tcp.push(tcp);
    await tcp.listen();
    if (this.o.loopbackAdmin) {
      const admin = new TcpServerTransport(this.rpc, {
        host: '127.0.0.1',
        port: bound,
        maxRecordSize: MAX_RECORD,
        maxConnections: 64,
      });
      this.tcp.push(admin);
      await admin.listen();
    }
    this.port = bound;
    return bound;
  }

  private onDatagram(msg: Buffer, rinfo: RemoteInfo, localPort: number): void {
    const info: TransportInfo = {
      transport: 'udp',
      remoteAddress: plainHost(rinfo.address),
      remotePort: rinfo.port,
      localPort,
      signal: this.abort.signal,
    };
    // One-way calls never reply; anything else (a NULL ping, a call of another program) is
    // answered from this socket.
    this.rpc.dispatch(msg, info, (reply) => {
      if (reply === null || this.socket === null) return;
      reply[0] = reply[0].subarray(4);
      this.socket.send(reply, rinfo.port, rinfo.address);
    });
  }

  sendDatagram(to: string, envelope: Uint8Array): void {
    if (!this.caller) return;
    let hp: HostPort;
    try {
      hp = parseAddr(to);
    } catch {
      return;
    }
    this.caller.sendTo(hp, envelope);
  }

  /** A full-state exchange over TCP; resolves with the peer's reply envelope (empty: none). */
  async exchange(to: string, args: gossip_exchange_args, timeoutMs: number): Promise<Uint8Array> {
    const maxExchanges = this.o.maxExchanges ?? 16;
    if (this.exchanges >= maxExchanges) throw new GossipError('GOSSIP_BUSY', 'too many exchanges in flight');
    const hp = parseAddr(to);
    const client = new TcpRpcClient({
      host: hp.host,
      port: hp.port,
      timeoutMs,
      maxRecordSize: MAX_RECORD,
      reconnectDelayMs: Math.max(50, timeoutMs / 4),
    });
    this.exchanges++;
    this.clients.add(client);
    try {
      return await new CAIRN_GOSSIP_V1_Client(client).GOSSIP_EXCHANGE(args, { timeoutMs });
    } finally {
      this.exchanges--;
      this.clients.delete(client);
      await client.close();
    }
  }

  get datagramsSent(): number {
    return this.caller?.sent ?? 0;
  }

  private async closeSockets(): Promise<void> {
    const s = this.socket;
    this.socket = null;
    this.caller = null;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
    await Promise.all(this.tcp.splice(0).map((t) => t.close()));
  }

  async close(): Promise<void> {
    this.abort.abort();
    await Promise.all([...this.clients].map((c) => c.close()));
    await this.closeSockets();
  }
}
