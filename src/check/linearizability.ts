/**
 * A linearizability checker: Wing and Gong's search for a sequential order that respects real time
 * and the model, with Lowe's just-in-time linearization (an operation is only tried while no
 * return has been passed, so the search never runs ahead of an operation that must already have
 * happened) and memoization of (set of operations linearized, model state) as in Porcupine, which
 * turns the exponential search into one that is polynomial in practice for registers.
 *
 * The search walks a doubly linked list of call and return events in time order. At a call it
 * tries to linearize that operation now: if the model allows it and the (set, state) pair is new,
 * the operation is taken out of the list and the walk restarts at the front. At a return it has
 * met an operation that must already have been linearized and was not, so it backtracks: the last
 * operation linearized goes back into the list and the walk goes on after its call. The history is
 * linearizable once every completed operation is out of the list; open operations (outcome
 * unknown) have no return event, so they may be linearized anywhere after their call or never.
 */
import { type History, isCrash, type Operation, partitionByKey, validateHistory } from './history.js';
import { type Model, type Successors, successorList } from './models.js';

export type Verdict = 'linearizable' | 'not-linearizable' | 'unknown';

export interface CheckOptions {
  /** Check each key on its own (a register per key). Default true. */
  partition?: boolean;
  /** Give up (verdict `unknown`) after this many search steps in one partition. Default 5,000,000. */
  maxSteps?: number;
  /** Give up (verdict `unknown`) after this many milliseconds in all. Default none. */
  timeoutMs?: number;
}

/** Where the search got furthest in a history it could not linearize. */
export interface Failure<S, I, O> {
  /** The linearizable prefix that took the most completed operations, in order. */
  readonly prefix: readonly Operation<I, O>[];
  /** The model's state after that prefix. */
  readonly state: S;
  /** The completed operation that had to come next and could not be placed. */
  readonly blocked: Operation<I, O>;
}

export interface PartitionResult<S, I, O> {
  readonly key: string;
  readonly verdict: Verdict;
  /** Search steps taken (a step is one attempt to linearize an operation, or one backtrack). */
  readonly steps: number;
  readonly operations: readonly Operation<I, O>[];
  /** One valid order of the operations it linearized, when linearizable (open ones may be left out). */
  readonly linearization?: readonly Operation<I, O>[];
  readonly failure?: Failure<S, I, O>;
}

export interface CheckResult<S, I, O> {
  readonly verdict: Verdict;
  readonly model: Model<S, I, O>;
  /** One per key, in key order. */
  readonly partitions: readonly PartitionResult<S, I, O>[];
  readonly steps: number;
  readonly elapsedMs: number;
}

const NIL = -1;

/** What one operation may lead to from `state`: a crash goes to the model's `crash`, the rest to `step`. */
function stepOf<S, I, O>(model: Model<S, I, O>, state: S, op: Operation<I, O>): Successors<S> {
  if (model.crash !== undefined && isCrash(op)) return model.crash(state, op.input.kind);
  return op.outcome === 'ok'
    ? model.step(state, op.input, op.output, 'ok')
    : model.step(state, op.input, undefined, 'open');
}

/** The states `op` may lead to from `state` (empty when it is impossible there). */
export function successorsOf<S, I, O>(model: Model<S, I, O>, state: S, op: Operation<I, O>): readonly S[] {
  return successorList(stepOf(model, state, op));
}

