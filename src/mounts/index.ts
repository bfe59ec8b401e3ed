export { canonicalizePath, encodePath, type CanonicalPath, type PathRefusal } from './canonical.js';
export { BUILTIN_MIMETYPES, createMimeLookup, type MimeDecision } from './mime.js';
export { mountFromConfig, resolveMount, type MountOptions, type ResolvedMount } from './options.js';
export { statusForError, statusPage } from './status.js';
export { ServeEngine, type CallbackTarget, type CoreRequest, type CoreResponse, type EngineOptions } from './engine.js';
export { createHandler, write, type CallbackHandler, type HandlerOptions, type NodeHandler, type NodeRequest, type NodeResponse } from './handler.js';
