// `cairn up`: runs local nodes in the foreground until SIGINT or SIGTERM. One node runs in this
// process; `--nodes N` runs N node processes (this command, once per node) and supervises them.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ClockSkewError, nodeClock, parseClockSkew } from '../clock.js';
import { isLoopbackAddress } from '../cluster/auth.js';
import { type SwimConfig, SwimConfigError, swimConfig } from '../cluster/membership/config.js';
import { failpoint } from '../failpoints.js';
import { CairnNode, type NodeEndpoints } from '../node/node.js';

const USAGE = `usage: cairn up [--nodes N] --data DIR [--host 127.0.0.1] [--rpcbind-port N] [--nfs-port N]
                [--exports FILE] [--gossip-port N] [--advertise HOST] [--join HOST:PORT]...
                [--secret-file FILE] [--zone NAME] [--weight W] [--swim JSON]

Starts Cairn nodes and prints where they serve; Ctrl-C (SIGINT) or SIGTERM stops them cleanly.

One node (the default): rpcbind takes port 111 where it may and any free port otherwise, NFS and
MOUNT take 2049 likewise, and membership (SWIM, UDP and TCP) takes 7946 likewise. Without
--exports, '/' is exported read-write to loopback clients (docs/EXPORTS.md).

--nodes N starts N node processes on loopback, node K with its data in DIR/node-K. Only node 1
tries the well-known ports (111, 2049, 7946); the others take free ports. They join each other,
and \`cairn status\` asks node 1 for the cluster's view.

--join HOST:PORT (repeatable) joins the cluster of the node whose membership port that is.
A node that listens on other than loopback needs the cluster secret, from --secret-file or the
environment variable CAIRN_CLUSTER_SECRET (at least 16 bytes: openssl rand -hex 32); without one,
a node that joins nobody keeps membership on 127.0.0.1, and one asked to join refuses to start.
--swim takes SWIM settings as JSON (docs/MEMBERSHIP.md), e.g. '{"probeInterval":500}'.
CAIRN_CLOCK_SKEW='offset=+30000,rate=1.05' runs the node's clocks off real time, for fault tests:
the wall clock shifted by the offset (ms), both clocks running at the rate (src/clock.ts).
`;

class UsageError extends Error {}

function port(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new UsageError(`${name} must be a port number, not '${value}'`);
  return n;
}

