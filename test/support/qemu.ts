/**
 * The Linux kernel's NFS client, for tests: Debian's kernel booted under QEMU (software
 * emulation) with a busybox initramfs, inside the network namespace of the server under test.
 * QEMU's user networking maps the guest's 10.0.2.2 to that namespace's loopback, so a server
 * listening on 127.0.0.1 there is what the guest mounts.
 *
 * The initramfs is built once per test process and kernel version (busybox, the client's
 * modules in dependency order, test/support/guest/init.sh as /init). Each run appends a small
 * uncompressed cpio holding the script (the kernel unpacks concatenated archives in order), so
 * nothing is rebuilt and nothing has to fit on the kernel command line. The script's output
 * comes back on the second serial port between markers; the kernel console on the first.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { Netns } from './netns.js';
import { hasCommand } from './process.js';
import { makeTempDir, removeTempDir } from './tmp.js';

/** The repository root (this file runs as dist/test/support/qemu.js). */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const GUEST_DIR = join(ROOT, 'test/support/guest');

/** What the guest loads, by module name; dependencies are added from modules.dep. */
export const GUEST_MODULES = [
  'e1000',
  'sunrpc',
  'grace',
  'lockd',
  'nfs_acl',
  'netfs',
  'fscache',
  'nfs',
  'nfsv3',
];

const BUSYBOX_CANDIDATES = ['/bin/busybox', '/usr/bin/busybox'];

export interface GuestKernel {
  version: string;
  vmlinuz: string;
  moduleDir: string;
}

/**
 * The kernel to boot: CAIRN_GUEST_KERNEL if set, else the newest /boot/vmlinuz-VERSION that has
 * a module tree with modules.dep.
 */
export function findGuestKernel(): GuestKernel {
  const wanted = process.env.CAIRN_GUEST_KERNEL;
  const versions = existsSync('/boot')
    ? readdirSync('/boot')
        .filter((f) => f.startsWith('vmlinuz-'))
        .map((f) => f.slice('vmlinuz-'.length))
    : [];
  const usable = versions
    .filter((v) => existsSync(join('/lib/modules', v, 'modules.dep')))
    .filter((v) => wanted === undefined || v === wanted)
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const version = usable.at(-1);
  if (version === undefined) {
    throw new Error(
      `no guest kernel: need /boot/vmlinuz-VERSION and /lib/modules/VERSION/modules.dep ` +
        `(Debian package linux-image-amd64)${wanted ? `, version ${wanted}` : ''}; found ${versions.join(', ') || 'none'}`,
    );
  }
  return { version, vmlinuz: join('/boot', `vmlinuz-${version}`), moduleDir: join('/lib/modules', version) };
}

const MODULE_SUFFIX = /\.ko(\.(xz|zst|gz))?$/;

/** modprobe treats '-' and '_' in module names alike. */
function moduleName(path: string): string {
  return basename(path).replace(MODULE_SUFFIX, '').replace(/-/g, '_');
}

export interface ResolvedModule {
  name: string;
  /** Path inside the module tree, as modules.dep has it. */
  path: string;
}

/**
 * The modules to insert, dependencies first, from the tree's modules.dep. A module built into
 * the kernel (modules.builtin) needs no loading and is left out.
 */
export function resolveModules(moduleDir: string, names: readonly string[]): ResolvedModule[] {
  const deps = new Map<string, { path: string; deps: string[] }>();
  for (const line of readFileSync(join(moduleDir, 'modules.dep'), 'utf8').split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const path = line.slice(0, colon);
    const needs = line
      .slice(colon + 1)
      .split(/\s+/)
      .filter(Boolean)
      .map(moduleName);
    deps.set(moduleName(path), { path, deps: needs });
  }
  const builtinFile = join(moduleDir, 'modules.builtin');
  const builtin = new Set(
    existsSync(builtinFile)
      ? readFileSync(builtinFile, 'utf8').split('\n').filter(Boolean).map(moduleName)
      : [],
  );
  const order: ResolvedModule[] = [];
  const done = new Set<string>();
  const visiting = new Set<string>();
  const visit = (name: string): void => {
    if (done.has(name)) return;
    const entry = deps.get(name);
    if (entry === undefined) {
      if (builtin.has(name)) {
        done.add(name);
        return;
      }
      throw new Error(`kernel module ${name} is neither in ${moduleDir}/modules.dep nor built in`);
    }
    if (visiting.has(name)) throw new Error(`kernel module dependency cycle through ${name}`);
    visiting.add(name);
    for (const d of entry.deps) visit(d);
    visiting.delete(name);
    done.add(name);
    order.push({ name, path: entry.path });
  };
  for (const n of names) visit(n.replace(/-/g, '_'));
  return order;
}

