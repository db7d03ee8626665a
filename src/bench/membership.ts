/**
 * `npm run bench -- membership`: SWIM in the deterministic simulator, Cairn's defaults against
 * memberlist's LAN defaults run by the same core in the same simulator. Virtual time, so the
 * figures are exact for a seed and do not depend on the machine; only the run time does.
 *
 * Figures: time from a crash to the first and to the last node declaring it dead (p50, p99) at
 * three cluster sizes; false positives per node-hour at 0, 5 and 20 % loss and with one slow node;
 * protocol rounds for one update to reach all N, against log2 N; bytes per node per second.
 */
import { parseArgs } from 'node:util';
import { chordHops } from '../cluster/chord.js';
import { CAIRN_DEFAULTS, MEMBERLIST_LAN, type SwimConfig } from '../cluster/membership/config.js';
import type { MembershipEvent } from '../cluster/membership/swim.js';
import { SeededRandom } from '../random.js';
import { SwimCluster } from '../sim/membership.js';
import { delays, type NetworkOptions } from '../sim/network.js';
import { type BenchResult, fmt, jsonLine, result, round, table } from './report.js';

interface Plan {
  sizes: { n: number; runs: number; crashes: number }[];
  fpNodes: number;
  fpHours: number;
  bytesNodes: number;
  bytesSeconds: number;
}

const FULL: Plan = {
  sizes: [
    { n: 100, runs: 4, crashes: 5 },
    { n: 500, runs: 2, crashes: 5 },
    { n: 2000, runs: 1, crashes: 4 },
  ],
  fpNodes: 32,
  fpHours: 1,
  bytesNodes: 100,
  bytesSeconds: 120,
};

const QUICK: Plan = {
  sizes: [
    { n: 30, runs: 1, crashes: 2 },
    { n: 60, runs: 1, crashes: 2 },
    { n: 120, runs: 1, crashes: 2 },
  ],
  fpNodes: 12,
  fpHours: 0.05,
  bytesNodes: 20,
  bytesSeconds: 20,
};

interface Candidate {
  name: string;
  config: SwimConfig;
}

const PEER: Candidate = { name: 'memberlist-lan', config: { ...MEMBERLIST_LAN } };
const CAIRN: Candidate = { name: 'cairn', config: { ...CAIRN_DEFAULTS } };

