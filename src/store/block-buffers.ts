/**
 * Memory for blocks read from disk, reused instead of left to the garbage collector. A 1 MiB
 * buffer per block load made V8 run a full mark-compact every 15 MiB or so of a sequential read
 * (external memory grows with every buffer until a collection frees the old ones): half of the
 * event loop's time went to it. A loaded block's buffer returns to the pool once the cache has
 * dropped the block and every read it was lent to has released it; a read that keeps the data
 * (`keep`) takes the buffer out of the pool's hands for good.
 */

/** A block's content lent to one reader: `release` when done with `data`, or `keep` it for good. */
export interface HeldBlock {
  readonly data: Uint8Array;
  release(): void;
  /** The reader owns `data` from now on (its buffer is never reused); releases the hold. */
  keep(): void;
}

/** Fixed-size buffers for block reads: `take` one, `give` it back when nothing refers to it. */
export class BlockBufferPool {
  private readonly free: Buffer[] = [];

  constructor(
    readonly bufferBytes: number,
    private readonly maxFree: number,
  ) {}

  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.bufferBytes);
  }

  give(buf: Buffer): void {
    if (this.free.length < this.maxFree) this.free.push(buf);
  }
}

/**
 * A verified block in memory, counted while the cache holds it and while reads hold it. `buffer`
 * is the pool's memory under `data` (undefined for content the store did not read into pooled
 * memory: a block just written, or one an I/O layer returned in its own buffer).
 */
export class LoadedBlock {
  private holds = 0;
  private cached = false;
  private kept = false;

  constructor(
    readonly data: Uint8Array,
    private buffer?: Buffer,
    private readonly pool?: BlockBufferPool,
  ) {}

  /** A new hold, for a reader that got the block from the cache. */
  hold(): HeldBlock {
    this.holds++;
    return this.held();
  }

  /** Holds for `n` readers at once (those waiting for the load); each then calls `held`. */
  reserve(n: number): void {
    this.holds += n;
  }

  /** The handle of a hold already counted by `reserve`. */
  held(): HeldBlock {
    let done = false;
    const release = () => {
      if (done) return;
      done = true;
      this.holds--;
      this.recycle();
    };
    return {
      data: this.data,
      release,
      keep: () => {
        this.kept = true;
        release();
      },
    };
  }

  setCached(cached: boolean): void {
    this.cached = cached;
    this.recycle();
  }

  private recycle(): void {
    if (this.holds > 0 || this.cached || this.kept || !this.buffer || !this.pool) return;
    this.pool.give(this.buffer);
    this.buffer = undefined;
  }
}

/** Content that is not pooled (inline chunk content, a block just written): holds are free. */
export function unpooled(data: Uint8Array): HeldBlock {
  return { data, release: noop, keep: noop };
}

function noop(): void {}
