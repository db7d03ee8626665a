/**
 * What the membership core needs from the world, injected so that the same core runs in the
 * deterministic simulator (src/sim) and in a real node (UDP for probes, a stream for push-pull).
 * Time is in milliseconds on any monotonic scale; the core never reads a clock of its own.
 */
import type { swim_packet } from '../gen/membership.js';

/** An opaque transport address ("host:port" in a real node). */
export type Address = string;

export interface Clock {
  now(): number;
}

export interface Random {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [0, n). */
  int(n: number): number;
}

/**
 * Sends one packet, best effort: loss is expected and handled by the protocol. A real node sends
 * SWIM_PUSH_PULL bodies over a stream (they carry a whole view) and everything else as datagrams.
 */
export interface Transport {
  send(to: Address, packet: swim_packet): void;
}

/**
 * Where a node keeps its own incarnation across restarts. Optional: without it, a restarted node
 * learns its previous incarnation from the others' gossip about it and refutes.
 */
export interface IncarnationStore {
  load(): number | undefined;
  save(incarnation: number): void;
}
