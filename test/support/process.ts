/**
 * Child processes for tests: spawned in their own process group, watched line by line for
 * readiness, and always reaped — by the test that started them, or, if it never got the chance,
 * when the test process exits.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnOptions {
  /** A short name for messages. Default: the command. */
  name?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Written to stdin, which is then closed. Default: stdin is closed at once. */
  input?: string;
}

const live = new Set<SpawnedProcess>();
let exitHookInstalled = false;

/** Kills every process group still running; synchronous, for exit paths. */
export function killAllSync(): void {
  for (const p of live) p.killSync();
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', killAllSync);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      killAllSync();
      process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
    });
  }
}

/** Keeps the last `max` characters of a growing output, so a chatty child cannot exhaust memory. */
function appendBounded(buf: string, chunk: string, max = 1 << 20): string {
  const s = buf + chunk;
  return s.length > max ? s.slice(s.length - max) : s;
}

export class SpawnedProcess {
  readonly child: ChildProcess;
  readonly name: string;
  stdout = '';
  stderr = '';
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<ExitStatus>;
  private status: ExitStatus | null = null;
  private lineWaiters: { test: (line: string) => boolean; resolve: (line: string) => void }[] = [];
  private readonly lines: string[] = [];

  constructor(cmd: string, args: readonly string[], options: SpawnOptions = {}) {
    installExitHook();
    this.name = options.name ?? cmd;
    this.child = spawn(cmd, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      // Its own process group, so stop() reaches everything it starts.
      detached: true,
    });
    live.add(this);
    this.child.stdin?.on('error', () => {});
    this.child.stdin?.end(options.input ?? '');
    let partial = '';
    this.child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      this.stdout = appendBounded(this.stdout, chunk);
      partial += chunk;
      let nl = partial.indexOf('\n');
      while (nl >= 0) {
        this.onLine(partial.slice(0, nl));
        partial = partial.slice(nl + 1);
        nl = partial.indexOf('\n');
      }
      if (partial.length > 1 << 16) partial = partial.slice(-(1 << 16));
    });
    this.child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr = appendBounded(this.stderr, chunk);
    });
    this.exited = new Promise<ExitStatus>((resolve) => {
      this.child.once('error', (err) => {
        this.stderr += `\nspawn error: ${err.message}`;
        this.status ??= { code: null, signal: null };
        live.delete(this);
        resolve(this.status);
      });
      this.child.once('close', (code, signal) => {
        this.status = { code, signal };
        live.delete(this);
        resolve(this.status);
      });
    });
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error(`${this.name} did not start: ${this.stderr}`);
    return this.child.pid;
  }

  get running(): boolean {
    return this.status === null && this.child.pid !== undefined;
  }

  private onLine(line: string): void {
    if (this.lines.length < 10_000) this.lines.push(line);
    this.lineWaiters = this.lineWaiters.filter((w) => {
      if (!w.test(line)) return true;
      w.resolve(line);
      return false;
    });
  }

  /**
   * Resolves with the first stdout line (already printed or still to come) matching `pattern`.
   * Rejects if the process exits first or the timeout passes, with its output in the message.
   */
  waitForLine(pattern: RegExp | string, timeoutMs = 15_000): Promise<string> {
    const test = (line: string) =>
      typeof pattern === 'string' ? line.includes(pattern) : pattern.test(line);
    const seen = this.lines.find(test);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise<string>((resolve, reject) => {
      const waiter = {
        test,
        resolve: (line: string) => {
          clearTimeout(timer);
          resolve(line);
        },
      };
      const fail = (why: string) => {
        this.lineWaiters = this.lineWaiters.filter((w) => w !== waiter);
        reject(new Error(`${this.name}: ${why} while waiting for ${pattern}\n${this.describeOutput()}`));
      };
      const timer = setTimeout(() => fail(`no matching line within ${timeoutMs} ms`), timeoutMs);
      this.lineWaiters.push(waiter);
      void this.exited.then((s) => {
        if (this.lineWaiters.includes(waiter)) {
          clearTimeout(timer);
          fail(`exited (code ${s.code}, signal ${s.signal})`);
        }
      });
    });
  }

  describeOutput(): string {
    return `--- stdout of ${this.name}\n${this.stdout.slice(-4000)}\n--- stderr\n${this.stderr.slice(-4000)}`;
  }

  /** Sends a signal to the whole process group. */
  signal(sig: NodeJS.Signals): void {
    if (!this.running) return;
    try {
      process.kill(-this.pid, sig);
    } catch {
      try {
        this.child.kill(sig);
      } catch {}
    }
  }

  killSync(): void {
    this.signal('SIGKILL');
  }

  /**
   * Stops the process: `sig` (default SIGTERM) to its group, SIGKILL after `graceMs`, and
   * resolves once it has exited. Safe to call on an exited process.
   */
  async stop(sig: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<ExitStatus> {
    if (!this.running) return this.exited;
    this.signal(sig);
    const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
      // Anything left in the group (a grandchild that ignored the signal) goes too.
      try {
        process.kill(-this.pid, 'SIGKILL');
      } catch {}
    }
  }
}

export function spawnProcess(cmd: string, args: readonly string[], options?: SpawnOptions): SpawnedProcess {
  return new SpawnedProcess(cmd, args, options);
}

export interface RunResult extends ExitStatus {
  stdout: string;
  stderr: string;
}

/**
 * Runs a command to completion; kills it (and its group) after `timeoutMs`. Never rejects for a
 * non-zero exit: callers assert on the result.
 */
export async function runCommand(
  cmd: string,
  args: readonly string[],
  options: SpawnOptions & { timeoutMs?: number } = {},
): Promise<RunResult> {
  const p = new SpawnedProcess(cmd, args, options);
  const timer = setTimeout(() => p.signal('SIGKILL'), options.timeoutMs ?? 30_000);
  try {
    const s = await p.exited;
    return { ...s, stdout: p.stdout, stderr: p.stderr };
  } finally {
    clearTimeout(timer);
  }
}

/** Like runCommand, but throws with the output when the exit status is not 0. */
export async function runChecked(
  cmd: string,
  args: readonly string[],
  options: SpawnOptions & { timeoutMs?: number } = {},
): Promise<RunResult> {
  const r = await runCommand(cmd, args, options);
  if (r.code !== 0) {
    throw new Error(
      `${[cmd, ...args].join(' ')} failed (code ${r.code}, signal ${r.signal})\n${r.stdout}\n${r.stderr}`,
    );
  }
  return r;
}

/** Synchronous check that a command exists on PATH. */
export function hasCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}
