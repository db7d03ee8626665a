/**
 * What a real node checks about membership claims beyond the envelope (docs/MEMBERSHIP.md,
 * "Operating"; docs/SECURITY.md has the threat model):
 *
 * - MemberBook: each member's own signed claims (ALIVE at an incarnation: a join or a refutation;
 *   LEFT: a leave), its Ed25519 key pinned on first use, and the address each live member is
 *   bound to. A claim about a member that only the member may make is accepted only with its
 *   signature; an accusation (SUSPECT, DEAD) only at an incarnation the member has itself claimed,
 *   so that an absurd incarnation cannot push a member past 2^32 and silence its refutations.
 * - TokenBucket: admission of members never seen before is rate limited, and their number capped,
 *   so a flood of joins (from a holder of the secret: nobody else gets this far) cannot grow state
 *   without bound.
 * - RejectLog: every rejection counted by reason, and logged at most once a second per reason.
 *
 * No sockets and no timers here: the clock is passed in.
 */
import { type KeyObject, timingSafeEqual } from 'node:crypto';
import { CairnError } from '../errors.js';
import type { Logger } from '../log.js';
import { encodeToBuffer } from '../xdr/index.js';
import { signAssertion, verifyAssertion } from './auth.js';
import {
  encode_gossip_claim,
  GOSSIP_KEY_SIZE,
  type gossip_assertion,
  type gossip_claim,
} from './gen/gossip.js';
import { SWIM_ALIVE, SWIM_LEFT, type swim_update } from './gen/membership.js';
import { ed25519PublicKeyFromRaw, type NodeIdentity } from './identity.js';

/** The assertion kind of signAssertion for membership claims. */
export const CLAIM_KIND = 'member';

export class GossipError extends CairnError {}

export type GuardReason =
  | 'bad-claim-signature'
  | 'key-mismatch'
  | 'claim-state'
  | 'join-rate-limited'
  | 'too-many-members'
  | 'unsigned-claim'
  | 'unknown-member'
  | 'absurd-incarnation';

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && (a.length === 0 || timingSafeEqual(a, b));
}

/** Whether `u` says exactly what `c` says (`from`, the relayer, aside). */
export function claimMatches(c: gossip_claim, u: swim_update): boolean {
  return (
    c.incarnation === u.incarnation &&
    c.state === u.state &&
    c.addr === u.addr &&
    sameBytes(c.id, u.id) &&
    sameBytes(c.meta, u.meta)
  );
}

export function claimOf(u: swim_update): gossip_claim {
  return { id: u.id, addr: u.addr, incarnation: u.incarnation, state: u.state, meta: u.meta };
}

/** Orders two claims about one member: the later incarnation wins; at equal ones, a leave. */
function newer(a: gossip_claim, b: gossip_claim): boolean {
  if (a.incarnation !== b.incarnation) return a.incarnation > b.incarnation;
  return a.state === SWIM_LEFT && b.state !== SWIM_LEFT;
}

/** A token bucket on an injected clock (milliseconds). */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.last = now;
  }

  take(now: number): boolean {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.ratePerSecond);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

interface Entry {
  key: KeyObject;
  keyRaw: Buffer;
  /** The latest verified assertion. */
  assertion: gossip_assertion;
  /** The highest incarnation the member has claimed. */
  maxIncarnation: number;
}

export interface MemberBookOptions {
  identity: NodeIdentity;
  /** Members (other than this node) the book holds at most. */
  maxMembers: number;
  /** New members admitted per second, and in a burst. */
  joinRate: number;
  joinBurst: number;
  now: () => number;
}

export type AdmitResult = { ok: true; fresh: boolean } | { ok: false; reason: GuardReason; detail: string };

export class MemberBook {
  private readonly entries = new Map<string, Entry>();
  private readonly selfHex: string;
  private readonly joins: TokenBucket;
  /** Our own signed claims, by their encoded bytes (a refutation signs a new one). */
  private readonly ownSigned = new Map<string, gossip_assertion>();
  /** The highest incarnation this node has signed or seen signed for itself. */
  private ownMax = 0;

  constructor(private readonly o: MemberBookOptions) {
    this.selfHex = o.identity.nodeIdHex;
    this.joins = new TokenBucket(o.joinRate, o.joinBurst, o.now());
  }

  get size(): number {
    return this.entries.size;
  }

  /** This node's signed assertion of `u`, an update about itself (signed once per distinct claim). */
  signOwn(u: swim_update): gossip_assertion {
    const claim = claimOf(u);
    const bytes = encodeToBuffer(encode_gossip_claim, claim);
    const k = bytes.toString('latin1');
    let a = this.ownSigned.get(k);
    if (!a) {
      a = {
        claim,
        public_key: this.o.identity.publicKeyRaw,
        signature: signAssertion(this.o.identity.privateKey, CLAIM_KIND, bytes),
      };
      // A node signs a handful of claims in its life (one per refutation); keep the last few.
      if (this.ownSigned.size >= 16) this.ownSigned.delete(this.ownSigned.keys().next().value as string);
      this.ownSigned.set(k, a);
      if (claim.incarnation > this.ownMax) this.ownMax = claim.incarnation;
    }
    return a;
  }

