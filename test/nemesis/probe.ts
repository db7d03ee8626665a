/**
 * `node probe.js HOST PORT TIMEOUT_MS`: exits 0 once an NFS NULL call to HOST:PORT is answered,
 * 1 if none is within the timeout. The harness runs it in the client namespace to know a node
 * serves the workloads again.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { NfsClient } from '../../src/nfs/client.js';

async function probe(host: string, port: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const left = Math.max(1, deadline - Date.now());
    const attempt = NfsClient.connect({
      host,
      nfsPort: port,
      mountPort: port,
      timeoutMs: Math.min(left, 2000),
    })
      .then(async (c) => {
        try {
          await c.null();
          return true;
        } finally {
          await c.close();
        }
      })
      .catch(() => false);
    // A connect that hangs (a SYN dropped) must not outlive the deadline.
    if (await Promise.race([attempt, delay(Math.min(left, 2000)).then(() => false)])) return true;
    await delay(100);
  }
  return false;
}

const [host, port, timeoutMs] = process.argv.slice(2);
probe(host, Number(port), Number(timeoutMs)).then((ok) => process.exit(ok ? 0 : 1));
