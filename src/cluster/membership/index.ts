/** Cluster membership and failure detection: SWIM with Lifeguard, as a sans-IO core. */
export {
  CAIRN_DEFAULTS,
  MEMBERLIST_LAN,
  pushPullPeriod,
  retransmitLimit,
  type SwimConfig,
  SwimConfigError,
  suspicionConfirmations,
  suspicionMinTimeout,
  suspicionTimeout,
  swimConfig,
} from './config.js';
export type { Address, Clock, IncarnationStore, Random, Transport } from './env.js';
export {
  idHex,
  idKey,
  type MemberState,
  type MembershipEvent,
  type MembershipListener,
  type MemberView,
  Swim,
  type SwimCounters,
  SwimError,
  type SwimOptions,
} from './swim.js';
export { decodePacket, encodePacket } from './wire.js';
