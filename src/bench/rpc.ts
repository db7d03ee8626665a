/**
 * `npm run bench -- rpc`: Cairn's ONC RPC against @grpc/grpc-js (the peer) and a raw
 * length-prefixed echo (the ceiling), client and servers in separate processes on loopback.
 *
 * Cases: a null call, a 1 KiB echo and a 1 MiB echo (the size of an NFS READ/WRITE), each with 1
 * and with 64 calls in flight; Cairn over TCP and UDP (UDP only up to 1 KiB: 1 MiB does not fit a
 * datagram). Each round runs every case for every system back to back, in an order rotated from
 * round to round, so that noise on a shared machine hits all of them alike; figures are medians
 * over rounds. The last line of stdout is the JSON object PRODUCT.md specifies.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EchoEndpoint } from './endpoint.js';
import { type Call, closedLoop } from './load.js';
import { type BenchResult, fmt, jsonLine, result, table } from './report.js';
import type { ParentMessage, ServerMessage, ServerSystem } from './rpc-server.js';
import { median, Reservoir } from './stats.js';

const HOST = '127.0.0.1';
const MiB = 1 << 20;

interface Shape {
  key: 'null' | '1k' | '1m';
  label: string;
  /** Payload bytes; -1 for the null procedure. */
  size: number;
}

const SHAPES: readonly Shape[] = [
  { key: 'null', label: 'null', size: -1 },
  { key: '1k', label: '1KiB echo', size: 1024 },
  { key: '1m', label: '1MiB echo', size: MiB },
];
const IN_FLIGHT: readonly number[] = [1, 64];

type ContenderKey = 'cairn-tcp' | 'cairn-udp' | 'cairn-drc' | 'grpc' | 'raw-tcp' | 'raw-udp';

interface Contender {
  key: ContenderKey;
  system: ServerSystem;
  label: string;
  applies(shape: Shape): boolean;
}

const CONTENDERS: readonly Contender[] = [
  { key: 'cairn-tcp', system: 'cairn', label: 'cairn tcp', applies: () => true },
  { key: 'cairn-udp', system: 'cairn', label: 'cairn udp', applies: (s) => s.key !== '1m' },
  { key: 'cairn-drc', system: 'cairn', label: 'cairn tcp, DRC on', applies: (s) => s.key === '1k' },
  { key: 'grpc', system: 'grpc', label: 'grpc-js', applies: () => true },
  { key: 'raw-tcp', system: 'raw', label: 'raw tcp echo', applies: () => true },
  { key: 'raw-udp', system: 'raw', label: 'raw udp echo', applies: (s) => s.key !== '1m' },
];

export interface RpcBenchOptions {
  rounds: number;
  /** Seconds per round per case per system. */
  duration: number;
  /** Seconds of untimed calls per case per system before the first round. */
  warmup: number;
  contenders: Set<ContenderKey>;
  shapes: Set<Shape['key']>;
  inFlight: number[];
  /** Directory for the server processes' CPU profiles (`--cpu-prof`), if any. */
  profileDir: string | null;
  /** Extra Node options for the server processes (for example `--trace-gc`). */
  serverNodeArgs: string[];
}

const USAGE = `usage: npm run bench -- rpc [options]
  --quick              a short smoke run (2 rounds of 0.1 s), same output shape
  --duration S         seconds per round per case per system (default 0.6)
  --rounds N           rounds; figures are medians over them (default 8)
  --warmup S           untimed seconds per case per system first (default 0.3)
  --only LIST          systems to run: cairn, grpc, raw, or cairn-tcp, cairn-udp, cairn-drc,
                       raw-tcp, raw-udp (comma-separated; default all)
  --cases LIST         shapes: null, 1k, 1m (default all)
  --in-flight LIST     calls in flight: default 1,64
  --profile DIR        run the servers under --cpu-prof, writing profiles into DIR
  --server-node-args A Node options for the server processes, e.g. '--trace-gc' (output on stderr)`;

