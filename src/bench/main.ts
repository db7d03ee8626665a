/**
 * `npm run bench -- NAME [options]`: runs one benchmark. Each prints human-readable figures first
 * and, as the last line of stdout, one JSON object (PRODUCT.md, "Interfaces other tools rely on").
 */

type Benchmark = { describe: string; run: (argv: readonly string[]) => Promise<number> };

const BENCHMARKS: Record<string, Benchmark> = {
  rpc: {
    describe: 'Cairn ONC RPC against @grpc/grpc-js and a raw TCP/UDP echo (calls/s, latency, MiB/s)',
    run: async (argv) => (await import('./rpc.js')).run(argv),
  },
  nfs: {
    describe: 'Cairn NFSv3 against nfs-ganesha: nfs-cp write/read, metadata ops at 1 and 16 in flight (root)',
    run: async (argv) => (await import('./nfs.js')).run(argv),
  },
  membership: {
    describe:
      'SWIM membership in the simulator against memberlist LAN defaults: detection, false positives, spread, bytes',
    run: async (argv) => (await import('./membership.js')).run(argv),
  },
};

function usage(): string {
  const names = Object.entries(BENCHMARKS).map(([name, b]) => `  ${name.padEnd(12)}${b.describe}`);
  return ['usage: npm run bench -- NAME [options]', 'benchmarks:', ...names].join('\n');
}

async function main(): Promise<number> {
  const [name, ...rest] = process.argv.slice(2);
  if (name === '--help' || name === '-h') {
    console.log(usage());
    return 0;
  }
  const bench =
    name === undefined ? undefined : Object.hasOwn(BENCHMARKS, name) ? BENCHMARKS[name] : undefined;
  if (!bench) {
    console.error(name === undefined ? 'bench: no benchmark named' : `bench: unknown benchmark ${name}`);
    console.error(usage());
    return 2;
  }
  return bench.run(rest);
}

main().then(
  (code) => {
    process.exitCode = code;
    // Clients and servers are closed by now; a lingering handle must not keep the process alive.
    setTimeout(() => process.exit(code), 2000).unref();
  },
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  },
);
