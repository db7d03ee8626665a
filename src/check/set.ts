/**
 * The set check: a key is a set that clients add unique values to and read whole (a directory
 * that clients create uniquely named files in, then list). See anomalies.ts for the rules; a read
 * that lists a value twice is reported too.
 */
import {
  AnomalyLog,
  type CollectionCheckOptions,
  type CollectionResult,
  collectionOp,
  findAnomalies,
  type Observation,
} from './anomalies.js';
import { count } from './explain.js';
import { type History, isCrash, type Operation, partitionByKey, validateHistory } from './history.js';

export type SetInput = { readonly f: 'add'; readonly value: string } | { readonly f: 'read' };
/** A read returns the values in the set, in any order; an add returns nothing. */
export type SetOutput = readonly string[] | undefined;

const kindOf = (op: Operation) => collectionOp(op, 'add', 'set', 'strings', (v) => typeof v === 'string');

const show = JSON.stringify;

/**
 * Checks every set in a history (one per key, crashes on `CRASH_KEY` applying to all): no value
 * read that was never added, none lost once its add was acknowledged, none gone from a later read
 * unless a power loss could have taken it before it was durable. Every acknowledged operation on
 * the node is flushed, in order, so one acknowledged add makes every value seen before it durable.
 */
export function checkSet(history: History, options: CollectionCheckOptions = {}): CollectionResult {
  validateHistory(history);
  const log = new AnomalyLog(options.maxAnomalies ?? 100);
  const stats = { keys: 0, 'adds ok': 0, 'adds failed': 0, 'adds open': 0, reads: 0, values: 0, crashes: 0 };
  stats.crashes = history.filter(isCrash).length;
  for (const [key, ops] of partitionByKey(history)) {
    stats.keys++;
    const values: string[] = [];
    const index = new Map<string, number>();
    const writes: Operation[][] = [];
    const element = (v: string): number => {
      let e = index.get(v);
      if (e === undefined) {
        e = values.length;
        index.set(v, e);
        values.push(v);
        writes.push([]);
      }
      return e;
    };
    const reads: Observation[] = [];
    const crashes: Operation[] = [];
    const listedBy: number[] = []; // per element, the last read that listed it: finds duplicates
    for (const op of ops) {
      if (isCrash(op)) {
        crashes.push(op);
      } else if (kindOf(op) === 'add') {
        writes[element((op.input as { value: string }).value)].push(op);
        stats[op.outcome === 'ok' ? 'adds ok' : op.outcome === 'fail' ? 'adds failed' : 'adds open']++;
      } else if (op.outcome === 'ok') {
        stats.reads++;
        const listed = op.output as readonly string[];
        const present = new Int32Array(listed.length);
        let shown = 0;
        for (const v of listed) {
          const e = element(v);
          if (listedBy[e] === op.id) {
            log.add('duplicate', key, `value ${show(v)}`, () => ({
              summary: 'a read lists it twice',
              witnesses: [{ op, role: 'lists it twice', what: `read → ${count(listed.length, 'value')}` }],
            }));
          } else {
            listedBy[e] = op.id;
            present[shown++] = e;
          }
        }
        reads.push({ read: op, present: present.subarray(0, shown) });
      }
    }
    stats.values += writes.filter((ws) => ws.length > 0).length;
    findAnomalies(
      {
        key,
        writes,
        reads,
        crashes,
        acksFlushEarlier: true,
        label: (e) => `value ${show(values[e])}`,
        describe(op, e) {
          if ((op.input as SetInput).f === 'add') return `add ${show((op.input as { value: string }).value)}`;
          const listed = op.output as readonly string[];
          return `read → ${count(listed.length, 'value')}, ${listed.includes(values[e]) ? 'with' : 'without'} ${show(values[e])}`;
        },
      },
      log,
    );
  }
  const anomalies = log.anomalies();
  return { valid: anomalies.length === 0, anomalies, stats };
}