/** A module's ELF image: busybox insmod may not decompress, so that happens here. */
function readModule(file: string): Buffer {
  if (file.endsWith('.ko')) return readFileSync(file);
  if (file.endsWith('.gz')) return gunzipSync(readFileSync(file));
  const tool = file.endsWith('.xz') ? 'xz' : 'zstd';
  return execFileSync(tool, ['-dc', file], { maxBuffer: 256 << 20 });
}

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

export interface CpioEntry {
  /** Path inside the archive, without a leading slash. */
  path: string;
  /** File type and permission bits (S_IFREG | 0o755, ...). */
  mode: number;
  data?: Buffer;
  rdev?: { major: number; minor: number };
}

const pad4 = (n: number) => (4 - (n % 4)) % 4;

/** An archive in the "newc" cpio format, which is what the kernel unpacks into its rootfs. */
export function cpioNewc(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  const add = (e: CpioEntry): void => {
    const data = e.data ?? Buffer.alloc(0);
    const name = Buffer.from(`${e.path}\0`);
    const fields = [
      ino++,
      e.mode,
      0, // uid
      0, // gid
      (e.mode & 0o170000) === S_IFDIR ? 2 : 1,
      0, // mtime
      data.length,
      0, // devmajor
      0, // devminor
      e.rdev?.major ?? 0,
      e.rdev?.minor ?? 0,
      name.length,
      0, // check
    ];
    const header = Buffer.from(`070701${fields.map((f) => f.toString(16).padStart(8, '0')).join('')}`);
    parts.push(header, name, Buffer.alloc(pad4(header.length + name.length)));
    parts.push(data, Buffer.alloc(pad4(data.length)));
  };
  for (const e of entries) add(e);
  add({ path: 'TRAILER!!!', mode: 0 });
  return Buffer.concat(parts);
}

interface BaseImage {
  kernel: GuestKernel;
  /** The gzipped base archive, zero-padded to a multiple of 4 bytes so another can follow. */
  initrd: Buffer;
  modules: ResolvedModule[];
}

const baseImages = new Map<string, BaseImage>();

/** Builds (once per process and kernel) the initramfs every guest starts from. */
export function guestBaseImage(kernel: GuestKernel = findGuestKernel()): BaseImage {
  const cached = baseImages.get(kernel.version);
  if (cached) return cached;
  const busybox = BUSYBOX_CANDIDATES.find((p) => existsSync(p));
  if (busybox === undefined) throw new Error('busybox not found (Debian package busybox-static)');
  const modules = resolveModules(kernel.moduleDir, GUEST_MODULES);
  const dir = (path: string): CpioEntry => ({ path, mode: S_IFDIR | 0o755 });
  const entries: CpioEntry[] = [
    ...[
      'bin',
      'dev',
      'etc',
      'guest',
      'lib',
      'lib/modules',
      'lib/modules/guest',
      'mnt',
      'proc',
      'sys',
      'tmp',
    ].map(dir),
    // The kernel opens /dev/console for init before init can mount devtmpfs.
    { path: 'dev/console', mode: S_IFCHR | 0o600, rdev: { major: 5, minor: 1 } },
    { path: 'bin/busybox', mode: S_IFREG | 0o755, data: readFileSync(busybox) },
    { path: 'bin/sh', mode: S_IFLNK | 0o777, data: Buffer.from('busybox') },
    { path: 'init', mode: S_IFREG | 0o755, data: readFileSync(join(GUEST_DIR, 'init.sh')) },
    {
      path: 'etc/guest-modules',
      mode: S_IFREG | 0o644,
      data: Buffer.from(modules.map((m) => `${m.name}\n`).join('')),
    },
    ...modules.map((m) => ({
      path: `lib/modules/guest/${m.name}.ko`,
      mode: S_IFREG | 0o644,
      data: readModule(join(kernel.moduleDir, m.path)),
    })),
  ];
  const gz = gzipSync(cpioNewc(entries), { level: 6 });
  const image = { kernel, modules, initrd: Buffer.concat([gz, Buffer.alloc(pad4(gz.length))]) };
  baseImages.set(kernel.version, image);
  return image;
}

