/**
 * The peer: @grpc/grpc-js unary calls over a plaintext loopback HTTP/2 connection, carrying the
 * same bytes as Cairn's calls. Messages are raw Buffers with identity serializers (no protobuf),
 * so the comparison is of the two RPC stacks, not of their codecs.
 */
import * as grpc from '@grpc/grpc-js';
import type { EchoEndpoint } from './endpoint.js';

const identity = (b: Buffer): Buffer => b;
const EMPTY = Buffer.alloc(0);
/** Room for the 1 MiB case (grpc-js refuses messages over 4 MiB received by default). */
const MAX_MESSAGE = 8 << 20;

function unary(path: string): grpc.MethodDefinition<Buffer, Buffer> {
  return {
    path,
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  };
}

export const BENCH_SERVICE = {
  Null: unary('/cairn.bench.Bench/Null'),
  Echo: unary('/cairn.bench.Bench/Echo'),
} satisfies grpc.ServiceDefinition;

const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.max_receive_message_length': MAX_MESSAGE,
  'grpc.max_send_message_length': MAX_MESSAGE,
};

export interface GrpcServer {
  port: number;
  close(): Promise<void>;
}

export async function serveGrpc(host: string): Promise<GrpcServer> {
  const server = new grpc.Server(CHANNEL_OPTIONS);
  server.addService(BENCH_SERVICE, {
    Null(_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) {
      callback(null, EMPTY);
    },
    Echo(call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) {
      callback(null, call.request);
    },
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${host}:0`, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    );
  });
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
        setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 1000).unref();
      }),
  };
}

type UnaryMethod = (
  arg: Buffer,
  callback: (err: grpc.ServiceError | null, res?: Buffer) => void,
) => grpc.ClientUnaryCall;

/** A grpc-js client made by `makeGenericClientConstructor`, wrapped in promises. */
export class GrpcEchoClient implements EchoEndpoint {
  private readonly client: grpc.Client;
  private readonly nullMethod: UnaryMethod;
  private readonly echoMethod: UnaryMethod;

  constructor(host: string, port: number) {
    const Ctor = grpc.makeGenericClientConstructor(BENCH_SERVICE, 'Bench');
    const client = new Ctor(`${host}:${port}`, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
    this.client = client;
    this.nullMethod = (client.Null as UnaryMethod).bind(client);
    this.echoMethod = (client.Echo as UnaryMethod).bind(client);
  }

  /** Waits until the channel is connected, so the first timed call does not pay for it. */
  ready(): Promise<void> {
    return new Promise<void>((resolve, reject) =>
      this.client.waitForReady(Date.now() + 5000, (err) => (err ? reject(err) : resolve())),
    );
  }

  null(): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) =>
      this.nullMethod(EMPTY, (err, res) => (err ? reject(err) : resolve(res ?? EMPTY))),
    );
  }

  echo(payload: Buffer): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) =>
      this.echoMethod(payload, (err, res) => (err ? reject(err) : resolve(res ?? EMPTY))),
    );
  }

  async close(): Promise<void> {
    this.client.close();
  }
}
