/**
 * The rpcbind service: versions 2 (portmapper), 3 and 4 of program 100000 over one registry,
 * served by any RpcServer. Lookups are open to everyone; changes (SET, UNSET) only to callers on
 * this machine's loopback, as RFC 1833 requires and Linux rpcbind enforces.
 */
import { componentLogger, type Logger } from '../../log.js';
import type { CallContext } from '../context.js';
import { RpcAuthError, RpcProgramUnavailableError } from '../errors.js';
import type { RpcServer } from '../server.js';
import { CallForwarder, type ForwarderOptions, forwardableCredential } from './forward.js';
import {
  type netbuf,
  type PMAPVERS_Handler,
  PMAPVERS_program,
  type pmap_call_args,
  type pmap_call_result,
  type pmap_dump_result,
  type pmap_mapping,
  RPCBPROG,
  type RPCBVERS_Handler,
  RPCBVERS_program,
  type RPCBVERS4_Handler,
  RPCBVERS4_program,
  type rpcb,
  type rpcb_addrlist_result,
  type rpcb_dump_result,
  type rpcb_rmtcallargs,
  type rpcb_rmtcallres,
  type rpcb_stat,
  type rpcbs_addr,
  type rpcbs_rmtcall,
} from './gen/rpcbind.js';
import { type RpcbindMapping, type RpcbindRegistry, SUPERUSER } from './registry.js';
import { RpcbindStats, type VersionStats } from './stats.js';
import {
  isInetNetid,
  isLoopbackAddress,
  mergeAddress,
  netidFamily,
  netidTransport,
  parseUniversalAddress,
  taddrToUaddr,
  uaddrToTaddr,
} from './uaddr.js';

/** auth_stat AUTH_TOOWEAK: what rpcbind answers a SET or UNSET from another machine. */
const AUTH_TOOWEAK = 5;

export interface RpcbindServiceOptions {
  /** Accept SET and UNSET from any host (rpcbind's -i). Default false: loopback only. */
  insecure?: boolean;
  /** Options of the forwarder behind CALLIT, BCAST and INDIRECT; false disables forwarding. */
  forward?: ForwarderOptions | false;
  /** Milliseconds since the epoch, for GETTIME. */
  now?: () => number;
  logger?: Logger;
}

/** The owner recorded for a registration: from an AUTH_SYS credential, else "unknown". */
export function ownerOf(ctx: CallContext): string {
  const c = ctx.credential;
  if (c.flavor === 1 && 'uid' in c) return c.uid === 0 ? SUPERUSER : String(c.uid);
  return 'unknown';
}

/** The netid of the transport a call came in on ("tcp", "udp6", ...). */
export function callNetid(ctx: CallContext): string {
  const a = ctx.remoteAddress;
  const v6 = a.includes(':') && !a.toLowerCase().startsWith('::ffff:');
  return v6 ? `${ctx.transport}6` : ctx.transport;
}

/**
 * The address the caller reached this server at. The runtime reports only the remote address;
 * for a caller on loopback that is also ours. A transport may add `localAddress` to the context.
 */
function localAddressOf(ctx: CallContext): string | undefined {
  const local = (ctx as CallContext & { localAddress?: string }).localAddress;
  if (local) return local;
  return isLoopbackAddress(ctx.remoteAddress) ? ctx.remoteAddress : undefined;
}

/** A never-settling result: the server sends no reply (the RFC's silent failure of CALLIT). */
function noReply(): Promise<never> {
  return new Promise<never>(() => {});
}

/** Builds a chain of optional links (`T *next`) from an array, last element first. */
function chain<T, L>(items: readonly T[], link: (item: T, next: L | null) => L): L | null {
  let head: L | null = null;
  for (let i = items.length - 1; i >= 0; i--) head = link(items[i], head);
  return head;
}

const NC_TPI_CLTS = 1;
const NC_TPI_COTS_ORD = 3;

export class RpcbindService {
  readonly stats = new RpcbindStats();
  readonly forwarder: CallForwarder | null;
  readonly log: Logger;
  private readonly insecure: boolean;
  private readonly now: () => number;

  constructor(
    readonly registry: RpcbindRegistry,
    options: RpcbindServiceOptions = {},
  ) {
    this.insecure = options.insecure ?? false;
    this.now = options.now ?? Date.now;
    this.forwarder = options.forward === false ? null : new CallForwarder(options.forward);
    this.log = options.logger ?? componentLogger('rpcbind');
  }

  // ------------------------------------------------------------------------- handlers ---

