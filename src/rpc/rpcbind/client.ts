/**
 * A client for any rpcbind: Cairn's own or the system's (Linux rpcbind, the old portmap).
 * Lookups work over TCP or UDP from anywhere; registration changes (set, unset) are accepted by
 * Linux rpcbind only on its Unix socket, so use `RpcbindClient.local()` for those.
 */
import type { ClientCredential } from '../auth.js';
import type { RpcClient } from '../client.js';
import { TcpRpcClient } from '../client-tcp.js';
import { UdpRpcClient } from '../client-udp.js';
import type { CallOptions, RpcCaller } from '../stub.js';
import {
  PMAPVERS_Client,
  RPCB_PORT,
  RPCBVERS_Client,
  RPCBVERS4_Client,
  type rpcb_entry,
  type rpcb_stat,
} from './gen/rpcbind.js';
import { LocalRpcClient, RPCBIND_SOCKET_PATH } from './local-client.js';
import { IPPROTO_TCP, IPPROTO_UDP, type PmapMapping, type RpcbindMapping } from './registry.js';

export interface RpcbindClientOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 111. */
  port?: number;
  /** Default "tcp". "local" talks to the Unix socket at `path`. */
  transport?: 'tcp' | 'udp' | 'local';
  /** Unix socket path for the local transport. Default /run/rpcbind.sock. */
  path?: string;
  /** Per-call timeout. Default 5000 ms. */
  timeoutMs?: number;
  credential?: ClientCredential;
  /** rpcbind protocol version for the version 3/4 procedures. Default 4. */
  version?: 3 | 4;
}

/** A registration to make: the owner defaults to the process's uid, as libtirpc sends it. */
export interface RpcbindSetRequest {
  prog: number;
  vers: number;
  netid: string;
  addr: string;
  owner?: string;
}

export interface IndirectResult {
  /** Universal address the call was forwarded to. */
  addr: string;
  /** The callee's encoded results. */
  results: Uint8Array;
}

/** Walks a chain of optional links into an array. */
function unchain<L, T>(head: L | null, item: (l: L) => T, next: (l: L) => L | null): T[] {
  const out: T[] = [];
  for (let l = head; l !== null; l = next(l)) out.push(item(l));
  return out;
}

function defaultOwner(): string {
  return String(process.geteuid?.() ?? 'unknown');
}

export class RpcbindClient {
  readonly v2: PMAPVERS_Client;
  readonly v3: RPCBVERS_Client;
  readonly v4: RPCBVERS4_Client;
  readonly version: 3 | 4;
  private readonly owned: RpcClient | null;

  /** Over a transport made from options, or over any RpcCaller (the caller then owns it). */
  constructor(options: RpcbindClientOptions | { caller: RpcCaller; version?: 3 | 4 } = {}) {
    let caller: RpcCaller;
    if ('caller' in options) {
      caller = options.caller;
      this.owned = null;
    } else {
      const base = { timeoutMs: options.timeoutMs ?? 5000, credential: options.credential };
      const host = options.host ?? '127.0.0.1';
      const port = options.port ?? RPCB_PORT;
      const t = options.transport ?? 'tcp';
      this.owned =
        t === 'local'
          ? new LocalRpcClient({ ...base, path: options.path ?? RPCBIND_SOCKET_PATH })
          : t === 'udp'
            ? new UdpRpcClient({ ...base, host, port })
            : new TcpRpcClient({ ...base, host, port, resendOnReconnect: false });
      caller = this.owned;
    }
    this.version = options.version ?? 4;
    this.v2 = new PMAPVERS_Client(caller);
    this.v3 = new RPCBVERS_Client(caller);
    this.v4 = new RPCBVERS4_Client(caller);
  }

  /** A client on the local rpcbind's Unix socket, the one through which Linux rpcbind accepts SET. */
  static local(
    path = RPCBIND_SOCKET_PATH,
    options: Omit<RpcbindClientOptions, 'transport' | 'path'> = {},
  ): RpcbindClient {
    return new RpcbindClient({ ...options, transport: 'local', path });
  }

  /** Calls NULL: resolves when rpcbind answers. */
  async ping(options?: CallOptions): Promise<void> {
    if (this.version === 4) await this.v4.RPCB4_NULL(options);
    else await this.v3.RPCB3_NULL(options);
  }

  // ------------------------------------------------------------- version 2 (portmapper) ---

  /** The port of (prog, vers) over TCP or UDP; 0 when it is not registered. */
  getport(prog: number, vers: number, protocol: 'tcp' | 'udp', options?: CallOptions): Promise<number> {
    const prot = protocol === 'tcp' ? IPPROTO_TCP : IPPROTO_UDP;
    return this.v2.PMAPPROC_GETPORT({ prog, vers, prot, port: 0 }, options);
  }

  async pmapDump(options?: CallOptions): Promise<PmapMapping[]> {
    const head = await this.v2.PMAPPROC_DUMP(options);
    return unchain(
      head,
      (l) => ({ ...l.map }),
      (l) => l.next,
    );
  }

  pmapSet(m: PmapMapping, options?: CallOptions): Promise<boolean> {
    return this.v2.PMAPPROC_SET({ ...m }, options);
  }

  pmapUnset(prog: number, vers: number, options?: CallOptions): Promise<boolean> {
    return this.v2.PMAPPROC_UNSET({ prog, vers, prot: 0, port: 0 }, options);
  }

