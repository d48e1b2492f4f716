/**
 * The rtnetlink codec: pure functions from typed messages to bytes and back (no I/O).
 * @module
 */
export * as constants from './constants.js';
export * from './attrs.js';
export * from './link.js';
export * from './address.js';
export * from './route.js';
export * from './neighbor.js';
export { decodeRtnlMessage, type RtnlMessage } from './message.js';
