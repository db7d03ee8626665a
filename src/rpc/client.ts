import { XdrReader, XdrWriter } from '../xdr/index.js';
import { type ClientCredential, encodeCredential, NULL_AUTH } from './auth.js';
import {
  RpcAbortedError,
  RpcAuthError,
  RpcClosedError,
  RpcGarbageArgsError,
  RpcProcedureUnavailableError,
  RpcProgramMismatchError,
  RpcProgramUnavailableError,
  RpcProtocolError,
  RpcSystemError,
  RpcTimeoutError,
  RpcVersionMismatchError,
} from './errors.js';
import {
  CALL,
  decode_rpc_msg,
  encode_rpc_msg,
  GARBAGE_ARGS,
  MSG_ACCEPTED,
  type opaque_auth,
  PROC_UNAVAIL,
  PROG_MISMATCH,
  PROG_UNAVAIL,
  REPLY,
  RPC_MISMATCH,
  SUCCESS,
} from './gen/rpc_msg.js';
import { type ClientInterceptor, compose, type OutgoingCall } from './interceptors.js';
import { PendingTable } from './pending.js';
import { SlabWriter } from './slab.js';
import type { CallOptions, ProcedureDefinition, RpcCaller } from './stub.js';

export interface RpcClientOptions {
  /** Default per-call timeout in milliseconds. */
  timeoutMs?: number;
  credential?: ClientCredential;
  interceptors?: readonly ClientInterceptor[];
  /** Calls sent and unanswered at once; further calls wait their turn. */
  maxInFlight?: number;
}

/** A call waiting for its reply. */
export class PendingCall {
  resolve: (v: unknown) => void = noop;
  reject: (e: Error) => void = noop;
  /** Transmissions so far (UDP retransmission, TCP resend after reconnect). */
  transmissions = 0;
  /** performance.now() of the last transmission. */
  sentAt = 0;
  /** performance.now() past which the call fails with RPC_TIMEOUT. */
  deadline: number;
  /** performance.now() at which the transport wants `retry` called (UDP); Infinity if never. */
  retryAt = Number.POSITIVE_INFINITY;
  abortCleanup: (() => void) | null = null;

  constructor(
    readonly xid: number,
    readonly program: number,
    readonly proc: number,
    /** The encoded call, first 4 bytes reserved for a record mark; kept for retransmission. */
    readonly message: Buffer[],
    readonly decode: (r: XdrReader) => unknown,
    readonly timeoutMs: number,
    now: number,
  ) {
    this.deadline = now + timeoutMs;
  }
}

function noop(): void {}

let tickClock = -1;
const resetTickClock = () => {
  tickClock = -1;
};

/**
 * performance.now() read once per turn of the event loop: the 64 calls a batch of replies sets
 * off share one reading (a reading costs as much as encoding a call). Deadlines are as precise
 * as Node's own timers, which count from the loop's cached time in the same way.
 */
function tickNow(): number {
  if (tickClock < 0) {
    tickClock = performance.now();
    // Not queueMicrotask: Node wraps each one in an AsyncResource, which costs more than the read.
    void RESOLVED.then(resetTickClock);
  }
  return tickClock;
}

const RESOLVED = Promise.resolve();

interface HeaderTemplate {
  readonly program: number;
  readonly version: number;
  readonly cred: opaque_auth;
  readonly bytes: Uint8Array;
  readonly next: HeaderTemplate | undefined;
}

const RESERVED = 4;
const NO_VERIFIER = NULL_AUTH;
const NO_OPTIONS: CallOptions = Object.freeze({});
const MAX_HEADERS_PER_PROCEDURE = 8;

/**
 * The transport-independent part of an ONC RPC client: XIDs, encoding, matching replies to
 * calls, deadlines, aborts, interceptors and a bound on calls in flight. Subclasses move bytes.
 */
