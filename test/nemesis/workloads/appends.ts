/**
 * Appends: one writer process per file fills fixed-width slots in order (its k-th append writes
 * slot k, at offset k * SLOT), and reader processes read the whole file in one READ and report it
 * slot by slot. Checked with checkAppend (src/check/append.ts): every slot holds its own append's
 * token or reads as a hole, no acknowledged append is missing from a read invoked after it, and a
 * token seen does not vanish unless a power loss could have taken it before it was durable.
 *
 * An append is acknowledged (recorded ok) only once it is durable, in either of the two ways NFSv3
 * offers, chosen at random: a FILE_SYNC WRITE answered FILE_SYNC; or an UNSTABLE WRITE followed by
 * a COMMIT whose verifier is the WRITE's. A COMMIT with another verifier means the node restarted
 * in between and may have lost the write, so it is sent again and committed again (RFC 1813,
 * section 3.3.7), as long as the operation timeout allows.
 *
 * A file is closed after SLOTS_PER_FILE appends and the writer goes on in a new one (key
 * n1/append/W.F for writer W's F-th file), so that one READ always covers a whole file.
 */
import { type AppendInput, checkAppend } from '../../../src/check/index.js';
import type { NfsClient } from '../../../src/nfs/client.js';
import { FILE_SYNC, type nfs_fh3, UNSTABLE } from '../../../src/nfs/gen/nfs3.bytes.js';
import type { CallOptions } from '../../../src/rpc/index.js';
import { NemesisError } from '../base.js';
import {
  type CheckReport,
  collectionReport,
  type NodeTarget,
  type Workload,
  type WorkloadContext,
} from '../workload.js';
import {
  changeEnding,
  type Ending,
  finalAttempts,
  makeDirectory,
  nfsStatus,
  operate,
  pause,
  Session,
} from './session.js';

export const SLOT = 32;
const SLOTS_PER_FILE = 1000;
const WRITERS_PER_NODE = 2;
const READERS_PER_NODE = 2;
const APPEND_THINK_MS = 10;
const READ_THINK_MS = 40;
/** How many times an UNSTABLE append is sent again after its COMMIT showed a new verifier. */
const MAX_RESENDS = 5;

/** A slot's bytes: the token, padded with dots, and a newline (so the file reads as text). */
export function encodeSlot(token: string): Buffer {
  if (token.length > SLOT - 1 || token.endsWith('.') || !/^[\x21-\x7e]+$/.test(token))
    throw new RangeError(`bad append token ${JSON.stringify(token)}`);
  return Buffer.from(`${token.padEnd(SLOT - 1, '.')}\n`, 'latin1');
}

/**
 * A file's content slot by slot: a token, null for a hole (all zeros), or for anything else a
 * string starting with '!' that no append writes, which the checker reports as never written.
 */
export function decodeSlots(data: Uint8Array): (string | null)[] {
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const slots: (string | null)[] = [];
  for (let at = 0; at < b.length; at += SLOT) {
    const slot = b.subarray(at, at + SLOT);
    if (slot.every((x) => x === 0)) {
      slots.push(slot.length === SLOT ? null : `!short hole (${slot.length} bytes)`);
      continue;
    }
    const token = slot.toString('latin1').replace(/\.*\n$/, '');
    let good = false;
    try {
      good = slot.length === SLOT && encodeSlot(token).equals(slot);
    } catch {}
    slots.push(good ? token : `!unwritten bytes ${JSON.stringify(slot.toString('latin1'))}`);
  }
  return slots;
}

const sameBytes = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b) === 0;

/**
 * Makes `data` at `offset` durable: FILE_SYNC, or UNSTABLE and COMMIT until the COMMIT's verifier
 * is the WRITE's. `mayBeApplied` is told when a WRITE succeeded or got no answer: from then on the
 * bytes may be in the file whatever happens next.
 */
async function durableWrite(
  c: NfsClient,
  fh: nfs_fh3,
  offset: number,
  data: Buffer,
  fileSync: boolean,
  o: CallOptions,
  mayBeApplied: () => void,
): Promise<void> {
  for (let attempt = 0; attempt <= MAX_RESENDS; attempt++) {
    const stable = fileSync && attempt === 0 ? FILE_SYNC : UNSTABLE;
    const w = await c.write(fh, offset, data, stable, o).catch((e: unknown) => {
      if (nfsStatus(e) === undefined) mayBeApplied();
      throw e;
    });
    mayBeApplied();
    if (w.count !== data.length)
      throw new NemesisError(`WRITE of ${data.length} bytes answered count ${w.count}`);
    if (w.committed === FILE_SYNC) return;
    const cm = await c.commit(fh, offset, data.length, o);
    if (sameBytes(cm.verf, w.verf)) return;
  }
  throw new NemesisError(`the write verifier changed ${MAX_RESENDS + 1} times between WRITE and COMMIT`);
}

interface AppendFile {
  readonly key: string;
  readonly fh: nfs_fh3;
}

/** One node's files: the directory, and each writer's files in order. */
class NodeFiles {
  readonly files: AppendFile[][] = Array.from({ length: WRITERS_PER_NODE }, () => []);

  constructor(
    readonly node: NodeTarget,
    readonly dir: nfs_fh3,
  ) {}