/** Percentile (nearest rank) of a small sample. */
function pct(xs: number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

interface Detection {
  first: number[];
  all: number[];
  rounds: number;
}

/**
 * A converged cluster of n; one update is timed to all n; then `crashes` nodes crash two seconds
 * apart and each is timed to its first and to its last declaration of death.
 */
export function detection(cfg: SwimConfig, n: number, crashes: number, seed: number): Detection {
  const crashedAt = new Map<number, number>();
  const deadBy = new Map<number, Set<number>>();
  const first: number[] = [];
  const all: number[] = [];
  const holder: { c?: SwimCluster } = {};
  const onEvent = (observer: number, at: number, e: MembershipEvent) => {
    if (e.type !== 'dead') return;
    const c = holder.c!;
    const s = c.indexOf(e.member.id)!;
    const t0 = crashedAt.get(s);
    if (t0 === undefined) return;
    let set = deadBy.get(s);
    if (!set) {
      set = new Set();
      deadBy.set(s, set);
      first.push(at - t0);
    }
    set.add(observer);
    if (set.size === n - crashes) all.push(at - t0);
  };
  const c = new SwimCluster({ n, seed, start: 'converged', config: cfg, onEvent });
  holder.c = c;
  c.sim.runFor(3_000);

  const origin = n - 1;
  c.swim(origin)!.setMeta(new Uint8Array([1]));
  const want = c.swim(origin)!.selfIncarnation;
  const t0 = c.sim.now();
  const reached = c.sim.runUntilTrue(
    () => {
      for (let o = 0; o < n; o++)
        if (o !== origin && c.swim(o)!.incarnationOf(c.ids[origin]) !== want) return false;
      return true;
    },
    60_000,
    cfg.probeInterval / 10,
  );
  const rounds = reached === undefined ? Number.NaN : (reached - t0) / cfg.probeInterval;

  const r = new SeededRandom(seed ^ 0xc4a5);
  const victims: number[] = [];
  while (victims.length < crashes) {
    const v = r.int(n - 1);
    if (!victims.includes(v)) victims.push(v);
  }
  for (let i = 0; i < crashes; i++) {
    c.sim.at(c.sim.now() + i * 2_000, () => {
      crashedAt.set(victims[i], c.sim.now());
      c.crash(victims[i]);
    });
  }
  if (crashes > 0) c.sim.runUntilTrue(() => all.length === crashes, 300_000, 1_000);
  return { first, all, rounds };
}

interface FalsePositives {
  perNodeHour: number;
  episodes: number;
  suspicions: number;
  nodeHours: number;
}

/** A healthy cluster for `hours` of virtual time: every declaration of death is a false one. */
export function falsePositives(
  cfg: SwimConfig,
  n: number,
  hours: number,
  seed: number,
  network: NetworkOptions,
  slow: boolean,
): FalsePositives {
  const episodes = new Set<string>();
  let suspicions = 0;
  const holder: { c?: SwimCluster } = {};
  const c = new SwimCluster({
    n,
    seed,
    start: 'converged',
    config: cfg,
    network,
    onEvent: (_o, _at, e) => {
      if (e.type === 'suspect') suspicions++;
      if (e.type === 'dead') episodes.add(`${holder.c!.indexOf(e.member.id)}@${e.member.incarnation}`);
    },
  });
  holder.c = c;
  if (slow) {
    // A struggling host: its packets take 400 ms more each way (an RTT past the probe timeout)
    // and it stalls for up to 2 s every 10 s or so, as under CPU starvation or GC.
    const s = c.addrs[0];
    c.sim.network.setNodeDelay(s, 400);
    const r = new SeededRandom(seed ^ 0x51);
    for (let t = 5_000; t < hours * 3_600_000; t += 5_000 + r.int(10_000)) {
      const len = 500 + r.int(1_500);
      c.sim.at(t, () => c.pause(0));
      c.sim.at(t + len, () => c.resume(0));
    }
  }
  c.sim.runFor(hours * 3_600_000);
  const nodeHours = n * hours;
  return { perNodeHour: episodes.size / nodeHours, episodes: episodes.size, suspicions, nodeHours };
}

/** Steady-state traffic of a healthy cluster, every packet encoded with the generated codec. */
export function bytesPerNodeSecond(cfg: SwimConfig, n: number, seconds: number, seed: number): number {
  const c = new SwimCluster({ n, seed, start: 'converged', config: cfg, wire: true });
  c.sim.runFor(5_000);
  const b0 = c.sim.stats.bytes;
  c.sim.runFor(seconds * 1000);
  return (c.sim.stats.bytes - b0) / n / seconds;
}

const USAGE = `usage: npm run bench -- membership [--quick] [--seed N]
  --quick     a smoke run (small clusters, minutes of virtual time), same output shape
  --seed N    the seed of every simulation (default 1); the same seed gives the same figures`;

export async function run(argv: readonly string[]): Promise<number> {
  let values: { quick?: boolean; seed?: string };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: { quick: { type: 'boolean' }, seed: { type: 'string', default: '1' } },
    }));
  } catch (e) {
    console.error(`bench membership: ${(e as Error).message}`);
    console.error(USAGE);
    return 2;
  }
  const seed = Number(values.seed);
  if (!Number.isInteger(seed) || seed < 0) {
    console.error('bench membership: --seed needs a non-negative integer');
    console.error(USAGE);
    return 2;
  }
  const plan = values.quick ? QUICK : FULL;
  const started = performance.now();
  const progress = (what: string) =>
    console.error(`[${((performance.now() - started) / 1000).toFixed(1)} s] ${what}`);
  const candidates = [CAIRN, PEER];
  const results: BenchResult[] = [];

  console.log(
    `Membership benchmark: SWIM + Lifeguard in the deterministic simulator (seed ${seed}${values.quick ? ', quick' : ''})`,
  );
  console.log('');
  console.log(
    table(
      [
        'config',
        'probe ms',
        'timeout ms',
        'k',
        'susp mult',
        'susp max',
        'retx mult',
        'gossip ms x fanout',
        'push-pull s',
      ],
      candidates.map(({ name, config: c }) => [
        name,
        String(c.probeInterval),
        String(c.probeTimeout),
        String(c.indirectChecks),
        String(c.suspicionMult),
        String(c.suspicionMaxMult),
        String(c.retransmitMult),
        c.gossipInterval > 0 ? `${c.gossipInterval} x ${c.gossipFanout}` : 'piggyback only',
        String(c.pushPullInterval / 1000),
      ]),
    ),
  );

  // Detection and dissemination.
  const detRows: string[][] = [];
  const dissRows: string[][] = [];
  for (const { n, runs, crashes } of plan.sizes) {
    const per: Record<string, Detection> = {};
    for (const cand of candidates) {
      const d: Detection = { first: [], all: [], rounds: Number.NaN };
      const rounds: number[] = [];
      for (let i = 0; i < runs; i++) {
        const one = detection(cand.config, n, crashes, seed + 1000 * i + n);
        d.first.push(...one.first);
        d.all.push(...one.all);
        rounds.push(one.rounds);
      }
      d.rounds = rounds.reduce((a, b) => a + b, 0) / rounds.length;
      per[cand.name] = d;
      progress(`detection N=${n} ${cand.name}: ${d.all.length} crashes`);
      detRows.push([
        `N=${n}`,
        cand.name,
        String(d.all.length),
        fmt(pct(d.first, 50) / 1000),
        fmt(pct(d.first, 99) / 1000),
        fmt(pct(d.all, 50) / 1000),
        fmt(pct(d.all, 99) / 1000),
      ]);
      dissRows.push([
        `N=${n}`,
        cand.name,
        fmt(d.rounds),
        fmt((d.rounds * cand.config.probeInterval) / 1000),
        fmt(Math.log2(n)),
      ]);
    }
    const [a, b] = [per[CAIRN.name], per[PEER.name]];
    for (const p of [50, 99]) {
      results.push(
        result(
          `detect crash, all nodes, p${p} @N=${n}`,
          's',
          pct(a.all, p) / 1000,
          pct(b.all, p) / 1000,
          PEER.name,
          'lower',
        ),
      );
    }
    results.push(
      result(
        `detect crash, first node, p50 @N=${n}`,
        's',
        pct(a.first, 50) / 1000,
        pct(b.first, 50) / 1000,
        PEER.name,
        'lower',
      ),
    );
    results.push(
      result(
        `dissemination to all @N=${n}`,
        's',
        (a.rounds * CAIRN.config.probeInterval) / 1000,
        (b.rounds * PEER.config.probeInterval) / 1000,
        PEER.name,
        'lower',
      ),
    );
  }
  console.log('');
  console.log('Time from a crash to its declaration as dead (virtual seconds)');
  console.log(table(['size', 'config', 'crashes', 'first p50', 'first p99', 'all p50', 'all p99'], detRows));
  // SWIM's own infection, without memberlist's extra gossip rounds: piggybacked on probes only.
  for (const { n } of plan.sizes) {
    const piggy = { ...CAIRN.config, gossipInterval: 0 };
    const d = detection(piggy, n, 0, seed + n);
    dissRows.push([
      `N=${n}`,
      'cairn, piggyback only',
      fmt(d.rounds),
      fmt((d.rounds * piggy.probeInterval) / 1000),
      fmt(Math.log2(n)),
    ]);
    progress(`dissemination by piggyback N=${n}`);
  }
  console.log('');
  console.log('One update to all N (a refreshed incarnation), in protocol rounds (probe intervals)');
  console.log(table(['size', 'config', 'rounds', 'seconds', 'log2 N'], dissRows));

  // False positives.
  const fpCases: { name: string; network: NetworkOptions; slow: boolean }[] = [
    { name: '0% loss', network: {}, slow: false },
    { name: '5% loss', network: { loss: 0.05 }, slow: false },
    { name: '20% loss', network: { loss: 0.2 }, slow: false },
    { name: 'slow node', network: { delay: delays.exponential(0.2, 0.3) }, slow: true },
  ];
  const fpRows: string[][] = [];
  for (const fc of fpCases) {
    const per: Record<string, FalsePositives> = {};
    for (const cand of candidates) {
      const f = falsePositives(cand.config, plan.fpNodes, plan.fpHours, seed + 7, fc.network, fc.slow);
      per[cand.name] = f;
      progress(`false positives ${fc.name} ${cand.name}: ${f.episodes}`);
      fpRows.push([
        fc.name,
        cand.name,
        fmt(f.nodeHours),
        String(f.episodes),
        fmt(f.perNodeHour),
        String(f.suspicions),
      ]);
    }
    // Zero against zero is a tie, not a division by zero: both sides get one event's worth added.
    const eps = 1 / per[CAIRN.name].nodeHours;
    const r = result(
      `false positives @${fc.name}`,
      'per node-hour',
      per[CAIRN.name].perNodeHour,
      per[PEER.name].perNodeHour,
      PEER.name,
      'lower',
    );
    r.ratio = round((per[PEER.name].perNodeHour + eps) / (per[CAIRN.name].perNodeHour + eps), 3);
    results.push(r);
    if (fc.name !== '0% loss') {
      const [a, b] = [per[CAIRN.name], per[PEER.name]];
      const s = result(
        `suspicions @${fc.name}`,
        'per node-hour',
        a.suspicions / a.nodeHours,
        b.suspicions / b.nodeHours,
        PEER.name,
        'lower',
      );
      s.ratio = round((b.suspicions + 1) / (a.suspicions + 1), 3);
      results.push(s);
    }
  }
  console.log('');
  console.log(
    `False positives: a healthy cluster of ${plan.fpNodes} for ${plan.fpHours} h (every death declared is false)`,
  );
  console.log(table(['case', 'config', 'node-hours', 'deaths', 'per node-hour', 'suspicions'], fpRows));

  // Bandwidth.
  const bw: Record<string, number> = {};
  for (const cand of candidates) {
    bw[cand.name] = bytesPerNodeSecond(cand.config, plan.bytesNodes, plan.bytesSeconds, seed + 11);
    progress(`bytes ${cand.name}`);
  }
  console.log('');
  console.log(
    `Traffic of a healthy cluster of ${plan.bytesNodes} (XDR bytes sent per node per second, push-pull included)`,
  );
  console.log(
    table(
      ['config', 'bytes/node/s'],
      candidates.map((c) => [c.name, fmt(bw[c.name])]),
    ),
  );
  results.push(
    result(
      `bytes per node per second @N=${plan.bytesNodes}`,
      'B/s',
      bw[CAIRN.name],
      bw[PEER.name],
      PEER.name,
      'lower',
    ),
  );

  // Chord routing, for memberships too large for every node to hold: hops per lookup against
  // the Chord paper's mean of ½·log2 N.
  const chordRows: string[][] = [];
  for (const n of values.quick ? [1_000] : [1_000, 10_000, 100_000]) {
    const h = chordHops(n, seed);
    chordRows.push([fmt(n), h.mean.toFixed(2), String(h.p99), h.reference.toFixed(2), String(h.wrong)]);
    results.push(
      result(
        `Chord lookup hops (mean) @N=${n}`,
        'hops',
        h.mean,
        h.reference,
        'Chord paper (½·log2 N)',
        'lower',
      ),
    );
    progress(`chord ${n}`);
  }
  console.log('');
  console.log('Chord lookups over stabilized finger tables (10,000 random keys)');
  console.log(table(['N', 'mean hops', 'p99 hops', '½·log2 N', 'wrong'], chordRows));

  console.log('');
  console.log(
    `ratio > 1: Cairn's defaults better than memberlist's LAN defaults (false positives: +1 event smoothing)`,
  );
  console.log(jsonLine('membership', results));
  return 0;
}
