/**
 * Network namespaces for tests: each test gets a fresh one with only loopback, so daemons can
 * take their well-known ports (111, 2049) without clashing with the host or with each other.
 * Namespaces need root; CI runs as root, so a test that needs one fails (not skips) without it.
 */
import { randomBytes } from 'node:crypto';
import {
  type RunResult,
  runChecked,
  runCommand,
  type SpawnedProcess,
  type SpawnOptions,
  spawnProcess,
} from './process.js';

/** Fails the calling test with a clear message unless running as root. */
export function requireRoot(what = 'this test'): void {
  const uid = process.geteuid?.() ?? -1;
  if (uid !== 0) {
    throw new Error(
      `${what} needs root (it creates network namespaces with 'ip netns' and starts daemons on port 111); ` +
        `running as uid ${uid}. CI runs the suite as root: run it as root (sudo npm test).`,
    );
  }
}

const PREFIX = 'cairn-t';

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Deletes test namespaces left by test processes that died without cleaning up. */
async function pruneStale(): Promise<void> {
  const r = await runCommand('ip', ['netns', 'list'], { timeoutMs: 10_000 });
  for (const line of r.stdout.split('\n')) {
    const name = line.split(' ')[0];
    const m = new RegExp(`^${PREFIX}-(\\d+)-`).exec(name);
    if (m && !pidAlive(Number(m[1]))) await deleteNamespace(name);
  }
}

async function deleteNamespace(name: string): Promise<void> {
  // Processes still inside would keep the namespace alive after `ip netns del`: kill them first.
  const pids = await runCommand('ip', ['netns', 'pids', name], { timeoutMs: 10_000 });
  for (const p of pids.stdout.split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(p), 'SIGKILL');
    } catch {}
  }
  await runCommand('ip', ['netns', 'del', name], { timeoutMs: 10_000 });
}

export interface ExecOptions extends SpawnOptions {
  /**
   * Give the command a private, empty /run (a tmpfs in its own mount namespace), so a daemon's
   * lock and socket files there (rpcbind's /run/rpcbind.sock and .lock) neither clash with the
   * host's nor are seen by it. Default false.
   */
  privateRun?: boolean;
  timeoutMs?: number;
}

/** Wraps argv so that it runs with a fresh tmpfs on /run (in the mount namespace of `ip netns exec`). */
function withPrivateRun(argv: readonly string[]): string[] {
  return [
    'sh',
    '-c',
    'mount -t tmpfs -o mode=0755,size=8m cairn-run /run && exec "$@"',
    'private-run',
    ...argv,
  ];
}

export class Netns {
  private readonly processes = new Set<SpawnedProcess>();

  constructor(readonly name: string) {}

  private argv(argv: readonly string[], options: ExecOptions): string[] {
    return ['netns', 'exec', this.name, ...(options.privateRun ? withPrivateRun(argv) : argv)];
  }

  /** Runs a command inside the namespace to completion (never rejects on a non-zero exit). */
  exec(argv: readonly string[], options: ExecOptions = {}): Promise<RunResult> {
    return runCommand('ip', this.argv(argv, options), { name: argv[0], ...options });
  }

  /** Like exec, but throws with the output unless the command exits 0. */
  execChecked(argv: readonly string[], options: ExecOptions = {}): Promise<RunResult> {
    return runChecked('ip', this.argv(argv, options), { name: argv[0], ...options });
  }

  /** Starts a long-running process inside the namespace; it is stopped when the namespace goes. */
  spawn(argv: readonly string[], options: ExecOptions = {}): SpawnedProcess {
    const p = spawnProcess('ip', this.argv(argv, options), { name: argv[0], ...options });
    this.processes.add(p);
    return p;
  }

  /**
   * Runs a command in the network and mount namespaces of a process already running here (to
   * see the private /run a daemon was started with).
   */
  execIn(
    target: SpawnedProcess,
    argv: readonly string[],
    options: SpawnOptions & { timeoutMs?: number } = {},
  ): Promise<RunResult> {
    return runCommand('nsenter', ['--target', String(target.pid), '--net', '--mount', '--', ...argv], {
      name: argv[0],
      ...options,
    });
  }

  /** Like execIn, but throws with the output unless the command exits 0. */
  execInChecked(
    target: SpawnedProcess,
    argv: readonly string[],
    options: SpawnOptions & { timeoutMs?: number } = {},
  ): Promise<RunResult> {
    return runChecked('nsenter', ['--target', String(target.pid), '--net', '--mount', '--', ...argv], {
      name: argv[0],
      ...options,
    });
  }

  /** Starts a long-running process in the network and mount namespaces of `target`. */
  spawnIn(target: SpawnedProcess, argv: readonly string[], options: SpawnOptions = {}): SpawnedProcess {
    const p = spawnProcess('nsenter', ['--target', String(target.pid), '--net', '--mount', '--', ...argv], {
      name: argv[0],
      ...options,
    });
    this.processes.add(p);
    return p;
  }

  /** Stops every process started here (SIGTERM, then SIGKILL). */
  async stopAll(): Promise<void> {
    await Promise.all([...this.processes].map((p) => p.stop()));
    this.processes.clear();
  }
}

/**
 * Runs `fn` with a fresh network namespace whose loopback is up, and always removes it after,
 * stopping whatever was started in it. `label` becomes part of the namespace's name.
 */
export async function withNetns<T>(label: string, fn: (ns: Netns) => Promise<T>): Promise<T> {
  requireRoot(`withNetns(${label})`);
  await pruneStale();
  const safe = label.replace(/[^a-zA-Z0-9_-]/g, '').slice(0, 20);
  const name = `${PREFIX}-${process.pid}-${safe}-${randomBytes(3).toString('hex')}`;
  await runChecked('ip', ['netns', 'add', name], { timeoutMs: 10_000 });
  const ns = new Netns(name);
  try {
    await runChecked('ip', ['-n', name, 'link', 'set', 'lo', 'up'], { timeoutMs: 10_000 });
    return await fn(ns);
  } finally {
    await ns.stopAll();
    await deleteNamespace(name);
  }
}
