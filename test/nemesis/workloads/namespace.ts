/**
 * Namespace: per directory (the key, n1/ns/D.G), several processes race on a few names with
 * GUARDED creates (of which exactly one may succeed), EXCLUSIVE creates each retried with its own
 * verifier (a retry must answer the file the first attempt made), UNCHECKED creates, renames and
 * removes, against lookups. Checked for linearizability against namespaceModel, wrapped in
 * powerLossModel: every change here is a metadata change, flushed before it is acknowledged
 * (docs/CONSISTENCY.md), so a power loss may take only what no client was told had happened.
 *
 * A file's id is its fileid and a digest of its handle: the fileid alone could come back for
 * another file if a power loss took the create that had it (the counter is stored with the
 * change), while the handle carries a generation that differs.
 *
 * Every call goes over a connection that never resends after reconnecting (session.ts): a
 * GUARDED create or a REMOVE resent to a node that restarted would be executed a second time and
 * answer NFS3ERR_EXIST or NFS3ERR_NOENT for its own first execution — the NFSv3 caveat
 * docs/CONSISTENCY.md names — which would read as a violation. A call without an answer is open.
 */
import { createHash } from 'node:crypto';
import {
  checkLinearizable,
  type NamespaceInput,
  type NamespaceOutput,
  namespaceModel,
  powerLossModel,
} from '../../../src/check/index.js';
import type { nfs_fh3 } from '../../../src/nfs/gen/nfs3.bytes.js';
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
  type Ending,
  finalAttempts,
  makeDirectory,
  makeDirectoryRetrying,
  nfsStatus,
  operate,
  pause,
  Session,
} from './session.js';

const DIRS_PER_NODE = 2;
const OPS_PER_DIR = 150;
const OPEN_PER_DIR = 4;
const PROCESSES_PER_DIR = 3;
/** Few names, so that operations on one name often overlap. */
const NAMES = ['a', 'b', 'c'];
const THINK_MS = 20;

/** The file behind a reply: its fileid and a digest of its handle (see above). */
export function fileId(o: { fh: nfs_fh3; attributes?: { fileid: bigint } }): string {
  const digest = createHash('sha256').update(o.fh.data).digest('hex').slice(0, 8);
  return `${o.attributes?.fileid ?? '?'}:${digest}`;
}

interface Dir {
  readonly key: string;
  readonly node: NodeTarget;
  readonly fh: nfs_fh3;
}

/**
 * One of a node's directory slots, going through directories d0.0, d0.1, ... (keys n1/ns/0.0,
 * n1/ns/0.1, ...): a directory is left after OPS_PER_DIR operations, or OPEN_PER_DIR that ended
 * open, and the next one made. Open operations, which may take effect anywhere after their call,
 * and power losses, which may undo any change not yet acknowledged, multiply the orders the
 * checker must try: bounding both per key keeps its search small.
 */
class Slot {
  readonly dirs: Dir[] = [];
  /** Operations invoked in the newest directory, and those of them that ended open. */
  ops = 0;
  opens = 0;
  private opening: Promise<Dir | undefined> | undefined;

  constructor(
    readonly node: NodeTarget,
    private readonly parent: nfs_fh3,
    readonly d: number,
  ) {}

  /** The directory to work in: the newest, or the next once it is full; undefined once aborted. */
  async current(ctx: WorkloadContext, session: Session): Promise<Dir | undefined> {
    if (this.dirs.length > 0 && this.ops < OPS_PER_DIR && this.opens < OPEN_PER_DIR) return this.dirs.at(-1);
    this.opening ??= this.open(ctx, session).finally(() => {
      this.opening = undefined;
    });
    return this.opening;
  }

  /** Makes the next directory; not an operation of the history, retried until it exists. */
  private async open(ctx: WorkloadContext, session: Session): Promise<Dir | undefined> {
    const g = this.dirs.length;
    const fh = await makeDirectoryRetrying(ctx, session, this.parent, `d${this.d}.${g}`);
    if (fh === undefined) return undefined;
    const dir = { key: `${this.node.name}/ns/${this.d}.${g}`, node: this.node, fh };
    this.dirs.push(dir);
    this.ops = 0;
    this.opens = 0;
    return dir;
  }
}

async function setupNode(ctx: WorkloadContext, node: NodeTarget): Promise<Slot[]> {
  const session = new Session(node, 30_000);
  try {
    const c = (await session.client())!;
    const top = await makeDirectory(c, await c.mount(node.exportPath), 'ns');
    // A run's directories are its own, empty at the start, as the model's are.
    const run = await makeDirectory(c, top, `r${ctx.random.int(1 << 30).toString(36)}`);
    const slots = Array.from({ length: DIRS_PER_NODE }, (_, d) => new Slot(node, run, d));
    for (const slot of slots) await slot.current(ctx, session);
    return slots;
  } finally {
    await session.close();
  }
}

/** The next operation of one process; `lastExclusive` is its latest EXCLUSIVE create, to retry. */
function choose(ctx: WorkloadContext, lastExclusive: NamespaceInput | undefined): NamespaceInput {
  const name = () => NAMES[ctx.random.int(NAMES.length)];
  const x = ctx.random.next();
  if (x < 0.25) return { f: 'create', name: name(), mode: 'guarded' };
  if (x < 0.4) {
    if (lastExclusive !== undefined && ctx.random.next() < 0.5) return lastExclusive;
    const verf = Array.from({ length: 8 }, () => ctx.random.int(256).toString(16).padStart(2, '0')).join('');
    return { f: 'create', name: name(), mode: 'exclusive', verf };
  }
  if (x < 0.45) return { f: 'create', name: name(), mode: 'unchecked' };
  if (x < 0.6) return { f: 'remove', name: name() };
  if (x < 0.75) {
    const from = name();
    const others = NAMES.filter((n) => n !== from);
    return { f: 'rename', from, to: others[ctx.random.int(others.length)] };
  }
  return { f: 'lookup', name: name() };
}