  readonly v2: PMAPVERS_Handler = {
    PMAPPROC_NULL: (_args, ctx) => {
      this.stats.call(2, ctx.procedure);
    },
    PMAPPROC_SET: (m: pmap_mapping, ctx: CallContext) => {
      this.stats.call(2, ctx.procedure);
      this.requireLocal(ctx, m.prog);
      const ok = this.registry.pmapSet(m, ownerOf(ctx));
      this.stats.set(2, ok);
      return ok;
    },
    PMAPPROC_UNSET: (m: pmap_mapping, ctx: CallContext) => {
      this.stats.call(2, ctx.procedure);
      this.requireLocal(ctx, m.prog);
      const ok = this.registry.pmapUnset(m.prog, m.vers, ownerOf(ctx));
      this.stats.unset(2, ok);
      return ok;
    },
    PMAPPROC_GETPORT: (m: pmap_mapping, ctx: CallContext) => {
      this.stats.call(2, ctx.procedure);
      const port = this.registry.pmapGetPort(m.prog, m.vers, m.prot);
      this.stats.lookup(2, m.prog, m.vers, m.prot === 6 ? 'tcp' : 'udp', port !== 0);
      return port;
    },
    PMAPPROC_DUMP: (_args, ctx): pmap_dump_result => {
      this.stats.call(2, ctx.procedure);
      return chain(this.registry.pmapDump(), (map, next) => ({ map: { ...map }, next }));
    },
    PMAPPROC_CALLIT: async (a: pmap_call_args, ctx: CallContext): Promise<pmap_call_result> => {
      this.stats.call(2, ctx.procedure);
      const r = await this.indirectCall(2, a, ctx, false);
      return { port: parseUniversalAddress(r.addr)?.port ?? 0, res: r.results };
    },
  };

  readonly v3: RPCBVERS_Handler = {
    RPCB3_NULL: (_args, ctx) => {
      this.stats.call(3, ctx.procedure);
    },
    RPCB3_SET: (r: rpcb, ctx: CallContext) => this.set(3, r, ctx),
    RPCB3_UNSET: (r: rpcb, ctx: CallContext) => this.unset(3, r, ctx),
    RPCB3_GETADDR: (r: rpcb, ctx: CallContext) => this.getaddr(3, r, ctx, false),
    RPCB3_DUMP: (_args, ctx) => this.dump(3, ctx),
    RPCB3_CALLIT: (a: rpcb_rmtcallargs, ctx: CallContext) => {
      this.stats.call(3, ctx.procedure);
      return this.indirectCall(3, a, ctx, false);
    },
    RPCB3_GETTIME: (_args, ctx) => this.gettime(3, ctx),
    RPCB3_UADDR2TADDR: (s: string, ctx: CallContext) => this.uaddr2taddr(3, s, ctx),
    RPCB3_TADDR2UADDR: (n: netbuf, ctx: CallContext) => this.taddr2uaddr(3, n, ctx),
  };

  readonly v4: RPCBVERS4_Handler = {
    RPCB4_NULL: (_args, ctx) => {
      this.stats.call(4, ctx.procedure);
    },
    RPCB4_SET: (r: rpcb, ctx: CallContext) => this.set(4, r, ctx),
    RPCB4_UNSET: (r: rpcb, ctx: CallContext) => this.unset(4, r, ctx),
    RPCB4_GETADDR: (r: rpcb, ctx: CallContext) => this.getaddr(4, r, ctx, false),
    RPCB4_DUMP: (_args, ctx) => this.dump(4, ctx),
    RPCB4_BCAST: (a: rpcb_rmtcallargs, ctx: CallContext) => {
      this.stats.call(4, ctx.procedure);
      return this.indirectCall(4, a, ctx, false);
    },
    RPCB4_GETTIME: (_args, ctx) => this.gettime(4, ctx),
    RPCB4_UADDR2TADDR: (s: string, ctx: CallContext) => this.uaddr2taddr(4, s, ctx),
    RPCB4_TADDR2UADDR: (n: netbuf, ctx: CallContext) => this.taddr2uaddr(4, n, ctx),
    RPCB4_GETVERSADDR: (r: rpcb, ctx: CallContext) => this.getaddr(4, r, ctx, true),
    RPCB4_INDIRECT: (a: rpcb_rmtcallargs, ctx: CallContext) => {
      this.stats.call(4, ctx.procedure);
      return this.indirectCall(4, a, ctx, true);
    },
    RPCB4_GETADDRLIST: (r: rpcb, ctx: CallContext) => this.getaddrlist(r, ctx),
    RPCB4_GETSTAT: (_args, ctx) => {
      this.stats.call(4, ctx.procedure);
      return this.stats.snapshot().map(toWireStat);
    },
  };