  // ---------------------------------------------------------------- versions 3 and 4 ---

  /**
   * The universal address of (prog, vers) on the transport this client uses (rpcbind answers
   * for the transport the question came in on), or null. Falls back to another version of the
   * program when the version asked for is absent, as rpcbind does.
   */
  async getaddr(prog: number, vers: number, options?: CallOptions): Promise<string | null> {
    const args = { r_prog: prog, r_vers: vers, r_netid: '', r_addr: '', r_owner: '' };
    const a =
      this.version === 4
        ? await this.v4.RPCB4_GETADDR(args, options)
        : await this.v3.RPCB3_GETADDR(args, options);
    return a === '' ? null : a;
  }

  /** Like getaddr but only for exactly this version (version 4's GETVERSADDR). */
  async getversaddr(prog: number, vers: number, options?: CallOptions): Promise<string | null> {
    const a = await this.v4.RPCB4_GETVERSADDR(
      { r_prog: prog, r_vers: vers, r_netid: '', r_addr: '', r_owner: '' },
      options,
    );
    return a === '' ? null : a;
  }

  /** Every transport (prog, vers) is registered on, with addresses (version 4's GETADDRLIST). */
  async getaddrlist(prog: number, vers: number, options?: CallOptions): Promise<rpcb_entry[]> {
    const head = await this.v4.RPCB4_GETADDRLIST(
      { r_prog: prog, r_vers: vers, r_netid: '', r_addr: '', r_owner: '' },
      options,
    );
    return unchain(
      head,
      (l) => ({ ...l.rpcb_entry_map }),
      (l) => l.rpcb_entry_next,
    );
  }

  /** The address of (prog, vers) on a given netid, from GETADDRLIST; null when absent. */
  async lookup(prog: number, vers: number, netid: string, options?: CallOptions): Promise<string | null> {
    const list = await this.getaddrlist(prog, vers, options);
    return list.find((e) => e.r_nc_netid === netid)?.r_maddr ?? null;
  }

  async dump(options?: CallOptions): Promise<RpcbindMapping[]> {
    const head = this.version === 4 ? await this.v4.RPCB4_DUMP(options) : await this.v3.RPCB3_DUMP(options);
    return unchain(
      head,
      (l) => ({
        prog: l.rpcb_map.r_prog,
        vers: l.rpcb_map.r_vers,
        netid: l.rpcb_map.r_netid,
        addr: l.rpcb_map.r_addr,
        owner: l.rpcb_map.r_owner,
      }),
      (l) => l.rpcb_next,
    );
  }

  /** Registers (prog, vers, netid) at addr; false when rpcbind refused (already registered, invalid). */
  set(m: RpcbindSetRequest, options?: CallOptions): Promise<boolean> {
    const args = {
      r_prog: m.prog,
      r_vers: m.vers,
      r_netid: m.netid,
      r_addr: m.addr,
      r_owner: m.owner ?? defaultOwner(),
    };
    return this.version === 4 ? this.v4.RPCB4_SET(args, options) : this.v3.RPCB3_SET(args, options);
  }

  /** Removes (prog, vers) on `netid`, or on every transport when netid is empty. */
  unset(prog: number, vers: number, netid = '', options?: CallOptions): Promise<boolean> {
    const args = { r_prog: prog, r_vers: vers, r_netid: netid, r_addr: '', r_owner: defaultOwner() };
    return this.version === 4 ? this.v4.RPCB4_UNSET(args, options) : this.v3.RPCB3_UNSET(args, options);
  }

  /** rpcbind's clock, in seconds since the epoch. */
  gettime(options?: CallOptions): Promise<number> {
    return this.version === 4 ? this.v4.RPCB4_GETTIME(options) : this.v3.RPCB3_GETTIME(options);
  }

  /** Statistics for versions 2, 3 and 4 (version 4's GETSTAT). */
  getstat(options?: CallOptions): Promise<rpcb_stat[]> {
    return this.v4.RPCB4_GETSTAT(options);
  }

  async uaddr2taddr(uaddr: string, options?: CallOptions): Promise<Uint8Array> {
    return (await this.v4.RPCB4_UADDR2TADDR(uaddr, options)).buf;
  }

  taddr2uaddr(taddr: Uint8Array, options?: CallOptions): Promise<string> {
    return this.v4.RPCB4_TADDR2UADDR({ maxlen: taddr.length, buf: taddr }, options);
  }

  /** Calls (prog, vers, proc) through rpcbind with pre-encoded arguments (version 4's INDIRECT). */
  indirect(
    prog: number,
    vers: number,
    proc: number,
    args: Uint8Array,
    options?: CallOptions,
  ): Promise<IndirectResult> {
    return this.v4.RPCB4_INDIRECT({ prog, vers, proc, args }, options);
  }

  /** Version 3's CALLIT: like indirect, but rpcbind stays silent when the call fails (over UDP). */
  callit(
    prog: number,
    vers: number,
    proc: number,
    args: Uint8Array,
    options?: CallOptions,
  ): Promise<IndirectResult> {
    return this.v3.RPCB3_CALLIT({ prog, vers, proc, args }, options);
  }

  /** Closes the transport this client made; a caller passed in stays open. */
  async close(): Promise<void> {
    await this.owned?.close();
  }
}
