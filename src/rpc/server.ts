import { componentLogger, type Logger } from '../log.js';
import { XdrError, XdrReader, XdrWriter } from '../xdr/index.js';
import { NULL_AUTH, parseCredential } from './auth.js';
import type { CallContext, Credential } from './context.js';
import { argumentDigest, DEFAULT_DRC_OPTIONS, type DrcOptions, DuplicateRequestCache } from './drc.js';
import {
  RpcAuthError,
  RpcError,
  RpcGarbageArgsError,
  RpcProcedureUnavailableError,
  RpcProgramMismatchError,
  RpcProgramUnavailableError,
  RpcSystemError,
} from './errors.js';
import {
  AUTH_ERROR,
  CALL,
  type call_body,
  decode_rpc_msg,
  encode_rpc_msg,
  GARBAGE_ARGS,
  MSG_ACCEPTED,
  MSG_DENIED,
  PROC_UNAVAIL,
  PROG_MISMATCH,
  PROG_UNAVAIL,
  REPLY,
  RPC_MISMATCH,
  type rpc_msg,
  SUCCESS,
  SYSTEM_ERR,
} from './gen/rpc_msg.js';
import { compose, type IncomingCall, type ServerInterceptor } from './interceptors.js';
import type { ProcedureDefinition, ProgramDefinition } from './stub.js';

/** Where a server transport delivers a call, and where the reply goes. */
export interface TransportInfo {
  readonly transport: 'tcp' | 'udp';
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localPort: number;
  readonly signal: AbortSignal;
}

/**
 * A reply sink receives the encoded reply; its first 4 bytes are reserved for the TCP record
 * mark. `null` means no reply is sent (a one-way call, a dropped message, a duplicate answered
 * elsewhere). Every dispatched record calls its sink exactly once.
 */
export type ReplySink = (reply: Buffer[] | null) => void;

export interface RegisterOptions {
  /** Procedures safe to run twice: they bypass the duplicate-request cache. */
  idempotent?: readonly string[];
  /** Procedures that never reply (one-way calls, as gossip uses). */
  oneWay?: readonly string[];
}

interface RegisteredProcedure {
  def: ProcedureDefinition;
  handler: (args: unknown, ctx: CallContext) => unknown;
  cached: boolean;
  oneWay: boolean;
}

interface RegisteredVersion {
  procedures: (RegisteredProcedure | undefined)[];
}

export interface RpcServerOptions {
  interceptors?: readonly ServerInterceptor[];
  drc?: Partial<DrcOptions> | false;
  logger?: Logger;
}

export interface ServerStats {
  calls: number;
  garbage: number;
  dropped: number;
  drcHits: number;
  systemErrors: number;
}

const RESERVED = 4;
const SUCCESS_DATA = { stat: SUCCESS } as const;

/**
 * The transport-independent core of an ONC RPC server: it takes one record, answers it through
 * the sink, and knows nothing of sockets, so TCP, UDP and tests all drive the same code.
 */
export class RpcServer {
  private readonly programs = new Map<number, Map<number, RegisteredVersion>>();
  private readonly drc: DuplicateRequestCache | null;
  private readonly run: (call: IncomingCall) => unknown;
  readonly log: Logger;
  readonly stats: ServerStats = { calls: 0, garbage: 0, dropped: 0, drcHits: 0, systemErrors: 0 };

  constructor(options: RpcServerOptions = {}) {
    this.drc =
      options.drc === false ? null : new DuplicateRequestCache({ ...DEFAULT_DRC_OPTIONS, ...options.drc });
    this.log = options.logger ?? componentLogger('rpc-server');
    const terminal = (call: IncomingCall) => {
      const reg = this.lookup(call.ctx.program, call.ctx.version, call.ctx.procedure);
      return reg.handler(call.args, call.ctx);
    };
    const interceptors = options.interceptors ?? [];
    this.run = interceptors.length === 0 ? terminal : compose<IncomingCall, unknown>(interceptors, terminal);
  }

