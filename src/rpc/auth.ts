import { XdrReader, XdrWriter } from '../xdr/index.js';
import type { AuthSysCredential, Credential } from './context.js';
import { RpcAuthError } from './errors.js';
import {
  AUTH_BADCRED,
  AUTH_NONE,
  AUTH_SYS,
  decode_authsys_parms,
  encode_authsys_parms,
  type opaque_auth,
} from './gen/rpc_msg.js';

export const NULL_AUTH: opaque_auth = Object.freeze({ flavor: AUTH_NONE, body: new Uint8Array(0) });
const NONE_CREDENTIAL: Credential = Object.freeze({ flavor: AUTH_NONE });

/** Parses a call's credential: AUTH_SYS is decoded, other flavors are passed on opaque. */
export function parseCredential(auth: opaque_auth): Credential {
  if (auth.flavor === AUTH_NONE) return NONE_CREDENTIAL;
  if (auth.flavor === AUTH_SYS) {
    try {
      const r = new XdrReader(auth.body);
      const p = decode_authsys_parms(r);
      r.assertEnd();
      return {
        flavor: AUTH_SYS,
        stamp: p.stamp,
        machinename: p.machinename,
        uid: p.uid,
        gid: p.gid,
        gids: p.gids,
      };
    } catch {
      throw new RpcAuthError(AUTH_BADCRED, 'malformed AUTH_SYS credential');
    }
  }
  return { flavor: auth.flavor, body: auth.body };
}

/** What a client presents: AUTH_NONE, or AUTH_SYS with the given identity. */
export type ClientCredential =
  | { flavor: 0 }
  | { flavor: 1; uid: number; gid: number; gids?: readonly number[]; machinename?: string; stamp?: number };

/** Encodes a client credential once; clients reuse the bytes on every call. */
export function encodeCredential(cred: ClientCredential): opaque_auth {
  if (cred.flavor === AUTH_NONE) return NULL_AUTH;
  const w = new XdrWriter(64);
  const parms: Omit<AuthSysCredential, 'flavor'> = {
    stamp: cred.stamp ?? 0,
    machinename: cred.machinename ?? 'cairn',
    uid: cred.uid,
    gid: cred.gid,
    gids: cred.gids ?? [],
  };
  encode_authsys_parms(w, { ...parms, gids: [...parms.gids] });
  return { flavor: AUTH_SYS, body: Buffer.from(w.finish()) };
}
