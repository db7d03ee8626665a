/**
 * Authentication of cluster messages (docs/SECURITY.md has the threat model).
 *
 * Every message travels in a cluster_envelope (auth.x): the sender's node id, its boot epoch, a
 * counter, the payload, an optional Ed25519 signature by the sender's own key, and an
 * HMAC-SHA256 over all of it. The MAC key is derived with HKDF from the cluster secret and the
 * sender's id, so a process without the secret can neither join nor inject anything, and a MAC
 * made for one sender id does not verify under another. Everyone holding the secret can derive
 * every node's MAC key, though: what stops one member from speaking for another is (1) the
 * binding of a sender id to the source address it was admitted from, checked here through a
 * PeerDirectory, and (2) Ed25519 signatures, which only the node's own key can make — on the
 * identity assertions that matter (join, incarnation refutation, leave) with signAssertion, and
 * on every envelope when the cluster opts into `sign: true` / `requireSignatures`.
 *
 * Replays are rejected by counters, never by clocks: per sender, the highest (epoch, counter)
 * seen and a sliding window of the counters below it. The epoch is the sender's boot epoch
 * (identity.ts), persisted and incremented on every start, so a restarted node never reuses a
 * (epoch, counter) pair even though its counter starts again at 1. A random per-boot epoch would
 * not do: receivers could not order it, so recorded messages of an earlier boot would replay.
 *
 * open() never throws: every rejection is an OpenRejected with a reason.
 */
import { createHmac, hkdfSync, type KeyObject, sign, timingSafeEqual, verify } from 'node:crypto';
import { isIP } from 'node:net';
import { CairnError } from '../errors.js';
import { XdrError, XdrReader, XdrWriter } from '../xdr/index.js';
import {
  CLUSTER_ENVELOPE_VERSION,
  CLUSTER_MAC_SIZE,
  CLUSTER_MAX_PAYLOAD,
  CLUSTER_NODE_ID_SIZE,
  CLUSTER_SIG_SIZE,
  decode_cluster_envelope,
  encode_cluster_envelope,
} from './gen/auth.js';

/** Counters stop here (2^48): at a million messages a second, nine years of one boot. */
export const MAX_COUNTER = 2 ** 48;
export const MIN_SECRET_BYTES = 16;
export const DEFAULT_WINDOW = 1024;
export const DEFAULT_MAX_SENDERS = 65536;
/** The fixed envelope bytes around a payload without a signature. */
export const ENVELOPE_OVERHEAD = 4 + CLUSTER_NODE_ID_SIZE + 4 + 8 + 4 + 4 + CLUSTER_MAC_SIZE;
export const MAX_ENVELOPE = ENVELOPE_OVERHEAD + CLUSTER_MAX_PAYLOAD + CLUSTER_SIG_SIZE;

/**
 * The secret a loopback-only cluster uses when none is configured (`cairn up` on a laptop). It is
 * public, so it only keeps stray local processes of other clusters out; requireSecretForNonLoopback
 * never hands it to a cluster reachable from the network.
 */
export const LOOPBACK_DEV_SECRET = Buffer.from(
  'cairn loopback development cluster secret, not secret',
  'utf8',
);

const HKDF_SALT = Buffer.from('cairn-cluster-v1', 'utf8');
const SIG_DOMAIN = Buffer.from('cairn-cluster-sig-v1\0', 'utf8');
const ASSERT_DOMAIN = 'cairn-cluster-assert-v1\0';
const EMPTY = Buffer.alloc(0);
const ZERO_SIG = Buffer.alloc(CLUSTER_SIG_SIZE);
const ZERO_MAC = Buffer.alloc(CLUSTER_MAC_SIZE);

