/**
 * The endpoint table of the notes' binding daemon: which (program, version, transport) is served
 * at which universal address, and who registered it. Pure state, no I/O: the rpcbind service
 * (service.ts) decides who may change it, the table decides what a change means.
 */
import { isInetNetid, netidFamily, netidTransport, parseUniversalAddress } from './uaddr.js';

/** One registration, as rpcbind versions 3 and 4 exchange it. */
export interface RpcbindMapping {
  readonly prog: number;
  readonly vers: number;
  /** "tcp", "udp", "tcp6", "udp6", or another transport name stored as given. */
  readonly netid: string;
  /** Universal address ("h1.h2.h3.h4.p1.p2" for IPv4). */
  readonly addr: string;
  /** "superuser", a numeric uid, or "unknown". */
  readonly owner: string;
}

/** One registration as portmapper (version 2) sees it: IPv4 TCP or UDP, a port. */
export interface PmapMapping {
  readonly prog: number;
  readonly vers: number;
  /** 6 for TCP, 17 for UDP. */
  readonly prot: number;
  readonly port: number;
}

export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

/** The owner that may remove any registration. */
export const SUPERUSER = 'superuser';

export interface RpcbindRegistryOptions {
  /** Most registrations held; SET beyond it fails. Default 4096. */
  maxEntries?: number;
}

/** Why a SET was refused, for logs and tests. */
export type SetRefusal = 'exists' | 'invalid' | 'full';

const MAX_STRING = 255;
const U32_MAX = 0xffffffff;

function isU32(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= U32_MAX;
}

function keyOf(prog: number, vers: number, netid: string): string {
  return `${prog}/${vers}/${netid}`;
}

/**
 * The registration table. Keys are (prog, vers, netid); a SET never replaces an existing key
 * with another address (the owner must UNSET first), as rpcbind does, so one service cannot
 * silently take over another's registration; repeating the same SET is accepted and changes
 * nothing. Entries keep their insertion order, which DUMP reports.
 */
export class RpcbindRegistry {
  private readonly entries = new Map<string, RpcbindMapping>();
  readonly maxEntries: number;

