// `cairn status`: a running node's view of the cluster, asked over its membership port
// (GOSSIP_STATUS of src/cluster/gossip.x): members, states, incarnations, addresses, health, and
// each member's share of the ring under the layout of the live members.
import { parseArgs } from 'node:util';
import { CAIRN_GOSSIP_V1_Client, type gossip_status } from '../cluster/gen/gossip.js';
import { DEFAULT_GOSSIP_PORT, type GossipStatus } from '../cluster/gossip.js';
import { parseAddr } from '../cluster/gossip-transport.js';
import { TcpRpcClient } from '../rpc/client-tcp.js';

const USAGE = `usage: cairn status [--json] [--node HOST:PORT] [--timeout MS]

Asks a running node (default 127.0.0.1:${DEFAULT_GOSSIP_PORT}, its membership port) for its view of the
cluster: each member's id, address, state, incarnation, health (Lifeguard's local-health score,
0 = healthy) and ring ownership: the share of keys it is first for, and the share it holds one
of R replicas of, under a layout of the live (alive or suspect) members.
A node answers on loopback; from elsewhere, set CAIRN_ADMIN_TOKEN to the node's admin token.
--json prints one JSON object.
`;

/** The JSON shape of `cairn status --json` (stable: other tools read it): the node asked, and its view. */
export type StatusJson = { node: string } & GossipStatus;

export function toJson(node: string, s: gossip_status): StatusJson {
  return {
    node,
    self: s.self,
    addr: s.addr,
    incarnation: s.incarnation,
    health: s.health,
    replicas: s.replicas,
    layoutMembers: s.layout_members,
    counters: {
      probes: Number(s.probes),
      probesFailed: Number(s.probes_failed),
      suspicions: Number(s.suspicions),
      refutations: Number(s.refutations),
      packetsSent: Number(s.packets_sent),
      packetsReceived: Number(s.packets_received),
    },
    members: s.members.map((m) => ({
      id: m.id,
      addr: m.addr,
      state: m.state,
      incarnation: m.incarnation,
      health: m.health,
      sinceMs: m.since_ms,
      rpcbindPort: m.rpcbind_port,
      nfsPort: m.nfs_port,
      weight: m.weight,
      zone: m.zone,
      primaryShare: m.primary_share,
      replicaShare: m.replica_share,
    })),
    rejected: Object.fromEntries(s.rejected.map((r) => [r.reason, Number(r.count)])),
  };
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

function ago(ms: number): string {
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)}s`;
  if (ms < 3_600_000) return `${Math.round(ms / 1000)}s`;
  return `${(ms / 3_600_000).toFixed(1)}h`;
}

export function toText(j: StatusJson): string {
  const counts = { alive: 0, suspect: 0, dead: 0, left: 0 } as Record<string, number>;
  for (const m of j.members) counts[m.state] = (counts[m.state] ?? 0) + 1;
  const head =
    `cluster as seen by ${j.self} at ${j.addr} (incarnation ${j.incarnation}, health ${j.health})\n` +
    `members: ${counts.alive} alive, ${counts.suspect} suspect, ${counts.dead} dead, ${counts.left} left; ` +
    `ring of ${j.layoutMembers} live members, R = ${j.replicas}\n\n`;
  const rows = [
    [
      'ID',
      'ADDRESS',
      'STATE',
      'INC',
      'HEALTH',
      'SINCE',
      'RPCBIND',
      'NFS',
      'ZONE',
      'PRIMARY',
      `R=${j.replicas}`,
    ],
    ...j.members.map((m) => [
      m.id === j.self ? `${m.id.slice(0, 12)}*` : m.id.slice(0, 12),
      m.addr,
      m.state,
      String(m.incarnation),
      String(m.health),
      ago(m.sinceMs),
      m.rpcbindPort ? String(m.rpcbindPort) : '-',
      m.nfsPort ? String(m.nfsPort) : '-',
      m.zone || '-',
      pct(m.primaryShare),
      pct(m.replicaShare),
    ]),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const table = rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
  const rejected = Object.entries(j.rejected);
  const tail =
    rejected.length === 0 ? '' : `\n\nrejected messages: ${rejected.map(([r, n]) => `${r} ${n}`).join(', ')}`;
  return `${head}${table}\n(* this node)${tail}\n`;
}

export async function statusMain(argv: string[]): Promise<number> {
  let values: ReturnType<typeof parse>['values'];
  let node: string;
  let timeoutMs: number;
  try {
    values = parse(argv).values;
    if (values.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    node = values.node ?? `127.0.0.1:${DEFAULT_GOSSIP_PORT}`;
    parseAddr(node);
    timeoutMs = Number(values.timeout ?? '5000');
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1)
      throw new Error('--timeout must be a positive number of ms');
  } catch (e) {
    process.stderr.write(`cairn status: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const { host, port } = parseAddr(node);
  const client = new TcpRpcClient({ host, port, timeoutMs, reconnectDelayMs: timeoutMs });
  try {
    const reply = await new CAIRN_GOSSIP_V1_Client(client).GOSSIP_STATUS(process.env.CAIRN_ADMIN_TOKEN ?? '');
    if (reply.ok !== 1 || !('status' in reply)) {
      process.stderr.write(`cairn status: ${node} refused: ${(reply as { error: string }).error}\n`);
      return 1;
    }
    const j = toJson(node, reply.status);
    process.stdout.write(values.json ? `${JSON.stringify(j)}\n` : toText(j));
    return 0;
  } catch (e) {
    process.stderr.write(`cairn status: no answer from a node at ${node}: ${(e as Error).message}\n`);
    return 1;
  } finally {
    await client.close();
  }
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    options: {
      json: { type: 'boolean' },
      node: { type: 'string' },
      timeout: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
}