export type RejectReason =
  /** Shorter than any envelope, or cut short inside one. */
  | 'truncated'
  /** Longer than MAX_ENVELOPE (or the opener's limit): refused before decoding. */
  | 'too-large'
  /** Not a canonical envelope: trailing bytes, bad padding, a length beyond its maximum, a signature of the wrong size. */
  | 'malformed'
  | 'version'
  /** Claims to come from the receiving node itself (a reflected message). */
  | 'own-id'
  | 'epoch-absurd'
  | 'counter-absurd'
  /** The sender id is bound to another source, or the source to another sender id. */
  | 'source-mismatch'
  | 'bad-mac'
  /** From an earlier boot of the sender than one already seen. */
  | 'stale-epoch'
  | 'replay'
  /** Below the sliding window: cannot be told from a replay. */
  | 'too-old'
  | 'bad-signature'
  | 'signature-required'
  /** The opener tracks as many senders as it may; new ones are refused rather than old ones forgotten. */
  | 'too-many-senders';

/** Codes: CLUSTER_AUTH_REJECTED (with `reason`), CLUSTER_SECRET_REQUIRED, CLUSTER_SECRET_WEAK, CLUSTER_COUNTER_EXHAUSTED, CLUSTER_AUTH_CONFIG. */
export class ClusterAuthError extends CairnError {
  readonly reason: RejectReason | undefined;
  constructor(code: string, message: string, reason?: RejectReason) {
    super(code, message);
    this.reason = reason;
  }
}

export function toSecretBytes(secret: string | Uint8Array): Buffer {
  return typeof secret === 'string' ? Buffer.from(secret, 'utf8') : Buffer.from(secret);
}

/** Keys derived from the cluster secret. */
export class ClusterKeys {
  private readonly secret: Buffer;
  private readonly cache = new Map<string, Buffer>();
  private readonly cacheLimit: number;

  constructor(secret: string | Uint8Array, cacheLimit = DEFAULT_MAX_SENDERS) {
    this.secret = toSecretBytes(secret);
    if (this.secret.length < MIN_SECRET_BYTES) {
      throw new ClusterAuthError(
        'CLUSTER_SECRET_WEAK',
        `the cluster secret has ${this.secret.length} bytes; at least ${MIN_SECRET_BYTES} are required (openssl rand -hex 32)`,
      );
    }
    this.cacheLimit = cacheLimit;
  }

  /** HKDF-SHA256(secret, salt "cairn-cluster-v1", info "mac" ‖ sender id): one key per sender id. */
  macKey(sender: Uint8Array): Buffer {
    const k = Buffer.from(sender.buffer, sender.byteOffset, sender.byteLength).toString('hex');
    let key = this.cache.get(k);
    if (!key) {
      key = Buffer.from(
        hkdfSync('sha256', this.secret, HKDF_SALT, Buffer.concat([Buffer.from('mac\0'), sender]), 32),
      );
      if (this.cache.size >= this.cacheLimit) this.cache.delete(this.cache.keys().next().value as string);
      this.cache.set(k, key);
    }
    return key;
  }
}

export interface SealerOptions {
  readonly nodeId: Uint8Array;
  /** The boot epoch from identity.nextBootEpoch (1 and up). */
  readonly epoch: number;
  /** Needed to sign; identity.privateKey. */
  readonly privateKey?: KeyObject;
  /** Sign every envelope (for receivers with requireSignatures). */
  readonly signAll?: boolean;
}

/** Seals this node's outgoing messages. One per node and boot: it owns the counter. */
export class Sealer {
  private readonly keys: ClusterKeys;
  private readonly nodeId: Buffer;
  private readonly epoch: number;
  private readonly privateKey: KeyObject | undefined;
  private readonly signAll: boolean;
  private counter = 0;

