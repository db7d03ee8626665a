// A reusable history checker (docs/CHECKER.md): linearizability against sequential models
// (registers, a directory, either under power loss), and set and append checks. It depends on
// nothing in Cairn but src/errors.ts, so it can be lifted out as its own package.
export * from './anomalies.js';
export * from './append.js';
export * from './explain.js';
export * from './history.js';
export * from './linearizability.js';
export * from './models.js';
export * from './namespace.js';
export * from './set.js';
