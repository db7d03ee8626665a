/**
 * The ceiling: a length-prefixed echo over plain TCP (4-byte big-endian length, then the
 * payload; the server writes the frame back), and a datagram echo over UDP (4-byte sequence
 * number, then the payload). No headers, no XIDs to match on TCP (replies come back in order),
 * no codecs, no timers per call: what Node's sockets and promises cost by themselves, which no
 * RPC written in Node can beat. Both sides batch writes issued in one tick, as Cairn does.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import type { EchoEndpoint } from './endpoint.js';

const MAX_FRAME = 8 << 20;
/** Reply bytes queued on a connection before the server stops reading it. */
const MAX_QUEUED = 16 << 20;
/** Payloads at least this large are written as their own chunk rather than copied. */
const COPY_LIMIT = 32 * 1024;

/**
 * Splits a byte stream into frames. A frame that arrives whole in one chunk is handed out as a
 * view of it (header included); only frames split across chunks are copied, once.
 */
export class FrameDecoder {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private need = 4;

  constructor(private readonly onFrame: (frame: Buffer) => void) {}

  push(chunk: Buffer): void {
    let buf = chunk;
    if (this.pendingBytes > 0) {
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
      if (this.pendingBytes < this.need) return;
      buf = Buffer.concat(this.pending, this.pendingBytes);
      this.pending = [];
      this.pendingBytes = 0;
    }
    const len = buf.length;
    let off = 0;
    this.need = 4;
    while (len - off >= 4) {
      const size = buf.readUInt32BE(off);
      if (size > MAX_FRAME) throw new Error(`frame of ${size} bytes exceeds ${MAX_FRAME}`);
      if (len - off - 4 < size) {
        this.need = 4 + size;
        break;
      }
      this.onFrame(buf.subarray(off, off + 4 + size));
      off += 4 + size;
    }
    if (off < len) {
      const tail = buf.subarray(off);
      this.pending.push(tail);
      this.pendingBytes = tail.length;
    }
  }
}

export interface RawServers {
  tcp: number;
  udp: number;
  close(): Promise<void>;
}

/** Starts the TCP and UDP echo servers on loopback. */
export async function serveRaw(host: string): Promise<RawServers> {
  const sockets = new Set<Socket>();
  const server: Server = createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    const decoder = new FrameDecoder((frame) => socket.write(frame));
    socket.on('data', (chunk: Buffer) => {
      // Frames answered in one read leave in one writev.
      socket.cork();
      try {
        decoder.push(chunk);
      } catch {
        socket.destroy();
        return;
      }
      socket.uncork();
      // Stop reading while replies queue up, as Cairn's server does past 16 MiB.
      if (socket.writableLength >= MAX_QUEUED) socket.pause();
    });
    socket.on('drain', () => socket.resume());
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: 0, host }, () => resolve());
  });
  const udp = createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
  await new Promise<void>((resolve, reject) => {
    udp.once('error', reject);
    udp.bind({ port: 0, address: host }, () => resolve());
  });
  udp.on('message', (msg, rinfo) => udp.send(msg, rinfo.port, rinfo.address));
  return {
    tcp: (server.address() as AddressInfo).port,
    udp: udp.address().port,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => udp.close(() => resolve()));
    },
  };
}

interface Waiter {
  resolve: (payload: Buffer) => void;
  reject: (e: Error) => void;
}

/** The TCP echo client: replies come back in order, so calls are matched first in, first out. */
export class RawTcpEchoClient implements EchoEndpoint {
  /** Calls awaiting replies, oldest at `head`. */
  private readonly waiters: (Waiter | undefined)[] = [];
  private head = 0;
  private corked = false;
  private readonly uncork = () => {
    this.corked = false;
    this.socket.uncork();
  };

  private constructor(private readonly socket: Socket) {
    const decoder = new FrameDecoder((frame) => {
      const waiters = this.waiters;
      const w = waiters[this.head];
      // Drop the reference at once: a resolver keeps its promise, and so the reply, alive.
      waiters[this.head] = undefined;
      this.head++;
      if (this.head === waiters.length) {
        waiters.length = 0;
        this.head = 0;
      } else if (this.head >= 1024) {
        waiters.splice(0, this.head);
        this.head = 0;
      }
      w?.resolve(frame.subarray(4));
    });
    socket.on('data', (chunk: Buffer) => decoder.push(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      for (const w of this.waiters.splice(0)) w?.reject(new Error('raw echo connection closed'));
      this.head = 0;
    });
  }

  static async connect(host: string, port: number): Promise<RawTcpEchoClient> {
    const socket = connect({ host, port, noDelay: true });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawTcpEchoClient(socket);
  }

  echo(payload: Buffer): Promise<Buffer> {
    const socket = this.socket;
    if (!this.corked) {
      this.corked = true;
      socket.cork();
      process.nextTick(this.uncork);
    }
    const len = payload.length;
    if (len < COPY_LIMIT) {
      const frame = Buffer.allocUnsafe(4 + len);
      frame.writeUInt32BE(len, 0);
      payload.copy(frame, 4);
      socket.write(frame);
    } else {
      const header = Buffer.allocUnsafe(4);
      header.writeUInt32BE(len, 0);
      socket.write(header);
      socket.write(payload);
    }
    return new Promise<Buffer>((resolve, reject) => {
      this.waiters.push({ resolve, reject });
    });
  }

  null(): Promise<Buffer> {
    return this.echo(EMPTY);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.destroy();
    });
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * The UDP echo client: a sequence number matches replies to calls. Loopback does not lose
 * datagrams at these rates, so there is no retransmission; a sweep fails calls unanswered for a
 * second, so a loss shows up as an error rather than a hang.
 */
export class RawUdpEchoClient implements EchoEndpoint {
  private readonly waiters = new Map<number, Waiter & { sentAt: number }>();
  private seq = 0;
  private readonly sweep: NodeJS.Timeout;

  private constructor(private readonly socket: UdpSocket) {
    socket.on('message', (msg: Buffer) => {
      const seq = msg.readUInt32BE(0);
      const w = this.waiters.get(seq);
      if (w === undefined) return;
      this.waiters.delete(seq);
      w.resolve(msg.subarray(4));
    });
    socket.on('error', () => {});
    this.sweep = setInterval(() => {
      const old = performance.now() - 1000;
      for (const [seq, w] of this.waiters) {
        if (w.sentAt < old) {
          this.waiters.delete(seq);
          w.reject(new Error('raw UDP echo: no reply within 1 s'));
        }
      }
    }, 250);
    this.sweep.unref();
  }

  static async connect(host: string, port: number): Promise<RawUdpEchoClient> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.connect(port, host, () => resolve());
    });
    return new RawUdpEchoClient(socket);
  }

  echo(payload: Buffer): Promise<Buffer> {
    const seq = this.seq;
    this.seq = (seq + 1) >>> 0;
    const header = Buffer.allocUnsafe(4);
    header.writeUInt32BE(seq, 0);
    this.socket.send(payload.length === 0 ? header : [header, payload]);
    return new Promise<Buffer>((resolve, reject) => {
      this.waiters.set(seq, { resolve, reject, sentAt: performance.now() });
    });
  }

  null(): Promise<Buffer> {
    return this.echo(EMPTY);
  }

  async close(): Promise<void> {
    clearInterval(this.sweep);
    for (const w of this.waiters.values()) w.reject(new Error('closed'));
    this.waiters.clear();
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }
}
