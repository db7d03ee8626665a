/**
 * The append check: a key is a file one writer appends fixed-size records to, its k-th append
 * filling slot k, that readers read whole, slot by slot. On top of the shared rules (anomalies.ts;
 * an element is a slot), each slot must hold its own append's token or read as a hole.
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
import {
  type History,
  HistoryError,
  isCrash,
  type Operation,
  partitionByKey,
  validateHistory,
} from './history.js';

export type AppendInput = { readonly f: 'append'; readonly value: string } | { readonly f: 'read' };
/**
 * A read returns the file slot by slot: a slot's token, `null` where it reads as a hole (zeros),
 * or for bytes that are neither, a string that no append wrote. An append returns nothing.
 */
export type AppendOutput = readonly (string | null)[] | undefined;

export interface AppendCheckOptions extends CollectionCheckOptions {
  /**
   * Whether an acknowledged append makes every slot seen before it was invoked durable too (true
   * when the workload acknowledges an append after a COMMIT, which makes every earlier write to
   * the file stable). Default false: each acknowledgement vouches for its own slot only, as with
   * FILE_SYNC writes.
   */
  acksFlushEarlier?: boolean;
}

const kindOf = (op: Operation) =>
  collectionOp(op, 'append', 'file', 'slots', (v) => v === null || typeof v === 'string');

const show = JSON.stringify;

/**
 * Checks every appended file in a history (one per key, crashes on `CRASH_KEY` applying to all):
 * a slot holds its own append's token or a hole, nothing else; a hole (or a read too short to
 * reach the slot) only where that append was not acknowledged before the read; a token seen is
 * not gone from a later read unless a power loss could have taken it before it was durable.
 * Throws HistoryError when a file has appends from more than one process.
 */
export function checkAppend(history: History, options: AppendCheckOptions = {}): CollectionResult {
  validateHistory(history);
  const log = new AnomalyLog(options.maxAnomalies ?? 100);
  const stats = { keys: 0, 'appends ok': 0, 'appends failed': 0, 'appends open': 0, reads: 0, crashes: 0 };
  stats.crashes = history.filter(isCrash).length;
  for (const [key, ops] of partitionByKey(history)) {
    stats.keys++;
    const appends: Operation[] = [];
    const readOps: Operation[] = [];
    const crashes: Operation[] = [];
    for (const op of ops) {
      if (isCrash(op)) crashes.push(op);
      else if (kindOf(op) === 'append') appends.push(op);
      else if (op.outcome === 'ok') readOps.push(op);
    }
    appends.sort((a, b) => a.call - b.call || a.id - b.id);
    const writers = [...new Set(appends.map((a) => a.process))];
    if (writers.length > 1) {
      throw new HistoryError(
        `file ${show(key)} has appends from processes ${writers.map(String).join(', ')}: ` +
          'checkAppend needs one writer per file, since slot k is its k-th append',
      );
    }
    const token = (k: number): string => (appends[k].input as { value: string }).value;
    const slotOf = new Map<string, number>();
    for (let k = 0; k < appends.length; k++) {
      if (slotOf.has(token(k)))
        throw new HistoryError(`file ${show(key)} has two appends of ${show(token(k))}`);
      slotOf.set(token(k), k);
      stats[
        appends[k].outcome === 'ok'
          ? 'appends ok'
          : appends[k].outcome === 'fail'
            ? 'appends failed'
            : 'appends open'
      ]++;
    }
    const writes = appends.map((a) => [a]);

    const reads: Observation[] = [];
    for (const r of readOps) {
      stats.reads++;
      const slots = r.output as readonly (string | null)[];
      const present: number[] = [];
      const unknown: number[] = [];
      const read = `read → ${count(slots.length, 'slot')}`;
      for (let k = 0; k < slots.length; k++) {
        const got = slots[k];
        if (got === null) continue;
        if (k < appends.length && got === token(k)) {
          present.push(k);
          continue;
        }
        if (k < appends.length) unknown.push(k);
        const j = slotOf.get(got);
        if (j !== undefined) {
          log.add('wrong-place', key, `slot ${k}`, () => ({
            summary: `a read shows slot ${j}'s token there`,
            witnesses: [
              { op: r, role: `shows it in slot ${k}`, what: `${read}, slot ${k}: ${show(got)}` },
              { op: appends[j], role: `wrote slot ${j}`, what: `append ${show(got)} (slot ${j})` },
            ],
          }));
        } else {
          log.add('never-written', key, `slot ${k}`, () => ({
            summary: 'a read shows bytes no append wrote',
            witnesses: [{ op: r, role: 'shows them', what: `${read}, slot ${k}: ${show(got)}` }],
          }));
        }
      }
      // Holes past every append invoked by then: the file grew without a write. (Tokens there are
      // reported as written before their append.)
      const invoked = appends.filter((a) => a.call <= r.ret!).length;
      if (slots.length > invoked && slots.slice(invoked).every((v) => v === null)) {
        log.add('never-written', key, 'length', () => ({
          summary: `a read returns ${slots.length} slots when ${invoked} appends had been invoked`,
          witnesses: [{ op: r, role: 'too long', what: read }],
        }));
      }
      reads.push({ read: r, present, unknown });
    }

    findAnomalies(
      {
        key,
        writes,
        reads,
        crashes,
        acksFlushEarlier: options.acksFlushEarlier ?? false,
        label: (k) => `slot ${k}`,
        describe(op, k) {
          if ((op.input as AppendInput).f === 'append') {
            const value = (op.input as { value: string }).value;
            return `append ${show(value)} (slot ${slotOf.get(value)})`;
          }
          const slots = op.output as readonly (string | null)[];
          return `read → ${count(slots.length, 'slot')}, slot ${k}: ${k < slots.length ? show(slots[k]) : 'beyond the end'}`;
        },
      },
      log,
    );
  }
  const anomalies = log.anomalies();
  return { valid: anomalies.length === 0, anomalies, stats };
}
