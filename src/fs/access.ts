// Interim POSIX permission checks; replaced by the fuller tested module when it lands.
import type { Attr, Identity } from './types.js';
import { S_ISVTX } from './types.js';

function inGroup(who: Identity, gid: number): boolean {
  return who.gid === gid || who.gids.includes(gid);
}

function bits(who: Identity, a: Pick<Attr, 'mode' | 'uid' | 'gid'>): number {
  if (who.uid === a.uid) return (a.mode >> 6) & 7;
  if (inGroup(who, a.gid)) return (a.mode >> 3) & 7;
  return a.mode & 7;
}

export function mayRead(who: Identity, a: Attr): boolean {
  return who.uid === 0 || (bits(who, a) & 4) !== 0;
}

export function mayWrite(who: Identity, a: Attr): boolean {
  return who.uid === 0 || (bits(who, a) & 2) !== 0;
}

export function mayExecute(who: Identity, a: Attr): boolean {
  if (who.uid === 0) return a.type === 'dir' || (a.mode & 0o111) !== 0;
  return (bits(who, a) & 1) !== 0;
}

export function mayDelete(who: Identity, dir: Attr, victim: Attr): boolean {
  if ((dir.mode & S_ISVTX) === 0 || who.uid === 0) return true;
  return who.uid === victim.uid || who.uid === dir.uid;
}

export function isMember(who: Identity, gid: number): boolean {
  return inGroup(who, gid);
}