export function parseOptions(argv: readonly string[]): RpcBenchOptions {
  const o: RpcBenchOptions = {
    rounds: 8,
    duration: 0.6,
    warmup: 0.3,
    contenders: new Set(CONTENDERS.map((c) => c.key)),
    shapes: new Set(SHAPES.map((s) => s.key)),
    inFlight: [...IN_FLIGHT],
    profileDir: null,
    serverNodeArgs: [],
  };
  const list = (v: string) =>
    v
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
  const num = (flag: string, v: string | undefined, min: number, max: number): number => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n < min || n > max) {
      throw new UsageError(`${flag} needs a number from ${min} to ${max}`);
    }
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.includes('=')
      ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]
      : [a, undefined];
    const value = () => inline ?? argv[++i];
    switch (flag) {
      case '--quick':
        o.rounds = 2;
        o.duration = 0.1;
        o.warmup = 0.05;
        break;
      case '--duration':
        o.duration = num(flag, value(), 0.01, 60);
        break;
      case '--rounds':
        o.rounds = Math.round(num(flag, value(), 1, 100));
        break;
      case '--warmup':
        o.warmup = num(flag, value(), 0, 60);
        break;
      case '--only': {
        const keys = new Set<ContenderKey>();
        for (const name of list(value() ?? '')) {
          const matched = CONTENDERS.filter((c) => c.key === name || c.system === name);
          if (matched.length === 0) throw new UsageError(`--only: unknown system ${name}`);
          for (const c of matched) keys.add(c.key);
        }
        o.contenders = keys;
        break;
      }
      case '--cases': {
        const keys = new Set<Shape['key']>();
        for (const name of list(value() ?? '')) {
          const s = SHAPES.find((x) => x.key === name);
          if (!s) throw new UsageError(`--cases: unknown case ${name} (null, 1k, 1m)`);
          keys.add(s.key);
        }
        o.shapes = keys;
        break;
      }
      case '--in-flight':
        o.inFlight = list(value() ?? '').map((v) => Math.round(num(flag, v, 1, 1024)));
        break;
      case '--profile':
        o.profileDir = resolve(value() ?? '.bench/profiles');
        break;
      case '--server-node-args':
        o.serverNodeArgs = (value() ?? '').split(/\s+/).filter((x) => x !== '');
        break;
      case '--help':
      case '-h':
        throw new UsageError('');
      default:
        throw new UsageError(`unknown option ${a}`);
    }
  }
  if (o.contenders.size === 0 || o.shapes.size === 0 || o.inFlight.length === 0) {
    throw new UsageError('nothing to run');
  }
  return o;
}

export class UsageError extends Error {}

/** One server process. */
class ServerProcess {
  private exited = false;
  private readonly exitPromise: Promise<void>;
  /** Rejects if the server exits before it is asked to: a run racing it fails at once. */
  readonly died: Promise<never>;

  private constructor(
    readonly system: ServerSystem,
    private readonly child: ChildProcess,
    readonly ports: { tcp: number; udp?: number },
  ) {
    this.exitPromise = new Promise<void>((res) => {
      if (child.exitCode !== null || child.signalCode !== null) res();
      else child.once('exit', () => res());
    });
    void this.exitPromise.then(() => {
      this.exited = true;
    });
    this.died = this.exitPromise.then(() => {
      throw new Error(`${system} server exited during the benchmark (${child.signalCode ?? child.exitCode})`);
    });
    // Only runs racing it observe the rejection; stopping on purpose must not be unhandled.
    this.died.catch(() => {});
  }

