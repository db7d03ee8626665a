/**
 * nfs-cp: libnfs's command-line clients, real programs run from the client namespace, copy files
 * of seeded random content into a node (nfs-cp) and read them back (nfs-cat). Each file is
 * written once, under a name of its own (nfs-cp refuses to overwrite), and is a register whose
 * value is the sha256 of its content (key n1/cp/P.N): the copy is a write of it, every nfs-cat a
 * read.
 *
 * What an nfs-cp that exits 0 promises. libnfs 4.0 (Debian 12) creates the file with a GUARDED
 * CREATE, truncates it with SETATTR, sends the data in WRITEs of 1 MiB with stable UNSTABLE, and
 * on close sends a COMMIT, but ignores the COMMIT's answer: nfs-cp exits 0 after a COMMIT that
 * failed (NFS3ERR_IO) and after one whose verifier differs from the WRITEs' (the server lost
 * them), without sending anything again (found by answering its COMMIT through a proxy that
 * changed the verifier or the status; its source agrees: nfs-cp never checks nfs_close). So an
 * exit 0 means: the CREATE and SETATTR were acknowledged (durable, docs/CONSISTENCY.md) and every
 * WRITE was acknowledged as UNSTABLE, that is applied, visible and kept across a kill -9, but not
 * durable across a power loss. The copy is recorded ok (applied), and the check holds it to
 * exactly that:
 *
 * - never written: a read shows content that is neither the file's nor an incomplete copy of it
 *   (a prefix of it, with holes of zeros where a WRITE is missing);
 * - lost: a read invoked after the copy exited 0 finds no file (the CREATE was durable), or an
 *   incomplete one while no power loss of the node lies between the copy's start and the read;
 * - disappeared: a read shows less (no file < incomplete < whole) than an earlier read that
 *   returned before it began, and no power loss lies between the two.
 *
 * A copy that fails or hangs past its timeout (it is killed) is open: it may have done any part
 * of its work. Files stop being added once a node holds BYTES_PER_NODE of them, so that the copies
 * never fill the node's small disk by themselves; reads go on.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AnomalyLog, type History, isCrash, type Operation } from '../../../src/check/index.js';
import { SeededRandom } from '../../../src/random.js';
import { makeTempDir, removeTempDir } from '../../support/tmp.js';
import {
  type CheckReport,
  collectionReport,
  type NodeTarget,
  type Workload,
  type WorkloadContext,
} from '../workload.js';
import { finalAttempts, makeDirectory, pause, Session } from './session.js';

const PROCESSES_PER_NODE = 2;
const BYTES_PER_NODE = 12 << 20;
const THINK_MS = 30;
/** nfs-cp starts a process and mounts before it copies: it gets more than one NFS call's time. */
const MIN_TIMEOUT_MS = 10_000;
/** nfs-cat's output beyond this is not a file this workload wrote. */
const MAX_READ = 4 << 20;

export type CopyInput =
  | { readonly f: 'write'; readonly value: string; readonly bytes: number }
  | { readonly f: 'read' };

/**
 * A read's output: null (no such file), the content's sha256 (the whole file), `~N` (N bytes of
 * an incomplete copy), or a string starting with '!' for content nothing wrote.
 */
export type CopyOutput = string | null;

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** A file's size: mostly small, some up to a few WRITEs of 1 MiB, so that a copy can be partial. */
function fileSize(random: SeededRandom): number {
  const x = random.next();
  if (x < 0.7) return 1 + random.int(16 << 10);
  if (x < 0.97) return (16 << 10) + random.int(240 << 10);
  return (1 << 20) + random.int(3 << 19);
}

/** What a read of `file` shows, as recorded (CopyOutput). */
export function classify(got: Uint8Array, content: Uint8Array): string {
  if (got.length === content.length && Buffer.compare(got, content) === 0) return sha256(content);
  if (got.length <= content.length && got.every((b, i) => b === 0 || b === content[i]))
    return `~${got.length}`;
  return `!${got.length} bytes, sha256 ${sha256(got).slice(0, 16)}`;
}

interface CopyFile {
  readonly key: string;
  readonly name: string;
  readonly content: Buffer;
}

/** One node's files, shared by its processes. */
class NodeFiles {
  readonly files: CopyFile[] = [];
  bytes = 0;

  constructor(
    readonly node: NodeTarget,
    /** The directory under the export, as a path. */
    readonly path: string,
  ) {}

  url(name: string): string {
    const { host, exportPath, nfsPort } = this.node;
    return `nfs://${host}${exportPath}/${this.path}/${name}?version=3&nfsport=${nfsPort}&mountport=${nfsPort}`;
  }
}

async function setupNode(ctx: WorkloadContext, node: NodeTarget): Promise<NodeFiles> {
  const session = new Session(node, 30_000);
  try {
    const c = (await session.client())!;
    const run = `r${ctx.random.int(1 << 30).toString(36)}`;
    await makeDirectory(c, await makeDirectory(c, await c.mount(node.exportPath), 'cp'), run);
    return new NodeFiles(node, `cp/${run}`);
  } finally {
    await session.close();
  }
}

