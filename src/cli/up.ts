// `cairn up`: runs local nodes in the foreground until SIGINT or SIGTERM.
import { parseArgs } from 'node:util';
import { CairnNode } from '../node/node.js';

const USAGE = `usage: cairn up [--nodes 1] --data DIR [--host 127.0.0.1] [--rpcbind-port N] [--nfs-port N]
                [--exports FILE]

Starts a Cairn node and prints where it serves; Ctrl-C (SIGINT) or SIGTERM stops it cleanly.
Without --rpcbind-port, rpcbind takes port 111 where it may and any free port otherwise; likewise
NFS and MOUNT take 2049. Without --exports, '/' is exported read-write to loopback clients
(docs/EXPORTS.md describes the file).
`;

function port(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new Error(`${name} must be a port number, not '${value}'`);
  return n;
}

export async function upMain(argv: string[]): Promise<number> {
  let values: ReturnType<typeof parse>['values'];
  try {
    values = parse(argv).values;
  } catch (e) {
    process.stderr.write(`cairn up: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.data === undefined) {
    process.stderr.write(`cairn up: --data DIR is required\n${USAGE}`);
    return 2;
  }
  const nodes = Number(values.nodes ?? '1');
  if (!Number.isInteger(nodes) || nodes < 1) {
    process.stderr.write(`cairn up: --nodes must be a positive integer\n`);
    return 2;
  }
  if (nodes > 1) {
    // Several nodes make a cluster only once membership exists; refusing beats pretending.
    process.stderr.write('cairn up: only --nodes 1 is supported until cluster membership lands\n');
    return 2;
  }
  const node = await CairnNode.start({
    dataDir: values.data,
    host: values.host,
    rpcbindPort: port(values['rpcbind-port'], '--rpcbind-port'),
    nfsPort: port(values['nfs-port'], '--nfs-port'),
    exportsFile: values.exports,
  });
  const ep = node.endpoints();
  process.stdout.write(
    `cairn node up: data ${ep.dataDir}\n` +
      `  rpcbind  ${ep.host}:${ep.rpcbind} (tcp, udp)\n` +
      `  nfs      ${ep.host}:${ep.nfs} (NFSv3 and MOUNTv3, tcp and udp)\n` +
      ep.exports
        .map(
          (e) =>
            `  export   ${e}   e.g. nfs://${ep.host}${e}?version=3&nfsport=${ep.nfs}&mountport=${ep.nfs}\n`,
        )
        .join(''),
  );
  await new Promise<void>((done) => {
    const stop = (signal: string) => {
      process.stdout.write(`cairn: ${signal}, stopping\n`);
      node.stop().then(done, done);
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
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
      exports: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
}
