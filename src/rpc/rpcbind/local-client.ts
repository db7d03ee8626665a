/**
 * An ONC RPC client over a Unix stream socket, with TCP's record marking. Linux rpcbind accepts
 * SET and UNSET only on its Unix socket (/run/rpcbind.sock), where it learns the caller's uid
 * from the kernel; this is how a Cairn node registers with the system's rpcbind.
 */
import { connect, type Socket } from 'node:net';
import { type PendingCall, RpcClient, type RpcClientOptions } from '../client.js';
import { RpcClosedError, RpcConnectionError } from '../errors.js';
import { frameRecord, RecordDecoder } from '../record.js';
import { DEFAULT_MAX_RECORD } from '../server-tcp.js';

/** Where Linux rpcbind listens for local callers. */
export const RPCBIND_SOCKET_PATH = '/run/rpcbind.sock';

export interface LocalClientOptions extends RpcClientOptions {
  /** The socket path. Default /run/rpcbind.sock. */
  path?: string;
}

/**
 * Connects on first use and again after the connection breaks; calls in flight when it breaks
 * fail (rpcbind's procedures are quick, and SET is not safe to resend blindly).
 */
export class LocalRpcClient extends RpcClient {
  readonly path: string;
  private socket: Socket | null = null;
  private connecting: Promise<Socket> | null = null;

  constructor(options: LocalClientOptions = {}) {
    super(options);
    this.path = options.path ?? RPCBIND_SOCKET_PATH;
  }

  private open(): Promise<Socket> {
    if (this.closed) return Promise.reject(new RpcClosedError());
    if (this.socket) return Promise.resolve(this.socket);
    this.connecting ??= new Promise<Socket>((resolve, reject) => {
      const socket = connect({ path: this.path });
      const decoder = new RecordDecoder(DEFAULT_MAX_RECORD, (rec) => this.handleReply(rec));
      socket.on('data', (chunk: Buffer) => {
        try {
          decoder.push(chunk);
        } catch (e) {
          socket.destroy(new RpcConnectionError('bad reply framing', { cause: e }));
        }
      });
      socket.once('connect', () => {
        this.socket = socket;
        this.connecting = null;
        resolve(socket);
      });
      socket.on('error', () => {});
      socket.once('close', () => {
        const wasOpen = this.socket === socket;
        this.socket = null;
        this.connecting = null;
        if (!wasOpen) reject(new RpcConnectionError(`cannot connect to ${this.path}`));
        for (const p of [...this.pending.values()]) this.fail(p, new RpcConnectionError('connection closed'));
      });
    });
    return this.connecting;
  }

  protected transmit(p: PendingCall): void {
    this.open().then(
      (socket) => {
        if (this.pending.get(p.xid) !== p) return;
        p.transmissions++;
        p.sentAt = performance.now();
        for (const chunk of frameRecord(p.message)) socket.write(chunk);
      },
      (e: Error) => this.fail(p, e),
    );
  }

  protected async transmitOneWay(message: Buffer[]): Promise<void> {
    const socket = await this.open();
    const chunks = frameRecord(message);
    await new Promise<void>((resolve, reject) => {
      for (let i = 0; i < chunks.length - 1; i++) socket.write(chunks[i]);
      socket.write(chunks[chunks.length - 1], (err) => (err ? reject(err) : resolve()));
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.failAll(new RpcClosedError());
    const s = this.socket ?? (await this.connecting?.catch(() => null)) ?? null;
    if (s && !s.destroyed) {
      await new Promise<void>((resolve) => {
        s.once('close', () => resolve());
        s.destroy();
      });
    }
  }
}