  static async start(
    system: ServerSystem,
    o: RpcBenchOptions,
    all: Set<ChildProcess>,
  ): Promise<ServerProcess> {
    const entry = join(dirname(fileURLToPath(import.meta.url)), 'rpc-server.js');
    // Never inherit our own Node options: a client run under --cpu-prof must not profile servers.
    const execArgv = o.profileDir
      ? ['--cpu-prof', `--cpu-prof-dir=${o.profileDir}`, `--cpu-prof-name=server-${system}.cpuprofile`]
      : [];
    execArgv.push(...o.serverNodeArgs);
    // The server's stdout goes to our stderr: our stdout carries only the report.
    const child = fork(entry, [system, HOST], { stdio: ['ignore', 2, 2, 'ipc'], execArgv });
    all.add(child);
    child.once('exit', () => all.delete(child));
    const ports = await new Promise<{ tcp: number; udp?: number }>((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`${system} server did not start within 15 s`)), 15_000);
      const done = () => {
        clearTimeout(timer);
        child.off('message', onMessage);
        child.off('exit', onExit);
      };
      const onMessage = (m: ServerMessage) => {
        if (m.type === 'ready') {
          done();
          res(m.ports);
        } else if (m.type === 'error') {
          done();
          rej(new Error(`${system} server failed to start: ${m.message}`));
        }
      };
      const onExit = (code: number | null, signal: string | null) => {
        done();
        rej(new Error(`${system} server exited before it was ready (${signal ?? code})`));
      };
      child.on('message', onMessage);
      child.once('exit', onExit);
    });
    return new ServerProcess(system, child, ports);
  }

  /** CPU time (user + system) the server has used so far, in µs. */
  cpu(): Promise<number> {
    return new Promise((res) => {
      const timer = setTimeout(() => res(Number.NaN), 2000);
      const onMessage = (m: ServerMessage) => {
        if (m.type !== 'cpu') return;
        clearTimeout(timer);
        this.child.off('message', onMessage);
        res(m.micros);
      };
      this.child.on('message', onMessage);
      this.send({ type: 'cpu' });
    });
  }

  stats(): Promise<Record<string, number>> {
    return new Promise((res) => {
      const timer = setTimeout(() => res({}), 2000);
      const onMessage = (m: ServerMessage) => {
        if (m.type !== 'stats') return;
        clearTimeout(timer);
        this.child.off('message', onMessage);
        res(m.stats);
      };
      this.child.on('message', onMessage);
      this.send({ type: 'stats' });
    });
  }

  private send(m: ParentMessage): void {
    if (!this.exited && this.child.connected) this.child.send(m);
  }

  /** Asks the server to exit (so a CPU profile gets written); kills it if it does not. */
  async stop(): Promise<void> {
    if (this.exited) return;
    this.send({ type: 'stop' });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exitPromise;
    clearTimeout(timer);
  }
}

interface Figure {
  callsPerSec: number;
  p50: number;
  p99: number;
  /** CPU time per call, client and server, in µs. */
  clientCpu: number;
  serverCpu: number;
  errors: number;
  retransmissions: number;
}

interface Summary {
  callsPerSec: number;
  p50: number;
  p99: number;
  clientCpu: number;
  serverCpu: number;
  /** Client plus server CPU µs per call. */
  cpu: number;
  mibPerSec: number;
  minCallsPerSec: number;
  maxCallsPerSec: number;
  errors: number;
  retransmissions: number;
}

interface Client {
  endpoint: EchoEndpoint;
  retransmissions(): number;
  close(): Promise<void>;
}

/** Connects to the servers the selected contenders need. */
async function connectClients(
  servers: Map<ServerSystem, ServerProcess>,
  keys: Set<ContenderKey>,
): Promise<Map<ContenderKey, Client>> {
  const clients = new Map<ContenderKey, Client>();
  const cairn = servers.get('cairn');
  if (cairn) {
    const { CairnEchoClient } = await import('./cairn-echo.js');
    const make: [ContenderKey, () => InstanceType<typeof CairnEchoClient>][] = [
      ['cairn-tcp', () => CairnEchoClient.tcp(HOST, cairn.ports.tcp)],
      ['cairn-udp', () => CairnEchoClient.udp(HOST, cairn.ports.udp!)],
      ['cairn-drc', () => CairnEchoClient.tcp(HOST, cairn.ports.tcp, true)],
    ];
    for (const [key, f] of make) {
      if (!keys.has(key)) continue;
      const c = f();
      clients.set(key, { endpoint: c, retransmissions: () => c.retransmissions, close: () => c.close() });
    }
  }
  const grpc = servers.get('grpc');
  if (grpc && keys.has('grpc')) {
    const { GrpcEchoClient } = await import('./grpc-echo.js');
    const c = new GrpcEchoClient(HOST, grpc.ports.tcp);
    await c.ready();
    clients.set('grpc', { endpoint: c, retransmissions: () => 0, close: () => c.close() });
  }
  const raw = servers.get('raw');
  if (raw) {
    const { RawTcpEchoClient, RawUdpEchoClient } = await import('./raw-echo.js');
    if (keys.has('raw-tcp')) {
      const c = await RawTcpEchoClient.connect(HOST, raw.ports.tcp);
      clients.set('raw-tcp', { endpoint: c, retransmissions: () => 0, close: () => c.close() });
    }
    if (keys.has('raw-udp')) {
      const c = await RawUdpEchoClient.connect(HOST, raw.ports.udp!);
      clients.set('raw-udp', { endpoint: c, retransmissions: () => 0, close: () => c.close() });
    }
  }
  // One call each: connections are made and code paths touched before anything is timed.
  for (const c of clients.values()) await c.endpoint.null();
  return clients;
}

