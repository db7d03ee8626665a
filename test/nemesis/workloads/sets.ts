/**
 * Sets: uniquely named files created (GUARDED) in a directory, and the directory listed whole
 * (READDIR). Each directory is a set; checked with checkSet (src/check/set.ts): no value listed
 * that was never added, none lost once its create was acknowledged, none gone from a later listing
 * unless a power loss could have taken it before it was durable.
 *
 * A set is closed after SET_SIZE adds and the next one opened, so that listings stay small: each
 * node's sets are directories set/g0, set/g1, ... (keys n1/set/0, n1/set/1, ...). Every set is
 * listed once more in the final phase.
 */
import { checkSet, type SetInput } from '../../../src/check/index.js';
import { nameText } from '../../../src/nfs/client.js';
import type { nfs_fh3 } from '../../../src/nfs/gen/nfs3.bytes.js';
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
  makeDirectoryRetrying,
  nfsStatus,
  operate,
  pause,
  Session,
} from './session.js';

const ADDERS_PER_NODE = 2;
const SET_SIZE = 300;
const ADD_THINK_MS = 15;
const READ_THINK_MS = 60;

/** One node's sets: the directory holding them, and each set's directory once made. */
class NodeSets {
  readonly dirs: nfs_fh3[] = [];
  /** Adds invoked in the newest set. */
  adds = 0;
  private opening: Promise<nfs_fh3 | undefined> | undefined;

  constructor(
    readonly node: NodeTarget,
    readonly parent: nfs_fh3,
  ) {}

  key(g: number): string {
    return `${this.node.name}/set/${g}`;
  }

  /**
   * The set to add to next, opening the following one once this one is full. Making its directory
   * is not an operation of the history: it is retried until it exists (a MKDIR that answered
   * EXIST, after one that timed out, made it).
   */
  async current(ctx: WorkloadContext, session: Session): Promise<number | undefined> {
    if (this.dirs.length > 0 && this.adds < SET_SIZE) return this.dirs.length - 1;
    this.opening ??= this.open(ctx, session, this.dirs.length).finally(() => {
      this.opening = undefined;
    });
    const fh = await this.opening;
    return fh === undefined ? undefined : this.dirs.length - 1;
  }

  private async open(ctx: WorkloadContext, session: Session, g: number): Promise<nfs_fh3 | undefined> {
    const fh = await makeDirectoryRetrying(ctx, session, this.parent, `g${g}`);
    if (fh !== undefined) {
      this.dirs.push(fh);
      this.adds = 0;
    }
    return fh;
  }
}

/** The node's directory of sets, and its first set. */
async function setupNode(ctx: WorkloadContext, node: NodeTarget): Promise<NodeSets> {
  const session = new Session(node, 30_000);
  try {
    const c = (await session.client())!;
    const sets = new NodeSets(node, await makeDirectory(c, await c.mount(node.exportPath), 'set'));
    await sets.current(ctx, session);
    return sets;
  } finally {
    await session.close();
  }
}

async function adder(ctx: WorkloadContext, sets: NodeSets, p: number): Promise<void> {
  const session = new Session(sets.node, ctx.opTimeoutMs);
  const process = `${sets.node.name}/set#a${p}`;
  let seq = 0;
  try {
    while (!ctx.signal.aborted) {
      const g = await sets.current(ctx, session);
      if (g === undefined) break;
      sets.adds++;
      const value = `${p}-${seq++}`;
      await operate(
        ctx,
        session,
        process,
        sets.key(g),
        { f: 'add', value } satisfies SetInput,
        async (c, o) => {
          await c.create(sets.dirs[g], value, { mode: 'GUARDED' }, o);
          return undefined;
        },
        // The name is this add's alone: if it exists, this add made it.
        (e): Ending => (nfsStatus(e) === 'NFS3ERR_EXIST' ? { outcome: 'ok' } : changeEnding(e)),
      );
      await pause(ctx.random.next() * 2 * ADD_THINK_MS, ctx.signal);
    }
  } finally {
    await session.close();
  }
}

function list(ctx: WorkloadContext, session: Session, process: string, sets: NodeSets, g: number) {
  return operate(
    ctx,
    session,
    process,
    sets.key(g),
    { f: 'read' } satisfies SetInput,
    async (c, o) =>
      (await c.readdirAll(sets.dirs[g], 32_768, o))
        .map((e) => nameText(e.name))
        .filter((n) => n !== '.' && n !== '..')
        .sort(),
    // A listing changes nothing, but an I/O error means damaged data: a value nobody added.
    (e): Ending =>
      nfsStatus(e) === 'NFS3ERR_IO' ? { outcome: 'ok', output: ['!NFS3ERR_IO'] } : { outcome: 'fail' },
  );
}

async function reader(ctx: WorkloadContext, sets: NodeSets): Promise<void> {
  const session = new Session(sets.node, ctx.opTimeoutMs);
  try {
    while (!ctx.signal.aborted) {
      // The newest set; the one before it now and then, for adds it took before it closed.
      const newest = sets.dirs.length - 1;
      const g = newest > 0 && ctx.random.next() < 0.2 ? newest - 1 : newest;
      await list(ctx, session, `${sets.node.name}/set#r`, sets, g);
      await pause(ctx.random.next() * 2 * READ_THINK_MS, ctx.signal);
    }
  } finally {
    await session.close();
  }
}

export function create(): Workload {
  let nodes: NodeSets[] = [];
  return {
    name: 'sets',
    async setup(ctx) {
      nodes = await Promise.all(ctx.nodes.map((n) => setupNode(ctx, n)));
    },
    async run(ctx) {
      await Promise.all(
        nodes.flatMap((n) => [
          reader(ctx, n),
          ...Array.from({ length: ADDERS_PER_NODE }, (_, p) => adder(ctx, n, p)),
        ]),
      );
    },
    async final(ctx) {
      await Promise.all(
        nodes.map(async (n) => {
          const session = new Session(n.node, ctx.opTimeoutMs);
          try {
            for (let g = 0; g < n.dirs.length; g++) {
              await finalAttempts(
                ctx,
                `sets: no final listing of ${n.key(g)} succeeded`,
                async () => (await list(ctx, session, `${n.node.name}/set#final`, n, g))?.outcome === 'ok',
              );
            }
          } finally {
            await session.close();
          }
        }),
      );
    },
    check(history): CheckReport {
      return collectionReport('sets', checkSet(history));
    },
  };
}
