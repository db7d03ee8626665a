/**
 * SWIM membership in a real node: the sans-IO core of src/cluster/membership driven by real
 * timers, over the sockets of gossip-transport.ts, with every message sealed and opened by
 * auth.ts and every claim only a member may make about itself signed by it (gossip-guard.ts).
 * docs/MEMBERSHIP.md, "Operating", describes it from the operator's side.
 *
 * What happens to a packet:
 * - out: the core hands a swim_packet to `send`; it is encoded (membership.x), put in a
 *   gossip_frame with this node's advertised address and the signed assertions of the members it
 *   mentions (gossip.x), sealed (auth.x), and sent: as a one-way UDP call, or, for a full-state
 *   exchange, as a TCP call whose reply is the peer's own sealed view.
 * - in: the envelope is opened (MAC, replay window, the sender's id bound to the address it was
 *   admitted from), the frame's address checked against the real source, the packet's sender
 *   against the envelope's, the assertions verified, and every update nobody vouches for dropped;
 *   only then does the core see it. Each rejection is counted and logged with its reason.
 */
import { timingSafeEqual } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type NodeClock, systemClock } from '../clock.js';
import type { Logger } from '../log.js';
import { componentLogger } from '../log.js';
import type { CallContext } from '../rpc/context.js';
import { RpcServer } from '../rpc/server.js';
import { decodeAll, encodeToBuffer } from '../xdr/index.js';
import {
  ClusterKeys,
  isLoopbackAddress,
  Opener,
  type PeerDirectory,
  requireSecretForNonLoopback,
  Sealer,
} from './auth.js';
import {
  type CAIRN_GOSSIP_V1_Handler,
  CAIRN_GOSSIP_V1_program,
  decode_gossip_frame,
  decode_gossip_meta,
  encode_gossip_frame,
  encode_gossip_meta,
  type gossip_assertion,
  type gossip_exchange_args,
  type gossip_meta,
  type gossip_status,
  type gossip_status_reply,
} from './gen/gossip.js';
import {
  SWIM_ALIVE,
  SWIM_DEAD,
  SWIM_LEFT,
  SWIM_PUSH_PULL,
  SWIM_SUSPECT,
  type swim_packet,
  type swim_update,
} from './gen/membership.js';
import { GossipError, MemberBook, RejectLog } from './gossip-guard.js';
import { formatAddr, GossipTransport, parseAddr, plainHost } from './gossip-transport.js';
import { loadOrCreateIdentity, type NodeIdentity, nextBootEpoch } from './identity.js';
import { type SwimConfig, suspicionMinTimeout, swimConfig } from './membership/config.js';
import type { IncarnationStore } from './membership/env.js';
import { idHex, type MembershipEvent, type MemberView, Swim } from './membership/swim.js';
import { decodePacket, encodePacket } from './membership/wire.js';
import { Ring } from './ring.js';

/** memberlist's port, tried first when none is configured. */
export const DEFAULT_GOSSIP_PORT = 7946;
export const DEFAULT_REPLICAS = 3;
const INCARNATION_FILE = 'cluster-incarnation';
const EMPTY = new Uint8Array(0);

export interface GossipMeta {
  rpcbindPort: number;
  nfsPort: number;
  weight: number;
  zone: string;
}

export interface GossipLimits {
  /** Members held besides this node; joins beyond are refused. */
  maxMembers: number;
  /** Members never seen before, admitted per second and in a burst. */
  joinRate: number;
  joinBurst: number;
}

export const DEFAULT_LIMITS: GossipLimits = Object.freeze({ maxMembers: 2048, joinRate: 20, joinBurst: 64 });

export interface GossipOptions {
  /** Where the identity, boot epoch and incarnation live. */
  dataDir: string;
  /** Default: loadOrCreateIdentity(dataDir). */
  identity?: NodeIdentity;
  /** Address the membership port binds. */
  host: string;
  /** Default DEFAULT_GOSSIP_PORT where it may be bound, any free port otherwise; 0: any. */
  port?: number;
  /** Host other nodes reach this one at; default `host` (required when `host` is a wildcard). */
  advertiseHost?: string;
  /** HOST:PORT of nodes to join through. */
  seeds?: readonly string[];
  /** The cluster secret; may be absent only for a loopback cluster (requireSecretForNonLoopback). */
  secret?: string | Uint8Array;
  meta?: Partial<GossipMeta>;
  config?: Partial<SwimConfig>;
  replicas?: number;
  /** Lets callers from other than loopback ask for the status. */
  adminToken?: string;
  limits?: Partial<GossipLimits>;
  logger?: Logger;
  /** The node's clocks (src/clock.ts); SWIM's timing runs on its monotonic one. Default: real time. */
  clock?: NodeClock;
}

