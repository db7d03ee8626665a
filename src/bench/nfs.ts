/**
 * `npm run bench -- nfs`: Cairn's NFSv3 server against nfs-ganesha (FSAL_VFS), each with its own
 * rpcbind in its own network namespace on the same machine and disk. Sequential write and read
 * of one large file with libnfs's nfs-cp (run inside the namespace), and a metadata workload
 * (CREATE, GETATTR, REMOVE of many small files) through Cairn's NFS client at 1 and 16 calls in
 * flight over a veth link. Rounds alternate between the servers so that a noisy machine
 * disturbs both alike; figures are medians over rounds. Needs root (namespaces).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { linkToHost, type RunningGanesha, startGanesha } from '../../test/support/ganesha.js';
import { type Netns, withNetns } from '../../test/support/netns.js';
import { runChecked, type SpawnedProcess } from '../../test/support/process.js';
import { makeTempDir, removeTempDir } from '../../test/support/tmp.js';
import { NfsClient } from '../nfs/client.js';
import { type BenchResult, fmt, jsonLine, result, table } from './report.js';
import { median } from './stats.js';

const CLI = join(import.meta.dirname, '..', 'cli', 'main.js');

interface Server {
  name: string;
  /** Address of the server for processes in its namespace, and for this process over the veth. */
  ns: Netns;
  hostReach: string;
  exportPath: string;
  stop(): Promise<void>;
}

interface Figures {
  writeMiBs: number;
  readMiBs: number;
  meta1: number;
  meta16: number;
}

async function startCairn(ns: Netns, work: string, hostAddress: string, nsAddress: string): Promise<Server> {
  const exportsFile = join(work, 'exports.json');
  writeFileSync(
    exportsFile,
    JSON.stringify({
      exports: [
        { path: '/export', id: 1, access: 'rw', clients: ['127.0.0.0/8', hostAddress], squash: 'none' },
      ],
    }),
  );
  const proc: SpawnedProcess = ns.spawn(
    [
      process.execPath,
      CLI,
      'up',
      '--data',
      join(work, 'data'),
      '--host',
      '0.0.0.0',
      '--exports',
      exportsFile,
    ],
    { env: { ...process.env, CAIRN_LOG_LEVEL: 'warn' } },
  );
  await proc.waitForLine(/^\s+nfs\s+/, 30_000);
  return {
    name: 'cairn',
    ns,
    hostReach: nsAddress,
    exportPath: '/export',
    async stop() {
      await proc.stop('SIGTERM', 10_000);
    },
  };
}

const nfsUrl = (s: Server, file: string) => `nfs://127.0.0.1${s.exportPath}/${file}?version=3`;

async function copyFigures(
  s: Server,
  local: string,
  sizeMiB: number,
  round: number,
): Promise<[number, number]> {
  const name = `seq-${round}`;
  let t = performance.now();
  await s.ns.execChecked(['nfs-cp', local, nfsUrl(s, name)], { timeoutMs: 900_000 });
  const write = sizeMiB / ((performance.now() - t) / 1000);
  const back = `${local}.${s.name}.back`;
  t = performance.now();
  await s.ns.execChecked(['nfs-cp', nfsUrl(s, name), back], { timeoutMs: 900_000 });
  const read = sizeMiB / ((performance.now() - t) / 1000);
  await runChecked('rm', ['-f', back]);
  return [write, read];
}

/** CREATE, GETATTR and REMOVE of `files` files with `depth` calls in flight: operations per second. */
async function metadataFigure(s: Server, files: number, depth: number, round: number): Promise<number> {
  const client = await NfsClient.connect({ host: s.hostReach, credential: { uid: 0, gid: 0 } });
  try {
    const root = await client.mount(s.exportPath);
    const dir = (await client.mkdir(root, `meta-${round}-${depth}`)).fh;
    const t = performance.now();
    const phase = async (op: (i: number) => Promise<unknown>) => {
      let next = 0;
      await Promise.all(
        Array.from({ length: depth }, async () => {
          for (let i = next++; i < files; i = next++) await op(i);
        }),
      );
    };
    const handles: Parameters<NfsClient['getattr']>[0][] = new Array(files);
    await phase(async (i) => {
      handles[i] = (await client.create(dir, `f${i}`, { mode: 'GUARDED' })).fh;
    });
    await phase((i) => client.getattr(handles[i]));
    await phase((i) => client.remove(dir, `f${i}`));
    return (3 * files) / ((performance.now() - t) / 1000);
  } finally {
    await client.close();
  }
}

