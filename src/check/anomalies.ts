/**
 * The rules the set and append checks share, over "elements" (a set's values, a file's slots)
 * that writes put in place and reads observe. No search is needed: each rule compares a read
 * with the writes, acknowledgements and crashes around it, so a history of tens of thousands of
 * operations checks in time proportional to what its reads returned.
 *
 * - never written: a read shows an element no write that was not known to fail had been invoked
 *   for by the time the read returned;
 * - lost: a read misses an element whose write was acknowledged before the read was invoked
 *   (acknowledged means durable: no crash excuses it);
 * - disappeared: a read misses an element an earlier read (returned before this one was invoked)
 *   showed, and no power loss can have taken it: none lies between the two reads while the
 *   element was not yet durable. It becomes durable when its own write is acknowledged, or, where
 *   an acknowledgement flushes every change before it (`acksFlushEarlier`), when any write invoked
 *   after the element was seen is acknowledged.
 *
 * Each anomaly is reported once per element and kind, with the fewest operations that show it;
 * `more` counts the further reads that show it again.
 */

import { anomalyText, type Witness } from './explain.js';
import { HistoryError, isCrash, type Operation } from './history.js';

export type AnomalyKind = 'never-written' | 'wrong-place' | 'duplicate' | 'lost' | 'disappeared';

export interface Anomaly {
  readonly kind: AnomalyKind;
  readonly key: string;
  /** The value (set) or slot (append) concerned, as the text names it. */
  readonly element: string;
  /** The operations that show it, in time order (the smallest part of the history that does). */
  readonly ops: readonly Operation[];
  /** How many further reads show the same anomaly of this element (not listed). */
  readonly more: number;
  /** The explanation: what is wrong, then each operation with its part in it. */
  readonly text: string;
}

export interface CollectionResult {
  readonly valid: boolean;
  readonly anomalies: readonly Anomaly[];
  /** Counts for a summary: operations by outcome, reads, elements, crashes. */
  readonly stats: Readonly<Record<string, number>>;
}

export interface CollectionCheckOptions {
  /** Stop collecting anomalies after this many (the verdict stands). Default 100. */
  maxAnomalies?: number;
}

/** What one completed read showed, elements named by their index in `Subject.writes`. */
export interface Observation {
  readonly read: Operation;
  readonly present: readonly number[] | Int32Array;
  /** Elements it showed wrongly (reported on their own): neither present nor missing. */
  readonly unknown?: readonly number[];
}

/** One key's operations, in the shape the rules need. Elements are numbered from 0. */
export interface Subject {
  readonly key: string;
  /** Per element, the operations that would put it in place (failed ones too; maybe none). */
  readonly writes: readonly (readonly Operation[])[];
  readonly reads: readonly Observation[];
  /** The crash operations. */
  readonly crashes: readonly Operation[];
  /** An acknowledged write makes every element seen before its call durable (see above). */
  readonly acksFlushEarlier: boolean;
  /** How the text names an element. */
  label(element: number): string;
  /** What an operation did, as it concerns `element`. */
  describe(op: Operation, element: number): string;
}

/** Collects anomalies, one per (kind, key, element), counting repeats. */
export class AnomalyLog {
  private readonly found = new Map<string, { -readonly [K in keyof Anomaly]: Anomaly[K] }>();
  private readonly max: number;
  /** Keeps at most `max` anomalies (at least one, so that a log with none means none was found). */
  constructor(max: number) {
    this.max = Math.max(1, max);
  }

  /** Records an anomaly unless one of this kind is already recorded for the element; then counts it. */
  add(
    kind: AnomalyKind,
    key: string,
    element: string,
    what: () => { summary: string; witnesses: Witness[] },
  ): void {
    const id = JSON.stringify([kind, key, element]);
    const seen = this.found.get(id);
    if (seen !== undefined) {
      seen.more++;
      return;
    }
    if (this.found.size >= this.max) return;
    const { summary, witnesses } = what();
    const sorted = [...witnesses].sort((x, y) => x.op.call - y.op.call || x.op.id - y.op.id);
    const text = anomalyText(`${kind}: key ${JSON.stringify(key)}, ${element}: ${summary}`, sorted);
    this.found.set(id, { kind, key, element, ops: sorted.map((w) => w.op), more: 0, text });
  }

  anomalies(): Anomaly[] {
    return [...this.found.values()].map((a) => ({ ...a }));
  }
}