export interface GuestOptions {
  /** Run by busybox sh as /guest/script.sh, in /guest, as root, stdin from /dev/null. */
  script: string;
  /** More files for /guest, by name. */
  files?: Record<string, string | Buffer>;
  /** The whole run, boot included; QEMU is killed after it. Default 180 s. */
  timeoutMs?: number;
  /** Default 512. */
  memoryMiB?: number;
  /** Appended to the kernel command line (after the defaults, so it can override them). */
  kernelArgs?: string;
}

export interface GuestResult {
  /** The script's stdout and stderr, without the markers, with Unix line ends. */
  transcript: string;
  exitCode: number;
  /** The kernel console (ttyS0): boot messages and anything the kernel logs while the script runs. */
  console: string;
  /** From starting QEMU to the script starting. */
  bootMs: number;
  /** The script's own run time. */
  runMs: number;
  /** CPU time QEMU used (user and system, all its threads) until the script started. */
  bootCpuMs: number;
  /** CPU time QEMU used while the script ran. */
  runCpuMs: number;
}

const BEGIN = '=====CAIRN-GUEST-BEGIN';
const END = /=====CAIRN-GUEST-END status=(\d+) uptime=[\d.]+=====/;
const SETUP_FAILED = /=====CAIRN-GUEST-SETUP-FAILED (.*)=====/;

export class GuestError extends Error {
  constructor(
    message: string,
    readonly console: string,
    readonly transcript: string,
  ) {
    super(
      `${message}\n--- guest console (tail)\n${console.slice(-6000)}\n--- guest transcript (tail)\n${transcript.slice(-6000)}`,
    );
    this.name = 'GuestError';
  }
}

/** A live process's CPU time (user + system, all threads), or undefined once it is gone. */
function cpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may contain anything.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/** USER_HZ: 100 on every Linux architecture Node runs on. */
const CLOCK_TICKS = 100;