  constructor(keys: ClusterKeys, options: SealerOptions) {
    if (options.nodeId.length !== CLUSTER_NODE_ID_SIZE) {
      throw new ClusterAuthError('CLUSTER_AUTH_CONFIG', `a node id is ${CLUSTER_NODE_ID_SIZE} bytes`);
    }
    if (!Number.isInteger(options.epoch) || options.epoch < 1 || options.epoch > 0xffffffff) {
      throw new ClusterAuthError('CLUSTER_AUTH_CONFIG', `boot epoch ${options.epoch} is not in 1..2^32-1`);
    }
    if (options.signAll && !options.privateKey) {
      throw new ClusterAuthError('CLUSTER_AUTH_CONFIG', 'signing every envelope needs the private key');
    }
    this.keys = keys;
    this.nodeId = Buffer.from(options.nodeId);
    this.epoch = options.epoch;
    this.privateKey = options.privateKey;
    this.signAll = options.signAll ?? false;
  }

  /** The counter of the last sealed envelope. */
  get sent(): number {
    return this.counter;
  }

  seal(payload: Uint8Array, options: { sign?: boolean } = {}): Buffer {
    const signed = options.sign ?? this.signAll;
    if (signed && !this.privateKey)
      throw new ClusterAuthError('CLUSTER_AUTH_CONFIG', 'signing needs the private key');
    if (payload.length > CLUSTER_MAX_PAYLOAD) {
      throw new ClusterAuthError(
        'CLUSTER_AUTH_CONFIG',
        `payload of ${payload.length} bytes exceeds ${CLUSTER_MAX_PAYLOAD}`,
      );
    }
    if (this.counter >= MAX_COUNTER) {
      throw new ClusterAuthError(
        'CLUSTER_COUNTER_EXHAUSTED',
        'message counter exhausted: restart the node for a new boot epoch',
      );
    }
    this.counter++;
    const w = new XdrWriter(ENVELOPE_OVERHEAD + payload.length + (signed ? CLUSTER_SIG_SIZE : 0) + 8);
    // Signature and MAC are encoded as zeros and filled in place: they cover the bytes before them.
    encode_cluster_envelope(w, {
      body: {
        format: CLUSTER_ENVELOPE_VERSION,
        sender: this.nodeId,
        epoch: this.epoch,
        counter: BigInt(this.counter),
        payload,
      },
      signature: signed ? ZERO_SIG : EMPTY,
      mac: ZERO_MAC,
    });
    const buf = w.finish();
    const macAt = buf.length - CLUSTER_MAC_SIZE;
    if (signed) {
      const bodyEnd = macAt - CLUSTER_SIG_SIZE - 4;
      const sig = sign(
        null,
        Buffer.concat([SIG_DOMAIN, buf.subarray(0, bodyEnd)]),
        this.privateKey as KeyObject,
      );
      sig.copy(buf, bodyEnd + 4);
    }
    createHmac('sha256', this.keys.macKey(this.nodeId))
      .update(buf.subarray(0, macAt))
      .digest()
      .copy(buf, macAt);
    return buf;
  }
}

/** What the receiver knows about its peers: from the agreed layout and from membership. */
export interface PeerDirectory {
  /** The source address a node id was admitted from, if bound. */
  sourceOf?(sender: string): string | undefined;
  /** The node id bound to a source address, if any. */
  senderAt?(source: string): string | undefined;
  /** The node's pinned Ed25519 public key, if known. */
  publicKeyOf?(sender: string): KeyObject | undefined;
}

export interface OpenerOptions {
  /** This node's id: envelopes claiming it are reflections and are refused. */
  readonly self?: Uint8Array;
  readonly directory?: PeerDirectory;
  /** Counters tracked below the highest seen, per sender; a multiple of 32. */
  readonly window?: number;
  readonly maxSenders?: number;
  readonly maxEnvelope?: number;
  /**
   * Refuse envelopes without a valid signature from senders whose key is pinned, and unsigned
   * envelopes from senders whose key is not. With it, no state changes without the sender's own
   * signature once its key is known.
   */
  readonly requireSignatures?: boolean;
}