export interface MemberStatus {
  id: string;
  addr: string;
  state: string;
  incarnation: number;
  health: number;
  sinceMs: number;
  rpcbindPort: number;
  nfsPort: number;
  weight: number;
  zone: string;
  /** Fraction of the keys this member is first for (R = 1), under the layout of live members. */
  primaryShare: number;
  /** Fraction of the keys this member holds a replica of (R = replicas). */
  replicaShare: number;
}

export interface GossipStatus {
  self: string;
  addr: string;
  incarnation: number;
  health: number;
  replicas: number;
  layoutMembers: number;
  counters: {
    probes: number;
    probesFailed: number;
    suspicions: number;
    refutations: number;
    packetsSent: number;
    packetsReceived: number;
  };
  members: MemberStatus[];
  rejected: Record<string, number>;
}

/**
 * Worst case, in ms, from a crash to every live member holding it dead: up to two passes of the
 * randomized round-robin before some member probes it (probe intervals scaled by the worst local
 * health), the longest suspicion, and a few probe intervals of dissemination.
 */
export function detectionBound(config: Partial<SwimConfig>, n: number): number {
  const c = swimConfig(config);
  const maxSuspicion = suspicionMinTimeout(c.suspicionMult, n, c.probeInterval) * c.suspicionMaxMult;
  return 2 * n * c.probeInterval + maxSuspicion + 4 * c.probeInterval;
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '';
}

export function encodeMeta(m: GossipMeta): Uint8Array {
  return encodeToBuffer(encode_gossip_meta, {
    rpcbind_port: m.rpcbindPort,
    nfs_port: m.nfsPort,
    weight: m.weight,
    zone: m.zone,
  });
}

export function decodeMeta(bytes: Uint8Array): gossip_meta | undefined {
  if (bytes.length === 0) return undefined;
  try {
    return decodeAll(decode_gossip_meta, bytes);
  } catch {
    return undefined;
  }
}

