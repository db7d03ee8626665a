/**
 * For the real-network membership tests: node processes (`cairn up --nodes 1`), their views asked
 * over GOSSIP_STATUS exactly as `cairn status --json` asks, and the SWIM settings and detection
 * bound every such test uses.
 */
import { join } from 'node:path';
import { type StatusJson, toJson } from '../../src/cli/status.js';
import { CAIRN_GOSSIP_V1_Client } from '../../src/cluster/gen/gossip.js';
import { detectionBound } from '../../src/cluster/gossip.js';
import { parseAddr } from '../../src/cluster/gossip-transport.js';
import type { SwimConfig } from '../../src/cluster/membership/config.js';
import { TcpRpcClient } from '../../src/rpc/client-tcp.js';
import type { SpawnedProcess } from '../support/process.js';

export const CLI = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.js');

/**
 * Faster than the defaults so that a test of several failures fits well under two minutes; the
 * timing rules (Lifeguard suspicion, local health) are the defaults'.
 */
export const TEST_SWIM: Partial<SwimConfig> = {
  probeInterval: 500,
  probeTimeout: 250,
  gossipInterval: 100,
  pushPullInterval: 5000,
  reconnectInterval: 2000,
  joinRetryInterval: 500,
};

export function boundFor(n: number): number {
  return detectionBound(TEST_SWIM, n);
}

/** A node's view, as `cairn status --json` prints it. */
export async function statusOf(addr: string, timeoutMs = 2000): Promise<StatusJson> {
  const { host, port } = parseAddr(addr);
  const client = new TcpRpcClient({ host, port, timeoutMs, reconnectDelayMs: timeoutMs });
  try {
    const reply = await new CAIRN_GOSSIP_V1_Client(client).GOSSIP_STATUS('', { timeoutMs });
    if (reply.ok !== 1 || !('status' in reply)) throw new Error(`${addr} refused status`);
    return toJson(addr, reply.status);
  } finally {
    await client.close();
  }
}

/** The state `view` holds for the member with id `id` (undefined: unknown). */
export function stateIn(view: StatusJson, id: string): string | undefined {
  return view.members.find((m) => m.id === id)?.state;
}

export function incarnationIn(view: StatusJson, id: string): number | undefined {
  return view.members.find((m) => m.id === id)?.incarnation;
}

export interface NodeInfo {
  id: string;
  membership: string;
}

/** Reads the id and membership address a `cairn up` node prints. */
export async function nodeInfo(p: SpawnedProcess, timeoutMs = 30_000): Promise<NodeInfo> {
  const idLine = await p.waitForLine(/^\s+id\s+[0-9a-f]{32}$/, timeoutMs);
  const memLine = await p.waitForLine(/^\s+members\s+\S+/, timeoutMs);
  return {
    id: /([0-9a-f]{32})/.exec(idLine)?.[1] as string,
    membership: /members\s+(\S+)/.exec(memLine)?.[1] as string,
  };
}
