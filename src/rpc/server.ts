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
  AUTH_NONE,
  CALL,
  decode_rpc_msg,
  encode_rpc_msg,
  GARBAGE_ARGS,
  MSG_ACCEPTED,
  MSG_DENIED,
  type opaque_auth,
  PROC_UNAVAIL,
  PROG_MISMATCH,
  PROG_UNAVAIL,
  REPLY,
  RPC_MISMATCH,
  SUCCESS,
  SYSTEM_ERR,
} from './gen/rpc_msg.js';
import { compose, type IncomingCall, type ServerInterceptor } from './interceptors.js';
import { SlabWriter } from './slab.js';
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
 * elsewhere). Every dispatched record calls its sink exactly once. `recordFree`: nothing refers
 * to the record any more except the reply itself (the procedure is registered `transientArgs`),
 * so a transport may reuse its memory once the reply is written. `written`: the transport calls
 * it once it no longer refers to the reply's buffers (at once for no reply; never if the write
 * fails), which releases memory the handler lent the reply (CallContext.lend).
 */
export type ReplySink = (reply: Buffer[] | null, recordFree?: boolean, written?: () => void) => void;

export interface RegisterOptions {
  /** Procedures safe to run twice: they bypass the duplicate-request cache. */
  idempotent?: readonly string[];
  /** Procedures that never reply (one-way calls, as gossip uses). */
  oneWay?: readonly string[];
  /**
   * Procedures whose handlers (and interceptors) keep nothing of their arguments, and have
   * nothing still reading them, once they have answered: the transport may then reuse the
   * record's memory (opaques are decoded as views of it) as soon as the reply is written.
   */
  transientArgs?: readonly string[];
}