/** Runs `input` on `dir`; the answers the model reads, or the error as the server gave it. */
async function perform(
  ctx: WorkloadContext,
  session: Session,
  process: string,
  dir: Dir,
  input: NamespaceInput,
): Promise<Ending | undefined> {
  const named = (o: { fh: nfs_fh3; attributes?: { fileid: bigint } }): NamespaceOutput => ({ id: fileId(o) });
  return operate(
    ctx,
    session,
    process,
    dir.key,
    input,
    async (c, o): Promise<NamespaceOutput> => {
      switch (input.f) {
        case 'create':
          if (input.mode === 'exclusive')
            return named(
              await c.create(
                dir.fh,
                input.name,
                { mode: 'EXCLUSIVE', verifier: Buffer.from(input.verf!, 'hex') },
                o,
              ),
            );
          return named(
            await c.create(
              dir.fh,
              input.name,
              { mode: input.mode === 'guarded' ? 'GUARDED' : 'UNCHECKED' },
              o,
            ),
          );
        case 'remove':
          await c.remove(dir.fh, input.name, o);
          return 'ok';
        case 'rename':
          await c.rename(dir.fh, input.from, dir.fh, input.to, o);
          return 'ok';
        case 'lookup':
          return named(await c.lookup(dir.fh, input.name, o));
      }
    },
    (e): Ending => {
      const status = nfsStatus(e);
      if (status === 'NFS3ERR_EXIST' && input.f === 'create') return { outcome: 'ok', output: 'exist' };
      if (status === 'NFS3ERR_NOENT' && input.f !== 'create') return { outcome: 'ok', output: 'noent' };
      // A lookup changes nothing, whatever went wrong with it.
      return input.f === 'lookup' ? { outcome: 'fail' } : changeEnding(e);
    },
  );
}

/**
 * After an operation that did not succeed: returns once the node answers a NULL call, so that an
 * outage leaves one open operation per process instead of one per timeout.
 */
async function answering(ctx: WorkloadContext, session: Session): Promise<void> {
  while (!ctx.signal.aborted) {
    const c = await session.client(ctx.signal);
    if (c === undefined) return;
    try {
      await c.null({ timeoutMs: ctx.opTimeoutMs });
      return;
    } catch {
      session.reset();
      await pause(200, ctx.signal);
    }
  }
}

async function client(ctx: WorkloadContext, slot: Slot, p: number): Promise<void> {
  const session = new Session(slot.node, ctx.opTimeoutMs);
  const process = `${slot.node.name}/ns#${slot.d}.${p}`;
  let lastExclusive: NamespaceInput | undefined;
  let lastDir: Dir | undefined;
  try {
    while (!ctx.signal.aborted) {
      const dir = await slot.current(ctx, session);
      if (dir === undefined) break;
      // A retry is a retry only in the directory of the first attempt.
      if (dir !== lastDir) lastExclusive = undefined;
      lastDir = dir;
      const input = choose(ctx, lastExclusive);
      if (input.f === 'create' && input.mode === 'exclusive') lastExclusive = input;
      slot.ops++;
      const ending = await perform(ctx, session, process, dir, input);
      if (ending === undefined) break;
      if (ending.outcome === 'open' && dir === slot.dirs.at(-1)) slot.opens++;
      if (ending.outcome !== 'ok') await answering(ctx, session);
      await pause(ctx.random.next() * 2 * THINK_MS, ctx.signal);
    }
  } finally {
    await session.close();
  }
}

/** An operation's kind for the report's counts: creates by their mode. */
function kindOf(input: unknown): string {
  const i = input as NamespaceInput;
  return i.f === 'create' ? `create ${i.mode}` : i.f;
}

export function create(): Workload {
  let slots: Slot[] = [];
  return {
    name: 'namespace',
    async setup(ctx) {
      slots = (await Promise.all(ctx.nodes.map((n) => setupNode(ctx, n)))).flat();
    },
    async run(ctx) {
      await Promise.all(
        slots.flatMap((slot) => Array.from({ length: PROCESSES_PER_DIR }, (_, p) => client(ctx, slot, p))),
      );
    },
    async final(ctx) {
      // Every name looked up once more in every directory, now that the faults are healed.
      await Promise.all(
        slots
          .flatMap((slot) => slot.dirs)
          .map(async (d) => {
            const session = new Session(d.node, ctx.opTimeoutMs);
            try {
              for (const name of NAMES) {
                await finalAttempts(
                  ctx,
                  `namespace: no final lookup of ${name} in ${d.key} succeeded`,
                  async () =>
                    (await perform(ctx, session, `${d.key}#final`, d, { f: 'lookup', name }))?.outcome ===
                    'ok',
                );
              }
            } finally {
              await session.close();
            }
          }),
      );
    },
    check(history): CheckReport {
      const result = checkLinearizable(powerLossModel(namespaceModel()), history, { timeoutMs: 120_000 });
      return linearizabilityReport('namespace', history, result, countOperations(history, kindOf));
    },
  };
}