interface Exit {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs a libnfs program; killed when `signal` aborts or `timeoutMs` passes (code null then). */
function run(cmd: string, args: string[], timeoutMs: number, signal: AbortSignal): Promise<Exit> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let outBytes = 0;
    let stderr = '';
    let killed = false;
    const kill = () => {
      killed = true;
      child.kill('SIGKILL');
    };
    const timer = setTimeout(kill, timeoutMs);
    signal.addEventListener('abort', kill, { once: true });
    child.stdout.on('data', (b: Buffer) => {
      outBytes += b.length;
      if (outBytes <= MAX_READ) out.push(b);
    });
    child.stderr.setEncoding('utf8').on('data', (s: string) => {
      if (stderr.length < 4096) stderr += s;
    });
    child.on('error', (e) => {
      stderr += e.message;
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', kill);
      resolve({ code: killed ? null : code, stdout: Buffer.concat(out), stderr });
    });
  });
}

async function copy(ctx: WorkloadContext, files: NodeFiles, tmp: string, process: string, key: string) {
  const random = new SeededRandom(ctx.random.int(2 ** 32));
  const content = Buffer.from(random.bytes(fileSize(random)));
  const name = key.split('/').at(-1)!;
  const file: CopyFile = { key, name, content };
  // The source files of every node share one directory.
  const src = join(tmp, `${files.node.name}-${name}`);
  writeFileSync(src, content);
  files.files.push(file);
  files.bytes += content.length;
  const id = ctx.recorder.invoke(process, key, { f: 'write', value: sha256(content), bytes: content.length });
  const r = await run(
    'nfs-cp',
    [src, files.url(name)],
    Math.max(ctx.opTimeoutMs, MIN_TIMEOUT_MS),
    ctx.signal,
  );
  rmSync(src, { force: true });
  if (r.code === 0) ctx.recorder.ok(id);
  else ctx.recorder.open(id);
}

/** Reads `file` with nfs-cat; whether the read was recorded ok. */
async function read(
  ctx: WorkloadContext,
  files: NodeFiles,
  process: string,
  file: CopyFile,
): Promise<boolean> {
  const id = ctx.recorder.invoke(process, file.key, { f: 'read' });
  const r = await run(
    'nfs-cat',
    [files.url(file.name)],
    Math.max(ctx.opTimeoutMs, MIN_TIMEOUT_MS),
    ctx.signal,
  );
  if (r.code === 0) ctx.recorder.ok(id, classify(r.stdout, file.content));
  else if (r.stderr.includes(`Lookup of /${file.name} failed with NFS3ERR_NOENT`)) ctx.recorder.ok(id, null);
  // NFS3ERR_IO is damaged data, which the contract rules out: content nobody wrote.
  else if (/NFS3ERR_IO/.test(r.stderr)) ctx.recorder.ok(id, '!NFS3ERR_IO');
  else {
    ctx.recorder.fail(id);
    return false;
  }
  return true;
}

async function client(ctx: WorkloadContext, files: NodeFiles, tmp: string, p: number): Promise<void> {
  const process = `${files.node.name}/cp#${p}`;
  let n = 0;
  while (!ctx.signal.aborted) {
    if (files.bytes < BYTES_PER_NODE && (files.files.length === 0 || ctx.random.next() < 0.5)) {
      await copy(ctx, files, tmp, process, `${files.node.name}/cp/${p}.${n++}`);
    } else if (files.files.length > 0) {
      // Mostly a recent file, whose copy may still be under way.
      const recent = Math.min(files.files.length, 8);
      const i =
        ctx.random.next() < 0.7
          ? files.files.length - 1 - ctx.random.int(recent)
          : ctx.random.int(files.files.length);
      await read(ctx, files, process, files.files[i]);
    }
    await pause(ctx.random.next() * 2 * THINK_MS, ctx.signal);
  }
}

const LEVEL = (out: CopyOutput): number => (out === null ? 0 : out.startsWith('~') ? 1 : 2);
const LEVEL_NAME = ['no file', 'an incomplete file', 'the whole file'];

function describe(op: Operation): string {
  const input = op.input as CopyInput;
  if (input.f === 'write') return `nfs-cp ${input.bytes} bytes, sha256 ${input.value.slice(0, 12)}`;
  const out = op.output as CopyOutput;
  if (out === null) return 'nfs-cat → no such file';
  if (out.startsWith('~')) return `nfs-cat → ${out.slice(1)} bytes of an incomplete copy`;
  if (out.startsWith('!')) return `nfs-cat → ${out.slice(1)}`;
  return `nfs-cat → the whole file (sha256 ${out.slice(0, 12)})`;
}

