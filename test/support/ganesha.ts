/**
 * nfs-ganesha (Debian nfs-ganesha + nfs-ganesha-vfs, FSAL_VFS) as the reference NFSv3 server for
 * tests and benchmarks: Debian's rpcbind and ganesha run together inside a caller's network
 * namespace, sharing a private /run (rpcbind's socket, which ganesha registers through, and
 * ganesha's own runtime files stay out of the host's /run). Ganesha's config, log, pid file and
 * recovery directory live in a temp dir of their own, removed by stop(); the exported directory
 * belongs to the caller.
 *
 * The export: read-write, no root squash, AUTH_SYS, NFSv3 only over TCP and UDP; NLM and RQUOTA
 * off; no grace period (Graceless), so the server serves as soon as it answers. Its MOUNT path
 * is `exportPath` (ganesha's Pseudo path, used for v3 mounts with mount_path_pseudo), default
 * "/export", whatever the directory on disk is called.
 *
 * Reaching it. Processes run in the namespace (`ns.exec`, `ns.execIn(rpcbindProcess, ...)`, a
 * QEMU guest's user-mode network) reach it at `address` (127.0.0.1). The test process itself
 * cannot enter a namespace (setns is per thread, and Node has no call for it), so to run Cairn's
 * own client in-process, `linkToHost(ns)` gives the namespace a veth pair to the host with a
 * private /30: ganesha and its rpcbind listen on every address, so the namespace end's address
 * reaches both from the test process. The pair goes away with the namespace.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Netns } from './netns.js';
import { hasCommand, runChecked, runCommand, type SpawnedProcess } from './process.js';
import { makeTempDir, removeTempDir } from './tmp.js';
import { waitUntil } from './wait.js';

export interface RunningGanesha {
  ns: Netns;
  address: string;
  nfsPort: number;
  mountPort: number;
  exportPath: string;
  dir: string;
  /** Ganesha's log (in its temp dir, gone after stop()): read it when a test fails. */
  logFile: string;
  stop(): Promise<void>;
}

/** Where FSAL_VFS and the other plugins are installed on Debian (amd64). */
const PLUGINS_DIR = '/usr/lib/x86_64-linux-gnu/ganesha';

function ganeshaConfig(o: { dir: string; exportPath: string; recovery: string }): string {
  const q = (s: string) => JSON.stringify(s);
  return `# Written by test/support/ganesha.ts.
NFS_CORE_PARAM {
  Protocols = 3;
  Enable_NLM = false;
  Enable_RQUOTA = false;
  # MOUNT takes the Pseudo path, so the mount path need not be the directory on disk.
  mount_path_pseudo = true;
  Plugins_Dir = ${q(PLUGINS_DIR)};
}
NFSV4 {
  Graceless = true;
  Grace_Period = 0;
  Lease_Lifetime = 1;
  RecoveryRoot = ${q(o.recovery)};
}
NFS_KRB5 {
  Active_krb5 = false;
}
EXPORT {
  Export_Id = 1;
  Path = ${q(o.dir)};
  Pseudo = ${q(o.exportPath)};
  Protocols = 3;
  Transports = TCP, UDP;
  Access_Type = RW;
  Squash = No_Root_Squash;
  SecType = sys;
  FSAL {
    Name = VFS;
  }
}
LOG {
  Default_Log_Level = EVENT;
}
`;
}

/** Parses `rpcinfo -p` output into the TCP port of each program at version `vers`. */
function tcpPorts(rpcinfoP: string, vers: number): Map<number, number> {
  const ports = new Map<number, number>();
  for (const line of rpcinfoP.split('\n')) {
    const m = /^\s*(\d+)\s+(\d+)\s+(tcp|udp)\s+(\d+)/.exec(line);
    if (m && Number(m[2]) === vers && m[3] === 'tcp') ports.set(Number(m[1]), Number(m[4]));
  }
  return ports;
}

/** Log lines that explain a failure, without the noise every run has (no D-Bus, no Kerberos). */
const NOISE = /DBUS|dbus|krb5|keytab|realm|principal|RADOS/;

/** A log line saying ganesha will not serve what it was asked to (it goes on running regardless). */
const FATAL = /:(CRIT|FATAL) :/;

