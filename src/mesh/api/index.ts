export type * from './common.js';
export type * from './networking.js';
export type * from './security.js';
export type * from './telemetry.js';
export type * from './install.js';
export type * from './trellis.js';
