export { FopError, FOP_ERROR_CODES, fromSystemError, type FopErrorCode } from './errors.js';
export { FopFlags, hasFlag } from './flags.js';
export type { ContainerOps, FileOps, FopDirEntry, FopFd, FopStat, ListOps, RealPathOps, StatOps } from './types.js';
export { FopHandle, type FopHandleInit } from './handle.js';
export { assertFopPath, parentPath, signatureSplits, validFopPath } from './path.js';
export {
  createFopReadStream,
  fopAdvise,
  fopChanged,
  fopIdentity,
  fopReadAt,
  fopReadDir,
  fopReadvAt,
  fopRealPath,
  fopStat,
  hasReadDir,
  hasRealPath,
  hasStat,
  readAll,
  vfsGetLength,
  vfsGetModTime,
  vfsSeekEnd,
  vfsSeekSet,
  vfsTell,
  type FopReadStreamOptions,
} from './helpers.js';
export { PlatFops } from './plat.js';
export {
  DEFAULT_TAIL_BYTES,
  FAILED_OPEN_MS,
  HttpRangeFops,
  type HttpRangeFopsOptions,
  type HttpRangeFopsStats,
  type OutgoingRequest,
  type RequestSigner,
} from './remote/http-range.js';
export { defaultS3Region, s3CredentialsFromEnv, s3ObjectLocation, s3Signer, validBucketName, type S3Credentials, type S3ObjectLocation } from './remote/s3.js';
export { REMOTE_PREFIX, RemoteRouterFops, remoteFopPath, type RemoteObjectRef } from './remote/router.js';
export { CONTAINER_SIGNATURES, locateContainer, type ContainerLocation } from './container.js';
export { MemFops, type MemFileInit } from './memory.js';
export { Vfs, type VfsOptions, type VfsPrefix } from './vfs.js';
export { ZipFops, type ZipArchiveInfo, type ZipFopsOptions, type ZipFopsStats, type ZipIndexEvent } from './zip/zip-fops.js';
export { DEFAULT_ZIP_LIMITS, type ZipLimits } from './zip/limits.js';
export { readZipIndex, ZipIndex, type RefusedEntry, type ZipEnd, type ZipEntryInfo } from './zip/central.js';
export type { BadNameReason } from './zip/names.js';
export { sourceFromBytes, sourceFromFd, type RandomAccessSource } from './zip/source.js';