  /** Serves one program version with a handler implementing its generated interface. */
  addProgram<H>(def: ProgramDefinition<H>, handler: H, options: RegisterOptions = {}): void {
    let versions = this.programs.get(def.program);
    if (!versions) {
      versions = new Map();
      this.programs.set(def.program, versions);
    }
    if (versions.has(def.version)) {
      throw new Error(`program ${def.programName} version ${def.version} is already registered`);
    }
    const idempotent = new Set(options.idempotent ?? []);
    const oneWay = new Set(options.oneWay ?? []);
    const procedures: (RegisteredProcedure | undefined)[] = [];
    for (const [name, p] of Object.entries(def.procedures)) {
      const fn = (handler as Record<string, unknown>)[name];
      if (typeof fn !== 'function') throw new Error(`handler for ${def.programName} lacks procedure ${name}`);
      procedures[p.proc] = {
        def: p,
        handler: (fn as (a: unknown, c: CallContext) => unknown).bind(handler),
        cached: this.drc !== null && !idempotent.has(name) && !oneWay.has(name) && p.proc !== 0,
        oneWay: oneWay.has(name),
      };
    }
    versions.set(def.version, { procedures });
  }

  removeProgram(program: number, version?: number): void {
    if (version === undefined) this.programs.delete(program);
    else this.programs.get(program)?.delete(version);
  }

  /** Registered (program, version) pairs, for rpcbind. */
  registered(): { program: number; version: number }[] {
    const out: { program: number; version: number }[] = [];
    for (const [program, versions] of this.programs)
      for (const version of versions.keys()) out.push({ program, version });
    return out;
  }

  get drcSize(): number {
    return this.drc?.size ?? 0;
  }

  private lookup(program: number, version: number, procedure: number): RegisteredProcedure {
    const versions = this.programs.get(program);
    if (!versions) throw new RpcProgramUnavailableError(program);
    const v = versions.get(version);
    if (!v) {
      const known = [...versions.keys()];
      throw new RpcProgramMismatchError(program, Math.min(...known), Math.max(...known));
    }
    const p = v.procedures[procedure];
    if (!p) throw new RpcProcedureUnavailableError(procedure);
    return p;
  }

  /** Handles one record. Never throws: every failure becomes a reply status or a drop. */
  dispatch(record: Buffer, info: TransportInfo, sink: ReplySink): void {
    const r = new XdrReader(record);
    let msg: rpc_msg;
    try {
      msg = decode_rpc_msg(r);
    } catch (e) {
      // Without a readable header there is no XID worth answering; the stream stays in sync.
      this.stats.garbage++;
      this.log.debug({ err: e, remote: info.remoteAddress }, 'dropped undecodable RPC message');
      sink(null);
      return;
    }
    if (msg.body.mtype !== CALL) {
      this.stats.dropped++;
      sink(null);
      return;
    }
    this.stats.calls++;
    const xid = msg.xid;
    const call = msg.body.cbody;
    if (call.rpcvers !== 2) {
      sink(this.denied(xid, { stat: RPC_MISMATCH, mismatch: { low: 2, high: 2 } }));
      return;
    }
    let reg: RegisteredProcedure;
    let credential: Credential;
    try {
      credential = parseCredential(call.cred);
      reg = this.lookup(call.prog, call.vers, call.proc);
    } catch (e) {
      sink(this.errorReply(xid, e));
      return;
    }
    const ctx: CallContext = {
      xid,
      program: call.prog,
      version: call.vers,
      procedure: call.proc,
      credential,
      transport: info.transport,
      remoteAddress: info.remoteAddress,
      remotePort: info.remotePort,
      localPort: info.localPort,
      signal: info.signal,
    };
    if (!reg.cached) {
      this.execute(reg, ctx, r, reg.oneWay ? ignoreReply(sink) : sink);
      return;
    }
    const key = drcKey(info, xid, call, argumentDigest(record, r.pos, record.length));
    const drc = this.drc!;
    const found = drc.begin(key, (reply) => sink(reply === null ? null : [reply]));
    if (found.kind === 'waiting') {
      this.stats.drcHits++;
      return;
    }
    if (found.kind === 'replay') {
      this.stats.drcHits++;
      sink(found.reply === null ? null : [found.reply]);
      return;
    }
    this.execute(reg, ctx, r, (reply) => {
      if (reply === null) drc.abandon(key);
      else drc.complete(key, reply.length === 1 ? reply[0] : Buffer.concat(reply));
      sink(reply);
    });
  }

