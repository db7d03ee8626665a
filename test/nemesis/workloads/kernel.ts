/**
 * kernel: the Linux kernel's NFSv3 client, in Debian's kernel under QEMU (test/support/qemu.ts),
 * mounts one node (hard, nolock, vers=3, tcp), and a script in the guest writes small files whole
 * (open with truncation, write, fsync: `dd conv=fsync`), one after another, while the harness
 * injects its faults. The hard mount makes the kernel retry through every fault, and send unstable
 * data again when the write verifier changes, so each fsync that returns vouches for its file.
 * After each write the script reads the file back with O_DIRECT, which bypasses the guest's page
 * cache and asks the node.
 *
 * The guest's clock is not on the host's scale, so the check needs no times, only the script's
 * order: it prints each write's start and its fsync's return with the guest's monotonic time (kept
 * in the operation's input, for the reader) and each read-back's sha256. That output comes back
 * when the guest ends; then its writes and read-backs are recorded in the script's order (a write
 * ok when its fsync returned, open otherwise) and each file is read once more with Cairn's client.
 * The rule, for every read: the file holds the value of the last write before it whose fsync
 * returned, or of a later write before it (whole, or incomplete or empty while that write never
 * finished), never an older value and never bytes that no write wrote; with no write before it
 * that returned, the file may also not exist.
 *
 * QEMU runs in the runner's network namespace, the client namespace: its user networking makes the
 * guest's connections to any address from that namespace (so the guest reaches the nodes' bridge
 * addresses as the runner does), and maps the guest's 10.0.2.2 to that namespace's loopback; a
 * node on 127.0.0.1 is mounted as 10.0.2.2. Before each write the guest asks the workload, over
 * 10.0.2.2, whether to go on (a TCP server on loopback, read with nc): the answer turns to stop in
 * `final`, once the faults are healed, so the guest finishes the write under way and powers off.
 * Setup returns once the guest has booted, mounted and asked for the first time, so the faults
 * meet a client that is already writing.
 */
import { createHash } from 'node:crypto';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { AnomalyLog, type History, isCrash, type Operation } from '../../../src/check/index.js';
import type { nfs_fh3 } from '../../../src/nfs/gen/nfs3.bytes.js';
import { Netns } from '../../support/netns.js';
import { type SpawnedProcess, type SpawnOptions, spawnProcess } from '../../support/process.js';
import { GuestError, type GuestResult, runGuest } from '../../support/qemu.js';
import { NemesisError } from '../base.js';
import {
  type CheckReport,
  collectionReport,
  type NodeTarget,
  type Workload,
  type WorkloadContext,
} from '../workload.js';
import { finalAttempts, makeDirectory, nfsStatus, operate, Session } from './session.js';

const FILES = 8;
/** Writes the guest may make in one run (it stops sooner when told to). */
const MAX_WRITES = 5000;
const MAX_SIZE = 12_000;
/** How long the guest may take to boot, mount and ask for the first time. */
const BOOT_TIMEOUT_MS = 240_000;
/** How long the guest may take to end once told to stop: the write under way, then power off. */
const STOP_TIMEOUT_MS = 180_000;

export type KernelInput =
  | {
      readonly f: 'write';
      readonly value: string;
      readonly bytes: number;
      /** The guest's monotonic times (s): the write's start, and its fsync's return if it did. */
      readonly guest: { readonly start: number; readonly synced?: number };
    }
  | { readonly f: 'read'; readonly by: 'guest' | 'host' };

/**
 * A read's output: null (no such file), a write's value (`w17`: its whole content), `~w17` (an
 * incomplete content of that write: a prefix, with zeros where bytes are missing), `~` (empty),
 * or a string starting with '!' for content no write wrote (or, for a read-back, none whole).
 */
export type KernelOutput = string | null;

interface PlannedWrite {
  readonly file: number;
  readonly size: number;
}