  /** The highest incarnation this node may be accused at. */
  ownMaxIncarnation(current: number): number {
    return Math.max(this.ownMax, current);
  }

  /**
   * Verifies and records an assertion. `known`: the core already holds the member (a member it
   * learned before this book existed is not a new join). Assertions about this node are checked
   * against its own key and only raise the incarnation it may be accused at.
   */
  admit(a: gossip_assertion, known: boolean): AdmitResult {
    const id = hex(a.claim.id);
    if (a.claim.state !== SWIM_ALIVE && a.claim.state !== SWIM_LEFT) {
      return { ok: false, reason: 'claim-state', detail: `state ${a.claim.state} of ${id}` };
    }
    if (id === this.selfHex) {
      if (!sameBytes(a.public_key, this.o.identity.publicKeyRaw)) {
        return { ok: false, reason: 'key-mismatch', detail: `a claim about this node under another key` };
      }
      if (!this.verify(this.o.identity.publicKey, a)) {
        return { ok: false, reason: 'bad-claim-signature', detail: `a claim about this node` };
      }
      if (a.claim.incarnation > this.ownMax) this.ownMax = a.claim.incarnation;
      return { ok: true, fresh: false };
    }
    const e = this.entries.get(id);
    if (e) {
      // The same assertion again (the usual case: gossip repeats itself) costs no verification.
      if (sameBytes(e.assertion.signature, a.signature)) return { ok: true, fresh: false };
      if (!sameBytes(e.keyRaw, a.public_key)) {
        return { ok: false, reason: 'key-mismatch', detail: `${id} is pinned to another key` };
      }
      if (!this.verify(e.key, a))
        return { ok: false, reason: 'bad-claim-signature', detail: `claim of ${id}` };
      if (newer(a.claim, e.assertion.claim)) e.assertion = a;
      if (a.claim.incarnation > e.maxIncarnation) e.maxIncarnation = a.claim.incarnation;
      return { ok: true, fresh: false };
    }
    // A member not seen before: the cheap limits first, then the signature.
    if (this.entries.size >= this.o.maxMembers) {
      return { ok: false, reason: 'too-many-members', detail: `${this.entries.size} members held` };
    }
    if (a.public_key.length !== GOSSIP_KEY_SIZE) {
      return { ok: false, reason: 'bad-claim-signature', detail: `key of ${a.public_key.length} bytes` };
    }
    let key: KeyObject;
    try {
      key = ed25519PublicKeyFromRaw(a.public_key);
    } catch {
      return { ok: false, reason: 'bad-claim-signature', detail: `unusable key for ${id}` };
    }
    if (!this.verify(key, a)) return { ok: false, reason: 'bad-claim-signature', detail: `join of ${id}` };
    if (!known && !this.joins.take(this.o.now())) {
      return { ok: false, reason: 'join-rate-limited', detail: `join of ${id}` };
    }
    this.entries.set(id, {
      key,
      keyRaw: Buffer.from(a.public_key),
      assertion: a,
      maxIncarnation: a.claim.incarnation,
    });
    return { ok: true, fresh: true };
  }

  private verify(key: KeyObject, a: gossip_assertion): boolean {
    return verifyAssertion(key, CLAIM_KIND, encodeToBuffer(encode_gossip_claim, a.claim), a.signature);
  }

  /** The latest verified assertion of a member. */
  latest(idHex: string): gossip_assertion | undefined {
    return this.entries.get(idHex)?.assertion;
  }

  /** Whether a verified assertion of exactly `u` is held. */
  vouches(u: swim_update): boolean {
    const a = this.entries.get(hex(u.id))?.assertion;
    return a !== undefined && claimMatches(a.claim, u);
  }

  has(idHex: string): boolean {
    return this.entries.has(idHex);
  }

  maxIncarnation(idHex: string): number | undefined {
    return this.entries.get(idHex)?.maxIncarnation;
  }

  /** Forgets a member the core no longer holds (reclaimed after its dead retention). */
  forget(idHex: string): void {
    this.entries.delete(idHex);
  }

  ids(): IterableIterator<string> {
    return this.entries.keys();
  }
}

/** Rejections counted by reason, and logged at most once per `intervalMs` per reason. */
export class RejectLog {
  readonly counts = new Map<string, number>();
  private readonly lastLogged = new Map<string, number>();
  private readonly suppressed = new Map<string, number>();

  constructor(
    private readonly log: Logger,
    private readonly now: () => number,
    private readonly intervalMs = 1000,
  ) {}

  note(reason: string, detail: string, source: string | undefined): void {
    this.counts.set(reason, (this.counts.get(reason) ?? 0) + 1);
    const t = this.now();
    const last = this.lastLogged.get(reason);
    if (last !== undefined && t - last < this.intervalMs) {
      this.suppressed.set(reason, (this.suppressed.get(reason) ?? 0) + 1);
      return;
    }
    this.lastLogged.set(reason, t);
    const suppressed = this.suppressed.get(reason) ?? 0;
    this.suppressed.delete(reason);
    this.log.warn({ reason, source, detail, suppressed }, `membership message rejected (${reason})`);
  }

  count(reason: string): number {
    return this.counts.get(reason) ?? 0;
  }
}