  private execute(reg: RegisteredProcedure, ctx: CallContext, r: XdrReader, sink: ReplySink): void {
    let args: unknown;
    try {
      args = reg.def.decodeArgs(r);
    } catch (e) {
      this.stats.garbage++;
      this.log.debug({ err: e, xid: ctx.xid, proc: reg.def.name }, 'garbage arguments');
      sink(this.errorReply(ctx.xid, new RpcGarbageArgsError(e instanceof XdrError ? e.message : undefined)));
      return;
    }
    let result: unknown;
    try {
      result = this.run({ ctx, procedure: reg.def, args });
    } catch (e) {
      sink(this.errorReply(ctx.xid, e, reg.def.name));
      return;
    }
    if (result instanceof Promise) {
      result.then(
        (v) => sink(this.successReply(ctx.xid, reg.def, v)),
        (e) => sink(this.errorReply(ctx.xid, e, reg.def.name)),
      );
    } else {
      sink(this.successReply(ctx.xid, reg.def, result));
    }
  }

  private successReply(xid: number, def: ProcedureDefinition, result: unknown): Buffer[] {
    const w = new XdrWriter(512);
    w.skip(RESERVED);
    encode_rpc_msg(w, {
      xid,
      body: {
        mtype: REPLY,
        rbody: { stat: MSG_ACCEPTED, areply: { verf: NULL_AUTH, reply_data: SUCCESS_DATA } },
      },
    });
    try {
      def.encodeResult(w, result);
    } catch (e) {
      // The handler returned something its own result type cannot encode: a server bug.
      return this.errorReply(
        xid,
        new RpcSystemError(`result of ${def.name} does not encode`, { cause: e }),
        def.name,
      );
    }
    return w.finishChunks();
  }

  private errorReply(xid: number, e: unknown, procName?: string): Buffer[] {
    if (e instanceof RpcAuthError) return this.denied(xid, { stat: AUTH_ERROR, auth: e.stat as never });
    if (e instanceof RpcProgramMismatchError) {
      return this.accepted(xid, { stat: PROG_MISMATCH, mismatch: { low: e.low, high: e.high } });
    }
    if (e instanceof RpcProgramUnavailableError) return this.accepted(xid, { stat: PROG_UNAVAIL });
    if (e instanceof RpcProcedureUnavailableError) return this.accepted(xid, { stat: PROC_UNAVAIL });
    if (e instanceof RpcGarbageArgsError) return this.accepted(xid, { stat: GARBAGE_ARGS });
    this.stats.systemErrors++;
    if (!(e instanceof RpcError) || e.cause !== undefined) {
      this.log.error({ err: e, xid, proc: procName }, 'handler failed; replying SYSTEM_ERR');
    }
    return this.accepted(xid, { stat: SYSTEM_ERR });
  }

  private accepted(xid: number, data: { stat: number; mismatch?: { low: number; high: number } }): Buffer[] {
    const w = new XdrWriter(64);
    w.skip(RESERVED);
    encode_rpc_msg(w, {
      xid,
      body: {
        mtype: REPLY,
        rbody: { stat: MSG_ACCEPTED, areply: { verf: NULL_AUTH, reply_data: data as never } },
      },
    });
    return w.finishChunks();
  }

  private denied(xid: number, rreply: { stat: number; mismatch?: unknown; auth?: unknown }): Buffer[] {
    const w = new XdrWriter(64);
    w.skip(RESERVED);
    encode_rpc_msg(w, { xid, body: { mtype: REPLY, rbody: { stat: MSG_DENIED, rreply: rreply as never } } });
    return w.finishChunks();
  }
}

function ignoreReply(sink: ReplySink): ReplySink {
  return () => sink(null);
}

/**
 * Keys the cache by client host (not port: a reconnecting client gets a new one), XID, program,
 * version, procedure and a digest of the arguments.
 */
function drcKey(info: TransportInfo, xid: number, call: call_body, digest: number): string {
  return `${info.transport}|${info.remoteAddress}|${xid}|${call.prog}|${call.vers}|${call.proc}|${digest}`;
}