function readIfExists(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/**
 * Boots the guest inside `ns`, runs `script`, and returns its transcript and exit status. Throws
 * a GuestError (with the console) if the guest does not finish within the timeout, or its setup
 * (modules, network) failed; the guest's QEMU is always gone when this returns.
 */
export async function runGuest(ns: Netns, options: GuestOptions): Promise<GuestResult> {
  if (!hasCommand('qemu-system-x86_64')) {
    throw new Error('qemu-system-x86_64 is not installed (Debian package qemu-system-x86)');
  }
  const base = guestBaseImage();
  const timeoutMs = options.timeoutMs ?? 180_000;
  const dir = makeTempDir('guest');
  try {
    const files: CpioEntry[] = [
      { path: 'guest/script.sh', mode: S_IFREG | 0o755, data: Buffer.from(options.script) },
    ];
    for (const [name, content] of Object.entries(options.files ?? {})) {
      if (name.includes('/') || name === 'script.sh') throw new Error(`bad guest file name ${name}`);
      files.push({ path: `guest/${name}`, mode: S_IFREG | 0o755, data: Buffer.from(content) });
    }
    const initrd = join(dir, 'initrd');
    writeFileSync(initrd, Buffer.concat([base.initrd, cpioNewc(files)]));
    const consoleFile = join(dir, 'console.log');
    // Both serial ports go to files: QEMU's UART gives up on a byte after a few failed writes to
    // a backend that is not ready (a pipe this process is slow to drain on a loaded machine),
    // and a transcript with bytes missing would read as a server's fault. A file takes them all.
    const transcriptFile = join(dir, 'transcript.log');
    const started = Date.now();
    const qemu = ns.spawn(
      [
        'qemu-system-x86_64',
        '-accel',
        'tcg',
        '-cpu',
        'max',
        '-smp',
        '1',
        '-m',
        String(options.memoryMiB ?? 512),
        '-nodefaults',
        '-no-user-config',
        '-display',
        'none',
        '-monitor',
        'none',
        '-no-reboot',
        '-kernel',
        base.kernel.vmlinuz,
        '-initrd',
        initrd,
        '-append',
        // mitigations=off: page-table isolation and the other speculation defences cost ~15% of
        // the battery's CPU time under emulation, and this guest runs nothing untrusted.
        `console=ttyS0 quiet loglevel=4 panic=-1 rdinit=/init mitigations=off ${options.kernelArgs ?? ''}`.trim(),
        '-netdev',
        'user,id=net0',
        // No option ROM: the guest never network-boots, and iPXE's start costs a second of TCG.
        '-device',
        'e1000,netdev=net0,romfile=',
        '-serial',
        `file:${consoleFile}`,
        '-serial',
        `file:${transcriptFile}`,
      ],
      { name: 'qemu' },
    );
    // The markers are seen by watching the transcript file, for the timings only: the result is
    // read once QEMU has exited. `ip netns exec` execs QEMU in place, so the spawned pid is
    // QEMU's, and its CPU time can be read while it is alive.
    let begunAt: number | undefined;
    let begunCpu: number | undefined;
    let endedCpu: number | undefined;
    let lastCpu: number | undefined;
    const watch = setInterval(() => {
      lastCpu = cpuMs(qemu.pid) ?? lastCpu;
      if (endedCpu !== undefined) return;
      const text = readIfExists(transcriptFile);
      if (begunAt === undefined && text.includes(BEGIN)) {
        begunAt = Date.now();
        begunCpu = lastCpu;
      }
      if (begunAt !== undefined && END.test(text)) endedCpu = lastCpu;
    }, 100);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      qemu.signal('SIGKILL');
    }, timeoutMs);
    const status = await qemu.exited.finally(() => {
      clearTimeout(timer);
      clearInterval(watch);
    });
    const endedAt = Date.now();
    const raw = readIfExists(transcriptFile).replace(/\r/g, '');
    const consoleText =
      readIfExists(consoleFile).replace(/\r/g, '') +
      (qemu.stderr ? `\n--- qemu stderr\n${qemu.stderr}` : '') +
      (qemu.stdout ? `\n--- qemu stdout\n${qemu.stdout}` : '');
    if (timedOut) throw new GuestError(`guest did not finish within ${timeoutMs} ms`, consoleText, raw);
    const setup = SETUP_FAILED.exec(raw);
    if (setup) throw new GuestError(`guest setup failed: ${setup[1]}`, consoleText, raw);
    const b = raw.indexOf(BEGIN);
    const e = END.exec(raw);
    if (b < 0 || e === null || e.index < b) {
      throw new GuestError(
        `guest ended (qemu code ${status.code}, signal ${status.signal}) without finishing its script`,
        consoleText,
        raw,
      );
    }
    const afterBegin = raw.indexOf('\n', b) + 1;
    return {
      transcript: raw.slice(afterBegin, e.index),
      exitCode: Number(e[1]),
      console: consoleText,
      bootMs: (begunAt ?? endedAt) - started,
      runMs: endedAt - (begunAt ?? endedAt),
      bootCpuMs: begunCpu ?? Number.NaN,
      runCpuMs: begunCpu !== undefined ? (endedCpu ?? lastCpu ?? Number.NaN) - begunCpu : Number.NaN,
    };
  } finally {
    removeTempDir(dir);
  }
}

export interface KernelBatteryOptions {
  /**
   * The server's address in the namespace. 127.0.0.1 (the default) is the guest's 10.0.2.2; any
   * other address the namespace can reach, the guest reaches through QEMU's user networking.
   */
  server?: string;
  exportPath: string;
  /** Default: the kernel asks rpcbind on the server (port 111). */
  nfsPort?: number;
  /** Default: the kernel asks rpcbind on the server (port 111). */
  mountPort?: number;
  /** The whole guest run; default 420 s (a loaded 2-core machine has needed 230 s). */
  timeoutMs?: number;
  kernelArgs?: string;
}

export interface RpcFigures {
  /** Calls the client made. */
  calls: number;
  /** Their summed round-trip times, ms. */
  rttMs: number;
}