export async function run(argv: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      'size-mib': { type: 'string', default: '1024' },
      files: { type: 'string', default: '10000' },
      rounds: { type: 'string', default: '3' },
    },
  });
  const sizeMiB = Number(values['size-mib']);
  const files = Number(values.files);
  const rounds = Number(values.rounds);
  if (![sizeMiB, files, rounds].every((n) => Number.isInteger(n) && n > 0)) {
    console.error('bench nfs: --size-mib, --files and --rounds must be positive integers');
    return 2;
  }
  const work = makeTempDir('bench-nfs');
  const figures: Record<string, Figures[]> = { cairn: [], ganesha: [] };
  try {
    const local = join(work, 'seq.bin');
    await runChecked('sh', ['-c', `head -c ${sizeMiB * 1048576} /dev/urandom > '${local}'`], {
      timeoutMs: 300_000,
    });
    await withNetns('bench-cairn', async (cns) => {
      await withNetns('bench-ganesha', async (gns) => {
        const clink = await linkToHost(cns);
        const glink = await linkToHost(gns);
        const cwork = join(work, 'cairn');
        const gdir = join(work, 'ganesha-export');
        mkdirSync(cwork);
        mkdirSync(gdir);
        const cairn = await startCairn(cns, cwork, clink.hostAddress, clink.nsAddress);
        let ganesha: RunningGanesha | undefined;
        try {
          ganesha = await startGanesha(gns, { dir: gdir });
          const peer: Server = {
            name: 'ganesha',
            ns: gns,
            hostReach: glink.nsAddress,
            exportPath: ganesha.exportPath,
            stop: ganesha.stop,
          };
          for (let r = 0; r < rounds; r++) {
            // Alternate which server goes first, so drift in the machine's state favours neither.
            const order = r % 2 === 0 ? [cairn, peer] : [peer, cairn];
            for (const s of order) {
              const [writeMiBs, readMiBs] = await copyFigures(s, local, sizeMiB, r);
              const meta1 = await metadataFigure(s, files, 1, r);
              const meta16 = await metadataFigure(s, files, 16, r);
              figures[s.name].push({ writeMiBs, readMiBs, meta1, meta16 });
              console.log(
                `round ${r + 1}/${rounds} ${s.name.padEnd(8)} write ${fmt(writeMiBs)} MiB/s  read ${fmt(readMiBs)} MiB/s  ` +
                  `metadata ${fmt(meta1)} ops/s @1  ${fmt(meta16)} ops/s @16`,
              );
            }
          }
        } finally {
          await ganesha?.stop();
          await cairn.stop();
        }
      });
    });
  } finally {
    removeTempDir(work);
  }
  const med = (name: string, k: keyof Figures) => median(figures[name].map((f) => f[k]));
  const rows: [string, string, keyof Figures][] = [
    [`sequential write ${sizeMiB} MiB (nfs-cp)`, 'MiB/s', 'writeMiBs'],
    [`sequential read ${sizeMiB} MiB (nfs-cp)`, 'MiB/s', 'readMiBs'],
    [`metadata create+getattr+remove x${files}, 1 in flight`, 'ops/s', 'meta1'],
    [`metadata create+getattr+remove x${files}, 16 in flight`, 'ops/s', 'meta16'],
  ];
  const results: BenchResult[] = rows.map(([metric, unit, k]) =>
    result(metric, unit, med('cairn', k), med('ganesha', k), 'nfs-ganesha 4.3 (FSAL_VFS)', 'higher'),
  );
  console.log(
    table(
      ['metric', 'unit', 'cairn', 'ganesha', 'ratio'],
      results.map((r) => [r.metric, r.unit, fmt(r.cairn), fmt(r.peer), r.ratio.toFixed(2)]),
    ),
  );
  console.log(jsonLine('nfs', results));
  return 0;
}
