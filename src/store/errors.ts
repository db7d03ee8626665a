import { CairnError } from '../errors.js';

/** Base of every error the store raises; callers branch on `code`. */
export class StoreError extends CairnError {}

/** A put's `ifVersion` did not match the record's current version. */
export class StoreConflictError extends StoreError {
  constructor(
    message: string,
    readonly expected: number,
    readonly actual: number,
  ) {
    super('STORE_CONFLICT', message);
  }
}

/** Stored content failed its checksum (or its block is missing or the wrong length). */
export class StoreCorruptError extends StoreError {
  constructor(
    message: string,
    readonly file: number,
    readonly chunk: number,
    options?: { cause?: unknown },
  ) {
    super('STORE_CORRUPT', message, options);
  }
}

/** The disk (ENOSPC) or LMDB's map is full: the operation wrote nothing, and nothing stored was damaged. */
export class StoreFullError extends StoreError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('STORE_FULL', message, options);
  }
}

/** The store is closed (or closing). */
export class StoreClosedError extends StoreError {
  constructor(message = 'store is closed') {
    super('STORE_CLOSED', message);
  }
}

/** A caller passed something the store refuses: a key too long, a negative offset, a NaN. */
export class StoreInvalidError extends StoreError {
  constructor(message: string) {
    super('STORE_INVALID', message);
  }
}

/** Whether an error from the file system or LMDB means "no space": ENOSPC, EDQUOT or MDB_MAP_FULL. */
export function isNoSpace(e: unknown): boolean {
  const err = e as { code?: unknown; message?: unknown } | null;
  if (!err) return false;
  if (err.code === 'ENOSPC' || err.code === 'EDQUOT' || err.code === 'MDB_MAP_FULL') return true;
  return typeof err.message === 'string' && /MDB_MAP_FULL|ENOSPC|No space left|Disk quota/i.test(err.message);
}
