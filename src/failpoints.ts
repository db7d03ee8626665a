/**
 * Failpoints: named defects a node can be started with, so that the nemesis harness can prove it
 * catches a broken build (issue 5). They are read once, from CAIRN_FAILPOINTS (a comma-separated
 * list of names), and cost one Set lookup where they are checked. A node refuses to start with a
 * name it does not know, so a typo cannot make a "broken build" that is not broken.
 *
 * Never set in production: every failpoint breaks a promise docs/CONSISTENCY.md makes.
 */
import { CairnError } from './errors.js';

export const FAILPOINTS = {
  /** The store acknowledges durable writes without fdatasync of their blocks or waiting for LMDB's flush. */
  'store.ack-before-sync': 'durable writes acknowledged before they reach stable storage',
  /** NFS WRITE answers success for every fifth write without applying it. */
  'nfs.write.drop': 'every fifth NFS WRITE acknowledged and never applied',
  /** SWIM declares a member dead on its first missed probe, with no suspicion. */
  'membership.dead-on-first-miss': 'members declared dead on the first missed probe',
  /** `cairn up` throws an error nothing handles once the node serves: tests the fatal-error path. */
  'node.throw-after-start': 'an uncaught error thrown once the node serves',
} as const;

export type Failpoint = keyof typeof FAILPOINTS;

export class UnknownFailpointError extends CairnError {
  constructor(name: string) {
    super(
      'UNKNOWN_FAILPOINT',
      `unknown failpoint '${name}' in CAIRN_FAILPOINTS (known: ${Object.keys(FAILPOINTS).join(', ')})`,
    );
  }
}

/** Parses a CAIRN_FAILPOINTS value; throws UnknownFailpointError on a name it does not know. */
export function parseFailpoints(value: string | undefined): Set<Failpoint> {
  const set = new Set<Failpoint>();
  for (const raw of (value ?? '').split(',')) {
    const name = raw.trim();
    if (name === '') continue;
    if (!Object.hasOwn(FAILPOINTS, name)) throw new UnknownFailpointError(name);
    set.add(name as Failpoint);
  }
  return set;
}

const active = parseFailpoints(process.env.CAIRN_FAILPOINTS);

/** Whether the process was started with this failpoint. */
export function failpoint(name: Failpoint): boolean {
  return active.has(name);
}

/** The failpoints this process runs with, for its startup log. */
export function activeFailpoints(): Failpoint[] {
  return [...active];
}