export abstract class RpcClient implements RpcCaller {
  protected readonly pending = new PendingTable<PendingCall>();
  private readonly waiting: (() => void)[] = [];
  /**
   * One timer per client serves every call's deadline and the transport's retransmissions: it is
   * armed for the earliest of them and, when it fires, sweeps the table. Calls issued with the
   * same timeout never move it, so the common call costs no timer work at all.
   */
  #timer: NodeJS.Timeout | null = null;
  /** When the armed timer fires (performance.now() scale); Infinity when none is armed. */
  #timerAt = Number.POSITIVE_INFINITY;
  /** The timer holds the process open only while calls are pending, as their own timers did. */
  #timerRefed = false;
  readonly #onTimer = () => this.#sweep();
  readonly #direct: boolean;
  readonly #slab = new SlabWriter();
  readonly #headers = new WeakMap<ProcedureDefinition, HeaderTemplate>();
  private nextXid = (Math.random() * 0x100000000) >>> 0;
  private readonly credential: opaque_auth;
  private readonly credentialCache = new WeakMap<ClientCredential, opaque_auth>();
  private readonly invoke: (call: OutgoingCall) => Promise<unknown>;
  protected closed = false;
  readonly timeoutMs: number;
  readonly maxInFlight: number;

  constructor(options: RpcClientOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.maxInFlight = options.maxInFlight ?? 1024;
    this.credential = encodeCredential(options.credential ?? { flavor: 0 });
    const terminal = (call: OutgoingCall) => this.#send(call);
    const ics = options.interceptors ?? [];
    this.invoke = ics.length === 0 ? terminal : compose<OutgoingCall, Promise<unknown>>(ics, terminal);
    this.#direct = ics.length === 0;
  }

  call<A, R>(
    program: number,
    version: number,
    procedure: ProcedureDefinition<A, R>,
    args: A,
    options: CallOptions = NO_OPTIONS,
  ): Promise<R> {
    // Without interceptors there is no call object to build.
    if (this.#direct) {
      return this.#start(program, version, procedure as ProcedureDefinition, args, options) as Promise<R>;
    }
    return this.invoke({
      program,
      version,
      procedure: procedure as ProcedureDefinition,
      args,
      options,
    }) as Promise<R>;
  }

  /** Sends a call that expects no reply (the server registered it as one-way). */
  async oneWay<A>(
    program: number,
    version: number,
    procedure: ProcedureDefinition<A, unknown>,
    args: A,
  ): Promise<void> {
    if (this.closed) throw new RpcClosedError();
    const message = this.encode(
      this.allocateXid(),
      program,
      version,
      procedure as ProcedureDefinition,
      args,
      {},
    );
    await this.transmitOneWay(message);
  }

  /** Number of calls awaiting a reply. */
  get inFlight(): number {
    return this.pending.size;
  }

  private allocateXid(): number {
    let xid: number;
    do {
      xid = this.nextXid;
      this.nextXid = (this.nextXid + 1) >>> 0;
    } while (!this.pending.free(xid));
    return xid;
  }

  private credentialFor(options: CallOptions): opaque_auth {
    const c = options.credential;
    if (c === undefined) return this.credential;
    let enc = this.credentialCache.get(c);
    if (enc === undefined) {
      enc = encodeCredential(c);
      this.credentialCache.set(c, enc);
    }
    return enc;
  }

  private encode(
    xid: number,
    program: number,
    version: number,
    procedure: ProcedureDefinition,
    args: unknown,
    options: CallOptions,
  ): Buffer[] {
    const header = this.#headerFor(program, version, procedure, this.credentialFor(options));
    const w = this.#slab.begin();
    try {
      const at = w.skip(RESERVED + 4 + header.length);
      const b = w.buf;
      b[at + 4] = xid >>> 24;
      b[at + 5] = xid >>> 16;
      b[at + 6] = xid >>> 8;
      b[at + 7] = xid;
      b.set(header, at + 8);
      procedure.encodeArgs(w, args);
    } catch (e) {
      this.#slab.abort(w);
      throw e;
    }
    return this.#slab.finish(w);
  }

