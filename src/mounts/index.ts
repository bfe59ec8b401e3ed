export { canonicalizePath, encodePath, type CanonicalPath, type PathRefusal } from './canonical.js';
export { BUILTIN_MIMETYPES, createMimeLookup, type MimeDecision, type MimetypePreset } from './mime.js';
export { mountFromConfig, resolveMount, type MountOptions, type ResolvedMount } from './options.js';
export { statusForError, statusPage } from './status.js';
export { ServeEngine, type EngineCacheStats, type EngineOptions } from './engine.js';
export type { BodySource, CallbackTarget, CoreRequest, CoreResponse } from './content.js';
export { CODINGS, HAS_ZSTD, LEVELS, isCompressibleType, type Coding, type CompressionOptions } from './compress.js';
export { listingJson, prefersJson, renderListingHtml, type Listing, type ListingEntry, type ListingJson } from './listing.js';
