import { CairnError } from '../errors.js';

/**
 * Why a namespace operation failed, in POSIX's terms; each protocol gateway maps these to its
 * own statuses (NFS3ERR_NOENT, ...).
 */
export type FsErrorCode =
  | 'ENOENT'
  | 'EEXIST'
  | 'ENOTDIR'
  | 'EISDIR'
  | 'ENOTEMPTY'
  | 'EACCES'
  | 'EPERM'
  | 'EROFS'
  | 'ENAMETOOLONG'
  | 'ESTALE'
  | 'EINVAL'
  | 'EFBIG'
  | 'ENOSPC'
  | 'EXDEV'
  | 'ENOTSUP'
  | 'EMLINK'
  | 'ENOTSYNC'
  | 'EIO';

export class FsError extends CairnError {
  declare readonly code: FsErrorCode;
  constructor(code: FsErrorCode, message: string) {
    super(code, message);
  }
}