export interface Opened {
  readonly ok: true;
  /** The sender's node id, 32 hex digits. */
  readonly sender: string;
  readonly epoch: number;
  readonly counter: number;
  /** A view into the input buffer, not a copy. */
  readonly payload: Buffer;
  /**
   * 'verified' with the pinned key; 'unverified' when signed but no key is pinned yet (a join
   * carries its key in the payload: check it with verifyEnvelopeSignature); 'none' when unsigned.
   */
  readonly signature: 'verified' | 'unverified' | 'none';
  /** @internal for verifyEnvelopeSignature */
  readonly signedBytes: Buffer;
  /** @internal */
  readonly signatureBytes: Buffer;
}

export interface OpenRejected {
  readonly ok: false;
  readonly reason: RejectReason;
  readonly error: ClusterAuthError;
}

export type OpenResult = Opened | OpenRejected;

interface SenderState {
  epoch: number;
  high: number;
  /** Bit (c mod window) is set when counter c in (high - window, high] was seen. */
  seen: Uint32Array;
}

function reject(reason: RejectReason, detail: string): OpenRejected {
  return {
    ok: false,
    reason,
    error: new ClusterAuthError(
      'CLUSTER_AUTH_REJECTED',
      `cluster message rejected (${reason}): ${detail}`,
      reason,
    ),
  };
}

/** Verifies incoming envelopes and keeps each sender's replay window. */
export class Opener {
  private readonly keys: ClusterKeys;
  private readonly self: string | undefined;
  private readonly directory: PeerDirectory;
  private readonly window: number;
  private readonly maxSenders: number;
  private readonly maxEnvelope: number;
  private readonly requireSignatures: boolean;
  private readonly senders = new Map<string, SenderState>();

  constructor(keys: ClusterKeys, options: OpenerOptions = {}) {
    const window = options.window ?? DEFAULT_WINDOW;
    if (!Number.isInteger(window) || window < 32 || window > 65536 || window % 32 !== 0) {
      throw new ClusterAuthError(
        'CLUSTER_AUTH_CONFIG',
        `replay window ${window} is not a multiple of 32 in 32..65536`,
      );
    }
    this.keys = keys;
    this.self = options.self ? Buffer.from(options.self).toString('hex') : undefined;
    this.directory = options.directory ?? {};
    this.window = window;
    this.maxSenders = options.maxSenders ?? DEFAULT_MAX_SENDERS;
    this.maxEnvelope = Math.min(options.maxEnvelope ?? MAX_ENVELOPE, MAX_ENVELOPE);
    this.requireSignatures = options.requireSignatures ?? false;
  }

  /** Senders with replay state (bounded by maxSenders). */
  get trackedSenders(): number {
    return this.senders.size;
  }

  /**
   * Authenticates one envelope received from `source` (an address as the transport reports it,
   * compared with the directory's bindings). Never throws.
   */
  open(bytes: Uint8Array, source?: string): OpenResult {
    try {
      return this.openInner(bytes, source);
    } catch (e) {
      // Nothing below should throw; if it does, the message is still only rejected.
      return reject('malformed', `unexpected failure: ${(e as Error).message}`);
    }
  }

