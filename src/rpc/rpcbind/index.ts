/**
 * rpcbind (RFC 1833): the binding daemon that maps RPC program numbers to addresses. The
 * registry is the pure endpoint table; the service serves it as versions 2, 3 and 4 from any
 * RpcServer; startRpcbind runs a complete daemon; RpcbindClient talks to any rpcbind, and
 * registerWithRpcbind is what a node calls at startup.
 */
export {
  type IndirectResult,
  RpcbindClient,
  type RpcbindClientOptions,
  type RpcbindSetRequest,
} from './client.js';
export { type RunningRpcbind, type StartRpcbindOptions, startRpcbind } from './daemon.js';
export { CallForwarder, type ForwarderOptions } from './forward.js';
export { PMAPVERS, RPCB_PORT, RPCBPROG, RPCBVERS, RPCBVERS4 } from './gen/rpcbind.js';
export { type LocalClientOptions, LocalRpcClient, RPCBIND_SOCKET_PATH } from './local-client.js';
export {
  localRegistrar,
  type ProgramVersion,
  type RegisterWithRpcbindOptions,
  type Registrar,
  RpcbindError,
  type RpcbindRegistration,
  registerWithRpcbind,
} from './register.js';
export {
  IPPROTO_TCP,
  IPPROTO_UDP,
  type PmapMapping,
  pmapNetid,
  type RpcbindMapping,
  RpcbindRegistry,
  type RpcbindRegistryOptions,
  type SetRefusal,
  SUPERUSER,
} from './registry.js';
export {
  callNetid,
  ownerOf,
  RpcbindService,
  type RpcbindServiceOptions,
  registerRpcbind,
} from './service.js';
export { RpcbindStats, type VersionStats } from './stats.js';
export {
  type InetAddress,
  type InetNetid,
  isLoopbackAddress,
  mergeAddress,
  parseUniversalAddress,
  taddrToUaddr,
  toUniversalAddress,
  uaddrToTaddr,
} from './uaddr.js';
