export {
  createUpstream,
  UpstreamError,
  type Upstream,
  type UpstreamOptions,
  type UpstreamStats,
  type UpstreamErrorCode,
} from './upstream.js';
