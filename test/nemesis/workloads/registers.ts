/**
 * Registers: one small file per key, written whole with FILE_SYNC and read back, by several
 * client processes per key, every value written once. Checked for linearizability with the
 * power-loss rule of docs/CONSISTENCY.md (`powerLossModel`): no acknowledged write lost, no value
 * read that was never written, every read seeing the latest write before it.
 *
 * A write must be one change from a reader's point of view, so every file always has its key's
 * fixed length (set once, before the run) and every value fills it exactly, in one WRITE at offset
 * 0: no truncation, no growth, nothing a reader could see half done. The value's text is repeated
 * to the end of the file, so a read that mixed two writes shows as a value never written.
 * Even keys are 64 bytes, held inline in the store's records; odd keys are 6,000, past the inline
 * limit, so their every write is a new block.
 */
import {
  checkLinearizable,
  type History,
  powerLossModel,
  type RegisterInput,
  registerModel,
} from '../../../src/check/index.js';
import { FILE_SYNC, type nfs_fh3 } from '../../../src/nfs/gen/nfs3.bytes.js';
import {
  type CheckReport,
  linearizabilityReport,
  type NodeTarget,
  type Workload,
  type WorkloadContext,
} from '../workload.js';
import {
  changeEnding,
  countOperations,
  finalAttempts,
  makeDirectory,
  nfsStatus,
  operate,
  pause,
  Session,
} from './session.js';

const KEYS_PER_NODE = 4;
const PROCESSES_PER_KEY = 2;
const WIDTHS = [64, 6000];
/** Mean pause between one process's operations, so that the history stays checkable. */
const THINK_MS = 15;

const widthOf = (k: number) => WIDTHS[k % WIDTHS.length];

/** The file's content for `value`: its text and a separator, repeated to exactly `width` bytes. */
export function encodeValue(value: string, width: number): Buffer {
  const unit = Buffer.from(`${value};`);
  const out = Buffer.alloc(width);
  for (let i = 0; i < width; i += unit.length) unit.copy(out, i);
  return out;
}

/**
 * What a read of the file shows: null for a file never written (all zeros); the value; or, for
 * content no write put there (two writes mixed, a short file), a string starting with '!' that no
 * process writes, which the checker then reports as a value never written.
 */
export function decodeValue(data: Uint8Array, width: number): string | null {
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (b.length === width && b.every((x) => x === 0)) return null;
  const text = b.subarray(0, Math.max(0, b.indexOf(';'))).toString('latin1');
  if (b.length === width && text !== '' && encodeValue(text, width).equals(b)) return text;
  return `!unwritten content (${b.length} bytes): ${JSON.stringify(b.subarray(0, 24).toString('latin1'))}`;
}

interface Register {
  readonly key: string;
  readonly node: NodeTarget;
  readonly width: number;
  readonly fh: nfs_fh3;
}

async function setupNode(ctx: WorkloadContext, node: NodeTarget): Promise<Register[]> {
  const session = new Session(node, 30_000);
  try {
    const c = (await session.client())!;
    const dir = await makeDirectory(c, await c.mount(node.exportPath), 'reg');
    const out: Register[] = [];
    for (let k = 0; k < KEYS_PER_NODE; k++) {
      const width = widthOf(k);
      // Zeros of the full length: reads see "never written" (null), and every write replaces it all.
      const f = await c.create(dir, `k${k}`, { mode: 'UNCHECKED', attributes: { size: width } });
      out.push({ key: `${node.name}/reg/${k}`, node, width, fh: f.fh });
    }
    ctx.log(`registers: ${out.length} keys on ${node.name}`);
    return out;
  } finally {
    await session.close();
  }
}

async function read(ctx: WorkloadContext, session: Session, process: string, r: Register) {
  return operate(
    ctx,
    session,
    process,
    r.key,
    { f: 'read' } satisfies RegisterInput,
    async (c, o) => decodeValue((await c.read(r.fh, 0, r.width, o)).data, r.width),
    // A read changes nothing: it fails whatever went wrong. But an I/O error means damaged data,
    // and a stale handle a file gone that setup's acknowledged CREATE made (no register is ever
    // removed), both of which the contract rules out: each is recorded as a read of content
    // nobody wrote.
    (e) => {
      const status = nfsStatus(e);
      return status === 'NFS3ERR_IO' || status === 'NFS3ERR_STALE'
        ? { outcome: 'ok', output: `!${status}` }
        : { outcome: 'fail' };
    },
  );
}

async function write(ctx: WorkloadContext, session: Session, process: string, r: Register, value: string) {
  return operate(
    ctx,
    session,
    process,
    r.key,
    { f: 'write', value } satisfies RegisterInput,
    async (c, o) => {
      const w = await c.write(r.fh, 0, encodeValue(value, r.width), FILE_SYNC, o);
      // A short or unstable answer to a whole FILE_SYNC write: what is stored is unknown.
      if (w.count !== r.width || w.committed !== FILE_SYNC)
        throw new Error(`WRITE answered count ${w.count}, committed ${w.committed}`);
      return undefined;
    },
    changeEnding,
  );
}

async function client(ctx: WorkloadContext, r: Register, p: number): Promise<void> {
  const session = new Session(r.node, ctx.opTimeoutMs);
  const process = `${r.key}#${p}`;
  let seq = 0;
  try {
    while (!ctx.signal.aborted) {
      if (ctx.random.next() < 0.5) await write(ctx, session, process, r, `${p}.${seq++}`);
      else await read(ctx, session, process, r);
      await pause(ctx.random.next() * 2 * THINK_MS, ctx.signal);
    }
  } finally {
    await session.close();
  }
}

/**
 * The history without the open writes whose value no read of their key returned. Values are
 * unique per key, so such a write can only ever have been overwritten or lost before anyone
 * looked: leaving it out changes no verdict, and each one left in multiplies the orders the search
 * must try (a partition or a crash leaves dozens open).
 */
export function withoutUnread(history: History): History {
  const seen = (key: string, value: unknown) => `${key}\n${JSON.stringify(value)}`;
  const read = new Set<string>();
  for (const op of history)
    if (op.outcome === 'ok' && (op.input as RegisterInput).f === 'read') read.add(seen(op.key, op.output));
  return history.filter((op) => {
    const input = op.input as RegisterInput;
    return !(op.outcome === 'open' && input.f === 'write' && !read.has(seen(op.key, input.value)));
  });
}

export function create(): Workload {
  let registers: Register[] = [];
  return {
    name: 'registers',
    async setup(ctx) {
      registers = (await Promise.all(ctx.nodes.map((n) => setupNode(ctx, n)))).flat();
    },
    async run(ctx) {
      await Promise.all(
        registers.flatMap((r) => Array.from({ length: PROCESSES_PER_KEY }, (_, p) => client(ctx, r, p))),
      );
    },
    async final(ctx) {
      // Every key read once more until a read succeeds, now that the faults are healed.
      await Promise.all(
        registers.map(async (r) => {
          const session = new Session(r.node, ctx.opTimeoutMs);
          try {
            await finalAttempts(
              ctx,
              `registers: no final read of ${r.key} succeeded`,
              async () => (await read(ctx, session, `${r.key}#final`, r))?.outcome === 'ok',
            );
          } finally {
            await session.close();
          }
        }),
      );
    },
    check(history): CheckReport {
      const checked = withoutUnread(history);
      const result = checkLinearizable(powerLossModel(registerModel()), checked, { timeoutMs: 120_000 });
      return linearizabilityReport('registers', history, result, {
        ...countOperations(history),
        'open writes never read (left out)': history.length - checked.length,
      });
    },
  };
}
