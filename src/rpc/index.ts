export type { ClientCredential } from './auth.js';
export { encodeCredential, parseCredential } from './auth.js';
export { RpcClient, type RpcClientOptions } from './client.js';
export { type TcpClientOptions, TcpRpcClient } from './client-tcp.js';
export { type UdpClientOptions, UdpRpcClient } from './client-udp.js';
export type { AuthSysCredential, CallContext, Credential } from './context.js';
export { DuplicateRequestCache } from './drc.js';
export * from './errors.js';
export {
  type ClientInterceptor,
  compose,
  type IncomingCall,
  type OutgoingCall,
  type ServerInterceptor,
} from './interceptors.js';
export { frameRecord, RecordDecoder } from './record.js';
export { RttEstimator } from './rtt.js';
export { type RegisterOptions, RpcServer, type RpcServerOptions, type TransportInfo } from './server.js';
export { DEFAULT_MAX_RECORD, type TcpListenOptions, TcpServerTransport } from './server-tcp.js';
export { type UdpListenOptions, UdpServerTransport } from './server-udp.js';
export type { CallOptions, MaybePromise, ProcedureDefinition, ProgramDefinition, RpcCaller } from './stub.js';
export { WorkerPool, WorkerPoolError, type WorkerPoolOptions } from './worker-pool.js';
