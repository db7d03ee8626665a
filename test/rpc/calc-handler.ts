import type { CALC_V1_Handler } from './gen/calc.js';

const unused = () => {
  throw new Error('not used here');
};

/** A CALC v1 handler with the given procedures; every other one throws if called. */
export function calcHandler(parts: Partial<CALC_V1_Handler>): CALC_V1_Handler {
  return {
    CALC_NULL: unused,
    CALC_ADD: unused,
    CALC_ECHO: unused,
    CALC_COUNT: unused,
    CALC_SLEEP: unused,
    CALC_FAIL: unused,
    CALC_WHOAMI: unused,
    CALC_NOTE: unused,
    CALC_HASH: unused,
    ...parts,
  };
}
