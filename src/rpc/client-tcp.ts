import { connect, type Socket } from 'node:net';
import { type PendingCall, RpcClient, type RpcClientOptions } from './client.js';
import { RpcClosedError, RpcConnectionError } from './errors.js';
import { frameRecord, RecordDecoder, RecordWriter } from './record.js';
import { DEFAULT_MAX_RECORD } from './server-tcp.js';

export interface TcpClientOptions extends RpcClientOptions {
  host: string;
  port: number;
  maxRecordSize?: number;
  /** Largest fragment written; larger calls are split into several fragments. */
  maxFragmentSize?: number;
  /** Resend calls in flight on a new connection after the old one broke (same XIDs). */
  resendOnReconnect?: boolean;
  /** First reconnection delay; doubles on each failure up to `maxReconnectDelayMs`. */
  reconnectDelayMs?: number;
  maxReconnectDelayMs?: number;
}

/**
 * An ONC RPC client over one TCP connection, with many calls in flight. The connection is made
 * on first use and remade after it breaks, with exponential backoff; calls in flight are sent
 * again on the new connection under their old XIDs, which the server's duplicate-request cache
 * recognises, so a broken connection costs time, not correctness.
 */
export class TcpRpcClient extends RpcClient {
  private socket: Socket | null = null;
  private connected = false;
  private connecting: Promise<void> | null = null;
  private reconnectDelay: number;
  /** Batches the calls of one tick on the current connection. */
  private out: RecordWriter | null = null;
  /** Calls waiting for a connection, in order. */
  private readonly queue: PendingCall[] = [];
  private readonly opts: TcpClientOptions;

  constructor(options: TcpClientOptions) {
    super(options);
    this.opts = options;
    this.reconnectDelay = options.reconnectDelayMs ?? 50;
  }

  /** Connects now instead of on the first call; rejects if the server cannot be reached. */
  connect(): Promise<void> {
    if (this.closed) return Promise.reject(new RpcClosedError());
    if (this.connected) return Promise.resolve();
    this.connecting ??= this.open();
    return this.connecting;
  }

  private open(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const socket = connect({ host: this.opts.host, port: this.opts.port, noDelay: true });
      this.socket = socket;
      this.out = new RecordWriter(socket, this.opts.maxFragmentSize);
      const decoder = new RecordDecoder(this.opts.maxRecordSize ?? DEFAULT_MAX_RECORD, (rec) =>
        this.handleReply(rec),
      );
      socket.on('data', (chunk: Buffer) => {
        try {
          decoder.push(chunk);
        } catch (e) {
          socket.destroy(new RpcConnectionError('bad reply framing', { cause: e }));
        }
      });
      socket.once('connect', () => {
        this.connected = true;
        this.connecting = null;
        this.reconnectDelay = this.opts.reconnectDelayMs ?? 50;
        for (const p of this.queue.splice(0)) if (this.pending.get(p.xid) === p) this.write(p);
        resolve();
      });
      socket.on('error', () => {});
      socket.once('close', () => {
        const wasConnected = this.connected;
        this.connected = false;
        this.connecting = null;
        this.socket = null;
        if (!wasConnected)
          reject(new RpcConnectionError(`cannot connect to ${this.opts.host}:${this.opts.port}`));
        if (this.closed) return;
        // Calls written on the dead connection go back in the queue for the next one.
        if (this.opts.resendOnReconnect !== false) {
          for (const p of this.pending.values()) if (!this.queue.includes(p)) this.queue.push(p);
        } else {
          for (const p of this.pending.values()) this.fail(p, new RpcConnectionError('connection closed'));
          // Nothing is left to send: no reason to reconnect until the next call.
          this.queue.length = 0;
        }
        if (this.queue.length > 0) this.scheduleReconnect();
      });
    });
  }

  private scheduleReconnect(): void {
    const delay = this.reconnectDelay;
    this.reconnectDelay = Math.min(delay * 2, this.opts.maxReconnectDelayMs ?? 5_000);
    const t = setTimeout(() => {
      if (this.closed || this.connected || this.connecting) return;
      this.connect().catch(() => {
        if (!this.closed && this.queue.length > 0 && !this.connecting) this.scheduleReconnect();
      });
    }, delay);
    t.unref();
  }

  protected transmit(p: PendingCall): void {
    if (this.connected) {
      this.write(p);
      return;
    }
    this.queue.push(p);
    if (!this.connecting) this.connect().catch(() => this.scheduleReconnect());
  }

  protected transmitOneWay(message: Buffer[]): Promise<void> {
    // Written at once when connected, so a one-way call keeps its place among the calls made
    // in the same tick.
    if (this.connected) return this.writeOneWay(message);
    return this.connect().then(() => this.writeOneWay(message));
  }

  private writeOneWay(message: Buffer[]): Promise<void> {
    const socket = this.socket!;
    // Calls batched earlier in this tick go first, so the server sees calls in the order made.
    this.out!.flush();
    const chunks = frameRecord(message, this.opts.maxFragmentSize);
    return new Promise<void>((resolve, reject) => {
      for (let i = 0; i < chunks.length - 1; i++) socket.write(chunks[i]);
      socket.write(chunks[chunks.length - 1], (err) => (err ? reject(err) : resolve()));
    });
  }

  private write(p: PendingCall): void {
    p.transmissions++;
    // Calls issued in the same tick leave together. A resent call reuses its buffers, so the
    // record mark is written again in place: harmless.
    this.out!.write(p.message);
  }

  /**
   * Runs `fn` with the connection corked so every call it issues leaves in one write; the
   * batching the notes ask of asynchronous RPC, and what gossip uses for one-way messages.
   */
  async batch(fn: () => void): Promise<void> {
    await this.connect();
    const socket = this.socket!;
    socket.cork();
    try {
      fn();
    } finally {
      socket.uncork();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.queue.length = 0;
    this.failAll(new RpcClosedError());
    const s = this.socket;
    if (s) {
      await new Promise<void>((resolve) => {
        s.once('close', () => resolve());
        s.destroy();
      });
    }
  }
}