function swimSettings(value: string | undefined): Partial<SwimConfig> | undefined {
  const text = value ?? process.env.CAIRN_SWIM;
  if (text === undefined || text === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new UsageError(`--swim must be a JSON object, not '${text}'`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new UsageError('--swim must be a JSON object');
  }
  for (const [k, v] of Object.entries(parsed)) {
    if (typeof v !== 'number' && typeof v !== 'boolean')
      throw new UsageError(`--swim: ${k} must be a number`);
  }
  return parsed as Partial<SwimConfig>;
}

function readSecret(file: string | undefined): string | undefined {
  if (file !== undefined) {
    try {
      // A trailing newline (echo, an editor) is not part of the secret.
      return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (e) {
      throw new UsageError(`cannot read --secret-file ${file}: ${(e as Error).message}`);
    }
  }
  const env = process.env.CAIRN_CLUSTER_SECRET;
  return env === undefined || env === '' ? undefined : env;
}

type Values = ReturnType<typeof parse>['values'];

export async function upMain(argv: string[]): Promise<number> {
  let values: Values;
  let nodes: number;
  try {
    values = parse(argv).values;
    if (values.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    if (values.data === undefined) throw new UsageError('--data DIR is required');
    nodes = Number(values.nodes ?? '1');
    if (!Number.isInteger(nodes) || nodes < 1 || nodes > 64) {
      throw new UsageError('--nodes must be an integer from 1 to 64');
    }
    // Checked here so that a mistake is reported once, not by every node.
    port(values['rpcbind-port'], '--rpcbind-port');
    port(values['nfs-port'], '--nfs-port');
    port(values['gossip-port'], '--gossip-port');
    swimConfig(swimSettings(values.swim));
    readSecret(values['secret-file']);
    parseClockSkew(process.env.CAIRN_CLOCK_SKEW);
    if (values.weight !== undefined && !/^\d+$/.test(values.weight)) {
      throw new UsageError('--weight must be a whole number');
    }
    if (nodes > 1 && values.host !== undefined && !isLoopbackAddress(values.host)) {
      throw new UsageError(
        '--nodes N runs a local cluster on loopback; start nodes elsewhere one by one with --join',
      );
    }
  } catch (e) {
    const expected = [UsageError, TypeError, SwimConfigError, ClockSkewError];
    if (!expected.some((c) => e instanceof c)) throw e;
    process.stderr.write(`cairn up: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  return nodes === 1 ? runOne(values) : runMany(values, nodes);
}

/**
 * A node whose process met an error nothing handles is in an unknown state: it ends at once, so
 * that its supervisor starts it again on its data (everything acknowledged is on disk). Node's own
 * exit cannot be trusted here: it joins libuv's thread pool, where an lmdb-js write worker may be
 * waiting for a JavaScript callback that will never run, and the process hangs (the nemesis
 * harness found such a node holding its port after a full disk).
 */
function dieOnFatalError(): void {
  const die = (what: string, e: unknown) => {
    try {
      writeSync(
        2,
        `cairn: fatal ${what}, killing the node: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
      );
    } finally {
      process.kill(process.pid, 'SIGKILL');
    }
  };
  process.on('uncaughtException', (e) => die('uncaught exception', e));
  process.on('unhandledRejection', (e) => die('unhandled rejection', e));
}

async function runOne(values: Values): Promise<number> {
  dieOnFatalError();
  const node = await CairnNode.start({
    dataDir: values.data as string,
    host: values.host,
    rpcbindPort: port(values['rpcbind-port'], '--rpcbind-port'),
    nfsPort: port(values['nfs-port'], '--nfs-port'),
    exportsFile: values.exports,
    clock: nodeClock(),
    cluster: {
      port: port(values['gossip-port'], '--gossip-port'),
      advertiseHost: values.advertise,
      seeds: values.join ?? [],
      secret: readSecret(values['secret-file']),
      zone: values.zone,
      weight: values.weight === undefined ? undefined : Number(values.weight),
      adminToken: process.env.CAIRN_ADMIN_TOKEN,
      swim: swimSettings(values.swim),
    },
  });
  // Signal handlers first: whoever reads the lines below may signal at once.
  const stopped = new Promise<void>((done) => {
    let stopping = false;
    const stop = (why: string) => {
      // Ctrl-C reaches a supervised node twice (from the terminal, then from its supervisor): a
      // second signal must not end the process with the default action half-way through its stop.
      if (stopping) return;
      stopping = true;
      process.stdout.write(`cairn: ${why}, stopping\n`);
      node.stop().then(done, done);
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
    // A supervisor that vanished (kill -9) leaves nobody to stop this node: stop with it.
    process.once('disconnect', () => stop('supervisor gone'));
  });
  const ep = node.endpoints();
  process.stdout.write(`cairn node up: data ${ep.dataDir}\n${describe(ep, '  ')}`);
  // Under `cairn up --nodes N`, the supervisor learns where this node serves over IPC.
  if (process.send) {
    process.send({ type: 'ready', endpoints: ep });
    process.channel?.unref();
  }
  if (failpoint('node.throw-after-start')) {
    setImmediate(() => {
      throw new Error('failpoint node.throw-after-start');
    });
  }
  await stopped;
  return 0;
}

function describe(ep: NodeEndpoints, indent: string): string {
  return (
    (ep.nodeId ? `${indent}id       ${ep.nodeId}\n` : '') +
    `${indent}rpcbind  ${ep.host}:${ep.rpcbind} (tcp, udp)\n` +
    `${indent}nfs      ${ep.host}:${ep.nfs} (NFSv3 and MOUNTv3, tcp and udp)\n` +
    (ep.membership ? `${indent}members  ${ep.membership} (SWIM membership, udp and tcp)\n` : '') +
    ep.exports
      .map(
        (e) =>
          `${indent}export   ${e}   e.g. nfs://${ep.host}${e}?version=3&nfsport=${ep.nfs}&mountport=${ep.nfs}\n`,
      )
      .join('')
  );
}

interface Child {
  index: number;
  proc: ChildProcess;
  endpoints?: NodeEndpoints;
  exited: Promise<void>;
  done: boolean;
}

/** Options every node process gets as given. */
function passThrough(values: Values): string[] {
  const out: string[] = [];
  const pass = (flag: string, v: string | undefined) => {
    if (v !== undefined) out.push(flag, v);
  };
  pass('--host', values.host);
  pass('--exports', values.exports);
  pass('--secret-file', values['secret-file'] === undefined ? undefined : resolve(values['secret-file']));
  pass('--zone', values.zone);
  pass('--weight', values.weight);
  pass('--swim', values.swim);
  for (const j of values.join ?? []) out.push('--join', j);
  return out;
}

async function runMany(values: Values, n: number): Promise<number> {
  const cli = process.argv[1];
  const data = resolve(values.data as string);
  const children: Child[] = [];
  let stopping = false;

  const startChild = (index: number, extra: string[]): Child => {
    const args = [
      cli,
      'up',
      '--nodes',
      '1',
      '--data',
      join(data, `node-${index}`),
      ...passThrough(values),
      ...extra,
    ];
    const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
    const child: Child = { index, proc, exited: Promise.resolve(), done: false };
    child.exited = new Promise<void>((done) => {
      proc.once('exit', (code, signal) => {
        child.done = true;
        if (!stopping) {
          process.stderr.write(
            `cairn: node ${index} (pid ${proc.pid}) exited unexpectedly (${signal ? `signal ${signal}` : `code ${code}`}); the others keep running\n`,
          );
        }
        done();
      });
    });
    // The node's own lines (its banner, its stop) are the supervisor's to print.
    proc.stdout?.resume();
    children.push(child);
    return child;
  };

  const ready = (c: Child) =>
    new Promise<NodeEndpoints>((resolveReady, reject) => {
      c.proc.on('message', (m: { type?: string; endpoints?: NodeEndpoints }) => {
        if (m?.type === 'ready' && m.endpoints) {
          c.endpoints = m.endpoints;
          resolveReady(m.endpoints);
        }
      });
      void c.exited.then(() => reject(new Error(`node ${c.index} exited before it was ready`)));
    });

  const stopAll = async () => {
    stopping = true;
    for (const c of children) if (!c.done) c.proc.kill('SIGTERM');
    const timer = setTimeout(() => {
      for (const c of children) if (!c.done) c.proc.kill('SIGKILL');
    }, 10_000);
    await Promise.all(children.map((c) => c.exited));
    clearTimeout(timer);
  };

  // Handlers stay installed: a repeated signal while the nodes stop must not kill the supervisor
  // before them (they get SIGKILL after a grace period instead).
  const signalled = new Promise<string>((resolveSignal) => {
    process.on('SIGINT', () => resolveSignal('SIGINT'));
    process.on('SIGTERM', () => resolveSignal('SIGTERM'));
  });

  try {
    const firstGossip = values['gossip-port'];
    const first = startChild(1, [
      ...(values['rpcbind-port'] ? ['--rpcbind-port', values['rpcbind-port']] : []),
      ...(values['nfs-port'] ? ['--nfs-port', values['nfs-port']] : []),
      ...(firstGossip ? ['--gossip-port', firstGossip] : []),
    ]);
    const seed = (await Promise.race([ready(first), signalled.then(() => undefined)]))?.membership;
    if (seed === undefined) {
      await stopAll();
      return stopping && first.endpoints === undefined ? 0 : 1;
    }
    const rest: Child[] = [];
    for (let k = 2; k <= n; k++) {
      const gossip = firstGossip && Number(firstGossip) > 0 ? String(Number(firstGossip) + k - 1) : '0';
      rest.push(
        startChild(k, ['--rpcbind-port', '0', '--nfs-port', '0', '--gossip-port', gossip, '--join', seed]),
      );
    }
    const all = await Promise.race([Promise.all(rest.map(ready)), signalled.then(() => undefined)]);
    if (all === undefined) {
      await stopAll();
      return 0;
    }
  } catch (e) {
    process.stderr.write(`cairn up: ${(e as Error).message}\n`);
    await stopAll();
    return 1;
  }

  let out = `cairn cluster up: ${n} nodes on loopback, data ${data}\n`;
  for (const c of children) {
    const ep = c.endpoints as NodeEndpoints;
    out += `  node ${c.index} (pid ${c.proc.pid}), data ${ep.dataDir}\n${describe(ep, '    ')}`;
  }
  const first = children[0].endpoints as NodeEndpoints;
  out +=
    `Only node 1 tries the well-known ports (rpcbind 111, NFS 2049, membership 7946); here it has ` +
    `${first.rpcbind}, ${first.nfs} and ${first.membership?.split(':').pop()}.\n` +
    `Cluster view: npx cairn status --node ${first.membership}\n`;
  process.stdout.write(out);

  const everyoneGone = Promise.all(children.map((c) => c.exited)).then(() => 'every node exited');
  const why = await Promise.race([signalled, everyoneGone]);
  if (why === 'every node exited') {
    process.stderr.write('cairn: every node exited\n');
    return 1;
  }
  process.stdout.write(`cairn: ${why}, stopping ${children.filter((c) => !c.done).length} nodes\n`);
  await stopAll();
  return 0;
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    options: {
      nodes: { type: 'string' },
      data: { type: 'string' },
      host: { type: 'string' },
      'rpcbind-port': { type: 'string' },
      'nfs-port': { type: 'string' },
      'gossip-port': { type: 'string' },
      advertise: { type: 'string' },
      join: { type: 'string', multiple: true },
      'secret-file': { type: 'string' },
      zone: { type: 'string' },
      weight: { type: 'string' },
      swim: { type: 'string' },
      exports: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
}
