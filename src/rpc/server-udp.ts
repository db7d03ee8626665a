import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import type { RpcServer, TransportInfo } from './server.js';

export interface UdpListenOptions {
  port?: number;
  host?: string;
  /** Replies larger than this are replaced by SYSTEM_ERR-free silence and counted. */
  maxDatagramSize?: number;
}

const MAX_UDP_PAYLOAD = 65507;

/**
 * Serves an RpcServer over UDP: one call per datagram. Lost replies are the client's to recover
 * by retransmission; the server's duplicate-request cache makes that safe for non-idempotent
 * procedures.
 */
export class UdpServerTransport {
  private socket: Socket | null = null;
  private readonly abort = new AbortController();
  oversizedReplies = 0;

  constructor(
    private readonly rpc: RpcServer,
    private readonly options: UdpListenOptions = {},
  ) {}

  async listen(): Promise<AddressInfo> {
    const host = this.options.host ?? '127.0.0.1';
    const socket = createSocket({ type: host.includes(':') ? 'udp6' : 'udp4', recvBufferSize: 4 << 20 });
    this.socket = socket;
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ port: this.options.port ?? 0, address: host }, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    const localPort = socket.address().port;
    const maxSize = Math.min(this.options.maxDatagramSize ?? MAX_UDP_PAYLOAD, MAX_UDP_PAYLOAD);
    socket.on('error', (err) => this.rpc.log.error({ err }, 'UDP socket error'));
    socket.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
      const info: TransportInfo = {
        transport: 'udp',
        remoteAddress: rinfo.address,
        remotePort: rinfo.port,
        localPort,
        signal: this.abort.signal,
      };
      this.rpc.dispatch(msg, info, (reply, _free, written) => {
        if (reply === null || this.socket === null) {
          written?.();
          return;
        }
        // Drop the 4 bytes reserved for a TCP record mark.
        reply[0] = reply[0].subarray(4);
        let size = 0;
        for (const c of reply) size += c.length;
        if (size > maxSize) {
          this.oversizedReplies++;
          this.rpc.log.warn({ size, remote: rinfo.address }, 'reply too large for UDP; not sent');
          written?.();
          return;
        }
        socket.send(reply, rinfo.port, rinfo.address, (err) => {
          if (!err) written?.();
        });
      });
    });
    return socket.address() as AddressInfo;
  }

  get address(): AddressInfo | null {
    return (this.socket?.address() as AddressInfo | undefined) ?? null;
  }

  async close(): Promise<void> {
    const s = this.socket;
    this.socket = null;
    this.abort.abort();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