  private openInner(bytes: Uint8Array, source: string | undefined): OpenResult {
    if (bytes.length < ENVELOPE_OVERHEAD) return reject('truncated', `${bytes.length} bytes`);
    if (bytes.length > this.maxEnvelope)
      return reject('too-large', `${bytes.length} bytes, limit ${this.maxEnvelope}`);
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let env: ReturnType<typeof decode_cluster_envelope>;
    try {
      // The decoder checks every length against its maximum and the bytes left before using it.
      const r = new XdrReader(buf);
      env = decode_cluster_envelope(r);
      r.assertEnd();
    } catch (e) {
      const short = e instanceof XdrError && e.code === 'XDR_SHORT_BUFFER';
      return reject(short ? 'truncated' : 'malformed', (e as Error).message);
    }
    const body = env.body;
    if (body.format !== CLUSTER_ENVELOPE_VERSION) return reject('version', `format ${body.format}`);
    if (env.signature.length !== 0 && env.signature.length !== CLUSTER_SIG_SIZE) {
      return reject('malformed', `signature of ${env.signature.length} bytes`);
    }
    const sender = Buffer.from(body.sender.buffer, body.sender.byteOffset, body.sender.byteLength).toString(
      'hex',
    );
    if (sender === this.self) return reject('own-id', 'the envelope claims this node as its sender');
    if (body.epoch === 0) return reject('epoch-absurd', 'epoch 0');
    if (body.counter === 0n || body.counter > BigInt(MAX_COUNTER)) {
      return reject('counter-absurd', `counter ${body.counter}`);
    }
    const counter = Number(body.counter);
    if (source !== undefined) {
      const bound = this.directory.sourceOf?.(sender);
      if (bound !== undefined && bound !== source) {
        return reject('source-mismatch', `${sender} is bound to ${bound}, not ${source}`);
      }
      const owner = this.directory.senderAt?.(source);
      if (owner !== undefined && owner !== sender) {
        return reject('source-mismatch', `${source} belongs to ${owner}, not ${sender}`);
      }
    }
    // Cheap checks first; nothing changes before the MAC verifies.
    const state = this.senders.get(sender);
    const replay = state ? this.checkWindow(state, body.epoch, counter) : undefined;
    if (replay) return replay;
    if (!state && this.senders.size >= this.maxSenders) {
      return reject('too-many-senders', `already tracking ${this.senders.size} senders`);
    }
    const macAt = buf.length - CLUSTER_MAC_SIZE;
    const mac = createHmac('sha256', this.keys.macKey(body.sender)).update(buf.subarray(0, macAt)).digest();
    if (!timingSafeEqual(mac, env.mac)) return reject('bad-mac', `from ${sender}`);

    const signedBytes = buf.subarray(0, macAt - 4 - env.signature.length);
    let signature: Opened['signature'] = 'none';
    const key = this.directory.publicKeyOf?.(sender);
    if (env.signature.length > 0) {
      if (key) {
        if (!verifySignature(key, signedBytes, env.signature))
          return reject('bad-signature', `from ${sender}`);
        signature = 'verified';
      } else {
        signature = 'unverified';
      }
    } else if (this.requireSignatures) {
      return reject('signature-required', `unsigned envelope from ${sender}`);
    }
    this.commit(sender, state, body.epoch, counter);
    return {
      ok: true,
      sender,
      epoch: body.epoch,
      counter,
      payload: body.payload as Buffer,
      signature,
      signedBytes,
      signatureBytes: env.signature as Buffer,
    };
  }

  private checkWindow(s: SenderState, epoch: number, counter: number): OpenRejected | undefined {
    if (epoch < s.epoch) return reject('stale-epoch', `epoch ${epoch}, already seen ${s.epoch}`);
    if (epoch > s.epoch || counter > s.high) return undefined;
    if (s.high - counter >= this.window)
      return reject('too-old', `counter ${counter}, window ends at ${s.high}`);
    const bit = counter % this.window;
    if (s.seen[bit >>> 5] & (1 << (bit & 31)))
      return reject('replay', `counter ${counter} of epoch ${epoch}`);
    return undefined;
  }

  private commit(sender: string, state: SenderState | undefined, epoch: number, counter: number): void {
    let s = state;
    if (!s) {
      s = { epoch, high: 0, seen: new Uint32Array(this.window / 32) };
      this.senders.set(sender, s);
    }
    if (epoch > s.epoch) {
      s.epoch = epoch;
      s.high = 0;
      s.seen.fill(0);
    }
    if (counter > s.high) {
      // A jump of a window or more forgets everything below; a smaller one clears the counters
      // the window slides over. Gaps are normal: one counter serves all of a sender's peers.
      if (counter - s.high >= this.window) s.seen.fill(0);
      else {
        for (let c = s.high + 1; c < counter; c++) {
          const b = c % this.window;
          s.seen[b >>> 5] &= ~(1 << (b & 31));
        }
      }
      s.high = counter;
    }
    const bit = counter % this.window;
    s.seen[bit >>> 5] |= 1 << (bit & 31);
  }
}