/** The bytes write `i` puts in its file: `yes`'s line, repeated and cut to the size. */
export function content(i: number, w: PlannedWrite): Buffer {
  const line = Buffer.from(`cairn f${w.file} w${i}\n`);
  const out = Buffer.alloc(w.size);
  for (let at = 0; at < w.size; at += line.length) line.copy(out, at);
  return out;
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const EMPTY = sha256(new Uint8Array(0));

/** What the host's read of file `file` shows (KernelOutput), given the plan. */
export function identify(data: Buffer, file: number, plan: readonly PlannedWrite[]): string {
  if (data.length === 0) return '~';
  const m = /^cairn f(\d+) w(\d+)\n/.exec(data.subarray(0, 40).toString('latin1'));
  const i = m === null ? -1 : Number(m[2]);
  if (i >= 0 && i < plan.length && plan[i].file === file && Number(m![1]) === file) {
    const want = content(i, plan[i]);
    if (want.equals(data)) return `w${i}`;
    if (data.length <= want.length && data.every((b, k) => b === 0 || b === want[k])) return `~w${i}`;
  }
  return `!${data.length} bytes: ${JSON.stringify(data.subarray(0, 24).toString('latin1'))}`;
}

/** The guest's script: mount, then for each planned write ask whether to go on, write, read back. */
function guestScript(server: string, node: NodeTarget, dir: string, controlPort: number): string {
  const opts = [
    'vers=3',
    'nolock',
    'proto=tcp',
    'hard',
    // Retransmit after 5 s rather than 60: a call lost in a partition goes again soon after it heals.
    'timeo=50',
    'retrans=3',
    `port=${node.nfsPort}`,
    `mountport=${node.nfsPort}`,
    'mountproto=tcp',
    `addr=${server}`,
  ].join(',');
  return `set -u
mkdir -p /mnt
mount -t nfs -o ${opts} ${server}:${node.exportPath} /mnt || { echo "mount failed"; exit 10; }
go() { [ "$(nc -w 10 10.0.2.2 ${controlPort} < /dev/null 2> /dev/null)" = run ]; }
while read -r i f size; do
  go || break
  yes "cairn f$f w$i" | head -c "$size" > /tmp/v
  read -r up _ < /proc/uptime
  echo "start $i $up"
  if dd if=/tmp/v of=/mnt/${dir}/f$f bs=64k conv=fsync 2> /tmp/err; then
    read -r up _ < /proc/uptime
    echo "synced $i $up"
  else
    echo "failed $i $(tr '\\n' ' ' < /tmp/err)"
  fi
  echo "read $i $(dd if=/mnt/${dir}/f$f iflag=direct bs=1048576 2> /dev/null | sha256sum | cut -d' ' -f1)"
done < /guest/plan
echo "end"
`;
}

/** One line of the script's output that the check reads: a write, or the read-back after it. */
export type GuestEvent =
  | { readonly kind: 'write'; readonly i: number; readonly start: number; synced?: number; failed?: string }
  | { readonly kind: 'read'; readonly i: number; readonly sha256: string };

/** The events a transcript shows, in order. A read-back belongs to the write just before it. */
export function parseTranscript(transcript: string): GuestEvent[] {
  const events: GuestEvent[] = [];
  let last: Extract<GuestEvent, { kind: 'write' }> | undefined;
  for (const line of transcript.split('\n')) {
    const [what, i, ...rest] = line.trim().split(' ');
    if (what === 'start') {
      last = { kind: 'write', i: Number(i), start: Number(rest[0]) };
      events.push(last);
      continue;
    }
    // Anything else belongs to the write just started; a line cut short by a killed guest does not.
    if (last === undefined || String(last.i) !== i) continue;
    if (what === 'synced') last.synced = Number(rest[0]);
    else if (what === 'failed') last.failed = rest.join(' ');
    else if (what === 'read' && /^[0-9a-f]{64}$/.test(rest[0] ?? ''))
      events.push({ kind: 'read', i: last.i, sha256: rest[0] });
  }
  return events;
}

/** The runner's own network namespace, as a Netns whose processes start in place: QEMU's. */
class HereNetns extends Netns {
  qemu: SpawnedProcess | undefined;

  constructor() {
    super('(the current namespace)');
  }

  override spawn(argv: readonly string[], options: SpawnOptions = {}): SpawnedProcess {
    this.qemu = spawnProcess(argv[0], argv.slice(1), { name: argv[0], ...options });
    return this.qemu;
  }
}

/** What the guest asks before each write ('run' until stopped), over TCP: busybox's static wget crashes. */
class Control {
  private stopped = false;
  private asked: () => void = () => {};
  /** Resolves when the guest first asks (it has booted and mounted). */
  readonly firstAsk = new Promise<void>((resolve) => {
    this.asked = resolve;
  });
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  constructor() {
    this.server = createServer((socket) => {
      this.asked();
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => {});
      socket.end(this.stopped ? 'stop\n' : 'run\n');
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as AddressInfo).port;
  }

  stop(): void {
    this.stopped = true;
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

interface Run {
  readonly node: NodeTarget;
  readonly dir: nfs_fh3;
  readonly plan: readonly PlannedWrite[];
  readonly control: Control;
  readonly netns: HereNetns;
  readonly guest: Promise<GuestResult | GuestError>;
}

const keyOf = (node: NodeTarget, file: number) => `${node.name}/kernel/f${file}`;

/** The run's directory, made with Cairn's client before the guest starts. */
async function makeDir(node: NodeTarget, name: string): Promise<nfs_fh3> {
  const session = new Session(node, 30_000);
  try {
    const c = (await session.client())!;
    return await makeDirectory(c, await makeDirectory(c, await c.mount(node.exportPath), 'kernel'), name);
  } finally {
    await session.close();
  }
}

/** Boots the guest and resolves once it has mounted and is about to write. */
async function startRun(ctx: WorkloadContext): Promise<Run> {
  const node = ctx.nodes[ctx.random.int(ctx.nodes.length)];
  const name = `r${ctx.random.int(1 << 30).toString(36)}`;
  const dir = await makeDir(node, name);
  const plan = Array.from({ length: MAX_WRITES }, () => ({
    file: ctx.random.int(FILES),
    size: 1 + ctx.random.int(MAX_SIZE),
  }));
  const control = new Control();
  const port = await control.listen();
  const netns = new HereNetns();
  const server = node.host === '127.0.0.1' ? '10.0.2.2' : node.host;
  const guest = runGuest(netns, {
    script: guestScript(server, node, `kernel/${name}`, port),
    files: { plan: plan.map((w, i) => `${i} ${w.file} ${w.size}\n`).join('') },
    // `final` decides when the run ends, and kills QEMU if it outlives that by too much.
    timeoutMs: 24 * 3600_000,
  }).catch((e: unknown) => {
    if (e instanceof GuestError) return e;
    throw e;
  });
  let timer: NodeJS.Timeout | undefined;
  const failed = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new NemesisError(`the guest did not mount ${node.name} within ${BOOT_TIMEOUT_MS} ms`)),
      BOOT_TIMEOUT_MS,
    );
    void guest.then((g) => {
      const why = g instanceof GuestError ? g.message : `${g.transcript}\n${g.console.slice(-2000)}`;
      reject(new NemesisError(`the guest ended before it wrote anything: ${why}`));
    }, reject);
  });
  try {
    await Promise.race([control.firstAsk, failed]);
  } catch (e) {
    netns.qemu?.signal('SIGKILL');
    await guest.catch(() => {});
    await control.close();
    throw e;
  } finally {
    clearTimeout(timer);
    failed.catch(() => {});
  }
  ctx.log(`kernel: the guest writes to ${node.name}:${node.exportPath}/kernel/${name}`);
  return { node, dir, plan, control, netns, guest };
}