export interface KernelBatteryResult extends GuestResult {
  /** The transcript's lines, empty ones dropped. */
  lines: string[];
  /** Lines the battery marked as failed. */
  failures: string[];
  /** What the client sent over the whole battery, by NFS procedure (from /proc/self/mountstats). */
  rpc: Record<string, RpcFigures>;
}

/** The battery's per-procedure figures, which it writes to the console once per mount. */
function parseRpcFigures(consoleText: string): Record<string, RpcFigures> {
  const rpc: Record<string, RpcFigures> = {};
  for (const m of consoleText.matchAll(/^battery-rpc (\w+) (\d+) (\d+) \d+$/gm)) {
    const f = rpc[m[1]] ?? { calls: 0, rttMs: 0 };
    f.calls += Number(m[2]);
    f.rttMs += Number(m[3]);
    rpc[m[1]] = f;
  }
  return rpc;
}

/** "LOOKUP 3012 (1.2 ms), CREATE 3004 (1.5 ms), ...": calls and mean round trip, busiest first. */
export function formatRpcFigures(rpc: Record<string, RpcFigures>): string {
  return Object.entries(rpc)
    .sort((a, b) => b[1].calls - a[1].calls)
    .map(([op, f]) => `${op} ${f.calls} (${(f.rttMs / f.calls).toFixed(1)} ms)`)
    .join(', ');
}

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * Mounts the export in the guest with the kernel's NFSv3 client and runs the POSIX battery
 * (test/support/guest/battery.sh). Its transcript is normalised (no inode numbers, times or
 * server-specific values), so two servers' transcripts compare line by line.
 */
export async function runKernelBattery(
  ns: Netns,
  options: KernelBatteryOptions,
): Promise<KernelBatteryResult> {
  const server = options.server ?? '127.0.0.1';
  const guestServer = server === '127.0.0.1' || server === 'localhost' ? '10.0.2.2' : server;
  const mountOptions = ['vers=3', 'nolock', 'proto=tcp', `addr=${guestServer}`];
  if (options.nfsPort !== undefined) mountOptions.push(`port=${options.nfsPort}`);
  if (options.mountPort !== undefined) mountOptions.push(`mountport=${options.mountPort}`, 'mountproto=tcp');
  const script = [
    `export NFS_SOURCE=${shellQuote(`${guestServer}:${options.exportPath}`)}`,
    `export NFS_OPTS=${shellQuote(mountOptions.join(','))}`,
    'exec sh /guest/battery.sh /mnt',
    '',
  ].join('\n');
  const r = await runGuest(ns, {
    script,
    files: { 'battery.sh': readFileSync(join(GUEST_DIR, 'battery.sh')) },
    timeoutMs: options.timeoutMs ?? 420_000,
    kernelArgs: options.kernelArgs,
  });
  const lines = r.transcript.split('\n').filter((l) => l.trim() !== '');
  return { ...r, lines, failures: lines.filter((l) => /: FAIL\b/.test(l)), rpc: parseRpcFigures(r.console) };
}

/** The expected battery transcript, recorded from nfs-ganesha (test/nfs/kernel-ganesha.test.ts). */
export const BATTERY_EXPECTED = join(ROOT, 'test/nfs/kernel-battery.expected.txt');

/**
 * A readable difference between an expected and an actual transcript, as the lines only one of
 * them has (from a longest common subsequence, so one missing line shows as one line), or
 * undefined when they are the same.
 */
export function transcriptDiff(expected: readonly string[], actual: readonly string[]): string | undefined {
  const n = expected.length;
  const m = actual.length;
  // lcs[i][j]: the longest common subsequence of expected[i..] and actual[j..].
  const lcs = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i][j] = expected[i] === actual[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && expected[i] === actual[j]) {
      i++;
      j++;
    } else if (i < n && (j === m || lcs[i + 1][j] >= lcs[i][j + 1])) {
      out.push(`- ${expected[i++]}`);
    } else {
      out.push(`+ ${actual[j++]}`);
    }
  }
  if (out.length === 0) return undefined;
  return `- expected only, + actual only (${out.length} lines)\n${out.slice(0, 80).join('\n')}`;
}
