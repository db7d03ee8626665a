#!/usr/bin/env node
// The `cairn` command: dispatches to one verb per file in this folder.

const USAGE = `usage: cairn <command> [options]

commands:
  rpcgen FILE.x --out DIR   compile an RPC language file into TypeScript
  up [--nodes N] --data DIR start N local Cairn nodes in the foreground (until SIGINT/SIGTERM)
  status [--json]           a running node's view of the cluster: members, states, ring ownership
  help                      show this text
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'rpcgen': {
      const { rpcgenMain } = await import('./rpcgen.js');
      return rpcgenMain(rest);
    }
    case 'up': {
      const { upMain } = await import('./up.js');
      return upMain(rest);
    }
    case 'status': {
      const { statusMain } = await import('./status.js');
      return statusMain(rest);
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`cairn: unknown command '${command}'\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`cairn: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
