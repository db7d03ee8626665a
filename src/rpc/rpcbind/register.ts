/**
 * Registration of a node's programs with an rpcbind, and their removal at shutdown: what a
 * server does so that clients that know only the program number (rpcinfo, the kernel's NFS
 * client asking for MOUNT) can find it.
 */
import { CairnError } from '../../errors.js';
import type { RpcbindClient } from './client.js';
import { type RpcbindMapping, type RpcbindRegistry, SUPERUSER } from './registry.js';
import { toUniversalAddress } from './uaddr.js';

export class RpcbindError extends CairnError {}

/** What registration needs of an rpcbind: an RpcbindClient, or `localRegistrar` for one in this process. */
export type Registrar = Pick<RpcbindClient, 'set' | 'unset'>;

/**
 * Registers straight into an rpcbind running in this process (its registry), as the superuser:
 * a node's own rpcbind, whatever address it listens on (over the network, rpcbind accepts
 * registrations only from loopback).
 */
export function localRegistrar(registry: RpcbindRegistry): Registrar {
  return {
    set: async (m) => registry.set({ ...m, owner: SUPERUSER }),
    unset: async (prog, vers, netid = '') => registry.unset(prog, vers, netid, SUPERUSER),
  };
}

/** A (program, version) to register; ProgramDefinitions and RpcServer.registered() entries fit. */
export interface ProgramVersion {
  readonly program: number;
  readonly version: number;
}

export interface RegisterWithRpcbindOptions {
  /** Port the programs serve TCP on; omitted means no TCP registration. */
  tcpPort?: number;
  /** Port the programs serve UDP on; omitted means no UDP registration. */
  udpPort?: number;
  /** Address the programs listen on, as registered. Default "0.0.0.0" (every interface). */
  host?: string;
  /**
   * Remove a registration of the same (program, version, transport) left behind first, as
   * rpcgen's server mains do (a node that crashed never unregistered). Default true.
   */
  replace?: boolean;
}

export interface RpcbindRegistration {
  /** What was registered. */
  readonly mappings: readonly Omit<RpcbindMapping, 'owner'>[];
  /** Removes every registration made; safe to call more than once. */
  unregister(): Promise<void>;
}

/**
 * Registers every (program, version) on the given TCP and UDP ports. If any registration is
 * refused, those already made are removed again and the call rejects with RPCBIND_SET_REFUSED.
 */
export async function registerWithRpcbind(
  client: Registrar,
  programs: readonly ProgramVersion[],
  options: RegisterWithRpcbindOptions,
): Promise<RpcbindRegistration> {
  const host = options.host ?? '0.0.0.0';
  const v6 = host.includes(':');
  const wanted: Omit<RpcbindMapping, 'owner'>[] = [];
  const seen = new Set<string>();
  for (const { program, version } of programs) {
    if (seen.has(`${program}/${version}`)) continue;
    seen.add(`${program}/${version}`);
    if (options.tcpPort !== undefined) {
      wanted.push({
        prog: program,
        vers: version,
        netid: v6 ? 'tcp6' : 'tcp',
        addr: toUniversalAddress(host, options.tcpPort),
      });
    }
    if (options.udpPort !== undefined) {
      wanted.push({
        prog: program,
        vers: version,
        netid: v6 ? 'udp6' : 'udp',
        addr: toUniversalAddress(host, options.udpPort),
      });
    }
  }
  const made: Omit<RpcbindMapping, 'owner'>[] = [];
  const removeAll = async () => {
    let first: unknown;
    for (const m of made.splice(0).reverse()) {
      try {
        await client.unset(m.prog, m.vers, m.netid);
      } catch (e) {
        first ??= e;
      }
    }
    if (first !== undefined) throw first;
  };
  try {
    for (const m of wanted) {
      if (options.replace !== false) await client.unset(m.prog, m.vers, m.netid);
      if (!(await client.set(m))) {
        throw new RpcbindError(
          'RPCBIND_SET_REFUSED',
          `rpcbind refused to register program ${m.prog} version ${m.vers} on ${m.netid} at ${m.addr}`,
        );
      }
      made.push(m);
    }
  } catch (e) {
    await removeAll().catch(() => {});
    throw e;
  }
  let done: Promise<void> | null = null;
  return {
    mappings: wanted,
    unregister() {
      done ??= removeAll();
      return done;
    },
  };
}