  /**
   * Writer `w`'s next file, created before its first append (not an operation of the history:
   * retried until it exists). Undefined once `ctx.signal` aborts.
   */
  async open(ctx: WorkloadContext, session: Session, w: number): Promise<AppendFile | undefined> {
    const f = this.files[w].length;
    const name = `w${w}.${f}`;
    while (!ctx.signal.aborted) {
      const c = await session.client(ctx.signal);
      if (c === undefined) return undefined;
      try {
        const made = await c.create(this.dir, name, { mode: 'UNCHECKED' }, { timeoutMs: ctx.opTimeoutMs });
        const file = { key: `${this.node.name}/append/${w}.${f}`, fh: made.fh };
        this.files[w].push(file);
        return file;
      } catch (e) {
        if (nfsStatus(e) === undefined) session.reset();
        await pause(200, ctx.signal);
      }
    }
    return undefined;
  }

  all(): AppendFile[] {
    return this.files.flat();
  }
}

async function setupNode(node: NodeTarget): Promise<NodeFiles> {
  const session = new Session(node, 30_000);
  try {
    const c = (await session.client())!;
    return new NodeFiles(node, await makeDirectory(c, await c.mount(node.exportPath), 'append'));
  } finally {
    await session.close();
  }
}

async function writer(ctx: WorkloadContext, files: NodeFiles, w: number): Promise<void> {
  const session = new Session(files.node, ctx.opTimeoutMs);
  const process = `${files.node.name}/append#w${w}`;
  try {
    while (!ctx.signal.aborted) {
      const file = await files.open(ctx, session, w);
      if (file === undefined) break;
      for (let k = 0; k < SLOTS_PER_FILE && !ctx.signal.aborted; k++) {
        const token = `${file.key.replace(/\/append\//, ':')}:${k}`;
        const fileSync = ctx.random.next() < 0.5;
        let applied = false;
        const ending = await operate(
          ctx,
          session,
          process,
          file.key,
          { f: 'append', value: token } satisfies AppendInput,
          async (c, o) => {
            await durableWrite(c, file.fh, k * SLOT, encodeSlot(token), fileSync, o, () => {
              applied = true;
            });
            return undefined;
          },
          // NFS3ERR_NOSPC proves nothing changed only if no earlier WRITE of this append may have
          // been applied: a COMMIT that fails on a full disk leaves its WRITE in place, visible.
          (e): Ending => (applied ? { outcome: 'open' } : changeEnding(e)),
        );
        if (ending === undefined) break;
        await pause(ctx.random.next() * 2 * APPEND_THINK_MS, ctx.signal);
      }
    }
  } finally {
    await session.close();
  }
}

/** One READ of the whole file (a file never exceeds SLOTS_PER_FILE slots), slot by slot. */
function read(ctx: WorkloadContext, session: Session, process: string, file: AppendFile) {
  return operate(
    ctx,
    session,
    process,
    file.key,
    { f: 'read' } satisfies AppendInput,
    async (c, o) => {
      const r = await c.read(file.fh, 0, (SLOTS_PER_FILE + 1) * SLOT, o);
      if (!r.eof) throw new NemesisError(`a READ of ${r.data.length} bytes did not reach the end`);
      return decodeSlots(r.data);
    },
    // A read changes nothing, but an I/O error means damaged data: a slot nobody wrote.
    (e): Ending =>
      nfsStatus(e) === 'NFS3ERR_IO' ? { outcome: 'ok', output: ['!NFS3ERR_IO'] } : { outcome: 'fail' },
  );
}

async function reader(ctx: WorkloadContext, files: NodeFiles, r: number): Promise<void> {
  const session = new Session(files.node, ctx.opTimeoutMs);
  const process = `${files.node.name}/append#r${r}`;
  try {
    while (!ctx.signal.aborted) {
      // Mostly a file being written; now and then a closed one.
      const w = ctx.random.int(WRITERS_PER_NODE);
      const mine = files.files[w];
      const f = mine.length > 1 && ctx.random.next() < 0.2 ? ctx.random.int(mine.length) : mine.length - 1;
      if (f >= 0) await read(ctx, session, process, mine[f]);
      await pause(ctx.random.next() * 2 * READ_THINK_MS, ctx.signal);
    }
  } finally {
    await session.close();
  }
}

export function create(): Workload {
  let nodes: NodeFiles[] = [];
  return {
    name: 'appends',
    async setup(ctx) {
      nodes = await Promise.all(ctx.nodes.map(setupNode));
    },
    async run(ctx) {
      await Promise.all(
        nodes.flatMap((n) => [
          ...Array.from({ length: WRITERS_PER_NODE }, (_, w) => writer(ctx, n, w)),
          ...Array.from({ length: READERS_PER_NODE }, (_, r) => reader(ctx, n, r)),
        ]),
      );
    },
    async final(ctx) {
      await Promise.all(
        nodes.map(async (n) => {
          const session = new Session(n.node, ctx.opTimeoutMs);
          try {
            for (const file of n.all()) {
              await finalAttempts(
                ctx,
                `appends: no final read of ${file.key} succeeded`,
                async () => (await read(ctx, session, `${n.node.name}/append#final`, file))?.outcome === 'ok',
              );
            }
          } finally {
            await session.close();
          }
        }),
      );
    },
    check(history): CheckReport {
      // Each acknowledgement vouches for its own slot only: a FILE_SYNC WRITE need not make an
      // earlier UNSTABLE one stable, as a COMMIT would.
      return collectionReport('appends', checkAppend(history, { acksFlushEarlier: false }));
    },
  };
}