  // --------------------------------------------------------------------- procedures ---

  /** SET and UNSET come only from this machine unless the service runs insecure. */
  private requireLocal(ctx: CallContext, prog: number): void {
    if (this.insecure || isLoopbackAddress(ctx.remoteAddress)) return;
    this.log.warn(
      { remote: ctx.remoteAddress, prog, proc: ctx.procedure },
      'refused registration change from a remote host',
    );
    throw new RpcAuthError(AUTH_TOOWEAK, 'only local callers may change rpcbind registrations');
  }

  private set(version: number, r: rpcb, ctx: CallContext): boolean {
    this.stats.call(version, ctx.procedure);
    this.requireLocal(ctx, r.r_prog);
    const refusal = this.registry.trySet({
      prog: r.r_prog,
      vers: r.r_vers,
      netid: r.r_netid,
      addr: r.r_addr,
      owner: ownerOf(ctx),
    });
    if (refusal !== null)
      this.log.debug({ prog: r.r_prog, vers: r.r_vers, netid: r.r_netid, refusal }, 'SET refused');
    this.stats.set(version, refusal === null);
    return refusal === null;
  }

  private unset(version: number, r: rpcb, ctx: CallContext): boolean {
    this.stats.call(version, ctx.procedure);
    this.requireLocal(ctx, r.r_prog);
    const ok = this.registry.unset(r.r_prog, r.r_vers, r.r_netid, ownerOf(ctx));
    this.stats.unset(version, ok);
    return ok;
  }

  /**
   * GETADDR and GETVERSADDR. As in rpcbind, the transport is the one the call came in on (the
   * argument's r_netid is not consulted), and a wildcard address is reported as the address
   * the caller reached us at. Empty string when nothing is registered.
   */
  private getaddr(version: number, r: rpcb, ctx: CallContext, exactVersion: boolean): string {
    this.stats.call(version, ctx.procedure);
    const netid = callNetid(ctx);
    const e = this.registry.lookup(r.r_prog, r.r_vers, netid, exactVersion);
    this.stats.lookup(version, r.r_prog, r.r_vers, netid, e !== undefined);
    return e ? mergeAddress(e.addr, localAddressOf(ctx)) : '';
  }

  private dump(version: number, ctx: CallContext): rpcb_dump_result {
    this.stats.call(version, ctx.procedure);
    return chain(this.registry.dump(), (m: RpcbindMapping, next) => ({
      rpcb_map: { r_prog: m.prog, r_vers: m.vers, r_netid: m.netid, r_addr: m.addr, r_owner: m.owner },
      rpcb_next: next,
    }));
  }

  private gettime(version: number, ctx: CallContext): number {
    this.stats.call(version, ctx.procedure);
    return Math.floor(this.now() / 1000) >>> 0;
  }

  private uaddr2taddr(version: number, s: string, ctx: CallContext): netbuf {
    this.stats.call(version, ctx.procedure);
    const b = uaddrToTaddr(s);
    return b === null ? { maxlen: 0, buf: new Uint8Array(0) } : { maxlen: b.length, buf: b };
  }

  private taddr2uaddr(version: number, n: netbuf, ctx: CallContext): string {
    this.stats.call(version, ctx.procedure);
    return taddrToUaddr(n.buf) ?? '';
  }

  private getaddrlist(r: rpcb, ctx: CallContext): rpcb_addrlist_result {
    this.stats.call(4, ctx.procedure);
    const local = localAddressOf(ctx);
    const entries = this.registry.list(r.r_prog, r.r_vers);
    this.stats.lookup(4, r.r_prog, r.r_vers, callNetid(ctx), entries.length > 0);
    return chain(entries, (e: RpcbindMapping, next) => {
      const inet = isInetNetid(e.netid);
      return {
        rpcb_entry_map: {
          r_maddr: mergeAddress(e.addr, local),
          r_nc_netid: e.netid,
          r_nc_semantics: inet ? (netidTransport(e.netid) === 'tcp' ? NC_TPI_COTS_ORD : NC_TPI_CLTS) : 0,
          r_nc_protofmly: inet ? (netidFamily(e.netid) === 6 ? 'inet6' : 'inet') : '',
          r_nc_proto: inet ? netidTransport(e.netid) : '',
        },
        rpcb_entry_next: next,
      };
    });
  }

