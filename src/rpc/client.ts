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
export interface PendingCall {
  xid: number;
  program: number;
  proc: number;
  /** The encoded call, first 4 bytes reserved for a record mark; kept for retransmission. */
  message: Buffer[];
  decode: (r: XdrReader) => unknown;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout | null;
  /** Transmissions so far (UDP retransmission, TCP resend after reconnect). */
  transmissions: number;
  sentAt: number;
  abortCleanup: (() => void) | null;
}

const RESERVED = 4;
const NO_VERIFIER = NULL_AUTH;

/**
 * The transport-independent part of an ONC RPC client: XIDs, encoding, matching replies to
 * calls, deadlines, aborts, interceptors and a bound on calls in flight. Subclasses move bytes.
 */
export abstract class RpcClient implements RpcCaller {
  protected readonly pending = new Map<number, PendingCall>();
  private readonly waiting: (() => void)[] = [];
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
    const terminal = (call: OutgoingCall) => this.send(call);
    const ics = options.interceptors ?? [];
    this.invoke = ics.length === 0 ? terminal : compose<OutgoingCall, Promise<unknown>>(ics, terminal);
  }

  call<A, R>(
    program: number,
    version: number,
    procedure: ProcedureDefinition<A, R>,
    args: A,
    options: CallOptions = {},
  ): Promise<R> {
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
    } while (this.pending.has(xid));
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
    const w = new XdrWriter(256);
    w.skip(RESERVED);
    encode_rpc_msg(w, {
      xid,
      body: {
        mtype: CALL,
        cbody: {
          rpcvers: 2,
          prog: program,
          vers: version,
          proc: procedure.proc,
          cred: this.credentialFor(options),
          verf: NO_VERIFIER,
        },
      },
    });
    procedure.encodeArgs(w, args);
    return w.finishChunks();
  }

  private async send(call: OutgoingCall): Promise<unknown> {
    if (this.closed) throw new RpcClosedError();
    const { options } = call;
    if (options.signal?.aborted) throw new RpcAbortedError({ cause: options.signal.reason });
    if (this.pending.size >= this.maxInFlight) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
      if (this.closed) throw new RpcClosedError();
    }
    const xid = this.allocateXid();
    const message = this.encode(xid, call.program, call.version, call.procedure, call.args, options);
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    return new Promise<unknown>((resolve, reject) => {
      const p: PendingCall = {
        xid,
        program: call.program,
        proc: call.procedure.proc,
        message,
        decode: call.procedure.decodeResult,
        resolve,
        reject,
        timer: null,
        transmissions: 0,
        sentAt: 0,
        abortCleanup: null,
      };
      p.timer = setTimeout(() => this.fail(p, new RpcTimeoutError(timeoutMs)), timeoutMs);
      const signal = options.signal;
      if (signal) {
        const onAbort = () => this.fail(p, new RpcAbortedError({ cause: signal.reason }));
        signal.addEventListener('abort', onAbort, { once: true });
        p.abortCleanup = () => signal.removeEventListener('abort', onAbort);
      }
      this.pending.set(xid, p);
      this.transmit(p);
    });
  }

  /** Ends a pending call with an error (timeout, abort, closed transport). */
  protected fail(p: PendingCall, e: Error): void {
    if (this.pending.get(p.xid) !== p) return;
    this.settle(p, false);
    p.reject(e);
  }

  private settle(p: PendingCall, replied: boolean): void {
    this.pending.delete(p.xid);
    if (p.timer) clearTimeout(p.timer);
    p.abortCleanup?.();
    this.onSettled(p, replied);
    const next = this.waiting.shift();
    if (next) next();
  }

  /** Hook for transports (UDP clears its retransmission timer, records an RTT sample). */
  protected onSettled(_p: PendingCall, _replied: boolean): void {}

  /** Matches a reply record to its call. Unknown XIDs (late duplicates) are ignored. */
  protected handleReply(record: Buffer): void {
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
    for (const p of [...this.pending.values()]) this.fail(p, e);
    for (const w of this.waiting.splice(0)) w();
  }

  /** Sends (or queues until connected) one call; may be called again to retransmit. */
  protected abstract transmit(p: PendingCall): void;
  protected abstract transmitOneWay(message: Buffer[]): Promise<void>;
  abstract close(): Promise<void>;
}
