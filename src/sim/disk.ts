/**
 * A simulated node's disk: a key-value map with the write/sync semantics of a file system's page
 * cache. A write is visible to every later read at once, but durable only once synced: a crash of
 * the process keeps it (the kernel still holds the page), a power loss throws away every write not
 * yet synced (`powerLoss`). A key is one file; `sync(key)` is fsync of that file, `sync()` of all.
 *
 * kill -9 cannot show the difference, which is why the simulator models it: a protocol core that
 * writes and forgets to sync passes every crash test and loses its state at the first power cut.
 */
export class SimDisk {
  private readonly visible = new Map<string, unknown>();
  private readonly durable = new Map<string, unknown>();
  /** Keys written (or deleted) since their last sync. */
  private readonly dirty = new Set<string>();
  writes = 0;
  syncs = 0;

  get(key: string): unknown {
    return this.visible.get(key);
  }

  has(key: string): boolean {
    return this.visible.has(key);
  }

  /** Writes `value`: visible now, durable after `sync`. */
  set(key: string, value: unknown): this {
    this.visible.set(key, value);
    this.dirty.add(key);
    this.writes++;
    return this;
  }

  delete(key: string): boolean {
    const had = this.visible.delete(key);
    if (had) this.dirty.add(key);
    return had;
  }

  keys(): IterableIterator<string> {
    return this.visible.keys();
  }

  get size(): number {
    return this.visible.size;
  }

  /** Makes the writes to `key` (or to every key) durable. */
  sync(key?: string): void {
    this.syncs++;
    for (const k of key === undefined ? [...this.dirty] : [key]) {
      if (!this.dirty.delete(k)) continue;
      if (this.visible.has(k)) this.durable.set(k, this.visible.get(k));
      else this.durable.delete(k);
    }
  }

  /** Keys with writes a power loss would take back. */
  unsynced(): string[] {
    return [...this.dirty];
  }

  /** The power went: what was not synced is gone; the disk holds what it last synced. */
  powerLoss(): void {
    for (const k of this.dirty) {
      if (this.durable.has(k)) this.visible.set(k, this.durable.get(k));
      else this.visible.delete(k);
    }
    this.dirty.clear();
  }
}