/** Checks one partition (operations of one key, `fail` ones already removed). */
export function checkOperations<S, I, O>(
  model: Model<S, I, O>,
  key: string,
  allOps: readonly Operation<I, O>[],
  opts: { maxSteps?: number; deadline?: number } = {},
): PartitionResult<S, I, O> {
  const maxSteps = opts.maxSteps ?? 5_000_000;
  const deadline = opts.deadline ?? Number.POSITIVE_INFINITY;
  // A model that ignores crashes would linearize them as no-ops: leave them out.
  const crashAware = model.crash !== undefined;
  const ops = !crashAware && allOps.some(isCrash) ? allOps.filter((op) => !isCrash(op)) : allOps;
  const n = ops.length;

  // Events in time order; on equal times calls come first, so two operations that touch at one
  // instant count as concurrent (the lenient reading, since clocks rarely resolve that instant).
  const events: { op: number; call: boolean; t: number }[] = [];
  for (let i = 0; i < n; i++) {
    const op = ops[i];
    events.push({ op: i, call: true, t: op.call });
    if (op.outcome === 'ok') events.push({ op: i, call: false, t: op.ret! });
  }
  events.sort((a, b) => a.t - b.t || (a.call === b.call ? 0 : a.call ? -1 : 1));

  // Two lists share the link arrays: entry MAIN heads the calls and returns of completed
  // operations, entry OPEN the calls of open ones; event k is entry k + 2. Open operations are
  // tried only once the walk is blocked at a return, and only those called before it: the same
  // candidates in a better order, since an open write taken early mostly has to be taken back.
  const MAIN = 0;
  const OPEN = 1;
  const m = events.length + 2;
  const next = new Int32Array(m).fill(NIL);
  const prev = new Int32Array(m).fill(NIL);
  const entryOp = new Int32Array(m);
  const isCall = new Uint8Array(m);
  const returnOf = new Int32Array(n).fill(NIL);
  const isOpen = new Uint8Array(n);
  const tails = [MAIN, OPEN];
  for (let k = 0; k < events.length; k++) {
    const e = k + 2;
    const i = events[k].op;
    entryOp[e] = i;
    isCall[e] = events[k].call ? 1 : 0;
    if (!events[k].call) returnOf[i] = e;
    const list = ops[i].outcome === 'open' ? OPEN : MAIN;
    if (list === OPEN) isOpen[i] = 1;
    next[tails[list]] = e;
    prev[e] = tails[list];
    tails[list] = e;
  }

  const unlink = (e: number): void => {
    next[prev[e]] = next[e];
    if (next[e] !== NIL) prev[next[e]] = prev[e];
  };
  const relink = (e: number): void => {
    next[prev[e]] = e;
    if (next[e] !== NIL) prev[next[e]] = e;
  };

  // The linearized set is a bitset, hashed incrementally (Zobrist: each completed operation owns
  // two random words, XORed in and out as it is linearized and taken back) so that a cache probe
  // costs O(1) unless it hits. Open operations are left out of the hash and compared by subset:
  // a configuration that has linearized the same completed operations, reached the same state and
  // spent a superset of the open ones can do nothing the one already seen could not (open
  // operations are optional), so it is pruned too.
  const words = new Uint32Array(Math.ceil(n / 32));
  const openMask = new Uint32Array(words.length);
  const z1 = new Int32Array(n);
  const z2 = new Int32Array(n);
  let seed = 0x9e3779b9 | 0;
  const rand = (): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed;
  };
  for (let i = 0; i < n; i++) {
    if (isOpen[i]) {
      openMask[i >>> 5] |= 1 << (i & 31);
      continue;
    }
    z1[i] = rand();
    z2[i] = rand();
  }
  let h1 = 0;
  let h2 = 0;
  const flip = (i: number): void => {
    words[i >>> 5] ^= 1 << (i & 31);
    h1 ^= z1[i];
    h2 ^= z2[i];
  };
  const seen = new Map<string, Uint32Array[]>();
  /** Records (current set, state) and says whether it is new (not subsumed by one seen). */
  const remember = (stateHash: string): boolean => {
    const k = `${h1},${h2},${stateHash}`;
    const bucket = seen.get(k);
    if (bucket === undefined) {
      seen.set(k, [words.slice()]);
      return true;
    }
    for (const b of bucket) {
      let subsumed = true;
      for (let w = 0; w < b.length && subsumed; w++) {
        const diff = b[w] ^ words[w];
        subsumed = (diff & ~openMask[w]) === 0 && (diff & b[w]) === 0;
      }
      if (subsumed) return false;
    }
    bucket.push(words.slice());
    return true;
  };

  let completed = 0;
  for (const op of ops) if (op.outcome === 'ok') completed++;
  let remaining = completed; // completed operations not yet linearized

  // blockedAt: the return entry the walk is stopped at while it tries open operations, else NIL.
  // alts: every state a nondeterministic step could reach, alt the one being explored.
  const stack: { entry: number; state: S; blockedAt: number; alts: readonly S[] | undefined; alt: number }[] =
    [];
  let state = model.init();
  let entry = next[MAIN];
  let blockedAt = NIL;
  let steps = 0;
  let best: Failure<S, I, O> | undefined;
  let bestDone = -1;

  const result = (
    verdict: Verdict,
    extra: Partial<PartitionResult<S, I, O>> = {},
  ): PartitionResult<S, I, O> => ({
    key,
    verdict,
    steps,
    operations: ops,
    ...extra,
  });
  /** The first of `alts`, from `from` on, whose (set, state) pair is new; -1 if none. */
  const firstNew = (alts: readonly S[], from: number): number => {
    for (let k = from; k < alts.length; k++) if (remember(model.hash(alts[k]))) return k;
    return -1;
  };

  while (remaining > 0) {
    if (++steps > maxSteps || ((steps & 0xfff) === 0 && Date.now() > deadline)) return result('unknown');
    if (blockedAt === NIL && !isCall[entry]) {
      // A return: its operation must already be linearized. Try the open operations first.
      blockedAt = entry;
      entry = next[OPEN];
      continue;
    }
    // Entries are numbered in event order, so an open call precedes the return iff its number does.
    const candidate = blockedAt === NIL || (entry !== NIL && entry < blockedAt);
    if (candidate) {
      const i = entryOp[entry];
      const op = ops[i];
      // stepOf, inlined: this is the search's innermost step.
      const after =
        crashAware && isCrash(op)
          ? model.crash!(state, op.input.kind)
          : isOpen[i]
            ? model.step(state, op.input, undefined, 'open')
            : model.step(state, op.input, op.output, 'ok');
      if (after !== undefined) {
        flip(i);
        // A deterministic step (the common case) reaches one state; a nondeterministic one takes
        // the first new state and keeps the others for when the search comes back here.
        let alts: readonly S[] | undefined;
        let alt = -1;
        if (Array.isArray(after)) {
          alts = after as readonly S[];
          alt = firstNew(alts, 0);
        } else if (remember(model.hash(after as S))) {
          alt = 0;
        }
        if (alt >= 0) {
          stack.push({ entry, state, blockedAt, alts, alt });
          state = alts === undefined ? (after as S) : alts[alt];
          unlink(entry);
          if (returnOf[i] !== NIL) unlink(returnOf[i]);
          if (op.outcome === 'ok') remaining--;
          entry = next[MAIN];
          blockedAt = NIL;
          continue;
        }
        flip(i);
      }
      entry = next[entry];
      continue;
    }
    // Blocked for good at this depth. Remember the deepest such dead end, the best witness of
    // where the history goes wrong, then take back the last operation linearized.
    // Depth counts completed operations only: open ones can be stacked up anywhere, and a dead end
    // reached by spending them is rarely the one that shows the fault.
    if (best === undefined || completed - remaining > bestDone) {
      bestDone = completed - remaining;
      best = { prefix: stack.map((s) => ops[entryOp[s.entry]]), state, blocked: ops[entryOp[blockedAt]] };
    }
    const top = stack.at(-1);
    if (top === undefined) return result('not-linearizable', { failure: best });
    if (top.alts !== undefined) {
      // Another state the same operation could have reached, with the same set linearized.
      const k = firstNew(top.alts, top.alt + 1);
      if (k >= 0) {
        top.alt = k;
        state = top.alts[k];
        entry = next[MAIN];
        blockedAt = NIL;
        continue;
      }
    }
    stack.pop();
    const j = entryOp[top.entry];
    state = top.state;
    flip(j);
    if (returnOf[j] !== NIL) relink(returnOf[j]);
    relink(top.entry);
    if (ops[j].outcome === 'ok') remaining++;
    entry = next[top.entry];
    blockedAt = top.blockedAt;
  }
  return result('linearizable', { linearization: stack.map((s) => ops[entryOp[s.entry]]) });
}

