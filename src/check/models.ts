/**
 * Sequential specifications the linearizability checker tests histories against. A model is a
 * pure state machine: the checker clones nothing, so `step` must return a new state rather than
 * change the one it was given.
 */
import type { CrashKind } from './history.js';

/** How the operation a model steps through ended: `ok` (output known) or `open` (unknown). */
export type StepOutcome = 'ok' | 'open';

/**
 * What a step may lead to: one state; an array of the states it may lead to, for a
 * nondeterministic model (so a state must never itself be an array: wrap it in an object); or
 * undefined (or an empty array) when the operation could not have returned that output.
 */
export type Successors<S> = S | readonly S[] | undefined;

export interface Model<S, I, O> {
  readonly name: string;
  init(): S;
  /**
   * The state(s) after `input` ran from `state` and returned `output`. For an `open` operation
   * `output` is undefined: the model must then accept whatever the operation would have returned.
   */
  step(state: S, input: I, output: O | undefined, outcome: StepOutcome): Successors<S>;
  /**
   * The state(s) a node crash may leave (the history's `CRASH_KEY` operations). A model without it
   * is unaffected by crashes: the checker then leaves crash operations out.
   */
  crash?(state: S, kind: CrashKind): S | readonly S[];
  /**
   * Whether an input never changes anything, whatever it returns (a read, a lookup), even when
   * its step changes the state (a lookup that learns a file id the model did not know). Optional;
   * `powerLossModel` uses it to tell an acknowledged read (no flush) from an acknowledged change.
   */
  readOnly?(input: I): boolean;
  /** Equal states give equal strings: the checker memoizes on it. */
  hash(state: S): string;
  describeOp(input: I, output: O | undefined): string;
  describeState(state: S): string;
}

/** A step's successors as an array (empty: impossible). */
export function successorList<S>(next: Successors<S>): readonly S[] {
  if (next === undefined) return [];
  return Array.isArray(next) ? (next as readonly S[]) : [next as S];
}

/** What a register holds; null is "never written" (a file that does not exist yet). */
export type Value = string | number | null;

export type RegisterInput =
  | { readonly f: 'read' }
  | { readonly f: 'write'; readonly value: Value }
  | { readonly f: 'cas'; readonly from: Value; readonly to: Value };

/** A read returns the value; a write returns nothing (undefined); a cas whether it swapped. */
export type RegisterOutput = Value | boolean | undefined;

const show = (v: unknown): string => (v === undefined ? '?' : JSON.stringify(v));

/**
 * A read/write/compare-and-swap register, one per key: the checker partitions a history by key
 * and checks each key against its own register.
 */
export function registerModel(initial: Value = null): Model<Value, RegisterInput, RegisterOutput> {
  return {
    name: 'register',
    init: () => initial,
    step(state, input, output) {
      switch (input.f) {
        case 'read':
          return output === undefined || output === state ? state : undefined;
        case 'write':
          return input.value;
        case 'cas': {
          const swaps = state === input.from;
          if (output === undefined) return swaps ? input.to : state;
          if (output === true) return swaps ? input.to : undefined;
          if (output === false) return swaps ? undefined : state;
          return undefined;
        }
      }
    },
    readOnly: (input) => input.f === 'read',
    hash: (state) => JSON.stringify(state),
    describeOp(input, output) {
      switch (input.f) {
        case 'read':
          return `read → ${show(output)}`;
        case 'write':
          return `write ${show(input.value)}`;
        case 'cas':
          return `cas ${show(input.from)}→${show(input.to)} → ${output === undefined ? '?' : output ? 'swapped' : 'refused'}`;
      }
    },
    describeState: (state) => show(state),
  };
}

/**
 * A state of `powerLossModel`: the state every client sees now, and the states the node could
 * come back in if it lost power now (each a state the history passed through since the last
 * acknowledged change, that change's own state first).
 */
export interface PowerLossState<S> {
  readonly cur: S;
  readonly dur: readonly S[];
}

/**
 * Wraps a model with what docs/CONSISTENCY.md promises across a power loss. A change is visible
 * when it commits and acknowledged once flushed, and flushes go in commit order, so an
 * acknowledged change makes every state before it durable: after it, `dur` is its state alone.
 * An open change (never acknowledged) may have been visible and still be lost: its state joins
 * `dur`. A read changes neither. A power crash may leave any state of `dur`, which becomes the
 * only durable one; a kill -9 changes nothing (the page cache survives). The wrapped model's own
 * `crash`, if any, is not consulted.
 */
export function powerLossModel<S, I, O>(model: Model<S, I, O>): Model<PowerLossState<S>, I, O> {
  const withState = (dur: readonly S[], s: S): readonly S[] => {
    const h = model.hash(s);
    return dur.some((d) => model.hash(d) === h) ? dur : [...dur, s];
  };
  return {
    name: `${model.name} under power loss`,
    init() {
      const s = model.init();
      return { cur: s, dur: [s] };
    },
    step(state, input, output, outcome) {
      const out: PowerLossState<S>[] = [];
      const readOnly = model.readOnly?.(input) ?? false;
      for (const cur of successorList(model.step(state.cur, input, output, outcome))) {
        if (outcome === 'open') out.push({ cur, dur: readOnly ? state.dur : withState(state.dur, cur) });
        else if (readOnly || model.hash(cur) === model.hash(state.cur)) out.push({ cur, dur: state.dur });
        else out.push({ cur, dur: [cur] });
      }
      return out.length === 1 ? out[0] : out;
    },
    crash(state, kind) {
      if (kind === 'kill') return state;
      return state.dur.map((d) => ({ cur: d, dur: [d] }));
    },
    readOnly: model.readOnly === undefined ? undefined : (input) => model.readOnly!(input),
    hash(state) {
      const dur = state.dur.map((d) => model.hash(d)).sort();
      return JSON.stringify([model.hash(state.cur), dur]);
    },
    describeOp: (input, output) => model.describeOp(input, output),
    describeState(state) {
      const cur = model.describeState(state.cur);
      if (state.dur.length === 1 && model.hash(state.dur[0]) === model.hash(state.cur))
        return `${cur} (durable)`;
      return `${cur}; a power loss may leave ${state.dur.map((d) => model.describeState(d)).join(' or ')}`;
    },
  };
}