/** Tells the guest to stop and returns its transcript; QEMU is killed after STOP_TIMEOUT_MS. */
async function endRun(ctx: WorkloadContext, run: Run): Promise<string> {
  run.control.stop();
  const timer = setTimeout(() => {
    ctx.log(`kernel: the guest did not end within ${STOP_TIMEOUT_MS} ms of being told to stop: killed`);
    run.netns.qemu?.signal('SIGKILL');
  }, STOP_TIMEOUT_MS);
  try {
    const g = await run.guest;
    if (g instanceof GuestError) ctx.log(`kernel: ${g.message.split('\n')[0]}`);
    else if (g.exitCode !== 0)
      ctx.log(`kernel: the guest's script exited ${g.exitCode}: ${g.transcript.slice(-500)}`);
    return g.transcript;
  } finally {
    clearTimeout(timer);
    await run.control.close();
  }
}

/** Records the guest's writes and read-backs in its order. */
function recordGuest(ctx: WorkloadContext, run: Run, events: readonly GuestEvent[]): void {
  const process = `${run.node.name}/kernel#guest`;
  // A read-back names the content by digest: a whole write to that file, or none. After a write
  // that did not finish, an unknown digest may be that write's incomplete content.
  const digests = new Map<string, number>();
  let finished = true;
  for (const e of events) {
    const w = run.plan[e.i];
    if (e.kind === 'write') {
      digests.set(`${w.file} ${sha256(content(e.i, w))}`, e.i);
      finished = e.synced !== undefined;
      const id = ctx.recorder.invoke(process, keyOf(run.node, w.file), {
        f: 'write',
        value: `w${e.i}`,
        bytes: w.size,
        guest: { start: e.start, synced: e.synced },
      } satisfies KernelInput);
      if (e.synced !== undefined) ctx.recorder.ok(id);
      else ctx.recorder.open(id);
    } else {
      const id = ctx.recorder.invoke(process, keyOf(run.node, w.file), {
        f: 'read',
        by: 'guest',
      } satisfies KernelInput);
      const j = digests.get(`${w.file} ${e.sha256}`);
      const out =
        j !== undefined
          ? `w${j}`
          : e.sha256 === EMPTY
            ? '~'
            : finished
              ? `!content with sha256 ${e.sha256.slice(0, 16)}`
              : `~w${e.i}`;
      ctx.recorder.ok(id, out satisfies KernelOutput);
    }
  }
}

