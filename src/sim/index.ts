/** The deterministic simulator, and the protocol cores wired into it. */

export { type Random, SeededRandom } from '../random.js';
export { ChordCluster, type ChordClusterOptions, type ChordMsg, ChordPeer } from './chord.js';
export { SimDisk } from './disk.js';
export { EventHeap, type Scheduled } from './heap.js';
export { INCARNATION_KEY, SwimCluster, type SwimClusterOptions, SwimDriver } from './membership.js';
export {
  type Address,
  type Cut,
  type DelayModel,
  delays,
  NetworkModel,
  type NetworkOptions,
} from './network.js';
export {
  type NetStats,
  type NodeStatus,
  type ProcessFactory,
  SIM_EPOCH_MS,
  type SimEnv,
  SimNode,
  type SimProcess,
  Simulator,
  type SimulatorOptions,
  type WireCodec,
} from './simulator.js';
