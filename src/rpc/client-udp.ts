import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { type PendingCall, RpcClient, type RpcClientOptions } from './client.js';
import { RpcClosedError, RpcProtocolError } from './errors.js';
import { RttEstimator } from './rtt.js';

export interface UdpClientOptions extends RpcClientOptions {
  host: string;
  port: number;
  /** First timeout before any RTT is measured. */
  initialRtoMs?: number;
  minRtoMs?: number;
  maxRtoMs?: number;
}

const MAX_UDP_PAYLOAD = 65507;

/**
 * An ONC RPC client over UDP: the notes' reliable request-reply over an unreliable network. The
 * reply is the acknowledgement, the XID the sequence number; a call unanswered within the
 * retransmission timeout is sent again under the same XID, with the timeout estimated from
 * measured round trips and doubled on each retry, until the call's deadline.
 */
export class UdpRpcClient extends RpcClient {
  private socket: Socket | null = null;
  private ready: Promise<Socket> | null = null;
  readonly rtt: RttEstimator;
  retransmissions = 0;
  private readonly opts: UdpClientOptions;

  constructor(options: UdpClientOptions) {
    super(options);
    this.opts = options;
    this.rtt = new RttEstimator(
      options.initialRtoMs ?? 500,
      options.minRtoMs ?? 20,
      options.maxRtoMs ?? 10_000,
    );
  }

  private open(): Promise<Socket> {
    this.ready ??= new Promise<Socket>((resolve, reject) => {
      const socket = createSocket(isIPv6(this.opts.host) ? 'udp6' : 'udp4');
      socket.on('message', (msg: Buffer) => this.handleReply(msg));
      socket.once('error', reject);
      // A connected datagram socket only receives from the server it calls.
      socket.connect(this.opts.port, this.opts.host, () => {
        socket.off('error', reject);
        socket.on('error', () => {});
        this.socket = socket;
        resolve(socket);
      });
    });
    return this.ready;
  }

  protected transmit(p: PendingCall): void {
    const size = p.message.reduce((n, c) => n + c.length, 0) - 4;
    if (size > MAX_UDP_PAYLOAD) {
      this.fail(p, new RpcProtocolError(`call of ${size} bytes does not fit in a UDP datagram`));
      return;
    }
    if (this.socket) this.sendAttempt(this.socket, p);
    else
      this.open().then(
        (s) => this.sendAttempt(s, p),
        (e: Error) => this.fail(p, e),
      );
  }

  private sendAttempt(socket: Socket, p: PendingCall): void {
    if (this.pending.get(p.xid) !== p) return;
    const attempt = p.transmissions++;
    if (attempt > 0) this.retransmissions++;
    const now = performance.now();
    p.sentAt = now;
    p.retryAt = now + this.rtt.rto(attempt);
    socket.send(datagram(p.message));
    this.wakeAt(p.retryAt);
  }

  protected override retry(p: PendingCall): void {
    if (this.socket) this.sendAttempt(this.socket, p);
    else p.retryAt = Number.POSITIVE_INFINITY;
  }

  protected override onSettled(p: PendingCall, replied: boolean): void {
    // Karn: only calls answered on their first transmission say anything about the RTT.
    if (replied && p.transmissions === 1) this.rtt.sample(performance.now() - p.sentAt);
  }

  protected async transmitOneWay(message: Buffer[]): Promise<void> {
    const socket = await this.open();
    await new Promise<void>((resolve, reject) =>
      socket.send(datagram(message), (err) => (err ? reject(err) : resolve())),
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.failAll(new RpcClosedError());
    const s = this.socket;
    this.socket = null;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}

/** The message without the 4 bytes reserved for a TCP record mark. */
function datagram(message: Buffer[]): Buffer[] {
  return [message[0].subarray(4), ...message.slice(1)];
}
