export * from './route-table.js';
export * from './cors.js';
export * from './header-ops.js';
export * from './string-matcher.js';