function caseName(shape: Shape, inFlight: number): string {
  return `${shape.label} @${inFlight}`;
}

function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

/** Runs the benchmark; returns the process exit code. */
export async function run(argv: readonly string[]): Promise<number> {
  let o: RpcBenchOptions;
  try {
    o = parseOptions(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    if (e.message) console.error(`bench rpc: ${e.message}`);
    console.error(USAGE);
    return e.message ? 2 : 0;
  }
  const contenders = CONTENDERS.filter((c) => o.contenders.has(c.key));
  const shapes = SHAPES.filter((s) => o.shapes.has(s.key));
  const groups = shapes.flatMap((shape) =>
    o.inFlight.map((inFlight) => ({
      shape,
      inFlight,
      contenders: contenders.filter((c) => c.applies(shape)),
    })),
  );
  const runsPerRound = groups.reduce((n, g) => n + g.contenders.length, 0);
  const estimate = runsPerRound * (o.rounds * o.duration + o.warmup);
  log(
    `bench rpc: ${groups.length} cases, ${runsPerRound} runs per round, ${o.rounds} rounds of ${o.duration} s ` +
      `(about ${Math.ceil(estimate)} s)`,
  );
  if (o.profileDir) mkdirSync(o.profileDir, { recursive: true });

  const children = new Set<ChildProcess>();
  const killAll = () => {
    for (const c of children) c.kill('SIGKILL');
  };
  process.once('exit', killAll);
  const onSignal = () => {
    killAll();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const servers = new Map<ServerSystem, ServerProcess>();
  let clients = new Map<ContenderKey, Client>();
  try {
    for (const system of new Set(contenders.map((c) => c.system))) {
      servers.set(system, await ServerProcess.start(system, o, children));
    }
    clients = await connectClients(servers, o.contenders);

    const payloads = new Map<number, Buffer>();
    for (const s of shapes) if (s.size >= 0) payloads.set(s.size, randomFillSync(Buffer.allocUnsafe(s.size)));
    const latencies = new Reservoir(1 << 20);
    const figures = new Map<string, Figure[]>();
    const key = (shape: Shape, inFlight: number, c: ContenderKey) => `${shape.key}@${inFlight}/${c}`;

    const runOne = async (shape: Shape, inFlight: number, c: Contender, seconds: number): Promise<Figure> => {
      const client = clients.get(c.key)!;
      const ep = client.endpoint;
      const payload = payloads.get(shape.size);
      const call: Call = payload === undefined ? () => ep.null() : () => ep.echo(payload);
      const server = servers.get(c.system)!;
      const retransBefore = client.retransmissions();
      latencies.reset();
      const serverBefore = await server.cpu();
      const clientBefore = process.cpuUsage();
      // A server that dies would leave calls waiting for their deadlines: fail the run instead.
      const r = await Promise.race([
        closedLoop(call, inFlight, seconds * 1000, shape.size, latencies),
        server.died,
      ]);
      const clientUsed = process.cpuUsage(clientBefore);
      const serverUsed = (await server.cpu()) - serverBefore;
      const [p50, p99] = latencies.percentiles([50, 99]);
      const perCall = (micros: number) => (r.calls > 0 ? micros / r.calls : Number.NaN);
      return {
        callsPerSec: r.calls / r.seconds,
        p50,
        p99,
        clientCpu: perCall(clientUsed.user + clientUsed.system),
        serverCpu: perCall(serverUsed),
        errors: r.errors,
        retransmissions: client.retransmissions() - retransBefore,
      };
    };

    if (o.warmup > 0) {
      log('warming up');
      for (const g of groups) for (const c of g.contenders) await runOne(g.shape, g.inFlight, c, o.warmup);
    }
    for (let round = 0; round < o.rounds; round++) {
      const started = performance.now();
      for (const [gi, g] of groups.entries()) {
        // Rotate the order within each case from round to round, so no system always runs first.
        const n = g.contenders.length;
        for (let j = 0; j < n; j++) {
          const c = g.contenders[(j + round + gi) % n];
          const f = await runOne(g.shape, g.inFlight, c, o.duration);
          const k = key(g.shape, g.inFlight, c.key);
          if (!figures.has(k)) figures.set(k, []);
          figures.get(k)!.push(f);
        }
      }
      log(`round ${round + 1}/${o.rounds} done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    }

    const summary = (shape: Shape, inFlight: number, c: ContenderKey): Summary | undefined => {
      const fs = figures.get(key(shape, inFlight, c));
      if (!fs || fs.length === 0) return undefined;
      const cps = fs.map((f) => f.callsPerSec);
      const callsPerSec = median(cps);
      const clientCpu = median(fs.map((f) => f.clientCpu));
      const serverCpu = median(fs.map((f) => f.serverCpu));
      return {
        callsPerSec,
        p50: median(fs.map((f) => f.p50)),
        p99: median(fs.map((f) => f.p99)),
        clientCpu,
        serverCpu,
        cpu: median(fs.map((f) => f.clientCpu + f.serverCpu)),
        mibPerSec: shape.size > 0 ? (callsPerSec * shape.size) / MiB : Number.NaN,
        minCallsPerSec: Math.min(...cps),
        maxCallsPerSec: Math.max(...cps),
        errors: fs.reduce((n, f) => n + f.errors, 0),
        retransmissions: fs.reduce((n, f) => n + f.retransmissions, 0),
      };
    };

    // The figures, case by case.
    const rows: string[][] = [];
    for (const g of groups) {
      for (const c of g.contenders) {
        const s = summary(g.shape, g.inFlight, c.key);
        if (!s) continue;
        const notes: string[] = [];
        if (s.errors > 0) notes.push(`${s.errors} errors`);
        if (s.retransmissions > 0) notes.push(`${s.retransmissions} retransmissions`);
        rows.push([
          caseName(g.shape, g.inFlight),
          c.label,
          fmt(s.callsPerSec),
          `${fmt(s.minCallsPerSec)}–${fmt(s.maxCallsPerSec)}`,
          fmt(s.p50),
          fmt(s.p99),
          fmt(s.mibPerSec),
          fmt(s.clientCpu),
          fmt(s.serverCpu),
          notes.join(', '),
        ]);
      }
    }
    const out: string[] = [];
    out.push(
      `RPC benchmark: medians of ${o.rounds} rounds of ${o.duration} s per case per system, ` +
        'client and servers in separate processes on 127.0.0.1',
    );
    out.push('');
    out.push(
      table(
        [
          'case',
          'system',
          'calls/s',
          'range over rounds',
          'p50 ms',
          'p99 ms',
          'MiB/s',
          'client µs',
          'server µs',
          '',
        ],
        rows,
      ),
    );

    // The comparisons: against grpc-js (the peer) and against the raw echo (the ceiling).
    const results: BenchResult[] = [];
    const compare = (
      metricBase: string,
      shape: Shape,
      inFlight: number,
      cairnKey: ContenderKey,
      peerKey: ContenderKey,
      peerName: string,
      metrics: readonly ('calls' | 'p50' | 'p99' | 'mib' | 'cpu')[],
      suffix = '',
    ) => {
      const a = summary(shape, inFlight, cairnKey);
      const b = summary(shape, inFlight, peerKey);
      if (!a || !b) return;
      for (const m of metrics) {
        if (m === 'calls') {
          results.push(
            result(
              `${metricBase} calls/s @${inFlight}${suffix}`,
              'calls/s',
              a.callsPerSec,
              b.callsPerSec,
              peerName,
              'higher',
            ),
          );
        } else if (m === 'mib') {
          if (shape.size > 0) {
            results.push(
              result(
                `${metricBase} MiB/s @${inFlight}${suffix}`,
                'MiB/s',
                a.mibPerSec,
                b.mibPerSec,
                peerName,
                'higher',
              ),
            );
          }
        } else if (m === 'cpu') {
          results.push(
            result(`${metricBase} cpu µs/call @${inFlight}${suffix}`, 'µs', a.cpu, b.cpu, peerName, 'lower'),
          );
        } else {
          results.push(
            result(`${metricBase} ${m} ms @${inFlight}${suffix}`, 'ms', a[m], b[m], peerName, 'lower'),
          );
        }
      }
    };
    for (const g of groups) {
      const { shape, inFlight } = g;
      const big = shape.size >= MiB;
      const vsPeer = big
        ? (['mib', 'calls', 'p50', 'p99', 'cpu'] as const)
        : (['calls', 'p50', 'p99', 'cpu'] as const);
      const vsCeiling = big ? (['mib', 'calls', 'p99', 'cpu'] as const) : (['calls', 'p99', 'cpu'] as const);
      compare(`tcp ${shape.label}`, shape, inFlight, 'cairn-tcp', 'grpc', 'grpc-js', vsPeer);
      compare(
        `tcp ${shape.label}`,
        shape,
        inFlight,
        'cairn-tcp',
        'raw-tcp',
        'raw-tcp-echo',
        vsCeiling,
        ' vs ceiling',
      );
      // grpc-js has no UDP: Cairn's UDP calls are compared with grpc-js's TCP calls of the same shape.
      compare(
        `udp ${shape.label}`,
        shape,
        inFlight,
        'cairn-udp',
        'grpc',
        'grpc-js',
        vsPeer,
        ' (grpc-js over tcp)',
      );
      compare(
        `udp ${shape.label}`,
        shape,
        inFlight,
        'cairn-udp',
        'raw-udp',
        'raw-udp-echo',
        vsCeiling,
        ' vs ceiling',
      );
      compare(`tcp ${shape.label} DRC on`, shape, inFlight, 'cairn-drc', 'grpc', 'grpc-js', ['calls', 'p99']);
    }
    out.push('');
    out.push(
      'Cairn against grpc-js (the peer) and the raw echo (the ceiling); ratio > 1 means Cairn is better,',
    );
    out.push(
      'for latency ratio = peer/cairn; against the ceiling, ratio is the fraction of it Cairn reaches.',
    );
    out.push('');
    out.push(
      table(
        ['metric', 'cairn', 'peer', 'peer name', 'ratio'],
        results.map((r) => [r.metric, fmt(r.cairn), fmt(r.peer), r.peerName, r.ratio.toFixed(2)]),
      ),
    );
    out.push('');
    out.push(...targets(results));

    const cairnServer = servers.get('cairn');
    if (cairnServer) {
      const st = await cairnServer.stats();
      out.push('');
      out.push(
        `cairn server: ${Object.entries(st)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}`,
      );
    }
    process.stdout.write(`${out.join('\n')}\n`);
    process.stdout.write(`${jsonLine('rpc', results)}\n`);
    return 0;
  } finally {
    for (const c of clients.values()) await c.close().catch(() => {});
    await Promise.all([...servers.values()].map((s) => s.stop()));
    killAll();
    process.off('exit', killAll);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** The issue's targets, each marked met or missed. */
function targets(results: readonly BenchResult[]): string[] {
  const lines = ['Targets (issue 2):'];
  const check = (label: string, r: BenchResult | undefined, min: number) => {
    if (!r) return;
    lines.push(
      `  ${r.ratio >= min ? 'met   ' : 'MISSED'} ${label}: ${r.metric} ratio ${r.ratio.toFixed(2)} (need >= ${min})`,
    );
  };
  const find = (metric: string, peerName: string) =>
    results.find((r) => r.metric === metric && r.peerName === peerName);
  for (const s of ['null', '1KiB echo']) {
    check('5x grpc-js calls/s at 64 in flight', find(`tcp ${s} calls/s @64`, 'grpc-js'), 5);
    check('3x grpc-js calls/s at 1 in flight', find(`tcp ${s} calls/s @1`, 'grpc-js'), 3);
    check('half the raw echo at 64 in flight', find(`tcp ${s} calls/s @64 vs ceiling`, 'raw-tcp-echo'), 0.5);
  }
  for (const r of results) {
    if (r.peerName === 'grpc-js' && r.metric.includes(' p99 ') && !r.metric.includes('DRC')) {
      check('lower p99 than grpc-js', r, 1);
    }
  }
  return lines;
}