  /**
   * CALLIT (v2, v3), BCAST and INDIRECT (v4): forwards the call over UDP to the program's UDP
   * registration on this machine. Calls to rpcbind itself are refused (no loops, no
   * amplification). On failure INDIRECT answers with the error (PROG_UNAVAIL when the program
   * is not registered, else what the program answered, SYSTEM_ERR on timeout); CALLIT and BCAST
   * are silent over UDP as RFC 1833 specifies, so a broadcast does not hear from every host that
   * lacks the program. Over TCP silence would hold the connection's slot forever, so there the
   * error is answered too.
   */
  private async indirectCall(
    version: number,
    a: { prog: number; vers: number; proc: number; args: Uint8Array },
    ctx: CallContext,
    indirect: boolean,
  ): Promise<rpcb_rmtcallres> {
    const target =
      a.prog === RPCBPROG
        ? undefined
        : (this.registry.get(a.prog, a.vers, 'udp') ?? this.registry.get(a.prog, a.vers, 'udp6'));
    const parsed = target ? parseUniversalAddress(target.addr) : null;
    const netid = callNetid(ctx);
    if (!target || !parsed || !this.forwarder) {
      this.stats.forward(version, a, netid, indirect, false);
      const e = new RpcProgramUnavailableError(a.prog);
      if (indirect || ctx.transport !== 'udp') throw e;
      return noReply();
    }
    const host = parsed.host === '0.0.0.0' ? '127.0.0.1' : parsed.host === '::' ? '::1' : parsed.host;
    try {
      const results = await this.forwarder.forward(
        { host, port: parsed.port },
        a,
        forwardableCredential(ctx.credential),
      );
      this.stats.forward(version, a, netid, indirect, true);
      return { addr: mergeAddress(target.addr, localAddressOf(ctx)), results };
    } catch (e) {
      this.stats.forward(version, a, netid, indirect, false);
      this.log.debug({ err: e, prog: a.prog, vers: a.vers, proc: a.proc }, 'forwarded call failed');
      if (indirect || ctx.transport !== 'udp') throw e;
      return noReply();
    }
  }

  async close(): Promise<void> {
    await this.forwarder?.close();
  }
}

function toWireStat(v: VersionStats): rpcb_stat {
  return {
    info: v.info,
    setinfo: v.setinfo,
    unsetinfo: v.unsetinfo,
    addrinfo: chain(v.lookups, (s, next: rpcbs_addr | null) => ({
      prog: s.prog,
      vers: s.vers,
      success: s.success,
      failure: s.failure,
      netid: s.netid,
      next,
    })),
    rmtinfo: chain(v.forwards, (s, next: rpcbs_rmtcall | null) => ({
      prog: s.prog,
      vers: s.vers,
      proc: s.proc,
      success: s.success,
      failure: s.failure,
      indirect: s.indirect ? 1 : 0,
      netid: s.netid,
      next,
    })),
  };
}

/**
 * Serves rpcbind versions 2, 3 and 4 from `server` over `registry`. The caller owns the
 * transports (see startRpcbind for the usual TCP+UDP daemon) and calls `close()` on the
 * returned service when done.
 */
export function registerRpcbind(
  server: RpcServer,
  registry: RpcbindRegistry,
  options: RpcbindServiceOptions = {},
): RpcbindService {
  const service = new RpcbindService(registry, options);
  // SET and UNSET go through the duplicate-request cache (a retransmitted SET must not turn
  // into "already registered"); everything else is safe to run twice.
  server.addProgram(PMAPVERS_program, service.v2, {
    idempotent: ['PMAPPROC_GETPORT', 'PMAPPROC_DUMP', 'PMAPPROC_CALLIT'],
  });
  server.addProgram(RPCBVERS_program, service.v3, {
    idempotent: [
      'RPCB3_GETADDR',
      'RPCB3_DUMP',
      'RPCB3_CALLIT',
      'RPCB3_GETTIME',
      'RPCB3_UADDR2TADDR',
      'RPCB3_TADDR2UADDR',
    ],
  });
  server.addProgram(RPCBVERS4_program, service.v4, {
    idempotent: [
      'RPCB4_GETADDR',
      'RPCB4_DUMP',
      'RPCB4_BCAST',
      'RPCB4_GETTIME',
      'RPCB4_UADDR2TADDR',
      'RPCB4_TADDR2UADDR',
      'RPCB4_GETVERSADDR',
      'RPCB4_INDIRECT',
      'RPCB4_GETADDRLIST',
      'RPCB4_GETSTAT',
    ],
  });
  return service;
}