/** The incarnation kept across restarts: written to a temporary file, fsynced, renamed. */
function fileIncarnationStore(dataDir: string, log: Logger): IncarnationStore {
  const path = join(dataDir, INCARNATION_FILE);
  return {
    load() {
      try {
        const m = /^incarnation (\d+)\n$/.exec(readFileSync(path, 'utf8'));
        const n = m ? Number(m[1]) : Number.NaN;
        if (Number.isInteger(n) && n >= 0 && n <= 0xffffffff) return n;
        log.warn({ path }, 'incarnation file damaged; the cluster will tell this node its incarnation');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
          log.warn({ err: e, path }, 'cannot read incarnation');
      }
      return undefined;
    },
    save(n: number) {
      const tmp = `${path}.tmp`;
      try {
        writeFileSync(tmp, `incarnation ${n}\n`, { mode: 0o600 });
        const fd = openSync(tmp, 'r');
        try {
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
        renameSync(tmp, path);
        // The rename is an entry in the directory: durable only once the directory is synced, or
        // a power cut brings back the older incarnation (the simulator's power-loss test shows why).
        const dfd = openSync(dataDir, 'r');
        try {
          fsyncSync(dfd);
        } finally {
          closeSync(dfd);
        }
      } catch (e) {
        // Losing it costs a refutation after the next restart, not correctness.
        log.warn({ err: e, path }, 'cannot persist incarnation');
      }
    },
  };
}

const realRandom = {
  next: () => Math.random(),
  int: (n: number) => Math.floor(Math.random() * n),
};

export class GossipNode {
  readonly identity: NodeIdentity;
  readonly bootEpoch: number;
  readonly config: SwimConfig;
  readonly replicas: number;
  readonly log: Logger;
  readonly rejects: RejectLog;
  readonly clock: NodeClock;
  private readonly opts: GossipOptions;
  private readonly limits: GossipLimits;
  private readonly book: MemberBook;
  private readonly sealer: Sealer;
  private readonly opener: Opener;
  private readonly rpc: RpcServer;
  private transport: GossipTransport | null = null;
  private swimCore: Swim | null = null;
  private advertised = '';
  private timer: NodeJS.Timeout | null = null;
  private armedAt = Number.POSITIVE_INFINITY;
  private stopped = false;
  private capture: { to: string; reply: Uint8Array | undefined } | undefined;
  /** Address → the member whose latest claim holds it. */
  private readonly owners = new Map<string, string>();
  private readonly listeners: ((e: MembershipEvent) => void)[] = [];
  private ringCache: { key: string; ring: Ring } | undefined;
  private nextPruneAt = 0;

  constructor(options: GossipOptions) {
    this.opts = options;
    this.clock = options.clock ?? systemClock;
    this.log = options.logger ?? componentLogger('membership');
    this.config = swimConfig(options.config);
    this.replicas = options.replicas ?? DEFAULT_REPLICAS;
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    const advertiseHost = options.advertiseHost ?? options.host;
    if (isWildcard(advertiseHost)) {
      throw new GossipError(
        'GOSSIP_CONFIG',
        `membership binds ${options.host || 'every address'}: say which address peers reach this node at (advertise host)`,
      );
    }
    // Before anything is opened: a node reachable from the network needs the cluster secret.
    const secret = requireSecretForNonLoopback(
      [options.host, advertiseHost, ...(options.seeds ?? [])],
      options.secret,
    );
    this.identity = options.identity ?? loadOrCreateIdentity(options.dataDir);
    this.bootEpoch = nextBootEpoch(options.dataDir);
    const keys = new ClusterKeys(secret);
    this.sealer = new Sealer(keys, { nodeId: this.identity.nodeId, epoch: this.bootEpoch });
    const directory: PeerDirectory = {
      sourceOf: (sender) => this.boundAddress(sender),
      senderAt: (source) => this.addressOwner(source),
    };
    this.opener = new Opener(keys, { self: this.identity.nodeId, directory });
    const now = () => this.clock.monoMs();
    this.rejects = new RejectLog(this.log, now);
    this.book = new MemberBook({
      identity: this.identity,
      maxMembers: this.limits.maxMembers,
      joinRate: this.limits.joinRate,
      joinBurst: this.limits.joinBurst,
      now,
    });
    this.rpc = new RpcServer({ logger: this.log.child({ component: 'membership-rpc' }), drc: false });
    const handler: CAIRN_GOSSIP_V1_Handler = {
      GOSSIP_NULL: () => {},
      GOSSIP_DATAGRAM: (envelope, ctx) => this.onDatagram(envelope, ctx),
      GOSSIP_EXCHANGE: (args, ctx) => this.onExchange(args, ctx),
      GOSSIP_STATUS: (token, ctx) => this.onStatus(token, ctx),
    };
    this.rpc.addProgram(CAIRN_GOSSIP_V1_program, handler, {
      oneWay: ['GOSSIP_DATAGRAM'],
      idempotent: ['GOSSIP_NULL', 'GOSSIP_EXCHANGE', 'GOSSIP_STATUS'],
    });
    this.advertised = advertiseHost;
  }

  /** Binds the membership port and starts probing and joining. Resolves with the advertised address. */
  async start(): Promise<string> {
    const o = this.opts;
    const loopbackAdmin = !isLoopbackAddress(o.host) && !isWildcard(o.host);
    const tryPort = async (port: number) => {
      const t = new GossipTransport(this.rpc, { host: o.host, port, loopbackAdmin, log: this.log });
      await t.listen();
      return t;
    };
    let transport: GossipTransport;
    if (o.port !== undefined) transport = await tryPort(o.port);
    else {
      try {
        transport = await tryPort(DEFAULT_GOSSIP_PORT);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'EADDRINUSE' && code !== 'EACCES') throw e;
        transport = await tryPort(0);
      }
    }
    this.transport = transport;
    this.advertised = formatAddr(this.advertised, transport.port);
    this.owners.set(this.advertised, this.identity.nodeIdHex);
    const m = o.meta ?? {};
    const swim = new Swim({
      id: this.identity.nodeId,
      addr: this.advertised,
      clock: { now: () => this.clock.monoMs() },
      random: realRandom,
      transport: { send: (to, packet) => this.send(to, packet) },
      config: this.config,
      meta: encodeMeta({
        rpcbindPort: m.rpcbindPort ?? 0,
        nfsPort: m.nfsPort ?? 0,
        weight: m.weight ?? 1,
        zone: m.zone ?? '',
      }),
      store: fileIncarnationStore(o.dataDir, this.log),
    });
    this.swimCore = swim;
    swim.on((e) => this.onEvent(e));
    swim.start(o.seeds ?? []);
    this.arm();
    this.log.info(
      {
        id: this.identity.nodeIdHex,
        addr: this.advertised,
        epoch: this.bootEpoch,
        incarnation: swim.selfIncarnation,
      },
      'membership started',
    );
    return this.advertised;
  }

  get address(): string {
    return this.advertised;
  }

  get swim(): Swim {
    if (!this.swimCore) throw new GossipError('GOSSIP_NOT_STARTED', 'membership is not started');
    return this.swimCore;
  }

  on(listener: (e: MembershipEvent) => void): void {
    this.listeners.push(listener);
  }

  /** Announces a graceful leave, waits (at most `timeoutMs`) until it has been spread, and closes. */
  async stop(timeoutMs = 2000): Promise<void> {
    if (this.stopped) return;
    const swim = this.swimCore;
    if (swim && this.transport) {
      swim.leave();
      this.arm();
      const deadline = performance.now() + timeoutMs;
      while (!swim.leaveSent() && performance.now() < deadline) {
        await new Promise<void>((r) => setTimeout(r, Math.min(50, this.config.gossipInterval || 50)));
      }
    }
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.transport?.close();
    this.log.info('membership stopped');
  }

  /** Stops at once, without a leave (what a crash looks like to the others). */
  async kill(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.transport?.close();
  }

  // ---- driving the core ----

  private arm(): void {
    if (this.stopped || !this.swimCore) return;
    const due = this.swimCore.nextDeadline();
    if (due >= this.armedAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.armedAt = due;
    if (!Number.isFinite(due)) return;
    // A deadline on a skewed clock comes after real time runs at that clock's rate.
    const wait = this.clock.realDelay(due - this.clock.monoMs());
    this.timer = setTimeout(() => this.onTimer(), Math.max(0, Math.ceil(wait)));
    // Membership never holds a process open by itself: its sockets do while the node runs.
    this.timer.unref();
  }

  private onTimer(): void {
    this.timer = null;
    this.armedAt = Number.POSITIVE_INFINITY;
    if (this.stopped) return;
    try {
      this.swim.tick();
    } catch (e) {
      this.log.error({ err: e }, 'membership tick failed');
    }
    const now = this.clock.monoMs();
    if (now >= this.nextPruneAt) {
      this.nextPruneAt = now + 10_000;
      this.prune();
    }
    this.arm();
  }

  /** Forgets the signed claims of members the core has reclaimed, so the book stays bounded by the view. */
  private prune(): void {
    const swim = this.swim;
    for (const id of [...this.book.ids()]) {
      if (swim.stateOf(Buffer.from(id, 'hex')) === undefined) {
        const a = this.book.latest(id);
        if (a && this.owners.get(a.claim.addr) === id) this.owners.delete(a.claim.addr);
        this.book.forget(id);
      }
    }
  }

  private onEvent(e: MembershipEvent): void {
    if (e.type === 'health') this.log.debug({ health: e.score }, 'local health changed');
    else if (e.type !== 'update') {
      this.log.info(
        { member: idHex(e.member.id), addr: e.member.addr, incarnation: e.member.incarnation },
        `member ${e.type}`,
      );
    }
    for (const l of this.listeners) l(e);
  }

  // ---- out ----

  private send(to: string, packet: swim_packet): void {
    const transport = this.transport;
    if (!transport || this.stopped) return;
    const frame = encodeToBuffer(encode_gossip_frame, {
      addr: this.advertised,
      packet: encodePacket(packet),
      assertions: this.assertionsFor(packet),
    });
    const envelope = this.sealer.seal(frame);
    const body = packet.body;
    if (body.kind !== SWIM_PUSH_PULL) {
      transport.sendDatagram(to, envelope);
      return;
    }
    const cap = this.capture;
    if (body.push_pull.reply && cap && cap.to === to && cap.reply === undefined) {
      cap.reply = envelope;
      return;
    }
    const timeoutMs = Math.max(1000, this.config.probeInterval * 2);
    transport.exchange(to, { addr: this.advertised, envelope }, timeoutMs).then(
      (reply) => {
        if (reply.length > 0 && !this.stopped) this.incoming(reply, to);
      },
      (err: Error) => this.log.debug({ to, err: err.message }, 'full-state exchange failed'),
    );
  }

  /** The signed claims of the members a packet says something about (to receivers that may not know them). */
  private assertionsFor(p: swim_packet): gossip_assertion[] {
    const out: gossip_assertion[] = [];
    const seen = new Set<string>();
    const self = this.identity.nodeIdHex;
    const add = (u: swim_update) => {
      if (u.state === SWIM_DEAD) return;
      const id = idHex(u.id);
      if (seen.has(id)) return;
      seen.add(id);
      if (id === self) {
        if (u.state === SWIM_ALIVE || u.state === SWIM_LEFT) out.push(this.book.signOwn(u));
        return;
      }
      const a = this.book.latest(id);
      if (a) out.push(a);
    };
    for (const u of p.gossip) add(u);
    if (p.body.kind === SWIM_PUSH_PULL) for (const u of p.body.push_pull.states) add(u);
    return out;
  }

  // ---- in ----

  private onDatagram(envelope: Uint8Array, ctx: CallContext): void {
    if (this.stopped) return;
    this.incoming(envelope, formatAddr(plainHost(ctx.remoteAddress), ctx.remotePort));
  }

  private onExchange(args: gossip_exchange_args, ctx: CallContext): Uint8Array {
    if (this.stopped) return EMPTY;
    let claimed: string;
    try {
      claimed = plainHost(parseAddr(args.addr).host);
    } catch {
      this.rejects.note(
        'bad-address',
        `exchange from ${ctx.remoteAddress} claims '${args.addr}'`,
        ctx.remoteAddress,
      );
      return EMPTY;
    }
    if (claimed !== plainHost(ctx.remoteAddress)) {
      this.rejects.note(
        'source-mismatch',
        `exchange from ${ctx.remoteAddress} claims ${args.addr}`,
        ctx.remoteAddress,
      );
      return EMPTY;
    }
    const slot = { to: args.addr, reply: undefined as Uint8Array | undefined };
    this.capture = slot;
    try {
      this.incoming(args.envelope, args.addr);
    } finally {
      this.capture = undefined;
    }
    return slot.reply ?? EMPTY;
  }

  /** One sealed envelope from `source` (the sender's membership address, as far as the network says). */
  private incoming(bytes: Uint8Array, source: string): void {
    const opened = this.opener.open(bytes, source);
    if (!opened.ok) {
      this.rejects.note(opened.reason, opened.error.message, source);
      return;
    }
    let packet: swim_packet;
    let assertions: gossip_assertion[];
    try {
      const frame = decodeAll(decode_gossip_frame, opened.payload);
      if (frame.addr !== source) {
        this.rejects.note('source-mismatch', `${opened.sender} says it is at ${frame.addr}`, source);
        return;
      }
      packet = decodePacket(frame.packet);
      assertions = frame.assertions;
    } catch (e) {
      this.rejects.note(
        'malformed',
        `authenticated payload does not decode: ${(e as Error).message}`,
        source,
      );
      return;
    }
    if (idHex(packet.from) !== opened.sender) {
      this.rejects.note(
        'sender-mismatch',
        `${opened.sender} relays a packet of ${idHex(packet.from)}`,
        source,
      );
      return;
    }
    const swim = this.swim;
    for (const a of assertions) {
      const id = idHex(a.claim.id);
      const taken = this.owners.get(a.claim.addr);
      if (taken !== undefined && taken !== id && this.isLive(taken)) {
        this.rejects.note('address-in-use', `${id} claims ${a.claim.addr}, which ${taken} holds`, source);
        continue;
      }
      const r = this.book.admit(a, swim.stateOf(a.claim.id) !== undefined);
      if (!r.ok) {
        this.rejects.note(r.reason, r.detail, source);
        continue;
      }
      if (id !== this.identity.nodeIdHex) {
        const latest = this.book.latest(id);
        if (latest) this.owners.set(latest.claim.addr, id);
      }
    }
    const filtered = this.filter(packet, source);
    try {
      swim.receive(source, filtered);
    } catch (e) {
      this.log.error({ err: e, source }, 'membership core failed on a packet');
    }
    this.arm();
  }

  private filter(p: swim_packet, source: string): swim_packet {
    const gossip = this.filterUpdates(p.gossip, source);
    let body = p.body;
    if (body.kind === SWIM_PUSH_PULL) {
      const states = this.filterUpdates(body.push_pull.states, source);
      if (states !== body.push_pull.states)
        body = { kind: SWIM_PUSH_PULL, push_pull: { ...body.push_pull, states } };
    }
    return gossip === p.gossip && body === p.body ? p : { from: p.from, body, gossip };
  }

  private filterUpdates(updates: swim_update[], source: string): swim_update[] {
    let out: swim_update[] | undefined;
    for (let i = 0; i < updates.length; i++) {
      const u = updates[i];
      const why = this.judge(u);
      if (why === undefined) {
        out?.push(u);
        continue;
      }
      out ??= updates.slice(0, i);
      if (why !== 'stale') {
        this.rejects.note(
          why,
          `${stateName(u.state)} of ${idHex(u.id)} at incarnation ${u.incarnation}`,
          source,
        );
      }
    }
    return out ?? updates;
  }

  /** Why an update must not reach the core, or undefined when it may. */
  private judge(u: swim_update): string | undefined {
    const swim = this.swim;
    const id = idHex(u.id);
    if (id === this.identity.nodeIdHex) {
      // About ourselves: the core refutes what is at or above our incarnation. An incarnation we
      // never reached would make it jump there (and wrap at 2^32): only ours, signed, may.
      const max = this.book.ownMaxIncarnation(swim.selfIncarnation);
      return u.incarnation <= max ? undefined : 'absurd-incarnation';
    }
    const max = this.book.maxIncarnation(id) ?? swim.incarnationOf(u.id);
    switch (u.state) {
      case SWIM_ALIVE:
      case SWIM_LEFT: {
        if (this.book.vouches(u)) return undefined;
        const latest = this.book.latest(id);
        if (latest && (u.incarnation < latest.claim.incarnation || latest.claim.state === SWIM_LEFT))
          return 'stale';
        return 'unsigned-claim';
      }
      case SWIM_SUSPECT:
      case SWIM_DEAD:
        if (max === undefined) return u.state === SWIM_SUSPECT ? 'unknown-member' : 'stale';
        return u.incarnation > max ? 'absurd-incarnation' : undefined;
      default:
        return 'malformed';
    }
  }

  private isLive(idHexStr: string): boolean {
    const st = this.swimCore?.stateOf(Buffer.from(idHexStr, 'hex'));
    return st === 'alive' || st === 'suspect';
  }

  /** The address a live member is bound to (what auth.ts's source check compares with). */
  private boundAddress(sender: string): string | undefined {
    const a = this.book.latest(sender);
    if (!a || !this.isLive(sender)) return undefined;
    return a.claim.addr;
  }

  private addressOwner(source: string): string | undefined {
    const id = this.owners.get(source);
    return id !== undefined && this.isLive(id) ? id : undefined;
  }

  // ---- status ----

  private onStatus(token: string, ctx: CallContext): gossip_status_reply {
    const configured = this.opts.adminToken;
    const local = isLoopbackAddress(ctx.remoteAddress);
    if (!local && !tokenMatches(token, configured)) {
      return { ok: 0, error: 'status is served to loopback callers, or with the admin token' };
    }
    const s = this.status();
    const wire: gossip_status = {
      self: s.self,
      addr: s.addr,
      incarnation: s.incarnation,
      health: s.health,
      replicas: s.replicas,
      layout_members: s.layoutMembers,
      probes: BigInt(s.counters.probes),
      probes_failed: BigInt(s.counters.probesFailed),
      suspicions: BigInt(s.counters.suspicions),
      refutations: BigInt(s.counters.refutations),
      packets_sent: BigInt(s.counters.packetsSent),
      packets_received: BigInt(s.counters.packetsReceived),
      members: s.members.slice(0, 65536).map((m) => ({
        id: m.id,
        addr: m.addr,
        state: m.state,
        incarnation: m.incarnation,
        health: m.health,
        since_ms: m.sinceMs,
        rpcbind_port: m.rpcbindPort,
        nfs_port: m.nfsPort,
        weight: m.weight,
        zone: m.zone.slice(0, 64),
        primary_share: m.primaryShare,
        replica_share: m.replicaShare,
      })),
      rejected: Object.entries(s.rejected)
        .slice(0, 64)
        .map(([reason, count]) => ({ reason, count: BigInt(count) })),
    };
    return { ok: 1, status: wire };
  }

  /** This node's view: members, states, health, and ring ownership under the layout of live members. */
  status(): GossipStatus {
    const swim = this.swim;
    const now = this.clock.monoMs();
    const views = swim.members();
    const live = views.filter((v) => v.state === 'alive' || v.state === 'suspect');
    const ring = this.ringOf(live);
    const r = Math.max(1, Math.min(this.replicas, ring?.nodeIds.length ?? 1));
    const primary = ring?.ownership(1);
    const replica = ring?.ownership(r);
    const members = views
      .map((v: MemberView): MemberStatus => {
        const id = idHex(v.id);
        const meta = decodeMeta(v.meta);
        return {
          id,
          addr: v.addr,
          state: v.state,
          incarnation: v.incarnation,
          health: v.health,
          sinceMs: Math.max(0, Math.round(now - v.since)),
          rpcbindPort: meta?.rpcbind_port ?? 0,
          nfsPort: meta?.nfs_port ?? 0,
          weight: meta?.weight ?? 1,
          zone: meta?.zone ?? '',
          primaryShare: primary?.get(id) ?? 0,
          replicaShare: replica?.get(id) ?? 0,
        };
      })
      .sort((a, b) => (a.addr < b.addr ? -1 : a.addr > b.addr ? 1 : a.id < b.id ? -1 : 1));
    const c = swim.counters;
    return {
      self: this.identity.nodeIdHex,
      addr: this.advertised,
      incarnation: swim.selfIncarnation,
      health: swim.localHealth,
      replicas: r,
      layoutMembers: ring?.nodeIds.length ?? 0,
      counters: {
        probes: c.probes,
        probesFailed: c.probesFailed,
        suspicions: c.suspicions,
        refutations: c.refutations,
        packetsSent: c.packetsSent,
        packetsReceived: c.packetsReceived,
      },
      members,
      rejected: Object.fromEntries(this.rejects.counts),
    };
  }

  private ringOf(live: MemberView[]): Ring | undefined {
    const nodes = live
      .map((v) => {
        const meta = decodeMeta(v.meta);
        const zone = meta?.zone ? meta.zone : undefined;
        return { id: idHex(v.id), weight: Math.min(1000, meta?.weight ?? 1), zone };
      })
      .sort((a, b) => (a.id < b.id ? -1 : 1));
    const key = nodes.map((n) => `${n.id}/${n.weight}/${n.zone ?? ''}`).join(',');
    if (this.ringCache?.key === key) return this.ringCache.ring;
    if (nodes.every((n) => n.weight === 0)) return undefined;
    try {
      const ring = new Ring({ version: 0, nodes });
      this.ringCache = { key, ring };
      return ring;
    } catch (e) {
      this.log.warn({ err: e }, 'cannot place the live members on a ring');
      return undefined;
    }
  }
}

/** Compares in constant time (for equal lengths); no configured token admits nobody. */
function tokenMatches(given: string, configured: string | undefined): boolean {
  if (configured === undefined || configured.length === 0) return false;
  const a = Buffer.from(given, 'utf8');
  const b = Buffer.from(configured, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}

function stateName(s: number): string {
  return ['alive', 'suspect', 'dead', 'left'][s] ?? `state ${s}`;
}
