// A reusable linearizability checker for recorded histories (docs/CHECKER.md). It depends on
// nothing in Cairn but src/errors.ts, so it can be lifted out as its own package.
export * from './explain.js';
export * from './history.js';
export * from './linearizability.js';
export * from './models.js';