  /**
   * Everything of a call header after the XID (message type, RPC version, program, version,
   * procedure, credential, verifier) is the same on every call of one procedure with one
   * credential: it is encoded once and copied in.
   */
  #headerFor(
    program: number,
    version: number,
    procedure: ProcedureDefinition,
    cred: opaque_auth,
  ): Uint8Array {
    let h = this.#headers.get(procedure);
    let depth = 0;
    for (let t = h; t !== undefined; t = t.next, depth++) {
      if (t.program === program && t.version === version && t.cred === cred) return t.bytes;
    }
    // A caller that builds a new credential object for every call would grow the list forever.
    if (depth >= MAX_HEADERS_PER_PROCEDURE) h = undefined;
    const w = new XdrWriter(64);
    encode_rpc_msg(w, {
      xid: 0,
      body: {
        mtype: CALL,
        cbody: { rpcvers: 2, prog: program, vers: version, proc: procedure.proc, cred, verf: NO_VERIFIER },
      },
    });
    h = { program, version, cred, bytes: Buffer.from(w.finish().subarray(4)), next: h };
    this.#headers.set(procedure, h);
    return h.bytes;
  }

  #send(call: OutgoingCall): Promise<unknown> {
    return this.#start(call.program, call.version, call.procedure, call.args, call.options);
  }

  #start(
    program: number,
    version: number,
    procedure: ProcedureDefinition,
    args: unknown,
    options: CallOptions,
  ): Promise<unknown> {
    if (this.closed) return Promise.reject(new RpcClosedError());
    if (options.signal?.aborted) {
      return Promise.reject(new RpcAbortedError({ cause: options.signal.reason }));
    }
    if (this.pending.size >= this.maxInFlight) {
      return new Promise<void>((resolve) => this.waiting.push(resolve)).then(() =>
        this.#begin(program, version, procedure, args, options),
      );
    }
    return this.#begin(program, version, procedure, args, options);
  }

  #begin(
    program: number,
    version: number,
    procedure: ProcedureDefinition,
    args: unknown,
    options: CallOptions,
  ): Promise<unknown> {
    if (this.closed) return Promise.reject(new RpcClosedError());
    const xid = this.allocateXid();
    let message: Buffer[];
    try {
      message = this.encode(xid, program, version, procedure, args, options);
    } catch (e) {
      return Promise.reject(e);
    }
    const now = tickNow();
    const p = new PendingCall(
      xid,
      program,
      procedure.proc,
      message,
      procedure.decodeResult,
      options.timeoutMs ?? this.timeoutMs,
      now,
    );
    const promise = new Promise<unknown>((resolve, reject) => {
      p.resolve = resolve;
      p.reject = reject;
    });
    const signal = options.signal;
    if (signal) {
      const onAbort = () => this.fail(p, new RpcAbortedError({ cause: signal.reason }));
      signal.addEventListener('abort', onAbort, { once: true });
      p.abortCleanup = () => signal.removeEventListener('abort', onAbort);
    }
    this.pending.add(p);
    if (!this.#timerRefed) {
      this.#timerRefed = true;
      this.#timer?.ref();
    }
    this.wakeAt(p.deadline);
    this.transmit(p);
    return promise;
  }

  /** Makes sure the timer fires no later than `at`; transports call it for retransmissions. */
  protected wakeAt(at: number): void {
    if (at >= this.#timerAt) return;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(this.#onTimer, Math.max(1, Math.ceil(at - performance.now())));
    if (!this.#timerRefed) this.#timer.unref();
  }

  /** Fails calls past their deadline, retries those the transport asked for, re-arms. */
  #sweep(): void {
    this.#timer = null;
    this.#timerAt = Number.POSITIVE_INFINITY;
    const now = performance.now();
    let next = Number.POSITIVE_INFINITY;
    for (const p of this.pending.values()) {
      if (p.deadline <= now) {
        this.fail(p, new RpcTimeoutError(p.timeoutMs));
        continue;
      }
      if (p.retryAt <= now) this.retry(p, now);
      if (this.pending.get(p.xid) !== p) continue;
      if (p.deadline < next) next = p.deadline;
      if (p.retryAt < next) next = p.retryAt;
    }
    if (next !== Number.POSITIVE_INFINITY) this.wakeAt(next);
  }

  /** Called by the timer once `p.retryAt` has passed; the transport retransmits and moves it. */
  protected retry(p: PendingCall, _now: number): void {
    p.retryAt = Number.POSITIVE_INFINITY;
  }

  /** Ends a pending call with an error (timeout, abort, closed transport). */
  protected fail(p: PendingCall, e: Error): void {
    if (this.pending.get(p.xid) !== p) return;
    this.settle(p, false);
    p.reject(e);
  }

  private settle(p: PendingCall, replied: boolean): void {
    this.pending.delete(p);
    if (p.abortCleanup !== null) p.abortCleanup();
    if (this.pending.size === 0 && this.#timerRefed) {
      this.#timerRefed = false;
      this.#timer?.unref();
    }
    this.onSettled(p, replied);
    if (this.waiting.length > 0) this.waiting.shift()!();
  }

  /** Hook for transports (UDP clears its retransmission timer, records an RTT sample). */
  protected onSettled(_p: PendingCall, _replied: boolean): void {}

  /** Matches a reply record to its call. Unknown XIDs (late duplicates) are ignored. */
  protected handleReply(record: Buffer): void {
    // The common reply: accepted, an empty verifier of any flavor, SUCCESS. The results follow.
    if (
      record.length >= 24 &&
      word(record, 4) === REPLY &&
      word(record, 8) === MSG_ACCEPTED &&
      word(record, 16) === 0 &&
      word(record, 20) === SUCCESS
    ) {
      const p = this.pending.get(word(record, 0));
      if (p === undefined) return;
      this.settle(p, true);
      try {
        p.resolve(p.decode(new XdrReader(record, 24)));
      } catch (e) {
        p.reject(new RpcProtocolError('reply does not decode', { cause: e }));
      }
      return;
    }
    const r = new XdrReader(record);
    let msg: ReturnType<typeof decode_rpc_msg>;
    try {
      msg = decode_rpc_msg(r);
    } catch {
      return;
    }
    const p = this.pending.get(msg.xid);
    if (p === undefined || msg.body.mtype !== REPLY) return;
    this.settle(p, true);
    const body = msg.body.rbody;
    if (body.stat !== MSG_ACCEPTED) {
      const rr = body.rreply;
      p.reject(
        rr.stat === RPC_MISMATCH
          ? new RpcVersionMismatchError(rr.mismatch.low, rr.mismatch.high)
          : new RpcAuthError(rr.auth),
      );
      return;
    }
    const data = body.areply.reply_data;
    switch (data.stat) {
      case SUCCESS:
        try {
          p.resolve(p.decode(r));
        } catch (e) {
          p.reject(new RpcProtocolError('reply does not decode', { cause: e }));
        }
        return;
      case PROG_UNAVAIL:
        p.reject(new RpcProgramUnavailableError(p.program));
        return;
      case PROG_MISMATCH:
        p.reject(new RpcProgramMismatchError(p.program, data.mismatch.low, data.mismatch.high));
        return;
      case PROC_UNAVAIL:
        p.reject(new RpcProcedureUnavailableError(p.proc));
        return;
      case GARBAGE_ARGS:
        p.reject(new RpcGarbageArgsError());
        return;
      default:
        p.reject(new RpcSystemError());
    }
  }

  /** Fails every pending and waiting call; used on close. */
  protected failAll(e: Error): void {
    for (const p of this.pending.values()) this.fail(p, e);
    for (const w of this.waiting.splice(0)) w();
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#timerAt = Number.POSITIVE_INFINITY;
  }

  /** Sends (or queues until connected) one call; may be called again to retransmit. */
  protected abstract transmit(p: PendingCall): void;
  protected abstract transmitOneWay(message: Buffer[]): Promise<void>;
  abstract close(): Promise<void>;
}

function word(b: Buffer, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}
