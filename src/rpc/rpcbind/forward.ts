/**
 * Indirect calls (CALLIT, BCAST, INDIRECT): rpcbind calls a local program on the caller's
 * behalf and hands back its results. The arguments and results are already XDR-encoded by the
 * caller and the callee; rpcbind passes the bytes through without interpreting them.
 */
import type { XdrReader, XdrWriter } from '../../xdr/index.js';
import type { ClientCredential } from '../auth.js';
import { UdpRpcClient } from '../client-udp.js';
import type { Credential } from '../context.js';
import { RpcSystemError } from '../errors.js';
import type { ProcedureDefinition } from '../stub.js';

export interface ForwarderOptions {
  /** How long one forwarded call may take before it counts as failed. Default 2000 ms. */
  timeoutMs?: number;
  /** Forwarded calls in flight at once; further ones fail at once. Default 64. */
  maxInFlight?: number;
  /** UDP clients kept open, one per target address, least recently used closed first. Default 16. */
  maxClients?: number;
}

export interface ForwardTarget {
  host: string;
  port: number;
}

/** Bytes through, both ways: the call's arguments and the reply's results stay encoded. */
function passthrough(proc: number): ProcedureDefinition<Uint8Array, Buffer> {
  return {
    name: `FORWARDED_${proc}`,
    proc,
    encodeArgs: (w: XdrWriter, a: Uint8Array) => w.writeFixedOpaque(a, a.length),
    decodeArgs: rest,
    encodeResult: (w: XdrWriter, v: Buffer) => w.writeFixedOpaque(v, v.length),
    decodeResult: rest,
  };
}

function rest(r: XdrReader): Buffer {
  const out = Buffer.from(r.buf.subarray(r.pos, r.end));
  r.pos = r.end;
  return out;
}

/** The caller's credential, passed on when it is AUTH_SYS (rpcbind forwards it unchanged). */
export function forwardableCredential(c: Credential): ClientCredential {
  if (c.flavor === 1 && 'uid' in c) {
    return {
      flavor: 1,
      uid: c.uid,
      gid: c.gid,
      gids: [...c.gids],
      machinename: c.machinename,
      stamp: c.stamp,
    };
  }
  return { flavor: 0 };
}

/** Forwards calls to local programs over UDP, one bounded set of clients for all targets. */
export class CallForwarder {
  private readonly clients = new Map<string, UdpRpcClient>();
  private inFlight = 0;
  private closed = false;
  readonly timeoutMs: number;
  readonly maxInFlight: number;
  readonly maxClients: number;

  constructor(options: ForwarderOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.maxInFlight = options.maxInFlight ?? 64;
    this.maxClients = options.maxClients ?? 16;
  }

  /**
   * Calls (prog, vers, proc) at `target` with pre-encoded arguments; resolves to the encoded
   * results, or rejects with the RPC error the callee answered (PROG_UNAVAIL, PROG_MISMATCH,
   * PROC_UNAVAIL, GARBAGE_ARGS, SYSTEM_ERR), a timeout, or an overload error.
   */
  async forward(
    target: ForwardTarget,
    call: { prog: number; vers: number; proc: number; args: Uint8Array },
    credential: ClientCredential,
  ): Promise<Buffer> {
    if (this.closed) throw new RpcSystemError('rpcbind is shutting down');
    if (this.inFlight >= this.maxInFlight) throw new RpcSystemError('too many forwarded calls in flight');
    this.inFlight++;
    try {
      return await this.client(target).call(call.prog, call.vers, passthrough(call.proc), call.args, {
        timeoutMs: this.timeoutMs,
        credential,
      });
    } finally {
      this.inFlight--;
    }
  }

  private client(target: ForwardTarget): UdpRpcClient {
    const key = `${target.host}|${target.port}`;
    let c = this.clients.get(key);
    if (c) {
      // Most recently used goes last.
      this.clients.delete(key);
      this.clients.set(key, c);
      return c;
    }
    if (this.clients.size >= this.maxClients) {
      const [oldestKey, oldest] = this.clients.entries().next().value as [string, UdpRpcClient];
      this.clients.delete(oldestKey);
      // Calls still in flight on it fail; they were the least recent, so this is rare.
      void oldest.close();
    }
    c = new UdpRpcClient({
      host: target.host,
      port: target.port,
      timeoutMs: this.timeoutMs,
      initialRtoMs: 200,
    });
    this.clients.set(key, c);
    return c;
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(all.map((c) => c.close()));
  }
}
