import { createHash } from 'node:crypto';

/** CPU-heavy on purpose: iterated SHA-256, run in a worker pool thread. */
export function hash(arg: { data: Uint8Array; rounds: number }): number {
  let h: Buffer = Buffer.from(arg.data);
  for (let i = 0; i < arg.rounds; i++) h = createHash('sha256').update(h).digest();
  return h.readInt32BE(0);
}

export function explode(): never {
  throw new Error('task exploded');
}