function excerpt(file: string): string {
  let s: string;
  try {
    s = readFileSync(file, 'utf8');
  } catch (e) {
    return `(no log: ${(e as Error).message})`;
  }
  const serious = s.split('\n').filter((l) => /:(CRIT|MAJ|FATAL|WARN) :/.test(l) && !NOISE.test(l));
  return `${serious.join('\n')}\n--- last lines\n${s.slice(-3000)}`;
}

/**
 * Starts rpcbind and ganesha in `ns`, exporting `dir` (which must exist) at `exportPath`, and
 * resolves once a real client can use it: NFS and MOUNT answer NULL through rpcbind and
 * libnfs's nfs-ls mounts and lists the export.
 */
export async function startGanesha(
  ns: Netns,
  options: { dir: string; exportPath?: string },
): Promise<RunningGanesha> {
  for (const cmd of ['ganesha.nfsd', 'rpcbind', 'rpcinfo', 'nfs-ls'])
    if (!hasCommand(cmd) && !hasCommand(`/usr/sbin/${cmd}`))
      throw new Error(
        `${cmd} is not installed (Debian packages nfs-ganesha, nfs-ganesha-vfs, rpcbind, libnfs-utils)`,
      );
  if (!existsSync(join(PLUGINS_DIR, 'libfsalvfs.so')))
    throw new Error(`FSAL_VFS is not installed at ${PLUGINS_DIR} (Debian package nfs-ganesha-vfs)`);
  if (!existsSync(options.dir)) throw new Error(`export directory ${options.dir} does not exist`);
  const exportPath = options.exportPath ?? '/export';
  if (!exportPath.startsWith('/')) throw new Error(`exportPath must be absolute, not '${exportPath}'`);

  const work = makeTempDir('ganesha');
  const conf = join(work, 'ganesha.conf');
  const log = join(work, 'ganesha.log');
  const recovery = join(work, 'recovery');
  mkdirSync(recovery);
  writeFileSync(conf, ganeshaConfig({ dir: options.dir, exportPath, recovery }));

  let rpcbind: SpawnedProcess | null = null;
  let ganesha: SpawnedProcess | null = null;
  const stopProcesses = async () => {
    // Ganesha first, so it can unregister from a still-running rpcbind.
    await ganesha?.stop('SIGTERM', 10_000);
    await rpcbind?.stop('SIGTERM');
  };
  const diagnose = () =>
    `--- ganesha log (${log}), serious lines first\n${excerpt(log)}\n${ganesha?.describeOutput() ?? ''}\n${rpcbind?.describeOutput() ?? ''}`;

  try {
    // -f: foreground, so the harness owns the process. rpcbind says nothing when ready.
    rpcbind = ns.spawn(['rpcbind', '-f'], { privateRun: true, name: 'ganesha rpcbind' });
    const rb = rpcbind;
    // waitUntil retries on errors; a dead daemon is final, so probes hand that out as a value.
    const rpcbindUp = await waitUntil(
      'rpcbind (for ganesha) to answer on 127.0.0.1:111',
      async (): Promise<{ fatal?: string } | false> => {
        if (!rb.running) return { fatal: 'rpcbind exited' };
        const r = await ns.execIn(rb, ['rpcinfo', '-p', '127.0.0.1'], { timeoutMs: 10_000 });
        return r.code === 0 ? {} : false;
      },
      { timeoutMs: 20_000 },
    );
    if (rpcbindUp.fatal !== undefined) throw new Error(rpcbindUp.fatal);

    // -F: foreground; -L: log file; ganesha's default pid file is in /run, give it ours.
    ganesha = ns.spawnIn(rb, ['ganesha.nfsd', '-F', '-L', log, '-f', conf, '-p', join(work, 'ganesha.pid')], {
      name: 'ganesha.nfsd',
    });
    const g = ganesha;
    const probe = (argv: string[]) => ns.execIn(rb, argv, { timeoutMs: 10_000 });
    const ready = await waitUntil(
      'ganesha to serve NFS and MOUNT version 3',
      async (): Promise<{ fatal?: string } | false> => {
        if (!g.running) return { fatal: 'ganesha.nfsd exited' };
        // A bad EXPORT block does not stop ganesha: it serves nothing. Say so at once.
        const text = existsSync(log) ? readFileSync(log, 'utf8') : '';
        const bad = text.split('\n').find((l) => FATAL.test(l) && !NOISE.test(l));
        if (bad !== undefined) return { fatal: `ganesha logged: ${bad.replace(/^.*?\] /, '')}` };
        if ((await probe(['rpcinfo', '-t', '127.0.0.1', '100003', '3'])).code !== 0) return false;
        if ((await probe(['rpcinfo', '-t', '127.0.0.1', '100005', '3'])).code !== 0) return false;
        // Kernel clients may ask MOUNT over UDP.
        if ((await probe(['rpcinfo', '-u', '127.0.0.1', '100005', '3'])).code !== 0) return false;
        if ((await probe(['rpcinfo', '-u', '127.0.0.1', '100003', '3'])).code !== 0) return false;
        // A real MNT and READDIR of the export root: what a test will do first.
        const ls = await probe(['nfs-ls', `nfs://127.0.0.1${exportPath}?version=3`]);
        return ls.code === 0 ? {} : false;
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    if (ready.fatal !== undefined) throw new Error(ready.fatal);
    const ports = tcpPorts((await probe(['rpcinfo', '-p', '127.0.0.1'])).stdout, 3);
    const nfsPort = ports.get(100003);
    const mountPort = ports.get(100005);
    if (nfsPort === undefined || mountPort === undefined)
      throw new Error('ganesha did not register NFS and MOUNT v3/tcp');

    let stopped = false;
    return {
      ns,
      address: '127.0.0.1',
      nfsPort,
      mountPort,
      exportPath,
      dir: options.dir,
      logFile: log,
      async stop() {
        if (stopped) return;
        stopped = true;
        await stopProcesses();
        removeTempDir(work);
      },
    };
  } catch (e) {
    const message = `ganesha did not start: ${(e as Error).message}\n${diagnose()}`;
    await stopProcesses();
    removeTempDir(work);
    throw new Error(message, { cause: e });
  }
}

export interface HostLink {
  /** The namespace end's address: reachable from the test process, and local inside the namespace. */
  nsAddress: string;
  /** The host end's address (what servers in the namespace see the test process as). */
  hostAddress: string;
  /** The host end's interface name. */
  hostIfname: string;
}

/**
 * Gives `ns` a veth pair to the host with a /30 from 10.213.0.0/16, chosen from the host end's
 * interface index: indexes are unique among live interfaces, so concurrent tests get distinct
 * subnets without coordinating. Removed with the namespace (deleting one end deletes both).
 */
export async function linkToHost(ns: Netns): Promise<HostLink> {
  const suffix = ns.name.slice(-6);
  const hostIfname = `cth${suffix}`.slice(0, 15);
  const nsIfname = 'eth0';
  await runChecked(
    'ip',
    ['link', 'add', hostIfname, 'type', 'veth', 'peer', 'name', nsIfname, 'netns', ns.name],
    {
      timeoutMs: 10_000,
    },
  );
  try {
    const show = await runChecked('cat', [`/sys/class/net/${hostIfname}/ifindex`], { timeoutMs: 5_000 });
    const slot = Number(show.stdout.trim()) % 16384;
    const base = slot * 4;
    const octets = (n: number) => `10.213.${(n >> 8) & 255}.${n & 255}`;
    const hostAddress = octets(base + 1);
    const nsAddress = octets(base + 2);
    const clash = await runCommand('ip', ['-4', 'route', 'show', 'to', 'match', nsAddress], {
      timeoutMs: 5_000,
    });
    if (/^(?!default)\S/m.test(clash.stdout))
      throw new Error(
        `the host already routes ${nsAddress}: ${clash.stdout.trim()} (pick another range in test/support/ganesha.ts)`,
      );
    await runChecked('ip', ['addr', 'add', `${hostAddress}/30`, 'dev', hostIfname], { timeoutMs: 10_000 });
    await runChecked('ip', ['link', 'set', hostIfname, 'up'], { timeoutMs: 10_000 });
    await runChecked('ip', ['-n', ns.name, 'addr', 'add', `${nsAddress}/30`, 'dev', nsIfname], {
      timeoutMs: 10_000,
    });
    await runChecked('ip', ['-n', ns.name, 'link', 'set', nsIfname, 'up'], { timeoutMs: 10_000 });
    return { nsAddress, hostAddress, hostIfname };
  } catch (e) {
    await runCommand('ip', ['link', 'del', hostIfname], { timeoutMs: 10_000 });
    throw e;
  }
}