interface RegisteredProcedure {
  def: ProcedureDefinition;
  handler: (args: unknown, ctx: CallContext) => unknown;
  cached: boolean;
  oneWay: boolean;
  transient: boolean;
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
/** RFC 5531: a credential or verifier body is at most 400 bytes. */
const MAX_AUTH_BYTES = 400;

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
  private readonly slab = new SlabWriter();
  private readonly direct: boolean;

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
    this.direct = interceptors.length === 0;
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
    const transient = new Set(options.transientArgs ?? []);
    const procedures: (RegisteredProcedure | undefined)[] = [];
    for (const [name, p] of Object.entries(def.procedures)) {
      const fn = (handler as Record<string, unknown>)[name];
      if (typeof fn !== 'function') throw new Error(`handler for ${def.programName} lacks procedure ${name}`);
      procedures[p.proc] = {
        def: p,
        handler: (fn as (a: unknown, c: CallContext) => unknown).bind(handler),
        cached: this.drc !== null && !idempotent.has(name) && !oneWay.has(name) && p.proc !== 0,
        oneWay: oneWay.has(name),
        transient: transient.has(name),
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
    let xid = 0;
    let mtype = CALL;
    let rpcvers = 0;
    let prog = 0;
    let vers = 0;
    let proc = 0;
    let cred: opaque_auth = NULL_AUTH;
    try {
      // The call header read field by field (the generated decoder builds a tree of objects and
      // a fresh empty buffer per empty credential and verifier, for every call).
      xid = r.readUint();
      mtype = r.readInt();
      if (mtype === CALL) {
        rpcvers = r.readUint();
        prog = r.readUint();
        vers = r.readUint();
        proc = r.readUint();
        cred = readAuth(r);
        readAuth(r);
      }
    } catch (e) {
      // Without a readable header there is no XID worth answering; the stream stays in sync.
      this.stats.garbage++;
      this.log.debug({ err: e, remote: info.remoteAddress }, 'dropped undecodable RPC message');
      sink(null);
      return;
    }
    if (mtype !== CALL) {
      this.dispatchOther(record, info, sink);
      return;
    }
    this.stats.calls++;
    if (rpcvers !== 2) {
      sink(this.denied(xid, { stat: RPC_MISMATCH, mismatch: { low: 2, high: 2 } }));
      return;
    }
    let reg: RegisteredProcedure;
    let credential: Credential;
    try {
      credential = parseCredential(cred);
      reg = this.lookup(prog, vers, proc);
    } catch (e) {
      sink(this.errorReply(xid, e));
      return;
    }
    let lent: (() => void)[] | undefined;
    const ctx: CallContext = {
      lend: (release) => {
        if (lent) lent.push(release);
        else lent = [release];
      },
      xid,
      program: prog,
      version: vers,
      procedure: proc,
      credential,
      transport: info.transport,
      remoteAddress: info.remoteAddress,
      remotePort: info.remotePort,
      localPort: info.localPort,
      signal: info.signal,
    };
    const releaseLent = () => {
      for (const f of lent ?? []) f();
    };
    const out: ReplySink = (reply, free) => sink(reply, free, lent && releaseLent);
    if (!reg.cached) {
      this.execute(reg, ctx, r, reg.oneWay ? ignoreReply(out) : out);
      return;
    }
    const key = drcKey(info, xid, prog, vers, proc, argumentDigest(record, r.pos, record.length));
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
    this.execute(reg, ctx, r, (reply, recordFree) => {
      if (reply === null) drc.abandon(key);
      else drc.complete(key, reply.length === 1 ? reply[0] : Buffer.concat(reply));
      out(reply, recordFree);
    });
  }

  /** A message that is not a call: a reply sent the wrong way, or not RPC at all. */
  private dispatchOther(record: Buffer, info: TransportInfo, sink: ReplySink): void {
    try {
      decode_rpc_msg(new XdrReader(record));
    } catch (e) {
      this.stats.garbage++;
      this.log.debug({ err: e, remote: info.remoteAddress }, 'dropped undecodable RPC message');
      sink(null);
      return;
    }
    this.stats.dropped++;
    sink(null);
  }

  private execute(reg: RegisteredProcedure, ctx: CallContext, r: XdrReader, sink: ReplySink): void {
    const free = reg.transient;
    let args: unknown;
    try {
      args = reg.def.decodeArgs(r);
    } catch (e) {
      this.stats.garbage++;
      this.log.debug({ err: e, xid: ctx.xid, proc: reg.def.name }, 'garbage arguments');
      sink(
        this.errorReply(ctx.xid, new RpcGarbageArgsError(e instanceof XdrError ? e.message : undefined)),
        free,
      );
      return;
    }
    let result: unknown;
    try {
      // Without interceptors the handler is called as is: no call object, no second lookup.
      result = this.direct ? reg.handler(args, ctx) : this.run({ ctx, procedure: reg.def, args });
    } catch (e) {
      sink(this.errorReply(ctx.xid, e, reg.def.name), free);
      return;
    }
    if (result instanceof Promise) {
      result.then(
        (v) => sink(this.successReply(ctx.xid, reg.def, v), free),
        (e) => sink(this.errorReply(ctx.xid, e, reg.def.name), free),
      );
    } else {
      sink(this.successReply(ctx.xid, reg.def, result), free);
    }
  }

  private successReply(xid: number, def: ProcedureDefinition, result: unknown): Buffer[] {
    const w = this.slab.begin();
    try {
      const at = w.skip(RESERVED + 4 + SUCCESS_HEADER.length);
      const b = w.buf;
      b[at + 4] = xid >>> 24;
      b[at + 5] = xid >>> 16;
      b[at + 6] = xid >>> 8;
      b[at + 7] = xid;
      b.set(SUCCESS_HEADER, at + 8);
      def.encodeResult(w, result);
    } catch (e) {
      this.slab.abort(w);
      // The handler returned something its own result type cannot encode: a server bug.
      return this.errorReply(
        xid,
        new RpcSystemError(`result of ${def.name} does not encode`, { cause: e }),
        def.name,
      );
    }
    return this.slab.finish(w);
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
function drcKey(
  info: TransportInfo,
  xid: number,
  prog: number,
  vers: number,
  proc: number,
  digest: number,
): string {
  return `${info.transport}|${info.remoteAddress}|${xid}|${prog}|${vers}|${proc}|${digest}`;
}

const EMPTY_OPAQUE: Uint8Array = new Uint8Array(0);

/** An opaque_auth as decode_opaque_auth reads it, sharing one empty body among all empty ones. */
function readAuth(r: XdrReader): opaque_auth {
  const flavor = r.readUint();
  const len = r.readLength(MAX_AUTH_BYTES, 1);
  if (len === 0) return flavor === AUTH_NONE ? NULL_AUTH : { flavor, body: EMPTY_OPAQUE };
  return { flavor, body: r.readFixedOpaque(len) };
}

/** After the XID: REPLY, MSG_ACCEPTED, an AUTH_NONE verifier with no body, SUCCESS. */
const SUCCESS_HEADER = (() => {
  const w = new XdrWriter(32);
  encode_rpc_msg(w, {
    xid: 0,
    body: {
      mtype: REPLY,
      rbody: { stat: MSG_ACCEPTED, areply: { verf: NULL_AUTH, reply_data: { stat: SUCCESS } } },
    },
  });
  return Buffer.from(w.finish().subarray(4));
})();
