/**
 * NFS version 3 and MOUNT version 3 statuses by name, and the errors the client throws for them.
 * The error's `code` is the status's RFC 1813 name (`NFS3ERR_NOENT`, `MNT3ERR_ACCES`), so callers
 * branch on the same names the specification and packet traces use.
 */
import { CairnError } from '../errors.js';
import { mountstat3 } from './gen/mount3.bytes.js';
import { nfsstat3 } from './gen/nfs3.bytes.js';

const nfsNames = new Map<number, string>(Object.entries(nfsstat3).map(([name, n]) => [n, name]));
const mountNames = new Map<number, string>(Object.entries(mountstat3).map(([name, n]) => [n, name]));

/** The RFC 1813 name of an nfsstat3 value; unknown values (a misbehaving server) get a made-up one. */
export function nfsStatusName(status: number): string {
  return nfsNames.get(status) ?? `NFS3ERR_UNKNOWN_${status}`;
}

/** The RFC 1813 name of a mountstat3 value. */
export function mountStatusName(status: number): string {
  return mountNames.get(status) ?? `MNT3ERR_UNKNOWN_${status}`;
}

/**
 * An NFS procedure answered with a status other than NFS3_OK. `result` is the whole decoded
 * reply (for the resfail arm: post-operation attributes and wcc data the server sent).
 */
export class NfsError extends CairnError {
  readonly status: number;
  readonly procedure: string;
  readonly result: unknown;
  constructor(procedure: string, status: number, result?: unknown) {
    const name = nfsStatusName(status);
    super(name, `${procedure}: ${name} (${status})`);
    this.status = status;
    this.procedure = procedure;
    this.result = result;
  }
}

/** MNT answered with a status other than MNT3_OK. */
export class MountError extends CairnError {
  readonly status: number;
  readonly path: string;
  constructor(path: string, status: number) {
    const name = mountStatusName(status);
    super(name, `MNT ${path}: ${name} (${status})`);
    this.status = status;
    this.path = path;
  }
}

/**
 * The client cannot go on for a reason that is not an NFS status: a program not registered with
 * rpcbind (`NFS_NOT_REGISTERED`), a server breaking the protocol (`NFS_PROTOCOL`), a write
 * verifier that kept changing under writeAll (`NFS_WRITE_VERIFIER_CHANGED`).
 */
export class NfsClientError extends CairnError {}