/** The rules of this file's comment, key by key. */
export function checkCopies(history: History): CheckReport {
  const log = new AnomalyLog(100);
  const stats: Record<string, number> = { files: 0, 'copies ok': 0, 'copies open': 0, reads: 0, crashes: 0 };
  const crashes = history.filter(isCrash);
  const power = crashes.filter((c) => c.input.kind === 'power');
  stats.crashes = crashes.length;
  const powerBetween = (from: number, to: number) => power.find((c) => c.call >= from && c.call <= to);
  const byKey = new Map<string, Operation[]>();
  for (const op of history) {
    if (isCrash(op)) continue;
    byKey.set(op.key, [...(byKey.get(op.key) ?? []), op]);
  }
  for (const [key, ops] of byKey) {
    stats.files++;
    const w = ops.find((op) => (op.input as CopyInput).f === 'write');
    if (w !== undefined) stats[w.outcome === 'ok' ? 'copies ok' : 'copies open']++;
    const reads = ops
      .filter((op) => (op.input as CopyInput).f === 'read' && op.outcome === 'ok')
      .sort((a, b) => a.call - b.call);
    stats.reads += reads.length;
    const wrote = (r: Operation) => w !== undefined && w.outcome !== 'fail' && w.call <= r.ret!;
    for (const r of reads) {
      const out = r.output as CopyOutput;
      const bad =
        out !== null &&
        (out.startsWith('!') || (!out.startsWith('~') && out !== (w?.input as { value?: string })?.value));
      if (bad || (out !== null && !wrote(r))) {
        log.add('never-written', key, 'content', () => ({
          summary: bad ? 'a read shows content no copy wrote' : 'a read shows the file before its copy began',
          witnesses: [
            { op: r, role: 'shows it', what: describe(r) },
            ...(w ? [{ op: w, role: 'the copy', what: describe(w) }] : []),
          ],
        }));
        continue;
      }
      if (w?.outcome === 'ok' && r.call > w.ret!) {
        const level = LEVEL(out);
        const excuse = level === 1 ? powerBetween(w.call, r.ret!) : undefined;
        if (level < 2 && excuse === undefined) {
          log.add('lost', key, 'content', () => ({
            summary:
              level === 0
                ? 'nfs-cp exited 0 (its CREATE acknowledged), then a read finds no file'
                : 'nfs-cp exited 0 (every WRITE applied), then a read finds the file incomplete, with no power loss between',
            witnesses: [
              { op: w, role: 'exited 0', what: describe(w) },
              { op: r, role: 'invoked after', what: describe(r) },
            ],
          }));
        }
      }
    }
    // Less than an earlier read showed, with no power loss in between. For each level, the
    // latest-invoked read among those that returned before this one began and showed at least
    // that much: the narrowest window for a power loss to excuse it.
    const atLeast: (Operation | undefined)[] = [undefined, undefined, undefined];
    const byRet = [...reads].sort((a, b) => a.ret! - b.ret!);
    let finished = 0;
    for (const r2 of reads) {
      for (; finished < byRet.length && byRet[finished].ret! < r2.call; finished++) {
        const r1 = byRet[finished];
        for (let l = 1; l <= LEVEL(r1.output as CopyOutput); l++)
          if (atLeast[l] === undefined || atLeast[l]!.call < r1.call) atLeast[l] = r1;
      }
      const l2 = LEVEL(r2.output as CopyOutput);
      for (let l = 2; l > l2; l--) {
        const r1 = atLeast[l];
        if (r1 === undefined || powerBetween(r1.call, r2.ret!) !== undefined) continue;
        const l1 = LEVEL(r1.output as CopyOutput);
        log.add('disappeared', key, 'content', () => ({
          summary: `a read shows ${LEVEL_NAME[l1]}, a later one ${LEVEL_NAME[l2]}, and no power loss lies between`,
          witnesses: [
            { op: r1, role: 'shows more', what: describe(r1) },
            { op: r2, role: 'invoked after, shows less', what: describe(r2) },
            ...(w ? [{ op: w, role: 'the copy', what: describe(w) }] : []),
          ],
        }));
        break;
      }
    }
  }
  const anomalies = log.anomalies();
  return collectionReport('nfs-cp', { valid: anomalies.length === 0, anomalies, stats });
}

export function create(): Workload {
  let nodes: NodeFiles[] = [];
  let tmp = '';
  return {
    name: 'nfs-cp',
    async setup(ctx) {
      tmp = makeTempDir('nfs-cp');
      nodes = await Promise.all(ctx.nodes.map((n) => setupNode(ctx, n)));
    },
    async run(ctx) {
      await Promise.all(
        nodes.flatMap((n) => Array.from({ length: PROCESSES_PER_NODE }, (_, p) => client(ctx, n, tmp, p))),
      );
    },
    async final(ctx) {
      removeTempDir(tmp);
      await Promise.all(
        nodes.map(async (n) => {
          for (const file of n.files) {
            await finalAttempts(ctx, `nfs-cp: no final read of ${file.key} succeeded`, () =>
              read(ctx, n, `${n.node.name}/cp#final`, file),
            );
          }
        }),
      );
    },
    check: checkCopies,
  };
}
