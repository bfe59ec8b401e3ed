/**
 * The HTTP caching and negotiation helpers the serving engine uses: pure
 * functions over header values, no I/O.
 */
export { cacheControl, privateCacheControl, type CachePolicyOptions } from './policy.js';
export { makeEtag, parseEntityTag, parseEtagList, strongMatch, strongMatchTags, weakMatch, weakMatchTags, type EntityTag } from './etag.js';
export {
  evaluatePreconditions,
  httpDate,
  ifRangeAllows,
  parseHttpDate,
  type ConditionalRequest,
  type PreconditionResult,
  type Validators,
} from './conditional.js';
export { multipartByteranges, parseRange, type ByteRange, type MultipartPlan, type RangeResult } from './range.js';
export { negotiateEncoding } from './encoding.js';
