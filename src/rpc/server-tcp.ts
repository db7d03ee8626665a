import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { RecordDecoder, RecordPool, RecordWriter } from './record.js';
import type { ReplySink, RpcServer, TransportInfo } from './server.js';

export interface TcpListenOptions {
  port?: number;
  host?: string;
  /** Largest record accepted; a larger one closes the connection. Default 4 MiB + 64 KiB. */
  maxRecordSize?: number;
  /** Largest fragment written; larger replies are split. Default: one fragment. */
  maxFragmentSize?: number;
  maxConnections?: number;
  /** Calls read from one connection and not yet answered before reading pauses. */
  maxCallsInFlight?: number;
  /** Reply bytes queued on one connection before reading pauses (a slow reader). */
  maxQueuedReplyBytes?: number;
  /** Connections idle this long are closed. 0 disables. */
  idleTimeoutMs?: number;
}

export const DEFAULT_MAX_RECORD = (4 << 20) + (64 << 10);

/**
 * Serves an RpcServer over TCP with record marking. Each connection reads only as fast as it is
 * answered: past `maxCallsInFlight` unanswered calls or `maxQueuedReplyBytes` of unsent replies it
 * stops reading, so one greedy or slow client can neither exhaust memory nor starve the others.
 */
export class TcpServerTransport {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  /** Buffers of large records, reused across connections once their replies are written. */
  private readonly pool = new RecordPool();

  constructor(
    private readonly rpc: RpcServer,
    private readonly options: TcpListenOptions = {},
  ) {}

  async listen(): Promise<AddressInfo> {
    const o = this.options;
    const server = createServer({ noDelay: true }, (s) => this.accept(s));
    server.maxConnections = o.maxConnections ?? 1024;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: o.port ?? 0, host: o.host ?? '127.0.0.1' }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.rpc.log.error({ err }, 'TCP server error'));
    return server.address() as AddressInfo;
  }

  get address(): AddressInfo | null {
    return (this.server?.address() as AddressInfo | null) ?? null;
  }

  get connections(): number {
    return this.sockets.size;
  }

  private accept(socket: Socket): void {
    const o = this.options;
    const maxInFlight = o.maxCallsInFlight ?? 256;
    const maxQueued = o.maxQueuedReplyBytes ?? 16 << 20;
    const maxFragment = o.maxFragmentSize;
    this.sockets.add(socket);
    const abort = new AbortController();
    const info: TransportInfo = {
      transport: 'tcp',
      remoteAddress: socket.remoteAddress ?? '',
      remotePort: socket.remotePort ?? 0,
      localPort: socket.localPort ?? 0,
      signal: abort.signal,
    };
    let inFlight = 0;
    // Records already read past the in-flight limit wait here (at most one socket chunk's worth,
    // since reading pauses as soon as this is non-empty), with their pool buffers.
    const backlog: [Buffer, Buffer | undefined][] = [];
    let paused = false;
    const out = new RecordWriter(socket, maxFragment);
    const pool = this.pool;
    const dispatch = (record: Buffer, pooled: Buffer | undefined) => {
      inFlight++;
      if (pooled === undefined) {
        this.rpc.dispatch(record, info, sink);
        return;
      }
      // The reply may hold views of the record (opaques are not copied): the buffer goes back
      // to the pool once the reply is written, and only if the procedure keeps nothing of it.
      this.rpc.dispatch(record, info, (reply, recordFree, written) => {
        if (!recordFree) answer(reply, written);
        else if (reply === null) {
          pool.give(pooled);
          answer(null, written);
        } else
          answer(reply, () => {
            pool.give(pooled);
            written?.();
          });
      });
    };
    let draining = false;
    const maybeResume = () => {
      // A handler may answer synchronously, re-entering here from dispatch: let the outer loop work.
      if (draining) return;
      draining = true;
      while (backlog.length > 0 && inFlight < maxInFlight) {
        const [record, pooled] = backlog.shift() as [Buffer, Buffer | undefined];
        dispatch(record, pooled);
      }
      draining = false;
      if (paused && backlog.length === 0 && inFlight < maxInFlight && socket.writableLength < maxQueued) {
        paused = false;
        socket.resume();
      }
    };
    const answer = (reply: Buffer[] | null, onWritten?: () => void) => {
      inFlight--;
      // Replies produced in the same tick leave together.
      if (reply === null) onWritten?.();
      else if (!socket.destroyed) out.write(reply, onWritten);
      maybeResume();
    };
    const sink: ReplySink = (reply, _free, written) => answer(reply, written);
    const decoder = new RecordDecoder(
      o.maxRecordSize ?? DEFAULT_MAX_RECORD,
      (record, pooled) => {
        if (inFlight < maxInFlight && backlog.length === 0) dispatch(record, pooled);
        else backlog.push([record, pooled]);
      },
      pool,
    );
    socket.on('data', (chunk: Buffer) => {
      try {
        decoder.push(chunk);
      } catch (err) {
        this.rpc.log.warn({ err, remote: info.remoteAddress }, 'closing connection: bad record framing');
        socket.destroy();
        return;
      }
      // Count the replies this chunk produced in the queued bytes before deciding to pause.
      out.flush();
      if (!paused && (backlog.length > 0 || inFlight >= maxInFlight || socket.writableLength >= maxQueued)) {
        paused = true;
        socket.pause();
      }
    });
    socket.on('drain', maybeResume);
    socket.on('error', (err) => this.rpc.log.debug({ err }, 'connection error'));
    socket.on('close', () => {
      backlog.length = 0;
      this.sockets.delete(socket);
      abort.abort();
    });
    if (o.idleTimeoutMs !== 0) {
      socket.setTimeout(o.idleTimeoutMs ?? 10 * 60_000, () => {
        if (inFlight === 0) socket.destroy();
      });
    }
  }

  /** Drops every open connection but keeps listening (clients reconnect and resend). */
  destroyConnections(): void {
    for (const s of this.sockets) s.destroy();
  }

  /** Stops accepting and closes every connection. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