/** The first index in `xs` (sorted by `at`) whose `at` is at least `t`. */
function lowerBound<T>(xs: readonly T[], at: (x: T) => number, t: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (at(xs[mid]) < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const isPower = (op: Operation): boolean => isCrash(op) && op.input.kind === 'power';

/**
 * Which of a collection's two operations `op` is: the write `write` (with a string `value`), or a
 * read, whose output when ok lists items that all pass `isItem`. Throws HistoryError on anything
 * else, naming the `collection` (file, set) and what its reads list (`items`).
 */
export function collectionOp<W extends string>(
  op: Operation,
  write: W,
  collection: string,
  items: string,
  isItem: (v: unknown) => boolean,
): W | 'read' {
  const input = op.input as { f?: unknown; value?: unknown } | null;
  if (input?.f === write && typeof input.value === 'string') return write;
  if (input?.f === 'read') {
    const out = op.output;
    if (op.outcome !== 'ok' || (Array.isArray(out) && out.every(isItem))) return 'read';
    throw new HistoryError(
      `${collection} read #${op.id} returned ${JSON.stringify(out)}, not a list of ${items}`,
    );
  }
  throw new HistoryError(
    `operation #${op.id} on ${collection} ${JSON.stringify(op.key)} is neither ${write} nor read`,
  );
}

/** Applies the three shared rules to one key. */
export function findAnomalies(s: Subject, log: AnomalyLog): void {
  const { key, writes } = s;
  const n = writes.length;
  const reads = [...s.reads].sort((a, b) => a.read.call - b.read.call || a.read.id - b.read.id);
  const byRet = reads.map((_, i) => i).sort((a, b) => reads[a].read.ret! - reads[b].read.ret! || a - b);
  const crashes = [...s.crashes].sort((a, b) => a.call - b.call);
  const power = crashes.filter(isPower);
  const kills = crashes.filter((c) => !isPower(c));

  // Per element: the earliest call of a write that did not fail, and the earliest acknowledgement.
  const earliestCall = new Float64Array(n).fill(Infinity);
  const acked: (Operation | undefined)[] = new Array(n);
  for (let e = 0; e < n; e++) {
    for (const w of writes[e]) {
      if (w.outcome === 'fail') continue;
      earliestCall[e] = Math.min(earliestCall[e], w.call);
      if (w.outcome === 'ok' && (acked[e] === undefined || acked[e]!.ret! > w.ret!)) acked[e] = w;
    }
  }
  const ackOrder: number[] = [];
  for (let e = 0; e < n; e++) if (acked[e] !== undefined) ackOrder.push(e);
  ackOrder.sort((a, b) => acked[a]!.ret! - acked[b]!.ret!);

  // Every acknowledged write by call time, with the index of the earliest return from there on.
  const acks = s.acksFlushEarlier
    ? writes
        .flat()
        .filter((w) => w.outcome === 'ok')
        .sort((a, b) => a.call - b.call)
    : [];
  const suffixMin = new Int32Array(acks.length + 1);
  suffixMin[acks.length] = -1;
  for (let i = acks.length - 1; i >= 0; i--) {
    const j = suffixMin[i + 1];
    suffixMin[i] = j >= 0 && acks[j].ret! <= acks[i].ret! ? j : i;
  }
  // The read that returned first showing each element.
  const firstSeen: (Operation | undefined)[] = new Array(n);
  for (const i of byRet) for (const e of reads[i].present) firstSeen[e] ??= reads[i].read;
  /** The acknowledgement after which the element is durable, if any. */
  const durableBy = (e: number): Operation | undefined => {
    let best = acked[e];
    const seen = firstSeen[e];
    if (seen !== undefined && acks.length > 0) {
      let i = lowerBound(acks, (w) => w.call, seen.ret!);
      while (i < acks.length && acks[i].call <= seen.ret!) i++;
      const j = suffixMin[i];
      if (j >= 0 && (best === undefined || acks[j].ret! < best.ret!)) best = acks[j];
    }
    return best;
  };

  // Never written: shown by a read, with no write of it invoked by then that could have worked.
  for (const o of reads) {
    const r = o.read;
    for (const e of o.present) {
      if (earliestCall[e] <= r.ret!) continue;
      log.add('never-written', key, s.label(e), () => {
        const failed = writes[e].find((w) => w.outcome === 'fail');
        const later = writes[e].find((w) => w.outcome !== 'fail' && w.call > r.ret!);
        const witnesses: Witness[] = [{ op: r, role: 'shows it', what: s.describe(r, e) }];
        if (later !== undefined) {
          witnesses.push({
            op: later,
            role: 'invoked only after that read returned',
            what: s.describe(later, e),
          });
        } else if (failed !== undefined) {
          witnesses.push({ op: failed, role: 'failed: it never took effect', what: s.describe(failed, e) });
        }
        const summary =
          later !== undefined
            ? 'a read shows it before it was written'
            : failed !== undefined
              ? 'a read shows it although its write failed'
              : 'a read shows it and nothing wrote it';
        return { summary, witnesses };
      });
    }
  }

  // Lost and disappeared, sweeping reads by call time. `known` marks, per read, the elements it
  // showed rightly or wrongly (anything else it misses). `latest` holds, per element, the read with
  // the latest call among those that showed it and returned before the current read began: the
  // narrowest window for a crash to fall in.
  const words = (n + 31) >>> 5;
  const known = new Uint32Array(words);
  const latest = new Int32Array(n).fill(-1);
  const tracked: number[] = []; // elements seen so far that some write may have put there
  const lostAt = new Int32Array(n).fill(-1);
  let finished = 0;
  let ackedBefore = 0;
  for (let i2 = 0; i2 < reads.length; i2++) {
    const o2 = reads[i2];
    const r2 = o2.read;
    known.fill(0);
    for (const e of o2.present) known[e >>> 5] |= 1 << (e & 31);
    for (const e of o2.unknown ?? []) known[e >>> 5] |= 1 << (e & 31);
    const missing = (e: number): boolean => (known[e >>> 5] & (1 << (e & 31))) === 0;
    while (finished < byRet.length && reads[byRet[finished]].read.ret! < r2.call) {
      const i1 = byRet[finished++];
      for (const e of reads[i1].present) {
        if (earliestCall[e] === Infinity) continue;
        if (latest[e] === -1) tracked.push(e);
        if (latest[e] === -1 || reads[latest[e]].read.call < reads[i1].read.call) latest[e] = i1;
      }
    }
    while (ackedBefore < ackOrder.length && acked[ackOrder[ackedBefore]]!.ret! < r2.call) ackedBefore++;
    for (let k = 0; k < ackedBefore; k++) {
      const e = ackOrder[k];
      if (!missing(e)) continue;
      lostAt[e] = i2;
      const w = acked[e]!;
      log.add('lost', key, s.label(e), () => {
        const witnesses: Witness[] = [
          { op: w, role: 'acknowledged', what: s.describe(w, e) },
          { op: r2, role: 'misses it', what: s.describe(r2, e) },
        ];
        const crash = lastBetween(power, w.ret!, r2.call) ?? lastBetween(kills, w.ret!, r2.call);
        if (crash !== undefined) witnesses.push({ op: crash, role: 'after the acknowledgement', what: '' });
        return { summary: 'acknowledged, then missing from a read invoked after that', witnesses };
      });
    }
    for (const e of tracked) {
      if (lostAt[e] === i2 || !missing(e)) continue;
      const r1 = reads[latest[e]].read;
      // A power loss excuses it if one can fall between the two reads before the element was durable.
      const by = durableBy(e);
      const limit = Math.min(r2.ret!, by?.ret ?? Infinity);
      const first = lowerBound(power, (c) => c.call, r1.call);
      if (first < power.length && power[first].call <= limit) continue;
      log.add('disappeared', key, s.label(e), () => {
        const w = writes[e].find((x) => x.outcome !== 'fail' && x.call <= r1.ret!);
        const witnesses: Witness[] = [
          { op: r1, role: 'shows it', what: s.describe(r1, e) },
          { op: r2, role: 'invoked after, misses it', what: s.describe(r2, e) },
        ];
        if (w !== undefined) witnesses.push({ op: w, role: 'wrote it', what: s.describe(w, e) });
        const crash = power.find((c) => c.call >= r1.call && c.call <= r2.ret!);
        let summary = 'a read shows it, a later read misses it, and no power loss lies between';
        if (crash !== undefined && by !== undefined) {
          witnesses.push({ op: crash, role: 'after it was durable', what: '' });
          if (by !== w) {
            witnesses.push({
              op: by,
              role: 'acknowledged after it was seen: made it durable',
              what: s.describe(by, e),
            });
          }
          summary = 'it was durable, yet a power loss took it';
        } else {
          const kill = kills.find((c) => c.call >= r1.call && c.call <= r2.ret!);
          if (kill !== undefined) {
            witnesses.push({ op: kill, role: 'a kill -9 loses nothing', what: '' });
            summary = 'a read shows it, a later read misses it, and only a kill -9 lies between';
          }
        }
        return { summary, witnesses };
      });
    }
  }
}

function lastBetween(crashes: readonly Operation[], from: number, to: number): Operation | undefined {
  let found: Operation | undefined;
  for (const c of crashes) if (c.call >= from && c.call <= to) found = c;
  return found;
}