/**
 * Checks a whole history against a model: validates it, drops `fail` operations, partitions it by
 * key (unless told not to) and checks each partition on its own. The history is linearizable if
 * every partition is; not linearizable if any partition is not; otherwise unknown (a limit hit).
 */
export function checkLinearizable<S, I, O>(
  model: Model<S, I, O>,
  history: History<I, O>,
  options: CheckOptions = {},
): CheckResult<S, I, O> {
  validateHistory(history);
  const started = Date.now();
  const deadline = options.timeoutMs === undefined ? undefined : started + options.timeoutMs;
  const live = history.filter((op) => op.outcome !== 'fail');
  const parts =
    options.partition === false ? new Map([['', [...live]]]) : partitionByKey(live as History<I, O>);
  const partitions: PartitionResult<S, I, O>[] = [];
  let steps = 0;
  for (const key of [...parts.keys()].sort()) {
    const r = checkOperations(model, key, parts.get(key)!, { maxSteps: options.maxSteps, deadline });
    steps += r.steps;
    partitions.push(r);
  }
  const verdict: Verdict = partitions.some((p) => p.verdict === 'not-linearizable')
    ? 'not-linearizable'
    : partitions.some((p) => p.verdict === 'unknown')
      ? 'unknown'
      : 'linearizable';
  return { verdict, model, partitions, steps, elapsedMs: Date.now() - started };
}
