export type { BlockFileHandle, BlockIO } from './block-io.js';
export { NodeBlockIO } from './block-io.js';
export { CHECKSUM_BYTES } from './checksum.js';
export {
  StoreClosedError,
  StoreConflictError,
  StoreCorruptError,
  StoreError,
  StoreFullError,
  StoreInvalidError,
} from './errors.js';
export { decodeKey, encodeKey } from './keys.js';
export {
  DEFAULT_BLOCK_CACHE_BYTES,
  DEFAULT_CHUNK_SIZE,
  DEFAULT_HEADROOM_BYTES,
  DEFAULT_INLINE_MAX,
  DEFAULT_MAP_SIZE,
  LmdbStore,
  MAX_FILE_SIZE,
  openStore,
  type StoreOptions,
} from './store.js';
export type * from './types.js';