function readFile(ctx: WorkloadContext, run: Run, session: Session, file: number) {
  return operate(
    ctx,
    session,
    `${run.node.name}/kernel#final`,
    keyOf(run.node, file),
    { f: 'read', by: 'host' } satisfies KernelInput,
    async (c, o): Promise<KernelOutput> => {
      const found = await c.lookup(run.dir, `f${file}`, o).catch((e: unknown) => {
        if (nfsStatus(e) === 'NFS3ERR_NOENT') return undefined;
        throw e;
      });
      if (found === undefined) return null;
      const r = await c.read(found.fh, 0, 2 * MAX_SIZE, o);
      return identify(Buffer.from(r.data), file, run.plan);
    },
    () => ({ outcome: 'fail' }),
  );
}

function describe(op: Operation): string {
  const input = op.input as KernelInput;
  if (input.f === 'write') {
    const { start, synced } = input.guest;
    const end = synced === undefined ? ', fsync never returned' : ` to ${synced} s`;
    return `write ${input.value}, ${input.bytes} bytes (guest ${start} s${end})`;
  }
  const out = op.output as KernelOutput;
  const shown = out === null ? 'no such file' : out === '~' ? 'an empty file' : out;
  return `${input.by === 'guest' ? 'O_DIRECT read-back' : 'read'} → ${shown}`;
}

/** The rule of this file's comment, file by file, in the order the operations were recorded. */
export function checkKernel(history: History): CheckReport {
  const log = new AnomalyLog(100);
  const stats: Record<string, number> = { files: 0, 'writes synced': 0, 'writes open': 0, reads: 0 };
  const byKey = new Map<string, Operation[]>();
  for (const op of history) if (!isCrash(op)) byKey.set(op.key, [...(byKey.get(op.key) ?? []), op]);
  for (const [key, ops] of byKey) {
    stats.files++;
    const writes: Operation[] = [];
    const value = (w: Operation) => (w.input as { value: string }).value;
    for (const op of ops.sort((a, b) => a.id - b.id)) {
      if ((op.input as KernelInput).f === 'write') {
        writes.push(op);
        stats[op.outcome === 'ok' ? 'writes synced' : 'writes open']++;
        continue;
      }
      if (op.outcome !== 'ok') continue;
      stats.reads++;
      const out = op.output as KernelOutput;
      const last = writes.map((w) => w.outcome).lastIndexOf('ok');
      const at = (v: string) => writes.findIndex((w) => value(w) === v);
      const unfinished = (j: number) => j > last && writes[j].outcome !== 'ok';
      let allowed: boolean;
      if (out === null) allowed = last < 0;
      else if (out === '~') allowed = writes.some((_, j) => unfinished(j));
      else if (out.startsWith('~')) allowed = unfinished(at(out.slice(1)));
      else allowed = at(out) >= 0 && at(out) >= last;
      if (allowed) continue;
      const j = out === null ? -1 : at(out.replace(/^~/, ''));
      const kind = j < 0 && out !== null && out !== '~' ? 'never-written' : 'lost';
      log.add(kind, key, 'content', () => {
        const witnesses = [{ op, role: 'shows it', what: describe(op) }];
        if (last >= 0)
          witnesses.push({
            op: writes[last],
            role: 'the last write whose fsync returned',
            what: describe(writes[last]),
          });
        if (j >= 0 && j !== last)
          witnesses.push({ op: writes[j], role: 'wrote what the read shows', what: describe(writes[j]) });
        const summary =
          kind === 'never-written'
            ? 'the file holds bytes no write wrote'
            : 'the file holds neither the last write whose fsync returned nor a later one';
        return { summary, witnesses };
      });
    }
  }
  const anomalies = log.anomalies();
  return collectionReport('kernel', { valid: anomalies.length === 0, anomalies, stats });
}

export function create(): Workload {
  let run: Run | undefined;
  return {
    name: 'kernel',
    async setup(ctx) {
      run = await startRun(ctx);
    },
    async run(ctx) {
      // The guest writes on its own; it is told to stop in `final`, after the heal.
      if (!ctx.signal.aborted)
        await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
    },
    async final(ctx) {
      if (run === undefined) return;
      const events = parseTranscript(await endRun(ctx, run));
      recordGuest(ctx, run, events);
      const writes = events.filter((e) => e.kind === 'write');
      ctx.log(
        `kernel: ${writes.length} writes, ${writes.filter((w) => w.synced !== undefined).length} synced`,
      );
      const guest = run; // narrowed, for the closure below
      const session = new Session(guest.node, ctx.opTimeoutMs);
      try {
        for (let file = 0; file < FILES; file++) {
          await finalAttempts(
            ctx,
            `kernel: no final read of ${keyOf(guest.node, file)} succeeded`,
            async () => (await readFile(ctx, guest, session, file))?.outcome === 'ok',
          );
        }
      } finally {
        await session.close();
      }
    },
    check: checkKernel,
  };
}
