export { startProxy, PROXY_VERSION, type Proxy, type ProxyOptions, type ApplyResult, type ProxyStatus, type ClusterView } from './server.js';
export type { ProxyTlsProvider, InboundFilter, InboundContext, InboundDenial } from './extensions.js';
export { watchConfigFile, type ConfigWatcher } from './config-file.js';
export { RESPONSE_FLAGS_HEADER, PROXY_ERRORS, type ProxyErrorCode } from './errors.js';
export { useSingleThreadedGc, SINGLE_THREADED_GC_FLAGS } from './gc-tuning.js';