  constructor(options: RpcbindRegistryOptions = {}) {
    this.maxEntries = options.maxEntries ?? 4096;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Checks a mapping a SET would store; returns the reason it is unacceptable, or null. */
  validate(m: RpcbindMapping): SetRefusal | null {
    if (!isU32(m.prog) || !isU32(m.vers)) return 'invalid';
    if (m.netid === '' || m.netid.length > MAX_STRING || m.addr === '' || m.addr.length > MAX_STRING)
      return 'invalid';
    if (m.owner.length > MAX_STRING) return 'invalid';
    if (isInetNetid(m.netid)) {
      const a = parseUniversalAddress(m.addr);
      if (a === null || a.family !== netidFamily(m.netid)) return 'invalid';
    }
    return null;
  }

  /**
   * Adds a registration. False when (prog, vers, netid) is registered at another address, the
   * mapping is invalid, or the table is full.
   */
  set(m: RpcbindMapping): boolean {
    return this.trySet(m) === null;
  }

  /** Like set, saying why it refused. */
  trySet(m: RpcbindMapping): SetRefusal | null {
    const invalid = this.validate(m);
    if (invalid) return invalid;
    const key = keyOf(m.prog, m.vers, m.netid);
    const existing = this.entries.get(key);
    // The same registration again is accepted and changes nothing (rpcbind answers TRUE);
    // another address for a taken key is refused.
    if (existing) return existing.addr === m.addr ? null : 'exists';
    if (this.entries.size >= this.maxEntries) return 'full';
    this.entries.set(key, { prog: m.prog, vers: m.vers, netid: m.netid, addr: m.addr, owner: m.owner });
    return null;
  }

  /**
   * Removes the registrations of (prog, vers) on `netid`, or on every transport when netid is
   * empty. Only the owner that registered an entry, or the superuser, may remove it. True when
   * at least one entry was removed and none was refused, as rpcbind answers.
   */
  unset(prog: number, vers: number, netid: string, owner: string): boolean {
    let removed = 0;
    let refused = 0;
    for (const [key, e] of this.entries) {
      if (e.prog !== prog || e.vers !== vers || (netid !== '' && e.netid !== netid)) continue;
      if (owner !== SUPERUSER && e.owner !== owner) {
        refused++;
        continue;
      }
      this.entries.delete(key);
      removed++;
    }
    return removed > 0 && refused === 0;
  }

  /** The registration of exactly (prog, vers, netid), if any. */
  get(prog: number, vers: number, netid: string): RpcbindMapping | undefined {
    return this.entries.get(keyOf(prog, vers, netid));
  }

  /**
   * Finds where (prog, vers) is served on `netid`. With `exactVersion` false (GETADDR, GETPORT)
   * a registration of another version of the program on that transport is returned when the
   * asked version is absent, so the caller reaches the server and learns the versions it
   * supports from its PROG_MISMATCH reply; with true (GETVERSADDR) only the exact version.
   */
  lookup(prog: number, vers: number, netid: string, exactVersion: boolean): RpcbindMapping | undefined {
    const exact = this.get(prog, vers, netid);
    if (exact || exactVersion) return exact;
    for (const e of this.entries.values()) if (e.prog === prog && e.netid === netid) return e;
    return undefined;
  }

  /** Every registration, in the order they were made. */
  dump(): RpcbindMapping[] {
    return [...this.entries.values()];
  }

  /** The registrations of (prog, vers) on every transport (GETADDRLIST). */
  list(prog: number, vers: number): RpcbindMapping[] {
    return this.dump().filter((e) => e.prog === prog && e.vers === vers);
  }

  // ------------------------------------------------------------- portmapper (version 2) ---

  /**
   * A version 2 SET: (prog, vers, prot, port) becomes a "tcp" or "udp" registration at
   * 0.0.0.0 (the portmapper knows ports, not hosts). Unknown protocols are refused.
   */
  pmapSet(m: PmapMapping, owner: string): boolean {
    const netid = pmapNetid(m.prot);
    if (netid === null || !isU32(m.port) || m.port > 65535) return false;
    return this.set({
      prog: m.prog,
      vers: m.vers,
      netid,
      addr: `0.0.0.0.${m.port >> 8}.${m.port & 0xff}`,
      owner,
    });
  }

  /** A version 2 UNSET: removes (prog, vers) on both TCP and UDP; the protocol and port are ignored. */
  pmapUnset(prog: number, vers: number, owner: string): boolean {
    const tcp = this.get(prog, vers, 'tcp') ? this.unset(prog, vers, 'tcp', owner) : false;
    const udp = this.get(prog, vers, 'udp') ? this.unset(prog, vers, 'udp', owner) : false;
    return tcp || udp;
  }

  /** A version 2 GETPORT: the port of (prog, vers) over `prot`, 0 when unregistered. */
  pmapGetPort(prog: number, vers: number, prot: number): number {
    const netid = pmapNetid(prot);
    if (netid === null) return 0;
    const e = this.lookup(prog, vers, netid, false);
    return e ? (parseUniversalAddress(e.addr)?.port ?? 0) : 0;
  }

  /** A version 2 DUMP: the IPv4 TCP and UDP registrations as (prog, vers, prot, port). */
  pmapDump(): PmapMapping[] {
    const out: PmapMapping[] = [];
    for (const e of this.entries.values()) {
      if (e.netid !== 'tcp' && e.netid !== 'udp') continue;
      const a = parseUniversalAddress(e.addr);
      if (a === null) continue;
      out.push({
        prog: e.prog,
        vers: e.vers,
        prot: netidTransport(e.netid) === 'tcp' ? IPPROTO_TCP : IPPROTO_UDP,
        port: a.port,
      });
    }
    return out;
  }
}

/** The IPv4 netid of a portmapper protocol number, null when it is neither TCP nor UDP. */
export function pmapNetid(prot: number): 'tcp' | 'udp' | null {
  return prot === IPPROTO_TCP ? 'tcp' : prot === IPPROTO_UDP ? 'udp' : null;
}
