/**
 * The NFS gateway's public surface: the NFS version 3 and MOUNT version 3 protocol (generated
 * from nfs3.bytes.x and mount3.bytes.x, under the namespaces `nfs3` and `mount3`), the client,
 * and the status names and errors both sides share.
 */
export {
  type CreateHow,
  type DirEntry,
  type DirEntryPlus,
  type DirPage,
  type ExportEntry,
  isNfsError,
  type LookupResult,
  type NameLike,
  type NewObject,
  NfsClient,
  type NfsConnectOptions,
  type NfsCredential,
  nameText,
  type OffsetLike,
  type ReadResult,
  type SetAttributes,
  toName,
  toSattr3,
} from './client.js';
export * as mount3 from './gen/mount3.bytes.js';
export * as nfs3 from './gen/nfs3.bytes.js';
export { MountError, mountStatusName, NfsClientError, NfsError, nfsStatusName } from './status.js';
