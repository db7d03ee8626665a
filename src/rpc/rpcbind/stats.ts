/**
 * The counters behind GETSTAT (rpcbind version 4): calls per procedure, successful SETs and
 * UNSETs, lookups and forwarded calls per program, kept separately for versions 2, 3 and 4.
 * Pure state; bounded (a fixed number of distinct lookup and forwarding keys per version).
 */

/** Procedures counted per version: 0 to 12, as RPCBSTAT_HIGHPROC = 13 in rpcbind.x. */
export const STAT_PROCS = 13;
const INT_MAX = 0x7fffffff;

export interface LookupStat {
  prog: number;
  vers: number;
  netid: string;
  success: number;
  failure: number;
}

export interface ForwardStat {
  prog: number;
  vers: number;
  proc: number;
  netid: string;
  indirect: boolean;
  success: number;
  failure: number;
}

export interface VersionStats {
  /** Calls received per procedure number. */
  info: number[];
  setinfo: number;
  unsetinfo: number;
  lookups: LookupStat[];
  forwards: ForwardStat[];
}

interface VersionState {
  info: number[];
  setinfo: number;
  unsetinfo: number;
  lookups: Map<string, LookupStat>;
  forwards: Map<string, ForwardStat>;
}

const inc = (n: number) => (n >= INT_MAX ? INT_MAX : n + 1);

export class RpcbindStats {
  private readonly versions: VersionState[] = [2, 3, 4].map(() => ({
    info: new Array<number>(STAT_PROCS).fill(0),
    setinfo: 0,
    unsetinfo: 0,
    lookups: new Map(),
    forwards: new Map(),
  }));

  /** Distinct (prog, vers, netid) lookup keys and forwarding keys kept per version. */
  constructor(readonly maxKeys = 64) {}

  private of(rpcbVersion: number): VersionState | undefined {
    return this.versions[rpcbVersion - 2];
  }

  call(rpcbVersion: number, proc: number): void {
    const v = this.of(rpcbVersion);
    if (v && proc >= 0 && proc < STAT_PROCS) v.info[proc] = inc(v.info[proc]);
  }

  set(rpcbVersion: number, ok: boolean): void {
    const v = this.of(rpcbVersion);
    if (v && ok) v.setinfo = inc(v.setinfo);
  }

  unset(rpcbVersion: number, ok: boolean): void {
    const v = this.of(rpcbVersion);
    if (v && ok) v.unsetinfo = inc(v.unsetinfo);
  }

  lookup(rpcbVersion: number, prog: number, vers: number, netid: string, ok: boolean): void {
    const v = this.of(rpcbVersion);
    if (!v) return;
    const key = `${prog}/${vers}/${netid}`;
    let s = v.lookups.get(key);
    if (!s) {
      if (v.lookups.size >= this.maxKeys) return;
      s = { prog, vers, netid, success: 0, failure: 0 };
      v.lookups.set(key, s);
    }
    if (ok) s.success = inc(s.success);
    else s.failure = inc(s.failure);
  }

  forward(
    rpcbVersion: number,
    call: { prog: number; vers: number; proc: number },
    netid: string,
    indirect: boolean,
    ok: boolean,
  ): void {
    const v = this.of(rpcbVersion);
    if (!v) return;
    const key = `${call.prog}/${call.vers}/${call.proc}/${netid}/${indirect}`;
    let s = v.forwards.get(key);
    if (!s) {
      if (v.forwards.size >= this.maxKeys) return;
      s = { prog: call.prog, vers: call.vers, proc: call.proc, netid, indirect, success: 0, failure: 0 };
      v.forwards.set(key, s);
    }
    if (ok) s.success = inc(s.success);
    else s.failure = inc(s.failure);
  }

  /** A copy of the counters for versions 2, 3 and 4, in that order. */
  snapshot(): VersionStats[] {
    return this.versions.map((v) => ({
      info: [...v.info],
      setinfo: v.setinfo,
      unsetinfo: v.unsetinfo,
      lookups: [...v.lookups.values()].map((s) => ({ ...s })),
      forwards: [...v.forwards.values()].map((s) => ({ ...s })),
    }));
  }
}
