import { XdrWriter } from '../xdr/index.js';

const SLAB_SIZE = 64 << 10;
/** With less room than this left, a message starts a new slab rather than risk growing. */
const MIN_ROOM = 8 << 10;

/**
 * Encodes messages one after another into a shared 64 KiB slab and hands each out as a view of
 * it. A message costs no allocation of its own and no grow-and-copy (a fresh XdrWriter starts at
 * 256 bytes and doubles), and messages encoded in one tick lie back to back, so a transport can
 * send them as one buffer. Bytes once handed out are never written again: a message stays valid
 * as long as anyone holds it (a call kept for retransmission pins its slab, nothing more).
 */
export class SlabWriter {
  private slab: Buffer = Buffer.allocUnsafeSlow(SLAB_SIZE);
  private off = 0;
  private w = new XdrWriter(0);
  private busy = false;

  /** A writer whose buffer is the free rest of the slab; `finish` must follow before the next. */
  begin(): XdrWriter {
    if (this.busy) {
      // An encoder re-entered (a custom codec that makes a call): give it a writer of its own.
      return new XdrWriter(256);
    }
    this.busy = true;
    if (this.slab.length - this.off < MIN_ROOM) {
      this.slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
      this.off = 0;
    }
    let w = this.w;
    // A writer that referenced a large opaque keeps those chunks: start clean.
    if (w.length !== w.pos) w = this.w = new XdrWriter(0);
    w.buf = this.slab.subarray(this.off);
    w.pos = 0;
    return w;
  }

  /** The encoded message as chunks for `writev` (one chunk unless a large opaque was referenced). */
  finish(w: XdrWriter): Buffer[] {
    if (w !== this.w) return w.finishChunks();
    this.busy = false;
    const buf = w.buf;
    const slab = this.slab;
    if (buf.buffer === slab.buffer) {
      this.off = buf.byteOffset - slab.byteOffset + w.pos;
    } else if (buf.length - w.pos >= MIN_ROOM) {
      // The message outgrew the slab into a buffer of the writer's own: carry on in that one.
      this.slab = buf;
      this.off = w.pos;
    } else {
      this.off = slab.length;
    }
    const out = w.length === w.pos ? [buf.subarray(0, w.pos)] : w.finishChunks();
    // Never write through the old view again; the next `begin` sets a new one.
    w.buf = EMPTY;
    w.pos = 0;
    return out;
  }

  /** Abandons a message whose encoding failed; its bytes are simply not handed out. */
  abort(w: XdrWriter): void {
    if (w !== this.w) return;
    this.busy = false;
    this.w = new XdrWriter(0);
  }
}

const EMPTY = Buffer.alloc(0);
