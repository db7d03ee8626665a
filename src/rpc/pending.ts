/**
 * The calls a client waits on, in a fixed array indexed by the low bits of the XID. XIDs are
 * handed out in sequence and replies mostly come back in order, so a call's slot was freed long
 * before its XID comes round again; a lookup is one array read and a compare, and nothing is
 * rehashed or reallocated while the number of calls in flight stays put. (A Map here was rehashed
 * continually, and its discarded tables, once promoted, kept finished calls alive through
 * scavenges.)
 */
export class PendingTable<T extends { readonly xid: number }> {
  private slots: (T | undefined)[];
  private mask: number;
  /** Calls in the table. */
  size = 0;

  constructor(capacity = 64) {
    let n = 16;
    while (n < capacity) n *= 2;
    this.slots = new Array<T | undefined>(n).fill(undefined);
    this.mask = n - 1;
  }

  get capacity(): number {
    return this.slots.length;
  }

  get(xid: number): T | undefined {
    const p = this.slots[xid & this.mask];
    return p !== undefined && p.xid === xid ? p : undefined;
  }

  has(xid: number): boolean {
    return this.get(xid) !== undefined;
  }

  /** Whether a call with this XID could be added now (its slot is free). */
  free(xid: number): boolean {
    return this.slots[xid & this.mask] === undefined;
  }

  /** Adds a call whose slot is free (see `free`). Doubles the table past half full. */
  add(p: T): void {
    if ((this.size + 1) * 2 > this.slots.length) this.grow();
    const i = p.xid & this.mask;
    if (this.slots[i] !== undefined) throw new Error(`pending slot of XID ${p.xid} is taken`);
    this.slots[i] = p;
    this.size++;
  }

  /** Removes `p` if it is the call in its slot; returns whether it was. */
  delete(p: T): boolean {
    const i = p.xid & this.mask;
    if (this.slots[i] !== p) return false;
    this.slots[i] = undefined;
    this.size--;
    return true;
  }

  /** A snapshot of the calls, safe to iterate while calls are added or removed. */
  values(): T[] {
    const out: T[] = [];
    if (this.size === 0) return out;
    for (const p of this.slots) if (p !== undefined) out.push(p);
    return out;
  }

  /** Visits every call without allocating; `fn` may remove the call it is given. */
  forEach(fn: (p: T) => void): void {
    const slots = this.slots;
    for (let i = 0; i < slots.length && this.size > 0; i++) {
      const p = slots[i];
      if (p !== undefined) fn(p);
    }
  }

  private grow(): void {
    const old = this.slots;
    const n = old.length * 2;
    // XIDs distinct in their low k bits stay distinct in their low k+1 bits: no collisions.
    this.slots = new Array<T | undefined>(n).fill(undefined);
    this.mask = n - 1;
    for (const p of old) if (p !== undefined) this.slots[p.xid & this.mask] = p;
  }
}
