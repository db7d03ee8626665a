/**
 * SWIM's knobs, Cairn's defaults, memberlist's LAN defaults (the peer of the benchmark), and the
 * pure timing functions of Lifeguard (suspicion timeouts, retransmit limits), tested on their own.
 * docs/MEMBERSHIP.md gives the reasoning behind each default and the figures it rests on.
 */
import { CairnError } from '../../errors.js';

export interface SwimConfig {
  /** Time between two probes of the round-robin (scaled by the local-health multiplier). */
  probeInterval: number;
  /** Time to wait for a direct ACK before asking k others (scaled by the local-health multiplier). */
  probeTimeout: number;
  /** k: members asked to probe indirectly (PING-REQ). 0 disables indirect probes. */
  indirectChecks: number;
  /** Lifeguard NACKs from the k helpers, which tell a lossy local network from a dead target. */
  nacks: boolean;
  /**
   * Minimum suspicion timeout = suspicionMult · max(1, log10 N) · probeInterval. 0 declares a
   * member dead on its first failed probe (no suspicion at all: for tests of the harness only).
   */
  suspicionMult: number;
  /** Maximum suspicion timeout, as a multiple of the minimum (1 = fixed timeout, no Lifeguard). */
  suspicionMaxMult: number;
  /** Each update is piggybacked retransmitMult · ceil(log10(N + 1)) times. */
  retransmitMult: number;
  /** A separate gossip round every gossipInterval ms to gossipFanout members; 0 = piggyback only. */
  gossipInterval: number;
  gossipFanout: number;
  /** Full-state exchange with one random member, scaled up beyond 32 members as memberlist does. */
  pushPullInterval: number;
  /** The local-health multiplier's ceiling: timeouts grow up to this many times. 1 disables it. */
  maxLocalHealth: number;
  /** Bytes of piggybacked updates per packet (a UDP datagram stays under a 1,500-byte MTU). */
  piggybackBytes: number;
  /** How long dead and left members are remembered (for refutation and reconnection). */
  deadRetention: number;
  /** Push-pull with a random failed member this often, so that healed partitions merge. */
  reconnectInterval: number;
  /** Join retry period while no seed has answered. */
  joinRetryInterval: number;
}

/** hashicorp/memberlist's DefaultLANConfig, the benchmark's peer. */
export const MEMBERLIST_LAN: SwimConfig = Object.freeze({
  probeInterval: 1000,
  probeTimeout: 500,
  indirectChecks: 3,
  nacks: true,
  suspicionMult: 4,
  suspicionMaxMult: 6,
  retransmitMult: 4,
  gossipInterval: 200,
  gossipFanout: 3,
  pushPullInterval: 30_000,
  maxLocalHealth: 8,
  piggybackBytes: 1200,
  deadRetention: 3_600_000,
  reconnectInterval: 30_000,
  joinRetryInterval: 1000,
});

/** Cairn's defaults, chosen from `npm run bench -- membership` (docs/MEMBERSHIP.md). */
export const CAIRN_DEFAULTS: SwimConfig = Object.freeze({
  ...MEMBERLIST_LAN,
  // Five helpers instead of three: under heavy loss a probe fails only if all five paths do, so
  // far fewer suspicions are raised, and a healthy cluster pays nothing (PING-REQ is sent only
  // after a missed ACK). Shorter probe intervals were measured and cost false positives under
  // loss for faster detection; see docs/MEMBERSHIP.md.
  indirectChecks: 5,
});

export class SwimConfigError extends CairnError {
  constructor(message: string) {
    super('SWIM_CONFIG', message);
  }
}

export function swimConfig(overrides: Partial<SwimConfig> = {}): SwimConfig {
  const c = { ...CAIRN_DEFAULTS, ...overrides };
  const positive = ['probeInterval', 'probeTimeout', 'pushPullInterval', 'joinRetryInterval'] as const;
  for (const k of positive) if (!(c[k] > 0)) throw new SwimConfigError(`${k} must be positive, not ${c[k]}`);
  if (c.probeTimeout > c.probeInterval) throw new SwimConfigError('probeTimeout exceeds probeInterval');
  if (!(c.suspicionMaxMult >= 1)) throw new SwimConfigError('suspicionMaxMult must be at least 1');
  if (!(c.maxLocalHealth >= 1)) throw new SwimConfigError('maxLocalHealth must be at least 1');
  if (c.indirectChecks < 0 || c.suspicionMult < 0 || c.retransmitMult < 1)
    throw new SwimConfigError('indirectChecks and suspicionMult cannot be negative, retransmitMult below 1');
  return c;
}

/** How many times each update is piggybacked before it is dropped from the queue. */
export function retransmitLimit(mult: number, members: number): number {
  return mult * Math.max(1, Math.ceil(Math.log10(members + 1)));
}

/** Lifeguard's minimum suspicion timeout, in ms, for a cluster of `members`. */
export function suspicionMinTimeout(mult: number, members: number, probeInterval: number): number {
  return mult * Math.max(1, Math.log10(Math.max(1, members))) * probeInterval;
}

/** Independent confirmations that bring a suspicion down to its minimum timeout. */
export function suspicionConfirmations(mult: number, members: number): number {
  return Math.max(0, Math.min(mult - 2, members - 2));
}

/**
 * Lifeguard's dynamic suspicion timeout: it starts at `max` and falls, logarithmically in the
 * number of independent confirmations `c`, to `min` at `k` confirmations. Early accusers wait
 * long, so a falsely suspected member has time to refute; corroborated suspicions end fast.
 */
export function suspicionTimeout(c: number, k: number, min: number, max: number): number {
  if (k < 1 || c >= k) return min;
  const frac = Math.log(c + 1) / Math.log(k + 1);
  return Math.max(min, Math.floor(max - frac * (max - min)));
}

/** memberlist's push-pull scaling: beyond 32 members, the period grows with log2 N so bandwidth stays flat. */
export function pushPullPeriod(interval: number, members: number): number {
  if (members <= 32) return interval;
  return interval * (Math.ceil(Math.log2(members) - Math.log2(32)) + 1);
}
