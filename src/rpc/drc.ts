/**
 * The duplicate-request cache: a call retransmitted after a lost reply is answered from here
 * instead of running again, which makes non-idempotent procedures at-most-once (the notes'
 * reliable request-reply; knfsd's "DRC"). Bounded by entries and by bytes, least recently used
 * first out. A duplicate that arrives while the original is still running waits for its reply,
 * even over another connection, so a client that reconnected is not left without an answer.
 */

export type ReplySink = (reply: Buffer | null) => void;

interface Entry {
  reply: Buffer | null;
  done: boolean;
  waiters: ReplySink[] | null;
}

export interface DrcOptions {
  maxEntries: number;
  maxBytes: number;
  /** Replies larger than this are not kept (their calls then run again on retransmission). */
  maxReplyBytes: number;
}

export const DEFAULT_DRC_OPTIONS: DrcOptions = {
  maxEntries: 4096,
  maxBytes: 16 << 20,
  maxReplyBytes: 64 << 10,
};

export type DrcLookup = { kind: 'new' } | { kind: 'waiting' } | { kind: 'replay'; reply: Buffer | null };

export class DuplicateRequestCache {
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;
  hits = 0;

  constructor(private readonly options: DrcOptions = DEFAULT_DRC_OPTIONS) {}

  /**
   * Looks a call up. `new`: run it, then `complete`. `waiting`: the original is running and
   * `sink` will get its reply. `replay`: send the cached reply.
   */
  begin(key: string, sink: ReplySink): DrcLookup {
    const e = this.entries.get(key);
    if (e === undefined) {
      this.entries.set(key, { reply: null, done: false, waiters: null });
      this.evict();
      return { kind: 'new' };
    }
    this.hits++;
    // Refresh recency.
    this.entries.delete(key);
    this.entries.set(key, e);
    if (e.done) return { kind: 'replay', reply: e.reply };
    if (e.waiters == null) e.waiters = [];
    e.waiters.push(sink);
    return { kind: 'waiting' };
  }

  complete(key: string, reply: Buffer | null): void {
    const e = this.entries.get(key);
    if (e === undefined) return;
    const waiters = e.waiters;
    e.waiters = null;
    e.done = true;
    if (reply !== null && reply.length <= this.options.maxReplyBytes) {
      // The reply may view buffers the handler still owns; the cache keeps its own copy.
      e.reply = Buffer.from(reply);
      this.bytes += e.reply.length;
      this.evict();
    } else {
      // Not cacheable: forget the call so a retransmission runs it again rather than hanging.
      this.entries.delete(key);
    }
    if (waiters) for (const w of waiters) w(reply);
  }

  /** Drops an entry whose call failed before producing a reply worth replaying. */
  abandon(key: string): void {
    const e = this.entries.get(key);
    if (e === undefined) return;
    this.entries.delete(key);
    if (e.reply) this.bytes -= e.reply.length;
    if (e.waiters) for (const w of e.waiters) w(null);
  }

  get size(): number {
    return this.entries.size;
  }

  get sizeBytes(): number {
    return this.bytes;
  }

  private evict(): void {
    const { maxEntries, maxBytes } = this.options;
    for (const [key, e] of this.entries) {
      if (this.entries.size <= maxEntries && this.bytes <= maxBytes) return;
      // Never evict a call in progress: its waiters would be stranded.
      if (!e.done) continue;
      this.entries.delete(key);
      if (e.reply) this.bytes -= e.reply.length;
    }
  }
}

/** FNV-1a over the first bytes of the arguments: tells a reused XID with new arguments apart. */
export function argumentDigest(buf: Buffer, start: number, end: number): number {
  let h = 0x811c9dc5;
  const stop = Math.min(end, start + 256);
  for (let i = start; i < stop; i++) {
    h ^= buf[i];
    h = Math.imul(h, 0x01000193);
  }
  return (h ^ (end - start)) >>> 0;
}
