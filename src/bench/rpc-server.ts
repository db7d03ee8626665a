/**
 * The server process of the RPC benchmark: `node rpc-server.js SYSTEM HOST`, SYSTEM one of
 * `cairn`, `grpc`, `raw`. Forked by rpc.ts with an IPC channel; it answers
 * `{type: 'ready', ports}` once listening, `{type: 'stats'}` and `{type: 'cpu'}` (CPU time used so
 * far, user + system, in µs) when asked, and exits on
 * `{type: 'stop'}` or when its parent goes away (so a crashed benchmark leaves no server behind).
 * Exiting through process.exit lets `--cpu-prof` write its profile.
 */

export type ServerSystem = 'cairn' | 'grpc' | 'raw';

export type ServerMessage =
  | { type: 'ready'; system: ServerSystem; ports: { tcp: number; udp?: number } }
  | { type: 'stats'; stats: Record<string, number> }
  | { type: 'cpu'; micros: number }
  | { type: 'error'; message: string };

export type ParentMessage = { type: 'stop' } | { type: 'stats' } | { type: 'cpu' };

interface Running {
  ports: { tcp: number; udp?: number };
  stats(): Record<string, number>;
  close(): Promise<void>;
}

async function start(system: ServerSystem, host: string): Promise<Running> {
  switch (system) {
    case 'cairn': {
      const { serveCairn } = await import('./cairn-echo.js');
      const s = await serveCairn(host);
      return { ports: { tcp: s.tcp, udp: s.udp }, stats: s.stats, close: s.close };
    }
    case 'grpc': {
      const { serveGrpc } = await import('./grpc-echo.js');
      const s = await serveGrpc(host);
      return { ports: { tcp: s.port }, stats: () => ({}), close: s.close };
    }
    case 'raw': {
      const { serveRaw } = await import('./raw-echo.js');
      const s = await serveRaw(host);
      return { ports: { tcp: s.tcp, udp: s.udp }, stats: () => ({}), close: s.close };
    }
  }
}

function send(m: ServerMessage): void {
  process.send?.(m);
}

async function main(): Promise<void> {
  const [system, host = '127.0.0.1'] = process.argv.slice(2);
  if (system !== 'cairn' && system !== 'grpc' && system !== 'raw') {
    console.error(`rpc-server: unknown system ${system}`);
    process.exit(2);
  }
  if (!process.send) {
    console.error('rpc-server: must be forked with an IPC channel');
    process.exit(2);
  }
  let running: Running;
  try {
    running = await start(system, host);
  } catch (e) {
    send({ type: 'error', message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
    process.exit(1);
  }
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    const force = setTimeout(() => process.exit(0), 2000);
    force.unref();
    await running.close().catch(() => {});
    process.exit(0);
  };
  process.on('message', (m: ParentMessage) => {
    if (m.type === 'stop') void stop();
    else if (m.type === 'stats') send({ type: 'stats', stats: running.stats() });
    else if (m.type === 'cpu') {
      const u = process.cpuUsage();
      send({ type: 'cpu', micros: u.user + u.system });
    }
  });
  process.on('disconnect', () => void stop());
  process.on('SIGTERM', () => void stop());
  send({ type: 'ready', system, ports: running.ports });
}

void main();