function verifySignature(key: KeyObject, signedBytes: Buffer, sig: Uint8Array): boolean {
  try {
    return verify(null, Buffer.concat([SIG_DOMAIN, signedBytes]), key, sig);
  } catch {
    return false;
  }
}

/** Checks an 'unverified' envelope's signature against a key from elsewhere (a join's payload). */
export function verifyEnvelopeSignature(opened: Opened, publicKey: KeyObject): boolean {
  return (
    opened.signatureBytes.length === CLUSTER_SIG_SIZE &&
    verifySignature(publicKey, opened.signedBytes, opened.signatureBytes)
  );
}

/**
 * Signs an identity assertion that others relay (an incarnation refutation, a join, a leave):
 * gossip carries it inside other nodes' envelopes, so it needs its own signature. `kind` keeps a
 * signature for one kind of assertion from being replayed as another.
 */
export function signAssertion(privateKey: KeyObject, kind: string, bytes: Uint8Array): Buffer {
  return sign(null, Buffer.concat([Buffer.from(`${ASSERT_DOMAIN}${kind}\0`, 'utf8'), bytes]), privateKey);
}

export function verifyAssertion(
  publicKey: KeyObject,
  kind: string,
  bytes: Uint8Array,
  signature: Uint8Array,
): boolean {
  if (signature.length !== CLUSTER_SIG_SIZE) return false;
  try {
    return verify(
      null,
      Buffer.concat([Buffer.from(`${ASSERT_DOMAIN}${kind}\0`, 'utf8'), bytes]),
      publicKey,
      signature,
    );
  } catch {
    return false;
  }
}

/** The host part of "host", "host:port", "[v6]:port" or a bare IPv6 address. */
function hostOf(address: string): string {
  const a = address.trim();
  if (a.startsWith('[')) {
    const end = a.indexOf(']');
    return end > 0 ? a.slice(1, end) : a;
  }
  const colons = a.split(':').length - 1;
  if (colons === 1) return a.slice(0, a.indexOf(':'));
  return a;
}

export function isLoopbackAddress(address: string): boolean {
  const host = hostOf(address).toLowerCase();
  if (host === 'localhost') return true;
  const v = isIP(host);
  if (v === 4) return host.startsWith('127.');
  if (v === 6) {
    if (host === '::1' || host === '0:0:0:0:0:0:0:1') return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(host);
    return mapped?.[1].startsWith('127.') ?? false;
  }
  // A hostname other than localhost may resolve anywhere; wildcards (0.0.0.0, ::) listen everywhere.
  return false;
}

/**
 * The secret a node must use, given the addresses it listens on and reaches peers at: the
 * configured one, or, for a cluster on loopback only, LOOPBACK_DEV_SECRET. A node reachable from
 * the network without a secret refuses to start (CLUSTER_SECRET_REQUIRED); a short secret is
 * refused everywhere (CLUSTER_SECRET_WEAK).
 */
export function requireSecretForNonLoopback(
  addresses: readonly string[],
  secret: string | Uint8Array | undefined,
): Buffer {
  const exposed = addresses.filter((a) => !isLoopbackAddress(a));
  const given = secret === undefined ? undefined : toSecretBytes(secret);
  if (given === undefined || given.length === 0) {
    if (exposed.length === 0) return LOOPBACK_DEV_SECRET;
    throw new ClusterAuthError(
      'CLUSTER_SECRET_REQUIRED',
      `refusing to start a cluster on ${exposed.join(', ')} without a cluster secret (set one: openssl rand -hex 32)`,
    );
  }
  if (given.length < MIN_SECRET_BYTES) {
    throw new ClusterAuthError(
      'CLUSTER_SECRET_WEAK',
      `the cluster secret has ${given.length} bytes; at least ${MIN_SECRET_BYTES} are required`,
    );
  }
  return given;
}
