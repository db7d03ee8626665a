/**
 * Sequential specifications the linearizability checker tests histories against. A model is a
 * pure state machine: the checker clones nothing, so `step` must return a new state rather than
 * change the one it was given.
 */

export interface Model<S, I, O> {
  readonly name: string;
  init(): S;
  /**
   * The state after `input` ran from `state` and returned `output`, or undefined if it could not
   * have returned that. `output` is undefined for an open operation (outcome unknown): the model
   * must then accept whatever the operation would have returned.
   */
  step(state: S, input: I, output: O | undefined): S | undefined;
  /** Equal states give equal strings: the checker memoizes on it. */
  hash(state: S): string;
  describeOp(input: I, output: O | undefined): string;
  describeState(state: S): string;
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
